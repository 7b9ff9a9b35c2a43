//! Client connections: RESP2 or RESP3 in, commands routed to their shard,
//! replies out in the order the client sent the commands (pipelining).
//!
//! Each connection has a reader task and a writer task sharing a queue of
//! pending replies. The reader stops reading once `client_pending_max`
//! replies are outstanding, so a client that sends faster than the cluster
//! answers is slowed by TCP flow control rather than by server memory.
//! Malformed RESP gets an `-ERR Protocol error` and the connection closes.
//!
//! Connection state, as Redis keeps it: the protocol (`HELLO 3`), whether
//! the client authenticated (`requirepass`), a MULTI block being queued,
//! and the keys WATCHed with the versions they had. A transaction goes to
//! its shard as one command ([`Op::Exec`]): one log entry, applied whole on
//! every replica or not at all. WATCH reads the versions linearizably before
//! the connection reads anything further, so nothing the client reads after
//! WATCH can predate it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

mod local;
mod transaction;

pub use self::local::REDIS_VERSION;
use self::local::{answer_locally, authenticate, hello};
use self::transaction::{exec, queue_in_multi, watch, QUEUED_COMMAND_OVERHEAD_BYTES};
use super::clients::ClientInfo;
use super::shard::ClientWaiter;
use super::util::{reply_cell_stamped, Notify, ReplyCell};
use super::{MeshMessage, Shared};
use crate::kv::{Op, Reply, Watched, BUCKET_MAX, BUCKET_SHIFT};
use crate::net::commands::{arity_ok, command_index_from, COMMANDS};
use crate::net::request::{parse_request, parse_request_of, ReplyMode, Request as ClientRequest};
use crate::net::resp::{self, parse_command, CommandStream, Next, Proto, RespError, RespLimits};
use crate::net::slot::{key_slot, slot_shard};
use crate::node::{ClientSession, Request, Stage, Waiter};

/// Buffered reply bytes that trigger a write.
const OUT_BYTES_FLUSH: usize = 64 * 1024;
/// One request in this many per connection has its `parse` and `reply`
/// stages timed (`server::stages`), as the node samples its own.
const STAGE_SAMPLE_EVERY: u64 = 64;

/// Arguments per command at most (an MSET or MGET of this many keys).
const ARGS_MAX: usize = 64 * 1024;

/// A SCAN cursor: the shard in the bits above the bucket.
const CURSOR_SHARD_SHIFT: u32 = 64 - BUCKET_SHIFT;

const ERROR_CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same shard; put them under one {hash tag}";
const ERROR_NOAUTH: &str = "NOAUTH Authentication required.";
const ERROR_WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
const ERROR_KEYSPACE_IN_MULTI: &str =
    "ERR KEYS, SCAN, RANDOMKEY, DBSIZE and FLUSHALL inside MULTI need a node with a single shard";

/// How a store reply becomes the client's reply.
enum Shape {
    /// As it is.
    Direct,
    /// A SCAN step of shard `shard`: turn the next bucket into the cursor.
    Scan { shard: usize },
    /// EXEC: the store's array of the transaction's replies, with the
    /// connection's own replies (PING, ECHO, TIME ...) put back in place.
    Exec { parts: Vec<Part> },
}

/// One reply of an EXEC array.
enum Part {
    /// The next reply of the store's array.
    Store,
    /// The next reply of the store's array, a SCAN step's: its bucket
    /// becomes the client's cursor, a bulk string, as outside MULTI (the
    /// transaction's one shard, shard 0: SCAN in MULTI needs one shard).
    Scan,
    /// Encoded already.
    Local(Bytes),
}

/// How the replies of every shard combine into one.
enum Gather {
    /// KEYS: one array of all keys.
    Concat,
    /// DBSIZE: the sum.
    Sum,
    /// FLUSHALL: OK when every shard said OK.
    AllOk,
    /// RANDOMKEY: the first key found, from shard `start` on.
    First { start: usize },
}

