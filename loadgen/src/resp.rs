//! The RESP2 client side: GET and SET encoded as multibulk requests, and an
//! incremental reply parser that never panics, whatever the bytes.
//!
//! The parser is restartable rather than stateful: `parse_reply` looks at
//! the unconsumed bytes and returns a complete reply with its length, or
//! `None` if more bytes are needed. Replies to GET and SET are one short
//! line or one bulk string, so re-scanning a partial reply costs little.

use std::fmt;

/// A simple, error or integer line longer than this is not RESP we accept.
pub const LINE_BYTES_MAX: usize = 64 * 1024;
/// Redis's own proto-max-bulk-len default.
pub const BULK_BYTES_MAX: i64 = 512 * 1024 * 1024;
pub const ARRAY_LEN_MAX: i64 = 1 << 24;
/// Arrays nested deeper than this are refused (the parser recurses).
pub const DEPTH_MAX: usize = 32;
/// An array's element vector starts no larger than this, whatever its
/// announced length, so a lying length cannot allocate gigabytes.
const ARRAY_PREALLOCATE_MAX: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Integer(i64),
    Bulk(&'a [u8]),
    /// `$-1`: GET of a missing key.
    Null,
    Array(Vec<Reply<'a>>),
    /// `*-1`.
    NullArray,
}

impl Reply<'_> {
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    UnknownType(u8),
    /// A line ended in `\n` without `\r`, or a bulk string without `\r\n`.
    BadTerminator,
    LineTooLong,
    BadInteger,
    BadLength(i64),
    TooDeep,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnknownType(byte) => write!(f, "unknown RESP type byte 0x{byte:02x}"),
            ProtocolError::BadTerminator => write!(f, "missing CRLF"),
            ProtocolError::LineTooLong => write!(f, "line longer than {LINE_BYTES_MAX} bytes"),
            ProtocolError::BadInteger => write!(f, "malformed integer"),
            ProtocolError::BadLength(length) => write!(f, "bad length {length}"),
            ProtocolError::TooDeep => write!(f, "arrays nested deeper than {DEPTH_MAX}"),
        }
    }
}

pub fn encode_get(out: &mut Vec<u8>, key: &[u8]) {
    out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
    push_bulk(out, key);
}

pub fn encode_set(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
    push_bulk(out, key);
    push_bulk(out, value);
}

fn push_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    push_usize(out, bytes.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

fn push_usize(out: &mut Vec<u8>, value: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// One complete reply at the start of `buf` and the bytes it takes, or
/// `None` if `buf` holds only part of one.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    parse_at(buf, 0, 0)
}

fn parse_at(buf: &[u8], start: usize, depth: usize) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    let Some(&kind) = buf.get(start) else {
        return Ok(None);
    };
    if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
        return Err(ProtocolError::UnknownType(kind));
    }
    let Some((line, after_line)) = find_line(buf, start + 1)? else {
        return Ok(None);
    };
    match kind {
        b'+' => Ok(Some((Reply::Simple(line), after_line))),
        b'-' => Ok(Some((Reply::Error(line), after_line))),
        b':' => Ok(Some((Reply::Integer(parse_integer(line)?), after_line))),
        b'$' => {
            let length = parse_integer(line)?;
            if length == -1 {
                return Ok(Some((Reply::Null, after_line)));
            }
            if !(0..=BULK_BYTES_MAX).contains(&length) {
                return Err(ProtocolError::BadLength(length));
            }
            let body_end = after_line + length as usize;
            let Some(terminator) = buf.get(body_end..body_end + 2) else {
                return Ok(None);
            };
            if terminator != b"\r\n" {
                return Err(ProtocolError::BadTerminator);
            }
            Ok(Some((Reply::Bulk(&buf[after_line..body_end]), body_end + 2)))
        }
        _ => {
            let length = parse_integer(line)?;
            if length == -1 {
                return Ok(Some((Reply::NullArray, after_line)));
            }
            if !(0..=ARRAY_LEN_MAX).contains(&length) {
                return Err(ProtocolError::BadLength(length));
            }
            if depth + 1 > DEPTH_MAX {
                return Err(ProtocolError::TooDeep);
            }
            let mut items = Vec::with_capacity((length as usize).min(ARRAY_PREALLOCATE_MAX));
            let mut at = after_line;
            for _ in 0..length {
                match parse_at(buf, at, depth + 1)? {
                    Some((item, next)) => {
                        items.push(item);
                        at = next;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Reply::Array(items), at)))
        }
    }
}

