//! Regression tests for the HTTP defects found by hostile probing (issue 8):
//! slow bodies, connection floods, 100-continue, non-JSON errors, the token
//! scheme, duplicate parameters, the Kinesis routes emulators call. Real
//! sockets where the defect lives below the router.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use pinstream::http::{self, HttpOptions, Ingest, Server};
use pinstream::kafka::KafkaOptions;
use pinstream::live_handle::LiveHandle;
use pinstream::state::store::Store;

const PREFIX: &str = "h";

struct Fixture {
    app: Router,
    _mock: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    _dir: tempfile::TempDir,
}

fn fixture(opts: &HttpOptions) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let topo = Arc::new(pinstream::load_topology(pinstream::PINTEREST_TOPOLOGY).unwrap());
    let handle = Arc::new(LiveHandle::default());
    handle.set_store(Arc::new(Store::open(&dir.path().join("state"), &topo).unwrap()));
    handle.set_ready(true);
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    for t in ["pin", "geo", "user"] {
        mock.create_topic(&format!("{PREFIX}.{t}"), 2, 1).unwrap();
    }
    let ingest = Ingest::new(&KafkaOptions {
        brokers: mock.bootstrap_servers(),
        ..Default::default()
    })
    .unwrap();
    Fixture {
        app: http::router(topo, handle, Some(ingest), opts),
        _mock: mock,
        _dir: dir,
    }
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 24).await.unwrap();
    if status.is_client_error() || status.is_server_error() {
        assert!(
            ct.starts_with("application/json"),
            "{status}: not JSON ({ct}): {bytes:?}"
        );
    }
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// Sends raw bytes and reads what comes back until the server closes or
/// `wait` passes.
fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let until = Instant::now() + wait;
    while Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve(opts: HttpOptions) -> (Server, Fixture) {
    let opts = HttpOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..opts
    };
    let f = fixture(&opts);
    (Server::start(f.app.clone(), &opts).unwrap(), f)
}

#[test]
fn regression_slow_request_bodies_do_not_starve_health_or_queries() {
    let (server, _f) = serve(HttpOptions {
        concurrency: 8,
        per_client: 1000,
        read_timeout: Duration::from_secs(4),
        ..Default::default()
    });
    let addr = server.addr();
    // Five times the ingest limit: headers and one body byte each, then nothing.
    let slow: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(
                format!("POST /topics/{PREFIX}.pin HTTP/1.1\r\nhost: x\r\ncontent-type: application/vnd.kafka.json.v2+json\r\ncontent-length: 100\r\n\r\n{{").as_bytes(),
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for path in ["/health", "/ready", "/v1/queries/category_by_country", "/metrics"] {
        let started = Instant::now();
        let got = raw(
            addr,
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
            Duration::from_secs(3),
        );
        assert!(got.starts_with("HTTP/1.1 200"), "{path}: {got}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path} waited {:?} behind slow ingest bodies",
            started.elapsed()
        );
    }
    // The slow ones end with 408 (those that got a turn) or 503 (the rest).
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(
            head.starts_with("HTTP/1.1 408") || head.starts_with("HTTP/1.1 503"),
            "{head}"
        );
    }
    server.stop();
}