/// A reply slot in the connection's pipeline.
enum Pending {
    /// Already encoded (PING, errors, INFO ...).
    Ready(Bytes),
    /// Waiting for shard `shard`'s answer to command `seq` of its session.
    Wait { cell: ReplyCell<Reply>, shard: usize, seq: u64, shape: Shape },
    /// Waiting for every shard's answer.
    Gather { parts: Vec<(ReplyCell<Reply>, usize, u64)>, gather: Gather },
    /// Write this, then close the connection (QUIT, protocol errors).
    Close(Bytes),
    /// A slot whose reply is not written (`CLIENT REPLY OFF` or `SKIP`):
    /// the writer still waits for it in its turn, and closes if it closes.
    Silent(Box<Pending>),
}

/// A MULTI block being queued.
#[derive(Default)]
struct Multi {
    queued: Vec<Result<ClientRequest, String>>,
    /// The queued commands' arguments in bytes, plus
    /// [`QUEUED_COMMAND_OVERHEAD_BYTES`] each: EXEC sends them as one
    /// command, which must fit a batch.
    queued_bytes: usize,
    /// A command was refused while queueing: EXEC aborts, and nothing more
    /// is kept.
    dirty: bool,
    /// The shard every queued store op maps to.
    shard: Option<usize>,
}

/// Keys WATCHed on one shard.
struct Watching {
    shard: usize,
    watched: Vec<Watched>,
    /// The store's removal count when the first key was read.
    removals: u64,
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
    info: Arc<ClientInfo>,
    proto: Cell<Proto>,
    authenticated: Cell<bool>,
    multi: RefCell<Option<Multi>>,
    watching: RefCell<Option<Watching>>,
    /// When the latest bytes came off the socket: the `parse` stage's
    /// start, and the time the requests parsed from them arrived (their
    /// deadlines count from it).
    read_at: Cell<Option<Instant>>,
    /// The index in `COMMANDS` of the connection's previous command, tried
    /// first (a pipeline repeats one command).
    last_command: Cell<usize>,
    /// Requests sent to shards, for sampling stages.
    sent: Cell<u64>,
    /// `CLIENT REPLY`, as Redis keeps it: no reply at all (`OFF`), none
    /// for the command running (`skip`), none for the next one
    /// (`skip_next`, set by `SKIP`).
    reply_off: Cell<bool>,
    reply_skip: Cell<bool>,
    reply_skip_next: Cell<bool>,
}

impl Connection {
    /// Leave the node's registry before the socket shuts down: a client
    /// that has seen the close must not find this connection in `CLIENT
    /// LIST`. Removing twice is harmless (`ClientSlot` removes it again).
    fn leave_registry(&self) {
        self.shared.monitor.clients.deregister(self.info.id);
    }

    fn push(&self, pending: Pending) {
        let pending =
            if self.reply_off.get() || self.reply_skip.get() { Pending::Silent(Box::new(pending)) } else { pending };
        self.queue.borrow_mut().push_back(pending);
        self.queued.notify();
    }

    fn push_error(&self, message: &str) {
        let mut out = BytesMut::new();
        resp::error(&mut out, message);
        self.push(Pending::Ready(out.freeze()));
    }

    fn push_ok(&self) {
        self.push(Pending::Ready(Bytes::from_static(b"+OK\r\n")));
    }

    /// A command finished: `CLIENT REPLY SKIP` silences the one after it.
    fn command_done(&self) {
        self.reply_skip.set(self.reply_skip_next.replace(false));
    }

    fn proto(&self) -> Proto {
        self.proto.get()
    }

    fn shards(&self) -> usize {
        self.shared.file.shards
    }

    fn in_multi(&self) -> bool {
        self.multi.borrow().is_some()
    }

    /// Forget every WATCHed key, and CLIENT LIST's count of them.
    fn unwatch(&self) -> Option<Watching> {
        self.info.watching.store(0, Relaxed);
        self.watching.borrow_mut().take()
    }

    /// Leave MULTI and unwatch (EXEC, DISCARD, RESET, a malformed EXEC),
    /// CLIENT LIST's counters with them.
    fn end_transaction(&self) -> (Option<Multi>, Option<Watching>) {
        self.info.multi.store(-1, Relaxed);
        (self.multi.borrow_mut().take(), self.unwatch())
    }
}

/// Answer a connection over `clients_max` with an error, like Redis.
pub async fn refuse(mut stream: TcpStream) {
    let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
    let _ = stream.close().await;
}

/// Counts a connection for `clients_max` while it lives, and keeps it in
/// the node's registry; deregisters before the socket closes.
struct ClientSlot(Rc<Shared>, u64);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.clients.set(self.0.clients.get() - 1);
        self.0.monitor.clients.deregister(self.1);
    }
}

