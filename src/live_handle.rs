//! What the live loop shares with the HTTP server: the opened store (for
//! queries), readiness, and the metrics it reports per commit.
//!
//! The loop owns the engine; readers only get the RocksDB handle, whose
//! iterators see whole write batches, so a query never sees half a commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::engine::EngineStats;
use crate::metrics::Metrics;
use crate::state::store::Store;

#[derive(Default)]
pub struct LiveHandle {
    store: OnceLock<Arc<Store>>,
    ready: AtomicBool,
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for LiveHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHandle")
            .field("store_open", &self.store.get().is_some())
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl LiveHandle {
    pub fn new(metrics: Arc<Metrics>) -> LiveHandle {
        LiveHandle {
            metrics,
            ..Default::default()
        }
    }

    /// Called once the state is open.
    pub fn set_store(&self, store: Arc<Store>) {
        let _ = self.store.set(store);
    }

    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.get()
    }

    /// Ready = state open and partitions assigned (consuming).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Per-batch counts of the live loop, added to the metrics when the commit
/// that covers them is durable.
///
/// Invariant: the counters say what the state holds. A commit is written in
/// the background while the engine goes on; adding every count so far when
/// a commit landed counted the batches of the next, unwritten commit too, so
/// `pinstream_records_in_total` could reach N while the answers (read from
/// the state) still missed records (a CI run of `tests/tansu_seeds.rs` did).
/// So [`BatchCounts::commit_started`] hands the counts to the commit that
/// begins, and [`BatchCounts::flush`] adds those of the oldest one.
#[derive(Default)]
pub struct BatchCounts {
    /// Per source index, since the last commit began.
    pub consumed: Vec<u64>,
    pub skipped: Vec<u64>,
    pub dead: Vec<u64>,
    /// Counts and engine stats of the commits begun and not yet durable,
    /// oldest first.
    begun: std::collections::VecDeque<Covered>,
    prev: EngineStats,
}

/// What one commit covers.
struct Covered {
    consumed: Vec<u64>,
    skipped: Vec<u64>,
    dead: Vec<u64>,
    engine: EngineStats,
}

impl BatchCounts {
    pub fn new(sources: usize) -> BatchCounts {
        BatchCounts {
            consumed: vec![0; sources],
            skipped: vec![0; sources],
            dead: vec![0; sources],
            begun: Default::default(),
            prev: EngineStats::default(),
        }
    }

    /// A commit begins: it covers the counts so far (and the engine stats
    /// as they are now).
    pub fn commit_started(&mut self, engine: &EngineStats) {
        let zero = vec![0; self.consumed.len()];
        self.begun.push_back(Covered {
            consumed: std::mem::replace(&mut self.consumed, zero.clone()),
            skipped: std::mem::replace(&mut self.skipped, zero.clone()),
            dead: std::mem::replace(&mut self.dead, zero),
            engine: *engine,
        });
    }

    /// The oldest begun commit is durable: adds what it covers to the
    /// metrics.
    pub fn flush(&mut self, m: &Metrics, topics: &[String]) {
        let Some(c) = self.begun.pop_front() else { return };
        for (i, t) in topics.iter().enumerate() {
            let (n, s, d) = (c.consumed[i], c.skipped[i], c.dead[i]);
            m.records_in.with_label_values(&[t]).inc_by(n);
            m.records_skipped.with_label_values(&[t]).inc_by(s);
            m.dead_letters.with_label_values(&[t]).inc_by(d);
            let op = |dir: &str, k: u64| m.operator_records.with_label_values(&[t, dir]).inc_by(k);
            op("in", n);
            op("out", n.saturating_sub(s + d));
            op("dropped", d);
        }
        let (engine, p) = (&c.engine, &self.prev);
        let join = |dir: &str, n: u64| m.operator_records.with_label_values(&["join", dir]).inc_by(n);
        join("in", engine.records - p.records);
        join("out", (engine.joined + engine.replaced) - (p.joined + p.replaced));
        join("dropped", engine.unchanged - p.unchanged);
        let late = (engine.agg.late + engine.agg.future) - (p.agg.late + p.agg.future);
        m.operator_records
            .with_label_values(&["aggregates", "dropped"])
            .inc_by(late);
        // One commit landed (the count follows the reports, not the starts).
        m.commits.inc_by(1);
        self.prev = c.engine;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumed(m: &Metrics) -> u64 {
        m.records_in.with_label_values(&["p.pin"]).get()
    }

    /// Regression (`tests/tansu_seeds.rs` in CI): counts of batches applied
    /// while a commit was being written were added when that commit landed,
    /// before the commit that covers them.
    #[test]
    fn counts_reach_the_metrics_with_the_commit_that_covers_them() {
        let m = Metrics::new();
        let topics = vec!["p.pin".to_string()];
        let mut b = BatchCounts::new(1);
        b.consumed[0] += 5;
        b.commit_started(&EngineStats::default()); // commit A covers 5
        b.consumed[0] += 3; // applied while A is written
        b.flush(&m, &topics); // A landed
        assert_eq!(consumed(&m), 5);
        b.commit_started(&EngineStats::default()); // commit B covers 3
        assert_eq!(consumed(&m), 5, "B has not landed");
        b.flush(&m, &topics);
        assert_eq!(consumed(&m), 8);
        assert_eq!(m.commits.get(), 2);
        b.flush(&m, &topics); // nothing begun: nothing added
        assert_eq!((consumed(&m), m.commits.get()), (8, 2));
    }
}
