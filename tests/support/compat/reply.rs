//! Replies as bytes on the wire, RESP2 and RESP3: framing one reply out of
//! a stream, its tree of types for shape comparisons, and the escaping that
//! transcripts and mismatch reports use to show bytes.
//!
//! ```text
//! line      = ("+" | "-" | ":" | "_" | "," | "#" | "(") text CRLF
//! blob      = ("$" | "!" | "=") length CRLF data CRLF  |  "$-1" CRLF
//! aggregate = ("*" | "~" | ">") count CRLF reply*count  |  "*-1" CRLF
//! map       = "%" count CRLF (key value)*count
//! attribute = "|" count CRLF (key value)*count reply
//! ```

use std::fmt;

/// Aggregates nested deeper than this are refused (no reply we send nests
/// more than a few levels; a hostile server must not overflow our stack).
const DEPTH_MAX: usize = 32;

/// One reply, parsed. `kind` is its RESP type byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+ - : _ , # (`: one line of text.
    Line { kind: u8, text: Vec<u8> },
    /// `$ ! =`: length-prefixed data; `None` is the RESP2 null `$-1`.
    Blob { kind: u8, data: Option<Vec<u8>> },
    /// `* ~ > % |`: the items in wire order (a map or attribute lists key,
    /// value, key, value, ...; an attribute ends with the reply it annotates);
    /// `None` is the RESP2 null array `*-1`.
    Aggregate { kind: u8, items: Option<Vec<Reply>> },
}

impl Reply {
    pub fn kind(&self) -> u8 {
        match self {
            Reply::Line { kind, .. } | Reply::Blob { kind, .. } | Reply::Aggregate { kind, .. } => *kind,
        }
    }

