//! The command table's rows. The protocol facts (names, arity, flags, key
//! positions, ACL categories, tips, key specs, argument names, types,
//! tokens, `since` and flags) are Redis 7.0's, and `tests/redis_compat`
//! checks them against its recorded replies; the prose is our own.

use super::{Arg, ArgKind, CommandSpec, KeySpec};

// Command flags, in Redis's order.
const READ: &[&str] = &["readonly"];
const READ_FAST: &[&str] = &["readonly", "fast"];
const WRITE: &[&str] = &["write"];
const WRITE_FAST: &[&str] = &["write", "fast"];
const WRITE_GROW: &[&str] = &["write", "denyoom"];
const WRITE_GROW_FAST: &[&str] = &["write", "denyoom", "fast"];
const ANY_STATE_FAST: &[&str] = &["loading", "stale", "fast"];
const NO_SCRIPT: &[&str] = &["noscript", "loading", "stale"];
const NO_SCRIPT_ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];
const TRANSACTION_FLAGS: &[&str] = &["noscript", "loading", "stale", "fast", "allow_busy"];
const BEFORE_AUTH: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"];

// ACL categories.
const STRING_READ: &[&str] = &["@read", "@string", "@fast"];
const STRING_READ_SLOW: &[&str] = &["@read", "@string", "@slow"];
const STRING_WRITE: &[&str] = &["@write", "@string", "@slow"];
const STRING_WRITE_FAST: &[&str] = &["@write", "@string", "@fast"];
const KEYSPACE_READ: &[&str] = &["@keyspace", "@read", "@fast"];
const KEYSPACE_READ_SLOW: &[&str] = &["@keyspace", "@read", "@slow"];
const KEYSPACE_WRITE: &[&str] = &["@keyspace", "@write", "@fast"];
const KEYSPACE_WRITE_SLOW: &[&str] = &["@keyspace", "@write", "@slow"];
const KEYSPACE_DANGEROUS: &[&str] = &["@keyspace", "@write", "@slow", "@dangerous"];
const CONNECTION: &[&str] = &["@fast", "@connection"];
const CONNECTION_SLOW: &[&str] = &["@slow", "@connection"];
const CONNECTION_ADMIN: &[&str] = &["@admin", "@slow", "@dangerous", "@connection"];
const TRANSACTION: &[&str] = &["@fast", "@transaction"];

// Key positions (first, last, step).
const ONE_KEY: (i64, i64, i64) = (1, 1, 1);
const TWO_KEYS: (i64, i64, i64) = (1, 2, 1);
const ALL_KEYS: (i64, i64, i64) = (1, -1, 1);
const EVERY_OTHER_KEY: (i64, i64, i64) = (1, -1, 2);

// Key-spec flags: what happens to the key's value, then to the key.
const RO: &[&str] = &["RO"];
const RO_ACCESS: &[&str] = &["RO", "access"];
const RW_ACCESS_UPDATE: &[&str] = &["RW", "access", "update"];
const RW_ACCESS_DELETE: &[&str] = &["RW", "access", "delete"];
const RW_UPDATE: &[&str] = &["RW", "update"];
const OW_UPDATE: &[&str] = &["OW", "update"];
const OW_INSERT: &[&str] = &["OW", "insert"];
const RM_DELETE: &[&str] = &["RM", "delete"];

// Tips.
const ALL_SHARDS_SUM: &[&str] = &["request_policy:all_shards", "response_policy:agg_sum"];
const ALL_SHARDS_SUCCEED: &[&str] = &["request_policy:all_shards", "response_policy:all_succeeded"];
const PER_SHARD_SUM: &[&str] = &["request_policy:multi_shard", "response_policy:agg_sum"];
const VARIES: &[&str] = &["nondeterministic_output"];
const ORDER_VARIES: &[&str] = &["nondeterministic_output_order"];

const O_1: &str = "O(1)";

// Arguments shared by several commands.
const KEY: &[Arg] = &[Arg::key("key", 0)];
const KEYS: &[Arg] = &[Arg::key("key", 0).multiple()];
const KEY_VALUE: &[Arg] = &[Arg::key("key", 0), Arg::new("value", ArgKind::String)];
const KEY_VALUE_PAIRS: &[Arg] =
    &[Arg::new("key_value", ArgKind::Block(&[Arg::key("key", 0), Arg::new("value", ArgKind::String)])).multiple()];
const RENAME_ARGS: &[Arg] = &[Arg::key("key", 0), Arg::key("newkey", 1)];
const EXPIRY_CONDITION: Arg = Arg::new(
    "condition",
    ArgKind::OneOf(&[
        Arg::pure_token("nx", "NX"),
        Arg::pure_token("xx", "XX"),
        Arg::pure_token("gt", "GT"),
        Arg::pure_token("lt", "LT"),
    ]),
)
.since("7.0.0")
.optional();
const FLUSH_MODE: &[Arg] = &[Arg::new(
    "async",
    ArgKind::OneOf(&[Arg::pure_token("async", "ASYNC").since("4.0.0"), Arg::pure_token("sync", "SYNC").since("6.2.0")]),
)
.optional()];
const COMMAND_NAMES: &[Arg] = &[Arg::new("command-name", ArgKind::String).optional().multiple()];

