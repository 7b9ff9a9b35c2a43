//! The table of every command paxoskv serves: arity (checked before any
//! other parsing, as Redis does), flags, key positions, group and a short
//! summary. `COMMAND`, `COMMAND INFO/DOCS/COUNT/LIST` and the arity check
//! all read it, so the table cannot drift from what is served.
//!
//! Arity follows Redis: `n` means exactly `n` words with the name, `-n` at
//! least `n`. Keys are at positions `first..=last` (negative: from the
//! end) with `step`; 0 means no key.

/// One command's description.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    pub arity: i64,
    pub flags: &'static [&'static str],
    pub first_key: i64,
    pub last_key: i64,
    pub step: i64,
    pub acl: &'static [&'static str],
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    /// Arguments after the name, for COMMAND DOCS (`name:type`, `?` suffix
    /// optional, `*` suffix repeated).
    pub args: &'static [&'static str],
}

const RO: &[&str] = &["readonly", "fast"];
const RO_SLOW: &[&str] = &["readonly"];
const W: &[&str] = &["write", "denyoom"];
const W_FAST: &[&str] = &["write", "denyoom", "fast"];
const W_DEL: &[&str] = &["write"];
const W_DEL_FAST: &[&str] = &["write", "fast"];
const CONN: &[&str] = &["noscript", "loading", "stale", "fast"];
const TX: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];

/// One row of the table; positional so the table reads as a table.
#[allow(clippy::too_many_arguments)]
const fn spec(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    acl: &'static [&'static str],
    group: &'static str,
    since: &'static str,
    summary: &'static str,
    args: &'static [&'static str],
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        acl,
        group,
        since,
        summary,
        args,
    }
}

const NO_KEYS: (i64, i64, i64) = (0, 0, 0);
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);
const PAIRS: (i64, i64, i64) = (1, -1, 2);
const TWO_KEYS: (i64, i64, i64) = (1, 2, 1);

const STRING_READ: &[&str] = &["@read", "@string", "@fast"];
const STRING_WRITE: &[&str] = &["@write", "@string", "@slow"];
const STRING_WRITE_FAST: &[&str] = &["@write", "@string", "@fast"];
const KEYSPACE_READ: &[&str] = &["@keyspace", "@read", "@fast"];
const KEYSPACE_WRITE: &[&str] = &["@keyspace", "@write", "@fast"];
const KEYSPACE_SLOW: &[&str] = &["@keyspace", "@read", "@slow"];
const KEYSPACE_WRITE_SLOW: &[&str] = &["@keyspace", "@write", "@slow"];
const CONNECTION: &[&str] = &["@fast", "@connection"];
const TRANSACTION: &[&str] = &["@fast", "@transaction"];

