//! The process pool from the async side and at its cancel and map seams, with real workers
//! (this binary): every call ends in exactly one outcome, counted.

use std::path::Path;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use aplex::{Error, ProcessPool, ThreadPool};

use crate::works::{temp_dir, works, Order, State, Touchy};
use crate::{case, eventually, poll_with, within, Case, CountingWaker};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "process_call_and_map_awaited_under_block_on",
            process_call_and_map_awaited_under_block_on,
        ),
        case(
            "process_call_and_map_under_a_foreign_executor",
            process_call_and_map_under_a_foreign_executor,
        ),
        case(
            "process_calls_from_inside_thread_pool_works",
            process_calls_from_inside_thread_pool_works,
        ),
        case(
            "process_dropped_handles_leave_no_load",
            process_dropped_handles_leave_no_load,
        ),
        case(
            "process_cancel_running_queued_and_finished",
            process_cancel_running_queued_and_finished,
        ),
        case(
            "process_kill_on_cancel_loses_only_that_workers_calls",
            process_kill_on_cancel_loses_only_that_workers_calls,
        ),
        case(
            "process_map_whose_worker_dies_while_awaited_counts_every_item",
            process_map_whose_worker_dies_while_awaited_counts_every_item,
        ),
        case(
            "process_map_timeout_cancels_what_is_left",
            process_map_timeout_cancels_what_is_left,
        ),
        case(
            "process_max_works_per_worker_bounds_async_works",
            process_max_works_per_worker_bounds_async_works,
        ),
        case(
            "process_works_of_every_shape_round_trip",
            process_works_of_every_shape_round_trip,
        ),
        case(
            "process_a_user_decode_that_panics_in_the_worker",
            process_a_user_decode_that_panics_in_the_worker,
        ),
        case(
            "process_a_user_decode_that_panics_in_the_parent",
            process_a_user_decode_that_panics_in_the_parent,
        ),
    ]
}

pub(crate) fn pool(workers: usize, max_works: usize) -> ProcessPool {
    ProcessPool::builder()
        .workers(workers)
        .max_works_per_worker(max_works)
        .build(&works::WORKS)
        .expect("the pool starts")
}

pub(crate) fn dir_arg(dir: &Path) -> String {
    dir.to_string_lossy().into_owned()
}

pub(crate) fn open_gate(dir: &Path) {
    std::fs::write(dir.join("go"), b"").expect("the gate opens");
}

fn process_call_and_map_awaited_under_block_on() {
    let p = pool(2, 4);
    let (one, items) = within("a call and a map awaited", move || {
        aplex::block_on(async {
            let one = p.call(&works::double, 21).await;
            let mut map = p.map(&works::double, 0..50u64).chunk_size(3);
            let mut items = Vec::new();
            while let Some(r) = map.next().await {
                items.push(r);
            }
            (one, items)
        })
    });
    assert_eq!(one, Ok(42));
    let want: Vec<_> = (0..50u64).map(|x| Ok(x * 2)).collect();
    assert_eq!(items, want);
}

fn process_call_and_map_under_a_foreign_executor() {
    let p = pool(1, 4);
    let dir = temp_dir("foreign");
    let d = dir_arg(&dir);
    let gate = dir.clone();
    let (wakes, outcome, first) = within("a call polled by hand", move || {
        let (counter, waker) = CountingWaker::new();
        let mut h = p.call(&works::gated, (d, 0));
        assert!(poll_with(&mut h, &waker).is_pending());
        let mut map = p.map(&works::nap, [1u64, 2]);
        open_gate(&gate);
        eventually("the gated call ends", || h.is_finished());
        eventually("the waker is woken", || counter.count() > 0);
        let outcome = match poll_with(&mut h, &waker) {
            Poll::Ready(o) => o,
            Poll::Pending => panic!("pending after it finished"),
        };
        // The map through poll_next, with the same counting waker.
        let (map_counter, map_waker) = CountingWaker::new();
        let mut cx = std::task::Context::from_waker(&map_waker);
        let first = loop {
            let seen = map_counter.count();
            match map.poll_next(&mut cx) {
                Poll::Ready(r) => break r,
                Poll::Pending => eventually("the map wakes", || map_counter.count() > seen),
            }
        };
        (counter.count(), outcome, first)
    });
    assert!(wakes >= 1);
    assert_eq!(outcome, Ok(1));
    assert_eq!(first, Some(Ok(1)));
    let _ = std::fs::remove_dir_all(dir);
}

