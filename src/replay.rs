//! `pinstream replay`: push an archive through the topology.
//!
//! Files are read, decompressed, parsed and cleaned in parallel (rayon) in
//! chunks; the chunks reach the single engine thread in archive order
//! (topic, partition, offset), so the result does not depend on thread
//! timing. Records whose position is already in the state (an earlier run
//! over the same state dir) are skipped, which is what makes re-runs and
//! split runs count every record exactly once.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::archive::{self, ArchiveError, ArchiveFile};
use crate::engine::{Engine, EngineStats};
use crate::offsets::Ranges;
use crate::pipeline::{prepare, DeadLetter, DeadLetterSink, Origin, Prepared};
use crate::store::{Durability, StoreError};
use crate::topology::Topology;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Prefix(String),
    #[error("writing dead letters: {0}")]
    DeadLetters(#[source] std::io::Error),
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

enum Item {
    Ok(Prepared),
    Dead(String, Vec<u8>),
    Done,
}

struct FileOut {
    file: usize,
    items: Vec<(i64, Item)>,
    read_error: Option<String>,
}

thread_local! {
    /// Per-thread file buffer: reused so big reads do not fault in fresh
    /// pages for every file.
    static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn read_file(topo: &Topology, f: &ArchiveFile, src: usize, done: Option<&Ranges>) -> FileOut {
    BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        let read_error = f.read_into(&mut buf).err();
        let items = archive::lines(&buf, f.start_offset)
            .map(|(offset, bytes)| {
                if done.is_some_and(|d| d.contains(offset)) {
                    return (offset, Item::Done);
                }
                match prepare(topo, src, bytes) {
                    Ok(p) => (offset, Item::Ok(p)),
                    Err(reason) => (offset, Item::Dead(reason, bytes.to_vec())),
                }
            })
            .collect();
        if buf.capacity() > 256 << 20 {
            *buf = Vec::new(); // one huge object must not pin its memory
        }
        FileOut {
            file: 0,
            items,
            read_error,
        }
    })
}

fn reason_class(reason: &str) -> String {
    reason.split(':').next().unwrap_or(reason).chars().take(60).collect()
}

/// Replays an archive into the state dir; returns the engine (for answers).
pub fn replay(
    topo: Arc<Topology>,
    opts: &ReplayOptions,
    dead: &mut dyn DeadLetterSink,
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
    let files: Vec<(ArchiveFile, usize)> = files
        .into_iter()
        .filter_map(|f| source_of.get(&f.topic).map(|&s| (f, s)))
        .collect();
    summary.files = files.len();
    summary.bytes = files.iter().map(|(f, _)| f.size).sum();

    let mut engine = Engine::open(topo.clone(), &opts.state_dir, opts.cache_keys, opts.durability)?;
    engine.set_max_future_skew(opts.max_future_skew);
    let done: HashMap<(String, i32), Ranges> = engine.positions().all().map(|(k, v)| (k.clone(), v.clone())).collect();

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

    // Chunks of roughly 32 MB of decoded input, so parsing overlaps state work.
    let mut chunks: Vec<Vec<usize>> = vec![Vec::new()];
    let mut weight = 0u64;
    for (i, (f, _)) in files.iter().enumerate() {
        weight += if f.gzip { f.size * 5 } else { f.size };
        chunks.last_mut().unwrap().push(i);
        if weight > 32 << 20 {
            chunks.push(Vec::new());
            weight = 0;
        }
    }

    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<FileOut>>(1);
    let result = std::thread::scope(|scope| -> Result<(), ReplayError> {
        let files = &files;
        let topo = &topo;
        let done = &done;
        scope.spawn(move || {
            for chunk in chunks {
                let outs: Vec<FileOut> = chunk
                    .par_iter()
                    .map(|&i| {
                        let (f, src) = &files[i];
                        let mut out = read_file(topo, f, *src, done.get(&(f.topic.clone(), f.partition)));
                        out.file = i;
                        out
                    })
                    .collect();
                if tx.send(outs).is_err() {
                    return; // the engine stopped early (error)
                }
            }
        });
        let mut waited = Instant::now();
        for outs in rx {
            summary.input_wait += waited.elapsed();
            for out in outs {
                let (f, src) = &files[out.file];
                if let Some(e) = out.read_error {
                    tracing::warn!("{e}");
                    summary.read_errors.push(e);
                }
                *summary.per_topic.entry(f.topic.clone()).or_default() += out.items.len() as u64;
                let span = out.items.first().zip(out.items.last()).map(|(a, b)| (a.0, b.0 + 1));
                for (offset, item) in out.items {
                    summary.records += 1;
                    match item {
                        Item::Done => {
                            summary.already_done += 1;
                            continue;
                        }
                        Item::Ok(p) => engine.process(*src, &p.key, p.row)?,
                        Item::Dead(reason, raw) => {
                            summary.dead_letters += 1;
                            *summary.dead_reasons.entry(reason_class(&reason)).or_default() += 1;
                            let dl = DeadLetter {
                                reason,
                                origin: Origin {
                                    topic: f.topic.clone(),
                                    partition: f.partition,
                                    offset,
                                    file: Some(f.path.display().to_string()),
                                },
                                record: String::from_utf8_lossy(&raw).into_owned(),
                            };
                            dead.send(&dl).map_err(ReplayError::DeadLetters)?;
                        }
                    }
                }
                // A file's records are consecutive offsets: one range.
                if let Some((start, end)) = span {
                    engine.mark_range(&f.topic, f.partition, start, end);
                }
                bar.inc(f.size);
                if engine.pending() >= opts.commit_every {
                    // Dead letters first: a committed position must not lose its letter.
                    dead.flush().map_err(ReplayError::DeadLetters)?;
                    engine.commit()?;
                }
            }
            waited = Instant::now();
        }
        Ok(())
    });
    result?;
    dead.flush().map_err(ReplayError::DeadLetters)?;
    engine.sync()?;
    bar.finish_and_clear();
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
    crate::store::dir_kind(dir) == crate::store::DirKind::State
}
