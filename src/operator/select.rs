//! `select`: keep exactly these fields, in this order.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{same_name, Name, Record, Value};

/// Keep exactly these fields, in this order (missing ones become null).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub fields: Vec<String>,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(Select {
            fields: super::names(&self.fields),
        })
    }

    /// Selects only the needed fields among its own (in its order, a
    /// missing one still set to null): what else it would keep is never
    /// read, and what it drops stays dropped.
    fn build_pruned(&self, needed: &[String]) -> Option<Arc<dyn Operator>> {
        Some(
            Spec {
                fields: self.fields.iter().filter(|f| needed.contains(f)).cloned().collect(),
            }
            .build(),
        )
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        super::reads_of("fields", &self.fields)
    }

    fn check(&self, c: &mut Check<'_>) {
        self.fields.iter().for_each(|f| c.need(f, "fields"));
        *c.fields = Some(self.fields.clone());
    }

    fn raw_needs(&self, n: &mut Vec<String>) {
        n.retain(|x| self.fields.contains(x));
    }
}

#[derive(Debug)]
struct Select {
    fields: Vec<Name>,
}

impl Operator for Select {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        // In place, moving the record's own (name, value) pairs: cloning a
        // name is an atomic increment on a counter every parsing thread
        // shares, and a fresh Vec per record is an allocation.
        let fields = &mut rec.fields;
        for (i, f) in self.fields.iter().enumerate() {
            match fields[i..].iter().position(|(n, _)| same_name(n, f)) {
                Some(0) => {}
                Some(at) => fields.swap(i, i + at),
                None => fields.insert(i.min(fields.len()), (f.clone(), Value::Null)),
            }
        }
        fields.truncate(self.fields.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::rec;

    #[test]
    fn select_reorders_and_fills_missing_with_null() {
        let mut r = rec(r#"{"b":1,"a":2}"#);
        Spec {
            fields: vec!["a".into(), "c".into(), "b".into()],
        }
        .build()
        .apply(&mut r)
        .unwrap();
        assert_eq!(r.to_json(), r#"{"a":2,"c":null,"b":1}"#);
    }
}
