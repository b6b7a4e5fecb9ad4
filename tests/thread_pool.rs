//! ThreadPool behaviour: concurrency, balancers, cancel, map, panics, shutdown.

use std::cell::RefCell;
use std::collections::HashSet;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aplex::balance::{Balancer, KeyAffinity, LeastLoaded, Load, RoundRobin};
use aplex::sync::Event;
use aplex::time::{sleep, timeout};
use aplex::{Error, ThreadPool};

mod expected_panics;
use expected_panics::expect_panics;

/// How long anything may take before a test fails instead of hanging: only a hang or a lost
/// wake-up reaches it, however busy the machine.
const BOUND: Duration = Duration::from_secs(20);

/// Waits (bounded) until `cond` holds.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let end = Instant::now() + BOUND;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Holds works where a test needs them until the test opens it. Waits are bounded, so that a
/// failed test cannot leave a work waiting forever (and the pool's drop waiting for it).
#[derive(Clone, Default)]
struct Gate(Arc<Event>);

impl Gate {
    fn open(&self) {
        self.0.set();
    }

    /// Blocks a plain work until the gate opens.
    fn wait(&self) {
        assert!(self.0.wait_timeout(BOUND), "a gate was never opened");
    }

    /// Suspends an async work until the gate opens.
    async fn passed(&self) {
        let opened = timeout(BOUND, self.0.wait()).await;
        assert!(opened.is_ok(), "a gate was never opened");
    }

