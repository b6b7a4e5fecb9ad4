//! The pools' async side driven by hand: `shutdown_async` and `closed` polled once and
//! dropped, then the blocking forms; the same futures polled from another thread with a
//! swapped waker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aplex::sync::Event;
use aplex::{Error, ThreadPool};

use super::{case, eventually, poll_with, run_foreign, within, Case, CountingWaker};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "pool_shutdown_async_polled_once_and_dropped_then_shutdown",
            shutdown_async_polled_once_and_dropped_then_shutdown,
        ),
        case(
            "pool_closed_polled_on_one_thread_finished_on_another",
            closed_polled_on_one_thread_finished_on_another,
        ),
        case(
            "pool_thread_pool_extreme_numbers",
            thread_pool_extreme_numbers,
        ),
    ]
}

/// A graceful `shutdown_async` polled once (works still running) and dropped: the pool keeps
/// its promise anyway — the running work ends with its value, a later submit is refused
/// with `ShutDown`, and the blocking `shutdown` and the drop return.
fn shutdown_async_polled_once_and_dropped_then_shutdown() {
    within("shutdown_async dropped after one poll", || {
        let pool = ThreadPool::new(2);
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let running = pool.spawn(move || async move {
            g.wait().await;
            1
        });
        {
            let (_counter, waker) = CountingWaker::new();
            let mut stop = std::pin::pin!(pool.shutdown_async());
            assert!(poll_with(stop.as_mut(), &waker).is_pending());
        }
        assert_eq!(pool.submit(|| 2).wait(), Err(Error::ShutDown));
        gate.set();
        assert_eq!(running.wait(), Ok(1));
        pool.shutdown();
        run_foreign(pool.shutdown_async());
        run_foreign(pool.closed());
        drop(pool);
    });
}

/// `closed` polled on this thread with one waker, then moved to another thread and driven
/// there with another, while this thread shuts the pool down: the second waker is the one
/// that hears the end.
fn closed_polled_on_one_thread_finished_on_another() {
    within("closed moved between threads", || {
        let pool = Arc::new(ThreadPool::new(1));
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let running = pool.spawn(move || async move {
            g.wait().await;
        });
        let p = Arc::clone(&pool);
        let polled_once = Arc::new(Event::new());
        let done = Arc::new(AtomicUsize::new(0));
        let (po, d) = (Arc::clone(&polled_once), Arc::clone(&done));
        let watcher = std::thread::spawn(move || {
            let mut closed = Box::pin(async move { p.closed().await });
            let (_first, waker) = CountingWaker::new();
            assert!(poll_with(closed.as_mut(), &waker).is_pending());
            po.set();
            std::thread::spawn(move || {
                run_foreign(closed);
                d.fetch_add(1, Ordering::SeqCst);
            })
            .join()
            .unwrap();
        });
        polled_once.wait_blocking();
        let stopper = {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || pool.shutdown())
        };
        gate.set();
        running.wait().unwrap();
        stopper.join().unwrap();
        watcher.join().unwrap();
        eventually("closed resolved", || done.load(Ordering::SeqCst) == 1);
    });
}

/// The numbers a user gives the thread pool and its handles, at their extremes: zero limits
/// are refused by `build` or panic where documented, maximal ones run, and zero or maximal
/// durations give outcomes, never a panic or a hang.
fn thread_pool_extreme_numbers() {
    within("thread pool extremes", || {
        assert!(ThreadPool::builder()
            .workers(1)
            .max_works_per_worker(0)
            .build()
            .is_err());
        let pool = ThreadPool::builder()
            .workers(2)
            .max_works_per_worker(usize::MAX)
            .build()
            .unwrap();
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let mut slow = pool.spawn(move || async move {
            g.wait().await;
            1
        });
        assert_eq!(
            slow.wait_timeout(std::time::Duration::ZERO),
            Err(Error::TimedOut)
        );
        gate.set();
        assert_eq!(slow.wait_timeout(std::time::Duration::MAX), Ok(1));
        let zero: Vec<_> = pool
            .map(|x: u8| x, 0..3)
            .timeout(std::time::Duration::ZERO)
            .collect();
        assert!(zero.len() <= 3, "{zero:?}");
        assert!(
            zero.iter()
                .all(|o| matches!(o, Ok(_) | Err(Error::TimedOut))),
            "{zero:?}"
        );
        let huge: Vec<_> = pool
            .map(|x: u8| x, 0..3)
            .chunk_size(usize::MAX)
            .timeout(std::time::Duration::MAX)
            .map(Result::unwrap)
            .collect();
        assert_eq!(huge, [0, 1, 2]);
        let zero_chunk = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            drop(pool.map(|x: u8| x, 0..3).chunk_size(0))
        }));
        assert!(
            zero_chunk.is_err(),
            "chunk_size(0) panics at the call, as documented"
        );
        assert!(!Event::new().wait_timeout(std::time::Duration::ZERO));
        let set = Event::new();
        set.set();
        assert!(set.wait_timeout(std::time::Duration::MAX));
        let sem = aplex::sync::Semaphore::new(usize::MAX);
        // Documented: an add that would overflow panics; the semaphore is whole after it.
        let overflow = std::panic::catch_unwind(|| sem.add_permits(1));
        assert!(overflow.is_err());
        assert_eq!(
            aplex::block_on(sem.acquire_many(usize::MAX)).permits(),
            usize::MAX
        );
        assert_eq!(sem.available_permits(), usize::MAX);
    });
}
