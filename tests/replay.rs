//! Golden tests of `pinstream replay` against the independent reference in
//! `common/`: the eight answers on generated archives of several shapes, runs
//! split over one state dir (a restart midway), re-runs, dead letters, and
//! changed records.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const PREFIX: &str = "129a67850695";

fn copy_files(files: &[(String, i64, i64, std::path::PathBuf)], from: &Path, to: &Path) {
    for (_, _, _, p) in files {
        let rel = p.strip_prefix(from).unwrap();
        let dst = to.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(p, dst).unwrap();
    }
}

#[test]
fn golden_answers_match_the_reference_mixed_compression_hourly_layout() {
    let dir = tempfile::tempdir().unwrap();
    emulate(
        dir.path(),
        4000,
        7,
        &[
            "--flush-size",
            "97",
            "--compression",
            "mixed",
            "--layout",
            "hourly",
            "--partitions",
            "4",
        ],
    );
    let want = reference(dir.path(), PREFIX);
    assert_eq!(want.rejected, 0);
    let got = replay(dir.path(), &[]);
    let rows = assert_matches(&got, &want);
    assert!(rows > 300, "only {rows} rows compared");
    // A table for people is also produced.
    let (table, _) = run(&[
        "replay",
        "--archive",
        &dir.path().display().to_string(),
        "--quiet",
        "--format",
        "table",
    ]);
    assert!(table.contains("== category_by_country") && table.contains("category_count"));
}

#[test]
fn golden_answers_flush_size_one_gzip_one_partition() {
    let dir = tempfile::tempdir().unwrap();
    emulate(
        dir.path(),
        250,
        3,
        &["--flush-size", "1", "--compression", "gzip", "--partitions", "1"],
    );
    let want = reference(dir.path(), PREFIX);
    assert_matches(&replay(dir.path(), &["--prefix", PREFIX]), &want);
}

#[test]
fn golden_answers_large_flush_many_partitions_and_shifted_inds() {
    // More than 11,001 posts: inds are shifted copies past 11,153.
    let dir = tempfile::tempdir().unwrap();
    emulate(dir.path(), 15_000, 11, &["--flush-size", "5000", "--partitions", "6"]);
    let want = reference(dir.path(), PREFIX);
    assert_matches(&replay(dir.path(), &[]), &want);
}

fn split_and_compare(
    pick_first: impl Fn(usize, &(String, i64, i64, std::path::PathBuf), &[(String, i64, i64, std::path::PathBuf)]) -> bool,
) {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    emulate(&full, 3000, 21, &["--flush-size", "200", "--compression", "mixed"]);
    let files = archive_files(&full);
    let (a, b): (Vec<_>, Vec<_>) = files.iter().enumerate().partition(|(i, f)| pick_first(*i, f, &files));
    let a: Vec<_> = a.into_iter().map(|(_, f)| f.clone()).collect();
    let b: Vec<_> = b.into_iter().map(|(_, f)| f.clone()).collect();
    assert!(!a.is_empty() && !b.is_empty());
    copy_files(&a, &full, &dir.path().join("a"));
    copy_files(&b, &full, &dir.path().join("b"));

    let one_run = replay(&full, &[]);
    let state = dir.path().join("state");
    let s = state.display().to_string();
    replay(&dir.path().join("a"), &["--state-dir", &s]);
    let two_runs = replay(&dir.path().join("b"), &["--state-dir", &s]);
    assert_eq!(two_runs, one_run, "two runs over one state dir differ from one run");
    // Replaying everything again over the same state counts nothing twice.
    let again = replay(&full, &["--state-dir", &s]);
    assert_eq!(again, one_run, "a re-run double counted");
    let (answers, _) = run(&["answers", "--state-dir", &s]);
    assert_eq!(serde_json::from_str::<Value>(&answers).unwrap(), one_run);
    assert_matches(&one_run, &reference(&full, PREFIX));
}

#[test]
fn restart_midway_first_half_of_every_partition_then_the_rest() {
    split_and_compare(|_, f, all| {
        let same: Vec<_> = all.iter().filter(|g| g.0 == f.0 && g.1 == f.1).collect();
        let pos = same.iter().position(|g| g.2 == f.2).unwrap();
        pos < same.len() / 2
    });
}

#[test]
fn restart_midway_every_other_file_in_any_order() {
    split_and_compare(|i, _, _| i % 2 == 1);
}

