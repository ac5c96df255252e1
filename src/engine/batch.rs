//! The batch plan of a replay.
//!
//! A replay need not keep the aggregates current while it reads: with the
//! batch plan the engine only builds the join table while records arrive
//! (no joined rows, no retractions of replaced rows), and at the first
//! [`Engine::sync`] aggregates every complete row once, in parallel shards
//! whose partial deltas are merged ([`AggBuffers::absorb`]). From then on
//! the engine is incremental again, so a sync in the middle (or a join
//! table about to spill out of memory) only changes *when* rows are
//! aggregated, not what the aggregates hold.
//!
//! Same answers as the incremental plan: counts, distinct counts and
//! max-by are multiplicities of the final rows either way; quantile
//! sketches hold the same values while exact, and as t-digests they hold
//! only the final rows' values (the incremental plan keeps values of
//! replaced rows a t-digest cannot retract), which is closer to the exact
//! answer. Windowed aggregates keep what lies inside the retention of the
//! largest event time of the final rows. Tested by
//! `tests/replay.rs::batch_plan_gives_the_incremental_answers`.
//!
//! A kept state (`--state-dir`, [`Durability::Flush`]) may defer too, if
//! it starts empty: its first commit writes the *deferred* flag with the
//! join rows and positions, and the commit after the aggregation clears
//! it. While the flag is set the aggregate tables hold nothing the join
//! table does not also hold; so a replay killed midway leaves a state whose
//! next open ([`Engine::recover_deferred`]) clears the aggregate tables and
//! aggregates the stored join table whole, then goes on incrementally.
//! Positions stay exact throughout: they are committed with the join rows.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Engine, EngineStats, JoinedRow};
use crate::aggregate::buffers::AggBuffers;
use crate::aggregate::keymap::{hash, same_bytes};
use crate::aggregate::state::agg_cf;
use crate::state::join::{join_cf, slot_change, Entry, FlatEntries, SlotChange};
use crate::state::spill::{load, rows, Spill};
use crate::state::store::{Durability, Store, StoreError};
use crate::topology::Topology;

/// Complete rows per shard between two writes of the merged deltas: bounds
/// the memory of the pass.
const ROWS_PER_SHARD: usize = 100_000;

/// A kept state's join entries per ingested SST file. The last run is
/// written after every partition is joined, alone: smaller runs shorten
/// that tail and hold less memory. Measured on a durable 1,000,000-post
/// replay (two sets of 5 alternating whole-process pairs): 16 MB against 48 MB took
/// 0.93 and 0.97 of the wall time, peak RSS 226 against 295 MB.
const JOIN_RUN_BYTES: usize = 16 << 20;

/// Join keys a temporary batch replay keeps in memory before it spills its
/// input to partition files (`state/spill.rs`). Low on purpose: joining
/// partition by partition is faster than one big table (small tables stay
/// in the CPU caches, partitions are joined on all cores) and holds less
/// memory. Measured on the 1,000,000-post archive, five alternating pairs:
/// partitioned 3.80 s wall and 168 MB peak RSS, one table 4.33 s and 448 MB.
pub const BATCH_MEMORY_KEYS: usize = 100_000;

/// What a worker of the spilled pass reports: per partition its
/// slot-update counts and, for a kept state, its join table's entries
/// (encoded); once, when it runs out of partitions, its aggregates.
enum PartitionDone {
    Joined(EngineStats, FlatEntries),
    Aggregated(Box<AggBuffers>),
}

/// Whether a run may defer aggregation (pure; the rules above): only with
/// the whole join table in memory, and for a kept state only when it starts
/// empty; never live (a daemon answers while it runs).
pub fn batch_allowed(durability: Durability, whole_in_memory: bool, fresh: bool) -> bool {
    match durability {
        Durability::Ephemeral => whole_in_memory,
        Durability::Flush => whole_in_memory && fresh,
        Durability::Wal => false,
    }
}

