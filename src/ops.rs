//! Per-record operators: the cleaning vocabulary of the DSL.
//!
//! [`Op`] is the exhaustive registry: one variant per operator kind, compiled
//! from an [`OpSpec`] by [`Op::compile`] and run by the one `match` in
//! [`Operator::apply`]. Operators are pure functions of the record, so sources
//! run them in parallel; an operator either edits the record in place or
//! rejects it with a reason (the record then goes to the dead-letter output).
//!
//! [`check`] walks the operators over the record's known field list so that
//! `validate` can point at a misspelt field before any data flows.

use crate::dsl::{CastType, FieldSet, OnError, OpSpec, SpecError};
use crate::value::{intern, Name, Record, Value};

/// A per-record operator: edit the record, or reject it with a reason.
pub trait Operator: Send + Sync {
    fn apply(&self, rec: &mut Record) -> Result<(), String>;
}

/// A compiled operator.
#[derive(Debug, Clone)]
pub enum Op {
    NullIf {
        fields: Option<Vec<Name>>,
        values: Vec<String>,
    },
    ParseCount {
        field: Name,
        to: Name,
    },
    StripPrefix {
        field: Name,
        prefix: String,
    },
    Cast {
        field: Name,
        to: CastType,
        on_error: OnError,
    },
    ParseTimestamp {
        field: Name,
        formats: Vec<String>,
    },
    Rename {
        from: Name,
        to: Name,
    },
    Drop {
        fields: Vec<Name>,
    },
    Select {
        fields: Vec<Name>,
    },
    Concat {
        fields: Vec<Name>,
        separator: String,
        to: Name,
    },
    Array {
        fields: Vec<Name>,
        to: Name,
    },
    Year {
        field: Name,
        to: Name,
    },
    Bucket {
        field: Name,
        to: Name,
        ranges: Vec<(Option<f64>, Option<f64>, String)>,
    },
    Require {
        fields: Vec<Name>,
    },
}

fn names(v: &[String]) -> Vec<Name> {
    v.iter().map(|s| intern(s)).collect()
}

impl Op {
    pub fn compile(spec: &OpSpec) -> Op {
        match spec {
            OpSpec::NullIf { fields, values } => Op::NullIf {
                fields: match fields {
                    FieldSet::All(_) => None,
                    FieldSet::List(l) => Some(names(l)),
                },
                values: values.clone(),
            },
            OpSpec::ParseCount { field, to } => Op::ParseCount {
                field: intern(field),
                to: intern(to.as_deref().unwrap_or(field)),
            },
            OpSpec::StripPrefix { field, prefix } => Op::StripPrefix {
                field: intern(field),
                prefix: prefix.clone(),
            },
            OpSpec::Cast { field, to, on_error } => Op::Cast {
                field: intern(field),
                to: *to,
                on_error: *on_error,
            },
            OpSpec::ParseTimestamp { field, formats } => Op::ParseTimestamp {
                field: intern(field),
                formats: formats.clone(),
            },
            OpSpec::Rename { from, to } => Op::Rename {
                from: intern(from),
                to: intern(to),
            },
            OpSpec::Drop { fields } => Op::Drop { fields: names(fields) },
            OpSpec::Select { fields } => Op::Select { fields: names(fields) },
            OpSpec::Concat { fields, separator, to } => Op::Concat {
                fields: names(fields),
                separator: separator.clone(),
                to: intern(to),
            },
            OpSpec::Array { fields, to } => Op::Array {
                fields: names(fields),
                to: intern(to),
            },
            OpSpec::Year { field, to } => Op::Year {
                field: intern(field),
                to: intern(to),
            },
            OpSpec::Bucket { field, to, ranges } => Op::Bucket {
                field: intern(field),
                to: intern(to),
                ranges: ranges.iter().map(|r| (r.min, r.max, r.label.clone())).collect(),
            },
            OpSpec::Require { fields } => Op::Require { fields: names(fields) },
        }
    }
}

