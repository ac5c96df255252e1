//! The command line's arguments (clap), and how flags, environment and the
//! config file combine into Kafka and HTTP settings.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use pinstream::engine;
use pinstream::http;
use pinstream::kafka::KafkaOptions;
use pinstream::pinterest::emulate::{Compression, Layout};

/// The seeds' topic prefix (a 12-hex-digit user id).
pub(crate) use pinstream::pinterest::DEFAULT_PREFIX;

#[derive(Parser)]
#[command(
    name = "pinstream",
    version,
    about = "Stateful stream processor for the Pinterest pipeline: clean, join on ind, aggregate in RocksDB, answer the eight questions"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// The spec's JSON object (one line)
    Json,
    /// Aligned tables for people
    Table,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Plan {
    /// Join first, then aggregate the final rows once (temporary state only)
    Batch,
    /// Aggregate record by record
    Incremental,
}

#[derive(Subcommand)]
pub(crate) enum ArchiveCommand {
    /// Read every object (without replaying) and report, per topic-partition, the offsets covered, gaps between consecutive objects (missing records), overlaps (records in two objects) and unreadable objects; exit 1 if there are gaps or unreadable objects
    Check {
        /// A directory holding `topics/`, or s3://bucket/prefix
        archive: PathBuf,
        #[command(flatten)]
        s3: S3Args,
        #[command(flatten)]
        select: SelectArgs,
    },
}

/// Where an s3:// archive is.
#[derive(Args, Clone)]
pub(crate) struct S3Args {
    /// S3-compatible endpoint for an s3:// archive (path-style addressing), e.g. http://127.0.0.1:9000
    #[arg(long, env = "PINSTREAM_S3_ENDPOINT")]
    pub(crate) s3_endpoint: Option<String>,
    /// Region of an s3:// archive (default: the AWS chain: AWS_REGION, profile, instance metadata; else us-east-1)
    #[arg(long)]
    pub(crate) s3_region: Option<String>,
}

/// Which archive objects to read.
#[derive(Args, Clone)]
pub(crate) struct SelectArgs {
    /// Only these partitions, comma-separated (e.g. 0,2)
    #[arg(long, value_delimiter = ',')]
    pub(crate) partitions: Option<Vec<i32>>,
    /// Only objects whose year=/month=/day=[/hour=] directories lie at or after this UTC time (YYYY-MM-DD or YYYY-MM-DDTHH)
    #[arg(long, value_parser = pinstream::source::select::parse_time)]
    pub(crate) from: Option<i64>,
    /// ... and before this UTC time (exclusive): a daily job passes --from DAY --to NEXT_DAY
    #[arg(long, value_parser = pinstream::source::select::parse_time)]
    pub(crate) to: Option<i64>,
    /// Only records whose offsets lie in FROM..TO (TO exclusive; FROM.. or ..TO), in every selected partition
    #[arg(long, value_parser = pinstream::source::select::parse_offsets)]
    pub(crate) offsets: Option<(i64, i64)>,
}

impl SelectArgs {
    /// The selection; an error for `--from` at or after `--to` (which
    /// selected nothing and replayed 0 records without a word).
    pub(crate) fn selection(&self) -> Result<pinstream::source::select::Selection> {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if from >= to {
                bail!("--from must lie before --to (--to is exclusive: a day is --from DAY --to NEXT_DAY)");
            }
        }
        Ok(pinstream::source::select::Selection {
            partitions: self.partitions.clone(),
            from: self.from,
            to: self.to,
            offsets: self.offsets,
        })
    }
}