const EXPIRY_CONDITIONS_ADDED: &[(&str, &str)] = &[("7.0.0", "The `NX`, `XX`, `GT` and `LT` conditions.")];
const FLUSH_MODES_ADDED: &[(&str, &str)] = &[("4.0.0", "The `ASYNC` mode."), ("6.2.0", "The `SYNC` mode.")];
const MISSING_KEY_REPLY: &[(&str, &str)] = &[("2.8.0", "Answers -2 for a missing key (and still -1 for no expiry).")];

const CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("client|getname", 2, NO_SCRIPT, CONNECTION_SLOW).docs(
        "Return the name this connection was given",
        "2.6.9",
        "connection",
        O_1,
        &[],
    ),
    CommandSpec::new("client|getredir", 2, NO_SCRIPT, CONNECTION_SLOW).docs(
        "Return the connection this one's tracking invalidations go to: -1, none (tracking is not served)",
        "6.0.0",
        "connection",
        O_1,
        &[],
    ),
    CommandSpec::new("client|help", 2, &["loading", "stale"], CONNECTION_SLOW).docs(
        "List the CLIENT subcommands, each with what it does",
        "5.0.0",
        "connection",
        O_1,
        &[],
    ),
    CommandSpec::new("client|id", 2, NO_SCRIPT, CONNECTION_SLOW).docs(
        "Return this connection's unique id",
        "5.0.0",
        "connection",
        O_1,
        &[],
    ),
    CommandSpec::new("client|info", 2, NO_SCRIPT, CONNECTION_SLOW).tips(VARIES).docs(
        "Describe this connection, in the format of a CLIENT LIST line",
        "6.2.0",
        "connection",
        O_1,
        &[],
    ),
    CommandSpec::new("client|kill", -3, NO_SCRIPT_ADMIN, CONNECTION_ADMIN)
        .docs(
            "Close the connections that match a filter",
            "2.4.0",
            "connection",
            "O(N) in the number of open connections",
            &[Arg::new(
                "filter",
                ArgKind::OneOf(&[
                    Arg::new("ip:port", ArgKind::String).deprecated_since("2.8.12"),
                    Arg::new(
                        "new-format",
                        ArgKind::OneOf(&[
                            Arg::new("client-id", ArgKind::Integer).token("ID").since("2.8.12").optional(),
                            Arg::new(
                                "normal_master_slave_pubsub",
                                ArgKind::OneOf(&[
                                    Arg::pure_token("normal", "NORMAL"),
                                    Arg::pure_token("master", "MASTER").since("3.2.0"),
                                    Arg::pure_token("slave", "SLAVE"),
                                    Arg::pure_token("replica", "REPLICA").since("5.0.0"),
                                    Arg::pure_token("pubsub", "PUBSUB"),
                                ]),
                            )
                            .token("TYPE")
                            .since("2.8.12")
                            .optional(),
                            Arg::new("username", ArgKind::String).token("USER").optional(),
                            Arg::new("ip:port", ArgKind::String).token("ADDR").optional(),
                            Arg::new("ip:port", ArgKind::String).token("LADDR").since("6.2.0").optional(),
                            Arg::new("yes/no", ArgKind::String).token("SKIPME").optional(),
                        ]),
                    )
                    .multiple(),
                ]),
            )],
        )
        .history(&[
            ("2.8.12", "Filters given as option/value pairs, besides the single address of old."),
            ("2.8.12", "The `ID` filter."),
            ("3.2.0", "`TYPE` accepts `master`."),
            ("5.0.0", "`TYPE` accepts `replica`, the new name of `slave` (which still works)."),
            ("6.2.0", "The `LADDR` filter."),
        ]),
    CommandSpec::new("client|list", -2, NO_SCRIPT_ADMIN, CONNECTION_ADMIN)
        .tips(VARIES)
        .docs(
            "List the open connections, one line each",
            "2.4.0",
            "connection",
            "O(N) in the number of open connections",
            &[
                Arg::new(
                    "normal_master_replica_pubsub",
                    ArgKind::OneOf(&[
                        Arg::pure_token("normal", "NORMAL"),
                        Arg::pure_token("master", "MASTER"),
                        Arg::pure_token("replica", "REPLICA"),
                        Arg::pure_token("pubsub", "PUBSUB"),
                    ]),
                )
                .token("TYPE")
                .since("5.0.0")
                .optional(),
                Arg::new("id", ArgKind::Block(&[Arg::new("client-id", ArgKind::Integer).multiple()]))
                    .token("ID")
                    .since("6.2.0")
                    .optional(),
            ],
        )
        .history(&[
            ("2.8.12", "Each line has the connection's `id`."),
            ("5.0.0", "The `TYPE` filter."),
            ("6.0.0", "Each line has the `user` field."),
            ("6.2.0", "The `argv-mem`, `tot-mem`, `laddr` and `redir` fields, and the `ID` filter."),
            ("7.0.0", "The `resp`, `multi-mem`, `rbs` and `rbp` fields."),
            ("7.0.3", "The `ssub` field."),
        ]),
    CommandSpec::new("client|no-evict", 3, NO_SCRIPT_ADMIN, CONNECTION_ADMIN).docs(
        "Exempt this connection from client eviction, or not (accepted: paxoskv never evicts a client)",
        "7.0.0",
        "connection",
        O_1,
        &[Arg::new("enabled", ArgKind::OneOf(&[Arg::pure_token("on", "ON"), Arg::pure_token("off", "OFF")]))],
    ),
    CommandSpec::new("client|reply", 3, NO_SCRIPT, CONNECTION_SLOW).docs(
        "Answer every later command, none (OFF, until ON), or all but the next one (SKIP)",
        "3.2.0",
        "connection",
        O_1,
        &[Arg::new(
            "on_off_skip",
            ArgKind::OneOf(&[
                Arg::pure_token("on", "ON"),
                Arg::pure_token("off", "OFF"),
                Arg::pure_token("skip", "SKIP"),
            ]),
        )],
    ),
    // Redis 7.2's subcommand (redis-py sends it on connect).
    CommandSpec::new("client|setinfo", 4, NO_SCRIPT, CONNECTION_SLOW).docs(
        "Record the name or version of the client library, for CLIENT LIST",
        "7.2.0",
        "connection",
        O_1,
        &[Arg::new(
            "attr",
            ArgKind::OneOf(&[
                Arg::new("libname", ArgKind::String).token("lib-name"),
                Arg::new("libver", ArgKind::String).token("lib-ver"),
            ]),
        )],
    ),
    CommandSpec::new("client|setname", 3, NO_SCRIPT, CONNECTION_SLOW).docs(
        "Give this connection a name",
        "2.6.9",
        "connection",
        O_1,
        &[Arg::new("connection-name", ArgKind::String)],
    ),
    CommandSpec::new("client|unblock", -3, NO_SCRIPT_ADMIN, CONNECTION_ADMIN).docs(
        "Unblock a connection blocked in a blocking command: 0, as no command blocks here",
        "5.0.0",
        "connection",
        O_1,
        &[
            Arg::new("client-id", ArgKind::Integer),
            Arg::new(
                "timeout_error",
                ArgKind::OneOf(&[Arg::pure_token("timeout", "TIMEOUT"), Arg::pure_token("error", "ERROR")]),
            )
            .optional(),
        ],
    ),
    CommandSpec::new("client|unpause", 2, NO_SCRIPT_ADMIN, CONNECTION_ADMIN).docs(
        "Resume paused connections (accepted: CLIENT PAUSE is not served, so none is paused)",
        "6.2.0",
        "connection",
        O_1,
        &[],
    ),
];

const COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("command|count", 2, &["loading", "stale"], CONNECTION_SLOW).docs(
        "Return how many commands the server serves",
        "2.8.13",
        "server",
        O_1,
        &[],
    ),
    CommandSpec::new("command|docs", -2, &["loading", "stale"], CONNECTION_SLOW).tips(ORDER_VARIES).docs(
        "Return the documentation of the named commands, or of all",
        "7.0.0",
        "server",
        "O(N) in the number of commands described",
        COMMAND_NAMES,
    ),
    CommandSpec::new("command|help", 2, &["loading", "stale"], CONNECTION_SLOW).docs(
        "List the COMMAND subcommands, each with what it does",
        "5.0.0",
        "server",
        O_1,
        &[],
    ),
    CommandSpec::new("command|info", -2, &["loading", "stale"], CONNECTION_SLOW)
        .tips(ORDER_VARIES)
        .docs(
            "Describe the named commands, or all of them",
            "2.8.13",
            "server",
            "O(N) in the number of commands described",
            COMMAND_NAMES,
        )
        .history(&[("7.0.0", "With no names, describes every command.")]),
    CommandSpec::new("command|list", -2, &["loading", "stale"], CONNECTION_SLOW).tips(ORDER_VARIES).docs(
        "List the names of the commands, all or those a filter selects",
        "7.0.0",
        "server",
        "O(N) in the number of commands",
        &[Arg::new(
            "filterby",
            ArgKind::OneOf(&[
                Arg::new("module-name", ArgKind::String).token("MODULE"),
                Arg::new("category", ArgKind::String).token("ACLCAT"),
                Arg::new("pattern", ArgKind::Pattern).token("PATTERN"),
            ]),
        )
        .token("FILTERBY")
        .optional()],
    ),
];

const CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("config|get", -3, NO_SCRIPT_ADMIN, &["@admin", "@slow", "@dangerous"])
        .docs(
            "Return the configuration parameters whose names match glob patterns",
            "2.0.0",
            "server",
            "O(N) in the number of parameters asked for",
            &[Arg::new("parameter", ArgKind::Block(&[Arg::new("parameter", ArgKind::String)])).multiple()],
        )
        .history(&[("7.0.0", "Takes several patterns in one call.")]),
    CommandSpec::new("config|help", 2, &["loading", "stale"], CONNECTION_SLOW).docs(
        "List the CONFIG subcommands, each with what it does",
        "5.0.0",
        "server",
        O_1,
        &[],
    ),
];

const MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("memory|help", 2, &["loading", "stale"], CONNECTION_SLOW).docs(
        "List the MEMORY subcommands, each with what it does",
        "4.0.0",
        "server",
        O_1,
        &[],
    ),
    CommandSpec::new("memory|usage", -3, READ, KEYSPACE_READ_SLOW).keys((2, 2, 1), &[KeySpec::at(2, RO)]).docs(
        "Estimate the bytes a key and its value take: both, and the key's place in the key table and order",
        "4.0.0",
        "server",
        O_1,
        &[Arg::key("key", 0), Arg::new("count", ArgKind::Integer).token("SAMPLES").optional()],
    ),
];

