//! Typed client requests: the arguments of one RESP command, checked and
//! turned into a store [`Op`] or a connection-level request.
//!
//! Errors are whole Redis error lines without the leading `-`
//! (`"ERR wrong number of arguments for 'get' command"`), worded as Redis
//! words them so clients and their tests recognize them. A bad request is
//! the client's mistake: it gets the error and the connection stays open.

use crate::kv::{Op, SetCondition, ERROR_NOT_INTEGER};
use bytes::Bytes;

/// A parsed client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A store operation, which goes through the log (or a read lease).
    Kv(Op),
    /// `PING [message]`.
    Ping(Option<Bytes>),
    /// `ECHO message`.
    Echo(Bytes),
    /// `INFO [section]`, the section lowercased.
    Info(Option<String>),
    /// `DBSIZE`.
    DbSize,
    /// `COMMAND [subcommand]`, enough for redis-cli's startup and hints.
    Command(CommandSub),
    /// `CLIENT SETNAME name`; the name has only printable, non-space ASCII
    /// (it may be empty, which clears it).
    ClientSetName(Bytes),
    /// `CLIENT GETNAME`.
    ClientGetName,
    /// `CLIENT ID`.
    ClientId,
    /// A CLIENT subcommand that is accepted and ignored (`CLIENT SETINFO`):
    /// reply `+OK`.
    ClientOther,
    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`: the protocol
    /// version, 2 or 3, if given. AUTH and SETNAME are checked and ignored.
    Hello(Option<u32>),
    /// `SELECT 0`, the only database.
    Select(u32),
    /// `QUIT`.
    Quit,
    /// `CONFIG GET pattern`; redis-benchmark asks for `save` and
    /// `appendonly`. Reply an empty array.
    ConfigGet(Bytes),
}

/// The subcommands of `COMMAND`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandSub {
    /// `COMMAND`: the table of every command.
    All,
    /// `COMMAND COUNT`.
    Count,
    /// `COMMAND LIST`.
    List,
    /// `COMMAND DOCS [name ...]` (redis-cli asks at startup).
    Docs(Vec<Bytes>),
    /// `COMMAND INFO [name ...]`.
    Info(Vec<Bytes>),
}

impl Request {
    /// Every key the request touches (empty unless it is a store op).
    pub fn keys(&self) -> Vec<&Bytes> {
        match self {
            Request::Kv(op) => op.keys(),
            _ => Vec::new(),
        }
    }
}

const ERROR_SYNTAX: &str = "ERR syntax error";
const ERROR_SET_OPTION_UNSUPPORTED: &str = "ERR SET options EX/PX/KEEPTTL/GET are not supported";
const ERROR_DECREMENT_OVERFLOW: &str = "ERR decrement would overflow";
const ERROR_CLIENT_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";
const ERROR_NOPROTO: &str = "NOPROTO unsupported protocol version";
const ERROR_PROTOCOL_VERSION: &str = "ERR Protocol version is not an integer or out of range";
const ERROR_DB_INDEX: &str = "ERR DB index is out of range";

/// The longest command or subcommand name we know, in bytes.
const NAME_BYTES_MAX: usize = 16;

/// Parses one command's arguments (name first). `value_bytes_max` bounds
/// each SET/MSET value and IFEQ operand.
pub fn parse_request(args: &[Bytes], value_bytes_max: usize) -> Result<Request, String> {
    let Some((name, rest)) = args.split_first() else {
        return Err(unknown_command(args));
    };
    let mut lowered = [0u8; NAME_BYTES_MAX];
    let request = match lowercase(name, &mut lowered) {
        b"get" => {
            expect_args(rest.len() == 1, "get")?;
            Request::Kv(Op::Get { key: rest[0].clone() })
        }
        b"set" => {
            expect_args(rest.len() >= 2, "set")?;
            parse_set(rest, value_bytes_max)?
        }
        b"del" => {
            expect_args(!rest.is_empty(), "del")?;
            Request::Kv(Op::Del { keys: rest.to_vec() })
        }
        b"exists" => {
            expect_args(!rest.is_empty(), "exists")?;
            Request::Kv(Op::Exists { keys: rest.to_vec() })
        }
        b"mget" => {
            expect_args(!rest.is_empty(), "mget")?;
            Request::Kv(Op::MGet { keys: rest.to_vec() })
        }
        b"mset" => {
            expect_args(!rest.is_empty() && rest.len() % 2 == 0, "mset")?;
            let pairs: Vec<(Bytes, Bytes)> =
                rest.chunks_exact(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect();
            pairs.iter().try_for_each(|(_, value)| check_value_size(value, value_bytes_max))?;
            Request::Kv(Op::MSet { pairs })
        }
        b"incr" => {
            expect_args(rest.len() == 1, "incr")?;
            Request::Kv(Op::IncrBy { key: rest[0].clone(), delta: 1 })
        }
        b"decr" => {
            expect_args(rest.len() == 1, "decr")?;
            Request::Kv(Op::IncrBy { key: rest[0].clone(), delta: -1 })
        }
        b"incrby" => {
            expect_args(rest.len() == 2, "incrby")?;
            let delta = parse_i64(&rest[1]).ok_or(ERROR_NOT_INTEGER)?;
            Request::Kv(Op::IncrBy { key: rest[0].clone(), delta })
        }
        b"decrby" => {
            expect_args(rest.len() == 2, "decrby")?;
            let decrement = parse_i64(&rest[1]).ok_or(ERROR_NOT_INTEGER)?;
            let delta = decrement.checked_neg().ok_or(ERROR_DECREMENT_OVERFLOW)?;
            Request::Kv(Op::IncrBy { key: rest[0].clone(), delta })
        }
        b"ping" => {
            expect_args(rest.len() <= 1, "ping")?;
            Request::Ping(rest.first().cloned())
        }
        b"echo" => {
            expect_args(rest.len() == 1, "echo")?;
            Request::Echo(rest[0].clone())
        }
        b"info" => {
            expect_args(rest.len() <= 1, "info")?;
            Request::Info(rest.first().map(|section| String::from_utf8_lossy(section).to_lowercase()))
        }
        b"dbsize" => {
            expect_args(rest.is_empty(), "dbsize")?;
            Request::DbSize
        }
        b"command" => Request::Command(parse_command_sub(rest)?),
        b"client" => parse_client(rest)?,
        b"hello" => Request::Hello(parse_hello(rest)?),
        b"select" => {
            expect_args(rest.len() == 1, "select")?;
            match parse_i64(&rest[0]).ok_or(ERROR_NOT_INTEGER)? {
                0 => Request::Select(0),
                _ => return Err(ERROR_DB_INDEX.to_string()),
            }
        }
        b"quit" => Request::Quit,
        b"config" => {
            let Some(sub) = rest.first() else {
                return Err(wrong_args("config"));
            };
            let mut sub_lowered = [0u8; NAME_BYTES_MAX];
            match lowercase(sub, &mut sub_lowered) {
                b"get" => {
                    expect_args(rest.len() == 2, "config|get")?;
                    Request::ConfigGet(rest[1].clone())
                }
                _ => return Err(unknown_subcommand(sub, "CONFIG")),
            }
        }
        _ => return Err(unknown_command(args)),
    };
    Ok(request)
}

/// `SET key value [NX | XX | IFEQ old]`; `rest` starts at the key.
fn parse_set(rest: &[Bytes], value_bytes_max: usize) -> Result<Request, String> {
    let (key, value) = (&rest[0], &rest[1]);
    let mut condition = None;
    let mut index = 2;
    while let Some(option) = rest.get(index) {
        let mut lowered = [0u8; NAME_BYTES_MAX];
        let parsed = match lowercase(option, &mut lowered) {
            b"nx" => SetCondition::IfNotExists,
            b"xx" => SetCondition::IfExists,
            b"ifeq" => {
                index += 1;
                let old = rest.get(index).ok_or(ERROR_SYNTAX)?;
                check_value_size(old, value_bytes_max)?;
                SetCondition::IfEqual(old.clone())
            }
            b"ex" | b"px" | b"exat" | b"pxat" | b"keepttl" | b"get" => {
                return Err(ERROR_SET_OPTION_UNSUPPORTED.to_string());
            }
            _ => return Err(ERROR_SYNTAX.to_string()),
        };
        if condition.replace(parsed).is_some() {
            return Err(ERROR_SYNTAX.to_string());
        }
        index += 1;
    }
    check_value_size(value, value_bytes_max)?;
    let condition = condition.unwrap_or(SetCondition::Always);
    Ok(Request::Kv(Op::Set { key: key.clone(), value: value.clone(), condition }))
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
        b"list" => {
            expect_args(rest.len() == 1, "command|list")?;
            Ok(CommandSub::List)
        }
        b"docs" => Ok(CommandSub::Docs(rest[1..].to_vec())),
        b"info" => Ok(CommandSub::Info(rest[1..].to_vec())),
        _ => Err(unknown_subcommand(sub, "COMMAND")),
    }
}

fn parse_client(rest: &[Bytes]) -> Result<Request, String> {
    let Some(sub) = rest.first() else {
        return Err(wrong_args("client"));
    };
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

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`, checked in Redis's
/// order: the version must be a number, the options well formed, and only
/// then the version 2 or 3.
fn parse_hello(rest: &[Bytes]) -> Result<Option<u32>, String> {
    let Some(version) = rest.first() else {
        return Ok(None);
    };
    let version = parse_i64(version).filter(|&v| v >= 0).ok_or(ERROR_PROTOCOL_VERSION)?;
    let mut index = 1;
    while let Some(option) = rest.get(index) {
        let more = rest.len() - index - 1;
        let mut lowered = [0u8; NAME_BYTES_MAX];
        match lowercase(option, &mut lowered) {
            b"auth" if more >= 2 => index += 3,
            b"setname" if more >= 1 => {
                check_client_name(&rest[index + 1])?;
                index += 2;
            }
            _ => return Err(format!("ERR Syntax error in HELLO option '{}'", printable(option, 128))),
        }
    }
    match version {
        2 => Ok(Some(2)),
        3 => Ok(Some(3)),
        _ => Err(ERROR_NOPROTO.to_string()),
    }
}