    /// The bytes this reply is sent as.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Append the whole reply, its last CRLF included.
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Line { kind, text } => {
                out.push(*kind);
                out.extend_from_slice(text);
            }
            Reply::Blob { kind, data: None } | Reply::Aggregate { kind, items: None } => {
                out.extend_from_slice(&[*kind, b'-', b'1']);
            }
            Reply::Blob { kind, data: Some(data) } => {
                out.push(*kind);
                out.extend_from_slice(data.len().to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(data);
            }
            Reply::Aggregate { kind, items: Some(items) } => {
                let count = match kind {
                    b'%' => items.len() / 2,
                    b'|' => items.len().saturating_sub(1) / 2,
                    _ => items.len(),
                };
                out.push(*kind);
                out.extend_from_slice(count.to_string().as_bytes());
                out.extend_from_slice(b"\r\n");
                for item in items {
                    item.encode(out);
                }
                return;
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The text of a `$` or `=` reply (a verbatim string without its
    /// three-letter format and colon), or `None`.
    pub fn text(&self) -> Option<&[u8]> {
        match self {
            Reply::Blob { kind: b'$', data: Some(data) } => Some(data),
            Reply::Blob { kind: b'=', data: Some(data) } if data.len() >= 4 && data[3] == b':' => Some(&data[4..]),
            _ => None,
        }
    }

    /// The value of a `:` reply.
    pub fn integer(&self) -> Option<i64> {
        match self {
            Reply::Line { kind: b':', text } => std::str::from_utf8(text).ok()?.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_quoted(&self.to_bytes()))
    }
}

/// Frame one reply at the start of `buf`: `Ok(None)` while it is
/// incomplete, else the reply and how many bytes it took.
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let mut at = 0;
    match parse_at(buf, &mut at, 0)? {
        Some(reply) => Ok(Some((reply, at))),
        None => Ok(None),
    }
}

/// Parse bytes that must hold exactly one whole reply.
pub fn parse_whole(bytes: &[u8]) -> Result<Reply, String> {
    match parse_reply(bytes)? {
        Some((reply, used)) if used == bytes.len() => Ok(reply),
        Some((_, used)) => Err(format!("{} bytes after the reply", bytes.len() - used)),
        None => Err("an incomplete reply".into()),
    }
}

fn parse_at(buf: &[u8], at: &mut usize, depth: usize) -> Result<Option<Reply>, String> {
    if depth > DEPTH_MAX {
        return Err(format!("aggregates nested deeper than {DEPTH_MAX}"));
    }
    let Some(line_end) = find_crlf(buf, *at) else {
        return Ok(None);
    };
    let kind = buf[*at];
    let text = &buf[*at + 1..line_end];
    let after_line = line_end + 2;
    let count = || -> Result<i64, String> {
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .filter(|&n| n >= -1)
            .ok_or_else(|| format!("a bad count after {:?}: {}", kind as char, escape_quoted(text)))
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {
            *at = after_line;
            Ok(Some(Reply::Line { kind, text: text.to_vec() }))
        }
        b'$' | b'!' | b'=' => {
            let length = count()?;
            if length < 0 {
                *at = after_line;
                return Ok(Some(Reply::Blob { kind, data: None }));
            }
            let end = after_line + length as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(format!("{:?} data of {length} bytes not followed by CRLF", kind as char));
            }
            *at = end + 2;
            Ok(Some(Reply::Blob { kind, data: Some(buf[after_line..end].to_vec()) }))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let count = count()?;
            if count < 0 {
                *at = after_line;
                return Ok(Some(Reply::Aggregate { kind, items: None }));
            }
            let items_total = match kind {
                b'%' => 2 * count as usize,
                b'|' => 2 * count as usize + 1,
                _ => count as usize,
            };
            let mut cursor = after_line;
            let mut items = Vec::with_capacity(items_total.min(1024));
            for _ in 0..items_total {
                match parse_at(buf, &mut cursor, depth + 1)? {
                    Some(item) => items.push(item),
                    None => return Ok(None),
                }
            }
            *at = cursor;
            Ok(Some(Reply::Aggregate { kind, items: Some(items) }))
        }
        other => Err(format!("an unknown reply type byte {}", escape_quoted(&[other]))),
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

/// Compare the shapes of two replies: the same type at every position, the
/// same null-ness and the same number of items, map keys equal byte for
/// byte (in order), and for map keys named in `exact_keys` the values equal
/// too. Scalars are otherwise not compared. Errs with where they differ.
pub fn compare_shape(expected: &Reply, actual: &Reply, exact_keys: &[String]) -> Result<(), String> {
    shape_at(expected, actual, exact_keys, "the reply")
}

fn shape_at(expected: &Reply, actual: &Reply, exact_keys: &[String], path: &str) -> Result<(), String> {
    if expected.kind() != actual.kind() {
        return Err(format!(
            "{path}: expected type {:?}, got {:?} ({actual})",
            expected.kind() as char,
            actual.kind() as char
        ));
    }
    match (expected, actual) {
        (Reply::Blob { data: e, .. }, Reply::Blob { data: a, .. }) if e.is_some() != a.is_some() => {
            Err(format!("{path}: expected {expected}, got {actual}"))
        }
        (Reply::Aggregate { items: e, .. }, Reply::Aggregate { items: a, .. }) => match (e, a) {
            (None, None) => Ok(()),
            (Some(e), Some(a)) if e.len() == a.len() => {
                let is_map = matches!(expected.kind(), b'%' | b'|');
                for (i, (e_item, a_item)) in e.iter().zip(a).enumerate() {
                    let is_key = is_map && i % 2 == 0 && i + 1 < e.len();
                    let is_value = is_map && i % 2 == 1;
                    let key = is_value.then(|| &e[i - 1]);
                    if is_key {
                        if e_item != a_item {
                            return Err(format!("{path}: map key {i} expected {e_item}, got {a_item}"));
                        }
                        continue;
                    }
                    let exact = key.and_then(Reply::text_or_line).is_some_and(|k| exact_keys.iter().any(|x| x == k));
                    let item_path = match key.and_then(Reply::text_or_line) {
                        Some(k) => format!("{path} -> {k}"),
                        None => format!("{path} -> [{i}]"),
                    };
                    if exact && e_item != a_item {
                        return Err(format!("{item_path}: expected {e_item}, got {a_item}"));
                    }
                    shape_at(e_item, a_item, exact_keys, &item_path)?;
                }
                Ok(())
            }
            _ => Err(format!(
                "{path}: expected {} items, got {}",
                e.as_ref().map_or("null".into(), |e| e.len().to_string()),
                a.as_ref().map_or("null".into(), |a| a.len().to_string())
            )),
        },
        _ => Ok(()),
    }
}

impl Reply {
    /// The text of a map key: a simple or bulk string, as UTF-8.
    fn text_or_line(&self) -> Option<&str> {
        match self {
            Reply::Line { kind: b'+', text } => std::str::from_utf8(text).ok(),
            Reply::Blob { kind: b'$', data: Some(data) } => std::str::from_utf8(data).ok(),
            _ => None,
        }
    }
}

/// Bytes as a transcript line shows them: printable ASCII as is, `\\`,
/// `\r`, `\n`, `\t`, other bytes as `\xHH`, and a space at the end of the
/// line as `\x20` (so no editor can strip it).
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b' ' if i + 1 == bytes.len() => out.push_str("\\x20"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Bytes in double quotes, escaped as by [`escape`] plus `\"`: for reports.
pub fn escape_quoted(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b' ' => out.push(' '),
            _ => out.push_str(&escape(&[b])),
        }
    }
    out.push('"');
    out
}

/// The inverse of [`escape`] (and of [`escape_quoted`] without its quotes):
/// `\\ \" \r \n \t \0 \xHH`; every other character stands for its UTF-8 bytes.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next().map(|(_, c)| c) {
            Some('\\') => out.push(b'\\'),
            Some('"') => out.push(b'"'),
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                let byte = u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2)
                    .ok_or_else(|| format!("a bad \\x escape at column {}", at + 1))?;
                out.push(byte);
            }
            other => return Err(format!("an unknown escape \\{} at column {}", other.unwrap_or(' '), at + 1)),
        }
    }
    Ok(out)
}

