//! Typed client requests: the arguments of one RESP command, checked and
//! turned into a store [`Op`] or a connection-level request.
//!
//! Errors are whole Redis error lines without the leading `-`
//! (`"ERR wrong number of arguments for 'get' command"`), worded as Redis
//! 7.0 words them so clients and their tests recognize them. Checks run in
//! Redis's order: the command name, then its arity (from the table in
//! `commands.rs`), then the options left to right, then values. A bad
//! request is the client's mistake: it gets the error and the connection
//! stays open.

use crate::kv::{ExpireWhen, Expiry, Op, SetCondition, SetTtl, ERROR_NOT_INTEGER};
use crate::net::commands::{arity_ok, lookup, lowercase, CommandSpec, NAME_BYTES_MAX};
use bytes::Bytes;

/// A parsed client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A store operation: routed by its keys, or to every shard when it
    /// concerns the whole keyspace (KEYS, DBSIZE, FLUSHALL).
    Kv(Op),
    /// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
    Scan {
        cursor: u64,
        count: u64,
        pattern: Option<Bytes>,
        type_filter: Option<Bytes>,
    },
    /// `RANDOMKEY`.
    RandomKey,
    /// `PING [message]`.
    Ping(Option<Bytes>),
    /// `ECHO message`.
    Echo(Bytes),
    /// `INFO [section ...]`, the sections lowercased.
    Info(Vec<String>),
    /// `TIME`.
    Time,
    /// `COMMAND [subcommand]`, enough for redis-cli's startup and hints.
    Command(CommandSub),
    /// `CLIENT SETNAME name`; the name has only printable, non-space ASCII
    /// (it may be empty, which clears it).
    ClientSetName(Bytes),
    /// `CLIENT GETNAME`.
    ClientGetName,
    /// `CLIENT ID`.
    ClientId,
    /// `CLIENT INFO`.
    ClientInfo,
    /// `CLIENT LIST [ID id ...]` (`TYPE normal` lists everyone too).
    ClientList {
        ids: Option<Vec<u64>>,
    },
    /// `CLIENT KILL addr` or `CLIENT KILL <filter value> ...`.
    ClientKill(KillFilter),
    /// A CLIENT subcommand that is accepted and ignored (`CLIENT SETINFO`,
    /// `NO-EVICT`, `UNPAUSE`): reply `+OK`.
    ClientOther,
    /// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: no command blocks, so 0.
    ClientUnblock,
    /// `CLIENT GETREDIR`: tracking is not served, so -1.
    ClientGetRedir,
    /// `CLIENT REPLY ON|OFF|SKIP`.
    ClientReply(ReplyMode),
    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
    Hello {
        version: Option<u32>,
        auth: Option<(Bytes, Bytes)>,
        setname: Option<Bytes>,
    },
    /// `AUTH [username] password`.
    Auth {
        username: Option<Bytes>,
        password: Bytes,
    },
    /// `SELECT 0`, the only database.
    Select(u32),
    /// `SWAPDB 0 0`, the only database with itself: changes nothing.
    SwapDb,
    /// `WAIT numreplicas timeout`: answered at once (`server/client/local.rs`).
    Wait,
    /// `QUIT`.
    Quit,
    /// `RESET`.
    Reset,
    /// `CONFIG GET parameter [parameter ...]` (names or glob patterns);
    /// redis-benchmark asks for `save` and `appendonly`.
    ConfigGet(Vec<Bytes>),
    /// `CLIENT HELP`, `COMMAND HELP`, `CONFIG HELP`: the container's name
    /// (`client`, `command`, `config`).
    Help(&'static str),
    Multi,
    Exec,
    Discard,
    Watch(Vec<Bytes>),
    Unwatch,
}

/// `CLIENT REPLY`'s modes: answer every command, none, or not the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    Skip,
}

/// The subcommands of `COMMAND`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandSub {
    /// `COMMAND`: the table of every command.
    All,
    /// `COMMAND COUNT`.
    Count,
    /// `COMMAND HELP`.
    Help,
    /// `COMMAND LIST [FILTERBY MODULE|ACLCAT|PATTERN arg]`.
    List(Option<ListFilter>),
    /// `COMMAND DOCS [name ...]`, every command without names (redis-cli
    /// asks at startup). A name may be `container|sub`.
    Docs(Vec<Bytes>),
    /// `COMMAND INFO [name ...]`, every command without names. A name may
    /// be `container|sub`.
    Info(Vec<Bytes>),
}

/// Which names `COMMAND LIST FILTERBY` keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListFilter {
    /// Commands of a module: none here.
    Module(Bytes),
    /// Commands in an ACL category, named without its `@`.
    AclCategory(Bytes),
    /// Names (`container|sub` for subcommands) matching a glob pattern,
    /// ignoring case.
    Pattern(Bytes),
}

