//! Named queries over aggregate stores.
//!
//! A query reads one aggregate's column family from a snapshot, merges the
//! windows in the requested event-time range (multiplicities add, t-digests
//! merge), turns the stored tuples into the aggregate's rows, then applies the
//! query: range filter, `top` per group (largest value, ties to the smallest
//! key columns, which is the spec's "alphabetically smallest" rule) and the
//! output columns. Rows come out sorted by their key columns.
//!
//! The value column of every aggregate row is its last column (count,
//! quantile, or the `by` of a max_by), which is what `top` maximises.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::aggregate::sketch::Sketch;
use crate::aggregate::state::{agg_cf, split_window};
use crate::aggregate::{Merged, StateKind};
use crate::dsl::QueryKind;
use crate::model::value::{cmp_slices, Value};
use crate::state::store::{Store, StoreError};
use crate::topology::{Aggregate, Query, Topology};

/// An event-time range `[from, to)` in seconds; `None` bounds are open.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TimeRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// A result row: output columns in order.
pub type Row = Vec<(String, Value)>;

fn corrupt(store: &Store, what: String) -> StoreError {
    StoreError::Corrupt {
        path: store.path().into(),
        what,
    }
}

/// Reads an aggregate's entries, merging windows inside `range`.
fn read_merged(store: &Store, agg: &Aggregate, range: TimeRange) -> Result<Merged, StoreError> {
    let mut counts = BTreeMap::new();
    let mut digests: BTreeMap<Vec<u8>, Sketch> = BTreeMap::new();
    let sketches = agg.function.imp().state() == StateKind::Sketch;
    let mut bad = None;
    store.for_each(&agg_cf(&agg.name), |k, v| {
        let Some((start, rest)) = split_window(agg, k) else {
            bad = Some("window key does not decode".to_string());
            return false;
        };
        if let (Some(start), Some((_, w))) = (start, &agg.window) {
            // A window is in range when it overlaps [from, to).
            if range.from.is_some_and(|f| start + w.size <= f) {
                return true;
            }
            if range.to.is_some_and(|t| start >= t) {
                return false; // keys are in window order: nothing later matches
            }
        }
        if sketches {
            match Sketch::from_bytes(v) {
                Some(d) => {
                    let merged = match digests.remove(rest) {
                        Some(acc) => acc.merge(d, agg.compression),
                        None => d,
                    };
                    digests.insert(rest.to_vec(), merged);
                }
                None => bad = Some(format!("quantile sketch of {:?} does not decode", agg.name)),
            }
        } else {
            let n = v.try_into().map(i64::from_le_bytes).unwrap_or(0);
            *counts.entry(rest.to_vec()).or_insert(0) += n;
        }
        bad.is_none()
    })?;
    if let Some(what) = bad {
        return Err(corrupt(store, what));
    }
    Ok(if sketches {
        Merged::Sketches(digests)
    } else {
        Merged::Multiset(counts)
    })
}

/// The aggregate's rows (all columns), sorted by key columns.
pub fn aggregate_rows(store: &Store, agg: &Aggregate, range: TimeRange, q: f64) -> Result<Vec<Vec<Value>>, StoreError> {
    aggregate_rows_at(store, agg, range, &[q])
}

/// Like [`aggregate_rows`], with one value column per quantile in `qs`
/// (quantile aggregates; others ignore `qs`), all from one read. The
/// aggregate's function turns its merged state into rows.
pub fn aggregate_rows_at(
    store: &Store,
    agg: &Aggregate,
    range: TimeRange,
    qs: &[f64],
) -> Result<Vec<Vec<Value>>, StoreError> {
    let merged = read_merged(store, agg, range)?;
    agg.function
        .imp()
        .rows(agg, merged, qs)
        .map_err(|what| corrupt(store, what))
}

/// Runs a query; `range` restricts windowed aggregates to event times.
pub fn run(store: &Store, topo: &Topology, query: &Query, range: TimeRange) -> Result<Vec<Row>, StoreError> {
    let agg = &topo.aggregates[query.aggregate];
    let mut rows = aggregate_rows(store, agg, range, query.q)?;
    if let Some((col, lo, hi)) = query.range {
        rows.retain(|r| {
            r[col]
                .as_f64()
                .is_some_and(|x| lo.is_none_or(|lo| x >= lo) && hi.is_none_or(|hi| x <= hi))
        });
    }
    if query.kind == QueryKind::Top {
        let per: Vec<usize> = query.per.clone();
        let key = |r: &Vec<Value>| per.iter().map(|&i| r[i].clone()).collect::<Vec<_>>();
        // Sort by (per columns asc, value desc, every other column asc) and
        // keep the first row of each per-group.
        rows.sort_by(|a, b| {
            cmp_slices(&key(a), &key(b))
                .then_with(|| b[b.len() - 1].total_cmp(&a[a.len() - 1]))
                .then_with(|| cmp_slices(&a[..a.len() - 1], &b[..b.len() - 1]))
        });
        rows.dedup_by(|later, first| cmp_slices(&key(&*later), &key(&*first)) == Ordering::Equal);
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            query
                .columns
                .iter()
                .map(|(i, name)| (name.clone(), r[*i].clone()))
                .collect()
        })
        .collect())
}

/// Rows as a JSON array of objects (columns in order).
pub fn rows_json(rows: &[Row]) -> Json {
    Json::Array(
        rows.iter()
            .map(|r| {
                let mut m = Map::new();
                for (k, v) in r {
                    m.insert(k.clone(), serde_json::to_value(v).unwrap_or(Json::Null));
                }
                Json::Object(m)
            })
            .collect(),
    )
}

/// The batch answer: `{"<query>": [rows...], ...}` for the topology's answers.
pub fn answers(store: &Store, topo: &Topology) -> Result<Vec<(String, Vec<Row>)>, StoreError> {
    topo.answers
        .iter()
        .map(|&i| {
            let q = &topo.queries[i];
            Ok((q.name.clone(), run(store, topo, q, TimeRange::default())?))
        })
        .collect()
}

pub fn answers_json(answers: &[(String, Vec<Row>)]) -> Json {
    let mut m = Map::new();
    for (name, rows) in answers {
        m.insert(name.clone(), rows_json(rows));
    }
    Json::Object(m)
}

/// Human-readable tables, one per query.
pub fn answers_table(answers: &[(String, Vec<Row>)]) -> String {
    let mut out = String::new();
    for (name, rows) in answers {
        out.push_str(&format!("== {name} ({} rows)\n", rows.len()));
        let Some(first) = rows.first() else {
            out.push_str("(no rows)\n\n");
            continue;
        };
        let headers: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(|(_, v)| v.to_string()).collect())
            .collect();
        let widths: Vec<usize> = (0..headers.len())
            .map(|i| {
                cells
                    .iter()
                    .map(|c| c[i].chars().count())
                    .chain([headers[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |vals: Vec<&str>| {
            vals.iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
                + "\n"
        };
        out.push_str(&line(headers.clone()));
        out.push_str(&line(
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect(),
        ));
        for c in &cells {
            out.push_str(&line(c.iter().map(String::as_str).collect()));
        }
        out.push('\n');
    }
    out
}
