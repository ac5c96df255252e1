//! The archiver (`run --archive-to`, also on `demo`): what the daemon
//! consumed, written in the S3-sink layout, replays to the daemon's own
//! answers; through SIGKILLs nothing is lost (no gaps) and repeats count
//! once; an `s3://` target works the same against moto.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;

fn demo_archiving(extra: &[&str]) -> (Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("archive").display().to_string();
    let mut args = vec![
        "demo",
        "--posts",
        "1500",
        "--rate",
        "20000",
        "--format",
        "json",
        "--archive-to",
        &to,
    ];
    args.extend(extra);
    let (stdout, _) = run(&args);
    (serde_json::from_str(&stdout).unwrap(), dir)
}

fn check_line(archive: &str, extra: &[&str]) -> String {
    let mut args = vec!["archive", "check", archive];
    args.extend(extra);
    let out = cmd().args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "archive check failed:\n{text}");
    text.lines().find(|l| l.starts_with("check:")).unwrap().to_string()
}

fn field(line: &str, name: &str) -> u64 {
    stat_of(line, "check:", name)
}

#[test]
fn the_demos_archive_replays_to_the_demos_answers() {
    let (live, dir) = demo_archiving(&["--archive-flush-size", "100"]);
    let archive = dir.path().join("archive");
    assert_same_answers(
        &replay(&archive, &[]),
        &live,
        "replay of the archive vs the live answers",
    );
    let line = check_line(&archive.display().to_string(), &[]);
    assert_eq!((field(&line, "gaps"), field(&line, "overlaps")), (0, 0), "{line}");
    // flush.size bounds every object.
    for (_, _, _, path) in archive_files(&archive) {
        assert!(read_lines(&path).len() <= 100, "{}", path.display());
    }
}

#[test]
fn a_gzip_hourly_archive_replays_the_same() {
    let (live, dir) = demo_archiving(&["--archive-gzip", "--archive-layout", "hourly"]);
    let archive = dir.path().join("archive");
    let files = archive_files(&archive);
    assert!(!files.is_empty());
    for (_, _, _, path) in &files {
        let p = path.to_string_lossy();
        assert!(
            p.ends_with(".json.gz") && p.contains("/year=") && p.contains("/hour="),
            "{p}"
        );
    }
    assert_same_answers(&replay(&archive, &[]), &live, "gzip hourly archive");
}

#[test]
fn tansu_archive_survives_sigkill_without_gaps() {
    let Some(bs) = test_brokers() else { return };
    let prefix = format!("a{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let posts = 3000;
    emulate_to_kafka(&bs, &prefix, posts, 33, &["--create-topics", "3"]);
    let want = replayed(dir.path(), posts, 33, &prefix);
    let state = dir.path().join("state").display().to_string();
    let to = dir.path().join("archived").display().to_string();
    let daemon = |extra: &[&str]| {
        let mut args = vec![
            "run",
            "--brokers",
            &bs,
            "--prefix",
            &prefix,
            "--state-dir",
            &state,
            "--commit-interval-ms",
            "100",
            "--archive-to",
            &to,
            "--archive-flush-size",
            "150",
        ];
        args.extend(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    kill_after(&daemon(&[]), &[400, 900]);
    let args = daemon(&["--stop-when-idle", "3"]);
    run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_same_answers(&answers(&state), &want, "daemon after SIGKILLs");
    // Every consumed record is in the archive: no gaps; objects written
    // after a commit and before a kill repeat records, counted once.
    let line = check_line(&to, &[]);
    assert_eq!(field(&line, "gaps"), 0, "{line}");
    let archived = std::path::Path::new(&to);
    assert_same_answers(&replay(archived, &[]), &want, "replay of the archive after SIGKILLs");
}

#[test]
fn demo_archives_to_s3_and_replay_reads_it_back() {
    let Ok(ep) = std::env::var("PINSTREAM_TEST_S3") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run this against an S3 server (PINSTREAM_TEST_S3)"
        );
        return;
    };
    let bucket = format!("pinstream-archiver-{}", std::process::id());
    let status = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1], method='PUT'))",
            &format!("{ep}/{bucket}"),
        ])
        .status()
        .unwrap();
    assert!(status.success(), "create bucket {bucket}");
    let url = format!("s3://{bucket}/live");
    let envs = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ];
    let out = cmd()
        .args([
            "demo",
            "--posts",
            "800",
            "--rate",
            "20000",
            "--format",
            "json",
            "--archive-to",
            &url,
            "--s3-endpoint",
            &ep,
        ])
        .envs(envs)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let live: Value = serde_json::from_slice(&out.stdout).unwrap();
    let back = cmd()
        .args(["replay", "--archive", &url, "--s3-endpoint", &ep, "--quiet"])
        .envs(envs)
        .output()
        .unwrap();
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    let got: Value = serde_json::from_slice(&back.stdout).unwrap();
    assert_same_answers(&got, &live, "S3 archive vs live");
}

/// `run --bootstrap-from-archive`: a daemon with a fresh state replays what
/// another daemon archived, then continues from Kafka after the archived
/// offsets; its answers equal a pure live run over all the records, and a
/// restart with the same flag changes nothing.
#[test]
fn tansu_bootstrap_from_archive_then_live_equals_a_pure_live_run() {
    let Some(bs) = test_brokers() else { return };
    let prefix = format!("b{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    let (archived, first, second, pure) = (path("archived"), path("first"), path("second"), path("pure"));
    let daemon = |state: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--brokers",
            &bs,
            "--prefix",
            &prefix,
            "--state-dir",
            state,
            "--commit-interval-ms",
            "200",
            "--stop-when-idle",
            "3",
        ];
        args.extend(extra);
        run(&args).1
    };
    emulate_to_kafka(&bs, &prefix, 1500, 71, &["--create-topics", "3"]);
    daemon(&first, &["--archive-to", &archived]);
    // The same seed again, longer: re-deliveries of the first 1,500 posts
    // and 700 new ones. (Another seed would send *different* records for
    // the same ind on random partitions, whose "later" depends on the
    // order partitions are consumed in, in any run.)
    emulate_to_kafka(&bs, &prefix, 2200, 71, &[]);

    let boot = daemon(&second, &["--bootstrap-from-archive", &archived]);
    let live = daemon(&pure, &[]);
    assert_same_answers(&answers(&second), &answers(&pure), "bootstrap + live vs pure live");
    let consumed = |stderr: &str| stat_of(stderr, "stats:", "records");
    assert!(boot.contains("bootstrap: ") && consumed(&boot) > 0, "{boot}");
    assert!(
        consumed(&boot) < consumed(&live),
        "after the bootstrap only the records past the archive come from Kafka:\n{boot}"
    );
    // A restart with the same flag: everything is in the state already.
    let again = daemon(&second, &["--bootstrap-from-archive", &archived]);
    assert_eq!(consumed(&again), 0, "{again}");
    assert_same_answers(&answers(&second), &answers(&pure), "after a restart");
}