impl Engine {
    /// Chooses the batch plan (`true`, where [`batch_allowed`]) or the
    /// incremental one.
    pub fn set_batch_plan(&mut self, on: bool) {
        let durability = self.store.durability();
        let whole = self.join.holds_all() && (self.join.is_in_memory() || durability == Durability::Flush);
        let fresh = self.join.is_empty() && self.positions.all().next().is_none();
        let was = self.batch;
        // A sharded engine stays incremental (`Engine::set_shards`).
        self.batch = on && self.more.is_empty() && batch_allowed(durability, whole, fresh);
        self.spill_at = match durability {
            Durability::Ephemeral => self.join.capacity().min(BATCH_MEMORY_KEYS),
            // A kept state spills too (into its own dir) while it defers; the
            // partitions' join rows are written to its RocksDB table when
            // they are joined, at the end or at the first commit before it
            // (`commit`), and from then on it goes on incrementally.
            Durability::Flush if self.batch => self.join.capacity().min(BATCH_MEMORY_KEYS),
            _ => usize::MAX,
        };
        if durability == Durability::Flush && self.batch != was {
            self.flag_change = Some(self.batch);
        }
    }

    /// One record under the batch plan: into the join table (or the
    /// spill), counted as the incremental plan counts it.
    pub(super) fn process_deferred<R: AsRef<[u8]> + Into<Box<[u8]>>>(
        &mut self,
        slot: usize,
        key: &[u8],
        row: R,
    ) -> Result<(), StoreError> {
        let path = || self.store.path().to_path_buf();
        if let Some(spill) = &mut self.spill {
            return spill
                .push(slot, false, key, row.as_ref())
                .map_err(|source| StoreError::Spill { path: path(), source });
        }
        let entry = self.join.entry(&self.store, key)?;
        let change = slot_change(&entry.slots, slot, row.as_ref());
        self.stats.count(change);
        if change == SlotChange::Unchanged {
            return Ok(());
        }
        entry.set(slot, row.into());
        if self.join.len() > self.spill_at {
            self.start_spill()?;
        }
        Ok(())
    }

    /// Moves the in-memory table into partition files; every later record
    /// is appended there.
    fn start_spill(&mut self) -> Result<(), StoreError> {
        let err = |source| StoreError::Spill {
            path: self.store.path().to_path_buf(),
            source,
        };
        let mut spill = Spill::create(self.store.path()).map_err(err)?;
        for (key, entry) in self.join.iter() {
            for (slot, row) in entry.slots.iter().enumerate() {
                if let Some(row) = row {
                    spill.push(slot, true, key, row).map_err(err)?;
                }
            }
        }
        tracing::info!(
            "join table past {} keys: spilling the rest of the input to {} partition files",
            self.spill_at,
            crate::state::spill::PARTITIONS
        );
        self.join.clear_in_memory();
        self.spill = Some(spill);
        Ok(())
    }

