//! Aggregate functions and their in-memory delta buffers.
//!
//! One module per function ([`count`], [`distinct_count`], [`max_by`],
//! [`quantiles`]), each implementing [`AggregateFunction`]: which DSL
//! arguments it takes, what its store key holds, how its stored state
//! combines ([`StateKind`]), and how merged state becomes rows. [`Function`]
//! is the registry: the serde enum of `function = "<name>"` and the one
//! `match` in [`Function::imp`].
//!
//! State kinds (the table encodings, `state.rs`): a *multiset* stores i64
//! multiplicities of tuples combined by addition, so a retraction is exact
//! (count, distinct_count and max_by all use it); a *sketch* stores weighted
//! values combined by the sketch merge (quantiles). Writers only ever merge
//! deltas, so pre-aggregated partial states from any number of writers
//! (threads, instances) combine: this is the seam sharding will split on.
//!
//! Adding a function: a new file here implementing [`AggregateFunction`],
//! and one variant plus one `match` arm in [`Function`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dsl::AggregateSpec;
use crate::model::value::Value;
use crate::topology::Aggregate;

pub mod buffers;
pub mod count;
pub mod distinct_count;
pub mod groups;
pub mod keymap;
pub mod max_by;
pub mod quantiles;
pub mod sketch;
pub mod state;
pub mod tdigest;

/// How an aggregate's stored values combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// i64 multiplicity per tuple, added (`state::add_merge`).
    Multiset,
    /// A quantile sketch per group (`sketch::Sketch`), merged.
    Sketch,
}

/// An aggregate store after reading: windows in range merged, keyed by the
/// tuple after the window start, in key order.
pub enum Merged {
    Multiset(BTreeMap<Vec<u8>, i64>),
    Sketches(BTreeMap<Vec<u8>, sketch::Sketch>),
}

/// Where an argument error goes: (argument key, message).
pub type ArgError<'a> = &'a mut dyn FnMut(&str, &str);

/// What an aggregate function is. One required method ([`Self::rows`]);
/// the defaults fit a multiset function keyed by its group only.
pub trait AggregateFunction: Sync {
    /// The aggregate's rows (group_by values, then [`Self::columns`]) from
    /// its merged state, in key order; `qs` are the quantiles asked for
    /// (sketch functions). An `Err` names what did not decode.
    fn rows(&self, agg: &Aggregate, merged: Merged, qs: &[f64]) -> Result<Vec<Vec<Value>>, String>;

    /// The DSL arguments it takes besides `group_by` and `window`.
    fn args(&self) -> &'static [&'static str] {
        &[]
    }

    /// Checks its arguments (present, in range).
    fn check(&self, _a: &AggregateSpec, _err: ArgError<'_>) {}

    /// Fields appended to the group in the store key (`distinct`, `item`),
    /// and the measured field (`by`, `value`).
    fn key_fields(&self, _a: &AggregateSpec) -> (Vec<String>, Option<String>) {
        (Vec::new(), None)
    }

    /// Whether the measure is part of the key (max_by) rather than the value.
    fn measure_in_key(&self) -> bool {
        false
    }

    /// Columns after the group_by columns.
    fn columns(&self, _a: &AggregateSpec) -> Vec<String> {
        vec!["count".into()]
    }

    fn state(&self) -> StateKind {
        StateKind::Multiset
    }

    /// Whether queries may ask for a quantile (`q`).
    fn takes_quantile(&self) -> bool {
        false
    }
}

/// Aggregate function of a store (`function = "..."`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    /// Number of joined rows per group. Row columns: group_by…, `count`.
    Count,
    /// Number of distinct `distinct` tuples per group. Columns: group_by…, `count`.
    DistinctCount,
    /// The row with the largest `by` per group; ties go to the smallest
    /// `item` tuple. Columns: group_by…, item…, by.
    MaxBy,
    /// t-digest of `value` per group. Columns: group_by…, `quantile`
    /// (the query's `q`).
    Quantiles,
}

impl Function {
    /// The registry's one `match`.
    pub fn imp(self) -> &'static dyn AggregateFunction {
        match self {
            Function::Count => &count::Count,
            Function::DistinctCount => &distinct_count::DistinctCount,
            Function::MaxBy => &max_by::MaxBy,
            Function::Quantiles => &quantiles::Quantiles,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::Count => "count",
            Function::DistinctCount => "distinct_count",
            Function::MaxBy => "max_by",
            Function::Quantiles => "quantiles",
        }
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The arguments an aggregate spec sets, by DSL key.
pub fn args_set(a: &AggregateSpec) -> Vec<&'static str> {
    let mut set = Vec::new();
    if !a.distinct.is_empty() {
        set.push("distinct");
    }
    if a.by.is_some() {
        set.push("by");
    }
    if !a.item.is_empty() {
        set.push("item");
    }
    if a.value.is_some() {
        set.push("value");
    }
    if a.compression.is_some() {
        set.push("compression");
    }
    set
}

/// The multiset entries with a positive multiplicity, as decoded tuples.
pub(crate) fn live_tuples(
    agg: &Aggregate,
    merged: Merged,
) -> Result<impl Iterator<Item = Result<(Vec<Value>, i64), String>> + '_, String> {
    let Merged::Multiset(m) = merged else {
        return Err(format!("store {:?} holds sketches, not multiplicities", agg.name));
    };
    Ok(m.into_iter().filter(|(_, n)| *n > 0).map(move |(k, n)| {
        crate::model::value::decode_key_tuple(&k)
            .map(|t| (t, n))
            .ok_or_else(|| format!("key of {:?} does not decode", agg.name))
    }))
}
