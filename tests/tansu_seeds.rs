//! Acceptance: the seeds' posting script (and, in Kinesis mode, their
//! streaming script) (tests/seeds/user_posting_emulation.py,
//! its posting code unchanged; rows from the real tables in data/ instead of RDS),
//! pointed at pinstream's REST Proxy route, against the real broker `.ci/run`
//! starts. The live answers must equal an independent computation over what
//! the script sent (the reference in tests/common) and `pinstream replay`.
//!
//! Needs python3 with `requests` (`.ci/run` installs python3-requests) and
//! PINSTREAM_TEST_BROKERS; under CI both are required.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn ready() -> Option<String> {
    let python = Command::new("python3")
        .args(["-c", "import requests"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        python || std::env::var("CI").is_err(),
        "CI must run this: python3 with requests is missing (.ci/run installs python3-requests)"
    );
    if !python {
        eprintln!("skipped: needs python3 with requests");
        return None;
    }
    test_brokers()
}

/// Sum of `pinstream_records_in_total` over sources (counted when the
/// commit that covers them is durable, so the answers hold them).
fn committed_records(base: &str) -> u64 {
    http_get(&format!("{base}/metrics"))
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

/// Runs the script in `mode` (`rest` or `kinesis`) against a fresh daemon and
/// checks the live answers.
fn check_script(bs: &str, mode: &str) {
    let prefix = format!("s{}{mode}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    create_topics(bs, &prefix);
    let state = dir.path().join("state");
    let (daemon, base) = http_daemon(bs, &prefix, &state);

    let posts = 400;
    let sent = dir.path().join("sent");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seeds/user_posting_emulation.py");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let out = Command::new("python3")
        .arg(&script)
        .args([&base, &prefix, &posts.to_string()])
        .arg(&sent)
        .arg(&data)
        .arg(mode)
        .output_within_secs(300);
    assert!(
        out.status.success(),
        "the seeds' script ({mode}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Wait (bounded) until the daemon has committed every record sent.
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed_records(&base) < 3 * posts && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(committed_records(&base), 3 * posts, "records consumed and committed");
    let names: Vec<String> = serde_json::from_str::<Value>(&http_get(&format!("{base}/v1/queries")).unwrap())
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["answer"] == Value::Bool(true))
        .map(|q| q["name"].as_str().unwrap().to_string())
        .collect();
    let live = live_answers(&base, &names);
    stop_daemon(daemon);

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

#[test]
fn tansu_seeds_posting_script_answers_equal_an_independent_computation() {
    let Some(bs) = ready() else { return };
    check_script(&bs, "rest");
}

#[test]
fn tansu_seeds_streaming_script_answers_equal_an_independent_computation() {
    let Some(bs) = ready() else { return };
    check_script(&bs, "kinesis");
}
