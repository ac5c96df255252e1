//! The ceiling for `benches/live.sh`: a bare rdkafka consumer that reads the
//! three topics from the beginning and does nothing with the records.
//!
//!   cargo run --release --example bare_consumer -- BROKERS PREFIX EXPECTED_RECORDS

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, prefix, expected): (&str, &str, u64) =
        (&args[1], &args[2], args[3].parse().expect("EXPECTED_RECORDS"));
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bare-consumer-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50") // as the daemon
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
    let (mut n, mut bytes) = (0u64, 0u64);
    let mut first = None;
    let mut last = Instant::now();
    while n < expected && last.elapsed() < Duration::from_secs(10) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            use rdkafka::Message;
            bytes += m.payload().map_or(0, |p| p.len() as u64);
            n += 1;
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
        }
    }
    let secs = first
        .map_or(0.0, |f: Instant| last.duration_since(f).as_secs_f64())
        .max(1e-9);
    println!(
        "bare consumer: records={n} bytes={bytes} active_seconds={secs:.3} records_per_s={:.0}",
        n as f64 / secs
    );
}
