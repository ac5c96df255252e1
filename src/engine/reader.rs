//! Stage 1 of the driver loop: reading and preparing.
//!
//! A [`Reader`] runs on a thread of its own beside the engine
//! ([`Reader::beside`]): it polls the source into groups (up to
//! [`GROUP_BYTES`] or [`GROUP_TIME`]), prepares each group's batches in
//! parallel ([`prepare_group`]: parse, clean, project, or reject) and hands
//! the group to the engine thread, at most one group ahead; the positions
//! each commit made durable come back through it to the source.
//!
//! Invariant: a group's batches reach the engine in the order the source
//! delivered them, each record marked done when the state (the positions
//! the reader started from) or an earlier batch already holds it.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use super::driver::runs;
use super::prepare::prepare_into;
use crate::model::offsets::{Positions, Ranges};
use crate::source::{Batch, Poll, RawRecord, Source, SourceError};
use crate::topology::Topology;

pub(super) enum Item {
    /// Prepared: the key is `buf[at..at + key]`, the row the next `row`
    /// bytes of the batch's buffer ([`Ready::buf`]).
    Ok {
        at: usize,
        key: usize,
        row: usize,
    },
    /// Rejected: the reason and the raw record.
    Dead(String, Vec<u8>),
    Done,
}

/// A batch after stage 1: what the engine needs of it. The raw records
/// are dropped on the worker that prepared them (only dead letters keep
/// theirs), so the engine thread frees nothing it did not allocate.
pub(super) struct Ready {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) file: Option<String>,
    pub(super) read_error: Option<String>,
    pub(super) size: u64,
    pub(super) polled_ms: Option<i64>,
    pub(super) source: usize,
    /// (offset, produce time, what became of it), in delivery order.
    pub(super) items: Vec<(i64, Option<i64>, Item)>,
    /// The prepared keys and rows of `items`, back to back.
    pub(super) buf: Vec<u8>,
    /// The raw records of `items`, kept only for an archiver.
    pub(super) raw: Vec<RawRecord>,
}

pub(super) enum Msg {
    Ready(Vec<Ready>),
    Failed(SourceError),
}

/// Stage 1's group limits: enough work to spread over the cores, little
/// enough to keep live latency low.
const GROUP_BYTES: u64 = 32 << 20;
const GROUP_TIME: Duration = Duration::from_millis(20);

/// Most items a batch's list reserves before it knows its record count.
const ITEMS_GUESS_CAP: usize = 1 << 16;

/// Stage 1 on a thread of its own: polls the source into groups and
/// prepares each ([`prepare_group`]); commits reach the source through it.
pub(super) struct Reader<'a> {
    pub(super) topo: &'a Topology,
    pub(super) source_of: &'a HashMap<String, usize>,
    /// Positions already in the state or delivered in an earlier group.
    pub(super) seen: Positions,
    pub(super) keep_raw: bool,
}

/// Where the engine side sends the positions each commit made durable
/// (the reader passes them on to the source).
pub(super) type CommitSender = mpsc::Sender<Vec<((String, i32), i64)>>;

impl Reader<'_> {
    /// Runs the reader on a thread of its own while `engine` runs on this
    /// one, given the groups and a way back to the source for commits.
    pub(super) fn beside<S: Source, R>(
        self,
        source: S,
        engine: impl FnOnce(mpsc::Receiver<Msg>, CommitSender) -> R,
    ) -> R {
        let (tx, rx) = mpsc::sync_channel::<Msg>(1);
        let (commit_tx, commit_rx) = mpsc::channel::<Vec<((String, i32), i64)>>();
        std::thread::scope(|scope| {
            scope.spawn(move || self.run(source, tx, commit_rx));
            engine(rx, commit_tx)
        })
    }

    fn run<S: Source>(
        mut self,
        mut source: S,
        tx: mpsc::SyncSender<Msg>,
        commit_rx: mpsc::Receiver<Vec<((String, i32), i64)>>,
    ) {
        let mut done = false;
        while !done {
            while let Ok(c) = commit_rx.try_recv() {
                source.committed(&c);
            }
            let mut group = Vec::new();
            let (mut weight, started) = (0u64, Instant::now());
            loop {
                match source.poll() {
                    Ok(Poll::Batch(b)) => {
                        weight += b.weight.max(b.records.iter().map(|r| r.bytes.len() as u64).sum());
                        group.push(b);
                        if weight > GROUP_BYTES || started.elapsed() > GROUP_TIME {
                            break;
                        }
                    }
                    Ok(Poll::Idle) => break,
                    Ok(Poll::Done) => {
                        done = true;
                        break;
                    }
                    Err(e) => {
                        let _ = tx.send(Msg::Failed(e));
                        return;
                    }
                }
            }
            if !group.is_empty() {
                let ready = prepare_group(self.topo, self.source_of, &mut self.seen, group, self.keep_raw);
                if tx.send(Msg::Ready(ready)).is_err() {
                    return; // the engine stopped (error)
                }
            }
        }
        drop(tx);
        // The engine's last commits still reach the source.
        for c in commit_rx {
            source.committed(&c);
        }
    }
}