    /// Like `passed`, and opens `parked` once the work is suspended here (not before: the test
    /// may then open this gate without the work running through it in the same poll).
    async fn passed_after_parking(&self, parked: &Gate) {
        let mut wait = pin!(timeout(BOUND, self.0.wait()));
        let opened = poll_fn(|cx| {
            let poll = wait.as_mut().poll(cx);
            if poll.is_pending() {
                parked.open();
            }
            poll
        })
        .await;
        assert!(opened.is_ok(), "a gate was never opened");
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
    let in_flight = Arc::new(AtomicUsize::new(0));
    let all_in = Gate::default();
    let start = Instant::now();
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let (in_flight, all_in) = (in_flight.clone(), all_in.clone());
            pool.spawn(move || async move {
                if in_flight.fetch_add(1, Ordering::SeqCst) + 1 == 10 {
                    all_in.open();
                }
                // Run one after another on two workers, the first two would wait here for
                // the other eight forever: only works that are all in flight at once pass.
                all_in.passed().await;
                sleep(Duration::from_millis(100)).await;
                i
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
    assert_eq!(results, (0..10).collect::<Vec<_>>());
    assert!(start.elapsed() >= Duration::from_millis(100));
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
    let release = Gate::default();
    let r = release.clone();
    let busy = pool.submit(move || {
        r.wait();
        thread_index()
    });
    eventually("the long closure runs", || {
        pool.detailed_loads().iter().any(|l| l.running == 1)
    });
    let busy_worker = pool
        .detailed_loads()
        .iter()
        .position(|l| l.running == 1)
        .unwrap();
    let others: Vec<usize> = (0..20)
        .map(|_| pool.submit(thread_index).wait().unwrap())
        .collect();
    assert!(
        others.iter().all(|&w| w != busy_worker),
        "work went to the busy worker: {others:?}"
    );
    release.open();
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
    expect_panics(&["balancer bug"]);
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

/// Counts its drops; panics in its drop when `panics`.
struct DropProbe {
    drops: Arc<AtomicUsize>,
    panics: bool,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panics {
            panic!("unobserved value's drop panics");
        }
    }
}

/// Works whose handles are dropped before they start run all the same (no one sees their
/// outcome); their values are dropped on the worker, their panics (in the work or in the value's
/// drop) are contained, and a handle dropped with `cancel_on_drop` still cancels its work.
#[test]
fn works_whose_handles_were_dropped_run_and_their_panics_are_contained() {
    expect_panics(&["unobserved work panics", "unobserved value's drop panics"]);
    let pool = ThreadPool::new(1);
    let gate = Gate::default();
    let g = gate.clone();
    let mut held = pool.submit(move || g.wait()); // everything below queues behind it
    let (ran, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    const N: usize = 30;
    for i in 0..N {
        let (r, d) = (ran.clone(), drops.clone());
        drop(pool.submit(move || {
            r.fetch_add(1, Ordering::SeqCst);
            if i % 3 == 1 {
                panic!("unobserved work panics {i}");
            }
            DropProbe {
                drops: d,
                panics: i % 3 == 2,
            }
        }));
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    let c = cancelled.clone();
    drop(
        pool.submit(move || c.store(true, Ordering::SeqCst))
            .cancel_on_drop(),
    );
    gate.open();
    assert_eq!(held.wait_timeout(BOUND), Ok(()));
    // One worker takes its queue in order: the works above ran before this one.
    assert_eq!(pool.submit(|| 7).wait_timeout(BOUND), Ok(7));
    assert_eq!(ran.load(Ordering::SeqCst), N);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        2 * N / 3,
        "every value dropped once"
    );
    assert!(!cancelled.load(Ordering::SeqCst), "a cancelled work ran");
    eventually("the worker lets go of the works", || {
        pool.detailed_loads()[0].running == 0
    });
}

#[test]
fn cancel_a_queued_work_and_it_never_runs() {
    let pool = ThreadPool::new(1);
    let gate = Gate::default();
    let g = gate.clone();
    let blocker = pool.submit(move || g.wait());
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let queued = pool.submit(move || r.store(true, Ordering::SeqCst));
    assert!(queued.cancel());
    assert!(queued.cancel(), "asking again reports the same outcome");
    gate.open();
    blocker.wait().unwrap();
    assert_eq!(queued.wait(), Err(Error::Cancelled));
    pool.shutdown();
    assert!(!ran.load(Ordering::SeqCst));
}

#[test]
fn cancel_a_running_async_work_and_it_stops_at_its_next_await() {
    let pool = ThreadPool::new(1);
    let (parked, go_on) = (Gate::default(), Gate::default());
    let after = Arc::new(AtomicBool::new(false));
    let (p, g, a) = (parked.clone(), go_on.clone(), after.clone());
    let h = pool.spawn(move || async move {
        g.passed_after_parking(&p).await;
        a.store(true, Ordering::SeqCst);
    });
    parked.wait();
    assert!(h.cancel());
    go_on.open(); // a work that was not stopped would now run past its await
    assert_eq!(h.wait(), Err(Error::Cancelled));
    // The handle says Cancelled only once the future is dropped: the store can no longer come.
    assert!(
        !after.load(Ordering::SeqCst),
        "the side effect after the await happened"
    );
    eventually("the worker lets go of the work", || {
        pool.detailed_loads()[0].running == 0
    });
}

#[test]
fn cancel_a_running_plain_closure_returns_false() {
    let pool = ThreadPool::new(1);
    let (started, finish) = (Gate::default(), Gate::default());
    let (s, f) = (started.clone(), finish.clone());
    let h = pool.submit(move || {
        s.open();
        f.wait();
        5
    });
    started.wait();
    assert!(!h.cancel(), "a running closure cannot be stopped");
    finish.open();
    assert_eq!(h.wait(), Ok(5));
}

#[test]
fn cancel_a_finished_work_returns_false() {
    let pool = ThreadPool::new(1);
    let mut h = pool.submit(|| 3);
    eventually("the work finishes", || h.is_finished());
    assert!(!h.cancel());
    assert_eq!(h.wait_timeout(BOUND), Ok(3));
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
    expect_panics(&["aplex::Map::chunk_size"]);
    let pool = ThreadPool::new(1);
    let _ = pool.map(|x: u32| x, 0..1).chunk_size(0);
}

/// The quick items are read under a far deadline (a busy machine cannot make them late); then
/// a near one is set while a held item runs, which only its timer can end: no race either way.
#[test]
fn map_timeout_yields_timed_out_then_stops_and_the_rest_never_runs() {
    let pool = ThreadPool::new(1);
    let ran = Arc::new(AtomicUsize::new(0));
    let held = Gate::default();
    let (r, h) = (ran.clone(), held.clone());
    let mut out = pool
        .map(
            move |slow: bool| {
                r.fetch_add(1, Ordering::SeqCst);
                if slow {
                    h.wait();
                }
                slow
            },
            vec![false, false, true, true, true, true],
        )
        .timeout(BOUND);
    assert_eq!(Iterator::next(&mut out), Some(Ok(false)));
    assert_eq!(Iterator::next(&mut out), Some(Ok(false)));
    let mut out = out.timeout(Duration::from_millis(20));
    assert_eq!(Iterator::next(&mut out), Some(Err(Error::TimedOut)));
    assert_eq!(Iterator::next(&mut out), None);
    held.open();
    drop(out);
    pool.shutdown(); // waits for the one running item
    assert_eq!(ran.load(Ordering::SeqCst), 3, "cancelled items ran");
}

#[test]
fn map_async_next_with_timeout() {
    let pool = ThreadPool::new(2);
    let held = Gate::default();
    let h = held.clone();
    let got = aplex::block_on(async {
        let mut out = pool
            .map(
                move |slow: bool| {
                    if slow {
                        h.wait();
                    }
                },
                vec![false, false, true],
            )
            .timeout(BOUND);
        let mut got = vec![out.next().await, out.next().await];
        let mut out = out.timeout(Duration::from_millis(20));
        got.push(out.next().await);
        got.push(out.next().await);
        got
    });
    held.open();
    assert_eq!(
        got,
        vec![Some(Ok(())), Some(Ok(())), Some(Err(Error::TimedOut)), None]
    );
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
    expect_panics(&["item three"]);
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
    expect_panics(&["plain work panics ", "async work panics "]);
    let pool = ThreadPool::new(2);
    let handles: Vec<_> = (0..stress(1000))
        .map(|i| {
            if i % 2 == 0 {
                pool.submit(move || -> u32 { panic!("plain work panics {i}") })
            } else {
                pool.spawn(move || async move { panic!("async work panics {i}") })
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
    expect_panics(&["no future for you"]);
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
    pool.shutdown_now();
    let mut cancelled = 0;
    for h in handles {
        let mut h = h;
        match h.wait_timeout(BOUND) {
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
    expect_panics(&["aplex::ThreadPool::new(0)"]);
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
    expect_panics(&["no thanks"]);
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
    let release = Gate::default();
    let handles: Vec<_> = (0..12)
        .map(|_| {
            let (now, peak, release) = (now.clone(), peak.clone(), release.clone());
            pool.spawn(move || async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                release.passed().await;
                now.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    // The first three hold their rooms until the gate opens: the loads stand still meanwhile.
    // (A room is taken when its work starts, a moment before its future first runs: wait for
    // all three futures to be inside, not only for the rooms.)
    eventually("three run, the rest queue", || {
        let l = pool.detailed_loads()[0];
        now.load(Ordering::SeqCst) == 3 && l.running == 3 && l.queued == 9
    });
    release.open();
    handles.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    // A handle resolves a moment before its task lets go of its room.
    eventually("the loads drop to zero", || {
        pool.detailed_loads()[0]
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
    // Neither work can end before both handles are dropped: they wait for this gate.
    let gate = Gate::default();
    let (r, g) = (ran.clone(), gate.clone());
    drop(pool.spawn(move || async move {
        g.passed().await;
        r.fetch_add(1, Ordering::SeqCst);
    }));
    let (r, g) = (ran.clone(), gate.clone());
    drop(
        pool.spawn(move || async move {
            g.passed().await;
            r.fetch_add(100, Ordering::SeqCst);
        })
        .cancel_on_drop(),
    );
    gate.open();
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

#[test]
fn a_handle_error_clones_to_an_equal_error_io_included() {
    expect_panics(&["cloned panic"]);
    let pool = ThreadPool::new(1);
    let err = pool
        .submit(|| -> u8 { panic!("cloned panic") })
        .wait()
        .unwrap_err();
    assert_eq!(err.clone(), err);
    let io = Error::Io(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "pipe gone",
    ));
    let copy = io.clone();
    assert_eq!(copy, io);
    match &copy {
        Error::Io(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
            assert_eq!(e.to_string(), "pipe gone");
        }
        other => panic!("an Io error cloned to {other:?}"),
    }
    let other_message = Error::Io(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "another pipe",
    ));
    assert_ne!(other_message, io);
}

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
