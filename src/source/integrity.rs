//! Archive integrity: gaps and overlaps between the objects of a partition.
//!
//! Each archive object covers `[start, start + records)` of its partition
//! (its name gives the start, its line count the length). The Confluent S3
//! sink can leave *overlapping* objects (a task retried after a rebalance, a
//! conditional write that collided) and, if objects were lost or deleted,
//! *gaps*. Overlapping records count once in a replay anyway (positions are
//! state); gaps are records the archive does not have, which a replay cannot
//! know from its own counts, so they are reported with topic, partition and
//! offset range.
//!
//! [`Checker`] is a pure state machine over `(topic, partition, start,
//! records)`, in any order: a bucket lists keys in key order, which is
//! offset order only while every start offset has the same number of
//! digits (the sink's zero padding) and a partition's offsets do not go
//! back to an earlier time directory. It keeps the offsets seen per
//! partition as ranges (one range for an archive without holes, however
//! many objects): the part of an object already seen is an overlap when the
//! object comes; the holes left between the ranges are the gaps, known at
//! [`Checker::finish`].

use std::collections::BTreeMap;

use crate::model::offsets::Ranges;

/// What is wrong between two objects of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The offsets are in no object.
    Gap,
    /// The offsets are in more than one object.
    Overlap,
}

/// A problem between two objects of one partition: offsets `[from, to)`,
/// found at `object` (the one after a gap, the repeating one of an overlap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    pub topic: String,
    pub partition: i32,
    pub from: i64,
    pub to: i64,
    pub object: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, how) = match self.kind {
            Kind::Gap => ("gap", "missing before"),
            Kind::Overlap => ("overlap", "also in"),
        };
        write!(
            f,
            "{what}: {} partition {} offsets {}..{} ({} records) {how} {}",
            self.topic,
            self.partition,
            self.from,
            self.to - 1,
            self.to - self.from,
            self.object
        )?;
        if self.kind == Kind::Overlap {
            f.write_str(" (counted once)")?;
        }
        Ok(())
    }
}

/// What one partition's objects cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionSummary {
    pub objects: u64,
    pub records: u64,
    /// The lowest offset seen.
    pub first: Option<i64>,
    /// The end of the highest range seen (exclusive).
    pub end: i64,
    /// Records missing between the ranges (set by [`Checker::finish`]).
    pub gap_records: u64,
    pub overlap_records: u64,
    /// Objects that start below the object before them: the order they
    /// came in was not offset order.
    pub out_of_order: u64,
    last_start: Option<i64>,
    /// Whether the partition's objects lie in more than one directory (a
    /// time-based layout), and the directory of the last one.
    pub several_dirs: bool,
    last_dir: Option<String>,
    seen: Ranges,
    /// The objects that began a range no earlier object reached, by start:
    /// what a gap ending there is reported before.
    begins: BTreeMap<i64, String>,
}

/// Checks objects as they are listed.
#[derive(Debug, Default)]
pub struct Checker {
    pub partitions: BTreeMap<(String, i32), PartitionSummary>,
    pub findings: Vec<Finding>,
}

impl Checker {
    /// Takes the next object of a partition (in any order).
    pub fn object(&mut self, topic: &str, partition: i32, start: i64, records: u64, name: &str) {
        let p = self.partitions.entry((topic.to_string(), partition)).or_default();
        p.objects += 1;
        p.records += records;
        if p.last_start.is_some_and(|l| start < l) {
            p.out_of_order += 1;
        }
        p.last_start = Some(start);
        let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
        match &p.last_dir {
            Some(d) if d == dir => {}
            Some(_) => {
                p.several_dirs = true;
                p.last_dir = Some(dir.to_string());
            }
            None => p.last_dir = Some(dir.to_string()),
        }
        if records == 0 {
            return;
        }
        let end = start + records as i64;
        for (from, to) in intersections(p.seen.ranges(), start, end) {
            p.overlap_records += (to - from) as u64;
            self.findings.push(Finding {
                kind: Kind::Overlap,
                topic: topic.into(),
                partition,
                from,
                to,
                object: name.into(),
            });
        }
        if !p.seen.contains(start) && !p.seen.contains(start - 1) {
            p.begins.insert(start, name.into());
        }
        p.seen.insert_range(start, end);
        p.first = Some(p.first.map_or(start, |f| f.min(start)));
        p.end = p.end.max(end);
    }

