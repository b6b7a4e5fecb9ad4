//! The balancers, driven directly: picks against hand-made loads.

use aplex::balance::*;

fn load(running: usize, queued: usize, capacity: usize) -> Load {
    Load {
        running,
        queued,
        capacity,
    }
}

fn picks(balancer: &mut dyn Balancer, loads: &[Load], count: usize) -> Vec<usize> {
    (0..count).map(|_| balancer.pick(loads, None)).collect()
}

fn _ensure_send() {
    fn is_send<T: Send>() {}
    is_send::<RoundRobin>();
    is_send::<Random>();
    is_send::<LeastLoaded>();
    is_send::<KeyAffinity>();
    is_send::<Box<dyn Balancer>>();
}

#[test]
fn load_room_and_total() {
    assert!(load(1, 1, 3).has_room());
    assert!(!load(2, 1, 3).has_room());
    assert!(!load(0, 0, 0).has_room());
    assert_eq!(load(2, 5, 1).total(), 7);
    assert_eq!(load(usize::MAX, 1, 1).total(), usize::MAX);
}

#[test]
fn round_robin_cycles_over_equal_workers() {
    let loads = [load(0, 0, 4); 3];
    assert_eq!(
        picks(&mut RoundRobin::new(), &loads, 9),
        [0, 1, 2, 0, 1, 2, 0, 1, 2]
    );
}

#[test]
fn round_robin_skips_a_full_worker() {
    let loads = [load(0, 0, 2), load(2, 0, 2), load(1, 0, 2)];
    assert_eq!(picks(&mut RoundRobin::new(), &loads, 6), [0, 2, 0, 2, 0, 2]);
}

#[test]
fn round_robin_cycles_when_all_are_full() {
    let loads = [load(2, 3, 2); 3];
    assert_eq!(
        picks(&mut RoundRobin::default(), &loads, 6),
        [0, 1, 2, 0, 1, 2]
    );
}

#[test]
fn round_robin_follows_the_worker_count_when_it_shrinks() {
    let mut rr = RoundRobin::new();
    assert_eq!(picks(&mut rr, &[load(0, 0, 1); 5], 4), [0, 1, 2, 3]);
    assert!(rr.pick(&[load(0, 0, 1); 2], None) < 2);
}

#[test]
fn random_with_seed_is_deterministic() {
    let loads = [load(0, 0, 4); 7];
    let a = picks(&mut Random::with_seed(42), &loads, 1000);
    let b = picks(&mut Random::with_seed(42), &loads, 1000);
    let c = picks(&mut Random::with_seed(43), &loads, 1000);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.iter().all(|&i| i < 7));
}

#[test]
fn random_is_roughly_uniform() {
    let loads = [load(0, 0, 4); 4];
    let mut counts = [0usize; 4];
    let mut random = Random::with_seed(0x00DE_C0DE);
    for _ in 0..40_000 {
        counts[random.pick(&loads, None)] += 1;
    }
    for count in counts {
        assert!((9_000..=11_000).contains(&count), "{counts:?}");
    }
}

#[test]
fn random_never_picks_a_full_worker_while_one_has_room() {
    let loads = [load(2, 0, 2), load(1, 0, 2), load(2, 1, 2), load(0, 0, 2)];
    let mut random = Random::new();
    let mut seen = [false; 4];
    for _ in 0..1000 {
        let i = random.pick(&loads, None);
        assert!(loads[i].has_room(), "picked full worker {i}");
        seen[i] = true;
    }
    assert_eq!(seen, [false, true, false, true]);
}

#[test]
fn random_picks_among_all_when_all_are_full() {
    let loads = [load(1, 0, 1); 3];
    let mut random = Random::with_seed(1);
    let mut seen = [false; 3];
    for _ in 0..300 {
        seen[random.pick(&loads, None)] = true;
    }
    assert_eq!(seen, [true; 3]);
}

#[test]
fn least_loaded_picks_the_minimum() {
    let loads = [load(3, 2, 4), load(2, 0, 4), load(1, 0, 4), load(4, 0, 4)];
    let mut least = LeastLoaded::new();
    for _ in 0..5 {
        assert_eq!(least.pick(&loads, None), 2);
    }
}

#[test]
fn least_loaded_avoids_a_busy_worker() {
    let loads = [load(4, 6, 4), load(1, 0, 4), load(1, 0, 4)];
    let got = picks(&mut LeastLoaded::new(), &loads, 6);
    assert!(!got.contains(&0), "{got:?}");
}

#[test]
fn least_loaded_prefers_room_over_a_smaller_total() {
    // Worker 0 has fewer works but no room (capacity 1); worker 1 can start one at once.
    let loads = [load(1, 0, 1), load(2, 0, 8)];
    assert_eq!(LeastLoaded::new().pick(&loads, None), 1);
}

