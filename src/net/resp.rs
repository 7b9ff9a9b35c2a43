//! RESP2, the Redis client protocol: a parser for commands and an encoder
//! for replies.
//!
//! A command is either a multibulk array of bulk strings or an inline line:
//!
//! ```text
//! multibulk = "*" count CRLF ( "$" length CRLF data CRLF )*count
//! inline    = arg ( " " arg )* ( CRLF | LF )   arg: bare word, "double" or 'single' quoted
//! ```
//!
//! Invariants:
//! - [`parse_command`] never panics on any input, and it is prefix-stable:
//!   feeding a stream in any split gives the same commands and the same
//!   error as feeding it whole. It consumes bytes only for a whole command
//!   (or for an empty one it skips).
//! - It decides early: a count or length over its [`RespLimits`] bound is
//!   an error as soon as its digits arrive, before the data does, and so is
//!   an inline line that outgrows `inline_bytes_max`. While it waits for
//!   more data the buffer therefore holds at most one command, no larger
//!   than the limits allow (a length over `bulk_bytes_max` but within
//!   `bulk_skip_max` is told once its line ends, and its data is never
//!   buffered: [`SkipCommand`]). It does not bound the total size of a command
//!   (`args_max` × `bulk_bytes_max`); the connection caps its read buffer.
//! - Arguments are zero-copy slices of the read buffer, except inline
//!   arguments that contain quotes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;

/// Bounds on what one command may claim, checked before the data arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RespLimits {
    /// The most arguments (command name included) of a multibulk command.
    pub args_max: usize,
    /// The longest bulk string (one argument) in bytes.
    pub bulk_bytes_max: usize,
    /// The longest inline command line in bytes, without its line ending.
    pub inline_bytes_max: usize,
    /// A bulk string longer than `bulk_bytes_max` but at most this long is
    /// refused without losing the stream: [`RespError::BulkTooLarge`] says
    /// where the rest of its command starts, and [`SkipCommand`] drops it
    /// as it arrives. A longer one (or any, if this is not above
    /// `bulk_bytes_max`) is an invalid length.
    pub bulk_skip_max: usize,
}

impl Default for RespLimits {
    fn default() -> RespLimits {
        RespLimits {
            args_max: 1024 * 1024,
            bulk_bytes_max: 8 * 1024 * 1024,
            inline_bytes_max: 64 * 1024,
            bulk_skip_max: 0,
        }
    }
}

/// A malformed command. The server replies `-ERR <Display>` and closes the
/// connection: the stream cannot be resynchronized. All but
/// [`RespError::BulkTooLarge`], which leaves the buffer as it was and says
/// how to skip the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RespError {
    /// A multibulk count that is not a number, is `-0`, or exceeds
    /// `args_max`.
    InvalidMultibulkLength,
    /// A bulk length that is not a number, is negative, or exceeds
    /// `bulk_bytes_max`.
    InvalidBulkLength,
    /// A multibulk argument that does not start with `$`.
    ExpectedBulk { got: u8 },
    /// Bulk data not followed by CRLF.
    MissingBulkTerminator,
    /// An inline line longer than `inline_bytes_max`.
    InlineTooBig,
    /// An inline line with an unterminated quote, or a closing quote not
    /// followed by a space.
    UnbalancedQuotes,
    /// A bulk string of `len` bytes, over `bulk_bytes_max` but within
    /// `bulk_skip_max`: its data starts at `data_start` in the buffer and
    /// `args_left` more arguments follow it. Nothing was consumed; the
    /// caller drops the command's bytes (`SkipCommand`) and answers it.
    BulkTooLarge { len: usize, data_start: usize, args_left: usize },
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::InvalidMultibulkLength => f.write_str("Protocol error: invalid multibulk length"),
            RespError::InvalidBulkLength => f.write_str("Protocol error: invalid bulk length"),
            RespError::ExpectedBulk { got } => {
                write!(f, "Protocol error: expected '$', got '{}'", std::ascii::escape_default(*got))
            }
            RespError::MissingBulkTerminator => f.write_str("Protocol error: expected CRLF after bulk data"),
            RespError::InlineTooBig => f.write_str("Protocol error: too big inline request"),
            RespError::UnbalancedQuotes => f.write_str("Protocol error: unbalanced quotes in request"),
            RespError::BulkTooLarge { len, .. } => write!(f, "argument too large ({len} bytes)"),
        }
    }
}