/// Every command, sorted by name.
pub const COMMANDS: &[CommandSpec] = &[
    spec(
        "append",
        3,
        W_FAST,
        ONE_KEY,
        STRING_WRITE_FAST,
        "string",
        "2.0.0",
        "Append a value to a key",
        &["key:key", "value:string"],
    ),
    spec(
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        NO_KEYS,
        &["@fast", "@connection"],
        "connection",
        "1.0.0",
        "Authenticate to the server",
        &["username:string?", "password:string"],
    ),
    spec(
        "client",
        -2,
        &["noscript", "loading", "stale"],
        NO_KEYS,
        &["@slow"],
        "connection",
        "2.4.0",
        "A container for client connection commands",
        &["subcommand:string", "arg:string*"],
    ),
    spec(
        "command",
        -1,
        &["loading", "stale"],
        NO_KEYS,
        &["@slow", "@connection"],
        "server",
        "2.8.13",
        "Get array of Redis command details",
        &["subcommand:string?", "arg:string*"],
    ),
    spec(
        "config",
        -2,
        &["noscript", "loading", "stale"],
        NO_KEYS,
        &["@slow"],
        "server",
        "2.0.0",
        "A container for server configuration commands (GET only)",
        &["subcommand:string", "parameter:string"],
    ),
    spec(
        "copy",
        -3,
        W,
        TWO_KEYS,
        KEYSPACE_WRITE_SLOW,
        "generic",
        "6.2.0",
        "Copy a key",
        &["source:key", "destination:key", "db:integer?", "replace:pure-token?"],
    ),
    spec(
        "dbsize",
        1,
        RO,
        NO_KEYS,
        KEYSPACE_READ,
        "server",
        "1.0.0",
        "Return the number of keys in the selected database",
        &[],
    ),
    spec(
        "decr",
        2,
        W_FAST,
        ONE_KEY,
        STRING_WRITE_FAST,
        "string",
        "1.0.0",
        "Decrement the integer value of a key by one",
        &["key:key"],
    ),
    spec(
        "decrby",
        3,
        W_FAST,
        ONE_KEY,
        STRING_WRITE_FAST,
        "string",
        "1.0.0",
        "Decrement the integer value of a key by the given number",
        &["key:key", "decrement:integer"],
    ),
    spec("del", -2, W_DEL, ALL_KEYS, KEYSPACE_WRITE_SLOW, "generic", "1.0.0", "Delete a key", &["key:key*"]),
    spec(
        "discard",
        1,
        TX,
        NO_KEYS,
        TRANSACTION,
        "transactions",
        "2.0.0",
        "Discard all commands issued after MULTI",
        &[],
    ),
    spec("echo", 2, CONN, NO_KEYS, CONNECTION, "connection", "1.0.0", "Echo the given string", &["message:string"]),
    spec(
        "exec",
        1,
        &["noscript", "loading", "stale", "skip_slowlog"],
        NO_KEYS,
        &["@slow", "@transaction"],
        "transactions",
        "1.2.0",
        "Execute all commands issued after MULTI",
        &[],
    ),
    spec("exists", -2, RO, ALL_KEYS, KEYSPACE_READ, "generic", "1.0.0", "Determine if a key exists", &["key:key*"]),
    spec(
        "expire",
        -3,
        W_DEL_FAST,
        ONE_KEY,
        KEYSPACE_WRITE,
        "generic",
        "1.0.0",
        "Set a key's time to live in seconds",
        &["key:key", "seconds:integer", "condition:oneof?"],
    ),
    spec(
        "expireat",
        -3,
        W_DEL_FAST,
        ONE_KEY,
        KEYSPACE_WRITE,
        "generic",
        "1.2.0",
        "Set the expiration for a key as a UNIX timestamp",
        &["key:key", "unix-time-seconds:unix-time", "condition:oneof?"],
    ),
    spec(
        "expiretime",
        2,
        RO,
        ONE_KEY,
        KEYSPACE_READ,
        "generic",
        "7.0.0",
        "Get the expiration Unix timestamp for a key",
        &["key:key"],
    ),
    spec(
        "flushall",
        -1,
        &["write"],
        NO_KEYS,
        &["@keyspace", "@write", "@slow", "@dangerous"],
        "server",
        "1.0.0",
        "Remove all keys from all databases",
        &["flush-type:oneof?"],
    ),
    spec(
        "flushdb",
        -1,
        &["write"],
        NO_KEYS,
        &["@keyspace", "@write", "@slow", "@dangerous"],
        "server",
        "1.0.0",
        "Remove all keys from the current database",
        &["flush-type:oneof?"],
    ),
    spec("get", 2, RO, ONE_KEY, STRING_READ, "string", "1.0.0", "Get the value of a key", &["key:key"]),
    spec(
        "getdel",
        2,
        W_DEL_FAST,
        ONE_KEY,
        STRING_WRITE_FAST,
        "string",
        "6.2.0",
        "Get the value of a key and delete the key",
        &["key:key"],
    ),
    spec(
        "getex",
        -2,
        W_FAST,
        ONE_KEY,
        STRING_WRITE_FAST,
        "string",
        "6.2.0",
        "Get the value of a key and optionally set its expiration",
        &["key:key", "expiration:oneof?"],
    ),
    spec(
        "getrange",
        4,
        RO_SLOW,
        ONE_KEY,
        &["@read", "@string", "@slow"],
        "string",
        "2.4.0",
        "Get a substring of the string stored at a key",
        &["key:key", "start:integer", "end:integer"],
    ),
    spec(
        "getset",
        3,
        W_FAST,
        ONE_KEY,
        STRING_WRITE_FAST,
        "string",
        "1.0.0",
        "Set the string value of a key and return its old value",
        &["key:key", "value:string"],
    ),
    spec(
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        NO_KEYS,
        CONNECTION,
        "connection",
        "6.0.0",
        "Handshake with Redis",
        &["protover:integer?", "username:string?", "password:string?", "clientname:string?"],
    ),
    spec(
        "incr",
        2,
        W_FAST,
        ONE_KEY,
        STRING_WRITE_FAST,
        "string",
        "1.0.0",
        "Increment the integer value of a key by one",
        &["key:key"],
    ),
    spec(
        "incrby",
        3,
        W_FAST,
        ONE_KEY,
        STRING_WRITE_FAST,
        "string",
        "1.0.0",
        "Increment the integer value of a key by the given amount",
        &["key:key", "increment:integer"],
    ),
    spec(
        "incrbyfloat",
        3,
        W_FAST,
        ONE_KEY,
        STRING_WRITE_FAST,
        "string",
        "2.6.0",
        "Increment the float value of a key by the given amount",
        &["key:key", "increment:double"],
    ),
    spec(
        "info",
        -1,
        &["loading", "stale"],
        NO_KEYS,
        &["@slow", "@dangerous"],
        "server",
        "1.0.0",
        "Get information and statistics about the server",
        &["section:string*"],
    ),
    spec(
        "keys",
        2,
        RO_SLOW,
        NO_KEYS,
        &["@keyspace", "@read", "@slow", "@dangerous"],
        "generic",
        "1.0.0",
        "Find all keys matching the given pattern",
        &["pattern:pattern"],
    ),
    spec(
        "mget",
        -2,
        RO,
        ALL_KEYS,
        STRING_READ,
        "string",
        "1.0.0",
        "Get the values of all the given keys",
        &["key:key*"],
    ),
    spec(
        "mset",
        -3,
        W,
        PAIRS,
        STRING_WRITE,
        "string",
        "1.0.1",
        "Set multiple keys to multiple values",
        &["key:key", "value:string", "data:block*"],
    ),
    spec(
        "msetnx",
        -3,
        W,
        PAIRS,
        STRING_WRITE,
        "string",
        "1.0.1",
        "Set multiple keys to multiple values, only if none of the keys exist",
        &["key:key", "value:string", "data:block*"],
    ),
    spec("multi", 1, TX, NO_KEYS, TRANSACTION, "transactions", "1.2.0", "Mark the start of a transaction block", &[]),
    spec(
        "persist",
        2,
        W_DEL_FAST,
        ONE_KEY,
        KEYSPACE_WRITE,
        "generic",
        "2.2.0",
        "Remove the expiration from a key",
        &["key:key"],
    ),
    spec(
        "pexpire",
        -3,
        W_DEL_FAST,
        ONE_KEY,
        KEYSPACE_WRITE,
        "generic",
        "2.6.0",
        "Set a key's time to live in milliseconds",
        &["key:key", "milliseconds:integer", "condition:oneof?"],
    ),
    spec(
        "pexpireat",
        -3,
        W_DEL_FAST,
        ONE_KEY,
        KEYSPACE_WRITE,
        "generic",
        "2.6.0",
        "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
        &["key:key", "unix-time-milliseconds:unix-time", "condition:oneof?"],
    ),
    spec(
        "pexpiretime",
        2,
        RO,
        ONE_KEY,
        KEYSPACE_READ,
        "generic",
        "7.0.0",
        "Get the expiration Unix timestamp for a key in milliseconds",
        &["key:key"],
    ),
    spec(
        "ping",
        -1,
        &["fast", "sentinel"],
        NO_KEYS,
        CONNECTION,
        "connection",
        "1.0.0",
        "Ping the server",
        &["message:string?"],
    ),
    spec(
        "psetex",
        4,
        W,
        ONE_KEY,
        STRING_WRITE,
        "string",
        "2.6.0",
        "Set the value and expiration in milliseconds of a key",
        &["key:key", "milliseconds:integer", "value:string"],
    ),
    spec(
        "pttl",
        2,
        RO,
        ONE_KEY,
        KEYSPACE_READ,
        "generic",
        "2.6.0",
        "Get the time to live for a key in milliseconds",
        &["key:key"],
    ),
    spec(
        "quit",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        NO_KEYS,
        CONNECTION,
        "connection",
        "1.0.0",
        "Close the connection",
        &[],
    ),
    spec(
        "randomkey",
        1,
        RO_SLOW,
        NO_KEYS,
        KEYSPACE_SLOW,
        "generic",
        "1.0.0",
        "Return a random key from the keyspace",
        &[],
    ),
    spec(
        "rename",
        3,
        W_DEL,
        TWO_KEYS,
        KEYSPACE_WRITE_SLOW,
        "generic",
        "1.0.0",
        "Rename a key",
        &["key:key", "newkey:key"],
    ),
    spec(
        "renamenx",
        3,
        W_DEL_FAST,
        TWO_KEYS,
        KEYSPACE_WRITE,
        "generic",
        "1.0.0",
        "Rename a key, only if the new key does not exist",
        &["key:key", "newkey:key"],
    ),
    spec(
        "scan",
        -2,
        RO_SLOW,
        NO_KEYS,
        KEYSPACE_SLOW,
        "generic",
        "2.8.0",
        "Incrementally iterate the keys space",
        &["cursor:integer", "pattern:pattern?", "count:integer?", "type:string?"],
    ),
    spec(
        "select",
        2,
        CONN,
        NO_KEYS,
        CONNECTION,
        "connection",
        "2.0.0",
        "Change the selected database for the current connection (only 0)",
        &["index:integer"],
    ),
    spec(
        "set",
        -3,
        W,
        ONE_KEY,
        STRING_WRITE,
        "string",
        "1.0.0",
        "Set the string value of a key",
        &["key:key", "value:string", "condition:oneof?", "get:pure-token?", "expiration:oneof?"],
    ),
    spec(
        "setex",
        4,
        W,
        ONE_KEY,
        STRING_WRITE,
        "string",
        "2.0.0",
        "Set the value and expiration of a key",
        &["key:key", "seconds:integer", "value:string"],
    ),
    spec(
        "setnx",
        3,
        W_FAST,
        ONE_KEY,
        STRING_WRITE_FAST,
        "string",
        "1.0.0",
        "Set the value of a key, only if the key does not exist",
        &["key:key", "value:string"],
    ),
    spec(
        "setrange",
        4,
        W,
        ONE_KEY,
        STRING_WRITE,
        "string",
        "2.2.0",
        "Overwrite part of a string at key starting at the specified offset",
        &["key:key", "offset:integer", "value:string"],
    ),
    spec(
        "strlen",
        2,
        RO,
        ONE_KEY,
        STRING_READ,
        "string",
        "2.2.0",
        "Get the length of the value stored in a key",
        &["key:key"],
    ),
    spec(
        "time",
        1,
        &["loading", "stale", "fast"],
        NO_KEYS,
        &["@fast"],
        "server",
        "2.6.0",
        "Return the current server time",
        &[],
    ),
    spec(
        "ttl",
        2,
        RO,
        ONE_KEY,
        KEYSPACE_READ,
        "generic",
        "1.0.0",
        "Get the time to live for a key in seconds",
        &["key:key"],
    ),
    spec("type", 2, RO, ONE_KEY, KEYSPACE_READ, "generic", "1.0.0", "Determine the type stored at key", &["key:key"]),
    spec(
        "unlink",
        -2,
        W_DEL_FAST,
        ALL_KEYS,
        KEYSPACE_WRITE,
        "generic",
        "4.0.0",
        "Delete a key asynchronously in another thread",
        &["key:key*"],
    ),
    spec("unwatch", 1, TX, NO_KEYS, TRANSACTION, "transactions", "2.2.0", "Forget about all watched keys", &[]),
    spec(
        "watch",
        -2,
        TX,
        ALL_KEYS,
        TRANSACTION,
        "transactions",
        "2.2.0",
        "Watch the given keys to determine execution of the MULTI/EXEC block",
        &["key:key*"],
    ),
];

