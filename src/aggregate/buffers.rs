//! Aggregate updates, pre-aggregated in memory between commits (the
//! delta and retraction half of every aggregate function).
//!
//! Every change of a joined row arrives here as `+1` (a new row) or `−1` (a
//! retracted row). Counts, distinct counts and max-by are all stored as
//! multiplicities of tuples (see `state.rs`), so a retraction is exact: it
//! subtracts what the addition added. Quantile stores receive weighted values
//! (`−1` retracts); the sketch applies them exactly while it is an exact
//! multiset and ignores retractions once it is a t-digest (`sketch.rs`).
//!
//! Between commits deltas accumulate in hash maps keyed by the encoded store
//! key; a commit turns each map into RocksDB merges in the commit's batch.

use rayon::prelude::*;

use rocksdb::WriteBatch;

use super::groups::{self, GroupId, GroupMap, Interner, MAX_PARTS, NONE};
use super::keymap::{hash, KeyMap};
use super::state::agg_cf;
use super::StateKind;
use crate::aggregate::sketch::{add_counts, add_weighted, Counts, Sketch};
use crate::model::value::{encode_key, Record, Value};
use crate::state::store::{Store, StoreError};
use crate::topology::{Aggregate, Topology};

/// Counters of what the aggregates did not take.
#[derive(Debug, Default, Clone, Copy)]
pub struct AggStats {
    /// Updates of windowed aggregates older than the retention.
    pub late: u64,
    /// Updates of windowed aggregates left out because their event time lies
    /// further ahead of the wall clock than the allowed skew.
    pub future: u64,
}

/// Default bound on how far an event time may lie ahead of the wall clock
/// before windowed aggregates leave the record out (`--max-future-skew`).
pub const DEFAULT_MAX_FUTURE_SKEW_SECS: i64 = 300;

fn wall_clock_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

enum Buffer {
    Counts(KeyMap<i64>),
    Values(ValueBuffer),
    /// An aggregate keyed by group_by fields (and window) alone, by group
    /// ids (`groups.rs`).
    GroupCounts(GroupMap<i64>),
    GroupValues(GroupMap<Counts>),
}

