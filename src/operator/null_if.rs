//! `null_if`: replace placeholder strings with null.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{intern, same_name, Name, Record, Value};

/// Which fields an operator applies to: `"*"` (every field) or a list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum FieldSet {
    /// `"*"`: every field of the record.
    All(String),
    List(Vec<String>),
}

/// Replace any of `values` in `fields` with null (`fields = "*"`: all).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub fields: FieldSet,
    pub values: Vec<String>,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(NullIf {
            fields: match &self.fields {
                FieldSet::All(_) => None,
                FieldSet::List(l) => Some(l.iter().map(|s| intern(s)).collect()),
            },
            values: self.values.clone(),
        })
    }

    /// Never rejects. A list of fields shrinks to the needed ones (left out
    /// if none is); `"*"` stays as it is (it compares no names).
    fn build_pruned(&self, needed: &[String]) -> Option<Arc<dyn Operator>> {
        match &self.fields {
            FieldSet::All(_) => Some(self.build()),
            FieldSet::List(l) => {
                let kept: Vec<String> = l.iter().filter(|f| needed.contains(f)).cloned().collect();
                (!kept.is_empty()).then(|| {
                    Spec {
                        fields: FieldSet::List(kept),
                        values: self.values.clone(),
                    }
                    .build()
                })
            }
        }
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        match &self.fields {
            FieldSet::List(l) => l.iter().map(|f| ("fields", f.as_str())).collect(),
            FieldSet::All(_) => Vec::new(),
        }
    }

    fn check(&self, c: &mut Check<'_>) {
        match &self.fields {
            FieldSet::All(s) if s != "*" => c.error(
                format!("`fields = \"{s}\"` is not valid"),
                Some("use \"*\" for every field or a list"),
            ),
            FieldSet::List(l) => l.iter().for_each(|f| c.need(f, "fields")),
            _ => {}
        }
        if self.values.is_empty() {
            c.error("`values` is empty", Some("list the placeholder strings to null"));
        }
    }
}

#[derive(Debug)]
struct NullIf {
    fields: Option<Vec<Name>>,
    values: Vec<String>,
}

impl Operator for NullIf {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        for (name, v) in rec.fields.iter_mut() {
            if self
                .fields
                .as_ref()
                .is_some_and(|f| !f.iter().any(|n| same_name(n, name)))
            {
                continue;
            }
            if let Value::Str(s) = v {
                if self.values.iter().any(|x| x == s) {
                    *v = Value::Null;
                }
            }
        }
        Ok(())
    }
}
