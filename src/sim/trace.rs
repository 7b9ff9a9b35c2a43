//! Trace output: one JSON object per line, for the space-time diagram
//! renderer and for reading a failed run. Fields: `t_us` (simulated
//! microseconds), `node`, `event`, and where they apply `kind` (message
//! kind), `ballot` ("round.node"), `slot`, `peer`, `detail`.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::paxos::{Ballot, NodeId, Slot};

/// One trace line. Fields left `None` are omitted.
#[derive(Clone, Debug, Default)]
pub struct TraceEvent<'a> {
    pub t_us: u64,
    pub node: Option<NodeId>,
    pub event: &'a str,
    pub kind: Option<&'a str>,
    pub ballot: Option<Ballot>,
    pub slot: Option<Slot>,
    pub peer: Option<NodeId>,
    pub detail: Option<&'a str>,
}

impl TraceEvent<'_> {
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(96);
        let _ = write!(s, "{{\"t_us\":{}", self.t_us);
        if let Some(node) = self.node {
            let _ = write!(s, ",\"node\":{node}");
        }
        s.push_str(",\"event\":");
        crate::json::push_string(&mut s, self.event);
        if let Some(kind) = self.kind {
            s.push_str(",\"kind\":");
            crate::json::push_string(&mut s, kind);
        }
        if let Some(ballot) = self.ballot {
            let _ = write!(s, ",\"ballot\":\"{ballot}\"");
        }
        if let Some(slot) = self.slot {
            let _ = write!(s, ",\"slot\":{slot}");
        }
        if let Some(peer) = self.peer {
            let _ = write!(s, ",\"peer\":{peer}");
        }
        if let Some(detail) = self.detail {
            s.push_str(",\"detail\":");
            crate::json::push_string(&mut s, detail);
        }
        s.push('}');
        s
    }
}

/// Where trace lines go; disabled by default (tracing costs time).
#[derive(Default)]
pub struct Tracer {
    sink: Option<Box<dyn Write>>,
    /// The first write error, reported at the end instead of per line.
    pub error: Option<io::Error>,
}

impl Tracer {
    pub fn to_writer(sink: Box<dyn Write>) -> Tracer {
        Tracer { sink: Some(sink), error: None }
    }

    pub fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    pub fn emit(&mut self, event: TraceEvent<'_>) {
        let Some(sink) = &mut self.sink else { return };
        if self.error.is_some() {
            return;
        }
        let mut line = event.to_json();
        line.push('\n');
        if let Err(e) = sink.write_all(line.as_bytes()) {
            self.error = Some(e);
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match &mut self.sink {
            Some(sink) => sink.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_only_set_fields_and_escapes_strings() {
        let e = TraceEvent {
            t_us: 5,
            node: Some(2),
            event: "send",
            kind: Some("accept"),
            ballot: Some(Ballot::new(3, 1)),
            slot: Some(7),
            peer: Some(3),
            detail: Some("a \"b\"\n"),
        };
        assert_eq!(
            e.to_json(),
            r#"{"t_us":5,"node":2,"event":"send","kind":"accept","ballot":"3.1","slot":7,"peer":3,"detail":"a \"b\"\n"}"#
        );
        let bare = TraceEvent { t_us: 1, event: "heal", ..Default::default() };
        assert_eq!(bare.to_json(), r#"{"t_us":1,"event":"heal"}"#);
    }
}
