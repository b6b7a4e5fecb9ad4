//! `shutdown_async` and `closed`: async code waits for the pool's end without blocking its
//! thread — under `block_on`, on a foreign executor's thread, with works still running, twice,
//! after a blocking shutdown, and from inside the pool's own works.

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aplex::sync::Event;
use aplex::{ElasticPool, Error, Handle, ShutdownOptions};

use crate::expected_panics::expect_panics;
use crate::support::{eventually, finishes, foreign_block_on, poll_once};

/// A pool with `n` async works running, each held until `gate` is set.
fn gated_works(n: usize, gate: &Arc<Event>) -> (Arc<ElasticPool>, Vec<Handle<usize>>) {
    let pool = ElasticPool::builder()
        .workers(2)
        .max_works_per_worker(n)
        .build()
        .unwrap();
    let handles = (0..n)
        .map(|i| {
            let gate = gate.clone();
            pool.try_spawn(move || async move {
                gate.wait().await;
                i
            })
            .unwrap()
        })
        .collect();
    eventually("every work runs", || pool.stats().running == n);
    (Arc::new(pool), handles)
}

#[test]
fn shutdown_async_under_block_on_waits_for_running_works_without_blocking_the_thread() {
    let gate = Arc::new(Event::new());
    let (pool, handles) = gated_works(3, &gate);
    let p = pool.clone();
    let report = finishes("shutdown_async under block_on", move || {
        aplex::block_on(async {
            // The gate opens from a task of this same thread: only if the shutdown's await
            // lets the thread run other tasks can the works end.
            aplex::spawn_local(async move { gate.set() }).detach();
            p.shutdown_async(ShutdownOptions::default()).await
        })
    });
    assert!(!report.timed_out);
    assert_eq!(
        (report.completed, report.cancelled, report.unfinished),
        (3, 0, 0)
    );
    let outcomes: Vec<_> = handles.into_iter().map(Handle::wait).collect();
    assert_eq!(outcomes, vec![Ok(0), Ok(1), Ok(2)]);
    let s = pool.stats();
    assert_eq!((s.workers, s.running, s.queued), (0, 0, 0));
    assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Err(Error::ShutDown));
}

#[test]
fn shutdown_async_is_pending_while_works_run_and_ready_once_they_end() {
    let gate = Arc::new(Event::new());
    let (pool, handles) = gated_works(2, &gate);
    let mut shutdown = pin!(pool.shutdown_async(ShutdownOptions::default()));
    assert!(poll_once(&mut shutdown).is_pending());
    assert!(
        poll_once(&mut shutdown).is_pending(),
        "still: nothing ended"
    );
    // The intake closed at the first poll.
    assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Err(Error::ShutDown));
    gate.set();
    // Under a hang catcher, wait for what the shutdown waits for (the workers leave).
    finishes("the workers leave once the gate opens", {
        let pool = pool.clone();
        move || foreign_block_on(pool.closed())
    });
    let report = foreign_block_on(shutdown);
    assert_eq!((report.completed, report.timed_out), (2, false));
    assert!(handles.iter().all(Handle::is_finished));
}

#[test]
fn shutdown_async_on_a_foreign_executor_thread_gives_up_at_its_timeout() {
    let gate = Arc::new(Event::new()); // never set: the works would run forever
    let (pool, handles) = gated_works(2, &gate);
    let p = pool.clone();
    let report = finishes("shutdown_async with a total timeout", move || {
        foreign_block_on(p.shutdown_async(ShutdownOptions {
            total_timeout: Some(Duration::from_millis(50)),
            ..ShutdownOptions::default()
        }))
    });
    assert!(report.timed_out);
    assert_eq!(
        (report.completed, report.cancelled, report.unfinished),
        (0, 2, 0),
        "{report:?}"
    );
    for h in handles {
        assert_eq!(h.wait(), Err(Error::Cancelled));
    }
}

#[test]
fn shutdown_async_with_an_idle_timeout_gives_up_when_nothing_ends() {
    let gate = Arc::new(Event::new());
    let (pool, handles) = gated_works(1, &gate);
    let p = pool.clone();
    let report = finishes("shutdown_async with an idle timeout", move || {
        aplex::block_on(p.shutdown_async(ShutdownOptions {
            idle_timeout: Some(Duration::from_millis(50)),
            ..ShutdownOptions::default()
        }))
    });
    assert!(report.timed_out);
    assert_eq!((report.cancelled, report.unfinished), (1, 0));
    for h in handles {
        assert_eq!(h.wait(), Err(Error::Cancelled));
    }
}

