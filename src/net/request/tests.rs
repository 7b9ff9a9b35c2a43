//! Tests of `request.rs`.

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
    Op::Set { key: b(key), value: b(value), condition, ttl: SetTtl::Clear, get: false }
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
    for line in [
        "SET k v NX XX",
        "SET k v IFEQ",
        "SET k v XX IFEQ o",
        "SET k v IFEQ o NX",
        "SET k v IFEQ o IFEQ o",
        "SET k v BOGUS",
        "SET k v NXX",
    ] {
        assert_eq!(error(line), "ERR syntax error", "{line}");
    }
    for line in ["SET k v EX 1 PX 1", "SET k v KEEPTTL EX 1", "SET k v EX", "SET k v GET EXAT"] {
        assert_eq!(error(line), "ERR syntax error", "{line}");
    }
    for line in ["SET k v EX 0", "SET k v PX -1", "SET k v EX 9223372036854776"] {
        assert_eq!(error(line), "ERR invalid expire time in 'set' command", "{line}");
    }
    assert_eq!(error("SET k v EX ten"), "ERR value is not an integer or out of range");
}

#[test]
fn set_expiry_options() {
    let with = |ttl, get| Op::Set { key: b("k"), value: b("v"), condition: SetCondition::Always, ttl, get };
    let within = |ms| SetTtl::Expire(Expiry::In { ms, command: 0 });
    assert_eq!(kv("SET k v EX 10"), with(within(10_000), false));
    assert_eq!(kv("set k v px 10 get"), with(within(10), true));
    assert_eq!(kv("SET k v EXAT 5"), with(SetTtl::Expire(Expiry::At(5_000)), false));
    assert_eq!(kv("SET k v PXAT 5"), with(SetTtl::Expire(Expiry::At(5)), false));
    assert_eq!(kv("SET k v KEEPTTL"), with(SetTtl::Keep, false));
    let nx = Op::Set { key: b("k"), value: b("v"), condition: SetCondition::IfNotExists, ttl: within(3), get: false };
    assert_eq!(kv("SET k v PX 3 NX"), nx);
    assert_eq!(kv("SETEX k 2 v"), with(SetTtl::Expire(Expiry::In { ms: 2_000, command: 1 }), false));
    assert_eq!(error("SETEX k 0 v"), "ERR invalid expire time in 'setex' command");
    assert_eq!(error("PSETEX k 0 v"), "ERR invalid expire time in 'psetex' command");
}

#[test]
fn expire_family() {
    let expire = |expiry, when| Op::Expire { key: b("k"), expiry, when };
    let none = ExpireWhen::default();
    assert_eq!(kv("EXPIRE k 5"), expire(Expiry::In { ms: 5_000, command: 4 }, none));
    assert_eq!(
        kv("PEXPIRE k 5 xx gt"),
        expire(Expiry::In { ms: 5, command: 5 }, ExpireWhen { xx: true, gt: true, ..none })
    );
    assert_eq!(kv("EXPIREAT k 5 NX"), expire(Expiry::At(5_000), ExpireWhen { nx: true, ..none }));
    assert_eq!(kv("PEXPIREAT k 5 LT"), expire(Expiry::At(5), ExpireWhen { lt: true, ..none }));
    assert_eq!(error("EXPIRE k 5 NX XX"), "ERR NX and XX, GT or LT options at the same time are not compatible");
    assert_eq!(error("EXPIRE k 5 GT LT"), "ERR GT and LT options at the same time are not compatible");
    assert_eq!(error("EXPIRE k 5 BOGUS"), "ERR Unsupported option BOGUS");
    assert_eq!(kv("TTL k"), Op::Ttl { key: b("k"), milliseconds: false, absolute: false });
    assert_eq!(kv("PEXPIRETIME k"), Op::Ttl { key: b("k"), milliseconds: true, absolute: true });
    assert_eq!(kv("PERSIST k"), Op::Persist { key: b("k") });
    assert_eq!(kv("GETEX k PERSIST"), Op::GetEx { key: b("k"), ttl: SetTtl::Clear });
    assert_eq!(
        kv("GETEX k EX 1"),
        Op::GetEx { key: b("k"), ttl: SetTtl::Expire(Expiry::In { ms: 1_000, command: 3 }) }
    );
    assert_eq!(kv("GETEX k"), Op::Get { key: b("k") });
    assert_eq!(error("GETEX k EX 1 PERSIST"), "ERR syntax error");
}