/// Which connections `CLIENT KILL` closes (all given filters must match).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KillFilter {
    pub id: Option<u64>,
    pub addr: Option<String>,
    pub laddr: Option<String>,
    /// Also the calling connection (`SKIPME no`); default: not.
    pub include_self: bool,
    /// The old form `CLIENT KILL addr`: reply `+OK` or an error, not a count.
    pub old_form: bool,
}

impl Request {
    /// Every key the request touches (empty unless it is a store op).
    pub fn keys(&self) -> Vec<&Bytes> {
        match self {
            Request::Kv(op) => op.keys(),
            Request::Watch(keys) => keys.iter().collect(),
            _ => Vec::new(),
        }
    }
}

pub const ERROR_SYNTAX: &str = "ERR syntax error";
const ERROR_DECREMENT_OVERFLOW: &str = "ERR decrement would overflow";
const ERROR_CLIENT_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";
const ERROR_NOPROTO: &str = "NOPROTO unsupported protocol version";
const ERROR_PROTOCOL_VERSION: &str = "ERR Protocol version is not an integer or out of range";
const ERROR_DB_INDEX: &str = "ERR DB index is out of range";
const ERROR_INVALID_CURSOR: &str = "ERR invalid cursor";
const ERROR_OFFSET: &str = "ERR offset is out of range";

/// Index of each name in `kv::EXPIRE_COMMAND_NAMES`.
const EXPIRY_SET: u8 = 0;
const EXPIRY_SETEX: u8 = 1;
const EXPIRY_PSETEX: u8 = 2;
const EXPIRY_GETEX: u8 = 3;
const EXPIRY_EXPIRE: u8 = 4;
const EXPIRY_PEXPIRE: u8 = 5;

/// The words SCAN's default COUNT asks for, as Redis.
const SCAN_COUNT_DEFAULT: u64 = 10;

/// Parses one command's arguments (name first). `value_bytes_max` bounds
/// each stored value (SET, MSET, APPEND's and SETRANGE's results, ...).
pub fn parse_request(args: &[Bytes], value_bytes_max: usize) -> Result<Request, String> {
    let Some(spec) = args.first().and_then(|name| lookup(name)) else {
        return Err(unknown_command(args));
    };
    parse_request_of(spec, args, value_bytes_max)
}

