//! The thread pool at its seams: works that reach back into their own pool, pools torn down
//! under their works, panics whose payloads or values misbehave in their drops, and handles
//! awaited from foreign wakers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::Poll;
use std::time::Duration;

use aplex::{Error, ThreadPool};

use crate::{case, eventually, poll_with, within, Case, CountingWaker, PanicOnDrop};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "nested_spawn_awaited_on_a_one_worker_pool",
            nested_spawn_awaited_on_a_one_worker_pool,
        ),
        case(
            "a_work_that_drops_the_last_pool_handle",
            a_work_that_drops_the_last_pool_handle,
        ),
        case(
            "shutdown_while_works_submit_more",
            shutdown_while_works_submit_more,
        ),
        case(
            "zero_workers_is_an_error_not_a_hang",
            zero_workers_is_an_error_not_a_hang,
        ),
        case(
            "map_over_nothing_and_huge_chunks",
            map_over_nothing_and_huge_chunks,
        ),
        case(
            "map_dropped_mid_iteration_and_a_panicking_mapper",
            map_dropped_mid_iteration_and_a_panicking_mapper,
        ),
        case(
            "a_panic_payload_whose_drop_panics",
            a_panic_payload_whose_drop_panics,
        ),
        case(
            "a_value_whose_drop_panics_with_nobody_waiting",
            a_value_whose_drop_panics_with_nobody_waiting,
        ),
        case(
            "a_future_whose_drop_panics_on_cancel",
            a_future_whose_drop_panics_on_cancel,
        ),
        case(
            "handle_awaited_by_a_foreign_waker_then_a_new_one",
            handle_awaited_by_a_foreign_waker_then_a_new_one,
        ),
        case(
            "cancel_answers_stay_consistent",
            cancel_answers_stay_consistent,
        ),
        case(
            "shutdown_now_resolves_every_handle",
            shutdown_now_resolves_every_handle,
        ),
        case(
            "a_panicking_balancer_does_not_take_the_pool_down",
            a_panicking_balancer_does_not_take_the_pool_down,
        ),
        case(
            "thread_local_destructors_run_on_shutdown",
            thread_local_destructors_run_on_shutdown,
        ),
    ]
}

fn nested_spawn_awaited_on_a_one_worker_pool() {
    let pool = Arc::new(ThreadPool::new(1));
    let inner = Arc::clone(&pool);
    let h = pool.spawn(move || async move {
        let child = inner.spawn(|| async { 20 });
        let plain = inner.submit(|| 1);
        child.await.unwrap() + plain.await.unwrap()
    });
    assert_eq!(within("a nested spawn awaited", move || h.wait()), Ok(21));
}

fn a_work_that_drops_the_last_pool_handle() {
    let pool = Arc::new(ThreadPool::new(2));
    let (tx, rx) = std::sync::mpsc::channel();
    let own = Arc::clone(&pool);
    let h = pool.submit(move || {
        rx.recv().unwrap(); // wait until the caller let go of its handle
        drop(own); // the last one: the pool shuts down from inside its own work
        7
    });
    drop(pool);
    tx.send(()).unwrap();
    assert_eq!(
        within("a work dropping its own pool", move || h.wait()),
        Ok(7)
    );
}

fn shutdown_while_works_submit_more() {
    let pool = Arc::new(ThreadPool::new(2));
    let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let gate = Arc::new(Barrier::new(2));
    let mut handles = Vec::new();
    for _ in 0..2 {
        let (pool2, outcomes, gate) = (Arc::clone(&pool), Arc::clone(&outcomes), Arc::clone(&gate));
        handles.push(pool.spawn(move || async move {
            gate.wait(); // both running
            for i in 0..50 {
                let h = pool2.submit(move || i);
                outcomes.lock().unwrap().push(h);
                aplex::yield_now().await;
            }
        }));
    }
    let closer = Arc::clone(&pool);
    within("shutdown under submitting works", move || closer.shutdown());
    for h in handles {
        assert_eq!(h.wait(), Ok(()));
    }
    let hs = std::mem::take(&mut *outcomes.lock().unwrap());
    assert_eq!(hs.len(), 100);
    for (i, h) in hs.into_iter().enumerate() {
        match within("a work submitted during shutdown", move || h.wait()) {
            Ok(_) | Err(Error::ShutDown) => {}
            other => panic!("work {i}: {other:?}"),
        }
    }
    assert_eq!(pool.submit(|| 1).wait(), Err(Error::ShutDown));
}

