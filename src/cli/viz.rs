//! `paxoskv viz`: draw one or more trace files as a space-time diagram in
//! one self-contained HTML file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use paxoskv::trace::{merge, read_trace};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    paxoskv viz run.jsonl --out run.html\n  \
    paxoskv viz node-1.jsonl node-2.jsonl node-3.jsonl --out cluster.html\n\n\
    Several files (one per live node, and their rotated `.1`, `.2` ...) are merged into one \
    timeline. The page needs no network. Its URL fragment sets the view, e.g. \
    `cluster.html#t0=0&t1=50000&kinds=prepare,promise&lanes=1,2`: times in the trace's clock (µs), \
    message kinds by name, lanes by node id.")]
pub struct VizArgs {
    /// Trace files (JSON lines, schema paxoskv-trace).
    #[arg(required = true)]
    traces: Vec<PathBuf>,
    /// Where to write the HTML page.
    #[arg(long)]
    out: PathBuf,
    /// The page's title (default: the trace file names).
    #[arg(long)]
    title: Option<String>,
}

pub fn run(args: VizArgs) -> ExitCode {
    let mut traces = Vec::new();
    for path in &args.traces {
        match read_trace(path) {
            Ok(trace) => {
                if trace.skipped_unknown > 0 {
                    eprintln!(
                        "{}: skipped {} events of kinds this paxoskv does not know",
                        path.display(),
                        trace.skipped_unknown
                    );
                }
                if trace.torn_tail {
                    eprintln!("{}: dropped a torn last line (the writer stopped mid-line)", path.display());
                }
                traces.push(trace);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let trace = match merge(traces) {
        Ok(trace) => trace,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let title = args.title.unwrap_or_else(|| {
        let names: Vec<String> = args.traces.iter().map(|p| p.display().to_string()).collect();
        format!("paxoskv trace: {}", names.join(", "))
    });
    let model = paxoskv::viz::build(&trace, &title);
    let html = paxoskv::viz::render_html(&model);
    if let Err(e) = std::fs::write(&args.out, html) {
        eprintln!("error: cannot write {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "{}: {} replicas, {} messages, {} client ops, {} violations",
        args.out.display(),
        model.lanes.len(),
        model.arrows.len(),
        model.ops.len(),
        model.violations.len()
    );
    ExitCode::SUCCESS
}
