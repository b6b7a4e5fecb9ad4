//! The helpers at their seams: awaited inside pool works and on a foreign executor, futures
//! whose `Drop` panics after they finished, and the numbers a user gives at their extremes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aplex::sync::Event;
use aplex::{
    as_completed, collect, in_thread, resolve, wait_any, Error, Group, OrderedYielder, RateLimiter,
    ThreadPool, Yielder,
};

use super::{case, run_foreign, within, Case, HANG};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "helpers_awaited_inside_pool_works",
            helpers_awaited_inside_pool_works,
        ),
        case(
            "helpers_on_a_foreign_executor",
            helpers_on_a_foreign_executor,
        ),
        case(
            "yielder_future_whose_drop_panics_after_its_value_is_not_lost_silently",
            yielder_future_whose_drop_panics_after_its_value_is_not_lost_silently,
        ),
        case(
            "ordered_yielder_future_whose_drop_panics_is_not_lost_silently",
            ordered_yielder_future_whose_drop_panics_is_not_lost_silently,
        ),
        case(
            "group_future_whose_drop_panics_is_reported_by_join",
            group_future_whose_drop_panics_is_reported_by_join,
        ),
        case(
            "helpers_extreme_counts_and_durations",
            helpers_extreme_counts_and_durations,
        ),
    ]
}

/// A future that gives its value on the second poll and panics when it is dropped: a panic
/// that comes after the future finished, when its owner drops it.
struct PanicsOnDrop {
    value: u32,
    polled: bool,
}

impl Future for PanicsOnDrop {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.polled {
            return Poll::Ready(self.value);
        }
        self.polled = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("drop of future {} panics on purpose", self.value);
        }
    }
}

fn value_then_panicking_drop(value: u32) -> PanicsOnDrop {
    PanicsOnDrop {
        value,
        polled: false,
    }
}

/// Inside an async pool work: `collect`, `resolve`, `as_completed` over another pool's
/// handles, and `in_thread` awaited; inside a plain work, `wait_any`.
fn helpers_awaited_inside_pool_works() {
    within("helpers inside pool works", || {
        let pool = ThreadPool::new(2);
        let other = Arc::new(ThreadPool::new(2));
        let o = Arc::clone(&other);
        let all = pool.spawn(move || async move {
            let naps = (0..5u64).map(|i| async move {
                aplex::time::sleep(Duration::from_millis(5 - i)).await;
                i
            });
            let collected = collect(naps, 2).await;
            let mut ordered = resolve((0..4u64).map(|i| async move { i * 10 }), 3);
            let mut resolved = Vec::new();
            while let Some(v) = ordered.next().await {
                resolved.push(v);
            }
            let handles: Vec<_> = (0..4u64).map(|i| o.submit(move || i + 100)).collect();
            let mut done = as_completed(handles);
            let mut finished = Vec::new();
            while let Some((_, r)) = done.next().await {
                finished.push(r.unwrap());
            }
            finished.sort_unstable();
            let threaded = in_thread(|| 7u64).await.unwrap();
            (collected, resolved, finished, threaded)
        });
        let (collected, resolved, finished, threaded) = all.wait().unwrap();
        assert_eq!(collected, [0, 1, 2, 3, 4]);
        assert_eq!(resolved, [0, 10, 20, 30]);
        assert_eq!(finished, [100, 101, 102, 103]);
        assert_eq!(threaded, 7);
        let o = Arc::clone(&other);
        let first = pool.submit(move || {
            let gate = Arc::new(Event::new());
            let g = Arc::clone(&gate);
            let handles = vec![
                o.spawn(move || async move {
                    g.wait().await;
                    1
                }),
                o.submit(|| 2),
            ];
            let (index, outcome, rest) = wait_any(handles).unwrap();
            gate.set();
            (
                index,
                outcome,
                rest.into_iter().map(|h| h.wait()).collect::<Vec<_>>(),
            )
        });
        assert_eq!(first.wait().unwrap(), (1, Ok(2), vec![Ok(1)]));
    });
}

/// The helpers' futures driven by a foreign executor on a plain thread.
fn helpers_on_a_foreign_executor() {
    within("helpers on a foreign executor", || {
        let pool = ThreadPool::new(2);
        let naps = (0..4u64).map(|i| async move {
            aplex::time::sleep(Duration::from_millis(i)).await;
            i
        });
        assert_eq!(run_foreign(collect(naps, 2)), [0, 1, 2, 3]);
        let mut ordered = resolve((0..3u8).map(|i| async move { i }), 1).greediness(1);
        assert_eq!(run_foreign(ordered.next()), Some(0));
        assert_eq!(run_foreign(ordered.next()), Some(1));
        drop(ordered);
        let mut done = as_completed(vec![pool.submit(|| 'a'), pool.submit(|| 'b')]);
        let mut got = vec![
            run_foreign(done.next()).unwrap().1.unwrap(),
            run_foreign(done.next()).unwrap().1.unwrap(),
        ];
        got.sort_unstable();
        assert_eq!(got, ['a', 'b']);
        assert!(run_foreign(done.next()).is_none());
        let limiter = RateLimiter::new(2, Duration::from_millis(5));
        let ran = AtomicUsize::new(0);
        for _ in 0..5 {
            run_foreign(limiter.run(async { ran.fetch_add(1, Ordering::SeqCst) }));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 5);
        assert_eq!(run_foreign(in_thread(|| 3)), Ok(3));
    });
}

