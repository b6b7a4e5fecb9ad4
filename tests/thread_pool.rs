//! ThreadPool behaviour: concurrency, balancers, cancel, map, panics, shutdown.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aplex::balance::{Balancer, KeyAffinity, LeastLoaded, Load, RoundRobin};
use aplex::time::sleep;
use aplex::{Error, ThreadPool};

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn thread_index() -> usize {
    let name = std::thread::current()
        .name()
        .unwrap_or_default()
        .to_string();
    name.rsplit('-').next().unwrap().parse().unwrap()
}

/// How many times a stress loop runs: `n`, or 10 under Miri (the checker for undefined
/// behaviour), which interprets every step about 100× slower.
const fn stress(n: usize) -> usize {
    if cfg!(miri) {
        10
    } else {
        n
    }
}

#[test]
fn ten_async_sleeps_on_two_workers_run_concurrently() {
    let pool = ThreadPool::new(2);
    let start = Instant::now();
    let handles: Vec<_> = (0..10)
        .map(|i| {
            pool.spawn(move || async move {
                sleep(Duration::from_millis(100)).await;
                i
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
    let took = start.elapsed();
    assert_eq!(results, (0..10).collect::<Vec<_>>());
    assert!(took >= Duration::from_millis(100));
    assert!(
        took < Duration::from_millis(400),
        "took {took:?}: not concurrent"
    );
}

#[test]
fn async_works_may_hold_non_send_state() {
    let pool = ThreadPool::new(1);
    let h = pool.spawn(|| async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let log = log.clone();
                aplex::spawn_local(async move { log.borrow_mut().push(i) })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let v = log.borrow().clone();
        v
    });
    assert_eq!(h.wait(), Ok(vec![0, 1, 2]));
}

#[test]
fn round_robin_distributes_exactly() {
    let pool = ThreadPool::builder()
        .workers(3)
        .balancer(RoundRobin::new())
        .build()
        .unwrap();
    let on: Vec<usize> = (0..9)
        .map(|_| pool.submit(thread_index))
        .map(|h| h.wait().unwrap())
        .collect();
    assert_eq!(on, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
}

#[test]
fn key_affinity_is_sticky() {
    let pool = ThreadPool::builder()
        .workers(4)
        .balancer(KeyAffinity::new())
        .build()
        .unwrap();
    for key in 0..20u64 {
        let handles: Vec<_> = (0..10)
            .map(|_| pool.submit_with(key, thread_index))
            .collect();
        let workers: HashSet<usize> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
        assert_eq!(workers.len(), 1, "key {key} ran on {workers:?}");
    }
    // Works with one key run in submission order.
    let order = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let order = order.clone();
            pool.submit_with(7, move || order.lock().unwrap().push(i))
        })
        .collect();
    handles.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>());
}

#[test]
fn least_loaded_avoids_a_worker_busy_with_a_long_closure() {
    let pool = ThreadPool::builder()
        .workers(2)
        .balancer(LeastLoaded::new())
        .build()
        .unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let r = release.clone();
    let busy = pool.submit(move || {
        let end = Instant::now() + Duration::from_secs(10);
        while !r.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
        thread_index()
    });
    eventually("the long closure runs", || {
        pool.loads().iter().any(|l| l.running == 1)
    });
    let busy_worker = pool.loads().iter().position(|l| l.running == 1).unwrap();
    let others: Vec<usize> = (0..20)
        .map(|_| pool.submit(thread_index).wait().unwrap())
        .collect();
    assert!(
        others.iter().all(|&w| w != busy_worker),
        "work went to the busy worker: {others:?}"
    );
    release.store(true, Ordering::SeqCst);
    assert_eq!(busy.wait(), Ok(busy_worker));
}

/// Each pick's hint and worker count.
type Picks = Arc<Mutex<Vec<(Option<u64>, usize)>>>;

struct Recording(Picks);

impl Balancer for Recording {
    fn pick(&mut self, loads: &[Load], hint: Option<u64>) -> usize {
        self.0.lock().unwrap().push((hint, loads.len()));
        // Out of range on purpose: the pool takes it modulo the worker count.
        hint.unwrap_or(0) as usize + loads.len()
    }
}

#[test]
fn a_custom_balancer_gets_the_hint_once_per_submission() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = ThreadPool::builder()
        .workers(2)
        .balancer(Recording(seen.clone()))
        .build()
        .unwrap();
    assert_eq!(pool.submit_with(1, thread_index).wait(), Ok(1));
    assert_eq!(
        pool.spawn_with(0, || async { thread_index() }).wait(),
        Ok(0)
    );
    assert_eq!(pool.submit(thread_index).wait(), Ok(0));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(Some(1), 2), (Some(0), 2), (None, 2)]
    );
}

