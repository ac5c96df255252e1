//! The one driver loop: `replay` and `run` (and the coming S3 replay)
//! differ only in their [`Source`], their dead-letter [`Sink`] and their
//! [`CommitPolicy`].
//!
//! Two stages:
//! 1. a reader thread owns the source ([`super::reader`]): it polls
//!    batches, skips every record whose position is already in the state
//!    (or was delivered earlier in this run), and prepares the rest in
//!    parallel (rayon), a group of up to 32 MB or 20 ms at a time;
//! 2. the calling thread owns the engine: it applies prepared records in
//!    the order the source delivered them, sends rejects to the dead-letter
//!    sink, marks positions, and commits when the policy says.
//!
//! Invariants:
//! - the dead-letter sink is flushed before every commit, so a committed
//!   position never loses its letter;
//! - positions are marked only for records applied or dead-lettered in this
//!   run, and are written in the same RocksDB batch as the state they
//!   produced ([`Engine::commit`]);
//! - the source is told what is durable ([`Source::committed`]) after each
//!   commit, the last one included.

use std::collections::{BTreeMap, HashMap};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub use super::commit::CommitPolicy;
use super::commit::Committer;
use super::reader::{CommitSender, Item, Msg, Reader, Ready};
use super::{Engine, EngineStats};
use crate::model::offsets::Positions;
use crate::sink::archive::{ArchiveSink, Consumed};
use crate::sink::{DeadLetter, DeadLetterSink, SinkError};
use crate::source::{Source, SourceError};
use crate::state::store::StoreError;
use crate::topology::Topology;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// An archive object that could not be read whole, under
    /// [`BadObjects::Fail`].
    #[error(
        "unreadable archive object: {0}\n(nothing was committed past it; run again with --skip-bad-objects to report it, \
         send it to the dead-letter output and go on: its whole records before the damage count)"
    )]
    BadObject(String),
}

impl DriverError {
    pub fn is_retryable(&self) -> bool {
        match self {
            DriverError::Store(e) => e.is_retryable(),
            DriverError::Source(e) => e.is_retryable(),
            DriverError::Sink(e) => e.is_retryable(),
            DriverError::BadObject(_) => false,
        }
    }
}

/// One applied batch, for observers (progress, per-source metrics).
#[derive(Debug)]
pub struct BatchDone<'a> {
    pub source: usize,
    pub topic: &'a str,
    pub partition: i32,
    /// The archive object the batch was read from, if any.
    pub file: Option<&'a str>,
    /// Offset of the batch's first record: with `delivered` (every record
    /// of the batch, skipped and dead ones too), what the batch covers.
    pub first_offset: Option<i64>,
    pub delivered: u64,
    pub skipped: u64,
    pub dead: u64,
    /// Input bytes of the batch.
    pub size: u64,
}

/// One commit, for observers.
#[derive(Debug)]
pub struct CommitDone<'a> {
    pub engine: &'a EngineStats,
    pub duration: Duration,
    /// Produce time to durable commit of each record covered, in ms.
    pub latencies_ms: &'a [u64],
}

