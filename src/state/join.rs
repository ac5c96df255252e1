//! The join table: one row per key with a slot per input (spec §3).
//!
//! Each input is a table keyed by the join key; a record replaces its slot.
//! The engine compares the new slot bytes with the old ones, so a
//! re-delivery of an identical (cleaned, projected) record is a no-op, and
//! the joined row exists exactly when every slot is filled.
//!
//! A write-back cache sits in front of the `join.<name>` column family:
//! changed entries are marked dirty and written in the engine's commit batch.
//! When the column family fits in the cache at open it is loaded whole and
//! the cache is *complete*: a miss then means "no such key" without a
//! RocksDB read. Past `capacity` entries the cache is emptied after a commit
//! (everything in it is clean then) and misses go to RocksDB.
//!
//! A commit finds the dirty entries from a list of the keys touched since
//! the last one, not by scanning the cache, so its cost follows the
//! changes, not the table (a live daemon commits every second over a
//! table of millions of keys). When more than half the table was touched
//! (a bulk load: [`MAX_TOUCHED_SHARE`]) the list stops growing and the
//! commit scans instead, which then costs at most twice the changes.

/// hashbrown for `entry_ref`: one lookup per record, and the key is only
/// copied when it is new.
type HashMap<K, V> = hashbrown::HashMap<K, V>;

/// A join key as the cache holds it: inline up to [`INLINE_KEY`] bytes (an
/// encoded integer `ind` is 9), so a lookup compares fixed-size arrays in
/// registers instead of calling `memcmp` through a pointer to a separate
/// allocation (a cache miss per record).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum JoinKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

pub const INLINE_KEY: usize = 22;

impl JoinKey {
    pub fn new(key: &[u8]) -> JoinKey {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key);
            JoinKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            JoinKey::Heap(key.into())
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            JoinKey::Inline { len, bytes } => &bytes[..*len as usize],
            JoinKey::Heap(b) => b,
        }
    }
}

/// The shard of a join key among `n` (pure; the same in every process, so
/// tests can predict it). FNV-1a folded with a multiply: the join cache's
/// own hasher is seeded per process, so the two do not correlate.
pub fn shard_of(key: &[u8], n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let m = u128::from(h) * 0x9e37_79b9_7f4a_7c15_u128;
    (((m >> 64) as u64 ^ m as u64) % n as u64) as usize
}

/// Encoded join entries `(key, value)` on their way to RocksDB.
pub type EncodedEntries = Vec<(Box<[u8]>, Vec<u8>)>;

use rocksdb::WriteBatch;

use super::table::{Merge, TableSpec};
use crate::model::value::{get_varint, put_varint};
use crate::state::store::{Store, StoreError};

/// The join table's memtable size (RocksDB's default is 64 MB).
///
/// Why smaller: a commit writes its dirty entries in key order, but
/// between two of them the memtable already holds keys of earlier commits,
/// so RocksDB's skiplist finds each one's place from its top level, and in
/// a large memtable most of those steps miss the CPU caches. The live
/// daemon writes about two entries per join key (a post's records reach
/// it in different commits); with 64 MB those inserts were about a quarter
/// of its CPU time (`perf`, 1,168,854 records). With 16 MB, 6 alternating
/// pairs of that run took 0.62-0.93 x the user CPU (median 0.86), and a
/// durable incremental replay of 1,000,000 posts measured the same within
/// noise. The cost is more, smaller flushes (two instead of none in that
/// run), which run on RocksDB's background threads.
pub const WRITE_BUFFER: usize = 16 << 20;

/// The join's table: `join.<name>`, key = the join key (order-preserving
/// tuple encoding, `value::encode_key`) → one slot per input, each
/// `varint(len + 1)` + row bytes (`value::encode_row` of the input's
/// projection), `0` for an empty slot.
pub fn table(name: &str) -> TableSpec {
    TableSpec {
        name: join_cf(name),
        merge: Merge::None,
        write_buffer: Some(WRITE_BUFFER),
        retention: None,
    }
}

pub fn join_cf(name: &str) -> String {
    format!("join.{name}")
}

