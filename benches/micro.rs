//! Micro-benchmarks of the hot path's parts (criterion):
//!
//! * `parse_clean/<topic>`: one raw record → cleaned, projected row (`prepare`);
//! * `join_update`: the three rows of new posts into the join (each post
//!   becomes complete, so this includes building its joined row and the
//!   aggregate updates it causes);
//! * `join_update_sharded/<n>`: the same records in batches of 500 of one
//!   topic (as archive objects and Kafka fetches deliver them), applied by
//!   `process_spans` on 1 and 2 shards (threads): what the incremental
//!   plan's engine stage gains from the second core when it has it;
//! * `aggregate_update`: one joined row into every aggregate's buffers;
//! * `sketch/*`: building, merging and querying quantile sketches, exact
//!   (few distinct values, the pipeline's case) and t-digest;
//! * `rocksdb_commit`: the write batch of 10,000 posts' join rows,
//!   aggregate deltas and positions, written and flushed (durable state);
//! * `live_commit`: a live commit (WAL) of 1,000 changed posts in a join
//!   table of 200,000: what a daemon pays every commit interval, which must
//!   follow the changes, not the table.
//!
//!     cargo bench --bench micro [-- FILTER]
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pinstream::aggregate::buffers::AggBuffers;
use pinstream::aggregate::sketch::Sketch;
use pinstream::engine::prepare::{prepare, Prepared};
use pinstream::engine::{joined_row, Engine};
use pinstream::pinterest::emulate::Emulator;
use pinstream::state::store::{Durability, Store};
use pinstream::topology::Topology;

const POSTS: i64 = 10_000;

fn topology() -> Arc<Topology> {
    Arc::new(pinstream::load_topology(pinstream::PINTEREST_TOPOLOGY).expect("the product topology builds"))
}

/// Raw records of posts `0..n` per source, as the emulator sends them.
fn raw(n: i64) -> [Vec<String>; 3] {
    let em = Emulator::new(100);
    let ind = |k: i64| Emulator::ind_of(k as u64);
    [
        (0..n)
            .map(|k| serde_json::to_string(&em.pin(ind(k))).unwrap())
            .collect(),
        (0..n)
            .map(|k| serde_json::to_string(&em.geo(ind(k), k % 2 == 0)).unwrap())
            .collect(),
        (0..n)
            .map(|k| serde_json::to_string(&em.user(ind(k), k % 2 == 1)).unwrap())
            .collect(),
    ]
}

/// Source index of each topic in the topology, in `raw`'s order.
fn sources(topo: &Topology) -> [usize; 3] {
    ["pin", "geo", "user"].map(|n| topo.sources.iter().position(|s| s.name == n).expect("source"))
}

fn prepared(topo: &Topology, raw: &[Vec<String>; 3]) -> Vec<(usize, Prepared)> {
    let src = sources(topo);
    let mut out = Vec::new();
    for ((pin, geo), user) in raw[0].iter().zip(&raw[1]).zip(&raw[2]) {
        for (t, line) in [pin, geo, user].into_iter().enumerate() {
            out.push((
                src[t],
                prepare(topo, src[t], line.as_bytes()).expect("emulated records are valid"),
            ));
        }
    }
    out
}

fn parse_clean(c: &mut Criterion) {
    let topo = topology();
    let raw = raw(1000);
    let src = sources(&topo);
    let mut g = c.benchmark_group("parse_clean");
    for (t, name) in ["pin", "geo", "user"].iter().enumerate() {
        let bytes: usize = raw[t].iter().map(String::len).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                for line in &raw[t] {
                    std::hint::black_box(prepare(&topo, src[t], line.as_bytes()).unwrap());
                }
            })
        });
    }
    g.finish();
}

