#![no_main]
use paxoskv_fuzz as _; // the allocation limit
libfuzzer_sys::fuzz_target!(|data: &[u8]| paxoskv::fuzzing::resp_reply_roundtrip(data));