impl Buffer {
    /// The empty buffer of an aggregate.
    fn of(a: &Aggregate) -> Buffer {
        let sketch = a.function.imp().state() == StateKind::Sketch;
        match (sketch, grouped(a)) {
            (false, false) => Buffer::Counts(KeyMap::default()),
            (true, false) => Buffer::Values(KeyMap::default()),
            (false, true) => Buffer::GroupCounts(GroupMap::default()),
            (true, true) => Buffer::GroupValues(GroupMap::default()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Buffer::Counts(m) => m.len(),
            Buffer::Values(m) => m.len(),
            Buffer::GroupCounts(m) => m.len(),
            Buffer::GroupValues(m) => m.len(),
        }
    }
}

/// Whether an aggregate's key is its group_by fields (and window start)
/// alone, few enough for a [`GroupId`]: the group-id path. Distinct
/// tuples and max-by items (one key per row, mostly) stay on the encoded
/// path, whose arena is emptied at every commit.
fn grouped(a: &Aggregate) -> bool {
    a.extra.is_empty()
        && !a.function.imp().measure_in_key()
        && a.group_by.len() + usize::from(a.window.is_some()) <= MAX_PARTS
}

/// New values of one quantile aggregate, per store key, counted by value.
type ValueBuffer = KeyMap<Counts>;

/// Deltas taken out of the buffers for one commit.
#[derive(Default)]
pub struct Pending {
    /// Count deltas per aggregate (empty for quantile aggregates).
    counts: Vec<KeyMap<i64>>,
    /// New values per quantile aggregate.
    values: Vec<(usize, ValueBuffer)>,
    /// Changed watermarks of windowed aggregates.
    watermarks: Vec<(usize, i64)>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|m| m.is_empty())
            && self.values.iter().all(|(_, m)| m.is_empty())
            && self.watermarks.is_empty()
    }

    /// Writes the deltas as merges (digests built here), the watermarks, and
    /// the deletion of windows that fell out of retention.
    pub fn write_into(self, topo: &Topology, store: &Store, batch: &mut WriteBatch) -> Result<(), StoreError> {
        self.write_runs(topo, store, batch, None)
    }

    /// [`Pending::write_into`] for a write that need not be atomic (the
    /// batch plan's final aggregation, whose positions follow in the next
    /// commit): the batch is written whenever it reaches `run_bytes`, so a
    /// few million deltas do not grow one batch by doubling (fresh memory
    /// and copies were a tenth of a replay). The rest stays in `batch`.
    pub fn write_in_runs(self, topo: &Topology, store: &Store, batch: &mut WriteBatch) -> Result<(), StoreError> {
        self.write_runs(topo, store, batch, Some(RUN_BYTES))
    }

    fn write_runs(
        self,
        topo: &Topology,
        store: &Store,
        batch: &mut WriteBatch,
        run_bytes: Option<usize>,
    ) -> Result<(), StoreError> {
        let full = |batch: &mut WriteBatch| match run_bytes {
            Some(n) if batch.size_in_bytes() >= n => store.write(std::mem::take(batch)),
            _ => Ok(()),
        };
        // In key order: the memtable's skiplist inserts a sorted run with
        // one search per key instead of a descent through every level (the
        // random order of a hash map made those inserts 12% of a replay).
        for (i, m) in self.counts.into_iter().enumerate() {
            let cf = store.cf(&agg_cf(&topo.aggregates[i].name))?;
            m.into_sorted().for_each(|k, d| {
                if d == 0 {
                    return Ok(());
                }
                batch.merge_cf(cf, k, d.to_le_bytes());
                full(batch)
            })?;
        }
        // The digests are built on every core: a batch replay's final write
        // builds them from millions of values (one core, 0.4 s of a
        // 1,000,000-post replay, while the other stood idle).
        let built: Vec<(usize, Digests)> = self
            .values
            .into_par_iter()
            .map(|(i, m)| {
                let a = &topo.aggregates[i];
                let m: Vec<_> = m.into_sorted().into_owned().collect();
                let digests = m
                    .into_par_iter()
                    .map(|(k, v)| (k, Sketch::from_counts(a.compression, v).to_bytes()))
                    .collect();
                (i, digests)
            })
            .collect();
        for (i, digests) in built {
            let cf = store.cf(&agg_cf(&topo.aggregates[i].name))?;
            for (k, d) in digests {
                batch.merge_cf(cf, k, d);
                full(batch)?;
            }
        }
        for (i, wm) in self.watermarks {
            let a = &topo.aggregates[i];
            let Some((_, w)) = &a.window else { continue };
            store.put_watermark(batch, &a.name, wm)?;
            let (mut lo, mut hi) = (Vec::new(), Vec::new());
            encode_key(&Value::Ts(i64::MIN), &mut lo);
            encode_key(&Value::Ts(oldest_kept(wm, w.size, w.retention)), &mut hi);
            batch.delete_range_cf(store.cf(&agg_cf(&a.name))?, lo, hi);
        }
        Ok(())
    }
}

/// One quantile aggregate's store keys with their digests' bytes.
type Digests = Vec<(Vec<u8>, Vec<u8>)>;

/// Size of one write of [`Pending::write_in_runs`].
const RUN_BYTES: usize = 8 << 20;

/// Updates of one aggregate not yet applied to its map: each key's bytes
/// in `keys`, and per update its hash, the end of its key in `keys`, its
/// weight and its measure (quantile aggregates).
#[derive(Default)]
struct Staged {
    keys: Vec<u8>,
    items: Vec<(u64, usize, i64, f64)>,
    /// A grouped aggregate's updates: group, weight, measure.
    groups: Vec<(GroupId, i64, f64)>,
}

/// Updates staged per aggregate before they are applied to its map, all
/// at once. A joined row updates eleven maps whose keys and slots together
/// outgrow a core's L2 cache, so applied row by row, most lookups waited
/// for L3 (two dependent loads per lookup were half of the aggregate time
/// in a profile of the 1,000,000-post replay); applied a few hundred at a
/// time, one map stays in cache while they go in. Deltas add and quantile
/// counts add, so the order does not change what the maps hold.
const STAGE: usize = 256;

