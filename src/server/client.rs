//! Client connections: RESP2 in, commands routed to their shard, replies
//! out in the order the client sent the commands (RESP pipelining).
//!
//! Each connection has a reader task and a writer task sharing a queue of
//! pending replies. The reader stops reading once `client_pending_max`
//! replies are outstanding, so a client that sends faster than the cluster
//! answers is slowed by TCP flow control rather than by server memory.
//! Malformed RESP gets an `-ERR Protocol error` and the connection closes.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::shard::ClientWaiter;
use super::util::{reply_cell, Notify, ReplyCell};
use super::{MeshMessage, Shared};
use crate::kv::{Op, Reply};
use crate::net::request::{parse_request, CommandSub, Request as ClientRequest};
use crate::net::resp::{self, parse_command, RespLimits};
use crate::net::slot::{key_slot, slot_shard};
use crate::node::{ClientSession, Request, Waiter};

/// Buffered reply bytes that trigger a write.
const OUT_BYTES_FLUSH: usize = 64 * 1024;

/// Arguments per command at most (an MSET or MGET of this many keys).
const ARGS_MAX: usize = 64 * 1024;

/// A reply slot in the connection's pipeline.
enum Pending {
    /// Already encoded (PING, errors, INFO ...).
    Ready(Bytes),
    /// Waiting for shard `shard`'s answer to command `seq` of its session.
    Wait { cell: ReplyCell<Reply>, shard: usize, seq: u64 },
    /// Write this, then close the connection (QUIT, protocol errors).
    Close(Bytes),
}

struct Connection {
    shared: Rc<Shared>,
    queue: RefCell<VecDeque<Pending>>,
    /// The writer waits on it for new queue items.
    queued: Notify,
    /// The reader waits on it for room in the queue.
    room: Notify,
    reader_done: Cell<bool>,
    /// One session per shard this connection talks to (exactly-once,
    /// in-order apply: `node::ClientSession`).
    sessions: RefCell<Vec<ClientSession>>,
    id: u64,
    name: RefCell<Option<Bytes>>,
}

impl Connection {
    fn push(&self, pending: Pending) {
        self.queue.borrow_mut().push_back(pending);
        self.queued.notify();
    }

    fn push_error(&self, message: &str) {
        let mut out = BytesMut::new();
        resp::error(&mut out, message);
        self.push(Pending::Ready(out.freeze()));
    }
}

/// Answer a connection over `clients_max` with an error, like Redis.
pub async fn refuse(mut stream: TcpStream) {
    let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
    let _ = stream.close().await;
}

/// Counts a connection for `clients_max` while it lives.
struct ClientSlot(Rc<Shared>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.clients.set(self.0.clients.get() - 1);
    }
}

pub async fn serve(shared: Rc<Shared>, stream: TcpStream) {
    shared.clients.set(shared.clients.get() + 1);
    let _slot = ClientSlot(shared.clone());
    let _ = stream.set_nodelay(true);
    let id = shared.new_client_id();
    let sessions = (0..shared.file.shards).map(|_| ClientSession::new(shared.node)).collect();
    let conn = Rc::new(Connection {
        shared,
        queue: RefCell::new(VecDeque::new()),
        queued: Notify::default(),
        room: Notify::default(),
        reader_done: Cell::new(false),
        sessions: RefCell::new(sessions),
        id,
        name: RefCell::new(None),
    });
    let (reader, writer) = futures_lite::io::split(stream);
    let writer_task = glommio::spawn_local(write_replies(conn.clone(), writer));
    read_requests(&conn, reader).await;
    conn.reader_done.set(true);
    conn.queued.notify();
    writer_task.await;
}

