//! The replies of `COMMAND`, `COMMAND COUNT | LIST | INFO | DOCS`, laid
//! out field for field as Redis 7.0 lays out its own (`server.c`,
//! `addReplyCommandInfo` and `addReplyCommandDocs`): the same types in RESP2
//! and RESP3 (sets, maps), the same keys in the same order, optional keys
//! present exactly when Redis would send them.

use bytes::BytesMut;

use super::{all_with_subcommands, lookup, lookup_full, Arg, CommandSpec, KeySpec, COMMANDS};
use crate::kv::glob::Glob;
use crate::net::request::{CommandSub, ListFilter};
use crate::net::resp::{self, Proto};

/// Encode the reply to `COMMAND ...`.
pub fn command_reply(sub: CommandSub, proto: Proto, out: &mut BytesMut) {
    match sub {
        CommandSub::Count => resp::integer(out, COMMANDS.len() as i64),
        CommandSub::Help => help_reply("command", out),
        CommandSub::List(filter) => {
            let names: Vec<&str> =
                all_with_subcommands().filter(|spec| keeps(filter.as_ref(), spec)).map(|spec| spec.name).collect();
            resp::array_header(out, names.len());
            for name in names {
                resp::bulk(out, name.as_bytes());
            }
        }
        CommandSub::All => all_info(proto, out),
        CommandSub::Info(names) if names.is_empty() => all_info(proto, out),
        CommandSub::Info(names) => {
            resp::array_header(out, names.len());
            for name in names {
                match lookup_full(&name) {
                    Some(spec) => info(spec, proto, out),
                    None => resp::null(out, proto),
                }
            }
        }
        CommandSub::Docs(names) => {
            let specs: Vec<&CommandSpec> = if names.is_empty() {
                COMMANDS.iter().collect()
            } else {
                names.iter().filter_map(|name| lookup_full(name)).collect()
            };
            resp::map_header(out, specs.len(), proto);
            for spec in specs {
                resp::bulk(out, spec.name.as_bytes());
                docs(spec, proto, out);
            }
        }
    }
}

