//! Golden topology tests: every directory under `tests/golden/` holds
//! `input/` (an archive), `expected.json` (the answers) and optionally
//! `expected_dead_letters.jsonl` and `topology.toml` (default: the built-in
//! one). Each case runs once whole, and once split in two runs over one
//! state dir (the first half of every partition's files, a restart, then the
//! rest): both must give exactly the expected output.

mod common;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn topology_args(case: &Path) -> Vec<String> {
    let t = case.join("topology.toml");
    if t.is_file() {
        vec!["--topology".into(), t.display().to_string()]
    } else {
        vec![]
    }
}

fn replay(archive: &Path, case: &Path, extra: &[&str]) -> Value {
    let mut args: Vec<String> = vec![
        "replay".into(),
        "--archive".into(),
        archive.display().to_string(),
        "--quiet".into(),
    ];
    args.extend(topology_args(case));
    args.extend(extra.iter().map(|s| s.to_string()));
    let (out, _) = common::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    serde_json::from_str(&out).unwrap()
}

#[test]
fn golden_cases_whole_and_split_with_a_restart() {
    let cases = cases();
    assert!(!cases.is_empty(), "no golden cases found");
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap()).unwrap();
        let input = case.join("input");
        let tmp = tempfile::tempdir().unwrap();

        // Whole, with dead letters.
        let dlq = tmp.path().join("dlq.jsonl");
        let got = replay(&input, &case, &["--dead-letter", dlq.to_str().unwrap()]);
        assert_eq!(got, expected, "{name}: answers");
        let expected_dead = std::fs::read_to_string(case.join("expected_dead_letters.jsonl")).unwrap_or_default();
        let got_dead: Vec<Value> = std::fs::read_to_string(&dlq)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let want_dead: Vec<Value> = expected_dead
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got_dead.len(), want_dead.len(), "{name}: dead letters {got_dead:?}");
        for (g, w) in got_dead.iter().zip(&want_dead) {
            for k in ["topic", "partition", "offset"] {
                assert_eq!(g[k], w[k], "{name}: dead letter {k}");
            }
        }

        // Split in two runs over one state dir.
        let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
        common::split_in_halves(&input, &first, &second);
        let state = tmp.path().join("state").display().to_string();
        replay(&first, &case, &["--state-dir", &state]);
        let got = if second.exists() {
            replay(&second, &case, &["--state-dir", &state])
        } else {
            replay(&first, &case, &["--state-dir", &state])
        };
        assert_eq!(got, expected, "{name}: answers after a restart midway");
    }
}
