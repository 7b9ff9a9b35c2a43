//! Replaying a transcript against a live server over raw TCP, exactly as
//! a client sends it (each command a RESP array of bulk strings), and
//! judging what comes back against the recorded replies. The same replay
//! records the replies from redis-server and checks paxoskv against them,
//! so both sides see every command the same way.
//!
//! Each case starts from an empty keyspace (a setup connection sends
//! `FLUSHALL` and is closed before the case begins) and opens its
//! connections on first use; in RESP3 a connection sends `HELLO 3` first.
//! At the end of a case each connection half-closes and waits for the
//! server to close it, so the next case's `CLIENT LIST` does not see it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::reply::{compare_shape, escape_quoted, parse_reply, parse_whole, Reply};
use super::transcript::{variables_in, Case, Check, Command, Outcome, Protocol, Transcript};

/// The longest wait for one reply, or for the server to close a connection.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an `@eventually` command is retried.
const EVENTUALLY_DEADLINE: Duration = Duration::from_secs(10);
/// The pause between two tries of an `@eventually` command.
const EVENTUALLY_PAUSE: Duration = Duration::from_millis(20);
/// SCAN pages at most in one `@scan` iteration (a server whose cursor never
/// returns to 0 fails instead of looping forever).
const SCAN_PAGES_MAX: usize = 100_000;

/// Where a transcript is replayed.
#[derive(Clone, Debug)]
pub struct Target {
    pub port: u16,
    /// Sent with AUTH by the setup connection (the case's own connections
    /// authenticate only when the transcript says so).
    pub password: Option<String>,
    /// For reports: "redis-server", "node 2 (a follower)", ...
    pub description: String,
}

/// What one command got: an outcome, or why the harness has none (an I/O
/// error, a timeout, bytes that are not RESP, a case stopped early).
pub type Observed = Result<Outcome, String>;

/// One connection of a case.
pub struct Connection {
    stream: TcpStream,
    /// Bytes read past the last whole reply.
    buffer: Vec<u8>,
}

impl Connection {
    /// Connect, and in RESP3 switch with `HELLO 3` (which must answer a map).
    pub fn open(port: u16, protocol: Protocol) -> Result<Connection, String> {
        let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connecting to port {port}: {e}"))?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(|e| e.to_string())?;
        stream.set_write_timeout(Some(REPLY_TIMEOUT)).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut connection = Connection { stream, buffer: Vec::new() };
        if protocol == 3 {
            match connection.call(&[b"HELLO".to_vec(), b"3".to_vec()])? {
                Outcome::Reply(bytes) if bytes.first() == Some(&b'%') => {}
                other => return Err(format!("HELLO 3 on a new connection answered {other}, not a map")),
            }
        }
        Ok(connection)
    }

    /// Send one command and read its reply.
    pub fn call(&mut self, args: &[Vec<u8>]) -> Observed {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        match self.stream.write_all(&request) {
            Ok(()) => {}
            Err(e) if is_closed(&e) => return Ok(Outcome::Closed),
            Err(e) => return Err(format!("sending: {e}")),
        }
        self.read_reply()
    }

    fn read_reply(&mut self) -> Observed {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some((_, used)) = parse_reply(&self.buffer).map_err(|e| {
                format!("the server sent bytes that are not RESP ({e}): {}", escape_quoted(&self.buffer))
            })? {
                let bytes: Vec<u8> = self.buffer.drain(..used).collect();
                return Ok(Outcome::Reply(bytes));
            }
            match self.stream.read(&mut chunk) {
                Ok(0) if self.buffer.is_empty() => return Ok(Outcome::Closed),
                Ok(0) => return Err(format!("closed in the middle of a reply: {}", escape_quoted(&self.buffer))),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_closed(&e) && self.buffer.is_empty() => return Ok(Outcome::Closed),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(format!(
                        "no whole reply within {REPLY_TIMEOUT:?} (got {})",
                        escape_quoted(&self.buffer)
                    ))
                }
                Err(e) => return Err(format!("reading: {e}")),
            }
        }
    }

    /// Half-close and wait until the server closes its side: after this,
    /// the server has seen the client go.
    pub fn close(mut self) -> Result<(), String> {
        let _ = self.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_closed(&e) => return Ok(()),
                Err(e) => return Err(format!("waiting for the server to close a connection: {e}")),
            }
            if Instant::now() > deadline {
                return Err(format!("the server kept a half-closed connection open past {REPLY_TIMEOUT:?}"));
            }
        }
    }
}

