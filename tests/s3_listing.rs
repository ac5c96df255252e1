//! A bucket of a million objects: the S3 listing streams a page at a time
//! (memory does not grow with the number of objects) and pages with
//! `start-after`. The bucket is a synthetic S3 endpoint served by this test
//! (ListObjectsV2 and GetObject, path-style, no auth): the real S3 server of
//! the other tests (moto) cannot be filled with a million objects inside a
//! CI run, and what is tested here is pinstream's listing, not a server.
//! Requests that do not fit what pinstream must send (a continuation token
//! on a key listing, a page past the end) are answered 400, so a change in
//! how pinstream pages shows up as a failed replay.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::*;

/// Topics `p.pin`, `p.geo`, `p.user`, each with 10 partitions of flush-size-1
/// objects (`topics/<t>/partition=<p>/<t>+<p>+<offset:010>.json`).
struct Bucket {
    /// Objects per partition, by topic.
    per_partition: HashMap<String, i64>,
    /// The one record every object of a topic holds.
    body: HashMap<String, String>,
    pages: AtomicU64,
    gets: AtomicU64,
}

const PARTITIONS: i32 = 10;

impl Bucket {
    fn total(&self) -> u64 {
        self.per_partition.values().map(|n| *n as u64 * PARTITIONS as u64).sum()
    }

    fn key(topic: &str, p: i32, o: i64) -> String {
        format!("topics/{topic}/partition={p}/{topic}+{p}+{o:010}.json")
    }

    /// The page of `topic`'s keys after `after` (all, if `None`).
    fn page(&self, topic: &str, after: Option<&str>, max: usize) -> Option<(Vec<String>, bool)> {
        let n = *self.per_partition.get(topic)?;
        let (mut p, mut o) = match after {
            None => (0, 0),
            Some(k) => {
                let name = k.rsplit('/').next()?.strip_suffix(".json")?;
                let mut it = name.rsplitn(3, '+');
                let o: i64 = it.next()?.parse().ok()?;
                let p: i32 = it.next()?.parse().ok()?;
                if o + 1 < n {
                    (p, o + 1)
                } else {
                    (p + 1, 0)
                }
            }
        };
        let mut keys = Vec::with_capacity(max);
        while p < PARTITIONS && keys.len() < max {
            keys.push(Self::key(topic, p, o));
            o += 1;
            if o == n {
                (p, o) = (p + 1, 0);
            }
        }
        Some((keys, p < PARTITIONS))
    }
}

fn xml(body: String) -> Response {
    ([("content-type", "application/xml")], body).into_response()
}

async fn list(
    State(b): State<Arc<Bucket>>,
    Path(bucket): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let head = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{bucket}</Name><Prefix>{prefix}</Prefix>"
    );
    if q.get("delimiter").map(String::as_str) == Some("/") && prefix == "topics/" {
        let mut out = head;
        let mut topics: Vec<&String> = b.per_partition.keys().collect();
        topics.sort();
        for t in topics {
            out.push_str(&format!(
                "<CommonPrefixes><Prefix>topics/{t}/</Prefix></CommonPrefixes>"
            ));
        }
        out.push_str("<IsTruncated>false</IsTruncated></ListBucketResult>");
        return xml(out);
    }
    let Some(topic) = prefix.strip_prefix("topics/").and_then(|t| t.strip_suffix('/')) else {
        return (StatusCode::BAD_REQUEST, format!("unexpected prefix {prefix}")).into_response();
    };
    if q.contains_key("continuation-token") {
        return (StatusCode::BAD_REQUEST, "key listings page with start-after").into_response();
    }
    let max = q
        .get("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000usize)
        .min(1000);
    let Some((keys, truncated)) = b.page(topic, q.get("start-after").map(String::as_str), max) else {
        return (StatusCode::BAD_REQUEST, "no such topic or start-after key").into_response();
    };
    b.pages.fetch_add(1, Ordering::Relaxed);
    let mut out = head;
    out.reserve(keys.len() * 120);
    out.push_str(&format!("<KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys>", keys.len()));
    let size = b.body[topic].len();
    for k in &keys {
        out.push_str(&format!(
            "<Contents><Key>{k}</Key><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
        ));
    }
    out.push_str(&format!("<IsTruncated>{truncated}</IsTruncated></ListBucketResult>"));
    xml(out)
}

