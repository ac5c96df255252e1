//! Quantile sketches for `quantiles` stores: exact while small, t-digest
//! when large.
//!
//! A t-digest's centroids depend on how values were grouped into merges, so
//! two runs that commit at different points (a crash and restart, another
//! commit interval) can give slightly different medians, each within the
//! rank-error bound but not equal. While a group has at most
//! [`EXACT_LIMIT`] distinct values the sketch is an exact multiset instead
//! (value → count): merging adds counts, so the result does not depend on
//! batching at all, and a retraction is exact (a count of −1). Follower
//! counts are coarse ("27k", "2M"), so the pipeline's groups stay exact;
//! past the limit the sketch becomes a t-digest (`tdigest.rs`), which ignores
//! retractions (documented in the README).
//!
//! Serialized form: tag byte `E` then (value f64, count i64) pairs sorted by
//! value; or tag `T` then the t-digest bytes. Untagged bytes are read as a
//! t-digest (state written before sketches existed).

use std::collections::BTreeMap;

use crate::aggregate::tdigest::TDigest;

/// Most distinct values kept exactly.
pub const EXACT_LIMIT: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub enum Sketch {
    /// value (as order-preserving bits) → count
    Exact(BTreeMap<u64, i64>),
    Digest(TDigest),
}

fn key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

