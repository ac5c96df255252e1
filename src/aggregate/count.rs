//! `count`: joined rows per group (a multiset of group tuples).

use super::{live_tuples, AggregateFunction, Merged};
use crate::model::value::Value;
use crate::topology::Aggregate;

pub struct Count;

impl AggregateFunction for Count {
    fn rows(&self, agg: &Aggregate, merged: Merged, _qs: &[f64]) -> Result<Vec<Vec<Value>>, String> {
        live_tuples(agg, merged)?
            .map(|t| {
                let (mut row, n) = t?;
                row.push(Value::Int(n));
                Ok(row)
            })
            .collect()
    }
}