#[test]
fn regression_one_client_cannot_hold_every_connection() {
    let (server, _f) = serve(HttpOptions {
        per_client: 5,
        read_timeout: Duration::from_secs(5),
        ..Default::default()
    });
    let addr = server.addr();
    let held: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let got = raw(addr, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n", Duration::from_secs(3));
    assert!(got.starts_with("HTTP/1.1 429"), "{got}");
    assert!(got.contains("\"error_code\":429"), "{got}");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let got = raw(
        addr,
        b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        Duration::from_secs(3),
    );
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    server.stop();
}

#[test]
fn regression_expect_100_continue_over_the_limit_gets_413_not_continue() {
    let (server, _f) = serve(HttpOptions {
        body_limit: 1000,
        ..Default::default()
    });
    let got = raw(
        server.addr(),
        format!("POST /topics/{PREFIX}.pin HTTP/1.1\r\nhost: x\r\ncontent-type: application/vnd.kafka.json.v2+json\r\ncontent-length: 5000\r\nexpect: 100-continue\r\n\r\n").as_bytes(),
        Duration::from_secs(3),
    );
    assert!(got.starts_with("HTTP/1.1 413"), "{got}");
    assert!(!got.contains("100 Continue"), "{got}");
    assert!(got.contains("\"error_code\":413"), "{got}");
    server.stop();
}

#[test]
fn regression_oversized_heads_get_json_errors_over_a_real_socket() {
    let (server, _f) = serve(HttpOptions::default());
    let long = format!(
        "GET /v1/queries/{} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        "x".repeat(9000)
    );
    let got = raw(server.addr(), long.as_bytes(), Duration::from_secs(3));
    assert!(
        got.starts_with("HTTP/1.1 414") && got.contains("\"error_code\":414"),
        "{got}"
    );
    let mut many = String::from("GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
    for i in 0..150 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let got = raw(server.addr(), many.as_bytes(), Duration::from_secs(3));
    assert!(
        got.starts_with("HTTP/1.1 431") && got.contains("\"error_code\":431"),
        "{got}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn regression_small_http_defects() {
    let f = fixture(&HttpOptions {
        token: Some("tok".into()),
        ..Default::default()
    });
    let app = &f.app;
    // The bearer scheme is case-insensitive.
    let body = r#"{"records":[{"value":{"ind":1,"timestamp":"2020-08-28 03:52:47","latitude":1.5,"longitude":2.5,"country":"Chad"}}]}"#;
    for auth in ["Bearer tok", "bearer tok", "BEARER tok"] {
        let req = Request::post(format!("/topics/{PREFIX}.geo"))
            .header("content-type", "application/vnd.kafka.json.v2+json")
            .header("authorization", auth)
            .body(Body::from(body))
            .unwrap();
        assert_eq!(call(app, req).await.0, StatusCode::OK, "{auth}");
    }
    // Duplicate query parameters are refused, in JSON.
    let (st, v) = call(
        app,
        get("/v1/queries/live_category_by_country?from=2020-01-01&from=2021-01-01"),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"].as_str().unwrap().contains("`from`"), "{v}");
    // What axum itself refuses (a path that is not UTF-8) is JSON too.
    let (st, v) = call(app, get("/v1/queries/%FF")).await;
    assert!(st.is_client_error(), "{st}");
    assert_eq!(v["error_code"], st.as_u16(), "{v}");
    // Without a token nothing is documented as protected; with one, it is.
    let open = fixture(&HttpOptions::default());
    let (_, doc) = call(&open.app, get("/openapi.json")).await;
    assert!(!doc.to_string().contains("\"security\""), "no token, no security");
    let (_, doc) = call(app, get("/openapi.json")).await;
    assert!(doc["paths"]["/metrics"]["get"]["security"].is_array());
}

#[tokio::test(flavor = "multi_thread")]
async fn regression_kinesis_routes_the_emulators_call() {
    let f = fixture(&HttpOptions::default());
    let app = &f.app;
    let stream = format!("streaming-{PREFIX}-pin");
    // DescribeStream.
    let (st, v) = call(app, get(&format!("/streams/{stream}"))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["StreamDescription"]["StreamName"], stream.as_str());
    assert_eq!(v["StreamDescription"]["StreamStatus"], "ACTIVE");
    assert_eq!(v["StreamDescription"]["Shards"].as_array().unwrap().len(), 2);
    let (st, _) = call(app, get("/streams/streaming-nope-pin")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // ListStreams paging.
    let (st, v) = call(app, get("/streams?Limit=2")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["StreamNames"].as_array().unwrap().len(), 2);
    assert_eq!(v["HasMoreStreams"], true);
    let last = v["StreamNames"][1].as_str().unwrap().to_string();
    let (_, v2) = call(app, get(&format!("/streams?ExclusiveStartStreamName={last}&Limit=2"))).await;
    assert_eq!(v2["StreamNames"].as_array().unwrap().len(), 1);
    assert_eq!(v2["HasMoreStreams"], false);
    let (st, _) = call(app, get("/streams?Limit=0")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // POST as well as PUT.
    let rec = r#"{"records":[{"data":{"index":5,"title":"t"},"partition-key":"k"}]}"#;
    let req = Request::post(format!("/streams/{stream}/records"))
        .header("content-type", "application/json")
        .body(Body::from(rec))
        .unwrap();
    let (st, v) = call(app, req).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["FailedRecordCount"], 0);
    let one = format!(r#"{{"StreamName":"{stream}","Data":{{"index":6}},"PartitionKey":"k"}}"#);
    let req = Request::post(format!("/streams/{stream}/record"))
        .header("content-type", "application/json")
        .body(Body::from(one))
        .unwrap();
    assert_eq!(call(app, req).await.0, StatusCode::OK);
}
