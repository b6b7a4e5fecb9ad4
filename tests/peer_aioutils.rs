//! aioutils' own tests (observerss/aioutils `tests/test_pool.py`, `tests/test_yielder.py`,
//! `tests/test_threading.py`), ported to aplex's `Group`, `Yielder` and `OrderedYielder`. Each
//! test names the Python test it mirrors.
//!
//! aioutils asserts wall times (`timespan < elapsed < timespan * 1.1`); here the same claims
//! are checked by events: all of a `Group`'s futures run at once (each waits at a barrier
//! that opens only when every one has arrived), a `Pool(3)` never runs more than 3, and the
//! threading tests run a fixed number of rounds instead of "for 0.2 s".
//!
//! Differs: aioutils' `test_yielder` spawns into the yielder from inside a spawned coroutine;
//! aplex's `Yielder` takes spawns from the code that owns it (nested spawns are `Group`'s,
//! through `GroupHandle`), so `yielder` below spawns the same 45 futures from the outside,
//! and `nested_spawns_through_a_group_handle` covers nesting. `test_yielding` (a context
//! manager) is `yielder_iterated_in_place` below.

#![cfg(feature = "helpers")]

mod peer_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aplex::{Group, OrderedYielder, Yielder};

/// An async barrier: `arrive` waits until `n` tasks have arrived (or a hang bound passes,
/// which fails the test).
struct Rendezvous {
    arrived: AtomicUsize,
    n: usize,
    all: aplex::sync::Event,
}

impl Rendezvous {
    fn new(n: usize) -> Arc<Rendezvous> {
        Arc::new(Rendezvous {
            arrived: AtomicUsize::new(0),
            n,
            all: aplex::sync::Event::new(),
        })
    }

    async fn arrive(&self) {
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            self.all.set();
        }
        let met = aplex::time::timeout(peer_common::HANG, self.all.wait()).await;
        assert!(met.is_ok(), "not all {} futures ran at once", self.n);
    }
}