/// Pending deltas of every aggregate.
pub struct AggBuffers {
    buffers: Vec<Buffer>,
    /// Per aggregate, its updates not yet in `buffers` (see [`STAGE`]).
    staged: Vec<Staged>,
    watermarks: Vec<Option<i64>>,
    wm_dirty: Vec<bool>,
    /// Per aggregate, the oldest window start kept and the watermark it
    /// was computed for.
    cutoffs: Vec<Option<(i64, i64)>>,
    /// Event times above this are "too far in the future" (wall clock +
    /// skew, refreshed at each commit).
    future_limit: i64,
    max_future_skew: i64,
    /// A clock fixed by a test; `None` reads the wall clock.
    fixed_now: Option<i64>,
    key: Vec<u8>,
    /// Per aggregate, where each field it reads (group_by, extra, then the
    /// measure and the window field) was found in the last row: joined rows
    /// share one layout, so a lookup is one name check.
    hints: Vec<Vec<usize>>,
    /// The current row's encoded key components, by field index (a span of
    /// `row_keys`; `(0, 0)`: not encoded yet). A field that several
    /// aggregates group by (category by five) is encoded once per row.
    row_keys: Vec<u8>,
    spans: Vec<(u32, u32)>,
    /// The current row's component ids, by field index ([`NONE`]: not
    /// interned yet); like `spans`, valid while `cached`.
    ids: Vec<u32>,
    /// Key components of the group-id path (emptied by [`AggBuffers::take`]).
    interner: Interner,
    /// Scratch for one encoded component outside the row cache.
    component: Vec<u8>,
    /// Whether `spans` describe the row being applied (off in `replace`,
    /// which alternates between two rows).
    cached: bool,
    pub stats: AggStats,
}

/// Appends `src` to `out`. A key component is mostly 9 to 32 bytes, and
/// copying those by a `memcpy` call (16 per joined row) was 2% of a
/// 1,000,000-post replay's samples: up to 32 bytes are copied here as two
/// overlapping loads and stores of a width that fits.
#[inline]
fn extend_short(out: &mut Vec<u8>, src: &[u8]) {
    let n = src.len();
    if n > 32 {
        out.extend_from_slice(src);
        return;
    }
    out.reserve(32);
    let len = out.len();
    // SAFETY: `reserve` left at least 32 writable bytes past `len`, and
    // every store below lies in `len..len + n` with n <= 32; every load lies
    // in `src`. The first `n` bytes past `len` are then initialised.
    unsafe {
        let s = src.as_ptr();
        let d = out.as_mut_ptr().add(len);
        if n >= 16 {
            let (a, b) = (
                (s as *const u128).read_unaligned(),
                (s.add(n - 16) as *const u128).read_unaligned(),
            );
            (d as *mut u128).write_unaligned(a);
            (d.add(n - 16) as *mut u128).write_unaligned(b);
        } else if n >= 8 {
            let (a, b) = (
                (s as *const u64).read_unaligned(),
                (s.add(n - 8) as *const u64).read_unaligned(),
            );
            (d as *mut u64).write_unaligned(a);
            (d.add(n - 8) as *mut u64).write_unaligned(b);
        } else {
            for i in 0..n {
                *d.add(i) = *s.add(i);
            }
        }
        out.set_len(len + n);
    }
}

fn event_time(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Ts(t) | Value::Int(t) => Some(*t),
        _ => None,
    }
}

/// Start of the oldest window kept under a watermark: a window is kept while
/// its end lies after `wm − retention`.
fn oldest_kept(wm: i64, size: i64, retention: i64) -> i64 {
    (wm - retention).div_euclid(size) * size
}

impl AggBuffers {
    pub fn new(topo: &Topology, store: &Store) -> Result<AggBuffers, StoreError> {
        let mut watermarks = Vec::new();
        for a in &topo.aggregates {
            watermarks.push(if a.window.is_some() {
                store.watermark(&a.name)?
            } else {
                None
            });
        }
        Ok(AggBuffers {
            buffers: topo.aggregates.iter().map(Buffer::of).collect(),
            staged: topo.aggregates.iter().map(|_| Staged::default()).collect(),
            wm_dirty: vec![false; watermarks.len()],
            cutoffs: vec![None; watermarks.len()],
            watermarks,
            future_limit: i64::MAX,
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW_SECS,
            fixed_now: None,
            key: Vec::with_capacity(64),
            hints: Vec::new(),
            row_keys: Vec::new(),
            spans: Vec::new(),
            ids: Vec::new(),
            interner: Interner::default(),
            component: Vec::new(),
            cached: false,
            stats: AggStats::default(),
        }
        .ticked())
    }

    fn ticked(mut self) -> Self {
        self.tick();
        self
    }

    /// Sets how far ahead of the wall clock an event time may be.
    pub fn set_max_future_skew(&mut self, secs: i64) {
        self.max_future_skew = secs.max(0);
        self.tick();
    }

    /// Fixes the clock the future rule reads (tests).
    pub fn set_clock(&mut self, now: i64) {
        self.fixed_now = Some(now);
        self.tick();
    }

