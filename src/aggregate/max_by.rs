//! `max_by`: per group, the row with the largest `by`; ties go to the
//! smallest `item` tuple. The store holds a multiplicity per (group, item,
//! by) tuple, so a retracted maximum gives way to the next one exactly.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{live_tuples, AggregateFunction, ArgError, Merged};
use crate::dsl::AggregateSpec;
use crate::model::value::{cmp_slices, encode_key, Value};
use crate::topology::Aggregate;

pub struct MaxBy;

impl AggregateFunction for MaxBy {
    fn args(&self) -> &'static [&'static str] {
        &["by", "item"]
    }

    fn check(&self, a: &AggregateSpec, err: ArgError<'_>) {
        if a.by.is_none() {
            err("by", "needs `by = \"field\"`");
        }
    }

    fn key_fields(&self, a: &AggregateSpec) -> (Vec<String>, Option<String>) {
        (a.item.clone(), a.by.clone())
    }

    fn measure_in_key(&self) -> bool {
        true
    }

    fn columns(&self, a: &AggregateSpec) -> Vec<String> {
        a.item.iter().chain(&a.by).cloned().collect()
    }

    fn rows(&self, agg: &Aggregate, merged: Merged, _qs: &[f64]) -> Result<Vec<Vec<Value>>, String> {
        let g = agg.group_by.len();
        // Tuples are group + item + by; keep the best per group.
        let mut best: BTreeMap<Vec<u8>, Vec<Value>> = BTreeMap::new();
        for t in live_tuples(agg, merged)? {
            let (t, _) = t?;
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
        Ok(best.into_values().collect())
    }
}
