//! `Map`: the async `next` and the blocking `Iterator::next` yield the same sequence, for every
//! pool, chunk size and timeout, and when mixed on one map. (The process pool's map is checked
//! in the process-pool test binary.)

use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

#[cfg(feature = "elastic")]
use aplex::ElasticPool;
use aplex::{Error, Map, ThreadPool};

mod expected_panics;
use expected_panics::expect_panics;

const CHUNKS: [usize; 5] = [1, 2, 3, 64, 1024];
const LENGTHS: [u64; 4] = [0, 1, 10, 1500];

fn expected(len: u64) -> Vec<Result<u64, Error>> {
    (0..len).map(|x| Ok(x * 3)).collect()
}

/// How a test reads a map.
#[derive(Debug, Clone, Copy)]
enum Read {
    Blocking,
    Awaited,
    /// Alternates blocking and async `next` on one map.
    Mixed,
    /// Polls with a fresh `next()` future that is dropped after its first poll, then awaits:
    /// a dropped `next` must lose nothing.
    DroppedFutures,
}

fn read_all(mut map: Map<u64>, how: Read) -> Vec<Result<u64, Error>> {
    match how {
        Read::Blocking => map.collect(),
        Read::Awaited => aplex::block_on(async {
            let mut out = Vec::new();
            while let Some(r) = map.next().await {
                out.push(r);
            }
            out
        }),
        Read::Mixed => {
            let mut out = Vec::new();
            for i in 0.. {
                let next = if i % 2 == 0 {
                    Iterator::next(&mut map)
                } else {
                    aplex::block_on(map.next())
                };
                match next {
                    Some(r) => out.push(r),
                    None => break,
                }
            }
            out
        }
        Read::DroppedFutures => aplex::block_on(async {
            let mut out = Vec::new();
            loop {
                // One poll of a fresh future, then drop it unless it had an item.
                let polled = {
                    let mut next = std::pin::pin!(map.next());
                    poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await
                };
                let item = match polled {
                    Poll::Ready(item) => item,
                    Poll::Pending => map.next().await,
                };
                match item {
                    Some(r) => out.push(r),
                    None => break out,
                }
            }
        }),
    }
}

