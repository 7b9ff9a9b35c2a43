//! Connection-level commands, answered on the connection's executor
//! without a shard: `AUTH` and `HELLO` (authentication and the protocol),
//! and `PING`, `ECHO`, `INFO`, `TIME`, `COMMAND`, `CLIENT ...`, `SELECT`,
//! `SWAPDB`, `WAIT` and `CONFIG GET`.

use std::sync::atomic::Ordering::Relaxed;

use bytes::{Bytes, BytesMut};

use super::{ClientRequest, Connection, ERROR_WRONGPASS};
use crate::net::commands::reply::{command_reply, help_reply};
use crate::net::resp::{self, Proto};

/// Authenticate as `username` (the only user is `default`) with `password`.
pub(super) fn authenticate(conn: &Connection, username: Option<&[u8]>, password: &[u8]) -> Result<(), &'static str> {
    let user_ok = username.is_none_or(|u| u == b"default");
    match conn.shared.requirepass() {
        None if username.is_none() => {
            Err("ERR AUTH <password> called without any password configured for the default user. Are you sure your \
             configuration is correct?")
        }
        None if user_ok => Ok(()),
        Some(expected) if user_ok && constant_time_eq(expected.as_bytes(), password) => {
            conn.authenticated.set(true);
            Ok(())
        }
        _ => Err(ERROR_WRONGPASS),
    }
}

/// Compare without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

pub(super) fn hello(
    conn: &Connection,
    version: Option<u32>,
    auth: Option<(Bytes, Bytes)>,
    setname: Option<Bytes>,
    out: &mut BytesMut,
) {
    if let Some((username, password)) = &auth {
        if let Err(message) = authenticate(conn, Some(username), password) {
            resp::error(out, message);
            return;
        }
    }
    if !conn.authenticated.get() {
        resp::error(
            out,
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> \
             <pass> option can be used to authenticate the client and select the RESP protocol version at \
             the same time",
        );
        return;
    }
    if let Some(version) = version {
        conn.proto.set(if version == 3 { Proto::Resp3 } else { Proto::Resp2 });
        conn.info.proto.store(version as u8, Relaxed);
    }
    if let Some(name) = setname {
        *conn.info.name.lock().expect("not poisoned") = (!name.is_empty()).then_some(name);
    }
    let proto = conn.proto();
    resp::map_header(out, 7, proto);
    let text = |out: &mut BytesMut, key: &str, value: &str| {
        resp::bulk(out, key.as_bytes());
        resp::bulk(out, value.as_bytes());
    };
    text(out, "server", "paxoskv");
    text(out, "version", REDIS_VERSION);
    resp::bulk(out, b"proto");
    resp::integer(out, proto.number());
    resp::bulk(out, b"id");
    resp::integer(out, conn.info.id as i64);
    text(out, "mode", "standalone");
    text(out, "role", "master");
    resp::bulk(out, b"modules");
    resp::array_header(out, 0);
}

/// The Redis version whose behaviour paxoskv follows (`HELLO`, `INFO`).
pub const REDIS_VERSION: &str = "7.0.0";