/// [`parse_request`] of a command already looked up: `spec` is the spec
/// of `args[0]`.
pub fn parse_request_of(spec: &'static CommandSpec, args: &[Bytes], value_bytes_max: usize) -> Result<Request, String> {
    let rest = args.get(1..).unwrap_or_default();
    if !arity_ok(spec.arity, args.len()) {
        return Err(wrong_args(spec.name));
    }
    let limit = value_bytes_max;
    let key = || rest[0].clone();
    let kv = |op: Op| Ok(Request::Kv(op));
    match spec.name {
        "get" => kv(Op::Get { key: key() }),
        "set" => parse_set(rest, limit),
        "setnx" => {
            check_value_size(&rest[1], limit)?;
            kv(Op::SetNx { key: key(), value: rest[1].clone() })
        }
        "setex" | "psetex" => {
            let (unit, command) = if spec.name == "setex" { (1000, EXPIRY_SETEX) } else { (1, EXPIRY_PSETEX) };
            let ms = expire_amount(&rest[1], unit, command)?;
            check_value_size(&rest[2], limit)?;
            let ttl = SetTtl::Expire(Expiry::In { ms, command });
            kv(Op::Set { key: key(), value: rest[2].clone(), condition: SetCondition::Always, ttl, get: false })
        }
        "getset" => {
            check_value_size(&rest[1], limit)?;
            kv(Op::Set {
                key: key(),
                value: rest[1].clone(),
                condition: SetCondition::Always,
                ttl: SetTtl::Clear,
                get: true,
            })
        }
        "getdel" => kv(Op::GetDel { key: key() }),
        "getex" => parse_getex(rest),
        "append" => {
            check_value_size(&rest[1], limit)?;
            kv(Op::Append { key: key(), value: rest[1].clone(), limit: limit as u64 })
        }
        "strlen" => kv(Op::StrLen { key: key() }),
        "getrange" | "substr" => {
            let start = parse_i64(&rest[1]).ok_or(ERROR_NOT_INTEGER)?;
            let end = parse_i64(&rest[2]).ok_or(ERROR_NOT_INTEGER)?;
            kv(Op::GetRange { key: key(), start, end })
        }
        "setrange" => {
            let offset = parse_i64(&rest[1]).ok_or(ERROR_NOT_INTEGER)?;
            let offset = u64::try_from(offset).map_err(|_| ERROR_OFFSET)?;
            kv(Op::SetRange { key: key(), offset, value: rest[2].clone(), limit: limit as u64 })
        }
        "del" | "unlink" => kv(Op::Del { keys: rest.to_vec() }),
        "exists" | "touch" => kv(Op::Exists { keys: rest.to_vec() }),
        "mget" => kv(Op::MGet { keys: rest.to_vec() }),
        "mset" | "msetnx" => {
            if rest.len() % 2 != 0 {
                return Err(wrong_args(spec.name));
            }
            let pairs: Vec<(Bytes, Bytes)> =
                rest.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
            pairs.iter().try_for_each(|(_, value)| check_value_size(value, limit))?;
            kv(if spec.name == "mset" { Op::MSet { pairs } } else { Op::MSetNx { pairs } })
        }
        "incr" => kv(Op::IncrBy { key: key(), delta: 1 }),
        "decr" => kv(Op::IncrBy { key: key(), delta: -1 }),
        "incrby" => kv(Op::IncrBy { key: key(), delta: parse_i64(&rest[1]).ok_or(ERROR_NOT_INTEGER)? }),
        "decrby" => {
            let decrement = parse_i64(&rest[1]).ok_or(ERROR_NOT_INTEGER)?;
            let delta = decrement.checked_neg().ok_or(ERROR_DECREMENT_OVERFLOW)?;
            kv(Op::IncrBy { key: key(), delta })
        }
        "incrbyfloat" => kv(Op::IncrByFloat { key: key(), increment: rest[1].clone() }),
        "type" => kv(Op::Type { key: key() }),
        "ttl" | "pttl" | "expiretime" | "pexpiretime" => {
            let milliseconds = spec.name.starts_with('p');
            let absolute = spec.name.ends_with("time");
            kv(Op::Ttl { key: key(), milliseconds, absolute })
        }
        "expire" | "pexpire" | "expireat" | "pexpireat" => parse_expire(spec.name, rest),
        "persist" => kv(Op::Persist { key: key() }),
        "keys" => kv(Op::Keys { pattern: key() }),
        "scan" => parse_scan(rest),
        "randomkey" => Ok(Request::RandomKey),
        "rename" | "renamenx" => kv(Op::Rename { from: key(), to: rest[1].clone(), nx: spec.name == "renamenx" }),
        "copy" => parse_copy(rest),
        "dbsize" => kv(Op::DbSize),
        "flushall" | "flushdb" => {
            match rest {
                [] => {}
                [mode] if mode.eq_ignore_ascii_case(b"async") || mode.eq_ignore_ascii_case(b"sync") => {}
                _ => return Err(ERROR_SYNTAX.to_string()),
            }
            kv(Op::Flush)
        }
        "time" => Ok(Request::Time),
        "ping" => {
            expect_args(rest.len() <= 1, "ping")?;
            Ok(Request::Ping(rest.first().cloned()))
        }
        "echo" => Ok(Request::Echo(key())),
        "info" => Ok(Request::Info(rest.iter().map(|s| String::from_utf8_lossy(s).to_lowercase()).collect())),
        "command" => Ok(Request::Command(parse_command_sub(rest)?)),
        "client" => parse_client(rest),
        "hello" => parse_hello(rest),
        "auth" => match rest {
            [password] => Ok(Request::Auth { username: None, password: password.clone() }),
            [username, password] => Ok(Request::Auth { username: Some(username.clone()), password: password.clone() }),
            _ => Err(ERROR_SYNTAX.to_string()),
        },
        "select" => match parse_i64(&rest[0]).ok_or(ERROR_NOT_INTEGER)? {
            0 => Ok(Request::Select(0)),
            _ => Err(ERROR_DB_INDEX.to_string()),
        },
        "swapdb" => {
            // Redis reads both as C ints.
            let index = |arg: &Bytes| parse_i64(arg).and_then(|n| i32::try_from(n).ok());
            let first = index(&rest[0]).ok_or("ERR invalid first DB index")?;
            let second = index(&rest[1]).ok_or("ERR invalid second DB index")?;
            if first != 0 || second != 0 {
                return Err(ERROR_DB_INDEX.to_string());
            }
            Ok(Request::SwapDb)
        }
        "wait" => {
            parse_i64(&rest[0]).ok_or(ERROR_NOT_INTEGER)?;
            match parse_i64(&rest[1]) {
                None => Err("ERR timeout is not an integer or out of range".to_string()),
                Some(timeout) if timeout < 0 => Err("ERR timeout is negative".to_string()),
                Some(_) => Ok(Request::Wait),
            }
        }
        "quit" => Ok(Request::Quit),
        "reset" => Ok(Request::Reset),
        "memory" => {
            let mut sub_lowered = [0u8; NAME_BYTES_MAX];
            match lowercase(&rest[0], &mut sub_lowered) {
                b"usage" => {
                    expect_args(rest.len() >= 2, "memory|usage")?;
                    // SAMPLES: how many elements of a collection Redis
                    // samples; a string has none, so it only has to parse
                    // (as in Redis, a repeat is allowed and the last wins).
                    for option in rest[2..].chunks(2) {
                        match option {
                            [name, count] if name.eq_ignore_ascii_case(b"samples") => {
                                parse_i64(count).ok_or(ERROR_NOT_INTEGER)?;
                            }
                            _ => return Err(ERROR_SYNTAX.to_string()),
                        }
                    }
                    kv(Op::MemoryUsage { key: rest[1].clone() })
                }
                b"help" => {
                    expect_args(rest.len() == 1, "memory|help")?;
                    Ok(Request::Help("memory"))
                }
                _ => Err(unknown_subcommand(&rest[0], "MEMORY")),
            }
        }
        "object" => {
            let mut sub_lowered = [0u8; NAME_BYTES_MAX];
            match lowercase(&rest[0], &mut sub_lowered) {
                b"encoding" => {
                    expect_args(rest.len() == 2, "object|encoding")?;
                    kv(Op::ObjectEncoding { key: rest[1].clone() })
                }
                b"help" => {
                    expect_args(rest.len() == 1, "object|help")?;
                    Ok(Request::Help("object"))
                }
                _ => Err(unknown_subcommand(&rest[0], "OBJECT")),
            }
        }
        "config" => {
            let mut sub_lowered = [0u8; NAME_BYTES_MAX];
            match lowercase(&rest[0], &mut sub_lowered) {
                b"get" => {
                    expect_args(rest.len() >= 2, "config|get")?;
                    Ok(Request::ConfigGet(rest[1..].to_vec()))
                }
                b"help" => {
                    expect_args(rest.len() == 1, "config|help")?;
                    Ok(Request::Help("config"))
                }
                _ => Err(unknown_subcommand(&rest[0], "CONFIG")),
            }
        }
        "multi" => Ok(Request::Multi),
        "exec" => Ok(Request::Exec),
        "discard" => Ok(Request::Discard),
        "watch" => Ok(Request::Watch(rest.to_vec())),
        "unwatch" => Ok(Request::Unwatch),
        other => unreachable!("command {other} is in the table but not parsed"),
    }
}

