//! The helpers: collect, resolve, RateLimiter, in_thread, generate_in_thread, Group, Yielder.
#![cfg(feature = "helpers")]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use aplex::global::{self, ConfigureError, GlobalConfig};
use aplex::sync::Event;
use aplex::time::{sleep, timeout};
use aplex::{collect, resolve, Group, OrderedYielder, RateLimiter, Yielder};

mod expected_panics;
use expected_panics::expect_panics;

const MS: Duration = Duration::from_millis(1);

/// How long anything may take before a test fails instead of hanging: only a hang or a lost
/// wake-up reaches it, however busy the machine.
const BOUND: Duration = Duration::from_secs(20);

/// Waits (bounded) until `event` is set; `what` says what the test was waiting for.
async fn until_set(event: &Event, what: &str) {
    assert!(
        timeout(BOUND, event.wait()).await.is_ok(),
        "timed out waiting for: {what}"
    );
}

fn ms_(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Sizes the global pool before any test of this binary uses it: 50 blocking closures at once
/// need 50 threads, more than 10 per core on a small machine.
fn setup_global() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let config = GlobalConfig {
            threads: Some(64),
            ..Default::default()
        };
        global::configure(config).expect("no test uses the global pool before setup_global");
    });
}

/// Counts live values: +1 when made, -1 when dropped; remembers the peak.
#[derive(Clone, Default)]
struct Live(Rc<(Cell<usize>, Cell<usize>)>);

struct LiveGuard(Live);

impl Live {
    fn guard(&self) -> LiveGuard {
        let (now, peak) = &*self.0;
        now.set(now.get() + 1);
        peak.set(peak.get().max(now.get()));
        LiveGuard(self.clone())
    }
    fn now(&self) -> usize {
        self.0 .0.get()
    }
    fn peak(&self) -> usize {
        self.0 .1.get()
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let now = &self.0 .0 .0;
        now.set(now.get() - 1);
    }
}

// ---- collect ----

#[test]
fn collect_two_workers_over_five_100ms_tasks_takes_three_rounds_in_order() {
    let running = Cell::new(0usize);
    let peak = Cell::new(0usize);
    let start = Instant::now();
    let out = aplex::block_on(collect(
        (0..5).map(|i| {
            let (running, peak) = (&running, &peak);
            async move {
                running.set(running.get() + 1);
                peak.set(peak.get().max(running.get()));
                sleep(100 * MS).await;
                running.set(running.get() - 1);
                i
            }
        }),
        2,
    ));
    let took = start.elapsed();
    assert_eq!(out, vec![0, 1, 2, 3, 4]);
    assert_eq!(peak.get(), 2, "two at a time, side by side");
    assert!(took >= 300 * MS, "took {took:?}");
}

#[test]
fn collect_refills_a_slot_as_soon_as_one_ends_not_in_waves() {
    // Rolling: while the long item holds one slot, the three short ones follow each other in
    // the other. The long one ends only once the last short one has started; in waves, that
    // one could start only after both of the first two ended, so the long one would wait for
    // it in vain.
    let last_started = Event::new();
    let out = aplex::block_on(collect(
        [0u64, 1, 1, 1].into_iter().enumerate().map(|(i, ms)| {
            let last_started = &last_started;
            async move {
                match i {
                    0 => until_set(last_started, "item 3 to start: slots refill in waves").await,
                    3 => last_started.set(),
                    _ => {}
                }
                sleep(ms_(ms)).await;
                i
            }
        }),
        2,
    ));
    assert_eq!(out, vec![0, 1, 2, 3]);
}

#[test]
#[should_panic(expected = "aplex::collect: workers must be at least 1")]
fn collect_with_zero_workers_panics_naming_it() {
    expect_panics(&["aplex::collect: "]);
    drop(collect([async {}], 0));
}

#[test]
fn collect_never_holds_more_than_workers_futures() {
    let live = Live::default();
    let local_input: Vec<u32> = (0..20).collect();
    let out = aplex::block_on(collect(
        local_input.iter().map(|&i| {
            let guard = live.guard(); // made when the future is pulled, dropped with it
            async move {
                let _guard = guard;
                sleep(ms_(u64::from(i % 4))).await;
                i * 2
            }
        }),
        3,
    ));
    assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());
    assert_eq!(live.peak(), 3);
    assert_eq!(live.now(), 0);
}

