//! The Kafka source: every partition of the source topics, assigned (no
//! group rebalancing) at the position the state holds.
//!
//! Invariants:
//! - Positions come from the state only: each partition starts at the end
//!   of its last applied range, or at the beginning if the state has none.
//!   The consumer group's offsets are written after each durable commit
//!   ([`Source::committed`]) for lag tools and never read back.
//! - A broker that fetches by whole batches may answer a resume offset with
//!   a later one; the partition is then re-read from its start (the driver
//!   skips what the state holds), so nothing is lost.
//! - With `stop_when_idle`, the source ends only when no record came for
//!   that long *and* every partition's log end is delivered (a slow start
//!   looks idle too).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::{Batch, Poll, RawRecord, Source, SourceError};
use crate::engine::Engine;
use crate::kafka::{KafkaContext, KafkaOptions};
use crate::metrics::Metrics;
use crate::model::offsets::Positions;

/// Most records taken from the consumer's queue per poll.
const MAX_POLL_RECORDS: usize = 2000;

/// What the Kafka source needs to know.
#[derive(Clone)]
pub struct KafkaSourceOptions {
    pub kafka: KafkaOptions,
    /// The source topics (prefix applied).
    pub topics: Vec<String>,
    pub group: String,
    /// State dir (named in mismatch errors).
    pub state_dir: PathBuf,
    /// End after this long without a record, once caught up.
    pub stop_when_idle: Option<Duration>,
    /// Consumer lag per partition goes here (librdkafka statistics).
    pub metrics: Option<Arc<Metrics>>,
}

pub struct KafkaSource<'a> {
    consumer: BaseConsumer<KafkaContext>,
    opts: KafkaSourceOptions,
    /// Every partition of the source topics.
    parts: Vec<(String, i32)>,
    assigned: TopicPartitionList,
    /// Where each resumed partition must start; checked on its first record.
    resume_check: HashMap<(String, i32), i64>,
    /// Next offset per partition: the state's, then what was delivered.
    next: HashMap<(String, i32), i64>,
    ready: VecDeque<Batch>,
    last_record: Instant,
    throttle: Throttle,
    stop: &'a AtomicBool,
}

impl<'a> KafkaSource<'a> {
    /// Connects and checks that the state's positions belong to these
    /// topics (`check::check_source_identity`); [`Source::resume`] then
    /// assigns every partition at the position the state holds.
    pub fn open(opts: KafkaSourceOptions, engine: &Engine, stop: &'a AtomicBool) -> Result<Self, SourceError> {
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
        if let Some(m) = &opts.metrics {
            cfg.set("statistics.interval.ms", "1000");
            context.metrics = Some(m.clone());
        }
        let consumer: BaseConsumer<KafkaContext> = cfg.create_with_context(context)?;
        let parts = topic_partitions(&consumer, &opts.kafka.brokers, &opts.topics, stop)?;
        super::check::check_source_identity(&consumer, &opts.kafka, engine, &parts, &opts.state_dir)?;
        Ok(KafkaSource {
            consumer,
            opts,
            parts,
            assigned: TopicPartitionList::new(),
            resume_check: HashMap::new(),
            next: HashMap::new(),
            ready: VecDeque::new(),
            last_record: Instant::now(),
            throttle: Throttle { last: HashMap::new() },
            stop,
        })
    }

