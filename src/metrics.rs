//! The daemon's metrics, served at `/metrics` in the Prometheus text format.
//!
//! Invariants: every metric is registered once, here, under a constant name;
//! labels are bounded (source names and operators come from the topology,
//! partitions from the broker, routes from the router's fixed table, status
//! codes from HTTP). The live loop adds to the counters once per commit
//! (per batch), not per record, so the hot path touches no atomics.
//!
//! Latency and commit-duration distributions are kept in hdrhistograms (exact
//! quantiles at 3 significant digits, unlike fixed buckets) and rendered as
//! Prometheus summaries.

use std::fmt::Write as _;
use std::sync::Mutex;

use hdrhistogram::Histogram;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// A distribution in microseconds, rendered as a summary in seconds.
pub struct HdrSummary {
    name: &'static str,
    help: &'static str,
    hist: Mutex<Histogram<u64>>,
}

impl HdrSummary {
    fn new(name: &'static str, help: &'static str) -> HdrSummary {
        HdrSummary {
            name,
            help,
            hist: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")),
        }
    }

    /// Records one value, in microseconds.
    pub fn record_us(&self, us: u64) {
        if let Ok(mut h) = self.hist.lock() {
            h.saturating_record(us.max(1));
        }
    }

    /// Records a batch of values in microseconds (one lock per batch).
    pub fn record_all_us(&self, values: impl Iterator<Item = u64>) {
        if let Ok(mut h) = self.hist.lock() {
            for us in values {
                h.saturating_record(us.max(1));
            }
        }
    }

    pub fn quantile_us(&self, q: f64) -> u64 {
        self.hist.lock().map(|h| h.value_at_quantile(q)).unwrap_or(0)
    }

    fn render(&self, out: &mut String) {
        let Ok(h) = self.hist.lock() else { return };
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} summary", self.name);
        for q in [0.5, 0.9, 0.99, 0.999] {
            let v = if h.is_empty() { 0 } else { h.value_at_quantile(q) };
            let _ = writeln!(out, "{}{{quantile=\"{q}\"}} {}", self.name, v as f64 / 1e6);
        }
        let _ = writeln!(out, "{}_sum {}", self.name, h.mean() * h.len() as f64 / 1e6);
        let _ = writeln!(out, "{}_count {}", self.name, h.len());
    }
}

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    /// Records consumed, per source topic.
    pub records_in: IntCounterVec,
    /// Re-delivered records skipped because their position is in the state.
    pub records_skipped: IntCounterVec,
    /// Records sent to the dead-letter topic, per source topic.
    pub dead_letters: IntCounterVec,
    /// Per operator: records in, records out, records dropped.
    pub operator_records: IntCounterVec,
    pub commits: IntCounter,
    /// Consumer lag (high watermark - next offset) per partition.
    pub consumer_lag: IntGaugeVec,
    pub state_bytes: IntGauge,
    /// Records accepted by the ingest routes, per API (`rest`, `kinesis`).
    pub ingested: IntCounterVec,
    pub http_requests: IntCounterVec,
    pub http_seconds: HistogramVec,
    pub commit_duration: HdrSummary,
    pub end_to_end_latency: HdrSummary,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            r.register(Box::new(c.clone())).expect("metric names are unique");
            c
        }
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        Metrics {
            records_in: counter_vec(
                "pinstream_records_in_total",
                "Records consumed and committed (counted when the commit that covers them is durable), per source topic",
                &["source"],
            ),
            records_skipped: counter_vec(
                "pinstream_records_skipped_total",
                "Re-delivered records skipped because their position is already in the state",
                &["source"],
            ),
            dead_letters: counter_vec(
                "pinstream_dead_letters_total",
                "Records sent to the dead-letter topic (unparsable or without ind), per source topic",
                &["source"],
            ),
            operator_records: counter_vec(
                "pinstream_operator_records_total",
                "Records through each operator: in, out (rows emitted) and dropped (no change)",
                &["operator", "direction"],
            ),
            commits: reg(
                &registry,
                IntCounter::new(
                    "pinstream_commits_total",
                    "State commits (positions and state in one write batch)",
                )
                .expect("valid metric"),
            ),
            consumer_lag: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "pinstream_consumer_lag",
                        "High watermark minus next offset, per input partition",
                    ),
                    &["topic", "partition"],
                )
                .expect("valid metric"),
            ),
            state_bytes: reg(
                &registry,
                IntGauge::new("pinstream_state_bytes", "Approximate size of the RocksDB state").expect("valid metric"),
            ),
            ingested: counter_vec(
                "pinstream_ingested_records_total",
                "Records accepted by the HTTP ingest routes and produced to Kafka",
                &["api"],
            ),
            http_requests: counter_vec(
                "pinstream_http_requests_total",
                "HTTP requests by route, method and status",
                &["route", "method", "status"],
            ),
            http_seconds: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new("pinstream_http_request_seconds", "HTTP request latency by route").buckets(
                        vec![
                            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                        ],
                    ),
                    &["route"],
                )
                .expect("valid metric"),
            ),
            commit_duration: HdrSummary::new(
                "pinstream_commit_duration_seconds",
                "Wall time of a commit: dead-letter flush plus the durable state write",
            ),
            end_to_end_latency: HdrSummary::new(
                "pinstream_end_to_end_latency_seconds",
                "Produce time (pinstream.produced_ms header) to the commit that made the record's effect durable",
            ),
            registry,
        }
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut out = String::from_utf8(buf).unwrap_or_default();
        self.commit_duration.render(&mut out);
        self.end_to_end_latency.render(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_hdr_summaries() {
        let m = Metrics::new();
        m.records_in.with_label_values(&["p.pin"]).inc_by(7);
        for us in [1_000, 2_000, 900_000] {
            m.end_to_end_latency.record_us(us);
        }
        let text = m.render();
        assert!(
            text.contains("pinstream_records_in_total{source=\"p.pin\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE pinstream_end_to_end_latency_seconds summary"),
            "{text}"
        );
        assert!(text.contains("pinstream_end_to_end_latency_seconds_count 3"), "{text}");
        // p99 of {1 ms, 2 ms, 900 ms} is the largest, within hdr precision.
        let line = text
            .lines()
            .find(|l| l.starts_with("pinstream_end_to_end_latency_seconds{quantile=\"0.99\"}"))
            .unwrap();
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((v - 0.9).abs() < 0.001, "{line}");
    }
}
