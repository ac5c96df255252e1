//! `year`: the year of a timestamp field.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Operator, OperatorSpec};
use crate::model::value::{intern, Hint, Name, Record, Value};

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
            hints: Default::default(),
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
    /// Of `field` and `to`.
    hints: [Hint; 2],
}

impl Operator for Year {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        let y = match rec.get_hinted(&self.field, &self.hints[0]) {
            Some(Value::Ts(t)) => Value::Int(year_of(*t)),
            _ => Value::Null,
        };
        rec.set_hinted(&self.to, y, &self.hints[1]);
        Ok(())
    }
}

/// The UTC year of `ts` (seconds since the epoch); 1970 where chrono has
/// no date for it, as before.
///
/// Arithmetic (the inverse of `days_from_civil` in `parse_timestamp.rs`,
/// Howard Hinnant's `civil_from_days`) instead of chrono's `DateTime` and
/// `year()`: every joined row of a replay takes two years. Measured by
/// callgrind on the 100,000-post replay (200,000 calls): the `year`
/// operator 74 M -> 68 M instructions, this function about 100 a call.
pub fn year_of(ts: i64) -> i64 {
    // chrono's dates end at year ±262,142; this range is well inside it.
    const LIMIT: i64 = 8_000_000_000_000;
    if !(-LIMIT..=LIMIT).contains(&ts) {
        use chrono::Datelike;
        return chrono::DateTime::from_timestamp(ts, 0).map_or(1970, |d| d.year() as i64);
    }
    let z = ts.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // March-based years: January and February belong to the next one.
    yoe + era * 400 + i64::from(mp >= 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    /// The arithmetic year equals chrono's, around every year boundary
    /// (leap and century years included), at random instants, and past
    /// the arithmetic range.
    #[test]
    fn year_of_agrees_with_chrono() {
        let chrono_year = |ts: i64| chrono::DateTime::from_timestamp(ts, 0).map_or(1970, |d| d.year() as i64);
        for y in [
            -400, -1, 0, 1, 1600, 1899, 1900, 1969, 1970, 2000, 2024, 2100, 2400, 9999,
        ] {
            let start = chrono::NaiveDate::from_ymd_opt(y, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp();
            for ts in [start - 1, start, start + 1, start + 59 * 86_400, start + 60 * 86_400] {
                assert_eq!(year_of(ts), chrono_year(ts), "{ts}");
            }
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ts = (x % 40_000_000_000) as i64 - 20_000_000_000;
            assert_eq!(year_of(ts), chrono_year(ts), "{ts}");
        }
        for ts in [8_000_000_000_001, i64::MAX, i64::MIN, -8_000_000_000_001] {
            assert_eq!(year_of(ts), chrono_year(ts), "{ts}");
        }
    }
}
