//! The `pinstream` command line.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pinstream::emulate::{ArchiveWriter, Compression, Emulator, Layout, WriterOptions, TOPICS};
use pinstream::http;
use pinstream::kafka::KafkaOptions;
use pinstream::live::{self, LiveOptions};
use pinstream::live_handle::LiveHandle;
use pinstream::metrics::Metrics;
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
    /// Print the source positions held in a state dir: per topic-partition,
    /// the offset ranges already applied to the state (JSON lines).
    Positions {
        #[arg(long, env = "PINSTREAM_STATE_DIR", default_value = "./state")]
        state_dir: PathBuf,
        #[arg(long, env = "PINSTREAM_TOPOLOGY")]
        topology: Option<PathBuf>,
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
    /// Generate realistic deliveries into an S3-sink archive (--archive) or a Kafka cluster (--brokers).
    Emulate {
        /// Number of distinct posts
        #[arg(long, required_unless_present = "forever")]
        posts: Option<u64>,
        /// Output archive directory
        #[arg(long, required_unless_present_any = ["brokers", "http"], conflicts_with_all = ["brokers", "http"])]
        archive: Option<PathBuf>,
        /// Send over HTTP as the seeds' scripts did, to this base URL (e.g. http://127.0.0.1:8082):
        /// REST Proxy POSTs, or Kinesis-style PUTs with --kinesis
        #[arg(long, conflicts_with = "brokers")]
        http: Option<String>,
        /// HTTP: PUT /streams/streaming-<prefix>-pin|geo|user/record instead of POST /topics/<topic>
        #[arg(long, requires = "http")]
        kinesis: bool,
        /// HTTP: bearer token to send
        #[arg(long, env = "PINSTREAM_HTTP_TOKEN", hide_env_values = true, requires = "http")]
        http_token: Option<String>,
        /// Kafka bootstrap servers: produce to <prefix>.pin|geo|user instead
        #[arg(long, env = "PINSTREAM_BROKERS")]
        brokers: Option<String>,
        /// Kafka: records per second (0 = as fast as possible)
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        /// Kafka or HTTP: keep producing until interrupted
        #[arg(long)]
        forever: bool,
        /// Kafka: create the topics (and <prefix>.dlq) with this many partitions if missing
        #[arg(long)]
        create_topics: Option<i32>,
        #[command(flatten)]
        kafka: KafkaArgs,
        #[arg(long, default_value_t = 100)]
        seed: u64,
        #[arg(long, env = "PINSTREAM_PREFIX", default_value = DEFAULT_PREFIX)]
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
    /// Run the topology live on Kafka (consumer group, exactly-once effect on state).
    Run {
        /// Config file (TOML; see README). Flags and environment variables win over it.
        #[arg(long, env = "PINSTREAM_CONFIG")]
        config: Option<PathBuf>,
        /// Kafka bootstrap servers
        #[arg(long, env = "PINSTREAM_BROKERS")]
        brokers: Option<String>,
        /// Topic prefix: consumes <prefix>.pin, <prefix>.geo, <prefix>.user
        #[arg(long, env = "PINSTREAM_PREFIX")]
        prefix: Option<String>,
        /// State dir [default: ./state]
        #[arg(long, env = "PINSTREAM_STATE_DIR")]
        state_dir: Option<PathBuf>,
        #[arg(long, env = "PINSTREAM_TOPOLOGY")]
        topology: Option<PathBuf>,
        /// Consumer group (offsets are committed there for lag tools) [default: pinstream]
        #[arg(long, env = "PINSTREAM_GROUP")]
        group: Option<String>,
        /// Commit state (and positions) at least this often, in milliseconds [default: 1000]
        #[arg(long, env = "PINSTREAM_COMMIT_INTERVAL_MS")]
        commit_interval_ms: Option<u64>,
        /// Dead-letter topic [default: <prefix>.dlq]
        #[arg(long, env = "PINSTREAM_DLQ_TOPIC")]
        dlq_topic: Option<String>,
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Exit 0 once every partition is consumed to its end and no record came for this many seconds (batch-like runs, tests)
        #[arg(long)]
        stop_when_idle: Option<f64>,
        #[arg(long, default_value_t = engine::DEFAULT_CACHE_KEYS)]
        cache_keys: usize,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Everything in one process, no external services: an in-process Kafka
    /// mock cluster, the emulator producing into it, and the daemon; prints
    /// the answers as they change and at the end.
    Demo {
        /// Stop after this many posts have been produced and consumed (default: run until Ctrl-C)
        #[arg(long)]
        posts: Option<u64>,
        /// Records per second the emulator produces
        #[arg(long, default_value_t = 600.0)]
        rate: f64,
        /// State dir (default: a temporary one)
        #[arg(long)]
        state_dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[command(flatten)]
        http: HttpArgs,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum AuthKind {
    /// As the librdkafka properties say (PLAINTEXT, SSL, SASL PLAIN/SCRAM via --kafka-config)
    Properties,
    /// MSK IAM: SASL_SSL + OAUTHBEARER, tokens from the AWS credentials chain
    MskIam,
}

/// The HTTP API of `run` and `demo`.
#[derive(clap::Args)]
struct HttpArgs {
    /// HTTP API address ADDR:PORT, or `off` [default: 127.0.0.1:8082]
    #[arg(long, env = "PINSTREAM_HTTP")]
    http: Option<String>,
    /// Bearer token required on the write routes (ingest) and /metrics
    #[arg(long, env = "PINSTREAM_HTTP_TOKEN", hide_env_values = true)]
    http_token: Option<String>,
    /// Largest request body in bytes [default: 4194304]
    #[arg(long, env = "PINSTREAM_HTTP_BODY_LIMIT")]
    http_body_limit: Option<usize>,
    /// Request timeout in milliseconds [default: 30000]
    #[arg(long, env = "PINSTREAM_HTTP_TIMEOUT_MS")]
    http_timeout_ms: Option<u64>,
    /// Requests in flight at once [default: 512]
    #[arg(long, env = "PINSTREAM_HTTP_CONCURRENCY")]
    http_concurrency: Option<usize>,
}

impl HttpArgs {
    /// The server settings, or None for `--http off`.
    fn options(self, file: &pinstream::config::DaemonConfig) -> Result<Option<http::HttpOptions>> {
        use pinstream::config::pick;
        let defaults = http::HttpOptions::default();
        let addr = pick(self.http, file.http.clone()).unwrap_or_else(|| defaults.addr.to_string());
        if addr == "off" {
            return Ok(None);
        }
        let addr = addr
            .parse()
            .with_context(|| format!("--http {addr}: expected ADDR:PORT (e.g. 127.0.0.1:8082) or off"))?;
        Ok(Some(http::HttpOptions {
            addr,
            token: pick(self.http_token, file.http_token.clone()).filter(|t| !t.is_empty()),
            body_limit: pick(self.http_body_limit, file.http_body_limit).unwrap_or(defaults.body_limit),
            timeout: pick(self.http_timeout_ms, file.http_timeout_ms)
                .map(Duration::from_millis)
                .unwrap_or(defaults.timeout),
            concurrency: pick(self.http_concurrency, file.http_concurrency).unwrap_or(defaults.concurrency),
        }))
    }
}

/// Starts the HTTP API next to a live loop (None for `--http off`).
fn start_http(
    opts: Option<http::HttpOptions>,
    topo: &Arc<Topology>,
    handle: &Arc<LiveHandle>,
    kafka: &KafkaOptions,
) -> Result<Option<http::Server>> {
    let Some(opts) = opts else { return Ok(None) };
    let ingest = http::Ingest::new(kafka).context("creating the ingest producer")?;
    let app = http::router(topo.clone(), handle.clone(), Some(ingest), &opts);
    let server = http::Server::start(app, &opts).with_context(|| format!("HTTP API on {}", opts.addr))?;
    eprintln!(
        "http: listening on http://{} (queries /v1/queries, ingest /topics/<topic>, /metrics, /openapi.json){}",
        server.addr(),
        if opts.token.is_some() {
            "; bearer token required on write routes and /metrics"
        } else {
            ""
        }
    );
    Ok(Some(server))
}

/// librdkafka settings shared by the Kafka commands.
#[derive(clap::Args)]
struct KafkaArgs {
    /// Authentication [default: properties]
    #[arg(long, value_enum, env = "PINSTREAM_AUTH")]
    auth: Option<AuthKind>,
    /// AWS region of the MSK cluster (with --auth msk-iam)
    #[arg(long, env = "AWS_REGION")]
    aws_region: Option<String>,
    /// Any librdkafka property, e.g. security.protocol=SASL_SSL (repeatable; wins over the file)
    #[arg(long = "kafka-config", value_name = "KEY=VALUE")]
    kafka_config: Vec<String>,
    /// A Java-style client.properties file of librdkafka properties
    #[arg(long, env = "PINSTREAM_CLIENT_PROPERTIES")]
    client_properties: Option<PathBuf>,
}

impl KafkaArgs {
    fn options(&self, brokers: &str) -> Result<KafkaOptions> {
        self.options_with(brokers, &pinstream::config::DaemonConfig::default())
    }

    /// Flags and environment over the config file (see `config.rs`).
    fn options_with(&self, brokers: &str, file: &pinstream::config::DaemonConfig) -> Result<KafkaOptions> {
        use pinstream::config::pick;
        let file_auth = match file.auth.as_deref() {
            None => None,
            Some("properties") => Some(AuthKind::Properties),
            Some("msk-iam") => Some(AuthKind::MskIam),
            Some(other) => bail!("config file: auth = {other:?}: expected \"properties\" or \"msk-iam\""),
        };
        let region = pick(self.aws_region.clone(), file.aws_region.clone());
        let auth = match (pick(self.auth, file_auth).unwrap_or(AuthKind::Properties), region) {
            (AuthKind::MskIam, Some(region)) => pinstream::kafka::Auth::MskIam { region },
            (AuthKind::MskIam, None) => {
                bail!("--auth msk-iam needs --aws-region (or AWS_REGION, or aws_region in the config file)")
            }
            (AuthKind::Properties, _) => pinstream::kafka::Auth::Properties,
        };
        let mut o = KafkaOptions {
            brokers: brokers.to_string(),
            properties: Vec::new(),
            auth,
        };
        o.properties
            .extend(file.kafka.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(p) = pick(self.client_properties.clone(), file.client_properties.clone()) {
            o.load_properties_file(&p).map_err(anyhow::Error::msg)?;
        }
        for kv in &self.kafka_config {
            o.add_flag(kv).map_err(anyhow::Error::msg)?;
        }
        Ok(o)
    }
}

/// SIGINT/SIGTERM set the flag: the daemon commits and exits 0.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing a signal handler")?;
    }
    Ok(stop)
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

/// Opens an existing state dir with its topology (for `answers`, `positions`).
/// The inner `Err` is an invalid topology's exit code.
fn open_state(state_dir: &Path, topology: Option<&Path>) -> Result<Result<(Topology, store::Store), ExitCode>> {
    let topo = match load(topology) {
        Ok(t) => t,
        Err(code) => return Ok(Err(code)),
    };
    if !replay::is_state_dir(state_dir) {
        bail!(
            "{} is not a pinstream state dir (no RocksDB CURRENT file)",
            state_dir.display()
        );
    }
    let store = store::Store::open(state_dir, &topo)?;
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
            brokers,
            rate,
            forever,
            create_topics,
            kafka,
            http,
            kinesis,
            http_token,
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
            if let Some(url) = http {
                let target = pinstream::emulate::http::HttpTarget {
                    url: url.clone(),
                    kinesis,
                    token: http_token,
                };
                let stop = stop_flag()?;
                let posts = if forever { None } else { posts };
                let sent = pinstream::emulate::http::post(&em, &target, &prefix, posts, rate, resend_rate, &stop)?;
                eprintln!(
                    "sent {} records to {url} ({}, {:.1} s)",
                    thousands(sent),
                    if kinesis {
                        "Kinesis-style PUTs"
                    } else {
                        "REST Proxy POSTs"
                    },
                    started.elapsed().as_secs_f64()
                );
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(brokers) = brokers {
                let opts = kafka.options(&brokers)?;
                let mut topics: Vec<String> = TOPICS.iter().map(|t| format!("{prefix}.{t}")).collect();
                if let Some(n) = create_topics {
                    topics.push(format!("{prefix}.dlq"));
                    pinstream::kafka::create_topics(&opts, &topics, n).context("creating topics")?;
                }
                let stop = stop_flag()?;
                let posts = if forever { None } else { posts };
                let sent = pinstream::emulate::kafka::produce(&em, &opts, &prefix, posts, rate, resend_rate, &stop)?;
                eprintln!(
                    "produced {} records to {prefix}.pin|geo|user ({:.1} s)",
                    thousands(sent),
                    started.elapsed().as_secs_f64()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let (Some(archive), Some(posts)) = (archive, posts) else {
                bail!("--archive needs --posts")
            };
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
        Command::Run {
            config,
            brokers,
            prefix,
            state_dir,
            topology,
            group,
            commit_interval_ms,
            dlq_topic,
            kafka,
            stop_when_idle,
            cache_keys,
            http,
        } => {
            use pinstream::config::{pick, DaemonConfig};
            let file = match &config {
                Some(p) => DaemonConfig::load(p).map_err(anyhow::Error::msg)?,
                None => DaemonConfig::default(),
            };
            let (Some(brokers), Some(prefix)) =
                (pick(brokers, file.brokers.clone()), pick(prefix, file.prefix.clone()))
            else {
                bail!("--brokers and --prefix are required (or PINSTREAM_BROKERS / PINSTREAM_PREFIX, or brokers / prefix in --config)");
            };
            let topology = pick(topology, file.topology.clone());
            let topo = match load(topology.as_deref()) {
                Ok(t) => Arc::new(t),
                Err(code) => return Ok(code),
            };
            let opts = LiveOptions {
                kafka: kafka.options_with(&brokers, &file)?,
                dlq_topic: pick(dlq_topic, file.dlq_topic.clone()).unwrap_or_else(|| format!("{prefix}.dlq")),
                group: pick(group, file.group.clone()).unwrap_or_else(|| "pinstream".into()),
                state_dir: pick(state_dir, file.state_dir.clone()).unwrap_or_else(|| PathBuf::from("./state")),
                commit_interval: Duration::from_millis(
                    pick(commit_interval_ms, file.commit_interval_ms).unwrap_or(1000).max(1),
                ),
                prefix,
                cache_keys,
                stop_when_idle: stop_when_idle.map(Duration::from_secs_f64),
                handle: Some(Arc::new(LiveHandle::new(Arc::new(Metrics::new())))),
            };
            let stop = stop_flag()?;
            let handle = opts.handle.clone().expect("set above");
            let server = start_http(http.options(&file)?, &topo, &handle, &opts.kafka)?;
            let result = live::run(topo, &opts, &stop);
            if let Some(s) = server {
                s.stop();
            }
            let (_engine, stats) = result?;
            let secs = stats.active.as_secs_f64().max(1e-9);
            let h = &stats.latency_ms;
            eprintln!(
                "stopped: {} records, {} dead letters, {} re-deliveries skipped, {} commits",
                thousands(stats.records),
                thousands(stats.dead_letters),
                thousands(stats.skipped),
                stats.commits
            );
            eprintln!(
                "stats: records={} active_seconds={:.3} records_per_s={:.0} latency_ms_p50={} latency_ms_p99={} latency_ms_max={} transit_ms_p50={} transit_ms_p99={} commit_ms_p50={} commit_ms_p99={} peak_rss_mb={}",
                stats.records,
                secs,
                stats.records as f64 / secs,
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max(),
                stats.transit_ms.value_at_quantile(0.5),
                stats.transit_ms.value_at_quantile(0.99),
                stats.commit_us.value_at_quantile(0.5) / 1000,
                stats.commit_us.value_at_quantile(0.99) / 1000,
                replay::peak_rss_bytes().unwrap_or(0) >> 20
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            posts,
            rate,
            state_dir,
            format,
            http,
        } => demo(posts, rate, state_dir, format, http),
        Command::Positions { state_dir, topology } => {
            let (_, store) = match open_state(&state_dir, topology.as_deref())? {
                Ok(opened) => opened,
                Err(code) => return Ok(code),
            };
            let mut all: Vec<_> = store.positions()?.into_iter().collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            for ((topic, partition), ranges) in all {
                println!(
                    "{}",
                    serde_json::json!({"topic": topic, "partition": partition, "ranges": ranges.ranges()})
                );
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
                if e.agg.late > 0 {
                    eprintln!(
                        "  windowed updates outside retention {} (live windows keep only recent event time)",
                        thousands(e.agg.late)
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

/// `pinstream demo`: mock cluster + emulator thread + daemon in one process.
fn demo(posts: Option<u64>, rate: f64, state_dir: Option<PathBuf>, format: Format, http: HttpArgs) -> Result<ExitCode> {
    let topo = Arc::new(pinstream::load_topology(pinstream::PINTEREST_TOPOLOGY).map_err(|e| anyhow::anyhow!("{e:?}"))?);
    let mock = rdkafka::mocking::MockCluster::new(1).context("starting the in-process Kafka mock cluster")?;
    let prefix = DEFAULT_PREFIX;
    for t in TOPICS {
        mock.create_topic(&format!("{prefix}.{t}"), 3, 1)?;
    }
    mock.create_topic(&format!("{prefix}.dlq"), 1, 1)?;
    let brokers = mock.bootstrap_servers();
    eprintln!("demo: in-process Kafka at {brokers}; emulator producing {rate} records/s; Ctrl-C to stop");
    let temp = replay::temp_state_dir()?;
    let dir = state_dir.unwrap_or_else(|| temp.path().to_path_buf());
    let kafka = KafkaOptions {
        brokers: brokers.clone(),
        ..Default::default()
    };
    let stop = stop_flag()?;
    let opts = LiveOptions {
        kafka: kafka.clone(),
        prefix: prefix.to_string(),
        group: "pinstream-demo".into(),
        state_dir: dir,
        commit_interval: Duration::from_millis(500),
        dlq_topic: format!("{prefix}.dlq"),
        cache_keys: engine::DEFAULT_CACHE_KEYS,
        // With --posts: stop once everything produced has been consumed.
        stop_when_idle: posts.map(|_| Duration::from_secs(3)),
        handle: Some(Arc::new(LiveHandle::new(Arc::new(Metrics::new())))),
    };
    let handle = opts.handle.clone().expect("set above");
    let server = start_http(
        http.options(&pinstream::config::DaemonConfig::default())?,
        &topo,
        &handle,
        &kafka,
    )?;
    let (engine, stats) = std::thread::scope(|scope| -> Result<_> {
        let (stop, kafka) = (&stop, &kafka);
        let producer = scope.spawn(move || {
            pinstream::emulate::kafka::produce(&Emulator::new(100), kafka, prefix, posts, rate, 0.23, stop)
        });
        let result = live::run(topo.clone(), &opts, stop);
        stop.store(true, Ordering::Relaxed); // ends a --forever producer
        let sent = producer
            .join()
            .map_err(|_| anyhow::anyhow!("emulator thread panicked"))??;
        eprintln!("demo: produced {} records", thousands(sent));
        Ok(result?)
    })?;
    if let Some(s) = server {
        s.stop();
    }
    eprintln!(
        "demo: consumed {} records, {} dead letters, {} commits",
        thousands(stats.records),
        thousands(stats.dead_letters),
        stats.commits
    );
    print_answers(&query::answers(engine.store(), &topo)?, format)?;
    drop(engine);
    drop(mock);
    Ok(ExitCode::SUCCESS)
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