async fn object(State(b): State<Arc<Bucket>>, Path((_bucket, key)): Path<(String, String)>) -> Response {
    let topic = key
        .strip_prefix("topics/")
        .and_then(|k| k.split('/').next())
        .unwrap_or("");
    match b.body.get(topic) {
        Some(body) => {
            b.gets.fetch_add(1, Ordering::Relaxed);
            body.clone().into_response()
        }
        None => (StatusCode::NOT_FOUND, "<Error><Code>NoSuchKey</Code></Error>").into_response(),
    }
}

/// Serves `bucket` on 127.0.0.1 from a background runtime; returns the endpoint.
fn serve(bucket: Arc<Bucket>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = Router::new()
                .route("/{bucket}", get(list))
                .route("/{bucket}/", get(list))
                .route("/{bucket}/{*key}", get(object))
                .with_state(bucket);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

/// One record per topic, from a small emulated archive.
fn bodies() -> HashMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    emulate(dir.path(), 20, 61, &[]);
    let mut out = HashMap::new();
    for (topic, _, _, path) in archive_files(dir.path()) {
        let short = topic.rsplit('.').next().unwrap().to_string();
        out.entry(format!("p.{short}"))
            .or_insert_with(|| format!("{}\n", read_lines(&path)[0]));
    }
    assert_eq!(out.len(), 3, "{out:?}");
    out
}

fn bucket(pin: i64, others: i64) -> Arc<Bucket> {
    let body = bodies();
    Arc::new(Bucket {
        per_partition: [("p.pin", pin), ("p.geo", others), ("p.user", others)]
            .into_iter()
            .map(|(t, n)| (t.to_string(), n))
            .collect(),
        body,
        pages: AtomicU64::new(0),
        gets: AtomicU64::new(0),
    })
}

/// Replays the first 20 offsets of every partition; returns the stderr.
fn replay_first_offsets(endpoint: &str) -> String {
    let (ok, out, err) = run_s3(&[
        "replay",
        "--archive",
        "s3://synthetic",
        "--s3-endpoint",
        endpoint,
        "--offsets",
        "0..20",
    ]);
    assert!(ok, "{err}");
    assert!(out.starts_with('{'), "{out}");
    err
}

#[test]
fn s3_listing_of_a_million_objects_streams_in_bounded_memory() {
    let small = bucket(8_000, 1_000);
    let big = bucket(80_000, 10_000);
    assert_eq!((small.total(), big.total()), (100_000, 1_000_000));
    let mut rss = Vec::new();
    for b in [small, big] {
        let err = replay_first_offsets(&serve(b.clone()));
        let read = 3 * PARTITIONS as u64 * 20;
        assert_eq!(stat_of(&err, "stats:", "s3_listed"), b.total(), "{err}");
        assert_eq!(stat_of(&err, "stats:", "s3_pages"), b.total() / 1000, "{err}");
        assert_eq!(stat_of(&err, "stats:", "s3_pages"), b.pages.load(Ordering::Relaxed));
        assert_eq!(stat_of(&err, "stats:", "s3_objects"), read, "{err}");
        assert_eq!(
            b.gets.load(Ordering::Relaxed),
            read,
            "objects past --offsets are not downloaded"
        );
        assert_eq!(stat_of(&err, "stats:", "records"), read, "{err}");
        assert_eq!(stat_of(&err, "stats:", "not_selected"), b.total() - read, "{err}");
        assert_eq!(stat_of(&err, "stats:", "gaps"), 0, "{err}");
        rss.push(stat_of(&err, "stats:", "peak_rss_mb"));
    }
    // 900,000 more keys (~70 MB of key strings alone) must not show up in
    // the peak: the listing holds a page, not the bucket.
    assert!(
        rss[1] <= rss[0] + 32,
        "peak RSS grew with the number of objects: {} MB at 100,000 objects, {} MB at 1,000,000",
        rss[0],
        rss[1]
    );
}
