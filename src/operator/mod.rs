//! Per-record operators: the cleaning vocabulary of the DSL.
//!
//! One file per operator (or small family), each holding what the user
//! writes (its spec struct, `deny_unknown_fields`), how it is checked
//! against the known field list, which fields it reads and writes, and the
//! compiled [`Operator`] that runs. [`OpSpec`] is the registry: the serde
//! enum whose tag is `op = "<name>"`, and the one `match` in
//! [`OpSpec::spec`] that reaches each operator's [`OperatorSpec`].
//!
//! Invariants: operators are pure functions of the record (sources run them
//! on many threads); an operator either edits the record in place or
//! rejects it with a reason (the record then becomes a dead letter); only
//! operators that can reject say so ([`OperatorSpec::raw_needs`] keeps
//! their fields), so pruning the parse never changes which records are
//! dead-lettered.
//!
//! Adding an operator: a new file here with a spec struct implementing
//! [`OperatorSpec`], and one variant plus one `match` arm in [`OpSpec`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::dsl::SpecError;
use crate::model::value::Record;

pub mod array;
pub mod bucket;
pub mod cast;
pub mod coalesce;
pub mod concat;
pub mod drop;
pub mod null_if;
pub mod parse_count;
pub mod parse_timestamp;
pub mod rename;
pub mod require;
pub mod select;
pub mod strip_prefix;
pub mod text;
pub mod year;

/// What runs: edit the record, or reject it with a reason.
///
/// Invariant: which names `apply` leaves in a record, and in what order,
/// depends on the names it is given alone, not on the values (a field an
/// operator writes, it writes on every record, null if it has nothing).
/// `JoinedRow::fill` relies on it: it keeps the fields the post-join
/// operators added to the last row, nulled, instead of removing them.
pub trait Operator: Send + Sync + std::fmt::Debug {
    fn apply(&self, rec: &mut Record) -> Result<(), String>;
}

/// What an operator's spec says about itself. One required method
/// ([`OperatorSpec::build`]); the defaults fit an operator that reads
/// [`OperatorSpec::reads`] and writes [`OperatorSpec::writes`].
pub trait OperatorSpec {
    /// Compiles the spec into what runs (after `check` found no error).
    fn build(&self) -> Arc<dyn Operator>;

    /// Fields the operator reads, each with the TOML key naming it (error
    /// paths point at that key). Post-join, these are kept in the join.
    fn reads(&self) -> Vec<(&'static str, &str)> {
        Vec::new()
    }

    /// Fields the operator writes from what it reads (added if new).
    fn writes(&self) -> Vec<&str> {
        Vec::new()
    }

    /// Checks the arguments and the fields against the known field list,
    /// and updates the list to what the operator leaves.
    fn check(&self, c: &mut Check<'_>) {
        for (key, f) in self.reads() {
            c.need(f, key);
        }
        for f in self.writes() {
            c.add(f);
        }
    }

    /// The raw field `field` is a pure copy of, if this operator renames
    /// one into it (how ingest finds a raw record's key before cleaning).
    fn renamed_from(&self, _field: &str) -> Option<&str> {
        None
    }

    /// What runs in the pruned chain of [`prepare_chain`], where only the
    /// fields in `needed` (those read after this operator, including every
    /// field a later rejecting operator looks at) matter. `None`: leave the
    /// operator out, which is right only for one that never rejects and
    /// changes no field in `needed`. Default: the operator as it is.
    fn build_pruned(&self, _needed: &[String]) -> Option<Arc<dyn Operator>> {
        Some(self.build())
    }

    /// Backward pass of parse pruning: turns "fields needed after me" into
    /// "fields needed before me". Default: a written field that is needed
    /// is replaced by the fields it is computed from.
    fn raw_needs(&self, needed: &mut Vec<String>) {
        let writes = self.writes();
        if writes.iter().any(|w| needed.iter().any(|n| n == w)) {
            needed.retain(|n| !writes.contains(&n.as_str()));
            for (_, f) in self.reads() {
                add_needed(needed, f);
            }
        }
    }
}

/// `reads()` of a list argument: each field with its TOML key.
pub fn reads_of<'a>(key: &'static str, fields: &'a [String]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|f| (key, f.as_str())).collect()
}

/// Interned field names of a list argument.
pub fn names(fields: &[String]) -> Vec<crate::model::value::Name> {
    fields.iter().map(|s| crate::model::value::intern(s)).collect()
}

