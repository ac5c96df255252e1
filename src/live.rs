//! `pinstream run`: the topology, live, on Kafka.
//!
//! Exactly-once effect on state without Kafka transactions: every consumed
//! record's position is marked in the engine, and [`Engine::sync`] writes the
//! state changes and the positions in one RocksDB batch (through the WAL).
//! On start the consumer is assigned every partition of the source topics at
//! the position stored in the state, so after a crash (even SIGKILL) the
//! records after the last commit are consumed again and nothing before it is
//! counted twice; a record that is re-delivered anyway is skipped by
//! [`Engine::is_done`]. The group's committed offsets follow the state
//! commits, for lag tools only: they are never read back.
//!
//! Dead letters go to a topic with the reason and origin in headers; they are
//! flushed to Kafka before the commit that covers their positions.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

pub use crate::dlq::DlqTarget;
use crate::dlq::{ensure_dlq_topic, DlqSink};
use crate::engine::Engine;
use crate::kafka::{KafkaContext, KafkaOptions};
use crate::live_handle::{BatchCounts, LiveHandle};
use crate::pipeline::prepare;
use crate::store::{Durability, StoreError};
use crate::topology::Topology;

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error("topic `{topic}` does not exist on {brokers}: create it (e.g. with 3 partitions) or check --prefix")]
    UnknownTopic { topic: String, brokers: String },
    #[error(
        "dead letters could not be written to `{topic}`: {failed} failed deliveries; state not committed past them"
    )]
    DeadLetters { topic: String, failed: u64 },
    #[error("dead letters could not be written to {path}: {source}")]
    DeadLetterFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the dead-letter topic `{topic}` does not exist and could not be created ({reason}); \
         create it, or pass --dlq file:PATH (JSON lines) or --dlq off (count only)"
    )]
    NoDlqTopic { topic: String, reason: String },
    #[error(
        "refusing to start: the positions in state dir {state_dir} do not belong to these topics:\n{details}\n\
         To re-read every topic from its start into a fresh state, run again with --reset-positions; or use a new --state-dir"
    )]
    SourceMismatch { state_dir: PathBuf, details: String },
}

impl LiveError {
    /// Whether a supervisor should restart the daemon (broker trouble) or
    /// give up (configuration, corruption).
    pub fn is_retryable(&self) -> bool {
        match self {
            LiveError::Store(e) => e.is_retryable(),
            LiveError::Kafka(_) | LiveError::DeadLetters { .. } | LiveError::DeadLetterFile { .. } => true,
            LiveError::UnknownTopic { .. } | LiveError::NoDlqTopic { .. } | LiveError::SourceMismatch { .. } => false,
        }
    }
}

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
    /// Seconds an event time may lie ahead of the wall clock (windows).
    pub max_future_skew: i64,
    /// Stop (and exit 0) after this long without a new record.
    pub stop_when_idle: Option<Duration>,
    /// Shared with the HTTP server: store, readiness, metrics.
    pub handle: Option<Arc<LiveHandle>>,
}

/// Counters of a live run.
#[derive(Debug, Clone)]
pub struct LiveStats {
    pub records: u64,
    pub skipped: u64,
    pub dead_letters: u64,
    pub commits: u64,
    /// End-to-end latency in ms: the record's Kafka timestamp (produce time)
    /// to the moment the commit that covers it is durable.
    pub latency_ms: hdrhistogram::Histogram<u64>,
    /// Produce time to the moment the daemon polled the record, in ms.
    pub transit_ms: hdrhistogram::Histogram<u64>,
    /// Wall time of each commit (dead-letter flush + durable state write), µs.
    pub commit_us: hdrhistogram::Histogram<u64>,
    /// From the first record consumed to the last.
    pub active: Duration,
}

impl Default for LiveStats {
    fn default() -> Self {
        LiveStats {
            records: 0,
            skipped: 0,
            dead_letters: 0,
            commits: 0,
            latency_ms: hdrhistogram::Histogram::new_with_bounds(1, 3_600_000, 3).expect("valid bounds"),
            transit_ms: hdrhistogram::Histogram::new_with_bounds(1, 3_600_000, 3).expect("valid bounds"),
            commit_us: hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            active: Duration::ZERO,
        }
    }
}

