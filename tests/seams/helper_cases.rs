//! The helpers at their seams: iterators and streams dropped mid-way, panics inside spawned
//! futures, limiters whose callers give up, and the global pools' one-shot helpers.
#![cfg(feature = "helpers")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use aplex::{Error, Group, OrderedYielder, RateLimiter, ThreadPool, Yielder};

use crate::{case, poll_with, within, Case, CountingWaker, DropCount};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "yielder_dropped_mid_iteration_cancels_the_rest",
            yielder_dropped_mid_iteration_cancels_the_rest,
        ),
        case(
            "ordered_yielder_reraises_a_panic_in_spawn_order",
            ordered_yielder_reraises_a_panic_in_spawn_order,
        ),
        case(
            "yielder_dropped_before_iterating_drops_every_future",
            yielder_dropped_before_iterating_drops_every_future,
        ),
        case(
            "group_join_reports_a_panic_and_waits_for_nested_spawns",
            group_join_reports_a_panic_and_waits_for_nested_spawns,
        ),
        case(
            "collect_and_resolve_over_nothing_and_dropped_mid_way",
            collect_and_resolve_over_nothing_and_dropped_mid_way,
        ),
        case(
            "as_completed_dropped_mid_iteration_leaves_works_running",
            as_completed_dropped_mid_iteration_leaves_works_running,
        ),
        case(
            "rate_limiter_head_that_gives_up_passes_its_turn",
            rate_limiter_head_that_gives_up_passes_its_turn,
        ),
        case(
            "rate_limiter_with_a_never_period_does_not_panic",
            rate_limiter_with_a_never_period_does_not_panic,
        ),
        case(
            "generate_in_thread_dropped_receiver_stops_the_generator",
            generate_in_thread_dropped_receiver_stops_the_generator,
        ),
        case(
            "in_thread_panics_are_outcomes",
            in_thread_panics_are_outcomes,
        ),
    ]
}

fn yielder_dropped_mid_iteration_cancels_the_rest() {
    within("a yielder dropped mid-way", || {
        let yielder = Yielder::new();
        let drops = Arc::new(AtomicUsize::new(0));
        yielder.spawn(async { 1 });
        for _ in 0..5 {
            let d = DropCount(drops.clone());
            yielder.spawn(async move {
                let _d = d;
                std::future::pending::<()>().await;
                2
            });
        }
        let mut it = yielder.into_iter();
        assert_eq!(it.next(), Some(1));
        drop(it);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            5,
            "every pending future was dropped"
        );
    });
}

fn ordered_yielder_reraises_a_panic_in_spawn_order() {
    within("an ordered yielder with a panic", || {
        let yielder = OrderedYielder::new();
        yielder.spawn(async { 0 });
        yielder.spawn(async { panic!("second") });
        yielder.spawn(async { 2 });
        let mut it = yielder.into_iter();
        assert_eq!(it.next(), Some(0));
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| it.next()));
        assert!(again.is_err(), "the panic comes back to the reader");
        drop(it);
    });
}

fn yielder_dropped_before_iterating_drops_every_future() {
    within("a yielder never iterated", || {
        let drops = Arc::new(AtomicUsize::new(0));
        let yielder = Yielder::new();
        for _ in 0..3 {
            let d = DropCount(drops.clone());
            yielder.spawn(async move {
                let _d = d;
                std::future::pending::<u8>().await
            });
        }
        drop(yielder);
        assert_eq!(drops.load(Ordering::SeqCst), 3);
    });
}

