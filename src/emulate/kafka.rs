//! Sends the emulator's deliveries to Kafka, as the seeds' REST proxy did:
//! no key (records of one `ind` land on any partition), one record per topic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Emulator, TOPICS};
use crate::kafka::{KafkaContext, KafkaOptions};

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
    let producer: ThreadedProducer<KafkaContext> = opts
        .client_config()
        .set("linger.ms", "5")
        .create_with_context(opts.context())?;
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
            let sent_ms = chrono::Utc::now().timestamp_millis().to_string();
            let headers = OwnedHeaders::new().insert(Header {
                key: "pinstream.produced_ms",
                value: Some(sent_ms.as_str()),
            });
            let record: BaseRecord<'_, (), str> = BaseRecord::to(topic)
                .payload(payload.as_str())
                .partition(rng.gen_range(0..*n))
                .headers(headers);
            crate::kafka::send_retrying(&producer, record)?;
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
    let failed = producer.context().failed.load(std::sync::atomic::Ordering::Relaxed);
    if failed > 0 {
        tracing::error!("{failed} records were not delivered");
        return Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut));
    }
    Ok(sent - failed)
}