    /// Moves the future limit to `now + skew`. A watermark already beyond it
    /// (a state written before this rule, or a clock that went back) is
    /// pulled back to the limit, so it stops deleting recent windows.
    pub fn tick(&mut self) {
        let now = self.fixed_now.unwrap_or_else(wall_clock_secs);
        self.future_limit = now.saturating_add(self.max_future_skew);
        for (wm, dirty) in self.watermarks.iter_mut().zip(&mut self.wm_dirty) {
            if let Some(w) = wm {
                if *w > self.future_limit {
                    *w = self.future_limit;
                    *dirty = true;
                }
            }
        }
    }

    /// Takes over another buffer's clock and skew (a rebuilt buffer).
    pub fn copy_clock_from(&mut self, other: &AggBuffers) {
        self.max_future_skew = other.max_future_skew;
        self.fixed_now = other.fixed_now;
        self.tick();
    }

    /// Empty buffers with this one's clock, skew and watermarks: one shard
    /// of a parallel pass over joined rows, merged back with
    /// [`AggBuffers::absorb`].
    pub fn shard(&self) -> AggBuffers {
        AggBuffers {
            buffers: self
                .buffers
                .iter()
                .map(|b| match b {
                    Buffer::Counts(_) => Buffer::Counts(KeyMap::default()),
                    Buffer::Values(_) => Buffer::Values(KeyMap::default()),
                    Buffer::GroupCounts(_) => Buffer::GroupCounts(GroupMap::default()),
                    Buffer::GroupValues(_) => Buffer::GroupValues(GroupMap::default()),
                })
                .collect(),
            staged: self.buffers.iter().map(|_| Staged::default()).collect(),
            watermarks: self.watermarks.clone(),
            wm_dirty: vec![false; self.watermarks.len()],
            cutoffs: vec![None; self.watermarks.len()],
            future_limit: self.future_limit,
            max_future_skew: self.max_future_skew,
            fixed_now: self.fixed_now,
            key: Vec::with_capacity(64),
            hints: self.hints.clone(),
            row_keys: Vec::new(),
            spans: Vec::new(),
            ids: Vec::new(),
            interner: Interner::default(),
            component: Vec::new(),
            cached: false,
            stats: AggStats::default(),
        }
    }

    /// Merges a shard's pending deltas into these: counts add, quantile
    /// value counts add, watermarks take the larger. Rows a shard kept in a
    /// window that the merged watermark no longer keeps are deleted when
    /// the deltas are written (`Pending::write_into` deletes after it
    /// merges), and a row a shard found late is late for the larger
    /// watermark too, so the order of shards does not matter.
    pub fn absorb(&mut self, mut other: AggBuffers) {
        self.apply_staged();
        other.apply_staged();
        for (mine, theirs) in self.buffers.iter_mut().zip(other.buffers) {
            match (mine, theirs) {
                (Buffer::Counts(m), Buffer::Counts(t)) => m.absorb(t, |m, t| *m += t),
                (Buffer::Values(m), Buffer::Values(t)) => m.absorb(t, add_counts),
                (Buffer::GroupCounts(m), Buffer::GroupCounts(t)) => {
                    groups::absorb(m, &mut self.interner, t, &other.interner, |m, t| *m += t)
                }
                (Buffer::GroupValues(m), Buffer::GroupValues(t)) => {
                    groups::absorb(m, &mut self.interner, t, &other.interner, add_counts)
                }
                _ => unreachable!("shards are built from these buffers"),
            }
        }
        for (i, wm) in other.watermarks.into_iter().enumerate() {
            if wm > self.watermarks[i] {
                self.watermarks[i] = wm;
                self.wm_dirty[i] = true;
            }
        }
        self.stats.late += other.stats.late;
        self.stats.future += other.stats.future;
    }

    /// Applies one joined row with sign `+1` (add) or `−1` (retract).
    pub fn apply(&mut self, topo: &Topology, row: &Record, sign: i64) {
        self.ensure_hints(topo);
        self.row_keys.clear();
        self.spans.clear();
        self.spans.resize(row.fields.len(), (0, 0));
        self.ids.clear();
        self.ids.resize(row.fields.len(), NONE);
        self.cached = true;
        for (i, a) in topo.aggregates.iter().enumerate() {
            if self.is_grouped(i) {
                if let Some(g) = self.group_id(i, a, row, sign) {
                    self.update_group(i, a, g, row, sign);
                }
                continue;
            }
            self.key.clear();
            if self.window_prefix(i, a, row, sign) && self.tuple_key(i, a, row) {
                let key = std::mem::take(&mut self.key);
                self.update(i, a, &key, row, sign);
                self.key = key;
            }
        }
    }