/// What a new row for one slot does to a key's slots (decided before the
/// row is stored; one rule for the incremental plan, the batch plan and
/// the spilled partitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotChange {
    /// The same bytes as the slot holds: nothing to do.
    Unchanged,
    /// Fills a slot; the key is still incomplete.
    Fills,
    /// Fills the last empty slot: the joined row appears.
    Completes,
    /// Changes a slot of a complete key: the joined row changes.
    Replaces,
}

pub fn slot_change<R: AsRef<[u8]>>(slots: &[Option<R>], slot: usize, row: &[u8]) -> SlotChange {
    if slots[slot]
        .as_ref()
        .is_some_and(|r| crate::aggregate::keymap::same_bytes(r.as_ref(), row))
    {
        SlotChange::Unchanged
    } else if slots.iter().all(Option::is_some) {
        SlotChange::Replaces
    } else if slots.iter().enumerate().all(|(i, s)| i == slot || s.is_some()) {
        SlotChange::Completes
    } else {
        SlotChange::Fills
    }
}

/// A key's slots as the join table stores them (see [`table`]).
pub fn encode_slots<R: AsRef<[u8]>>(slots: &[Option<R>]) -> Vec<u8> {
    let len: usize = slots
        .iter()
        .map(|s| s.as_ref().map_or(1, |r| r.as_ref().len() + 3))
        .sum();
    let mut out = Vec::with_capacity(len);
    encode_slots_into(&mut out, slots);
    out
}

/// [`encode_slots`], appended to `out`.
pub fn encode_slots_into<R: AsRef<[u8]>>(out: &mut Vec<u8>, slots: &[Option<R>]) {
    for s in slots {
        let r = s.as_ref().map(AsRef::as_ref);
        put_varint(out, r.map_or(0, |r| r.len() as u64 + 1));
        if let Some(r) = r {
            out.extend_from_slice(r);
        }
    }
}

/// Encoded join entries in one buffer (a batch replay's partition of the
/// join table on its way to an SST file): two allocations per partition
/// instead of two per key, and none freed on another thread per key (the
/// writer thread freeing a million boxes the workers allocated was a
/// visible part of a durable replay's profile).
#[derive(Debug, Default)]
pub struct FlatEntries {
    data: Vec<u8>,
    /// Per entry: where its key starts in `data`, the key's length, the
    /// value's length (the value follows the key).
    at: Vec<(usize, u32, u32)>,
}

impl FlatEntries {
    pub fn with_capacity(entries: usize, bytes: usize) -> FlatEntries {
        FlatEntries {
            data: Vec::with_capacity(bytes),
            at: Vec::with_capacity(entries),
        }
    }

    /// Appends `key` → its slots, encoded as [`encode_slots`] does.
    pub fn push_slots<R: AsRef<[u8]>>(&mut self, key: &[u8], slots: &[Option<R>]) {
        let start = self.data.len();
        self.data.extend_from_slice(key);
        encode_slots_into(&mut self.data, slots);
        let value = self.data.len() - start - key.len();
        self.at.push((start, key.len() as u32, value as u32));
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// Bytes of keys and values.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// The entries `(key, value)`, in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.at.iter().map(|&(start, k, v)| {
            let (k, v) = (k as usize, v as usize);
            (&self.data[start..start + k], &self.data[start + k..start + k + v])
        })
    }
}

/// Slots of one key: `None` = that input has no row yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub slots: Box<[Option<Box<[u8]>>]>,
    dirty: bool,
    /// In [`JoinState`]'s list of keys touched since the last commit.
    listed: bool,
}

impl Entry {
    pub fn is_complete(&self) -> bool {
        self.slots.iter().all(Option::is_some)
    }

    pub fn set(&mut self, slot: usize, row: Box<[u8]>) {
        self.slots[slot] = Some(row);
        self.dirty = true;
    }

    fn encode(&self) -> Vec<u8> {
        encode_slots(&self.slots)
    }

