//! The transcript files of `tests/redis_compat/`: parsing them into cases
//! and commands, and rewriting them with freshly recorded replies. The
//! format is described for its readers at the top of `tests/redis_compat.rs`;
//! in short:
//!
//! ```text
//! # comment                     kept by the recorder, ignored by the checker
//! %requirepass PASSWORD          header: the server runs with this password
//! %protocols 2 3                 header: replay in these protocols (default 2 3)
//! %recorded-with TEXT            header: written by the recorder
//! === NAME                       a case: a fresh keyspace and fresh connections
//! @MODE ARGS...                  how to compare the next command's reply
//! [LABEL]> ARG ARG "quoted arg"   a command, on connection LABEL (default a)
//! < LINE                         one CRLF-ended line of its reply, every protocol
//! 2< LINE  /  3< LINE            ... in RESP2 only / RESP3 only
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::reply::{escape_quoted, parse_whole, reply_lines, unescape, Reply};

/// A RESP protocol version a transcript is replayed in.
pub type Protocol = u8;

/// What a command did, as recorded or observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The bytes of one whole reply.
    Reply(Vec<u8>),
    /// The server closed the connection instead of replying (`< [closed]`).
    Closed,
}

/// How a reply is judged against the recorded one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Byte for byte (the default).
    Exact,
    /// `@shape [KEY...]`: the same types, null-ness, item counts and map
    /// keys; map values under the named keys equal too.
    Shape { exact_keys: Vec<String> },
    /// `@unordered`: an array with the same items in any order.
    Unordered,
    /// `@range MIN MAX`: an integer reply within `MIN..=MAX`.
    Range { min: i64, max: i64 },
    /// `@info [FIELD | FIELD:VALUE]...`: INFO text with the same `# Section`
    /// headers in the same order, every other line empty or `field:value`,
    /// and each named field present (with that value, if given).
    Info { fields: Vec<String> },
    /// `@fields [KEY=VALUE]...`: CLIENT LIST/INFO text: as many lines, each
    /// with the same `key=value` keys in the same order, and each named pair
    /// present on some line.
    Fields { pairs: Vec<String> },
    /// `@scan`: a SCAN iterated from the cursor written (its first argument)
    /// until the server returns cursor 0; the reply compared is the sorted
    /// array of the distinct keys returned.
    Scan,
    /// `@eventually`: resent until its reply equals the one written, within
    /// a deadline (the recorder too checks that redis-server gets there).
    Eventually,
    /// `@capture NAME`: compared as `@shape`, and its value (an integer or a
    /// bulk string) is kept as `${NAME}` for the later commands of the case.
    Capture { name: String },
}

/// One command line of a transcript and what it expects.
#[derive(Clone, Debug)]
pub struct Command {
    /// 1-based line number in the file.
    pub line: usize,
    /// The command as written (for reports).
    pub text: String,
    pub connection: String,
    /// Arguments, unescaped; `${NAME}` still to be substituted.
    pub args: Vec<Vec<u8>>,
    pub check: Check,
    /// The `<` reply, shared by every protocol.
    expected_any: Option<Outcome>,
    /// The `2<` and `3<` replies.
    expected_by_protocol: [Option<Outcome>; 2],
}

impl Command {
    /// The reply recorded for `protocol`, if any.
    pub fn expected(&self, protocol: Protocol) -> Option<&Outcome> {
        self.expected_by_protocol[protocol_index(protocol)].as_ref().or(self.expected_any.as_ref())
    }
}

fn protocol_index(protocol: Protocol) -> usize {
    match protocol {
        2 => 0,
        3 => 1,
        other => panic!("no protocol {other}"),
    }
}

/// A named group of commands that starts from an empty keyspace with fresh
/// connections.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub line: usize,
    pub commands: Vec<Command>,
}

/// One parsed transcript file.
#[derive(Clone, Debug)]
pub struct Transcript {
    pub path: PathBuf,
    pub requirepass: Option<String>,
    pub protocols: Vec<Protocol>,
    pub cases: Vec<Case>,
    /// The file's lines, for [`Transcript::rewrite`].
    lines: Vec<String>,
}

/// A syntax error with its place.
#[derive(Debug)]
pub struct ParseError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

