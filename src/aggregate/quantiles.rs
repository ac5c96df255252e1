//! `quantiles`: a quantile sketch of `value` per group (`sketch.rs`: an
//! exact multiset while small, a t-digest after), merged across windows
//! and writers; a query asks for its `q`.

use super::{AggregateFunction, ArgError, Merged, StateKind};
use crate::dsl::AggregateSpec;
use crate::model::value::{decode_key_tuple, Value};
use crate::topology::Aggregate;

pub struct Quantiles;

fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::Int(x as i64)
    } else {
        Value::Float(x)
    }
}

impl AggregateFunction for Quantiles {
    fn args(&self) -> &'static [&'static str] {
        &["value", "compression"]
    }

    fn check(&self, a: &AggregateSpec, err: ArgError<'_>) {
        if a.value.is_none() {
            err("value", "needs `value = \"field\"`");
        }
        if !(10.0..=10_000.0).contains(&a.compression.unwrap_or(200.0)) {
            err("compression", "must be between 10 and 10000");
        }
    }

    fn key_fields(&self, a: &AggregateSpec) -> (Vec<String>, Option<String>) {
        (Vec::new(), a.value.clone())
    }

    fn columns(&self, _a: &AggregateSpec) -> Vec<String> {
        vec!["quantile".into()]
    }

    fn state(&self) -> StateKind {
        StateKind::Sketch
    }

    fn takes_quantile(&self) -> bool {
        true
    }

    fn rows(&self, agg: &Aggregate, merged: Merged, qs: &[f64]) -> Result<Vec<Vec<Value>>, String> {
        let Merged::Sketches(m) = merged else {
            return Err(format!("store {:?} holds multiplicities, not sketches", agg.name));
        };
        let mut rows = Vec::new();
        for (k, d) in m {
            let values: Option<Vec<Value>> = qs.iter().map(|&q| d.quantile(q).map(number)).collect();
            if let Some(values) = values {
                let mut row = decode_key_tuple(&k).ok_or_else(|| format!("key of {:?} does not decode", agg.name))?;
                row.extend(values);
                rows.push(row);
            }
        }
        Ok(rows)
    }
}