/// The line starting at `start` (without its CRLF) and the offset after it.
fn find_line(buf: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
    let rest = &buf[start..];
    let window = &rest[..rest.len().min(LINE_BYTES_MAX + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(newline) => {
            if newline == 0 || rest[newline - 1] != b'\r' {
                return Err(ProtocolError::BadTerminator);
            }
            Ok(Some((&rest[..newline - 1], start + newline + 1)))
        }
        None if rest.len() > LINE_BYTES_MAX + 1 => Err(ProtocolError::LineTooLong),
        None => Ok(None),
    }
}

fn parse_integer(text: &[u8]) -> Result<i64, ProtocolError> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(ProtocolError::BadInteger);
    }
    let mut value: i64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return Err(ProtocolError::BadInteger);
        }
        let digit = (byte - b'0') as i64;
        // Accumulate negatively so that i64::MIN parses too.
        value = value.checked_mul(10).and_then(|v| v.checked_sub(digit)).ok_or(ProtocolError::BadInteger)?;
    }
    if negative {
        Ok(value)
    } else {
        value.checked_neg().ok_or(ProtocolError::BadInteger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// One of each reply type, with the parse we expect.
    fn samples() -> Vec<(&'static [u8], Reply<'static>)> {
        vec![
            (b"+OK\r\n", Reply::Simple(b"OK")),
            (b"+\r\n", Reply::Simple(b"")),
            (b"-ERR wrong type\r\n", Reply::Error(b"ERR wrong type")),
            (b":0\r\n", Reply::Integer(0)),
            (b":-42\r\n", Reply::Integer(-42)),
            (b":9223372036854775807\r\n", Reply::Integer(i64::MAX)),
            (b":-9223372036854775808\r\n", Reply::Integer(i64::MIN)),
            (b"$5\r\nhello\r\n", Reply::Bulk(b"hello")),
            (b"$0\r\n\r\n", Reply::Bulk(b"")),
            (b"$4\r\na\r\nb\r\n", Reply::Bulk(b"a\r\nb")),
            (b"$-1\r\n", Reply::Null),
            (b"*-1\r\n", Reply::NullArray),
            (b"*0\r\n", Reply::Array(vec![])),
            (
                b"*3\r\n$3\r\nfoo\r\n$-1\r\n*2\r\n:1\r\n-E x\r\n",
                Reply::Array(vec![
                    Reply::Bulk(b"foo"),
                    Reply::Null,
                    Reply::Array(vec![Reply::Integer(1), Reply::Error(b"E x")]),
                ]),
            ),
        ]
    }

    #[test]
    fn every_reply_type_parses() {
        for (bytes, expected) in samples() {
            let (reply, used) = parse_reply(bytes).unwrap().unwrap();
            assert_eq!(reply, expected, "{:?}", String::from_utf8_lossy(bytes));
            assert_eq!(used, bytes.len());
            assert_eq!(reply.is_error(), matches!(expected, Reply::Error(_)));
        }
    }

    #[test]
    fn every_prefix_is_incomplete_and_never_a_wrong_reply() {
        for (bytes, _) in samples() {
            for cut in 0..bytes.len() {
                assert_eq!(parse_reply(&bytes[..cut]), Ok(None), "{:?} cut at {cut}", String::from_utf8_lossy(bytes));
            }
        }
    }

    /// Streams the concatenation of all samples into a reader-style buffer
    /// in two chunks split at every byte boundary, parsing as bytes arrive.
    #[test]
    fn a_stream_split_at_every_byte_boundary_parses_the_same() {
        let samples = samples();
        let stream: Vec<u8> = samples.iter().flat_map(|(bytes, _)| bytes.iter().copied()).collect();
        let expected: Vec<Reply<'_>> = samples.iter().map(|(_, reply)| reply.clone()).collect();
        for cut in 0..=stream.len() {
            let mut buffer = Vec::new();
            let mut parsed = Vec::new();
            for chunk in [&stream[..cut], &stream[cut..]] {
                buffer.extend_from_slice(chunk);
                let mut consumed = 0;
                while let Some((reply, used)) = parse_reply(&buffer[consumed..]).unwrap() {
                    parsed.push(format!("{reply:?}"));
                    consumed += used;
                }
                buffer.drain(..consumed);
            }
            let expected: Vec<String> = expected.iter().map(|r| format!("{r:?}")).collect();
            assert_eq!(parsed, expected, "cut at {cut}");
            assert!(buffer.is_empty(), "cut at {cut}: {} bytes left", buffer.len());
        }
    }

    #[test]
    fn malformed_replies_are_errors() {
        let cases: [(&[u8], ProtocolError); 10] = [
            (b"?\r\n", ProtocolError::UnknownType(b'?')),
            (b"+OK\n", ProtocolError::BadTerminator),
            (b":12a\r\n", ProtocolError::BadInteger),
            (b":\r\n", ProtocolError::BadInteger),
            (b":-\r\n", ProtocolError::BadInteger),
            (b":9223372036854775808\r\n", ProtocolError::BadInteger),
            (b"$-2\r\n", ProtocolError::BadLength(-2)),
            (b"$99999999999\r\n", ProtocolError::BadLength(99_999_999_999)),
            (b"$3\r\nabcde", ProtocolError::BadTerminator),
            (b"*99999999999\r\n", ProtocolError::BadLength(99_999_999_999)),
        ];
        for (bytes, expected) in cases {
            assert_eq!(parse_reply(bytes), Err(expected), "{:?}", String::from_utf8_lossy(bytes));
        }
        let deep: Vec<u8> = b"*1\r\n".repeat(DEPTH_MAX + 1).into_iter().chain(b":1\r\n".iter().copied()).collect();
        assert_eq!(parse_reply(&deep), Err(ProtocolError::TooDeep));
        let long_line = [b"+".as_slice(), &vec![b'x'; LINE_BYTES_MAX + 10]].concat();
        assert_eq!(parse_reply(&long_line), Err(ProtocolError::LineTooLong));
        // A huge announced array that never arrives is incomplete, not an allocation.
        assert_eq!(parse_reply(b"*16777216\r\n:1\r\n"), Ok(None));
    }

    #[test]
    fn garbage_never_panics() {
        let valid: Vec<u8> = samples().iter().flat_map(|(bytes, _)| bytes.iter().copied()).collect();
        let alphabet = b"+-:$*\r\n0123456789-abc";
        for seed in 0..2000u64 {
            let mut rng = SplitMix64::new(seed);
            // Random bytes, biased towards RESP's own alphabet.
            let length = rng.below(64) as usize;
            let garbage: Vec<u8> = (0..length)
                .map(|_| {
                    if rng.below(2) == 0 {
                        alphabet[rng.below(alphabet.len() as u64) as usize]
                    } else {
                        rng.next_u64() as u8
                    }
                })
                .collect();
            drain_all(&garbage);
            // A valid stream with a few bytes flipped.
            let mut mutated = valid.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(mutated.len() as u64) as usize;
                mutated[at] = alphabet[rng.below(alphabet.len() as u64) as usize];
            }
            drain_all(&mutated);
        }
    }

    /// Parses until an error or the end, like the reader does.
    fn drain_all(bytes: &[u8]) {
        let mut at = 0;
        while let Ok(Some((_, used))) = parse_reply(&bytes[at..]) {
            assert!(used > 0 && at + used <= bytes.len());
            at += used;
        }
    }

    #[test]
    fn requests_are_multibulk() {
        let mut out = Vec::new();
        encode_get(&mut out, b"key:1");
        encode_set(&mut out, b"k", b"");
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
        out.clear();
        encode_set(&mut out, b"k", &[b'v'; 1234]);
        assert!(out.starts_with(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1234\r\nvvv"));
    }
}
