//! `shutdown_async` and `closed`: waiting for a pool's end without blocking a thread.

use super::*;

thread_local! {
    /// Counts this worker thread's end when the thread's locals are destroyed.
    static EXIT_COUNTER: RefCell<Option<ExitCounter>> = const { RefCell::new(None) };
}

struct ExitCounter(Arc<AtomicUsize>);

impl Drop for ExitCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A pool whose worker threads count their own ends in the returned counter.
fn pool_counting_exits(workers: usize) -> (ThreadPool, Arc<AtomicUsize>) {
    let exited = Arc::new(AtomicUsize::new(0));
    let e = Arc::clone(&exited);
    let pool = ThreadPool::builder()
        .workers(workers)
        .on_worker_start(move |_| {
            let counter = ExitCounter(Arc::clone(&e));
            EXIT_COUNTER.with(|c| *c.borrow_mut() = Some(counter));
        })
        .build()
        .unwrap();
    (pool, exited)
}

/// Polls `f` once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
    let waker = std::task::Waker::noop();
    std::pin::Pin::new(f).poll(&mut std::task::Context::from_waker(waker))
}

#[test]
fn shutdown_async_is_pending_while_a_work_runs_then_every_thread_has_exited() {
    let (pool, exited) = pool_counting_exits(2);
    let gate = Gate::default();
    let g = gate.clone();
    let held = pool.spawn(move || async move {
        g.passed().await;
        "finished"
    });
    let mut shutdown = Box::pin(pool.shutdown_async());
    // The first poll begins the shutdown and returns: it does not block this thread.
    assert!(poll_once(&mut shutdown).is_pending());
    assert_eq!(pool.submit(|| 1).wait(), Err(Error::ShutDown));
    assert!(!held.is_finished());
    gate.open();
    let done = aplex::block_on(timeout(BOUND, shutdown));
    assert!(done.is_ok(), "shutdown_async never resolved");
    assert_eq!(held.wait(), Ok("finished"));
    assert_eq!(
        exited.load(Ordering::SeqCst),
        2,
        "every worker thread has ended"
    );
    drop(pool); // nothing left to wait for
}

#[test]
fn closed_waits_for_another_owners_shutdown_without_starting_one() {
    let (pool, exited) = pool_counting_exits(2);
    let pool = Arc::new(pool);
    let mut closed = Box::pin(pool.closed());
    assert!(poll_once(&mut closed).is_pending());
    // Still open: closed() started nothing.
    assert_eq!(pool.submit(|| 2).wait(), Ok(2));
    assert!(poll_once(&mut closed).is_pending());
    let closer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.shutdown())
    };
    assert!(aplex::block_on(timeout(BOUND, closed)).is_ok());
    assert_eq!(pool.submit(|| 3).wait(), Err(Error::ShutDown));
    // The closer's shutdown joins the threads (closed() found them taken).
    closer.join().unwrap();
    assert_eq!(exited.load(Ordering::SeqCst), 2);
}

#[test]
fn shutdown_async_inside_an_own_work_begins_the_shutdown_and_returns() {
    let pool = Arc::new(ThreadPool::new(1));
    let p = Arc::clone(&pool);
    let inside = pool.spawn(move || async move {
        p.shutdown_async().await;
        "returned"
    });
    assert_eq!(inside.wait(), Ok("returned"));
    assert_eq!(pool.submit(|| 1).wait(), Err(Error::ShutDown));
    assert!(aplex::block_on(timeout(BOUND, pool.closed())).is_ok());
}

#[test]
fn closed_inside_an_own_work_panics_instead_of_waiting_forever() {
    expect_panics(&["ThreadPool::closed awaited inside"]);
    let pool = Arc::new(ThreadPool::new(1));
    let p = Arc::clone(&pool);
    let inside = pool.spawn(move || async move { p.closed().await });
    assert!(matches!(inside.wait(), Err(Error::Panicked(m)) if m.contains("wait forever")));
    pool.shutdown();
}
