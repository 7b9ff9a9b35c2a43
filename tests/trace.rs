//! The trace schema: round trips, a tolerant reader, merging, rotation.

#[path = "support/synthetic.rs"]
mod synthetic;

use std::collections::BTreeSet;
use std::path::PathBuf;

use paxoskv::trace::{
    merge, parse_trace, read_trace, Clock, Event, Header, MessageKind, Record, RotatingTraceFile, Source, Trace,
    TraceWriter,
};

fn to_bytes(header: &Header, records: &[Record]) -> Vec<u8> {
    let mut writer = TraceWriter::new(Vec::new(), header).unwrap();
    for r in records {
        writer.write_record(r).unwrap();
    }
    writer.into_inner().unwrap()
}

fn parse(text: &str) -> Result<Trace, paxoskv::trace::TraceError> {
    parse_trace(text.as_bytes(), "t.jsonl")
}

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trace-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

const HEADER: &str = r#"{"schema":"paxoskv-trace","version":1,"source":"sim","clock":"sim","nodes":[1,2,3]}"#;

#[test]
fn writing_then_reading_gives_the_same_records() {
    let (header, records) = synthetic::synthetic(10);
    let path = tmp("round-trip.jsonl");
    std::fs::write(&path, to_bytes(&header, &records)).unwrap();
    let trace = read_trace(&path).unwrap();
    assert_eq!(trace.header, header);
    assert_eq!(trace.records, records);
    assert_eq!((trace.skipped_unknown, trace.torn_tail), (0, false));
}

#[test]
fn the_synthetic_trace_has_every_event_so_the_round_trip_covers_them() {
    let (_, records) = synthetic::synthetic(10);
    let seen: BTreeSet<&str> = records.iter().map(|r| r.event.name()).collect();
    let all: BTreeSet<&str> = Event::NAMES.into_iter().collect();
    assert_eq!(seen, all);
}

