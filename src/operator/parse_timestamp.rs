//! `parse_timestamp`: strings into UTC timestamps (seconds).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Check, Operator, OperatorSpec};
use crate::model::value::{intern, Hint, Name, Record, Value};

/// Parse a string into a UTC timestamp. Default formats:
/// `%Y-%m-%d %H:%M:%S`, `%Y-%m-%dT%H:%M:%S`, RFC 3339. Unparseable → null.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub field: String,
    #[serde(default)]
    pub formats: Vec<String>,
}

impl OperatorSpec for Spec {
    fn build(&self) -> Arc<dyn Operator> {
        Arc::new(ParseTimestamp {
            field: intern(&self.field),
            formats: self.formats.clone(),
            hint: Hint::default(),
        })
    }

    /// Never rejects (an unparsable time becomes null): left out when its
    /// field is not needed.
    fn build_pruned(&self, needed: &[String]) -> Option<Arc<dyn Operator>> {
        super::any_needed(needed, [self.field.as_str()].into_iter()).then(|| self.build())
    }

    fn reads(&self) -> Vec<(&'static str, &str)> {
        vec![("field", &self.field)]
    }

    fn check(&self, c: &mut Check<'_>) {
        c.need(&self.field, "field");
        for f in &self.formats {
            if chrono::format::StrftimeItems::new(f).any(|i| matches!(i, chrono::format::Item::Error)) {
                c.error(
                    format!("bad timestamp format `{f}`"),
                    Some("use chrono strftime syntax, e.g. %Y-%m-%d %H:%M:%S"),
                );
            }
        }
    }
}

#[derive(Debug)]
struct ParseTimestamp {
    field: Name,
    formats: Vec<String>,
    hint: Hint,
}

impl Operator for ParseTimestamp {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        if let Some(v) = rec.get_mut_hinted(&self.field, &self.hint) {
            *v = match v {
                Value::Str(s) => parse_timestamp(s, &self.formats).map_or(Value::Null, Value::Ts),
                Value::Ts(t) => Value::Ts(*t),
                Value::Int(i) => Value::Ts(*i),
                _ => Value::Null,
            };
        }
        Ok(())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Fast path for `YYYY-MM-DD HH:MM:SS` and `YYYY-MM-DDTHH:MM:SS` (the two
/// forms the emulators send), validated field by field.
fn parse_plain(s: &str) -> Option<i64> {
    let b: &[u8; 19] = s.as_bytes().try_into().ok()?;
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    // Every digit read at its fixed place, one check for all of them at
    // the end (a fold per field with a check per byte was most of this).
    let mut bad = false;
    let mut digit = |k: usize| {
        let c = b[k].wrapping_sub(b'0');
        bad |= c > 9;
        u32::from(c)
    };
    let two = |hi: u32, lo: u32| hi * 10 + lo;
    let y = two(digit(0), digit(1)) * 100 + two(digit(2), digit(3));
    let (mo, d) = (two(digit(5), digit(6)), two(digit(8), digit(9)));
    let (h, mi, sec) = (
        two(digit(11), digit(12)),
        two(digit(14), digit(15)),
        two(digit(17), digit(18)),
    );
    if bad {
        return None;
    }
    // A real date (what chrono's `from_ymd_opt` checked, without a call into
    // it; four digits of year are always in chrono's range).
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d == 0 || d > days {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y as i64, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec))
}

/// Parses a timestamp with the given chrono formats, or the defaults (the two
/// emulator forms, RFC 3339, and Spark's `2020-08-28T03:52:47.000+0000`).
pub fn parse_timestamp(s: &str, formats: &[String]) -> Option<i64> {
    // The plain form starts and ends with a digit: nothing to trim.
    if formats.is_empty() && s.len() == 19 {
        if let Some(t) = parse_plain(s) {
            return Some(t);
        }
    }
    let s = s.trim();
    if formats.is_empty() {
        if let Some(t) = parse_plain(s) {
            return Some(t);
        }
        if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
            return Some(dt.timestamp());
        }
        if let Ok(dt) = chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
            return Some(dt.timestamp());
        }
        return chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|d| d.and_utc().timestamp());
    }
    formats.iter().find_map(|f| {
        chrono::DateTime::parse_from_str(s, f)
            .map(|d| d.timestamp())
            .ok()
            .or_else(|| {
                chrono::NaiveDateTime::parse_from_str(s, f)
                    .ok()
                    .map(|d| d.and_utc().timestamp())
            })
            .or_else(|| {
                chrono::NaiveDate::parse_from_str(s, f)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|d| d.and_utc().timestamp())
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::year::year_of;

    #[test]
    fn timestamps_in_both_forms_and_spark_form_agree() {
        let a = parse_timestamp("2020-08-28 03:52:47", &[]).unwrap();
        assert_eq!(parse_timestamp("2020-08-28T03:52:47", &[]), Some(a));
        assert_eq!(parse_timestamp("2020-08-28T03:52:47.000+0000", &[]), Some(a));
        assert_eq!(parse_timestamp("2020-08-28T03:52:47Z", &[]), Some(a));
        assert_eq!(a, 1_598_586_767);
        assert_eq!(parse_timestamp("2020-02-30 00:00:00", &[]), None);
        assert_eq!(parse_timestamp("yesterday", &[]), None);
        assert_eq!(year_of(a), 2020);
        assert_eq!(parse_timestamp("28/08/2020", &["%d/%m/%Y".into()]), Some(1_598_572_800));
    }

    /// A byte that is not a digit anywhere a digit belongs (or a digit
    /// where a separator belongs) is refused by the plain form; chrono's
    /// general parse decides those, as it did.
    #[test]
    fn the_plain_form_refuses_a_wrong_byte_at_every_place() {
        let good = "2020-08-28 03:52:47";
        assert_eq!(parse_plain(good), Some(1_598_586_767));
        for at in 0..good.len() {
            for c in ['x', '/', ':', '0', ' ', '\u{7f}'] {
                let mut b = good.as_bytes().to_vec();
                if b[at] == c as u8 {
                    continue;
                }
                b[at] = c as u8;
                let s = String::from_utf8(b).unwrap();
                let separator = matches!(at, 4 | 7 | 10 | 13 | 16);
                let want = if at == 10 && c == 'T' {
                    Some(1_598_586_767)
                } else if !separator && c.is_ascii_digit() {
                    chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S")
                        .ok()
                        .map(|d| d.and_utc().timestamp())
                } else {
                    None
                };
                assert_eq!(parse_plain(&s), want, "{s:?}");
                assert_eq!(
                    parse_timestamp(&s, &[]),
                    parse_timestamp(&format!(" {s} "), &[]),
                    "{s:?}"
                );
            }
        }
    }

    /// The plain form accepts exactly the dates chrono accepts, every day
    /// of 1600-2400 and the invalid months and days around them.
    #[test]
    fn plain_dates_are_valid_exactly_when_chrono_says() {
        for y in (1600..=2400).chain([0, 1, 9999]) {
            for m in 0..=13 {
                for d in 0..=32 {
                    let s = format!("{y:04}-{m:02}-{d:02} 12:00:00");
                    let want = chrono::NaiveDate::from_ymd_opt(y, m, d)
                        .map(|n| n.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp());
                    assert_eq!(parse_plain(&s), want, "{s}");
                }
            }
        }
    }
}
