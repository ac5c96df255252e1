//! The live daemon against a real Kafka-protocol broker (tansu), started by
//! `.ci/run` and named by `PINSTREAM_TEST_BROKERS`. Topics are created with 3
//! partitions through the admin API (tansu does not auto-create them).
//! Without the variable these tests fail under CI and say how to run them
//! elsewhere.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn run_until_caught_up(bs: &str, prefix: &str, state: &str) {
    run(&[
        "run",
        "--brokers",
        bs,
        "--prefix",
        prefix,
        "--state-dir",
        state,
        "--commit-interval-ms",
        "300",
        "--stop-when-idle",
        "3",
    ]);
}

#[test]
fn tansu_live_answers_equal_replay_and_survive_sigkill() {
    let Some(bs) = test_brokers() else { return };
    let prefix = format!("t{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let posts = 3000;
    emulate_to_kafka(&bs, &prefix, posts, 31, &["--create-topics", "3"]);
    let want = replayed(dir.path(), posts, 31, &prefix);

    // One uninterrupted run.
    let clean = dir.path().join("clean").display().to_string();
    run_until_caught_up(&bs, &prefix, &clean);
    assert_same_answers(&answers(&clean), &want, "uninterrupted run");

    // A run killed with SIGKILL at several points, then finished.
    let state = dir.path().join("killed").display().to_string();
    for ms in [300u64, 700, 200] {
        let mut child = cmd()
            .args([
                "run",
                "--brokers",
                &bs,
                "--prefix",
                &prefix,
                "--state-dir",
                &state,
                "--commit-interval-ms",
                "100",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        child.kill().unwrap();
        status_within(&mut child, 120, "child");
    }
    run_until_caught_up(&bs, &prefix, &state);
    let got = answers(&state);
    if got != want {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .create()
            .unwrap();
        for line in run(&["positions", "--state-dir", &state]).0.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let wm = c
                .fetch_watermarks(
                    v["topic"].as_str().unwrap(),
                    v["partition"].as_i64().unwrap() as i32,
                    Duration::from_secs(5),
                )
                .unwrap();
            eprintln!("position {line} broker {wm:?}");
        }
    }
    assert_same_answers(&got, &want, "after SIGKILLs");
}

#[test]
fn tansu_dead_letters_reach_the_dlq_topic() {
    let Some(bs) = test_brokers() else { return };
    let prefix = format!("d{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    emulate_to_kafka(&bs, &prefix, 200, 5, &["--create-topics", "3"]);
    produce_raw(
        &bs,
        &format!("{prefix}.geo"),
        0,
        &["{\"ind\": ", "{\"country\": \"Chad\"}"],
    );
    let state = dir.path().join("state").display().to_string();
    let (_, err) = run(&[
        "run",
        "--brokers",
        &bs,
        "--prefix",
        &prefix,
        "--state-dir",
        &state,
        "--stop-when-idle",
        "3",
    ]);
    assert!(err.contains("2 dead letters"), "{err}");
    assert_eq!(answers(&state), replayed(dir.path(), 200, 5, &prefix));
}

#[test]
fn tansu_unknown_topic_is_a_clear_error() {
    let Some(bs) = test_brokers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = cmd()
        .args([
            "run",
            "--brokers",
            &bs,
            "--prefix",
            "no-such-prefix",
            "--state-dir",
            dir.path().join("s").to_str().unwrap(),
        ])
        .output_within_secs(300);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("does not exist"), "{err}");
}

/// Regression (issue 8, defect 8): a missing dead-letter topic is created
/// (one partition) when the broker allows it, and the letters land there.
#[test]
fn tansu_missing_dead_letter_topic_is_created() {
    let Some(bs) = test_brokers() else { return };
    let prefix = format!("nodlq{}", std::process::id());
    let kafka = pinstream::kafka::KafkaOptions {
        brokers: bs.clone(),
        ..Default::default()
    };
    let topics: Vec<String> = ["pin", "geo", "user"].iter().map(|t| format!("{prefix}.{t}")).collect();
    pinstream::kafka::create_topics(&kafka, &topics, 2).unwrap();
    emulate_to_kafka(&bs, &prefix, 50, 5, &[]);
    produce_raw(&bs, &format!("{prefix}.geo"), 0, &["not json", "{\"country\": \"x\"}"]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").display().to_string();
    run_until_caught_up(&bs, &prefix, &state);
    // Counted by reading: tansu's high watermark is the last batch's base offset + 1.
    use rdkafka::consumer::Consumer;
    let c: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("group.id", "dlq-created-check")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&format!("{prefix}.dlq"), 0, rdkafka::Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut letters = 0;
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while letters < 2 && std::time::Instant::now() < until {
        if let Some(Ok(_)) = c.poll(Duration::from_millis(200)) {
            letters += 1;
        }
    }
    assert_eq!(letters, 2, "both dead letters in the created topic");
    assert_same_answers(
        &answers(&state),
        &replayed(dir.path(), 50, 5, &prefix),
        "valid records counted",
    );
}
