//! The public names the design promises, called the way the design writes them, with the types
//! it states spelled out: a rename or a changed signature fails to compile here before it
//! reaches a user. Each call also checks the one behaviour the contract attaches to it.

use std::time::{Duration, Instant};

use aplex::balance::{Balancer, KeyAffinity, LeastLoaded, Load, Random, RoundRobin};
use aplex::sync::{mpsc, oneshot, Event, Semaphore};
use aplex::{block_on, spawn_local, yield_now, Error, Handle, LocalTask, Map, ThreadPool};

/// Longest wait before a test fails instead of hanging.
const BOUND: Duration = Duration::from_secs(20);

#[test]
fn runtime_names() {
    let local = 7;
    // `block_on` takes a future that borrows a local: no `'static` bound.
    let v: i32 = block_on(async { local + 1 });
    assert_eq!(v, 8);
    let got: u8 = block_on(async {
        let task: LocalTask<u8> = spawn_local(async { 3 });
        yield_now().await;
        task.await
    });
    assert_eq!(got, 3);
}

#[test]
fn time_names() {
    use aplex::time::{interval, sleep, sleep_until, timeout, Elapsed};
    block_on(async {
        sleep(Duration::ZERO).await;
        sleep_until(Instant::now()).await;
        let on_time: Result<u8, Elapsed> = timeout(BOUND, async { 1 }).await;
        assert_eq!(on_time.ok(), Some(1));
        let late: Result<(), Elapsed> = timeout(Duration::ZERO, std::future::pending()).await;
        assert!(late.is_err());
        let mut ticks = interval(Duration::from_millis(1));
        ticks.tick().await;
    });
    // A sleep can sit inside a `Send` future.
    fn is_send<T: Send>(_: &T) {}
    is_send(&sleep(Duration::ZERO));
}

#[test]
fn sync_names() {
    block_on(async {
        let (tx, rx) = oneshot::channel::<u8>();
        let sent: Result<(), u8> = tx.send(5);
        assert!(sent.is_ok());
        let got: Result<u8, oneshot::RecvError> = rx.await;
        assert_eq!(got.ok(), Some(5));

        let (tx, mut rx) = mpsc::channel::<u8>(2);
        tx.send(1).await.expect("the receiver is alive");
        tx.send_blocking(2).expect("there is room");
        assert!(tx.try_send(3).is_err(), "a full channel refuses a try_send");
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv().ok(), Some(2));
        drop(tx);
        let rest: Vec<u8> = rx.by_ref().collect();
        assert!(rest.is_empty());
        assert_eq!(rx.recv_blocking(), None);

        let (tx, rx) = mpsc::unbounded::<u8>();
        tx.send(9).await.expect("the receiver is alive");
        drop(tx);
        assert_eq!(rx.collect::<Vec<_>>(), vec![9]);

        let sem = Semaphore::new(3);
        let one = sem.acquire().await;
        let two = sem.acquire_many(2).await;
        assert!(sem.try_acquire().is_none());
        drop((one, two));
        let _three = sem.acquire_blocking();
        sem.add_permits(1);

        let event = Event::new();
        event.set();
        event.wait().await;
    });
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Semaphore>();
}

#[test]
fn thread_pool_names() {
    let pool: ThreadPool = ThreadPool::new(2);
    let loads: Vec<usize> = pool.loads();
    assert_eq!(loads, vec![0, 0]);
    let h: Handle<u64> = pool.submit(|| 21 * 2);
    assert_eq!(h.wait().ok(), Some(42));
    let mut h: Handle<u64> = pool.spawn(|| async { 42 });
    assert_eq!(h.wait_timeout(BOUND).ok(), Some(42));
    assert!(pool.submit_with(7, || 1).wait().is_ok());
    assert!(pool.spawn_with(7, || async { 1 }).wait().is_ok());

    let map: Map<u64> = pool
        .map(|x: u64| x + 1, 0..10u64)
        .chunk_size(3)
        .timeout(BOUND);
    let out: Vec<u64> = map
        .map(|r: Result<u64, Error>| r.expect("no failure"))
        .collect();
    assert_eq!(out, (1..=10).collect::<Vec<_>>());
    let mut awaited = pool.map(|x: u64| x * 2, 0..3u64);
    let first = block_on(awaited.next());
    assert_eq!(first.and_then(Result::ok), Some(0));

    let gate = std::sync::Arc::new(Event::new());
    let g = std::sync::Arc::clone(&gate);
    let running = pool.submit(move || g.wait_blocking());
    let mut cancelled = pool.spawn(std::future::pending::<()>);
    assert!(cancelled.cancel());
    assert!(matches!(
        cancelled.wait_timeout(BOUND),
        Err(Error::Cancelled)
    ));
    assert!(cancelled.is_finished());
    gate.set();
    assert!(running.wait().is_ok());

    pool.shutdown();
    // After shutdown a submission is still a handle, resolved with `ShutDown`.
    assert!(matches!(pool.submit(|| 1).wait(), Err(Error::ShutDown)));

    let pool = ThreadPool::builder()
        .workers(2)
        .max_works_per_worker(4)
        .balancer(RoundRobin::default())
        .thread_name("contract")
        .on_worker_start(|_| {})
        .build()
        .expect("two threads start");
    let name = pool.submit(|| std::thread::current().name().map(str::to_owned));
    let name = name.wait().expect("no failure").expect("named");
    assert!(name == "contract-0" || name == "contract-1", "{name}");
    pool.shutdown_now();
}