    /// Takes what the consumer has (waiting up to 20 ms for the first).
    fn fill(&mut self) -> Result<(), SourceError> {
        let polled_ms = chrono::Utc::now().timestamp_millis();
        for i in 0..MAX_POLL_RECORDS {
            // A short poll keeps commits on schedule (latency = wait for commit).
            let wait = if i == 0 {
                Duration::from_millis(20)
            } else {
                Duration::ZERO
            };
            let msg = match self.consumer.poll(wait) {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    self.throttle.warn(format!("kafka: {e}"));
                    break;
                }
                None => break,
            };
            let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
            // Per record nothing is allocated but the payload's copy: the
            // resume check is empty after each partition's first record,
            // and `next` is updated per batch below.
            let expected = if self.resume_check.is_empty() {
                None
            } else {
                self.resume_check.remove(&(topic.to_string(), partition))
            };
            if let Some(expected) = expected {
                if offset > expected {
                    // The broker skipped records after our resume point
                    // (seen with brokers that fetch by whole batches).
                    // Re-read the partition: records already in the state
                    // are skipped by position, so nothing counts twice.
                    // Regression: tansu_live_answers_equal_replay_and_survive_sigkill.
                    tracing::warn!("{topic}/{partition}: asked for offset {expected}, got {offset}; re-reading the partition from its start");
                    self.consumer
                        .seek(topic, partition, Offset::Beginning, Duration::from_secs(10))?;
                    // Records of this partition already taken are stale now.
                    self.ready.retain(|b| !(b.topic == topic && b.partition == partition));
                    continue;
                }
            }
            let record = RawRecord {
                offset,
                bytes: msg.payload().unwrap_or_default().to_vec(),
                produced_ms: produced_ms(&msg),
            };
            match self.ready.back_mut() {
                Some(b) if b.topic == topic && b.partition == partition => b.records.push(record),
                _ => self.ready.push_back(Batch {
                    topic: topic.to_string(),
                    partition,
                    records: vec![record],
                    polled_ms: Some(polled_ms),
                    ..Default::default()
                }),
            }
        }
        // `fill` runs only once `ready` is drained: every batch in it is
        // from this call.
        if !self.ready.is_empty() {
            self.last_record = Instant::now();
        }
        for b in &self.ready {
            if let Some(last) = b.records.last() {
                let n = self.next.entry((b.topic.clone(), b.partition)).or_insert(0);
                *n = (*n).max(last.offset + 1);
            }
        }
        Ok(())
    }

    /// The partitions whose end is not delivered yet, as `topic/partition:
    /// state at N, log ends at E` (empty: caught up). The end is the high
    /// watermark, checked by reading where a broker reports it low (see
    /// `check::log_ends`).
    fn behind(&self) -> Vec<String> {
        let asked: Vec<(String, i32, i64)> = self
            .assigned
            .elements()
            .iter()
            .map(|e| {
                let at = self
                    .next
                    .get(&(e.topic().to_string(), e.partition()))
                    .copied()
                    .unwrap_or(0);
                (e.topic().to_string(), e.partition(), at)
            })
            .collect();
        let ends = super::check::log_ends(&self.consumer, &self.opts.kafka, &asked, Duration::from_secs(3));
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
}

impl Source for KafkaSource<'_> {
    fn resume(&mut self, state: &Positions) -> Result<(), SourceError> {
        let mut assigned = TopicPartitionList::new();
        for (t, p) in &self.parts {
            let stored = state.get(t, *p).and_then(|r| r.ranges().last().map(|x| x.1));
            let offset = match stored {
                Some(n) => {
                    self.resume_check.insert((t.clone(), *p), n);
                    self.next.insert((t.clone(), *p), n);
                    Offset::Offset(n)
                }
                None => Offset::Beginning,
            };
            assigned.add_partition_offset(t, *p, offset)?;
        }
        self.consumer.assign(&assigned)?;
        tracing::info!(
            "consuming {} partitions of {}",
            assigned.count(),
            self.opts.topics.join(", ")
        );
        self.assigned = assigned;
        self.last_record = Instant::now();
        Ok(())
    }

    fn poll(&mut self) -> Result<Poll, SourceError> {
        if self.ready.is_empty() {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(Poll::Done);
            }
            self.fill()?;
        }
        if let Some(b) = self.ready.pop_front() {
            return Ok(Poll::Batch(b));
        }
        if let Some(idle) = self.opts.stop_when_idle {
            if self.last_record.elapsed() >= idle {
                let lagging = self.behind();
                if lagging.is_empty() {
                    tracing::info!("caught up, no new record for {idle:?}: stopping");
                    return Ok(Poll::Done);
                }
                tracing::warn!("idle but not caught up: {}", lagging.join("; "));
                self.last_record = Instant::now();
            }
        }
        Ok(Poll::Idle)
    }

    fn committed(&mut self, next: &[((String, i32), i64)]) {
        if next.is_empty() {
            return;
        }
        let mut group = TopicPartitionList::new();
        for ((t, p), o) in next {
            if group.add_partition_offset(t, *p, Offset::Offset(*o)).is_err() {
                return;
            }
        }
        if let Err(e) = self.consumer.commit(&group, CommitMode::Async) {
            tracing::debug!("group offset commit failed (lag tools only): {e}");
        }
    }
}

/// Every partition of `topics`, retrying while the brokers are unreachable.
fn topic_partitions(
    consumer: &BaseConsumer<KafkaContext>,
    brokers: &str,
    topics: &[String],
    stop: &AtomicBool,
) -> Result<Vec<(String, i32)>, SourceError> {
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
                            return Err(SourceError::UnknownTopic {
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
                        return Err(SourceError::Kafka(e));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// When a record was produced: the `pinstream.produced_ms` header (set by
/// pinstream's own producers) if present, else the Kafka timestamp.
fn produced_ms(msg: &BorrowedMessage<'_>) -> Option<i64> {
    let from_header = msg.headers().and_then(|h| {
        h.iter()
            .find(|x| x.key == crate::kafka::producer::PRODUCED_MS_HEADER)
            .and_then(|x| std::str::from_utf8(x.value?).ok()?.parse().ok())
    });
    from_header.or_else(|| msg.timestamp().to_millis())
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
