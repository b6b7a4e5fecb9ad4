//! The size bound under contention and first-come, first-served service.

use super::*;

#[test]
fn peak_stays_within_max_size_under_100_tasks() {
    let counts = Arc::new(Counts::default());
    let pool = counted(&counts).max_size(8).build().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (pool, served) = (pool.clone(), Arc::clone(&served));
                spawn_local(async move {
                    for _ in 0..5 {
                        let conn = pool.acquire().await.unwrap();
                        assert!(pool.stats().in_use <= 8);
                        aplex::time::sleep(Duration::from_micros(200)).await;
                        drop(conn);
                        served.fetch_add(1, SeqCst);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
    });
    assert_eq!(served.load(SeqCst), 500);
    assert_eq!(counts.peak(), 8, "the pool grew to max_size and no further");
    assert_eq!(counts.opened(), 8, "returned connections were reused");
    let stats = pool.stats();
    assert_eq!(
        (stats.size, stats.available, stats.in_use, stats.waiters),
        (8, 8, 0, 0)
    );
}

#[test]
fn peak_stays_within_max_size_under_100_threads() {
    let counts = Arc::new(Counts::default());
    let pool = counted(&counts).max_size(8).build().unwrap();
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let pool = pool.clone();
            thread::spawn(move || {
                for _ in 0..5 {
                    let conn = pool.acquire_blocking().unwrap();
                    thread::sleep(Duration::from_micros(100));
                    drop(conn);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(counts.peak() <= 8, "peak {} > max_size 8", counts.peak());
    assert_eq!(counts.peak(), counts.opened());
    assert_eq!(pool.stats().in_use, 0);
    assert_eq!(pool.stats().waiters, 0);
}

#[test]
fn peak_stays_within_max_size_with_discards_and_an_async_factory() {
    let counts = Arc::new(Counts::default());
    let (opening, cleaning) = (Arc::clone(&counts), Arc::clone(&counts));
    let pool = ConnectionPool::builder_async(move || {
        let counts = Arc::clone(&opening);
        async move {
            aplex::time::sleep(Duration::from_micros(100)).await;
            Ok(counts.open())
        }
    })
    .cleanup(move |_| cleaning.clean())
    .max_size(4)
    .build()
    .unwrap();
    block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let pool = pool.clone();
                spawn_local(async move {
                    let conn = pool.acquire().await.unwrap();
                    yield_now().await;
                    if i % 3 == 0 {
                        conn.discard(); // forces new connections all along
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await;
        }
    });
    assert!(counts.peak() <= 4, "peak {} > max_size 4", counts.peak());
    assert_eq!(counts.cleaned(), 34);
    assert_eq!(counts.live.load(SeqCst), pool.stats().size);
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(1)
        .build()
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    block_on(async {
        let held = pool.acquire().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..10 {
            let (p, order) = (pool.clone(), Arc::clone(&order));
            tasks.push(spawn_local(async move {
                let conn = p.acquire().await.unwrap();
                order.lock().unwrap().push(i);
                yield_now().await; // hold it across a turn: the others must keep waiting
                drop(conn);
            }));
            // Let task i join the line before task i + 1 is spawned.
            until(|| pool.stats().waiters == i + 1).await;
        }
        drop(held);
        for task in tasks {
            task.await;
        }
    });
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[test]
fn blocked_threads_are_served_in_arrival_order() {
    let pool = ConnectionPool::builder(|| Ok(()))
        .max_size(1)
        .build()
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = pool.acquire_blocking().unwrap();
    let mut threads = Vec::new();
    for i in 0..6 {
        let (p, order) = (pool.clone(), Arc::clone(&order));
        let (in_line_tx, in_line) = std::sync::mpsc::channel();
        threads.push(thread::spawn(move || {
            // The acquire `acquire_blocking` drives, driven here the same way (poll, park
            // until woken), saying when its first poll has put it in line: `stats().waiters`
            // counts a waiter a moment before that, so it cannot tell the arrival order.
            let waker = Waker::from(Arc::new(Unpark(thread::current())));
            let mut cx = Context::from_waker(&waker);
            let mut acquire = pin!(p.acquire());
            assert!(
                acquire.as_mut().poll(&mut cx).is_pending(),
                "no slot is free"
            );
            in_line_tx.send(()).unwrap();
            let deadline = Instant::now() + BOUND;
            let conn = loop {
                if let Poll::Ready(conn) = acquire.as_mut().poll(&mut cx) {
                    break conn.unwrap();
                }
                assert!(Instant::now() < deadline, "thread {i} was never served");
                thread::park_timeout(Duration::from_millis(100));
            };
            order.lock().unwrap().push(i);
            drop(conn);
        }));
        in_line.recv_timeout(BOUND).expect("in line");
    }
    assert_eq!(pool.stats().waiters, 6);
    drop(held);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..6).collect::<Vec<_>>());
}

/// Wakes a thread driving a future by hand, as `acquire_blocking`'s parker does.
struct Unpark(thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}
