//! A hash map from encoded store keys to pending deltas, with the keys in
//! one arena.
//!
//! The aggregate buffers see one lookup per aggregate per joined row, and
//! the high-cardinality ones (distinct tuples, max-by items) insert most of
//! the keys they look up. A `HashMap<Vec<u8>, V>` paid an allocation per
//! new key, a byte compare (a `memcmp` call) for every probe whose 7-bit
//! tag matched, and hashed every key again when shards were merged. Here a
//! key is a range of one growing arena, each slot keeps its full hash (a
//! probe compares bytes only when the whole hash matches; merging moves
//! slots by their stored hash), and the map can be pre-sized from a
//! previous shard's size.
//!
//! Invariant: every slot's range lies inside `arena` and holds bytes whose
//! [`hash`] is the slot's `hash`; no two slots hold equal keys.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// The hash every [`KeyMap`] uses.
#[inline]
pub fn hash(key: &[u8]) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(key)
}

/// Whether two byte strings are equal, compared inline a word at a time.
/// Keys here are short (9 to about 60 bytes) and most compares are
/// matches, so a `memcmp` call per probe was mostly call overhead (4.6% of
/// a 1,000,000-post replay's samples: the aggregate maps, their merge, and
/// the join of spilled partitions).
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if word(a, at) != word(b, at) {
                return false;
            }
            at += 8;
        }
        // The last word, overlapping the one before when `n` is not a multiple of 8.
        return word(a, n - 8) == word(b, n - 8);
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

struct Slot<V> {
    hash: u64,
    at: usize,
    len: u32,
    value: V,
}

/// Encoded keys to values (see the module docs).
pub struct KeyMap<V> {
    table: HashTable<Slot<V>>,
    arena: Vec<u8>,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap {
            table: HashTable::new(),
            arena: Vec::new(),
        }
    }
}

impl<V> KeyMap<V> {
    /// An empty map with room for `keys` keys of about `bytes` bytes in all.
    pub fn with_capacity(keys: usize, bytes: usize) -> Self {
        KeyMap {
            table: HashTable::with_capacity(keys),
            arena: Vec::with_capacity(bytes),
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The value of `key` (whose [`hash`] is `h`), inserted by `new` if absent.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: &[u8], h: u64, new: impl FnOnce() -> V) -> &mut V {
        let arena = &self.arena;
        let eq =
            |s: &Slot<V>| s.hash == h && s.len as usize == key.len() && same_bytes(&arena[s.at..s.at + key.len()], key);
        match self.table.entry(h, eq, |s| s.hash) {
            hashbrown::hash_table::Entry::Occupied(o) => &mut o.into_mut().value,
            hashbrown::hash_table::Entry::Vacant(v) => {
                let at = self.arena.len();
                self.arena.extend_from_slice(key);
                let slot = Slot {
                    hash: h,
                    at,
                    len: key.len() as u32,
                    value: new(),
                };
                &mut v.insert(slot).into_mut().value
            }
        }
    }

    /// Moves every key of `other` into this map, combining the values of
    /// keys both hold with `combine(mine, theirs)`. Keys are not hashed again.
    pub fn absorb(&mut self, other: KeyMap<V>, mut combine: impl FnMut(&mut V, V)) {
        if self.is_empty() && self.arena.capacity() <= other.arena.capacity() {
            *self = other;
            return;
        }
        self.table.reserve(other.len(), |s| s.hash);
        let theirs = other.arena;
        for s in other.table {
            let key = &theirs[s.at..s.at + s.len as usize];
            let mut value = Some(s.value);
            let mine = self.get_or_insert_with(key, s.hash, || value.take().expect("taken once"));
            if let Some(v) = value {
                combine(mine, v);
            }
        }
    }

    /// The entries in key order, with the arena their keys index.
    pub fn into_sorted(self) -> Sorted<V> {
        let arena = self.arena;
        let mut items: Vec<(usize, u32, V)> = self.table.into_iter().map(|s| (s.at, s.len, s.value)).collect();
        items.sort_unstable_by(|a, b| arena[a.0..a.0 + a.1 as usize].cmp(&arena[b.0..b.0 + b.1 as usize]));
        Sorted { arena, items }
    }
}

/// A [`KeyMap`]'s entries in key order ([`KeyMap::into_sorted`]).
pub struct Sorted<V> {
    arena: Vec<u8>,
    items: Vec<(usize, u32, V)>,
}

impl<V> Sorted<V> {
    /// Each key with its value, in key order.
    pub fn into_owned(self) -> impl Iterator<Item = (Vec<u8>, V)> {
        let arena = self.arena;
        self.items
            .into_iter()
            .map(move |(at, len, v)| (arena[at..at + len as usize].to_vec(), v))
    }

    /// Calls `f` with each key and its value, in key order (no copy of the key).
    pub fn for_each<E>(self, mut f: impl FnMut(&[u8], V) -> Result<(), E>) -> Result<(), E> {
        for (at, len, v) in self.items {
            f(&self.arena[at..at + len as usize], v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Against `==` for every length up to 40 and a difference at every
    /// position (in the words, in the overlapping last word, in the tail).
    #[test]
    fn same_bytes_agrees_with_slice_equality() {
        for n in 0..40usize {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            assert!(same_bytes(&a, &a.clone()));
            assert!(!same_bytes(&a, &a[..n.saturating_sub(1)]) || n == 0);
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x40;
                assert_eq!(same_bytes(&a, &b), a == b, "len {n}, difference at {at}");
                assert!(!same_bytes(&a, &b));
            }
        }
    }

    fn add(m: &mut KeyMap<i64>, k: &[u8], d: i64) {
        *m.get_or_insert_with(k, hash(k), || 0) += d;
    }

    /// Against a BTreeMap: inserts, repeats, absorbs (both into an empty
    /// map and into a full one) and the sorted order of the result.
    #[test]
    fn keymap_agrees_with_a_btreemap() {
        let mut want: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut a = KeyMap::default();
        let mut b = KeyMap::with_capacity(4, 16);
        let mut c = KeyMap::default();
        let mut x: u64 = 7;
        for i in 0..20_000i64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let len = (x >> 60) as usize;
            let key: Vec<u8> = (0..len).map(|j| ((x >> (8 * j)) as u8) % 5).collect();
            *want.entry(key.clone()).or_default() += i;
            match i % 3 {
                0 => add(&mut a, &key, i),
                1 => add(&mut b, &key, i),
                _ => add(&mut c, &key, i),
            }
        }
        let mut empty = KeyMap::default();
        empty.absorb(a, |m, t| *m += t);
        empty.absorb(b, |m, t| *m += t);
        c.absorb(empty, |m, t| *m += t);
        assert_eq!(c.len(), want.len());
        let got: Vec<(Vec<u8>, i64)> = c.into_sorted().into_owned().collect();
        let want: Vec<(Vec<u8>, i64)> = want.into_iter().collect();
        assert_eq!(got, want);
    }
}
