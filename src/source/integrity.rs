//! Archive integrity: gaps and overlaps between the objects of a partition.
//!
//! Each archive object covers `[start, start + records)` of its partition
//! (its name gives the start, its line count the length). Read in offset
//! order, consecutive objects should abut. The Confluent S3 sink can leave
//! *overlapping* objects (a task retried after a rebalance, a conditional
//! write that collided) and, if objects were lost or deleted, *gaps*.
//! Overlapping records count once in a replay anyway (positions are state);
//! gaps are records the archive does not have, which a replay cannot know
//! from its own counts, so they are reported with topic, partition and
//! offset range.
//!
//! [`Checker`] is a pure state machine over `(topic, partition, start,
//! records)` in listing order: memory is one entry per partition, however
//! many objects there are. An object that starts before the partition's
//! furthest end so far overlaps; one that starts after it leaves a gap.

use std::collections::BTreeMap;

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
    pub first: Option<i64>,
    /// The furthest end so far (exclusive).
    pub end: i64,
    pub gap_records: u64,
    pub overlap_records: u64,
}

/// Checks objects as they are listed.
#[derive(Debug, Default)]
pub struct Checker {
    pub partitions: BTreeMap<(String, i32), PartitionSummary>,
    pub findings: Vec<Finding>,
}

impl Checker {
    /// Takes the next object of a partition (in offset order within it).
    pub fn object(&mut self, topic: &str, partition: i32, start: i64, records: u64, name: &str) {
        let p = self.partitions.entry((topic.to_string(), partition)).or_default();
        let end = start + records as i64;
        p.objects += 1;
        p.records += records;
        if p.first.is_none() {
            p.first = Some(start);
            p.end = end;
            return;
        }
        if records == 0 {
            return;
        }
        if start > p.end {
            p.gap_records += (start - p.end) as u64;
            self.findings.push(Finding {
                kind: Kind::Gap,
                topic: topic.into(),
                partition,
                from: p.end,
                to: start,
                object: name.into(),
            });
        } else if start < p.end {
            let to = end.min(p.end);
            p.overlap_records += (to - start) as u64;
            self.findings.push(Finding {
                kind: Kind::Overlap,
                topic: topic.into(),
                partition,
                from: start,
                to,
                object: name.into(),
            });
        }
        p.end = p.end.max(end);
    }

    pub fn gaps(&self) -> usize {
        self.findings.iter().filter(|f| f.kind == Kind::Gap).count()
    }

    pub fn overlaps(&self) -> usize {
        self.findings.len() - self.gaps()
    }
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
        assert!(c.findings.is_empty());
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
        assert_eq!(
            c.findings,
            [
                Finding {
                    kind: Kind::Gap,
                    topic: "t".into(),
                    partition: 0,
                    from: 500,
                    to: 700,
                    object: "t+0+0000000700.json".into()
                },
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
            ]
        );
        let p = &c.partitions[&("t".to_string(), 0)];
        assert_eq!((p.gap_records, p.overlap_records, p.end), (200, 60, 850));
        assert_eq!((c.gaps(), c.overlaps()), (1, 2));
        assert_eq!(
            c.findings[0].to_string(),
            "gap: t partition 0 offsets 500..699 (200 records) missing before t+0+0000000700.json"
        );
    }

    #[test]
    fn an_archive_starting_past_zero_is_not_a_gap() {
        // Retention deleted the first records before the sink ran.
        let mut c = Checker::default();
        c.object("t", 2, 9000, 10, "x");
        assert!(c.findings.is_empty());
    }
}
