//! `pinstream replay`: push an archive through the topology.
//!
//! The archive source ([`ArchiveSource`], or [`S3Source`] for
//! `s3://bucket/prefix`) reads files in archive order
//! (topic, partition, offset) and the driver loop (`engine::driver`)
//! prepares them in parallel and applies them on one thread, so the result
//! does not depend on thread timing. Records whose position is already in
//! the state (an earlier run over the same state dir) are skipped, which is
//! what makes re-runs and split runs count every record exactly once.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::driver::{self, BadObjects, BatchDone, CommitPolicy, DriverError, Observer};
use crate::engine::{Engine, EngineStats};
use crate::sink::DeadLetterSink;
use crate::source::archive::{self, ArchiveError, ArchiveFile, ArchiveSource};
use crate::source::integrity::{Checker, Kind};
use crate::source::s3::{S3Error, S3Options, S3Source, S3Stats, S3Url};
use crate::source::select::{Excluded, OffsetRange, Selection};
use crate::source::Source;
use crate::state::store::{Durability, StoreError};
use crate::topology::Topology;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Prefix(String),
    #[error(transparent)]
    Driver(#[from] DriverError),
}

impl ReplayError {
    /// Whether the replay stopped on its stop flag (a signal): while it
    /// read (the source) or while it aggregated (the engine).
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            ReplayError::Driver(DriverError::Source(crate::source::SourceError::Interrupted))
                | ReplayError::Driver(DriverError::Store(StoreError::Interrupted))
                | ReplayError::Store(StoreError::Interrupted)
        )
    }
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// A directory, or `s3://bucket/prefix`.
    pub archive: PathBuf,
    /// How to reach an S3 archive.
    pub s3: S3Options,
    /// Only these topics (source names or full topic names); all if `None`.
    pub topics: Option<Vec<String>>,
    /// Which objects to read (`--partitions`, `--from/--to`).
    pub select: Selection,
    pub state_dir: PathBuf,
    /// Topic prefix; found in the archive when `None`.
    pub prefix: Option<String>,
    /// Whether a given `prefix` that names none of the archive's topics is
    /// an error (a user's `--prefix`), or just nothing to replay (the
    /// daemon's hand-off from an archive that other pipelines share).
    pub prefix_must_match: bool,
    /// Commit after this many records.
    pub commit_every: usize,
    pub cache_keys: usize,
    /// Threads of the incremental plan (`None`: one per core).
    pub shards: Option<usize>,
    /// Draw a progress bar (only if stderr is a terminal).
    pub progress: bool,
    /// `Ephemeral` for a temporary state dir, `Flush` for one that is kept.
    pub durability: Durability,
    /// Seconds an event time may lie ahead of the wall clock (windows).
    pub max_future_skew: i64,
    /// Defer aggregation to the end (`engine/batch.rs`); honoured only for
    /// an ephemeral state.
    pub batch_plan: bool,
    /// An object that cannot be read whole: fail (naming it), or report it,
    /// dead-letter it and go on (`--skip-bad-objects`).
    pub bad_objects: BadObjects,
    /// Set by SIGINT/SIGTERM: the replay stops before its next commit
    /// with [`SourceError::Interrupted`](crate::source::SourceError).
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// What a replay saw.
#[derive(Debug, Default, Clone)]
pub struct ReplaySummary {
    pub prefix: String,
    pub files: usize,
    pub bytes: u64,
    pub records: u64,
    pub per_topic: BTreeMap<String, u64>,
    pub dead_letters: u64,
    /// Dead letters by reason class (first words of the reason).
    pub dead_reasons: BTreeMap<String, u64>,
    /// Records already in the state from an earlier run.
    pub already_done: u64,
    /// Topics in the archive that no source reads.
    pub unknown_topics: Vec<String>,
    pub read_errors: Vec<String>,
    /// Files in the archive that are not read, with the reason.
    pub skipped: Vec<String>,
    pub elapsed: Duration,
    /// Time the engine thread waited for parsed input.
    pub input_wait: Duration,
    pub engine: EngineStats,
    /// Offset ranges between consecutive objects of a partition that no
    /// object (and nothing in the state) holds: records missing from the archive.
    pub gaps: Vec<String>,
    pub gap_records: u64,
    /// Objects that overlap the one before them in their partition, and the
    /// records they repeat (counted once).
    pub overlaps: u64,
    pub overlap_records: u64,
    /// Objects read below the start offset of the one before them in their
    /// partition (a bucket's key order is not offset order when start
    /// offsets are not zero-padded to one width, or when offsets go back
    /// to an earlier time directory).
    pub out_of_order: u64,
    /// Of `overlap_records`, those in partitions whose objects span several
    /// time directories ([`Checker::overlap_records_across_dirs`]).
    pub overlap_records_across_dirs: u64,
    /// Archive objects the selection left out (`--partitions`, `--from/--to`).
    pub not_selected: u64,
    /// Of those, objects whose path names no date (with `--from/--to`).
    pub no_date: u64,
    /// Date directories of a local archive not listed: outside `--from/--to`.
    pub pruned_dirs: u64,
    /// What reading a bucket took, for an S3 archive.
    pub s3: Option<S3Summary>,
}