/// Adds a field to a "needed" list once.
pub fn add_needed(needed: &mut Vec<String>, f: &str) {
    if !needed.iter().any(|n| n == f) {
        needed.push(f.to_string());
    }
}

/// The known field list at one point of an operator chain (`None`: not
/// known) and where errors go; what [`OperatorSpec::check`] works on.
pub struct Check<'a> {
    pub fields: &'a mut Option<Vec<String>>,
    /// Path of the operator (`source[2].op[1]`).
    pub path: &'a str,
    pub errors: &'a mut Vec<SpecError>,
}

impl Check<'_> {
    /// Reports `f` if the list is known and lacks it (`key`: the TOML key).
    pub fn need(&mut self, f: &str, key: &str) {
        if let Some(known) = self.fields.as_ref() {
            if !known.iter().any(|k| k == f) {
                let cands: Vec<&str> = known.iter().map(String::as_str).collect();
                let hint = crate::dsl::did_you_mean(f, &cands, "fields here");
                self.errors.push(
                    SpecError::new(
                        format!("{}.{key}", self.path),
                        format!("field `{f}` does not exist at this point"),
                    )
                    .hint(hint),
                );
            }
        }
    }

    /// Adds a field the operator produces.
    pub fn add(&mut self, f: &str) {
        if let Some(k) = self.fields.as_mut() {
            if !k.iter().any(|x| x == f) {
                k.push(f.to_string());
            }
        }
    }

    /// Reports an argument error of this operator.
    pub fn error(&mut self, message: impl Into<String>, hint: Option<&str>) {
        let mut e = SpecError::new(self.path, message);
        if let Some(h) = hint {
            e = e.hint(h);
        }
        self.errors.push(e);
    }
}

/// A per-record operator as written. `op = "<name>"` selects the kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpSpec {
    NullIf(null_if::Spec),
    ParseCount(parse_count::Spec),
    StripPrefix(strip_prefix::Spec),
    Cast(cast::Spec),
    ParseTimestamp(parse_timestamp::Spec),
    Rename(rename::Spec),
    Drop(drop::Spec),
    Select(select::Spec),
    Concat(concat::Spec),
    Array(array::Spec),
    Year(year::Spec),
    Bucket(bucket::Spec),
    Require(require::Spec),
    Lowercase(text::Lowercase),
    Trim(text::Trim),
    Coalesce(coalesce::Spec),
}

impl OpSpec {
    /// The registry's one `match`.
    pub fn spec(&self) -> &dyn OperatorSpec {
        match self {
            OpSpec::NullIf(o) => o,
            OpSpec::ParseCount(o) => o,
            OpSpec::StripPrefix(o) => o,
            OpSpec::Cast(o) => o,
            OpSpec::ParseTimestamp(o) => o,
            OpSpec::Rename(o) => o,
            OpSpec::Drop(o) => o,
            OpSpec::Select(o) => o,
            OpSpec::Concat(o) => o,
            OpSpec::Array(o) => o,
            OpSpec::Year(o) => o,
            OpSpec::Bucket(o) => o,
            OpSpec::Require(o) => o,
            OpSpec::Lowercase(o) => o,
            OpSpec::Trim(o) => o,
            OpSpec::Coalesce(o) => o,
        }
    }

    pub fn build(&self) -> Arc<dyn Operator> {
        self.spec().build()
    }
}

/// The raw fields a source must parse so that its operators produce the
/// same values for `needed` (and make the same accept/reject decision): the
/// operators' backward passes, last to first.
pub fn raw_needs(ops: &[OpSpec], needed: &[String]) -> Vec<String> {
    prepare_chain(ops, needed).1
}