#[test]
fn collect_of_nothing_is_empty() {
    let out: Vec<u8> = aplex::block_on(collect(std::iter::empty::<std::future::Ready<u8>>(), 4));
    assert!(out.is_empty());
}

#[test]
fn collect_runs_not_send_futures_that_yield() {
    // Rc is not Send, and yield_now wakes itself: the set must not spin on it.
    let shared = Rc::new(Cell::new(0));
    let out = aplex::block_on(collect(
        (0..4).map(|i| {
            let shared = shared.clone();
            async move {
                for _ in 0..3 {
                    shared.set(shared.get() + 1);
                    aplex::yield_now().await;
                }
                i
            }
        }),
        4,
    ));
    assert_eq!(out, vec![0, 1, 2, 3]);
    assert_eq!(shared.get(), 12);
}

// ---- resolve ----

#[test]
fn resolve_yields_item_0_before_item_4_even_when_4_finishes_first() {
    let finished = Rc::new(std::cell::RefCell::new(Vec::new()));
    // Item i ends only after item i + 1 ended: item 4 is the quickest, item 0 the slowest.
    let ended: Rc<Vec<Event>> = Rc::new((0..5).map(|_| Event::new()).collect());
    let got = aplex::block_on(async {
        let mut results = resolve(
            (0..5usize).map(|i| {
                let (finished, ended) = (finished.clone(), ended.clone());
                async move {
                    if let Some(next) = ended.get(i + 1) {
                        until_set(next, "the item after this one to end").await;
                    }
                    finished.borrow_mut().push(i);
                    ended[i].set();
                    i
                }
            }),
            5,
        );
        let mut got = Vec::new();
        while let Some(i) = results.next().await {
            got.push(i);
        }
        got
    });
    assert_eq!(*finished.borrow(), vec![4, 3, 2, 1, 0]);
    assert_eq!(got, vec![0, 1, 2, 3, 4]);
}

#[test]
fn resolve_greediness_bounds_buffered_results() {
    const GREED: usize = 3;
    let finished = Rc::new(Cell::new(0usize));
    let read = Rc::new(Cell::new(0usize));
    let peak_waiting = Rc::new(Cell::new(0usize));
    let peak_buffered = aplex::block_on(async {
        let mut results = resolve(
            (0..30u64).map(|i| {
                let (finished, read, peak) = (finished.clone(), read.clone(), peak_waiting.clone());
                async move {
                    sleep(ms_((i * 7) % 5)).await;
                    finished.set(finished.get() + 1);
                    // Finished and unread, this one included.
                    peak.set(peak.get().max(finished.get() - read.get()));
                    i
                }
            }),
            10,
        )
        .greediness(GREED);
        let mut peak_buffered = 0;
        let mut expected = 0;
        while let Some(i) = results.next().await {
            assert_eq!(i, expected);
            expected += 1;
            read.set(read.get() + 1);
            peak_buffered = peak_buffered.max(results.buffered());
            sleep(2 * MS).await; // a slow reader
        }
        assert_eq!(expected, 30);
        peak_buffered
    });
    assert!(peak_buffered <= GREED, "peak buffered {peak_buffered}");
    assert!(
        peak_buffered > 0,
        "the reader was slow: something must have waited"
    );
    // At the moment one finishes, it may be the one about to be read: GREED + 1.
    assert!(
        peak_waiting.get() <= GREED + 1,
        "peak {}",
        peak_waiting.get()
    );
}

#[test]
fn resolve_an_error_does_not_stop_the_others() {
    let got = aplex::block_on(async {
        let mut results = resolve(
            (0..5).map(|i| async move {
                sleep(MS).await;
                if i == 2 {
                    Err(format!("item {i} failed"))
                } else {
                    Ok(i)
                }
            }),
            2,
        );
        let mut got = Vec::new();
        while let Some(r) = results.next().await {
            got.push(r);
        }
        got
    });
    assert_eq!(
        got,
        vec![Ok(0), Ok(1), Err("item 2 failed".to_string()), Ok(3), Ok(4)]
    );
}

#[test]
#[should_panic(expected = "aplex::resolve: workers must be at least 1")]
fn resolve_with_zero_workers_panics_naming_it() {
    expect_panics(&["aplex::resolve: "]);
    drop(resolve([async {}], 0));
}

