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
    /// A multibulk count that is not a number, is negative other than -1,
    /// or exceeds `args_max`.
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
    // `*-1` (a null array) is skipped like `*0`, as Redis does.
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

/// Drops the rest of a command refused with [`RespError::BulkTooLarge`]
/// as its bytes arrive (the buffer advanced to the oversized bulk's data
/// first), so that the connection goes on with the next command and never
/// holds the oversized bytes.
#[derive(Debug)]
pub struct SkipCommand {
    /// Bytes of the current bulk's data still to drop.
    data_left: usize,
    /// Its CRLF is still due.
    terminator_due: bool,
    /// Arguments after the current one.
    args_left: usize,
}

impl SkipCommand {
    /// After `BulkTooLarge { len, args_left, .. }`.
    pub fn new(len: usize, args_left: usize) -> SkipCommand {
        SkipCommand { data_left: len, terminator_due: true, args_left }
    }

    /// Drop what `buf` holds of the command: `Ok(true)` once all of it is
    /// gone (the next command starts the buffer), `Ok(false)` while more is
    /// due. The later arguments are checked as a command's are (an error
    /// then ends the stream).
    pub fn skip(&mut self, buf: &mut BytesMut, limits: &RespLimits) -> Result<bool, RespError> {
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
    /// The number; `None` for `-1` (a null array).
    value: Option<usize>,
    /// The index after the line's LF.
    end: usize,
}

/// Parses the decimal number at `input[start..]` that ends with CRLF: at
/// most `max`, or `-1` when `allow_null`. `Ok(None)` when the line is
/// incomplete. Any other byte, including a leading zero (as Redis), fails
/// with `error` as soon as it arrives, so a pending line is short.
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
                if leading_zero || (negative && value > 1) || (!negative && value > max) {
                    return Err(error);
                }
                pos += 1;
            }
            Some(b'\r') => break,
            Some(_) => return Err(error),
        }
    }
    if pos == digits_start || (negative && value != 1) {
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
mod tests {
    use super::*;
    use crate::kv::Reply;
    use crate::rng::Rng;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    fn args(texts: &[&str]) -> Vec<Bytes> {
        texts.iter().map(|text| b(text)).collect()
    }

    /// The multibulk encoding of a command, as clients send it.
    fn multibulk(args: &[Bytes]) -> BytesMut {
        let mut buf = BytesMut::new();
        array_header(&mut buf, args.len());
        args.iter().for_each(|arg| bulk(&mut buf, arg));
        buf
    }

    /// Every command parseable from `input` in one go, and the error (if
    /// any) that ends it.
    fn parse_all(input: &[u8], limits: &RespLimits) -> (Vec<Vec<Bytes>>, Option<RespError>) {
        let mut feeder = Feeder::default();
        feeder.buf.extend_from_slice(input);
        let mut commands = Vec::new();
        let error = feeder.drain(limits, &mut commands).err();
        (commands, error)
    }

    /// A connection's parsing as the server does it: commands, and a
    /// command with an argument over `bulk_bytes_max` dropped as its bytes
    /// arrive, a marker `<skipped LEN>` in its place once all are gone.
    #[derive(Default)]
    struct Feeder {
        buf: BytesMut,
        skipping: Option<(SkipCommand, usize)>,
    }

    impl Feeder {
        /// Everything the buffer holds, until more bytes are needed (Ok) or
        /// the stream's error.
        fn drain(&mut self, limits: &RespLimits, out: &mut Vec<Vec<Bytes>>) -> Result<(), RespError> {
            loop {
                if let Some((skip, len)) = self.skipping.as_mut() {
                    if !skip.skip(&mut self.buf, limits)? {
                        return Ok(());
                    }
                    out.push(vec![Bytes::from(format!("<skipped {len}>"))]);
                    self.skipping = None;
                }
                match parse_command(&mut self.buf, limits) {
                    Ok(Some(command)) => out.push(command),
                    Ok(None) => return Ok(()),
                    Err(RespError::BulkTooLarge { len, data_start, args_left }) => {
                        let _ = self.buf.split_to(data_start);
                        self.skipping = Some((SkipCommand::new(len, args_left), len));
                    }
                    Err(error) => return Err(error),
                }
            }
        }
    }

    #[test]
    fn an_argument_over_the_limit_is_dropped_and_the_stream_goes_on() {
        let limits = RespLimits { bulk_bytes_max: 4, bulk_skip_max: 100, ..RespLimits::default() };
        let mut input = multibulk(&args(&["SET", "k", "v"])).to_vec();
        input.extend_from_slice(&multibulk(&args(&["SET", "k", "0123456789", "EX", "10"])));
        input.extend_from_slice(&multibulk(&args(&["GET", "k"])));
        let expected = vec![args(&["SET", "k", "v"]), vec![Bytes::from("<skipped 10>")], args(&["GET", "k"])];
        // Whole, and a byte at a time: the oversized bytes are never held.
        assert_eq!(parse_all(&input, &limits), (expected.clone(), None));
        let mut feeder = Feeder::default();
        let mut commands = Vec::new();
        for byte in &input {
            feeder.buf.extend_from_slice(&[*byte]);
            feeder.drain(&limits, &mut commands).expect("a valid stream");
            let held = feeder.buf.len();
            assert!(feeder.skipping.is_none() || held <= 4, "held {held} bytes while dropping");
        }
        assert_eq!(commands, expected);
        // The error leaves the buffer as it was and points at the data.
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$10\r\n0123"[..]);
        let error = parse_command(&mut buf, &limits);
        assert_eq!(error, Err(RespError::BulkTooLarge { len: 10, data_start: 18, args_left: 0 }));
        assert_eq!(buf.len(), 22);
        // Above bulk_skip_max, or with a later argument malformed: the stream's error.
        let huge = b"*1\r\n$101\r\n";
        assert_eq!(parse_all(huge, &limits), (vec![], Some(RespError::InvalidBulkLength)));
        let bad_tail = b"*2\r\n$10\r\n0123456789\r\nx";
        assert_eq!(parse_all(bad_tail, &limits), (vec![], Some(RespError::ExpectedBulk { got: b'x' })));
        let bad_end = b"*1\r\n$10\r\n0123456789xy";
        assert_eq!(parse_all(bad_end, &limits), (vec![], Some(RespError::MissingBulkTerminator)));
    }

    fn parse_one(input: &[u8]) -> Result<Option<Vec<Bytes>>, RespError> {
        parse_command(&mut BytesMut::from(input), &RespLimits::default())
    }

    fn encoded(write: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut buf = BytesMut::new();
        write(&mut buf);
        buf.to_vec()
    }

    #[test]
    fn multibulk_round_trips_and_consumes_exactly_one_command() {
        let commands = [
            args(&["GET", "k"]),
            args(&["SET", "key", "", "NX"]),
            vec![b("SET"), Bytes::from_static(b"\r\n\0\xff*$"), Bytes::from(vec![b'x'; 100_000])],
            args(&["PING"]),
        ];
        for command in &commands {
            let mut buf = multibulk(command);
            buf.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
            assert_eq!(parse_command(&mut buf, &RespLimits::default()), Ok(Some(command.clone())));
            assert_eq!(&buf[..], b"*1\r\n$4\r\nPING\r\n", "only the first command is consumed");
        }
    }

    #[test]
    fn parsed_args_share_the_read_buffer() {
        let mut buf = multibulk(&args(&["SET", "key", "value"]));
        let start = buf.as_ptr() as usize;
        let end = start + buf.len();
        let command = parse_command(&mut buf, &RespLimits::default()).unwrap().unwrap();
        for arg in &command {
            let ptr = arg.as_ptr() as usize;
            assert!(ptr >= start && ptr + arg.len() <= end, "{arg:?} was copied");
        }
    }

    #[test]
    fn incomplete_input_consumes_nothing() {
        let full = multibulk(&args(&["SET", "key", "value"]));
        for len in 0..full.len() {
            let mut buf = BytesMut::from(&full[..len]);
            assert_eq!(parse_command(&mut buf, &RespLimits::default()), Ok(None), "prefix of {len} bytes");
            assert_eq!(buf.len(), len);
        }
        let mut buf = BytesMut::from(&b"GET k"[..]);
        assert_eq!(parse_command(&mut buf, &RespLimits::default()), Ok(None));
        assert_eq!(&buf[..], b"GET k");
    }

    #[test]
    fn empty_multibulk_commands_are_skipped() {
        assert_eq!(
            parse_all(b"*0\r\n*-1\r\n*1\r\n$1\r\nx\r\n*0\r\n", &RespLimits::default()),
            (vec![args(&["x"])], None)
        );
        let mut buf = BytesMut::from(&b"*0\r\n*-1\r\n*1\r\n"[..]);
        assert_eq!(parse_command(&mut buf, &RespLimits::default()), Ok(None));
        assert_eq!(&buf[..], b"*1\r\n", "the empty commands are gone, the partial one stays");
    }

    #[test]
    fn inline_commands_split_on_spaces() {
        let (commands, error) = parse_all(b"PING\r\nset  k\tv\n\r\n\n   \r\nGET k \r\n", &RespLimits::default());
        assert_eq!(error, None);
        assert_eq!(commands, vec![args(&["PING"]), args(&["set", "k", "v"]), args(&["GET", "k"])]);
    }

    #[test]
    fn inline_quotes_and_escapes() {
        let cases: &[(&[u8], Vec<Bytes>)] = &[
            (b"SET \"hello world\" ''\r\n", args(&["SET", "hello world", ""])),
            (b"SET k \"a\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n", args(&["SET", "k", "a\n\r\t\x08\x07\\\"q"])),
            (b"SET k \"\\x41\\x4a\\xZZ\\x4\"\r\n", args(&["SET", "k", "AJxZZx4"])),
            (b"SET k \"\\xff\"\r\n", vec![b("SET"), b("k"), Bytes::from_static(b"\xff")]),
            (b"SET k 'it\\'s \\n'\r\n", args(&["SET", "k", "it's \\n"])),
            (b"SET k a\"b\r\n", args(&["SET", "k", "a\"b"])),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_one(input), Ok(Some(expected.clone())), "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn error_unbalanced_quotes() {
        for input in [&b"SET k \"abc\r\n"[..], b"SET k 'abc\r\n", b"SET k \"a\"b\r\n", b"SET k \"abc\\\"\r\n"] {
            assert_eq!(parse_one(input), Err(RespError::UnbalancedQuotes), "{}", String::from_utf8_lossy(input));
        }
        assert_eq!(
            RespError::UnbalancedQuotes.to_string(),
            "Protocol error: unbalanced quotes in request",
            "the text redis-cli users know"
        );
    }

    #[test]
    fn error_inline_too_big() {
        let limits = RespLimits { inline_bytes_max: 8, ..RespLimits::default() };
        let parse = |input: &[u8]| parse_command(&mut BytesMut::from(input), &limits);
        assert_eq!(parse(b"12345678\r\n"), Ok(Some(args(&["12345678"]))));
        assert_eq!(parse(b"12345678\n"), Ok(Some(args(&["12345678"]))));
        assert_eq!(parse(b"12345678\r"), Ok(None), "the LF may still come");
        assert_eq!(parse(b"123456789\n"), Err(RespError::InlineTooBig));
        assert_eq!(parse(b"123456789\r\n"), Err(RespError::InlineTooBig));
        assert_eq!(parse(b"123456789\r"), Err(RespError::InlineTooBig), "decided before the LF arrives");
        assert_eq!(parse(b"1234567890"), Err(RespError::InlineTooBig));
        assert_eq!(RespError::InlineTooBig.to_string(), "Protocol error: too big inline request");
    }

    #[test]
    fn error_invalid_multibulk_length() {
        let limits = RespLimits { args_max: 3, ..RespLimits::default() };
        for input in [
            &b"*x\r\n"[..],
            b"*\r\n",
            b"*-2\r\n",
            b"*-0\r\n",
            b"*--1\r\n",
            b"*1x",
            b"*1\rx",
            b"*4",
            b"*99999999999999999999999",
            b"*00",
        ] {
            let result = parse_command(&mut BytesMut::from(input), &limits);
            assert_eq!(result, Err(RespError::InvalidMultibulkLength), "{}", String::from_utf8_lossy(input));
        }
        assert_eq!(parse_command(&mut BytesMut::from(&b"*3\r\n"[..]), &limits), Ok(None));
        assert_eq!(RespError::InvalidMultibulkLength.to_string(), "Protocol error: invalid multibulk length");
    }

    #[test]
    fn error_invalid_bulk_length() {
        let limits = RespLimits { bulk_bytes_max: 10, ..RespLimits::default() };
        for input in [
            &b"*1\r\n$x\r\n"[..],
            b"*1\r\n$\r\n",
            b"*1\r\n$-1\r\n",
            b"*1\r\n$-",
            b"*1\r\n$3\rx",
            b"*1\r\n$11",
            b"*1\r\n$01\r\n",
        ] {
            let result = parse_command(&mut BytesMut::from(input), &limits);
            assert_eq!(result, Err(RespError::InvalidBulkLength), "{}", String::from_utf8_lossy(input));
        }
        assert_eq!(
            parse_command(&mut BytesMut::from(&b"*1\r\n$10\r\n"[..]), &limits),
            Ok(None),
            "a length at the limit waits for its data"
        );
        assert_eq!(RespError::InvalidBulkLength.to_string(), "Protocol error: invalid bulk length");
    }

    #[test]
    fn error_expected_dollar() {
        assert_eq!(parse_one(b"*1\r\n:1\r\n"), Err(RespError::ExpectedBulk { got: b':' }));
        assert_eq!(parse_one(b"*2\r\n$1\r\na\r\nx"), Err(RespError::ExpectedBulk { got: b'x' }));
        assert_eq!(RespError::ExpectedBulk { got: b'x' }.to_string(), "Protocol error: expected '$', got 'x'");
        assert_eq!(RespError::ExpectedBulk { got: b'\n' }.to_string(), "Protocol error: expected '$', got '\\n'");
    }

    #[test]
    fn error_missing_bulk_terminator() {
        for input in [&b"*1\r\n$1\r\nab\r\n"[..], b"*1\r\n$1\r\na\rx", b"*1\r\n$1\r\na\n\r", b"*1\r\n$1\r\naX"] {
            assert_eq!(parse_one(input), Err(RespError::MissingBulkTerminator), "{}", String::from_utf8_lossy(input));
        }
        assert_eq!(parse_one(b"*1\r\n$1\r\na\r"), Ok(None));
        assert_eq!(RespError::MissingBulkTerminator.to_string(), "Protocol error: expected CRLF after bulk data");
    }

    /// A pipelined stream mixing every kind of command, and what it parses to.
    fn pipelined_stream() -> (Vec<u8>, Vec<Vec<Bytes>>) {
        let commands = vec![
            args(&["SET", "key", "value"]),
            args(&["GET", "key"]),
            vec![b("SET"), Bytes::from_static(b"bin\r\n"), Bytes::new()],
            args(&["MGET", "a", "b", "c"]),
            args(&["PING"]),
            args(&["ECHO", "hi there"]),
            args(&["DEL", "x"]),
        ];
        let mut stream = Vec::new();
        stream.extend_from_slice(&multibulk(&commands[0]));
        stream.extend_from_slice(&multibulk(&commands[1]));
        stream.extend_from_slice(b"*0\r\n");
        stream.extend_from_slice(&multibulk(&commands[2]));
        stream.extend_from_slice(&multibulk(&commands[3]));
        stream.extend_from_slice(b"\r\nPING\r\n\n");
        stream.extend_from_slice(b"ECHO \"hi there\"\n*-1\r\n");
        stream.extend_from_slice(&multibulk(&commands[6]));
        (stream, commands)
    }

    #[test]
    fn every_split_point_of_a_pipelined_stream_gives_the_same_commands() {
        let (stream, expected) = pipelined_stream();
        assert_eq!(parse_all(&stream, &RespLimits::default()), (expected.clone(), None));
        for split in 0..=stream.len() {
            let mut buf = BytesMut::from(&stream[..split]);
            let mut commands = Vec::new();
            while let Some(command) = parse_command(&mut buf, &RespLimits::default()).unwrap() {
                commands.push(command);
            }
            buf.extend_from_slice(&stream[split..]);
            while let Some(command) = parse_command(&mut buf, &RespLimits::default()).unwrap() {
                commands.push(command);
            }
            assert_eq!(commands, expected, "split at byte {split}");
            assert!(buf.is_empty(), "split at byte {split}: {buf:?} left over");
        }
    }

    #[test]
    fn byte_by_byte_feeding_gives_the_same_commands() {
        let (stream, expected) = pipelined_stream();
        let mut buf = BytesMut::new();
        let mut commands = Vec::new();
        for &byte in &stream {
            buf.put_u8(byte);
            while let Some(command) = parse_command(&mut buf, &RespLimits::default()).unwrap() {
                commands.push(command);
            }
        }
        assert_eq!(commands, expected);
    }

    /// The most bytes a pending (incomplete) command may hold under `limits`.
    fn pending_bytes_max(limits: &RespLimits) -> usize {
        let length_line = |max: usize| 1 + max.to_string().len() + 2;
        let bulk = length_line(limits.bulk_bytes_max.max(limits.bulk_skip_max)) + limits.bulk_bytes_max + 2;
        let multibulk = length_line(limits.args_max) + limits.args_max * bulk;
        multibulk.max(limits.inline_bytes_max + 2)
    }

    /// Random bytes biased towards the protocol's own, mixed with valid and
    /// mutated commands.
    fn garbage(rng: &mut Rng, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"*$\r\n\r\n0123456789-- \"'\\xaAzZ:+";
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            match rng.below(4) {
                0 => out.push(rng.next_u64() as u8),
                1 => out.push(ALPHABET[rng.below(ALPHABET.len() as u64) as usize]),
                2 => {
                    let command: Vec<Bytes> =
                        (0..rng.range_inclusive(1, 4)).map(|i| Bytes::from(vec![b'a' + i as u8; i as usize])).collect();
                    let mut encoded = multibulk(&command).to_vec();
                    if rng.chance(0.3) {
                        let at = rng.below(encoded.len() as u64) as usize;
                        encoded[at] = ALPHABET[rng.below(ALPHABET.len() as u64) as usize];
                    }
                    out.extend_from_slice(&encoded);
                }
                _ => out.extend_from_slice(b"SET \"a b\" 'c'\r\n"),
            }
        }
        out
    }

    /// Feeds `input` in random chunks, parsing after each: the commands and
    /// the error must match parsing it whole, and while the parser waits
    /// the buffer must stay within what the limits allow.
    fn check_garbage(seed: u64) {
        let mut rng = Rng::new(seed);
        let limits = RespLimits {
            args_max: rng.range_inclusive(1, 8) as usize,
            bulk_bytes_max: rng.range_inclusive(0, 40) as usize,
            inline_bytes_max: rng.range_inclusive(0, 40) as usize,
            bulk_skip_max: rng.range_inclusive(0, 80) as usize,
        };
        let input_len = rng.range_inclusive(1, 400) as usize;
        let input = garbage(&mut rng, input_len);
        let whole = parse_all(&input, &limits);

        let mut feeder = Feeder::default();
        let mut commands = Vec::new();
        let mut failure = None;
        let mut fed = 0;
        while fed < input.len() {
            let chunk = (rng.range_inclusive(1, 16) as usize).min(input.len() - fed);
            feeder.buf.extend_from_slice(&input[fed..fed + chunk]);
            fed += chunk;
            let parsed = commands.len();
            let result = feeder.drain(&limits, &mut commands);
            for command in &commands[parsed..] {
                assert!(!command.is_empty(), "seed {seed}: an empty command");
                assert!(command.len() <= limits.args_max.max(limits.inline_bytes_max), "seed {seed}");
            }
            if let Err(error) = result {
                failure = Some(error);
                break;
            }
            let held = feeder.buf.len();
            assert!(held <= pending_bytes_max(&limits), "seed {seed}: buffer grew to {held} bytes");
        }
        assert_eq!((commands, failure), whole, "seed {seed}: chunked parsing differs from whole");
    }

    #[test]
    fn random_garbage_never_panics_and_never_buffers_unboundedly() {
        for seed in 0..3000u64 {
            let result = std::panic::catch_unwind(|| check_garbage(seed));
            assert!(result.is_ok(), "reproduce with: check_garbage({seed})");
        }
    }

    #[test]
    fn integers_format_like_std() {
        let mut values = vec![0, 1, -1, 9, 10, 99, 100, -100, i64::MAX, i64::MIN, i64::MIN + 1];
        let mut power: i64 = 1;
        while let Some(next) = power.checked_mul(10) {
            values.extend_from_slice(&[power - 1, power, power + 1, -power, -(power - 1)]);
            power = next;
        }
        let mut rng = Rng::new(42);
        values.extend((0..1000).map(|_| rng.next_u64() as i64 >> rng.below(64)));
        for n in values {
            assert_eq!(encoded(|buf| integer(buf, n)), format!(":{n}\r\n").into_bytes());
        }
    }

    #[test]
    fn encoder_writes_each_type() {
        assert_eq!(encoded(|buf| simple(buf, "OK")), b"+OK\r\n");
        assert_eq!(encoded(|buf| simple(buf, "a\r\nb")), b"+ab\r\n");
        assert_eq!(encoded(|buf| error(buf, "ERR bad\r\nthing\n")), b"-ERR badthing\r\n");
        assert_eq!(encoded(|buf| bulk(buf, b"")), b"$0\r\n\r\n");
        assert_eq!(encoded(|buf| bulk(buf, b"a\r\nb")), b"$4\r\na\r\nb\r\n");
        assert_eq!(encoded(null_bulk), b"$-1\r\n");
        assert_eq!(encoded(|buf| array_header(buf, 12)), b"*12\r\n");
        assert_eq!(encoded(null_array), b"*-1\r\n");
        assert_eq!(encoded(|buf| set_header(buf, 2, Proto::Resp2)), b"*2\r\n");
        assert_eq!(encoded(|buf| set_header(buf, 2, Proto::Resp3)), b"~2\r\n");
    }

    #[test]
    fn encode_reply_maps_every_variant() {
        let cases: Vec<(Reply, &[u8])> = vec![
            (Reply::Ok, b"+OK\r\n"),
            (Reply::Nil, b"$-1\r\n"),
            (Reply::Int(-7), b":-7\r\n"),
            (Reply::Bulk(b("v")), b"$1\r\nv\r\n"),
            (
                Reply::Array(vec![Reply::Bulk(b("a")), Reply::Nil, Reply::Bulk(Bytes::new())]),
                b"*3\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n",
            ),
            (Reply::Array(vec![]), b"*0\r\n"),
            (Reply::Error("WRONGTYPE x".to_string()), b"-WRONGTYPE x\r\n"),
        ];
        for (reply, expected) in cases {
            assert_eq!(encoded(|buf| encode_reply(buf, &reply, Proto::Resp2)), expected, "{reply:?}");
        }
    }
}