#[test]
fn shutdown_async_twice_reports_nothing_more_the_second_time() {
    let pool = ElasticPool::builder().workers(1).build().unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let d = done.clone();
        drop(pool.try_submit(move || d.fetch_add(1, Ordering::SeqCst)));
    }
    let (first, second) = finishes("two shutdowns", move || {
        aplex::block_on(async {
            let first = pool.shutdown_async(ShutdownOptions::default()).await;
            let second = pool.shutdown_async(ShutdownOptions::default()).await;
            (first, second)
        })
    });
    assert_eq!(done.load(Ordering::SeqCst), 5);
    assert_eq!((first.cancelled, first.unfinished), (0, 0));
    assert!(!first.timed_out && !second.timed_out);
    assert_eq!(
        (second.completed, second.cancelled, second.unfinished),
        (0, 0, 0)
    );
}

#[test]
fn shutdown_async_and_closed_after_a_blocking_shutdown_are_ready_at_once() {
    let pool = ElasticPool::builder().max_workers(2).build().unwrap();
    let h = pool.try_submit(|| 5).unwrap();
    let report = pool.shutdown(ShutdownOptions::default());
    assert_eq!(h.wait(), Ok(5));
    assert!(!report.timed_out);
    let mut again = pin!(pool.shutdown_async(ShutdownOptions::default()));
    match poll_once(&mut again) {
        std::task::Poll::Ready(r) => assert_eq!((r.completed, r.cancelled), (0, 0)),
        std::task::Poll::Pending => panic!("a second shutdown has nothing to wait for"),
    }
    assert!(poll_once(&mut pin!(pool.closed())).is_ready());
}

#[test]
fn closed_waits_for_a_shutdown_another_thread_starts() {
    let gate = Arc::new(Event::new());
    let (pool, handles) = gated_works(2, &gate);
    let mut closed = pin!(pool.closed());
    assert!(poll_once(&mut closed).is_pending(), "nobody shut it down");
    assert_eq!(pool.stats().running, 2, "closed starts no shutdown");
    let closer = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.shutdown(ShutdownOptions::default()))
    };
    // The shutdown waits for the gated works; `closed` waits for the shutdown.
    eventually("the intake closes", || {
        pool.try_submit(|| ()).unwrap().wait() == Err(Error::ShutDown)
    });
    assert!(poll_once(&mut closed).is_pending(), "the works still run");
    gate.set();
    finishes("closed after the shutdown", {
        let pool = pool.clone();
        move || aplex::block_on(pool.closed())
    });
    foreign_block_on(closed);
    let report = closer.join().unwrap();
    // The probes above may have been accepted and run during the shutdown too.
    assert!(report.completed >= 2 && !report.timed_out, "{report:?}");
    let outcomes: Vec<_> = handles.into_iter().map(Handle::wait).collect();
    assert_eq!(outcomes, vec![Ok(0), Ok(1)]);
}

#[test]
fn a_dropped_shutdown_async_still_shuts_the_pool_down() {
    let gate = Arc::new(Event::new());
    let (pool, handles) = gated_works(2, &gate);
    {
        let mut shutdown = pin!(pool.shutdown_async(ShutdownOptions::default()));
        assert!(poll_once(&mut shutdown).is_pending());
    }
    assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Err(Error::ShutDown));
    gate.set();
    let pool = Arc::into_inner(pool).expect("the only owner");
    finishes("the drop after a dropped shutdown_async", move || {
        drop(pool)
    });
    let outcomes: Vec<_> = handles.into_iter().map(Handle::wait).collect();
    assert_eq!(outcomes, vec![Ok(0), Ok(1)]);
}

#[test]
fn shutdown_async_inside_the_pools_own_work_begins_the_shutdown_and_resolves() {
    let pool = Arc::new(ElasticPool::builder().workers(1).build().unwrap());
    let p = pool.clone();
    let inside = pool
        .try_spawn(move || async move {
            let report = p.shutdown_async(ShutdownOptions::default()).await;
            (report.completed, report.cancelled, report.timed_out)
        })
        .unwrap();
    assert_eq!(inside.wait(), Ok((0, 0, false)));
    assert_eq!(pool.try_submit(|| 1).unwrap().wait(), Err(Error::ShutDown));
    // The workers leave on their own; `closed` sees it.
    finishes("closed after a shutdown from inside", move || {
        aplex::block_on(pool.closed())
    });
}

#[test]
fn closed_inside_the_pools_own_work_panics_instead_of_hanging() {
    expect_panics(&["ElasticPool::closed awaited inside"]);
    let pool = Arc::new(ElasticPool::builder().workers(1).build().unwrap());
    let p = pool.clone();
    let inside = pool
        .try_spawn(move || async move { p.closed().await })
        .unwrap();
    match inside.wait() {
        Err(Error::Panicked(why)) => assert!(why.contains("wait forever"), "{why}"),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(pool.try_submit(|| 2).unwrap().wait(), Ok(2));
}
