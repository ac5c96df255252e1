//! The ceiling for `benches/live.sh`: a bare rdkafka consumer that reads the
//! three topics from the beginning and does nothing with the records. It
//! also prints the broker transit it saw (poll time minus the
//! `pinstream.produced_ms` header), the same measure as the daemon's
//! `transit_ms`, so a latency figure can be split into what the broker and
//! client library cost and what the daemon adds.
//!
//!   cargo run --release --example bare_consumer -- BROKERS PREFIX EXPECTED_RECORDS [IDLE_SECONDS]

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, prefix, expected): (&str, &str, u64) =
        (&args[1], &args[2], args[3].parse().expect("EXPECTED_RECORDS"));
    let idle = Duration::from_secs(args.get(4).map_or(10, |s| s.parse().expect("IDLE_SECONDS")));
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bare-consumer-bench")
        .set("enable.auto.commit", "false")
        // As the daemon (source/kafka.rs).
        .set("fetch.wait.max.ms", "10")
        .set("queued.min.messages", "1000000")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for t in md.topics().iter().filter(|t| {
        ["pin", "geo", "user"]
            .iter()
            .any(|s| t.name() == format!("{prefix}.{s}"))
    }) {
        for p in t.partitions() {
            tpl.add_partition_offset(t.name(), p.id(), Offset::Beginning).unwrap();
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut transit = hdrhistogram::Histogram::<u64>::new_with_max(3_600_000, 3).unwrap();
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut first = None;
    let mut last = Instant::now();
    while n < expected && last.elapsed() < idle {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            bytes += m.payload().map_or(0, |p| p.len() as u64);
            n += 1;
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            let sent = m.headers().and_then(|h| {
                h.iter()
                    .find(|x| x.key == "pinstream.produced_ms")
                    .and_then(|x| std::str::from_utf8(x.value?).ok()?.parse::<i64>().ok())
            });
            if let Some(sent) = sent {
                let now = chrono::Utc::now().timestamp_millis();
                transit.saturating_record((now - sent).max(0) as u64);
            }
        }
    }
    let secs = first
        .map_or(0.0, |f: Instant| last.duration_since(f).as_secs_f64())
        .max(1e-9);
    println!(
        "bare consumer: records={n} bytes={bytes} active_seconds={secs:.3} records_per_s={:.0} transit_ms_p50={} transit_ms_p99={}",
        n as f64 / secs,
        transit.value_at_quantile(0.5),
        transit.value_at_quantile(0.99)
    );
}
