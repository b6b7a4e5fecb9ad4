//! A process pool's map, where its speed comes from: a worker runs a chunk's plain items in
//! stretches (one call of the work's runner and one unwind guard per stretch, not per item),
//! and the pool decodes a chunk's results densely. These cases pin what must not change with
//! that: every item's own outcome, wherever in a stretch it panics or breaks the input.
//!
//! `harness = false`: this binary is also its own worker, and libtest would print to the
//! stdout the protocol needs. `main` runs each case under a hang bound.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use aplex::wire::{Wire, WireError};
use aplex::{Error, ProcessPool};

aplex::works! {
    /// The works of this test binary.
    pub mod works {
        /// Doubles `x`, but panics where a stretch of 1, 2, 4 … 64 items begins or ends.
        pub fn picky(x: u64) -> u64 {
            assert!(!at_an_edge(x), "picky {x}");
            x * 2
        }
        pub fn fussy(f: Fussy) -> u8 { f.0 }
        pub fn size(s: String) -> u64 { s.len() as u64 }
    }
}

/// True for the items where a stretch of any power of two up to 64 items starts or ends,
/// counting from the start of any chunk of a multiple of 64 items.
fn at_an_edge(x: u64) -> bool {
    matches!(x % 64, 0 | 1 | 63)
}

/// A user type whose decode fails on 13 (an error) and on 14 (a panic, as an `unwrap` would).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fussy(pub u8);

impl Wire for Fussy {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        match u8::decode(input)? {
            13 => Err(WireError::InvalidTag {
                type_name: "Fussy",
                tag: 13,
            }),
            14 => panic!("Fussy cannot stand 14"),
            byte => Ok(Fussy(byte)),
        }
    }
}

fn pool() -> ProcessPool {
    ProcessPool::builder()
        .workers(2)
        .build(&works::WORKS)
        .unwrap()
}

/// Items that panic at every stretch edge fail alone, in the first chunks (where a worker's
/// stride is still growing) and in later ones (at its full stride), on both workers.
fn panics_at_every_stretch_edge_fail_only_their_items() {
    let pool = pool();
    for round in 0..3 {
        let out: Vec<_> = pool
            .map(&works::picky, 0..4096u64)
            .chunk_size(256)
            .collect();
        assert_eq!(out.len(), 4096);
        for (x, r) in (0..).zip(out) {
            if at_an_edge(x) {
                match r {
                    Err(Error::Panicked(m)) => assert!(m.contains(&format!("picky {x}")), "{m}"),
                    other => panic!("round {round}, item {x}: expected its panic, got {other:?}"),
                }
            } else {
                assert_eq!(r, Ok(2 * x), "round {round}, item {x}");
            }
        }
    }
}

/// An argument that cannot be decoded (an error, or a panic of its decode) fails with the
/// rest of its chunk: past it, where the next argument begins is unknown. The items before it
/// keep their values, and the next chunk is whole.
fn an_argument_that_breaks_fails_with_the_rest_of_its_chunk() {
    let pool = pool();
    for (bad, expect) in [(13u8, "could not decode the argument"), (14, "panicked")] {
        for at in [0usize, 1, 63, 64, 100, 255] {
            // Two chunks of 256; the bad argument is item `at` of the first.
            let items: Vec<Fussy> = (0..512)
                .map(|i| Fussy(if i == at { bad } else { (i % 7) as u8 }))
                .collect();
            let out: Vec<_> = pool.map(&works::fussy, items).chunk_size(256).collect();
            assert_eq!(out.len(), 512);
            for (i, r) in out.into_iter().enumerate() {
                if i < at || i >= 256 {
                    assert_eq!(r, Ok((i % 7) as u8), "bad {bad} at {at}: item {i}");
                    continue;
                }
                let message = match r {
                    Err(Error::Wire(m) | Error::Panicked(m)) => m,
                    other => panic!("bad {bad} at {at}: item {i} got {other:?}"),
                };
                assert!(message.contains(expect), "bad {bad} at {at}: {message}");
            }
        }
    }
}

/// A single call of a plain work runs through the same runner: its panic and its value.
fn single_calls_keep_their_outcomes() {
    let pool = pool();
    assert_eq!(pool.call(&works::picky, 5).wait(), Ok(10));
    assert!(matches!(
        pool.call(&works::picky, 64).wait(),
        Err(Error::Panicked(_))
    ));
    assert_eq!(pool.call(&works::fussy, Fussy(3)).wait(), Ok(3));
    assert!(matches!(
        pool.call(&works::fussy, Fussy(13)).wait(),
        Err(Error::Wire(_))
    ));
    assert!(matches!(
        pool.call(&works::fussy, Fussy(14)).wait(),
        Err(Error::Panicked(_))
    ));
    assert_eq!(pool.call(&works::picky, 7).wait(), Ok(14));
}

/// A map of large items sends batches bounded by bytes, not only by items: when its first
/// result is in, it has pulled its window (about 4096 items) and at most a few chunks more,
/// however many items a batch of tiny ones would hold. (The count is decided before the
/// first result can be taken: the map fills its window, then waits.)
fn large_items_are_not_batched_ahead_by_the_thousand() {
    let pool = pool();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    // 8 KiB items in chunks of 128: a chunk's frame is about 1 MiB.
    let items = (0..20_000).map(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
        "x".repeat(8 << 10)
    });
    let mut map = pool.map(&works::size, items).chunk_size(128);
    assert_eq!(Iterator::next(&mut map), Some(Ok(8 << 10)));
    let ahead = pulled.load(Ordering::Relaxed);
    assert!(
        ahead <= 4096 + 4 * 128,
        "{ahead} items pulled for the first result"
    );
    drop(map);
}

/// Hang catcher: far more than any case takes on a busy 2-core machine.
const HANG: Duration = Duration::from_secs(60);

const CASES: &[(&str, fn())] = &[
    (
        "panics_at_every_stretch_edge_fail_only_their_items",
        panics_at_every_stretch_edge_fail_only_their_items,
    ),
    (
        "an_argument_that_breaks_fails_with_the_rest_of_its_chunk",
        an_argument_that_breaks_fails_with_the_rest_of_its_chunk,
    ),
    (
        "single_calls_keep_their_outcomes",
        single_calls_keep_their_outcomes,
    ),
    (
        "large_items_are_not_batched_ahead_by_the_thousand",
        large_items_are_not_batched_ahead_by_the_thousand,
    ),
];

fn main() {
    // Works and decodes panic on purpose: quietly, the outcomes say it.
    std::panic::set_hook(Box::new(|_| {}));
    aplex::serve_if_worker(&works::WORKS);
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for &(name, case) in CASES {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // The quiet hook hides the message: the payload carries it.
            let why = catch_unwind(AssertUnwindSafe(case)).err().map(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            });
            let _ = tx.send(why);
        });
        match rx.recv_timeout(HANG) {
            Ok(None) => {
                passed += 1;
                eprintln!("ok     {name}");
            }
            Ok(Some(why)) => {
                failed += 1;
                eprintln!("FAILED {name}: {why}");
            }
            Err(_) => {
                eprintln!("HANG   {name}");
                std::process::exit(1);
            }
        }
    }
    eprintln!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