    fn decode(mut b: &[u8], inputs: usize) -> Option<Entry> {
        let mut slots = Vec::with_capacity(inputs);
        for _ in 0..inputs {
            let len = get_varint(&mut b)?;
            if len == 0 {
                slots.push(None);
            } else {
                let n = (len - 1) as usize;
                if b.len() < n {
                    return None;
                }
                slots.push(Some(b[..n].into()));
                b = &b[n..];
            }
        }
        b.is_empty().then(|| Entry {
            slots: slots.into(),
            dirty: false,
            listed: false,
        })
    }
}

pub struct JoinState {
    cf: String,
    inputs: usize,
    cache: HashMap<JoinKey, Entry>,
    complete: bool,
    capacity: usize,
    /// Keep dirty entries in memory instead of writing them at each commit
    /// (ephemeral state); they are written only when the cache overflows.
    in_memory: bool,
    /// Keys touched since the last commit (not kept while `in_memory`):
    /// where [`JoinState::take_dirty`] looks. `None` once it outgrew
    /// [`MAX_TOUCHED_SHARE`]: the next commit scans the cache.
    touched: Option<Vec<JoinKey>>,
}

/// The list of touched keys stops growing past `1 / MAX_TOUCHED_SHARE` of
/// the cache (a bulk load touches every key: a scan is about as cheap then,
/// and the list would only cost memory).
pub const MAX_TOUCHED_SHARE: usize = 2;

impl JoinState {
    /// Opens the join table, loading it whole when it fits in `capacity`.
    pub fn open(store: &Store, name: &str, inputs: usize, capacity: usize) -> Result<JoinState, StoreError> {
        let cf = join_cf(name);
        let mut cache = HashMap::default();
        let mut complete = true;
        let mut corrupt = None;
        store.for_each(&cf, |k, v| {
            if cache.len() >= capacity {
                complete = false;
                return false;
            }
            match Entry::decode(v, inputs) {
                Some(e) => {
                    cache.insert(JoinKey::new(k), e);
                }
                None => corrupt = Some(k.to_vec()),
            }
            true
        })?;
        if let Some(k) = corrupt {
            return Err(StoreError::Corrupt {
                path: store.path().into(),
                what: format!("join entry {k:?} does not decode"),
            });
        }
        if !complete {
            cache.clear();
        }
        Ok(JoinState {
            cf,
            inputs,
            cache,
            complete,
            capacity,
            in_memory: false,
            touched: Some(Vec::new()),
        })
    }

    /// The entry of `key`, created empty if the key is new.
    pub fn entry(&mut self, store: &Store, key: &[u8]) -> Result<&mut Entry, StoreError> {
        let (inputs, complete, cf) = (self.inputs, self.complete, &self.cf);
        let track = !self.in_memory;
        let cached = self.cache.len();
        let touched = &mut self.touched;
        // Lists the key on its first touch since the last commit.
        let mut note = |e: &mut Entry| {
            if track && !e.listed {
                e.listed = true;
                if let Some(t) = touched {
                    if t.len() > cached / MAX_TOUCHED_SHARE + 1024 {
                        *touched = None;
                    } else {
                        t.push(JoinKey::new(key));
                    }
                }
            }
        };
        match self.cache.entry(JoinKey::new(key)) {
            hashbrown::hash_map::Entry::Occupied(o) => {
                let e = o.into_mut();
                note(e);
                Ok(e)
            }
            hashbrown::hash_map::Entry::Vacant(v) => {
                let loaded = if complete {
                    None
                } else {
                    match store.get(cf, key)? {
                        Some(bytes) => Some(Entry::decode(&bytes, inputs).ok_or_else(|| StoreError::Corrupt {
                            path: store.path().into(),
                            what: format!("join entry {key:?} does not decode"),
                        })?),
                        None => None,
                    }
                };
                let e = v.insert(loaded.unwrap_or_else(|| Entry {
                    slots: vec![None; inputs].into(),
                    dirty: false,
                    listed: false,
                }));
                note(e);
                Ok(e)
            }
        }
    }

    pub fn set_in_memory(&mut self, on: bool) {
        self.in_memory = on;
        self.touched = if on { None } else { Some(Vec::new()) };
    }

