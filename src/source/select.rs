//! Which archive objects and records a replay reads: `--partitions`, the
//! time range `--from`/`--to` and the offset range `--offsets`, the same for
//! a directory and a bucket.
//!
//! The time of an object is the hour its path names in the
//! TimeBasedPartitioner's directories (`path.format`
//! `'year'=YYYY/'month'=MM/'day'=DD/'hour'=HH`; `hour=` may be absent, a
//! daily layout, and then the object stands for the whole day). `--from` is
//! inclusive and `--to` exclusive, so a daily job replays
//! `--from 2024-05-01 --to 2024-05-02`. An object whose path carries no
//! date (the DefaultPartitioner's `partition=N/`) is not selected by a time
//! range: it is counted, and a replay where that leaves nothing says why.

use chrono::{Datelike, NaiveDate, NaiveDateTime};

use super::{Poll, Source, SourceError};
use crate::model::offsets::Positions;

/// What to read (all when every field is `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub partitions: Option<Vec<i32>>,
    /// Inclusive, seconds since the epoch (UTC).
    pub from: Option<i64>,
    /// Exclusive, seconds since the epoch (UTC).
    pub to: Option<i64>,
    /// Offsets `[from, to)` of every selected partition (`--offsets`).
    pub offsets: Option<(i64, i64)>,
}

/// Why an object is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excluded {
    Partition,
    OutsideRange,
    /// A time range was asked for and the path names no date.
    NoDate,
}

impl Selection {
    pub fn has_range(&self) -> bool {
        self.from.is_some() || self.to.is_some()
    }

    /// Whether the object of `partition` starting at offset `start`, at
    /// `path` (its key or file path), is read. (An object that starts
    /// before `--offsets` may still reach into it: its records are
    /// filtered by [`OffsetRange`].)
    pub fn admits(&self, partition: i32, start: i64, path: &str) -> Result<(), Excluded> {
        if self.partitions.as_ref().is_some_and(|p| !p.contains(&partition)) {
            return Err(Excluded::Partition);
        }
        if self.offsets.is_some_and(|(_, to)| start >= to) {
            return Err(Excluded::OutsideRange);
        }
        if !self.has_range() {
            return Ok(());
        }
        let Some((start, end)) = path_time(path) else {
            return Err(Excluded::NoDate);
        };
        if self.misses((start, end)) {
            return Err(Excluded::OutsideRange);
        }
        Ok(())
    }

    /// Whether the span `[start, end)` (of an object, or of a directory
    /// [`DirDate::enter`] names) lies outside `[from, to)`.
    pub fn misses(&self, (start, end): (i64, i64)) -> bool {
        self.from.is_some_and(|f| end <= f) || self.to.is_some_and(|t| start >= t)
    }
}

/// The date that the partitioner directories above a directory name, level
/// by level (`year=`, then `month=`, `day=`, `hour=`): how a local walk
/// skips the directories a `--from/--to` range cannot reach, so a daily job
/// does not list a year of hours. Only the levels in that order count; any
/// other directory (`partition=0`, a prefix) leaves the date as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirDate {
    year: Option<i32>,
    month: Option<u32>,
    day: Option<u32>,
}

impl DirDate {
    /// The date below directory `name`, and the span `[start, end)` the
    /// directory covers if it is the next level.
    pub fn enter(self, name: &str) -> (DirDate, Option<(i64, i64)>) {
        let Some((k, v)) = name.split_once('=') else {
            return (self, None);
        };
        let Ok(v) = v.parse::<u32>() else {
            return (self, None);
        };
        let at = |y: i32, m: u32, d: u32| {
            NaiveDate::from_ymd_opt(y, m, d)?
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp())
        };
        let (date, span) = match (k, self.year, self.month, self.day) {
            ("year", None, None, None) => {
                let y = v as i32;
                (DirDate { year: Some(y), ..self }, at(y, 1, 1).zip(at(y + 1, 1, 1)))
            }
            ("month", Some(y), None, None) => {
                let next = if v == 12 { at(y + 1, 1, 1) } else { at(y, v + 1, 1) };
                (DirDate { month: Some(v), ..self }, at(y, v, 1).zip(next))
            }
            ("day", Some(y), Some(m), None) => (DirDate { day: Some(v), ..self }, at(y, m, v).map(|s| (s, s + 86_400))),
            ("hour", Some(y), Some(m), Some(d)) if v < 24 => {
                return (
                    self,
                    at(y, m, d).map(|s| (s + 3_600 * v as i64, s + 3_600 * (v as i64 + 1))),
                );
            }
            _ => return (self, None),
        };
        match span {
            Some(span) => (date, Some(span)),
            // Not a date (month=13): no level entered, nothing pruned.
            None => (self, None),
        }
    }
}

