//! `year`: the year of a timestamp field.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Operator, OperatorSpec};
use crate::model::value::{intern, Name, Record, Value};

/// `to = year of the timestamp field` (null if not a timestamp).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub field: String,
    pub to: String,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(Year {
            field: intern(&self.field),
            to: intern(&self.to),
        })
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        vec![("field", &self.field)]
    }

    fn writes(&self) -> Vec<&str> {
        vec![&self.to]
    }
}

#[derive(Debug)]
struct Year {
    field: Name,
    to: Name,
}

impl Operator for Year {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        let y = match rec.get(&self.field) {
            Some(Value::Ts(t)) => Value::Int(year_of(*t)),
            _ => Value::Null,
        };
        rec.set_name(&self.to, y);
        Ok(())
    }
}

/// Year of a UTC timestamp.
pub fn year_of(ts: i64) -> i64 {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp(ts, 0).map_or(1970, |d| d.year() as i64)
}
