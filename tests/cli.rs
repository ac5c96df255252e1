//! The command line: `validate` reports every error with its line, exit
//! codes, `clean`, and `answers` on something that is not a state dir.

mod common;

fn pinstream(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = common::cmd()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = common::wait_within(child, 300, &format!("pinstream {args:?}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle} not in topology"))
        + 1
}

#[test]
fn validate_accepts_the_product_topology() {
    let (code, out, _) = pinstream(
        &[
            "validate",
            concat!(env!("CARGO_MANIFEST_DIR"), "/topologies/pinterest.toml"),
        ],
        None,
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("ok: topology `pinterest`") && out.contains("9 in the answer"),
        "{out}"
    );
}

#[test]
fn validate_reports_every_error_with_its_line_and_a_hint() {
    let good = pinstream::PINTEREST_TOPOLOGY;
    let bad = good
        .replacen(
            "group_by = [\"country\", \"category\"]",
            "group_by = [\"contry\", \"category\"]",
            1,
        )
        .replacen("separator = \" \"", "sepparator = \" \"", 1)
        .replacen("from = \"users_by_join_year\"", "from = \"users_by_join_yaer\"", 1)
        .replacen(
            "size = \"1h\", retention = \"30d\"",
            "size = \"1 hour\", retention = \"30d\"",
            1,
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, &bad).unwrap();
    let (code, _, err) = pinstream(&["validate", path.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    let expect = [
        (line_of(&bad, "group_by = [\"contry\""), "did you mean `country`?"),
        (line_of(&bad, "sepparator"), "unknown field `sepparator`"),
        (
            line_of(&bad, "users_by_join_yaer"),
            "did you mean `users_by_join_year`?",
        ),
        (line_of(&bad, "1 hour"), "bad duration `1 hour`"),
    ];
    for (line, text) in expect {
        let hit = err
            .lines()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no `{text}` in:\n{err}"));
        let prefix = format!("bad.toml:{line}:");
        assert!(
            hit.contains(&prefix),
            "`{text}` reported at the wrong line (want {line}): {hit}"
        );
    }
    assert!(err.contains("error(s) in"), "{err}");
}

#[test]
fn validate_reports_toml_syntax_errors_with_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(&path, "name = \"t\"\n\n[[source]\nname = 1\n").unwrap();
    let (code, _, err) = pinstream(&["validate", path.to_str().unwrap()], None);
    assert_eq!(code, 2);
    assert!(err.contains("t.toml:3:") && err.contains("syntax"), "{err}");
}

#[test]
fn clean_prints_cleaned_rows_and_rejects_bad_ones() {
    let input = "{\"ind\": 3, \"first_name\": \"Amanda\", \"last_name\": \"Alvarez\", \"age\": 21, \"date_joined\": \"2015-10-30T01:31:09\"}\n{\"first_name\": \"x\"}\n";
    let (code, out, err) = pinstream(&["clean", "--source", "user"], Some(input));
    assert_eq!(code, 1, "a rejected line makes the exit code 1");
    assert_eq!(
        out.trim(),
        r#"{"ind":3,"user_name":"Amanda Alvarez","age":21,"date_joined":"2015-10-30T01:31:09Z"}"#
    );
    assert!(err.contains("line 2: rejected: missing field `ind`"), "{err}");
    let (code, _, err) = pinstream(&["clean", "--source", "nope"], Some(""));
    assert_eq!(code, 1);
    assert!(err.contains("unknown source `nope`"), "{err}");
}

#[test]
fn answers_refuses_a_directory_that_is_not_state() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = pinstream(&["answers", "--state-dir", dir.path().to_str().unwrap()], None);
    assert_eq!(code, 1);
    assert!(err.contains("not a pinstream state dir"), "{err}");
}

#[test]
fn replay_of_a_missing_or_empty_archive_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = pinstream(&["replay", "--archive", dir.path().to_str().unwrap()], None);
    assert_eq!(code, 1);
    assert!(err.contains("no archive files"), "{err}");
    let (code, _, err) = pinstream(&["replay", "--archive", "/nonexistent/archive"], None);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read archive directory"), "{err}");
}

#[test]
fn a_state_dir_of_another_topology_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    common::emulate(&dir.path().join("a"), 50, 1, &[]);
    let state = dir.path().join("state");
    let (a, s) = (dir.path().join("a").display().to_string(), state.display().to_string());
    common::run(&["replay", "--archive", &a, "--state-dir", &s, "--quiet"]);
    // Another window size changes what the state holds.
    let other = pinstream::PINTEREST_TOPOLOGY.replacen("size = \"1h\"", "size = \"2h\"", 1);
    let topo = dir.path().join("other.toml");
    std::fs::write(&topo, other).unwrap();
    let (code, _, err) = pinstream(
        &[
            "replay",
            "--archive",
            &a,
            "--state-dir",
            &s,
            "--topology",
            topo.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("different topology"), "{err}");
}

/// A temporary replay runs only the aggregates its answer reads
/// (`topology/answering.rs`); its answer must be the one the whole
/// topology gives in a kept state, under either plan.
#[test]
fn a_temporary_replay_answers_as_a_kept_state_of_the_whole_topology() {
    let dir = tempfile::tempdir().unwrap();
    common::emulate(&dir.path().join("a"), 400, 7, &["--flush-size", "30"]);
    let state = dir.path().join("state");
    let (a, s) = (dir.path().join("a").display().to_string(), state.display().to_string());
    let (kept, _) = common::run(&["replay", "--archive", &a, "--state-dir", &s, "--quiet"]);
    let (later, _) = common::run(&["answers", "--state-dir", &s]);
    assert!(kept.contains("median_follower_count") && kept.len() > 1000, "{kept}");
    assert_eq!(kept, later);
    for plan in ["batch", "incremental"] {
        let (temp, _) = common::run(&["replay", "--archive", &a, "--quiet", "--plan", plan]);
        assert_eq!(temp, kept, "--plan {plan}");
    }
}
