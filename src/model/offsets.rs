//! Source positions: which offsets of each topic-partition are already in
//! the state.
//!
//! Offsets are state: the engine records them in the same RocksDB write batch
//! as the aggregate changes they produced, so after any crash state and
//! positions agree. A position is a set of half-open offset ranges, not just
//! "next offset": a live consumer only ever extends one range from 0, but an
//! archive may be replayed in pieces in any order (a later half first, or
//! every other file), and each record must still be applied exactly once.
//!
//! Everything here is pure and testable without I/O.

use std::collections::HashMap;

/// Processed offsets of one partition: sorted, disjoint, non-adjacent
/// half-open ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges(Vec<(i64, i64)>);

impl Ranges {
    pub fn contains(&self, offset: i64) -> bool {
        let i = self.0.partition_point(|&(_, end)| end <= offset);
        self.0.get(i).is_some_and(|&(start, _)| start <= offset)
    }

    /// Marks `offset` processed. O(1) for the common in-order case.
    pub fn insert(&mut self, offset: i64) {
        if let Some(last) = self.0.last_mut() {
            if last.1 == offset {
                last.1 += 1;
                return;
            }
            if last.0 <= offset && offset < last.1 {
                return;
            }
        }
        self.insert_range(offset, offset + 1);
    }

    /// Marks `[start, end)` processed.
    pub fn insert_range(&mut self, start: i64, end: i64) {
        if start >= end {
            return;
        }
        let i = self.0.partition_point(|&(_, e)| e < start);
        let mut j = i;
        let (mut s, mut e) = (start, end);
        while j < self.0.len() && self.0[j].0 <= e {
            s = s.min(self.0[j].0);
            e = e.max(self.0[j].1);
            j += 1;
        }
        self.0.splice(i..j, [(s, e)]);
    }

    /// The offset a consumer resumes from: the end of the range that starts
    /// at or before `from` (records below it are all processed).
    /// Whether every offset of `[start, end)` is in the ranges.
    pub fn covers(&self, start: i64, end: i64) -> bool {
        end <= start || self.0.iter().any(|&(a, b)| a <= start && end <= b)
    }

    pub fn resume_from(&self, from: i64) -> i64 {
        match self.0.first() {
            Some(&(s, e)) if s <= from => e.max(from),
            _ => from,
        }
    }

    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.0
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.0
            .iter()
            .flat_map(|&(s, e)| s.to_le_bytes().into_iter().chain(e.to_le_bytes()))
            .collect()
    }

    pub fn from_bytes(b: &[u8]) -> Option<Ranges> {
        if !b.len().is_multiple_of(16) {
            return None;
        }
        let v: Vec<(i64, i64)> = b
            .chunks(16)
            .map(|c| {
                (
                    i64::from_le_bytes(c[..8].try_into().unwrap()),
                    i64::from_le_bytes(c[8..].try_into().unwrap()),
                )
            })
            .collect();
        let ok = v.iter().all(|(s, e)| s < e) && v.windows(2).all(|w| w[0].1 < w[1].0);
        ok.then_some(Ranges(v))
    }
}

/// Positions of every partition, with the partitions changed since the last
/// commit.
#[derive(Debug, Default)]
pub struct Positions {
    map: HashMap<(String, i32), Ranges>,
    dirty: Vec<(String, i32)>,
}

impl Positions {
    pub fn load(entries: impl IntoIterator<Item = ((String, i32), Ranges)>) -> Positions {
        Positions {
            map: entries.into_iter().collect(),
            dirty: Vec::new(),
        }
    }

    pub fn is_done(&self, topic: &str, partition: i32, offset: i64) -> bool {
        // Lookup without allocating the key: partitions are few.
        self.map
            .iter()
            .find(|((t, p), _)| *p == partition && t == topic)
            .is_some_and(|(_, r)| r.contains(offset))
    }

    pub fn mark(&mut self, topic: &str, partition: i32, offset: i64) {
        self.mark_range(topic, partition, offset, offset + 1);
    }

    /// Marks `[start, end)` of a partition processed.
    pub fn mark_range(&mut self, topic: &str, partition: i32, start: i64, end: i64) {
        if !self.dirty.iter().any(|(t, p)| *p == partition && t == topic) {
            self.dirty.push((topic.to_string(), partition));
        }
        match self.map.iter_mut().find(|((t, p), _)| *p == partition && t == topic) {
            Some((_, r)) => r.insert_range(start, end),
            None => {
                let mut r = Ranges::default();
                r.insert_range(start, end);
                self.map.insert((topic.to_string(), partition), r);
            }
        }
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<&Ranges> {
        self.map.get(&(topic.to_string(), partition))
    }

    /// Partitions changed since the last call, with their ranges.
    pub fn take_dirty(&mut self) -> Vec<((String, i32), Ranges)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|k| {
                let r = self.map.get(&k).cloned().unwrap_or_default();
                (k, r)
            })
            .collect()
    }

    pub fn all(&self) -> impl Iterator<Item = (&(String, i32), &Ranges)> {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_inserts_make_one_range() {
        let mut r = Ranges::default();
        for o in 0..1000 {
            r.insert(o);
        }
        assert_eq!(r.ranges(), &[(0, 1000)]);
        assert!(r.contains(999) && !r.contains(1000) && !r.contains(-1));
        assert_eq!(r.resume_from(0), 1000);
    }

    #[test]
    fn out_of_order_pieces_merge() {
        let mut r = Ranges::default();
        for o in (200..300).chain(0..100) {
            r.insert(o);
        }
        assert_eq!(r.ranges(), &[(0, 100), (200, 300)]);
        assert!(!r.contains(150));
        assert_eq!(r.resume_from(0), 100);
        for o in 100..200 {
            r.insert(o);
        }
        assert_eq!(r.ranges(), &[(0, 300)]);
        r.insert(50);
        assert_eq!(r.ranges(), &[(0, 300)]);
    }

    #[test]
    fn bytes_round_trip_and_reject_garbage() {
        let mut r = Ranges::default();
        [5, 6, 9, 1].into_iter().for_each(|o| r.insert(o));
        assert_eq!(Ranges::from_bytes(&r.to_bytes()), Some(r));
        assert_eq!(Ranges::from_bytes(&[1, 2, 3]), None);
    }

    #[test]
    fn positions_track_dirty_partitions() {
        let mut p = Positions::default();
        p.mark("t", 0, 0);
        p.mark("t", 0, 1);
        p.mark("u", 2, 7);
        assert!(p.is_done("t", 0, 1) && !p.is_done("t", 1, 1));
        let d = p.take_dirty();
        assert_eq!(d.len(), 2);
        assert!(p.take_dirty().is_empty());
    }
}
