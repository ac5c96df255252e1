//! A broker stopped and restarted mid-run loses nothing: this test starts its
//! own tansu (sqlite storage, so the log survives the restart), runs the
//! daemon and a rate-limited emulator against it, kills the broker while
//! both are working, starts it again on the same port and file, and checks
//! the daemon's answers against a replay of the same deliveries.
//!
//! Needs `tansu` on PATH (`.ci/run` installs it); without it the test fails
//! under CI and is skipped elsewhere.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts tansu on `port` with its sqlite file in `dir`; waits until it listens.
fn start_tansu(dir: &Path, port: u16) -> Option<Child> {
    let url = format!("tcp://127.0.0.1:{port}");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("tansu.log"))
        .unwrap();
    let child = Command::new("tansu")
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "sqlite://tansu.db",
        ])
        .current_dir(dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must have tansu on PATH (.ci/run installs it): {e}"
            );
            eprintln!("skipped: tansu not on PATH (cargo install tansu --locked --features dynostore,libsql)");
            return None;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "tansu exited at start");
        assert!(Instant::now() < deadline, "tansu did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(child)
}

/// Stops the broker as a crash or a lost host would: SIGKILL. (tansu 0.6
/// on SIGTERM keeps accepting produce requests while its storage shuts down
/// and answers them with UNKNOWN_SERVER_ERROR, which producers must treat as
/// fatal; that is a broker quirk, not what this test is about.)
fn stop(mut child: Child) {
    child.kill().unwrap();
    status_within(&mut child, 120, "child");
}

#[test]
fn tansu_broker_stopped_and_restarted_mid_run_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    let port = free_port();
    let Some(broker) = start_tansu(&broker_dir, port) else {
        return;
    };
    let bs = format!("127.0.0.1:{port}");
    let prefix = "restart";
    let posts = 4000u64;
    // Topics first (one post), so the daemon can start before the bulk.
    emulate_to_kafka(&bs, prefix, 1, 3, &["--create-topics", "3"]);

    let state = dir.path().join("state").display().to_string();
    // The daemon runs until the test stops it: an idle limit cannot tell a
    // finished producer from one still waiting to reconnect after the
    // outage (measured: with --stop-when-idle 4 the daemon stopped, caught up
    // with what the restarted broker held, while the emulator's records were
    // still queued in it). Its HTTP API shows when it has everything.
    let http_port = free_port();
    let base = format!("http://127.0.0.1:{http_port}");
    let daemon_log = dir.path().join("daemon.log");
    let daemon = cmd()
        .env("RUST_LOG", "warn")
        .args([
            "run",
            "--brokers",
            &bs,
            "--prefix",
            prefix,
            "--state-dir",
            &state,
            "--commit-interval-ms",
            "200",
            "--http",
            &format!("127.0.0.1:{http_port}"),
        ])
        .stdout(Stdio::null())
        // A file, not a pipe: nobody reads it while the test waits.
        .stderr(std::fs::File::create(&daemon_log).unwrap())
        .spawn()
        .unwrap();
    // ~15,600 records at 4,000/s: about 4 s of producing, with the broker
    // away for 2 s in the middle. The emulator's records wait in its queue
    // (librdkafka retries) and the daemon retries its fetches.
    let producer = cmd()
        .args([
            "emulate",
            "--brokers",
            &bs,
            "--prefix",
            prefix,
            "--posts",
            &posts.to_string(),
            "--seed",
            "3",
            "--rate",
            "4000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stop(broker);
    std::thread::sleep(Duration::from_secs(2));
    let broker = start_tansu(&broker_dir, port).expect("tansu restarts");

    let produced = wait_within(producer, 120, "emulator across the broker restart");
    assert!(
        produced.status.success(),
        "emulator across the restart: {}",
        String::from_utf8_lossy(&produced.stderr)
    );
    // Every post the emulator sent, replayed from an archive of the same
    // deliveries (the same seed; the first post went to Kafka twice, and a
    // re-delivery counts once).
    let want = replayed(dir.path(), posts, 3, prefix);
    let names: Vec<String> = want.as_object().unwrap().keys().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while live_answers(&base, &names) != want {
        assert!(
            Instant::now() < deadline,
            "the daemon did not reach the replay's answers within 120 s of the emulator's end"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = Command::new("kill").arg(daemon.id().to_string()).status();
    let mut daemon = daemon;
    let status = status_within(&mut daemon, 60, "daemon after SIGTERM (see tansu.log)");
    let log = std::fs::read_to_string(&daemon_log).unwrap_or_default();
    assert!(status.success(), "daemon across the restart: {log}");
    // The outage happened while the daemon was consuming, and it said so.
    assert!(
        log.contains("nothing is lost"),
        "the daemon did not see the broker go: {log}"
    );
    stop(broker);
    assert_same_answers(
        &answers(&state),
        &want,
        &format!("after a broker restart; daemon log:\n{log}"),
    );
}
