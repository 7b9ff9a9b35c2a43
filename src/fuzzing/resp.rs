//! `resp_request`: client bytes through the RESP parser and the request
//! parser, as a connection feeds them.

use bytes::{Bytes, BytesMut};

use crate::kv::{Command, Op};
use crate::net::request::{parse_request, Request};
use crate::net::resp::{parse_command, RespError, RespLimits};

/// Small limits, so that inputs of a few KiB reach every "too big" branch
/// (the server's defaults are megabytes; the code paths are the same).
const LIMITS: RespLimits = RespLimits { args_max: 16, bulk_bytes_max: 256, inline_bytes_max: 256, bulk_skip_max: 256 };
const VALUE_BYTES_MAX: usize = 64;

/// Parses `data` as a client stream: every command through
/// `parse_request`. Checks what `net/resp.rs` documents: never a panic; the
/// same commands and error whether the stream arrives whole or in chunks;
/// while waiting for more bytes, the buffer holds no more than one command
/// the limits allow. And of each parsed request: an error is one line, and
/// a store op survives the command encoding the log carries.
pub fn resp_request(data: &[u8]) {
    let whole = parse_stream(data, data.len().max(1));
    // A chunk size drawn from the input itself, so every size gets tried.
    let chunk_bytes = 1 + usize::from(data.first().copied().unwrap_or(0) % 32);
    let chunked = parse_stream(data, chunk_bytes);
    assert_eq!(chunked, whole, "feeding {chunk_bytes}-byte chunks changes what parses");
    for args in &whole.0 {
        check_request(args);
    }
}

/// The commands of `data` fed `chunk_bytes` at a time, and the error that
/// ended the stream, if any.
fn parse_stream(data: &[u8], chunk_bytes: usize) -> (Vec<Vec<Bytes>>, Option<RespError>) {
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    for chunk in data.chunks(chunk_bytes) {
        buf.extend_from_slice(chunk);
        loop {
            match parse_command(&mut buf, &LIMITS) {
                Ok(Some(args)) => {
                    assert!(!args.is_empty(), "an empty command was returned");
                    let arg_bytes_max = LIMITS.bulk_bytes_max.max(LIMITS.inline_bytes_max);
                    assert!(args.iter().all(|arg| arg.len() <= arg_bytes_max), "an argument over the limits");
                    commands.push(args);
                }
                Ok(None) => break,
                Err(error) => return (commands, Some(error)),
            }
        }
        assert!(buf.len() <= pending_bytes_max(), "{} bytes pending, over what one command may hold", buf.len());
    }
    (commands, None)
}

/// The most bytes an incomplete command may hold under [`LIMITS`]: a
/// multibulk header and `args_max` bulk strings of the largest size, or an
/// inline line with its line ending.
fn pending_bytes_max() -> usize {
    let length_line = |max: usize| 1 + max.to_string().len() + 2;
    let bulk = length_line(LIMITS.bulk_bytes_max) + LIMITS.bulk_bytes_max + 2;
    let multibulk = length_line(LIMITS.args_max) + LIMITS.args_max * bulk;
    multibulk.max(LIMITS.inline_bytes_max + 2)
}

fn check_request(args: &[Bytes]) {
    match parse_request(args, VALUE_BYTES_MAX) {
        Err(message) => {
            assert!(!message.is_empty(), "an empty error for {args:?}");
            assert!(!message.contains(['\r', '\n']), "a multi-line error: {message:?}");
        }
        Ok(Request::Kv(op)) => check_op(op),
        Ok(_) => {}
    }
}

/// A store op must survive the binary command format unchanged, and its
/// keys are what the router shards on.
fn check_op(op: Op) {
    assert!(op.is_keyspace_wide() || !op.keys().is_empty(), "{op:?} has no key and is not keyspace-wide");
    let command = Command { session: 1, seq: 1, ack: 1, prev: 0, op };
    let encoded = command.encode();
    assert_eq!(Command::decode(&encoded).as_ref(), Ok(&command), "the command encoding loses {command:?}");
}