pub async fn serve(shared: Rc<Shared>, stream: TcpStream) {
    use std::os::fd::AsRawFd;
    shared.clients.set(shared.clients.get() + 1);
    let _ = stream.set_nodelay(true);
    let id = shared.new_client_id();
    let addr = stream.peer_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
    let laddr = stream.local_addr().map_or_else(|_| "?".to_string(), |a| a.to_string());
    let info = shared.monitor.clients.register(ClientInfo::new(id, addr, laddr, stream.as_raw_fd()));
    let slot = ClientSlot(shared.clone(), id);
    let sessions = (0..shared.file.shards).map(|_| ClientSession::new(shared.node)).collect();
    let authenticated = shared.requirepass().is_none();
    let conn = Rc::new(Connection {
        shared,
        queue: RefCell::new(VecDeque::new()),
        queued: Notify::default(),
        room: Notify::default(),
        reader_done: Cell::new(false),
        sessions: RefCell::new(sessions),
        info,
        proto: Cell::new(Proto::Resp2),
        authenticated: Cell::new(authenticated),
        multi: RefCell::new(None),
        watching: RefCell::new(None),
        read_at: Cell::new(None),
        last_command: Cell::new(0),
        sent: Cell::new(0),
        reply_off: Cell::new(false),
        reply_skip: Cell::new(false),
        reply_skip_next: Cell::new(false),
    });
    // The socket closes when both halves are gone, whichever task ends
    // last: both come back here, so that the connection leaves the
    // registry first. A client that has seen the close then never finds
    // it in CLIENT LIST, and CLIENT KILL never reaches a closed (perhaps
    // reused) descriptor.
    let (mut reader, writer) = futures_lite::io::split(stream);
    let writer_task = glommio::spawn_local({
        let conn = conn.clone();
        async move {
            let mut writer = writer;
            write_replies(conn, &mut writer).await;
            writer
        }
    });
    read_requests(&conn, &mut reader).await;
    conn.reader_done.set(true);
    conn.queued.notify();
    let writer = writer_task.await;
    drop(slot);
    drop((reader, writer));
}

/// The longest argument a client may send and be answered with an error
/// (its bytes dropped as they arrive) rather than a protocol error and a
/// closed connection: Redis's own `proto-max-bulk-len`. Arguments up to
/// `batch_bytes_max` are read whole.
const BULK_SKIP_BYTES_MAX: usize = 512 << 20;

/// The answer to a command with an argument of `len` bytes, over the limit.
fn too_large(len: usize, tuning: &super::config::Tuning) -> String {
    format!(
        "ERR argument too large ({len} bytes; an argument may have {} bytes, a value {}): the command was not applied",
        tuning.batch_bytes_max, tuning.value_bytes_max
    )
}

/// A command refused before it was parsed: answered with `message`, and a
/// transaction it was sent in aborts at EXEC (as a queue-time error).
fn refuse_command(conn: &Connection, message: &str) {
    if let Some(multi) = conn.multi.borrow_mut().as_mut() {
        multi.dirty = true;
        multi.queued = Vec::new();
    }
    conn.push_error(message);
}

/// A malformed stream: an error reply, then the connection closes (it
/// cannot be resynchronized).
fn close_on_protocol_error(conn: &Connection, e: RespError) {
    let mut out = BytesMut::new();
    resp::error(&mut out, &format!("ERR {e}"));
    conn.push(Pending::Close(out.freeze()));
}

