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
