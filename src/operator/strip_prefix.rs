//! `strip_prefix`: remove a fixed prefix from a string field.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Operator, OperatorSpec};
use crate::model::value::{intern, Hint, Name, Record, Value};

/// Remove `prefix` from the start of a string field (if present).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub field: String,
    pub prefix: String,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(StripPrefix {
            field: intern(&self.field),
            prefix: self.prefix.clone(),
            hint: Hint::default(),
        })
    }

    /// Never rejects: left out when its field is not needed.
    fn build_pruned(&self, needed: &[String]) -> Option<Arc<dyn Operator>> {
        super::any_needed(needed, [self.field.as_str()].into_iter()).then(|| self.build())
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        vec![("field", &self.field)]
    }
}

#[derive(Debug)]
struct StripPrefix {
    field: Name,
    prefix: String,
    hint: Hint,
}

impl Operator for StripPrefix {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        if let Some(Value::Str(s)) = rec.get_mut_hinted(&self.field, &self.hint) {
            if s.starts_with(self.prefix.as_str()) {
                s.drain(..self.prefix.len());
            }
        }
        Ok(())
    }
}
