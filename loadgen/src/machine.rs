//! What produced a result: the machine, the git commit, the command line.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::bundle::Machine;

pub fn machine_facts() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let processors = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let cores = if processors > 0 { processors } else { std::thread::available_parallelism().map_or(0, |n| n.get()) };
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown".to_string(), |(_, model)| model.trim().to_string());
    let kernel = command_output("uname", &["-srm"], None).unwrap_or_else(|| {
        fs::read_to_string("/proc/sys/kernel/osrelease").map_or("unknown".into(), |s| s.trim().to_string())
    });
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| command_output("hostname", &[], None))
        .unwrap_or_else(|| "unknown".into());
    Machine { cores, kernel, cpu_model, hostname }
}

/// `git rev-parse --short HEAD`, plus `-dirty` if tracked files changed;
/// taken in the current directory, else where loadgen was built; or
/// "unknown".
pub fn git_commit() -> String {
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [None, Some(built_in)] {
        if let Some(commit) = command_output("git", &["rev-parse", "--short", "HEAD"], dir) {
            let dirty = command_output("git", &["status", "--porcelain", "--untracked-files=no"], dir)
                .is_some_and(|status| !status.is_empty());
            return if dirty { format!("{commit}-dirty") } else { commit };
        }
    }
    "unknown".into()
}

fn command_output(program: &str, args: &[&str], dir: Option<&Path>) -> Option<String> {
    let mut command = Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = command.output().ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The process's command line, with arguments quoted where a shell needs it.
pub fn command_line() -> String {
    std::env::args().map(|arg| shell_quote(&arg)).collect::<Vec<_>>().join(" ")
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

pub fn unix_now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("--rate"), "--rate");
        assert_eq!(shell_quote("resp://127.0.0.1:6379,h:1"), "resp://127.0.0.1:6379,h:1");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn machine_facts_are_filled_in() {
        let machine = machine_facts();
        assert!(machine.cores > 0);
        assert!(!machine.kernel.is_empty() && !machine.hostname.is_empty());
    }
}
