//! Replays the committed fuzz inputs (issue 14) as ordinary tests, without
//! cargo-fuzz: every file of `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through `paxoskv::fuzzing`'s function
//! of that name, the same one the fuzz target calls.

use std::path::{Path, PathBuf};

use paxoskv::fuzzing::{target, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The target subdirectories of `fuzz/<kind>/`, sorted; none if it is absent.
fn target_dirs(kind: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries.map(|entry| entry.expect("readable directory entry").path()).collect();
    dirs.sort();
    dirs
}

/// Runs every file under `fuzz/<kind>/<target>/` through its target and
/// returns how many ran. Panics naming every file that failed.
fn replay(kind: &str) -> usize {
    let mut failures = Vec::new();
    let mut count = 0;
    for dir in target_dirs(kind) {
        let name = dir.file_name().and_then(|name| name.to_str()).expect("a UTF-8 directory name");
        let run = target(name).unwrap_or_else(|| panic!("fuzz/{kind}/{name}: no fuzz target of that name"));
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&dir).expect("readable").map(|entry| entry.expect("entry").path()).collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            count += 1;
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "fuzz inputs that fail their target:\n{}", failures.join("\n"));
    count
}

#[test]
fn corpus_replays_without_failure() {
    let names: Vec<String> =
        target_dirs("corpus").iter().map(|dir| dir.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for (target, _) in TARGETS {
        assert!(names.iter().any(|name| name == target), "fuzz/corpus/{target} is missing: seed every target");
    }
    assert!(replay("corpus") >= TARGETS.len());
}

#[test]
fn regressions_replay_without_failure() {
    replay("regressions");
}

#[test]
fn fuzz_targets_exist_for_every_function() {
    for (name, _) in TARGETS {
        let file = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        assert!(file.is_file(), "{} is missing", file.display());
    }
}
