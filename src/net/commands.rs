//! The table of every command paxoskv serves ([`COMMANDS`], in
//! `commands/table.rs`), described as Redis 7.0 describes its own: arity
//! (checked before any other parsing, as Redis does), command flags, key
//! positions, ACL categories, tips, key specifications, subcommands, and
//! the documentation `COMMAND DOCS` returns. `COMMAND`, `COMMAND
//! INFO/DOCS/COUNT/LIST` (`commands/reply.rs`), the arity check and
//! `CLIENT LIST`'s `cmd=` field all read it, so the table cannot drift from
//! what is served.
//!
//! Everything a client can act on is a protocol fact and matches Redis 7.0
//! exactly: names, arity, flags, first/last/step, ACL categories, tips, key
//! specs, and each argument's name, type, token, `since` and flags (redis-py
//! routes by the `readonly` flag and key positions, cluster clients by the
//! tips, redis-cli builds its hints from the arguments). The prose (summary,
//! complexity, history, key-spec notes) is our own. A container command
//! (CLIENT, COMMAND, CONFIG) lists only the subcommands served here.
//!
//! Arity follows Redis: `n` means exactly `n` words with the name, `-n` at
//! least `n`. Keys are at positions `first..=last` (negative: from the
//! end) with `step`; 0 means no key.

mod table;

pub mod reply;

pub use table::COMMANDS;

/// One command's description, as `COMMAND INFO` and `COMMAND DOCS` give it.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    /// Lowercase; `container|sub` for a subcommand.
    pub name: &'static str,
    pub arity: i64,
    /// Redis's command flags, in the order Redis lists them.
    pub flags: &'static [&'static str],
    pub first_key: i64,
    pub last_key: i64,
    pub step: i64,
    /// ACL categories, `@`-prefixed, in Redis's order.
    pub acl: &'static [&'static str],
    /// Hints for clients: `request_policy:...` and `response_policy:...`
    /// for cluster clients, `nondeterministic_output[_order]` for tests.
    pub tips: &'static [&'static str],
    /// One per key argument; [`Arg::key_spec_index`] points into it.
    pub key_specs: &'static [KeySpec],
    /// For a container command: the subcommands served, sorted by name.
    pub subcommands: &'static [CommandSpec],
    pub docs: Docs,
}

/// What `COMMAND DOCS` says about a command.
#[derive(Clone, Copy, Debug)]
pub struct Docs {
    pub summary: &'static str,
    /// The Redis version that introduced the command.
    pub since: &'static str,
    pub group: &'static str,
    pub complexity: &'static str,
    /// `Some((since, replaced_by))` for a command Redis deprecates.
    pub deprecated: Option<(&'static str, &'static str)>,
    /// (Redis version, what changed then), oldest first.
    pub history: &'static [(&'static str, &'static str)],
    pub args: &'static [Arg],
}

/// Where one group of keys sits among a command's words. Redis also has
/// `keyword` searches and `keynum` finds; no command served here needs them.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    /// `RO`/`RW`/`OW`/`RM`, then `access`/`update`/`insert`/`delete`, ...
    pub flags: &'static [&'static str],
    pub notes: Option<&'static str>,
    /// `begin_search` of type `index`: the first key's word index.
    pub begin_index: i64,
    /// `find_keys` of type `range`: the last key, relative to the first
    /// (negative: counted from the end of the words).
    pub last_key: i64,
    pub key_step: i64,
    /// With a negative `last_key`: take 1/limit of the remaining words (0: all).
    pub limit: i64,
}

/// One argument in `COMMAND DOCS`.
#[derive(Clone, Copy, Debug)]
pub struct Arg {
    pub name: &'static str,
    pub kind: ArgKind,
    /// For a key: its spec in [`CommandSpec::key_specs`].
    pub key_spec_index: Option<usize>,
    /// The literal word that introduces it (`EX`, `MATCH`, ...).
    pub token: Option<&'static str>,
    pub since: Option<&'static str>,
    pub deprecated_since: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
}