fn process_calls_from_inside_thread_pool_works() {
    let p = Arc::new(pool(2, 8));
    let tp = ThreadPool::new(2);
    let got = within("calls made by a thread pool's works", move || {
        let mut hs = Vec::new();
        for i in 0..8u64 {
            let p1 = Arc::clone(&p);
            hs.push(tp.spawn(move || async move { p1.call(&works::double, i).await }));
            let p2 = Arc::clone(&p);
            hs.push(tp.submit(move || p2.call(&works::double, 100 + i).wait()));
        }
        hs.into_iter()
            .map(|h| h.wait().expect("the thread pool's work ends"))
            .collect::<Vec<_>>()
    });
    let mut want = Vec::new();
    for i in 0..8u64 {
        want.push(Ok(i * 2));
        want.push(Ok((100 + i) * 2));
    }
    assert_eq!(got, want);
}

fn process_dropped_handles_leave_no_load() {
    let p = pool(2, 4);
    let dir = temp_dir("dropped");
    let d = dir_arg(&dir);
    let gate = dir.clone();
    let loads = within("handles dropped before and after a poll", move || {
        let (_, waker) = CountingWaker::new();
        for i in 0..10u64 {
            drop(p.call(&works::nap, i % 3));
        }
        let mut polled = p.call(&works::gated, (d.clone(), 1));
        assert!(poll_with(&mut polled, &waker).is_pending());
        drop(polled);
        drop(p.call(&works::gated, (d, 2)));
        open_gate(&gate);
        eventually("every dropped call ends", || {
            p.loads().iter().sum::<usize>() == 0
        });
        let after = p.call(&works::double, 4).wait();
        (after, p.loads())
    });
    assert_eq!(loads, (Ok(8), vec![0, 0]));
    let _ = std::fs::remove_dir_all(dir);
}

pub(crate) fn temp_dir_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("aplex-seams-process-{}-{name}", std::process::id()))
}

fn process_cancel_running_queued_and_finished() {
    let p = pool(1, 1);
    let dir = temp_dir("cancel");
    let d = dir_arg(&dir);
    let got = within("cancels at every stage", move || {
        let dir = temp_dir_path("cancel");
        // Running.
        let running = p.call(&works::gated, (d.clone(), 0));
        eventually("call 0 starts", || dir.join("started-0").exists());
        let r = (running.cancel(), running.cancel(), running.wait());
        // Queued in the worker behind a running one (one work at a time).
        let first = p.call(&works::gated, (d.clone(), 1));
        let queued = p.call(&works::gated, (d.clone(), 2));
        eventually("call 1 starts", || dir.join("started-1").exists());
        let q = (queued.cancel(), queued.wait());
        let f = (first.cancel(), first.wait());
        // The worker handles frames in order: once call 1's cancel has dropped its future,
        // call 2's cancel (sent before it) has been handled too. Opening the gate earlier
        // would race the cancels through the pipe (documented: a call the worker reaches
        // before its cancel arrives runs, its result discarded).
        eventually("call 1's future is dropped by its cancel", || {
            dir.join("ended-1").exists()
        });
        open_gate(&dir);
        let later = p.call(&works::gated, (d, 3)).wait();
        let never_started = !dir.join("started-2").exists();
        // Finished.
        let done = p.call(&works::double, 6);
        eventually("call 4 ends", || done.is_finished());
        let fin = (done.cancel(), done.cancel(), done.wait());
        (r, q, f, later, never_started, fin, p.loads())
    });
    assert_eq!(got.0, (true, true, Err(Error::Cancelled)), "running");
    assert_eq!(got.1, (true, Err(Error::Cancelled)), "queued");
    assert_eq!(
        got.2,
        (true, Err(Error::Cancelled)),
        "running, ahead of the queued"
    );
    assert!(got.3.is_ok(), "after: {:?}", got.3);
    assert!(
        got.4,
        "a call cancelled while queued in the worker never started"
    );
    assert_eq!(got.5, (false, false, Ok(12)), "finished");
    assert_eq!(got.6, vec![0]);
    let _ = std::fs::remove_dir_all(dir);
}