/// What a reply line is for.
fn reply_line_protocol(line: &str) -> Option<(Option<Protocol>, &str)> {
    let (protocol, rest) = if let Some(rest) = line.strip_prefix("2<") {
        (Some(2), rest)
    } else if let Some(rest) = line.strip_prefix("3<") {
        (Some(3), rest)
    } else {
        (None, line.strip_prefix('<')?)
    };
    Some((protocol, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// The marker line of [`Outcome::Closed`]; no RESP line starts with `[`.
const CLOSED_MARKER: &str = "[closed]";

impl Transcript {
    pub fn load(path: &Path) -> Result<Transcript, ParseError> {
        let text = std::fs::read_to_string(path).map_err(|e| ParseError {
            path: path.to_path_buf(),
            line: 0,
            message: format!("reading: {e}"),
        })?;
        Transcript::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Transcript, ParseError> {
        let error = |line: usize, message: String| ParseError { path: path.to_path_buf(), line, message };
        let mut transcript = Transcript {
            path: path.to_path_buf(),
            requirepass: None,
            protocols: vec![2, 3],
            cases: Vec::new(),
            lines: text.lines().map(str::to_string).collect(),
        };
        let mut pending_check: Option<(usize, Check)> = None;
        // Reply lines of the last command, by protocol slot (None = `<`).
        let mut reply_lines_seen: [Vec<Vec<u8>>; 3] = Default::default();
        for (index, raw) in transcript.lines.clone().iter().enumerate() {
            let line_no = index + 1;
            let line = raw.trim_end();
            if let Some((protocol, body)) = reply_line_protocol(line) {
                if transcript.cases.last().and_then(|c| c.commands.last()).is_none() {
                    return Err(error(line_no, "a reply line before any command of its case".into()));
                }
                let slot = protocol.map_or(2, protocol_index);
                let bytes = unescape(body).map_err(|e| error(line_no, e))?;
                reply_lines_seen[slot].push(bytes);
                continue;
            }
            // Any other line ends the replies of the command before it.
            finish_replies(&mut transcript, &mut reply_lines_seen).map_err(|(l, m)| error(l, m))?;
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(header) = line.strip_prefix('%') {
                if !transcript.cases.is_empty() {
                    return Err(error(line_no, "a % header after the first case".into()));
                }
                let mut words = header.split_whitespace();
                match (words.next(), words.collect::<Vec<_>>().as_slice()) {
                    (Some("requirepass"), [password]) => transcript.requirepass = Some(password.to_string()),
                    (Some("protocols"), protocols) if !protocols.is_empty() => {
                        transcript.protocols = protocols
                            .iter()
                            .map(|p| match *p {
                                "2" => Ok(2),
                                "3" => Ok(3),
                                other => Err(error(line_no, format!("no protocol {other:?} (2 or 3)"))),
                            })
                            .collect::<Result<_, _>>()?;
                    }
                    (Some("recorded-with"), _) => {}
                    _ => return Err(error(line_no, format!("an unknown header {line:?}"))),
                }
                continue;
            }
            if let Some(name) = line.strip_prefix("===") {
                if let Some((at, _)) = pending_check {
                    return Err(error(at, "an @ directive with no command after it".into()));
                }
                transcript.cases.push(Case { name: name.trim().to_string(), line: line_no, commands: Vec::new() });
                continue;
            }
            let Some(case) = transcript.cases.last_mut() else {
                return Err(error(line_no, "a command or directive before the first === case".into()));
            };
            if let Some(directive) = line.strip_prefix('@') {
                if pending_check.is_some() {
                    return Err(error(line_no, "two @ directives for one command".into()));
                }
                pending_check = Some((line_no, parse_check(directive).map_err(|m| error(line_no, m))?));
                continue;
            }
            let Some((label, args_text)) = line.split_once('>') else {
                return Err(error(line_no, format!("not a command, reply, directive or comment: {line:?}")));
            };
            let connection = if label.is_empty() { "a".to_string() } else { label.to_string() };
            if !connection.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
                return Err(error(
                    line_no,
                    format!("a connection label must be lowercase letters and digits: {label:?}"),
                ));
            }
            let args = split_args(args_text).map_err(|m| error(line_no, m))?;
            if args.is_empty() {
                return Err(error(line_no, "a command with no words".into()));
            }
            let check = pending_check.take().map_or(Check::Exact, |(_, check)| check);
            case.commands.push(Command {
                line: line_no,
                text: args_text.trim().to_string(),
                connection,
                args,
                check,
                expected_any: None,
                expected_by_protocol: [None, None],
            });
        }
        finish_replies(&mut transcript, &mut reply_lines_seen).map_err(|(l, m)| error(l, m))?;
        if let Some((at, _)) = pending_check {
            return Err(error(at, "an @ directive with no command after it".into()));
        }
        Ok(transcript)
    }

    /// The file name, for reports.
    pub fn name(&self) -> String {
        self.path.file_name().map_or_else(|| self.path.display().to_string(), |n| n.to_string_lossy().into_owned())
    }

    /// Every command, in file order.
    pub fn commands(&self) -> impl Iterator<Item = (&Case, &Command)> {
        self.cases.iter().flat_map(|case| case.commands.iter().map(move |command| (case, command)))
    }

    /// The file's text with every command's reply lines replaced by
    /// `recorded(case, command)`: one `<` block when every protocol got the
    /// same outcome, else a `2<` and a `3<` block. Other lines are kept as
    /// they are; the `%recorded-with` header is set to `recorded_with`.
    pub fn rewrite(&self, recorded_with: &str, recorded: impl Fn(&Command) -> Vec<(Protocol, Outcome)>) -> String {
        let commands: std::collections::BTreeMap<usize, &Command> =
            self.commands().map(|(_, command)| (command.line, command)).collect();
        let mut out = String::new();
        let mut wrote_recorded_with = false;
        let header_line = format!("%recorded-with {recorded_with}");
        for (index, line) in self.lines.iter().enumerate() {
            if reply_line_protocol(line.trim_end()).is_some() {
                continue;
            }
            if line.starts_with("%recorded-with") {
                out.push_str(&header_line);
                out.push('\n');
                wrote_recorded_with = true;
                continue;
            }
            if !wrote_recorded_with && line.starts_with("===") {
                out.push_str(&header_line);
                out.push_str("\n\n");
                wrote_recorded_with = true;
            }
            out.push_str(line);
            out.push('\n');
            let Some(command) = commands.get(&(index + 1)) else { continue };
            let outcomes = recorded(command);
            let all_same = outcomes.windows(2).all(|w| w[0].1 == w[1].1);
            for (protocol, outcome) in &outcomes {
                let prefix = if all_same { "<".to_string() } else { format!("{protocol}<") };
                for text in outcome_lines(outcome) {
                    out.push_str(&prefix);
                    if !text.is_empty() {
                        out.push(' ');
                        out.push_str(&text);
                    }
                    out.push('\n');
                }
                if all_same {
                    break;
                }
            }
        }
        out
    }
}

/// The transcript lines of an outcome.
pub fn outcome_lines(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::Closed => vec![CLOSED_MARKER.to_string()],
        Outcome::Reply(bytes) => reply_lines(bytes).unwrap_or_else(|| vec![super::reply::escape(bytes)]),
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Closed => f.write_str(CLOSED_MARKER),
            Outcome::Reply(bytes) => f.write_str(&escape_quoted(bytes)),
        }
    }
}

impl Outcome {
    /// The parsed reply (`None` for a closed connection or bad bytes).
    pub fn reply(&self) -> Option<Reply> {
        match self {
            Outcome::Reply(bytes) => parse_whole(bytes).ok(),
            Outcome::Closed => None,
        }
    }
}

/// Turn the reply lines gathered since the last command into its expected
/// outcomes. Errs with (line, message).
fn finish_replies(transcript: &mut Transcript, seen: &mut [Vec<Vec<u8>>; 3]) -> Result<(), (usize, String)> {
    if seen.iter().all(Vec::is_empty) {
        return Ok(());
    }
    let command = transcript
        .cases
        .last_mut()
        .and_then(|c| c.commands.last_mut())
        .expect("reply lines are only gathered after a command");
    let to_outcome = |lines: Vec<Vec<u8>>| -> Result<Outcome, (usize, String)> {
        if lines.len() == 1 && lines[0] == CLOSED_MARKER.as_bytes() {
            return Ok(Outcome::Closed);
        }
        let mut bytes = Vec::new();
        for line in lines {
            bytes.extend_from_slice(&line);
            bytes.extend_from_slice(b"\r\n");
        }
        parse_whole(&bytes)
            .map_err(|e| (command.line, format!("the reply lines after this command are not one reply: {e}")))?;
        Ok(Outcome::Reply(bytes))
    };
    if command.expected_any.is_some() || command.expected_by_protocol.iter().any(Option::is_some) {
        return Err((command.line, "reply lines must follow their command with nothing between".into()));
    }
    let [two, three, any] = std::mem::take(seen);
    let by_protocol = !two.is_empty() || !three.is_empty();
    if !any.is_empty() && by_protocol {
        return Err((command.line, "a reply written with both < and 2< or 3< lines".into()));
    }
    if !two.is_empty() {
        command.expected_by_protocol[0] = Some(to_outcome(two)?);
    }
    if !three.is_empty() {
        command.expected_by_protocol[1] = Some(to_outcome(three)?);
    }
    if !any.is_empty() {
        command.expected_any = Some(to_outcome(any)?);
    }
    Ok(())
}

fn parse_check(directive: &str) -> Result<Check, String> {
    let mut words = directive.split_whitespace();
    let name = words.next().unwrap_or_default();
    let args: Vec<String> = words.map(str::to_string).collect();
    let no_args = |check: Check| {
        if args.is_empty() {
            Ok(check)
        } else {
            Err(format!("@{name} takes no arguments"))
        }
    };
    match name {
        "shape" => Ok(Check::Shape { exact_keys: args }),
        "unordered" => no_args(Check::Unordered),
        "scan" => no_args(Check::Scan),
        "eventually" => no_args(Check::Eventually),
        "info" => Ok(Check::Info { fields: args }),
        "fields" => {
            if let Some(bad) = args.iter().find(|a| !a.contains('=')) {
                return Err(format!("@fields takes KEY=VALUE pairs, not {bad:?}"));
            }
            Ok(Check::Fields { pairs: args })
        }
        "range" => match args.as_slice() {
            [min, max] => {
                let min = min.parse().map_err(|_| format!("@range: {min:?} is not an integer"))?;
                let max = max.parse().map_err(|_| format!("@range: {max:?} is not an integer"))?;
                Ok(Check::Range { min, max })
            }
            _ => Err("@range takes MIN MAX".into()),
        },
        "capture" => match args.as_slice() {
            [name] if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                Ok(Check::Capture { name: name.clone() })
            }
            _ => Err("@capture takes one NAME of letters, digits and _".into()),
        },
        other => Err(format!("an unknown directive @{other}")),
    }
}

