//! End to end over HTTP against the real broker `.ci/run` starts: the
//! emulator posts as the seeds' script did (REST Proxy route) → pinstream's
//! ingest produces to tansu → the daemon consumes → `/v1/queries/*` equal
//! `pinstream replay` of the same deliveries (and the reference).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Map, Value};

fn brokers() -> Option<String> {
    match std::env::var("PINSTREAM_TEST_BROKERS") {
        Ok(b) => Some(b),
        Err(_) => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must run these against a broker: set PINSTREAM_TEST_BROKERS (.ci/run starts tansu)"
            );
            eprintln!("skipped: set PINSTREAM_TEST_BROKERS=host:port of a Kafka-protocol broker (see .ci/run)");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(url: &str) -> Option<Value> {
    let text = ureq::get(url)
        .timeout(Duration::from_secs(5))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    serde_json::from_str(&text).ok()
}

#[test]
fn tansu_http_ingest_to_live_queries_equal_replay() {
    let Some(bs) = brokers() else { return };
    let prefix = format!("h{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let topics: Vec<String> = ["pin", "geo", "user", "dlq"]
        .iter()
        .map(|t| format!("{prefix}.{t}"))
        .collect();
    let kafka = pinstream::kafka::KafkaOptions {
        brokers: bs.clone(),
        ..Default::default()
    };
    pinstream::kafka::create_topics(&kafka, &topics, 3).unwrap();

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let state = dir.path().join("state");
    let mut daemon = cmd()
        .args([
            "run",
            "--brokers",
            &bs,
            "--prefix",
            &prefix,
            "--commit-interval-ms",
            "200",
        ])
        .args([
            "--state-dir",
            state.to_str().unwrap(),
            "--http",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&format!("{base}/ready")).is_none_or(|r| r["ready"] != Value::Bool(true)) {
        assert!(Instant::now() < deadline, "daemon not ready in 30 s");
        assert!(daemon.try_wait().unwrap().is_none(), "daemon exited");
        std::thread::sleep(Duration::from_millis(100));
    }

    let posts = 1500;
    run(&[
        "emulate",
        "--http",
        &base,
        "--prefix",
        &prefix,
        "--posts",
        &posts.to_string(),
        "--seed",
        "21",
    ]);
    let want = replayed(dir.path(), posts, 21, &prefix);

    // Poll the live answers until they match (bounded); then compare for
    // the diff either way.
    let names: Vec<String> = want.as_object().unwrap().keys().cloned().collect();
    let fetch = || {
        let mut m = Map::new();
        for n in &names {
            m.insert(n.clone(), get(&format!("{base}/v1/queries/{n}")).unwrap_or(Value::Null));
        }
        Value::Object(m)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = fetch();
    while got != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        got = fetch();
    }
    let _ = std::process::Command::new("kill").arg(daemon.id().to_string()).status();
    let out = daemon.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same_answers(&got, &want, "live HTTP answers after REST Proxy ingest");
    // The state the daemon left answers the same.
    assert_same_answers(
        &answers(state.to_str().unwrap()),
        &want,
        "pinstream answers after the run",
    );
}
