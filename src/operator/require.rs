//! `require`: dead-letter records that lack a field.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{add_needed, Operator, OperatorSpec};
use crate::model::value::{Name, Record, Value};

/// Dead-letter the record if any field is missing or null.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub fields: Vec<String>,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(Require {
            fields: super::names(&self.fields),
        })
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        super::reads_of("fields", &self.fields)
    }

    /// It decides about the record: its fields are always parsed.
    fn raw_needs(&self, needed: &mut Vec<String>) {
        self.fields.iter().for_each(|f| add_needed(needed, f));
    }
}

#[derive(Debug)]
struct Require {
    fields: Vec<Name>,
}

impl Operator for Require {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        for f in &self.fields {
            match rec.get(f) {
                None => return Err(format!("missing field `{f}`")),
                Some(Value::Null) => return Err(format!("field `{f}` is null or invalid")),
                Some(_) => {}
            }
        }
        Ok(())
    }
}