#[test]
fn dead_letters_are_written_counted_and_lose_nothing_valid() {
    let dir = tempfile::tempdir().unwrap();
    emulate(dir.path(), 1500, 5, &[]);
    // A new partition of geo holding bad records between good ones (the good
    // ones re-send real rows of the archive, so the answers must not move).
    let files = archive_files(dir.path());
    let geo = files.iter().find(|f| f.0.ends_with(".geo")).unwrap();
    let good = read_lines(&geo.3);
    let bad = [
        "{\"ind\": 12, \"country\": ",
        "[1, 2, 3]",
        "{\"country\": \"Chad\", \"timestamp\": \"2020-01-01 00:00:00\"}",
        "{\"ind\": \"twelve\", \"country\": \"Chad\"}",
        "not json at all",
    ];
    let mut lines = vec![good[0].clone()];
    for b in bad {
        lines.push(b.to_string());
        lines.push(good[lines.len() % good.len()].clone());
    }
    let part = dir.path().join(format!("topics/{PREFIX}.geo/partition=9"));
    std::fs::create_dir_all(&part).unwrap();
    std::fs::write(
        part.join(format!("{PREFIX}.geo+9+0000000000.json")),
        lines.join("\n") + "\n",
    )
    .unwrap();

    let want = reference(dir.path(), PREFIX);
    assert_eq!(want.rejected, bad.len());
    let dlq = dir.path().join("dead.jsonl");
    let d = dlq.display().to_string();
    let a = dir.path().display().to_string();
    let (stdout, stderr) = run(&["replay", "--archive", &a, "--dead-letter", &d]);
    assert_matches(&serde_json::from_str(&stdout).unwrap(), &want);
    assert!(stderr.contains("dead letters 5"), "{stderr}");

    let letters: Vec<Value> = std::fs::read_to_string(&dlq)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), bad.len());
    for (l, raw) in letters.iter().zip(bad) {
        assert_eq!(l["record"], raw);
        assert_eq!(l["topic"], format!("{PREFIX}.geo"));
        assert_eq!(l["partition"], 9);
        let offset = lines.iter().position(|x| x == raw).unwrap();
        assert_eq!(l["offset"], offset as i64);
        assert!(l["file"].as_str().unwrap().ends_with("+9+0000000000.json"));
        assert!(!l["reason"].as_str().unwrap().is_empty());
    }
    assert!(letters[0]["reason"].as_str().unwrap().contains("invalid JSON"));
    assert!(letters[2]["reason"].as_str().unwrap().contains("ind"));
    assert!(letters[3]["reason"].as_str().unwrap().contains("ind"));
}

fn write_object(dir: &Path, topic: &str, partition: i32, start: i64, lines: &[String]) {
    let p = dir.join(format!("topics/{topic}/partition={partition}"));
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join(format!("{topic}+{partition}+{start:010}.json")),
        lines.join("\n") + "\n",
    )
    .unwrap();
}

fn pin(ind: i64, cat: &str, poster: &str, f: &str) -> String {
    format!(
        r#"{{"index": {ind}, "unique_id": "u{ind}", "title": "t", "description": "d", "poster_name": "{poster}", "follower_count": "{f}", "tag_list": "x", "is_image_or_video": "image", "image_src": "s", "downloaded": 1, "save_location": "Local save in /data/{cat}", "category": "{cat}"}}"#
    )
}

fn geo(ind: i64, country: &str) -> String {
    format!(
        r#"{{"ind": {ind}, "timestamp": "2020-01-01 00:00:00", "latitude": 1.0, "longitude": 2.0, "country": "{country}"}}"#
    )
}

fn user(ind: i64, first: &str, age: i64) -> String {
    format!(
        r#"{{"ind": {ind}, "first_name": "{first}", "last_name": "B", "age": {age}, "date_joined": "2016-05-01 10:00:00"}}"#
    )
}