impl std::error::Error for RespError {}

/// Parses one command from the front of `buf`.
///
/// `Ok(Some(args))`: the command's bytes are consumed and `args` (never
/// empty) are slices of them. `Ok(None)`: more data is needed; only empty
/// commands (`*0`, `*-1`, blank inline lines) were consumed. `Err`: the
/// stream is malformed; `buf` is left in an unspecified state, but for
/// [`RespError::BulkTooLarge`], which consumes nothing.
pub fn parse_command(buf: &mut BytesMut, limits: &RespLimits) -> Result<Option<Vec<Bytes>>, RespError> {
    loop {
        match buf.first() {
            None => return Ok(None),
            Some(b'*') => match scan_multibulk(buf, limits, |_, _| {})? {
                None => return Ok(None),
                Some(Scanned { bytes, count: 0 }) => buf.advance(bytes),
                Some(Scanned { bytes, count }) => return split_multibulk(buf, limits, bytes, count).map(Some),
            },
            Some(_) => match parse_inline(buf, limits)? {
                None => return Ok(None),
                Some(args) if args.is_empty() => {}
                Some(args) => return Ok(Some(args)),
            },
        }
    }
}

/// A complete multibulk command at the front of the buffer.
struct Scanned {
    /// Its length in bytes.
    bytes: usize,
    /// Its number of arguments; 0 for `*0` and `*-1`.
    count: usize,
}

/// Validates the multibulk command at the front of `input` and reports each
/// argument's byte range to `on_arg`. `Ok(None)` when it is incomplete.
fn scan_multibulk(
    input: &[u8],
    limits: &RespLimits,
    mut on_arg: impl FnMut(usize, usize),
) -> Result<Option<Scanned>, RespError> {
    let Some(header) = parse_length_line(input, 1, limits.args_max, true, RespError::InvalidMultibulkLength)? else {
        return Ok(None);
    };
    // `*-1` (a null array), or any negative count, is skipped like `*0`, as
    // Redis does.
    let count = header.value.unwrap_or(0);
    let mut pos = header.end;
    let length_max = limits.bulk_skip_max.max(limits.bulk_bytes_max);
    for arg in 0..count {
        match input.get(pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(&got) => return Err(RespError::ExpectedBulk { got }),
        }
        let Some(line) = parse_length_line(input, pos + 1, length_max, false, RespError::InvalidBulkLength)? else {
            return Ok(None);
        };
        // Never null: nulls are not allowed here.
        let len = line.value.unwrap_or(0);
        let data_start = line.end;
        if len > limits.bulk_bytes_max {
            return Err(RespError::BulkTooLarge { len, data_start, args_left: count - arg - 1 });
        }
        let data_end = data_start.saturating_add(len);
        match input.get(data_end..data_end.saturating_add(2)) {
            None if input.len() < data_end.saturating_add(2) => {
                // The terminator may already be wrong if part of it arrived.
                if input.get(data_end).is_some_and(|&byte| byte != b'\r') {
                    return Err(RespError::MissingBulkTerminator);
                }
                return Ok(None);
            }
            Some(b"\r\n") => {}
            _ => return Err(RespError::MissingBulkTerminator),
        }
        on_arg(data_start, data_end);
        pos = data_end + 2;
    }
    Ok(Some(Scanned { bytes: pos, count }))
}

