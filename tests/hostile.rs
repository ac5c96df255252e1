//! Regression tests for the defects found by hostile probing (issue 8), run
//! through the binary as a user would: each is named after what broke.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs pinstream (bounded) and returns (exit code, stdout, stderr).
fn pinstream(args: &[&str]) -> (i32, String, String) {
    let out = output_within(cmd().args(args), 300, &format!("pinstream {args:?}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("needle in text") + 1
}

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn regression_bad_window_size_is_reported_at_its_own_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    // The third windowed aggregate gets a bad size; an earlier aggregate is
    // also broken (unknown field), so element indices shift.
    let mut bad = pinstream::PINTEREST_TOPOLOGY.to_string();
    let last = bad.rfind("size = \"1h\"").unwrap();
    bad.replace_range(last..last + "size = \"1h\"".len(), "size = \"1x\"");
    let bad = bad.replacen("by = \"follower_count\"", "byy = \"follower_count\"", 1);
    assert!(bad.contains("size = \"1x\"") && bad.contains("byy"));
    let path = dir.path().join("t.toml");
    std::fs::write(&path, &bad).unwrap();
    let (code, _, err) = pinstream(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    let size_line = line_of(&bad, "size = \"1x\"");
    assert!(
        err.contains(&format!(":{size_line}: aggregate[10].window.size")),
        "want the size error at line {size_line}:\n{err}"
    );
    let byy_line = line_of(&bad, "byy");
    assert!(err.contains(&format!(":{byy_line}: aggregate[2].byy")), "{err}");

    // Alone, too.
    let only = pinstream::PINTEREST_TOPOLOGY.replacen("size = \"1d\"", "size = \"1x\"", 1);
    std::fs::write(&path, &only).unwrap();
    let (code, _, err) = pinstream(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(":{}: aggregate[", line_of(&only, "size = \"1x\""))),
        "{err}"
    );
}

#[test]
fn regression_unknown_op_does_not_hide_a_later_bad_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = pinstream::PINTEREST_TOPOLOGY
        .replacen("op = \"concat\"", "op = \"concatenate\"", 1)
        .replacen("field = \"age\"", "field = \"agee\"", 1);
    let path = dir.path().join("t.toml");
    std::fs::write(&path, &bad).unwrap();
    let (code, _, err) = pinstream(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("concatenate"), "{err}");
    assert!(
        err.contains(&format!(
            ":{}: source[2].op[4].field: field `agee`",
            line_of(&bad, "field = \"agee\"")
        )),
        "the bad field after the unknown op is not reported:\n{err}"
    );
    // user_name (made by the broken op) is not reported as unknown.
    assert!(!err.contains("unknown field `user_name`"), "{err}");
}

