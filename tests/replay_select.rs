//! Selecting what a replay reads (`--topics`, `--partitions`, `--from/--to`)
//! on local archives, and the sample Airflow DAG's command: split runs into
//! one kept state add up to the whole replay, a day range reads only that
//! day's objects, and a time range over a layout without dates is a clear
//! error.

mod common;

use std::process::Stdio;

use common::*;

fn replay_into(archive: &str, state: &str, extra: &[&str]) -> String {
    let mut args = vec!["replay", "--archive", archive, "--state-dir", state];
    args.extend(extra);
    run(&args).1
}

fn stat(stderr: &str, name: &str) -> u64 {
    stat_of(stderr, "stats:", name)
}

#[test]
fn replays_split_by_partition_and_topic_add_up_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    emulate(&archive, 900, 51, &["--flush-size", "50"]);
    let a = archive.display().to_string();
    let want = replay(&archive, &[]);
    let state = dir.path().join("state").display().to_string();
    let first = replay_into(&a, &state, &["--partitions", "0"]);
    assert!(stat(&first, "not_selected") > 0, "{first}");
    replay_into(&a, &state, &["--partitions", "1,2", "--topics", "pin,geo"]);
    replay_into(&a, &state, &["--partitions", "1,2", "--topics", "129a67850695.user"]);
    assert_same_answers(&answers(&state), &want, "partition/topic split");
}

#[test]
fn day_ranges_read_only_their_days_and_add_up_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    // The emulator's synthetic clock starts at 2024-01-05T13:00Z and runs
    // over several days for this many deliveries.
    emulate(&archive, 70_000, 52, &["--layout", "hourly", "--flush-size", "2000"]);
    let a = archive.display().to_string();
    let files = archive_files(&archive);
    let day_of = |p: &std::path::Path| -> u32 {
        let s = p.to_string_lossy();
        let d = &s[s.find("/day=").expect("hourly layout") + 5..];
        d[..2].parse().unwrap()
    };
    let mut days: Vec<u32> = files.iter().map(|f| day_of(&f.3)).collect();
    days.sort();
    days.dedup();
    assert!(days.len() >= 2, "the archive spans one day only: {days:?}");

    let want = replay(&archive, &[]);
    let state = dir.path().join("state").display().to_string();
    for (i, d) in days.iter().enumerate() {
        let (from, to) = (format!("2024-01-{d:02}"), format!("2024-01-{:02}T00", d + 1));
        let s = replay_into(&a, &state, &["--from", &from, "--to", &to]);
        let on = files.iter().filter(|f| day_of(&f.3) == *d).count() as u64;
        // The other days' directories are not even listed.
        assert_eq!(stat(&s, "files"), on, "day {d}: {s}");
        assert_eq!(stat(&s, "not_selected"), 0, "day {d}: {s}");
        assert!(stat(&s, "pruned_dirs") > 0, "day {d}: {s}");
        if i == 0 {
            // Idempotent: the same day again changes nothing.
            replay_into(&a, &state, &["--from", &from, "--to", &to]);
        }
    }
    assert_same_answers(&answers(&state), &want, "day by day");
}

