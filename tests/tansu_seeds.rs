//! Acceptance: the seeds' posting script (tests/seeds/user_posting_emulation.py,
//! its posting code unchanged; rows from the real tables in data/ instead of RDS),
//! pointed at pinstream's REST Proxy route, against the real broker `.ci/run`
//! starts. The live answers must equal an independent computation over what
//! the script sent (the reference in tests/common) and `pinstream replay`.
//!
//! Needs python3 with `requests` (`.ci/run` installs python3-requests) and
//! PINSTREAM_TEST_BROKERS; under CI both are required.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Map, Value};

fn ready() -> Option<String> {
    let python = Command::new("python3")
        .args(["-c", "import requests"])
        .status()
        .is_ok_and(|s| s.success());
    match (std::env::var("PINSTREAM_TEST_BROKERS"), python) {
        (Ok(b), true) => Some(b),
        (b, p) => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must run this: broker set = {}, python3 with requests = {p} (.ci/run provides both)",
                b.is_ok()
            );
            eprintln!("skipped: needs PINSTREAM_TEST_BROKERS and python3 with requests");
            None
        }
    }
}

fn get(url: &str) -> Option<String> {
    ureq::get(url)
        .timeout(Duration::from_secs(5))
        .call()
        .ok()?
        .into_string()
        .ok()
}

/// Sum of `pinstream_records_in_total` over sources (counted at commits).
fn committed_records(base: &str) -> u64 {
    get(&format!("{base}/metrics"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("pinstream_records_in_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// What the script sent, as an S3-sink archive (one partition per topic).
fn write_archive(sent: &Path, archive: &Path, prefix: &str) {
    for t in ["pin", "geo", "user"] {
        let topic = format!("{prefix}.{t}");
        let dir = archive.join("topics").join(&topic).join("partition=0");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            sent.join(format!("{t}.jsonl")),
            dir.join(format!("{topic}+0+0000000000.json")),
        )
        .unwrap();
    }
}

#[test]
fn tansu_seeds_posting_script_answers_equal_an_independent_computation() {
    let Some(bs) = ready() else { return };
    let prefix = format!("s{}", std::process::id());
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
    while get(&format!("{base}/ready")).is_none_or(|r| !r.contains("true")) {
        assert!(Instant::now() < deadline, "daemon not ready in 30 s");
        assert!(daemon.try_wait().unwrap().is_none(), "daemon exited");
        std::thread::sleep(Duration::from_millis(100));
    }

    let posts = 400;
    let sent = dir.path().join("sent");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seeds/user_posting_emulation.py");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let out = Command::new("python3")
        .arg(&script)
        .args([&base, &prefix, &posts.to_string()])
        .arg(&sent)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the seeds' script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Wait (bounded) until the daemon has committed every record sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed_records(&base) < 3 * posts && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(committed_records(&base), 3 * posts, "records consumed and committed");
    let names: Vec<String> = serde_json::from_str::<Value>(&get(&format!("{base}/v1/queries")).unwrap())
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["answer"] == Value::Bool(true))
        .map(|q| q["name"].as_str().unwrap().to_string())
        .collect();
    let mut live = Map::new();
    for n in &names {
        let body = get(&format!("{base}/v1/queries/{n}")).unwrap();
        live.insert(n.clone(), serde_json::from_str(&body).unwrap());
    }
    let live = Value::Object(live);
    let _ = Command::new("kill").arg(daemon.id().to_string()).status();
    let out = daemon.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let archive = dir.path().join("archive");
    write_archive(&sent, &archive, &prefix);
    let checked = assert_matches(&live, &reference(&archive, &prefix));
    assert!(checked > 0);
    assert_same_answers(
        &live,
        &replay(&archive, &[]),
        "live answers vs replay of what the script sent",
    );
}
