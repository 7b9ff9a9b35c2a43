//! The fault commands of `paxoskv cluster --control-stdin`: one per line,
//! parsed here, carried out by the cluster's supervisor.

use std::io::BufRead;
use std::sync::mpsc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// SIGKILL the node's server.
    Kill(u32),
    /// SIGTERM the node's server and wait for it to exit: a planned stop,
    /// in which the shards it leads hand their leadership over first.
    Stop(u32),
    /// Start a killed node again: the same command line, the same data.
    Restart(u32),
    /// SIGSTOP.
    Pause(u32),
    /// SIGCONT.
    Resume(u32),
    /// Cut the node off from every other node (`--netns`).
    Isolate(u32),
    /// Cut every link between nodes of different groups (`--netns`).
    Split(Vec<Vec<u32>>),
    /// Restore every link.
    Heal,
    /// Report each node's pid (0 while killed).
    Pids,
}

pub fn parse(line: &str) -> Result<Control, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let node = |word: Option<&&str>| -> Result<u32, String> {
        word.ok_or_else(|| format!("{line:?}: which node?"))?.parse().map_err(|_| format!("{line:?}: not a node id"))
    };
    let command = match words.first().copied() {
        Some("kill") => Control::Kill(node(words.get(1))?),
        Some("stop") => Control::Stop(node(words.get(1))?),
        Some("restart") => Control::Restart(node(words.get(1))?),
        Some("pause") => Control::Pause(node(words.get(1))?),
        Some("resume") => Control::Resume(node(words.get(1))?),
        Some("isolate") => Control::Isolate(node(words.get(1))?),
        Some("split") => {
            let spec = words.get(1).ok_or_else(|| format!("{line:?}: split 1,2/3"))?;
            let groups = spec
                .split('/')
                .map(|group| group.split(',').map(|id| id.parse::<u32>()).collect::<Result<Vec<u32>, _>>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| format!("{line:?}: groups of node ids, e.g. split 1,2/3"))?;
            let mut ids: Vec<u32> = groups.iter().flatten().copied().collect();
            ids.sort_unstable();
            if groups.len() < 2 || ids.windows(2).any(|w| w[0] == w[1]) {
                return Err(format!("{line:?}: two or more disjoint groups, e.g. split 1,2/3"));
            }
            Control::Split(groups)
        }
        Some("heal") => Control::Heal,
        Some("pids") => Control::Pids,
        _ => {
            return Err(format!(
            "{line:?}: unknown command (kill N, stop N, restart N, pause N, resume N, isolate N, split 1,2/3, heal, \
                 pids)"
        ))
        }
    };
    let takes = match command {
        Control::Heal | Control::Pids => 1,
        _ => 2,
    };
    if words.len() != takes {
        return Err(format!("{line:?}: unexpected words after the command"));
    }
    Ok(command)
}

/// `[[1, 2], [3]]` as `1,2/3`.
pub fn groups_text(groups: &[Vec<u32>]) -> String {
    let groups: Vec<String> =
        groups.iter().map(|g| g.iter().map(u32::to_string).collect::<Vec<_>>().join(",")).collect();
    groups.join("/")
}

/// The non-empty lines of stdin, read on a thread; the channel closes at
/// end of input.
pub fn read_stdin() -> mpsc::Receiver<String> {
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if !line.trim().is_empty() && lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_bad_ones_say_why() {
        assert_eq!(parse("kill 2"), Ok(Control::Kill(2)));
        assert_eq!(parse("stop 2"), Ok(Control::Stop(2)));
        assert_eq!(parse("  restart 3 "), Ok(Control::Restart(3)));
        assert_eq!(parse("pause 1"), Ok(Control::Pause(1)));
        assert_eq!(parse("resume 1"), Ok(Control::Resume(1)));
        assert_eq!(parse("isolate 2"), Ok(Control::Isolate(2)));
        assert_eq!(parse("split 1,2/3"), Ok(Control::Split(vec![vec![1, 2], vec![3]])));
        assert_eq!(parse("heal"), Ok(Control::Heal));
        assert_eq!(parse("pids"), Ok(Control::Pids));
        assert_eq!(groups_text(&[vec![1, 2], vec![3]]), "1,2/3");
        for bad in ["", "kill", "kill x", "kill 1 2", "heal now", "split 1", "split 1,2/2", "split 1/x", "reboot 1"] {
            let error = parse(bad).expect_err(bad);
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }
}
