//! Group keys as dense ids: the pending deltas of an aggregate keyed only
//! by its `group_by` fields (and its window) are kept per tuple of small
//! ids instead of per encoded key.
//!
//! Such aggregates have few groups (19 k in all for the eight questions)
//! but see one update per joined row, and building, hashing, staging and
//! comparing each update's encoded key was most of the aggregation (62% of
//! the final pass of a batch replay; callgrind, 100,000 posts). Here each
//! key component (a field's encoded value, or a window start) is interned
//! once per row into an id; an aggregate's group is the array of its
//! components' ids, hashed as four words. The encoded store key is
//! rebuilt only when the deltas are taken ([`to_keymap`]): per group, not
//! per update.
//!
//! Invariants: ids are dense from 0 and name the same component bytes
//! until [`Interner::clear`]; a [`GroupId`] holds its components' ids in key
//! order, then [`NONE`]; concatenating its components' bytes gives exactly
//! the key the encoded path builds, so both paths write the same store keys.

use rustc_hash::FxHashMap;

use super::keymap::{hash, KeyMap};

/// Components a [`GroupId`] holds (window start + group_by fields).
pub const MAX_PARTS: usize = 4;

/// Marks the unused tail of a [`GroupId`].
pub const NONE: u32 = u32::MAX;

/// The ids of one group's key components, in key order.
pub type GroupId = [u32; MAX_PARTS];

/// Pending deltas per group.
pub type GroupMap<V> = FxHashMap<GroupId, V>;

/// Encoded key components to dense ids, and back.
#[derive(Default)]
pub struct Interner {
    ids: KeyMap<u32>,
    /// End of each id's bytes in `bytes` (id `i` spans `ends[i-1]..ends[i]`).
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

impl Interner {
    /// The id of an encoded component, new if it was not seen before.
    #[inline]
    pub fn intern(&mut self, component: &[u8]) -> u32 {
        let next = self.ends.len() as u32;
        let id = *self.ids.get_or_insert_with(component, hash(component), || next);
        if id == next {
            self.bytes.extend_from_slice(component);
            self.ends.push(self.bytes.len());
        }
        id
    }

    /// The encoded bytes of an id.
    pub fn bytes(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Appends a group's encoded store key to `out`.
    pub fn key_into(&self, g: &GroupId, out: &mut Vec<u8>) {
        for &id in g.iter().take_while(|&&id| id != NONE) {
            out.extend_from_slice(self.bytes(id));
        }
    }

    /// Forgets every id (only when no [`GroupId`] of it is kept).
    pub fn clear(&mut self) {
        *self = Interner::default();
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// Moves the groups of `from` (ids of `theirs`) into `into` (ids of
/// `mine`), combining the values of a group both hold.
pub fn absorb<V: Default>(
    into: &mut GroupMap<V>,
    mine: &mut Interner,
    from: GroupMap<V>,
    theirs: &Interner,
    mut combine: impl FnMut(&mut V, V),
) {
    for (g, v) in from {
        let mut ours = [NONE; MAX_PARTS];
        for (o, &id) in ours.iter_mut().zip(g.iter().take_while(|&&id| id != NONE)) {
            *o = mine.intern(theirs.bytes(id));
        }
        combine(into.entry(ours).or_default(), v);
    }
}

/// The deltas keyed by encoded store keys (what [`super::buffers::Pending`]
/// writes).
pub fn to_keymap<V>(groups: GroupMap<V>, interner: &Interner) -> KeyMap<V> {
    let mut map = KeyMap::with_capacity(groups.len(), groups.len() * 24);
    let mut key = Vec::with_capacity(64);
    for (g, v) in groups {
        key.clear();
        interner.key_into(&g, &mut key);
        // Distinct ids are distinct bytes, so each group is a new key.
        let mut v = Some(v);
        map.get_or_insert_with(&key, hash(&key), || v.take().expect("a new key"));
        debug_assert!(v.is_none(), "two groups with one key");
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_give_back_their_bytes() {
        let mut i = Interner::default();
        assert_eq!(i.intern(b"country"), 0);
        assert_eq!(i.intern(b""), 1);
        assert_eq!(i.intern(b"category"), 2);
        assert_eq!(i.intern(b"country"), 0);
        assert_eq!(
            (i.bytes(0), i.bytes(1), i.bytes(2)),
            (&b"country"[..], &b""[..], &b"category"[..])
        );
        let mut key = Vec::new();
        i.key_into(&[2, 1, 0, NONE], &mut key);
        assert_eq!(key, b"categorycountry");
        i.clear();
        assert!(i.is_empty());
        assert_eq!(i.intern(b"category"), 0);
    }

    /// Two shards intern the same components in different orders; merged,
    /// each group's values add up under its bytes, and the store keys are
    /// the concatenated components.
    #[test]
    fn absorbing_translates_ids_and_adds() {
        let (mut a, mut b) = (Interner::default(), Interner::default());
        let mut ma: GroupMap<i64> = GroupMap::default();
        let mut mb: GroupMap<i64> = GroupMap::default();
        let (x, y) = (a.intern(b"x"), a.intern(b"y"));
        *ma.entry([x, y, NONE, NONE]).or_default() += 2;
        let (y2, x2, z2) = (b.intern(b"y"), b.intern(b"x"), b.intern(b"z"));
        *mb.entry([x2, y2, NONE, NONE]).or_default() += 3;
        *mb.entry([z2, NONE, NONE, NONE]).or_default() += 5;
        absorb(&mut ma, &mut a, mb, &b, |m, t| *m += t);
        let got: Vec<(Vec<u8>, i64)> = to_keymap(ma, &a).into_sorted().into_owned().collect();
        assert_eq!(got, vec![(b"xy".to_vec(), 5), (b"z".to_vec(), 5)]);
    }
}
