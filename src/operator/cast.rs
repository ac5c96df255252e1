//! `cast`: convert a field to another type, nulling or rejecting what does
//! not convert.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{add_needed, Operator, OperatorSpec};
use crate::model::value::{intern, Hint, Name, Record, Value};

/// Target type of `cast`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CastType {
    Int,
    Float,
    String,
    Bool,
}

/// What `cast` does with a value it cannot convert.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Replace the value with null (the record goes on).
    #[default]
    Null,
    /// Send the record to the dead-letter output with the reason.
    Reject,
}

/// Convert a field to another type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub field: String,
    pub to: CastType,
    #[serde(default)]
    pub on_error: OnError,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(Cast {
            field: intern(&self.field),
            to: self.to,
            on_error: self.on_error,
            hint: Hint::default(),
        })
    }

    /// Left out when its field is not needed and it does not reject (a
    /// rejecting cast's field is always needed: `raw_needs` keeps it).
    fn build_pruned(&self, needed: &[String]) -> Option<Arc<dyn Operator>> {
        let keep = self.on_error == OnError::Reject || super::any_needed(needed, [self.field.as_str()].into_iter());
        keep.then(|| self.build())
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        vec![("field", &self.field)]
    }

    /// A rejecting cast decides about the record: its field is always parsed.
    fn raw_needs(&self, needed: &mut Vec<String>) {
        if self.on_error == OnError::Reject {
            add_needed(needed, &self.field);
        }
    }
}

#[derive(Debug)]
struct Cast {
    field: Name,
    to: CastType,
    on_error: OnError,
    hint: Hint,
}

impl Operator for Cast {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        if let Some(v) = rec.get_mut_hinted(&self.field, &self.hint) {
            if v.is_null() {
                return Ok(());
            }
            match cast(v, self.to) {
                Some(c) => *v = c,
                None if self.on_error == OnError::Reject => {
                    let target = format!("{:?}", self.to).to_lowercase();
                    return Err(format!(
                        "field `{}`: cannot cast {} {v} to {target}",
                        self.field,
                        v.kind()
                    ));
                }
                None => *v = Value::Null,
            }
        }
        Ok(())
    }
}

/// The integer a JSON float stands for, when it stands for exactly one.
///
/// JSON numbers in the i64/u64 range arrive as integers; a float is a
/// fraction, an exponent form or a number out of range. Only a whole number
/// within ±2^53 is taken (beyond that a float cannot say which integer it
/// meant), so `1e30` or `18446744073709551616` is a cast error and is never
/// clamped to `i64::MAX`, as `f as i64` would do.
fn exact_int(f: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    (f.is_finite() && f.fract() == 0.0 && f.abs() <= EXACT).then_some(f as i64)
}

fn cast(v: &Value, to: CastType) -> Option<Value> {
    Some(match (to, v) {
        (CastType::Int, Value::Int(i)) => Value::Int(*i),
        (CastType::Int, Value::Float(f)) => Value::Int(exact_int(*f)?),
        // A string is an integer only when it is one: optional sign and
        // decimal digits, in range. "1e3", "12.0" and "9223372036854775808"
        // are not (parse::<i64> refuses all three; it never clamps).
        (CastType::Int, Value::Str(s)) => Value::Int(s.trim().parse::<i64>().ok()?),
        (CastType::Float, Value::Int(i)) => Value::Float(*i as f64),
        (CastType::Float, Value::Float(f)) => Value::Float(*f),
        (CastType::Float, Value::Str(s)) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => Value::Float(f),
            _ => return None,
        },
        (CastType::String, Value::Str(s)) => Value::Str(s.clone()),
        (CastType::String, v @ (Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Ts(_))) => {
            Value::Str(v.to_string())
        }
        (CastType::Bool, Value::Bool(b)) => Value::Bool(*b),
        (CastType::Bool, Value::Int(i)) if *i == 0 || *i == 1 => Value::Bool(*i == 1),
        (CastType::Bool, Value::Str(s)) => match s.trim() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::parse_count::parse_count;
    use crate::operator::rec;

    fn op(field: &str, on_error: OnError) -> Arc<dyn Operator> {
        Spec {
            field: field.into(),
            to: CastType::Int,
            on_error,
        }
        .build()
    }

    #[test]
    fn regression_out_of_range_ind_is_a_cast_error_not_clamped() {
        let reject = op("ind", OnError::Reject);
        for bad in [
            r#"{"ind":18446744073709551616}"#,
            r#"{"ind":9223372036854775808}"#,
            r#"{"ind":-1e30}"#,
            r#"{"ind":1e30}"#,
            r#"{"ind":1.5}"#,
            r#"{"ind":"9223372036854775808"}"#,
            r#"{"ind":"1e3"}"#,
            r#"{"ind":"12.0"}"#,
        ] {
            assert!(reject.apply(&mut rec(bad)).is_err(), "{bad} must be a cast error");
        }
        for (good, want) in [
            (r#"{"ind":9223372036854775807}"#, i64::MAX),
            (r#"{"ind":-9223372036854775808}"#, i64::MIN),
            (r#"{"ind":"-42"}"#, -42),
            (r#"{"ind":7.0}"#, 7),
        ] {
            let mut r = rec(good);
            reject.apply(&mut r).unwrap();
            assert_eq!(r.get("ind"), Some(&Value::Int(want)), "{good}");
        }
        // Elsewhere a bad integer becomes null: `age: 1e30` is no age at all.
        let nulling = op("age", OnError::Null);
        let mut r = rec(r#"{"age":1e30}"#);
        nulling.apply(&mut r).unwrap();
        assert_eq!(r.get("age"), Some(&Value::Null));
        assert_eq!(parse_count(&Value::Float(1e30)), Value::Null);
        // Found by fuzz_props: `"index": false` became ind 0.
        assert!(reject.apply(&mut rec(r#"{"ind":false}"#)).is_err());
        assert_eq!(parse_count(&Value::Str("99999999999999999999M".into())), Value::Null);
    }

    #[test]
    fn cast_rejects_when_asked() {
        let mut r = rec(r#"{"ind":"abc"}"#);
        let op = op("ind", OnError::Reject);
        assert!(op.apply(&mut r).unwrap_err().contains("ind"));
        let mut r = rec(r#"{"ind":"12"}"#);
        op.apply(&mut r).unwrap();
        assert_eq!(r.get("ind"), Some(&Value::Int(12)));
    }
}
