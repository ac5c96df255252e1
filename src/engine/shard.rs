//! Key shards of the incremental plan: the join table and the aggregate
//! deltas split by join key over threads, so the live daemon (and a replay
//! under `--plan incremental`) applies on more than one core.
//!
//! Shard 0 is the engine's own thread; every other shard is a [`Worker`]: a
//! thread that owns its shard for the engine's life (its tables stay in its
//! core's caches) and applies the records the engine queues for it while
//! the engine applies its own. They meet only at commits.
//!
//! Invariants:
//! - a join key belongs to exactly one shard ([`shard_of`], a pure function
//!   of the key and the shard count), so every record of a key is applied
//!   by one thread in delivery order, and "a later record replaces the
//!   earlier one" means what it means on one thread;
//! - a shard holds only its keys' join entries and the aggregate deltas of
//!   the joined rows it changed; at each commit the engine takes every
//!   shard's dirty entries and absorbs every shard's deltas
//!   ([`AggBuffers::absorb`]: counts add, watermarks take the larger), so a
//!   commit writes what one thread would have written;
//! - shards exist only under the incremental plan: the batch plan has its
//!   own parallel passes and never shards (`Engine::set_shards` refuses).

use std::sync::{mpsc, Arc};

use super::{EngineStats, JoinedRow};
use crate::aggregate::buffers::AggBuffers;
use crate::state::join::{slot_change, EncodedEntries, JoinState, SlotChange};
use crate::state::store::{Store, StoreError};
use crate::topology::Topology;

pub use crate::state::join::shard_of;

/// Shards when none are asked for (`--shards`): one per core.
pub fn default_shards() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// One shard beyond the engine's own (the engine's fields are shard 0).
pub(super) struct Shard {
    pub(super) join: JoinState,
    pub(super) aggs: AggBuffers,
    pub(super) old_row: JoinedRow,
    pub(super) new_row: JoinedRow,
    /// Counters since they were last added to the engine's.
    pub(super) stats: EngineStats,
}

/// What applying a record needs of a shard, borrowed (the engine lends
/// its own fields as shard 0).
pub(super) struct Parts<'a> {
    pub(super) join: &'a mut JoinState,
    pub(super) aggs: &'a mut AggBuffers,
    pub(super) old_row: &'a mut JoinedRow,
    pub(super) new_row: &'a mut JoinedRow,
    pub(super) stats: &'a mut EngineStats,
}

impl Shard {
    pub(super) fn parts(&mut self) -> Parts<'_> {
        Parts {
            join: &mut self.join,
            aggs: &mut self.aggs,
            old_row: &mut self.old_row,
            new_row: &mut self.new_row,
            stats: &mut self.stats,
        }
    }
}

/// Applies one cleaned record to its key's entry under the incremental
/// plan: the slot changes, and the joined row is added, replaced or left.
pub(super) fn apply<R: AsRef<[u8]> + Into<Box<[u8]>>>(
    p: &mut Parts<'_>,
    topo: &Topology,
    store: &Store,
    slot: usize,
    key: &[u8],
    row: R,
) -> Result<(), StoreError> {
    p.stats.records += 1;
    let entry = p.join.entry(store, key)?;
    let change = slot_change(&entry.slots, slot, row.as_ref());
    p.stats.count(change);
    match change {
        SlotChange::Unchanged => {}
        SlotChange::Fills => entry.set(slot, row.into()),
        SlotChange::Completes => {
            entry.set(slot, row.into());
            let new = p.new_row.fill(topo, key, &entry.slots)?;
            p.aggs.apply(topo, new, 1);
        }
        SlotChange::Replaces => {
            p.old_row.fill(topo, key, &entry.slots)?;
            entry.set(slot, row.into());
            let new = p.new_row.fill(topo, key, &entry.slots)?;
            p.aggs.replace(topo, &p.old_row.rec, new);
        }
    }
    Ok(())
}

/// Batches a worker may have queued before the engine waits for it.
const QUEUED_BATCHES: usize = 64;

/// The key and row a span `(at, key_len, row_len)` names in `buf`.
pub(super) fn span<'a>(buf: &'a [u8], &(at, key, row): &(usize, usize, usize)) -> (&'a [u8], &'a [u8]) {
    (&buf[at..at + key], &buf[at + key..at + key + row])
}

/// Records for a worker: `(at, key_len, row_len)` spans into `buf`, all of
/// one join slot.
pub(super) struct Records {
    pub(super) slot: usize,
    pub(super) buf: Vec<u8>,
    pub(super) spans: Vec<(usize, usize, usize)>,
}

enum Job {
    Apply(Records),
    /// Hand over the changes since the last commit and wait for `Resume`.
    Commit,
    Resume(Box<AggBuffers>),
    /// Report the counters (and a failure) so far.
    Sync,
    /// Drop the join table without freeing it (a process about to exit).
    Leak,
}