#[test]
fn scan_cursors_read_like_strtoul() {
    let cursor = |line: &str| match ok(line) {
        Request::Scan { cursor, .. } => cursor,
        other => panic!("{line}: {other:?}"),
    };
    assert_eq!(cursor("SCAN 0"), 0);
    assert_eq!(cursor("SCAN +7"), 7);
    assert_eq!(cursor("SCAN -0"), 0);
    assert_eq!(cursor("SCAN -1"), u64::MAX);
    assert_eq!(cursor("SCAN 18446744073709551615"), u64::MAX);
    assert_eq!(parse_cursor(b""), Some(0));
    for bad in ["18446744073709551616", "-18446744073709551616", "+", "-", " 0", "0 ", "0x10", "1e3", "1.5"] {
        assert_eq!(parse_cursor(bad.as_bytes()), None, "{bad:?}");
    }
}

/// Redis 7.0 accepts an option given twice (the last amount wins) and
/// refuses two that exclude each other, as `parseExtendedStringArgumentsOrReply`.
#[test]
fn set_and_getex_options_given_twice() {
    let set = |condition, ttl, get| Op::Set { key: b("k"), value: b("v"), condition, ttl, get };
    let within = |ms, command| SetTtl::Expire(Expiry::In { ms, command });
    assert_eq!(kv("SET k v NX NX"), set(SetCondition::IfNotExists, SetTtl::Clear, false));
    assert_eq!(kv("SET k v xx XX"), set(SetCondition::IfExists, SetTtl::Clear, false));
    assert_eq!(kv("SET k v GET get"), set(SetCondition::Always, SetTtl::Clear, true));
    assert_eq!(kv("SET k v KEEPTTL KEEPTTL"), set(SetCondition::Always, SetTtl::Keep, false));
    assert_eq!(kv("SET k v EX 1 EX 2"), set(SetCondition::Always, within(2_000, 0), false));
    assert_eq!(kv("SET k v EX abc EX 2"), set(SetCondition::Always, within(2_000, 0), false));
    assert_eq!(error("SET k v EX 2 EX abc"), "ERR value is not an integer or out of range");
    for line in ["SET k v EX 1 KEEPTTL", "SET k v KEEPTTL PX 1", "SET k v EX 1 PXAT 1", "SET k v NX XX NX"] {
        assert_eq!(error(line), "ERR syntax error", "{line}");
    }
    assert_eq!(kv("GETEX k PERSIST PERSIST"), Op::GetEx { key: b("k"), ttl: SetTtl::Clear });
    assert_eq!(kv("GETEX k PX 1 px 2"), Op::GetEx { key: b("k"), ttl: within(2, 3) });
    for line in ["GETEX k PERSIST EX 1", "GETEX k EX 1 EXAT 1", "GETEX k NX", "GETEX k GET", "GETEX k KEEPTTL"] {
        assert_eq!(error(line), "ERR syntax error", "{line}");
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
    assert_eq!(ok("INFO"), Request::Info(vec![]));
    assert_eq!(ok("INFO Server"), Request::Info(vec!["server".to_string()]));
    assert_eq!(ok("INFO server Clients"), Request::Info(vec!["server".to_string(), "clients".to_string()]));
    assert_eq!(ok("DBSIZE"), Request::Kv(Op::DbSize));
    assert_eq!(error("DBSIZE x"), "ERR wrong number of arguments for 'dbsize' command");
    assert_eq!(ok("QUIT"), Request::Quit);
}

#[test]
fn command_subcommands() {
    assert_eq!(ok("COMMAND"), Request::Command(CommandSub::All));
    assert_eq!(ok("COMMAND COUNT"), Request::Command(CommandSub::Count));
    assert_eq!(ok("command list"), Request::Command(CommandSub::List(None)));
    assert_eq!(
        ok("COMMAND LIST filterby AclCat string"),
        Request::Command(CommandSub::List(Some(ListFilter::AclCategory(Bytes::from_static(b"string")))))
    );
    assert_eq!(
        ok("COMMAND LIST FILTERBY pattern g*"),
        Request::Command(CommandSub::List(Some(ListFilter::Pattern(Bytes::from_static(b"g*")))))
    );
    assert_eq!(error("COMMAND LIST FILTERBY nosuch x"), "ERR syntax error");
    assert_eq!(error("COMMAND LIST FILTERBY pattern"), "ERR syntax error");
    assert_eq!(error("COMMAND LIST FILTERBY pattern a b"), "ERR syntax error");
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
    assert_eq!(error("CLIENT KILL"), "ERR wrong number of arguments for 'client|kill' command");
    assert_eq!(error("CLIENT KILL ID 1 SKIPME"), "ERR syntax error");
    assert_eq!(error("CLIENT SETINFO lib-name"), "ERR wrong number of arguments for 'client|setinfo' command");
    assert_eq!(error("CLIENT SETINFO color red"), "ERR Unrecognized option 'color'");
    let args = [b("CLIENT"), b("SETINFO"), b("lib-name"), b("a b")];
    assert_eq!(
        parse_request(&args, VALUE_BYTES_MAX),
        Err("ERR lib-name cannot contain spaces, newlines or special characters.".to_string())
    );
    assert_eq!(error("CLIENT BOGUS x"), "ERR unknown subcommand 'BOGUS'. Try CLIENT HELP.");
}

#[test]
fn hello() {
    let hello = |version, auth: Option<(&str, &str)>, setname: Option<&str>| Request::Hello {
        version,
        auth: auth.map(|(user, pass)| (b(user), b(pass))),
        setname: setname.map(b),
    };
    assert_eq!(ok("HELLO"), hello(None, None, None));
    assert_eq!(ok("HELLO 2"), hello(Some(2), None, None));
    assert_eq!(ok("HELLO 3 AUTH default secret SETNAME me"), hello(Some(3), Some(("default", "secret")), Some("me")));
    assert_eq!(ok("hello 2 setname me auth u p"), hello(Some(2), Some(("u", "p")), Some("me")));
    assert_eq!(error("HELLO 1"), "NOPROTO unsupported protocol version");
    assert_eq!(error("HELLO 4"), "NOPROTO unsupported protocol version");
    assert_eq!(error("HELLO x"), "ERR Protocol version is not an integer or out of range");
    // An integer outside 2..=3 is NOPROTO, before any option is read.
    assert_eq!(error("HELLO -1"), "NOPROTO unsupported protocol version");
    assert_eq!(error("HELLO 4 BOGUS"), "NOPROTO unsupported protocol version");
    assert_eq!(error("HELLO 3.0"), "ERR Protocol version is not an integer or out of range");
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
fn client_subcommands_that_change_nothing_here() {
    assert_eq!(ok("CLIENT NO-EVICT on"), Request::ClientOther);
    assert_eq!(ok("client no-evict OFF"), Request::ClientOther);
    assert_eq!(error("CLIENT NO-EVICT maybe"), "ERR syntax error");
    assert_eq!(ok("CLIENT UNPAUSE"), Request::ClientOther);
    assert_eq!(ok("CLIENT UNBLOCK 7"), Request::ClientUnblock);
    assert_eq!(ok("CLIENT UNBLOCK 7 error"), Request::ClientUnblock);
    // Redis judges the reason before the id.
    assert_eq!(error("CLIENT UNBLOCK x y"), "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    assert_eq!(error("CLIENT UNBLOCK x"), "ERR value is not an integer or out of range");
    assert_eq!(
        error("CLIENT Unblock 7 error extra"),
        "ERR unknown subcommand or wrong number of arguments for 'Unblock'. Try CLIENT HELP."
    );
    assert_eq!(ok("CLIENT GETREDIR"), Request::ClientGetRedir);
    assert_eq!(error("CLIENT GETREDIR x"), "ERR wrong number of arguments for 'client|getredir' command");
}

#[test]
fn swapdb_and_wait() {
    assert_eq!(ok("SWAPDB 0 0"), Request::SwapDb);
    assert_eq!(error("SWAPDB 0 1"), "ERR DB index is out of range");
    assert_eq!(error("SWAPDB x 1"), "ERR invalid first DB index");
    assert_eq!(error("SWAPDB 0 x"), "ERR invalid second DB index");
    assert_eq!(error("SWAPDB 2147483648 0"), "ERR invalid first DB index");
    assert_eq!(error("SWAPDB 0 2147483647"), "ERR DB index is out of range");
    assert_eq!(ok("WAIT 0 0"), Request::Wait);
    assert_eq!(ok("wait 3 100"), Request::Wait);
    assert_eq!(error("WAIT x 0"), "ERR value is not an integer or out of range");
    assert_eq!(error("WAIT 0 x"), "ERR timeout is not an integer or out of range");
    assert_eq!(error("WAIT 0 -1"), "ERR timeout is negative");
    assert_eq!(error("WAIT 0"), "ERR wrong number of arguments for 'wait' command");
}

#[test]
fn config_get() {
    assert_eq!(ok("CONFIG GET save"), Request::ConfigGet(keys(&["save"])));
    assert_eq!(ok("config get appendonly save"), Request::ConfigGet(keys(&["appendonly", "save"])));
    assert_eq!(error("CONFIG GET"), "ERR wrong number of arguments for 'config|get' command");
    assert_eq!(error("CONFIG"), "ERR wrong number of arguments for 'config' command");
    assert_eq!(error("CONFIG GET"), "ERR wrong number of arguments for 'config|get' command");
    assert_eq!(error("CONFIG SET save x"), "ERR unknown subcommand 'SET'. Try CONFIG HELP.");
}

/// Every "Try X HELP." names a subcommand that exists (a sweep found
/// `CLIENT HELP` answered "unknown subcommand 'HELP'. Try CLIENT HELP.").
#[test]
fn the_help_the_errors_point_to_is_there() {
    assert_eq!(ok("CLIENT HELP"), Request::Help("client"));
    assert_eq!(ok("config help"), Request::Help("config"));
    assert_eq!(ok("COMMAND HELP"), Request::Command(CommandSub::Help));
    assert_eq!(error("CLIENT HELP x"), "ERR wrong number of arguments for 'client|help' command");
}

/// MEMORY USAGE and OBJECT ENCODING read one key; SAMPLES only has to
/// parse (a string has no elements to sample); the other subcommands are
/// unknown, pointing at a HELP that exists.
#[test]
fn memory_usage_and_object_encoding() {
    assert_eq!(ok("MEMORY USAGE k"), Request::Kv(Op::MemoryUsage { key: Bytes::from_static(b"k") }));
    assert_eq!(ok("memory usage k samples 0"), ok("MEMORY USAGE k"));
    assert_eq!(ok("OBJECT ENCODING k"), Request::Kv(Op::ObjectEncoding { key: Bytes::from_static(b"k") }));
    assert_eq!(error("MEMORY USAGE k SAMPLE 5"), "ERR syntax error");
    assert_eq!(error("MEMORY USAGE k SAMPLES"), "ERR syntax error");
    assert_eq!(ok("MEMORY USAGE k SAMPLES 5 samples 7"), ok("MEMORY USAGE k"));
    assert_eq!(error("MEMORY USAGE k SAMPLES x"), "ERR value is not an integer or out of range");
    assert_eq!(error("MEMORY USAGE"), "ERR wrong number of arguments for 'memory|usage' command");
    assert_eq!(error("OBJECT ENCODING k extra"), "ERR wrong number of arguments for 'object|encoding' command");
    assert_eq!(error("OBJECT FREQ k"), "ERR unknown subcommand 'FREQ'. Try OBJECT HELP.");
    assert_eq!(error("MEMORY DOCTOR"), "ERR unknown subcommand 'DOCTOR'. Try MEMORY HELP.");
    assert_eq!(ok("MEMORY HELP"), Request::Help("memory"));
    assert_eq!(ok("OBJECT HELP"), Request::Help("object"));
}

/// TOUCH counts the keys that exist, as EXISTS (there is no access time
/// to update); SUBSTR is GETRANGE under its old name.
#[test]
fn touch_and_substr_are_exists_and_getrange() {
    assert_eq!(ok("TOUCH a b a"), ok("EXISTS a b a"));
    assert_eq!(ok("SUBSTR k 1 -2"), ok("GETRANGE k 1 -2"));
    assert_eq!(error("TOUCH"), "ERR wrong number of arguments for 'touch' command");
}

#[test]
fn reset_takes_no_argument() {
    assert_eq!(ok("RESET"), Request::Reset);
    assert_eq!(error("RESET now"), "ERR wrong number of arguments for 'reset' command");
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

/// A subcommand's arity in the command table (what COMMAND INFO says)
/// is the one its parser enforces.
#[test]
fn subcommands_enforce_the_arity_of_the_table() {
    for spec in crate::net::commands::COMMANDS {
        for sub in spec.subcommands {
            let (container, name) = sub.name.split_once('|').expect("container|sub");
            let words = |count: usize| {
                let mut words = vec![b(container), b(name)];
                words.resize(count, b("x"));
                words
            };
            // Too few words (but the subcommand's name), or too many.
            let arity = sub.arity.unsigned_abs() as usize;
            let mut wrong = Vec::new();
            if arity > 2 {
                wrong.push(arity - 1);
            }
            if sub.arity > 0 {
                wrong.push(arity + 1);
            }
            for count in wrong {
                let message = parse_request(&words(count), VALUE_BYTES_MAX).expect_err(sub.name);
                assert_eq!(message, wrong_args(sub.name), "{} with {count} words", sub.name);
            }
        }
    }
}
