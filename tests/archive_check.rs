//! Archive integrity: `pinstream archive check` and the replay summary
//! report gaps (a deleted object) with topic, partition and offsets, and
//! overlaps (an object re-written over the tail of another, as the S3 sink
//! leaves after a retried task), whose records count once.

mod common;

use std::path::Path;

use common::*;

fn check(archive: &Path) -> (bool, String) {
    let out = cmd()
        .args(["archive", "check", &archive.display().to_string()])
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn field(line_start: &str, text: &str, name: &str) -> u64 {
    stat_of(text, line_start, name)
}

fn line_count(p: &Path) -> usize {
    read_lines(p).len()
}

#[test]
fn a_clean_archive_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    emulate(&archive, 500, 61, &["--flush-size", "40", "--compression", "mixed"]);
    let (ok, out) = check(&archive);
    assert!(ok, "{out}");
    let total: usize = archive_files(&archive).iter().map(|f| line_count(&f.3)).sum();
    assert_eq!(field("check:", &out, "records") as usize, total, "{out}");
    assert_eq!(field("check:", &out, "gaps"), 0);
    assert_eq!(field("check:", &out, "overlaps"), 0);
}

#[test]
fn a_deleted_object_is_a_gap_named_by_partition_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    emulate(&archive, 600, 62, &["--flush-size", "30"]);
    let files = archive_files(&archive);
    // The second object of the first partition of the first topic.
    let (topic, partition, start, path) = files[1].clone();
    assert_eq!((files[0].0.as_str(), files[0].1), (topic.as_str(), partition));
    let n = line_count(&path) as i64;
    std::fs::remove_file(&path).unwrap();

    let (ok, out) = check(&archive);
    assert!(!ok, "a gap must fail the check:\n{out}");
    let want = format!(
        "gap: {topic} partition {partition} offsets {start}..{} ({n} records) missing",
        start + n - 1
    );
    assert!(out.contains(&want), "want `{want}` in:\n{out}");
    assert_eq!(field("check:", &out, "gap_records") as i64, n);

    // The replay says so too, on stderr and in its stats line.
    let a = archive.display().to_string();
    let (_, stderr) = run(&["replay", "--archive", &a]);
    assert!(stderr.contains(&want), "{stderr}");
    assert_eq!(field("stats:", &stderr, "gaps"), 1);
    assert_eq!(field("stats:", &stderr, "gap_records") as i64, n);
    let strict = cmd().args(["replay", "--archive", &a, "--strict"]).output().unwrap();
    assert!(!strict.status.success(), "--strict fails on a gap");
}

#[test]
fn an_overlapping_object_is_reported_and_its_records_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    emulate(&archive, 600, 63, &["--flush-size", "30"]);
    let want = replay(&archive, &[]);
    let files = archive_files(&archive);
    let (topic, partition, start, path) = files[0].clone();
    let lines = read_lines(&path);
    let k = 10;
    // A retried task re-wrote the tail of the first object from offset start+k.
    let name = format!("{topic}+{partition}+{:010}.json", start + k as i64);
    std::fs::write(path.with_file_name(&name), lines[k..].join("\n") + "\n").unwrap();
    let repeated = (lines.len() - k) as u64;

    let (ok, out) = check(&archive);
    assert!(ok, "overlaps alone pass:\n{out}");
    assert_eq!(field("check:", &out, "overlaps"), 1, "{out}");
    assert_eq!(field("check:", &out, "overlap_records"), repeated);
    assert!(out.contains(&format!(
        "overlap: {topic} partition {partition} offsets {}..",
        start + k as i64
    )));

    let a = archive.display().to_string();
    let (stdout, stderr) = run(&["replay", "--archive", &a]);
    assert_eq!(field("stats:", &stderr, "overlaps"), 1, "{stderr}");
    assert_eq!(field("stats:", &stderr, "gaps"), 0);
    let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_same_answers(&got, &want, "overlapping objects count once");
}