/// Split a command line into arguments: words separated by spaces, taken
/// as they are (backslashes included), or `"double quoted"` with the
/// escapes of [`unescape`] (`""` is the empty argument).
pub fn split_args(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut args = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or("an unterminated quoted argument")?;
            args.push(unescape(&quoted[..end])?);
            rest = &quoted[end + 1..];
            if !(rest.is_empty() || rest.starts_with(' ')) {
                return Err("a quoted argument must be followed by a space or the end of the line".into());
            }
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            args.push(rest.as_bytes()[..end].to_vec());
            rest = &rest[end..];
        }
        rest = rest.trim_start();
    }
    Ok(args)
}

/// Every `*.txt` transcript in `dir`, sorted by name.
pub fn transcript_paths(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    paths
}

/// The `${NAME}` variables `arg` uses.
pub fn variables_in(arg: &[u8]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(arg);
    let mut names = BTreeSet::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                names.insert(after[..end].to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# a comment
%protocols 2 3
=== set and get
> SET {t}a \"two words\"
< +OK
@range 1 100
b> TTL {t}a
< :-1
> GET {t}missing
2< $-1
3< _
";

    #[test]
    fn a_transcript_parses_into_cases_commands_and_replies() {
        let t = Transcript::parse(Path::new("sample.txt"), SAMPLE).unwrap();
        assert_eq!(t.protocols, [2, 3]);
        assert_eq!(t.cases.len(), 1);
        let commands = &t.cases[0].commands;
        assert_eq!(commands[0].args, [b"SET".to_vec(), b"{t}a".to_vec(), b"two words".to_vec()]);
        assert_eq!(commands[0].expected(3), Some(&Outcome::Reply(b"+OK\r\n".to_vec())));
        assert_eq!(commands[1].connection, "b");
        assert_eq!(commands[1].check, Check::Range { min: 1, max: 100 });
        assert_eq!(commands[2].expected(2), Some(&Outcome::Reply(b"$-1\r\n".to_vec())));
        assert_eq!(commands[2].expected(3), Some(&Outcome::Reply(b"_\r\n".to_vec())));
    }

    #[test]
    fn rewriting_with_the_same_replies_gives_back_the_file() {
        let t = Transcript::parse(Path::new("sample.txt"), SAMPLE).unwrap();
        let text =
            t.rewrite("test", |c| vec![(2, c.expected(2).unwrap().clone()), (3, c.expected(3).unwrap().clone())]);
        let expected = SAMPLE.replace("=== set", "%recorded-with test\n\n=== set");
        assert_eq!(text, expected);
        assert_eq!(
            split_args(r#"KEYS {t}h\*llo "" "a\x00b""#).unwrap(),
            [b"KEYS".to_vec(), b"{t}h\\*llo".to_vec(), b"".to_vec(), b"a\0b".to_vec()]
        );
        assert!(split_args("\"open").is_err());
    }
}