/// The S3 side of a replay.
#[derive(Debug, Default, Clone)]
pub struct S3Summary {
    /// Keys listed (archive objects or not).
    pub listed: u64,
    /// Listing pages requested.
    pub pages: u64,
    /// Requests retried after a transient error.
    pub retries: u64,
    /// Objects not downloaded: their records were all in the state.
    pub already_done: u64,
}

/// Finds the topic prefix: the one that makes the most source topics exist.
pub fn resolve_prefix(topo: &Topology, topics: &[&str], given: Option<&str>) -> Result<String, String> {
    if let Some(p) = given {
        return Ok(p.to_string());
    }
    let templates: Vec<(&str, &str)> = topo
        .sources
        .iter()
        .filter_map(|s| s.topic.split_once("${prefix}"))
        .collect();
    if templates.is_empty() {
        return Ok(String::new());
    }
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    for (pre, post) in &templates {
        for t in topics {
            if t.len() > pre.len() + post.len() && t.starts_with(pre) && t.ends_with(post) {
                *found.entry(&t[pre.len()..t.len() - post.len()]).or_default() += 1;
            }
        }
    }
    let best = found.values().copied().max().unwrap_or(0);
    let winners: Vec<&str> = found.iter().filter(|(_, n)| **n == best).map(|(p, _)| *p).collect();
    match winners.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!(
            "no topic in the archive matches the topology's sources ({}); topics found: {}",
            topo.sources
                .iter()
                .map(|s| s.topic.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            topics.join(", ")
        )),
        many => Err(format!(
            "the archive holds topics of several prefixes ({}); pass --prefix",
            many.join(", ")
        )),
    }
}

/// Draws the progress bar as batches are applied (bytes, objects,
/// records, ETA), and checks that the objects of each partition abut
/// (`source::integrity`).
struct Progress {
    bar: indicatif::ProgressBar,
    checker: Checker,
    /// An S3 replay's listing: the total grows as it is listed.
    s3: Option<Arc<S3Stats>>,
    objects: u64,
    records: u64,
}

impl Progress {
    fn new(bar: indicatif::ProgressBar, s3: Option<Arc<S3Stats>>) -> Self {
        Progress {
            bar,
            checker: Checker::default(),
            s3,
            objects: 0,
            records: 0,
        }
    }
}

impl Observer for Progress {
    fn on_batch(&mut self, b: &BatchDone<'_>) {
        if let Some(first) = b.first_offset {
            let name = b.file.unwrap_or("");
            self.checker.object(b.topic, b.partition, first, b.delivered, name);
        }
        if self.bar.is_hidden() {
            return;
        }
        self.objects += u64::from(b.file.is_some());
        self.records += b.delivered;
        let listing = match &self.s3 {
            Some(s) => {
                self.bar
                    .set_length(s.to_read.load(Ordering::Relaxed).max(self.bar.position() + b.size));
                if s.listing_done.load(Ordering::Relaxed) {
                    ""
                } else {
                    " (still listing: total so far)"
                }
            }
            None => "",
        };
        self.bar.inc(b.size);
        self.bar
            .set_message(format!("{} objects, {} records{listing}", self.objects, self.records));
    }
}