impl Operator for Op {
    fn apply(&self, rec: &mut Record) -> Result<(), String> {
        match self {
            Op::NullIf { fields, values } => {
                for (name, v) in rec.fields.iter_mut() {
                    if fields.as_ref().is_some_and(|f| !f.contains(name)) {
                        continue;
                    }
                    if let Value::Str(s) = v {
                        if values.iter().any(|x| x == s) {
                            *v = Value::Null;
                        }
                    }
                }
            }
            Op::ParseCount { field, to } => {
                let parsed = rec.get(field).map(parse_count).unwrap_or(Value::Null);
                rec.set(to, parsed);
            }
            Op::StripPrefix { field, prefix } => {
                if let Some(Value::Str(s)) = rec.get_mut(field) {
                    if s.starts_with(prefix.as_str()) {
                        s.drain(..prefix.len());
                    }
                }
            }
            Op::Cast { field, to, on_error } => {
                if let Some(v) = rec.get_mut(field) {
                    if v.is_null() {
                        return Ok(());
                    }
                    match cast(v, *to) {
                        Some(c) => *v = c,
                        None if *on_error == OnError::Reject => {
                            let target = format!("{to:?}").to_lowercase();
                            return Err(format!("field `{field}`: cannot cast {} {v} to {target}", v.kind()));
                        }
                        None => *v = Value::Null,
                    }
                }
            }
            Op::ParseTimestamp { field, formats } => {
                if let Some(v) = rec.get_mut(field) {
                    *v = match v {
                        Value::Str(s) => parse_timestamp(s, formats).map_or(Value::Null, Value::Ts),
                        Value::Ts(t) => Value::Ts(*t),
                        Value::Int(i) => Value::Ts(*i),
                        _ => Value::Null,
                    };
                }
            }
            Op::Rename { from, to } => {
                if from != to && rec.get(from).is_some() {
                    rec.remove(to);
                    if let Some(slot) = rec.fields.iter_mut().find(|(n, _)| n == from) {
                        slot.0 = to.clone();
                    }
                }
            }
            Op::Drop { fields } => rec.fields.retain(|(n, _)| !fields.contains(n)),
            Op::Select { fields } => {
                let mut old = std::mem::take(&mut rec.fields);
                rec.fields = fields
                    .iter()
                    .map(|f| {
                        let v = old
                            .iter_mut()
                            .find(|(n, _)| n == f)
                            .map(|(_, v)| std::mem::replace(v, Value::Null))
                            .unwrap_or(Value::Null);
                        (f.clone(), v)
                    })
                    .collect();
            }
            Op::Concat { fields, separator, to } => {
                let mut out = String::new();
                let mut ok = true;
                for (i, f) in fields.iter().enumerate() {
                    match rec.get(f) {
                        None | Some(Value::Null) => {
                            ok = false;
                            break;
                        }
                        Some(v) => {
                            if i > 0 {
                                out.push_str(separator);
                            }
                            out.push_str(&v.to_string());
                        }
                    }
                }
                rec.set(to, if ok { Value::Str(out) } else { Value::Null });
            }
            Op::Array { fields, to } => {
                let items = fields
                    .iter()
                    .map(|f| rec.get(f).cloned().unwrap_or(Value::Null))
                    .collect();
                rec.set(to, Value::Array(items));
            }
            Op::Year { field, to } => {
                let y = match rec.get(field) {
                    Some(Value::Ts(t)) => Value::Int(year_of(*t)),
                    _ => Value::Null,
                };
                rec.set(to, y);
            }
            Op::Bucket { field, to, ranges } => {
                let label = rec.get(field).and_then(Value::as_f64).and_then(|x| {
                    ranges
                        .iter()
                        .find(|(lo, hi, _)| lo.is_none_or(|lo| x >= lo) && hi.is_none_or(|hi| x <= hi))
                        .map(|(_, _, l)| Value::Str(l.clone()))
                });
                rec.set(to, label.unwrap_or(Value::Null));
            }
            Op::Require { fields } => {
                for f in fields {
                    match rec.get(f) {
                        None => return Err(format!("missing field `{f}`")),
                        Some(Value::Null) => return Err(format!("field `{f}` is null or invalid")),
                        Some(_) => {}
                    }
                }
            }
        }
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

/// Year of a UTC timestamp.
pub fn year_of(ts: i64) -> i64 {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp(ts, 0).map_or(1970, |d| d.year() as i64)
}

/// Fast path for `YYYY-MM-DD HH:MM:SS` and `YYYY-MM-DDTHH:MM:SS` (the two
/// forms the emulators send), validated field by field.
fn parse_plain(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    chrono::NaiveDate::from_ymd_opt(y as i32, mo, d)?;
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y as i64, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec))
}