    /// A kept state whose batch replay did not finish: empties the
    /// aggregate tables and aggregates the stored join table whole, durably,
    /// then clears the flag. Called by [`Engine::open`].
    pub(super) fn recover_deferred(&mut self) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        for a in &self.topo.aggregates {
            self.store.clear_aggregate_into(&agg_cf(&a.name), &a.name, &mut batch)?;
        }
        self.store.write(batch)?;
        let mut fresh = AggBuffers::new(&self.topo, &self.store)?;
        fresh.copy_clock_from(&self.aggs);
        self.aggs = fresh;
        self.batch = true;
        self.aggregate_deferred()?;
        self.sync()
    }

    /// Aggregates every complete join row once and leaves the batch plan
    /// (nothing to do under the incremental plan).
    pub(super) fn aggregate_deferred(&mut self) -> Result<(), StoreError> {
        if !self.batch {
            return Ok(());
        }
        self.batch = false;
        self.wait_in_flight()?;
        if self.store.durability() == Durability::Flush {
            self.flag_change = Some(false);
        }
        let chunk_rows = ROWS_PER_SHARD * threads();
        if let Some(spill) = self.spill.take() {
            let dir = self.store.path().to_path_buf();
            let paths = spill.finish().map_err(|source| StoreError::Spill {
                path: dir.clone(),
                source,
            })?;
            self.aggregate_spilled(&paths)?;
            let _ = std::fs::remove_dir_all(dir.join("spill"));
            if self.store.durability() != Durability::Ephemeral {
                // The partitions' entries are in RocksDB now, not in memory.
                self.join.mark_stored();
            }
        } else if self.join.holds_all() {
            let entries = self.join.complete_entries();
            for chunk in entries.chunks(chunk_rows) {
                if self.stopped() {
                    return Err(StoreError::Interrupted);
                }
                aggregate_chunk(&self.topo, &self.store, &mut self.aggs, chunk)?;
            }
        } else {
            // Only after a restart over a table larger than the cache.
            let stop = self.stop.as_deref();
            let (topo, store, aggs) = (&self.topo, &self.store, &mut self.aggs);
            let mut chunk: Vec<(Box<[u8]>, Entry)> = Vec::new();
            let mut failed = None;
            let mut flush = |chunk: &mut Vec<(Box<[u8]>, Entry)>| {
                if is_set(stop) {
                    return Err(StoreError::Interrupted);
                }
                let refs: Vec<(&[u8], &Entry)> = chunk.iter().map(|(k, e)| (&**k, e)).collect();
                let r = aggregate_chunk(topo, store, aggs, &refs);
                chunk.clear();
                r
            };
            self.join.scan_complete_stored(store, |k, e| {
                chunk.push((k.into(), e));
                if chunk.len() >= chunk_rows {
                    if let Err(e) = flush(&mut chunk) {
                        failed = Some(e);
                        return false;
                    }
                }
                true
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            flush(&mut chunk)?;
        }
        self.stats.agg = self.aggs.stats;
        Ok(())
    }

    /// Joins and aggregates the spilled partitions, one per core at a time;
    /// the shards' deltas are merged as each partition ends and written
    /// once at the end (a kept state's join entries per partition).
    fn aggregate_spilled(&mut self, paths: &[PathBuf]) -> Result<(), StoreError> {
        let inputs = self.topo.join.inputs.len();
        let keep = self.store.durability() != Durability::Ephemeral;
        let (topo, store) = (&*self.topo, &*self.store);
        // One shard per worker for all of its partitions, merged once at the
        // end. A shard per partition (128 of them) re-inserted every group
        // key into a fresh map each time and merged each map on this
        // thread: 2.4 M inserts and merges for 19 k groups.
        let shards: Vec<AggBuffers> = (0..threads()).map(|_| self.aggs.shard()).collect();
        let next = AtomicUsize::new(0);
        let next = &next;
        // Checked between partitions: a signal during the final pass stops
        // it within one partition's time (for a kept state, as an error
        // there would: the deferred flag is already durable).
        let stop = self.stop.as_deref();
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<PartitionDone, StoreError>>(1);
        std::thread::scope(|s| {
            for mut shard in shards {
                let tx = tx.clone();
                s.spawn(move || {
                    // One buffer per thread for every partition it loads: a
                    // fresh one each time faulted in megabytes of new pages.
                    let mut data = Vec::new();
                    while let Some(path) = paths.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if is_set(stop) {
                            let _ = tx.send(Err(StoreError::Interrupted));
                            return;
                        }
                        let done = partition_pass(topo, &mut shard, inputs, path, keep, &mut data);
                        let failed = done.is_err();
                        if tx.send(done).is_err() || failed {
                            return;
                        }
                    }
                    let _ = tx.send(Ok(PartitionDone::Aggregated(Box::new(shard))));
                });
            }
            drop(tx);
            // A kept state's join entries, ingested as sorted SST files of
            // about a memtable each, on a writer thread of their own (on
            // this one, the workers waited for every run's sort and write).
            // They are durable as each run lands, before the commit that
            // holds their positions: the deferred flag goes first, so a
            // replay killed in between re-aggregates the stored join table
            // on its next open instead of taking those rows for done.
            // Regression: durable_batch_replay_killed_while_ingesting_recovers.
            let writer = if keep {
                let mut batch = rocksdb::WriteBatch::default();
                store.put_deferred(&mut batch, true)?;
                store.write(batch)?;
                store.flush()?;
                let (run_tx, run_rx) = std::sync::mpsc::sync_channel::<Vec<FlatEntries>>(0);
                let cf = join_cf(&topo.join.name);
                let handle = s.spawn(move || -> Result<(), StoreError> {
                    for run in run_rx {
                        let n = run.iter().map(FlatEntries::len).sum();
                        let mut refs = Vec::with_capacity(n);
                        refs.extend(run.iter().flat_map(FlatEntries::iter));
                        store.ingest_sorted(&cf, refs)?;
                    }
                    Ok(())
                });
                Some((run_tx, handle))
            } else {
                None
            };
            let mut entries: Vec<FlatEntries> = Vec::new();
            let mut bytes = 0;
            let mut writer_failed = false;
            for done in rx {
                let (counts, part) = match done? {
                    PartitionDone::Aggregated(shard) => {
                        self.aggs.absorb(*shard);
                        continue;
                    }
                    PartitionDone::Joined(counts, part) => (counts, part),
                };
                self.stats.joined += counts.joined;
                self.stats.replaced += counts.replaced;
                self.stats.unchanged += counts.unchanged;
                bytes += part.bytes();
                if !part.is_empty() {
                    entries.push(part);
                }
                if bytes >= JOIN_RUN_BYTES {
                    if let Some((run_tx, _)) = &writer {
                        // A failed writer says why when it is joined.
                        writer_failed |= run_tx.send(std::mem::take(&mut entries)).is_err();
                    }
                    bytes = 0;
                }
                if writer_failed {
                    break;
                }
            }
            if let Some((run_tx, handle)) = writer {
                if !entries.is_empty() && !writer_failed {
                    let _ = run_tx.send(entries);
                }
                drop(run_tx);
                handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            }
            if is_set(stop) {
                return Err(StoreError::Interrupted);
            }
            // The aggregates once, in key order: deltas of one group from
            // several partitions are added here, not merged by RocksDB, and
            // one sorted run goes into each memtable (written per partition,
            // 128 interleaved runs made the skiplist inserts 8% of a replay).
            let mut batch = rocksdb::WriteBatch::default();
            self.aggs.take(topo).write_in_runs(topo, store, &mut batch)?;
            store.write(batch)
        })
    }
}

