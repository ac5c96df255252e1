//! `array`: collect fields into an array.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{intern, Name, Record, Value};

/// `to = [fields...]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub fields: Vec<String>,
    pub to: String,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(Array {
            fields: super::names(&self.fields),
            to: intern(&self.to),
        })
    }

    /// Never rejects: left out when its array is not needed (a geo record
    /// built an array of two nulls for nobody).
    fn build_pruned(&self, needed: &[String]) -> Option<Arc<dyn Operator>> {
        super::any_needed(needed, [self.to.as_str()].into_iter()).then(|| self.build())
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        super::reads_of("fields", &self.fields)
    }

    fn writes(&self) -> Vec<&str> {
        vec![&self.to]
    }

    fn check(&self, c: &mut Check<'_>) {
        self.fields.iter().for_each(|f| c.need(f, "fields"));
        if self.fields.is_empty() {
            c.error("`fields` is empty", None);
        }
        c.add(&self.to);
    }
}

#[derive(Debug)]
struct Array {
    fields: Vec<Name>,
    to: Name,
}

impl Operator for Array {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        let items = self
            .fields
            .iter()
            .map(|f| rec.get(f).cloned().unwrap_or(Value::Null))
            .collect();
        rec.set_name(&self.to, Value::Array(items));
        Ok(())
    }
}