async fn read_requests(conn: &Rc<Connection>, mut reader: impl futures_lite::AsyncRead + Unpin) {
    let tuning = &conn.shared.file.tuning;
    let limits = RespLimits {
        bulk_bytes_max: tuning.batch_bytes_max,
        args_max: ARGS_MAX,
        bulk_skip_max: BULK_SKIP_BYTES_MAX.max(tuning.batch_bytes_max),
        ..RespLimits::default()
    };
    // One command at most this large may sit in the buffer (Redis's
    // client-query-buffer-limit): an MSET of a whole batch and its framing.
    let query_bytes_max = tuning.batch_bytes_max * 2 + 64 * 1024;
    let pending_max = tuning.client_pending_max;
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    // Commands, and one with an argument over the limit dropped as it
    // arrives (never buffered), answered in its place in the pipeline.
    let mut stream = CommandStream::default();
    loop {
        while conn.queue.borrow().len() >= pending_max {
            conn.room.wait().await;
        }
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let now = Instant::now();
        conn.read_at.set(Some(now));
        conn.info.read_at(super::util::unix_millis() as u64);
        if conn.info.killed.load(Relaxed) {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        // Many connections ready at once: the ticker, the driver and the
        // peer links go first (`turns`).
        conn.shared.turns.give_way(now).await;
        if buf.len() > query_bytes_max && !stream.is_skipping() {
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
            match stream.next(&mut buf, &limits) {
                Ok(Next::Command(args)) => {
                    if !dispatch(conn, &args).await {
                        return;
                    }
                }
                Ok(Next::Refused { len }) => refuse_command(conn, &too_large(len, tuning)),
                Ok(Next::More) => break,
                Err(e) => return close_on_protocol_error(conn, e),
            }
        }
    }
}

async fn write_replies(conn: Rc<Connection>, mut writer: impl futures_lite::AsyncWrite + Unpin) {
    let mut out = BytesMut::with_capacity(16 * 1024);
    // Sampled replies in `out`: (shard, when the shard answered).
    let mut samples: Vec<(usize, Instant)> = Vec::new();
    loop {
        let item = loop {
            if let Some(item) = conn.queue.borrow_mut().pop_front() {
                break Some(item);
            }
            if !out.is_empty() {
                if !flush(&conn, &mut writer, &mut out, &mut samples).await {
                    return;
                }
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
        if out.len() >= OUT_BYTES_FLUSH && !flush(&conn, &mut writer, &mut out, &mut samples).await {
            return;
        }
        // A silent slot is waited for as any other, and nothing of it
        // written. (Not written and cut off after: `out` may be flushed
        // while the slot waits for its answer.)
        let (item, silent) = match item {
            Pending::Silent(item) => (*item, true),
            item => (item, false),
        };
        let close = match item {
            Pending::Ready(bytes) => {
                if !silent {
                    out.extend_from_slice(&bytes);
                }
                false
            }
            Pending::Wait { cell, shard, seq, shape } => {
                let reply = match cell.take() {
                    Some(reply) => reply,
                    None => {
                        // Flush what is ready before waiting on the slow one.
                        if !out.is_empty() && !flush(&conn, &mut writer, &mut out, &mut samples).await {
                            return;
                        }
                        receive(&cell).await
                    }
                };
                conn.sessions.borrow_mut()[shard].answered(seq, &reply);
                if silent {
                    continue;
                }
                if let Some(at) = cell.sent_at() {
                    samples.push((shard, at));
                }
                encode_shaped(&mut out, reply, shape, conn.shards(), conn.proto());
                false
            }
            Pending::Gather { parts, gather } => {
                if !out.is_empty()
                    && parts.iter().any(|(cell, _, _)| !cell.is_ready())
                    && !flush(&conn, &mut writer, &mut out, &mut samples).await
                {
                    return;
                }
                let mut replies = Vec::with_capacity(parts.len());
                for (cell, shard, seq) in &parts {
                    let reply = match cell.take() {
                        Some(reply) => reply,
                        None => receive(cell).await,
                    };
                    conn.sessions.borrow_mut()[*shard].answered(*seq, &reply);
                    replies.push(reply);
                }
                if !silent {
                    resp::encode_reply(&mut out, &combine(replies, gather), conn.proto());
                }
                false
            }
            Pending::Close(bytes) => {
                if !silent {
                    out.extend_from_slice(&bytes);
                }
                true
            }
            Pending::Silent(_) => unreachable!("unwrapped above, and never nested"),
        };
        if close {
            conn.leave_registry();
            let _ = writer.write_all(&out).await;
            let _ = writer.close().await;
            return;
        }
    }
    conn.leave_registry();
    let _ = writer.close().await;
}

/// Write `out` and clear it; then the sampled replies in it have their
/// `reply` stage (shard answered until written to the socket). False if the
/// client is gone.
async fn flush(
    conn: &Connection,
    writer: &mut (impl futures_lite::AsyncWrite + Unpin),
    out: &mut BytesMut,
    samples: &mut Vec<(usize, Instant)>,
) -> bool {
    if writer.write_all(out).await.is_err() {
        return false;
    }
    out.clear();
    let now = Instant::now();
    for (shard, at) in samples.drain(..) {
        conn.shared.monitor.shards[shard].stages.record(Stage::Reply, now.duration_since(at).as_micros() as u64);
    }
    // Many connections writing at once: the ticker, the driver and the
    // peer links go first (`turns`).
    conn.shared.turns.give_way(now).await;
    true
}

async fn receive(cell: &ReplyCell<Reply>) -> Reply {
    cell.recv().await.unwrap_or_else(|| Reply::Error("ERR internal: request dropped".into()))
}

/// Encode `reply` as `shape` asks.
fn encode_shaped(out: &mut BytesMut, reply: Reply, shape: Shape, shards: usize, proto: Proto) {
    match (shape, reply) {
        (Shape::Direct, reply) => resp::encode_reply(out, &reply, proto),
        (Shape::Scan { shard }, Reply::Array(mut items)) if items.len() == 2 => {
            let keys = items.pop().expect("two items");
            let cursor = match items.pop().expect("two items") {
                Reply::Int(bucket) => ((shard as u64) << CURSOR_SHARD_SHIFT) | bucket as u64,
                _ if shard + 1 < shards => ((shard + 1) as u64) << CURSOR_SHARD_SHIFT,
                _ => 0,
            };
            resp::array_header(out, 2);
            resp::bulk(out, cursor.to_string().as_bytes());
            resp::encode_reply(out, &keys, proto);
        }
        (Shape::Exec { parts }, Reply::Array(items)) => {
            resp::array_header(out, parts.len());
            let mut items = items.into_iter();
            for part in parts {
                match part {
                    Part::Local(bytes) => out.extend_from_slice(&bytes),
                    Part::Store => {
                        let item = items.next().unwrap_or_else(|| Reply::Error("ERR internal: reply missing".into()));
                        resp::encode_reply(out, &item, proto);
                    }
                    Part::Scan => {
                        let item = items.next().unwrap_or_else(|| Reply::Error("ERR internal: reply missing".into()));
                        encode_shaped(out, item, Shape::Scan { shard: 0 }, shards, proto);
                    }
                }
            }
        }
        (_, reply) => resp::encode_reply(out, &reply, proto),
    }
}

/// One reply from every shard's.
fn combine(replies: Vec<Reply>, gather: Gather) -> Reply {
    if let Some(error) = replies.iter().find(|r| matches!(r, Reply::Error(_))) {
        return error.clone();
    }
    match gather {
        Gather::Concat => Reply::Array(
            replies
                .into_iter()
                .flat_map(|r| match r {
                    Reply::Array(items) => items,
                    _ => Vec::new(),
                })
                .collect(),
        ),
        Gather::Sum => Reply::Int(replies.iter().map(|r| if let Reply::Int(n) = r { *n } else { 0 }).sum()),
        Gather::AllOk => Reply::Ok,
        Gather::First { start } => {
            let n = replies.len();
            (0..n)
                .map(|i| &replies[(start + i) % n])
                .find(|r| matches!(r, Reply::Bulk(_)))
                .cloned()
                .unwrap_or(Reply::Nil)
        }
    }
}

/// Handle one command. Returns false to stop reading (QUIT).
async fn dispatch(conn: &Rc<Connection>, args: &[Bytes]) -> bool {
    let go_on = dispatch_command(conn, args).await;
    conn.command_done();
    go_on
}

async fn dispatch_command(conn: &Rc<Connection>, args: &[Bytes]) -> bool {
    let shared = &conn.shared;
    shared.monitor.clients.total_commands.fetch_add(1, Relaxed);
    // Name and arity first, as Redis: those errors come before NOAUTH and
    // refuse a command at MULTI's queue time (the transaction then aborts).
    let hint = conn.last_command.get();
    let found = args.first().and_then(|name| command_index_from(name, hint)).map(|index| (index, &COMMANDS[index]));
    let (index, spec) = match found {
        Some((index, spec)) if arity_ok(spec.arity, args.len()) => (index, spec),
        found => {
            let message = match parse_request(args, shared.file.tuning.value_bytes_max) {
                Err(message) => message,
                Ok(_) => unreachable!("a name or arity error parses as an error"),
            };
            if found.is_some_and(|(_, spec)| spec.name == "exec") {
                // Redis answers a malformed EXEC by discarding the transaction.
                conn.end_transaction();
                let reason = message.strip_prefix("ERR ").unwrap_or(&message);
                conn.push_error(&format!("EXECABORT Transaction discarded because of: {reason}"));
                return true;
            }
            if let Some(multi) = conn.multi.borrow_mut().as_mut() {
                multi.dirty = true;
            }
            conn.push_error(&message);
            return true;
        }
    };
    conn.last_command.set(index);
    conn.info.touch_command(index, args.get(1).and_then(|word| spec.subcommand(word)));
    if !conn.authenticated.get() && !spec.flags.contains(&"no_auth") {
        conn.push_error(ERROR_NOAUTH);
        return true;
    }
    let request = parse_request_of(spec, args, shared.file.tuning.value_bytes_max);
    if conn.in_multi() && !matches!(spec.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset") {
        let bytes = args.iter().map(|arg| arg.len() + QUEUED_COMMAND_OVERHEAD_BYTES).sum();
        queue_in_multi(conn, request, bytes);
        return true;
    }
    let request = match request {
        Ok(request) => request,
        Err(message) => {
            conn.push_error(&message);
            return true;
        }
    };
    match request {
        ClientRequest::Kv(op) if op.is_keyspace_wide() => submit_everywhere(conn, op).await,
        ClientRequest::Kv(op) => submit_kv(conn, op, Shape::Direct).await,
        ClientRequest::Scan { cursor, count, pattern, type_filter } => {
            scan(conn, cursor, count, pattern, type_filter).await;
        }
        ClientRequest::RandomKey => {
            let point = rand_u64(conn);
            let start = (point % conn.shards() as u64) as usize;
            gather(conn, Op::RandomKey { point }, Gather::First { start }).await;
        }
        ClientRequest::Multi => {
            if conn.in_multi() {
                conn.push_error("ERR MULTI calls can not be nested");
            } else {
                *conn.multi.borrow_mut() = Some(Multi::default());
                conn.info.multi.store(0, Relaxed);
                conn.push_ok();
            }
        }
        ClientRequest::Exec => exec(conn).await,
        ClientRequest::Discard => {
            if conn.in_multi() {
                conn.end_transaction();
                conn.push_ok();
            } else {
                conn.push_error("ERR DISCARD without MULTI");
            }
        }
        ClientRequest::Watch(keys) => {
            if conn.in_multi() {
                conn.push_error("ERR WATCH inside MULTI is not allowed");
            } else {
                watch(conn, keys).await;
            }
        }
        ClientRequest::Unwatch => {
            conn.unwatch();
            conn.push_ok();
        }
        ClientRequest::ClientReply(mode) => match mode {
            ReplyMode::On => {
                conn.reply_off.set(false);
                conn.reply_skip.set(false);
                conn.push_ok();
            }
            ReplyMode::Off => conn.reply_off.set(true),
            ReplyMode::Skip => conn.reply_skip_next.set(!conn.reply_off.get()),
        },
        ClientRequest::Reset => {
            // As Redis 6.2's RESET: out of MULTI, nothing watched, RESP2, no
            // name, replies on, and logged out if a password is required.
            conn.end_transaction();
            conn.reply_off.set(false);
            conn.reply_skip_next.set(false);
            conn.proto.set(Proto::Resp2);
            conn.info.proto.store(2, Relaxed);
            *conn.info.name.lock().expect("not poisoned") = None;
            conn.authenticated.set(conn.shared.requirepass().is_none());
            let mut out = BytesMut::new();
            resp::simple(&mut out, "RESET");
            conn.push(Pending::Ready(out.freeze()));
        }
        ClientRequest::Quit => {
            let mut out = BytesMut::new();
            resp::simple(&mut out, "OK");
            conn.push(Pending::Close(out.freeze()));
            return false;
        }
        ClientRequest::Auth { username, password } => {
            let mut out = BytesMut::new();
            match authenticate(conn, username.as_deref(), &password) {
                Ok(()) => resp::simple(&mut out, "OK"),
                Err(message) => resp::error(&mut out, message),
            }
            conn.push(Pending::Ready(out.freeze()));
        }
        ClientRequest::Hello { version, auth, setname } => {
            let mut out = BytesMut::new();
            hello(conn, version, auth, setname, &mut out);
            conn.push(Pending::Ready(out.freeze()));
        }
        local => {
            let mut out = BytesMut::new();
            answer_locally(conn, local, &mut out);
            conn.push(Pending::Ready(out.freeze()));
        }
    }
    if conn.info.killed.load(Relaxed) {
        // It killed itself (CLIENT KILL ... SKIPME no, also inside EXEC):
        // close once the replies before are written, as Redis does.
        conn.push(Pending::Close(Bytes::new()));
        return false;
    }
    true
}

/// SCAN: the cursor holds the shard in its top bits and the bucket below.
/// With one shard the step is pipelined like any command. With several, a
/// shard that has no keys left hands over to the next one within the same
/// call (the reply is awaited here, as WATCH's is), so an empty keyspace
/// answers cursor 0 at once, as Redis does, instead of one empty page per
/// shard.
async fn scan(conn: &Rc<Connection>, cursor: u64, count: u64, pattern: Option<Bytes>, type_filter: Option<Bytes>) {
    let mut shard = (cursor >> CURSOR_SHARD_SHIFT) as usize;
    let mut from = cursor & BUCKET_MAX;
    if shard >= conn.shards() {
        let mut out = BytesMut::new();
        resp::array_header(&mut out, 2);
        resp::bulk(&mut out, b"0");
        resp::array_header(&mut out, 0);
        conn.push(Pending::Ready(out.freeze()));
        return;
    }
    if conn.shards() == 1 {
        let op = Op::Scan { from, count, pattern, type_filter };
        submit_to(conn, shard, op, Shape::Scan { shard }).await;
        return;
    }
    loop {
        let op = Op::Scan { from, count, pattern: pattern.clone(), type_filter: type_filter.clone() };
        let (cell, seq) = send_to(conn, shard, op).await;
        let reply = receive(&cell).await;
        conn.sessions.borrow_mut()[shard].answered(seq, &reply);
        if shard + 1 < conn.shards() && is_last_page_and_empty(&reply) {
            shard += 1;
            from = 0;
            continue;
        }
        let mut out = BytesMut::new();
        encode_shaped(&mut out, reply, Shape::Scan { shard }, conn.shards(), conn.proto());
        conn.push(Pending::Ready(out.freeze()));
        return;
    }
}

/// Is a store's SCAN reply the shard's last page (no next bucket) with no
/// keys in it?
fn is_last_page_and_empty(reply: &Reply) -> bool {
    match reply {
        Reply::Array(items) => matches!(items.as_slice(), [Reply::Nil, Reply::Array(keys)] if keys.is_empty()),
        _ => false,
    }
}

/// The shard all `keys` map to: `Some(None)` for no keys, `None` when
/// they span shards.
fn shard_of_keys(keys: Vec<&Bytes>, shards: usize) -> Option<Option<usize>> {
    let mut shards_of = keys.into_iter().map(|key| slot_shard(key_slot(key), shards));
    let Some(first) = shards_of.next() else { return Some(None) };
    shards_of.all(|s| s == first).then_some(Some(first))
}

fn rand_u64(conn: &Connection) -> u64 {
    // Not for cryptography: where RANDOMKEY starts looking.
    let seed = crate::server::util::unix_micros() ^ conn.info.id.rotate_left(32);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x
}

/// Send `op` to the shard its keys map to.
async fn submit_kv(conn: &Rc<Connection>, op: Op, shape: Shape) {
    // One shard holds every key: no key list to build, no key to hash.
    let keys_shard = if conn.shards() == 1 { Some(Some(0)) } else { shard_of_keys(op.keys(), conn.shards()) };
    let shard = match keys_shard {
        Some(shard) => shard.unwrap_or(0),
        None => {
            conn.push_error(ERROR_CROSSSLOT);
            return;
        }
    };
    submit_to(conn, shard, op, shape).await;
}

/// Send `op` to `shard`; its reply takes its place in the pipeline.
async fn submit_to(conn: &Rc<Connection>, shard: usize, op: Op, shape: Shape) {
    let (cell, seq) = send_to(conn, shard, op).await;
    conn.push(Pending::Wait { cell, shard, seq, shape });
}

/// A keyspace-wide op: to every shard, the replies combined.
async fn submit_everywhere(conn: &Rc<Connection>, op: Op) {
    let gather_as = match op {
        Op::Keys { .. } => Gather::Concat,
        Op::DbSize => Gather::Sum,
        _ => Gather::AllOk,
    };
    gather(conn, op, gather_as).await;
}

async fn gather(conn: &Rc<Connection>, op: Op, gather: Gather) {
    let mut parts = Vec::with_capacity(conn.shards());
    for shard in 0..conn.shards() {
        let (cell, seq) = send_to(conn, shard, op.clone()).await;
        parts.push((cell, shard, seq));
    }
    conn.push(Pending::Gather { parts, gather });
}

/// Number `op` in the connection's session of `shard` and hand it to that
/// shard's executor; the cell receives the reply.
async fn send_to(conn: &Rc<Connection>, shard: usize, op: Op) -> (ReplyCell<Reply>, u64) {
    let shared = &conn.shared;
    let command = {
        let through_log = !op.is_read_only();
        let mut sessions = conn.sessions.borrow_mut();
        sessions[shard].command(op, through_log, || shared.new_session_counter())
    };
    let seq = command.seq;
    let sent = conn.sent.get() + 1;
    conn.sent.set(sent);
    let sampled = sent.is_multiple_of(STAGE_SAMPLE_EVERY);
    // The deadline counts from the read the request came in (one clock
    // read per read, not per request); a sampled request reads the clock
    // for its `parse` stage.
    let arrived = match conn.read_at.get() {
        Some(read_at) if sampled => {
            let parsed = read_at.elapsed().as_micros() as u64;
            shared.monitor.shards[shard].stages.record(Stage::Parse, parsed);
            read_at
        }
        Some(read_at) => read_at,
        None => Instant::now(),
    };
    let deadline = arrived + Duration::from_millis(shared.file.tuning.request_timeout_ms);
    let (sender, cell) = reply_cell_stamped(sampled);
    if shard == shared.executor {
        let local = shared.shard.borrow().clone().expect("the shard is set before clients connect");
        let mut local = local.borrow_mut();
        let request = Request::new(command, Waiter::Client(ClientWaiter::Local(sender)), local.deadline_us(deadline));
        local.submit(request);
        return (cell, seq);
    }
    let token = shared.register_mesh_waiter(sender);
    let message = MeshMessage::Request { from: shared.executor, token, command, deadline };
    if shared.mesh_send(shard, message).await.is_err() {
        if let Some(sender) = shared.take_mesh_waiter(token) {
            sender.send(Reply::Error("ERR internal: shard executor unavailable".into()));
        }
    }
    (cell, seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_last_page_hands_scan_over_to_the_next_shard() {
        let page = |next: Reply, keys: Vec<Reply>| Reply::Array(vec![next, Reply::Array(keys)]);
        let key = || Reply::Bulk(Bytes::from_static(b"k"));
        assert!(is_last_page_and_empty(&page(Reply::Nil, vec![])));
        assert!(!is_last_page_and_empty(&page(Reply::Nil, vec![key()])));
        assert!(!is_last_page_and_empty(&page(Reply::Int(7), vec![])));
        assert!(!is_last_page_and_empty(&Reply::Error("ERR x".into())));
    }

    /// A SCAN queued in MULTI answers its cursor as a bulk string in EXEC's
    /// array, as outside MULTI (it came back as the store's integer bucket,
    /// or a null when done, and redis-py's pipelined `scan` failed on it).
    #[test]
    fn a_scan_in_exec_answers_a_string_cursor() {
        let key = || Reply::Bulk(Bytes::from_static(b"k"));
        let page = |next: Reply| Reply::Array(vec![next, Reply::Array(vec![key()])]);
        let parts = || vec![Part::Scan, Part::Store, Part::Scan];
        let reply = Reply::Array(vec![page(Reply::Int(5)), key(), page(Reply::Nil)]);
        for proto in [Proto::Resp2, Proto::Resp3] {
            let mut out = BytesMut::new();
            encode_shaped(&mut out, reply.clone(), Shape::Exec { parts: parts() }, 1, proto);
            let expected = "*3\r\n*2\r\n$1\r\n5\r\n*1\r\n$1\r\nk\r\n$1\r\nk\r\n*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n";
            assert_eq!(String::from_utf8_lossy(&out), expected, "{proto:?}");
        }
    }
}
