//! Priorities: higher first, first come first served within one, and across the works a
//! worker already took from the queue (it takes several per step).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aplex::ElasticPool;

use crate::support::{blocker, eventually};

#[test]
fn queued_works_run_in_priority_order_fifo_within_a_priority() {
    let pool = ElasticPool::builder().workers(1).build().unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let busy = pool.try_submit(blocker(&gate)).unwrap();
    eventually("the blocker runs", || pool.stats().running == 1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (p, name) in [
        (1, "p1-a"),
        (5, "p5-a"),
        (1, "p1-b"),
        (9, "p9"),
        (5, "p5-b"),
        (-3, "neg"),
    ] {
        let order = order.clone();
        handles.push(
            pool.priority(p)
                .try_submit(move || order.lock().unwrap().push(name))
                .unwrap(),
        );
    }
    gate.store(true, Ordering::SeqCst);
    busy.wait().unwrap();
    handles.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(
        *order.lock().unwrap(),
        vec!["p9", "p5-a", "p5-b", "p1-a", "p1-b", "neg"]
    );
}

#[test]
fn a_higher_priority_overtakes_works_a_worker_already_took() {
    let pool = ElasticPool::builder().workers(1).build().unwrap();
    let (first_gate, gate) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let first = pool.try_submit(blocker(&first_gate)).unwrap();
    eventually("the first blocker runs", || pool.stats().running == 1);
    // Queued: a second blocker and two works behind it. When the first blocker ends, the
    // worker takes all three in one step and starts the second blocker.
    let order = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(AtomicBool::new(false));
    let (s, hold) = (started.clone(), blocker(&gate));
    let second = pool
        .try_submit(move || {
            s.store(true, Ordering::SeqCst);
            hold();
        })
        .unwrap();
    let mut handles = vec![first, second];
    for name in ["low-a", "low-b"] {
        let o = order.clone();
        handles.push(
            pool.try_submit(move || o.lock().unwrap().push(name))
                .unwrap(),
        );
    }
    first_gate.store(true, Ordering::SeqCst);
    eventually("the second blocker runs", || started.load(Ordering::SeqCst));
    let o = order.clone();
    handles.push(
        pool.priority(5)
            .try_submit(move || o.lock().unwrap().push("high"))
            .unwrap(),
    );
    gate.store(true, Ordering::SeqCst);
    handles.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(*order.lock().unwrap(), vec!["high", "low-a", "low-b"]);
}

#[test]
fn a_higher_priority_a_blocked_worker_took_runs_before_lower_ones_queued() {
    let pool = ElasticPool::builder().workers(2).build().unwrap();
    let (ga, gb, gc) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let mut handles = vec![
        pool.try_submit(blocker(&ga)).unwrap(),
        pool.try_submit(blocker(&gb)).unwrap(),
    ];
    eventually("both workers are held", || pool.stats().running == 2);
    // Queued: at priority 5 a third blocker and "high"; at priority 0 two "low" works. The
    // worker let go first takes its share (the two at priority 5) and blocks in the third
    // blocker, holding "high"; the other, let go next, must run "high" before the low ones.
    let order = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(AtomicBool::new(false));
    let (s, hold) = (started.clone(), blocker(&gc));
    handles.push(
        pool.priority(5)
            .try_submit(move || {
                s.store(true, Ordering::SeqCst);
                hold();
            })
            .unwrap(),
    );
    for (p, name) in [(5, "high"), (0, "low-a"), (0, "low-b")] {
        let o = order.clone();
        handles.push(
            pool.priority(p)
                .try_submit(move || o.lock().unwrap().push(name))
                .unwrap(),
        );
    }
    ga.store(true, Ordering::SeqCst);
    eventually("the third blocker runs", || started.load(Ordering::SeqCst));
    gb.store(true, Ordering::SeqCst);
    eventually("the three works ran", || order.lock().unwrap().len() == 3);
    assert_eq!(*order.lock().unwrap(), vec!["high", "low-a", "low-b"]);
    gc.store(true, Ordering::SeqCst);
    handles.into_iter().for_each(|h| h.wait().unwrap());
}
