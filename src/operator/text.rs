//! `lowercase` and `trim`: string normalisation in place.
//!
//! Both leave values that are not strings alone, so they can run over a
//! field that is sometimes a number.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{Name, Record, Value};

/// Lowercase the string values of `fields` (Unicode lowercase).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Lowercase {
    pub fields: Vec<String>,
}

/// Remove leading and trailing whitespace from the string values of `fields`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Trim {
    pub fields: Vec<String>,
}

fn check_fields(fields: &[String], c: &mut Check<'_>) {
    fields.iter().for_each(|f| c.need(f, "fields"));
    if fields.is_empty() {
        c.error("`fields` is empty", Some("list the string fields to normalise"));
    }
}

impl OperatorSpec for Lowercase {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(EachString {
            fields: super::names(&self.fields),
            f: |s| {
                if s.chars().any(char::is_uppercase) {
                    *s = s.to_lowercase();
                }
            },
        })
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        super::reads_of("fields", &self.fields)
    }

    fn check(&self, c: &mut Check<'_>) {
        check_fields(&self.fields, c);
    }
}

impl OperatorSpec for Trim {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(EachString {
            fields: super::names(&self.fields),
            f: |s| {
                let t = s.trim();
                if t.len() != s.len() {
                    *s = t.to_string();
                }
            },
        })
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        super::reads_of("fields", &self.fields)
    }

    fn check(&self, c: &mut Check<'_>) {
        check_fields(&self.fields, c);
    }
}

/// Applies `f` to every string value among `fields`.
struct EachString {
    fields: Vec<Name>,
    f: fn(&mut String),
}

impl std::fmt::Debug for EachString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EachString").field("fields", &self.fields).finish()
    }
}

impl Operator for EachString {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        for (name, v) in rec.fields.iter_mut() {
            if let Value::Str(s) = v {
                if self.fields.contains(name) {
                    (self.f)(s);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::{check, rec, OpSpec};

    #[test]
    fn lowercase_and_trim_touch_only_their_string_fields() {
        let mut r = rec(r#"{"c":"  Art & Design ","n":"  Keep ","x":12,"t":" MiXeD "}"#);
        let fields = vec!["c".to_string(), "x".to_string(), "t".to_string()];
        Trim { fields: fields.clone() }.build().apply(&mut r).unwrap();
        Lowercase { fields }.build().apply(&mut r).unwrap();
        assert_eq!(r.to_json(), r#"{"c":"art & design","n":"  Keep ","x":12,"t":"mixed"}"#);
        // Unicode: lowercase is not ASCII-only.
        let mut r = rec(r#"{"c":"ÉCOLE"}"#);
        Lowercase {
            fields: vec!["c".into()],
        }
        .build()
        .apply(&mut r)
        .unwrap();
        assert_eq!(r.get("c"), Some(&Value::Str("école".into())));
    }

    #[test]
    fn text_ops_check_their_fields() {
        let mut fields = Some(vec!["category".to_string()]);
        let mut errors = Vec::new();
        let op = OpSpec::Lowercase(Lowercase {
            fields: vec!["categroy".into()],
        });
        check(&op, &mut fields, "source[0].op[3]", &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "source[0].op[3].fields");
        assert_eq!(errors[0].hint.as_deref(), Some("did you mean `category`?"));
        let op = OpSpec::Trim(Trim { fields: vec![] });
        errors.clear();
        check(&op, &mut fields, "source[0].op[4]", &mut errors);
        assert!(errors[0].message.contains("empty"), "{:?}", errors);
    }
}
