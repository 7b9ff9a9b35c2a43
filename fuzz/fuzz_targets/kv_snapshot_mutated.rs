#![no_main]
use paxoskv_fuzz as _; // the allocation limit
libfuzzer_sys::fuzz_target!(|data: &[u8]| paxoskv::fuzzing::kv_snapshot_mutated(data));
