//! An aggregate's table: its name, its key layout and how its values merge.
//!
//! `agg.<aggregate name>`: key = `[window start (Ts)]` + group_by values +
//! the function's key fields (`distinct` values | `item` values + `by`),
//! tuple-encoded (`value::encode_key`), so an iterator yields groups in key
//! order and windows in time order. Value: an i64 LE multiplicity combined
//! by [`add_merge`] (multiset functions), or a quantile sketch combined by
//! the sketch merge ([`super::sketch::Sketch::merge_bytes`]).
//!
//! Retention: a windowed aggregate deletes, at each commit that moves its
//! watermark, every window that ended before `watermark − retention`
//! (`buffers.rs`).

use rocksdb::MergeOperands;

use super::StateKind;
use crate::model::value::{decode_key, Value};
use crate::state::table::{Merge, TableSpec};
use crate::topology::Aggregate;

pub fn agg_cf(name: &str) -> String {
    format!("agg.{name}")
}

/// The table an aggregate declares.
pub fn table(a: &Aggregate) -> TableSpec {
    TableSpec {
        name: agg_cf(&a.name),
        merge: match a.function.imp().state() {
            StateKind::Multiset => Merge::Add,
            StateKind::Sketch => Merge::Sketch {
                compression: a.compression,
            },
        },
        write_buffer: None,
        retention: a.window.as_ref().map(|(_, w)| w.retention),
    }
}

/// Splits a stored key into its window start (windowed aggregates) and the
/// tuple after it; `None` if the window does not decode.
pub fn split_window<'k>(a: &Aggregate, key: &'k [u8]) -> Option<(Option<i64>, &'k [u8])> {
    if a.window.is_none() {
        return Some((None, key));
    }
    let mut rest = key;
    match decode_key(&mut rest)? {
        Value::Ts(start) => Some((Some(start), rest)),
        _ => None,
    }
}

/// The `add` merge operator: i64 LE values sum (wrapping).
pub fn add_merge(_key: &[u8], existing: Option<&[u8]>, ops: &MergeOperands) -> Option<Vec<u8>> {
    let read = |b: &[u8]| b.try_into().map(i64::from_le_bytes).unwrap_or(0);
    let sum = ops
        .iter()
        .fold(existing.map_or(0, read), |acc, b| acc.wrapping_add(read(b)));
    Some(sum.to_le_bytes().to_vec())
}