/// A reply's bytes as transcript lines: split after every CRLF (RESP ends
/// every reply with one), each line escaped. `None` if `bytes` does not end
/// with CRLF.
pub fn reply_lines(bytes: &[u8]) -> Option<Vec<String>> {
    let body = bytes.strip_suffix(b"\r\n")?;
    let mut lines = Vec::new();
    let mut rest = body;
    loop {
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(i) => {
                lines.push(escape(&rest[..i]));
                rest = &rest[i + 2..];
            }
            None => {
                lines.push(escape(rest));
                return Some(lines);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_type_frames_and_encodes_back_to_its_bytes() {
        let samples: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR no\r\n",
            b":-12\r\n",
            b"_\r\n",
            b",1.5\r\n",
            b"#t\r\n",
            b"(123\r\n",
            b"$-1\r\n",
            b"$0\r\n\r\n",
            b"$4\r\na\r\nb\r\n",
            b"=8\r\ntxt:a\r\nb\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
            b"%1\r\n$1\r\nk\r\n~2\r\n+a\r\n_\r\n",
            b"|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n",
        ];
        for &bytes in samples {
            let reply = parse_whole(bytes).unwrap_or_else(|e| panic!("{}: {e}", escape_quoted(bytes)));
            assert_eq!(reply.to_bytes(), bytes, "{}", escape_quoted(bytes));
            for split in 0..bytes.len() {
                assert_eq!(parse_reply(&bytes[..split]), Ok(None), "{} cut at {split}", escape_quoted(bytes));
            }
        }
        assert!(parse_reply(b"?\r\n").is_err());
        assert!(parse_reply(b"$2\r\nabc\r\n").is_err());
        assert!(parse_whole(b"+OK\r\n+OK\r\n").is_err());
    }

    #[test]
    fn escaping_round_trips_every_byte_and_keeps_a_trailing_space() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unescape(&escape(&all)).unwrap(), all);
        assert_eq!(escape(b"a b "), "a b\\x20");
        let quoted = escape_quoted(b"say \"hi\"\r\n");
        assert_eq!(quoted, r#""say \"hi\"\r\n""#);
        assert_eq!(unescape(&quoted[1..quoted.len() - 1]).unwrap(), b"say \"hi\"\r\n");
        assert_eq!(reply_lines(b"$5\r\nhello\r\n").unwrap(), ["$5", "hello"]);
        assert_eq!(reply_lines(b"$0\r\n\r\n").unwrap(), ["$0", ""]);
        assert!(reply_lines(b"+OK").is_none());
    }

    #[test]
    fn shapes_compare_types_counts_and_map_keys_not_scalars() {
        let parse = |b: &[u8]| parse_whole(b).unwrap();
        let hello = parse(b"%2\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:7\r\n");
        let other_id = parse(b"%2\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:9\r\n");
        let proto_2 = parse(b"%2\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:7\r\n");
        let exact = ["proto".to_string()];
        assert_eq!(compare_shape(&hello, &other_id, &exact), Ok(()));
        assert!(compare_shape(&hello, &proto_2, &exact).is_err());
        assert_eq!(compare_shape(&hello, &proto_2, &[]), Ok(()));
        assert!(compare_shape(&parse(b"*1\r\n$1\r\na\r\n"), &parse(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"), &[]).is_err());
        assert!(compare_shape(&parse(b"$1\r\na\r\n"), &parse(b"$-1\r\n"), &[]).is_err());
        assert!(compare_shape(&parse(b"$1\r\na\r\n"), &parse(b"+a\r\n"), &[]).is_err());
    }
}
