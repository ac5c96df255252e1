//! `pinstream run`: the topology, live, on Kafka.
//!
//! Exactly-once effect on state without Kafka transactions: the Kafka
//! source ([`KafkaSource`]) assigns every partition at the position stored
//! in the state, and the driver loop (`engine::driver`) marks each
//! consumed record's position and commits state and positions in one
//! RocksDB batch (through the WAL), written while the next records are
//! applied and reported (group offsets, latency, metrics) once it has
//! landed; the next commit waits for it. After a crash
//! (even SIGKILL) the records after the last commit are consumed again and
//! nothing before it is counted twice; a record delivered again anyway is
//! skipped by position.
//!
//! Dead letters go to the `--dlq` sink, flushed before the commit that
//! covers their positions.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::driver::{self, BatchDone, CommitDone, CommitPolicy, Observer, RunStats, Sinks};
use crate::engine::{Engine, EngineStats};
use crate::kafka::KafkaOptions;
use crate::live_handle::{BatchCounts, LiveHandle};
use crate::sink::archive::{ArchiveOptions, ArchiveSink, Archiver};
pub use crate::sink::kafka::DlqTarget;
use crate::source::kafka::{KafkaSource, KafkaSourceOptions};
use crate::state::store::{Durability, StoreError};
use crate::topology::Topology;

/// What stops the daemon: the driver's errors (state, source, sink), each
/// classified by `is_retryable` for a supervisor.
pub use crate::engine::driver::DriverError as LiveError;

#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub kafka: KafkaOptions,
    pub prefix: String,
    pub group: String,
    pub state_dir: PathBuf,
    pub commit_interval: Duration,
    /// Where dead letters go (`<prefix>.dlq` by default).
    pub dlq: DlqTarget,
    /// Delete the state and re-read every topic from its start.
    pub reset_positions: bool,
    pub cache_keys: usize,
    /// Threads the engine applies on (`None`: one per core).
    pub shards: Option<usize>,
    /// Seconds an event time may lie ahead of the wall clock (windows).
    pub max_future_skew: i64,
    /// Stop (and exit 0) after this long without a new record.
    pub stop_when_idle: Option<Duration>,
    /// Shared with the HTTP server: store, readiness, metrics.
    pub handle: Option<Arc<LiveHandle>>,
    /// Archive the raw consumed records here (a directory or s3://…).
    pub archive_to: Option<(String, ArchiveOptions)>,
}

/// Feeds the HTTP server's metrics, per batch and per commit.
struct Metered {
    handle: Arc<LiveHandle>,
    topics: Vec<String>,
    batch: BatchCounts,
}

impl Observer for Metered {
    fn on_batch(&mut self, b: &BatchDone<'_>) {
        self.batch.consumed[b.source] += b.delivered;
        self.batch.skipped[b.source] += b.skipped;
        self.batch.dead[b.source] += b.dead;
    }

    fn on_commit_started(&mut self, engine: &EngineStats) {
        self.batch.commit_started(engine);
    }

    fn on_commit(&mut self, c: &CommitDone<'_>) {
        let m = &self.handle.metrics;
        m.commit_duration.record_us(c.duration.as_micros() as u64);
        m.end_to_end_latency
            .record_all_us(c.latencies_ms.iter().map(|ms| ms * 1000));
        self.batch.flush(m, &self.topics);
    }
}

/// Runs until `stop` is set (or the idle limit passes); commits on the way
/// out. The stats' `records()` are the records consumed and not already in
/// the state.
pub fn run(topo: Arc<Topology>, opts: &LiveOptions, stop: &AtomicBool) -> Result<(Engine, RunStats), LiveError> {
    if opts.reset_positions && crate::replay::is_state_dir(&opts.state_dir) {
        tracing::warn!(
            "--reset-positions: deleting the state in {} and re-reading every topic from its start",
            opts.state_dir.display()
        );
        std::fs::remove_dir_all(&opts.state_dir).map_err(|e| StoreError::Corrupt {
            path: opts.state_dir.clone(),
            what: format!("cannot delete it for --reset-positions: {e}"),
        })?;
    }
    let mut engine = Engine::open(topo.clone(), &opts.state_dir, opts.cache_keys, Durability::Wal)?;
    engine.set_max_future_skew(opts.max_future_skew);
    engine.set_shards(opts.shards.unwrap_or_else(crate::engine::shard::default_shards))?;
    let handle = opts.handle.clone();
    if let Some(h) = &handle {
        h.set_store(engine.shared_store());
    }
    let topics: Vec<String> = topo.sources.iter().map(|s| s.topic_for(&opts.prefix)).collect();
    let source_of: HashMap<String, usize> = topics.iter().enumerate().map(|(i, t)| (t.clone(), i)).collect();
    tracing::info!("kafka: {}", opts.kafka.describe());
    let source = KafkaSource::open(
        KafkaSourceOptions {
            kafka: opts.kafka.clone(),
            topics: topics.clone(),
            group: opts.group.clone(),
            state_dir: opts.state_dir.clone(),
            stop_when_idle: opts.stop_when_idle,
            metrics: handle.as_ref().map(|h| h.metrics.clone()),
        },
        &engine,
        stop,
    )?;
    let mut dead = opts.dlq.open(&opts.kafka)?;
    tracing::info!("dead letters go to {}", opts.dlq.describe());
    if let Some(h) = &handle {
        h.set_ready(true);
    }
    let policy = CommitPolicy {
        every_records: None,
        interval: Some(opts.commit_interval),
        durable_each: true,
    };
    let mut archiver = match &opts.archive_to {
        Some((to, o)) => {
            tracing::info!("archiving consumed records to {to}");
            Some(Archiver::open(to, o.clone()).map_err(LiveError::from)?)
        }
        None => None,
    };
    let sinks = Sinks {
        dead: dead.as_mut(),
        archive: archiver.as_mut().map(|a| a as &mut ArchiveSink),
        bad_objects: driver::BadObjects::Fail,
    };
    let run = match &handle {
        Some(h) => {
            let mut metered = Metered {
                handle: h.clone(),
                batch: BatchCounts::new(topics.len()),
                topics,
            };
            driver::drive(&mut engine, source, &source_of, sinks, policy, &mut metered)
        }
        None => driver::drive(&mut engine, source, &source_of, sinks, policy, &mut driver::Quiet),
    };
    if let Some(h) = &handle {
        h.set_ready(false);
    }
    Ok((engine, run?))
}
