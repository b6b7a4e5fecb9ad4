//! What the `wire_*` tests share: a per-thread counting allocator, and a decode measured with it.
//!
//! Tests run in parallel threads, so the allocator counts per thread: a decode's figures are
//! those of the thread that ran it.

#![allow(dead_code)] // each test binary uses its own part

use aplex::wire::{Wire, WireError};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

// ---- A per-thread counting allocator ------------------------------------------------------------

struct Counting;

thread_local! {
    /// Bytes allocated and not yet freed by this thread (frees of another thread's blocks make
    /// it wrap; the measured decodes free on their own thread).
    static LIVE: Cell<usize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last `measure` began.
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    // `try_with`: an allocation during thread teardown is simply not counted.
    let _ = LIVE.try_with(|live| {
        let now = live.get().wrapping_add(size);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

fn on_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().wrapping_sub(size)));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counting
// touches only const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which `System` shares.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        // SAFETY: `ptr` came from this allocator, that is from `System`, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        on_alloc(new_size);
        on_free(layout.size());
        // SAFETY: as in `dealloc`, and the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What one decode cost: the most it held allocated at once, and how long it took.
#[derive(Debug)]
pub struct Cost {
    /// Bytes held at once, beyond what the thread held before.
    pub peak: usize,
    /// Time the decode took.
    pub took: Duration,
}

/// Decodes `bytes` as a `T` on this thread and measures it; the value is part of what it holds.
pub fn measure<T: Wire>(bytes: &[u8]) -> (Result<T, WireError>, Cost) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    let started = Instant::now();
    let result = T::from_bytes(bytes);
    let took = started.elapsed();
    let peak = PEAK.with(Cell::get).wrapping_sub(base);
    (result, Cost { peak, took })
}

/// The bound the crate promises: 64 bytes per input byte, and a mebibyte.
pub fn allowed(input: usize) -> usize {
    64 * input + (1 << 20)
}