struct Panicky;

impl Balancer for Panicky {
    fn pick(&mut self, _: &[Load], _: Option<u64>) -> usize {
        panic!("balancer bug")
    }
}

#[test]
fn a_panicking_balancer_does_not_break_the_pool() {
    let pool = ThreadPool::builder()
        .workers(2)
        .balancer(Panicky)
        .build()
        .unwrap();
    let results: Vec<_> = (0..10)
        .map(|i| pool.submit(move || i))
        .map(|h| h.wait().unwrap())
        .collect();
    assert_eq!(results, (0..10).collect::<Vec<_>>());
}

#[test]
fn cancel_a_queued_work_and_it_never_runs() {
    let pool = ThreadPool::new(1);
    let gate = Arc::new(AtomicBool::new(false));
    let g = gate.clone();
    let blocker = pool.submit(move || {
        let end = Instant::now() + Duration::from_secs(10);
        while !g.load(Ordering::SeqCst) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let queued = pool.submit(move || r.store(true, Ordering::SeqCst));
    assert!(queued.cancel());
    assert!(!queued.cancel(), "a second cancel decides nothing");
    gate.store(true, Ordering::SeqCst);
    blocker.wait().unwrap();
    assert_eq!(queued.wait(), Err(Error::Cancelled));
    pool.shutdown();
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn cancel_a_running_async_work_and_it_stops_at_its_next_await() {
    let pool = ThreadPool::new(1);
    let started = Arc::new(AtomicBool::new(false));
    let after = Arc::new(AtomicBool::new(false));
    let (s, a) = (started.clone(), after.clone());
    let h = pool.spawn(move || async move {
        s.store(true, Ordering::SeqCst);
        sleep(Duration::from_millis(50)).await;
        a.store(true, Ordering::SeqCst);
    });
    eventually("the work starts", || started.load(Ordering::SeqCst));
    assert!(h.cancel());
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !after.load(Ordering::SeqCst),
        "the side effect after the await happened"
    );
    assert_eq!(h.wait(), Err(Error::Cancelled));
    assert_eq!(pool.loads()[0].running, 0);
}

#[test]
fn cancel_a_running_plain_closure_returns_false() {
    let pool = ThreadPool::new(1);
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let h = pool.submit(move || {
        s.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        5
    });
    eventually("the closure starts", || started.load(Ordering::SeqCst));
    assert!(!h.cancel());
    assert_eq!(h.wait(), Ok(5));
}

#[test]
fn cancel_a_finished_work_returns_false() {
    let pool = ThreadPool::new(1);
    let mut h = pool.submit(|| 3);
    eventually("the work finishes", || h.is_finished());
    assert!(!h.cancel());
    assert_eq!(h.wait_timeout(Duration::from_secs(1)), Ok(3));
}

#[test]
fn map_keeps_input_order_with_random_delays() {
    const N: u64 = stress(200) as u64;
    let pool = ThreadPool::new(2);
    let out: Vec<u64> = pool
        .map(
            |i: u64| {
                let jitter = (i.wrapping_mul(2654435761) >> 7) % 3;
                std::thread::sleep(Duration::from_millis(jitter));
                i * 2
            },
            0..N,
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..N).map(|i| i * 2).collect::<Vec<_>>());
}

#[test]
fn map_chunk_sizes_give_identical_results() {
    const N: u32 = stress(5000) as u32;
    let pool = ThreadPool::new(2);
    let one: Vec<_> = pool
        .map(|x: u32| x.wrapping_mul(31) ^ 5, 0..N)
        .chunk_size(1)
        .collect();
    let big: Vec<_> = pool
        .map(|x: u32| x.wrapping_mul(31) ^ 5, 0..N)
        .chunk_size(1000)
        .collect();
    let odd: Vec<_> = pool
        .map(|x: u32| x.wrapping_mul(31) ^ 5, 0..N)
        .chunk_size(7)
        .collect();
    assert_eq!(one.len(), N as usize);
    assert_eq!(one, big);
    assert_eq!(one, odd);
}

#[test]
#[should_panic(expected = "chunk size must be at least 1")]
fn a_zero_chunk_size_panics() {
    let pool = ThreadPool::new(1);
    let _ = pool.map(|x: u32| x, 0..1).chunk_size(0);
}

#[test]
fn map_timeout_yields_timed_out_then_stops_and_the_rest_never_runs() {
    let pool = ThreadPool::new(1);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let start = Instant::now();
    let mut out = pool
        .map(
            move |ms: u64| {
                r.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(ms));
                ms
            },
            vec![1, 1, 300, 300, 300, 300],
        )
        .timeout(Duration::from_millis(100));
    assert_eq!(Iterator::next(&mut out), Some(Ok(1)));
    assert_eq!(Iterator::next(&mut out), Some(Ok(1)));
    assert_eq!(Iterator::next(&mut out), Some(Err(Error::TimedOut)));
    assert_eq!(Iterator::next(&mut out), None);
    assert!(start.elapsed() < Duration::from_millis(290));
    drop(out);
    pool.shutdown(); // waits for the one running item
    assert_eq!(ran.load(Ordering::SeqCst), 3, "cancelled items ran");
}

