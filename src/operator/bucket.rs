//! `bucket`: label a number by the range it falls in.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{intern, Hint, Name, Record, Value};

/// One labelled range of `bucket`: `min <= x <= max` (either bound optional).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub label: String,
}

/// `to = label of the first range containing the number` (else null).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub field: String,
    pub to: String,
    pub ranges: Vec<RangeSpec>,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(Bucket {
            field: intern(&self.field),
            to: intern(&self.to),
            ranges: self.ranges.iter().map(|r| (r.min, r.max, r.label.clone())).collect(),
            hints: Default::default(),
        })
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        vec![("field", &self.field)]
    }

    fn writes(&self) -> Vec<&str> {
        vec![&self.to]
    }

    fn check(&self, c: &mut Check<'_>) {
        c.need(&self.field, "field");
        if self.ranges.is_empty() {
            c.error(
                "`ranges` is empty",
                Some("add ranges = [{ min = 18, max = 24, label = \"18-24\" }, ...]"),
            );
        }
        for r in &self.ranges {
            if let (Some(lo), Some(hi)) = (r.min, r.max) {
                if lo > hi {
                    c.error(format!("range `{}` has min {lo} > max {hi}", r.label), None);
                }
            }
        }
        c.add(&self.to);
    }
}

#[derive(Debug)]
struct Bucket {
    field: Name,
    to: Name,
    ranges: Vec<(Option<f64>, Option<f64>, String)>,
    /// Of `field` and `to`.
    hints: [Hint; 2],
}

impl Operator for Bucket {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        let label = rec
            .get_hinted(&self.field, &self.hints[0])
            .and_then(Value::as_f64)
            .and_then(|x| {
                self.ranges
                    .iter()
                    .find(|(lo, hi, _)| lo.is_none_or(|lo| x >= lo) && hi.is_none_or(|hi| x <= hi))
                    .map(|(_, _, l)| Value::Str(l.clone()))
            });
        rec.set_hinted(&self.to, label.unwrap_or(Value::Null), &self.hints[1]);
        Ok(())
    }
}
