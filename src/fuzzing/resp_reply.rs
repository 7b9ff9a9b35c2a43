//! `resp_reply_roundtrip`: store replies through the RESP reply encoder and
//! back through a strict, independent reply parser.
//!
//! The library has no reply parser (the server only encodes replies;
//! `loadgen` has a lenient client-side one), so this module carries a small
//! strict one: it accepts exactly the canonical RESP2 and RESP3 forms the
//! server writes and nothing a sloppy encoder might get away with (a bare
//! LF, a leading zero, `-0`).
//!
//! The protocol version is a parameter of every step ([`RespVersion`]):
//! each [`Reply`]'s encoding in [`encode`] and [`expected_value`], and the
//! types each version may carry in [`parse_reply`].

use bytes::{Bytes, BytesMut};

use super::input::Input;
use crate::kv::Reply;
use crate::net::resp::{encode_reply, Proto};

/// The reply protocol a connection speaks (`HELLO 2` or `HELLO 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespVersion {
    Resp2,
    Resp3,
}

/// One parsed RESP value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespValue {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Integer(i64),
    Bulk(Vec<u8>),
    /// `$-1`.
    NullBulk,
    Array(Vec<RespValue>),
    /// `*-1`.
    NullArray,
    /// RESP3 `_`.
    Null,
}

/// Why bytes are not a canonical RESP value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyParseError {
    UnknownType(u8),
    /// A CR not followed by LF, or an LF without a CR, in a line.
    BadLineEnding,
    /// Not a canonical decimal (sign, digits, no leading zero, no `-0`), or
    /// out of range.
    BadInteger,
    /// A length below -1, or -1 where no null is allowed.
    BadLength,
    /// Bulk data not followed by CRLF.
    BadBulkTerminator,
    /// Arrays nested deeper than [`DEPTH_MAX`].
    TooDeep,
}

/// Deeper arrays are refused: the parser recurses. Our replies nest once.
pub const DEPTH_MAX: usize = 8;

/// Checks `reply_roundtrip` for every protocol version there is.
pub fn resp_reply_roundtrip(data: &[u8]) {
    reply_roundtrip(RespVersion::Resp2, data);
    reply_roundtrip(RespVersion::Resp3, data);
}

/// Builds a few replies from `data`, encodes them as one pipelined stream
/// in `version`, and parses them back: each must come back as the value
/// [`expected_value`] says, consuming exactly its bytes, and every strict
/// prefix of the stream must parse as a prefix of the replies followed by
/// "incomplete" (never as some other value or an error). The parser also
/// meets `data` itself, which it must reject or parse without panicking.
pub fn reply_roundtrip(version: RespVersion, data: &[u8]) {
    let _ = parse_reply(version, data);
    let mut input = Input::new(data);
    let mut replies = vec![reply_from(&mut input)];
    while !input.is_empty() && replies.len() < 4 {
        replies.push(reply_from(&mut input));
    }
    let mut stream = BytesMut::new();
    // Where each reply ends in the stream.
    let mut ends = Vec::new();
    for reply in &replies {
        encode(version, &mut stream, reply);
        ends.push(stream.len());
    }
    let expected: Vec<RespValue> = replies.iter().map(|reply| expected_value(version, reply)).collect();
    assert_eq!(parse_all(version, &stream), (expected.clone(), true), "{replies:?} do not round-trip");
    // Every cut for short streams, 64 spread-out cuts for long ones.
    let step = (stream.len() / 64).max(1);
    for cut in (0..stream.len()).step_by(step) {
        let (values, whole) = parse_all(version, &stream[..cut]);
        assert_eq!(values[..], expected[..values.len()], "the prefix of {cut} bytes parses differently");
        let complete = ends.iter().filter(|&&end| end <= cut).count();
        assert_eq!(values.len(), complete, "the prefix of {cut} bytes yields a reply that has not arrived");
        assert_eq!(whole, cut == 0 || ends[..complete].last() == Some(&cut), "the prefix of {cut} bytes");
    }
}

/// Parses values off `bytes` until it is used up (`true`) or a value is
/// incomplete (`false`). A parse error fails the check.
fn parse_all(version: RespVersion, mut bytes: &[u8]) -> (Vec<RespValue>, bool) {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        match parse_reply(version, bytes) {
            Ok(Some((value, used))) => {
                values.push(value);
                bytes = &bytes[used..];
            }
            Ok(None) => return (values, false),
            Err(error) => panic!("{error:?} parsing what the encoder wrote: {bytes:?}"),
        }
    }
    (values, true)
}

/// A store reply from fuzz input: every variant, with arbitrary contents,
/// arrays nested at most `depth` deeper.
fn reply_from(input: &mut Input) -> Reply {
    reply_nested(input, 2)
}