fn value(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// Weighted values counted by value (as order-preserving bits): what a
/// group's pending updates are kept as between commits. A group has few
/// distinct values (coarse follower counts) but up to millions of them, so
/// counting them as they come keeps the buffer small and leaves the commit
/// (or a batch replay's final write) only the distinct values to sort.
///
/// Hashed with [`ValueHasher`], not Fx: see there.
pub type Counts = std::collections::HashMap<u64, i64, std::hash::BuildHasherDefault<ValueHasher>>;

/// The hasher of [`Counts`]: one folded multiply (the 128-bit product's
/// halves xored), so every bit of the value reaches the bucket index and
/// the control byte.
///
/// Fx multiplies and rotates, which keeps the product's zero low bits:
/// an integral follower count (`4000.0`, `658.0`) has 44 or more zero low
/// bits as an `f64`, so such values shared a few control bytes and home
/// buckets (4,000 of them: 8 of 128 and 1,194 of 4,096), and inserts
/// compared their way along long clusters. Regression:
/// `integral_values_spread_over_buckets`.
#[derive(Default, Clone, Copy)]
pub struct ValueHasher(u64);

impl std::hash::Hasher for ValueHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        let p = u128::from(self.0 ^ x) * 0x9E37_79B9_7F4A_7C15_u128;
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Adds `w` (−1 = a retraction) to value `x`'s count; NaN is left out.
#[inline]
pub fn add_weighted(counts: &mut Counts, x: f64, w: i64) {
    if !x.is_nan() {
        *counts.entry(key(x)).or_insert(0) += w;
    }
}

/// Adds the counts of `other` to `counts`.
pub fn add_counts(counts: &mut Counts, other: Counts) {
    if counts.is_empty() {
        *counts = other;
        return;
    }
    for (k, c) in other {
        *counts.entry(k).or_insert(0) += c;
    }
}

impl Sketch {
    /// A sketch of weighted values (weight −1 = a retraction).
    pub fn from_weighted(compression: f64, values: &[(f64, i64)]) -> Sketch {
        let mut counts = Counts::default();
        for &(x, w) in values {
            add_weighted(&mut counts, x, w);
        }
        Sketch::from_counts(compression, counts)
    }

    /// A sketch of counted values ([`add_weighted`]).
    pub fn from_counts(compression: f64, counts: Counts) -> Sketch {
        let m: BTreeMap<u64, i64> = counts.into_iter().filter(|(_, c)| *c != 0).collect();
        Sketch::Exact(m).bounded(compression)
    }

    /// Turns an exact sketch that grew past the limit into a t-digest.
    fn bounded(self, compression: f64) -> Sketch {
        match self {
            Sketch::Exact(m) if m.len() > EXACT_LIMIT => {
                let mut values = Vec::new();
                for (k, c) in m.into_iter().filter(|(_, c)| *c > 0) {
                    values.extend(std::iter::repeat_n(value(k), c as usize));
                }
                Sketch::Digest(TDigest::from_values(compression, &values))
            }
            s => s,
        }
    }

    /// Merges `other` into `self`.
    pub fn merge(self, other: Sketch, compression: f64) -> Sketch {
        match (self, other) {
            (Sketch::Exact(mut a), Sketch::Exact(b)) => {
                for (k, c) in b {
                    *a.entry(k).or_insert(0) += c;
                }
                a.retain(|_, c| *c != 0);
                Sketch::Exact(a).bounded(compression)
            }
            (a, b) => {
                let (mut da, db) = (a.into_digest(compression), b.into_digest(compression));
                da.merge(&[&db]);
                Sketch::Digest(da)
            }
        }
    }

    fn into_digest(self, compression: f64) -> TDigest {
        match self {
            Sketch::Digest(d) => d,
            Sketch::Exact(m) => {
                let mut values = Vec::new();
                for (k, c) in m.into_iter().filter(|(_, c)| *c > 0) {
                    values.extend(std::iter::repeat_n(value(k), c as usize));
                }
                TDigest::from_values(compression, &values)
            }
        }
    }

    /// The value at rank ⌊q·n⌋ (exact), or the t-digest's estimate.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        match self {
            Sketch::Digest(d) => d.quantile(q),
            Sketch::Exact(m) => {
                let n: i64 = m.values().filter(|c| **c > 0).sum();
                if n <= 0 {
                    return None;
                }
                let target = ((q.clamp(0.0, 1.0) * n as f64).floor() as i64).min(n - 1);
                let mut cum = 0;
                for (k, c) in m.iter().filter(|(_, c)| **c > 0) {
                    cum += c;
                    if target < cum {
                        return Some(value(*k));
                    }
                }
                None
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Sketch::Exact(m) => {
                let mut out = Vec::with_capacity(1 + m.len() * 16);
                out.push(b'E');
                for (k, c) in m {
                    out.extend_from_slice(&value(*k).to_le_bytes());
                    out.extend_from_slice(&c.to_le_bytes());
                }
                out
            }
            Sketch::Digest(d) => {
                let mut out = vec![b'T'];
                out.extend_from_slice(&d.to_bytes());
                out
            }
        }
    }

    pub fn from_bytes(b: &[u8]) -> Option<Sketch> {
        match b.split_first() {
            Some((b'E', rest)) if rest.len().is_multiple_of(16) => Some(Sketch::Exact(
                rest.chunks(16)
                    .map(|c| {
                        (
                            key(f64::from_le_bytes(c[..8].try_into().unwrap())),
                            i64::from_le_bytes(c[8..].try_into().unwrap()),
                        )
                    })
                    .collect(),
            )),
            Some((b'T', rest)) => TDigest::from_bytes(rest).map(Sketch::Digest),
            _ => TDigest::from_bytes(b).map(Sketch::Digest),
        }
    }

    /// The RocksDB merge operator body.
    pub fn merge_bytes<'a>(
        existing: Option<&[u8]>,
        operands: impl Iterator<Item = &'a [u8]>,
        compression: f64,
    ) -> Vec<u8> {
        let mut acc = existing
            .and_then(Sketch::from_bytes)
            .unwrap_or(Sketch::Exact(BTreeMap::new()));
        for s in operands.filter_map(Sketch::from_bytes) {
            acc = acc.merge(s, compression);
        }
        acc.to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Integral values (what follower counts are) must reach many bucket
    /// indices and control bytes: under Fx they reached 1,194 and 8.
    #[test]
    fn integral_values_spread_over_buckets() {
        use std::hash::BuildHasher;
        let build = std::hash::BuildHasherDefault::<ValueHasher>::default();
        let hashes: Vec<u64> = (1..=2000u64)
            .flat_map(|n| [n as f64, (n * 1000) as f64])
            .map(|x| build.hash_one(key(x)))
            .collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        let top: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(low.len() > 2000, "{} bucket indices of 4096", low.len());
        assert!(top.len() > 120, "{} control bytes of 128", top.len());
    }

    #[test]
    fn exact_sketches_do_not_depend_on_batching_and_retract_exactly() {
        let values: Vec<f64> = (0..5000).map(|i| ((i * 7919) % 300) as f64 * 1000.0).collect();
        let whole = Sketch::from_weighted(200.0, &values.iter().map(|&x| (x, 1)).collect::<Vec<_>>());
        for chunk in [1, 7, 333, 2500] {
            let merged = values
                .chunks(chunk)
                .map(|c| Sketch::from_weighted(200.0, &c.iter().map(|&x| (x, 1)).collect::<Vec<_>>()))
                .fold(Sketch::Exact(BTreeMap::new()), |a, b| a.merge(b, 200.0));
            assert_eq!(merged, whole, "chunk {chunk}");
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(whole.quantile(0.5), Some(sorted[2500]));
        // Retract every value above the median: the median moves down exactly.
        let retract: Vec<(f64, i64)> = sorted[2500..].iter().map(|&x| (x, -1)).collect();
        let less = whole.clone().merge(Sketch::from_weighted(200.0, &retract), 200.0);
        assert_eq!(less.quantile(0.5), Some(sorted[1250]));
    }

    #[test]
    fn large_sketches_become_t_digests_and_bytes_round_trip() {
        let values: Vec<(f64, i64)> = (0..10_000).map(|i| (i as f64, 1)).collect();
        let s = Sketch::from_weighted(200.0, &values);
        assert!(matches!(s, Sketch::Digest(_)));
        let m = s.quantile(0.5).unwrap();
        assert!((m - 5000.0).abs() <= 100.0, "{m}");
        for s in [s, Sketch::from_weighted(200.0, &[(3.0, 2), (-1.5, 1)])] {
            assert_eq!(Sketch::from_bytes(&s.to_bytes()), Some(s));
        }
        let legacy = TDigest::from_values(100.0, &[1.0, 2.0]).to_bytes();
        assert!(matches!(Sketch::from_bytes(&legacy), Some(Sketch::Digest(_))));
    }
}
