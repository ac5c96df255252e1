//! The stateful half of a topology: join, post-join operators, aggregates,
//! source positions, commits.
//!
//! The engine is single-threaded by design: it sees every cleaned record in
//! the order its driver chooses, which makes "a later record replaces the
//! earlier one" well defined. The stateless half (parsing and cleaning,
//! [`crate::engine::prepare::prepare`]) runs in parallel in front of it.
//!
//! Exactly-once effect: [`Engine::commit`] writes the join rows, aggregate
//! deltas and the positions of every record they include in one RocksDB
//! write batch. A record whose position is already in the state is skipped
//! by the driver, so a crash between commits only replays uncommitted work.
//!
//! Shards: an engine owns whole join keys, and every aggregate table is
//! written only by merges of pre-aggregated deltas (`aggregate`), so under
//! the incremental plan the join table and the deltas are split by
//! `hash(key) % N` over N shards ([`shard`]) that apply a batch on N
//! threads at once; a commit gathers every shard's changes into its one
//! write batch, with the positions, as one thread's would be.

mod batch;
pub mod commit;
pub mod driver;
pub mod prepare;
mod reader;
pub mod shard;

use std::path::Path;
use std::sync::Arc;

use rocksdb::WriteBatch;

use crate::aggregate::buffers::{AggBuffers, AggStats};
use crate::model::offsets::Positions;
use crate::model::value::{decode_key, decode_value_into, skip_value, Record, Value};
use crate::state::join::{JoinState, SlotChange};
use crate::state::store::{Durability, Store, StoreError};
use crate::topology::Topology;

/// Default number of join keys kept in memory.
pub const DEFAULT_CACHE_KEYS: usize = 4_000_000;

/// What the engine did, since it was opened.
#[derive(Debug, Default, Clone, Copy)]
pub struct EngineStats {
    /// Cleaned records applied to the join.
    pub records: u64,
    /// Records identical to the row already in their slot.
    pub unchanged: u64,
    /// Joined rows added (a key became complete).
    pub joined: u64,
    /// Joined rows replaced by a changed input record.
    pub replaced: u64,
    pub commits: u64,
    /// Time spent writing commits (building the batch and RocksDB's write).
    pub commit_time: std::time::Duration,
    pub agg: AggStats,
}

impl EngineStats {
    /// Counts one slot update.
    pub fn count(&mut self, change: SlotChange) {
        match change {
            SlotChange::Unchanged => self.unchanged += 1,
            SlotChange::Completes => self.joined += 1,
            SlotChange::Replaces => self.replaced += 1,
            SlotChange::Fills => {}
        }
    }
}

pub struct Engine {
    topo: Arc<Topology>,
    store: Arc<Store>,
    /// The previous commit's RocksDB write, running while the engine goes on.
    in_flight: Option<std::thread::JoinHandle<Result<(), StoreError>>>,
    join: JoinState,
    aggs: AggBuffers,
    positions: Positions,
    /// source index → join slot
    slot_of: Vec<usize>,
    pending: usize,
    /// Batch plan (`batch.rs`): aggregation is deferred to the first sync.
    batch: bool,
    /// Set (`true`) or clear the deferred flag in the next commit's batch.
    flag_change: Option<bool>,
    /// Batch plan past `spill_at` join keys: the input goes to partition files.
    spill: Option<crate::state::spill::Spill>,
    spill_at: usize,
    /// The joined rows before and after a change (reused, see [`JoinedRow`]).
    old_row: JoinedRow,
    new_row: JoinedRow,
    /// Set by a signal: the batch plan's final aggregation stops between
    /// partitions with [`StoreError::Interrupted`] (`batch.rs`).
    stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Shards 1.. of the incremental plan (the fields above are shard 0);
    /// empty on one thread and under the batch plan ([`Engine::set_shards`]).
    more: Vec<shard::Worker>,
    pub stats: EngineStats,
}

