//! Property-based fuzzing (proptest, stable Rust) of what hostile input
//! reaches: record decoding and cleaning, the DSL parser and `validate`,
//! archive names and contents, REST Proxy and Kinesis bodies. No panic, no
//! hang, answers within bounds. Cases are bounded (`PROPTEST_CASES`
//! overrides); failures proptest finds are saved under
//! `proptest-regressions/` and replayed first on the next run, and the
//! inputs that found bugs are kept below as named cases.

mod common;

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Value};

use pinstream::engine::prepare::{clean, prepare};
use pinstream::model::value::{decode_key, Value as V};
use pinstream::source::archive;
use pinstream::topology::Topology;

fn topo() -> Arc<Topology> {
    static T: std::sync::OnceLock<Arc<Topology>> = std::sync::OnceLock::new();
    T.get_or_init(|| Arc::new(pinstream::load_topology(pinstream::PINTEREST_TOPOLOGY).unwrap()))
        .clone()
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource(
            "regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// A JSON value a hostile producer might send in any field.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<u64>().prop_map(|u| json!(u)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("1e30".to_string()),
            Just("9223372036854775808".to_string()),
            Just("-0".to_string()),
            Just("9999-12-31 23:59:59".to_string()),
            Just("124k".to_string()),
            Just("User Info Error".to_string()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A record of one source with its real field names and hostile values.
fn record(src: usize) -> impl Strategy<Value = Value> {
    let fields: Vec<&'static str> = match src {
        0 => vec![
            "index",
            "unique_id",
            "title",
            "poster_name",
            "follower_count",
            "category",
            "save_location",
        ],
        1 => vec!["ind", "timestamp", "latitude", "longitude", "country"],
        _ => vec!["ind", "first_name", "last_name", "age", "date_joined"],
    };
    prop::collection::vec(prop::option::of(any_json()), fields.len()).prop_map(move |vals| {
        let mut m = serde_json::Map::new();
        for (f, v) in fields.iter().zip(vals) {
            if let Some(v) = v {
                m.insert(f.to_string(), v);
            }
        }
        Value::Object(m)
    })
}

proptest! {
    #![proptest_config(config(512))]

    /// Any bytes: prepare and clean return, never panic.
    #[test]
    fn arbitrary_bytes_never_panic_the_cleaner(src in 0usize..3, bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let t = topo();
        let _ = prepare(&t, src, &bytes);
        let _ = clean(&t, src, &bytes);
    }

    /// Hostile values in the real fields: a record that is kept has an
    /// integer key equal to what it sent (never clamped), and an `age` is
    /// an exact integer.
    #[test]
    fn kept_records_have_exact_integer_keys((src, rec) in (0usize..3).prop_flat_map(|s| (Just(s), record(s)))) {
        let t = topo();
        let bytes = serde_json::to_vec(&rec).unwrap();
        if let Ok(p) = prepare(&t, src, &bytes) {
            let key = decode_key(&mut p.key.as_slice());
            let sent = rec.get(if src == 0 { "index" } else { "ind" });
            match (key, sent) {
                (Some(V::Int(k)), Some(Value::Number(n))) => {
                    let exact = n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0).map(|f| f as i64));
                    prop_assert_eq!(Some(k), exact, "key {} from {}", k, n);
                }
                (Some(V::Int(k)), Some(Value::String(s))) => prop_assert_eq!(s.trim().parse::<i64>().ok(), Some(k)),
                (k, s) => prop_assert!(false, "kept with key {:?} from {:?}", k, s),
            }
        }
        if src == 2 {
            if let Ok(r) = clean(&t, 2, &bytes) {
                match r.get("age") {
                    None | Some(V::Null) | Some(V::Int(_)) => {}
                    Some(other) => prop_assert!(false, "age {:?}", other),
                }
            }
        }
    }

    /// Mutated topologies: load_topology returns (errors with lines inside
    /// the file), never panics.
    #[test]
    fn mutated_topologies_never_panic_validate(cuts in prop::collection::vec((0usize..20_000, 0usize..40, ".{0,6}"), 1..4)) {
        let mut text = pinstream::PINTEREST_TOPOLOGY.to_string();
        for (at, len, insert) in cuts {
            let mut at = at % text.len().max(1);
            while !text.is_char_boundary(at) { at -= 1; }
            let mut end = (at + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(at..end.max(at), &insert);
        }
        let lines = text.lines().count() + 1;
        if let Err(errors) = pinstream::load_topology(&text) {
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert!(e.line.is_none_or(|l| l >= 1 && l <= lines), "{} (of {} lines)", e, lines);
            }
        }
    }

    /// Archive names: parse or refuse, never panic; what parses round-trips.
    #[test]
    fn archive_names_parse_or_are_refused(topic in "[a-z.+]{1,8}", p in 0i32..1000, o in 0i64..10_000_000_000, gz in any::<bool>(), junk in ".{0,30}") {
        let name = format!("{topic}+{p}+{o:010}.json{}", if gz { ".gz" } else { "" });
        prop_assert_eq!(archive::parse_name(&name), Some((topic, p, o, gz)));
        let _ = archive::parse_name(&junk);
    }

    /// Archive contents: any bytes (and gzip of any bytes, cut anywhere)
    /// read without panic; offsets are consecutive from the start offset.
    #[test]
    fn archive_contents_read_without_panic(data in prop::collection::vec(any::<u8>(), 0..3000), cut in 0usize..4000, gz in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = if gz {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &data).unwrap();
            let b = e.finish().unwrap();
            b[..cut.min(b.len())].to_vec()
        } else {
            data.clone()
        };
        let path = dir.path().join(format!("t+0+0000000005.json{}", if gz { ".gz" } else { "" }));
        std::fs::write(&path, &bytes).unwrap();
        let f = archive::ArchiveFile { path, topic: "t".into(), partition: 0, start_offset: 5, gzip: gz, size: bytes.len() as u64 };
        let b = f.read();
        for (i, r) in b.records.iter().enumerate() {
            prop_assert_eq!(r.offset, 5 + i as i64);
        }
    }
}