#[test]
fn changed_records_after_the_join_retract_their_old_contributions() {
    let dir = tempfile::tempdir().unwrap();
    let (first, fixes, all) = (
        dir.path().join("first"),
        dir.path().join("fixes"),
        dir.path().join("all"),
    );
    let pins = [
        pin(1, "art", "Zed", "9M"),
        pin(2, "art", "Bob", "5k"),
        pin(3, "travel", "Cy", "1k"),
    ];
    let geos = [geo(1, "Chad"), geo(2, "Chad"), geo(3, "Chad")];
    let users = [user(1, "A1", 30), user(2, "A2", 30), user(3, "A3", 30)];
    // Corrections, later in the same partitions: ind 1 moves from art to
    // travel under a new poster name with the same followers, and user 1 is
    // renamed. Follower counts, ages and join dates stay, so the t-digests
    // (which cannot retract) are not touched.
    let pin_fix = [pin(1, "travel", "Zoe", "9M")];
    let user_fix = [user(1, "Q1", 30)];
    for d in [&first, &all] {
        write_object(d, "p.pin", 0, 0, &pins);
        write_object(d, "p.geo", 0, 0, &geos);
        write_object(d, "p.user", 0, 0, &users);
    }
    for d in [&fixes, &all] {
        write_object(d, "p.pin", 0, 3, &pin_fix);
        write_object(d, "p.user", 0, 3, &user_fix);
    }
    let state = dir.path().join("state").display().to_string();
    let before = replay(&first, &["--state-dir", &state]);
    assert_eq!(before["category_by_country"][0]["category"], "art");
    let got = replay(&fixes, &["--state-dir", &state]);
    assert_matches(&got, &reference(&all, "p"));
    // Without retraction art would keep 2 and win the 2-2 tie.
    assert_eq!(
        got["category_by_country"],
        serde_json::json!([{"country": "Chad", "category": "travel", "category_count": 2}])
    );
    // Zed (9M) retracted: otherwise Zed would win the 9M tie against Zoe.
    assert_eq!(got["top_user_by_country"][0]["poster_name"], "Zoe");
    // A1 retracted from the distinct users: Q1, A2, A3.
    assert_eq!(
        got["users_joined_by_year"],
        serde_json::json!([{"post_year": 2016, "number_users_joined": 3}])
    );
}

#[test]
fn join_cache_overflow_spills_to_rocksdb_and_gives_the_same_answers() {
    // --cache-keys far below the number of inds: the in-memory join table
    // (temporary state) must spill to RocksDB, and a kept state dir must
    // read evicted keys back, without changing any answer.
    let dir = tempfile::tempdir().unwrap();
    emulate(dir.path(), 3000, 9, &["--flush-size", "150"]);
    let want = replay(dir.path(), &[]);
    let spilled = replay(dir.path(), &["--cache-keys", "200", "--commit-every", "500"]);
    assert_eq!(spilled, want);
    let state = dir.path().join("state").display().to_string();
    let kept = replay(
        dir.path(),
        &["--cache-keys", "200", "--commit-every", "500", "--state-dir", &state],
    );
    assert_eq!(kept, want);
    assert_matches(&want, &reference(dir.path(), PREFIX));
}

/// The batch plan (join first, aggregate the final rows once, in shards)
/// against the incremental plan: the same answers on an archive with
/// re-deliveries, on one with corrections after the join (retractions in
/// the incremental plan), with commits in the middle, and when the join
/// table spills out of memory midway (the batch plan then aggregates early
/// and goes on incrementally).
#[test]
fn batch_plan_gives_the_incremental_answers() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("emulated");
    emulate(&archive, 3000, 11, &["--flush-size", "70", "--partitions", "3"]);
    let incremental = replay(&archive, &["--plan", "incremental"]);
    let batch = replay(&archive, &["--plan", "batch"]);
    assert_same_answers(&batch, &incremental, "batch vs incremental");
    assert_matches(&batch, &reference(&archive, PREFIX));
    let small_commits = replay(&archive, &["--plan", "batch", "--commit-every", "333"]);
    assert_same_answers(&small_commits, &incremental, "batch, small commits");
    let spilled = replay(
        &archive,
        &["--plan", "batch", "--cache-keys", "500", "--commit-every", "700"],
    );
    assert_same_answers(&spilled, &incremental, "batch, spilled join table");

    let all = dir.path().join("corrected");
    write_object(
        &all,
        "p.pin",
        0,
        0,
        &[pin(1, "art", "Zed", "9M"), pin(2, "art", "Bob", "5k")],
    );
    write_object(&all, "p.geo", 0, 0, &[geo(1, "Chad"), geo(2, "Chad")]);
    write_object(&all, "p.user", 0, 0, &[user(1, "A1", 30), user(2, "A2", 30)]);
    write_object(&all, "p.pin", 0, 2, &[pin(1, "travel", "Zoe", "9M")]);
    write_object(&all, "p.user", 0, 2, &[user(1, "Q1", 30)]);
    let (inc, inc_err) = run(&[
        "replay",
        "--archive",
        &all.display().to_string(),
        "--plan",
        "incremental",
    ]);
    let (bat, bat_err) = run(&["replay", "--archive", &all.display().to_string()]);
    let (inc, bat): (Value, Value) = (serde_json::from_str(&inc).unwrap(), serde_json::from_str(&bat).unwrap());
    assert_same_answers(&bat, &inc, "batch vs incremental, corrections");
    assert_eq!(bat["top_user_by_country"][0]["poster_name"], "Zoe");
    // Both plans count the same joins and replacements.
    let counts = |err: &str| err.lines().find(|l| l.contains("joined rows")).map(str::to_string);
    assert_eq!(counts(&bat_err), counts(&inc_err));
    // Topics are read in order (geo, pin, user): the pin correction lands
    // before ind 1 is complete, the user correction after.
    assert!(counts(&bat_err).unwrap().contains("replaced rows 1"), "{bat_err}");
}