#[test]
fn least_loaded_spreads_ties() {
    let loads = [load(1, 0, 4), load(3, 0, 4), load(1, 0, 4), load(1, 0, 4)];
    assert_eq!(
        picks(&mut LeastLoaded::new(), &loads, 6),
        [0, 2, 3, 0, 2, 3]
    );
}

#[test]
fn least_loaded_follows_changing_loads() {
    // Simulate the pool: each pick adds a queued work to the chosen worker.
    let mut loads = [load(0, 0, 2); 3];
    let mut least = LeastLoaded::new();
    for _ in 0..9 {
        let i = least.pick(&loads, None);
        loads[i].queued += 1;
    }
    assert!(loads.iter().all(|l| l.total() == 3), "{loads:?}");
}

#[test]
fn key_affinity_same_hint_same_worker() {
    let mut affinity = KeyAffinity::new();
    let first = affinity.pick(&[load(0, 0, 2); 5], Some(7));
    for round in 0..1000 {
        // Loads vary, including the chosen worker being full: stickiness wins.
        let loads: Vec<Load> = (0..5)
            .map(|w| load((round + w) % 3, round % 4, 2))
            .collect();
        assert_eq!(affinity.pick(&loads, Some(7)), first);
        // Unkeyed picks in between do not disturb keyed ones.
        affinity.pick(&loads, None);
    }
    assert_eq!(
        KeyAffinity::default().pick(&[load(0, 0, 2); 5], Some(7)),
        first
    );
}

#[test]
fn key_affinity_spreads_different_hints() {
    let loads = [load(0, 0, 2); 4];
    let mut affinity = KeyAffinity::new();
    let mut counts = [0usize; 4];
    for hint in 0..1000 {
        counts[affinity.pick(&loads, Some(hint))] += 1;
    }
    assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
    // Multiples of the worker count spread too (the hint is mixed before the modulo).
    let mut counts = [0usize; 4];
    for hint in 0..1000 {
        counts[affinity.pick(&loads, Some(hint * 4))] += 1;
    }
    assert!(counts.iter().all(|&c| c > 150), "{counts:?}");
}

#[test]
fn key_affinity_without_hint_is_round_robin() {
    let loads = [load(0, 0, 2); 3];
    assert_eq!(
        picks(&mut KeyAffinity::new(), &loads, 6),
        [0, 1, 2, 0, 1, 2]
    );
}

#[test]
fn custom_balancer_receives_the_hint() {
    #[derive(Debug, Default)]
    struct Recorder {
        hints: Vec<Option<u64>>,
        workers: Vec<usize>,
    }
    impl Balancer for Recorder {
        fn pick(&mut self, loads: &[Load], hint: Option<u64>) -> usize {
            self.hints.push(hint);
            self.workers.push(loads.len());
            hint.unwrap_or(0) as usize
        }
    }

    let loads = [load(0, 0, 1); 3];
    let mut recorder = Recorder::default();
    assert_eq!(recorder.pick(&loads, Some(2)), 2);
    assert_eq!(recorder.pick(&loads, None), 0);
    assert_eq!(recorder.pick(&loads, Some(u64::MAX)), u64::MAX as usize);
    assert_eq!(recorder.hints, [Some(2), None, Some(u64::MAX)]);
    assert_eq!(recorder.workers, [3, 3, 3]);

    // Boxed, as a pool would hold it.
    let mut boxed: Box<dyn Balancer> = Box::new(recorder);
    assert_eq!(boxed.pick(&loads, Some(1)), 1);
}

#[test]
fn closure_balancer_via_from_fn() {
    let mut calls = 0;
    {
        let mut balancer = from_fn(|loads: &[Load], hint: Option<u64>| {
            calls += 1;
            hint.map_or(loads.len() - 1, |h| h as usize)
        });
        let loads = [load(0, 0, 1); 3];
        assert_eq!(balancer.pick(&loads, None), 2);
        assert_eq!(balancer.pick(&loads, Some(1)), 1);
    }
    assert_eq!(calls, 2);
}

#[test]
fn empty_loads_pick_zero_without_panicking() {
    let mut all: Vec<Box<dyn Balancer>> = vec![
        Box::new(RoundRobin::new()),
        Box::new(Random::new()),
        Box::new(LeastLoaded::new()),
        Box::new(KeyAffinity::new()),
    ];
    for balancer in &mut all {
        assert_eq!(balancer.pick(&[], None), 0);
        assert_eq!(balancer.pick(&[], Some(5)), 0);
    }
}

#[test]
fn balancers_are_debug() {
    let text = format!(
        "{:?} {:?} {:?} {:?} {:?}",
        RoundRobin::new(),
        Random::with_seed(1),
        LeastLoaded::new(),
        KeyAffinity::new(),
        from_fn(|_: &[Load], _: Option<u64>| 0),
    );
    assert!(text.contains("RoundRobin") && text.contains("FnBalancer"));
}