fn group_join_reports_a_panic_and_waits_for_nested_spawns() {
    within("a group with a panic and nested spawns", || {
        let group = Group::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let handle = group.handle();
        let r = Arc::clone(&ran);
        group.spawn(async move {
            for _ in 0..3 {
                let r = Arc::clone(&r);
                handle.spawn(async move {
                    aplex::yield_now().await;
                    r.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        group.spawn(async { panic!("one of them") });
        let joined = group.join();
        assert!(matches!(joined, Err(Error::Panicked(_))), "{joined:?}");
        assert_eq!(ran.load(Ordering::SeqCst), 3);
    });
    within("a limited group", || {
        let group = Group::with_limit(1);
        let seen = Arc::new(AtomicUsize::new(0));
        for _ in 0..5 {
            let seen = Arc::clone(&seen);
            group.spawn(async move {
                seen.fetch_add(1, Ordering::SeqCst);
            });
        }
        group.join().unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 5);
    });
}

fn collect_and_resolve_over_nothing_and_dropped_mid_way() {
    let none: Vec<u8> = aplex::block_on(aplex::collect(
        std::iter::empty::<std::future::Ready<u8>>(),
        3,
    ));
    assert!(none.is_empty());
    assert!(std::panic::catch_unwind(|| aplex::collect(
        std::iter::empty::<std::future::Ready<u8>>(),
        0
    ))
    .is_err());
    let drops = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let (d, m) = (drops.clone(), made.clone());
    let futs = (0..1000).map(move |i| {
        m.fetch_add(1, Ordering::SeqCst);
        let guard = DropCount(d.clone());
        async move {
            let _g = guard;
            if i % 2 == 1 {
                aplex::yield_now().await;
            }
            i
        }
    });
    let mut stream = aplex::resolve(futs, 4);
    let first: Vec<_> = aplex::block_on(async {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(stream.next().await.unwrap());
        }
        v
    });
    assert_eq!(first, [0, 1, 2]);
    drop(stream);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        made.load(Ordering::SeqCst),
        "every made future was dropped"
    );
    assert!(made.load(Ordering::SeqCst) < 1000, "resolve is lazy");
}

fn as_completed_dropped_mid_iteration_leaves_works_running() {
    let pool = ThreadPool::new(2);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let slow = pool.submit(move || rx.recv().unwrap());
    let fast = pool.submit(|| ());
    let mut done = aplex::as_completed(vec![slow, fast]);
    let (first, done) = within("the first to complete", move || {
        let first = Iterator::next(&mut done).unwrap();
        (first, done)
    });
    assert_eq!(first, (1, Ok(())));
    drop(done); // the slow work's handle goes with it; the work runs on
    tx.send(()).unwrap();
    within("shutdown", move || pool.shutdown());
    let (counter, waker) = CountingWaker::new();
    let mut empty = aplex::as_completed(Vec::<aplex::Handle<u8>>::new());
    assert_eq!(
        poll_with(&mut Box::pin(empty.next()), &waker),
        Poll::Ready(None)
    );
    assert_eq!(counter.count(), 0);
}

fn rate_limiter_head_that_gives_up_passes_its_turn() {
    within("a limiter whose head gives up", || {
        let limiter = RateLimiter::new(1, Duration::from_secs(3600));
        aplex::block_on(limiter.acquire()); // the one call of this hour
        let (c1, w1) = CountingWaker::new();
        let (_c2, w2) = CountingWaker::new();
        let mut head = Box::pin(limiter.acquire());
        assert!(poll_with(&mut head, &w1).is_pending());
        let mut next = Box::pin(limiter.acquire());
        assert!(poll_with(&mut next, &w2).is_pending());
        drop(head);
        assert_eq!(c1.count(), 0);
        // The next caller is the head now; it is still bound by the hour, and its drop must
        // leave the limiter usable.
        assert!(poll_with(&mut next, &w2).is_pending());
        drop(next);
        let quick = RateLimiter::new(2, Duration::from_millis(1));
        for _ in 0..20 {
            aplex::block_on(quick.acquire());
        }
    });
}

fn rate_limiter_with_a_never_period_does_not_panic() {
    let limiter = RateLimiter::new(1, Duration::MAX).min_interval(Duration::MAX);
    aplex::block_on(limiter.acquire());
    let (_c, waker) = CountingWaker::new();
    let mut second = Box::pin(limiter.acquire());
    assert!(poll_with(&mut second, &waker).is_pending());
    drop(second);
}

fn generate_in_thread_dropped_receiver_stops_the_generator() {
    let produced = Arc::new(AtomicUsize::new(0));
    let p = Arc::clone(&produced);
    let mut rx = aplex::generate_in_thread((0..).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    }));
    assert_eq!(rx.recv_blocking(), Some(0));
    drop(rx);
    let before = produced.load(Ordering::SeqCst);
    crate::eventually("the generator to stop", || {
        let a = produced.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        a == produced.load(Ordering::SeqCst)
    });
    assert!(produced.load(Ordering::SeqCst) < before + 10 * aplex::GENERATE_CAPACITY + 10);
}

fn in_thread_panics_are_outcomes() {
    let h = aplex::in_thread(|| -> u8 { panic!("in a thread") });
    assert!(matches!(
        within("in_thread", move || h.wait()),
        Err(Error::Panicked(_))
    ));
    let h = aplex::in_thread(|| 5u8);
    assert_eq!(within("in_thread", move || h.wait()), Ok(5));
}