/// An option word, lowercased (empty if longer than any option).
fn option<'a>(word: &[u8], buffer: &'a mut [u8; NAME_BYTES_MAX]) -> &'a [u8] {
    lowercase(word, buffer)
}

/// A relative or absolute expiry amount in `unit` milliseconds, checked as
/// Redis checks it before anything else: an integer, above 0, and not
/// overflowing when turned into milliseconds.
fn expire_amount(word: &Bytes, unit: i64, command: u8) -> Result<i64, String> {
    let amount = parse_i64(word).ok_or(ERROR_NOT_INTEGER)?;
    if amount <= 0 || (unit == 1000 && amount > i64::MAX / 1000) {
        return Err(expire_error(command));
    }
    Ok(amount * unit)
}

fn expire_error(command: u8) -> String {
    format!("ERR invalid expire time in '{}' command", crate::kv::EXPIRE_COMMAND_NAMES[usize::from(command)])
}

/// The options of SET and GETEX as Redis 7.0 reads them
/// (`parseExtendedStringArgumentsOrReply`): left to right, each accepted
/// unless an option it excludes came before it. The same option twice is
/// no conflict: `NX NX`, `GET GET` and `KEEPTTL KEEPTTL` stand, and of `EX
/// 1 EX 2` the last amount wins (it alone is checked, after every option).
/// Two different expiry forms, `NX` with `XX`, or `KEEPTTL` or `PERSIST`
/// with an expiry, are a syntax error. IFEQ (ours, Valkey's syntax) excludes
/// NX, XX and a second IFEQ.
#[derive(Default)]
struct StringOptions<'a> {
    condition: Option<SetCondition>,
    get: bool,
    keep_ttl: bool,
    persist: bool,
    /// The expiry form (`ex`, `px`, `exat`, `pxat`) and its amount's word.
    expiry: Option<(&'static str, &'a Bytes)>,
}

/// Which command's options [`StringOptions::parse`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StringCommand {
    Set,
    GetEx,
}