fn zero_workers_is_an_error_not_a_hang() {
    assert!(ThreadPool::builder().workers(0).build().is_err());
    assert!(std::panic::catch_unwind(|| ThreadPool::new(0)).is_err());
    assert!(ThreadPool::builder()
        .max_works_per_worker(0)
        .build()
        .is_err());
}

fn map_over_nothing_and_huge_chunks() {
    let pool = ThreadPool::new(2);
    let none: Vec<_> = pool.map(|x: u8| x, std::iter::empty()).collect();
    assert!(none.is_empty());
    let all: Vec<_> = pool
        .map(|x: u32| x + 1, 0..100)
        .chunk_size(usize::MAX)
        .map(Result::unwrap)
        .collect();
    assert_eq!(all, (1..=100).collect::<Vec<_>>());
    let timed: Vec<_> = pool
        .map(|x: u32| x, 0..3)
        .timeout(Duration::MAX)
        .map(Result::unwrap)
        .collect();
    assert_eq!(timed, [0, 1, 2]);
    assert!(std::panic::catch_unwind(|| pool.map(|x: u8| x, 0..1).chunk_size(0)).is_err());
}

fn map_dropped_mid_iteration_and_a_panicking_mapper() {
    let pool = ThreadPool::new(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = Arc::clone(&ran);
    let mut m = pool.map(
        move |x: u32| {
            r.fetch_add(1, Ordering::SeqCst);
            if x == 3 {
                panic!("three");
            }
            x
        },
        0..10_000,
    );
    let first: Vec<_> = m.by_ref().take(5).collect();
    assert_eq!(first[..3], [Ok(0), Ok(1), Ok(2)]);
    assert!(matches!(first[3], Err(Error::Panicked(_))));
    assert_eq!(first[4], Ok(4));
    within("dropping a map mid-way", move || drop(m));
    // The pool still works, and drops the rest without running all of it.
    assert_eq!(pool.submit(|| 5).wait(), Ok(5));
    within("shutdown after a dropped map", move || pool.shutdown());
    assert!(ran.load(Ordering::SeqCst) < 10_000);
}

fn a_panic_payload_whose_drop_panics() {
    let pool = ThreadPool::new(1);
    let h = pool.submit(|| -> u8 { std::panic::panic_any(PanicOnDrop) });
    let got = within("a panic whose payload panics on drop", move || h.wait());
    assert!(matches!(got, Err(Error::Panicked(_))), "{got:?}");
    // The worker survived.
    assert_eq!(
        within("the next work", move || pool.submit(|| 2).wait()),
        Ok(2)
    );
}

fn a_value_whose_drop_panics_with_nobody_waiting() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(Barrier::new(2));
    let g = Arc::clone(&gate);
    let h = pool.submit(move || {
        g.wait();
        PanicOnDrop
    });
    drop(h); // nobody takes the value: it is dropped where the work ended
    gate.wait();
    let next = within("a work after a value dropped with a panic", move || {
        let r = pool.submit(|| 3).wait();
        drop(pool);
        r
    });
    assert_eq!(next, Ok(3));
}