    /// Whether the table lives in memory whole (ephemeral, not spilled).
    pub fn is_in_memory(&self) -> bool {
        self.in_memory
    }

    /// Whether the cache holds more keys than its capacity (it is emptied
    /// at the next commit).
    pub fn over_capacity(&self) -> bool {
        self.cache.len() > self.capacity
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Every entry in the cache (complete or not), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.cache.iter().map(|(k, e)| (k.as_slice(), e))
    }

    /// Empties an in-memory table whose entries went elsewhere (the batch
    /// plan's spill); the table still counts as whole (and empty).
    pub fn clear_in_memory(&mut self) {
        self.cache = HashMap::default();
        self.touched = None;
    }

    /// The table now lives in RocksDB (written there by the batch plan's
    /// spilled partitions): the empty cache no longer holds it all, so a
    /// miss reads RocksDB.
    pub fn mark_stored(&mut self) {
        self.cache = HashMap::default();
        self.complete = false;
        self.in_memory = false;
        self.touched = Some(Vec::new());
    }

    /// Whether the cache holds the whole table (a miss means "no key").
    pub fn holds_all(&self) -> bool {
        self.complete
    }

    /// Calls `f` with every complete entry stored in RocksDB, in key order,
    /// until it returns false (the table that did not fit in the cache).
    pub fn scan_complete_stored(
        &self,
        store: &Store,
        mut f: impl FnMut(&[u8], Entry) -> bool,
    ) -> Result<(), StoreError> {
        let mut corrupt = None;
        store.for_each(&self.cf, |k, v| match Entry::decode(v, self.inputs) {
            Some(e) if e.is_complete() => f(k, e),
            Some(_) => true,
            None => {
                corrupt = Some(k.to_vec());
                false
            }
        })?;
        match corrupt {
            Some(k) => Err(StoreError::Corrupt {
                path: store.path().into(),
                what: format!("join entry {k:?} does not decode"),
            }),
            None => Ok(()),
        }
    }

    /// Every complete entry in the cache, in no particular order: the
    /// whole join when the table is in memory (the batch plan's input).
    pub fn complete_entries(&self) -> Vec<(&[u8], &Entry)> {
        self.iter().filter(|(_, e)| e.is_complete()).collect()
    }

    /// The dirty entries, encoded, now marked clean (none while in memory).
    pub fn take_dirty(&mut self) -> EncodedEntries {
        if self.in_memory {
            return Vec::new();
        }
        self.take_all_dirty()
    }

    fn take_all_dirty(&mut self) -> EncodedEntries {
        let mut dirty = Vec::new();
        let next = (!self.in_memory).then(Vec::new);
        match std::mem::replace(&mut self.touched, next) {
            Some(keys) => {
                for k in keys {
                    if let Some(e) = self.cache.get_mut(&k) {
                        e.listed = false;
                        if std::mem::take(&mut e.dirty) {
                            dirty.push((k.as_slice().into(), e.encode()));
                        }
                    }
                }
            }
            None => {
                for (k, e) in self.cache.iter_mut() {
                    e.listed = false;
                    if std::mem::take(&mut e.dirty) {
                        dirty.push((k.as_slice().into(), e.encode()));
                    }
                }
            }
        }
        dirty
    }

    /// Puts entries into a batch in key order (the memtable's skiplist
    /// inserts sorted keys much faster than random ones).
    pub fn write_sorted(
        store: &Store,
        name: &str,
        mut entries: EncodedEntries,
        batch: &mut WriteBatch,
    ) -> Result<(), StoreError> {
        let cf = store.cf(&join_cf(name))?;
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in &entries {
            batch.put_cf(cf, k, v);
        }
        Ok(())
    }

    /// After a commit: drop the cache if it outgrew its capacity. Returns
    /// `None` if it did not; otherwise the entries that were never written
    /// (an in-memory table, persistent from then on), which the caller must
    /// write, and the caller must let every pending write land before the
    /// next lookup, since lookups now read RocksDB.
    pub fn after_commit(&mut self) -> Option<EncodedEntries> {
        if self.cache.len() <= self.capacity {
            return None;
        }
        let spill = if self.in_memory {
            self.take_all_dirty()
        } else {
            Vec::new()
        };
        self.in_memory = false;
        self.cache.clear();
        self.complete = false;
        self.touched = Some(Vec::new());
        Some(spill)
    }

