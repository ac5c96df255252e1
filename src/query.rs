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
use crate::dsl::{Function, QueryKind};
use crate::model::value::{cmp_slices, decode_key, decode_key_tuple, encode_key, Value};
use crate::state::store::{agg_cf, Store, StoreError};
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

enum Merged {
    Counts(BTreeMap<Vec<u8>, i64>),
    Digests(BTreeMap<Vec<u8>, Sketch>),
}

/// Reads an aggregate's entries, merging windows inside `range`.
fn read_merged(store: &Store, agg: &Aggregate, range: TimeRange) -> Result<Merged, StoreError> {
    let mut counts = BTreeMap::new();
    let mut digests: BTreeMap<Vec<u8>, Sketch> = BTreeMap::new();
    let mut bad = None;
    store.for_each(&agg_cf(&agg.name), |k, v| {
        let mut rest = k;
        if let Some((_, w)) = &agg.window {
            let Some(Value::Ts(start)) = decode_key(&mut rest) else {
                bad = Some("window key does not decode".to_string());
                return false;
            };
            // A window is in range when it overlaps [from, to).
            if range.from.is_some_and(|f| start + w.size <= f) {
                return true;
            }
            if range.to.is_some_and(|t| start >= t) {
                return false; // keys are in window order: nothing later matches
            }
        }
        match agg.function {
            Function::Quantiles => match Sketch::from_bytes(v) {
                Some(d) => {
                    let merged = match digests.remove(rest) {
                        Some(acc) => acc.merge(d, agg.compression),
                        None => d,
                    };
                    digests.insert(rest.to_vec(), merged);
                }
                None => bad = Some(format!("quantile sketch of {:?} does not decode", agg.name)),
            },
            _ => {
                let n = v.try_into().map(i64::from_le_bytes).unwrap_or(0);
                *counts.entry(rest.to_vec()).or_insert(0) += n;
            }
        }
        bad.is_none()
    })?;
    if let Some(what) = bad {
        return Err(corrupt(store, what));
    }
    Ok(match agg.function {
        Function::Quantiles => Merged::Digests(digests),
        _ => Merged::Counts(counts),
    })
}

fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::Int(x as i64)
    } else {
        Value::Float(x)
    }
}

/// The aggregate's rows (all columns), sorted by key columns.
pub fn aggregate_rows(store: &Store, agg: &Aggregate, range: TimeRange, q: f64) -> Result<Vec<Vec<Value>>, StoreError> {
    aggregate_rows_at(store, agg, range, &[q])
}

/// Like [`aggregate_rows`], with one value column per quantile in `qs`
/// (quantile aggregates; others ignore `qs`), all from one read.
pub fn aggregate_rows_at(
    store: &Store,
    agg: &Aggregate,
    range: TimeRange,
    qs: &[f64],
) -> Result<Vec<Vec<Value>>, StoreError> {
    let g = agg.group_by.len();
    let tuple =
        |k: &[u8]| decode_key_tuple(k).ok_or_else(|| corrupt(store, format!("key of {:?} does not decode", agg.name)));
    let mut rows: Vec<Vec<Value>> = Vec::new();
    match read_merged(store, agg, range)? {
        Merged::Digests(m) => {
            for (k, d) in m {
                let values: Option<Vec<Value>> = qs.iter().map(|&q| d.quantile(q).map(number)).collect();
                if let Some(values) = values {
                    let mut row = tuple(&k)?;
                    row.extend(values);
                    rows.push(row);
                }
            }
        }
        Merged::Counts(m) => match agg.function {
            Function::Count => {
                for (k, n) in m.into_iter().filter(|(_, n)| *n > 0) {
                    let mut row = tuple(&k)?;
                    row.push(Value::Int(n));
                    rows.push(row);
                }
            }
            Function::DistinctCount => {
                // Keys are group + distinct tuple, in key order: count runs.
                let mut cur: Option<(Vec<Value>, i64)> = None;
                for (k, _) in m.into_iter().filter(|(_, n)| *n > 0) {
                    let mut t = tuple(&k)?;
                    t.truncate(g);
                    match &mut cur {
                        Some((group, n)) if *group == t => *n += 1,
                        _ => {
                            if let Some((group, n)) = cur.take() {
                                rows.push(group.into_iter().chain([Value::Int(n)]).collect());
                            }
                            cur = Some((t, 1));
                        }
                    }
                }
                if let Some((group, n)) = cur {
                    rows.push(group.into_iter().chain([Value::Int(n)]).collect());
                }
            }
            _ => {
                // max_by: tuples are group + item + by; keep the best per group.
                let mut best: BTreeMap<Vec<u8>, Vec<Value>> = BTreeMap::new();
                for (k, _) in m.into_iter().filter(|(_, n)| *n > 0) {
                    let t = tuple(&k)?;
                    let mut gk = Vec::new();
                    t[..g].iter().for_each(|v| encode_key(v, &mut gk));
                    let better = |old: &Vec<Value>| match t[t.len() - 1].total_cmp(&old[old.len() - 1]) {
                        Ordering::Greater => true,
                        Ordering::Less => false,
                        Ordering::Equal => cmp_slices(&t[g..t.len() - 1], &old[g..old.len() - 1]) == Ordering::Less,
                    };
                    if best.get(&gk).is_none_or(better) {
                        best.insert(gk, t);
                    }
                }
                rows = best.into_values().collect();
            }
        },
    }
    Ok(rows)
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
