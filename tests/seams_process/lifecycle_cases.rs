//! The process pool's lifecycle at its seams: shutdowns racing callers on other threads, a
//! `shutdown_now` after a graceful shutdown began, `closed()` under a foreign executor, a pool
//! with slots that never come up, workers recycled mid-map, and maps dropped or fed by an
//! input that panics. Every call ends in exactly one outcome, counted.

use std::future::Future;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use aplex::balance::KeyAffinity;
use aplex::{Error, ProcessPool, SlotState, ThreadPool};

use crate::async_cases::{dir_arg, open_gate, pool, temp_dir_path};
use crate::works::{temp_dir, works};
use crate::{case, eventually, within, Case, CountingWaker};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "process_shutdown_now_races_calls_from_threads",
            process_shutdown_now_races_calls_from_threads,
        ),
        case(
            "process_shutdown_async_races_calls_from_threads",
            process_shutdown_async_races_calls_from_threads,
        ),
        case(
            "process_min_ready_with_slots_that_never_come_up",
            process_min_ready_with_slots_that_never_come_up,
        ),
        case(
            "process_shutdown_now_after_a_graceful_shutdown_began",
            process_shutdown_now_after_a_graceful_shutdown_began,
        ),
        case(
            "process_a_map_dropped_mid_way_cancels_its_chunks",
            process_a_map_dropped_mid_way_cancels_its_chunks,
        ),
        case(
            "process_a_map_whose_input_panicked_goes_on_or_ends",
            process_a_map_whose_input_panicked_goes_on_or_ends,
        ),
        case(
            "process_recycling_every_call_mid_map_loses_nothing",
            process_recycling_every_call_mid_map_loses_nothing,
        ),
        case(
            "process_closed_wakes_a_foreign_executor",
            process_closed_wakes_a_foreign_executor,
        ),
    ]
}

/// Four threads make 100 calls each while the main thread shuts the pool down; every handle
/// ends, in one of the outcomes `allowed` accepts.
fn race_shutdown(now: bool, allowed: fn(u64, &Result<u64, Error>) -> bool) {
    let p = Arc::new(pool(2, 8));
    let start = Arc::new(Barrier::new(5));
    let callers: Vec<_> = (0..4u64)
        .map(|t| {
            let (p, start) = (Arc::clone(&p), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                (0..100u64)
                    .map(|i| {
                        let x = t * 1000 + i;
                        let h = if i % 2 == 0 {
                            p.call(&works::double, x)
                        } else {
                            p.call(&works::nap, 1)
                        };
                        (x, i % 2 == 0, h)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let p2 = Arc::clone(&p);
    within("a shutdown racing four callers", move || {
        start.wait();
        if now {
            p2.shutdown_now();
        } else {
            aplex::block_on(p2.shutdown_async());
        }
    });
    let mut ended = 0;
    for caller in callers {
        let calls = caller.join().expect("a caller thread");
        for (x, doubled, h) in calls {
            let r = within("a handle of a pool shut down", move || h.wait());
            let want = if doubled { x * 2 } else { 1 };
            assert!(allowed(want, &r), "call {x}: {r:?}");
            ended += 1;
        }
    }
    assert_eq!(ended, 400);
    assert_eq!(p.call(&works::double, 1).wait(), Err(Error::ShutDown));
}

fn process_shutdown_now_races_calls_from_threads() {
    race_shutdown(true, |want, r| match r {
        Ok(v) => *v == want,
        Err(Error::Cancelled | Error::ShutDown | Error::WorkerLost(_)) => true,
        _ => false,
    });
}

fn process_shutdown_async_races_calls_from_threads() {
    // Graceful: an accepted call ends with its value; a late one is refused.
    race_shutdown(false, |want, r| match r {
        Ok(v) => *v == want,
        Err(Error::ShutDown) => true,
        _ => false,
    });
}

fn process_min_ready_with_slots_that_never_come_up() {
    let exe = std::env::current_exe().expect("the test binary");
    let built = within("a pool with two slots that never say hello", move || {
        ProcessPool::builder()
            .workers(3)
            .min_ready(1)
            // Slot 0, a real worker, must say hello by this deadline too: 500 ms was within
            // reach of a busy machine starting a process; the calls keyed to the silent slots
            // wait for it, so it is what this case costs.
            .hello_timeout(Duration::from_secs(2))
            .balancer(KeyAffinity::new())
            .launcher(move |slot| {
                if slot == 0 {
                    std::process::Command::new(&exe)
                } else {
                    let mut c = std::process::Command::new("sleep");
                    c.arg("60");
                    c
                }
            })
            .build(&works::WORKS)
    });
    let p = built.expect("min_ready(1) starts with one slot up");
    let got = within("calls and a map on the one live slot", move || {
        assert_eq!(p.slot_states()[0], SlotState::Ready);
        // Keys of every slot, the dead ones' too: each call still ends with its value.
        let hs: Vec<_> = (0..30u64)
            .map(|k| p.call_with(k, &works::double, k))
            .collect();
        let calls: Vec<_> = hs.into_iter().map(|h| h.wait()).collect();
        let mapped: Vec<_> = p.map(&works::double, 0..40u64).chunk_size(5).collect();
        drop(p); // must not wait for the slots that never came up
        (calls, mapped)
    });
    let want: Vec<_> = (0..30u64).map(|k| Ok(k * 2)).collect();
    assert_eq!(got.0, want);
    let want: Vec<_> = (0..40u64).map(|k| Ok(k * 2)).collect();
    assert_eq!(got.1, want);
}

fn process_shutdown_now_after_a_graceful_shutdown_began() {
    let p = Arc::new(pool(1, 4));
    let dir = temp_dir("now_after_graceful");
    let d = dir_arg(&dir);
    let held = p.call(&works::gated, (d, 0));
    let gate = dir.clone();
    within("the held call starts", move || {
        eventually("call 0 starts", || gate.join("started-0").exists())
    });
    // A graceful shutdown begins (its future polled once, then dropped), and waits for the
    // held call; shutdown_now must still cancel it and return.
    let (_, waker) = CountingWaker::new();
    {
        let mut graceful = Box::pin(p.shutdown_async());
        assert!(graceful
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker))
            .is_pending());
    }
    let p2 = Arc::clone(&p);
    within("shutdown_now after a graceful shutdown began", move || {
        p2.shutdown_now()
    });
    let outcome = within("the held call", move || held.wait());
    open_gate(&dir); // lets the worker go, whatever happened
    assert_eq!(outcome, Err(Error::Cancelled));
    let _ = std::fs::remove_dir_all(dir);
}

fn process_a_map_dropped_mid_way_cancels_its_chunks() {
    let p = pool(2, 4);
    let dir = temp_dir("map_dropped");
    let d = dir_arg(&dir);
    let got = within("a map of gated works dropped after none came", move || {
        let map = p
            .map(&works::gated, (0..64u64).map(move |i| (d.clone(), i)))
            .chunk_size(4);
        drop(map); // lazy: nothing was sent
        let d = dir_arg(&temp_dir_path("map_dropped"));
        let mut map = p
            .map(&works::gated, (0..64u64).map(move |i| (d.clone(), i)))
            .chunk_size(4);
        let (_, waker) = CountingWaker::new();
        assert!(map
            .poll_next(&mut std::task::Context::from_waker(&waker))
            .is_pending());
        let sent = p.loads().iter().sum::<usize>();
        drop(map);
        eventually("the dropped map's chunks leave", || {
            p.loads().iter().sum::<usize>() == 0
        });
        (sent, p.call(&works::double, 2).wait())
    });
    assert!(got.0 > 0, "the polled map had chunks in flight");
    assert_eq!(got.1, Ok(4));
    let _ = std::fs::remove_dir_all(dir);
}

/// An input that panics once, at item `at`, and goes on after.
fn panics_once_at(at: u64) -> impl Iterator<Item = u64> + Send + 'static {
    let mut panicked = false;
    (0..100u64).inspect(move |&x| {
        if x == at && !panicked {
            panicked = true;
            panic!("the input panics at {x}");
        }
    })
}

/// Iterates `map` to its end, catching the panics of its input; counts what came.
fn drain_catching(map: &mut aplex::Map<u64>) -> (usize, usize) {
    let (mut items, mut panics) = (0, 0);
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Iterator::next(map))) {
            Ok(Some(_)) => items += 1,
            Ok(None) => return (items, panics),
            Err(_) => panics += 1,
        }
        assert!(panics < 10, "the input panicked over and over");
    }
}