/// Parses `--offsets`: `FROM..TO` (to exclusive), `FROM..` or `..TO`.
pub fn parse_offsets(s: &str) -> Result<(i64, i64), String> {
    let bad = || format!("`{s}` is not an offset range: use FROM..TO (TO exclusive), FROM.. or ..TO");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let from = if a.trim().is_empty() {
        0
    } else {
        a.trim().parse().map_err(|_| bad())?
    };
    let to = if b.trim().is_empty() {
        i64::MAX
    } else {
        b.trim().parse().map_err(|_| bad())?
    };
    if from < 0 || to <= from {
        return Err(bad());
    }
    Ok((from, to))
}

/// A source whose batches keep only the records whose offsets lie in
/// `[from, to)` (`--offsets`); the others are not read into the state, so
/// a later replay with another range adds them.
pub struct OffsetRange<S> {
    pub inner: S,
    pub from: i64,
    pub to: i64,
}

impl<S: Source> Source for OffsetRange<S> {
    fn poll(&mut self) -> Result<Poll, SourceError> {
        let (from, to) = (self.from, self.to);
        Ok(match self.inner.poll()? {
            Poll::Batch(mut b) => {
                b.records.retain(|r| (from..to).contains(&r.offset));
                if let Some(lines) = b.lines.take() {
                    b.lines = Some(Box::new(move |each: &mut dyn FnMut(i64, &[u8])| {
                        lines(&mut |offset, bytes| {
                            if (from..to).contains(&offset) {
                                each(offset, bytes)
                            }
                        })
                    }));
                }
                Poll::Batch(b)
            }
            other => other,
        })
    }

    fn resume(&mut self, state: &Positions) -> Result<(), SourceError> {
        self.inner.resume(state)
    }

    fn size_hint(&self) -> Option<u64> {
        self.inner.size_hint()
    }