// Parsed once per process: the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Replay an S3-sink archive through the topology and print the answers.
    Replay {
        /// Archive: a directory holding `topics/`, or s3://bucket/prefix (the S3 sink's topics.dir parent)
        #[arg(long)]
        archive: PathBuf,
        #[command(flatten)]
        s3: S3Args,
        /// Objects downloaded at once from an s3:// archive (S3 answers each GET after tens of ms: many in flight hide it); small objects up to 4 times as many while they total under 4 MB
        #[arg(long, default_value_t = pinstream::source::s3::DEFAULT_IN_FLIGHT)]
        s3_in_flight: usize,
        /// Keys per S3 listing page (S3 returns at most 1,000)
        #[arg(long, default_value_t = 1000, hide = true)]
        s3_page_size: i32,
        /// Replay only these topics: source names (pin,geo,user) or full topic names, comma-separated
        #[arg(long, value_delimiter = ',')]
        topics: Option<Vec<String>>,
        #[command(flatten)]
        select: SelectArgs,
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
        /// Commit state every N records (a kept state is durable at each commit; a killed replay redoes at most N records)
        #[arg(long, default_value_t = 5_000_000)]
        commit_every: usize,
        /// Join keys kept in memory before falling back to RocksDB reads
        #[arg(long, default_value_t = engine::DEFAULT_CACHE_KEYS)]
        cache_keys: usize,
        /// Threads the incremental plan applies on: the join table and the aggregate deltas split by join key, each part on its own thread [default: one per core]
        #[arg(long, env = "PINSTREAM_SHARDS", value_parser = clap::value_parser!(u16).range(1..=64))]
        shards: Option<u16>,
        /// Windowed aggregates leave out records whose event time is further ahead of the wall clock than this (e.g. 5m, 1h)
        #[arg(long, env = "PINSTREAM_MAX_FUTURE_SKEW", default_value = "5m", value_parser = parse_skew)]
        max_future_skew: i64,
        /// How the replay aggregates: `batch` builds the join first and aggregates the final rows once, in parallel; `incremental` keeps aggregates current record by record, as `run` does (a kept --state-dir uses batch only when it starts empty)
        #[arg(long, value_enum, default_value = "batch")]
        plan: Plan,
        /// Fail (exit 1, no answers) if any file is skipped (bad name, wrong topic directory) or unreadable, a topic has no source, or records are missing between objects (gaps)
        #[arg(long)]
        strict: bool,
        /// An object that cannot be read whole (corrupt or cut gzip, refused by the store) is reported, its whole records before the damage count and the rest goes to the dead-letter output as one letter; without it such an object ends the replay with an error naming it
        #[arg(long)]
        skip_bad_objects: bool,
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
    /// Archive tools: `archive check DIR|s3://bucket/prefix`.
    Archive {
        #[command(subcommand)]
        command: ArchiveCommand,
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
    /// Generate realistic deliveries into an S3-sink archive (--archive), a Kafka cluster (--brokers), or over HTTP as the seeds' scripts did (--http).
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
    /// Run the topology live on Kafka (exactly-once effect on state), with the HTTP API.
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
        /// Commit state (and positions) at least this often, from one commit's start to the next, in milliseconds [default: 1000]
        #[arg(long, env = "PINSTREAM_COMMIT_INTERVAL_MS")]
        commit_interval_ms: Option<u64>,
        /// Dead letters: a topic NAME (created with 1 partition if missing), file:PATH (JSON lines, appended), or off (counted only) [default: <prefix>.dlq]
        #[arg(long, env = "PINSTREAM_DLQ", alias = "dlq-topic")]
        dlq: Option<String>,
        /// Delete the state dir's contents and re-read every topic from its start (after a topic was recreated or the cluster changed)
        #[arg(long)]
        reset_positions: bool,
        #[command(flatten)]
        kafka: KafkaArgs,
        /// Exit 0 once every partition is consumed to its end and no record came for this many seconds (batch-like runs, tests)
        #[arg(long)]
        stop_when_idle: Option<f64>,
        #[arg(long, default_value_t = engine::DEFAULT_CACHE_KEYS)]
        cache_keys: usize,
        /// Threads the incremental plan applies on: the join table and the aggregate deltas split by join key, each part on its own thread [default: one per core]
        #[arg(long, env = "PINSTREAM_SHARDS", value_parser = clap::value_parser!(u16).range(1..=64))]
        shards: Option<u16>,
        /// Windowed aggregates leave out records whose event time is further ahead of the wall clock than this (e.g. 5m, 1h)
        #[arg(long, env = "PINSTREAM_MAX_FUTURE_SKEW", default_value = "5m", value_parser = parse_skew)]
        max_future_skew: i64,
        #[command(flatten)]
        http: HttpArgs,
        /// Before consuming, replay this archive (DIR or s3://bucket/prefix, e.g. what --archive-to wrote) into the state, then continue each partition from Kafka after its last archived offset
        #[arg(long, env = "PINSTREAM_BOOTSTRAP_FROM_ARCHIVE")]
        bootstrap_from_archive: Option<PathBuf>,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Everything in one process, no external services: an in-process Kafka
    /// mock cluster, the emulator producing into it, the daemon, and the HTTP
    /// API; prints the answers at the end (Ctrl-C, or --posts reached).
    Demo {
        /// Stop after this many posts have been produced and consumed (default: run until Ctrl-C)
        #[arg(long)]
        posts: Option<u64>,
        /// Records per second the emulator produces
        #[arg(long, default_value_t = 600.0)]
        rate: f64,
        /// State dir (default: a fresh temporary one; a kept one belongs to the demo's in-process broker, which starts empty each time, so reuse needs --reset-positions)
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// With --state-dir: start that state over
        #[arg(long)]
        reset_positions: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Windowed aggregates leave out records whose event time is further ahead of the wall clock than this (e.g. 5m, 1h)
        #[arg(long, env = "PINSTREAM_MAX_FUTURE_SKEW", default_value = "5m", value_parser = parse_skew)]
        max_future_skew: i64,
        #[command(flatten)]
        http: HttpArgs,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
}

/// The archiver (`run --archive-to`): raw consumed records in the S3-sink layout.
#[derive(Args, Clone)]
pub(crate) struct ArchiveArgs {
    /// Write every consumed record to this directory or s3://bucket/prefix in the Confluent S3-sink layout that replay reads (objects written before the commit that covers them)
    #[arg(long, env = "PINSTREAM_ARCHIVE_TO")]
    pub(crate) archive_to: Option<String>,
    /// Records per archive object (the connector's flush.size)
    #[arg(long, default_value_t = 1000)]
    pub(crate) archive_flush_size: usize,
    /// Close an archive object after it has been open this long, even if not full (ms)
    #[arg(long, default_value_t = 60_000)]
    pub(crate) archive_rotate_ms: u64,
    /// Gzip archive objects (.json.gz)
    #[arg(long)]
    pub(crate) archive_gzip: bool,
    /// Archive directories: partition=<p>/ or year=/month=/day=/hour=/ by record time
    #[arg(long, value_enum, default_value = "default")]
    pub(crate) archive_layout: Layout,
    #[command(flatten)]
    pub(crate) s3: S3Args,
}

impl ArchiveArgs {
    pub(crate) fn target(&self) -> Option<(String, pinstream::sink::archive::ArchiveOptions)> {
        use pinstream::sink::archive::{ArchiveLayout, ArchiveOptions};
        let to = self.archive_to.clone()?;
        Some((
            to,
            ArchiveOptions {
                flush_size: self.archive_flush_size.max(1),
                rotate: Duration::from_millis(self.archive_rotate_ms),
                gzip: self.archive_gzip,
                layout: match self.archive_layout {
                    Layout::Default => ArchiveLayout::Default,
                    Layout::Hourly => ArchiveLayout::Hourly,
                },
                s3: pinstream::source::s3::S3Options {
                    endpoint: self.s3.s3_endpoint.clone(),
                    region: self.s3.s3_region.clone(),
                    ..Default::default()
                },
            },
        ))
    }
}

/// `--max-future-skew`: a duration such as `300s`, `5m`, `1h` (seconds if bare).
fn parse_skew(s: &str) -> Result<i64, String> {
    let secs = s.parse::<i64>().ok().or_else(|| pinstream::topology::parse_duration(s));
    secs.filter(|&n| n >= 0)
        .ok_or_else(|| format!("bad duration `{s}` (expected e.g. 300s, 5m, 1h)"))
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum AuthKind {
    /// As the librdkafka properties say (PLAINTEXT, SSL, SASL PLAIN/SCRAM via --kafka-config)
    Properties,
    /// MSK IAM: SASL_SSL + OAUTHBEARER, tokens from the AWS credentials chain
    MskIam,
}

/// The HTTP API of `run` and `demo`.
#[derive(clap::Args)]
pub(crate) struct HttpArgs {
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
    /// Requests in flight at once per class (ingest; reads), more wait up to 2 s then get 503; /health, /ready, /metrics are never limited [default: 256]
    #[arg(long, env = "PINSTREAM_HTTP_CONCURRENCY")]
    http_concurrency: Option<usize>,
    /// Connections one client address may hold at once [default: 64]
    #[arg(long, env = "PINSTREAM_HTTP_MAX_CONNS_PER_CLIENT")]
    http_max_conns_per_client: Option<usize>,
    /// Time allowed for a request's headers, and for its body, in milliseconds [default: 10000]
    #[arg(long, env = "PINSTREAM_HTTP_READ_TIMEOUT_MS")]
    http_read_timeout_ms: Option<u64>,
}

impl HttpArgs {
    /// The server settings, or None for `--http off`.
    pub(crate) fn options(self, file: &pinstream::config::DaemonConfig) -> Result<Option<http::HttpOptions>> {
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
            per_client: pick(self.http_max_conns_per_client, file.http_max_conns_per_client)
                .unwrap_or(defaults.per_client),
            read_timeout: pick(self.http_read_timeout_ms, file.http_read_timeout_ms)
                .map(Duration::from_millis)
                .unwrap_or(defaults.read_timeout),
        }))
    }
}

/// librdkafka settings shared by the Kafka commands.
#[derive(clap::Args)]
pub(crate) struct KafkaArgs {
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
    pub(crate) fn options(&self, brokers: &str) -> Result<KafkaOptions> {
        self.options_with(brokers, &pinstream::config::DaemonConfig::default())
    }

    /// Flags and environment over the config file (see `config.rs`).
    pub(crate) fn options_with(&self, brokers: &str, file: &pinstream::config::DaemonConfig) -> Result<KafkaOptions> {
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