// ---- RateLimiter ----

/// Asserts both rules on sorted start instants.
///
/// A start is timed just after the limiter let it go, so a thread stalled in between times it
/// late, and the gap to the next start looks shorter than it was: `tolerance` absorbs such a
/// stall. A limiter that ignored a rule would be off by a whole interval or period.
fn assert_rate(starts: &[Instant], max: usize, period: Duration, min_interval: Duration) {
    let tolerance = 10 * MS;
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap + tolerance >= min_interval,
            "gap {gap:?} < {min_interval:?}"
        );
    }
    for window in starts.windows(max + 1) {
        let span = window[max] - window[0];
        assert!(
            span + tolerance >= period,
            "{} starts within {span:?}",
            max + 1
        );
    }
}

#[test]
fn rate_limiter_two_per_period_with_min_interval_over_ten_calls() {
    let period = 150 * MS;
    let min_interval = 30 * MS;
    let limiter = RateLimiter::new(2, period).min_interval(min_interval);
    let start = Instant::now();
    // Ten callers at once, from one task: they line up in input order.
    let starts = aplex::block_on(collect(
        (0..10).map(|_| limiter.run(async { Instant::now() })),
        10,
    ));
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "first come, first served");
    assert_rate(&starts, 2, period, min_interval);
    // Pairs at 0/30, 150/180, ..., 600/630 ms at the earliest. (How close to that the limiter
    // gets is a question of speed, for a benchmark rather than a test.)
    let last = starts[9] - start;
    assert!(last >= 600 * MS + min_interval, "last start {last:?}");
}

#[test]
fn rate_limiter_clones_share_one_limit_across_threads() {
    let period = 100 * MS;
    let limiter = RateLimiter::new(2, period);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let limiter = limiter.clone();
            std::thread::spawn(move || {
                aplex::block_on(async {
                    let mut starts = Vec::new();
                    for _ in 0..2 {
                        limiter.acquire().await;
                        starts.push(Instant::now());
                    }
                    starts
                })
            })
        })
        .collect();
    let mut starts: Vec<Instant> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread panicked"))
        .collect();
    starts.sort();
    assert_eq!(starts.len(), 6);
    assert_rate(&starts, 2, period, Duration::ZERO);
}

#[test]
fn rate_limiter_dropped_acquire_gives_up_its_place() {
    // A period long enough that "one period" and "two periods" stay apart on a busy machine.
    let period = Duration::from_secs(1);
    let limiter = RateLimiter::new(1, period);
    let start = Instant::now();
    aplex::block_on(async {
        limiter.acquire().await; // at 0
        let gave_up = aplex::time::timeout(20 * MS, limiter.acquire()).await;
        assert!(gave_up.is_err());
        limiter.acquire().await; // takes the slot the dropped one would have had
    });
    let took = start.elapsed();
    assert!(took >= period, "took {took:?}");
    assert!(
        took < 2 * period,
        "took {took:?}: the dropped call used a slot"
    );
}

#[test]
#[should_panic(expected = "aplex::RateLimiter::new: max_calls must be at least 1")]
fn rate_limiter_zero_calls_panics_naming_it() {
    expect_panics(&["aplex::RateLimiter::new: "]);
    let _ = RateLimiter::new(0, Duration::from_secs(1));
}

#[test]
#[should_panic(expected = "aplex::RateLimiter::new: period must be longer than zero")]
fn rate_limiter_zero_period_panics_naming_it() {
    expect_panics(&["aplex::RateLimiter::new: "]);
    let _ = RateLimiter::new(3, Duration::ZERO);
}

#[test]
fn rate_limiter_is_send_sync_and_its_future_is_send() {
    fn assert_send_sync<T: Send + Sync + Clone>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let limiter = RateLimiter::new(1, MS);
    assert_send_sync(&limiter);
    let acquire = limiter.acquire();
    assert_send(&acquire);
    aplex::block_on(acquire);
}

// ---- in_thread and the global pool ----