/// Connection-level commands, answered on this executor.
pub(super) fn answer_locally(conn: &Connection, request: ClientRequest, out: &mut BytesMut) {
    let shared = &conn.shared;
    let proto = conn.proto();
    match request {
        ClientRequest::Ping(None) => resp::simple(out, "PONG"),
        ClientRequest::Ping(Some(message)) | ClientRequest::Echo(message) => resp::bulk(out, &message),
        ClientRequest::Info(sections) => {
            let text =
                shared.monitor.info(shared.node, &sections, &shared.config_summary, shared.file.tuning.clients_max);
            resp::verbatim(out, text.as_bytes(), proto);
        }
        ClientRequest::Time => {
            let micros = crate::server::util::unix_micros();
            resp::array_header(out, 2);
            resp::bulk(out, (micros / 1_000_000).to_string().as_bytes());
            resp::bulk(out, (micros % 1_000_000).to_string().as_bytes());
        }
        ClientRequest::Command(sub) => command_reply(sub, proto, out),
        ClientRequest::ClientSetName(name) => {
            *conn.info.name.lock().expect("not poisoned") = (!name.is_empty()).then_some(name);
            resp::simple(out, "OK");
        }
        ClientRequest::ClientGetName => match &*conn.info.name.lock().expect("not poisoned") {
            Some(name) => resp::bulk(out, name),
            None => resp::null(out, proto),
        },
        ClientRequest::ClientId => resp::integer(out, conn.info.id as i64),
        ClientRequest::ClientUnblock => resp::integer(out, 0),
        ClientRequest::ClientGetRedir => resp::integer(out, -1),
        ClientRequest::ClientInfo => {
            let line = conn.info.line() + "\n";
            resp::verbatim(out, line.as_bytes(), proto);
        }
        ClientRequest::ClientList { ids } => {
            let text = shared.monitor.clients.list(ids.as_deref());
            resp::verbatim(out, text.as_bytes(), proto);
        }
        ClientRequest::ClientKill(filter) => {
            let killed = shared.monitor.clients.kill(&filter, conn.info.id);
            match (filter.old_form, killed) {
                (true, 0) => resp::error(out, "ERR No such client"),
                (true, _) => resp::simple(out, "OK"),
                (false, n) => resp::integer(out, n as i64),
            }
        }
        // UNWATCH here was queued in MULTI: EXEC has unwatched already.
        ClientRequest::ClientOther | ClientRequest::Select(_) | ClientRequest::SwapDb | ClientRequest::Unwatch => {
            resp::simple(out, "OK")
        }
        // A write is answered only once a majority of the nodes holds it,
        // so besides the leader at least half the nodes, rounded down, hold
        // every write this connection was answered: that many replicas, at
        // once (Redis waits up to the timeout while fewer have
        // acknowledged, and inside MULTI answers at once).
        ClientRequest::Wait => resp::integer(out, (shared.file.nodes.len() / 2) as i64),
        ClientRequest::ConfigGet(parameters) => {
            let matched = config_get(&parameters);
            resp::map_header(out, matched.len(), proto);
            for (name, value) in matched {
                resp::bulk(out, &name);
                resp::bulk(out, value.as_bytes());
            }
        }
        ClientRequest::Help(container) => help_reply(container, out),
        other => resp::error(out, &format!("ERR internal: {other:?} is not answered locally")),
    }
}

/// The parameters `CONFIG GET` knows. redis-benchmark and other tools ask
/// about persistence: answered like a Redis without RDB or AOF (paxoskv has
/// its own WAL). GUI clients ask how many databases to list (one: SELECT 0
/// only), and whether keys may be evicted or idle clients closed (neither).
const CONFIG_PARAMETERS: [(&str, &str); 6] = [
    ("save", ""),
    ("appendonly", "no"),
    ("databases", "1"),
    ("maxmemory", "0"),
    ("maxmemory-policy", "noeviction"),
    ("timeout", "0"),
];

/// `CONFIG GET`'s matches, as Redis 7.0 finds them: a parameter without
/// `*`, `?` or `[` is a name, looked up ignoring case and answered with the
/// name as given; a pattern matches names ignoring case and answers them as
/// they are; a parameter matched twice is answered once.
fn config_get(parameters: &[Bytes]) -> Vec<(Bytes, &'static str)> {
    let mut matched: Vec<(Bytes, &'static str)> = Vec::new();
    for parameter in parameters {
        let is_pattern = parameter.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        let glob = crate::kv::glob::Glob::new(&parameter.to_ascii_lowercase());
        for (name, value) in CONFIG_PARAMETERS {
            let hit = if is_pattern {
                glob.matches(name.as_bytes())
            } else {
                parameter.eq_ignore_ascii_case(name.as_bytes())
            };
            if hit && !matched.iter().any(|(m, _)| m.eq_ignore_ascii_case(name.as_bytes())) {
                let answered = if is_pattern { Bytes::from_static(name.as_bytes()) } else { parameter.clone() };
                matched.push((answered, value));
            }
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(texts: &[&str]) -> Vec<Bytes> {
        texts.iter().map(|t| Bytes::copy_from_slice(t.as_bytes())).collect()
    }

    #[test]
    fn config_get_answers_names_as_given_and_patterns_as_named() {
        let names = |matched: Vec<(Bytes, &str)>| -> Vec<(String, String)> {
            matched.into_iter().map(|(n, v)| (String::from_utf8_lossy(&n).into_owned(), v.to_string())).collect()
        };
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(names(config_get(&words(&["save"]))), [pair("save", "")]);
        assert_eq!(names(config_get(&words(&["SAVE"]))), [pair("SAVE", "")]);
        assert_eq!(names(config_get(&words(&["save", "Save"]))), [pair("save", "")]);
        assert_eq!(names(config_get(&words(&["APPENDONL?"]))), [pair("appendonly", "no")]);
        assert_eq!(
            names(config_get(&words(&["save", "nosuch", "append*"]))),
            [pair("save", ""), pair("appendonly", "no")]
        );
        assert!(config_get(&words(&["nosuch"])).is_empty());
        assert_eq!(names(config_get(&words(&["databases"]))), [pair("databases", "1")]);
    }
}