    /// Reports the holes between each partition's ranges as gaps (call
    /// once, after the last object).
    pub fn finish(&mut self) {
        for ((topic, partition), p) in &mut self.partitions {
            for w in p.seen.ranges().windows(2) {
                let (from, to) = (w[0].1, w[1].0);
                p.gap_records += (to - from) as u64;
                self.findings.push(Finding {
                    kind: Kind::Gap,
                    topic: topic.clone(),
                    partition: *partition,
                    from,
                    to,
                    object: p.begins.get(&to).cloned().unwrap_or_default(),
                });
            }
            p.begins.clear();
        }
    }

    pub fn gaps(&self) -> usize {
        self.findings.iter().filter(|f| f.kind == Kind::Gap).count()
    }

    pub fn overlaps(&self) -> usize {
        self.findings.len() - self.gaps()
    }

    /// Records counted once in partitions whose objects lie in several
    /// time directories. There an "overlap" may be no repeat at all: the
    /// Confluent sink's TimeBasedPartitioner without `rotate.interval.ms`
    /// writes one flush into a file per directory, each named by its first
    /// offset, so the files' offsets interleave and are not consecutive,
    /// which is what a replay takes them for.
    pub fn overlap_records_across_dirs(&self) -> u64 {
        self.partitions
            .values()
            .filter(|p| p.several_dirs)
            .map(|p| p.overlap_records)
            .sum()
    }

    /// Objects, over all partitions, that came below the one before them.
    pub fn out_of_order(&self) -> u64 {
        self.partitions.values().map(|p| p.out_of_order).sum()
    }
}

/// What a replay and `archive check` say about
/// [`Checker::overlap_records_across_dirs`].
pub fn across_dirs_hint(records: u64) -> String {
    format!(
        "{records} of those records lie in partitions whose objects span several time directories: there they may \
         be no repeats but records of one flush that the sink wrote into a file per directory (TimeBasedPartitioner \
         without rotate.interval.ms), whose offsets interleave; pinstream reads each object as consecutive offsets \
         and counted them once. Set rotate.interval.ms on the sink to keep every object consecutive"
    )
}