#[test]
fn a_time_range_over_a_layout_without_dates_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    emulate(&archive, 100, 53, &[]);
    let out = cmd()
        .args([
            "replay",
            "--archive",
            &archive.display().to_string(),
            "--from",
            "2024-01-01",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--from/--to selected nothing") && err.contains("year=/month=/day="),
        "{err}"
    );
    let bad = cmd()
        .args([
            "replay",
            "--archive",
            &archive.display().to_string(),
            "--topics",
            "pins",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`pins` is neither a source"));
    // Regression: a --prefix naming none of the archive's topics replayed
    // nothing and exited 0.
    let wrong = cmd()
        .args([
            "replay",
            "--archive",
            &archive.display().to_string(),
            "--prefix",
            "wrong",
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("--prefix `wrong`") && err.contains("wrong.pin"), "{err}");
}

/// Regression: `--from` at or after `--to` replayed 0 records and exited 0;
/// it is an error now, for replay and `archive check` alike.
#[test]
fn an_empty_time_range_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    emulate(&archive, 50, 54, &["--layout", "hourly"]);
    let a = archive.display().to_string();
    for args in [
        vec!["replay", "--archive", &a, "--from", "2024-02-01", "--to", "2024-01-01"],
        vec!["replay", "--archive", &a, "--from", "2024-01-05", "--to", "2024-01-05"],
        vec![
            "archive",
            "check",
            &a,
            "--from",
            "2024-01-05T03",
            "--to",
            "2024-01-05T03",
        ],
    ] {
        let out = cmd().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--from must lie before --to"), "{args:?}: {err}");
    }
}

/// The DAG's bash command, rendered as Airflow would for one day (Variables
/// and macros substituted), runs and writes that day's answers; run twice
/// (a retried task), the answers are the same.
#[test]
fn the_airflow_dags_command_replays_one_day_idempotently() {
    let dag = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/airflow/pinstream_daily.py"
    ))
    .unwrap();
    let start = dag.find("REPLAY = (").expect("REPLAY in the DAG") + "REPLAY = (".len();
    let end = start + dag[start..].find("\n)").unwrap();
    // The Python string literal pieces, concatenated.
    let template: String = dag[start..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"').and_then(|l| l.strip_suffix('"')))
        .collect();
    assert!(template.contains("pinstream replay"), "{template}");

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    emulate(&archive, 2000, 54, &["--layout", "hourly"]);
    let answers_dir = dir.path().join("answers");
    let render = |t: &str| {
        t.replace("{{ var.value.pinstream_archive }}", &archive.display().to_string())
            .replace(
                "{{ var.value.pinstream_state_root }}",
                &dir.path().join("daily").display().to_string(),
            )
            .replace("{{ var.value.pinstream_answers }}", &answers_dir.display().to_string())
            .replace("{{ macros.ds_add(ds, 1) }}", "2024-01-06")
            .replace("{{ ds }}", "2024-01-05")
    };
    let command = render(&template);
    assert!(!command.contains("{{"), "unrendered template left: {command}");
    let bin_dir = std::path::Path::new(bin()).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let out = std::process::Command::new("bash")
            .args(["-c", &command])
            .env("PATH", &path)
            .env("PINSTREAM_HTTP", "off")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(std::fs::read_to_string(answers_dir.join("2024-01-05.json")).unwrap());
    }
    let got: serde_json::Value = serde_json::from_str(&outputs[0]).unwrap();
    assert_same_answers(
        &got,
        &replay(&archive, &[]),
        "the DAG's day (the whole archive lies on it)",
    );
    assert_eq!(outputs[0], outputs[1], "a retried day gives the same answers");
}

#[test]
fn replays_split_by_offset_range_add_up_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    emulate(&archive, 700, 55, &["--flush-size", "40"]);
    let a = archive.display().to_string();
    let want = replay(&archive, &[]);
    let state = dir.path().join("state").display().to_string();
    // 0..150 cuts through objects (flush size 40); objects past 150 are not read.
    let first = replay_into(&a, &state, &["--offsets", "0..150"]);
    assert!(stat(&first, "not_selected") > 0, "{first}");
    assert!(stat(&first, "records") > 0);
    let partial = answers(&state);
    assert_ne!(partial, want, "the first range alone is not the whole");
    let second = replay_into(&a, &state, &["--offsets", "150.."]);
    assert_eq!(stat(&second, "gaps"), 0, "{second}");
    assert_same_answers(&answers(&state), &want, "offset split");
    let positions = run(&["positions", "--state-dir", &state]).0;
    assert!(
        positions
            .lines()
            .all(|l| l.contains("\"ranges\":[[0,") && !l.contains("],[")),
        "one range per partition:\n{positions}"
    );
}