/// Splits the complete, already validated multibulk command of `bytes`
/// bytes and `count` arguments off the front of `buf`.
fn split_multibulk(
    buf: &mut BytesMut,
    limits: &RespLimits,
    bytes: usize,
    count: usize,
) -> Result<Vec<Bytes>, RespError> {
    let command = buf.split_to(bytes).freeze();
    let mut args = Vec::with_capacity(count);
    // The second scan of the same bytes cannot fail or come up short; it
    // only saves storing the ranges during the first, possibly partial, one.
    scan_multibulk(&command, limits, |start, end| args.push(command.slice(start..end)))?;
    Ok(args)
}

/// What a connection's stream holds next ([`CommandStream::next`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// A whole command.
    Command(Vec<Bytes>),
    /// A command with an argument of `len` bytes, over `bulk_bytes_max`
    /// (within `bulk_skip_max`): its bytes are gone, and it is answered
    /// with an error in its place.
    Refused { len: usize },
    /// More bytes are needed.
    More,
}

/// One connection's parsing: [`parse_command`], and a command refused with
/// [`RespError::BulkTooLarge`] dropped as its bytes arrive, so that the
/// connection goes on with the next command and never holds the oversized
/// bytes. The buffer is the caller's.
#[derive(Debug, Default)]
pub struct CommandStream {
    /// The refused command being dropped, and its oversized length.
    skipping: Option<(SkipCommand, usize)>,
}