fn a_future_whose_drop_panics_on_cancel() {
    let pool = ThreadPool::new(1);
    let (tx, rx) = std::sync::mpsc::channel();
    let h = pool.spawn(move || async move {
        let _bomb = PanicOnDrop;
        tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    rx.recv().unwrap();
    assert!(h.cancel());
    assert_eq!(
        within("a cancelled future that panics in drop", move || h.wait()),
        Err(Error::Cancelled)
    );
    assert_eq!(
        within("the next work", move || pool.submit(|| 4).wait()),
        Ok(4)
    );
}

fn handle_awaited_by_a_foreign_waker_then_a_new_one() {
    let pool = ThreadPool::new(1);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut h = pool.submit(move || {
        rx.recv().unwrap();
        11
    });
    let (a, a_waker) = CountingWaker::new();
    let (b, b_waker) = CountingWaker::new();
    assert!(poll_with(&mut h, &a_waker).is_pending());
    assert!(poll_with(&mut h, &b_waker).is_pending());
    tx.send(()).unwrap();
    eventually("the latest waker to be woken", || b.count() > 0);
    assert_eq!(a.count(), 0, "a replaced waker is not woken");
    assert_eq!(poll_with(&mut h, &b_waker), Poll::Ready(Ok(11)));
}

fn cancel_answers_stay_consistent() {
    let pool = ThreadPool::new(1);
    let done = pool.submit(|| 1);
    let done_result = within("a finished work", {
        let mut done = done;
        move || {
            let r = done.wait_timeout(Duration::MAX);
            (r, done.cancel(), done.cancel())
        }
    });
    assert_eq!(done_result, (Ok(1), false, false));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let blocker = pool.submit(move || rx.recv().unwrap());
    let queued = pool.submit(|| 2);
    assert!(queued.cancel());
    assert!(queued.cancel(), "asking again gives the same answer");
    tx.send(()).unwrap();
    assert_eq!(queued.wait(), Err(Error::Cancelled));
    assert_eq!(blocker.wait(), Ok(()));
}

fn shutdown_now_resolves_every_handle() {
    let pool = ThreadPool::builder()
        .workers(2)
        .max_works_per_worker(2)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..40)
        .map(|i| {
            pool.spawn(move || async move {
                aplex::time::sleep(Duration::from_secs(if i % 2 == 0 { 3600 } else { 0 })).await;
                i
            })
        })
        .collect();
    within("shutdown_now", move || pool.shutdown_now());
    for (i, h) in handles.into_iter().enumerate() {
        match within("a handle after shutdown_now", move || h.wait()) {
            Ok(v) => assert_eq!(v, i),
            Err(Error::Cancelled) => {}
            other => panic!("work {i}: {other:?}"),
        }
    }
}

fn a_panicking_balancer_does_not_take_the_pool_down() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let pool = ThreadPool::builder()
        .workers(2)
        .balancer(aplex::balance::from_fn(
            move |_loads: &[aplex::balance::Load], _hint: Option<u64>| {
                if c.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("balancer");
                }
                usize::MAX // out of range: taken modulo the worker count
            },
        ))
        .build()
        .unwrap();
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.submit(|| 1)));
    if let Ok(h) = first {
        let r = within("a work whose balancer panicked", move || h.wait());
        assert!(r.is_ok() || r.is_err(), "it resolves");
    }
    assert_eq!(
        within("a work after the balancer panicked", move || pool
            .submit(|| 2)
            .wait()),
        Ok(2)
    );
}

fn thread_local_destructors_run_on_shutdown() {
    struct Bump(Arc<AtomicUsize>);
    impl Drop for Bump {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        static SLOT: std::cell::RefCell<Option<Bump>> = const { std::cell::RefCell::new(None) };
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let pool = ThreadPool::new(2);
    let d = Arc::clone(&dropped);
    pool.submit(move || SLOT.with(|s| *s.borrow_mut() = Some(Bump(d))))
        .wait()
        .unwrap();
    within("shutdown", move || pool.shutdown());
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the worker's thread-locals were destroyed"
    );
}
