//! `coalesce`: the first non-null of several fields.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{intern, Name, Record, Value};

/// `to = the first of fields that is present and not null` (else null).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub fields: Vec<String>,
    pub to: String,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(Coalesce {
            fields: super::names(&self.fields),
            to: intern(&self.to),
        })
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        super::reads_of("fields", &self.fields)
    }

    fn writes(&self) -> Vec<&str> {
        vec![&self.to]
    }

    fn check(&self, c: &mut Check<'_>) {
        self.fields.iter().for_each(|f| c.need(f, "fields"));
        if self.fields.len() < 2 {
            c.error(
                "`fields` needs at least two fields",
                Some("e.g. fields = [\"nickname\", \"first_name\"]"),
            );
        }
        c.add(&self.to);
    }
}

#[derive(Debug)]
struct Coalesce {
    fields: Vec<Name>,
    to: Name,
}

impl Operator for Coalesce {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        let first = self
            .fields
            .iter()
            .find_map(|f| rec.get(f).filter(|v| !v.is_null()).cloned())
            .unwrap_or(Value::Null);
        rec.set_name(&self.to, first);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::{raw_needs, rec, OpSpec};

    fn op() -> Spec {
        Spec {
            fields: vec!["nick".into(), "first".into(), "last".into()],
            to: "name".into(),
        }
    }

    #[test]
    fn coalesce_takes_the_first_present_non_null_value() {
        let cases = [
            (r#"{"nick":"ann","first":"Anne"}"#, Value::Str("ann".into())),
            (r#"{"nick":null,"first":"Anne"}"#, Value::Str("Anne".into())),
            (r#"{"last":7}"#, Value::Int(7)),
            (r#"{"nick":null}"#, Value::Null),
            (r#"{}"#, Value::Null),
        ];
        for (json, want) in cases {
            let mut r = rec(json);
            op().build().apply(&mut r).unwrap();
            assert_eq!(r.get("name"), Some(&want), "{json}");
        }
        // An existing `to` is overwritten, even with null.
        let mut r = rec(r#"{"name":"old"}"#);
        op().build().apply(&mut r).unwrap();
        assert_eq!(r.get("name"), Some(&Value::Null));
    }

    #[test]
    fn coalesce_needs_its_inputs_only_when_its_output_is_needed() {
        let ops = [OpSpec::Coalesce(op())];
        let mut got = raw_needs(&ops, &["name".into(), "x".into()]);
        got.sort();
        assert_eq!(got, ["first", "last", "nick", "x"]);
        assert_eq!(raw_needs(&ops, &["x".into()]), ["x"]);
    }
}
