//! `concat`: join several fields into one string.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{intern, Name, Record, Value};

/// `to = fields[0] + separator + fields[1] + ...`; null if any is null.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub fields: Vec<String>,
    #[serde(default)]
    pub separator: String,
    pub to: String,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(Concat {
            fields: super::names(&self.fields),
            separator: self.separator.clone(),
            to: intern(&self.to),
        })
    }

    /// Never rejects: left out when what it writes is not needed.
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
struct Concat {
    fields: Vec<Name>,
    separator: String,
    to: Name,
}

impl Operator for Concat {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        // Sized for the usual parts at once (growing it was two allocations).
        let mut out = String::with_capacity(32);
        for (i, f) in self.fields.iter().enumerate() {
            match rec.get(f) {
                None | Some(Value::Null) => {
                    rec.set_name(&self.to, Value::Null);
                    return Ok(());
                }
                Some(v) => {
                    if i > 0 {
                        out.push_str(&self.separator);
                    }
                    // Written in place: `to_string` was an allocation per
                    // part per record.
                    match v {
                        Value::Str(s) => out.push_str(s),
                        v => {
                            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{v}"));
                        }
                    }
                }
            }
        }
        rec.set_name(&self.to, Value::Str(out));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::rec;

    /// One built operator (its hints shared) over records whose fields sit
    /// at other places each time, with the output already present or not,
    /// and with a null or missing part: the same answers as a fresh build.
    #[test]
    fn concat_answers_alike_in_any_layout() {
        let spec = Spec {
            fields: vec!["first".into(), "last".into()],
            separator: " ".into(),
            to: "name".into(),
        };
        let op = spec.build();
        let cases = [
            (
                r#"{"first":"Ada","last":"Lovelace"}"#,
                r#"{"first":"Ada","last":"Lovelace","name":"Ada Lovelace"}"#,
            ),
            (
                r#"{"last":"Hopper","x":1,"first":"Grace"}"#,
                r#"{"last":"Hopper","x":1,"first":"Grace","name":"Grace Hopper"}"#,
            ),
            (
                r#"{"name":"old","first":"A","last":2}"#,
                r#"{"name":"A 2","first":"A","last":2}"#,
            ),
            (
                r#"{"first":"A","last":null,"name":"old"}"#,
                r#"{"first":"A","last":null,"name":null}"#,
            ),
            (r#"{"first":"A"}"#, r#"{"first":"A","name":null}"#),
            (
                r#"{"x":0,"first":"Ada","last":"Lovelace"}"#,
                r#"{"x":0,"first":"Ada","last":"Lovelace","name":"Ada Lovelace"}"#,
            ),
        ];
        for (input, want) in cases {
            for op in [&op, &spec.build()] {
                let mut r = rec(input);
                op.apply(&mut r).unwrap();
                assert_eq!(r.to_json(), want, "{input}");
            }
        }
    }
}
