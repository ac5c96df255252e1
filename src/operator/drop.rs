//! `drop`: remove fields.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{Name, Record};

/// Remove fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub fields: Vec<String>,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(Drop {
            fields: super::names(&self.fields),
        })
    }

    // `reads` stays empty: dropping a field does not need its value.
    fn check(&self, c: &mut Check<'_>) {
        self.fields.iter().for_each(|f| c.need(f, "fields"));
        if let Some(k) = c.fields.as_mut() {
            k.retain(|x| !self.fields.contains(x));
        }
    }

    fn raw_needs(&self, n: &mut Vec<String>) {
        n.retain(|x| !self.fields.contains(x));
    }
}

#[derive(Debug)]
struct Drop {
    fields: Vec<Name>,
}

impl Operator for Drop {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        rec.fields.retain(|(n, _)| !self.fields.contains(n));
        Ok(())
    }
}
