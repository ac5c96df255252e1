//! End to end over HTTP against the real broker `.ci/run` starts: the
//! emulator posts as the seeds' script did (REST Proxy route) → pinstream's
//! ingest produces to tansu → the daemon consumes → `/v1/queries/*` equal
//! `pinstream replay` of the same deliveries (and the reference).

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn tansu_http_ingest_to_live_queries_equal_replay() {
    let Some(bs) = test_brokers() else { return };
    let prefix = format!("h{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    create_topics(&bs, &prefix);
    let state = dir.path().join("state");
    let (daemon, base) = http_daemon(&bs, &prefix, &state);

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
    let fetch = || live_answers(&base, &names);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = fetch();
    while got != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        got = fetch();
    }
    stop_daemon(daemon);
    assert_same_answers(&got, &want, "live HTTP answers after REST Proxy ingest");
    // The state the daemon left answers the same.
    assert_same_answers(
        &answers(state.to_str().unwrap()),
        &want,
        "pinstream answers after the run",
    );
}