/// Logs a recurring Kafka error at most once per interval.
struct Throttle {
    last: HashMap<String, Instant>,
}

impl Throttle {
    fn warn(&mut self, what: String) {
        let key: String = what.chars().take(60).collect();
        if self
            .last
            .get(&key)
            .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
        {
            tracing::warn!("{what} (librdkafka keeps retrying; nothing is lost: positions are in the state)");
            self.last.insert(key, Instant::now());
        }
    }
}

fn topic_partitions(
    consumer: &BaseConsumer<KafkaContext>,
    brokers: &str,
    topics: &[String],
    stop: &AtomicBool,
) -> Result<Vec<(String, i32)>, LiveError> {
    let mut backoff = Duration::from_millis(500);
    loop {
        match consumer.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(md) => {
                let mut out = Vec::new();
                for t in topics {
                    let found = md
                        .topics()
                        .iter()
                        .find(|m| m.name() == t && m.error().is_none() && !m.partitions().is_empty());
                    match found {
                        Some(m) => out.extend(m.partitions().iter().map(|p| (t.clone(), p.id()))),
                        None => {
                            return Err(LiveError::UnknownTopic {
                                topic: t.clone(),
                                brokers: brokers.into(),
                            })
                        }
                    }
                }
                return Ok(out);
            }
            Err(e) => {
                tracing::warn!(
                    "cannot reach the brokers at {brokers} ({e}); retrying in {:.1} s",
                    backoff.as_secs_f64()
                );
                let until = Instant::now() + backoff;
                while Instant::now() < until {
                    if stop.load(Ordering::Relaxed) {
                        return Err(LiveError::Kafka(e));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// When a record was produced: the emulator's `pinstream.produced_ms` header
/// if present, else the Kafka timestamp.
fn produced_ms(msg: &rdkafka::message::BorrowedMessage<'_>) -> Option<i64> {
    use rdkafka::message::Headers;
    let from_header = msg.headers().and_then(|h| {
        h.iter()
            .find(|x| x.key == "pinstream.produced_ms")
            .and_then(|x| std::str::from_utf8(x.value?).ok()?.parse().ok())
    });
    from_header.or_else(|| msg.timestamp().to_millis())
}

/// The partitions whose end the state does not hold yet, as
/// `topic/partition: state at N, log ends at E` (empty: caught up). The end
/// is the high watermark, checked by reading where a broker reports it low
/// (see `source_check::log_ends`).
fn behind(
    consumer: &BaseConsumer<KafkaContext>,
    kafka: &crate::kafka::KafkaOptions,
    assigned: &TopicPartitionList,
    engine: &Engine,
) -> Vec<String> {
    let asked: Vec<(String, i32, i64)> = assigned
        .elements()
        .iter()
        .map(|e| {
            let at = engine
                .positions()
                .get(e.topic(), e.partition())
                .and_then(|r| r.ranges().last())
                .map_or(0, |r| r.1);
            (e.topic().to_string(), e.partition(), at)
        })
        .collect();
    let ends = crate::source_check::log_ends(consumer, kafka, &asked, Duration::from_secs(3));
    asked
        .into_iter()
        .zip(ends)
        .filter_map(|((t, p, at), end)| {
            tracing::debug!("{t}/{p}: state at {at}, log ends at {end:?}");
            match end {
                // An empty partition is caught up only if the state holds
                // nothing of it either: a broker that has just restarted may
                // report 0 or -1 for a log it has not loaded yet.
                // Regression: tansu_broker_stopped_and_restarted_mid_run_loses_nothing
                // (the daemon stopped after 3,874 of 15,564 records).
                Some(end) if (end > 0 && at >= end) || (end == 0 && at == 0) => None,
                Some(end) => Some(format!("{t}/{p}: state at {at}, log ends at {end}")),
                None => Some(format!("{t}/{p}: end unknown (broker unreachable)")),
            }
        })
        .collect()
}

/// Runs until `stop` is set (or the idle limit passes); commits on the way out.
pub fn run(topo: Arc<Topology>, opts: &LiveOptions, stop: &AtomicBool) -> Result<(Engine, LiveStats), LiveError> {
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
    let handle = opts.handle.clone();
    if let Some(h) = &handle {
        h.set_store(engine.shared_store());
    }
    let topics: Vec<String> = topo.sources.iter().map(|s| s.topic_for(&opts.prefix)).collect();
    let source_of: HashMap<&str, usize> = topics.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    tracing::info!("kafka: {}", opts.kafka.describe());

    let mut cfg: ClientConfig = opts.kafka.client_config_with(&[
        // Latency: don't let a broker hold a fetch for 500 ms (librdkafka's
        // default) when little is waiting. Some brokers (tansu) hold every
        // fetch for the whole wait even when records are there, so this is
        // the floor of produce-to-state latency: 10 ms measured p99 transit
        // 41-104 ms at 10k records/s against tansu, 109+ ms with 50.
        ("fetch.wait.max.ms", "10"),
        // Throughput with short fetches: keep more prefetched (still capped
        // by queued.max.messages.kbytes): 190k -> 240k records/s measured.
        ("queued.min.messages", "1000000"),
    ]);
    cfg.set("group.id", &opts.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    let mut context = opts.kafka.context();
    if let Some(h) = &handle {
        // Consumer lag per partition comes from librdkafka's statistics.
        cfg.set("statistics.interval.ms", "1000");
        context.metrics = Some(h.metrics.clone());
    }
    let consumer: BaseConsumer<KafkaContext> = cfg.create_with_context(context)?;
    let parts = topic_partitions(&consumer, &opts.kafka.brokers, &topics, stop)?;
    crate::source_check::check_source_identity(&consumer, &opts.kafka, &engine, &parts, &opts.state_dir)?;
    if let DlqTarget::Topic(t) = &opts.dlq {
        ensure_dlq_topic(&consumer, &opts.kafka, t)?;
    }
    tracing::info!("dead letters go to {}", opts.dlq.describe());
    let mut tpl = TopicPartitionList::new();
    // Where each resumed partition must start; checked on its first record.
    let mut resume_check: HashMap<(String, i32), i64> = HashMap::new();
    for (t, p) in &parts {
        let stored = engine
            .positions()
            .get(t, *p)
            .and_then(|r| r.ranges().last().map(|x| x.1));
        let offset = match stored {
            Some(next) => {
                resume_check.insert((t.clone(), *p), next);
                Offset::Offset(next)
            }
            None => Offset::Beginning,
        };
        tpl.add_partition_offset(t, *p, offset)?;
    }
    consumer.assign(&tpl)?;
    if let Some(h) = &handle {
        h.set_ready(true);
    }
    tracing::info!("consuming {} partitions of {}", tpl.count(), topics.join(", "));

    let mut dlq = DlqSink::open(opts)?;

    let mut stats = LiveStats::default();
    let mut throttle = Throttle { last: HashMap::new() };
    let mut last_commit = Instant::now();
    let mut last_record = Instant::now();
    let mut next_offsets: HashMap<(String, i32), i64> = HashMap::new();
    // Produce timestamps (ms) of the records in the pending commit.
    let mut pending_ts: Vec<i64> = Vec::new();
    let mut first_record: Option<Instant> = None;
    let mut batch = BatchCounts::new(topics.len());
    let commit = |engine: &mut Engine,
                  dlq: &mut DlqSink,
                  next: &mut HashMap<(String, i32), i64>,
                  stats: &mut LiveStats,
                  pending_ts: &mut Vec<i64>,
                  batch: &mut BatchCounts|
     -> Result<(), LiveError> {
        let started = Instant::now();
        dlq.flush()?;
        engine.sync()?;
        stats.commits += 1;
        stats.commit_us.saturating_record(started.elapsed().as_micros() as u64);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let latencies_ms: Vec<u64> = pending_ts.drain(..).map(|ts| (now_ms - ts).max(0) as u64).collect();
        for &ms in &latencies_ms {
            stats.latency_ms.saturating_record(ms);
        }
        if let Some(h) = &handle {
            let m = &h.metrics;
            m.commit_duration.record_us(started.elapsed().as_micros() as u64);
            m.end_to_end_latency
                .record_all_us(latencies_ms.iter().map(|ms| ms * 1000));
            batch.flush(m, &topics, &engine.stats);
        }
        if !next.is_empty() {
            let mut group = TopicPartitionList::new();
            for ((t, p), o) in next.drain() {
                group.add_partition_offset(&t, p, Offset::Offset(o))?;
            }
            if let Err(e) = consumer.commit(&group, CommitMode::Async) {
                tracing::debug!("group offset commit failed (lag tools only): {e}");
            }
        }
        Ok(())
    };

    while !stop.load(Ordering::Relaxed) {
        // A short poll keeps commits on schedule (latency = wait for commit).
        match consumer.poll(Duration::from_millis(20)) {
            Some(Ok(msg)) => {
                last_record = Instant::now();
                let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
                let Some(&src) = source_of.get(topic) else { continue };
                if let Some(expected) = resume_check.remove(&(topic.to_string(), partition)) {
                    if offset > expected {
                        // The broker skipped records after our resume point
                        // (seen with brokers that fetch by whole batches).
                        // Re-read the partition: records already in the state
                        // are skipped by position, so nothing counts twice.
                        // Regression: tansu_live_answers_equal_replay_and_survive_sigkill.
                        tracing::warn!("{topic}/{partition}: asked for offset {expected}, got {offset}; re-reading the partition from its start");
                        consumer.seek(topic, partition, Offset::Beginning, Duration::from_secs(10))?;
                        continue;
                    }
                }
                batch.consumed[src] += 1;
                if engine.is_done(topic, partition, offset) {
                    stats.skipped += 1;
                    batch.skipped[src] += 1;
                } else {
                    stats.records += 1;
                    let payload = msg.payload().unwrap_or_default();
                    match prepare(&topo, src, payload) {
                        Ok(p) => engine.process(src, &p.key, p.row)?,
                        Err(reason) => {
                            stats.dead_letters += 1;
                            batch.dead[src] += 1;
                            dlq.send(&reason, topic, partition, offset, payload)?;
                        }
                    }
                    engine.mark(topic, partition, offset);
                    if let Some(ts) = produced_ms(&msg) {
                        let now_ms = chrono::Utc::now().timestamp_millis();
                        stats.transit_ms.saturating_record((now_ms - ts).max(0) as u64);
                        pending_ts.push(ts);
                    }
                    first_record.get_or_insert_with(Instant::now);
                    stats.active = first_record.map(|f| f.elapsed()).unwrap_or_default();
                }
                next_offsets.insert((topic.to_string(), partition), offset + 1);
            }
            Some(Err(e)) => throttle.warn(format!("kafka: {e}")),
            None => {}
        }
        if last_commit.elapsed() >= opts.commit_interval && engine.pending() > 0 {
            commit(
                &mut engine,
                &mut dlq,
                &mut next_offsets,
                &mut stats,
                &mut pending_ts,
                &mut batch,
            )?;
            last_commit = Instant::now();
        }
        if opts.stop_when_idle.is_some_and(|d| last_record.elapsed() >= d) {
            // Idle is not enough (a slow start looks idle too): stop only once
            // every partition's high watermark is in the state.
            let lagging = behind(&consumer, &opts.kafka, &tpl, &engine);
            if lagging.is_empty() {
                tracing::info!(
                    "caught up, no new record for {:?}: stopping",
                    opts.stop_when_idle.unwrap_or_default()
                );
                break;
            }
            tracing::warn!("idle but not caught up: {}", lagging.join("; "));
            last_record = Instant::now();
        }
    }
    commit(
        &mut engine,
        &mut dlq,
        &mut next_offsets,
        &mut stats,
        &mut pending_ts,
        &mut batch,
    )?;
    if let Some(h) = &handle {
        h.set_ready(false);
    }
    Ok((engine, stats))
}
