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

/// A connection's bytes and its [`CommandStream`], as the server keeps
/// them; a refused command shows as a marker `<skipped LEN>`.
#[derive(Default)]
struct Feeder {
    buf: BytesMut,
    stream: CommandStream,
}

impl Feeder {
    /// Everything the buffer holds, until more bytes are needed (Ok) or
    /// the stream's error.
    fn drain(&mut self, limits: &RespLimits, out: &mut Vec<Vec<Bytes>>) -> Result<(), RespError> {
        loop {
            match self.stream.next(&mut self.buf, limits)? {
                Next::Command(command) => out.push(command),
                Next::Refused { len } => out.push(vec![Bytes::from(format!("<skipped {len}>"))]),
                Next::More => return Ok(()),
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
        assert!(!feeder.stream.is_skipping() || held <= 4, "held {held} bytes while dropping");
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
    assert_eq!(parse_all(b"*0\r\n*-1\r\n*1\r\n$1\r\nx\r\n*0\r\n", &RespLimits::default()), (vec![args(&["x"])], None));
    // Any negative count is an empty command, as Redis 7.0 skips it (a
    // sweep found `*-2` a protocol error here).
    assert_eq!(parse_all(b"*-2\r\n*-1234\r\n*1\r\n$1\r\ny\r\n", &RespLimits::default()), (vec![args(&["y"])], None));
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