/// The parts of `[start, end)` inside `ranges` (sorted, disjoint).
fn intersections(ranges: &[(i64, i64)], start: i64, end: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
    let first = ranges.partition_point(|&(_, e)| e <= start);
    ranges[first..]
        .iter()
        .take_while(move |&&(s, _)| s < end)
        .map(move |&(s, e)| (s.max(start), e.min(end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abutting_objects_are_clean() {
        let mut c = Checker::default();
        c.object("t", 0, 0, 500, "a");
        c.object("t", 0, 500, 500, "b");
        c.object("t", 1, 0, 3, "c");
        c.finish();
        assert!(c.findings.is_empty());
        assert_eq!(c.out_of_order(), 0);
        assert_eq!(c.partitions[&("t".to_string(), 0)].records, 1000);
        assert_eq!(c.partitions[&("t".to_string(), 0)].end, 1000);
    }

    #[test]
    fn gaps_and_overlaps_name_partition_and_offsets() {
        let mut c = Checker::default();
        c.object("t", 0, 0, 500, "t+0+0000000000.json");
        c.object("t", 0, 700, 100, "t+0+0000000700.json"); // 500..699 missing
        c.object("t", 0, 750, 100, "t+0+0000000750.json"); // 750..799 twice
        c.object("t", 0, 760, 10, "t+0+0000000760.json"); // inside: all twice
        c.finish();
        assert_eq!(
            c.findings,
            [
                Finding {
                    kind: Kind::Overlap,
                    topic: "t".into(),
                    partition: 0,
                    from: 750,
                    to: 800,
                    object: "t+0+0000000750.json".into()
                },
                Finding {
                    kind: Kind::Overlap,
                    topic: "t".into(),
                    partition: 0,
                    from: 760,
                    to: 770,
                    object: "t+0+0000000760.json".into()
                },
                Finding {
                    kind: Kind::Gap,
                    topic: "t".into(),
                    partition: 0,
                    from: 500,
                    to: 700,
                    object: "t+0+0000000700.json".into()
                },
            ]
        );
        let p = &c.partitions[&("t".to_string(), 0)];
        assert_eq!((p.gap_records, p.overlap_records, p.end), (200, 60, 850));
        assert_eq!((c.gaps(), c.overlaps()), (1, 2));
        assert_eq!(
            c.findings[2].to_string(),
            "gap: t partition 0 offsets 500..699 (200 records) missing before t+0+0000000700.json"
        );
    }

    /// Regression: start offsets written without zero padding (`t+0+7`,
    /// `t+0+14`, …) come from a bucket in key order, not offset order; the
    /// check reported every object after a longer number as a gap or an
    /// overlap although the archive had neither.
    #[test]
    fn objects_out_of_offset_order_are_checked_as_a_whole() {
        let mut starts: Vec<i64> = (0..60).map(|k| k * 7).collect();
        starts.sort_by_key(|s| s.to_string());
        assert_ne!(starts, (0..60).map(|k| k * 7).collect::<Vec<_>>());
        let mut c = Checker::default();
        for s in &starts {
            c.object("t", 0, *s, 7, &format!("t+0+{s}.json"));
        }
        c.finish();
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        let p = &c.partitions[&("t".to_string(), 0)];
        assert_eq!((p.first, p.end, p.records, p.objects), (Some(0), 420, 420, 60));
        // 7, 70, 77, … each came after a larger number.
        assert_eq!(
            c.out_of_order(),
            starts.windows(2).filter(|w| w[1] < w[0]).count() as u64
        );
        assert!(c.out_of_order() > 0);
        // One missing object, found wherever it would have come.
        let mut c = Checker::default();
        for s in starts.iter().filter(|&&s| s != 140) {
            c.object("t", 0, *s, 7, &format!("t+0+{s}.json"));
        }
        c.finish();
        assert_eq!(c.findings.len(), 1);
        assert_eq!(
            c.findings[0].to_string(),
            "gap: t partition 0 offsets 140..146 (7 records) missing before t+0+147.json"
        );
    }

    /// An object that fills part of a hole is not an overlap there: only
    /// the offsets seen before count twice, and only what stays missing is
    /// a gap.
    #[test]
    fn an_object_across_a_hole_overlaps_only_what_was_seen() {
        let mut c = Checker::default();
        c.object("t", 0, 0, 500, "a");
        c.object("t", 0, 700, 150, "b");
        c.object("t", 0, 450, 200, "c"); // 450..649: 450..499 twice, 500..649 new
        c.finish();
        let found: Vec<(Kind, i64, i64, &str)> = c
            .findings
            .iter()
            .map(|f| (f.kind, f.from, f.to, f.object.as_str()))
            .collect();
        assert_eq!(found, [(Kind::Overlap, 450, 500, "c"), (Kind::Gap, 650, 700, "b")]);
        let p = &c.partitions[&("t".to_string(), 0)];
        assert_eq!((p.gap_records, p.overlap_records), (50, 50));
    }

    /// One flush of the sink written into two hour directories (records
    /// 0 and 2 in one file, 1 and 3 in the other): the overlap is counted,
    /// and flagged as possibly interleaved because the directories differ;
    /// the same overlap inside one directory is a plain repeat.
    #[test]
    fn overlaps_across_time_directories_are_flagged() {
        let mut c = Checker::default();
        c.object(
            "t",
            0,
            0,
            2,
            "topics/t/year=2024/month=01/day=05/hour=01/t+0+0000000000.json",
        );
        c.object(
            "t",
            0,
            1,
            2,
            "topics/t/year=2024/month=01/day=05/hour=02/t+0+0000000001.json",
        );
        c.finish();
        assert_eq!((c.overlaps(), c.overlap_records_across_dirs()), (1, 1));
        let mut c = Checker::default();
        c.object("t", 0, 0, 2, "topics/t/partition=0/t+0+0000000000.json");
        c.object("t", 0, 1, 2, "topics/t/partition=0/t+0+0000000001.json");
        c.finish();
        assert_eq!((c.overlaps(), c.overlap_records_across_dirs()), (1, 0));
    }

    #[test]
    fn an_archive_starting_past_zero_is_not_a_gap() {
        // Retention deleted the first records before the sink ran.
        let mut c = Checker::default();
        c.object("t", 2, 9000, 10, "x");
        c.finish();
        assert!(c.findings.is_empty());
    }
}