#[test]
fn error_names() {
    let all = [
        Error::Panicked("p".into()),
        Error::Cancelled,
        Error::TimedOut,
        Error::WorkerLost("w".into()),
        Error::ShutDown,
        Error::QueueFull,
        Error::Remote("r".into()),
        Error::Wire("w".into()),
        Error::Io(std::io::Error::other("io")),
    ];
    for e in &all {
        let as_std: &dyn std::error::Error = e;
        assert!(!as_std.to_string().is_empty());
    }
}

#[test]
fn balance_names() {
    let loads = [
        Load {
            running: 1,
            queued: 0,
            capacity: 1,
        },
        Load {
            running: 0,
            queued: 0,
            capacity: 1,
        },
    ];
    assert!(!loads[0].has_room() && loads[1].has_room());
    assert_eq!(LeastLoaded::default().pick(&loads, None), 1);
    let picks: [Box<dyn Balancer>; 4] = [
        Box::new(RoundRobin::default()),
        Box::new(Random::default()),
        Box::new(LeastLoaded::default()),
        Box::new(KeyAffinity::default()),
    ];
    for mut b in picks {
        assert!(b.pick(&loads, Some(3)) < 2 || b.pick(&loads, None) < 2);
    }
}

#[cfg(feature = "helpers")]
#[test]
fn helper_names() {
    use aplex::{collect, generate_in_thread, in_thread, resolve, Group, OrderedYielder, Yielder};
    let h: Handle<u8> = in_thread(|| 4);
    assert_eq!(h.wait().ok(), Some(4));
    let base = [1u8, 2, 3];
    // `collect` may borrow its inputs.
    let got: Vec<u8> = block_on(collect(base.iter().map(|x| async move { *x }), 2));
    assert_eq!(got, vec![1, 2, 3]);
    let mut stream = resolve((0..4u8).map(|x| async move { x }), 2).greediness(2);
    let first = block_on(stream.next());
    assert_eq!(first, Some(0));
    let limiter =
        aplex::RateLimiter::new(10, Duration::from_millis(10)).min_interval(Duration::ZERO);
    block_on(async {
        limiter.acquire().await;
        assert_eq!(limiter.run(async { 5 }).await, 5);
    });
    let numbers: Vec<u32> = generate_in_thread(0..3u32).collect();
    assert_eq!(numbers, vec![0, 1, 2]);

    let group = Group::with_limit(2);
    let inner = group.handle();
    group.spawn(async move {
        inner.spawn(async {});
    });
    assert!(group.join().is_ok());
    let _unlimited = Group::new();

    let y = Yielder::new();
    y.spawn(async { 1u8 });
    assert_eq!(y.into_iter().collect::<Vec<_>>(), vec![1]);
    let y = OrderedYielder::new();
    y.spawn(async { 1u8 });
    y.spawn(async { 2u8 });
    assert_eq!(y.into_iter().collect::<Vec<_>>(), vec![1, 2]);
}

#[cfg(feature = "elastic")]
#[test]
fn elastic_names() {
    use aplex::{ElasticPool, ElasticStats, ShutdownOptions};
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(2)
        .queue_capacity(8)
        .idle_timeout(Duration::from_secs(5))
        .build()
        .expect("a worker starts");
    let h: Handle<u8> = block_on(pool.submit(|| 1)).expect("room");
    assert_eq!(h.wait().ok(), Some(1));
    let h: Result<Handle<u8>, Error> = pool.try_submit(|| 2);
    assert_eq!(h.expect("room").wait().ok(), Some(2));
    let h = pool.submit_blocking(|| 3).expect("room");
    assert_eq!(h.wait().ok(), Some(3));
    let h = pool.priority(5).try_submit(|| 4).expect("room");
    assert_eq!(h.wait().ok(), Some(4));
    let squares: Vec<u32> = pool
        .map(|x: u32| x * x, 0..4)
        .map(|r| r.expect("ok"))
        .collect();
    assert_eq!(squares, vec![0, 1, 4, 9]);
    block_on(pool.drain());
    pool.resize(1, 3).expect("a valid size");
    let stats: ElasticStats = pool.stats();
    assert!(stats.completed >= 8, "{stats:?}");
    let _ = (
        stats.queued,
        stats.running,
        stats.workers,
        stats.idle,
        stats.uptime,
    );
    let report = pool.shutdown(ShutdownOptions::default());
    let _: &dyn std::fmt::Debug = &report;
}

#[cfg(feature = "conn-pool")]
#[test]
fn connection_pool_names() {
    use aplex::{ConnectionPool, Pooled};
    let pool = ConnectionPool::builder(|| Ok::<u32, std::io::Error>(7))
        .max_size(2)
        .min_size(0)
        .max_life(Duration::from_secs(60))
        .health_check(|c: &u32| *c > 0)
        .cleanup(|_c: u32| {})
        .build()
        .expect("a valid pool");
    let mut conn: Pooled<u32> = block_on(pool.acquire()).expect("a connection");
    *conn += 1;
    assert_eq!(*conn, 8);
    drop(conn);
    let conn = pool.acquire_blocking().expect("a connection");
    conn.discard();
    let _ = pool.stats();
    pool.close();
    fn send_sync<T: Send + Sync>(_: &T) {}
    send_sync(&pool);
}
