//! The `pinstream` command line.

mod cli;

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Parser;

use cli::args::{Cli, Command, Format};
use pinstream::engine::prepare::clean;
use pinstream::query;
use pinstream::replay::{self, ReplayOptions};
use pinstream::sink::{file::FileSink, DeadLetterSink, Discard};
use pinstream::state::store;
use pinstream::topology::Topology;

// mimalloc: the engine frees on one thread what the parsers allocated on
// others; glibc's arenas made that a tenth of the replay profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn load(path: Option<&Path>) -> Result<Topology, ExitCode> {
    let (name, text) = match path {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) => (p.display().to_string(), t),
            Err(e) => {
                eprintln!("error: cannot read topology {}: {e}", p.display());
                return Err(ExitCode::from(2));
            }
        },
        None => (
            "topologies/pinterest.toml (built in)".to_string(),
            pinstream::PINTEREST_TOPOLOGY.to_string(),
        ),
    };
    pinstream::load_topology(&text).map_err(|errors| {
        for e in &errors {
            match e.line {
                Some(l) => eprintln!("{name}:{l}: {}", SpecLine(e)),
                None => eprintln!("{name}: {}", SpecLine(e)),
            }
        }
        eprintln!("{} error(s) in {name}", errors.len());
        ExitCode::from(2)
    })
}

/// A spec error without its line (the caller prints `file:line:` first).
struct SpecLine<'a>(&'a pinstream::dsl::SpecError);

impl std::fmt::Display for SpecLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut e = self.0.clone();
        e.line = None;
        write!(f, "{e}")
    }
}

/// Opens an existing state dir with its topology (for `answers`, `positions`).
/// The inner `Err` is an invalid topology's exit code.
fn open_state(state_dir: &Path, topology: Option<&Path>) -> Result<Result<(Topology, store::Store), ExitCode>> {
    let topo = match load(topology) {
        Ok(t) => t,
        Err(code) => return Ok(Err(code)),
    };
    if !replay::is_state_dir(state_dir) {
        bail!(
            "{} is not a pinstream state dir (no {} marker, no pinstream RocksDB)",
            state_dir.display(),
            store::MARKER
        );
    }
    let store = store::Store::open_read_only(state_dir, &topo)?;
    Ok(Ok((topo, store)))
}

