//! What the brokers say about a state's positions: the I/O half of
//! `identity.rs` (which decides). Run once at start, before anything is
//! consumed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::SourceError;
use crate::engine::Engine;
use crate::kafka::{KafkaContext, KafkaOptions};

/// Where each partition's log ends, as far as these checks need it: the
/// reported high watermark, raised to what reading proves. Some brokers
/// (tansu 0.6) report the last batch's base offset + 1 as the high
/// watermark, below records they serve, and serve nothing at or past it;
/// a fetch of the offset just below it returns that whole last batch. So
/// for every partition whose reported end is at or below `at` (what the
/// state holds), one probe consumer reads from just below the reported end
/// for up to `wait` and takes the largest offset it sees + 1.
/// Returns, per `(topic, partition, at)` asked, the end (None: unknown).
pub(crate) fn log_ends(
    consumer: &BaseConsumer<KafkaContext>,
    kafka: &KafkaOptions,
    asked: &[(String, i32, i64)],
    wait: Duration,
) -> Vec<Option<i64>> {
    let mut ends: Vec<Option<i64>> = asked
        .iter()
        .map(|(t, p, _)| {
            consumer
                .fetch_watermarks(t, *p, Duration::from_secs(5))
                .ok()
                .map(|w| w.1)
        })
        .collect();
    // One probe per topic: librdkafka's partition EOF names only the partition.
    let mut probes: Vec<(BaseConsumer<KafkaContext>, HashMap<i32, usize>)> = Vec::new();
    let mut topics: Vec<&str> = asked.iter().map(|(t, _, _)| t.as_str()).collect();
    topics.sort_unstable();
    topics.dedup();
    for topic in topics {
        let mut tpl = TopicPartitionList::new();
        let mut probed = HashMap::new();
        for (i, (t, p, at)) in asked.iter().enumerate() {
            let Some(high) = ends[i] else { continue };
            if t == topic
                && high > 0
                && high <= *at
                && tpl.add_partition_offset(t, *p, Offset::Offset(high - 1)).is_ok()
            {
                probed.insert(*p, i);
            }
        }
        if probed.is_empty() {
            continue;
        }
        let probe: Result<BaseConsumer<KafkaContext>, _> = kafka
            .client_config()
            .set("group.id", "pinstream-log-end-probe")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "error")
            .set("enable.partition.eof", "true")
            .create_with_context(kafka.context());
        if let Ok(probe) = probe {
            if probe.assign(&tpl).is_ok() {
                probes.push((probe, probed));
            }
        }
    }
    // A partition is settled once it shows a record past `at` (the state is
    // behind it) or its end of log (librdkafka's partition EOF, which a
    // broker with a right watermark gives at once).
    let mut open: usize = probes.iter().map(|(_, m)| m.len()).sum();
    let mut settled = vec![false; asked.len()];
    let until = Instant::now() + wait;
    while open > 0 && Instant::now() < until {
        let mut idle = true;
        for (probe, probed) in &probes {
            let (i, seen) = match probe.poll(Duration::ZERO) {
                Some(Ok(m)) => {
                    use rdkafka::Message;
                    match probed.get(&m.partition()) {
                        Some(&i) => (i, Some(m.offset() + 1)),
                        None => continue,
                    }
                }
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => match probed.get(&p) {
                    Some(&i) => (i, None),
                    None => continue,
                },
                _ => continue,
            };
            idle = false;
            if let Some(seen) = seen {
                ends[i] = Some(ends[i].unwrap_or(0).max(seen));
            }
            let done = seen.is_none() || ends[i].is_some_and(|e| e > asked[i].2);
            if done && !settled[i] {
                settled[i] = true;
                open -= 1;
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    ends
}

/// Refuses positions that belong to another cluster or an older topic
/// (see `identity.rs`); stores the identity when they are trusted.
pub(crate) fn check_source_identity(
    consumer: &BaseConsumer<KafkaContext>,
    kafka: &KafkaOptions,
    engine: &Engine,
    parts: &[(String, i32)],
    state_dir: &std::path::Path,
) -> Result<(), SourceError> {
    use crate::source::identity::{check, PartitionSeen, SourceIdentity};
    let mut now = SourceIdentity {
        cluster_id: consumer.client().fetch_cluster_id(Duration::from_secs(5)),
        ..Default::default()
    };
    for (t, _) in parts {
        *now.partitions.entry(t.clone()).or_default() += 1;
    }
    let mut seen = Vec::new();
    let mut asked = Vec::new();
    for ((t, p), ranges) in engine.positions().all() {
        let Some(applied_end) = ranges.ranges().last().map(|r| r.1) else {
            continue;
        };
        if parts.iter().any(|(pt, pp)| pt == t && pp == p) {
            // The state's last applied offset must be in the log.
            asked.push((t.clone(), *p, applied_end - 1));
        } else if now.partitions.contains_key(t) {
            seen.push(PartitionSeen {
                topic: t.clone(),
                partition: *p,
                applied_end,
                high: None,
            });
        }
    }
    let ends = log_ends(consumer, kafka, &asked, Duration::from_secs(5));
    for ((t, p, last), end) in asked.into_iter().zip(ends) {
        seen.push(PartitionSeen {
            topic: t,
            partition: p,
            applied_end: last + 1,
            // Unknown for now (broker busy): judge by what else we know.
            high: Some(end.unwrap_or(last + 1)),
        });
    }
    let stored = engine.store().source_identity()?;
    let mismatches = check(stored.as_ref(), &now, &seen);
    if !mismatches.is_empty() {
        let details: Vec<String> = mismatches.iter().map(|m| format!("  - {m}")).collect();
        return Err(SourceError::SourceMismatch {
            state_dir: state_dir.to_path_buf(),
            details: details.join("\n"),
        });
    }
    // Keep the largest partition counts seen (partitions are only added).
    let mut merged = now;
    if let Some(s) = stored {
        if merged.cluster_id.is_none() {
            merged.cluster_id = s.cluster_id;
        }
        for (t, n) in s.partitions {
            let e = merged.partitions.entry(t).or_default();
            *e = (*e).max(n);
        }
    }
    engine.store().put_source_identity(&merged)?;
    Ok(())
}
