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

/// Per-batch counts of the live loop, added to the metrics at each commit.
#[derive(Default)]
pub struct BatchCounts {
    /// Per source index.
    pub consumed: Vec<u64>,
    pub skipped: Vec<u64>,
    pub dead: Vec<u64>,
    prev: EngineStats,
}

impl BatchCounts {
    pub fn new(sources: usize) -> BatchCounts {
        BatchCounts {
            consumed: vec![0; sources],
            skipped: vec![0; sources],
            dead: vec![0; sources],
            prev: EngineStats::default(),
        }
    }

    /// Adds this batch to the metrics and starts the next one.
    pub fn flush(&mut self, m: &Metrics, topics: &[String], engine: &EngineStats) {
        for (i, t) in topics.iter().enumerate() {
            let (c, s, d) = (self.consumed[i], self.skipped[i], self.dead[i]);
            m.records_in.with_label_values(&[t]).inc_by(c);
            m.records_skipped.with_label_values(&[t]).inc_by(s);
            m.dead_letters.with_label_values(&[t]).inc_by(d);
            let op = |dir: &str, n: u64| m.operator_records.with_label_values(&[t, dir]).inc_by(n);
            op("in", c);
            op("out", c.saturating_sub(s + d));
            op("dropped", d);
        }
        let p = &self.prev;
        let join = |dir: &str, n: u64| m.operator_records.with_label_values(&["join", dir]).inc_by(n);
        join("in", engine.records - p.records);
        join("out", (engine.joined + engine.replaced) - (p.joined + p.replaced));
        join("dropped", engine.unchanged - p.unchanged);
        let late = (engine.agg.late + engine.agg.future) - (p.agg.late + p.agg.future);
        m.operator_records
            .with_label_values(&["aggregates", "dropped"])
            .inc_by(late);
        m.commits.inc_by(engine.commits - p.commits);
        self.prev = *engine;
        self.consumed.iter_mut().for_each(|x| *x = 0);
        self.skipped.iter_mut().for_each(|x| *x = 0);
        self.dead.iter_mut().for_each(|x| *x = 0);
    }
}
