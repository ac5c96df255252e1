//! What the user writes: the topology as plain data.
//!
//! These structs are the typed builder API as well as the target of the TOML
//! file (`dsl::parse`). They hold no runtime state and do no validation;
//! `TopologySpec::build` (in `topology.rs`) turns them into a runnable
//! `Topology` and reports every problem at once. Every struct denies unknown
//! fields so that a misspelt key is an error, not a silently ignored line.

use serde::{Deserialize, Serialize};

// Operator specs live with their operators (`operator/`); the DSL names them here.
pub use crate::aggregate::Function;
pub use crate::operator::bucket::RangeSpec;
pub use crate::operator::cast::{CastType, OnError};
pub use crate::operator::null_if::FieldSet;
pub use crate::operator::OpSpec;

/// A whole topology: sources → per-source operators → join → post operators →
/// aggregates (state stores) → named queries.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopologySpec {
    /// Name of the topology (shown in logs and `validate`).
    pub name: String,
    /// Queries whose rows make up the batch answer printed by `replay` and
    /// `answers`, in this order. Empty means every query.
    #[serde(default)]
    pub answers: Vec<String>,
    /// Input streams (`[[source]]`).
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceSpec>,
    /// The join of the sources on their key (`[join]`).
    pub join: Option<JoinSpec>,
    /// State stores fed by the joined records (`[[aggregate]]`).
    #[serde(default, rename = "aggregate")]
    pub aggregates: Vec<AggregateSpec>,
    /// Named read paths over the aggregates (`[[query]]`).
    #[serde(default, rename = "query")]
    pub queries: Vec<QuerySpec>,
}

/// One input stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Name used by the join's `inputs`.
    pub name: String,
    /// Topic name; `${prefix}` is replaced by the topic prefix given on the
    /// command line (or found in the archive).
    pub topic: String,
    /// Record format; only `json` (one JSON object per record) for now.
    #[serde(default)]
    pub format: Format,
    /// Field (after the operators) that keys the record in the join.
    pub key: String,
    /// Raw fields the records carry, if known. Optional: lets `validate`
    /// check field names before the first `select`.
    #[serde(default)]
    pub schema: Option<Vec<String>>,
    /// Per-record operators applied in order (`[[source.op]]`).
    #[serde(default, rename = "op")]
    pub ops: Vec<OpSpec>,
}

/// Record format of a source.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Json,
}

/// The join of N sources on a key, with table semantics: each input is a
/// table keyed by the key; a later record replaces the earlier one; a joined
/// row exists when every input has a row for the key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JoinSpec {
    /// Name of the joined stream (and of its state store).
    pub name: String,
    /// Name of the key field in the joined row.
    pub key: String,
    /// Source names, in the order their fields appear in the joined row.
    pub inputs: Vec<String>,
    /// Operators applied to each joined row (derived fields).
    #[serde(default, rename = "op")]
    pub ops: Vec<OpSpec>,
}

/// A tumbling event-time window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Timestamp field giving the event time.
    pub field: String,
    /// Window length, e.g. `"1h"`, `"1d"`, `"30m"`, `"90s"`, `"1w"`.
    pub size: String,
    /// How long windows are kept behind the newest event time, e.g. `"30d"`.
    pub retention: String,
}

/// A state store fed by the joined rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AggregateSpec {
    pub name: String,
    /// What the store is for (shown by `validate` and the HTTP API).
    #[serde(default)]
    pub description: String,
    pub function: Function,
    /// Group-by fields. A row with a null in any used field is left out.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// `distinct_count`: the fields whose distinct tuples are counted.
    #[serde(default)]
    pub distinct: Vec<String>,
    /// `max_by`: the numeric field to maximise.
    pub by: Option<String>,
    /// `max_by`: the fields reported with the maximum (tie-break order).
    #[serde(default)]
    pub item: Vec<String>,
    /// `quantiles`: the numeric field.
    pub value: Option<String>,
    /// `quantiles`: t-digest compression (default 200; higher = more exact).
    pub compression: Option<f64>,
    /// Tumbling window; absent = all-time.
    pub window: Option<WindowSpec>,
}

impl AggregateSpec {
    /// An all-time aggregate with no function arguments set; fill in
    /// `distinct`, `by`/`item`, `value` or `window` with struct update syntax.
    pub fn new(name: &str, function: Function, group_by: &[&str]) -> Self {
        AggregateSpec {
            name: name.into(),
            description: String::new(),
            function,
            group_by: group_by.iter().map(|s| s.to_string()).collect(),
            distinct: vec![],
            by: None,
            item: vec![],
            value: None,
            compression: None,
            window: None,
        }
    }
}

/// Query shape.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// Every row of the aggregate.
    #[default]
    Rows,
    /// One row per group of `per`: the largest value (count, or `by` of a
    /// max_by), ties to the smallest remaining key columns.
    Top,
}

/// Keep rows whose `field` lies in `[min, max]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RangeFilter {
    pub field: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A named read path over one aggregate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Aggregate to read.
    pub from: String,
    #[serde(default)]
    pub kind: QueryKind,
    /// `top`: group columns to take the top row per (empty = one row).
    #[serde(default)]
    pub per: Vec<String>,
    /// Optional range filter on a key column.
    pub range: Option<RangeFilter>,
    /// `quantiles`: the quantile to report (default 0.5).
    pub q: Option<f64>,
    /// Output columns: `"col"` or `"col as name"`, in output order.
    pub columns: Vec<String>,
}

impl QuerySpec {
    /// A `rows` query of every row of `from`, with the given columns.
    pub fn new(name: &str, from: &str, columns: &[&str]) -> Self {
        QuerySpec {
            name: name.into(),
            description: String::new(),
            from: from.into(),
            kind: QueryKind::Rows,
            per: vec![],
            range: None,
            q: None,
            columns: columns.iter().map(|s| s.to_string()).collect(),
        }
    }
}
