//! `parse_count`: follower counts like `"124k"` or `"2M"` into integers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Operator, OperatorSpec};
use crate::model::value::{intern, Hint, Name, Record, Value};

/// Parse a count like `"124k"`, `"1.5k"`, `"2M"`, `"437"` into an integer;
/// anything else becomes null. Writes `to` (default: in place).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub field: String,
    pub to: Option<String>,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(ParseCount {
            field: intern(&self.field),
            to: intern(self.to.as_deref().unwrap_or(&self.field)),
            hints: Default::default(),
        })
    }

    /// Never rejects: left out when what it writes is not needed.
    fn build_pruned(&self, needed: &[String]) -> Option<Arc<dyn Operator>> {
        let target = self.to.as_deref().unwrap_or(&self.field);
        super::any_needed(needed, [target].into_iter()).then(|| self.build())
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        vec![("field", &self.field)]
    }

    fn writes(&self) -> Vec<&str> {
        self.to.iter().map(String::as_str).collect()
    }
}

#[derive(Debug)]
struct ParseCount {
    field: Name,
    to: Name,
    /// Of `field` and `to`.
    hints: [Hint; 2],
}

impl Operator for ParseCount {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        let parsed = rec
            .get_hinted(&self.field, &self.hints[0])
            .map(parse_count)
            .unwrap_or(Value::Null);
        rec.set_hinted(&self.to, parsed, &self.hints[1]);
        Ok(())
    }
}

/// `"124k"` → 124000, `"1.5k"` → 1500, `"2M"` → 2000000, `"437"` → 437;
/// anything else → null.
pub fn parse_count(v: &Value) -> Value {
    match v {
        Value::Int(i) => Value::Int(*i),
        Value::Float(f) => in_i64(f.round()).map_or(Value::Null, Value::Int),
        Value::Str(s) => {
            let s = s.trim();
            let (num, mult) = if let Some(n) = s.strip_suffix('k') {
                (n, 1_000.0)
            } else if let Some(n) = s.strip_suffix('M') {
                (n, 1_000_000.0)
            } else {
                (s, 1.0)
            };
            // Up to 9 digits and no point: the product is below 2^53, so
            // integer arithmetic gives what the float path below gives,
            // without parsing a float (most counts look like this).
            if !num.is_empty() && num.len() <= 9 && num.bytes().all(|b| b.is_ascii_digit()) {
                let n = num.bytes().fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
                return Value::Int(n * mult as i64);
            }
            // Only plain decimal digits: "inf", "1e3" and signs are not counts.
            let plain = !num.is_empty()
                && num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && num.bytes().filter(|&b| b == b'.').count() <= 1
                && num != ".";
            match num.parse::<f64>() {
                Ok(n) if plain => in_i64((n * mult).round()).map_or(Value::Null, Value::Int),
                _ => Value::Null,
            }
        }
        _ => Value::Null,
    }
}

/// A whole float as i64 when it is in range (never saturated).
fn in_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; every float below it in magnitude fits.
    (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0)
        .contains(&f)
        .then_some(f as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_count_handles_suffixes_and_garbage() {
        let s = |x: &str| parse_count(&Value::Str(x.into()));
        assert_eq!(s("124k"), Value::Int(124_000));
        assert_eq!(s("1.5k"), Value::Int(1_500));
        assert_eq!(s("2M"), Value::Int(2_000_000));
        assert_eq!(s("0"), Value::Int(0));
        assert_eq!(s("437"), Value::Int(437));
        for bad in ["User Info Error", "", "k", "M", "1.2.3k", "-5", "inf", "1e3", "."] {
            assert_eq!(s(bad), Value::Null, "{bad}");
        }
    }

    /// The integer fast path gives what the float path gives, at and
    /// around its bound of 9 digits, with every suffix.
    #[test]
    fn whole_counts_agree_with_the_float_path() {
        let float_path = |num: &str, mult: f64| in_i64((num.parse::<f64>().unwrap() * mult).round()).unwrap();
        for num in ["0", "7", "00012", "999999999", "123456789", "1000000000", "9999999999"] {
            for (suffix, mult) in [("", 1.0), ("k", 1e3), ("M", 1e6)] {
                let got = parse_count(&Value::Str(format!("{num}{suffix}")));
                assert_eq!(got, Value::Int(float_path(num, mult)), "{num}{suffix}");
            }
        }
    }
}