fn join_update(c: &mut Criterion) {
    let topo = topology();
    let recs = prepared(&topo, &raw(POSTS));
    let mut g = c.benchmark_group("join_update");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.sample_size(20);
    g.bench_function("3_records_per_new_post", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let engine = Engine::open(topo.clone(), dir.path(), 1 << 20, Durability::Ephemeral).unwrap();
                (dir, engine, recs.clone())
            },
            |(dir, mut engine, recs)| {
                for (src, p) in recs {
                    engine.process(src, &p.key, p.row).unwrap();
                }
                assert_eq!(engine.stats.joined, POSTS as u64);
                (dir, engine)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// One topic's records in batches of `per`, topics taking turns (pin,
/// geo, user, pin, ...), each batch as the driver hands it to the engine:
/// the keys and rows back to back in one buffer, and their spans.
type SpanBatch = (usize, Vec<u8>, Vec<(usize, usize, usize)>);

fn span_batches(recs: &[(usize, Prepared)], per: usize) -> Vec<SpanBatch> {
    let mut by_source: Vec<(usize, Vec<&Prepared>)> = Vec::new();
    for (src, p) in recs {
        match by_source.iter_mut().find(|(s, _)| s == src) {
            Some((_, v)) => v.push(p),
            None => by_source.push((*src, vec![p])),
        }
    }
    let mut out = Vec::new();
    let mut at = 0;
    while by_source.iter().any(|(_, v)| at < v.len()) {
        for (src, v) in &by_source {
            let chunk = &v[at.min(v.len())..(at + per).min(v.len())];
            if chunk.is_empty() {
                continue;
            }
            let (mut buf, mut spans) = (Vec::new(), Vec::new());
            for p in chunk {
                spans.push((buf.len(), p.key.len(), p.row.len()));
                buf.extend_from_slice(&p.key);
                buf.extend_from_slice(&p.row);
            }
            out.push((*src, buf, spans));
        }
        at += per;
    }
    out
}

fn join_update_sharded(c: &mut Criterion) {
    let topo = topology();
    let recs = prepared(&topo, &raw(POSTS * 4));
    let batches = span_batches(&recs, 500);
    let mut g = c.benchmark_group("join_update_sharded");
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.sample_size(10);
    for shards in [1usize, 2] {
        g.bench_function(format!("{shards}"), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let mut engine = Engine::open(topo.clone(), dir.path(), 1 << 20, Durability::Ephemeral).unwrap();
                    assert_eq!(engine.set_shards(shards).unwrap(), shards);
                    (dir, engine)
                },
                |(dir, mut engine)| {
                    for (src, buf, spans) in &batches {
                        engine.process_spans(*src, buf, spans).unwrap();
                    }
                    engine.settle().unwrap();
                    assert_eq!(engine.stats.joined, 4 * POSTS as u64);
                    (dir, engine)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn aggregate_update(c: &mut Criterion) {
    let topo = topology();
    let recs = prepared(&topo, &raw(1000));
    let rows: Vec<_> = recs
        .chunks(3)
        .map(|post| {
            // The join's slots are in its inputs' order.
            let mut slots: Vec<Option<Box<[u8]>>> = vec![None; topo.join.inputs.len()];
            for (src, p) in post {
                let slot = topo.join.inputs.iter().position(|i| i == src).unwrap();
                slots[slot] = Some(p.row.clone());
            }
            joined_row(&topo, &post[0].1.key, &slots).unwrap()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), &topo, Durability::Ephemeral).unwrap();
    let mut aggs = AggBuffers::new(&topo, &store).unwrap();
    let mut g = c.benchmark_group("aggregate_update");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("joined_row_into_every_aggregate", |b| {
        b.iter(|| {
            for r in &rows {
                aggs.apply(&topo, r, 1);
            }
        })
    });
    g.finish();
}

fn sketch(c: &mut Criterion) {
    // Follower counts as the pipeline sees them: coarse (exact sketch), and
    // a continuous spread that forces the t-digest.
    let coarse: Vec<(f64, i64)> = (0..10_000).map(|i| (((i * 7919) % 300) as f64 * 1000.0, 1)).collect();
    let spread: Vec<(f64, i64)> = (0..10_000).map(|i| (((i * 7919) % 100_003) as f64, 1)).collect();
    let mut g = c.benchmark_group("sketch");
    g.throughput(Throughput::Elements(10_000));
    for (name, values) in [("exact", &coarse), ("tdigest", &spread)] {
        g.bench_function(format!("{name}/insert_10k"), |b| {
            b.iter(|| Sketch::from_weighted(200.0, std::hint::black_box(values)))
        });
        let (a, bb) = (
            Sketch::from_weighted(200.0, &values[..5000]),
            Sketch::from_weighted(200.0, &values[5000..]),
        );
        g.bench_function(format!("{name}/merge"), |b| {
            b.iter_batched(
                || (a.clone(), bb.clone()),
                |(x, y)| x.merge(y, 200.0),
                BatchSize::SmallInput,
            )
        });
        let full = Sketch::from_weighted(200.0, values);
        g.bench_function(format!("{name}/median"), |b| {
            b.iter(|| full.quantile(std::hint::black_box(0.5)))
        });
    }
    g.finish();
}

fn rocksdb_commit(c: &mut Criterion) {
    let topo = topology();
    let recs = prepared(&topo, &raw(POSTS));
    let mut g = c.benchmark_group("rocksdb_commit");
    g.throughput(Throughput::Elements(POSTS as u64));
    g.sample_size(10);
    g.bench_function("10k_posts_durable", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let mut engine = Engine::open(topo.clone(), dir.path(), 1 << 20, Durability::Flush).unwrap();
                for (i, (src, p)) in recs.clone().into_iter().enumerate() {
                    engine.mark("bench", src as i32, i as i64);
                    engine.process(src, &p.key, p.row).unwrap();
                }
                (dir, engine)
            },
            |(dir, mut engine)| {
                engine.sync().unwrap();
                (dir, engine)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn live_commit(c: &mut Criterion) {
    const TABLE: i64 = 200_000;
    const CHANGED: usize = 1_000;
    let topo = topology();
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(topo.clone(), dir.path(), 1 << 22, Durability::Wal).unwrap();
    for (src, p) in prepared(&topo, &raw(TABLE)) {
        engine.process(src, &p.key, p.row).unwrap();
    }
    engine.sync().unwrap();
    // The first posts' pins as another seed writes them: each round
    // replaces them with the other version, so every record is a change.
    let pin = sources(&topo)[0];
    let versions: [Vec<Prepared>; 2] = [100, 101].map(|seed| {
        let em = Emulator::new(seed);
        (0..CHANGED as i64)
            .map(|k| {
                let line = serde_json::to_string(&em.pin(Emulator::ind_of(k as u64))).unwrap();
                prepare(&topo, pin, line.as_bytes()).expect("emulated records are valid")
            })
            .collect()
    });
    let differ = versions[0]
        .iter()
        .zip(&versions[1])
        .filter(|(a, b)| a.row != b.row)
        .count();
    assert!(
        differ > CHANGED * 9 / 10,
        "the two seeds give other pins: {differ} of {CHANGED}"
    );
    let mut g = c.benchmark_group("live_commit");
    g.throughput(Throughput::Elements(CHANGED as u64));
    g.sample_size(20);
    let mut round = 0usize;
    g.bench_function("1k_changed_posts_in_200k_post_table", |b| {
        b.iter_custom(|iters| {
            let mut timed = std::time::Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                // Untimed: RocksDB's memtable keeps every earlier version of
                // the same keys until it is flushed, and inserting grows
                // slower with them (22 ms after 10 commits, 240 ms after
                // 150, measured). A daemon's memtable is flushed when full;
                // flushing every 10 commits keeps what is measured steady.
                if round.is_multiple_of(10) {
                    engine.store().flush().unwrap();
                }
                let t = std::time::Instant::now();
                for p in &versions[round % 2] {
                    engine.process(pin, &p.key, p.row.clone()).unwrap();
                }
                engine.sync().unwrap();
                timed += t.elapsed();
            }
            timed
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    parse_clean,
    join_update,
    join_update_sharded,
    aggregate_update,
    sketch,
    rocksdb_commit,
    live_commit
);
criterion_main!(benches);
