//! What every fuzz target links: a global allocator that aborts on any
//! single allocation over [`ALLOCATION_BYTES_MAX`].
//!
//! Why: the targets run with `-s none` (no sanitizer, so stable Rust
//! works), and without a sanitizer libFuzzer has no malloc hooks, so its
//! `-malloc_limit_mb` never fires. `-rss_limit_mb` still catches a
//! process that grows, but a decoder that trusts a hostile length and
//! reserves gigabytes it never touches stays under it. This allocator
//! turns that into a crash libFuzzer saves as an artifact.

use std::alloc::{GlobalAlloc, Layout, System};

/// No input of a few KiB justifies one allocation this large; matches the
/// `-malloc_limit_mb` that `benches/fuzz.sh` passes.
pub const ALLOCATION_BYTES_MAX: usize = 64 << 20;

/// The system allocator, with the limit.
pub struct LimitedAllocator;

impl LimitedAllocator {
    fn check(size: usize) {
        if size > ALLOCATION_BYTES_MAX {
            // No formatting and no std I/O here: both may allocate.
            let message = b"paxoskv-fuzz: one allocation over ALLOCATION_BYTES_MAX (64 MiB): unbounded allocation\n";
            // SAFETY: writes a static buffer to stderr; the result does not matter, we abort next.
            unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
            std::process::abort();
        }
    }
}

// SAFETY: every call is forwarded to `System` unchanged, after a size check.
unsafe impl GlobalAlloc for LimitedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: LimitedAllocator = LimitedAllocator;