/// Replays an archive (a directory, or `s3://bucket/prefix`) into the state
/// dir; returns the engine (for answers).
pub fn replay(
    topo: Arc<Topology>,
    opts: &ReplayOptions,
    dead: &mut DeadLetterSink<'_>,
) -> Result<(Engine, ReplaySummary), ReplayError> {
    let started = Instant::now();
    std::thread::scope(|scope| {
        // A temporary state is new and empty, so RocksDB's open (creating
        // a dozen column families one by one, about 50 ms serial) runs
        // while the archive is listed. A kept one opens after the listing,
        // as before: a wrong --archive leaves no state dir behind.
        let early = (opts.durability == Durability::Ephemeral).then(|| {
            let topo = topo.clone();
            scope.spawn(move || open_engine(topo, opts))
        });
        let open = || match early {
            Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => open_engine(topo.clone(), opts),
        };
        replay_opened(topo.clone(), opts, dead, started, open)
    })
}

fn open_engine(topo: Arc<Topology>, opts: &ReplayOptions) -> Result<Engine, ReplayError> {
    Ok(Engine::open(topo, &opts.state_dir, opts.cache_keys, opts.durability)?)
}

/// [`replay`] with the engine from `open` (called once the source is ready).
fn replay_opened(
    topo: Arc<Topology>,
    opts: &ReplayOptions,
    dead: &mut DeadLetterSink<'_>,
    started: Instant,
    open: impl FnOnce() -> Result<Engine, ReplayError>,
) -> Result<(Engine, ReplaySummary), ReplayError> {
    let archive = opts.archive.to_string_lossy();
    if S3Url::is_s3(&archive) {
        let url = S3Url::parse(&archive)?;
        let s3 = S3Options {
            skip_bad_objects: opts.bad_objects == BadObjects::Skip,
            ..opts.s3.clone()
        };
        let (mut source, topics) = S3Source::open(url, s3)?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let (mut summary, source_of) = plan(&topo, opts, &topics)?;
        source.keep_topics(|t| source_of.contains_key(t));
        source.select(opts.select.clone());
        let stats = source.stats.clone();
        let progress = Progress::new(progress_bar(opts, 0), Some(stats.clone()));
        let engine = run(
            Opening {
                topo: topo.clone(),
                open,
            },
            opts,
            source,
            &source_of,
            dead,
            progress,
            &mut summary,
        );
        summary.files = stats.objects.load(Ordering::Relaxed) as usize;
        summary.bytes = stats.bytes.load(Ordering::Relaxed);
        if let Ok(mut skipped) = stats.skipped.lock() {
            summary.skipped.append(&mut skipped);
        }
        summary.not_selected = stats.not_selected.load(Ordering::Relaxed);
        summary.no_date = stats.no_date.load(Ordering::Relaxed);
        summary.s3 = Some(S3Summary {
            listed: stats.listed.load(Ordering::Relaxed),
            pages: stats.pages.load(Ordering::Relaxed),
            retries: stats.retries.load(Ordering::Relaxed),
            already_done: stats.skipped_done.load(Ordering::Relaxed),
        });
        let engine = engine?;
        summary.elapsed = started.elapsed();
        return Ok((engine, summary));
    }
    let scan = archive::scan_selected(&opts.archive, Some(&opts.select))?;
    let pruned_dirs = scan.pruned_dirs;
    let mut topics: Vec<&str> = scan.files.iter().map(|f| f.topic.as_str()).collect();
    topics.dedup();
    let (mut summary, source_of) = plan(&topo, opts, &topics)?;
    summary.skipped = scan
        .skipped
        .iter()
        .map(|k| format!("{}: {}", k.path.display(), k.reason))
        .collect();
    let mut files: Vec<ArchiveFile> = Vec::new();
    for f in scan.files.into_iter().filter(|f| source_of.contains_key(&f.topic)) {
        match opts
            .select
            .admits(f.partition, f.start_offset, &f.path.to_string_lossy())
        {
            Ok(()) => files.push(f),
            Err(why) => {
                summary.not_selected += 1;
                summary.no_date += u64::from(why == Excluded::NoDate);
            }
        }
    }
    summary.files = files.len();
    summary.bytes = files.iter().map(|f| f.size).sum();
    summary.pruned_dirs = pruned_dirs;
    let progress = Progress::new(progress_bar(opts, summary.bytes), None);
    let engine = run(
        Opening {
            topo: topo.clone(),
            open,
        },
        opts,
        ArchiveSource::new(files),
        &source_of,
        dead,
        progress,
        &mut summary,
    )?;
    summary.elapsed = started.elapsed();
    Ok((engine, summary))
}