const OBJECT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("object|encoding", 3, READ, KEYSPACE_READ_SLOW).keys((2, 2, 1), &[KeySpec::at(2, RO)]).docs(
        "Say how a key's value is kept: raw (every value is kept as its bytes)",
        "2.2.3",
        "generic",
        O_1,
        KEY,
    ),
    CommandSpec::new("object|help", 2, &["loading", "stale"], CONNECTION_SLOW).docs(
        "List the OBJECT subcommands, each with what it does",
        "6.2.0",
        "generic",
        O_1,
        &[],
    ),
];

/// Every command, sorted by name.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("append", 3, WRITE_GROW_FAST, STRING_WRITE_FAST)
        .keys(ONE_KEY, &[KeySpec::at(1, &["RW", "insert"])])
        .docs(
            "Add a string to the end of a key's value, creating the key if it is missing",
            "2.0.0",
            "string",
            "O(1) amortized: the value's buffer grows geometrically, so appending a short string costs \
             the same whatever the length already stored",
            KEY_VALUE,
        ),
    CommandSpec::new("auth", -2, BEFORE_AUTH, CONNECTION)
        .docs(
            "Log the connection in with a password, and optionally a user name",
            "1.0.0",
            "connection",
            "O(N) in the number of passwords the user has",
            &[Arg::new("username", ArgKind::String).since("6.0.0").optional(), Arg::new("password", ArgKind::String)],
        )
        .history(&[("6.0.0", "A user name may come before the password, for ACL users.")]),
    CommandSpec::new("client", -2, &[], &["@slow"]).subcommands(CLIENT_SUBCOMMANDS).docs(
        "Inspect and manage client connections (see the subcommands)",
        "2.4.0",
        "connection",
        "That of the subcommand.",
        &[],
    ),
    CommandSpec::new("command", -1, &["loading", "stale"], CONNECTION_SLOW)
        .tips(ORDER_VARIES)
        .subcommands(COMMAND_SUBCOMMANDS)
        .docs("Describe every command the server serves", "2.8.13", "server", "O(N) in the number of commands", &[]),
    CommandSpec::new("config", -2, &[], &["@slow"]).subcommands(CONFIG_SUBCOMMANDS).docs(
        "Read the server's configuration (see the subcommands)",
        "2.0.0",
        "server",
        "That of the subcommand.",
        &[],
    ),
    CommandSpec::new("copy", -3, WRITE_GROW, KEYSPACE_WRITE_SLOW)
        .keys(TWO_KEYS, &[KeySpec::at(1, RO_ACCESS), KeySpec::at(2, OW_UPDATE)])
        .docs(
            "Copy a key's value, and its expiry, to another key",
            "6.2.0",
            "generic",
            "O(1) for a string; O(N) in the number of elements for a collection",
            &[
                Arg::key("source", 0),
                Arg::key("destination", 1),
                Arg::new("destination-db", ArgKind::Integer).token("DB").optional(),
                Arg::pure_token("replace", "REPLACE").optional(),
            ],
        ),
    CommandSpec::new("dbsize", 1, READ_FAST, KEYSPACE_READ).tips(ALL_SHARDS_SUM).docs(
        "Return how many keys the database holds",
        "1.0.0",
        "server",
        O_1,
        &[],
    ),
    CommandSpec::new("decr", 2, WRITE_GROW_FAST, STRING_WRITE_FAST)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_ACCESS_UPDATE)])
        .docs("Subtract one from the integer stored at a key", "1.0.0", "string", O_1, KEY),
    CommandSpec::new("decrby", 3, WRITE_GROW_FAST, STRING_WRITE_FAST)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_ACCESS_UPDATE)])
        .docs(
            "Subtract an amount from the integer stored at a key",
            "1.0.0",
            "string",
            O_1,
            &[Arg::key("key", 0), Arg::new("decrement", ArgKind::Integer)],
        ),
    CommandSpec::new("del", -2, WRITE, KEYSPACE_WRITE_SLOW)
        .keys(ALL_KEYS, &[KeySpec::range(1, RM_DELETE, -1, 1)])
        .tips(PER_SHARD_SUM)
        .docs(
            "Remove keys",
            "1.0.0",
            "generic",
            "O(N) in the number of keys removed: O(1) for each string, O(M) in its elements for a collection",
            KEYS,
        ),
    CommandSpec::new("discard", 1, TRANSACTION_FLAGS, TRANSACTION).docs(
        "Drop the commands queued since MULTI and leave the transaction",
        "2.0.0",
        "transactions",
        "O(N) in the number of queued commands",
        &[],
    ),
    CommandSpec::new("echo", 2, ANY_STATE_FAST, CONNECTION).docs(
        "Return the message sent",
        "1.0.0",
        "connection",
        O_1,
        &[Arg::new("message", ArgKind::String)],
    ),
    CommandSpec::new("exec", 1, &["noscript", "loading", "stale", "skip_slowlog"], &["@slow", "@transaction"]).docs(
        "Run the commands queued since MULTI, all at once",
        "1.2.0",
        "transactions",
        "The sum of the queued commands' costs",
        &[],
    ),
    CommandSpec::new("exists", -2, READ_FAST, KEYSPACE_READ)
        .keys(ALL_KEYS, &[KeySpec::range(1, RO, -1, 1)])
        .tips(PER_SHARD_SUM)
        .docs("Count how many of the given keys exist", "1.0.0", "generic", "O(N) in the number of keys given", KEYS)
        .history(&[("3.0.3", "Takes several keys.")]),
    CommandSpec::new("expire", -3, WRITE_FAST, KEYSPACE_WRITE)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_UPDATE)])
        .docs(
            "Make a key expire after a number of seconds",
            "1.0.0",
            "generic",
            O_1,
            &[Arg::key("key", 0), Arg::new("seconds", ArgKind::Integer), EXPIRY_CONDITION],
        )
        .history(EXPIRY_CONDITIONS_ADDED),
    CommandSpec::new("expireat", -3, WRITE_FAST, KEYSPACE_WRITE)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_UPDATE)])
        .docs(
            "Make a key expire at a Unix time given in seconds",
            "1.2.0",
            "generic",
            O_1,
            &[Arg::key("key", 0), Arg::new("unix-time-seconds", ArgKind::UnixTime), EXPIRY_CONDITION],
        )
        .history(EXPIRY_CONDITIONS_ADDED),
    CommandSpec::new("expiretime", 2, READ_FAST, KEYSPACE_READ).keys(ONE_KEY, &[KeySpec::at(1, RO_ACCESS)]).docs(
        "Return the Unix time, in seconds, at which a key expires",
        "7.0.0",
        "generic",
        O_1,
        KEY,
    ),
    CommandSpec::new("flushall", -1, WRITE, KEYSPACE_DANGEROUS)
        .tips(ALL_SHARDS_SUCCEED)
        .docs("Delete every key of every database", "1.0.0", "server", "O(N) in the number of keys", FLUSH_MODE)
        .history(FLUSH_MODES_ADDED),
    CommandSpec::new("flushdb", -1, WRITE, KEYSPACE_DANGEROUS)
        .tips(ALL_SHARDS_SUCCEED)
        .docs(
            "Delete every key of the connection's database",
            "1.0.0",
            "server",
            "O(N) in the number of keys in the database",
            FLUSH_MODE,
        )
        .history(FLUSH_MODES_ADDED),
    CommandSpec::new("get", 2, READ_FAST, STRING_READ).keys(ONE_KEY, &[KeySpec::at(1, RO_ACCESS)]).docs(
        "Return the string stored at a key",
        "1.0.0",
        "string",
        O_1,
        KEY,
    ),
    CommandSpec::new("getdel", 2, WRITE_FAST, STRING_WRITE_FAST)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_ACCESS_DELETE)])
        .docs("Return the string stored at a key and delete the key", "6.2.0", "string", O_1, KEY),
    CommandSpec::new("getex", -2, WRITE_FAST, STRING_WRITE_FAST)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_ACCESS_UPDATE).notes("A write (RW, update): the options change the expiry")])
        .docs(
            "Return the string stored at a key, optionally changing or removing its expiry",
            "6.2.0",
            "string",
            O_1,
            &[
                Arg::key("key", 0),
                Arg::new(
                    "expiration",
                    ArgKind::OneOf(&[
                        Arg::new("seconds", ArgKind::Integer).token("EX"),
                        Arg::new("milliseconds", ArgKind::Integer).token("PX"),
                        Arg::new("unix-time-seconds", ArgKind::UnixTime).token("EXAT"),
                        Arg::new("unix-time-milliseconds", ArgKind::UnixTime).token("PXAT"),
                        Arg::pure_token("persist", "PERSIST"),
                    ]),
                )
                .optional(),
            ],
        ),
    CommandSpec::new("getrange", 4, READ, STRING_READ_SLOW).keys(ONE_KEY, &[KeySpec::at(1, RO_ACCESS)]).docs(
        "Return a substring of the string stored at a key",
        "2.4.0",
        "string",
        "O(N) in the length returned (so O(1) for short ranges)",
        &[Arg::key("key", 0), Arg::new("start", ArgKind::Integer), Arg::new("end", ArgKind::Integer)],
    ),
    CommandSpec::new("getset", 3, WRITE_GROW_FAST, STRING_WRITE_FAST)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_ACCESS_UPDATE)])
        .docs("Store a string at a key and return the string it replaced", "1.0.0", "string", O_1, KEY_VALUE)
        .deprecated("6.2.0", "`SET` with its `GET` option"),
    CommandSpec::new("hello", -1, BEFORE_AUTH, CONNECTION)
        .docs(
            "Pick the protocol version, optionally log in and name the connection, and describe the server",
            "6.0.0",
            "connection",
            O_1,
            &[Arg::new(
                "arguments",
                ArgKind::Block(&[
                    Arg::new("protover", ArgKind::Integer),
                    Arg::new(
                        "username_password",
                        ArgKind::Block(&[Arg::new("username", ArgKind::String), Arg::new("password", ArgKind::String)]),
                    )
                    .token("AUTH")
                    .optional(),
                    Arg::new("clientname", ArgKind::String).token("SETNAME").optional(),
                ]),
            )
            .optional()],
        )
        .history(&[("6.2.0", "`protover` may be left out; the reply then describes the connection as it is.")]),
    CommandSpec::new("incr", 2, WRITE_GROW_FAST, STRING_WRITE_FAST)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_ACCESS_UPDATE)])
        .docs("Add one to the integer stored at a key", "1.0.0", "string", O_1, KEY),
    CommandSpec::new("incrby", 3, WRITE_GROW_FAST, STRING_WRITE_FAST)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_ACCESS_UPDATE)])
        .docs(
            "Add an amount to the integer stored at a key",
            "1.0.0",
            "string",
            O_1,
            &[Arg::key("key", 0), Arg::new("increment", ArgKind::Integer)],
        ),
    CommandSpec::new("incrbyfloat", 3, WRITE_GROW_FAST, STRING_WRITE_FAST)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_ACCESS_UPDATE)])
        .docs(
            "Add a floating-point amount to the number stored at a key",
            "2.6.0",
            "string",
            O_1,
            &[Arg::key("key", 0), Arg::new("increment", ArgKind::Double)],
        ),
    CommandSpec::new("info", -1, &["loading", "stale"], &["@slow", "@dangerous"])
        .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"])
        .docs(
            "Report the server's state and statistics, by section",
            "1.0.0",
            "server",
            O_1,
            &[Arg::new("section", ArgKind::String).optional().multiple()],
        )
        .history(&[("7.0.0", "Takes several section names.")]),
    CommandSpec::new("keys", 2, READ, &["@keyspace", "@read", "@slow", "@dangerous"])
        .tips(&["request_policy:all_shards", "nondeterministic_output_order"])
        .docs(
            "Return every key that matches a glob pattern",
            "1.0.0",
            "generic",
            "O(N) in the number of keys in the database (names and pattern taken as short)",
            &[Arg::new("pattern", ArgKind::Pattern)],
        ),
    CommandSpec::new("memory", -2, &[], &["@slow"]).subcommands(MEMORY_SUBCOMMANDS).docs(
        "Inspect the server's memory (see the subcommands)",
        "4.0.0",
        "server",
        "That of the subcommand.",
        &[],
    ),
    CommandSpec::new("mget", -2, READ_FAST, STRING_READ)
        .keys(ALL_KEYS, &[KeySpec::range(1, RO_ACCESS, -1, 1)])
        .tips(&["request_policy:multi_shard"])
        .docs("Return the strings stored at several keys", "1.0.0", "string", "O(N) in the number of keys", KEYS),
    CommandSpec::new("mset", -3, WRITE_GROW, STRING_WRITE)
        .keys(EVERY_OTHER_KEY, &[KeySpec::range(1, OW_UPDATE, -1, 2)])
        .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"])
        .docs(
            "Store strings at several keys at once",
            "1.0.1",
            "string",
            "O(N) in the number of keys",
            KEY_VALUE_PAIRS,
        ),
    CommandSpec::new("msetnx", -3, WRITE_GROW, STRING_WRITE)
        .keys(EVERY_OTHER_KEY, &[KeySpec::range(1, OW_INSERT, -1, 2)])
        .tips(&["request_policy:multi_shard", "response_policy:agg_min"])
        .docs(
            "Store strings at several keys at once, only if none of the keys exists",
            "1.0.1",
            "string",
            "O(N) in the number of keys",
            KEY_VALUE_PAIRS,
        ),
    CommandSpec::new("multi", 1, TRANSACTION_FLAGS, TRANSACTION).docs(
        "Start a transaction: queue the commands that follow until EXEC",
        "1.2.0",
        "transactions",
        O_1,
        &[],
    ),
    CommandSpec::new("object", -2, &[], &["@slow"]).subcommands(OBJECT_SUBCOMMANDS).docs(
        "Inspect a key's value (see the subcommands)",
        "2.2.3",
        "generic",
        "That of the subcommand.",
        &[],
    ),
    CommandSpec::new("persist", 2, WRITE_FAST, KEYSPACE_WRITE).keys(ONE_KEY, &[KeySpec::at(1, RW_UPDATE)]).docs(
        "Remove a key's expiry, so it lives until deleted",
        "2.2.0",
        "generic",
        O_1,
        KEY,
    ),
    CommandSpec::new("pexpire", -3, WRITE_FAST, KEYSPACE_WRITE)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_UPDATE)])
        .docs(
            "Make a key expire after a number of milliseconds",
            "2.6.0",
            "generic",
            O_1,
            &[Arg::key("key", 0), Arg::new("milliseconds", ArgKind::Integer), EXPIRY_CONDITION],
        )
        .history(EXPIRY_CONDITIONS_ADDED),
    CommandSpec::new("pexpireat", -3, WRITE_FAST, KEYSPACE_WRITE)
        .keys(ONE_KEY, &[KeySpec::at(1, RW_UPDATE)])
        .docs(
            "Make a key expire at a Unix time given in milliseconds",
            "2.6.0",
            "generic",
            O_1,
            &[Arg::key("key", 0), Arg::new("unix-time-milliseconds", ArgKind::UnixTime), EXPIRY_CONDITION],
        )
        .history(EXPIRY_CONDITIONS_ADDED),
    CommandSpec::new("pexpiretime", 2, READ_FAST, KEYSPACE_READ).keys(ONE_KEY, &[KeySpec::at(1, RO_ACCESS)]).docs(
        "Return the Unix time, in milliseconds, at which a key expires",
        "7.0.0",
        "generic",
        O_1,
        KEY,
    ),
    CommandSpec::new("ping", -1, &["fast"], CONNECTION).tips(ALL_SHARDS_SUCCEED).docs(
        "Check the connection: the reply is PONG, or the message sent",
        "1.0.0",
        "connection",
        O_1,
        &[Arg::new("message", ArgKind::String).optional()],
    ),
    CommandSpec::new("psetex", 4, WRITE_GROW, STRING_WRITE).keys(ONE_KEY, &[KeySpec::at(1, OW_UPDATE)]).docs(
        "Store a string at a key that expires after a number of milliseconds",
        "2.6.0",
        "string",
        O_1,
        &[Arg::key("key", 0), Arg::new("milliseconds", ArgKind::Integer), Arg::new("value", ArgKind::String)],
    ),
    CommandSpec::new("pttl", 2, READ_FAST, KEYSPACE_READ)
        .keys(ONE_KEY, &[KeySpec::at(1, RO_ACCESS)])
        .tips(VARIES)
        .docs("Return how many milliseconds a key has left to live", "2.6.0", "generic", O_1, KEY)
        .history(MISSING_KEY_REPLY),
    CommandSpec::new("quit", -1, BEFORE_AUTH, CONNECTION).docs(
        "Close the connection once the replies before it are sent",
        "1.0.0",
        "connection",
        O_1,
        &[],
    ),
    CommandSpec::new("randomkey", 1, READ, KEYSPACE_READ_SLOW)
        .tips(&["request_policy:all_shards", "nondeterministic_output"])
        .docs("Return a key picked at random", "1.0.0", "generic", O_1, &[]),
    CommandSpec::new("rename", 3, WRITE, KEYSPACE_WRITE_SLOW)
        .keys(TWO_KEYS, &[KeySpec::at(1, RW_ACCESS_DELETE), KeySpec::at(2, OW_UPDATE)])
        .docs("Give a key a new name, replacing any key of that name", "1.0.0", "generic", O_1, RENAME_ARGS),
    CommandSpec::new("renamenx", 3, WRITE_FAST, KEYSPACE_WRITE)
        .keys(TWO_KEYS, &[KeySpec::at(1, RW_ACCESS_DELETE), KeySpec::at(2, OW_INSERT)])
        .docs("Give a key a new name, only if no key has that name", "1.0.0", "generic", O_1, RENAME_ARGS)
        .history(&[("3.2.0", "Renaming a key to its own name is no longer an error.")]),
    CommandSpec::new("reset", 1, BEFORE_AUTH, CONNECTION).docs(
        "Reset the connection: leave MULTI, unwatch every key, speak RESP2, drop its name, and log out when a \
         password is set",
        "6.2.0",
        "connection",
        O_1,
        &[],
    ),
    CommandSpec::new("scan", -2, READ, KEYSPACE_READ_SLOW)
        .tips(&["nondeterministic_output", "request_policy:special"])
        .docs(
            "Walk the keyspace a page at a time, resuming from a cursor",
            "2.8.0",
            "generic",
            "O(1) per call; O(N) in the number of keys for a whole walk, back to cursor 0",
            &[
                Arg::new("cursor", ArgKind::Integer),
                Arg::new("pattern", ArgKind::Pattern).token("MATCH").optional(),
                Arg::new("count", ArgKind::Integer).token("COUNT").optional(),
                Arg::new("type", ArgKind::String).token("TYPE").since("6.0.0").optional(),
            ],
        )
        .history(&[("6.0.0", "The `TYPE` filter.")]),
    CommandSpec::new("select", 2, ANY_STATE_FAST, CONNECTION).docs(
        "Choose the connection's database (paxoskv has only database 0)",
        "1.0.0",
        "connection",
        O_1,
        &[Arg::new("index", ArgKind::Integer)],
    ),
    CommandSpec::new("set", -3, WRITE_GROW, STRING_WRITE)
        .keys(
            ONE_KEY,
            &[KeySpec::at(1, &["RW", "access", "update", "variable_flags"])
                .notes("Also a read (RW, access) when `GET` asks for the old value")],
        )
        .docs(
            "Store a string at a key, optionally under a condition, with an expiry, or returning the old value",
            "1.0.0",
            "string",
            O_1,
            &[
                Arg::key("key", 0),
                Arg::new("value", ArgKind::String),
                Arg::new("condition", ArgKind::OneOf(&[Arg::pure_token("nx", "NX"), Arg::pure_token("xx", "XX")]))
                    .since("2.6.12")
                    .optional(),
                Arg::pure_token("get", "GET").since("6.2.0").optional(),
                Arg::new(
                    "expiration",
                    ArgKind::OneOf(&[
                        Arg::new("seconds", ArgKind::Integer).token("EX").since("2.6.12"),
                        Arg::new("milliseconds", ArgKind::Integer).token("PX").since("2.6.12"),
                        Arg::new("unix-time-seconds", ArgKind::UnixTime).token("EXAT").since("6.2.0"),
                        Arg::new("unix-time-milliseconds", ArgKind::UnixTime).token("PXAT").since("6.2.0"),
                        Arg::pure_token("keepttl", "KEEPTTL").since("6.0.0"),
                    ]),
                )
                .optional(),
            ],
        )
        .history(&[
            ("2.6.12", "The `EX`, `PX`, `NX` and `XX` options."),
            ("6.0.0", "The `KEEPTTL` option."),
            ("6.2.0", "The `GET`, `EXAT` and `PXAT` options."),
            ("7.0.0", "`NX` and `GET` may be given together."),
        ]),
    CommandSpec::new("setex", 4, WRITE_GROW, STRING_WRITE).keys(ONE_KEY, &[KeySpec::at(1, OW_UPDATE)]).docs(
        "Store a string at a key that expires after a number of seconds",
        "2.0.0",
        "string",
        O_1,
        &[Arg::key("key", 0), Arg::new("seconds", ArgKind::Integer), Arg::new("value", ArgKind::String)],
    ),
    CommandSpec::new("setnx", 3, WRITE_GROW_FAST, STRING_WRITE_FAST).keys(ONE_KEY, &[KeySpec::at(1, OW_INSERT)]).docs(
        "Store a string at a key only if the key does not exist",
        "1.0.0",
        "string",
        O_1,
        KEY_VALUE,
    ),
    CommandSpec::new("setrange", 4, WRITE_GROW, STRING_WRITE).keys(ONE_KEY, &[KeySpec::at(1, RW_UPDATE)]).docs(
        "Overwrite part of the string stored at a key, from an offset on",
        "2.2.0",
        "string",
        "O(1) plus copying the bytes written; O(M) in the value's length when the string must grow",
        &[Arg::key("key", 0), Arg::new("offset", ArgKind::Integer), Arg::new("value", ArgKind::String)],
    ),
    CommandSpec::new("strlen", 2, READ_FAST, STRING_READ).keys(ONE_KEY, &[KeySpec::at(1, RO)]).docs(
        "Return the length of the string stored at a key",
        "2.2.0",
        "string",
        O_1,
        KEY,
    ),
    CommandSpec::new("substr", 4, READ, STRING_READ_SLOW)
        .keys(ONE_KEY, &[KeySpec::at(1, RO_ACCESS)])
        .docs(
            "Return a substring of the string stored at a key",
            "1.0.0",
            "string",
            "O(N) in the length returned (so O(1) for short ranges)",
            &[Arg::key("key", 0), Arg::new("start", ArgKind::Integer), Arg::new("end", ArgKind::Integer)],
        )
        .deprecated("2.0.0", "`GETRANGE`"),
    CommandSpec::new("swapdb", 3, WRITE_FAST, &["@keyspace", "@write", "@fast", "@dangerous"]).docs(
        "Swap two databases (paxoskv has only database 0: SWAPDB 0 0, which changes nothing)",
        "4.0.0",
        "server",
        O_1,
        &[Arg::new("index1", ArgKind::Integer), Arg::new("index2", ArgKind::Integer)],
    ),
    CommandSpec::new("time", 1, ANY_STATE_FAST, &["@fast"]).tips(VARIES).docs(
        "Return the server's clock: Unix seconds and microseconds",
        "2.6.0",
        "server",
        O_1,
        &[],
    ),
    CommandSpec::new("touch", -2, READ_FAST, KEYSPACE_READ)
        .keys(ALL_KEYS, &[KeySpec::range(1, RO, -1, 1)])
        .tips(PER_SHARD_SUM)
        .docs(
            "Count how many of the given keys exist (paxoskv keeps no access time to update)",
            "3.2.1",
            "generic",
            "O(N) in the number of keys given",
            KEYS,
        ),
    CommandSpec::new("ttl", 2, READ_FAST, KEYSPACE_READ)
        .keys(ONE_KEY, &[KeySpec::at(1, RO_ACCESS)])
        .tips(VARIES)
        .docs("Return how many seconds a key has left to live", "1.0.0", "generic", O_1, KEY)
        .history(MISSING_KEY_REPLY),
    CommandSpec::new("type", 2, READ_FAST, KEYSPACE_READ).keys(ONE_KEY, &[KeySpec::at(1, RO)]).docs(
        "Return the type of the value stored at a key",
        "1.0.0",
        "generic",
        O_1,
        KEY,
    ),
    CommandSpec::new("unlink", -2, WRITE_FAST, KEYSPACE_WRITE)
        .keys(ALL_KEYS, &[KeySpec::range(1, RM_DELETE, -1, 1)])
        .tips(PER_SHARD_SUM)
        .docs(
            "Remove keys now and free their memory later, in the background",
            "4.0.0",
            "generic",
            "O(1) per key removed; the background work is O(N) in the allocations freed",
            KEYS,
        ),
    CommandSpec::new("unwatch", 1, TRANSACTION_FLAGS, TRANSACTION).docs(
        "Stop watching every key this connection watches",
        "2.2.0",
        "transactions",
        O_1,
        &[],
    ),
    CommandSpec::new("wait", 3, &["noscript"], CONNECTION_SLOW)
        .tips(&["request_policy:all_shards", "response_policy:agg_min"])
        .docs(
            "Return how many replicas hold every write this connection was answered (at once: a write is answered \
             only once a majority holds it)",
            "3.0.0",
            "generic",
            O_1,
            &[Arg::new("numreplicas", ArgKind::Integer), Arg::new("timeout", ArgKind::Integer)],
        ),
    CommandSpec::new("watch", -2, TRANSACTION_FLAGS, TRANSACTION).keys(ALL_KEYS, &[KeySpec::range(1, RO, -1, 1)]).docs(
        "Make the next EXEC fail if any of the given keys changes before it",
        "2.2.0",
        "transactions",
        "O(1) per key",
        KEYS,
    ),
];
