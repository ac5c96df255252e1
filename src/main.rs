//! The `pinstream` command line.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use pinstream::emulate::{ArchiveWriter, Compression, Emulator, Layout, WriterOptions, TOPICS};
use pinstream::pipeline::{clean, DeadLetterSink, DiscardDeadLetters, FileDeadLetters};
use pinstream::replay::{self, ReplayOptions};
use pinstream::topology::Topology;
use pinstream::{engine, query, store};

// mimalloc: the engine frees on one thread what the parsers allocated on
// others; glibc's arenas made that a tenth of the replay profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The seeds' topic prefix (a 12-hex-digit user id).
const DEFAULT_PREFIX: &str = "129a67850695";

#[derive(Parser)]
#[command(
    name = "pinstream",
    version,
    about = "Stateful stream processor for the Pinterest pipeline: clean, join on ind, aggregate in RocksDB, answer the eight questions"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// The spec's JSON object (one line)
    Json,
    /// Aligned tables for people
    Table,
}

#[derive(Subcommand)]
enum Command {
    /// Replay an S3-sink archive through the topology and print the answers.
    Replay {
        /// Archive directory (holding `topics/`)
        #[arg(long)]
        archive: PathBuf,
        /// Topology file (default: the built-in topologies/pinterest.toml)
        #[arg(long, env = "PINSTREAM_TOPOLOGY")]
        topology: Option<PathBuf>,
        /// State dir to keep and resume (default: a fresh temporary one, removed after)
        #[arg(long, env = "PINSTREAM_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Topic prefix (default: found in the archive)
        #[arg(long, env = "PINSTREAM_PREFIX")]
        prefix: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        /// Write rejected records here as JSON lines (reason, topic, partition, offset, file, record)
        #[arg(long)]
        dead_letter: Option<PathBuf>,
        /// Commit state every N records
        #[arg(long, default_value_t = 1_000_000)]
        commit_every: usize,
        /// Join keys kept in memory before falling back to RocksDB reads
        #[arg(long, default_value_t = engine::DEFAULT_CACHE_KEYS)]
        cache_keys: usize,
        /// No summary on stderr
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print the answers held in a state dir (of a stopped replay or daemon).
    Answers {
        #[arg(long, env = "PINSTREAM_STATE_DIR", default_value = "./state")]
        state_dir: PathBuf,
        #[arg(long, env = "PINSTREAM_TOPOLOGY")]
        topology: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
    },
    /// Check a topology file and report every error with its line.
    Validate {
        /// Topology file (default: the built-in one)
        file: Option<PathBuf>,
    },
    /// Clean raw records of one source (JSON lines on stdin or in FILE) and print them.
    Clean {
        /// Source name in the topology (pin, geo, user)
        #[arg(long)]
        source: String,
        #[arg(long, env = "PINSTREAM_TOPOLOGY")]
        topology: Option<PathBuf>,
        file: Option<PathBuf>,
    },
    /// Generate realistic deliveries into an S3-sink archive.
    Emulate {
        /// Number of distinct posts
        #[arg(long)]
        posts: u64,
        /// Output archive directory
        #[arg(long)]
        archive: PathBuf,
        #[arg(long, default_value_t = 100)]
        seed: u64,
        #[arg(long, default_value = DEFAULT_PREFIX)]
        prefix: String,
        /// Partitions per topic
        #[arg(long, default_value_t = 3)]
        partitions: u32,
        /// Records per archive object (the connector's flush.size)
        #[arg(long, default_value_t = 500)]
        flush_size: usize,
        #[arg(long, value_enum, default_value = "none")]
        compression: Compression,
        #[arg(long, value_enum, default_value = "default")]
        layout: Layout,
        /// Probability that a delivery re-sends an earlier post
        #[arg(long, default_value_t = 0.23)]
        resend_rate: f64,
    },
}

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
            println!(
                "ok: topology `{}`: {} sources, join `{}` on `{}`, {} aggregates, {} queries ({} in the answer)",
                topo.spec.name,
                topo.sources.len(),
                topo.join.name,
                topo.join.key,
                topo.aggregates.len(),
                topo.queries.len(),
                topo.answers.len()
            );
            for s in &topo.sources {
                let kept: Vec<&str> = s.projection.iter().map(|n| &**n).collect();
                println!(
                    "  source {:<6} topic {:<18} key {:<5} {} ops, join keeps [{}]",
                    s.name,
                    s.topic,
                    &*s.key,
                    s.ops.len(),
                    kept.join(", ")
                );
            }
            for a in &topo.aggregates {
                let window = a
                    .window
                    .as_ref()
                    .map(|(f, w)| format!(" window {}s on {} kept {}s", w.size, f, w.retention))
                    .unwrap_or_default();
                println!("  store  {:<34} {}{window}: {}", a.name, a.function, a.description);
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
        Command::Emulate {
            posts,
            archive,
            seed,
            prefix,
            partitions,
            flush_size,
            compression,
            layout,
            resend_rate,
        } => {
            if !(0.0..1.0).contains(&resend_rate) {
                bail!("--resend-rate must be in [0, 1)");
            }
            let started = std::time::Instant::now();
            let em = Emulator::new(seed);
            let topics: Vec<String> = TOPICS.iter().map(|t| format!("{prefix}.{t}")).collect();
            let opts = WriterOptions {
                dir: archive.clone(),
                partitions,
                flush_size,
                compression,
                layout,
                seed,
            };
            let mut w = ArchiveWriter::new(opts, topics).with_context(|| format!("creating {}", archive.display()))?;
            let mut deliveries = 0u64;
            for d in em.deliveries(posts, resend_rate) {
                w.push(0, &d.pin)?;
                w.push(1, &d.geo)?;
                w.push(2, &d.user)?;
                deliveries += 1;
            }
            let records = w.records;
            let files = w.finish()?;
            eprintln!(
                "wrote {} posts as {} deliveries = {} records in {} objects under {} ({:.1} s)",
                thousands(posts),
                thousands(deliveries),
                thousands(records),
                thousands(files),
                archive.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Answers {
            state_dir,
            topology,
            format,
        } => {
            let topo = match load(topology.as_deref()) {
                Ok(t) => t,
                Err(code) => return Ok(code),
            };
            if !replay::is_state_dir(&state_dir) {
                bail!(
                    "{} is not a pinstream state dir (no RocksDB CURRENT file)",
                    state_dir.display()
                );
            }
            let store = store::Store::open(&state_dir, &topo)?;
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
            let mut dead: Box<dyn DeadLetterSink> = match &dead_letter {
                Some(p) => Box::new(FileDeadLetters::create(p).with_context(|| format!("creating {}", p.display()))?),
                None => Box::new(DiscardDeadLetters),
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
            };
            let (engine, s) = replay::replay(topo.clone(), &opts, dead.as_mut())?;
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
                if e.agg.late > 0 || e.agg.unretracted > 0 {
                    eprintln!(
                        "  windowed updates outside retention {} (live windows keep only recent event time), quantile retractions not applied {}",
                        thousands(e.agg.late),
                        thousands(e.agg.unretracted)
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
                eprintln!(
                    "stats: records={} bytes={} seconds={:.3} records_per_s={:.0} mb_per_s={:.1} peak_rss_mb={} dead_letters={}",
                    s.records,
                    s.bytes,
                    secs,
                    s.records as f64 / secs,
                    s.bytes as f64 / 1e6 / secs,
                    rss >> 20,
                    s.dead_letters
                );
            }
            drop(engine);
            drop(temp);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