    /// Drops the in-memory table without freeing it entry by entry: for a
    /// process that is about to exit (a temporary replay whose answers are
    /// printed), where millions of small frees are a serial second of work
    /// for nothing. The table is unusable afterwards.
    pub fn leak_cache(&mut self) {
        std::mem::forget(std::mem::take(&mut self.cache));
        self.complete = false;
        self.touched = None;
    }

    /// Splits the table into `n` by [`shard_of`]: part `i` holds the keys
    /// of shard `i`, with `capacity / n` each (the whole table's memory
    /// bound stays), as complete as this one, dirty and touched marks kept.
    /// This table is left empty.
    pub fn split(&mut self, n: usize) -> Vec<JoinState> {
        let n = n.max(1);
        let mut parts: Vec<JoinState> = (0..n)
            .map(|_| JoinState {
                cf: self.cf.clone(),
                inputs: self.inputs,
                cache: HashMap::with_capacity(self.cache.len() / n),
                complete: self.complete,
                capacity: (self.capacity / n).max(1),
                in_memory: self.in_memory,
                touched: self.touched.as_ref().map(|_| Vec::new()),
            })
            .collect();
        if let Some(keys) = self.touched.take() {
            for k in keys {
                if let Some(t) = &mut parts[shard_of(k.as_slice(), n)].touched {
                    t.push(k);
                }
            }
        }
        for (k, e) in std::mem::take(&mut self.cache) {
            parts[shard_of(k.as_slice(), n)].cache.insert(k, e);
        }
        parts
    }

    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flat buffer holds what `encode_slots` gives per key, in push
    /// order, and the values decode to the slots (missing ones included).
    #[test]
    fn flat_entries_hold_each_keys_encoded_slots() {
        type Slots = Vec<Option<Vec<u8>>>;
        let rows: Vec<(Vec<u8>, Slots)> = (0..50u8)
            .map(|i| {
                let key = vec![i; 1 + (i as usize % 7)];
                let slots = (0..3)
                    .map(|s| (!(i as usize + s).is_multiple_of(4)).then(|| vec![s as u8; i as usize * 3]))
                    .collect();
                (key, slots)
            })
            .collect();
        let mut flat = FlatEntries::default();
        for (k, slots) in &rows {
            flat.push_slots(k, slots);
        }
        assert_eq!(flat.len(), rows.len());
        let got: Vec<(&[u8], &[u8])> = flat.iter().collect();
        for ((k, slots), (fk, fv)) in rows.iter().zip(&got) {
            assert_eq!(&k[..], *fk);
            assert_eq!(encode_slots(slots), *fv);
            let e = Entry::decode(fv, 3).expect("decodes");
            let want: Vec<Option<Box<[u8]>>> = slots.iter().map(|s| s.clone().map(Into::into)).collect();
            assert_eq!(&e.slots[..], &want[..]);
        }
        let bytes: usize = got.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert_eq!(flat.bytes(), bytes);
    }

    #[test]
    fn entry_encoding_round_trips() {
        let e = Entry {
            slots: vec![Some(b"abc".to_vec().into()), None, Some(vec![0u8; 300].into())].into(),
            dirty: false,
            listed: false,
        };
        assert_eq!(Entry::decode(&e.encode(), 3), Some(e.clone()));
        assert_eq!(Entry::decode(&e.encode(), 2), None);
        assert_eq!(Entry::decode(&[5], 1), None);
    }

    fn key(i: u64) -> Vec<u8> {
        i.to_be_bytes().to_vec()
    }

    /// The dirty entries a commit takes, by key number, sorted.
    fn taken(join: &mut JoinState) -> Vec<u64> {
        let mut got: Vec<u64> = join
            .take_dirty()
            .iter()
            .map(|(k, _)| u64::from_be_bytes(k[..].try_into().unwrap()))
            .collect();
        got.sort_unstable();
        got
    }