/// The subcommands served, `container|subcommand` as Redis names them in
/// `CLIENT LIST`'s `cmd=` field and its errors.
pub const SUBCOMMANDS: &[&str] = &[
    "client|getname",
    "client|id",
    "client|info",
    "client|kill",
    "client|list",
    "client|setinfo",
    "client|setname",
    "command|count",
    "command|docs",
    "command|info",
    "command|list",
    "config|get",
];

/// The full name of the command `args` (name first): `client|info` for a
/// known subcommand of a container command, else the table name `spec`.
pub fn full_name(spec: &'static CommandSpec, args: &[bytes::Bytes]) -> &'static str {
    let Some(sub) = args.get(1) else { return spec.name };
    SUBCOMMANDS
        .iter()
        .find(|full| {
            full.split_once('|')
                .is_some_and(|(container, name)| container == spec.name && name.as_bytes().eq_ignore_ascii_case(sub))
        })
        .copied()
        .unwrap_or(spec.name)
}

/// The spec of `name` (case-insensitive).
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Does `argc` words (name included) satisfy `arity`?
pub fn arity_ok(arity: i64, argc: usize) -> bool {
    let argc = argc as i64;
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique() {
        for pair in COMMANDS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} then {}", pair[0].name, pair[1].name);
        }
    }

    #[test]
    fn arity_counts_the_name() {
        assert!(arity_ok(2, 2));
        assert!(!arity_ok(2, 3));
        assert!(arity_ok(-3, 3) && arity_ok(-3, 9) && !arity_ok(-3, 2));
        assert_eq!(lookup(b"GeT").map(|s| s.arity), Some(2));
        assert!(lookup(b"nope").is_none());
    }

    #[test]
    fn subcommands_have_their_full_name() {
        let words =
            |texts: &[&str]| texts.iter().map(|t| bytes::Bytes::copy_from_slice(t.as_bytes())).collect::<Vec<_>>();
        let client = lookup(b"client").unwrap();
        assert_eq!(full_name(client, &words(&["CLIENT", "Info"])), "client|info");
        assert_eq!(full_name(client, &words(&["client", "nosuch"])), "client");
        assert_eq!(full_name(lookup(b"get").unwrap(), &words(&["get", "info"])), "get");
        for full in SUBCOMMANDS {
            let (container, _) = full.split_once('|').unwrap();
            assert!(lookup(container.as_bytes()).is_some(), "{full}");
        }
    }
}