#[test]
fn in_thread_fifty_blocking_100ms_sleeps_run_side_by_side() {
    setup_global();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let in_flight = in_flight.clone();
            aplex::in_thread(move || {
                // Each waits until all fifty are in: one after another, none would get past.
                in_flight.fetch_add(1, Ordering::SeqCst);
                let end = Instant::now() + BOUND;
                while in_flight.load(Ordering::SeqCst) < 50 {
                    assert!(Instant::now() < end, "not all fifty ran side by side");
                    std::thread::sleep(MS);
                }
                std::thread::sleep(100 * MS);
                i
            })
        })
        .collect();
    let sum: u32 = aplex::block_on(async {
        let mut sum = 0;
        for h in handles {
            sum += h.await.expect("the closure ran");
        }
        sum
    });
    let took = start.elapsed();
    assert_eq!(sum, (0..50).sum());
    assert!(took >= 100 * MS, "took {took:?}");
}

#[test]
fn in_thread_reports_a_panic_and_configure_after_start_is_refused() {
    expect_panics(&["blocking call failed"]);
    setup_global();
    let h = aplex::in_thread(|| -> u8 { panic!("blocking call failed") });
    assert_eq!(
        h.wait(),
        Err(aplex::Error::Panicked("blocking call failed".into()))
    );
    assert_eq!(
        global::configure(GlobalConfig::default()),
        Err(ConfigureError::AlreadyStarted)
    );
}

// ---- generate_in_thread ----

/// An endless iterator that counts its pulls and sets `dropped` when dropped.
struct Endless {
    pulled: Arc<AtomicUsize>,
    dropped: Arc<Event>,
}

impl Iterator for Endless {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        Some(self.pulled.fetch_add(1, Ordering::SeqCst))
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.dropped.set();
    }
}

#[test]
fn generate_in_thread_stops_pulling_when_the_consumer_drops_after_ten() {
    setup_global();
    let pulled = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(Event::new());
    let rx = aplex::generate_in_thread(Endless {
        pulled: pulled.clone(),
        dropped: dropped.clone(),
    });
    let first: Vec<usize> = rx.take(10).collect(); // drops the receiver after ten
    assert_eq!(first, (0..10).collect::<Vec<_>>());
    assert!(
        dropped.wait_timeout(BOUND),
        "the producer stopped and dropped its iterator"
    );
    let n = pulled.load(Ordering::SeqCst);
    assert!(n <= 10 + aplex::GENERATE_CAPACITY + 1, "pulled {n}");
}

#[test]
fn generate_in_thread_slow_consumer_holds_the_producer_back() {
    setup_global();
    let pulled = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(Event::new());
    let mut rx = aplex::generate_in_thread(Endless {
        pulled: pulled.clone(),
        dropped: dropped.clone(),
    });
    let got = aplex::block_on(async {
        let first = rx.recv().await;
        sleep(50 * MS).await; // read nothing for a while
        first
    });
    assert_eq!(got, Some(0));
    let n = pulled.load(Ordering::SeqCst);
    assert!(
        n <= 1 + aplex::GENERATE_CAPACITY + 1,
        "pulled {n} while unread"
    );
    drop(rx);
    assert!(dropped.wait_timeout(BOUND));
}

// ---- Group ----