/// An argument's type; `OneOf` and `Block` hold their own arguments.
#[derive(Clone, Copy, Debug)]
pub enum ArgKind {
    String,
    Integer,
    Double,
    Key,
    Pattern,
    UnixTime,
    PureToken,
    /// Exactly one of these.
    OneOf(&'static [Arg]),
    /// All of these, in order.
    Block(&'static [Arg]),
}

impl ArgKind {
    /// The type's name in `COMMAND DOCS`.
    pub fn name(&self) -> &'static str {
        match self {
            ArgKind::String => "string",
            ArgKind::Integer => "integer",
            ArgKind::Double => "double",
            ArgKind::Key => "key",
            ArgKind::Pattern => "pattern",
            ArgKind::UnixTime => "unix-time",
            ArgKind::PureToken => "pure-token",
            ArgKind::OneOf(_) => "oneof",
            ArgKind::Block(_) => "block",
        }
    }

    /// The nested arguments of a `oneof` or `block`.
    pub fn children(&self) -> Option<&'static [Arg]> {
        match self {
            ArgKind::OneOf(args) | ArgKind::Block(args) => Some(args),
            _ => None,
        }
    }
}

impl CommandSpec {
    /// A command without keys, tips, subcommands or arguments; the
    /// builders below add them.
    const fn new(name: &'static str, arity: i64, flags: &'static [&'static str], acl: &'static [&'static str]) -> Self {
        CommandSpec {
            name,
            arity,
            flags,
            first_key: 0,
            last_key: 0,
            step: 0,
            acl,
            tips: &[],
            key_specs: &[],
            subcommands: &[],
            docs: Docs { summary: "", since: "", group: "", complexity: "", deprecated: None, history: &[], args: &[] },
        }
    }

    /// Key positions `(first, last, step)` and their specs.
    const fn keys(mut self, (first, last, step): (i64, i64, i64), key_specs: &'static [KeySpec]) -> Self {
        self.first_key = first;
        self.last_key = last;
        self.step = step;
        self.key_specs = key_specs;
        self
    }

    const fn tips(mut self, tips: &'static [&'static str]) -> Self {
        self.tips = tips;
        self
    }

    const fn subcommands(mut self, subcommands: &'static [CommandSpec]) -> Self {
        self.subcommands = subcommands;
        self
    }

    const fn docs(
        mut self,
        summary: &'static str,
        since: &'static str,
        group: &'static str,
        complexity: &'static str,
        args: &'static [Arg],
    ) -> Self {
        self.docs.summary = summary;
        self.docs.since = since;
        self.docs.group = group;
        self.docs.complexity = complexity;
        self.docs.args = args;
        self
    }

    const fn history(mut self, history: &'static [(&'static str, &'static str)]) -> Self {
        self.docs.history = history;
        self
    }

    const fn deprecated(mut self, since: &'static str, replaced_by: &'static str) -> Self {
        self.docs.deprecated = Some((since, replaced_by));
        self
    }

    /// The subcommand called `sub` (case-insensitive), for a container.
    pub fn subcommand(&self, sub: &[u8]) -> Option<&'static CommandSpec> {
        self.subcommands
            .iter()
            .find(|spec| spec.name.split_once('|').is_some_and(|(_, name)| name.as_bytes().eq_ignore_ascii_case(sub)))
    }
}

impl KeySpec {
    /// One key at word `index`.
    const fn at(index: i64, flags: &'static [&'static str]) -> Self {
        KeySpec { flags, notes: None, begin_index: index, last_key: 0, key_step: 1, limit: 0 }
    }

    /// Keys from word `index` to `last_key` (relative, negative from the end) every `key_step`.
    const fn range(index: i64, flags: &'static [&'static str], last_key: i64, key_step: i64) -> Self {
        KeySpec { flags, notes: None, begin_index: index, last_key, key_step, limit: 0 }
    }

    const fn notes(mut self, notes: &'static str) -> Self {
        self.notes = Some(notes);
        self
    }
}

impl Arg {
    const fn new(name: &'static str, kind: ArgKind) -> Self {
        Arg {
            name,
            kind,
            key_spec_index: None,
            token: None,
            since: None,
            deprecated_since: None,
            optional: false,
            multiple: false,
        }
    }

    /// A key argument named `name`, described by key spec `index`.
    const fn key(name: &'static str, index: usize) -> Self {
        let mut arg = Arg::new(name, ArgKind::Key);
        arg.key_spec_index = Some(index);
        arg
    }

    /// A word that stands alone (`NX`, `REPLACE`).
    const fn pure_token(name: &'static str, token: &'static str) -> Self {
        Arg::new(name, ArgKind::PureToken).token(token)
    }

    const fn token(mut self, token: &'static str) -> Self {
        self.token = Some(token);
        self
    }

    const fn since(mut self, since: &'static str) -> Self {
        self.since = Some(since);
        self
    }

    const fn deprecated_since(mut self, since: &'static str) -> Self {
        self.deprecated_since = Some(since);
        self
    }

    const fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    const fn multiple(mut self) -> Self {
        self.multiple = true;
        self
    }