impl Engine {
    pub fn open(
        topo: Arc<Topology>,
        dir: &Path,
        cache_keys: usize,
        durability: Durability,
    ) -> Result<Engine, StoreError> {
        let store = Arc::new(Store::open_with(dir, &topo, durability)?);
        // Partition files of a batch replay that did not finish: their rows
        // are not state (no position covers them), the replay redoes them.
        let _ = std::fs::remove_dir_all(dir.join("spill"));
        let mut join = JoinState::open(&store, &topo.join.name, topo.join.inputs.len(), cache_keys)?;
        join.set_in_memory(durability == Durability::Ephemeral);
        let aggs = AggBuffers::new(&topo, &store)?;
        let positions = Positions::load(store.positions()?);
        let mut slot_of = vec![usize::MAX; topo.sources.len()];
        for (slot, &src) in topo.join.inputs.iter().enumerate() {
            slot_of[src] = slot;
        }
        let (old_row, new_row) = (JoinedRow::new(&topo), JoinedRow::new(&topo));
        let mut engine = Engine {
            topo,
            store,
            in_flight: None,
            join,
            aggs,
            positions,
            slot_of,
            pending: 0,
            batch: false,
            flag_change: None,
            spill: None,
            spill_at: usize::MAX,
            old_row,
            new_row,
            stop: None,
            more: Vec::new(),
            stats: EngineStats::default(),
        };
        if engine.store.aggregates_deferred()? {
            engine.recover_deferred()?;
        }
        Ok(engine)
    }