#[test]
fn regression_validate_and_positions_survive_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    emulate(&archive, 60, 4, &["--partitions", "8"]);
    let state = dir.path().join("s");
    run(&[
        "replay",
        "--archive",
        archive.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--quiet",
    ]);
    for args in [
        vec!["validate"],
        vec!["positions", "--state-dir", state.to_str().unwrap()],
    ] {
        // A reader that goes away at once: stdout is a closed pipe.
        let (r, w) = std::io::pipe().unwrap();
        drop(r);
        let child = cmd()
            .args(&args)
            .stdout(Stdio::from(w))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_within(child, 60, "closed stdout");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn regression_foreign_directories_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    emulate(&archive, 30, 5, &[]);
    let a = archive.to_str().unwrap();

    let notes = dir.path().join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "keep me").unwrap();
    let rocks_like = dir.path().join("rocks-like");
    std::fs::create_dir_all(&rocks_like).unwrap();
    std::fs::write(rocks_like.join("000001.sst"), "").unwrap();
    std::fs::write(rocks_like.join("MANIFEST-000001"), "").unwrap();
    let foreign_db = dir.path().join("foreign-db");
    {
        let mut o = rocksdb::Options::default();
        o.create_if_missing(true);
        o.create_missing_column_families(true);
        rocksdb::DB::open_cf(&o, &foreign_db, ["theirs"]).unwrap();
    }
    let foreign_cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), &foreign_db).unwrap();

    for d in [&notes, &rocks_like, &foreign_db] {
        let before = listing(d);
        let (code, out, err) = pinstream(&["replay", "--archive", a, "--state-dir", d.to_str().unwrap()]);
        assert_eq!(code, 1, "{}: {err}", d.display());
        assert!(out.is_empty());
        assert!(err.contains("not a pinstream state dir"), "{err}");
        assert_eq!(listing(d), before, "{} was changed", d.display());
        let (code, _, err) = pinstream(&["answers", "--state-dir", d.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
    }
    assert_eq!(
        rocksdb::DB::list_cf(&rocksdb::Options::default(), &foreign_db).unwrap(),
        foreign_cfs
    );
    // An empty dir is taken and marked (a git placeholder or a volume's
    // lost+found do not make it foreign); the next run resumes it.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir_all(fresh.join("lost+found")).unwrap();
    std::fs::write(fresh.join(".gitkeep"), "").unwrap();
    let (code, _, err) = pinstream(&["replay", "--archive", a, "--state-dir", fresh.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(fresh.join("PINSTREAM_STATE").exists());
    let (code, _, err) = pinstream(&["replay", "--archive", a, "--state-dir", fresh.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("already in state"), "{err}");
}

#[test]
fn regression_archive_files_that_do_not_fit_are_counted_and_strict_fails() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    emulate(&archive, 300, 6, &["--compression", "gzip"]);
    let files = archive_files(&archive);
    let geo_dir = files
        .iter()
        .find(|f| f.0.ends_with(".geo"))
        .map(|f| f.3.parent().unwrap().to_path_buf())
        .unwrap();
    let pin = files.iter().find(|f| f.0.ends_with(".pin")).unwrap();
    // A pin object copied into the geo directory, a misnamed copy, and a
    // truncated gzip object.
    let pin_name = pin.3.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::copy(&pin.3, geo_dir.join(pin_name.replace("+0+", "+7+"))).unwrap();
    std::fs::copy(&pin.3, geo_dir.join("copy of pin.json.gz")).unwrap();
    let last = files.last().unwrap();
    let bytes = std::fs::read(&last.3).unwrap();
    std::fs::write(&last.3, &bytes[..bytes.len() / 2]).unwrap();

    let a = archive.to_str().unwrap();
    // The cut object is an error naming it, and no answers.
    let (code, out, err) = pinstream(&["replay", "--archive", a]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    let cut = last.3.display().to_string();
    assert!(
        err.contains("unreadable archive object") && err.contains(&cut) && err.contains("--skip-bad-objects"),
        "{err}"
    );
    // --skip-bad-objects: reported, dead-lettered, the rest replayed.
    let letters = dir.path().join("dead.jsonl");
    let l = letters.to_str().unwrap();
    let (code, out, err) = pinstream(&["replay", "--archive", a, "--skip-bad-objects", "--dead-letter", l]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with('{'));
    assert!(
        err.contains("skipped_files=2") && err.contains("unreadable_files=1"),
        "{err}"
    );
    assert!(err.contains("lies under topics/"), "{err}");
    assert!(err.contains("does not match"), "{err}");
    let bad: Vec<serde_json::Value> = read_lines(&letters)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["reason"].as_str().unwrap().starts_with("unreadable object: "))
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0]["file"].as_str(), Some(cut.as_str()));
    assert_eq!(bad[0]["partition"].as_i64(), Some(last.1 as i64));
    // Its letter sits where the readable part ends: after the whole lines
    // before the cut, which count.
    let replayed = stat_of(&err, "stats:", "records");
    let whole: u64 = files[..files.len() - 1]
        .iter()
        .map(|f| read_lines(&f.3).len() as u64)
        .sum();
    let kept = replayed - whole;
    assert!(kept > 0, "the whole lines before the cut count: {err}");
    assert_eq!(bad[0]["offset"].as_i64(), Some(last.2 + kept as i64));
    let (code, out, err) = pinstream(&["replay", "--archive", a, "--strict", "--skip-bad-objects", "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "no answers under a failed --strict: {out}");
    assert!(err.contains("--strict: 2 skipped files, 1 unreadable files"), "{err}");
}

#[test]
fn regression_replay_state_dir_is_durable_at_each_commit() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    // Enough input for several parse chunks (32 MB each) before the end.
    emulate(&archive, 60_000, 7, &["--partitions", "1", "--flush-size", "2000"]);
    // The last object becomes a FIFO nobody writes: the replay commits what
    // comes before it, then blocks there until it is killed.
    let last = archive_files(&archive).last().unwrap().3.clone();
    let saved = dir.path().join("last-object");
    std::fs::rename(&last, &saved).unwrap();
    let status = Command::new("mkfifo").arg(&last).status().unwrap();
    assert!(status.success());

    let state = dir.path().join("state");
    let mut child = cmd()
        .args([
            "replay",
            "--archive",
            archive.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--commit-every",
            "20000",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until a commit has reached SST files, then SIGKILL.
    wait_for_a_commit(&mut child, &state);
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    status_within(&mut child, 30, "killed replay");

    std::fs::remove_file(&last).unwrap();
    std::fs::rename(&saved, &last).unwrap();
    let s = state.to_str().unwrap();
    // The replay began on an empty state, so it deferred aggregation (batch
    // plan): the killed state's aggregates are incomplete and `answers`
    // says so instead of printing them.
    let (code, _, err) = pinstream(&["answers", "--state-dir", s]);
    assert_ne!(code, 0);
    assert!(err.contains("stopped before it aggregated"), "{err}");
    let (code, out, err) = pinstream(&["replay", "--archive", archive.to_str().unwrap(), "--state-dir", s]);
    assert_eq!(code, 0, "{err}");
    let resumed = err
        .split("already in state ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit() && c != ',').next())
        .map(|n| n.replace(',', "").parse::<u64>().unwrap())
        .unwrap_or(0);
    assert!(
        resumed >= 20_000,
        "the killed replay left {resumed} records applied: {err}"
    );
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_same_answers(&got, &replay(&archive, &[]), "resumed after SIGKILL");
}

#[test]
fn regression_demo_refuses_a_state_dir_of_an_earlier_broker() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo-state");
    let s = state.to_str().unwrap();
    let demo = |extra: &[&str]| {
        let mut args = vec![
            "demo",
            "--posts",
            "150",
            "--rate",
            "3000",
            "--state-dir",
            s,
            "--format",
            "json",
        ];
        args.extend(extra);
        pinstream(&args)
    };
    let (code, out, err) = demo(&[]);
    assert_eq!(code, 0, "{err}");
    let first: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // A new in-process broker starts its offsets at 0 again.
    let (code, out, err) = demo(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("refusing to start") && err.contains("--reset-positions"),
        "{err}"
    );
    let (code, out, err) = demo(&["--reset-positions"]);
    assert_eq!(code, 0, "{err}");
    let again: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_same_answers(&again, &first, "demo after --reset-positions");
}

#[test]
fn regression_sigterm_in_the_first_second_of_demo_exits_cleanly() {
    for delay_ms in [50u64, 300, 900] {
        let child = cmd()
            .args(["demo", "--format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let out = wait_within(child, 60, "demo after SIGTERM");
        assert_eq!(
            out.status.code(),
            Some(0),
            "SIGTERM {delay_ms} ms in: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn regression_rocksdb_errors_are_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    emulate(&archive, 30, 5, &[]);
    let state = dir.path().join("s");
    let (a, s) = (archive.to_str().unwrap(), state.to_str().unwrap());
    run(&["replay", "--archive", a, "--state-dir", s, "--quiet"]);
    // Hold the state's lock in this process: the binary gets a RocksDB error.
    let topo = pinstream::load_topology(pinstream::PINTEREST_TOPOLOGY).unwrap();
    let held = pinstream::state::store::Store::open(&state, &topo).unwrap();
    let (code, _, seen) = pinstream(&["replay", "--archive", a, "--state-dir", s, "--quiet"]);
    drop(held);
    assert_eq!(code, 1, "{seen}");
    assert!(seen.contains("lock"), "{seen}");
    let first_line = seen.lines().find(|l| l.starts_with("error:")).unwrap();
    let tail = first_line.rsplit(": ").next().unwrap();
    assert_eq!(first_line.matches(tail).count(), 1, "repeated: {first_line}");
}

/// Child half of the WAL test: commits through the WAL, then exits without
/// closing RocksDB (as a SIGKILL would leave it). Does nothing unless the
/// parent test set the variable.
#[test]
fn wal_child_commits_then_dies() {
    let Ok(dir) = std::env::var("PINSTREAM_WAL_CHILD_DIR") else {
        return;
    };
    let topo = std::sync::Arc::new(pinstream::load_topology(pinstream::PINTEREST_TOPOLOGY).unwrap());
    let mut engine = pinstream::engine::Engine::open(
        topo.clone(),
        Path::new(&dir),
        1000,
        pinstream::state::store::Durability::Wal,
    )
    .unwrap();
    for i in 0..3000i64 {
        let raw = format!(
            r#"{{"ind": {i}, "timestamp": "2020-01-01 00:00:00", "latitude": 1.0, "longitude": 2.0, "country": "C{}"}}"#,
            i % 50
        );
        let p = pinstream::engine::prepare::prepare(&topo, 1, raw.as_bytes()).unwrap();
        engine.process(1, &p.key, p.row).unwrap();
        engine.mark("p.geo", 0, i);
        if i % 300 == 299 {
            engine.sync().unwrap();
        }
    }
    std::process::exit(0); // no destructors: RocksDB is not closed
}

#[test]
fn regression_corrupted_write_ahead_log_is_reported_not_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = output_within(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "wal_child_commits_then_dies", "--nocapture"])
            .env("PINSTREAM_WAL_CHILD_DIR", &state),
        120,
        "WAL child",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = state.to_str().unwrap();
    // Intact (a copy: opening recovers and rewrites the log), the state
    // opens with all 3000 positions.
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for e in std::fs::read_dir(&state).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, copy.join(p.file_name().unwrap())).unwrap();
    }
    let (code, pos, err) = pinstream(&["positions", "--state-dir", copy.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(pos.contains("[[0,3000]]"), "{pos}");
    // Flip bytes in the middle of the (largest) log file.
    let log = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a write-ahead log");
    let mut bytes = std::fs::read(&log).unwrap();
    assert!(bytes.len() > 10_000, "log too small: {}", bytes.len());
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&log, &bytes).unwrap();
    let (code, out, err) = pinstream(&["answers", "--state-dir", s]);
    assert_eq!(code, 1, "a damaged log must not open silently: {out}\n{err}");
    assert!(err.contains("write-ahead log"), "{err}");
}

/// Waits (bounded) until a replay into `state` made a commit durable (its
/// SST files), while it blocks on a FIFO further on.
fn wait_for_a_commit(child: &mut std::process::Child, state: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let ssts = || {
        std::fs::read_dir(state)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".sst"))
                    .count()
            })
            .unwrap_or(0)
    };
    while ssts() < 2 {
        assert!(
            Instant::now() < deadline,
            "no commit of the replay became durable in 120 s"
        );
        assert!(child.try_wait().unwrap().is_none(), "replay ended before the FIFO");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGINT stops a replay before its next commit and exits 130: a kept
/// state resumes from its last commit to the uninterrupted answers, and a
/// temporary state dir is removed (the default action of SIGINT left it,
/// spill files and all, in the temp dir).
#[test]
fn regression_sigint_stops_a_replay_cleanly_and_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a");
    emulate(&archive, 100_000, 7, &["--partitions", "1", "--flush-size", "2000"]);
    // The object halfway in (by bytes) becomes a FIFO: the replay commits
    // what comes before it and blocks there. More than one parse group
    // (32 MB) lies on either side, so groups before it are applied and
    // the replay polls again after it.
    let files = archive_files(&archive);
    let sizes: Vec<u64> = files.iter().map(|f| std::fs::metadata(&f.3).unwrap().len()).collect();
    let total: u64 = sizes.iter().sum();
    assert!(total > 100 << 20, "{total} bytes");
    let mut before = 0;
    let half = sizes.iter().position(|n| {
        before += n;
        before > total / 2
    });
    let fifo = files[half.unwrap()].3.clone();
    let saved = dir.path().join("fifo-object");
    std::fs::rename(&fifo, &saved).unwrap();
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let a = archive.to_str().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    let interrupt = |args: &[&str], wait_for_sst: bool| {
        let mut child = cmd()
            .args(args)
            .env("TMPDIR", &tmp)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if wait_for_sst {
            wait_for_a_commit(&mut child, &state);
        }
        std::thread::sleep(Duration::from_millis(500));
        let sent = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        // Unblock the FIFO whenever the replay waits in it (an empty
        // object: it polls again); non-blocking, so no reader is no wait.
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "the interrupted replay did not stop in 60 s");
            use std::os::unix::fs::OpenOptionsExt;
            const O_NONBLOCK: i32 = 0o4000; // Linux
            drop(
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(O_NONBLOCK)
                    .open(&fifo),
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(130), "{status:?}: {err}");
        assert!(err.contains("interrupted"), "{err}");
        err
    };
    // Temporary state: nothing is left in the temp dir.
    interrupt(&["replay", "--archive", a, "--quiet"], false);
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "the interrupted replay left {left:?}");
    // Kept state: the next run goes on from the last commit.
    let err = interrupt(
        &[
            "replay",
            "--archive",
            a,
            "--state-dir",
            s,
            "--commit-every",
            "20000",
            "--quiet",
        ],
        true,
    );
    assert!(err.contains("run the same command to go on"), "{err}");
    std::fs::remove_file(&fifo).unwrap();
    std::fs::rename(&saved, &fifo).unwrap();
    let (code, out, err) = pinstream(&["replay", "--archive", a, "--state-dir", s]);
    assert_eq!(code, 0, "{err}");
    assert!(
        !err.contains("already in state 0,"),
        "the interrupted run committed: {err}"
    );
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_same_answers(&got, &replay(&archive, &[]), "resumed after SIGINT");
}
