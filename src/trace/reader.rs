//! Reading traces, tolerantly: unknown events and unknown fields are
//! skipped (a newer writer may add them), a line that is not JSON or a known
//! event with bad fields is an error naming the line. The one exception is a
//! last line without its newline that does not parse: a writer killed
//! mid-line leaves it, so it is dropped and counted in [`Trace::torn_tail`].

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::schema::{Event, Header, Record, SCHEMA, VERSION};

/// A trace read from one file (or merged from several by [`super::merge`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub header: Header,
    /// In file order (a merged trace: in time order).
    pub records: Vec<Record>,
    /// Lines with an `event` this reader does not know, skipped.
    pub skipped_unknown: usize,
    /// Whether a torn last line was dropped.
    pub torn_tail: bool,
}

/// Why a trace could not be read: the file, the line (1-based) if one is
/// at fault, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    pub file: String,
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.reason),
            None => write!(f, "{}: {}", self.file, self.reason),
        }
    }
}

impl std::error::Error for TraceError {}

/// Read the trace file at `path`.
pub fn read_trace(path: &Path) -> Result<Trace, TraceError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| TraceError { file: name.clone(), line: None, reason: e.to_string() })?;
    parse_trace(BufReader::new(file), &name)
}

/// Read a trace from `input`; `name` labels errors.
pub fn parse_trace(mut input: impl BufRead, name: &str) -> Result<Trace, TraceError> {
    let error = |line: Option<usize>, reason: String| TraceError { file: name.to_string(), line, reason };
    let mut header: Option<Header> = None;
    let mut trace_records = Vec::new();
    let (mut skipped_unknown, mut torn_tail) = (0, false);
    let mut text = String::new();
    let mut number = 0;
    loop {
        text.clear();
        let read = input.read_line(&mut text).map_err(|e| error(Some(number + 1), e.to_string()))?;
        if read == 0 {
            break;
        }
        number += 1;
        let terminated = text.ends_with('\n');
        let line = text.trim();
        if line.is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(_) if !terminated => {
                torn_tail = true;
                break;
            }
            Err(e) => return Err(error(Some(number), format!("not JSON: {e}"))),
        };
        if header.is_none() {
            header = Some(parse_header(value).map_err(|reason| error(Some(number), reason))?);
            continue;
        }
        match parse_record(value) {
            Ok(Some(record)) => trace_records.push(record),
            Ok(None) => skipped_unknown += 1,
            Err(reason) => return Err(error(Some(number), reason)),
        }
    }
    let header = header.ok_or_else(|| error(None, "empty: no header line".to_string()))?;
    Ok(Trace { header, records: trace_records, skipped_unknown, torn_tail })
}

fn parse_header(value: Value) -> Result<Header, String> {
    let schema = value.get("schema").and_then(Value::as_str);
    if schema != Some(SCHEMA) {
        return Err(format!("the first line is not a {SCHEMA} header (its \"schema\" is {schema:?})"));
    }
    let version = value.get("version").and_then(Value::as_u64);
    if version != Some(u64::from(VERSION)) {
        return Err(format!("trace schema version {version:?}; this paxoskv reads version {VERSION}"));
    }
    serde_json::from_value(value).map_err(|e| format!("bad header: {e}"))
}

/// `Ok(None)` for an event this reader does not know.
fn parse_record(value: Value) -> Result<Option<Record>, String> {
    let Some(name) = value.get("event").and_then(Value::as_str) else {
        return Err("no \"event\" name".to_string());
    };
    if !Event::NAMES.contains(&name) {
        return Ok(None);
    }
    let name = name.to_string();
    serde_json::from_value(value).map(Some).map_err(|e| format!("bad {name} event: {e}"))
}