/// Hooks called on the engine thread; all default to nothing.
pub trait Observer {
    fn on_batch(&mut self, _b: &BatchDone<'_>) {}
    /// A commit begins: it covers every batch seen since the one before
    /// (with `engine`, the stats as they are now). Commits are reported by
    /// [`Observer::on_commit`] once each, in the order they began.
    fn on_commit_started(&mut self, _engine: &EngineStats) {}
    fn on_commit(&mut self, _c: &CommitDone<'_>) {}
}

/// No observer.
pub struct Quiet;
impl Observer for Quiet {}

/// What a drive saw.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// Records the source delivered (skipped ones included).
    pub delivered: u64,
    /// Records whose position was already in the state.
    pub skipped: u64,
    pub dead_letters: u64,
    /// Dead letters by reason class (first words of the reason).
    pub dead_reasons: BTreeMap<String, u64>,
    /// Records delivered per topic.
    pub per_topic: BTreeMap<String, u64>,
    pub read_errors: Vec<String>,
    pub commits: u64,
    /// Time the engine thread waited for prepared input.
    pub input_wait: Duration,
    /// Produce time to durable commit, ms (records with a produce time).
    pub latency_ms: hdrhistogram::Histogram<u64>,
    /// Produce time to the moment the source received the record, ms.
    pub transit_ms: hdrhistogram::Histogram<u64>,
    /// Wall time of each commit (sink flush + state write), µs.
    pub commit_us: hdrhistogram::Histogram<u64>,
    /// From the first record applied to the last.
    pub active: Duration,
}

impl RunStats {
    /// Records delivered and not already in the state.
    pub fn records(&self) -> u64 {
        self.delivered - self.skipped
    }
}

impl Default for RunStats {
    fn default() -> Self {
        let h = |max| hdrhistogram::Histogram::new_with_bounds(1, max, 3).expect("valid bounds");
        RunStats {
            delivered: 0,
            skipped: 0,
            dead_letters: 0,
            dead_reasons: BTreeMap::new(),
            per_topic: BTreeMap::new(),
            read_errors: Vec::new(),
            commits: 0,
            input_wait: Duration::ZERO,
            latency_ms: h(3_600_000),
            transit_ms: h(3_600_000),
            commit_us: h(3_600_000_000),
            active: Duration::ZERO,
        }
    }
}

fn reason_class(reason: &str) -> String {
    reason.split(':').next().unwrap_or(reason).chars().take(60).collect()
}

/// Runs `source` through the engine until the source is done; commits on
/// the way out. `source_of` maps a topic to its source index in the
/// topology (batches of other topics are ignored).
pub fn drive<S: Source>(
    engine: &mut Engine,
    mut source: S,
    source_of: &HashMap<String, usize>,
    sinks: Sinks<'_, '_>,
    policy: CommitPolicy,
    observer: &mut dyn Observer,
) -> Result<RunStats, DriverError> {
    source.resume(engine.positions())?;
    // Its own handle: the engine is lent to the other stage.
    let topo = engine.topology().clone();
    let reader = Reader {
        topo: &topo,
        source_of,
        seen: Positions::load(engine.positions().all().map(|(k, v)| (k.clone(), v.clone()))),
        keep_raw: sinks.archive.is_some(),
    };
    reader.beside(source, |rx, commit_tx| {
        apply_all(engine, rx, commit_tx, sinks, policy, observer)
    })
}

/// [`drive`] for a new, empty state whose engine is still opening (a
/// temporary replay's RocksDB creates its column families one by one,
/// tens of milliseconds): reading and preparing start at once, with no
/// positions, and `open` (which waits for the engine) is called while the
/// first groups are prepared; the engine applies them once it is open.
///
/// Invariant: the opened engine holds no positions (checked: an engine
/// that does would have been given records it already holds, so that is
/// an error, before anything is applied).
pub fn drive_opening<S: Source, E: From<DriverError>>(
    topo: Arc<Topology>,
    open: impl FnOnce() -> Result<Engine, E>,
    mut source: S,
    source_of: &HashMap<String, usize>,
    sinks: Sinks<'_, '_>,
    policy: CommitPolicy,
    observer: &mut dyn Observer,
) -> Result<(Engine, RunStats), E> {
    source.resume(&Positions::default()).map_err(DriverError::from)?;
    let reader = Reader {
        topo: &topo,
        source_of,
        seen: Positions::default(),
        keep_raw: sinks.archive.is_some(),
    };
    reader.beside(source, |rx, commit_tx| {
        // On an error here `rx` is dropped: the reader stops at its next send.
        let mut engine = open()?;
        if engine.positions().all().next().is_some() {
            return Err(DriverError::from(StoreError::Corrupt {
                path: Default::default(),
                what: "a state opened as new holds positions".into(),
            })
            .into());
        }
        let stats = apply_all(&mut engine, rx, commit_tx, sinks, policy, observer)?;
        Ok((engine, stats))
    })
}

/// Where records go besides the state: dead letters, and (live, with
/// `--archive-to`) the raw consumed records. Both are flushed before every
/// commit.
pub struct Sinks<'a, 'b> {
    pub dead: &'a mut DeadLetterSink<'b>,
    pub archive: Option<&'a mut ArchiveSink<'b>>,
    /// What becomes of an archive object that cannot be read whole.
    pub bad_objects: BadObjects,
}

impl<'a, 'b> Sinks<'a, 'b> {
    /// Dead letters only; an unreadable object fails the run.
    pub fn dead(dead: &'a mut DeadLetterSink<'b>) -> Self {
        Sinks {
            dead,
            archive: None,
            bad_objects: BadObjects::Fail,
        }
    }
}

/// What the driver does with a batch that came with a read error (a cut
/// or corrupt gzip object, an object the store would not serve).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadObjects {
    /// Stop with [`DriverError::BadObject`] naming it, before the next
    /// commit (so a kept state holds nothing of it).
    #[default]
    Fail,
    /// Apply its whole records before the damage, report it
    /// ([`RunStats::read_errors`]) and send one dead letter for the rest
    /// (reason `unreadable object: …`, at the offset after the last whole
    /// record), then go on (`--skip-bad-objects`).
    Skip,
}

