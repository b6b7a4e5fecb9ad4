//! Balancers at their seams: a user balancer that answers out of range, panics, or pins every
//! work to one busy worker; `KeyAffinity` while its worker is busy or dead; the built-in
//! balancers on edge loads; `Random`'s spread by counts (never by time). Every submission
//! still ends in one outcome, and the pick happens once per submission.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aplex::balance::{Balancer, KeyAffinity, LeastLoaded, Load, Random, RoundRobin};
use aplex::sync::Event;
use aplex::ThreadPool;

use crate::{case, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    #[cfg_attr(not(feature = "process"), allow(unused_mut))] // the process cases join below
    let mut cases = vec![
        case(
            "balance_an_index_out_of_range_is_taken_modulo",
            balance_an_index_out_of_range_is_taken_modulo,
        ),
        case(
            "balance_a_panicking_balancer_still_places_every_work",
            balance_a_panicking_balancer_still_places_every_work,
        ),
        case(
            "balance_one_worker_forever_while_it_is_full",
            balance_one_worker_forever_while_it_is_full,
        ),
        case(
            "balance_key_affinity_behind_a_busy_worker_keeps_order",
            balance_key_affinity_behind_a_busy_worker_keeps_order,
        ),
        case(
            "balance_builtins_on_edge_loads",
            balance_builtins_on_edge_loads,
        ),
        case(
            "balance_least_loaded_ties_take_turns",
            balance_least_loaded_ties_take_turns,
        ),
        case(
            "balance_random_spreads_by_counts",
            balance_random_spreads_by_counts,
        ),
    ];
    #[cfg(feature = "process")]
    cases.extend(process::cases());
    cases
}

/// A binding balancer (no stealing: the pick is where the work runs) that sends each work
/// where its hint says, out of range as it may be, and counts its picks.
#[derive(Debug, Default)]
struct ByHint {
    picks: Arc<AtomicUsize>,
}

impl Balancer for ByHint {
    fn pick(&mut self, _loads: &[Load], hint: Option<u64>) -> usize {
        self.picks.fetch_add(1, Ordering::SeqCst);
        hint.unwrap_or(0) as usize
    }

    fn is_binding(&self, _hint: Option<u64>) -> bool {
        true
    }
}

fn thread_pool(workers: usize, max: usize, balancer: impl Balancer + 'static) -> ThreadPool {
    ThreadPool::builder()
        .workers(workers)
        .max_works_per_worker(max)
        .thread_name("bal")
        .balancer(balancer)
        .build()
        .expect("the pool starts")
}

fn worker_name() -> String {
    std::thread::current().name().unwrap_or("").to_string()
}

fn balance_an_index_out_of_range_is_taken_modulo() {
    let picks = Arc::new(AtomicUsize::new(0));
    let tp = thread_pool(
        3,
        4,
        ByHint {
            picks: picks.clone(),
        },
    );
    let hints = [0u64, 1, 2, 3, 7, 1 << 40, u64::MAX, u64::MAX - 1];
    let names = within("works placed by out-of-range hints", move || {
        let hs: Vec<_> = hints
            .iter()
            .map(|&h| tp.submit_with(h, worker_name))
            .collect();
        hs.into_iter().map(|h| h.wait()).collect::<Vec<_>>()
    });
    for (hint, name) in hints.iter().zip(&names) {
        let want = format!("bal-{}", (*hint as usize) % 3);
        assert_eq!(name.as_deref(), Ok(want.as_str()), "hint {hint}");
    }
    assert_eq!(
        picks.load(Ordering::SeqCst),
        hints.len(),
        "one pick a submission"
    );
}

/// Panics on every other pick, and on every third binding question.
#[derive(Debug, Default)]
struct Flaky {
    calls: usize,
}

impl Balancer for Flaky {
    fn pick(&mut self, loads: &[Load], _hint: Option<u64>) -> usize {
        self.calls += 1;
        assert!(self.calls % 2 == 0, "a balancer bug");
        loads.len() * 1000 + 1
    }

    fn is_binding(&self, _hint: Option<u64>) -> bool {
        assert!(self.calls % 3 != 0, "a binding bug");
        false
    }
}