fn print_answers(answers: &[(String, Vec<query::Row>)], format: Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", query::answers_json(answers))?,
        Format::Table => write!(out, "{}", query::answers_table(answers))?,
    }
    Ok(())
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate { file } => {
            let topo = match load(file.as_deref()) {
                Ok(t) => t,
                Err(code) => return Ok(code),
            };
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "ok: topology `{}`: {} sources, join `{}` on `{}`, {} aggregates, {} queries ({} in the answer)",
                topo.spec.name,
                topo.sources.len(),
                topo.join.name,
                topo.join.key,
                topo.aggregates.len(),
                topo.queries.len(),
                topo.answers.len()
            )?;
            for s in &topo.sources {
                let kept: Vec<&str> = s.projection.iter().map(|n| &**n).collect();
                writeln!(
                    out,
                    "  source {:<6} topic {:<18} key {:<5} {} ops, join keeps [{}]",
                    s.name,
                    s.topic,
                    &*s.key,
                    s.ops.len(),
                    kept.join(", ")
                )?;
            }
            for a in &topo.aggregates {
                let window = a
                    .window
                    .as_ref()
                    .map(|(f, w)| format!(" window {}s on {} kept {}s", w.size, f, w.retention))
                    .unwrap_or_default();
                writeln!(out, "  store  {:<34} {}{window}: {}", a.name, a.function, a.description)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Clean { source, topology, file } => {
            let topo = match load(topology.as_deref()) {
                Ok(t) => t,
                Err(code) => return Ok(code),
            };
            let Some(src) = topo.sources.iter().position(|s| s.name == source) else {
                bail!(
                    "unknown source `{source}` (sources: {})",
                    topo.sources
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            let input: Box<dyn BufRead> = match &file {
                Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufReader::new(
                    std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
                )),
                _ => Box::new(std::io::stdin().lock()),
            };
            let mut out = std::io::stdout().lock();
            let mut rejected = 0u64;
            for (n, line) in input.split(b'\n').enumerate() {
                let line = line?;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match clean(&topo, src, &line) {
                    Ok(rec) => writeln!(out, "{}", rec.to_json())?,
                    Err(reason) => {
                        rejected += 1;
                        eprintln!("line {}: rejected: {reason}", n + 1);
                    }
                }
            }
            Ok(if rejected > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        cmd @ Command::Emulate { .. } => cli::live::emulate(cmd),
        cmd @ Command::Run { .. } => cli::live::run_daemon(cmd),
        Command::Demo {
            posts,
            rate,
            state_dir,
            format,
            max_future_skew,
            reset_positions,
            http,
        } => cli::live::demo(posts, rate, state_dir, format, max_future_skew, reset_positions, http),
        Command::Positions { state_dir, topology } => {
            let (_, store) = match open_state(&state_dir, topology.as_deref())? {
                Ok(opened) => opened,
                Err(code) => return Ok(code),
            };
            let mut all: Vec<_> = store.positions()?.into_iter().collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = std::io::stdout().lock();
            for ((topic, partition), ranges) in all {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"topic": topic, "partition": partition, "ranges": ranges.ranges()})
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Answers {
            state_dir,
            topology,
            format,
        } => {
            let (topo, store) = match open_state(&state_dir, topology.as_deref())? {
                Ok(opened) => opened,
                Err(code) => return Ok(code),
            };
            print_answers(&query::answers(&store, &topo)?, format)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            archive,
            topology,
            state_dir,
            prefix,
            format,
            dead_letter,
            commit_every,
            cache_keys,
            max_future_skew,
            strict,
            quiet,
        } => {
            let topo = match load(topology.as_deref()) {
                Ok(t) => Arc::new(t),
                Err(code) => return Ok(code),
            };
            let temp = if state_dir.is_none() {
                Some(replay::temp_state_dir().context("creating a temporary state dir")?)
            } else {
                None
            };
            let dir = state_dir
                .clone()
                .unwrap_or_else(|| temp.as_ref().map(|t| t.path().to_path_buf()).unwrap_or_default());
            let mut dead: Box<DeadLetterSink> = match &dead_letter {
                Some(p) => Box::new(FileSink::create(p).with_context(|| format!("creating {}", p.display()))?),
                None => Box::new(Discard),
            };
            // A temporary state dir is deleted at exit: nothing in it has to be durable.
            let durability = if temp.is_some() {
                store::Durability::Ephemeral
            } else {
                store::Durability::Flush
            };
            let opts = ReplayOptions {
                archive,
                state_dir: dir,
                prefix,
                commit_every: commit_every.max(1),
                cache_keys,
                progress: !quiet,
                durability,
                max_future_skew,
            };
            let (engine, s) = replay::replay(topo.clone(), &opts, dead.as_mut())?;
            let problems = s.skipped.len() + s.read_errors.len() + s.unknown_topics.len();
            if strict && problems > 0 {
                for line in s.skipped.iter().chain(&s.read_errors) {
                    eprintln!("  {line}");
                }
                for t in &s.unknown_topics {
                    eprintln!("  topic `{t}`: no source reads it");
                }
                bail!(
                    "--strict: {} skipped files, {} unreadable files, {} unknown topics (no answers printed)",
                    s.skipped.len(),
                    s.read_errors.len(),
                    s.unknown_topics.len()
                );
            }
            let answers = query::answers(engine.store(), &topo)?;
            print_answers(&answers, format)?;
            if !quiet {
                let secs = s.elapsed.as_secs_f64().max(1e-9);
                let rss = replay::peak_rss_bytes().unwrap_or(0);
                eprintln!(
                    "replayed {} records ({:.1} MB in {} files, prefix `{}`) in {:.2} s: {} records/s, {:.1} MB/s, peak RSS {} MB",
                    thousands(s.records),
                    s.bytes as f64 / 1e6,
                    s.files,
                    s.prefix,
                    secs,
                    thousands((s.records as f64 / secs) as u64),
                    s.bytes as f64 / 1e6 / secs,
                    rss >> 20
                );
                let per_topic: Vec<String> = s
                    .per_topic
                    .iter()
                    .map(|(t, n)| format!("{t} {}", thousands(*n)))
                    .collect();
                eprintln!("  per topic: {}", per_topic.join(", "));
                let e = &s.engine;
                eprintln!(
                    "  joined rows {}, unchanged re-deliveries {}, replaced rows {}, already in state {}, commits {}",
                    thousands(e.joined),
                    thousands(e.unchanged),
                    thousands(e.replaced),
                    thousands(s.already_done),
                    e.commits
                );
                eprintln!(
                    "  engine thread: waited {:.2} s for parsed input, {:.2} s in {} commits",
                    s.input_wait.as_secs_f64(),
                    e.commit_time.as_secs_f64(),
                    e.commits
                );
                if e.agg.late > 0 {
                    eprintln!(
                        "  windowed updates outside retention {} (live windows keep only recent event time)",
                        thousands(e.agg.late)
                    );
                }
                if e.agg.future > 0 {
                    eprintln!(
                        "  windowed updates too far in the future {} (event time beyond the wall clock + --max-future-skew)",
                        thousands(e.agg.future)
                    );
                }
                let reasons: Vec<String> = s.dead_reasons.iter().map(|(r, n)| format!("{n} × {r}")).collect();
                match (&dead_letter, s.dead_letters) {
                    (_, 0) => eprintln!("  dead letters 0"),
                    (Some(p), n) => eprintln!(
                        "  dead letters {} → {} ({})",
                        thousands(n),
                        p.display(),
                        reasons.join("; ")
                    ),
                    (None, n) => eprintln!(
                        "  dead letters {} ({}); pass --dead-letter FILE to keep them",
                        thousands(n),
                        reasons.join("; ")
                    ),
                }
                for t in &s.unknown_topics {
                    eprintln!("  skipped topic `{t}`: no source reads it");
                }
                for e in &s.read_errors {
                    eprintln!("  read error: {e}");
                }
                for k in s.skipped.iter().take(10) {
                    eprintln!("  skipped file {k}");
                }
                if s.skipped.len() > 10 {
                    eprintln!("  … and {} more skipped files", s.skipped.len() - 10);
                }
                eprintln!(
                    "stats: records={} bytes={} seconds={:.3} records_per_s={:.0} mb_per_s={:.1} peak_rss_mb={} dead_letters={} skipped_files={} unreadable_files={} unknown_topics={}",
                    s.records,
                    s.bytes,
                    secs,
                    s.records as f64 / secs,
                    s.bytes as f64 / 1e6 / secs,
                    rss >> 20,
                    s.dead_letters,
                    s.skipped.len(),
                    s.read_errors.len(),
                    s.unknown_topics.len()
                );
            }
            drop(engine);
            drop(temp);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `pinstream demo`: mock cluster + emulator thread + daemon in one process.
fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        // A closed stdout (`pinstream positions | head -1`) ends the output,
        // not the process with a panic.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes, each cause left out when the message before it
/// already says it (typed errors that quote their source would otherwise
/// print it twice).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