    /// Replaces a joined row: retracts `old` and adds `new`, skipping every
    /// aggregate whose key and value are the same for both (so a change of
    /// an unrelated field leaves a t-digest untouched).
    pub fn replace(&mut self, topo: &Topology, old: &Record, new: &Record) {
        self.ensure_hints(topo);
        self.cached = false;
        for (i, a) in topo.aggregates.iter().enumerate() {
            let measure = |r: &Record| a.measure.as_ref().and_then(|m| r.get(m)).and_then(Value::as_f64);
            if self.is_grouped(i) {
                let old_g = self.group_id(i, a, old, -1);
                let new_g = self.group_id(i, a, new, 1);
                if old_g.is_some() && old_g == new_g && measure(old) == measure(new) {
                    continue;
                }
                if let Some(g) = old_g {
                    self.update_group(i, a, g, old, -1);
                }
                if let Some(g) = new_g {
                    self.update_group(i, a, g, new, 1);
                }
                continue;
            }
            let old_key = self.owned_key(i, a, old, -1);
            let new_key = self.owned_key(i, a, new, 1);
            if old_key.is_some() && old_key == new_key && measure(old) == measure(new) {
                continue;
            }
            if let Some(k) = old_key {
                self.update(i, a, &k, old, -1);
            }
            if let Some(k) = new_key {
                self.update(i, a, &k, new, 1);
            }
        }
    }

    fn owned_key(&mut self, i: usize, a: &Aggregate, row: &Record, sign: i64) -> Option<Vec<u8>> {
        self.key.clear();
        (self.window_prefix(i, a, row, sign) && self.tuple_key(i, a, row)).then(|| self.key.clone())
    }

    /// The row's measure for aggregate `i` (a quantile aggregate's value),
    /// if it is a number.
    fn measure(&mut self, i: usize, a: &Aggregate, row: &Record) -> Option<f64> {
        let hint = &mut self.hints[i][a.group_by.len() + a.extra.len()];
        let at = row.position_hinted(a.measure.as_ref()?, hint)?;
        row.fields[at].1.as_f64()
    }

    /// Stages one update of aggregate `i` (applied by [`AggBuffers::apply_staged_of`]).
    fn update(&mut self, i: usize, a: &Aggregate, key: &[u8], row: &Record, sign: i64) {
        let x = match &self.buffers[i] {
            Buffer::Counts(_) | Buffer::GroupCounts(_) => 0.0,
            Buffer::Values(_) | Buffer::GroupValues(_) => {
                let Some(x) = self.measure(i, a, row) else { return };
                x
            }
        };
        let s = &mut self.staged[i];
        extend_short(&mut s.keys, key);
        s.items.push((hash(key), s.keys.len(), sign, x));
        if s.items.len() >= STAGE {
            self.apply_staged_of(i);
        }
    }

    /// Applies aggregate `i`'s staged updates to its map.
    fn apply_staged_of(&mut self, i: usize) {
        let s = &mut self.staged[i];
        let mut start = 0;
        match &mut self.buffers[i] {
            Buffer::Counts(m) => {
                for &(h, end, w, _) in &s.items {
                    let key = &s.keys[start..end];
                    *m.get_or_insert_with(key, h, || 0) += w;
                    start = end;
                }
            }
            Buffer::Values(m) => {
                for &(h, end, w, x) in &s.items {
                    let key = &s.keys[start..end];
                    add_weighted(m.get_or_insert_with(key, h, Counts::default), x, w);
                    start = end;
                }
            }
            Buffer::GroupCounts(m) => {
                for &(g, w, _) in &s.groups {
                    *m.entry(g).or_insert(0) += w;
                }
            }
            Buffer::GroupValues(m) => {
                for &(g, w, x) in &s.groups {
                    add_weighted(m.entry(g).or_default(), x, w);
                }
            }
        }
        s.groups.clear();
        s.items.clear();
        s.keys.clear();
    }

    /// Applies every staged update: before the maps are read or moved.
    fn apply_staged(&mut self) {
        for i in 0..self.staged.len() {
            if !self.staged[i].items.is_empty() || !self.staged[i].groups.is_empty() {
                self.apply_staged_of(i);
            }
        }
    }

