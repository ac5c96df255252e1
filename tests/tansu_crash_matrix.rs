//! Crash matrix: the daemon is SIGKILLed at random (seeded) moments, during
//! startup, during commits and during shutdown (SIGTERM, then SIGKILL before
//! it is done), while the emulator produces into tansu; after the last
//! restart the answers must equal `pinstream replay` of the same deliveries.
//!
//! CI runs the light version (3 kills, 50,000 posts). The heavy one is
//! `benches/crash_matrix.sh` (20 kills, 1,000,000 posts), which sets
//! `PINSTREAM_CRASH_KILLS` and `PINSTREAM_CRASH_POSTS`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn tansu_crash_matrix_answers_equal_replay_after_random_kills() {
    let Some(bs) = test_brokers() else { return };
    let kills = env_or("PINSTREAM_CRASH_KILLS", 3);
    let posts = env_or("PINSTREAM_CRASH_POSTS", 50_000);
    let seed = env_or("PINSTREAM_CRASH_SEED", 17);
    let prefix = format!("crash{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    // Topics first, with the first post of the same seed (sent again below:
    // a re-delivery, which counts once).
    emulate_to_kafka(&bs, &prefix, 1, seed, &["--create-topics", "3"]);
    // Producing takes a while (about 3 records per post at 30,000 records/s),
    // so the kills land while records arrive.
    let rate = (posts as f64 * 3.0 / 8.0).clamp(5_000.0, 60_000.0).to_string();
    let producer = cmd()
        .args(["emulate", "--brokers", &bs, "--prefix", &prefix])
        .args([
            "--posts",
            &posts.to_string(),
            "--seed",
            &seed.to_string(),
            "--rate",
            &rate,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let state = dir.path().join("state").display().to_string();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut log = Vec::new();
    for i in 0..kills {
        let mut daemon = cmd()
            .args(["run", "--brokers", &bs, "--prefix", &prefix, "--state-dir", &state])
            .args(["--commit-interval-ms", &rng.gen_range(50..400).to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moment = match i % 3 {
            0 => "startup",
            1 => "commit",
            _ => "shutdown",
        };
        let wait = match moment {
            "startup" => Duration::from_millis(rng.gen_range(5..150)),
            _ => Duration::from_millis(rng.gen_range(200..2500)),
        };
        std::thread::sleep(wait);
        if moment == "shutdown" {
            let _ = Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status();
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..30)));
        }
        let _ = daemon.kill();
        let st = status_within(&mut daemon, 60, "killed daemon");
        log.push(format!("kill {i}: {moment} after {wait:?} ({st})"));
    }
    let produced = wait_within(producer, 900, "emulator during the crash matrix");
    assert!(
        produced.status.success(),
        "emulator: {}",
        String::from_utf8_lossy(&produced.stderr)
    );
    let started = Instant::now();
    let last = wait_within(
        cmd()
            .args(["run", "--brokers", &bs, "--prefix", &prefix, "--state-dir", &state])
            .args(["--commit-interval-ms", "300", "--stop-when-idle", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        900,
        "last daemon run",
    );
    let err = String::from_utf8_lossy(&last.stderr);
    assert!(last.status.success(), "last run: {err}\n{}", log.join("\n"));
    eprintln!("{}\nlast run took {:?}", log.join("\n"), started.elapsed());

    // The same deliveries as an archive, replayed.
    let want = replayed(dir.path(), posts, seed, &prefix);
    assert_same_answers(
        &answers(&state),
        &want,
        &format!("after the crash matrix:\n{}", log.join("\n")),
    );
}