/// Parses a timestamp with the given chrono formats, or the defaults (the two
/// emulator forms, RFC 3339, and Spark's `2020-08-28T03:52:47.000+0000`).
pub fn parse_timestamp(s: &str, formats: &[String]) -> Option<i64> {
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

/// The raw fields a source must parse so that its operators produce the
/// same values for `needed` (and make the same accept/reject decision).
///
/// A backward pass: each operator maps "fields needed after me" to "fields
/// needed before me". Operators that can reject a record (`require`, `cast`
/// with `on_error = "reject"`) always need their fields, so pruning never
/// changes which records are dead-lettered.
pub fn raw_needs(ops: &[OpSpec], needed: &[String]) -> Vec<String> {
    let mut n: Vec<String> = needed.to_vec();
    let add = |n: &mut Vec<String>, f: &String| {
        if !n.contains(f) {
            n.push(f.clone());
        }
    };
    for op in ops.iter().rev() {
        match op {
            OpSpec::NullIf { .. } | OpSpec::StripPrefix { .. } | OpSpec::ParseTimestamp { .. } => {}
            OpSpec::Cast { field, on_error, .. } => {
                if *on_error == OnError::Reject {
                    add(&mut n, field);
                }
            }
            OpSpec::ParseCount { field, to } => {
                if let Some(to) = to {
                    if n.contains(to) && to != field {
                        n.retain(|x| x != to);
                        add(&mut n, field);
                    }
                }
            }
            OpSpec::Rename { from, to } => {
                // `to` afterwards is `from` if the record has it, else the
                // record's own `to`: both are needed. `from` afterwards is
                // always gone.
                let wanted = n.contains(to);
                n.retain(|x| x != from);
                if wanted {
                    n.push(from.clone());
                }
            }
            OpSpec::Drop { fields } => n.retain(|x| !fields.contains(x)),
            OpSpec::Select { fields } => n.retain(|x| fields.contains(x)),
            OpSpec::Concat { fields, to, .. } | OpSpec::Array { fields, to } => {
                if n.contains(to) {
                    n.retain(|x| x != to);
                    fields.iter().for_each(|f| add(&mut n, f));
                }
            }
            OpSpec::Year { field, to } | OpSpec::Bucket { field, to, .. } => {
                if n.contains(to) {
                    n.retain(|x| x != to);
                    add(&mut n, field);
                }
            }
            OpSpec::Require { fields } => fields.iter().for_each(|f| add(&mut n, f)),
        }
    }
    n
}

/// Checks an operator against the record's field list (if known) and
/// updates the list to what the operator produces. `None` = unknown fields.
pub fn check(op: &OpSpec, fields: &mut Option<Vec<String>>, path: &str, errors: &mut Vec<SpecError>) {
    // `key` is the operator's TOML key naming the field, so the error points
    // at that line.
    let mut need = |f: &str, key: &str| {
        if let Some(known) = fields.as_ref() {
            if !known.iter().any(|k| k == f) {
                let cands: Vec<&str> = known.iter().map(String::as_str).collect();
                let hint = match crate::dsl::suggest(f, &cands) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("fields here: {}", known.join(", ")),
                };
                errors.push(
                    SpecError::new(
                        format!("{path}.{key}"),
                        format!("field `{f}` does not exist at this point"),
                    )
                    .hint(hint),
                );
            }
        }
    };
    let add = |fields: &mut Option<Vec<String>>, f: &str| {
        if let Some(k) = fields.as_mut() {
            if !k.iter().any(|x| x == f) {
                k.push(f.to_string());
            }
        }
    };
    match op {
        OpSpec::NullIf { fields: set, values } => {
            match set {
                FieldSet::All(s) if s != "*" => errors.push(
                    SpecError::new(path, format!("`fields = \"{s}\"` is not valid"))
                        .hint("use \"*\" for every field or a list"),
                ),
                FieldSet::List(l) => l.iter().for_each(|f| need(f, "fields")),
                _ => {}
            }
            if values.is_empty() {
                errors.push(SpecError::new(path, "`values` is empty").hint("list the placeholder strings to null"));
            }
        }
        OpSpec::ParseCount { field, to } => {
            need(field, "field");
            if let Some(t) = to {
                add(fields, t);
            }
        }
        OpSpec::StripPrefix { field, .. } | OpSpec::Cast { field, .. } | OpSpec::ParseTimestamp { field, .. } => {
            need(field, "field");
            if let OpSpec::ParseTimestamp { formats, .. } = op {
                for f in formats {
                    if chrono::format::StrftimeItems::new(f).any(|i| matches!(i, chrono::format::Item::Error)) {
                        errors.push(
                            SpecError::new(path, format!("bad timestamp format `{f}`"))
                                .hint("use chrono strftime syntax, e.g. %Y-%m-%d %H:%M:%S"),
                        );
                    }
                }
            }
        }
        OpSpec::Rename { from, to } => {
            need(from, "from");
            if let Some(k) = fields.as_mut() {
                k.retain(|x| x != to);
                if let Some(x) = k.iter_mut().find(|x| *x == from) {
                    *x = to.clone();
                }
            }
        }
        OpSpec::Drop { fields: d } => {
            d.iter().for_each(|f| need(f, "fields"));
            if let Some(k) = fields.as_mut() {
                k.retain(|x| !d.contains(x));
            }
        }
        OpSpec::Select { fields: s } => {
            s.iter().for_each(|f| need(f, "fields"));
            *fields = Some(s.clone());
        }
        OpSpec::Concat { fields: c, to, .. } | OpSpec::Array { fields: c, to } => {
            c.iter().for_each(|f| need(f, "fields"));
            if c.is_empty() {
                errors.push(SpecError::new(path, "`fields` is empty"));
            }
            add(fields, to);
        }
        OpSpec::Year { field, to } => {
            need(field, "field");
            add(fields, to);
        }
        OpSpec::Bucket { field, to, ranges } => {
            need(field, "field");
            if ranges.is_empty() {
                errors.push(
                    SpecError::new(path, "`ranges` is empty")
                        .hint("add ranges = [{ min = 18, max = 24, label = \"18-24\" }, ...]"),
                );
            }
            for r in ranges {
                if let (Some(lo), Some(hi)) = (r.min, r.max) {
                    if lo > hi {
                        errors.push(SpecError::new(
                            path,
                            format!("range `{}` has min {lo} > max {hi}", r.label),
                        ));
                    }
                }
            }
            add(fields, to);
        }
        OpSpec::Require { fields: r } => r.iter().for_each(|f| need(f, "fields")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(json: &str) -> Record {
        Record::from_json(json.as_bytes()).unwrap()
    }

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

    #[test]
    fn select_reorders_and_fills_missing_with_null() {
        let mut r = rec(r#"{"b":1,"a":2}"#);
        Op::Select {
            fields: names(&["a".into(), "c".into(), "b".into()]),
        }
        .apply(&mut r)
        .unwrap();
        assert_eq!(r.to_json(), r#"{"a":2,"c":null,"b":1}"#);
    }

    #[test]
    fn regression_out_of_range_ind_is_a_cast_error_not_clamped() {
        let reject = Op::Cast {
            field: intern("ind"),
            to: CastType::Int,
            on_error: OnError::Reject,
        };
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
        let nulling = Op::Cast {
            field: intern("age"),
            to: CastType::Int,
            on_error: OnError::Null,
        };
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
        let op = Op::Cast {
            field: intern("ind"),
            to: CastType::Int,
            on_error: OnError::Reject,
        };
        assert!(op.apply(&mut r).unwrap_err().contains("ind"));
        let mut r = rec(r#"{"ind":"12"}"#);
        op.apply(&mut r).unwrap();
        assert_eq!(r.get("ind"), Some(&Value::Int(12)));
    }

    #[test]
    fn raw_needs_walks_back_through_renames_and_derivations() {
        let ops = vec![
            OpSpec::NullIf {
                fields: FieldSet::All("*".into()),
                values: vec![String::new()],
            },
            OpSpec::Rename {
                from: "index".into(),
                to: "ind".into(),
            },
            OpSpec::Cast {
                field: "ind".into(),
                to: CastType::Int,
                on_error: OnError::Reject,
            },
            OpSpec::Concat {
                fields: vec!["a".into(), "b".into()],
                separator: " ".into(),
                to: "ab".into(),
            },
            OpSpec::Require {
                fields: vec!["must".into()],
            },
            OpSpec::Select {
                fields: vec!["ind".into(), "ab".into(), "x".into(), "unused".into()],
            },
        ];
        let mut got = raw_needs(&ops, &["ind".into(), "ab".into(), "x".into()]);
        got.sort();
        assert_eq!(got, ["a", "b", "ind", "index", "must", "x"]);
    }

    #[test]
    fn check_points_at_misspelt_fields() {
        let mut fields = Some(vec!["first_name".to_string(), "last_name".to_string()]);
        let mut errors = Vec::new();
        let op = OpSpec::Concat {
            fields: vec!["first_nam".into(), "last_name".into()],
            separator: " ".into(),
            to: "user_name".into(),
        };
        check(&op, &mut fields, "source[2].op[1]", &mut errors);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].hint.as_deref(), Some("did you mean `first_name`?"));
        assert!(fields.unwrap().contains(&"user_name".to_string()));
    }
}
