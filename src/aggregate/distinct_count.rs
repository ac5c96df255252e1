//! `distinct_count`: distinct `distinct` tuples per group. The store holds
//! a multiplicity per (group, distinct tuple), so retractions stay exact;
//! a group's count is the number of its tuples still present.

use super::{live_tuples, AggregateFunction, ArgError, Merged};
use crate::dsl::AggregateSpec;
use crate::model::value::Value;
use crate::topology::Aggregate;

pub struct DistinctCount;

impl AggregateFunction for DistinctCount {
    fn args(&self) -> &'static [&'static str] {
        &["distinct"]
    }

    fn check(&self, a: &AggregateSpec, err: ArgError<'_>) {
        if a.distinct.is_empty() {
            err("distinct", "needs `distinct = [fields]`");
        }
    }

    fn key_fields(&self, a: &AggregateSpec) -> (Vec<String>, Option<String>) {
        (a.distinct.clone(), None)
    }

    fn rows(&self, agg: &Aggregate, merged: Merged, _qs: &[f64]) -> Result<Vec<Vec<Value>>, String> {
        let g = agg.group_by.len();
        // Keys are group + distinct tuple, in key order: count runs.
        let mut rows = Vec::new();
        let mut cur: Option<(Vec<Value>, i64)> = None;
        for t in live_tuples(agg, merged)? {
            let (mut t, _) = t?;
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
        Ok(rows)
    }
}