    /// The flags `COMMAND DOCS` lists, in Redis's order (Redis also has
    /// `multiple_token`, which no argument served here needs).
    pub fn flags(&self) -> Vec<&'static str> {
        [(self.optional, "optional"), (self.multiple, "multiple")]
            .into_iter()
            .filter_map(|(set, flag)| set.then_some(flag))
            .collect()
    }
}

/// The full name of the command `args` (name first): `client|info` for a
/// known subcommand of a container command, else the table name `spec`.
pub fn full_name(spec: &'static CommandSpec, args: &[bytes::Bytes]) -> &'static str {
    args.get(1).and_then(|sub| spec.subcommand(sub)).map_or(spec.name, |sub| sub.name)
}

/// The longest command or subcommand name we know, in bytes
/// (`every_name_is_lowercase_and_found_in_any_case` checks the table).
pub const NAME_BYTES_MAX: usize = 16;

/// `name` lowercased into `buffer`, or an empty slice (no command's name)
/// when it is longer than any name we know.
pub fn lowercase<'a>(name: &[u8], buffer: &'a mut [u8; NAME_BYTES_MAX]) -> &'a [u8] {
    let Some(lowered) = buffer.get_mut(..name.len()) else {
        return &[];
    };
    lowered.copy_from_slice(name);
    lowered.make_ascii_lowercase();
    lowered
}

/// The spec of `name` (case-insensitive).
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    command_index(name).map(|index| &COMMANDS[index])
}

/// Where `name` (case-insensitive) is in [`COMMANDS`]: a binary search of
/// the sorted table by the lower-cased name (every request looks its
/// command up once; a scan compared it with each name before it).
pub fn command_index(name: &[u8]) -> Option<usize> {
    let mut buffer = [0u8; NAME_BYTES_MAX];
    let lower = lowercase(name, &mut buffer);
    COMMANDS.binary_search_by(|spec| spec.name.as_bytes().cmp(lower)).ok()
}

/// [`command_index`], trying `COMMANDS[hint]` first: a connection passes
/// its previous command's, as pipelines repeat one command.
pub fn command_index_from(name: &[u8], hint: usize) -> Option<usize> {
    match COMMANDS.get(hint) {
        Some(spec) if spec.name.as_bytes().eq_ignore_ascii_case(name) => Some(hint),
        _ => command_index(name),
    }
}

/// The spec of a command or of a subcommand named `container|sub`
/// (case-insensitive), as `COMMAND INFO` and `COMMAND DOCS` take names.
pub fn lookup_full(name: &[u8]) -> Option<&'static CommandSpec> {
    match name.iter().position(|&b| b == b'|') {
        Some(bar) => lookup(&name[..bar])?.subcommand(&name[bar + 1..]),
        None => lookup(name),
    }
}