async fn read_requests(conn: &Rc<Connection>, mut reader: impl futures_lite::AsyncRead + Unpin) {
    let tuning = &conn.shared.file.tuning;
    let limits = RespLimits { bulk_bytes_max: tuning.batch_bytes_max, args_max: ARGS_MAX, ..RespLimits::default() };
    // One command at most this large may sit in the buffer (Redis's
    // client-query-buffer-limit): an MSET of a whole batch and its framing.
    let query_bytes_max = tuning.batch_bytes_max * 2 + 64 * 1024;
    let pending_max = tuning.client_pending_max;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        while conn.queue.borrow().len() >= pending_max {
            conn.room.wait().await;
        }
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > query_bytes_max {
            // parse_command consumes complete commands; a buffer this big
            // holds one unfinished command larger than any we accept.
            let pending = parse_command(&mut buf.clone(), &limits);
            if matches!(pending, Ok(None)) {
                let mut out = BytesMut::new();
                resp::error(&mut out, "ERR Protocol error: query buffer limit exceeded");
                conn.push(Pending::Close(out.freeze()));
                return;
            }
        }
        loop {
            match parse_command(&mut buf, &limits) {
                Ok(Some(args)) => {
                    if !dispatch(conn, &args).await {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let mut out = BytesMut::new();
                    resp::error(&mut out, &format!("ERR {e}"));
                    conn.push(Pending::Close(out.freeze()));
                    return;
                }
            }
        }
    }
}

