//! `pinstream replay`: push an archive through the topology.
//!
//! The archive source ([`ArchiveSource`]) reads files in archive order
//! (topic, partition, offset) and the driver loop (`engine::driver`)
//! prepares them in parallel and applies them on one thread, so the result
//! does not depend on thread timing. Records whose position is already in
//! the state (an earlier run over the same state dir) are skipped, which is
//! what makes re-runs and split runs count every record exactly once.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::driver::{self, BatchDone, CommitPolicy, DriverError, Observer};
use crate::engine::{Engine, EngineStats};
use crate::sink::DeadLetterSink;
use crate::source::archive::{self, ArchiveError, ArchiveFile, ArchiveSource};
use crate::state::store::{Durability, StoreError};
use crate::topology::Topology;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Prefix(String),
    #[error(transparent)]
    Driver(#[from] DriverError),
}

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub archive: PathBuf,
    pub state_dir: PathBuf,
    /// Topic prefix; found in the archive when `None`.
    pub prefix: Option<String>,
    /// Commit after this many records.
    pub commit_every: usize,
    pub cache_keys: usize,
    /// Draw a progress bar (only if stderr is a terminal).
    pub progress: bool,
    /// `Ephemeral` for a temporary state dir, `Flush` for one that is kept.
    pub durability: Durability,
    /// Seconds an event time may lie ahead of the wall clock (windows).
    pub max_future_skew: i64,
    /// Defer aggregation to the end (`engine/batch.rs`); honoured only for
    /// an ephemeral state.
    pub batch_plan: bool,
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

/// Draws the progress bar as batches are applied.
struct Progress(indicatif::ProgressBar);

impl Observer for Progress {
    fn on_batch(&mut self, b: &BatchDone<'_>) {
        self.0.inc(b.size);
    }
}

/// Replays an archive into the state dir; returns the engine (for answers).
pub fn replay(
    topo: Arc<Topology>,
    opts: &ReplayOptions,
    dead: &mut DeadLetterSink<'_>,
) -> Result<(Engine, ReplaySummary), ReplayError> {
    let started = Instant::now();
    let scan = archive::scan(&opts.archive)?;
    let files = scan.files;
    let mut topics: Vec<&str> = files.iter().map(|f| f.topic.as_str()).collect();
    topics.dedup();
    let prefix = resolve_prefix(&topo, &topics, opts.prefix.as_deref()).map_err(ReplayError::Prefix)?;
    let source_of: HashMap<String, usize> = topo
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.topic_for(&prefix), i))
        .collect();

    let mut summary = ReplaySummary {
        prefix: prefix.clone(),
        skipped: scan
            .skipped
            .into_iter()
            .map(|k| format!("{}: {}", k.path.display(), k.reason))
            .collect(),
        ..Default::default()
    };
    let mut unknown: Vec<String> = topics
        .iter()
        .filter(|t| !source_of.contains_key(**t))
        .map(|t| t.to_string())
        .collect();
    unknown.dedup();
    summary.unknown_topics = unknown;
    let files: Vec<ArchiveFile> = files.into_iter().filter(|f| source_of.contains_key(&f.topic)).collect();
    summary.files = files.len();
    summary.bytes = files.iter().map(|f| f.size).sum();

    let mut engine = Engine::open(topo.clone(), &opts.state_dir, opts.cache_keys, opts.durability)?;
    engine.set_max_future_skew(opts.max_future_skew);
    engine.set_batch_plan(opts.batch_plan);

    let bar = if opts.progress && std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(summary.bytes);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} replay [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut progress = Progress(bar);
    let policy = CommitPolicy {
        every_records: Some(opts.commit_every),
        interval: None,
        durable_each: false,
    };
    let run = driver::drive(
        &mut engine,
        ArchiveSource::new(files),
        &source_of,
        dead,
        policy,
        &mut progress,
    )?;
    progress.0.finish_and_clear();
    summary.records = run.delivered;
    summary.already_done = run.skipped;
    summary.dead_letters = run.dead_letters;
    summary.dead_reasons = run.dead_reasons;
    summary.per_topic = run.per_topic;
    summary.read_errors = run.read_errors;
    summary.input_wait = run.input_wait;
    summary.elapsed = started.elapsed();
    summary.engine = engine.stats;
    Ok((engine, summary))
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