fn reply_nested(input: &mut Input, depth: usize) -> Reply {
    let data = |input: &mut Input| Bytes::copy_from_slice(input.bytes(255));
    let text = |input: &mut Input| String::from_utf8_lossy(input.bytes(255)).into_owned();
    match input.below(8) {
        0 => Reply::Ok,
        1 => Reply::Nil,
        2 => Reply::Int(input.u64() as i64),
        3 => Reply::Bulk(data(input)),
        4 if depth > 0 => Reply::Array((0..input.below(8)).map(|_| reply_nested(input, depth - 1)).collect()),
        4 => Reply::bulks((0..input.below(8)).map(|_| input.bool().then(|| data(input)))),
        5 => Reply::Status(text(input)),
        6 => Reply::NilArray,
        _ => Reply::Error(text(input)),
    }
}

/// Appends `reply` as a connection speaking `version` sends it.
pub fn encode(version: RespVersion, buf: &mut BytesMut, reply: &Reply) {
    let proto = match version {
        RespVersion::Resp2 => Proto::Resp2,
        RespVersion::Resp3 => Proto::Resp3,
    };
    encode_reply(buf, reply, proto);
}

/// What a client speaking `version` must read for `reply`.
pub fn expected_value(version: RespVersion, reply: &Reply) -> RespValue {
    // A line (error, status) cannot hold CR or LF: the encoder drops them.
    let line = |text: &str| text.bytes().filter(|byte| !matches!(byte, b'\r' | b'\n')).collect();
    match (version, reply) {
        (_, Reply::Ok) => RespValue::Simple(b"OK".to_vec()),
        (RespVersion::Resp2, Reply::Nil) => RespValue::NullBulk,
        (RespVersion::Resp2, Reply::NilArray) => RespValue::NullArray,
        (RespVersion::Resp3, Reply::Nil | Reply::NilArray) => RespValue::Null,
        (_, Reply::Int(n)) => RespValue::Integer(*n),
        (_, Reply::Bulk(data)) => RespValue::Bulk(data.to_vec()),
        (_, Reply::Array(items)) => RespValue::Array(items.iter().map(|item| expected_value(version, item)).collect()),
        (_, Reply::Error(message)) => RespValue::Error(line(message)),
        (_, Reply::Status(text)) => RespValue::Simple(line(text)),
    }
}

/// Parses one value off the front of `bytes`: `Ok(Some((value, bytes
/// used)))`, `Ok(None)` if it is incomplete, or why it is not canonical.
pub fn parse_reply(version: RespVersion, bytes: &[u8]) -> Result<Option<(RespValue, usize)>, ReplyParseError> {
    parse_value(version, bytes, 0)
}

fn parse_value(
    version: RespVersion,
    bytes: &[u8],
    depth: usize,
) -> Result<Option<(RespValue, usize)>, ReplyParseError> {
    let Some(&kind) = bytes.first() else { return Ok(None) };
    let Some((line, mut used)) = line(&bytes[1..])? else { return Ok(None) };
    used += 1;
    let value = match (version, kind) {
        (_, b'+') => RespValue::Simple(line.to_vec()),
        (_, b'-') => RespValue::Error(line.to_vec()),
        (_, b':') => RespValue::Integer(integer(line)?),
        (_, b'$') => match length(line)? {
            None => RespValue::NullBulk,
            Some(len) => {
                let Some(data) = bytes.get(used..used.saturating_add(len)) else { return Ok(None) };
                match bytes.get(used + len..used + len + 2) {
                    None if bytes.len() == used + len + 1 && bytes[used + len] == b'\r' => return Ok(None),
                    None if bytes.len() == used + len => return Ok(None),
                    Some(b"\r\n") => {}
                    _ => return Err(ReplyParseError::BadBulkTerminator),
                }
                used += len + 2;
                RespValue::Bulk(data.to_vec())
            }
        },
        (_, b'*') => match length(line)? {
            None => RespValue::NullArray,
            Some(count) => {
                if depth == DEPTH_MAX {
                    return Err(ReplyParseError::TooDeep);
                }
                // No capacity from the count: a hostile count must not allocate.
                let mut items = Vec::new();
                for _ in 0..count {
                    let Some((item, item_used)) = parse_value(version, &bytes[used..], depth + 1)? else {
                        return Ok(None);
                    };
                    items.push(item);
                    used += item_used;
                }
                RespValue::Array(items)
            }
        },
        (RespVersion::Resp3, b'_') if line.is_empty() => RespValue::Null,
        (RespVersion::Resp3, b'_') => return Err(ReplyParseError::BadLength),
        (_, other) => return Err(ReplyParseError::UnknownType(other)),
    };
    Ok(Some((value, used)))
}