    pub fn topology(&self) -> &Arc<Topology> {
        &self.topo
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, shared with readers on other threads (HTTP queries).
    pub fn shared_store(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub fn positions(&self) -> &Positions {
        &self.positions
    }

    /// Whether the record at this position is already in the state.
    pub fn is_done(&self, topic: &str, partition: i32, offset: i64) -> bool {
        self.positions.is_done(topic, partition, offset)
    }

    /// Records the position of a record whose effects are now pending (or
    /// that had none: a dead letter also moves the position on).
    pub fn mark(&mut self, topic: &str, partition: i32, offset: i64) {
        self.mark_range(topic, partition, offset, offset + 1);
    }

    /// Records the positions `[start, end)` of one partition at once.
    pub fn mark_range(&mut self, topic: &str, partition: i32, start: i64, end: i64) {
        self.positions.mark_range(topic, partition, start, end);
        self.pending += (end - start).max(0) as usize;
    }

    /// Splits the incremental plan's state over `n` shards (threads) by join
    /// key ([`shard::shard_of`]). Only before anything is applied, and not
    /// under the batch plan (which has parallel passes of its own): there
    /// it does nothing. Returns the number of shards in use.
    pub fn set_shards(&mut self, n: usize) -> Result<usize, StoreError> {
        if n <= 1 || self.batch || !self.more.is_empty() {
            return Ok(self.more.len() + 1);
        }
        let mut parts = self.join.split(n).into_iter();
        self.join = parts.next().expect("split gives n parts");
        for join in parts {
            let shard = shard::Shard {
                join,
                aggs: self.aggs.shard(),
                old_row: JoinedRow::new(&self.topo),
                new_row: JoinedRow::new(&self.topo),
                stats: EngineStats::default(),
            };
            self.more
                .push(shard::Worker::spawn(shard, self.topo.clone(), self.store.clone()));
        }
        Ok(n)
    }

    /// Number of shards the incremental plan applies on.
    pub fn shards(&self) -> usize {
        self.more.len() + 1
    }

    /// Shard 0's parts: the engine's own join table and buffers.
    fn main_parts(&mut self) -> shard::Parts<'_> {
        shard::Parts {
            join: &mut self.join,
            aggs: &mut self.aggs,
            old_row: &mut self.old_row,
            new_row: &mut self.new_row,
            stats: &mut self.stats,
        }
    }

    /// Applies one cleaned record of `source`: `key` is the tuple-encoded join
    /// key, `row` the encoded projection (borrowed or owned: it is copied
    /// only where it is stored).
    pub fn process<R: AsRef<[u8]> + Into<Box<[u8]>>>(
        &mut self,
        source: usize,
        key: &[u8],
        row: R,
    ) -> Result<(), StoreError> {
        let slot = self.slot_of[source];
        if self.batch {
            self.stats.records += 1;
            return self.process_deferred(slot, key, row);
        }
        let (topo, store) = (self.topo.clone(), self.store.clone());
        match shard::shard_of(key, self.more.len() + 1) {
            0 => shard::apply(&mut self.main_parts(), &topo, &store, slot, key, row),
            i => {
                let row = row.as_ref();
                let mut buf = Vec::with_capacity(key.len() + row.len());
                buf.extend_from_slice(key);
                buf.extend_from_slice(row);
                self.more[i - 1].apply(shard::Records {
                    slot,
                    buf,
                    spans: vec![(0, key.len(), row.len())],
                })
            }
        }
    }

    /// Applies the records of one batch of `source` in order: each
    /// `(at, key_len, row_len)` names a key and the row after it in `buf`.
    /// With shards, each other shard's records are copied out and queued
    /// for its thread, then this thread applies its own (a key's records
    /// stay in order: they are one shard's).
    pub fn process_spans(
        &mut self,
        source: usize,
        buf: &[u8],
        spans: &[(usize, usize, usize)],
    ) -> Result<(), StoreError> {
        let record = |s| shard::span(buf, s);
        if self.more.is_empty() || self.batch {
            for s in spans {
                let (k, r) = record(s);
                self.process(source, k, r)?;
            }
            return Ok(());
        }
        let n = self.more.len() + 1;
        let slot = self.slot_of[source];
        let ids: Vec<u8> = spans.iter().map(|s| shard::shard_of(record(s).0, n) as u8).collect();
        for (i, w) in self.more.iter().enumerate() {
            let mine = |id: &u8| usize::from(*id) == i + 1;
            let count = ids.iter().filter(|id| mine(id)).count();
            if count == 0 {
                continue;
            }
            let mut out = shard::Records {
                slot,
                buf: Vec::with_capacity(buf.len() * count / spans.len() + 64),
                spans: Vec::with_capacity(count),
            };
            for (s, id) in spans.iter().zip(&ids) {
                if mine(id) {
                    let (k, r) = record(s);
                    out.spans.push((out.buf.len(), k.len(), r.len()));
                    out.buf.extend_from_slice(k);
                    out.buf.extend_from_slice(r);
                }
            }
            w.apply(out)?;
        }
        let (topo, store) = (self.topo.clone(), self.store.clone());
        let mut p = self.main_parts();
        for (s, id) in spans.iter().zip(&ids) {
            if *id == 0 {
                let (k, r) = record(s);
                shard::apply(&mut p, &topo, &store, slot, k, r)?;
            }
        }
        Ok(())
    }

    /// Waits until every shard has applied what it was given and adds its
    /// counters to [`Engine::stats`] (a commit does this too).
    pub fn settle(&mut self) -> Result<(), StoreError> {
        for w in &self.more {
            let s = w.sync()?;
            shard::add_stats(&mut self.stats, s);
        }
        Ok(())
    }

    /// Commits everything pending in one write batch. The batch is built
    /// here and written by a background thread while processing goes on;
    /// the next commit (or [`Engine::sync`]) waits for it first, so at most
    /// one batch is in flight and batches land in order.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        self.wait_in_flight()?;
        let kept = self.store.durability() != Durability::Ephemeral;
        if self.batch && (self.join.over_capacity() || (kept && self.spill.is_some())) {
            // The table is about to leave memory, or a kept state's spilled
            // rows must be in its join table before positions covering them
            // are committed: aggregate what it holds now and go on
            // incrementally.
            self.aggregate_deferred()?;
        }
        // Every shard's deltas into shard 0's (watermarks take the larger),
        // and its dirty entries beside shard 0's.
        let mut join = self.join.take_dirty();
        let mut evicted: Option<crate::state::join::EncodedEntries> = None;
        for w in &self.more {
            let t = w.take()?;
            join.extend(t.dirty);
            if let Some(e) = t.evicted {
                evicted.get_or_insert_with(Vec::new).extend(e);
            }
            self.aggs.absorb(t.aggs);
            shard::add_stats(&mut self.stats, t.stats);
        }
        self.aggs.tick();
        // Collect on this thread (cheap moves); sort, encode digests and
        // build the RocksDB batch on the writer thread.
        let aggs = self.aggs.take(&self.topo);
        let positions = self.positions.take_dirty();
        let flag = self.flag_change.take();
        if !join.is_empty() || !aggs.is_empty() || !positions.is_empty() || flag.is_some() {
            let (store, topo) = (self.store.clone(), self.topo.clone());
            self.in_flight = Some(std::thread::spawn(move || {
                let mut batch = WriteBatch::default();
                JoinState::write_sorted(&store, &topo.join.name, join, &mut batch)?;
                aggs.write_into(&topo, &store, &mut batch)?;
                for ((topic, partition), ranges) in positions {
                    store.put_position(&mut batch, &topic, partition, &ranges)?;
                }
                if let Some(on) = flag {
                    store.put_deferred(&mut batch, on)?;
                }
                store.write(batch)?;
                // Without a WAL a commit is durable once flushed: a kept
                // replay state resumes from its last commit after a kill.
                // Regression: replay_state_dir_is_durable_at_each_commit.
                if store.durability() == Durability::Flush {
                    store.flush()?;
                }
                Ok(())
            }));
        }
        if let Some(spill) = self.join.after_commit() {
            evicted.get_or_insert_with(Vec::new).extend(spill);
        }
        if let Some(spill) = evicted {
            // The cache was evicted: from now on lookups read RocksDB, so the
            // batch in flight must land first (or a key written there would
            // look new), and an in-memory table is written out whole.
            // Regression: join_cache_overflow_spills_to_rocksdb_and_gives_the_same_answers.
            self.wait_in_flight()?;
            if !spill.is_empty() {
                let mut batch = WriteBatch::default();
                JoinState::write_sorted(&self.store, &self.topo.join.name, spill, &mut batch)?;
                self.store.write(batch)?;
            }
        }
        // The shards go on from the merged watermarks and clock (and, after
        // an eviction, only once the writes above have landed).
        for w in &self.more {
            w.resume(self.aggs.shard())?;
        }
        self.pending = 0;
        self.stats.commits += 1;
        self.stats.commit_time += started.elapsed();
        self.stats.agg = self.aggs.stats;
        Ok(())
    }