    /// Writes the window start into the key; false if the row has no event
    /// time or its window is past retention.
    fn window_prefix(&mut self, i: usize, a: &Aggregate, row: &Record, sign: i64) -> bool {
        match self.window_start(i, a, row, sign) {
            None => false,
            Some(None) => true,
            Some(Some(start)) => {
                encode_key(&Value::Ts(start), &mut self.key);
                true
            }
        }
    }

    /// The row's window start (`Some(None)`: the aggregate has no window);
    /// `None` if the row has no event time or its window is past retention.
    fn window_start(&mut self, i: usize, a: &Aggregate, row: &Record, sign: i64) -> Option<Option<i64>> {
        let Some((field, w)) = &a.window else {
            return Some(None);
        };
        let hint = &mut self.hints[i][a.group_by.len() + a.extra.len() + 1];
        let t = event_time(row.position_hinted(field, hint).map(|at| &row.fields[at].1))?;
        // The watermark follows the largest event time but never passes the
        // wall clock + skew: one record dated 9999-12-31 must not push every
        // window out of retention. Such a record stays out of the windows
        // (all-time aggregates still take it) and is counted.
        if sign > 0 && t > self.future_limit {
            self.stats.future += 1;
            return None;
        }
        // Every row a window took has t <= the watermark (which only grows),
        // so a retraction beyond it retracts a row that was left out.
        if sign < 0 && self.watermarks[i].is_none_or(|wm| t > wm) {
            return None;
        }
        if sign > 0 && self.watermarks[i].is_none_or(|wm| t > wm) {
            self.watermarks[i] = Some(t);
            self.wm_dirty[i] = true;
        }
        if let Some(wm) = self.watermarks[i] {
            // The cutoff is a window start, so `t < cutoff` exactly when the
            // window's start is: no division for a row that is late (most
            // rows of a batch replay over months of history), and the
            // cutoff is computed again only when the watermark moved.
            let cutoff = match self.cutoffs[i] {
                Some((at, c)) if at == wm => c,
                _ => {
                    let c = oldest_kept(wm, w.size, w.retention);
                    self.cutoffs[i] = Some((wm, c));
                    c
                }
            };
            if t < cutoff {
                self.stats.late += 1;
                return None;
            }
        }
        Some(Some(t.div_euclid(w.size) * w.size))
    }

    fn is_grouped(&self, i: usize) -> bool {
        matches!(self.buffers[i], Buffer::GroupCounts(_) | Buffer::GroupValues(_))
    }

    /// The group of a row for grouped aggregate `i` (window start first,
    /// then the group_by fields: the order of the encoded key); `None`
    /// where the encoded path builds no key.
    fn group_id(&mut self, i: usize, a: &Aggregate, row: &Record, sign: i64) -> Option<GroupId> {
        let mut g = [NONE; MAX_PARTS];
        let mut n = 0;
        if let Some(start) = self.window_start(i, a, row, sign)? {
            self.component.clear();
            encode_key(&Value::Ts(start), &mut self.component);
            g[0] = self.interner.intern(&self.component);
            n = 1;
        }
        for (j, f) in a.group_by.iter().enumerate() {
            let at = row.position_hinted(f, &mut self.hints[i][j])?;
            let v = &row.fields[at].1;
            if matches!(v, Value::Null) {
                return None;
            }
            g[n] = self.field_id(at, v);
            n += 1;
        }
        Some(g)
    }

    /// The id of field `at`'s key component (interned once per applied row).
    #[inline]
    fn field_id(&mut self, at: usize, v: &Value) -> u32 {
        if !self.cached {
            self.component.clear();
            encode_key(v, &mut self.component);
            return self.interner.intern(&self.component);
        }
        if self.ids[at] != NONE {
            return self.ids[at];
        }
        let span = self.row_component(at, v);
        let id = self.interner.intern(&self.row_keys[span]);
        self.ids[at] = id;
        id
    }

    /// Where field `at`'s encoded key component lies in `row_keys`,
    /// encoding it there the first time this row asks (while `cached`).
    #[inline]
    fn row_component(&mut self, at: usize, v: &Value) -> std::ops::Range<usize> {
        let (start, end) = self.spans[at];
        if end > start {
            return start as usize..end as usize;
        }
        let start = self.row_keys.len();
        encode_key(v, &mut self.row_keys);
        self.spans[at] = (start as u32, self.row_keys.len() as u32);
        start..self.row_keys.len()
    }