fn is_closed(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted)
}

/// Words as arguments.
pub fn args(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// Empty the server's keyspace on a connection of its own, then close it.
fn flush_all(target: &Target) -> Result<(), String> {
    let mut connection = Connection::open(target.port, 2)?;
    if let Some(password) = &target.password {
        let reply = connection.call(&args(&["AUTH", password]))?;
        if reply != Outcome::Reply(b"+OK\r\n".to_vec()) {
            return Err(format!("setup: AUTH answered {reply}"));
        }
    }
    let reply = connection.call(&args(&["FLUSHALL"]))?;
    if reply != Outcome::Reply(b"+OK\r\n".to_vec()) {
        return Err(format!("setup: FLUSHALL answered {reply}"));
    }
    connection.close()
}

/// Replay every case of `transcript` in `protocol`; the outcome of each
/// command, by its line number.
pub fn replay(transcript: &Transcript, protocol: Protocol, target: &Target) -> BTreeMap<usize, Observed> {
    let mut observed = BTreeMap::new();
    for case in &transcript.cases {
        replay_case(case, protocol, target, &mut observed);
    }
    observed
}

fn replay_case(case: &Case, protocol: Protocol, target: &Target, observed: &mut BTreeMap<usize, Observed>) {
    let mut stopped: Option<String> = flush_all(target).err().map(|e| format!("the case's setup failed: {e}"));
    let mut connections: BTreeMap<String, Connection> = BTreeMap::new();
    let mut variables: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for command in &case.commands {
        if let Some(why) = &stopped {
            observed.insert(command.line, Err(why.clone()));
            continue;
        }
        let result = run_command(command, protocol, target, &mut connections, &variables);
        match &result {
            Ok(Outcome::Closed) => {
                // The next command on this label opens a new connection.
                connections.remove(&command.connection);
            }
            Ok(Outcome::Reply(bytes)) => {
                if let Check::Capture { name } = &command.check {
                    if let Some(value) = captured_value(bytes) {
                        variables.insert(name.clone(), value);
                    }
                }
            }
            Err(e) => stopped = Some(format!("not run: the case stopped at line {} ({e})", command.line)),
        }
        observed.insert(command.line, result);
    }
    for (label, connection) in connections {
        if let Err(e) = connection.close() {
            if let Some(last) = case.commands.last() {
                observed.insert(last.line, Err(format!("closing connection {label} after the case: {e}")));
            }
        }
    }
}

fn run_command(
    command: &Command,
    protocol: Protocol,
    target: &Target,
    connections: &mut BTreeMap<String, Connection>,
    variables: &BTreeMap<String, Vec<u8>>,
) -> Observed {
    let args = substitute(&command.args, variables)?;
    if !connections.contains_key(&command.connection) {
        let connection = Connection::open(target.port, protocol)
            .map_err(|e| format!("opening connection {}: {e}", command.connection))?;
        connections.insert(command.connection.clone(), connection);
    }
    let connection = connections.get_mut(&command.connection).expect("opened above");
    match &command.check {
        Check::Scan => scan(connection, args),
        Check::Eventually => {
            let Some(wanted) = command.expected(protocol) else {
                return Err("@eventually needs the reply it waits for written under the command".into());
            };
            let deadline = Instant::now() + EVENTUALLY_DEADLINE;
            loop {
                let outcome = connection.call(&args)?;
                if &outcome == wanted || Instant::now() > deadline || outcome == Outcome::Closed {
                    return Ok(outcome);
                }
                thread::sleep(EVENTUALLY_PAUSE);
            }
        }
        _ => connection.call(&args),
    }
}

/// Replace every `${NAME}` by the value captured under NAME.
fn substitute(args: &[Vec<u8>], variables: &BTreeMap<String, Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
    args.iter()
        .map(|arg| {
            let mut arg = arg.clone();
            for name in variables_in(&arg) {
                let value = variables.get(&name).ok_or_else(|| format!("${{{name}}} was not captured"))?;
                let pattern = format!("${{{name}}}").into_bytes();
                arg = replace_all(&arg, &pattern, value);
            }
            Ok(arg)
        })
        .collect()
}

fn replace_all(haystack: &[u8], pattern: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(pattern) {
            out.extend_from_slice(with);
            i += pattern.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

/// The value of an integer or bulk-string reply.
fn captured_value(bytes: &[u8]) -> Option<Vec<u8>> {
    let reply = parse_whole(bytes).ok()?;
    if let Some(n) = reply.integer() {
        return Some(n.to_string().into_bytes());
    }
    reply.text().map(<[u8]>::to_vec)
}

/// Iterate `SCAN cursor ...` until the cursor comes back to 0; the sorted
/// distinct keys as a RESP array. An error reply (a bad argument) is the
/// outcome as it is.
fn scan(connection: &mut Connection, mut args: Vec<Vec<u8>>) -> Observed {
    if args.len() < 2 {
        return connection.call(&args);
    }
    let mut keys = BTreeSet::new();
    for _ in 0..SCAN_PAGES_MAX {
        let outcome = connection.call(&args)?;
        let Outcome::Reply(bytes) = &outcome else { return Ok(outcome) };
        if bytes.first() == Some(&b'-') {
            return Ok(outcome);
        }
        let page = parse_whole(bytes).map_err(|e| format!("a SCAN reply that is not RESP: {e}"))?;
        let (cursor, page_keys) = scan_page(&page).map_err(|e| format!("{e}: {page}"))?;
        keys.extend(page_keys);
        if cursor == b"0" {
            let array = Reply::Aggregate {
                kind: b'*',
                items: Some(keys.into_iter().map(|key| Reply::Blob { kind: b'$', data: Some(key) }).collect()),
            };
            return Ok(Outcome::Reply(array.to_bytes()));
        }
        args[1] = cursor;
    }
    Err(format!("SCAN did not return to cursor 0 within {SCAN_PAGES_MAX} pages"))
}

/// A SCAN page: `*2`, the next cursor as a bulk string of decimal digits
/// (clients parse it as a number), and an array of bulk-string keys.
fn scan_page(page: &Reply) -> Result<(Vec<u8>, Vec<Vec<u8>>), String> {
    let Reply::Aggregate { kind: b'*', items: Some(items) } = page else {
        return Err("a SCAN page that is not an array".into());
    };
    let [Reply::Blob { kind: b'$', data: Some(cursor) }, Reply::Aggregate { kind: b'*', items: Some(keys) }] =
        items.as_slice()
    else {
        return Err("a SCAN page that is not [cursor, [keys]]".into());
    };
    if cursor.is_empty() || !cursor.iter().all(u8::is_ascii_digit) {
        return Err("a SCAN cursor that is not an unsigned integer".into());
    }
    let keys = keys
        .iter()
        .map(|key| match key {
            Reply::Blob { kind: b'$', data: Some(key) } => Ok(key.clone()),
            _ => Err("a SCAN key that is not a bulk string".to_string()),
        })
        .collect::<Result<_, _>>()?;
    Ok((cursor.clone(), keys))
}

/// Judge `actual` against the recorded `expected` under `check`; errs with
/// what differs, when the bytes alone do not say it.
pub fn judge(check: &Check, expected: &Outcome, actual: &Outcome) -> Result<(), String> {
    if matches!(check, Check::Exact | Check::Scan | Check::Eventually) || expected == &Outcome::Closed {
        return if expected == actual { Ok(()) } else { Err(String::new()) };
    }
    if let Check::Range { min, max } = check {
        return match actual.reply().and_then(|r| r.integer()) {
            Some(n) if (*min..=*max).contains(&n) => Ok(()),
            Some(n) => Err(format!("{n} is outside {min}..={max}")),
            None => Err("not an integer reply".into()),
        };
    }
    let expected = expected.reply().ok_or("the recorded reply does not parse")?;
    let actual = actual.reply().ok_or("not one whole reply")?;
    match check {
        Check::Shape { exact_keys } => compare_shape(&expected, &actual, exact_keys),
        Check::Capture { .. } => compare_shape(&expected, &actual, &[]),
        Check::Unordered => {
            let sorted = |reply: &Reply| match reply {
                Reply::Aggregate { kind, items: Some(items) } => {
                    let mut items: Vec<Vec<u8>> = items.iter().map(Reply::to_bytes).collect();
                    items.sort();
                    Some((*kind, items))
                }
                _ => None,
            };
            match (sorted(&expected), sorted(&actual)) {
                (Some(e), Some(a)) if e == a => Ok(()),
                (Some(_), Some(_)) => Err("different items (compared in any order)".into()),
                _ if expected == actual => Ok(()),
                _ => Err("not an array".into()),
            }
        }
        Check::Info { fields } => judge_info(fields, &expected, &actual),
        Check::Fields { pairs } => judge_fields(pairs, &expected, &actual),
        Check::Exact | Check::Scan | Check::Eventually | Check::Range { .. } => unreachable!("judged above"),
    }
}

/// Both replies' text (bulk or verbatim string of the same type).
fn texts<'a>(expected: &'a Reply, actual: &'a Reply) -> Result<(String, String), String> {
    if expected.kind() != actual.kind() {
        return Err(format!("expected type {:?}, got {:?}", expected.kind() as char, actual.kind() as char));
    }
    match (expected.text(), actual.text()) {
        (Some(e), Some(a)) => Ok((String::from_utf8_lossy(e).into_owned(), String::from_utf8_lossy(a).into_owned())),
        _ if expected == actual => Ok((String::new(), String::new())),
        _ => Err("not a bulk or verbatim string".into()),
    }
}

fn judge_info(fields: &[String], expected: &Reply, actual: &Reply) -> Result<(), String> {
    let (expected, actual) = texts(expected, actual)?;
    let headers = |text: &str| -> Vec<String> {
        text.split("\r\n").filter(|line| line.starts_with('#')).map(|line| line.trim().to_string()).collect()
    };
    let mut problems = Vec::new();
    let (want, got) = (headers(&expected), headers(&actual));
    if want != got {
        problems.push(format!("sections {want:?}, got {got:?}"));
    }
    let lines: Vec<&str> = actual.split("\r\n").collect();
    if let Some(bad) = lines.iter().find(|l| !(l.is_empty() || l.starts_with('#') || l.contains(':'))) {
        problems.push(format!("a line that is not `field:value`: {bad:?}"));
    }
    if !actual.is_empty() && !actual.ends_with("\r\n") {
        problems.push("the text does not end with CRLF".into());
    }
    for field in fields {
        let present = if field.contains(':') {
            lines.contains(&field.as_str())
        } else {
            lines.iter().any(|l| l.split_once(':').is_some_and(|(name, _)| name == field))
        };
        if !present {
            problems.push(format!("no line {field:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn judge_fields(pairs: &[String], expected: &Reply, actual: &Reply) -> Result<(), String> {
    let (expected, actual) = texts(expected, actual)?;
    let keys = |line: &str| -> Vec<String> {
        line.split(' ').map(|token| token.split_once('=').map_or(token, |(k, _)| k).to_string()).collect()
    };
    let want: Vec<&str> = expected.split('\n').filter(|l| !l.is_empty()).collect();
    let got: Vec<&str> = actual.split('\n').filter(|l| !l.is_empty()).collect();
    let mut problems = Vec::new();
    if want.len() != got.len() {
        problems.push(format!("{} lines expected, got {}", want.len(), got.len()));
    }
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if keys(w) != keys(g) {
            problems.push(format!("line {}: keys {:?}, got {:?}", i + 1, keys(w), keys(g)));
        }
    }
    if !actual.ends_with('\n') {
        problems.push("the text does not end with a newline".into());
    }
    for pair in pairs {
        if !got.iter().any(|line| line.split(' ').any(|token| token == pair)) {
            problems.push(format!("no line with {pair}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A reply that differs from the recorded one.
pub struct Mismatch {
    pub file: String,
    pub line: usize,
    pub case: String,
    pub command: String,
    pub connection: String,
    pub protocol: Protocol,
    pub target: String,
    pub check: Check,
    pub expected: Option<Outcome>,
    pub actual: Observed,
    pub detail: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{} [RESP{}, {}] case {:?}, connection {}: {}",
            self.file, self.line, self.protocol, self.target, self.case, self.connection, self.command
        )?;
        if self.check != Check::Exact {
            writeln!(f, "    check:    {:?}", self.check)?;
        }
        match &self.expected {
            Some(expected) => writeln!(f, "    expected: {expected}")?,
            None => writeln!(f, "    expected: (nothing recorded for RESP{})", self.protocol)?,
        }
        match &self.actual {
            Ok(actual) => writeln!(f, "    actual:   {actual}")?,
            Err(e) => writeln!(f, "    actual:   (no reply) {e}")?,
        }
        if !self.detail.is_empty() {
            writeln!(f, "    why:      {}", self.detail)?;
        }
        Ok(())
    }
}

/// Replay `transcript` in each of its protocols against `target`; every
/// reply that does not match.
pub fn check_transcript(transcript: &Transcript, target: &Target) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    for &protocol in &transcript.protocols {
        let observed = replay(transcript, protocol, target);
        for (case, command) in transcript.commands() {
            let actual = observed.get(&command.line).cloned().unwrap_or_else(|| Err("not run".into()));
            let expected = command.expected(protocol).cloned();
            let verdict = match (&expected, &actual) {
                (Some(expected), Ok(actual)) => judge(&command.check, expected, actual),
                _ => Err(String::new()),
            };
            if let Err(detail) = verdict {
                mismatches.push(Mismatch {
                    file: transcript.name(),
                    line: command.line,
                    case: case.name.clone(),
                    command: command.text.clone(),
                    connection: command.connection.clone(),
                    protocol,
                    target: target.description.clone(),
                    check: command.check.clone(),
                    expected,
                    actual,
                    detail,
                });
            }
        }
    }
    mismatches
}

/// Replay `transcript` against redis-server in each of its protocols and
/// return the file rewritten with what it answered; errs with every
/// command that got no reply, or whose reply breaks its own directive.
pub fn record(transcript: &Transcript, target: &Target, recorded_with: &str) -> Result<String, Vec<String>> {
    let mut by_protocol = BTreeMap::new();
    let mut problems = Vec::new();
    for &protocol in &transcript.protocols {
        let observed = replay(transcript, protocol, target);
        for (case, command) in transcript.commands() {
            let place = format!("{}:{} (case {:?}, RESP{protocol})", transcript.name(), command.line, case.name);
            match observed.get(&command.line) {
                Some(Ok(outcome)) => {
                    // A reply must pass its own directive: a TTL inside its
                    // range, an @eventually reply equal to the one written.
                    if let Err(detail) = judge(&command.check, outcome, outcome) {
                        problems.push(format!("{place}: {} got {outcome}: {detail}", command.text));
                    }
                    if let (Check::Eventually, Some(wanted)) = (&command.check, command.expected(protocol)) {
                        if wanted != outcome {
                            problems.push(format!("{place}: @eventually never got {wanted}; last {outcome}"));
                        }
                    }
                    by_protocol.insert((command.line, protocol), outcome.clone());
                }
                Some(Err(e)) => problems.push(format!("{place}: {} got no reply: {e}", command.text)),
                None => problems.push(format!("{place}: {} was not run", command.text)),
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(transcript.rewrite(recorded_with, |command| {
        transcript.protocols.iter().map(|&p| (p, by_protocol[&(command.line, p)].clone())).collect()
    }))
}