#[test]
fn map_async_next_with_timeout() {
    let pool = ThreadPool::new(2);
    let got = aplex::block_on(async {
        let mut out = pool
            .map(
                |ms: u64| std::thread::sleep(Duration::from_millis(ms)),
                vec![0, 0, 500],
            )
            .timeout(Duration::from_millis(100));
        let mut got = Vec::new();
        while let Some(r) = out.next().await {
            got.push(r);
        }
        got
    });
    assert_eq!(got, vec![Ok(()), Ok(()), Err(Error::TimedOut)]);
}

#[test]
fn map_over_an_endless_iterator_stops_when_the_consumer_does() {
    let pool = ThreadPool::new(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let input = (0u64..).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let first: Vec<u64> = pool
        .map(|x: u64| x + 1, input)
        .take(10)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, (1..=10).collect::<Vec<_>>());
    assert!(
        pulled.load(Ordering::SeqCst) < 100_000,
        "the map pulled too far ahead"
    );
}

#[test]
fn a_panicking_item_fails_only_itself() {
    let pool = ThreadPool::new(2);
    let out: Vec<_> = pool
        .map(|x: u32| if x == 3 { panic!("item three") } else { x }, 0..6)
        .chunk_size(4)
        .collect();
    assert_eq!(out[3], Err(Error::Panicked("item three".into())));
    assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 5);
}

#[test]
fn a_thousand_panics_leave_the_workers_working() {
    let pool = ThreadPool::new(2);
    let handles: Vec<_> = (0..stress(1000))
        .map(|i| {
            if i % 2 == 0 {
                pool.submit(move || -> u32 { panic!("plain {i}") })
            } else {
                pool.spawn(move || async move { panic!("async {i}") })
            }
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        match h.wait() {
            Err(Error::Panicked(msg)) => assert!(msg.ends_with(&i.to_string()), "{msg}"),
            other => panic!("unexpected {other:?}"),
        }
    }
    let ok: Vec<_> = (0..10)
        .map(|i| pool.submit(move || (i, thread_index())))
        .map(|h| h.wait().unwrap())
        .collect();
    let workers: HashSet<usize> = ok.iter().map(|&(_, w)| w).collect();
    assert_eq!(workers.len(), 2, "both workers still serve");
}

#[test]
fn a_panic_while_making_the_future_is_reported() {
    let pool = ThreadPool::new(1);
    let h = pool.spawn(|| -> std::future::Ready<u8> { panic!("no future for you") });
    assert_eq!(h.wait(), Err(Error::Panicked("no future for you".into())));
}

#[test]
fn graceful_shutdown_finishes_ten_thousand_queued_works() {
    let pool = ThreadPool::new(2);
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..stress(10_000))
        .map(|i| {
            let done = done.clone();
            if i % 2 == 0 {
                pool.submit(move || {
                    done.fetch_add(1, Ordering::SeqCst);
                })
            } else {
                pool.spawn(move || async move {
                    aplex::yield_now().await;
                    done.fetch_add(1, Ordering::SeqCst);
                })
            }
        })
        .collect();
    pool.shutdown();
    assert_eq!(done.load(Ordering::SeqCst), stress(10_000));
    assert!(handles.into_iter().all(|h| h.wait().is_ok()));
}