    fn wait_in_flight(&mut self) -> Result<(), StoreError> {
        match self.in_flight.take() {
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(StoreError::Corrupt {
                    path: self.store.path().into(),
                    what: "the commit writer panicked".into(),
                })
            }),
            None => Ok(()),
        }
    }

    /// Whether the last commit has landed (nothing is in flight); joins a
    /// writer that has finished, so its error, if any, comes out here. Does
    /// not wait.
    pub fn commit_landed(&mut self) -> Result<bool, StoreError> {
        match &self.in_flight {
            Some(h) if !h.is_finished() => Ok(false),
            _ => self.wait_in_flight().map(|()| true),
        }
    }

    /// Commits what is pending and waits until it is durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.aggregate_deferred()?;
        self.commit()?;
        let started = std::time::Instant::now();
        self.wait_in_flight()?;
        if self.store.durability() == Durability::Flush {
            self.store.flush()?;
        }
        self.stats.commit_time += started.elapsed();
        Ok(())
    }

    /// A flag that, once set, stops a long aggregation (the batch plan's
    /// final pass) with [`StoreError::Interrupted`]; the state is left as
    /// an interrupted batch replay leaves it (recovered at its next open).
    pub fn set_stop(&mut self, stop: Arc<std::sync::atomic::AtomicBool>) {
        self.stop = Some(stop);
    }

    fn stopped(&self) -> bool {
        batch::is_set(self.stop.as_deref())
    }

    /// Sets how far ahead of the wall clock an event time may lie before
    /// windowed aggregates leave the record out (see `agg.rs`).
    pub fn set_max_future_skew(&mut self, secs: i64) {
        self.aggs.set_max_future_skew(secs);
    }

    /// Moves the wall clock the future rule compares with (tests).
    pub fn set_clock(&mut self, now: i64) {
        self.aggs.set_clock(now);
    }

    /// Ends a temporary replay's engine cheaply (see
    /// [`JoinState::leak_cache`]): only for a process about to exit whose
    /// state is thrown away; the engine must not process anything after.
    pub fn leak_join_cache(mut self) {
        self.join.leak_cache();
        for w in &self.more {
            w.leak();
        }
    }

    /// Records marked since the last commit.
    pub fn pending(&self) -> usize {
        self.pending
    }
}

impl Drop for Engine {
    /// Lets a commit still being written finish: an engine dropped on an
    /// error path (an interrupted replay) must not leave its writer thread
    /// using RocksDB while the process exits (RocksDB aborted with
    /// "pthread lock: Invalid argument").
    /// Regression: regression_sigint_stops_a_replay_cleanly_and_it_resumes.
    fn drop(&mut self) {
        if let Some(h) = self.in_flight.take() {
            let _ = h.join();
        }
    }
}

/// The joined row of a complete entry: the key, each input's projected
/// fields in input order, then the post-join operators. One is kept per
/// aggregating thread and refilled for every row: the names are set once
/// and values are decoded in place (strings reuse their buffers), so a row
/// costs no allocation beyond what the post-join operators add.
pub struct JoinedRow {
    rec: Record,
    /// The names before the post-join operators run.
    layout: Vec<crate::model::value::Name>,
}

impl JoinedRow {
    pub fn new(topo: &Topology) -> JoinedRow {
        let mut fields = vec![(topo.join.key.clone(), Value::Null)];
        for (slot, &src) in topo.join.inputs.iter().enumerate() {
            for (name, &take) in topo.sources[src].projection.iter().zip(&topo.join.takes[slot]) {
                if take {
                    fields.push((name.clone(), Value::Null));
                }
            }
        }
        JoinedRow {
            layout: fields.iter().map(|(n, _)| n.clone()).collect(),
            rec: Record { fields },
        }
    }

