//! Panics in works, shutdown (graceful and now), the builder's checks, thread names, and the limit of works per worker.

use super::*;

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