fn process_kill_on_cancel_loses_only_that_workers_calls() {
    let p = ProcessPool::builder()
        .workers(1)
        .max_works_per_worker(4)
        .kill_on_cancel(true)
        .build(&works::WORKS)
        .expect("the pool starts");
    let dir = temp_dir("kill_on_cancel");
    let d = dir_arg(&dir);
    let got = within("a plain work that ignores its cancel", move || {
        let bystander = p.call(&works::nap, 60_000);
        let plain = p.call(&works::block_forever, d);
        eventually("the plain work starts", || {
            temp_dir_path("kill_on_cancel")
                .join("plain-started")
                .exists()
        });
        let cancelled = (plain.cancel(), plain.cancel());
        let outcomes = (plain.wait(), bystander.wait());
        let after = p.call(&works::double, 4).wait();
        (cancelled, outcomes, after, p.loads())
    });
    assert_eq!(got.0, (true, true));
    assert_eq!(got.1 .0, Err(Error::Cancelled));
    assert!(
        matches!(got.1 .1, Err(Error::WorkerLost(_))),
        "{:?}",
        got.1 .1
    );
    assert_eq!(got.2, Ok(8));
    assert_eq!(got.3, vec![0]);
    let _ = std::fs::remove_dir_all(dir);
}

fn process_map_whose_worker_dies_while_awaited_counts_every_item() {
    for chunk in [1, 4] {
        let p = pool(2, 4);
        let items = within("a map whose worker exits at item 37", move || {
            aplex::block_on(async {
                let mut map = p
                    .map(&works::exit_on, (0..200u64).map(|x| (x, 37)))
                    .chunk_size(chunk);
                let mut items = Vec::new();
                while let Some(r) = map.next().await {
                    items.push(r);
                }
                items
            })
        });
        assert_eq!(items.len(), 200, "chunk {chunk}: one outcome an item");
        for (x, r) in items.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(*v, x as u64, "chunk {chunk}: item {x} in its place"),
                Err(Error::WorkerLost(_)) => {}
                other => panic!("chunk {chunk} item {x}: {other:?}"),
            }
        }
        assert!(
            matches!(items[37], Err(Error::WorkerLost(_))),
            "{:?}",
            items[37]
        );
    }
}

fn process_map_timeout_cancels_what_is_left() {
    let p = Arc::new(pool(1, 4));
    let dir = temp_dir("map_timeout");
    let d = dir_arg(&dir);
    let p2 = Arc::clone(&p);
    let (blocking, awaited) = within("maps of gated works with a timeout", move || {
        let d1 = d.clone();
        let blocking: Vec<_> = p2
            .map(&works::gated, (0..20u64).map(move |i| (d1.clone(), i)))
            .timeout(Duration::from_millis(300))
            .collect();
        let awaited = aplex::block_on(async {
            let mut map = p2
                .map(&works::gated, (20..40u64).map(move |i| (d.clone(), i)))
                .chunk_size(3)
                .timeout(Duration::from_millis(300));
            let mut items = Vec::new();
            while let Some(r) = map.next().await {
                items.push(r);
            }
            items
        });
        (blocking, awaited)
    });
    assert_eq!(blocking, vec![Err(Error::TimedOut)]);
    assert_eq!(awaited, vec![Err(Error::TimedOut)]);
    // Every chunk was cancelled in the worker: nothing stays counted.
    let after = within("the pool after the maps", move || {
        eventually("the cancelled chunks leave", || p.loads() == vec![0]);
        p.call(&works::double, 1).wait()
    });
    assert_eq!(after, Ok(2));
    let _ = std::fs::remove_dir_all(dir);
}