/// Builds one partition's join (in the order its rows were written, so a
/// later row replaces its slot) and aggregates its complete rows into
/// `shard`. Keys and rows borrow from the loaded partition: a key's slots
/// are `inputs` consecutive entries of one arena, so the pass allocates per
/// table growth, not per row. With `keep`, also returns the partition's entries
/// for the join table.
fn partition_pass(
    topo: &Topology,
    shard: &mut AggBuffers,
    inputs: usize,
    path: &Path,
    keep: bool,
    data: &mut Vec<u8>,
) -> Result<PartitionDone, StoreError> {
    let err = |source| StoreError::Spill {
        path: path.to_path_buf(),
        source,
    };
    load(path, data).map_err(err)?;
    // Read once: removed here, on this worker, while the other one joins
    // (freeing its pages at the end, on one thread, was part of the
    // serial tail of a replay). A replay killed from here on reads its
    // input again: positions are committed after the pass.
    let _ = std::fs::remove_file(path);
    let data = &data[..];
    // About three rows of ~70 bytes per key (measured rows are 60-120).
    // Each key's hash and its index in `keys`: the keys are compared
    // inline (`same_bytes`) and never hashed again when the table grows.
    let mut index: hashbrown::HashTable<(u64, u32)> = hashbrown::HashTable::with_capacity(data.len() / 200);
    let mut keys: Vec<&[u8]> = Vec::with_capacity(data.len() / 200);
    let mut arena: Vec<Option<&[u8]>> = Vec::with_capacity(data.len() / 200 * inputs);
    let mut counts = EngineStats::default();
    for r in rows(data, path) {
        let r = r.map_err(err)?;
        let h = hash(r.key);
        let found = index.entry(
            h,
            |&(kh, i)| kh == h && same_bytes(keys[i as usize], r.key),
            |&(kh, _)| kh,
        );
        let at = match found {
            hashbrown::hash_table::Entry::Occupied(o) => o.get().1 as usize,
            hashbrown::hash_table::Entry::Vacant(v) => {
                keys.push(r.key);
                arena.resize(arena.len() + inputs, None);
                v.insert((h, (keys.len() - 1) as u32));
                keys.len() - 1
            }
        };
        let slots = &mut arena[at * inputs..(at + 1) * inputs];
        let change = slot_change(slots, r.slot, r.row);
        // Restored rows were counted before the spill began.
        if !r.restored {
            counts.count(change);
        }
        if change != SlotChange::Unchanged {
            slots[r.slot] = Some(r.row);
        }
    }
    let mut row = JoinedRow::new(topo);
    let mut entries = if keep {
        // The values are the loaded rows again, with a length byte or two
        // per slot; the keys are in them too.
        FlatEntries::with_capacity(keys.len(), data.len() + keys.len() * (inputs * 2 + 8))
    } else {
        FlatEntries::default()
    };
    for (key, slots) in keys.iter().zip(arena.chunks_exact(inputs.max(1))) {
        if slots.iter().all(Option::is_some) {
            shard.apply(topo, row.fill(topo, key, slots)?, 1);
        }
        if keep {
            entries.push_slots(key, slots);
        }
    }
    Ok(PartitionDone::Joined(counts, entries))
}