fn balance_a_panicking_balancer_still_places_every_work() {
    let tp = thread_pool(2, 2, Flaky::default());
    let got = within("100 works through a panicking balancer", move || {
        let mut hs: Vec<_> = (0..50u64).map(|i| tp.submit(move || i)).collect();
        hs.extend((50..100u64).map(|i| tp.spawn_with(i, move || async move { i })));
        let each: Vec<_> = hs.into_iter().map(|h| h.wait()).collect();
        let mapped: Vec<_> = tp.map(|x: u64| x + 1, 0..100).chunk_size(7).collect();
        (each, mapped)
    });
    let want: Vec<_> = (0..100u64).map(Ok).collect();
    assert_eq!(got.0, want);
    let want: Vec<_> = (1..101u64).map(Ok).collect();
    assert_eq!(got.1, want);
}

fn balance_one_worker_forever_while_it_is_full() {
    // Not binding: the idle worker takes what waits behind the full one.
    let gate = Arc::new(Event::new());
    let tp = thread_pool(2, 1, aplex::balance::from_fn(|_: &[Load], _| 0));
    let g = Arc::clone(&gate);
    let (blocker, rest, tp) = within("works behind a held worker", move || {
        let blocker = tp.submit(move || g.wait_blocking());
        let rest: Vec<_> = (0..5u64).map(|i| tp.submit(move || i)).collect();
        // They end while the first worker is still held: nobody waits for it.
        let rest: Vec<_> = rest.into_iter().map(|h| h.wait()).collect();
        (blocker, rest, tp)
    });
    assert_eq!(rest, (0..5u64).map(Ok).collect::<Vec<_>>());
    gate.set();
    assert_eq!(within("the held work", move || blocker.wait()), Ok(()));
    drop(tp);

    // Binding: everything waits for worker 0, and runs there, in order.
    let gate = Arc::new(Event::new());
    let picks = Arc::new(AtomicUsize::new(0));
    let tp = thread_pool(2, 1, ByHint { picks });
    let g = Arc::clone(&gate);
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    let got = within("pinned works behind a held worker", move || {
        let blocker = tp.submit_with(0, move || g.wait_blocking());
        let rest: Vec<_> = (0..5u64)
            .map(|i| {
                let l = Arc::clone(&l);
                tp.submit_with(2, move || l.lock().unwrap().push((i, worker_name())))
            })
            .collect();
        gate.set();
        let mut outcomes = vec![blocker.wait()];
        outcomes.extend(rest.into_iter().map(|h| h.wait()));
        outcomes
    });
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    let log = log.lock().unwrap().clone();
    let want: Vec<_> = (0..5u64).map(|i| (i, "bal-0".to_string())).collect();
    assert_eq!(
        log, want,
        "hint 2 of 2 workers is worker 0, in submission order"
    );
}

fn balance_key_affinity_behind_a_busy_worker_keeps_order() {
    let tp = thread_pool(4, 1, KeyAffinity::new());
    let gate = Arc::new(Event::new());
    let log = Arc::new(Mutex::new(Vec::new()));
    let (g, l) = (Arc::clone(&gate), Arc::clone(&log));
    let got = within("a key's works behind its held worker", move || {
        let key = 77;
        let held = tp.submit_with(key, move || {
            g.wait_blocking();
            worker_name()
        });
        let queued: Vec<_> = (0..10u64)
            .map(|i| {
                let l = Arc::clone(&l);
                tp.submit_with(key, move || {
                    l.lock().unwrap().push(i);
                    worker_name()
                })
            })
            .collect();
        // Works without a key are not stuck behind the held worker.
        let free: Vec<_> = (0..8u64).map(|i| tp.submit(move || i)).collect();
        let free: Vec<_> = free.into_iter().map(|h| h.wait()).collect();
        gate.set();
        let held = held.wait();
        let queued: Vec<_> = queued.into_iter().map(|h| h.wait()).collect();
        (held, queued, free)
    });
    assert_eq!(got.2, (0..8u64).map(Ok).collect::<Vec<_>>());
    let worker = got.0.expect("the held work ends");
    for (i, q) in got.1.iter().enumerate() {
        assert_eq!(
            q.as_deref(),
            Ok(worker.as_str()),
            "keyed work {i} on its key's worker"
        );
    }
    assert_eq!(*log.lock().unwrap(), (0..10u64).collect::<Vec<_>>());
}