/// The start offset an archive object's name carries (`…/t+0+0000000500.json`).
fn start_offset_of(file: &str) -> Option<i64> {
    let name = file.rsplit('/').next()?;
    crate::source::archive::parse_name(name).map(|(_, _, start, _)| start)
}

/// Runs `[start, end)` of consecutive offsets among those flagged true.
pub(super) fn runs(offsets: impl Iterator<Item = (i64, bool)>) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (o, keep) in offsets {
        if !keep {
            continue;
        }
        match out.last_mut() {
            Some((_, end)) if *end == o => *end = o + 1,
            _ => out.push((o, o + 1)),
        }
    }
    out
}

/// Stage 2: the engine thread.
fn apply_all(
    engine: &mut Engine,
    rx: mpsc::Receiver<Msg>,
    commit_tx: CommitSender,
    sinks: Sinks<'_, '_>,
    policy: CommitPolicy,
    observer: &mut dyn Observer,
) -> Result<RunStats, DriverError> {
    let mut stats = RunStats::default();
    let mut c = Committer {
        commit_tx,
        dead: sinks.dead,
        archive: sinks.archive,
        bad_objects: sinks.bad_objects,
        policy,
        last: Instant::now(),
        next: HashMap::new(),
        produced: Vec::new(),
        landing: None,
    };
    let mut first_applied: Option<Instant> = None;
    // Wake up at least this often (an idle source, a stop).
    let tick = policy
        .interval
        .map_or(Duration::from_millis(100), |d| d.min(Duration::from_millis(20)));
    loop {
        let waited = Instant::now();
        let wait = c
            .policy
            .wait(engine.pending(), c.last.elapsed(), c.landing.is_some(), tick);
        let msg = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        stats.input_wait += waited.elapsed();
        match msg {
            Some(Msg::Failed(e)) => return Err(e.into()),
            Some(Msg::Ready(group)) => {
                for r in group {
                    apply_batch(engine, r, &mut stats, &mut c, observer, &mut first_applied)?;
                    if c.policy.every_records.is_some() && c.policy.due(engine.pending(), c.last.elapsed()) {
                        c.commit(engine, &mut stats, observer, false)?;
                    }
                }
            }
            None => {}
        }
        if c.policy.due(engine.pending(), c.last.elapsed()) {
            c.commit(engine, &mut stats, observer, false)?;
        } else {
            c.poll_landed(engine, &mut stats, observer)?;
        }
    }
    c.commit(engine, &mut stats, observer, true)?;
    Ok(stats)
}