impl<'a> StringOptions<'a> {
    fn parse(words: &'a [Bytes], command: StringCommand, value_bytes_max: usize) -> Result<Self, String> {
        let set = command == StringCommand::Set;
        let mut options = StringOptions::default();
        let mut index = 0;
        while let Some(word) = words.get(index) {
            let next = words.get(index + 1);
            let mut lowered = [0u8; NAME_BYTES_MAX];
            let condition_free = matches!(options.condition, None | Some(SetCondition::IfNotExists));
            let expiry_given = options.expiry.map(|(given, _)| given);
            match option(word, &mut lowered) {
                b"nx" if set && condition_free => options.condition = Some(SetCondition::IfNotExists),
                b"xx" if set && matches!(options.condition, None | Some(SetCondition::IfExists)) => {
                    options.condition = Some(SetCondition::IfExists)
                }
                b"ifeq" if set && options.condition.is_none() && next.is_some() => {
                    let old = next.expect("checked");
                    check_value_size(old, value_bytes_max)?;
                    options.condition = Some(SetCondition::IfEqual(old.clone()));
                    index += 1;
                }
                b"get" if set => options.get = true,
                b"keepttl" if set && !options.persist && options.expiry.is_none() => options.keep_ttl = true,
                b"persist" if !set && !options.keep_ttl && options.expiry.is_none() => options.persist = true,
                form @ (b"ex" | b"px" | b"exat" | b"pxat") => {
                    let form = match form {
                        b"ex" => "ex",
                        b"px" => "px",
                        b"exat" => "exat",
                        _ => "pxat",
                    };
                    match next {
                        Some(amount)
                            if !options.keep_ttl && !options.persist && expiry_given.is_none_or(|g| g == form) =>
                        {
                            options.expiry = Some((form, amount));
                            index += 1;
                        }
                        _ => return Err(ERROR_SYNTAX.to_string()),
                    }
                }
                _ => return Err(ERROR_SYNTAX.to_string()),
            }
            index += 1;
        }
        Ok(options)
    }

    /// The TTL to set, the expiry amount checked now (after every option,
    /// as Redis checks it); `None` when no TTL option was given.
    fn ttl(&self, command: u8) -> Result<Option<SetTtl>, String> {
        if self.keep_ttl {
            return Ok(Some(SetTtl::Keep));
        }
        if self.persist {
            return Ok(Some(SetTtl::Clear));
        }
        let Some((form, word)) = self.expiry else { return Ok(None) };
        let unit = if form.starts_with('e') { 1000 } else { 1 };
        let ms = expire_amount(word, unit, command)?;
        Ok(Some(SetTtl::Expire(if form.ends_with("at") { Expiry::At(ms) } else { Expiry::In { ms, command } })))
    }
}

/// `SET key value [NX | XX | IFEQ old] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]`
/// (options in any order; `rest` starts at the key).
fn parse_set(rest: &[Bytes], value_bytes_max: usize) -> Result<Request, String> {
    let (key, value) = (&rest[0], &rest[1]);
    let options = StringOptions::parse(&rest[2..], StringCommand::Set, value_bytes_max)?;
    let ttl = options.ttl(EXPIRY_SET)?.unwrap_or(SetTtl::Clear);
    check_value_size(value, value_bytes_max)?;
    let condition = options.condition.unwrap_or(SetCondition::Always);
    Ok(Request::Kv(Op::Set { key: key.clone(), value: value.clone(), condition, ttl, get: options.get }))
}

/// `GETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST]`.
fn parse_getex(rest: &[Bytes]) -> Result<Request, String> {
    let key = rest[0].clone();
    let options = StringOptions::parse(&rest[1..], StringCommand::GetEx, 0)?;
    Ok(Request::Kv(match options.ttl(EXPIRY_GETEX)? {
        None => Op::Get { key },
        Some(ttl) => Op::GetEx { key, ttl },
    }))
}