async fn write_replies(conn: Rc<Connection>, mut writer: impl futures_lite::AsyncWrite + Unpin) {
    let mut out = BytesMut::with_capacity(16 * 1024);
    loop {
        let item = loop {
            if let Some(item) = conn.queue.borrow_mut().pop_front() {
                break Some(item);
            }
            if !out.is_empty() {
                if writer.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
                continue;
            }
            if conn.reader_done.get() {
                break None;
            }
            conn.queued.wait().await;
        };
        let Some(item) = item else { break };
        conn.room.notify();
        // Bound the output buffer: write once it is large, even if more
        // replies are ready (a pipeline of large GETs).
        if out.len() >= OUT_BYTES_FLUSH {
            if writer.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        let close = match item {
            Pending::Ready(bytes) => {
                out.extend_from_slice(&bytes);
                false
            }
            Pending::Wait { cell, shard, seq } => {
                let reply = match cell.take() {
                    Some(reply) => reply,
                    None => {
                        // Flush what is ready before waiting on the slow one.
                        if !out.is_empty() {
                            if writer.write_all(&out).await.is_err() {
                                return;
                            }
                            out.clear();
                        }
                        cell.recv().await.unwrap_or_else(|| Reply::Error("ERR internal: request dropped".into()))
                    }
                };
                conn.sessions.borrow_mut()[shard].answered(seq, &reply);
                resp::encode_reply(&mut out, &reply);
                false
            }
            Pending::Close(bytes) => {
                out.extend_from_slice(&bytes);
                true
            }
        };
        if close {
            let _ = writer.write_all(&out).await;
            let _ = writer.close().await;
            return;
        }
    }
    let _ = writer.close().await;
}

/// Handle one command. Returns false to stop reading (QUIT).
async fn dispatch(conn: &Rc<Connection>, args: &[Bytes]) -> bool {
    let shared = &conn.shared;
    let request = match parse_request(args, shared.file.tuning.value_bytes_max) {
        Ok(request) => request,
        Err(message) => {
            conn.push_error(&message);
            return true;
        }
    };
    let mut out = BytesMut::new();
    match request {
        ClientRequest::Kv(op) => {
            submit_kv(conn, op).await;
            return true;
        }
        ClientRequest::Ping(None) => resp::simple(&mut out, "PONG"),
        ClientRequest::Ping(Some(message)) | ClientRequest::Echo(message) => resp::bulk(&mut out, &message),
        ClientRequest::Info(section) => {
            let text = shared.monitor.info(shared.node, section.as_deref(), &shared.config_summary);
            resp::bulk(&mut out, text.as_bytes());
        }
        ClientRequest::DbSize => resp::integer(&mut out, shared.monitor.dbsize() as i64),
        ClientRequest::Command(sub) => match sub {
            CommandSub::Count => resp::integer(&mut out, 0),
            _ => resp::array_header(&mut out, 0),
        },
        ClientRequest::ClientSetName(name) => {
            *conn.name.borrow_mut() = Some(name);
            resp::simple(&mut out, "OK");
        }
        ClientRequest::ClientGetName => match &*conn.name.borrow() {
            Some(name) => resp::bulk(&mut out, name),
            None => resp::null_bulk(&mut out),
        },
        ClientRequest::ClientId => resp::integer(&mut out, conn.id as i64),
        ClientRequest::ClientOther => resp::simple(&mut out, "OK"),
        ClientRequest::Hello(Some(3)) => {
            resp::error(&mut out, "NOPROTO this server speaks RESP2 only");
        }
        ClientRequest::Hello(_) => {
            let fields: [(&str, HelloValue); 7] = [
                ("server", HelloValue::Text("paxoskv")),
                ("version", HelloValue::Text(env!("CARGO_PKG_VERSION"))),
                ("proto", HelloValue::Int(2)),
                ("id", HelloValue::Int(conn.id as i64)),
                ("mode", HelloValue::Text("cluster")),
                ("role", HelloValue::Text("master")),
                ("modules", HelloValue::EmptyArray),
            ];
            resp::array_header(&mut out, fields.len() * 2);
            for (key, value) in fields {
                resp::bulk(&mut out, key.as_bytes());
                match value {
                    HelloValue::Text(text) => resp::bulk(&mut out, text.as_bytes()),
                    HelloValue::Int(n) => resp::integer(&mut out, n),
                    HelloValue::EmptyArray => resp::array_header(&mut out, 0),
                }
            }
        }
        ClientRequest::Select(_) => resp::simple(&mut out, "OK"),
        ClientRequest::ConfigGet(pattern) => {
            // redis-benchmark and other tools ask about persistence; answer
            // like a Redis without RDB or AOF (paxoskv has its own WAL).
            let known: [(&str, &str); 2] = [("save", ""), ("appendonly", "no")];
            let matched: Vec<_> =
                known.iter().filter(|(k, _)| k.as_bytes() == &pattern[..] || &pattern[..] == b"*").collect();
            resp::array_header(&mut out, matched.len() * 2);
            for (key, value) in matched {
                resp::bulk(&mut out, key.as_bytes());
                resp::bulk(&mut out, value.as_bytes());
            }
        }
        ClientRequest::Quit => {
            resp::simple(&mut out, "OK");
            conn.push(Pending::Close(out.freeze()));
            return false;
        }
    }
    conn.push(Pending::Ready(out.freeze()));
    true
}

enum HelloValue {
    Text(&'static str),
    Int(i64),
    EmptyArray,
}

/// The shard every key of `op` maps to, or None when they span shards.
fn shard_of(op: &Op, shards: usize) -> Option<usize> {
    let mut keys = op.keys().into_iter().map(|key| slot_shard(key_slot(key), shards));
    let first = keys.next()?;
    keys.all(|s| s == first).then_some(first)
}

async fn submit_kv(conn: &Rc<Connection>, op: Op) {
    let shared = &conn.shared;
    let Some(shard) = shard_of(&op, shared.file.shards) else {
        conn.push_error("CROSSSLOT Keys in request don't hash to the same shard; put them under one {hash tag}");
        return;
    };
    let command = {
        let through_log = !op.is_read_only();
        let mut sessions = conn.sessions.borrow_mut();
        sessions[shard].command(op, through_log, || shared.new_session_counter())
    };
    let seq = command.seq;
    let deadline = Instant::now() + Duration::from_millis(shared.file.tuning.request_timeout_ms);
    let (sender, cell) = reply_cell();
    conn.push(Pending::Wait { cell, shard, seq });
    if shard == shared.executor {
        let local = shared.shard.borrow().clone().expect("the shard is set before clients connect");
        let mut local = local.borrow_mut();
        let request = Request::new(command, Waiter::Client(ClientWaiter::Local(sender)), local.deadline_us(deadline));
        local.submit(request);
        return;
    }
    let token = shared.register_mesh_waiter(sender);
    let message = MeshMessage::Request { from: shared.executor, token, command, deadline };
    if shared.mesh_send(shard, message).await.is_err() {
        if let Some(sender) = shared.take_mesh_waiter(token) {
            sender.send(Reply::Error("ERR internal: shard executor unavailable".into()));
        }
    }
}