fn apply_batch(
    engine: &mut Engine,
    mut r: Ready,
    stats: &mut RunStats,
    c: &mut Committer<'_, '_>,
    observer: &mut dyn Observer,
    first_applied: &mut Option<Instant>,
) -> Result<(), DriverError> {
    let arrived = Instant::now();
    if let (Some(e), BadObjects::Fail) = (&r.read_error, c.bad_objects) {
        return Err(DriverError::BadObject(e.clone()));
    }
    let (mut skipped, mut dead) = (0u64, 0u64);
    let delivered = r.items.len() as u64;
    let applied: Vec<(i64, bool)> = r.items.iter().map(|(o, _, i)| (*o, !matches!(i, Item::Done))).collect();
    let last_offset = r.items.last().map(|(o, _, _)| *o);
    let first_offset = r.items.first().map(|(o, _, _)| *o);
    let raw = std::mem::take(&mut r.raw);
    let archive_raw = raw.len() == r.items.len();
    // The records for the engine, applied together after the loop (by its
    // shards at once): sinks and counts do not depend on the state.
    let mut spans = Vec::with_capacity(r.items.len());
    for (i, (offset, produced_ms, item)) in r.items.into_iter().enumerate() {
        if let (Some(a), true) = (c.archive.as_mut(), archive_raw) {
            if !matches!(item, Item::Done) {
                a.send(&Consumed {
                    topic: &r.topic,
                    partition: r.partition,
                    offset,
                    time_ms: produced_ms,
                    bytes: &raw[i].bytes,
                })?;
            }
        }
        match item {
            Item::Done => {
                skipped += 1;
                continue;
            }
            Item::Ok { at, key, row } => spans.push((at, key, row)),
            Item::Dead(reason, raw) => {
                dead += 1;
                *stats.dead_reasons.entry(reason_class(&reason)).or_default() += 1;
                c.dead.send(&DeadLetter {
                    reason: &reason,
                    topic: &r.topic,
                    partition: r.partition,
                    offset,
                    file: r.file.as_deref(),
                    record: &raw,
                })?;
            }
        }
        if let Some(ts) = produced_ms {
            if let Some(polled) = r.polled_ms {
                stats.transit_ms.saturating_record((polled - ts).max(0) as u64);
            }
            c.produced.push(ts);
        }
    }
    engine.process_spans(r.source, &r.buf, &spans)?;
    if let Some(e) = &r.read_error {
        tracing::warn!("{e}");
        stats.read_errors.push(e.clone());
        // The rest of the object: one letter where its readable part ends.
        let at = last_offset
            .map(|o| o + 1)
            .or_else(|| r.file.as_deref().and_then(start_offset_of))
            .unwrap_or(-1);
        let reason = format!("unreadable object: {e}");
        dead += 1;
        *stats.dead_reasons.entry(reason_class(&reason)).or_default() += 1;
        c.dead.send(&DeadLetter {
            reason: &reason,
            topic: &r.topic,
            partition: r.partition,
            offset: at,
            file: r.file.as_deref(),
            record: b"",
        })?;
    }
    if delivered > skipped {
        stats.active = first_applied.get_or_insert(arrived).elapsed();
    }
    for (start, end) in runs(applied.into_iter()) {
        engine.mark_range(&r.topic, r.partition, start, end);
    }
    if let Some(last) = last_offset {
        c.next.insert((r.topic.clone(), r.partition), last + 1);
    }
    stats.delivered += delivered;
    stats.skipped += skipped;
    stats.dead_letters += dead;
    *stats.per_topic.entry(r.topic.clone()).or_default() += delivered;
    observer.on_batch(&BatchDone {
        source: r.source,
        topic: &r.topic,
        partition: r.partition,
        file: r.file.as_deref(),
        first_offset,
        delivered,
        skipped,
        dead,
        size: r.size,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Batch, Poll, RawRecord};

    #[test]
    fn runs_split_at_gaps_and_skipped_records() {
        let got = runs([(5, true), (6, true), (7, false), (8, true), (10, true), (11, true)].into_iter());
        assert_eq!(got, [(5, 7), (8, 9), (10, 12)]);
        assert!(runs([(1, false)].into_iter()).is_empty());
    }

    /// Batches of pin records, one per poll, an idle poll between them so
    /// the interval commits in between; checks in `committed` that what it
    /// is told is in the store.
    struct Checking {
        batches: Vec<Batch>,
        store: std::sync::Arc<crate::state::store::Store>,
        told: std::sync::Arc<std::sync::Mutex<Vec<i64>>>,
        idle: bool,
    }

    impl Source for Checking {
        fn poll(&mut self) -> Result<Poll, SourceError> {
            self.idle = !self.idle;
            if self.idle {
                std::thread::sleep(Duration::from_millis(3));
                return Ok(Poll::Idle);
            }
            Ok(self.batches.pop().map_or(Poll::Done, Poll::Batch))
        }

        fn committed(&mut self, next: &[((String, i32), i64)]) {
            let stored = self.store.positions().unwrap();
            for ((topic, partition), n) in next {
                let r = &stored[&(topic.clone(), *partition)];
                assert!(r.covers(0, *n), "told {topic}/{partition} next {n}, store holds {r:?}");
                self.told.lock().unwrap().push(*n);
            }
        }
    }

    /// Live commits are written while the engine goes on; the source must
    /// still hear of a commit (group offsets) only once it is in the store.
    #[test]
    fn live_commits_reach_the_source_only_once_durable() {
        let topo = std::sync::Arc::new(crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Engine::open(topo.clone(), dir.path(), 1000, crate::state::store::Durability::Wal).unwrap();
        let sample: Vec<&str> = include_str!("../../tests/fixtures/pin_sample.jsonl").lines().collect();
        let mut batches = Vec::new();
        for (i, chunk) in sample.chunks(10).enumerate() {
            let records = chunk
                .iter()
                .enumerate()
                .map(|(j, l)| RawRecord {
                    offset: (i * 10 + j) as i64,
                    bytes: l.as_bytes().to_vec(),
                    produced_ms: Some(chrono::Utc::now().timestamp_millis()),
                })
                .collect();
            batches.push(Batch {
                topic: "t.pin".into(),
                partition: 0,
                records,
                ..Default::default()
            });
        }
        batches.reverse();
        let n = sample.len() as i64;
        let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let source = Checking {
            batches,
            store: engine.shared_store(),
            told: told.clone(),
            idle: false,
        };
        let pin = topo.sources.iter().position(|s| s.name == "pin").unwrap();
        let source_of = HashMap::from([("t.pin".to_string(), pin)]);
        let mut dead = crate::sink::Discard;
        let policy = CommitPolicy {
            every_records: None,
            interval: Some(Duration::from_millis(1)),
            durable_each: true,
        };
        let stats = drive(
            &mut engine,
            source,
            &source_of,
            Sinks::dead(&mut dead),
            policy,
            &mut Quiet,
        )
        .unwrap();
        let told = told.lock().unwrap();
        // The last commit covers nothing new (the source hears nothing).
        assert!(
            told.len() >= 3 && told.len() as u64 <= stats.commits,
            "{} commits: {told:?}",
            stats.commits
        );
        assert!(told.windows(2).all(|w| w[0] < w[1]), "in order: {told:?}");
        assert_eq!(told.last(), Some(&n));
        assert_eq!(stats.latency_ms.len(), n as u64, "each record's latency once");
    }

    /// Batches in order, then done.
    struct Batches(std::vec::IntoIter<Batch>);

    impl Source for Batches {
        fn poll(&mut self) -> Result<Poll, SourceError> {
            Ok(self.0.next().map_or(Poll::Done, Poll::Batch))
        }
    }

    fn pin_batches() -> Vec<Batch> {
        let sample: Vec<&str> = include_str!("../../tests/fixtures/pin_sample.jsonl").lines().collect();
        sample
            .chunks(7)
            .enumerate()
            .map(|(i, chunk)| Batch {
                topic: "t.pin".into(),
                partition: 0,
                records: chunk
                    .iter()
                    .enumerate()
                    .map(|(j, l)| RawRecord {
                        offset: (i * 7 + j) as i64,
                        bytes: l.as_bytes().to_vec(),
                        produced_ms: None,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect()
    }

    const NO_COMMITS: CommitPolicy = CommitPolicy {
        every_records: None,
        interval: None,
        durable_each: false,
    };

    /// [`drive_opening`] of the pin sample into the engine `open` gives.
    fn drive_sample_opening(
        topo: &std::sync::Arc<Topology>,
        open: impl FnOnce() -> Result<Engine, DriverError>,
        source_of: &HashMap<String, usize>,
    ) -> Result<(Engine, RunStats), DriverError> {
        let mut dead = crate::sink::Discard;
        let batches = Batches(pin_batches().into_iter());
        drive_opening(
            topo.clone(),
            open,
            batches,
            source_of,
            Sinks::dead(&mut dead),
            NO_COMMITS,
            &mut Quiet,
        )
    }

    /// Reading starts before the engine is open: what was prepared
    /// meanwhile is applied once it is, exactly as `drive` applies it; a
    /// state that turns out to hold positions is refused before anything
    /// is applied to it.
    #[test]
    fn an_engine_opened_while_reading_gets_every_record_and_a_used_state_is_refused() {
        use crate::state::store::Durability;
        let topo = std::sync::Arc::new(crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap());
        let pin = topo.sources.iter().position(|s| s.name == "pin").unwrap();
        let source_of = HashMap::from([("t.pin".to_string(), pin)]);
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut dead = crate::sink::Discard;
        let mut direct = Engine::open(topo.clone(), a.path(), 1000, Durability::Flush).unwrap();
        let want = drive(
            &mut direct,
            Batches(pin_batches().into_iter()),
            &source_of,
            Sinks::dead(&mut dead),
            NO_COMMITS,
            &mut Quiet,
        )
        .unwrap();
        let open = || -> Result<Engine, DriverError> {
            // Slower than the reading, so groups wait for the engine.
            std::thread::sleep(Duration::from_millis(50));
            Ok(Engine::open(topo.clone(), b.path(), 1000, Durability::Flush)?)
        };
        let (opened, got) = drive_sample_opening(&topo, open, &source_of).unwrap();
        assert!(want.delivered > 0);
        assert_eq!(
            (got.delivered, got.skipped, got.dead_letters),
            (want.delivered, want.skipped, want.dead_letters)
        );
        assert_eq!(opened.stats.joined, direct.stats.joined);
        let positions = |e: &Engine| format!("{:?}", e.positions().get("t.pin", 0));
        assert_eq!(positions(&opened), positions(&direct));
        drop(opened);
        // `a` now holds positions: opening it "as new" must fail.
        let before = positions(&direct);
        drop(direct);
        let used =
            || -> Result<Engine, DriverError> { Ok(Engine::open(topo.clone(), a.path(), 1000, Durability::Flush)?) };
        let err = drive_sample_opening(&topo, used, &source_of)
            .err()
            .expect("a state with positions is refused");
        assert!(err.to_string().contains("holds positions"), "{err}");
        let reopened = Engine::open(topo.clone(), a.path(), 1000, Durability::Flush).unwrap();
        assert_eq!(positions(&reopened), before, "nothing applied to the refused state");
    }

    /// Regression: a sharded engine's workers' counts reached the engine's
    /// stats only inside the commit, after the observer had been told what
    /// the commit covers, so the last commit's report (the daemon's
    /// metrics) missed every record a worker applied since the one before.
    #[test]
    fn regression_the_commit_observer_counts_every_shards_records() {
        struct Seen(Vec<u64>);
        impl Observer for Seen {
            fn on_commit_started(&mut self, e: &EngineStats) {
                self.0.push(e.records);
            }
        }
        let topo = std::sync::Arc::new(crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap());
        let pin = topo.sources.iter().position(|s| s.name == "pin").unwrap();
        let source_of = HashMap::from([("t.pin".to_string(), pin)]);
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Engine::open(topo.clone(), dir.path(), 1000, crate::state::store::Durability::Wal).unwrap();
        assert_eq!(engine.set_shards(2).unwrap(), 2);
        let mut dead = crate::sink::Discard;
        let mut seen = Seen(Vec::new());
        let stats = drive(
            &mut engine,
            Batches(pin_batches().into_iter()),
            &source_of,
            Sinks::dead(&mut dead),
            NO_COMMITS,
            &mut seen,
        )
        .unwrap();
        let applied = stats.records() - stats.dead_letters;
        assert!(applied > 10, "{applied}");
        assert_eq!(seen.0.last().copied(), Some(applied));
        assert_eq!(engine.stats.records, applied);
    }
}