/// The line at the front of `bytes` (without CRLF) and the bytes it takes
/// with its CRLF; `None` if its CRLF has not arrived.
fn line(bytes: &[u8]) -> Result<Option<(&[u8], usize)>, ReplyParseError> {
    let Some(end) = bytes.iter().position(|&byte| byte == b'\r' || byte == b'\n') else { return Ok(None) };
    match (bytes[end], bytes.get(end + 1)) {
        (b'\r', None) => Ok(None),
        (b'\r', Some(b'\n')) => Ok(Some((&bytes[..end], end + 2))),
        _ => Err(ReplyParseError::BadLineEnding),
    }
}

/// A canonical decimal i64: `0`, or an optional `-` then digits without a
/// leading zero.
fn integer(line: &[u8]) -> Result<i64, ReplyParseError> {
    let digits = line.strip_prefix(b"-").unwrap_or(line);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == line.len(),
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return Err(ReplyParseError::BadInteger);
    }
    // Canonical digits are ASCII, so the conversions cannot fail but on range.
    std::str::from_utf8(line).ok().and_then(|text| text.parse().ok()).ok_or(ReplyParseError::BadInteger)
}

/// A bulk length or array count: `None` for -1 (null).
fn length(line: &[u8]) -> Result<Option<usize>, ReplyParseError> {
    match integer(line)? {
        -1 => Ok(None),
        n => usize::try_from(n).map(Some).map_err(|_| ReplyParseError::BadLength),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<(RespValue, usize)>, ReplyParseError> {
        parse_reply(RespVersion::Resp2, bytes)
    }

    #[test]
    fn parses_each_type() {
        let bulk = |text: &[u8]| RespValue::Bulk(text.to_vec());
        assert_eq!(parse(b"+OK\r\n"), Ok(Some((RespValue::Simple(b"OK".to_vec()), 5))));
        assert_eq!(parse(b"-ERR x\r\n+"), Ok(Some((RespValue::Error(b"ERR x".to_vec()), 8))));
        assert_eq!(parse(b":-12\r\n"), Ok(Some((RespValue::Integer(-12), 6))));
        assert_eq!(parse(b"$2\r\n\r\n\r\n"), Ok(Some((bulk(b"\r\n"), 8))));
        assert_eq!(parse(b"$-1\r\n"), Ok(Some((RespValue::NullBulk, 5))));
        assert_eq!(parse(b"*-1\r\n"), Ok(Some((RespValue::NullArray, 5))));
        let array = RespValue::Array(vec![bulk(b"a"), RespValue::NullBulk, RespValue::Integer(0)]);
        assert_eq!(parse(b"*3\r\n$1\r\na\r\n$-1\r\n:0\r\n"), Ok(Some((array, 20))));
    }

    #[test]
    fn incomplete_input_waits() {
        for input in [&b""[..], b"+OK", b"+OK\r", b":1", b"$3\r\nab", b"$3\r\nabc", b"$3\r\nabc\r", b"*2\r\n:1\r\n"] {
            assert_eq!(parse(input), Ok(None), "{input:?}");
        }
    }

    #[test]
    fn non_canonical_input_is_refused() {
        let cases: &[(&[u8], ReplyParseError)] = &[
            (b"+OK\n", ReplyParseError::BadLineEnding),
            (b"+O\rK\r\n", ReplyParseError::BadLineEnding),
            (b":01\r\n", ReplyParseError::BadInteger),
            (b":-0\r\n", ReplyParseError::BadInteger),
            (b":+1\r\n", ReplyParseError::BadInteger),
            (b":\r\n", ReplyParseError::BadInteger),
            (b":9223372036854775808\r\n", ReplyParseError::BadInteger),
            (b"$-2\r\n", ReplyParseError::BadLength),
            (b"$1\r\nab\r\n", ReplyParseError::BadBulkTerminator),
            (b"$1\r\na\n", ReplyParseError::BadBulkTerminator),
            (b"!1\r\n", ReplyParseError::UnknownType(b'!')),
        ];
        for (input, error) in cases {
            assert_eq!(parse(input), Err(*error), "{input:?}");
        }
        let deep = "*1\r\n".repeat(DEPTH_MAX + 1);
        assert_eq!(parse(deep.as_bytes()), Err(ReplyParseError::TooDeep));
    }

    #[test]
    fn every_reply_variant_round_trips() {
        // One input per variant: the first byte picks it.
        for variant in 0..8u8 {
            for version in [RespVersion::Resp2, RespVersion::Resp3] {
                reply_roundtrip(version, &[variant, 3, b'a', b'\r', b'\n', 1, 2, b'x']);
            }
        }
        reply_roundtrip(RespVersion::Resp2, &[]);
        assert_eq!(parse_reply(RespVersion::Resp3, b"_\r\n"), Ok(Some((RespValue::Null, 3))));
        assert_eq!(parse_reply(RespVersion::Resp2, b"_\r\n"), Err(ReplyParseError::UnknownType(b'_')));
    }
}