/// `EXPIRE key seconds [NX | XX | GT | LT]` and PEXPIRE, EXPIREAT, PEXPIREAT.
fn parse_expire(name: &str, rest: &[Bytes]) -> Result<Request, String> {
    let key = rest[0].clone();
    let amount = parse_i64(&rest[1]).ok_or(ERROR_NOT_INTEGER)?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for word in &rest[2..] {
        let mut lowered = [0u8; NAME_BYTES_MAX];
        match option(word, &mut lowered) {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => return Err(format!("ERR Unsupported option {}", printable(word, 128))),
        }
    }
    if nx && (xx || gt || lt) {
        return Err("ERR NX and XX, GT or LT options at the same time are not compatible".to_string());
    }
    if gt && lt {
        return Err("ERR GT and LT options at the same time are not compatible".to_string());
    }
    let when = ExpireWhen { nx, xx, gt, lt };
    let seconds = !name.starts_with('p');
    let absolute = name.ends_with("at");
    let command = if seconds { EXPIRY_EXPIRE } else { EXPIRY_PEXPIRE };
    let ms = if seconds {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&amount) {
            return Err(format!("ERR invalid expire time in '{name}' command"));
        }
        amount * 1000
    } else {
        amount
    };
    let expiry = if absolute { Expiry::At(ms) } else { Expiry::In { ms, command } };
    Ok(Request::Kv(Op::Expire { key, expiry, when }))
}

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`.
fn parse_scan(rest: &[Bytes]) -> Result<Request, String> {
    let cursor = parse_cursor(&rest[0]).ok_or(ERROR_INVALID_CURSOR)?;
    let (mut count, mut pattern, mut type_filter) = (SCAN_COUNT_DEFAULT, None, None);
    let mut index = 1;
    while let Some(word) = rest.get(index) {
        let value = rest.get(index + 1).ok_or(ERROR_SYNTAX)?;
        let mut lowered = [0u8; NAME_BYTES_MAX];
        match option(word, &mut lowered) {
            b"count" => {
                let n = parse_i64(value).ok_or(ERROR_NOT_INTEGER)?;
                if n < 1 {
                    return Err(ERROR_SYNTAX.to_string());
                }
                count = n as u64;
            }
            b"match" => pattern = Some(value.clone()),
            b"type" => type_filter = Some(value.clone()),
            _ => return Err(ERROR_SYNTAX.to_string()),
        }
        index += 2;
    }
    Ok(Request::Scan { cursor, count, pattern, type_filter })
}

/// A SCAN cursor read as Redis 7.0 reads it: C's `strtoul` in base 10,
/// refusing a leading space, trailing bytes and overflow. So a sign is
/// allowed (`-1` is 2^64 - 1, a cursor past the end) and the empty string
/// is cursor 0.
fn parse_cursor(word: &[u8]) -> Option<u64> {
    let (negative, digits) = match word.first() {
        Some(b'-') => (true, &word[1..]),
        Some(b'+') => (false, &word[1..]),
        _ => (false, word),
    };
    if word.is_empty() {
        return Some(0);
    }
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?;
    Some(if negative { magnitude.wrapping_neg() } else { magnitude })
}

/// `COPY source destination [DB index] [REPLACE]`.
fn parse_copy(rest: &[Bytes]) -> Result<Request, String> {
    let mut replace = false;
    let mut index = 2;
    while let Some(word) = rest.get(index) {
        let mut lowered = [0u8; NAME_BYTES_MAX];
        match option(word, &mut lowered) {
            b"replace" => replace = true,
            b"db" => {
                let db = rest.get(index + 1).ok_or(ERROR_SYNTAX)?;
                if parse_i64(db).ok_or(ERROR_NOT_INTEGER)? != 0 {
                    return Err(ERROR_DB_INDEX.to_string());
                }
                index += 1;
            }
            _ => return Err(ERROR_SYNTAX.to_string()),
        }
        index += 1;
    }
    Ok(Request::Kv(Op::Copy { from: rest[0].clone(), to: rest[1].clone(), replace }))
}

fn parse_command_sub(rest: &[Bytes]) -> Result<CommandSub, String> {
    let Some(sub) = rest.first() else {
        return Ok(CommandSub::All);
    };
    let mut lowered = [0u8; NAME_BYTES_MAX];
    match lowercase(sub, &mut lowered) {
        b"count" => {
            expect_args(rest.len() == 1, "command|count")?;
            Ok(CommandSub::Count)
        }
        b"list" => parse_command_list(&rest[1..]),
        b"help" => {
            expect_args(rest.len() == 1, "command|help")?;
            Ok(CommandSub::Help)
        }
        b"docs" => Ok(CommandSub::Docs(rest[1..].to_vec())),
        b"info" => Ok(CommandSub::Info(rest[1..].to_vec())),
        _ => Err(unknown_subcommand(sub, "COMMAND")),
    }
}

/// `COMMAND LIST`'s options: nothing, or one `FILTERBY type argument`.
fn parse_command_list(rest: &[Bytes]) -> Result<CommandSub, String> {
    match rest {
        [] => Ok(CommandSub::List(None)),
        [word, kind, argument] if word.eq_ignore_ascii_case(b"filterby") => {
            let mut lowered = [0u8; NAME_BYTES_MAX];
            let filter = match lowercase(kind, &mut lowered) {
                b"module" => ListFilter::Module(argument.clone()),
                b"aclcat" => ListFilter::AclCategory(argument.clone()),
                b"pattern" => ListFilter::Pattern(argument.clone()),
                _ => return Err(ERROR_SYNTAX.to_string()),
            };
            Ok(CommandSub::List(Some(filter)))
        }
        _ => Err(ERROR_SYNTAX.to_string()),
    }
}

fn parse_client(rest: &[Bytes]) -> Result<Request, String> {
    let sub = &rest[0];
    let mut lowered = [0u8; NAME_BYTES_MAX];
    match lowercase(sub, &mut lowered) {
        b"setname" => {
            expect_args(rest.len() == 2, "client|setname")?;
            check_client_name(&rest[1])?;
            Ok(Request::ClientSetName(rest[1].clone()))
        }
        b"getname" => {
            expect_args(rest.len() == 1, "client|getname")?;
            Ok(Request::ClientGetName)
        }
        b"id" => {
            expect_args(rest.len() == 1, "client|id")?;
            Ok(Request::ClientId)
        }
        b"info" => {
            expect_args(rest.len() == 1, "client|info")?;
            Ok(Request::ClientInfo)
        }
        b"list" => parse_client_list(&rest[1..]),
        b"kill" => parse_client_kill(&rest[1..]),
        b"help" => {
            expect_args(rest.len() == 1, "client|help")?;
            Ok(Request::Help("client"))
        }
        b"no-evict" => {
            expect_args(rest.len() == 2, "client|no-evict")?;
            if !rest[1].eq_ignore_ascii_case(b"on") && !rest[1].eq_ignore_ascii_case(b"off") {
                return Err(ERROR_SYNTAX.to_string());
            }
            Ok(Request::ClientOther)
        }
        b"unpause" => {
            expect_args(rest.len() == 1, "client|unpause")?;
            Ok(Request::ClientOther)
        }
        b"unblock" => {
            expect_args(rest.len() >= 2, "client|unblock")?;
            // Redis's order: the arguments' count, the reason, the id.
            match &rest[2..] {
                [] => {}
                [reason] if reason.eq_ignore_ascii_case(b"timeout") || reason.eq_ignore_ascii_case(b"error") => {}
                [_] => return Err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".to_string()),
                _ => return Err(wrong_subcommand_args(&rest[0], "CLIENT")),
            }
            parse_i64(&rest[1]).ok_or(ERROR_NOT_INTEGER)?;
            Ok(Request::ClientUnblock)
        }
        b"reply" => {
            expect_args(rest.len() == 2, "client|reply")?;
            let mut mode_lowered = [0u8; NAME_BYTES_MAX];
            match lowercase(&rest[1], &mut mode_lowered) {
                b"on" => Ok(Request::ClientReply(ReplyMode::On)),
                b"off" => Ok(Request::ClientReply(ReplyMode::Off)),
                b"skip" => Ok(Request::ClientReply(ReplyMode::Skip)),
                _ => Err(ERROR_SYNTAX.to_string()),
            }
        }
        b"getredir" => {
            expect_args(rest.len() == 1, "client|getredir")?;
            Ok(Request::ClientGetRedir)
        }
        b"setinfo" => {
            expect_args(rest.len() == 3, "client|setinfo")?;
            let mut option_lowered = [0u8; NAME_BYTES_MAX];
            let option = match lowercase(&rest[1], &mut option_lowered) {
                b"lib-name" => "lib-name",
                b"lib-ver" => "lib-ver",
                _ => return Err(format!("ERR Unrecognized option '{}'", printable(&rest[1], 128))),
            };
            if !is_printable_name(&rest[2]) {
                return Err(format!("ERR {option} cannot contain spaces, newlines or special characters."));
            }
            Ok(Request::ClientOther)
        }
        _ => Err(unknown_subcommand(sub, "CLIENT")),
    }
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]`.
fn parse_client_list(rest: &[Bytes]) -> Result<Request, String> {
    match rest {
        [] => Ok(Request::ClientList { ids: None }),
        [word, kind] if word.eq_ignore_ascii_case(b"type") => {
            let mut lowered = [0u8; NAME_BYTES_MAX];
            match lowercase(kind, &mut lowered) {
                b"normal" => Ok(Request::ClientList { ids: None }),
                b"master" | b"replica" | b"slave" | b"pubsub" => Ok(Request::ClientList { ids: Some(Vec::new()) }),
                _ => Err(format!("ERR Unknown client type '{}'", printable(kind, 128))),
            }
        }
        [word, ids @ ..] if word.eq_ignore_ascii_case(b"id") && !ids.is_empty() => {
            let ids = ids
                .iter()
                .map(|id| parse_i64(id).filter(|&n| n > 0).map(|n| n as u64).ok_or("ERR Invalid client ID"))
                .collect::<Result<Vec<u64>, _>>()?;
            Ok(Request::ClientList { ids: Some(ids) })
        }
        _ => Err(ERROR_SYNTAX.to_string()),
    }
}