/// Every command and, after each container, its subcommands.
pub fn all_with_subcommands() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS.iter().flat_map(|spec| std::iter::once(spec).chain(spec.subcommands))
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

    fn words(texts: &[&str]) -> Vec<bytes::Bytes> {
        texts.iter().map(|t| bytes::Bytes::copy_from_slice(t.as_bytes())).collect()
    }

    #[test]
    fn the_table_is_sorted_and_unique() {
        for pair in COMMANDS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} then {}", pair[0].name, pair[1].name);
        }
        for spec in COMMANDS {
            for pair in spec.subcommands.windows(2) {
                assert!(pair[0].name < pair[1].name, "{} then {}", pair[0].name, pair[1].name);
            }
        }
    }

    #[test]
    fn help_lists_every_subcommand_with_its_summary_as_simple_strings() {
        let mut out = bytes::BytesMut::new();
        reply::help_reply("config", &mut out);
        let expected = "*5\r\n+CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+GET\r\n\
                        +    Return the configuration parameters whose names match glob patterns.\r\n+HELP\r\n\
                        +    List the CONFIG subcommands, each with what it does.\r\n";
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
        for container in ["client", "command", "config"] {
            let spec = lookup(container.as_bytes()).expect("in the table");
            assert!(lookup_full(format!("{container}|help").as_bytes()).is_some(), "{container} HELP");
            let mut out = bytes::BytesMut::new();
            reply::help_reply(container, &mut out);
            assert!(out.starts_with(format!("*{}\r\n", 1 + 2 * spec.subcommands.len()).as_bytes()));
        }
    }

    #[test]
    fn every_name_is_lowercase_and_found_in_any_case() {
        for spec in all_with_subcommands() {
            assert!(spec.name.len() <= NAME_BYTES_MAX, "{}", spec.name);
        }
        for (index, spec) in COMMANDS.iter().enumerate() {
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            assert_eq!(command_index(spec.name.as_bytes()), Some(index));
            assert_eq!(command_index(spec.name.to_ascii_uppercase().as_bytes()), Some(index));
        }
        assert_eq!(command_index(&[b'a'; NAME_BYTES_MAX + 1]), None);
        assert_eq!(command_index(b""), None);
    }

    #[test]
    fn a_hint_finds_the_same_index_as_the_search() {
        let get = command_index(b"get").unwrap();
        let set = command_index(b"set").unwrap();
        for hint in [get, set, 0, COMMANDS.len(), usize::MAX] {
            assert_eq!(command_index_from(b"GeT", hint), Some(get), "hint {hint}");
            assert_eq!(command_index_from(b"set", hint), Some(set), "hint {hint}");
            assert_eq!(command_index_from(b"nosuchcommand", hint), None, "hint {hint}");
            assert_eq!(command_index_from(b"", hint), None, "hint {hint}");
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
        let client = lookup(b"client").unwrap();
        assert_eq!(full_name(client, &words(&["CLIENT", "Info"])), "client|info");
        assert_eq!(full_name(client, &words(&["client", "nosuch"])), "client");
        assert_eq!(full_name(lookup(b"get").unwrap(), &words(&["get", "info"])), "get");
        assert_eq!(lookup_full(b"Client|LIST").map(|s| s.name), Some("client|list"));
        assert!(lookup_full(b"client|nosuch").is_none());
        assert!(lookup_full(b"get|x").is_none());
        for spec in COMMANDS {
            for sub in spec.subcommands {
                let (container, name) = sub.name.split_once('|').expect("container|sub");
                assert_eq!(container, spec.name);
                assert_eq!(full_name(spec, &words(&[container, name])), sub.name);
            }
        }
    }

    /// Redis derives first/last/step from the key specs; so must we.
    #[test]
    fn key_positions_agree_with_the_key_specs() {
        for spec in all_with_subcommands() {
            let Some(first) = spec.key_specs.first() else {
                assert_eq!((spec.first_key, spec.last_key, spec.step), (0, 0, 0), "{}", spec.name);
                continue;
            };
            let last = spec.key_specs.last().unwrap();
            assert_eq!(spec.first_key, first.begin_index, "{}", spec.name);
            let last_key = if last.last_key < 0 { last.last_key } else { last.begin_index + last.last_key };
            assert_eq!(spec.last_key, last_key, "{}", spec.name);
            assert_eq!(spec.step, first.key_step, "{}", spec.name);
        }
    }

    /// Every key argument points at a key spec, and every key spec has one.
    #[test]
    fn key_arguments_point_at_key_specs() {
        fn key_indexes(args: &[Arg], out: &mut Vec<usize>) {
            for arg in args {
                if matches!(arg.kind, ArgKind::Key) {
                    out.push(arg.key_spec_index.unwrap_or_else(|| panic!("key {} without a spec", arg.name)));
                } else {
                    assert!(arg.key_spec_index.is_none(), "{} is not a key", arg.name);
                }
                if let Some(children) = arg.kind.children() {
                    key_indexes(children, out);
                }
                assert!(!arg.name.is_empty());
                assert!(!matches!(arg.kind, ArgKind::PureToken) || arg.token.is_some(), "{} has no token", arg.name);
            }
        }
        for spec in all_with_subcommands() {
            let mut indexes = Vec::new();
            key_indexes(spec.docs.args, &mut indexes);
            indexes.sort();
            indexes.dedup();
            assert_eq!(indexes, (0..spec.key_specs.len()).collect::<Vec<_>>(), "{}", spec.name);
        }
    }

    #[test]
    fn every_command_is_documented() {
        for spec in all_with_subcommands() {
            let docs = &spec.docs;
            assert!(!docs.summary.is_empty() && !docs.complexity.is_empty(), "{}", spec.name);
            assert!(docs.since.split('.').count() == 3, "{}: since {:?}", spec.name, docs.since);
            assert!(
                ["connection", "generic", "server", "string", "transactions"].contains(&docs.group),
                "{}",
                spec.name
            );
            assert!(spec.subcommands.is_empty() || docs.args.is_empty(), "{}: a container has no arguments", spec.name);
            for pair in docs.history.windows(2) {
                assert!(pair[0].0 <= pair[1].0, "{}: history out of order", spec.name);
            }
        }
    }
}