/// `CONTAINER HELP` (`client`, `command`, `config`): its subcommands, each
/// name and below it, indented, what it does (simple strings, as Redis).
pub fn help_reply(container: &str, out: &mut BytesMut) {
    let subcommands = lookup(container.as_bytes()).map_or(&[][..], |spec| spec.subcommands);
    let upper = container.to_ascii_uppercase();
    resp::array_header(out, 1 + 2 * subcommands.len());
    resp::simple(out, &format!("{upper} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    for sub in subcommands {
        let name = sub.name.split_once('|').map_or(sub.name, |(_, name)| name);
        resp::simple(out, &name.to_ascii_uppercase());
        resp::simple(out, &format!("    {}.", sub.docs.summary));
    }
}

fn all_info(proto: Proto, out: &mut BytesMut) {
    resp::array_header(out, COMMANDS.len());
    for spec in COMMANDS {
        info(spec, proto, out);
    }
}

/// Does `COMMAND LIST FILTERBY` keep `spec`?
fn keeps(filter: Option<&ListFilter>, spec: &CommandSpec) -> bool {
    match filter {
        None => true,
        Some(ListFilter::Module(_)) => false,
        Some(ListFilter::AclCategory(category)) => spec
            .acl
            .iter()
            .any(|acl| acl.strip_prefix('@').is_some_and(|name| name.as_bytes().eq_ignore_ascii_case(category))),
        // Redis matches ignoring case; our names are lowercase.
        Some(ListFilter::Pattern(pattern)) => Glob::new(&pattern.to_ascii_lowercase()).matches(spec.name.as_bytes()),
    }
}

/// Simple strings as a set (an array in RESP2), as Redis sends flags and
/// categories.
fn status_set(out: &mut BytesMut, items: &[&str], proto: Proto) {
    resp::set_header(out, items.len(), proto);
    for item in items {
        resp::simple(out, item);
    }
}

/// A map key and a bulk-string value.
fn bulk_field(out: &mut BytesMut, key: &str, value: &str) {
    resp::bulk(out, key.as_bytes());
    resp::bulk(out, value.as_bytes());
}

/// A map key and an integer value.
fn integer_field(out: &mut BytesMut, key: &str, value: i64) {
    resp::bulk(out, key.as_bytes());
    resp::integer(out, value);
}

/// One `COMMAND INFO` entry, Redis 7.0's ten fields: name, arity, flags,
/// first key, last key, step, ACL categories, tips, key specs,
/// subcommands (each an entry like this one).
fn info(spec: &CommandSpec, proto: Proto, out: &mut BytesMut) {
    resp::array_header(out, 10);
    resp::bulk(out, spec.name.as_bytes());
    resp::integer(out, spec.arity);
    status_set(out, spec.flags, proto);
    resp::integer(out, spec.first_key);
    resp::integer(out, spec.last_key);
    resp::integer(out, spec.step);
    status_set(out, spec.acl, proto);
    resp::set_header(out, spec.tips.len(), proto);
    for tip in spec.tips {
        resp::bulk(out, tip.as_bytes());
    }
    resp::set_header(out, spec.key_specs.len(), proto);
    for key_spec in spec.key_specs {
        key_spec_map(key_spec, proto, out);
    }
    // Redis sends an empty set, or an array of the subcommands.
    if spec.subcommands.is_empty() {
        resp::set_header(out, 0, proto);
    } else {
        resp::array_header(out, spec.subcommands.len());
        for sub in spec.subcommands {
            info(sub, proto, out);
        }
    }
}

fn key_spec_map(key_spec: &KeySpec, proto: Proto, out: &mut BytesMut) {
    resp::map_header(out, 3 + usize::from(key_spec.notes.is_some()), proto);
    if let Some(notes) = key_spec.notes {
        bulk_field(out, "notes", notes);
    }
    resp::bulk(out, b"flags");
    status_set(out, key_spec.flags, proto);
    resp::bulk(out, b"begin_search");
    resp::map_header(out, 2, proto);
    bulk_field(out, "type", "index");
    resp::bulk(out, b"spec");
    resp::map_header(out, 1, proto);
    integer_field(out, "index", key_spec.begin_index);
    resp::bulk(out, b"find_keys");
    resp::map_header(out, 2, proto);
    bulk_field(out, "type", "range");
    resp::bulk(out, b"spec");
    resp::map_header(out, 3, proto);
    integer_field(out, "lastkey", key_spec.last_key);
    integer_field(out, "keystep", key_spec.key_step);
    integer_field(out, "limit", key_spec.limit);
}

/// One `COMMAND DOCS` entry: summary, since, group, complexity, then, when
/// there is something to say, the deprecation, history, arguments and
/// subcommands.
fn docs(spec: &CommandSpec, proto: Proto, out: &mut BytesMut) {
    let doc = &spec.docs;
    let fields = 4
        + 3 * usize::from(doc.deprecated.is_some())
        + usize::from(!doc.history.is_empty())
        + usize::from(!doc.args.is_empty())
        + usize::from(!spec.subcommands.is_empty());
    resp::map_header(out, fields, proto);
    bulk_field(out, "summary", doc.summary);
    bulk_field(out, "since", doc.since);
    bulk_field(out, "group", doc.group);
    bulk_field(out, "complexity", doc.complexity);
    if let Some((since, replaced_by)) = doc.deprecated {
        resp::bulk(out, b"doc_flags");
        status_set(out, &["deprecated"], proto);
        bulk_field(out, "deprecated_since", since);
        bulk_field(out, "replaced_by", replaced_by);
    }
    if !doc.history.is_empty() {
        resp::bulk(out, b"history");
        resp::set_header(out, doc.history.len(), proto);
        for (version, change) in doc.history {
            resp::array_header(out, 2);
            resp::bulk(out, version.as_bytes());
            resp::bulk(out, change.as_bytes());
        }
    }
    if !doc.args.is_empty() {
        resp::bulk(out, b"arguments");
        args(doc.args, proto, out);
    }
    if !spec.subcommands.is_empty() {
        resp::bulk(out, b"subcommands");
        resp::map_header(out, spec.subcommands.len(), proto);
        for sub in spec.subcommands {
            resp::bulk(out, sub.name.as_bytes());
            docs(sub, proto, out);
        }
    }
}

/// Arguments as an array of maps: name, type, then what is set of
/// key_spec_index, token, since, deprecated_since, flags and (for `oneof`
/// and `block`) the nested arguments.
fn args(list: &[Arg], proto: Proto, out: &mut BytesMut) {
    resp::array_header(out, list.len());
    for arg in list {
        let flags = arg.flags();
        let children = arg.kind.children();
        let fields = 2
            + usize::from(arg.key_spec_index.is_some())
            + usize::from(arg.token.is_some())
            + usize::from(arg.since.is_some())
            + usize::from(arg.deprecated_since.is_some())
            + usize::from(!flags.is_empty())
            + usize::from(children.is_some());
        resp::map_header(out, fields, proto);
        bulk_field(out, "name", arg.name);
        bulk_field(out, "type", arg.kind.name());
        if let Some(index) = arg.key_spec_index {
            integer_field(out, "key_spec_index", index as i64);
        }
        if let Some(token) = arg.token {
            bulk_field(out, "token", token);
        }
        if let Some(since) = arg.since {
            bulk_field(out, "since", since);
        }
        if let Some(since) = arg.deprecated_since {
            bulk_field(out, "deprecated_since", since);
        }
        if !flags.is_empty() {
            resp::bulk(out, b"flags");
            status_set(out, &flags, proto);
        }
        if let Some(children) = children {
            resp::bulk(out, b"arguments");
            args(children, proto, out);
        }
    }
}