fn process_max_works_per_worker_bounds_async_works() {
    let p = pool(1, 4);
    let dir = temp_dir("max_works");
    let d = dir_arg(&dir);
    let got = within("eight gated works on a worker that runs four", move || {
        let dir = temp_dir_path("max_works");
        let hs: Vec<_> = (0..8u64)
            .map(|i| p.call(&works::gated, (d.clone(), i)))
            .collect();
        let started = || {
            (0..8)
                .filter(|i| dir.join(format!("started-{i}")).exists())
                .count()
        };
        eventually("four start", || started() == 4);
        let detailed = p.detailed_loads()[0];
        open_gate(&dir);
        let most: Vec<_> = hs.into_iter().map(|h| h.wait()).collect();
        (detailed, most)
    });
    assert_eq!((got.0.running, got.0.queued, got.0.capacity), (4, 4, 4));
    for (i, m) in got.1.iter().enumerate() {
        assert!(matches!(m, Ok(n) if *n <= 4), "call {i}: {m:?}");
    }
    assert!(got.1.contains(&Ok(4)), "four ran at once: {:?}", got.1);
    let _ = std::fs::remove_dir_all(dir);
}

fn process_works_of_every_shape_round_trip() {
    let p = pool(1, 4);
    let got = within("works of every shape", move || {
        let order = Order {
            id: 9,
            lines: vec![("bolt".to_string(), 3), (String::new(), u32::MAX)],
            note: None,
            state: State::Held("ébauche".to_string()),
        };
        (
            p.call(&works::checked_div, (7, 2)).wait(),
            p.call(&works::checked_div, (7, 0)).wait(),
            p.call(&works::first_word, "  hello world".to_string())
                .wait(),
            p.call(&works::first_word, "   ".to_string()).wait(),
            p.call(&works::split, "a  b".to_string()).wait(),
            p.call(&works::ship, order).wait(),
            p.call(&works::unit, ()).wait(),
        )
    });
    assert_eq!(got.0, Ok(Ok(3)));
    assert_eq!(got.1, Ok(Err("division by zero".to_string())));
    assert_eq!(got.2, Ok(Some("hello".to_string())));
    assert_eq!(got.3, Ok(None));
    let words = vec!["a".to_string(), String::new(), "b".to_string()];
    assert_eq!(got.4, Ok((words, 3, false)));
    let shipped = got.5.expect("the order ships");
    assert_eq!(
        shipped.state,
        State::Shipped {
            at: 9,
            parts: vec![3, u16::MAX]
        }
    );
    assert_eq!(shipped.lines[1], (String::new(), u32::MAX));
    assert_eq!(got.6, Ok(()));
}

fn process_a_user_decode_that_panics_in_the_worker() {
    let p = pool(1, 4);
    let got = within("an argument whose decode panics in the worker", move || {
        let bad = p.call(&works::touchy_arg, Touchy(13)).wait();
        let after = p.call(&works::touchy_arg, Touchy(12)).wait();
        (bad, after)
    });
    assert!(
        matches!(got.0, Err(Error::Panicked(_) | Error::WorkerLost(_))),
        "{:?}",
        got.0
    );
    assert_eq!(got.1, Ok(12));
}

fn process_a_user_decode_that_panics_in_the_parent() {
    let p = pool(1, 4);
    let got = within("a result whose decode panics in the parent", move || {
        let bad = p.call(&works::touchy, 13).wait();
        let after = p.call(&works::touchy, 12).wait();
        (bad, after)
    });
    assert!(
        matches!(got.0, Err(Error::Panicked(_) | Error::Wire(_))),
        "{:?}",
        got.0
    );
    assert_eq!(got.1, Ok(Touchy(12)));
}