/// Whether a stop flag (`Engine::set_stop`) is there and set.
pub(super) fn is_set(stop: Option<&std::sync::atomic::AtomicBool>) -> bool {
    stop.is_some_and(|s| s.load(Ordering::Relaxed))
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Aggregates complete rows in one shard per core, merges the shards into
/// `aggs` and writes the merged deltas (RocksDB merges, so the chunks add up).
fn aggregate_chunk(
    topo: &Topology,
    store: &Store,
    aggs: &mut AggBuffers,
    rows: &[(&[u8], &Entry)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let per = rows.len().div_ceil(threads()).max(1);
    let shards: Vec<Result<AggBuffers, StoreError>> = std::thread::scope(|s| {
        let running: Vec<_> = rows
            .chunks(per)
            .map(|part| {
                let mut shard = aggs.shard();
                s.spawn(move || {
                    let mut row = JoinedRow::new(topo);
                    for (key, entry) in part {
                        shard.apply(topo, row.fill(topo, key, &entry.slots)?, 1);
                    }
                    Ok(shard)
                })
            })
            .collect();
        running
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StoreError::Corrupt {
                        path: store.path().into(),
                        what: "an aggregation shard panicked".into(),
                    })
                })
            })
            .collect()
    });
    for shard in shards {
        aggs.absorb(shard?);
    }
    let mut batch = rocksdb::WriteBatch::default();
    aggs.take(topo).write_in_runs(topo, store, &mut batch)?;
    store.write(batch)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn batch_plan_only_where_the_state_allows_it() {
        assert!(batch_allowed(Durability::Ephemeral, true, false));
        assert!(!batch_allowed(Durability::Ephemeral, false, true), "spilled table");
        assert!(batch_allowed(Durability::Flush, true, true));
        assert!(
            !batch_allowed(Durability::Flush, true, false),
            "a kept state with history"
        );
        assert!(!batch_allowed(Durability::Wal, true, true), "live");
    }

    /// Every query's rows over the whole time range.
    fn answers(engine: &Engine) -> Vec<Vec<crate::query::Row>> {
        let topo = engine.topology();
        topo.queries
            .iter()
            .map(|q| crate::query::run(engine.store(), topo, q, Default::default()).unwrap())
            .collect()
    }

    /// Feeds 2,000 posts (with re-sends) of all three topics.
    fn feed(engine: &mut Engine) {
        let topo = engine.topology().clone();
        let src = |name: &str| topo.sources.iter().position(|s| s.name == name).unwrap();
        let (pin, geo, user) = (src("pin"), src("geo"), src("user"));
        let emulator = crate::pinterest::emulate::Emulator::new(7);
        for (offset, d) in emulator.deliveries(2_000, 0.2).enumerate() {
            for (s, json) in [(pin, &d.pin), (geo, &d.geo), (user, &d.user)] {
                let p = crate::engine::prepare::prepare(&topo, s, json.as_bytes()).unwrap();
                engine.process(s, &p.key, p.row).unwrap();
                engine.mark(&topo.sources[s].name, 0, offset as i64);
            }
        }
    }

    /// The answers of the fed input, incrementally and without a stop.
    fn uninterrupted(topo: &Arc<Topology>) -> Vec<Vec<crate::query::Row>> {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Engine::open(topo.clone(), dir.path(), 1_000_000, Durability::Wal).unwrap();
        feed(&mut engine);
        engine.sync().unwrap();
        answers(&engine)
    }

    /// Reopens a kept state that a batch replay left before its first
    /// commit, and replays the same input into it.
    fn rerun(topo: &Arc<Topology>, dir: &Path) -> Engine {
        let mut engine = Engine::open(topo.clone(), dir, 200, Durability::Flush).unwrap();
        assert!(engine.positions().all().next().is_none(), "no positions were committed");
        engine.set_batch_plan(true);
        feed(&mut engine);
        engine.sync().unwrap();
        engine
    }

    /// Regression: a SIGINT that arrived while a replay aggregated its
    /// join table (after the last record was read) was not acted on until
    /// the pass ended. The stop flag now ends the pass between partitions
    /// (and between chunks of an in-memory table), and a kept state left so
    /// recovers to the uninterrupted answers.
    #[test]
    fn regression_stop_during_the_final_aggregation_ends_it_and_the_state_recovers() {
        let topo = Arc::new(crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let want = uninterrupted(&topo);
        // A temporary state whose table is in memory.
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Engine::open(topo.clone(), dir.path(), 1_000_000, Durability::Ephemeral).unwrap();
        engine.set_batch_plan(true);
        feed(&mut engine);
        assert!(engine.spill.is_none());
        engine.set_stop(stop.clone());
        assert!(matches!(engine.sync(), Err(StoreError::Interrupted)));
        drop(engine);
        // A kept state spilled to partition files.
        let dir = tempfile::tempdir().unwrap();
        {
            let mut engine = Engine::open(topo.clone(), dir.path(), 200, Durability::Flush).unwrap();
            engine.set_batch_plan(true);
            feed(&mut engine);
            assert!(engine.spill.is_some(), "the input went to partition files");
            engine.set_stop(stop.clone());
            assert!(matches!(engine.sync(), Err(StoreError::Interrupted)));
        }
        let engine = rerun(&topo, dir.path());
        assert!(
            answers(&engine) == want,
            "the answers after an interrupted aggregation differ from an uninterrupted run's"
        );
    }

    /// A kept batch replay's join rows are durable as each run is
    /// ingested, before the commit with their positions: a replay killed
    /// right after an ingest must not leave rows that the next run takes
    /// for done without their aggregates (the deferred flag goes first).
    #[test]
    fn durable_batch_replay_killed_while_ingesting_recovers() {
        let topo = Arc::new(crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap());
        let want = uninterrupted(&topo);
        assert!(want.iter().filter(|rows| !rows.is_empty()).count() >= 5, "{want:?}");
        let dir = tempfile::tempdir().unwrap();
        {
            // A small cache: the batch plan spills to partition files.
            let mut engine = Engine::open(topo.clone(), dir.path(), 200, Durability::Flush).unwrap();
            engine.set_batch_plan(true);
            feed(&mut engine);
            assert!(engine.spill.is_some(), "the input went to partition files");
            engine
                .store
                .fail_after_ingest
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let err = engine.sync().unwrap_err();
            assert!(err.to_string().contains("injected"), "{err}");
            assert!(!engine
                .store
                .fail_after_ingest
                .load(std::sync::atomic::Ordering::Relaxed));
        } // the process is gone: no commit after the ingest
        let engine = rerun(&topo, dir.path());
        // (Without the flag the stored rows count as done: empty answers.)
        assert!(
            answers(&engine) == want,
            "the answers after recovery differ from an uninterrupted run's"
        );
    }
}