fn process_a_map_whose_input_panicked_goes_on_or_ends() {
    let tp = ThreadPool::new(2);
    let thread = within("a thread pool's map after its input panicked", move || {
        drain_catching(&mut tp.map(|x: u64| x, panics_once_at(10)).chunk_size(4))
    });
    assert_eq!(thread.1, 1, "one panic, caught");
    let p = pool(2, 4);
    let process = within("a process pool's map after its input panicked", move || {
        drain_catching(&mut p.map(&works::double, panics_once_at(10)).chunk_size(4))
    });
    assert_eq!(process.1, 1, "one panic, caught");
}

fn process_recycling_every_call_mid_map_loses_nothing() {
    let p = ProcessPool::builder()
        .workers(2)
        .max_works_per_worker(4)
        .max_works_per_child(1)
        .build(&works::WORKS)
        .expect("the pool starts");
    let got = within(
        "a map and calls on workers recycled after each",
        move || {
            let mapped: Vec<_> = p.map(&works::double, 0..40u64).chunk_size(2).collect();
            let calls: Vec<_> = (0..10u64).map(|i| p.call(&works::nap, i)).collect();
            let calls: Vec<_> = calls.into_iter().map(|h| h.wait()).collect();
            let restarts: u64 = p.slots().iter().map(|s| s.restarts).sum();
            (mapped, calls, restarts)
        },
    );
    assert_eq!(got.0, (0..40u64).map(|x| Ok(x * 2)).collect::<Vec<_>>());
    assert_eq!(got.1, (0..10u64).map(Ok).collect::<Vec<_>>());
    assert!(got.2 > 0, "workers were recycled");
}

fn process_closed_wakes_a_foreign_executor() {
    let p = Arc::new(pool(1, 4));
    let p2 = Arc::clone(&p);
    let got = within(
        "closed() polled by hand while another thread shuts down",
        move || {
            let (counter, waker) = CountingWaker::new();
            let mut cx = std::task::Context::from_waker(&waker);
            let mut closed = Box::pin(p2.closed());
            assert!(closed.as_mut().poll(&mut cx).is_pending());
            let closer = {
                let p = Arc::clone(&p2);
                std::thread::spawn(move || p.shutdown())
            };
            eventually("closed() is woken", || counter.count() > 0);
            let mut ready = closed.as_mut().poll(&mut cx).is_ready();
            while !ready {
                let seen = counter.count();
                eventually("closed() is woken again", || counter.count() > seen);
                ready = closed.as_mut().poll(&mut cx).is_ready();
            }
            closer.join().expect("the closer thread");
            p2.call(&works::double, 1).wait()
        },
    );
    assert_eq!(got, Err(Error::ShutDown));
    drop(p);
}