fn load(running: usize, queued: usize, capacity: usize) -> Load {
    Load {
        running,
        queued,
        capacity,
    }
}

fn balance_builtins_on_edge_loads() {
    let mut all: Vec<(&str, Box<dyn Balancer>)> = vec![
        ("round robin", Box::new(RoundRobin::new())),
        ("random", Box::new(Random::with_seed(1))),
        ("least loaded", Box::new(LeastLoaded::new())),
        ("key affinity", Box::new(KeyAffinity::new())),
    ];
    let huge = load(usize::MAX, usize::MAX, usize::MAX);
    let shapes: Vec<Vec<Load>> = vec![
        vec![],
        vec![load(0, 0, 0); 5], // no worker ever has room
        vec![huge; 3],
        vec![load(1, 0, 1), huge, load(0, 0, 1)],
        vec![load(0, 0, 2); 2], // fewer workers than the last call: a pool that shrank
        vec![load(0, 0, 2); 7],
        vec![load(0, 0, 2)],
    ];
    for (name, balancer) in &mut all {
        for loads in &shapes {
            for hint in [None, Some(0), Some(u64::MAX)] {
                let picked = catch(|| balancer.pick(loads, hint));
                let picked = picked.unwrap_or_else(|| panic!("{name} panicked on {loads:?}"));
                if loads.is_empty() {
                    assert_eq!(picked, 0, "{name} on no workers");
                } else {
                    assert!(picked < loads.len(), "{name}: {picked} of {}", loads.len());
                }
            }
        }
    }
    // Preferring room: the one worker with room is picked, whoever asks without a key.
    let one_free = [huge, load(3, 0, 3), load(0, 0, 3), load(3, 9, 3)];
    for (name, balancer) in &mut all {
        for _ in 0..8 {
            assert_eq!(balancer.pick(&one_free, None), 2, "{name}");
        }
    }
}