/// The topic prefix, which topic feeds which source (only the selected
/// `--topics`), and the topics no source reads.
fn plan(
    topo: &Topology,
    opts: &ReplayOptions,
    topics: &[&str],
) -> Result<(ReplaySummary, HashMap<String, usize>), ReplayError> {
    let prefix = resolve_prefix(topo, topics, opts.prefix.as_deref()).map_err(ReplayError::Prefix)?;
    let mut source_of: HashMap<String, usize> = topo
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.topic_for(&prefix), i))
        .collect();
    let mut unknown: Vec<String> = topics
        .iter()
        .filter(|t| !source_of.contains_key(**t))
        .map(|t| t.to_string())
        .collect();
    unknown.dedup();
    // A given prefix that names none of the archive's topics replayed
    // nothing and exited 0 (a typo'd `--prefix` looked like an empty day).
    if opts.prefix_must_match && opts.prefix.is_some() && !topics.is_empty() && unknown.len() == topics.len() {
        let mut expected: Vec<&String> = source_of.keys().collect();
        expected.sort();
        return Err(ReplayError::Prefix(format!(
            "--prefix `{prefix}`: no topic of the archive is one of its sources' topics ({}); topics found: {}",
            expected.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
            unknown.join(", ")
        )));
    }
    if let Some(want) = &opts.topics {
        let named = |t: &str, i: usize| want.iter().any(|w| w == t || *w == topo.sources[i].name);
        for w in want {
            if !source_of.iter().any(|(t, i)| w == t || *w == topo.sources[*i].name) {
                return Err(ReplayError::Prefix(format!(
                    "--topics: `{w}` is neither a source of the topology ({}) nor one of its topics",
                    topo.sources
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        source_of.retain(|t, i| named(t, *i));
    }
    let summary = ReplaySummary {
        prefix,
        unknown_topics: unknown,
        ..Default::default()
    };
    Ok((summary, source_of))
}

/// A progress bar on a terminal, of `total` bytes (for a bucket, the
/// total grows as the listing goes: [`Progress`] updates it).
fn progress_bar(opts: &ReplayOptions, total: u64) -> indicatif::ProgressBar {
    if !(opts.progress && std::io::stderr().is_terminal()) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} replay [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}, {msg}, eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// The engine a replay applies to: its topology at once, the engine
/// itself when `open` returns (for a temporary state, while reading has
/// started: [`driver::drive_opening`]).
struct Opening<F> {
    topo: Arc<Topology>,
    open: F,
}

/// Opens the engine and drives `source` through it, keeping only the
/// records of `--offsets` if it was given.
fn run<S: Source>(
    engine: Opening<impl FnOnce() -> Result<Engine, ReplayError>>,
    opts: &ReplayOptions,
    source: S,
    source_of: &HashMap<String, usize>,
    dead: &mut DeadLetterSink<'_>,
    progress: Progress,
    summary: &mut ReplaySummary,
) -> Result<Engine, ReplayError> {
    match opts.select.offsets {
        Some((from, to)) => run_all(
            engine,
            opts,
            OffsetRange {
                inner: source,
                from,
                to,
            },
            source_of,
            dead,
            progress,
            summary,
        ),
        None => run_all(engine, opts, source, source_of, dead, progress, summary),
    }
}

fn run_all<S: Source>(
    Opening { topo, open }: Opening<impl FnOnce() -> Result<Engine, ReplayError>>,
    opts: &ReplayOptions,
    source: S,
    source_of: &HashMap<String, usize>,
    dead: &mut DeadLetterSink<'_>,
    mut progress: Progress,
    summary: &mut ReplaySummary,
) -> Result<Engine, ReplayError> {
    let configured = || -> Result<Engine, ReplayError> {
        let mut engine = open()?;
        engine.set_max_future_skew(opts.max_future_skew);
        if let Some(stop) = &opts.stop {
            engine.set_stop(stop.clone());
        }
        engine.set_batch_plan(opts.batch_plan);
        engine.set_shards(opts.shards.unwrap_or_else(crate::engine::shard::default_shards))?;
        Ok(engine)
    };
    let policy = CommitPolicy {
        every_records: Some(opts.commit_every),
        interval: None,
        durable_each: false,
    };
    let source = crate::source::interrupt::Interruptible {
        inner: source,
        stop: opts.stop.clone().unwrap_or_default(),
    };
    let sinks = driver::Sinks {
        dead,
        archive: None,
        bad_objects: opts.bad_objects,
    };
    let (engine, run) = if opts.durability == Durability::Ephemeral {
        // New and empty (see `replay`): reading starts while it opens.
        driver::drive_opening(topo, configured, source, source_of, sinks, policy, &mut progress)?
    } else {
        let mut engine = configured()?;
        let run = driver::drive(&mut engine, source, source_of, sinks, policy, &mut progress)?;
        (engine, run)
    };
    progress.bar.finish_and_clear();
    summary.records = run.delivered;
    summary.already_done = run.skipped;
    summary.dead_letters = run.dead_letters;
    summary.dead_reasons = run.dead_reasons;
    summary.per_topic = run.per_topic;
    summary.read_errors = run.read_errors;
    summary.input_wait = run.input_wait;
    summary.engine = engine.stats;
    // A gap between the objects read is missing data only if the state
    // does not hold those offsets either (an object of a resumed replay
    // that was not downloaded, or records consumed live, fill it).
    let positions = engine.positions();
    progress.checker.finish();
    summary.out_of_order = progress.checker.out_of_order();
    summary.overlap_records_across_dirs = progress.checker.overlap_records_across_dirs();
    for f in progress.checker.findings.drain(..) {
        let n = (f.to - f.from) as u64;
        match f.kind {
            Kind::Gap => {
                if !positions
                    .get(&f.topic, f.partition)
                    .is_some_and(|r| r.covers(f.from, f.to))
                {
                    summary.gaps.push(f.to_string());
                    summary.gap_records += n;
                }
            }
            Kind::Overlap => {
                summary.overlaps += 1;
                summary.overlap_records += n;
            }
        }
    }
    Ok(engine)
}

/// The hand-off from archive to live (`run --bootstrap-from-archive`):
/// replays `archive` into the daemon's `state_dir`, so that the daemon then
/// continues each partition from Kafka at the offset after the last one
/// archived (positions are state: one continuous history; records Kafka no
/// longer holds count once, from the archive). Idempotent: at a restart the
/// archived records are all in the state already and are skipped (an S3
/// archive's finished objects are not even downloaded). Dead letters are
/// counted in the summary, not sent.
pub fn bootstrap(
    topo: Arc<Topology>,
    archive: &Path,
    s3: S3Options,
    state_dir: &Path,
    prefix: &str,
    max_future_skew: i64,
) -> Result<ReplaySummary, ReplayError> {
    let opts = ReplayOptions {
        archive: archive.to_path_buf(),
        s3,
        topics: None,
        select: Selection::default(),
        state_dir: state_dir.to_path_buf(),
        prefix: Some(prefix.to_string()),
        prefix_must_match: false,
        commit_every: 5_000_000,
        cache_keys: crate::engine::DEFAULT_CACHE_KEYS,
        shards: None,
        progress: false,
        durability: Durability::Flush,
        max_future_skew,
        batch_plan: true,
        bad_objects: BadObjects::Fail,
        stop: None,
    };
    let mut dead = crate::sink::Discard;
    let (engine, summary) = replay(topo, &opts, &mut dead)?;
    drop(engine);
    Ok(summary)
}

/// Peak resident set size of this process in bytes (Linux), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A fresh temporary state dir for one-off replays.
pub fn temp_state_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix("pinstream-state-").tempdir()
}

/// Whether `dir` is an existing pinstream state dir.
pub fn is_state_dir(dir: &Path) -> bool {
    crate::state::store::dir_kind(dir) == crate::state::store::DirKind::State
}