/// Stage 1 for one group: read (lazy batches) and prepare in parallel,
/// skipping what the state or an earlier group holds; then, in delivery
/// order, skip what an earlier batch of this group delivered and note the
/// group's positions.
fn prepare_group(
    topo: &Topology,
    source_of: &HashMap<String, usize>,
    seen: &mut Positions,
    group: Vec<Batch>,
    keep_raw: bool,
) -> Vec<Ready> {
    let flagged: Vec<(Batch, usize, Option<Ranges>)> = group
        .into_iter()
        .filter_map(|b| {
            let src = *source_of.get(&b.topic)?;
            let before = seen.get(&b.topic, b.partition).cloned();
            Some((b, src, before))
        })
        .collect();
    let mut ready: Vec<Ready> = flagged
        .into_par_iter()
        .map(|(mut batch, source, done)| {
            // Lazy lines have no count yet: guess from the decoded bytes
            // (records of the emulated topics are 100-800 bytes), so the
            // list is not grown (copied) a dozen times per object; capped,
            // so a huge object does not reserve memory for a guess.
            let guess = if batch.lines.is_some() {
                (batch.weight as usize / 128).min(ITEMS_GUESS_CAP)
            } else {
                0
            };
            let mut items = Vec::with_capacity(batch.records.len().max(guess));
            // Projected rows are about a fifth of the raw record.
            let mut buf = Vec::with_capacity(batch.weight.max(batch.size) as usize / 4);
            let mut one = |offset: i64, produced_ms: Option<i64>, bytes: &[u8], owned: Option<Vec<u8>>| {
                let item = if done.as_ref().is_some_and(|d| d.contains(offset)) {
                    Item::Done
                } else {
                    let at = buf.len();
                    match prepare_into(topo, source, bytes, &mut buf) {
                        Ok(key) => Item::Ok {
                            at,
                            key,
                            row: buf.len() - at - key,
                        },
                        Err(reason) => Item::Dead(reason, owned.unwrap_or_else(|| bytes.to_vec())),
                    }
                };
                items.push((offset, produced_ms, item));
            };
            let records = std::mem::take(&mut batch.records);
            for r in &records {
                one(r.offset, r.produced_ms, &r.bytes, None);
            }
            let mut read_error = batch.read_error.take();
            if let Some(lines) = batch.lines.take() {
                read_error = read_error.or(lines(&mut |offset, bytes| one(offset, None, bytes, None)));
            }
            Ready {
                topic: batch.topic,
                partition: batch.partition,
                file: batch.file.map(|p| p.display().to_string()),
                read_error,
                size: batch.size,
                polled_ms: batch.polled_ms,
                source,
                items,
                buf,
                // Archivable only when every item has its raw record
                // (sources that archive deliver records, not lazy lines).
                raw: if keep_raw { records } else { Vec::new() },
            }
        })
        .collect();
    for r in &mut ready {
        // A record delivered twice within one group (a re-read partition,
        // overlapping archive files) counts once.
        if let Some(d) = seen.get(&r.topic, r.partition) {
            let first = r.items.first().map_or(i64::MAX, |i| i.0);
            if d.ranges().last().is_some_and(|last| last.1 > first) {
                for (offset, _, item) in &mut r.items {
                    if d.contains(*offset) {
                        *item = Item::Done;
                    }
                }
            }
        }
        for (start, end) in runs(r.items.iter().map(|(o, _, _)| (*o, true))) {
            seen.mark_range(&r.topic, r.partition, start, end);
        }
    }
    ready
}
