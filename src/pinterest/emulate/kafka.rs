//! Sends the emulator's deliveries to Kafka, as the seeds' REST proxy did:
//! no key (records of one `ind` land on any partition), one record per topic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Emulator, TOPICS};
use crate::kafka::producer::{Outgoing, Producer, PRODUCED_MS_HEADER};
use crate::kafka::KafkaOptions;

/// Produces deliveries at up to `rate` records/s (0 = as fast as possible)
/// until `posts` posts are out (`None` = forever) or `stop` is set. Returns
/// the number of records sent.
pub fn produce(
    em: &Emulator,
    opts: &KafkaOptions,
    prefix: &str,
    posts: Option<u64>,
    rate: f64,
    resend: f64,
    stop: &AtomicBool,
) -> Result<u64, KafkaError> {
    // linger.ms 20, not librdkafka's 5: tansu serves many tiny produce
    // requests slowly, and at 10,000 records/s with 5 ms the producer queue
    // grew until records took p50 366 / p99 1,176 ms to reach a bare
    // consumer; 10 ms gave 25/48, 20 ms 28/43, 50 ms 45/91 (benches/live.sh,
    // examples/bare_consumer.rs). A user's --kafka-config linger.ms wins.
    let producer = Producer::create(opts, &[("linger.ms", "20")])?;
    let topics: Vec<String> = TOPICS.iter().map(|t| format!("{prefix}.{t}")).collect();
    // No key, as the REST proxy sent them: each record gets a partition at
    // random (seeded, so runs repeat), and one `ind`'s records spread over
    // partitions. librdkafka's own keyless spreading is sticky and uneven.
    let mut partitions = Vec::new();
    for t in &topics {
        let md = producer.client().fetch_metadata(Some(t), Duration::from_secs(10))?;
        let n = md.topics().first().map_or(0, |m| m.partitions().len()) as i32;
        if n == 0 {
            return Err(KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition));
        }
        partitions.push(n);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(em.seed() ^ 0x4B41);
    let started = Instant::now();
    let mut sent = 0u64;
    for d in em.deliveries(posts.unwrap_or(u64::MAX), resend) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        for ((topic, payload), n) in topics.iter().zip([&d.pin, &d.geo, &d.user]).zip(&partitions) {
            // Send time in a header: end-to-end latency is measured from it
            // (some brokers report fetch time as the record timestamp).
            producer.send(&Outgoing {
                topic,
                payload: Some(payload.as_bytes()),
                partition: Some(rng.gen_range(0..*n)),
                headers: vec![(PRODUCED_MS_HEADER, chrono::Utc::now().timestamp_millis().to_string())],
                ..Default::default()
            })?;
            sent += 1;
        }
        if rate > 0.0 {
            // Pace by the clock, not by sleeps, so the average rate holds.
            let due = Duration::from_secs_f64(sent as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    producer.flush(Duration::from_secs(60))?;
    let failed = producer.failed();
    if failed > 0 {
        tracing::error!("{failed} records were not delivered");
        return Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut));
    }
    Ok(sent - failed)
}