/// The incremental plan on several shards (threads, the join table and
/// the aggregate deltas split by join key) gives what one shard gives: in a
/// temporary state; with the join cache far below the keys (evictions,
/// RocksDB reads) and commits every 500 records; with corrections after the
/// join (retractions); and in a kept state split over two runs whose shard
/// counts differ (the stored table is split again at the restart). The
/// joined and replaced rows counted agree too.
#[test]
fn sharded_incremental_plan_gives_the_one_shard_answers() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("emulated");
    emulate(&archive, 3000, 17, &["--flush-size", "70", "--partitions", "3"]);
    let arch = archive.display().to_string();
    let plan = |extra: &[&str]| {
        let mut args = vec!["replay", "--archive", &arch, "--plan", "incremental"];
        args.extend_from_slice(extra);
        let (out, err) = run(&args);
        let counts = err.lines().find(|l| l.contains("joined rows")).map(str::to_string);
        (serde_json::from_str::<Value>(&out).unwrap(), counts)
    };
    let (one, one_counts) = plan(&["--shards", "1"]);
    assert_matches(&one, &reference(&archive, PREFIX));
    let (three, three_counts) = plan(&["--shards", "3"]);
    assert_eq!(three, one, "three shards");
    assert_eq!(three_counts, one_counts);
    let (small, _) = plan(&["--shards", "2", "--cache-keys", "200", "--commit-every", "500"]);
    assert_eq!(small, one, "two shards, small cache, small commits");

    // Kept state: the first half of every partition on three shards, the
    // rest on two.
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    split_in_halves(&archive, &first, &second);
    let state = dir.path().join("state").display().to_string();
    let kept = |part: &Path, shards: &str| {
        replay(
            part,
            &[
                "--plan",
                "incremental",
                "--state-dir",
                &state,
                "--shards",
                shards,
                "--commit-every",
                "400",
            ],
        )
    };
    kept(&first, "3");
    assert_eq!(kept(&second, "2"), one, "kept state, 3 then 2 shards");

    // Corrections after the join: retractions on whichever shard owns the key.
    let all = dir.path().join("corrected");
    write_object(
        &all,
        "p.pin",
        0,
        0,
        &[
            pin(1, "art", "Zed", "9M"),
            pin(2, "art", "Bob", "5k"),
            pin(3, "art", "Ann", "7k"),
        ],
    );
    write_object(&all, "p.geo", 0, 0, &[geo(1, "Chad"), geo(2, "Chad"), geo(3, "Chad")]);
    write_object(
        &all,
        "p.user",
        0,
        0,
        &[user(1, "A1", 30), user(2, "A2", 30), user(3, "A3", 30)],
    );
    write_object(
        &all,
        "p.pin",
        0,
        3,
        &[pin(1, "travel", "Zoe", "9M"), pin(3, "travel", "Ann", "7k")],
    );
    write_object(&all, "p.user", 0, 3, &[user(1, "Q1", 30)]);
    let corrected = all.display().to_string();
    let answers = |shards: &str| {
        let (out, _) = run(&[
            "replay",
            "--archive",
            &corrected,
            "--plan",
            "incremental",
            "--shards",
            shards,
        ]);
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let one = answers("1");
    assert_eq!(answers("2"), one, "corrections, two shards");
    assert_eq!(answers("3"), one, "corrections, three shards");
    assert_matches(&one, &reference(&all, "p"));
    assert_eq!(
        one["category_by_country"],
        serde_json::json!([{"country": "Chad", "category": "travel", "category_count": 2}])
    );
}