/// A yielder's future makes its value, then panics in its drop. The iteration must not end
/// as if that future had never been spawned: either its value comes, or its panic is
/// re-raised, as a panic inside the future would be.
fn yielder_future_whose_drop_panics_after_its_value_is_not_lost_silently() {
    within("a yielder future whose drop panics", || {
        let yielder = Yielder::new();
        yielder.spawn(async { 1 });
        yielder.spawn(value_then_panicking_drop(2));
        yielder.spawn(async { 3 });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let mut got: Vec<u32> = yielder.into_iter().collect();
            got.sort_unstable();
            got
        }));
        match outcome {
            Ok(got) => assert_eq!(got, [1, 2, 3], "a future's outcome was lost"),
            Err(payload) => {
                let msg = super::message(&*payload);
                assert!(msg.contains("on purpose"), "{msg}");
            }
        }
    });
}

/// As above for the ordered yielder: every future's outcome in spawn order, or the panic.
fn ordered_yielder_future_whose_drop_panics_is_not_lost_silently() {
    within("an ordered yielder future whose drop panics", || {
        let yielder = OrderedYielder::new();
        yielder.spawn(async { 1 });
        yielder.spawn(value_then_panicking_drop(2));
        yielder.spawn(async { 3 });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            yielder.into_iter().collect::<Vec<u32>>()
        }));
        match outcome {
            Ok(got) => assert_eq!(got, [1, 2, 3], "a future's outcome was lost"),
            Err(payload) => {
                let msg = super::message(&*payload);
                assert!(msg.contains("on purpose"), "{msg}");
            }
        }
    });
}

/// A group's future panics in its drop, after it finished: `join` reports the panic, as it
/// does for one inside the future, and does not hang.
fn group_future_whose_drop_panics_is_reported_by_join() {
    within("a group future whose drop panics", || {
        let group = Group::new();
        let done = Arc::new(AtomicUsize::new(0));
        let d = Arc::clone(&done);
        group.spawn(async move {
            d.fetch_add(1, Ordering::SeqCst);
        });
        let d = Arc::clone(&done);
        group.spawn(Then {
            inner: value_then_panicking_drop(1),
            done: d,
        });
        let joined = group.join();
        assert_eq!(done.load(Ordering::SeqCst), 2);
        assert!(
            matches!(&joined, Err(Error::Panicked(m)) if m.contains("on purpose")),
            "{joined:?}"
        );
    });
}

/// Runs `inner` to its value, counts it, and gives `()`: the spawned future itself (not a
/// local of an async block) owns the future that panics when dropped.
struct Then {
    inner: PanicsOnDrop,
    done: Arc<AtomicUsize>,
}

impl Future for Then {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = Pin::new(&mut self.inner);
        if inner.poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.done.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(())
    }
}

/// Counts and durations at their extremes: maxima run; documented zeros panic at the call.
fn helpers_extreme_counts_and_durations() {
    within("extreme counts", || {
        let futs = (0..3u8).map(|i| async move { i });
        assert_eq!(aplex::block_on(collect(futs, usize::MAX)), [0, 1, 2]);
        let mut all = resolve((0..3u8).map(|i| async move { i }), usize::MAX).greediness(0);
        assert_eq!(aplex::block_on(all.next()), Some(0));
        let limited = Group::with_limit(usize::MAX);
        limited.spawn(async {});
        limited.join().unwrap();
        let wide = RateLimiter::new(u32::MAX, Duration::MAX).min_interval(Duration::ZERO);
        for _ in 0..100 {
            aplex::block_on(wide.acquire());
        }
        let once = RateLimiter::new(1, Duration::from_nanos(1)).min_interval(Duration::MAX);
        aplex::block_on(once.acquire());
        let second = aplex::block_on(aplex::time::timeout(
            Duration::from_millis(20),
            once.acquire(),
        ));
        assert!(
            second.is_err(),
            "a maximal min_interval lets no second call in"
        );
        for zero in [
            std::panic::catch_unwind(|| drop(collect(Vec::<std::future::Ready<u8>>::new(), 0))),
            std::panic::catch_unwind(|| drop(resolve(Vec::<std::future::Ready<u8>>::new(), 0))),
            std::panic::catch_unwind(|| drop(Group::with_limit(0))),
            std::panic::catch_unwind(|| drop(RateLimiter::new(0, Duration::from_secs(1)))),
            std::panic::catch_unwind(|| drop(RateLimiter::new(1, Duration::ZERO))),
        ] {
            assert!(zero.is_err(), "a documented zero must panic at the call");
        }
        let _ = HANG;
    });
}