    /// One update of grouped aggregate `i`: a count straight into its map
    /// (few groups: it stays in cache); a quantile value staged as the
    /// encoded path's updates are (see [`STAGE`]), as its per-group value
    /// counts are large and, applied row by row, miss the cache.
    fn update_group(&mut self, i: usize, a: &Aggregate, g: GroupId, row: &Record, sign: i64) {
        let x = match &mut self.buffers[i] {
            Buffer::GroupCounts(m) => {
                *m.entry(g).or_insert(0) += sign;
                return;
            }
            Buffer::GroupValues(_) => {
                let Some(x) = self.measure(i, a, row) else { return };
                x
            }
            _ => unreachable!("update_group is called for grouped aggregates"),
        };
        let s = &mut self.staged[i];
        s.groups.push((g, sign, x));
        if s.groups.len() >= STAGE {
            self.apply_staged_of(i);
        }
    }

    /// Appends the tuple part of the key; false if a used field is null.
    fn tuple_key(&mut self, i: usize, a: &Aggregate, row: &Record) -> bool {
        let n = a.group_by.len() + a.extra.len();
        for (j, f) in a.group_by.iter().chain(&a.extra).enumerate() {
            match row.position_hinted(f, &mut self.hints[i][j]) {
                Some(at) if !matches!(row.fields[at].1, Value::Null) => self.push_component(at, &row.fields[at].1),
                _ => return false,
            }
        }
        if a.function.imp().measure_in_key() {
            let at = a
                .measure
                .as_ref()
                .and_then(|m| row.position_hinted(m, &mut self.hints[i][n]));
            match at {
                Some(at) if matches!(row.fields[at].1, Value::Int(_) | Value::Float(_)) => {
                    self.push_component(at, &row.fields[at].1)
                }
                _ => return false,
            }
        }
        true
    }

    /// Appends field `at`'s key component (encoded once per applied row).
    #[inline]
    fn push_component(&mut self, at: usize, v: &Value) {
        if !self.cached {
            encode_key(v, &mut self.key);
            return;
        }
        let span = self.row_component(at, v);
        extend_short(&mut self.key, &self.row_keys[span]);
    }

    /// One hint per field each aggregate reads (see `hints`).
    fn ensure_hints(&mut self, topo: &Topology) {
        if self.hints.len() != topo.aggregates.len() {
            self.hints = topo
                .aggregates
                .iter()
                .map(|a| vec![0; a.group_by.len() + a.extra.len() + 2])
                .collect();
        }
    }

    /// Takes every pending delta (and changed watermark) out of the buffers.
    pub fn take(&mut self, topo: &Topology) -> Pending {
        self.apply_staged();
        let mut p = Pending::default();
        for (i, a) in topo.aggregates.iter().enumerate() {
            match &mut self.buffers[i] {
                Buffer::Counts(m) => p.counts.push(std::mem::take(m)),
                Buffer::Values(m) => {
                    p.counts.push(KeyMap::default());
                    p.values.push((i, std::mem::take(m)));
                }
                Buffer::GroupCounts(m) => p.counts.push(groups::to_keymap(std::mem::take(m), &self.interner)),
                Buffer::GroupValues(m) => {
                    p.counts.push(KeyMap::default());
                    p.values.push((i, groups::to_keymap(std::mem::take(m), &self.interner)));
                }
            }
            if let (Some(_), Some(wm)) = (&a.window, self.watermarks[i]) {
                if std::mem::take(&mut self.wm_dirty[i]) {
                    p.watermarks.push((i, wm));
                }
            }
        }
        // No group id outlives the maps just taken.
        self.interner.clear();
        p
    }

