//! Router tests (`tower::ServiceExt::oneshot`) for every route and error of
//! the HTTP API, over a real RocksDB state (replayed from an emulated
//! archive) and rdkafka's in-process mock cluster for the ingest routes.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use serde_json::{json, Value};
use tower::ServiceExt;

use common::*;
use pinstream::http::{self, HttpOptions, Ingest};
use pinstream::kafka::KafkaOptions;
use pinstream::live_handle::LiveHandle;
use pinstream::state::store::Store;
use pinstream::topology::Topology;

const PREFIX: &str = "p";
const TOKEN: &str = "s3cret";

struct Fixture {
    app: Router,
    /// `pinstream replay` of the same archive.
    replayed: Value,
    brokers: String,
    _mock: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    _dir: tempfile::TempDir,
}

fn topo() -> Arc<Topology> {
    Arc::new(pinstream::load_topology(pinstream::PINTEREST_TOPOLOGY).unwrap())
}

fn fixture(body_limit: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    emulate(&archive, 400, 9, &["--prefix", PREFIX]);
    let state = dir.path().join("state");
    let (out, _) = run(&[
        "replay",
        "--archive",
        archive.to_str().unwrap(),
        "--prefix",
        PREFIX,
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let replayed: Value = serde_json::from_str(&out).unwrap();
    let topo = topo();
    let handle = Arc::new(LiveHandle::default());
    handle.set_store(Arc::new(Store::open(&state, &topo).unwrap()));
    handle.set_ready(true);
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    for t in ["pin", "geo", "user"] {
        mock.create_topic(&format!("{PREFIX}.{t}"), 3, 1).unwrap();
    }
    let brokers = mock.bootstrap_servers();
    let ingest = Ingest::new(&KafkaOptions {
        brokers: brokers.clone(),
        ..Default::default()
    })
    .unwrap();
    let opts = HttpOptions {
        token: Some(TOKEN.into()),
        body_limit,
        ..Default::default()
    };
    Fixture {
        app: http::router(topo, handle, Some(ingest), &opts),
        replayed,
        brokers,
        _mock: mock,
        _dir: dir,
    }
}

/// Sends a request; returns status and body (JSON when it parses, else a string).
async fn call(app: &Router, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, Value) {
    call(app, "GET", uri, &[], "").await
}

fn assert_error(got: &(StatusCode, Value), status: u16, code: u64, says: &str) {
    assert_eq!(got.0.as_u16(), status, "{got:?}");
    assert_eq!(got.1["error_code"], json!(code), "{got:?}");
    let msg = got.1["message"].as_str().unwrap_or_default();
    assert!(msg.contains(says), "message {msg:?} should say {says:?}");
}

const KAFKA_JSON: (&str, &str) = ("Content-Type", "application/vnd.kafka.json.v2+json");
const AUTH: (&str, &str) = ("Authorization", "Bearer s3cret");

#[tokio::test(flavor = "multi_thread")]
async fn queries_equal_replay_and_reject_bad_parameters() {
    let f = fixture(1 << 20);
    let (s, list) = get(&f.app, "/v1/queries").await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    for (name, rows) in f.replayed.as_object().unwrap() {
        assert!(names.contains(&name.as_str()), "{name} not listed");
        let (s, got) = get(&f.app, &format!("/v1/queries/{name}")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(&got, rows, "query {name}");
        // Served again from the cache: the same.
        assert_eq!(&get(&f.app, &format!("/v1/queries/{name}")).await.1, rows);
    }
    assert_error(&get(&f.app, "/v1/queries/nope").await, 404, 404, "unknown query `nope`");
    assert_error(
        &get(&f.app, "/v1/queries/category_by_country?from=2020-01-01").await,
        400,
        400,
        "not windowed",
    );
    assert_error(
        &get(&f.app, "/v1/queries/category_by_country?x=1").await,
        400,
        400,
        "unknown parameter `x`",
    );

    // A windowed query: the whole range equals no range; an empty range is empty;
    // a bad bound is a 400.
    let windowed: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["windowed"] == json!(true))
        .collect();
    assert!(!windowed.is_empty());
    for q in windowed {
        let name = q["name"].as_str().unwrap();
        let all = get(&f.app, &format!("/v1/queries/{name}")).await.1;
        assert!(!all.as_array().unwrap().is_empty(), "{name} has rows");
        let wide = get(&f.app, &format!("/v1/queries/{name}?from=1970-01-02&to=2100-01-01"))
            .await
            .1;
        assert_eq!(all, wide, "{name}");
        let none = get(&f.app, &format!("/v1/queries/{name}?from=1971-01-01&to=1971-01-02")).await;
        assert_eq!(none.1, json!([]), "{name}");
        assert_error(
            &get(&f.app, &format!("/v1/queries/{name}?from=soon")).await,
            400,
            400,
            "`from=soon`",
        );
        assert_error(
            &get(&f.app, &format!("/v1/queries/{name}?from=2021-01-01&to=2020-01-01")).await,
            400,
            400,
            "before",
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_expose_raw_values_and_quantiles() {
    let f = fixture(1 << 20);
    let (s, list) = get(&f.app, "/v1/stores").await;
    assert_eq!(s, StatusCode::OK);
    let stores = list.as_array().unwrap();
    let quantile = stores.iter().find(|s| s["function"] == "quantiles").unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let count = stores.iter().find(|s| s["function"] == "count").unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();

    let (s, q) = get(&f.app, &format!("/v1/stores/{quantile}?q=0.1,0.5,0.99")).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    let rows = q["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        let (a, b, c) = (
            r["q0.1"].as_f64().unwrap(),
            r["q0.5"].as_f64().unwrap(),
            r["q0.99"].as_f64().unwrap(),
        );
        assert!(a <= b && b <= c, "quantiles out of order: {r}");
    }
    // key filters to one group.
    let first = &rows[0];
    let group = q["columns"][0].as_str().unwrap();
    let key = first[group]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| first[group].to_string());
    let one = get(
        &f.app,
        &format!("/v1/stores/{quantile}?q=0.1,0.5,0.99&key={}", urlencode(&key)),
    )
    .await
    .1;
    assert_eq!(one["rows"], json!([first]));

    let (s, c) = get(&f.app, &format!("/v1/stores/{count}")).await;
    assert_eq!(s, StatusCode::OK);
    let total: i64 = c["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_i64().unwrap())
        .sum();
    assert!(total > 0);

    assert_error(
        &get(&f.app, &format!("/v1/stores/{count}?q=0.5")).await,
        400,
        400,
        "quantile stores only",
    );
    assert_error(
        &get(&f.app, &format!("/v1/stores/{quantile}?q=2")).await,
        400,
        400,
        "`q=2`",
    );
    assert_error(
        &get(&f.app, &format!("/v1/stores/{quantile}?key=a,b,c,d")).await,
        400,
        400,
        "`key` has 4 parts",
    );
    assert_error(&get(&f.app, "/v1/stores/nope").await, 404, 404, "unknown store");
}

/// The request `user_posting_emulation.py` sends (spec §5): python-requests'
/// headers and `json.dumps(..., default=str)` of a pin row.
const SEED_PIN_BODY: &str = r#"{"records": [{"value": {"index": 7528, "unique_id": "fbe53c66-3442-4773-b19e-d3ec6f54dddf", "title": "No Title Data Available", "description": "No description available Story format", "poster_name": "User Info Error", "follower_count": "User Info Error", "tag_list": "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e", "is_image_or_video": "multi-video(story page format)", "image_src": "Image src error.", "downloaded": 0, "save_location": "Local save in /data/mens-fashion", "category": "mens-fashion"}}]}"#;

#[tokio::test(flavor = "multi_thread")]
async fn rest_proxy_accepts_the_seeds_request_and_produces_keyed_by_ind() {
    let f = fixture(1 << 20);
    let headers = [
        ("Host", "127.0.0.1:8082"),
        ("User-Agent", "python-requests/2.31.0"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Accept", "*/*"),
        ("Connection", "keep-alive"),
        KAFKA_JSON,
        AUTH,
    ];
    let (s, r) = call(&f.app, "POST", "/topics/p.pin", &headers, SEED_PIN_BODY).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["key_schema_id"], Value::Null);
    let off = &r["offsets"][0];
    assert_eq!(off["error_code"], Value::Null);
    let (partition, offset) = (
        off["partition"].as_i64().unwrap() as i32,
        off["offset"].as_i64().unwrap(),
    );

    // The record is in Kafka, keyed by its index, value as sent.
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &f.brokers)
        .set("group.id", "t")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("p.pin", partition, rdkafka::Offset::Offset(offset))
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let msg = (0..100)
        .find_map(|_| consumer.poll(std::time::Duration::from_millis(100)))
        .expect("record in Kafka")
        .unwrap();
    assert_eq!(msg.key(), Some(&b"7528"[..]));
    let sent: Value = serde_json::from_str(SEED_PIN_BODY).unwrap();
    let got: Value = serde_json::from_slice(msg.payload().unwrap()).unwrap();
    assert_eq!(got, sent["records"][0]["value"]);

    // Same ind on the three topics -> the same partition number.
    let geo = r#"{"records": [{"value": {"ind": 7528, "timestamp": "2020-08-28 03:52:47", "latitude": -89.9787, "longitude": -173.293, "country": "Albania"}}]}"#;
    let (_, g) = call(&f.app, "POST", "/topics/p.geo", &[KAFKA_JSON, AUTH], geo).await;
    assert_eq!(g["offsets"][0]["partition"], json!(partition));
    // application/json is accepted too; explicit key and partition are kept.
    let (s, e) = call(
        &f.app,
        "POST",
        "/topics/p.user",
        &[("Content-Type", "application/json"), AUTH],
        r#"{"records":[{"key":"k","partition":2,"value":{"ind":1}}]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e["offsets"][0]["partition"], json!(2));
    drop(tpl);
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_proxy_errors_are_the_proxys() {
    let f = fixture(4096);
    let ok = r#"{"records":[{"value":{"ind":1}}]}"#;
    let post = |uri: &'static str, h: &'static [(&'static str, &'static str)], b: String| {
        let app = f.app.clone();
        async move { call(&app, "POST", uri, h, &b).await }
    };
    assert_error(
        &post("/topics/p.pin", &[KAFKA_JSON], ok.into()).await,
        401,
        401,
        "Bearer",
    );
    assert_error(
        &post(
            "/topics/p.pin",
            &[KAFKA_JSON, ("Authorization", "Bearer wrong!")],
            ok.into(),
        )
        .await,
        401,
        401,
        "Bearer",
    );
    assert_error(
        &post("/topics/p.pin", &[("Content-Type", "text/plain"), AUTH], ok.into()).await,
        415,
        415,
        "415",
    );
    assert_error(
        &post("/topics/p.pin", &[AUTH], ok.into()).await,
        415,
        415,
        "no Content-Type",
    );
    assert_error(
        &post("/topics/p.nope", &[KAFKA_JSON, AUTH], ok.into()).await,
        404,
        40401,
        "Topic not found",
    );
    assert_error(
        &post("/topics/p.pin", &[KAFKA_JSON, AUTH], "{\"records\":".into()).await,
        400,
        400,
        "not valid JSON",
    );
    assert_error(
        &post("/topics/p.pin", &[KAFKA_JSON, AUTH], "[]".into()).await,
        422,
        42201,
        "records",
    );
    assert_error(
        &post("/topics/p.pin", &[KAFKA_JSON, AUTH], r#"{"records":[]}"#.into()).await,
        422,
        42201,
        "empty",
    );
    assert_error(
        &post(
            "/topics/p.pin",
            &[KAFKA_JSON, AUTH],
            r#"{"records":[{"key":1}]}"#.into(),
        )
        .await,
        422,
        42201,
        "no `value`",
    );
    assert_error(
        &post(
            "/topics/p.pin",
            &[KAFKA_JSON, AUTH],
            r#"{"records":[{"value":1,"x":2}]}"#.into(),
        )
        .await,
        422,
        42201,
        "unrecognized field `x`",
    );
    assert_error(
        &post(
            "/topics/p.pin",
            &[KAFKA_JSON, AUTH],
            r#"{"records":[{"value":1,"partition":9}]}"#.into(),
        )
        .await,
        404,
        40402,
        "Partition not found",
    );
    let big = format!(r#"{{"records":[{{"value":"{}"}}]}}"#, "x".repeat(5000));
    assert_error(&post("/topics/p.pin", &[KAFKA_JSON, AUTH], big).await, 413, 413, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn kinesis_routes_map_streams_to_topics() {
    let f = fixture(1 << 20);
    let json_ct = ("Content-Type", "application/json");
    let body = r#"{"StreamName": "streaming-p-geo", "Data": {"ind": 5, "timestamp": "2020-08-28T03:52:47", "latitude": 1.5, "longitude": 2.5, "country": "Chad"}, "PartitionKey": "partition-1"}"#;
    let (s, r) = call(&f.app, "PUT", "/streams/streaming-p-geo/record", &[json_ct, AUTH], body).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert!(r["SequenceNumber"].as_str().unwrap().parse::<i64>().is_ok(), "{r}");
    assert!(r["ShardId"].as_str().unwrap().starts_with("shardId-"), "{r}");

    // The seeds' API Gateway shape for PutRecords, and Kinesis' own with base64 Data.
    let many =
        r#"{"records": [{"data": {"ind": 1}, "partition-key": "a"}, {"data": {"ind": 2}, "partition-key": "b"}]}"#;
    let (s, r) = call(
        &f.app,
        "PUT",
        "/streams/streaming-p-user/records",
        &[json_ct, AUTH],
        many,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["FailedRecordCount"], json!(0));
    assert_eq!(r["Records"].as_array().unwrap().len(), 2);
    let b64 = r#"{"Records": [{"Data": "eyJpbmQiOiAzfQ==", "PartitionKey": "c"}]}"#;
    let (s, r) = call(
        &f.app,
        "PUT",
        "/streams/streaming-p-user/records",
        &[json_ct, AUTH],
        b64,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");

    let (s, l) = get(&f.app, "/streams").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        l["StreamNames"],
        json!(["streaming-p-geo", "streaming-p-pin", "streaming-p-user"])
    );
    let (s, t) = get(&f.app, "/topics").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t, json!(["p.geo", "p.pin", "p.user"]));

    let put = |uri: &'static str, b: &'static str| {
        let app = f.app.clone();
        async move { call(&app, "PUT", uri, &[("Content-Type", "application/json"), AUTH], b).await }
    };
    assert_error(&put("/streams/kinesis-p-pin/record", body).await, 404, 404, "not found");
    assert_error(
        &put(
            "/streams/streaming-q-pin/record",
            r#"{"Data":{"ind":1},"PartitionKey":"k"}"#,
        )
        .await,
        404,
        40401,
        "Topic not found",
    );
    assert_error(
        &put("/streams/streaming-p-geo/record", r#"{"Data":{"ind":1}}"#).await,
        400,
        400,
        "PartitionKey",
    );
    assert_error(
        &put("/streams/streaming-p-geo/record", r#"{"PartitionKey":"k"}"#).await,
        400,
        400,
        "`Data` is required",
    );
    assert_error(
        &put(
            "/streams/streaming-p-geo/record",
            r#"{"Data":"%%%","PartitionKey":"k"}"#,
        )
        .await,
        400,
        400,
        "base64",
    );
    assert_error(
        &put("/streams/streaming-p-pin/record", body).await,
        400,
        400,
        "does not match",
    );
    assert_error(
        &put("/streams/streaming-p-pin/records", r#"{"records": []}"#).await,
        400,
        400,
        "1 to 500",
    );
    assert_error(
        &call(
            &f.app,
            "PUT",
            "/streams/streaming-p-pin/record",
            &[AUTH, ("Content-Type", "text/xml")],
            "{}",
        )
        .await,
        415,
        415,
        "text/xml",
    );
    assert_error(
        &call(&f.app, "PUT", "/streams/streaming-p-pin/record", &[json_ct], body).await,
        401,
        401,
        "Bearer",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_routes_health_ready_metrics_and_unknown_routes() {
    let f = fixture(1 << 20);
    assert_eq!(get(&f.app, "/health").await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(get(&f.app, "/ready").await, (StatusCode::OK, json!({"ready": true})));
    assert_error(&get(&f.app, "/metrics").await, 401, 401, "Bearer");
    get(&f.app, "/v1/queries/category_by_country").await;
    let (s, m) = call(&f.app, "GET", "/metrics", &[AUTH], "").await;
    assert_eq!(s, StatusCode::OK);
    let text = m.as_str().unwrap();
    assert!(
        text.contains(r#"pinstream_http_requests_total{method="GET",route="/v1/queries/{name}",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"status="401""#), "{text}");
    assert!(text.contains("pinstream_end_to_end_latency_seconds"), "{text}");
    assert_error(&get(&f.app, "/nope").await, 404, 404, "no route GET /nope");
    assert_error(
        &call(&f.app, "DELETE", "/v1/queries", &[], "").await,
        405,
        405,
        "DELETE is not allowed",
    );

    // Not ready: state not open.
    let app = http::router(topo(), Arc::new(LiveHandle::default()), None, &HttpOptions::default());
    let (s, r) = get(&app, "/ready").await;
    assert_eq!((s, r["ready"].clone()), (StatusCode::SERVICE_UNAVAILABLE, json!(false)));
    // Without Kafka the ingest routes say so.
    assert_error(
        &call(&app, "POST", "/topics/p.pin", &[KAFKA_JSON], "{}").await,
        404,
        404,
        "ingest is not enabled",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_documents_exactly_the_served_routes() {
    let f = fixture(1 << 20);
    let (s, doc) = get(&f.app, "/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, ops) in paths {
        for (method, _) in ops.as_object().unwrap() {
            documented += 1;
            let uri = path
                .replace("{name}", "category_by_country")
                .replace("{store}", "posts_by_country_category")
                .replace("{topic}", "p.pin")
                .replace("{stream}", "streaming-p-pin");
            let (s, body) = call(&f.app, &method.to_uppercase(), &uri, &[AUTH], "").await;
            let no_route = body["message"].as_str().is_some_and(|m| m.starts_with("no route"));
            assert!(
                !no_route && s != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} documented but not served: {s} {body}"
            );
        }
    }
    assert_eq!(documented, http::ROUTES.len());
}

/// A seeded fuzz of every documented route: random methods, paths, query
/// strings, headers and bodies. Nothing may answer 5xx.
#[tokio::test(flavor = "multi_thread")]
async fn fuzzed_requests_never_get_a_5xx() {
    let f = fixture(64 << 10);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let junk = [
        "",
        "{",
        "[]",
        "null",
        "{}",
        "\u{0}\u{1}",
        r#"{"records":null}"#,
        r#"{"records":[null]}"#,
        r#"{"records":[{"value":null}]}"#,
        r#"{"records":[{"value":{"ind":"x"},"partition":-1}]}"#,
        r#"{"records":[{"value":1,"partition":1.5}]}"#,
        r#"{"Data":[],"PartitionKey":""}"#,
        r#"{"Data":{"ind":1},"PartitionKey":1}"#,
        r#"{"records":[{"data":null}]}"#,
        r#"{"Records":"x"}"#,
        r#"{"StreamName":5,"Data":1,"PartitionKey":"k"}"#,
        "\"aGVsbG8=\"",
    ];
    // Valid values per path parameter, so most requests get past routing
    // and reach the handlers' own checks.
    let valid = |param: &str, rng: &mut rand_chacha::ChaCha8Rng| -> String {
        let pick = |xs: &[&str], rng: &mut rand_chacha::ChaCha8Rng| xs[rng.gen_range(0..xs.len())].to_string();
        match param {
            "{name}" => pick(
                &[
                    "category_by_country",
                    "median_followers_by_age_group",
                    "live_median_followers_by_age_group",
                ],
                rng,
            ),
            "{store}" => pick(
                &[
                    "posts_by_country_category",
                    "followers_by_age_group",
                    "live_category_by_country",
                ],
                rng,
            ),
            "{topic}" => pick(&["p.pin", "p.geo", "p.user"], rng),
            _ => pick(&["streaming-p-pin", "streaming-p-geo"], rng),
        }
    };
    let junk_segs = ["%00", "..", "é", "x", "streaming--pin", "p.dlq"];
    let param_names = ["from", "to", "q", "key", "x", ""];
    let param_values = [
        "",
        "2020-01-01",
        "1598586767",
        "2020-08-28T03:52:47Z",
        "soon",
        "0.5,0.9",
        "nan",
        "-1",
        "2",
        "%ff",
        "%2B50",
        "18-24",
        "a,b,c,d,e",
        "1e308",
    ];
    let cts = [
        "application/vnd.kafka.json.v2+json",
        "application/json",
        "text/plain",
        "",
        "application/x-amz-json-1.1",
    ];
    let good_bodies = [
        r#"{"records":[{"value":{"ind":3,"country":"Chad"}}]}"#,
        r#"{"records":[{"value":{"index":4},"key":"k"},{"value":null,"partition":0}]}"#,
        r#"{"Data":{"ind":5},"PartitionKey":"partition-1"}"#,
        r#"{"records":[{"data":{"ind":6},"partition-key":"a"}]}"#,
    ];
    let mut served: std::collections::HashMap<&str, usize> = Default::default();
    let n = 3000;
    for _ in 0..n {
        let r = &http::ROUTES[rng.gen_range(0..http::ROUTES.len())];
        let method = if rng.gen_bool(0.75) {
            r.method
        } else {
            ["GET", "POST", "PUT", "DELETE", "PATCH"][rng.gen_range(0..5)]
        };
        let mut uri = String::new();
        for part in r.path.split('/').skip(1) {
            uri.push('/');
            if part.starts_with('{') {
                let seg = if rng.gen_bool(0.7) {
                    valid(part, &mut rng)
                } else if rng.gen_bool(0.8) {
                    junk_segs[rng.gen_range(0..junk_segs.len())].to_string()
                } else {
                    "x".repeat(rng.gen_range(1..400))
                };
                uri.push_str(&urlencode(&seg));
            } else {
                uri.push_str(part);
            }
        }
        for i in 0..rng.gen_range(0..4) {
            let name = param_names[rng.gen_range(0..param_names.len())];
            let value = param_values[rng.gen_range(0..param_values.len())];
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(&format!("{name}={value}"));
        }
        let body = match rng.gen_range(0..10) {
            0 => (0..rng.gen_range(0..200))
                .map(|_| rng.gen_range(0x20u8..0x7f) as char)
                .collect(),
            1..=4 => good_bodies[rng.gen_range(0..good_bodies.len())].to_string(),
            _ => junk[rng.gen_range(0..junk.len())].to_string(),
        };
        let ct = cts[rng.gen_range(0..cts.len())];
        let mut headers = vec![AUTH];
        if !ct.is_empty() {
            headers.push(("Content-Type", ct));
        }
        let (s, b) = call(&f.app, method, &uri, &headers, &body).await;
        assert!(!s.is_server_error(), "{method} {uri} {body:?} -> {s} {b}");
        if s.is_client_error() {
            assert!(
                b["error_code"].is_number(),
                "{method} {uri} -> {s} without a JSON error: {b}"
            );
        }
        if s.is_success() {
            *served.entry(r.path).or_default() += 1;
        }
    }
    // The fuzz reached every route's handler, not only its rejections.
    for r in http::ROUTES {
        assert!(
            served.get(r.path).copied().unwrap_or(0) > 0,
            "no request to {} succeeded: {served:?}",
            r.path
        );
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
