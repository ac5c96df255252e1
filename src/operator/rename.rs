//! `rename`: give a field another name.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{intern, Name, Record};

/// Rename a field (a field already called `to` is replaced).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub from: String,
    pub to: String,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(Rename {
            from: intern(&self.from),
            to: intern(&self.to),
        })
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        vec![("from", &self.from)]
    }

    fn check(&self, c: &mut Check<'_>) {
        c.need(&self.from, "from");
        if let Some(k) = c.fields.as_mut() {
            k.retain(|x| *x != self.to);
            if let Some(x) = k.iter_mut().find(|x| **x == self.from) {
                *x = self.to.clone();
            }
        }
    }

    fn renamed_from(&self, field: &str) -> Option<&str> {
        (field == self.to).then_some(self.from.as_str())
    }

    /// `to` afterwards is `from` if the record has it, else the record's own
    /// `to`: both are needed. `from` afterwards is always gone.
    fn raw_needs(&self, n: &mut Vec<String>) {
        let wanted = n.contains(&self.to);
        n.retain(|x| *x != self.from);
        if wanted {
            n.push(self.from.clone());
        }
    }
}

#[derive(Debug)]
struct Rename {
    from: Name,
    to: Name,
}

impl Operator for Rename {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        if self.from != self.to && rec.get(&self.from).is_some() {
            rec.remove(&self.to);
            if let Some(slot) = rec.fields.iter_mut().find(|(n, _)| *n == self.from) {
                slot.0 = self.to.clone();
            }
        }
        Ok(())
    }
}