    fn committed(&mut self, next: &[((String, i32), i64)]) {
        self.inner.committed(next)
    }
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH` or `YYYY-MM-DDTHH:MM[:SS]` (UTC)
/// to seconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim().trim_end_matches('Z');
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc().timestamp());
        }
    }
    if let Some((d, h)) = s.split_once(['T', ' ']) {
        if let (Ok(d), Ok(h)) = (NaiveDate::parse_from_str(d, "%Y-%m-%d"), h.parse::<u32>()) {
            if let Some(t) = d.and_hms_opt(h, 0, 0) {
                return Ok(t.and_utc().timestamp());
            }
        }
    }
    Err(format!(
        "`{s}` is not a UTC time: use YYYY-MM-DD, YYYY-MM-DDTHH or YYYY-MM-DDTHH:MM:SS"
    ))
}

/// The span `[start, end)` (epoch seconds) that a path's `year=/month=/day=`
/// (and `hour=`) directories name, if they do.
pub fn path_time(path: &str) -> Option<(i64, i64)> {
    let (mut y, mut m, mut d, mut h) = (None, None, None, None);
    for seg in path.split(['/', '\\']) {
        let Some((k, v)) = seg.split_once('=') else { continue };
        let v: u32 = match v.parse() {
            Ok(v) => v,
            Err(_) => continue,
        };
        match k {
            "year" => y = Some(v as i32),
            "month" => m = Some(v),
            "day" => d = Some(v),
            "hour" => h = Some(v),
            _ => {}
        }
    }
    let date = NaiveDate::from_ymd_opt(y?, m?, d?)?;
    match h {
        Some(h) => {
            let start = date.and_hms_opt(h, 0, 0)?.and_utc().timestamp();
            Some((start, start + 3600))
        }
        None => {
            let start = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
            Some((start, start + 86_400))
        }
    }
}

/// Where a listing of one topic's keys may start and stop for a time
/// range: `(start_after, stop_at)`, paths relative to the topic's prefix,
/// when its first key (`first`, relative too) shows the TimeBasedPartitioner
/// layout at the top (`year=YYYY/month=MM/day=DD/`, zero-padded, so key
/// order is date order); `None` for any other layout (list everything).
///
/// Whole days, so an hour of another layout under a day is never cut off:
/// every key of a day that meets `[from, to)` sorts after `start_after`
/// (the day's directory itself, exclusive) and before `stop_at` (the first
/// day at or after `to`); the admission rule ([`Selection::admits`]) then
/// decides object by object, as without the bounds. Keys after the
/// `year=` run (another layout) are listed by a jump past it
/// ([`AFTER_YEARS`]).
pub fn day_bounds(first: &str, from: Option<i64>, to: Option<i64>) -> Option<(Option<String>, Option<String>)> {
    let mut parts = first.split('/');
    let digits = |p: Option<&str>, key: &str, n: usize| {
        p.and_then(|p| p.strip_prefix(key))
            .is_some_and(|v| v.len() == n && v.bytes().all(|b| b.is_ascii_digit()))
    };
    if !(digits(parts.next(), "year=", 4) && digits(parts.next(), "month=", 2) && digits(parts.next(), "day=", 2)) {
        return None;
    }
    let day = |t: i64| {
        let d = chrono::DateTime::from_timestamp(t.div_euclid(86_400) * 86_400, 0)?.date_naive();
        (d.year() >= 0 && d.year() <= 9999)
            .then(|| format!("year={:04}/month={:02}/day={:02}/", d.year(), d.month(), d.day()))
    };
    // The first day that lies wholly at or after `to`.
    let stop = to.and_then(|t| day(t.div_euclid(86_400) * 86_400 + if t.rem_euclid(86_400) == 0 { 0 } else { 86_400 }));
    Some((from.and_then(day), stop))
}

/// A relative key after every `year=…` key (`'>'` follows `'='`): where a
/// bounded listing goes on once it passed `stop_at`.
pub const AFTER_YEARS: &str = "year>";

#[cfg(test)]
mod tests {
    use super::*;

    const HOURLY: &str = "topics/p.pin/year=2024/month=05/day=01/hour=23/p.pin+0+0000000000.json";

    #[test]
    fn paths_name_their_hour_or_day() {
        let t = parse_time("2024-05-01T23").unwrap();
        assert_eq!(path_time(HOURLY), Some((t, t + 3600)));
        let day = "s3://b/topics/p.pin/year=2024/month=05/day=01/p.pin+0+0.json";
        let d = parse_time("2024-05-01").unwrap();
        assert_eq!(path_time(day), Some((d, d + 86_400)));
        assert_eq!(path_time("topics/p.pin/partition=0/p.pin+0+0.json"), None);
        assert_eq!(path_time("topics/p.pin/year=2024/month=13/day=01/x.json"), None);
    }

    #[test]
    fn offset_ranges_parse_and_exclude_objects_that_start_past_them() {
        assert_eq!(parse_offsets("100..200"), Ok((100, 200)));
        assert_eq!(parse_offsets("100.."), Ok((100, i64::MAX)));
        assert_eq!(parse_offsets("..5"), Ok((0, 5)));
        assert!(parse_offsets("5..5").is_err() && parse_offsets("x..y").is_err() && parse_offsets("7").is_err());
        let s = Selection {
            offsets: Some((100, 200)),
            ..Default::default()
        };
        assert_eq!(s.admits(0, 0, "x"), Ok(())); // may reach into the range
        assert_eq!(s.admits(0, 199, "x"), Ok(()));
        assert_eq!(s.admits(0, 200, "x"), Err(Excluded::OutsideRange));
    }

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400);
        assert_eq!(parse_time("1970-01-01T01").unwrap(), 3600);
        assert_eq!(parse_time("1970-01-01T00:01:05Z").unwrap(), 65);
        assert_eq!(parse_time("1970-01-01 02:00").unwrap(), 7200);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn a_day_range_takes_that_days_hours_only() {
        let s = Selection {
            from: Some(parse_time("2024-05-01").unwrap()),
            to: Some(parse_time("2024-05-02").unwrap()),
            ..Default::default()
        };
        assert_eq!(s.admits(0, 0, HOURLY), Ok(()));
        let next = HOURLY.replace("day=01/hour=23", "day=02/hour=00");
        assert_eq!(s.admits(0, 0, &next), Err(Excluded::OutsideRange));
        let before = HOURLY
            .replace("day=01/hour=23", "month=04/day=30/hour=23")
            .replace("month=05/", "");
        assert_eq!(s.admits(0, 0, &before), Err(Excluded::OutsideRange));
        assert_eq!(
            s.admits(0, 0, "topics/p.pin/partition=0/p.pin+0+0.json"),
            Err(Excluded::NoDate)
        );
    }

    #[test]
    fn partitions_select_and_no_selection_takes_everything() {
        let s = Selection {
            partitions: Some(vec![0, 2]),
            ..Default::default()
        };
        assert_eq!(s.admits(2, 0, "x"), Ok(()));
        assert_eq!(s.admits(1, 0, "x"), Err(Excluded::Partition));
        assert_eq!(Selection::default().admits(7, 0, "anything"), Ok(()));
    }

    #[test]
    fn day_bounds_cover_the_days_that_meet_the_range() {
        let t = |s: &str| parse_time(s).unwrap();
        let first = "year=2024/month=01/day=03/hour=07/t+0+0000000000.json";
        let (after, stop) = day_bounds(first, Some(t("2024-01-06T05")), Some(t("2024-01-07"))).unwrap();
        assert_eq!(after.as_deref(), Some("year=2024/month=01/day=06/"));
        assert_eq!(stop.as_deref(), Some("year=2024/month=01/day=07/"));
        // `to` inside a day keeps that day; month and year roll over.
        let (_, stop) = day_bounds(first, None, Some(t("2024-12-31T01"))).unwrap();
        assert_eq!(stop.as_deref(), Some("year=2025/month=01/day=01/"));
        // Every key of a day that meets the range lies strictly between.
        let (after, stop) = day_bounds(first, Some(t("2024-01-06")), Some(t("2024-01-07"))).unwrap();
        for key in [
            "year=2024/month=01/day=06/t+0+1.json",
            "year=2024/month=01/day=06/hour=00/t+0+1.json",
        ] {
            assert!(
                after.as_deref().unwrap() < key && key < stop.as_deref().unwrap(),
                "{key}"
            );
        }
        for key in [
            "year=2024/month=01/day=05/hour=23/x",
            "year=2024/month=01/day=07/hour=00/x",
        ] {
            assert!(
                !(after.as_deref().unwrap() < key && key < stop.as_deref().unwrap()),
                "{key}"
            );
        }
        assert!(stop.as_deref().unwrap() < AFTER_YEARS && "year=9999/x" < AFTER_YEARS && AFTER_YEARS < "z");
        // Other layouts, or not zero-padded: no bounds.
        for other in [
            "partition=0/t+0+0.json",
            "year=2024/month=1/day=03/x",
            "t+0+0.json",
            "year=2024/x",
        ] {
            assert_eq!(day_bounds(other, Some(0), Some(86_400)), None, "{other}");
        }
    }
}