#[test]
fn shutdown_now_resolves_every_handle() {
    let pool = ThreadPool::new(2);
    let handles: Vec<_> = (0..stress(10_000))
        .map(|i| {
            if i % 2 == 0 {
                pool.spawn(|| async { sleep(Duration::from_secs(60)).await })
            } else {
                pool.submit(|| std::thread::sleep(Duration::from_micros(10)))
            }
        })
        .collect();
    let start = Instant::now();
    pool.shutdown_now();
    assert!(start.elapsed() < Duration::from_secs(5));
    let mut cancelled = 0;
    for h in handles {
        let mut h = h;
        match h.wait_timeout(Duration::from_secs(1)) {
            Ok(()) => {}
            Err(Error::Cancelled) => cancelled += 1,
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert!(
        cancelled >= stress(10_000) / 2,
        "every sleeping work is cancelled ({cancelled})"
    );
}

#[test]
fn submitting_after_shutdown_gives_shut_down() {
    let pool = ThreadPool::new(1);
    pool.shutdown();
    assert_eq!(pool.submit(|| 1).wait(), Err(Error::ShutDown));
    assert_eq!(pool.spawn(|| async { 1 }).wait(), Err(Error::ShutDown));
    let items: Vec<_> = pool.map(|x: u8| x, 0..3).collect();
    assert_eq!(
        items,
        vec![
            Err(Error::ShutDown),
            Err(Error::ShutDown),
            Err(Error::ShutDown)
        ]
    );
}

#[test]
fn dropping_the_pool_inside_its_own_work_does_not_deadlock() {
    let pool = Arc::new(Mutex::new(Some(ThreadPool::new(2))));
    let p = pool.clone();
    let h = pool.lock().unwrap().as_ref().unwrap().submit(move || {
        let own = p.lock().unwrap().take();
        drop(own); // shutdown from inside: closes and detaches
        "dropped"
    });
    assert_eq!(h.wait(), Ok("dropped"));
}

#[test]
fn build_rejects_zero_sizes() {
    let e = ThreadPool::builder().workers(0).build().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = ThreadPool::builder()
        .workers(1)
        .max_works_per_worker(0)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let r = std::panic::catch_unwind(|| ThreadPool::new(0));
    assert!(r.is_err());
}

#[test]
fn a_panicking_worker_start_hook_fails_build() {
    let e = ThreadPool::builder()
        .workers(2)
        .on_worker_start(|i| {
            if i == 1 {
                panic!("no thanks")
            }
        })
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("no thanks"), "{e}");
}

#[test]
fn worker_threads_are_named_by_prefix_and_index() {
    let pool = ThreadPool::builder()
        .workers(2)
        .thread_name("crunch")
        .build()
        .unwrap();
    let names: HashSet<String> = (0..2)
        .map(|_| pool.submit(|| std::thread::current().name().unwrap().to_string()))
        .map(|h| h.wait().unwrap())
        .collect();
    assert_eq!(
        names,
        HashSet::from(["crunch-0".to_string(), "crunch-1".to_string()])
    );
    let default = ThreadPool::new(1);
    assert_eq!(
        default
            .submit(|| std::thread::current().name().map(String::from))
            .wait(),
        Ok(Some("aplex-0".into()))
    );
}

#[test]
fn max_works_per_worker_bounds_concurrency_and_queues_the_rest() {
    let pool = ThreadPool::builder()
        .workers(1)
        .max_works_per_worker(3)
        .build()
        .unwrap();
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let (now, peak) = (now.clone(), peak.clone());
            pool.spawn(move || async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                sleep(Duration::from_millis(10)).await;
                now.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    eventually("three run, the rest queue", || {
        let l = pool.loads()[0];
        l.running == 3 && l.queued == 9
    });
    handles.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    // A handle resolves a moment before its task lets go of its room.
    eventually("the loads drop to zero", || {
        pool.loads()[0]
            == Load {
                running: 0,
                queued: 0,
                capacity: 3,
            }
    });
}

#[test]
fn a_handle_is_awaitable_from_a_foreign_executor_and_inside_block_on() {
    let pool = ThreadPool::new(2);
    let a = pool.spawn(|| async {
        sleep(Duration::from_millis(5)).await;
        1
    });
    let b = pool.submit(|| 2);
    let sum = aplex::block_on(async { a.await.unwrap() + b.await.unwrap() });
    assert_eq!(sum, 3);
    // A hand-made executor: poll, park, repeat.
    let h = pool.spawn(|| async {
        sleep(Duration::from_millis(5)).await;
        9
    });
    let value = {
        use std::future::Future;
        use std::task::{Context, Poll, Wake, Waker};
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut h = std::pin::pin!(h);
        loop {
            if let Poll::Ready(v) = h.as_mut().poll(&mut cx) {
                break v;
            }
            std::thread::park_timeout(Duration::from_millis(100));
        }
    };
    assert_eq!(value, Ok(9));
}

#[test]
fn dropping_a_handle_does_not_cancel_but_cancel_on_drop_does() {
    let pool = ThreadPool::new(1);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    drop(pool.spawn(move || async move {
        sleep(Duration::from_millis(10)).await;
        r.fetch_add(1, Ordering::SeqCst);
    }));
    let r = ran.clone();
    drop(
        pool.spawn(move || async move {
            sleep(Duration::from_millis(10)).await;
            r.fetch_add(100, Ordering::SeqCst);
        })
        .cancel_on_drop(),
    );
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn the_pool_and_its_handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<ThreadPool>();
    assert_send::<aplex::Handle<Rc<()>>>(); // the handle is Send whatever T...
    assert_send::<aplex::Map<u8>>();
}