/// `CLIENT KILL ip:port` or `CLIENT KILL [ID id] [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no] ...`.
fn parse_client_kill(rest: &[Bytes]) -> Result<Request, String> {
    if let [addr] = rest {
        return Ok(Request::ClientKill(KillFilter {
            addr: Some(String::from_utf8_lossy(addr).into_owned()),
            old_form: true,
            include_self: true,
            ..KillFilter::default()
        }));
    }
    // `client|kill` has arity -3 in Redis 7.0.
    expect_args(!rest.is_empty(), "client|kill")?;
    if !rest.len().is_multiple_of(2) {
        return Err(ERROR_SYNTAX.to_string());
    }
    let mut filter = KillFilter::default();
    for pair in rest.chunks_exact(2) {
        let (word, value) = (&pair[0], &pair[1]);
        let mut lowered = [0u8; NAME_BYTES_MAX];
        match lowercase(word, &mut lowered) {
            b"id" => {
                let id = parse_i64(value).filter(|&n| n > 0).ok_or("ERR client-id should be greater than 0")?;
                filter.id = Some(id as u64);
            }
            b"addr" => filter.addr = Some(String::from_utf8_lossy(value).into_owned()),
            b"laddr" => filter.laddr = Some(String::from_utf8_lossy(value).into_owned()),
            b"skipme" => {
                filter.include_self = match value.to_ascii_lowercase().as_slice() {
                    b"yes" => false,
                    b"no" => true,
                    _ => return Err(ERROR_SYNTAX.to_string()),
                }
            }
            b"type" | b"user" | b"maxage" => {}
            _ => return Err(ERROR_SYNTAX.to_string()),
        }
    }
    Ok(Request::ClientKill(filter))
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`, checked in Redis
/// 7.0's order: the version must be an integer (any sign), then 2 or 3,
/// and only then are the options read.
fn parse_hello(rest: &[Bytes]) -> Result<Request, String> {
    let Some(version) = rest.first() else {
        return Ok(Request::Hello { version: None, auth: None, setname: None });
    };
    let version = match parse_i64(version).ok_or(ERROR_PROTOCOL_VERSION)? {
        version @ (2 | 3) => version as u32,
        _ => return Err(ERROR_NOPROTO.to_string()),
    };
    let (mut auth, mut setname) = (None, None);
    let mut index = 1;
    while let Some(option) = rest.get(index) {
        let more = rest.len() - index - 1;
        let mut lowered = [0u8; NAME_BYTES_MAX];
        match lowercase(option, &mut lowered) {
            b"auth" if more >= 2 => {
                auth = Some((rest[index + 1].clone(), rest[index + 2].clone()));
                index += 3;
            }
            b"setname" if more >= 1 => {
                check_client_name(&rest[index + 1])?;
                setname = Some(rest[index + 1].clone());
                index += 2;
            }
            _ => return Err(format!("ERR Syntax error in HELLO option '{}'", printable(option, 128))),
        }
    }
    Ok(Request::Hello { version: Some(version), auth, setname })
}

fn expect_args(ok: bool, command: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(wrong_args(command))
    }
}

fn wrong_args(command: &str) -> String {
    format!("ERR wrong number of arguments for '{command}' command")
}

fn check_value_size(value: &Bytes, value_bytes_max: usize) -> Result<(), String> {
    if value.len() > value_bytes_max {
        return Err(format!("ERR value too large ({} bytes; the limit is {value_bytes_max})", value.len()));
    }
    Ok(())
}

/// Redis allows client names of printable ASCII without spaces: `!`..=`~`.
fn is_printable_name(name: &[u8]) -> bool {
    name.iter().all(|&byte| (b'!'..=b'~').contains(&byte))
}

fn check_client_name(name: &[u8]) -> Result<(), String> {
    if is_printable_name(name) {
        Ok(())
    } else {
        Err(ERROR_CLIENT_NAME.to_string())
    }
}

/// At most `bytes_max` bytes of client input for an error message, with
/// CR and LF turned into spaces so the error stays one line.
fn printable(input: &[u8], bytes_max: usize) -> String {
    let text = String::from_utf8_lossy(&input[..input.len().min(bytes_max)]);
    text.replace(['\r', '\n'], " ")
}

/// Redis's answer to a known subcommand given a count of arguments its
/// table allows but the subcommand does not (it names `sub` as written).
fn wrong_subcommand_args(sub: &[u8], command: &str) -> String {
    format!("ERR unknown subcommand or wrong number of arguments for '{}'. Try {command} HELP.", printable(sub, 128))
}

fn unknown_subcommand(sub: &[u8], command: &str) -> String {
    format!("ERR unknown subcommand '{}'. Try {command} HELP.", printable(sub, 128))
}

/// Redis's message: the name and then quoted arguments, each cut so the
/// list stays near 128 bytes, with a trailing space.
fn unknown_command(args: &[Bytes]) -> String {
    const LISTED_BYTES_MAX: usize = 128;
    let name = args.first().map_or(String::new(), |name| printable(name, 128));
    let mut listed = String::new();
    for arg in args.iter().skip(1) {
        if listed.len() >= LISTED_BYTES_MAX {
            break;
        }
        let room = LISTED_BYTES_MAX - listed.len();
        listed.push('\'');
        listed.push_str(&printable(arg, room));
        listed.push_str("' ");
    }
    format!("ERR unknown command '{name}', with args beginning with: {listed}")
}

/// A strict decimal i64, as Redis's `string2ll`: an optional `-`, no `+`,
/// no spaces, no leading zeros, no `-0`.
fn parse_i64(input: &[u8]) -> Option<i64> {
    let (negative, digits) = match input {
        [b'-', digits @ ..] => (true, digits),
        digits => (false, digits),
    };
    // i64::MIN has 19 digits.
    if digits.is_empty() || digits.len() > 19 || (digits[0] == b'0' && (digits.len() > 1 || negative)) {
        return None;
    }
    let mut magnitude: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        // Cannot overflow: 19 digits are below 10^19 < u64::MAX.
        magnitude = magnitude * 10 + u64::from(digit - b'0');
    }
    let value = if negative { -i128::from(magnitude) } else { i128::from(magnitude) };
    i64::try_from(value).ok()
}

#[cfg(test)]
mod tests;