    /// Number of pending keys (for commit sizing), staged updates counted
    /// as keys.
    pub fn pending(&self) -> usize {
        let staged: usize = self.staged.iter().map(|s| s.items.len() + s.groups.len()).sum();
        self.buffers.iter().map(Buffer::len).sum::<usize>() + staged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length up to 70, appended to buffers of every fill level
    /// around a reallocation: the bytes `extend_from_slice` would give.
    #[test]
    fn extend_short_appends_what_extend_from_slice_appends() {
        let src: Vec<u8> = (0..70u8).map(|i| i.wrapping_mul(29).wrapping_add(3)).collect();
        for n in 0..=70 {
            for fill in [0usize, 1, 7, 31, 60, 64] {
                let mut want: Vec<u8> = Vec::with_capacity(64);
                want.extend(std::iter::repeat_n(9u8, fill));
                let mut got = want.clone();
                want.extend_from_slice(&src[..n]);
                extend_short(&mut got, &src[..n]);
                assert_eq!(got, want, "len {n} after {fill}");
            }
        }
    }

    /// Staged updates reach the maps whole: counts and quantile value
    /// counts after more rows than one stage holds, with retractions, equal
    /// a direct count; a staged update already counts as pending.
    #[test]
    fn staged_updates_add_up_to_a_direct_count() {
        use std::collections::BTreeMap;
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &topo).unwrap();
        let mut aggs = AggBuffers::new(&topo, &store).unwrap();
        let count_at = topo
            .aggregates
            .iter()
            .position(|a| a.name == "posts_by_country_category")
            .unwrap();
        let quant_at = topo
            .aggregates
            .iter()
            .position(|a| a.name == "followers_by_age_group")
            .unwrap();
        let mut counts: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
        let mut values: BTreeMap<Vec<u8>, BTreeMap<i64, i64>> = BTreeMap::new();
        let row = |i: i64| {
            let s = Value::Str;
            let fields = [
                ("country", s(format!("c{}", i % 7))),
                ("category", s(format!("k{}", i % 5))),
                ("age_group", s(format!("a{}", i % 3))),
                ("follower_count", Value::Int(i % 11)),
            ];
            Record {
                fields: fields
                    .into_iter()
                    .map(|(n, v)| (crate::model::value::intern(n), v))
                    .collect(),
            }
        };
        let n = 3 * STAGE as i64 + 17;
        for i in 0..n {
            let sign = if i % 10 == 9 { -1 } else { 1 };
            aggs.apply(&topo, &row(i), sign);
            if i == 0 {
                assert!(aggs.pending() > 0, "a staged update is pending");
            }
            let r = row(i);
            let mut k = Vec::new();
            encode_key(r.get("country").unwrap(), &mut k);
            encode_key(r.get("category").unwrap(), &mut k);
            *counts.entry(k).or_default() += sign;
            let mut k = Vec::new();
            encode_key(r.get("age_group").unwrap(), &mut k);
            *values.entry(k).or_default().entry(i % 11).or_default() += sign;
        }
        let mut p = aggs.take(&topo);
        assert_eq!(aggs.pending(), 0);
        let got: BTreeMap<Vec<u8>, i64> = std::mem::take(&mut p.counts[count_at])
            .into_sorted()
            .into_owned()
            .collect();
        assert_eq!(got, counts);
        let (_, m) = p.values.into_iter().find(|(i, _)| *i == quant_at).unwrap();
        let got: BTreeMap<Vec<u8>, BTreeMap<i64, i64>> = m
            .into_sorted()
            .into_owned()
            .map(|(k, c)| {
                let mut by_value = BTreeMap::new();
                for x in 0..11 {
                    let mut one = Counts::default();
                    add_weighted(&mut one, x as f64, 1);
                    let key = *one.keys().next().unwrap();
                    if let Some(&w) = c.get(&key) {
                        by_value.insert(x, w);
                    }
                }
                assert_eq!(by_value.len(), c.len(), "only the values 0..11 were added");
                (k, by_value)
            })
            .collect();
        assert_eq!(got, values);
    }

    /// The late check compares the event time with the cutoff instead of
    /// the window start: the same answer for every time around cutoffs of
    /// several sizes, negative times included.
    #[test]
    fn late_by_time_is_late_by_window_start() {
        for (size, retention) in [(10i64, 25i64), (3600, 30 * 86_400), (86_400, 86_400), (7, 0)] {
            for wm in [-1_000i64, -7, 0, 5, 99, 100, 1_000_003, 2_592_000 + 17] {
                let cutoff = oldest_kept(wm, size, retention);
                for t in (cutoff - 3 * size - 2)..(cutoff + 3 * size + 2) {
                    let start = t.div_euclid(size) * size;
                    assert_eq!(t < cutoff, start < cutoff, "t {t} size {size} wm {wm}");
                }
            }
        }
    }

    #[test]
    fn retention_keeps_the_window_holding_the_cutoff() {
        // size 10, retention 25, watermark 100 → cutoff 75 → window 70..80
        // still overlaps the retention, window 60..70 does not.
        assert_eq!(oldest_kept(100, 10, 25), 70);
        // cutoff 80 exactly: window 70..80 ends at the cutoff and goes.
        assert_eq!(oldest_kept(100, 10, 20), 80);
        assert_eq!(oldest_kept(-5, 10, 10), -20);
    }
}