impl CommandStream {
    /// The next thing `buf` holds. An error ends the stream.
    pub fn next(&mut self, buf: &mut BytesMut, limits: &RespLimits) -> Result<Next, RespError> {
        loop {
            if let Some((skip, len)) = self.skipping.as_mut() {
                if !skip.skip(buf, limits)? {
                    return Ok(Next::More);
                }
                let len = *len;
                self.skipping = None;
                return Ok(Next::Refused { len });
            }
            match parse_command(buf, limits) {
                Ok(Some(args)) => return Ok(Next::Command(args)),
                Ok(None) => return Ok(Next::More),
                Err(RespError::BulkTooLarge { len, data_start, args_left }) => {
                    buf.advance(data_start);
                    self.skipping = Some((SkipCommand::new(len, args_left), len));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Is a refused command being dropped (its bytes not yet all in)?
    pub fn is_skipping(&self) -> bool {
        self.skipping.is_some()
    }
}

/// Drops the rest of a command refused with [`RespError::BulkTooLarge`]
/// as its bytes arrive (the buffer advanced to the oversized bulk's data
/// first).
#[derive(Debug)]
struct SkipCommand {
    /// Bytes of the current bulk's data still to drop.
    data_left: usize,
    /// Its CRLF is still due.
    terminator_due: bool,
    /// Arguments after the current one.
    args_left: usize,
}

impl SkipCommand {
    /// After `BulkTooLarge { len, args_left, .. }`.
    fn new(len: usize, args_left: usize) -> SkipCommand {
        SkipCommand { data_left: len, terminator_due: true, args_left }
    }

    /// Drop what `buf` holds of the command: `Ok(true)` once all of it is
    /// gone (the next command starts the buffer), `Ok(false)` while more is
    /// due. The later arguments are checked as a command's are (an error
    /// then ends the stream).
    fn skip(&mut self, buf: &mut BytesMut, limits: &RespLimits) -> Result<bool, RespError> {
        loop {
            let dropped = self.data_left.min(buf.len());
            buf.advance(dropped);
            self.data_left -= dropped;
            if self.data_left > 0 {
                return Ok(false);
            }
            if self.terminator_due {
                match (buf.first(), buf.get(1)) {
                    (None, _) | (Some(b'\r'), None) => return Ok(false),
                    (Some(b'\r'), Some(b'\n')) => {
                        buf.advance(2);
                        self.terminator_due = false;
                    }
                    _ => return Err(RespError::MissingBulkTerminator),
                }
            }
            if self.args_left == 0 {
                return Ok(true);
            }
            match buf.first() {
                None => return Ok(false),
                Some(b'$') => {}
                Some(&got) => return Err(RespError::ExpectedBulk { got }),
            }
            let length_max = limits.bulk_skip_max.max(limits.bulk_bytes_max);
            let Some(line) = parse_length_line(buf, 1, length_max, false, RespError::InvalidBulkLength)? else {
                return Ok(false);
            };
            buf.advance(line.end);
            self.data_left = line.value.unwrap_or(0);
            self.terminator_due = true;
            self.args_left -= 1;
        }
    }
}

/// A decimal length line, `count` or `length` followed by CRLF.
struct LengthLine {
    /// The number; `None` for a negative one (`-1`: a null array).
    value: Option<usize>,
    /// The index after the line's LF.
    end: usize,
}

/// Parses the decimal number at `input[start..]` that ends with CRLF: at
/// most `max`, or when `allow_null` any negative number but `-0` (a
/// multibulk count, skipped as an empty command). `Ok(None)` when the line
/// is incomplete. Any other byte, including a leading zero (as Redis),
/// fails with `error` as soon as it arrives, so a pending line is short.
fn parse_length_line(
    input: &[u8],
    start: usize,
    max: usize,
    allow_null: bool,
    error: RespError,
) -> Result<Option<LengthLine>, RespError> {
    let mut pos = start;
    let negative = input.get(pos) == Some(&b'-');
    if negative {
        if !allow_null {
            return Err(error);
        }
        pos += 1;
    }
    let digits_start = pos;
    let mut value: usize = 0;
    loop {
        match input.get(pos) {
            None => return Ok(None),
            Some(&digit @ b'0'..=b'9') => {
                let leading_zero = pos > digits_start && value == 0;
                value = value.checked_mul(10).and_then(|v| v.checked_add(usize::from(digit - b'0'))).ok_or(error)?;
                if leading_zero || (!negative && value > max) {
                    return Err(error);
                }
                pos += 1;
            }
            Some(b'\r') => break,
            Some(_) => return Err(error),
        }
    }
    if pos == digits_start || (negative && value == 0) {
        return Err(error);
    }
    match input.get(pos + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(LengthLine { value: if negative { None } else { Some(value) }, end: pos + 2 })),
        Some(_) => Err(error),
    }
}

/// Parses one inline command line (ending in LF, optionally CRLF).
/// `Ok(Some(vec![]))` for a blank line, which is consumed.
fn parse_inline(buf: &mut BytesMut, limits: &RespLimits) -> Result<Option<Vec<Bytes>>, RespError> {
    // A line of at most `inline_bytes_max` bytes has its LF within the
    // first `inline_bytes_max + 2` bytes; look no further.
    let window_max = limits.inline_bytes_max.saturating_add(2);
    let window = buf.len().min(window_max);
    let Some(newline) = buf[..window].iter().position(|&byte| byte == b'\n') else {
        return if buf.len() >= window_max { Err(RespError::InlineTooBig) } else { Ok(None) };
    };
    let content_len = if newline > 0 && buf[newline - 1] == b'\r' { newline - 1 } else { newline };
    if content_len > limits.inline_bytes_max {
        return Err(RespError::InlineTooBig);
    }
    let line = buf.split_to(newline + 1).freeze();
    split_inline_args(&line.slice(..content_len)).map(Some)
}

fn is_inline_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// Splits an inline line into arguments like redis-cli's `sdssplitargs`,
/// simplified: a quote starts a quoted argument only at its beginning.
fn split_inline_args(line: &Bytes) -> Result<Vec<Bytes>, RespError> {
    let mut args = Vec::new();
    let mut pos = 0;
    loop {
        while line.get(pos).is_some_and(|&byte| is_inline_space(byte)) {
            pos += 1;
        }
        let Some(&first) = line.get(pos) else {
            return Ok(args);
        };
        if first == b'"' || first == b'\'' {
            let (arg, next) = parse_quoted(line, pos + 1, first)?;
            args.push(Bytes::from(arg));
            pos = next;
        } else {
            let start = pos;
            while line.get(pos).is_some_and(|&byte| !is_inline_space(byte)) {
                pos += 1;
            }
            args.push(line.slice(start..pos));
        }
    }
}

/// Parses a quoted argument whose opening `quote` precedes `line[start]`.
/// Double quotes understand `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and `\<c>`;
/// single quotes only `\'`. Returns the argument and the index after the
/// closing quote, which must be followed by a space or the end of line.
fn parse_quoted(line: &[u8], start: usize, quote: u8) -> Result<(Vec<u8>, usize), RespError> {
    let mut arg = Vec::new();
    let mut pos = start;
    loop {
        let Some(&byte) = line.get(pos) else {
            return Err(RespError::UnbalancedQuotes);
        };
        if byte == quote {
            pos += 1;
            return match line.get(pos) {
                Some(&next) if !is_inline_space(next) => Err(RespError::UnbalancedQuotes),
                _ => Ok((arg, pos)),
            };
        }
        let escaped = line.get(pos + 1).copied();
        match (byte, escaped) {
            (b'\\', Some(b'\'')) if quote == b'\'' => {
                arg.push(b'\'');
                pos += 2;
            }
            (b'\\', Some(b'x')) if quote == b'"' => {
                let high = line.get(pos + 2).copied().and_then(hex_value);
                let low = line.get(pos + 3).copied().and_then(hex_value);
                if let (Some(high), Some(low)) = (high, low) {
                    arg.push(high << 4 | low);
                    pos += 4;
                } else {
                    arg.push(b'x');
                    pos += 2;
                }
            }
            (b'\\', Some(escaped)) if quote == b'"' => {
                arg.push(match escaped {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                pos += 2;
            }
            _ => {
                arg.push(byte);
                pos += 1;
            }
        }
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// "00" "01" ... "99": two digits per division when formatting integers.
const DIGIT_PAIRS: [u8; 200] = digit_pairs();

const fn digit_pairs() -> [u8; 200] {
    let mut pairs = [0u8; 200];
    let mut n = 0;
    while n < 100 {
        pairs[2 * n] = b'0' + (n / 10) as u8;
        pairs[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    pairs
}

/// Appends the decimal digits of `n`, without allocating.
fn put_decimal(buf: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20]; // u64::MAX has 20 digits
    let mut start = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        start -= 2;
        digits[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        start -= 2;
        digits[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        digits[start] = b'0' + n as u8;
    }
    buf.extend_from_slice(&digits[start..]);
}

/// Appends `prefix`, the decimal `n` and CRLF.
fn put_header(buf: &mut BytesMut, prefix: u8, n: u64) {
    buf.reserve(1 + 20 + 2);
    buf.put_u8(prefix);
    put_decimal(buf, n);
    buf.extend_from_slice(b"\r\n");
}

/// Appends `prefix`, `text` without its CR and LF bytes, and CRLF.
fn put_line(buf: &mut BytesMut, prefix: u8, text: &str) {
    buf.reserve(1 + text.len() + 2);
    buf.put_u8(prefix);
    for part in text.as_bytes().split(|&byte| byte == b'\r' || byte == b'\n') {
        buf.extend_from_slice(part);
    }
    buf.extend_from_slice(b"\r\n");
}

/// A simple string, `+text`. CR and LF are dropped from `text`.
pub fn simple(buf: &mut BytesMut, text: &str) {
    put_line(buf, b'+', text);
}

/// An error, `-message`; `message` includes its code (`"ERR no such key"`).
/// CR and LF are dropped from `message`.
pub fn error(buf: &mut BytesMut, message: &str) {
    put_line(buf, b'-', message);
}

/// An integer, `:n`.
pub fn integer(buf: &mut BytesMut, n: i64) {
    buf.reserve(1 + 1 + 20 + 2);
    buf.put_u8(b':');
    if n < 0 {
        buf.put_u8(b'-');
    }
    put_decimal(buf, n.unsigned_abs());
    buf.extend_from_slice(b"\r\n");
}

/// A bulk string, `$len` CRLF `data`.
pub fn bulk(buf: &mut BytesMut, data: &[u8]) {
    buf.reserve(1 + 20 + 2 + data.len() + 2);
    put_header(buf, b'$', data.len() as u64);
    buf.extend_from_slice(data);
    buf.extend_from_slice(b"\r\n");
}

/// The null bulk string, `$-1`.
pub fn null_bulk(buf: &mut BytesMut) {
    buf.extend_from_slice(b"$-1\r\n");
}

/// The header of an array of `count` elements, which the caller appends.
pub fn array_header(buf: &mut BytesMut, count: usize) {
    put_header(buf, b'*', count as u64);
}

/// The null array, `*-1`.
pub fn null_array(buf: &mut BytesMut) {
    buf.extend_from_slice(b"*-1\r\n");
}

/// The reply protocol of a connection: RESP2 until `HELLO 3`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

impl Proto {
    pub fn number(self) -> i64 {
        match self {
            Proto::Resp2 => 2,
            Proto::Resp3 => 3,
        }
    }
}

/// The null of a missing value: RESP2 `$-1`, RESP3 `_`.
pub fn null(buf: &mut BytesMut, proto: Proto) {
    match proto {
        Proto::Resp2 => null_bulk(buf),
        Proto::Resp3 => buf.extend_from_slice(b"_\r\n"),
    }
}

/// The header of a map of `count` pairs, which the caller appends: RESP3
/// `%count`, RESP2 an array of `2 * count`.
pub fn map_header(buf: &mut BytesMut, count: usize, proto: Proto) {
    match proto {
        Proto::Resp2 => array_header(buf, count * 2),
        Proto::Resp3 => put_header(buf, b'%', count as u64),
    }
}

/// The header of a set of `count` elements, which the caller appends:
/// RESP3 `~count` (Redis 7.0 sends COMMAND INFO's flags, ACL categories,
/// tips and key specs as sets), RESP2 an array.
pub fn set_header(buf: &mut BytesMut, count: usize, proto: Proto) {
    match proto {
        Proto::Resp2 => array_header(buf, count),
        Proto::Resp3 => put_header(buf, b'~', count as u64),
    }
}

/// Text meant for humans (INFO, CLIENT LIST): RESP3 verbatim `=len txt:...`,
/// RESP2 a bulk string.
pub fn verbatim(buf: &mut BytesMut, text: &[u8], proto: Proto) {
    match proto {
        Proto::Resp2 => bulk(buf, text),
        Proto::Resp3 => {
            put_header(buf, b'=', text.len() as u64 + 4);
            buf.extend_from_slice(b"txt:");
            buf.extend_from_slice(text);
            buf.extend_from_slice(b"\r\n");
        }
    }
}

/// Appends a store reply as a connection speaking `proto` gets it (the
/// types Redis 7.0 uses for the same command).
pub fn encode_reply(buf: &mut BytesMut, reply: &crate::kv::Reply, proto: Proto) {
    use crate::kv::Reply;
    match reply {
        Reply::Ok => simple(buf, "OK"),
        Reply::Nil => null(buf, proto),
        Reply::Int(n) => integer(buf, *n),
        Reply::Bulk(data) => bulk(buf, data),
        Reply::Array(items) => {
            array_header(buf, items.len());
            for item in items {
                encode_reply(buf, item, proto);
            }
        }
        Reply::Error(message) => error(buf, message),
        Reply::Status(text) => simple(buf, text),
        Reply::NilArray => match proto {
            Proto::Resp2 => null_array(buf),
            Proto::Resp3 => null(buf, proto),
        },
    }
}

#[cfg(test)]
mod tests;