/// The raw fields that may hold `key` before the operators run: `key`
/// itself, then every field renamed into it, last operator first.
pub fn raw_key_fields(ops: &[OpSpec], key: &str) -> Vec<String> {
    let mut out = vec![key.to_string()];
    for op in ops.iter().rev() {
        let more: Vec<String> = out
            .iter()
            .filter_map(|f| op.spec().renamed_from(f).map(str::to_string))
            .collect();
        for m in more {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    out
}

/// The operator chain a source runs on a record parsed with only its raw
/// needs, and those raw needs: the backward pass of [`raw_needs`], asking
/// each operator on the way what it must still do for the fields needed
/// after it ([`OperatorSpec::build_pruned`]). A pin's `select` of eleven
/// columns, three of which the join keeps, was inserting eight nulls into
/// every record that nobody read. Same projected values and the same
/// accept/reject decisions as the whole chain (tested by
/// `engine::prepare::tests`).
pub fn prepare_chain(ops: &[OpSpec], needed: &[String]) -> (Vec<Arc<dyn Operator>>, Vec<String>) {
    let mut n: Vec<String> = needed.to_vec();
    let mut chain = Vec::with_capacity(ops.len());
    for op in ops.iter().rev() {
        chain.extend(op.spec().build_pruned(&n));
        op.spec().raw_needs(&mut n);
    }
    chain.reverse();
    (chain, n)
}

/// Whether any of `fields` is in `needed` (for [`OperatorSpec::build_pruned`]).
pub fn any_needed<'a>(needed: &[String], mut fields: impl Iterator<Item = &'a str>) -> bool {
    fields.any(|f| needed.iter().any(|n| n == f))
}

/// Checks an operator against the record's field list (if known) and
/// updates the list to what the operator produces. `None` = unknown fields.
pub fn check(op: &OpSpec, fields: &mut Option<Vec<String>>, path: &str, errors: &mut Vec<SpecError>) {
    op.spec().check(&mut Check { fields, path, errors });
}

/// A test record from JSON.
#[cfg(test)]
pub(crate) fn rec(json: &str) -> Record {
    Record::from_json(json.as_bytes()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_needs_walks_back_through_renames_and_derivations() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let ops = vec![
            OpSpec::NullIf(null_if::Spec {
                fields: null_if::FieldSet::All("*".into()),
                values: vec![String::new()],
            }),
            OpSpec::Rename(rename::Spec {
                from: "index".into(),
                to: "ind".into(),
            }),
            OpSpec::Cast(cast::Spec {
                field: "ind".into(),
                to: cast::CastType::Int,
                on_error: cast::OnError::Reject,
            }),
            OpSpec::Concat(concat::Spec {
                fields: s(&["a", "b"]),
                separator: " ".into(),
                to: "ab".into(),
            }),
            OpSpec::Require(require::Spec { fields: s(&["must"]) }),
            OpSpec::Select(select::Spec {
                fields: s(&["ind", "ab", "x", "unused"]),
            }),
        ];
        let mut got = raw_needs(&ops, &s(&["ind", "ab", "x"]));
        got.sort();
        assert_eq!(got, ["a", "b", "ind", "index", "must", "x"]);
    }

    #[test]
    fn check_points_at_misspelt_fields() {
        let mut fields = Some(vec!["first_name".to_string(), "last_name".to_string()]);
        let mut errors = Vec::new();
        let op = OpSpec::Concat(concat::Spec {
            fields: vec!["first_nam".into(), "last_name".into()],
            separator: " ".into(),
            to: "user_name".into(),
        });
        check(&op, &mut fields, "source[2].op[1]", &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].hint.as_deref(), Some("did you mean `first_name`?"));
        assert!(fields.unwrap().contains(&"user_name".to_string()));
    }

    /// Every operator kind parses from the DSL's TOML form.
    #[test]
    fn every_registered_operator_parses_from_toml() {
        let cases = [
            r#"op = "null_if"
fields = "*"
values = [""]"#,
            r#"op = "parse_count"
field = "f""#,
            r#"op = "strip_prefix"
field = "f"
prefix = "x""#,
            r#"op = "cast"
field = "f"
to = "int""#,
            r#"op = "parse_timestamp"
field = "f""#,
            r#"op = "rename"
from = "a"
to = "b""#,
            r#"op = "drop"
fields = ["a"]"#,
            r#"op = "select"
fields = ["a"]"#,
            r#"op = "concat"
fields = ["a"]
to = "b""#,
            r#"op = "array"
fields = ["a"]
to = "b""#,
            r#"op = "year"
field = "a"
to = "b""#,
            r#"op = "bucket"
field = "a"
to = "b"
ranges = [{ min = 1, label = "x" }]"#,
            r#"op = "require"
fields = ["a"]"#,
            r#"op = "lowercase"
fields = ["a"]"#,
            r#"op = "trim"
fields = ["a"]"#,
            r#"op = "coalesce"
fields = ["a", "b"]
to = "c""#,
        ];
        for c in cases {
            let parsed: Result<OpSpec, _> = toml::from_str(c);
            assert!(parsed.is_ok(), "{c}: {parsed:?}");
        }
        let bad: Result<OpSpec, _> = toml::from_str("op = \"trim\"\nfields = [\"a\"]\nfeild = 1");
        assert!(bad.is_err(), "unknown keys are refused");
    }
}
