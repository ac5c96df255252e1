//! `null_if`: replace placeholder strings with null.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{intern, Hint, Name, Record, Value};

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
            hints: match &self.fields {
                FieldSet::All(_) => Vec::new(),
                FieldSet::List(l) => l.iter().map(|_| Hint::default()).collect(),
            },
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
    /// One per listed field.
    hints: Vec<Hint>,
}

impl NullIf {
    fn null_if_listed(&self, v: &mut Value) {
        if let Value::Str(s) = v {
            if self.values.iter().any(|x| x == s) {
                *v = Value::Null;
            }
        }
    }
}

impl Operator for NullIf {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        match &self.fields {
            None => {
                for (_, v) in rec.fields.iter_mut() {
                    self.null_if_listed(v);
                }
            }
            // Each listed field looked up (a record's names are unique),
            // instead of every field of the record checked against the
            // list: six of the pin source's operators list one field each.
            Some(names) => {
                for (name, hint) in names.iter().zip(&self.hints) {
                    if let Some(v) = rec.get_mut_hinted(name, hint) {
                        self.null_if_listed(v);
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: &[(&str, &str)]) -> Record {
        Record {
            fields: fields
                .iter()
                .map(|(n, v)| (intern(n), Value::Str(v.to_string())))
                .collect(),
        }
    }

    /// Listed fields are nulled on a match wherever they sit (the layout
    /// changes from record to record, so the hints miss and find again),
    /// unlisted ones never; `*` checks every field.
    #[test]
    fn listed_fields_are_nulled_in_any_layout_and_only_they() {
        let listed = NullIf {
            fields: Some(vec![intern("title"), intern("poster_name")]),
            values: vec!["x".into(), "".into()],
            hints: vec![Hint::default(), Hint::default()],
        };
        let layouts: [&[(&str, &str)]; 3] = [
            &[("title", "x"), ("poster_name", "ok"), ("other", "x")],
            &[("other", ""), ("poster_name", ""), ("title", "keep")],
            &[("poster_name", "x")],
        ];
        for fields in layouts.iter().cycle().take(9) {
            let mut r = rec(fields);
            listed.apply(&mut r).unwrap();
            for ((name, before), (_, after)) in fields.iter().zip(&r.fields) {
                let hit = (*name == "title" || *name == "poster_name") && (*before == "x" || before.is_empty());
                assert_eq!(after.is_null(), hit, "{name}={before:?} in {fields:?}");
            }
        }
        let all = NullIf {
            fields: None,
            values: vec!["".into()],
            hints: Vec::new(),
        };
        let mut r = rec(&[("a", ""), ("b", "y"), ("c", "")]);
        all.apply(&mut r).unwrap();
        let nulls: Vec<bool> = r.fields.iter().map(|(_, v)| v.is_null()).collect();
        assert_eq!(nulls, [true, false, true]);
    }
}
