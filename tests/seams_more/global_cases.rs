//! The global pools and the group helpers from inside pool works: `in_thread` nested in works
//! and in itself, `global::configure` before and after the start, `Group`/`Yielder`/
//! `OrderedYielder` used on pool workers with their handles sent across threads, and
//! `global::shutdown` called from one of its own closures (last: it is for good).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aplex::global::{self, ConfigureError, GlobalConfig};
use aplex::{in_thread, Error, Group, OrderedYielder, ThreadPool, Yielder};

use crate::{case, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "global_configure_before_and_after_the_start",
            global_configure_before_and_after_the_start,
        ),
        case(
            "in_thread_from_pool_works_and_from_itself",
            in_thread_from_pool_works_and_from_itself,
        ),
        case(
            "groups_and_yielders_inside_pool_works_handles_across_threads",
            groups_and_yielders_inside_pool_works_handles_across_threads,
        ),
        // Last: the global pool stays shut down.
        case(
            "global_shutdown_from_inside_one_of_its_closures",
            global_shutdown_from_inside_one_of_its_closures,
        ),
    ]
}

fn global_configure_before_and_after_the_start() {
    within("global configuration", || {
        let zero = GlobalConfig {
            threads: Some(0),
            ..GlobalConfig::default()
        };
        assert_eq!(global::configure(zero), Err(ConfigureError::ZeroThreads));
        let four = GlobalConfig {
            threads: Some(4),
            thread_name: "seams-global".to_string(),
            ..GlobalConfig::default()
        };
        // Before the start, a configuration may be replaced (another case may have started the
        // pool already when run alone with a filter: then both say so).
        let first = global::configure(four.clone());
        let second = global::configure(four.clone());
        assert_eq!(first, second);
        let name = in_thread(|| std::thread::current().name().map(str::to_string))
            .wait()
            .unwrap();
        if first.is_ok() {
            assert!(
                name.as_deref()
                    .is_some_and(|n| n.starts_with("seams-global")),
                "{name:?}"
            );
        }
        assert_eq!(global::configure(four), Err(ConfigureError::AlreadyStarted));
    });
}

fn in_thread_from_pool_works_and_from_itself() {
    within("nested in_thread", || {
        let pool = ThreadPool::new(1);
        assert_eq!(pool.submit(|| in_thread(|| 5).wait()).wait(), Ok(Ok(5)));
        assert_eq!(
            pool.spawn(|| async { in_thread(|| 6).await }).wait(),
            Ok(Ok(6))
        );
        // Nested three deep: each level blocks a global thread on the next one.
        let deep = in_thread(|| in_thread(|| in_thread(|| 7).wait()).wait()).wait();
        assert_eq!(deep, Ok(Ok(Ok(7))));
        // A panic in a nested one is an outcome at its own level.
        let nested_panic = in_thread(|| in_thread(|| -> u8 { panic!("inner") }).wait()).wait();
        assert_eq!(nested_panic, Ok(Err(Error::Panicked("inner".to_string()))));
        // Many handles awaited together from one async work on the pool.
        let sum = pool
            .spawn(|| async {
                let handles: Vec<_> = (0..32u32).map(|i| in_thread(move || i)).collect();
                let mut sum = 0;
                for h in handles {
                    sum += h.await.unwrap();
                }
                sum
            })
            .wait();
        assert_eq!(sum, Ok((0..32).sum()));
    });
}

fn groups_and_yielders_inside_pool_works_handles_across_threads() {
    within("groups and yielders on pool workers", || {
        let pool = ThreadPool::new(2);
        let count = Arc::new(AtomicUsize::new(0));
        // A group made, fed from other threads through its handle, and joined inside a work.
        let c = count.clone();
        let joined = pool
            .submit(move || {
                let group = Group::with_limit(2);
                let handle = group.handle();
                let feeders: Vec<_> = (0..3)
                    .map(|_| {
                        let (handle, c) = (handle.clone(), c.clone());
                        std::thread::spawn(move || {
                            for _ in 0..5 {
                                let (h, c) = (handle.clone(), c.clone());
                                handle.spawn(async move {
                                    let c2 = c.clone();
                                    h.spawn(async move {
                                        c2.fetch_add(1, Ordering::SeqCst);
                                    });
                                    c.fetch_add(1, Ordering::SeqCst);
                                });
                            }
                        })
                    })
                    .collect();
                for f in feeders {
                    f.join().unwrap();
                }
                let joined = group.join();
                // After join, the handle drops what it is given, unrun and not leaked.
                let dropped = Arc::new(AtomicUsize::new(0));
                let guard = crate::DropCount(dropped.clone());
                handle.spawn(async move {
                    let _guard = guard;
                    unreachable!("spawned after join");
                });
                (joined, dropped.load(Ordering::SeqCst))
            })
            .wait();
        assert_eq!(joined, Ok((Ok(()), 1)));
        assert_eq!(count.load(Ordering::SeqCst), 30);

        // A yielder fed from a work's own thread and from another one, read inside a work.
        let sum = pool
            .submit(|| {
                let yielder = Arc::new(Yielder::new());
                let y = yielder.clone();
                std::thread::spawn(move || {
                    for i in 0..10u64 {
                        y.spawn(async move { i });
                    }
                })
                .join()
                .unwrap();
                for i in 10..20u64 {
                    yielder.spawn(async move { i });
                }
                let yielder = Arc::into_inner(yielder).expect("the feeder's share is gone");
                yielder.into_iter().sum::<u64>()
            })
            .wait();
        assert_eq!(sum, Ok((0..20).sum()));

        // An ordered yielder read inside an in_thread closure keeps spawn order.
        let ordered = in_thread(|| {
            let yielder = OrderedYielder::new();
            for i in 0..16u64 {
                yielder.spawn(async move {
                    aplex::time::sleep(std::time::Duration::from_micros((16 - i) * 50)).await;
                    i
                });
            }
            yielder.into_iter().collect::<Vec<_>>()
        })
        .wait();
        assert_eq!(ordered, Ok((0..16).collect()));
    });
}

fn global_shutdown_from_inside_one_of_its_closures() {
    within("global shutdown from inside", || {
        // Make sure the pool runs, then shut it down from one of its own closures.
        assert_eq!(in_thread(|| 1).wait(), Ok(1));
        let inside = in_thread(|| {
            global::shutdown();
            2
        })
        .wait();
        assert!(
            matches!(inside, Ok(2) | Err(Error::ShutDown) | Err(Error::Cancelled)),
            "{inside:?}"
        );
        assert_eq!(in_thread(|| 3).wait(), Err(Error::ShutDown));
        // Later calls of every kind answer at once.
        global::shutdown();
        assert_eq!(
            global::configure(GlobalConfig::default()),
            Err(ConfigureError::AlreadyStarted)
        );
        assert_eq!(aplex::generate_in_thread(0..5).count(), 0);
        let awaited = aplex::block_on(in_thread(|| 4));
        assert_eq!(awaited, Err(Error::ShutDown));
    });
}