    /// Refills the row from a complete entry's slots.
    pub fn fill<R: AsRef<[u8]>>(
        &mut self,
        topo: &Topology,
        key: &[u8],
        slots: &[Option<R>],
    ) -> Result<&Record, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt {
            path: Default::default(),
            what: what.to_string(),
        };
        let fields = &mut self.rec.fields;
        let base = self.layout.len();
        // A post-join operator that renamed, dropped or reordered fields
        // leaves another layout: start again from the plan's.
        if fields.len() < base || fields.iter().zip(&self.layout).any(|((n, _), l)| n != l) {
            *fields = self.layout.iter().map(|n| (n.clone(), Value::Null)).collect();
        }
        // The fields past the plan's are those the operators added to the
        // last row. They stay (nulled), so each operator finds its output
        // where it left it (`Record::set_hinted`) instead of scanning every
        // name to learn it is absent and appending it again (5% of the
        // final pass of a batch replay). The names an operator leaves depend
        // on the names it is given alone, so every row gets these again.
        for (_, v) in &mut fields[base..] {
            *v = Value::Null;
        }
        let mut k = key;
        fields[0].1 = decode_key(&mut k).ok_or_else(|| corrupt("join key does not decode"))?;
        let mut at = 1;
        for (slot, takes) in topo.join.takes.iter().enumerate() {
            let mut bytes = slots[slot]
                .as_ref()
                .map(AsRef::as_ref)
                .ok_or_else(|| corrupt("incomplete join entry"))?;
            for &take in takes {
                if bytes.is_empty() {
                    // A row shorter than its projection: the rest is null.
                    if take {
                        fields[at].1 = Value::Null;
                        at += 1;
                    }
                } else if take {
                    decode_value_into(&mut bytes, &mut fields[at].1)
                        .ok_or_else(|| corrupt("join row does not decode"))?;
                    at += 1;
                } else {
                    skip_value(&mut bytes).ok_or_else(|| corrupt("join row does not decode"))?;
                }
            }
        }
        for op in &topo.join.ops {
            // Post-join operators cannot reject (`require` is refused by build).
            let _ = op.apply(&mut self.rec);
        }
        Ok(&self.rec)
    }
}

/// Builds the joined row of a complete entry (a fresh [`JoinedRow`]).
pub fn joined_row(topo: &Topology, key: &[u8], slots: &[Option<Box<[u8]>>]) -> Result<Record, StoreError> {
    let mut row = JoinedRow::new(topo);
    row.fill(topo, key, slots)?;
    Ok(row.rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One reused row, refilled from entries whose values are present,
    /// null or unparsable in turn (so the post-join operators write values
    /// and nulls), holds exactly what a fresh row holds each time: the
    /// fields the operators added to the previous row leave nothing behind.
    #[test]
    fn a_reused_joined_row_equals_a_fresh_one() {
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap();
        let src = |name: &str| topo.sources.iter().position(|s| s.name == name).unwrap();
        let (pin, geo, user) = (src("pin"), src("geo"), src("user"));
        let mut reused = JoinedRow::new(&topo);
        let mut checked = 0;
        for i in 0..12 {
            let (ts, age, joined) = match i % 3 {
                0 => ("\"2020-08-28T03:52:47\"", "\"41\"", "\"2016-01-01 00:00:00\""),
                1 => ("null", "null", "null"),
                _ => ("\"not a time\"", "\"x\"", "\"\""),
            };
            let lines = [
                (
                    pin,
                    format!(r#"{{"index": {i}, "category": "art", "follower_count": "{i}k", "poster_name": "p"}}"#),
                ),
                (geo, format!(r#"{{"ind": {i}, "timestamp": {ts}, "country": "Chad"}}"#)),
                (
                    user,
                    format!(
                        r#"{{"ind": {i}, "first_name": "A", "last_name": "B", "age": {age}, "date_joined": {joined}}}"#
                    ),
                ),
            ];
            let mut key = Vec::new();
            let mut slots: Vec<Option<Box<[u8]>>> = vec![None; topo.join.inputs.len()];
            for (s, line) in lines {
                let p = crate::engine::prepare::prepare(&topo, s, line.as_bytes()).unwrap();
                key = p.key;
                let slot = topo.join.inputs.iter().position(|&x| x == s).unwrap();
                slots[slot] = Some(p.row);
            }
            let fresh = joined_row(&topo, &key, &slots).unwrap();
            let again = reused.fill(&topo, &key, &slots).unwrap();
            assert_eq!(again, &fresh, "row {i}");
            checked += 1;
        }
        assert_eq!(checked, 12);
    }
}
