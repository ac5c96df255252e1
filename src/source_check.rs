//! What the brokers say about a state's positions: the I/O half of
//! `identity.rs` (which decides). Run once at start, before anything is
//! consumed.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::engine::Engine;
use crate::kafka::{KafkaContext, KafkaOptions};
use crate::live::LiveError;

/// The end of a partition's log as far as the check needs it: the reported
/// high watermark, or, when that lies below what the state has applied, the
/// end proven by reading. Some brokers (tansu 0.6) report the base offset of
/// the last batch + 1 as the high watermark, below records they serve; so a
/// low watermark is confirmed by reading before it counts as a recreated
/// topic.
fn log_end(
    consumer: &BaseConsumer<KafkaContext>,
    kafka: &KafkaOptions,
    topic: &str,
    partition: i32,
    applied_end: i64,
) -> i64 {
    let reported = match consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
        Ok((_, high)) => high,
        // Unknown for now (broker busy): judge by what else we know.
        Err(_) => return applied_end,
    };
    if reported >= applied_end || applied_end == 0 {
        return reported;
    }
    let probe: Result<BaseConsumer<KafkaContext>, _> = kafka
        .client_config()
        .set("group.id", "pinstream-position-probe")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "error")
        .create_with_context(kafka.context());
    let Ok(probe) = probe else { return reported };
    let mut tpl = TopicPartitionList::new();
    let last = applied_end - 1;
    // Read from just below the reported end, not from `last`: such a broker
    // serves nothing at or past its reported watermark (measured: tansu
    // reports the last batch's base offset + 1), but a fetch of the offset
    // before it returns that whole last batch.
    let from = (reported - 1).max(0);
    if tpl
        .add_partition_offset(topic, partition, Offset::Offset(from))
        .is_err()
        || probe.assign(&tpl).is_err()
    {
        return reported;
    }
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        match probe.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                use rdkafka::Message;
                if m.offset() >= last {
                    return m.offset() + 1;
                }
            }
            // Out of range (or any refusal): the offset is not there.
            Some(Err(_)) => return reported,
            None => {}
        }
    }
    reported
}

/// Refuses positions that belong to another cluster or an older topic
/// (see `identity.rs`); stores the identity when they are trusted.
pub(crate) fn check_source_identity(
    consumer: &BaseConsumer<KafkaContext>,
    kafka: &KafkaOptions,
    engine: &Engine,
    parts: &[(String, i32)],
    state_dir: &std::path::Path,
) -> Result<(), LiveError> {
    use crate::identity::{check, PartitionSeen, SourceIdentity};
    let mut now = SourceIdentity {
        cluster_id: consumer.client().fetch_cluster_id(Duration::from_secs(5)),
        ..Default::default()
    };
    for (t, _) in parts {
        *now.partitions.entry(t.clone()).or_default() += 1;
    }
    let mut seen = Vec::new();
    for ((t, p), ranges) in engine.positions().all() {
        let Some(applied_end) = ranges.ranges().last().map(|r| r.1) else {
            continue;
        };
        let high = if parts.iter().any(|(pt, pp)| pt == t && pp == p) {
            Some(log_end(consumer, kafka, t, *p, applied_end))
        } else if now.partitions.contains_key(t) {
            None
        } else {
            continue; // a topic this run does not read
        };
        seen.push(PartitionSeen {
            topic: t.clone(),
            partition: *p,
            applied_end,
            high,
        });
    }
    let stored = engine.store().source_identity()?;
    let mismatches = check(stored.as_ref(), &now, &seen);
    if !mismatches.is_empty() {
        let details: Vec<String> = mismatches.iter().map(|m| format!("  - {m}")).collect();
        return Err(LiveError::SourceMismatch {
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