/// `name` lowercased into `buffer`, or an empty slice (no command's name)
/// when it is longer than any name we know.
fn lowercase<'a>(name: &[u8], buffer: &'a mut [u8; NAME_BYTES_MAX]) -> &'a [u8] {
    let Some(lowered) = buffer.get_mut(..name.len()) else {
        return &[];
    };
    lowered.copy_from_slice(name);
    lowered.make_ascii_lowercase();
    lowered
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
mod tests {
    use super::*;

    const VALUE_BYTES_MAX: usize = 16;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn parse(line: &str) -> Result<Request, String> {
        let args: Vec<Bytes> = line.split(' ').map(b).collect();
        parse_request(&args, VALUE_BYTES_MAX)
    }

    fn ok(line: &str) -> Request {
        parse(line).unwrap_or_else(|error| panic!("{line}: {error}"))
    }

    fn error(line: &str) -> String {
        parse(line).expect_err(line)
    }

    fn kv(line: &str) -> Op {
        match ok(line) {
            Request::Kv(op) => op,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn keys(texts: &[&str]) -> Vec<Bytes> {
        texts.iter().map(|text| b(text)).collect()
    }

    fn set(key: &str, value: &str, condition: SetCondition) -> Op {
        Op::Set { key: b(key), value: b(value), condition }
    }

    #[test]
    fn names_are_case_insensitive() {
        for line in ["GET k", "get k", "gEt k"] {
            assert_eq!(kv(line), Op::Get { key: b("k") });
        }
        assert_eq!(kv("set k v nX"), set("k", "v", SetCondition::IfNotExists));
    }

    #[test]
    fn get() {
        assert_eq!(kv("GET k"), Op::Get { key: b("k") });
        assert_eq!(error("GET"), "ERR wrong number of arguments for 'get' command");
        assert_eq!(error("GET a b"), "ERR wrong number of arguments for 'get' command");
    }

    #[test]
    fn set_and_its_conditions() {
        assert_eq!(kv("SET k v"), set("k", "v", SetCondition::Always));
        assert_eq!(kv("SET k v NX"), set("k", "v", SetCondition::IfNotExists));
        assert_eq!(kv("SET k v xx"), set("k", "v", SetCondition::IfExists));
        assert_eq!(kv("SET k v IFEQ old"), set("k", "v", SetCondition::IfEqual(b("old"))));
        assert_eq!(kv("SET k ifeq IFEQ ifeq"), set("k", "ifeq", SetCondition::IfEqual(b("ifeq"))));
        assert_eq!(error("SET k"), "ERR wrong number of arguments for 'set' command");
    }

    #[test]
    fn set_errors() {
        for line in
            ["SET k v NX XX", "SET k v NX NX", "SET k v IFEQ", "SET k v XX IFEQ o", "SET k v BOGUS", "SET k v NXX"]
        {
            assert_eq!(error(line), "ERR syntax error", "{line}");
        }
        for line in
            ["SET k v EX 10", "SET k v px 10", "SET k v KEEPTTL", "SET k v GET", "SET k v NX EXAT 1", "SET k v PXAT 1"]
        {
            assert_eq!(error(line), "ERR SET options EX/PX/KEEPTTL/GET are not supported", "{line}");
        }
    }

    #[test]
    fn value_size_limit() {
        let at_limit = "v".repeat(VALUE_BYTES_MAX);
        let over = "v".repeat(VALUE_BYTES_MAX + 1);
        assert_eq!(kv(&format!("SET k {at_limit}")), set("k", &at_limit, SetCondition::Always));
        let too_large = format!("ERR value too large (17 bytes; the limit is {VALUE_BYTES_MAX})");
        assert_eq!(error(&format!("SET k {over}")), too_large);
        assert_eq!(error(&format!("SET k v IFEQ {over}")), too_large);
        assert_eq!(error(&format!("MSET a 1 b {over}")), too_large);
        let long_key = "k".repeat(VALUE_BYTES_MAX * 2);
        assert!(parse(&format!("SET {long_key} v")).is_ok(), "keys are not bounded by the value limit");
    }

    #[test]
    fn del_exists_mget() {
        assert_eq!(kv("DEL a b a"), Op::Del { keys: keys(&["a", "b", "a"]) });
        assert_eq!(kv("EXISTS a"), Op::Exists { keys: keys(&["a"]) });
        assert_eq!(kv("MGET a b"), Op::MGet { keys: keys(&["a", "b"]) });
        assert_eq!(error("DEL"), "ERR wrong number of arguments for 'del' command");
        assert_eq!(error("EXISTS"), "ERR wrong number of arguments for 'exists' command");
        assert_eq!(error("MGET"), "ERR wrong number of arguments for 'mget' command");
    }

    #[test]
    fn mset() {
        assert_eq!(kv("MSET a 1 b 2"), Op::MSet { pairs: vec![(b("a"), b("1")), (b("b"), b("2"))] });
        for line in ["MSET", "MSET a", "MSET a 1 b"] {
            assert_eq!(error(line), "ERR wrong number of arguments for 'mset' command", "{line}");
        }
    }

    #[test]
    fn incr_decr() {
        assert_eq!(kv("INCR n"), Op::IncrBy { key: b("n"), delta: 1 });
        assert_eq!(kv("DECR n"), Op::IncrBy { key: b("n"), delta: -1 });
        assert_eq!(kv("INCRBY n -5"), Op::IncrBy { key: b("n"), delta: -5 });
        assert_eq!(kv("INCRBY n -9223372036854775808"), Op::IncrBy { key: b("n"), delta: i64::MIN });
        assert_eq!(kv("DECRBY n 7"), Op::IncrBy { key: b("n"), delta: -7 });
        assert_eq!(kv("DECRBY n 9223372036854775807"), Op::IncrBy { key: b("n"), delta: -i64::MAX });
        assert_eq!(error("DECRBY n -9223372036854775808"), "ERR decrement would overflow");
        for command in ["incr", "decr", "incrby", "decrby"] {
            let expected = format!("ERR wrong number of arguments for '{command}' command");
            assert_eq!(error(command), expected);
            assert_eq!(error(&format!("{command} a b c")), expected);
        }
        assert_eq!(error("INCR a b"), "ERR wrong number of arguments for 'incr' command");
    }

    #[test]
    fn integers_are_strict() {
        for bad in ["x", "", "+1", "01", "-0", "1 ", "9223372036854775808", "-9223372036854775809", "1e3", "--1"] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
            let args = [b("INCRBY"), b("n"), b(bad)];
            assert_eq!(parse_request(&args, VALUE_BYTES_MAX), Err(ERROR_NOT_INTEGER.to_string()), "{bad:?}");
        }
        for (good, value) in [("0", 0), ("-1", -1), ("10", 10), ("9223372036854775807", i64::MAX)] {
            assert_eq!(parse_i64(good.as_bytes()), Some(value));
        }
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    }

    #[test]
    fn ping_echo_info_dbsize_quit() {
        assert_eq!(ok("PING"), Request::Ping(None));
        assert_eq!(ok("PING hi"), Request::Ping(Some(b("hi"))));
        assert_eq!(error("PING a b"), "ERR wrong number of arguments for 'ping' command");
        assert_eq!(ok("ECHO hi"), Request::Echo(b("hi")));
        assert_eq!(error("ECHO"), "ERR wrong number of arguments for 'echo' command");
        assert_eq!(ok("INFO"), Request::Info(None));
        assert_eq!(ok("INFO Server"), Request::Info(Some("server".to_string())));
        assert_eq!(error("INFO a b"), "ERR wrong number of arguments for 'info' command");
        assert_eq!(ok("DBSIZE"), Request::DbSize);
        assert_eq!(error("DBSIZE x"), "ERR wrong number of arguments for 'dbsize' command");
        assert_eq!(ok("QUIT"), Request::Quit);
    }

    #[test]
    fn command_subcommands() {
        assert_eq!(ok("COMMAND"), Request::Command(CommandSub::All));
        assert_eq!(ok("COMMAND COUNT"), Request::Command(CommandSub::Count));
        assert_eq!(ok("command list"), Request::Command(CommandSub::List));
        assert_eq!(ok("COMMAND DOCS"), Request::Command(CommandSub::Docs(vec![])));
        assert_eq!(ok("COMMAND DOCS get set"), Request::Command(CommandSub::Docs(keys(&["get", "set"]))));
        assert_eq!(ok("COMMAND INFO get"), Request::Command(CommandSub::Info(keys(&["get"]))));
        assert_eq!(error("COMMAND COUNT x"), "ERR wrong number of arguments for 'command|count' command");
        assert_eq!(error("COMMAND GETKEYS x"), "ERR unknown subcommand 'GETKEYS'. Try COMMAND HELP.");
    }

    #[test]
    fn client_subcommands() {
        assert_eq!(ok("CLIENT SETNAME worker-1"), Request::ClientSetName(b("worker-1")));
        assert_eq!(parse_request(&[b("CLIENT"), b("SETNAME"), b("")], 1), Ok(Request::ClientSetName(b(""))));
        assert_eq!(ok("client getname"), Request::ClientGetName);
        assert_eq!(ok("CLIENT ID"), Request::ClientId);
        assert_eq!(ok("CLIENT SETINFO lib-name redis-py"), Request::ClientOther);
        assert_eq!(ok("CLIENT SETINFO LIB-VER 1.2.3"), Request::ClientOther);
    }

    #[test]
    fn client_errors() {
        for name in ["a b", "a\nb", "caf\u{e9}", "\x7f"] {
            let args = [b("CLIENT"), b("SETNAME"), b(name)];
            assert_eq!(
                parse_request(&args, VALUE_BYTES_MAX),
                Err("ERR Client names cannot contain spaces, newlines or special characters.".to_string()),
                "{name:?}"
            );
        }
        assert_eq!(error("CLIENT"), "ERR wrong number of arguments for 'client' command");
        assert_eq!(error("CLIENT SETNAME"), "ERR wrong number of arguments for 'client|setname' command");
        assert_eq!(error("CLIENT GETNAME x"), "ERR wrong number of arguments for 'client|getname' command");
        assert_eq!(error("CLIENT ID x"), "ERR wrong number of arguments for 'client|id' command");
        assert_eq!(error("CLIENT SETINFO lib-name"), "ERR wrong number of arguments for 'client|setinfo' command");
        assert_eq!(error("CLIENT SETINFO color red"), "ERR Unrecognized option 'color'");
        let args = [b("CLIENT"), b("SETINFO"), b("lib-name"), b("a b")];
        assert_eq!(
            parse_request(&args, VALUE_BYTES_MAX),
            Err("ERR lib-name cannot contain spaces, newlines or special characters.".to_string())
        );
        assert_eq!(error("CLIENT KILL x"), "ERR unknown subcommand 'KILL'. Try CLIENT HELP.");
    }

    #[test]
    fn hello() {
        assert_eq!(ok("HELLO"), Request::Hello(None));
        assert_eq!(ok("HELLO 2"), Request::Hello(Some(2)));
        assert_eq!(ok("HELLO 3 AUTH default secret SETNAME me"), Request::Hello(Some(3)));
        assert_eq!(ok("hello 2 setname me auth u p"), Request::Hello(Some(2)));
        assert_eq!(error("HELLO 1"), "NOPROTO unsupported protocol version");
        assert_eq!(error("HELLO 4"), "NOPROTO unsupported protocol version");
        assert_eq!(error("HELLO x"), "ERR Protocol version is not an integer or out of range");
        assert_eq!(error("HELLO -1"), "ERR Protocol version is not an integer or out of range");
        assert_eq!(error("HELLO 3 AUTH u"), "ERR Syntax error in HELLO option 'AUTH'");
        assert_eq!(error("HELLO 3 SETNAME"), "ERR Syntax error in HELLO option 'SETNAME'");
        assert_eq!(error("HELLO 3 BOGUS"), "ERR Syntax error in HELLO option 'BOGUS'");
        let args = [b("HELLO"), b("3"), b("SETNAME"), b("a b")];
        assert_eq!(
            parse_request(&args, VALUE_BYTES_MAX),
            Err("ERR Client names cannot contain spaces, newlines or special characters.".to_string())
        );
    }

    #[test]
    fn select() {
        assert_eq!(ok("SELECT 0"), Request::Select(0));
        assert_eq!(error("SELECT 1"), "ERR DB index is out of range");
        assert_eq!(error("SELECT -1"), "ERR DB index is out of range");
        assert_eq!(error("SELECT x"), "ERR value is not an integer or out of range");
        assert_eq!(error("SELECT"), "ERR wrong number of arguments for 'select' command");
    }

    #[test]
    fn config_get() {
        assert_eq!(ok("CONFIG GET save"), Request::ConfigGet(b("save")));
        assert_eq!(ok("config get appendonly"), Request::ConfigGet(b("appendonly")));
        assert_eq!(error("CONFIG"), "ERR wrong number of arguments for 'config' command");
        assert_eq!(error("CONFIG GET"), "ERR wrong number of arguments for 'config|get' command");
        assert_eq!(error("CONFIG SET save x"), "ERR unknown subcommand 'SET'. Try CONFIG HELP.");
    }

    #[test]
    fn unknown_commands_are_reported_like_redis() {
        assert_eq!(error("FOO a b"), "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ");
        assert_eq!(error("FOO"), "ERR unknown command 'FOO', with args beginning with: ");
        let long_name = "X".repeat(200);
        assert_eq!(error(&long_name), format!("ERR unknown command '{}', with args beginning with: ", "X".repeat(128)));
        let args = [b("FOO"), b(&"a".repeat(200)), b("next")];
        let message = parse_request(&args, VALUE_BYTES_MAX).unwrap_err();
        assert_eq!(message, format!("ERR unknown command 'FOO', with args beginning with: '{}' ", "a".repeat(128)));
        let args = [b("FOO\r\n"), b("a\nb")];
        let message = parse_request(&args, VALUE_BYTES_MAX).unwrap_err();
        assert_eq!(message, "ERR unknown command 'FOO  ', with args beginning with: 'a b' ");
        assert_eq!(parse_request(&[], VALUE_BYTES_MAX), Err(unknown_command(&[])));
    }

    #[test]
    fn keys_come_from_store_ops_only() {
        assert_eq!(ok("MSET a 1 b 2").keys(), vec![&b("a"), &b("b")]);
        assert_eq!(ok("INCR n").keys(), vec![&b("n")]);
        assert!(ok("PING").keys().is_empty());
        assert!(ok("ECHO k").keys().is_empty());
    }
}