fn catch<T>(f: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

fn balance_least_loaded_ties_take_turns() {
    let mut least = LeastLoaded::new();
    let tied = [load(1, 0, 4); 4];
    let picks: Vec<_> = (0..8).map(|_| least.pick(&tied, None)).collect();
    assert_eq!(picks, [0, 1, 2, 3, 0, 1, 2, 3]);
    // Ties among some: the others never win, the tied ones take turns.
    let some = [load(2, 0, 4), load(1, 0, 4), load(3, 0, 4), load(1, 0, 4)];
    let picks: Vec<_> = (0..6).map(|_| least.pick(&some, None)).collect();
    for p in &picks {
        assert!(*p == 1 || *p == 3, "{picks:?}");
    }
    assert!(picks.windows(2).all(|w| w[0] != w[1]), "turns: {picks:?}");
    // All full: the fewest works wins, and room beats fewer works.
    let full = [load(4, 3, 4), load(4, 1, 4), load(4, 2, 4)];
    assert_eq!(least.pick(&full, None), 1);
    let roomy = [load(4, 0, 4), load(7, 0, 8)];
    assert_eq!(least.pick(&roomy, None), 1, "room first, then counts");
}

fn balance_random_spreads_by_counts() {
    let spread = |loads: &[Load], seed: u64| {
        let mut random = Random::with_seed(seed);
        let mut counts = vec![0usize; loads.len()];
        for _ in 0..10_000 {
            counts[random.pick(loads, None)] += 1;
        }
        counts
    };
    for seed in [0, 1, 42, u64::MAX] {
        let even = spread(&[load(0, 0, 2); 4], seed);
        assert!(
            even.iter().all(|&c| (2000..=3000).contains(&c)),
            "seed {seed}: {even:?}"
        );
        let one_full = [load(0, 0, 2), load(0, 0, 2), load(2, 0, 2), load(1, 0, 2)];
        let c = spread(&one_full, seed);
        assert_eq!(
            c[2], 0,
            "seed {seed}: the full worker is never picked: {c:?}"
        );
        assert!(c
            .iter()
            .enumerate()
            .all(|(i, &n)| i == 2 || (2800..=3900).contains(&n)));
        let all_full = spread(&[load(2, 5, 2); 4], seed);
        assert!(
            all_full.iter().all(|&c| (2000..=3000).contains(&c)),
            "{all_full:?}"
        );
    }
    // Two fresh balancers are seeded apart.
    let loads = [load(0, 0, 1); 16];
    let (mut a, mut b) = (Random::new(), Random::new());
    let sa: Vec<_> = (0..64).map(|_| a.pick(&loads, None)).collect();
    let sb: Vec<_> = (0..64).map(|_| b.pick(&loads, None)).collect();
    assert_ne!(sa, sb);
}

#[cfg(feature = "process")]
mod process {
    use super::*;
    use crate::works::works;
    use aplex::{Error, ProcessPool};

    pub(super) fn cases() -> Vec<Case> {
        vec![
            case(
                "balance_process_pool_modulo_panics_and_one_pick_each",
                balance_process_pool_modulo_panics_and_one_pick_each,
            ),
            case(
                "balance_key_affinity_while_its_process_worker_is_dead",
                balance_key_affinity_while_its_process_worker_is_dead,
            ),
        ]
    }

    fn balance_process_pool_modulo_panics_and_one_pick_each() {
        let picks = Arc::new(AtomicUsize::new(0));
        let p = ProcessPool::builder()
            .workers(3)
            .balancer(ByHint {
                picks: picks.clone(),
            })
            .build(&works::WORKS)
            .expect("the pool starts");
        let hints = [0u64, 1, 2, 5, u64::MAX];
        let (placed, mapped, slots) = within("calls placed by out-of-range hints", move || {
            let placed: Vec<_> = hints
                .iter()
                .map(|&h| p.call_with(h, &works::pid, ()).wait())
                .collect();
            let mapped: Vec<_> = p.map(&works::double, 0..100u64).chunk_size(10).collect();
            let slots: Vec<_> = p.slots().iter().map(|s| s.pid).collect();
            (placed, mapped, slots)
        });
        for (hint, pid) in hints.iter().zip(&placed) {
            let slot = (*hint as usize) % 3;
            assert_eq!(pid.as_ref().ok().copied(), slots[slot], "hint {hint}");
        }
        assert_eq!(mapped, (0..100u64).map(|x| Ok(x * 2)).collect::<Vec<_>>());
        assert_eq!(
            picks.load(Ordering::SeqCst),
            hints.len() + 10,
            "a pick a call, a chunk"
        );

        let p = ProcessPool::builder()
            .workers(2)
            .balancer(Flaky::default())
            .build(&works::WORKS)
            .expect("the pool starts");
        let got = within("calls through a panicking balancer", move || {
            let calls: Vec<_> = (0..20u64).map(|i| p.call(&works::double, i)).collect();
            let calls: Vec<_> = calls.into_iter().map(|h| h.wait()).collect();
            let mapped: Vec<_> = p.map(&works::double, 0..30u64).chunk_size(4).collect();
            (calls, mapped)
        });
        assert_eq!(got.0, (0..20u64).map(|x| Ok(x * 2)).collect::<Vec<_>>());
        assert_eq!(got.1, (0..30u64).map(|x| Ok(x * 2)).collect::<Vec<_>>());
    }

    fn balance_key_affinity_while_its_process_worker_is_dead() {
        let p = ProcessPool::builder()
            .workers(2)
            .balancer(KeyAffinity::new())
            .build(&works::WORKS)
            .expect("the pool starts");
        let got = within("a key's calls while its worker dies", move || {
            let key = 5;
            let lost = p.call_with(key, &works::exit_now, 9);
            // Sent at once, while the worker dies or is respawned: each ends with its value.
            let after: Vec<_> = (0..20u64)
                .map(|i| p.call_with(key, &works::double, i))
                .collect();
            let lost = lost.wait();
            let after: Vec<_> = after.into_iter().map(|h| h.wait()).collect();
            (lost, after, p.loads())
        });
        assert!(matches!(got.0, Err(Error::WorkerLost(_))), "{:?}", got.0);
        // A call sent to the dying worker before its death is seen is lost with it; none
        // is lost silently or twice.
        for (i, r) in got.1.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(*v, i as u64 * 2),
                Err(Error::WorkerLost(_)) => {}
                other => panic!("call {i}: {other:?}"),
            }
        }
        assert_eq!(got.2, vec![0, 0]);
    }
}