/// Inputs that found bugs, kept as plain cases.
#[test]
fn fuzz_found_cases_stay_fixed() {
    let t = topo();
    // `"index": false` was taken as ind 0.
    assert!(prepare(&t, 0, br#"{"index": false, "category": "x"}"#).is_err());
    // 2^64 saturated to i64::MAX and replaced that post.
    assert!(prepare(&t, 1, br#"{"ind": 18446744073709551616, "country": "x"}"#).is_err());
    assert!(prepare(&t, 2, br#"{"ind": -1e30, "age": 3}"#).is_err());
}

mod bodies {
    //! REST Proxy and Kinesis bodies through the router: never a 5xx.
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    struct App {
        app: axum::Router,
        rt: tokio::runtime::Runtime,
        _dir: tempfile::TempDir,
    }

    fn app() -> &'static App {
        static A: std::sync::OnceLock<App> = std::sync::OnceLock::new();
        A.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let t = topo();
            let handle = Arc::new(pinstream::live_handle::LiveHandle::default());
            handle.set_store(Arc::new(
                pinstream::state::store::Store::open(&dir.path().join("s"), &t).unwrap(),
            ));
            let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
            for k in ["pin", "geo", "user"] {
                mock.create_topic(&format!("f.{k}"), 1, 1).unwrap();
            }
            let ingest = pinstream::http::Ingest::new(&pinstream::kafka::KafkaOptions {
                brokers: mock.bootstrap_servers(),
                ..Default::default()
            })
            .unwrap();
            // Kept for the whole test process (not Sync, so not in the static).
            std::mem::forget(mock);
            let opts = pinstream::http::HttpOptions {
                body_limit: 64 << 10,
                ..Default::default()
            };
            App {
                app: pinstream::http::router(t, handle, Some(ingest), &opts),
                rt: tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap(),
                _dir: dir,
            }
        })
    }

    fn body_shape() -> impl Strategy<Value = String> {
        prop_oneof![
            any_json().prop_map(|v| json!({"records": [{"value": v}]}).to_string()),
            any_json().prop_map(|v| json!({"records": v}).to_string()),
            (any_json(), any_json())
                .prop_map(|(d, k)| json!({"StreamName": "streaming-f-pin", "Data": d, "PartitionKey": k}).to_string()),
            any_json().prop_map(|v| json!({"records": [{"data": v, "partition-key": "k"}]}).to_string()),
            any_json().prop_map(|v| v.to_string()),
            ".{0,40}",
        ]
    }

    proptest! {
        #![proptest_config(config(200))]

        #[test]
        fn ingest_bodies_never_get_a_5xx(route in 0usize..4, body in body_shape(), ct in prop_oneof![Just("application/vnd.kafka.json.v2+json"), Just("application/json"), Just("text/plain")]) {
            let a = app();
            let (method, uri) = match route {
                0 => ("POST", "/topics/f.pin"),
                1 => ("PUT", "/streams/streaming-f-geo/record"),
                2 => ("POST", "/streams/streaming-f-user/records"),
                _ => ("POST", "/topics/f.nope"),
            };
            let req = Request::builder().method(method).uri(uri).header("content-type", ct).body(Body::from(body.clone())).unwrap();
            let r = a.rt.block_on(a.app.clone().oneshot(req)).unwrap();
            prop_assert!(!r.status().is_server_error(), "{} {} {}: {}", method, uri, body, r.status());
        }
    }
}
