//! Stats, async factories, blocking callers, and what the types promise.

use super::*;

#[test]
fn stats_track_every_field() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(2)
        .min_size(1)
        .build()
        .unwrap();
    let s = pool.stats();
    assert_eq!((s.size, s.available, s.in_use, s.waiters), (1, 1, 0, 0));
    let a = pool.acquire_blocking().unwrap();
    let b = pool.acquire_blocking().unwrap();
    let s = pool.stats();
    assert_eq!((s.size, s.available, s.in_use, s.waiters), (2, 0, 2, 0));
    let mut pending = Box::pin(pool.acquire());
    assert!(poll_once(&mut pending).is_pending());
    assert_eq!(pool.stats().waiters, 1);
    drop(a);
    let s = pool.stats();
    assert_eq!((s.size, s.available, s.in_use), (2, 1, 1));
    let Poll::Ready(Ok(c)) = poll_once(&mut pending) else {
        panic!("the returned connection went to the waiter");
    };
    let s = pool.stats();
    assert_eq!((s.size, s.available, s.in_use, s.waiters), (2, 0, 2, 0));
    drop((b, c));
    assert_eq!(pool.stats().available, 2);
    assert_eq!(pool.max_size(), 2);
}

#[test]
fn async_factory_works_from_tasks_threads_and_build_async() {
    let pool = ConnectionPool::builder_async(|| async {
        aplex::time::sleep(Duration::from_millis(1)).await;
        Ok(String::from("conn"))
    })
    .min_size(1)
    .build()
    .unwrap();
    assert_eq!(pool.stats().available, 1);
    let p = pool.clone();
    let from_thread = bounded(move || p.acquire_blocking().map(|c| c.len()));
    assert_eq!(from_thread, Ok(4));
    block_on(async {
        assert_eq!(pool.acquire().await.unwrap().as_str(), "conn");
        let built = ConnectionPool::builder_async(|| async { Ok(1u8) })
            .min_size(2)
            .build_async()
            .await
            .unwrap();
        assert_eq!(built.stats().available, 2);
    });
}

#[test]
fn blocking_call_with_an_async_factory_inside_block_on_panics_instead_of_hanging() {
    let pool = ConnectionPool::builder_async(|| async { Ok(()) })
        .build()
        .unwrap();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        block_on(async { pool.acquire_blocking().map(drop) })
    }));
    assert!(caught.is_err());
    assert!(pool.acquire_blocking().is_ok(), "fine outside block_on");
}

#[test]
fn pooled_guards_move_across_threads() {
    let pool = ConnectionPool::builder(|| Ok(vec![1, 2, 3]))
        .max_size(1)
        .build()
        .unwrap();
    let mut conn: Pooled<Vec<i32>> = pool.acquire_blocking().unwrap();
    conn.push(4);
    thread::spawn(move || drop(conn)).join().unwrap();
    assert_eq!(*pool.acquire_blocking().unwrap(), vec![1, 2, 3, 4]);
}

// ---------------------------------------------------------------------------------------------
// Compile-time checks

#[test]
fn handles_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let pool = ConnectionPool::builder(|| std::net::TcpStream::connect("127.0.0.1:9"))
        .build()
        .unwrap();
    send_sync(&pool);
    send_sync(&ConnectionPool::builder(|| Ok(())));
    let acquire = pool.acquire();
    send(&acquire);
    let timed = pool.acquire_timeout(Duration::from_secs(1));
    send(&timed);
    let maintain = pool.maintain();
    send(&maintain);
    let pooled = ConnectionPool::builder(|| Ok(std::cell::Cell::new(0)))
        .build()
        .unwrap()
        .acquire_blocking()
        .unwrap();
    send(&pooled); // a Send connection that is not Sync
    let _ = format!("{pool:?} {pooled:?}");
}

#[test]
fn connection_types_need_not_be_debug() {
    struct Opaque; // no Debug: results holding a guard still unwrap and print
    let pool = ConnectionPool::builder(|| Ok(Opaque))
        .max_size(1)
        .build()
        .unwrap();
    let held = pool.acquire_blocking().unwrap();
    let late = pool.acquire_blocking_timeout(Duration::from_millis(1));
    assert_eq!(late.unwrap_err(), Error::TimedOut);
    assert!(format!("{held:?}").contains("Opaque"));
}
