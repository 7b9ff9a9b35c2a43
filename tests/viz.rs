//! `paxoskv viz`: the page it writes, from the synthetic trace.

#[path = "support/synthetic.rs"]
mod synthetic;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use paxoskv::trace::{Clock, Header, Record, Source, TraceWriter};

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("viz-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write_trace(path: &Path, header: &Header, records: &[Record]) {
    let mut writer = TraceWriter::new(std::fs::File::create(path).unwrap(), header).unwrap();
    for r in records {
        writer.write_record(r).unwrap();
    }
    writer.flush().unwrap();
}

fn viz(args: &[&Path]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_paxoskv")).arg("viz").args(args).output().unwrap();
    assert!(output.stderr.is_empty() || !output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    output
}

#[test]
fn the_page_embeds_the_trace_and_needs_no_network() {
    let (header, records) = synthetic::synthetic(10);
    let (trace, page) = (tmp("synthetic.jsonl"), tmp("synthetic.html"));
    write_trace(&trace, &header, &records);
    let output = viz(&[&trace, Path::new("--out"), &page]);
    assert!(output.status.success());
    let html = std::fs::read_to_string(&page).unwrap();
    for expected in [r#"<script type="application/json" id="trace-data">"#, "<canvas", "SET k1 7", "linearizability"] {
        assert!(html.contains(expected), "the page lacks {expected:?}");
    }
    assert!(!html.contains("http://") && !html.contains("https://"), "the page refers to the network");
    let summary = String::from_utf8(output.stdout).unwrap();
    assert!(summary.contains("5 replicas") && summary.contains("1 violations"), "{summary}");
}

#[test]
fn one_file_per_node_merges_into_one_diagram() {
    let (_, records) = synthetic::synthetic(4);
    let mut files = Vec::new();
    for node in 1..=5u32 {
        let mut header = Header::new(Source::Node, Clock::Wall, vec![1, 2, 3, 4, 5]);
        header.node = Some(node);
        // Deal the events out round-robin: merging must restore the order.
        let mine: Vec<Record> = records.iter().skip(node as usize - 1).step_by(5).cloned().collect();
        let path = tmp(&format!("node-{node}.jsonl"));
        write_trace(&path, &header, &mine);
        files.push(path);
    }
    let page = tmp("merged.html");
    let mut args: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    args.extend([Path::new("--out"), &page]);
    let merged = String::from_utf8(viz(&args).stdout).unwrap();
    let single = tmp("single.jsonl");
    let mut header = Header::new(Source::Node, Clock::Wall, vec![1, 2, 3, 4, 5]);
    header.node = Some(1);
    write_trace(&single, &header, &records);
    let whole = String::from_utf8(viz(&[&single, Path::new("--out"), &tmp("single.html")]).stdout).unwrap();
    let counts = |s: &str| s.split_once(": ").unwrap().1.to_string();
    assert_eq!(counts(&merged), counts(&whole), "the same messages, ops and violations");
}

#[test]
fn a_bad_line_fails_with_file_and_line() {
    let path = tmp("bad.jsonl");
    let header = r#"{"schema":"paxoskv-trace","version":1,"source":"sim","clock":"sim","nodes":[1]}"#;
    std::fs::write(&path, format!("{header}\n{{\"t_us\":1,\"event\":\"heal\"}}\n{{oops\n")).unwrap();
    let output = viz(&[&path, Path::new("--out"), &tmp("bad.html")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("bad.jsonl:3: not JSON"), "{stderr}");
}

/// The committed example (`results/viz/synthetic.jsonl`) is this generator's
/// output. Rewrite it with `PAXOSKV_BLESS=1 cargo test --test viz`.
#[test]
fn the_committed_example_is_current() {
    let (header, records) = synthetic::synthetic(10);
    let mut writer = TraceWriter::new(Vec::new(), &header).unwrap();
    for r in &records {
        writer.write_record(r).unwrap();
    }
    let bytes = writer.into_inner().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/viz/synthetic.jsonl");
    if std::env::var_os("PAXOSKV_BLESS").is_some() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(committed == bytes, "{} is stale: rerun with PAXOSKV_BLESS=1", path.display());
}

/// A large trace (about 100k messages) for trying the page's speed by hand
/// or with benches/viz-check.sh: `cargo test --release --test viz -- --ignored`.
#[test]
#[ignore]
fn write_a_large_trace() {
    let (header, records) = synthetic::synthetic(12_000);
    let path = tmp("synthetic-large.jsonl");
    write_trace(&path, &header, &records);
    println!("wrote {} ({} records)", path.display(), records.len());
}