#[test]
fn a_line_is_flat_json_with_time_and_event_first() {
    let (header, records) = synthetic::synthetic(1);
    let text = String::from_utf8(to_bytes(&header, &records[..1])).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with(r#"{"schema":"paxoskv-trace","version":1,"source":"sim","clock":"sim""#));
    assert_eq!(lines.next().unwrap(), r#"{"t_us":0,"event":"role","node":1,"role":"follower"}"#);
}

#[test]
fn unknown_events_and_fields_are_skipped() {
    let text = format!(
        "{HEADER}\n\
         {{\"t_us\":1,\"event\":\"gc_pause\",\"node\":1,\"ms\":5}}\n\
         {{\"t_us\":2,\"event\":\"crash\",\"node\":2,\"why\":\"oom\"}}\n\
         {{\"t_us\":3,\"event\":\"send\",\"id\":9,\"from\":1,\"to\":2,\"kind\":\"telepathy\",\"colour\":\"red\"}}\n"
    );
    let trace = parse(&text).unwrap();
    assert_eq!(trace.skipped_unknown, 1);
    assert_eq!(trace.records.len(), 2);
    assert_eq!(trace.records[0].event, Event::Crash { node: 2 });
    let Event::Send(send) = &trace.records[1].event else { panic!("a send") };
    assert_eq!((send.id, send.kind, send.ballot), (9, MessageKind::Other, None));
}

#[test]
fn a_line_that_is_not_json_is_reported_with_its_number() {
    let text = format!("{HEADER}\n{{\"t_us\":1,\"event\":\"heal\"}}\n\nnot json\n{{\"t_us\":2,\"event\":\"heal\"}}\n");
    let e = parse(&text).unwrap_err();
    assert_eq!(e.line, Some(4));
    assert!(e.to_string().starts_with("t.jsonl:4: not JSON"), "{e}");
}

#[test]
fn a_known_event_with_a_missing_or_bad_field_is_an_error() {
    let missing = format!("{HEADER}\n{{\"t_us\":1,\"event\":\"crash\"}}\n");
    let e = parse(&missing).unwrap_err();
    assert_eq!(e.line, Some(2));
    assert!(e.reason.contains("crash") && e.reason.contains("node"), "{e}");
    let ballot = format!("{HEADER}\n{{\"t_us\":1,\"event\":\"election\",\"node\":1,\"ballot\":\"7\"}}\n");
    assert!(parse(&ballot).unwrap_err().reason.contains("round.node"));
    let no_time = format!("{HEADER}\n{{\"event\":\"heal\"}}\n");
    assert_eq!(parse(&no_time).unwrap_err().line, Some(2));
}

#[test]
fn a_torn_last_line_is_dropped_but_said() {
    let text = format!("{HEADER}\n{{\"t_us\":1,\"event\":\"heal\"}}\n{{\"t_us\":2,\"ev");
    let trace = parse(&text).unwrap();
    assert_eq!(trace.records.len(), 1);
    assert!(trace.torn_tail);
}

#[test]
fn the_header_must_come_first_and_be_a_version_this_reader_knows() {
    assert_eq!(parse("").unwrap_err().line, None);
    let e = parse("{\"t_us\":1,\"event\":\"heal\"}\n").unwrap_err();
    assert_eq!(e.line, Some(1));
    assert!(e.reason.contains("header"), "{e}");
    let v2 = HEADER.replace("\"version\":1", "\"version\":2");
    assert!(parse(&v2).unwrap_err().reason.contains("version Some(2)"));
}

/// Split the synthetic run into one wall-clock file per node, as a live
/// cluster writes it: each event goes to the node it happened on.
fn per_node_traces() -> (Vec<Record>, Vec<Trace>) {
    let (_, records) = synthetic::synthetic(6);
    let epoch_us = 1_760_000_000_000_000;
    let records: Vec<Record> = records.into_iter().map(|r| Record { t_us: r.t_us + epoch_us, ..r }).collect();
    let traces = (1..=5)
        .map(|node| {
            let mut header = Header::new(Source::Node, Clock::Wall, vec![1, 2, 3, 4, 5]);
            header.node = Some(node);
            let mine = records.iter().filter(|r| writer_of(&r.event) == node).cloned().collect();
            Trace { header, records: mine, skipped_unknown: 0, torn_tail: false }
        })
        .collect();
    (records, traces)
}

/// Which node's file holds an event (network and client events: node 1's).
fn writer_of(event: &Event) -> u32 {
    match event {
        Event::Send(s) => s.from,
        Event::Deliver { to, .. } | Event::Drop { to, .. } => *to,
        Event::Role { node, .. } | Event::Crash { node } | Event::Commit { node, .. } | Event::Chosen { node, .. } => {
            *node
        }
        _ => 1,
    }
}

#[test]
fn merge_puts_the_nodes_files_in_time_order() {
    let (records, traces) = per_node_traces();
    let merged = merge(traces).unwrap();
    assert!(merged.records.windows(2).all(|w| w[0].t_us <= w[1].t_us));
    assert_eq!(merged.records.len(), records.len());
    let key = |r: &Record| format!("{r:?}");
    let mut want: Vec<String> = records.iter().map(key).collect();
    let mut got: Vec<String> = merged.records.iter().map(key).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "the same records");
    assert_eq!(merged.header.node, None, "several writers");
    assert_eq!(merged.header.clock, Clock::Wall);
}

#[test]
fn merge_keeps_the_order_of_simultaneous_events() {
    let header = Header::new(Source::Node, Clock::Wall, vec![1, 2]);
    let one = |node| Trace {
        header: header.clone(),
        records: vec![Record { t_us: 5, event: Event::Crash { node } }],
        skipped_unknown: 0,
        torn_tail: false,
    };
    let merged = merge(vec![one(2), one(1)]).unwrap();
    assert_eq!(merged.records[0].event, Event::Crash { node: 2 });
}

#[test]
fn merge_refuses_a_simulated_and_a_wall_clock() {
    let (_, mut traces) = per_node_traces();
    traces[1].header.clock = Clock::Sim;
    assert!(merge(traces).unwrap_err().contains("cannot merge"));
    assert!(merge(Vec::new()).is_err());
}

#[test]
fn rotation_caps_each_file_and_keeps_the_newest() {
    let (header, records) = synthetic::synthetic(10);
    let path = tmp("rotating.jsonl");
    let mut file = RotatingTraceFile::create(&path, header.clone(), 4_000, 2).unwrap();
    for r in &records {
        file.write(r.t_us, r.event.clone()).unwrap();
    }
    file.flush().unwrap();
    let rotated = |n: u32| file.rotated_path(n);
    assert!(rotated(2).exists() && !rotated(3).exists());
    let mut kept = Vec::new();
    for p in [rotated(2), rotated(1), path.clone()] {
        let bytes = std::fs::metadata(&p).unwrap().len();
        assert!(bytes < 4_000 + 1_000, "{} holds {bytes} bytes", p.display());
        let trace = read_trace(&p).unwrap();
        assert_eq!(trace.header, header, "every file starts with the header");
        kept.extend(trace.records);
    }
    assert!(kept.len() < records.len(), "the oldest were deleted");
    assert_eq!(kept[..], records[records.len() - kept.len()..], "the newest are kept, in order");
}

/// The simulator writes this schema (`paxoskv sim --trace`): a run with
/// crashes and partitions reads back whole, every delivery and drop pairs
/// with a send before it, the story is there (leaders, crashes, cuts,
/// chosen slots, client operations), and tracing changes nothing in the run.
#[test]
fn a_simulator_run_traces_in_the_schema_and_runs_the_same_untraced() {
    use paxoskv::sim::{run_seed, Drawn, FaultPlan, RunOptions, Tracer};
    use paxoskv::trace::RoleName;
    const SEED: u64 = 7;
    let mut options = RunOptions { draw: Drawn::ALL, ..RunOptions::default() };
    options.sim.replicas = 5;
    options.faults = FaultPlan { duration_ms: 1_500, partitions: true, crashes: true, ..FaultPlan::default() };
    let path = tmp("sim-seed-7.jsonl");
    let mut header = Header::new(Source::Sim, Clock::Sim, options.sim.members());
    header.seed = Some(SEED);
    let file = std::fs::File::create(&path).unwrap();
    let traced = run_seed(&options, SEED, Tracer::to_writer(Box::new(std::io::BufWriter::new(file)), &header).unwrap());
    let untraced = run_seed(&options, SEED, Tracer::default());
    assert_eq!(format!("{traced:?}"), format!("{untraced:?}"), "seed {SEED}: tracing changed the run");
    assert!(traced.violations.is_empty(), "seed {SEED}: {:?}", traced.violations);

    let trace = read_trace(&path).unwrap();
    assert_eq!((trace.header.source, trace.header.nodes.len(), trace.skipped_unknown), (Source::Sim, 5, 0));
    let (mut sent, mut ops) = (BTreeSet::new(), BTreeSet::new());
    let (mut leaders, mut crashes, mut cuts, mut chosen, mut completed) = (0, 0, 0, 0, 0);
    let mut last_t = 0;
    for record in &trace.records {
        assert!(record.t_us >= last_t, "seed {SEED}: time went back at {record:?}");
        last_t = record.t_us;
        match &record.event {
            Event::Send(s) => {
                sent.insert((s.from, s.to, s.id));
            }
            Event::Deliver { id, from, to } | Event::Drop { id, from, to, .. } => {
                assert!(sent.contains(&(*from, *to, *id)), "seed {SEED}: {record:?} before its send");
            }
            Event::Role { role: RoleName::Leader, .. } => leaders += 1,
            Event::Crash { .. } => crashes += 1,
            Event::Partition { .. } => cuts += 1,
            Event::Chosen { .. } => chosen += 1,
            Event::Invoke { op, .. } => {
                ops.insert(*op);
            }
            Event::Complete { op, .. } => {
                assert!(ops.contains(op), "seed {SEED}: {record:?} before its invoke");
                completed += 1;
            }
            _ => {}
        }
    }
    assert!(
        leaders >= 2 && crashes >= 1 && cuts >= 1,
        "seed {SEED}: {leaders} leaders, {crashes} crashes, {cuts} cuts"
    );
    assert!(chosen as u64 >= traced.committed_slots, "seed {SEED}: {chosen} chosen events");
    // Completions as the clients saw them (replies, timeouts); the report
    // also counts operations the history settles after the run.
    assert_eq!(ops.len(), traced.ops_invoked, "seed {SEED}");
    assert!(
        completed > traced.ops_completed * 9 / 10 && completed <= ops.len(),
        "seed {SEED}: {completed} completions"
    );
}