#[test]
fn test_group() {
    // aioutils: test_group: 9 futures spawned, then joined from sync code; they run at once
    let group = Group::new();
    let all = Rendezvous::new(9);
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..9 {
        let all = Arc::clone(&all);
        let done = Arc::clone(&done);
        group.spawn(async move {
            all.arrive().await;
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    group.join().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 9);
}

#[test]
fn test_pool() {
    // aioutils: test_pool: Pool(3) runs 9 futures, 3 at a time (so in 3 rounds)
    let pool = Group::with_limit(3);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..9 {
        let running = Arc::clone(&running);
        let most = Arc::clone(&most);
        let done = Arc::clone(&done);
        pool.spawn(async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            aplex::time::sleep(Duration::from_millis(2)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    pool.join().unwrap();
    assert_eq!(done.load(Ordering::SeqCst), 9);
    assert!(
        most.load(Ordering::SeqCst) <= 3,
        "{} ran at once",
        most.load(Ordering::SeqCst)
    );
}

#[test]
fn test_pool_runs_its_limit_at_once() {
    // aioutils: test_pool, the other half: Pool(3) does run 3 at once (a barrier of 3 opens)
    let pool = Group::with_limit(3);
    let round = Rendezvous::new(3);
    for _ in 0..3 {
        let round = Arc::clone(&round);
        pool.spawn(async move { round.arrive().await });
    }
    pool.join().unwrap();
}

#[test]
fn yielder() {
    // aioutils: test_yielder: 10 futures f1(i), each adding i futures f2(j) with j in 0..=10;
    // every one of the 45 outputs is yielded, each j + a fraction in (0, 11)
    let y = Yielder::new();
    let mut expected = 0;
    for i in 0..10u32 {
        for k in 0..i {
            let j = (i * 7 + k * 3) % 11;
            expected += 1;
            y.spawn(async move {
                aplex::time::sleep(Duration::from_micros(u64::from(j) * 100)).await;
                f64::from(j) + 0.5
            });
        }
    }
    let got: Vec<f64> = y.into_iter().collect();
    assert_eq!(got.len(), 45);
    assert_eq!(expected, 45);
    assert!(got.iter().all(|&v| v > 0.0 && v < 11.0));
}

#[test]
fn yielder_in_completion_order() {
    // aioutils: test_yielder: outputs come as they complete. Every future but the last waits
    // for its gate, which the reader opens from the last to the first, one output at a time,
    // so completion order is the reverse of spawn order. (A future that opened the next gate
    // itself would race the one it released to the end.)
    let y = Yielder::new();
    let gates: Vec<_> = (0..5)
        .map(|_| Arc::new(aplex::sync::Event::new()))
        .collect();
    for (i, gate) in gates.iter().enumerate() {
        let mine = Arc::clone(gate);
        y.spawn(async move {
            if i < 4 {
                mine.wait().await;
            }
            i
        });
    }
    let mut outputs = y.into_iter();
    let mut got = vec![outputs.next()];
    for gate in gates[..4].iter().rev() {
        gate.set();
        got.push(outputs.next());
    }
    got.push(outputs.next());
    assert_eq!(got, [Some(4), Some(3), Some(2), Some(1), Some(0), None]);
}

#[test]
fn test_ordered_yielder() {
    // aioutils: test_ordered_yielder: outputs in spawn order, whatever the completion order
    let chars = "abcdefg";
    let y = OrderedYielder::new();
    for (i, c) in chars.chars().enumerate() {
        y.spawn(async move {
            aplex::time::sleep(Duration::from_micros(((7 - i) * 300) as u64)).await;
            c
        });
    }
    let got: String = y.into_iter().collect();
    assert_eq!(got, chars);
}

#[test]
fn yielder_iterated_in_place() {
    // aioutils: test_yielding: spawn, then iterate; every output comes once
    let chars = "abcdefg";
    let y = Yielder::new();
    for c in chars.chars() {
        y.spawn(async move {
            aplex::yield_now().await;
            c
        });
    }
    let mut got: Vec<char> = y.into_iter().collect();
    got.sort_unstable();
    assert_eq!(got.into_iter().collect::<String>(), chars);
}

#[test]
fn yielder_of_options_skips_none_when_flattened() {
    // aioutils: Yielder skips `None` results; aplex yields every output, and its docs say to
    // flatten `Option`s for aioutils' behaviour
    let y = Yielder::new();
    for i in 0..6 {
        y.spawn(async move { (i % 2 == 0).then_some(i) });
    }
    let mut got: Vec<i32> = y.into_iter().flatten().collect();
    got.sort_unstable();
    assert_eq!(got, [0, 2, 4]);
}

#[test]
fn nested_spawns_through_a_group_handle() {
    // aioutils: test_yielder's nesting (f1 spawns f2s), on a Group: every nested future runs
    // before join returns
    let group = Group::new();
    let handle = group.handle();
    let total = Arc::new(AtomicUsize::new(0));
    for i in 0..10 {
        let handle = handle.clone();
        let total = Arc::clone(&total);
        group.spawn(async move {
            for _ in 0..i {
                let total = Arc::clone(&total);
                handle.spawn(async move {
                    aplex::yield_now().await;
                    total.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
    }
    drop(handle);
    group.join().unwrap();
    assert_eq!(total.load(Ordering::SeqCst), 45);
}

const ROUNDS: usize = 20;

async fn f(c: char) -> char {
    aplex::yield_now().await;
    c
}

#[test]
fn test_group_threading() {
    // aioutils: test_group_threading: Groups used from 5 threads at once
    let joined = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..5)
        .map(|_| {
            let joined = Arc::clone(&joined);
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let g = Group::new();
                    for i in 0..5 {
                        g.spawn(async move {
                            f('x').await;
                            let _ = i;
                        });
                    }
                    g.join().unwrap();
                    joined.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(joined.load(Ordering::SeqCst), 5 * ROUNDS);
}

#[test]
fn test_yielder_threading() {
    // aioutils: test_yielder_threading: Yielders used from 5 threads at once
    let chars = "abcdefg";
    let threads: Vec<_> = (0..5)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let y = Yielder::new();
                    for c in chars.chars() {
                        y.spawn(f(c));
                    }
                    let mut got: Vec<char> = y.into_iter().collect();
                    got.sort_unstable();
                    assert_eq!(got.into_iter().collect::<String>(), chars);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn test_mixed() {
    // aioutils: test_mixed: Groups and Yielders mixed across 5 threads
    let chars = "abcdefg";
    let rounds = Arc::new(Mutex::new(0));
    let threads: Vec<_> = (0..5)
        .map(|t| {
            let rounds = Arc::clone(&rounds);
            std::thread::spawn(move || {
                for r in 0..ROUNDS {
                    if (t + r) % 2 == 0 {
                        let y = Yielder::new();
                        for c in chars.chars() {
                            y.spawn(f(c));
                        }
                        assert_eq!(y.into_iter().count(), chars.len());
                    } else {
                        let g = Group::new();
                        for c in chars.chars() {
                            g.spawn(async move {
                                f(c).await;
                            });
                        }
                        g.join().unwrap();
                    }
                    *rounds.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*rounds.lock().unwrap(), 5 * ROUNDS);
}