fn check_matrix(make: impl Fn(u64) -> Map<u64>) {
    for how in [
        Read::Blocking,
        Read::Awaited,
        Read::Mixed,
        Read::DroppedFutures,
    ] {
        for chunk in CHUNKS {
            for len in LENGTHS {
                for timeout in [None, Some(Duration::from_secs(60)), Some(Duration::MAX)] {
                    let mut map = make(len).chunk_size(chunk);
                    if let Some(t) = timeout {
                        map = map.timeout(t);
                    }
                    let got = read_all(map, how);
                    assert_eq!(
                        got,
                        expected(len),
                        "read {how:?}, chunk {chunk}, {len} items, timeout {timeout:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn thread_pool_map_gives_every_item_whichever_next_reads_it() {
    let pool = ThreadPool::new(2);
    check_matrix(|len| pool.map(|x: u64| x * 3, 0..len));
}

#[test]
#[cfg(feature = "elastic")]
fn elastic_pool_map_gives_every_item_whichever_next_reads_it() {
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(2)
        .build()
        .unwrap();
    check_matrix(|len| pool.map(|x: u64| x * 3, 0..len));
}

/// Items that panic at the start, in the middle (two in a row), and at the end of chunks: each
/// fails alone, and every other item keeps its value and its place.
fn check_panicking_items(make: impl Fn() -> Map<u64>) {
    const PANICS: [u64; 5] = [0, 5, 6, 13, 99];
    for chunk in [1, 3, 7, 64, 1024] {
        for how in [Read::Blocking, Read::Awaited] {
            let got = read_all(make().chunk_size(chunk), how);
            let want: Vec<_> = (0..100u64)
                .map(|x| match PANICS.contains(&x) {
                    true => Err(Error::Panicked(format!("map item panics {x}"))),
                    false => Ok(x * 3),
                })
                .collect();
            assert_eq!(got, want, "chunk {chunk}, read {how:?}");
        }
    }
}

fn panicky(x: u64) -> u64 {
    if [0, 5, 6, 13, 99].contains(&x) {
        panic!("map item panics {x}");
    }
    x * 3
}

#[test]
fn thread_pool_map_fails_only_the_items_that_panic() {
    expect_panics(&["map item panics "]);
    let pool = ThreadPool::new(2);
    check_panicking_items(|| pool.map(panicky, 0..100));
}

#[test]
#[cfg(feature = "elastic")]
fn elastic_pool_map_fails_only_the_items_that_panic() {
    expect_panics(&["map item panics "]);
    let pool = ElasticPool::builder().max_workers(2).build().unwrap();
    check_panicking_items(|| pool.map(panicky, 0..100));
}

/// An input iterator that panics while the map fills its window: the panic reaches the reader,
/// the items pulled before it still run (or are cancelled with the map), and the pool stays
/// whole. Nothing waits forever.
#[test]
fn an_input_that_panics_mid_window_reaches_the_reader_and_the_pool_stays_whole() {
    expect_panics(&["the input breaks"]);
    let pool = ThreadPool::new(2);
    let input = (0u64..).inspect(|&x| assert!(x != 100, "the input breaks"));
    let mut map = pool.map(|x: u64| x * 3, input);
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Iterator::next(&mut map)));
    assert!(got.is_err(), "the input's panic reaches the reader");
    drop(map);
    assert_eq!(pool.submit(|| 5).wait(), Ok(5));
    pool.shutdown();
}

#[test]
fn an_awaited_chunked_map_hands_out_ten_of_ten() {
    let pool = ThreadPool::new(2);
    let mut map = pool.map(|x: u32| x, 0..10).chunk_size(3);
    let got = aplex::block_on(async {
        let mut got = Vec::new();
        while let Some(r) = map.next().await {
            got.push(r.unwrap());
        }
        got
    });
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}

/// A map whose items wait on a gate: the awaited map times out, cancels what is left, and ends.
#[test]
fn an_awaited_map_times_out_then_ends() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel();
    let g = gate.clone();
    let started_tx = std::sync::Mutex::new(started_tx);
    let mut map = pool
        .map(
            move |x: u32| {
                let _ = started_tx.lock().unwrap().send(x);
                while !g.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                x
            },
            0..4,
        )
        .timeout(Duration::from_millis(200));
    // The first poll submits the items; the first one starts and holds the only worker.
    let waker = std::task::Waker::noop();
    assert!(map
        .poll_next(&mut std::task::Context::from_waker(waker))
        .is_pending());
    assert_eq!(started_rx.recv_timeout(Duration::from_secs(30)), Ok(0));
    let got = aplex::block_on(async {
        let mut got = Vec::new();
        while let Some(r) = map.next().await {
            got.push(r);
        }
        got
    });
    assert_eq!(got, vec![Err(Error::TimedOut)]);
    // The rest were cancelled and never start.
    gate.store(true, Ordering::SeqCst);
    drop(map);
    drop(pool);
    assert!(started_rx.try_recv().is_err(), "a cancelled item ran");
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn the_next_future_is_send() {
    let pool = ThreadPool::new(1);
    let mut map = pool.map(|x: u8| x, 0..3);
    let next = map.next();
    assert_send(&next);
    assert_eq!(aplex::block_on(next), Some(Ok(0)));
}

/// The async `next` awaited from a thread that runs no aplex executor, through a hand-made
/// waker: what another runtime does.
#[test]
fn an_awaited_map_works_under_a_foreign_executor() {
    use std::task::{Context, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let pool = ThreadPool::new(2);
    let mut map = pool.map(|x: u64| x * 3, 0..100).chunk_size(7);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match map.poll_next(&mut cx) {
            Poll::Ready(Some(r)) => got.push(r),
            Poll::Ready(None) => break,
            Poll::Pending => {
                assert!(std::time::Instant::now() < deadline, "the map hung");
                std::thread::park_timeout(Duration::from_millis(100));
            }
        }
    }
    assert_eq!(got, expected(100));
}