#[test]
fn group_nested_spawns_ten_by_ten_100ms_all_run_at_once() {
    // Each inner future waits until all hundred are in flight: run in turns, none would end.
    let inner_in = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(Event::new());
    let done = Arc::new(AtomicUsize::new(0));
    let group = Group::new();
    let start = Instant::now();
    for _ in 0..10 {
        let handle = group.handle();
        let (inner_in, all_in, done) = (inner_in.clone(), all_in.clone(), done.clone());
        group.spawn(async move {
            sleep(100 * MS).await;
            for _ in 0..10 {
                let (inner_in, all_in, done) = (inner_in.clone(), all_in.clone(), done.clone());
                handle.spawn(async move {
                    if inner_in.fetch_add(1, Ordering::SeqCst) + 1 == 100 {
                        all_in.set();
                    }
                    until_set(&all_in, "all hundred inner futures in flight").await;
                    sleep(100 * MS).await;
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
    }
    group.join().expect("no panic");
    let took = start.elapsed();
    assert_eq!(done.load(Ordering::SeqCst), 100);
    assert!(took >= 200 * MS, "took {took:?}");
}

#[test]
fn group_with_limit_never_exceeds_n() {
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    // None goes on before three run at once: the limit is reached, whatever the timing.
    let three_in = Arc::new(Event::new());
    let group = Group::with_limit(3);
    for _ in 0..12 {
        let (running, peak, three_in) = (running.clone(), peak.clone(), three_in.clone());
        group.spawn(async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            if now == 3 {
                three_in.set();
            }
            until_set(&three_in, "three futures running at once").await;
            sleep(20 * MS).await;
            running.fetch_sub(1, Ordering::SeqCst);
        });
    }
    group.join().expect("no panic");
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    assert_eq!(running.load(Ordering::SeqCst), 0);
}

#[test]
fn group_join_reports_the_first_panic_after_the_others_finish() {
    expect_panics(&["first group future fails"]);
    let done = Arc::new(AtomicUsize::new(0));
    let group = Group::new();
    group.spawn(async { panic!("first group future fails") });
    for _ in 0..5 {
        let done = done.clone();
        group.spawn(async move {
            sleep(20 * MS).await;
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    assert_eq!(
        group.join(),
        Err(aplex::Error::Panicked("first group future fails".into()))
    );
    assert_eq!(done.load(Ordering::SeqCst), 5);
}

#[test]
fn group_futures_run_off_the_callers_thread() {
    let caller = std::thread::current().id();
    let ran_on = Arc::new(std::sync::Mutex::new(None));
    let group = Group::new();
    let r = ran_on.clone();
    group.spawn(async move {
        *r.lock().unwrap() = Some(std::thread::current().id());
    });
    group.join().unwrap();
    let ran_on = ran_on.lock().unwrap().expect("the future ran");
    assert_ne!(ran_on, caller);
}

#[test]
fn group_drop_without_join_waits_for_its_futures() {
    let done = Arc::new(AtomicUsize::new(0));
    {
        let group = Group::new();
        let d = done.clone();
        group.spawn(async move {
            sleep(20 * MS).await;
            d.fetch_add(1, Ordering::SeqCst);
        });
    }
    assert_eq!(done.load(Ordering::SeqCst), 1);
}

#[test]
#[should_panic(expected = "aplex::Group::with_limit: n must be at least 1")]
fn group_with_zero_limit_panics_naming_it() {
    expect_panics(&["aplex::Group::with_limit: "]);
    let _ = Group::with_limit(0);
}

// ---- Yielder, OrderedYielder ----

#[test]
fn yielder_yields_in_completion_order() {
    // The finishing order is set by events: 0 ends first, 20 after it, then 40, then 60.
    let ended: Arc<Vec<Event>> = Arc::new((0..4).map(|_| Event::new()).collect());
    let yielder = Yielder::new();
    for (rank, ms) in [(3usize, 60u64), (1, 20), (2, 40), (0, 0)] {
        let ended = ended.clone();
        yielder.spawn(async move {
            if let Some(before) = rank.checked_sub(1) {
                until_set(&ended[before], "the one before to end").await;
            }
            ended[rank].set();
            ms
        });
    }
    assert_eq!(yielder.into_iter().collect::<Vec<_>>(), vec![0, 20, 40, 60]);
}

#[test]
fn ordered_yielder_yields_in_spawn_order() {
    let yielder = OrderedYielder::new();
    let start = Instant::now(); // before the first future can begin its sleep
    for ms in [60u64, 20, 40, 0] {
        yielder.spawn(async move {
            sleep(ms_(ms)).await;
            ms
        });
    }
    let mut iter = yielder.into_iter();
    assert_eq!(iter.next(), Some(60));
    assert!(start.elapsed() >= 60 * MS); // the first waits for its own future
    assert_eq!(iter.collect::<Vec<_>>(), vec![20, 40, 0]);
}

#[test]
fn yielder_filters_options_with_flatten() {
    let yielder = Yielder::new();
    for i in 0..6u32 {
        yielder.spawn(async move { (i % 2 == 0).then_some(i) });
    }
    let mut evens: Vec<u32> = yielder.into_iter().flatten().collect();
    evens.sort();
    assert_eq!(evens, vec![0, 2, 4]);
}

#[test]
#[should_panic(expected = "aplex::OrderedYielder: a spawned future panicked: second")]
fn ordered_yielder_reraises_a_panic_at_its_place() {
    expect_panics(&["second", "aplex::OrderedYielder: a spawned future panicked"]);
    let yielder = OrderedYielder::new();
    yielder.spawn(async { 1 });
    yielder.spawn(async { panic!("second") });
    yielder.spawn(async { 3 });
    let mut iter = yielder.into_iter();
    assert_eq!(iter.next(), Some(1));
    iter.next();
}

#[test]
fn yielder_dropped_early_cancels_the_rest() {
    let finished = Arc::new(AtomicUsize::new(0));
    let yielder = Yielder::new();
    yielder.spawn(async { 0u64 });
    for _ in 0..3 {
        let f = finished.clone();
        yielder.spawn(async move {
            sleep(Duration::from_secs(60)).await;
            f.fetch_add(1, Ordering::SeqCst);
            1
        });
    }
    let start = Instant::now();
    let mut iter = yielder.into_iter();
    assert_eq!(iter.next(), Some(0));
    drop(iter);
    assert!(start.elapsed() < BOUND, "the drop waited for the sleeps");
    assert_eq!(finished.load(Ordering::SeqCst), 0);
}

#[test]
fn yielder_spawns_from_many_threads() {
    let yielder = Yielder::new();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let y = &yielder;
            s.spawn(move || {
                for i in 0..5 {
                    y.spawn(async move { t * 10 + i });
                }
            });
        }
    });
    let mut got: Vec<u32> = yielder.into_iter().collect();
    got.sort();
    let expected: Vec<u32> = (0..4)
        .flat_map(|t| (0..5).map(move |i| t * 10 + i))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn resolve_greediness_zero_means_no_bound() {
    let started = Rc::new(Cell::new(0usize));
    aplex::block_on(async {
        let mut results = resolve(
            (0..5u32).map(|i| {
                let started = started.clone();
                async move {
                    started.set(started.get() + 1);
                    aplex::yield_now().await;
                    i
                }
            }),
            5,
        )
        .greediness(0);
        assert_eq!(results.next().await, Some(0));
        assert_eq!(started.get(), 5, "all five ran side by side");
        let mut rest = Vec::new();
        while let Some(i) = results.next().await {
            rest.push(i);
        }
        assert_eq!(rest, vec![1, 2, 3, 4]);
    });
}

// ---------------------------------------------------------------------------------------------
// RateLimiter and Yielder: durations too long for an instant, and dropping before iterating.

#[test]
fn a_rate_limiter_with_a_period_or_interval_of_duration_max_waits_instead_of_panicking() {
    for limiter in [
        RateLimiter::new(1, Duration::MAX),
        RateLimiter::new(5, Duration::from_secs(1)).min_interval(Duration::MAX),
    ] {
        aplex::block_on(async {
            limiter.acquire().await; // the first start is free
            let second = aplex::time::timeout(Duration::from_millis(20), limiter.acquire()).await;
            assert!(second.is_err(), "the second start never comes");
        });
    }
}

/// Sets its flag when dropped.
struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Drops `yielder` on another thread; true if the drop returned within a bound that only a
/// hang exceeds.
fn drops_promptly<Y: Send + 'static>(yielder: Y) -> bool {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(yielder);
        let _ = tx.send(());
    });
    rx.recv_timeout(BOUND).is_ok()
}

/// Waits (boundedly) for `flag`: a future is dropped on its worker as the drop returns.
fn soon(flag: &std::sync::atomic::AtomicBool) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while !flag.load(Ordering::SeqCst) && Instant::now() < end {
        std::thread::yield_now();
    }
    flag.load(Ordering::SeqCst)
}

#[test]
fn a_yielder_dropped_before_iterating_cancels_its_futures() {
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let yielder = Yielder::new();
    let guard = SetOnDrop(dropped.clone());
    yielder.spawn(async move {
        let _guard = guard;
        sleep(Duration::from_secs(60)).await;
        1u8
    });
    assert!(drops_promptly(yielder), "the drop waited for the future");
    assert!(soon(&dropped), "the future was dropped");

    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ordered = OrderedYielder::new();
    let guard = SetOnDrop(dropped.clone());
    ordered.spawn(async move {
        let _guard = guard;
        sleep(Duration::from_secs(60)).await;
        1u8
    });
    assert!(drops_promptly(ordered), "the drop waited for the future");
    assert!(soon(&dropped), "the future was dropped");
}