    /// A commit takes exactly the entries changed since the last one, from
    /// the touched-key list and, after a bulk load overflowed it, from a
    /// scan; a key only looked at is not written.
    #[test]
    fn commit_takes_exactly_the_changed_entries_listed_or_scanned() {
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &topo).unwrap();
        let mut join = JoinState::open(&store, &topo.join.name, 3, 1_000_000).unwrap();
        let set = |join: &mut JoinState, i: u64, v: u8| join.entry(&store, &key(i)).unwrap().set(0, vec![v].into());
        for i in 0..5000 {
            set(&mut join, i, 1);
        }
        // 5,000 new keys overflow the list (more than half the table).
        assert!(join.touched.is_none());
        assert_eq!(taken(&mut join), (0..5000).collect::<Vec<_>>());
        assert_eq!(taken(&mut join), Vec::<u64>::new());
        // Few changes: from the list.
        for i in [7, 4000, 42] {
            set(&mut join, i, 2);
        }
        join.entry(&store, &key(9)).unwrap();
        set(&mut join, 7, 3); // touched twice, listed once
        assert_eq!(join.touched.as_ref().map(Vec::len), Some(4));
        assert_eq!(taken(&mut join), [7, 42, 4000]);
        assert_eq!(taken(&mut join), Vec::<u64>::new());
        // A new key and an old one, after a commit that scanned.
        for i in 5000..20000 {
            set(&mut join, i, 1);
        }
        assert!(join.touched.is_none());
        set(&mut join, 3, 5);
        let got = taken(&mut join);
        assert_eq!(got.len(), 15001);
        assert_eq!(got[0], 3);
        set(&mut join, 19999, 9);
        assert_eq!(taken(&mut join), [19999]);
    }

    /// A split table holds every entry exactly once, each in its key's
    /// shard, with the capacity divided; dirty entries stay dirty (a split
    /// between commits loses no change) and clean ones are not written.
    #[test]
    fn a_split_table_keeps_every_entry_in_its_shard_and_every_change() {
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &topo).unwrap();
        let mut join = JoinState::open(&store, &topo.join.name, 3, 9_000).unwrap();
        for i in 0..300 {
            join.entry(&store, &key(i)).unwrap().set(1, vec![i as u8].into());
        }
        assert_eq!(taken(&mut join).len(), 300);
        for i in (0..300).step_by(7) {
            join.entry(&store, &key(i)).unwrap().set(2, vec![1].into());
        }
        let parts = join.split(3);
        assert!(join.is_empty());
        assert_eq!(parts.len(), 3);
        let mut seen = 0;
        let mut dirty = Vec::new();
        for (n, mut part) in parts.into_iter().enumerate() {
            assert_eq!(part.capacity(), 3_000);
            assert!(part.holds_all());
            for (k, _) in part.iter() {
                assert_eq!(shard_of(k, 3), n);
            }
            seen += part.len();
            dirty.extend(taken(&mut part));
        }
        assert_eq!(seen, 300);
        dirty.sort_unstable();
        assert_eq!(dirty, (0..300).step_by(7).collect::<Vec<u64>>());
    }

    /// Every key lands in range, the same key always in the same shard, and
    /// sequential integer keys (encoded `ind`s) spread over both shards
    /// about evenly: a skewed split would leave one core idle.
    #[test]
    fn keys_spread_evenly_and_stay_put() {
        let mut counts = [0usize; 2];
        for i in 0..10_000i64 {
            let mut key = Vec::new();
            crate::model::codec::encode_key(&crate::model::value::Value::Int(i), &mut key);
            let s = shard_of(&key, 2);
            assert_eq!(s, shard_of(&key, 2));
            counts[s] += 1;
        }
        assert!(counts.iter().all(|&c| (4_500..=5_500).contains(&c)), "{counts:?}");
        assert_eq!(shard_of(b"anything", 1), 0);
        for n in 1..8 {
            assert!(shard_of(b"k", n) < n);
        }
    }
}