/// A worker's changes since the last commit.
pub(super) struct Taken {
    pub(super) dirty: EncodedEntries,
    /// The join table outgrew its capacity and was dropped after the
    /// commit: the entries never written (see `JoinState::after_commit`).
    pub(super) evicted: Option<EncodedEntries>,
    pub(super) aggs: AggBuffers,
    pub(super) stats: EngineStats,
}

enum Reply {
    Taken(Box<Result<Taken, StoreError>>),
    Synced(Result<EngineStats, StoreError>),
}

/// A shard on a thread of its own. Its first failure stops its applying
/// and comes back from the next [`Worker::take`] or [`Worker::sync`], so a
/// commit never covers records it did not apply.
pub(super) struct Worker {
    tx: Option<mpsc::SyncSender<Job>>,
    rx: mpsc::Receiver<Reply>,
    handle: Option<std::thread::JoinHandle<()>>,
}

fn gone() -> StoreError {
    StoreError::Corrupt {
        path: Default::default(),
        what: "a shard's thread stopped".into(),
    }
}

impl Worker {
    pub(super) fn spawn(mut shard: Shard, topo: Arc<Topology>, store: Arc<Store>) -> Worker {
        // Bounded: an engine thread ahead of its worker waits (memory stays
        // bounded by this many batches per worker).
        let (tx, jobs) = mpsc::sync_channel::<Job>(QUEUED_BATCHES);
        let (replies, rx) = mpsc::channel::<Reply>();
        let handle = std::thread::Builder::new()
            .name("pinstream-shard".into())
            .spawn(move || {
                let mut failed: Option<StoreError> = None;
                let error = |failed: &mut Option<StoreError>| match failed.take() {
                    Some(e) => {
                        // Later replies report it too (the engine stops anyway).
                        *failed = Some(StoreError::Corrupt {
                            path: store.path().into(),
                            what: format!("a shard failed earlier: {e}"),
                        });
                        Err(e)
                    }
                    None => Ok(()),
                };
                for job in jobs {
                    match job {
                        Job::Apply(r) => {
                            if failed.is_some() {
                                continue;
                            }
                            for s in &r.spans {
                                let (key, row) = span(&r.buf, s);
                                if let Err(e) = apply(&mut shard.parts(), &topo, &store, r.slot, key, row) {
                                    failed = Some(e);
                                    break;
                                }
                            }
                        }
                        Job::Commit => {
                            let taken = error(&mut failed).map(|()| {
                                let dirty = shard.join.take_dirty();
                                let evicted = shard.join.after_commit();
                                let empty = shard.aggs.shard();
                                Taken {
                                    dirty,
                                    evicted,
                                    aggs: std::mem::replace(&mut shard.aggs, empty),
                                    stats: std::mem::take(&mut shard.stats),
                                }
                            });
                            if replies.send(Reply::Taken(Box::new(taken))).is_err() {
                                return;
                            }
                        }
                        Job::Resume(aggs) => shard.aggs = *aggs,
                        Job::Sync => {
                            let stats = error(&mut failed).map(|()| std::mem::take(&mut shard.stats));
                            if replies.send(Reply::Synced(stats)).is_err() {
                                return;
                            }
                        }
                        Job::Leak => shard.join.leak_cache(),
                    }
                }
            })
            .expect("spawning a shard thread");
        Worker {
            tx: Some(tx),
            rx,
            handle: Some(handle),
        }
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        self.tx.as_ref().ok_or_else(gone)?.send(job).map_err(|_| gone())
    }

    /// Queues records; the worker applies them in the order queued.
    pub(super) fn apply(&self, records: Records) -> Result<(), StoreError> {
        self.send(Job::Apply(records))
    }

    /// Waits until everything queued is applied and takes the changes; the
    /// worker then waits for [`Worker::resume`].
    pub(super) fn take(&self) -> Result<Taken, StoreError> {
        self.send(Job::Commit)?;
        match self.rx.recv() {
            Ok(Reply::Taken(t)) => *t,
            _ => Err(gone()),
        }
    }

    /// Lets the worker go on after [`Worker::take`] with fresh buffers.
    pub(super) fn resume(&self, aggs: AggBuffers) -> Result<(), StoreError> {
        self.send(Job::Resume(Box::new(aggs)))
    }

    /// Waits until everything queued is applied; the counters since the
    /// last call.
    pub(super) fn sync(&self) -> Result<EngineStats, StoreError> {
        self.send(Job::Sync)?;
        match self.rx.recv() {
            Ok(Reply::Synced(s)) => s,
            _ => Err(gone()),
        }
    }

    pub(super) fn leak(&self) {
        let _ = self.send(Job::Leak);
    }
}

impl Drop for Worker {
    /// Ends the thread once it has applied what was queued (nothing is
    /// committed by it: a commit goes through [`Worker::take`]).
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Adds a shard's counters (taken from it) to the engine's.
pub(super) fn add_stats(into: &mut EngineStats, s: EngineStats) {
    into.records += s.records;
    into.unchanged += s.unchanged;
    into.joined += s.joined;
    into.replaced += s.replaced;
}
