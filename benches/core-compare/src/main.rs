//! The side-by-side run behind the result bundle: for every shape, the
//! libraries take turns (A, B, C, A, B, C ...: `--repeats` timed samples
//! each, interleaved, so machine noise hits all of them alike), then one
//! allocation count each. Writes `results.json` to `--out` and prints a
//! summary. The criterion bench (`benches/compare.rs`) times the same
//! rounds one library after another; `benches/core-compare.sh` runs both.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use core_compare::alloc::{self, CountingAllocator};
use core_compare::{measure, Library, Shape, TRIM_EVERY_ENTRIES};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[derive(Parser)]
struct Args {
    /// Write results.json here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Timed samples per library and shape.
    #[arg(long, default_value_t = 7)]
    repeats: usize,
    /// Wall time of one timed sample, milliseconds.
    #[arg(long, default_value_t = 200)]
    sample_ms: u64,
    /// Entries per round to run (default: 1 and 16).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16])]
    entries_per_round: Vec<usize>,
    /// Commands per entry to run (default: 1, 64 and 1024).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 64, 1024])]
    commands_per_entry: Vec<usize>,
    /// Only these libraries (by name; default: all), e.g. for a profile.
    #[arg(long, value_delimiter = ',')]
    library: Vec<String>,
    /// Rounds per sample, fixed instead of calibrated to `--sample-ms`:
    /// the same work on every run, for counting instructions
    /// (`benches/core_compare_instructions.py`, under valgrind).
    #[arg(long)]
    rounds: Option<u64>,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    assert!(alloc::installed(), "the counting allocator is not the global one");
    let target = Duration::from_millis(args.sample_ms);
    let mut rows = Vec::new();
    println!(
        "{:>7} {:>7} {:<20} {:>12} {:>14} {:>10} {:>10} {:>9}",
        "entries", "cmds", "library", "ns/cmd (med)", "min-max", "allocs/cmd", "bytes/cmd", "msgs/entry"
    );
    for &entries_per_round in &args.entries_per_round {
        for &commands_per_entry in &args.commands_per_entry {
            let shape = Shape { commands_per_entry, entries_per_round };
            let mut groups: Vec<_> = Library::ALL
                .iter()
                .filter(|l| args.library.is_empty() || args.library.iter().any(|n| n == l.name()))
                .map(|l| l.build(shape))
                .collect();
            // Calibrate (this also warms each group up), then one discarded sample;
            // with `--rounds`, no calibration: the discarded sample warms up.
            let mut rounds = Vec::new();
            for group in groups.iter_mut() {
                rounds.push(match args.rounds {
                    Some(fixed) => fixed,
                    None => measure::calibrate(group.as_mut(), target)?,
                });
            }
            let mut ns: Vec<Vec<f64>> = vec![Vec::new(); groups.len()];
            for repeat in 0..=args.repeats {
                for (index, group) in groups.iter_mut().enumerate() {
                    let sample = measure::timed(group.as_mut(), rounds[index])?;
                    let expected = rounds[index] * shape.commands_per_round();
                    if sample.commands != expected {
                        return Err(format!(
                            "{}: {} commands committed at the leader, {expected} proposed",
                            group.library().name(),
                            sample.commands
                        ));
                    }
                    if repeat > 0 {
                        ns[index].push(sample.ns_per_command());
                    }
                }
            }
            // Allocations over a whole number of trim periods (4), so each
            // library's share of trimming is in its count.
            let alloc_rounds = (4 * TRIM_EVERY_ENTRIES).div_ceil(entries_per_round as u64);
            for (index, group) in groups.iter_mut().enumerate() {
                let counted = measure::allocations(group.as_mut(), alloc_rounds)?;
                let samples = ns[index].clone();
                let med = median(&mut ns[index]);
                let (min, max) = (ns[index][0], ns[index][ns[index].len() - 1]);
                let library = group.library().name();
                println!(
                    "{entries_per_round:>7} {commands_per_entry:>7} {library:<20} {med:>12.1} {:>14} {:>10.3} {:>10.1} {:>9.2}",
                    format!("{min:.1}-{max:.1}"),
                    counted.allocations_per_command(),
                    counted.bytes_per_command(),
                    counted.messages as f64 * commands_per_entry as f64 / counted.commands as f64
                );
                rows.push(json!({
                    "library": library,
                    "entries_per_round": entries_per_round,
                    "commands_per_entry": commands_per_entry,
                    "rounds_per_sample": rounds[index],
                    "ns_per_command_samples": samples,
                    "ns_per_command_median": med,
                    "ns_per_command_min": min,
                    "ns_per_command_max": max,
                    "allocation_rounds": alloc_rounds,
                    "allocation_commands": counted.commands,
                    "messages_per_entry": counted.messages as f64 * commands_per_entry as f64 / counted.commands as f64,
                    "allocations": counted.counts.allocations,
                    "allocated_bytes": counted.counts.bytes,
                    "allocations_per_command": counted.allocations_per_command(),
                    "bytes_per_command": counted.bytes_per_command(),
                }));
            }
        }
    }
    if let Some(out) = args.out {
        let doc = json!({
            "repeats": args.repeats,
            "sample_ms": args.sample_ms,
            "trim_every_entries": TRIM_EVERY_ENTRIES,
            "command_bytes": core_compare::workload::COMMAND_BYTES,
            "rows": rows,
        });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(out.join("results.json"), text).map_err(|e| e.to_string())?;
    }
    Ok(())
}
