//! The runtime at its seams: `block_on` where it cannot run, `spawn_local` with no executor,
//! `LocalTask`s that outlive their executor, tasks that never stop waking themselves, and
//! wakers that fire after their executor is gone or from a thousand threads at once.

use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use aplex::{block_on, spawn_local, yield_now, Error, ThreadPool};

use crate::{case, panic_message_of, run_foreign, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "block_on_inside_block_on_is_a_clear_panic_and_the_thread_recovers",
            block_on_inside_block_on_is_a_clear_panic_and_the_thread_recovers,
        ),
        case(
            "block_on_inside_a_pool_work_is_an_outcome_not_a_deadlock",
            block_on_inside_a_pool_work_is_an_outcome_not_a_deadlock,
        ),
        case(
            "spawn_local_outside_any_runtime_names_the_misuse",
            spawn_local_outside_any_runtime_names_the_misuse,
        ),
        case(
            "spawn_local_inside_a_plain_pool_closure_runs_or_says_why",
            spawn_local_inside_a_plain_pool_closure_runs_or_says_why,
        ),
        case(
            "local_task_awaited_after_its_executor_ended",
            local_task_awaited_after_its_executor_ended,
        ),
        case(
            "dropped_local_task_runs_on_detached",
            dropped_local_task_runs_on_detached,
        ),
        case(
            "yield_loops_do_not_starve_timers_or_other_tasks",
            yield_loops_do_not_starve_timers_or_other_tasks,
        ),
        case(
            "a_self_waking_work_does_not_starve_its_worker",
            a_self_waking_work_does_not_starve_its_worker,
        ),
        case(
            "wakers_fired_after_their_executor_is_gone",
            wakers_fired_after_their_executor_is_gone,
        ),
        case(
            "a_waker_cloned_to_a_thousand_threads_waking_at_once",
            a_waker_cloned_to_a_thousand_threads_waking_at_once,
        ),
    ]
}

fn block_on_inside_block_on_is_a_clear_panic_and_the_thread_recovers() {
    within("nested block_on", || {
        let message = panic_message_of(|| block_on(async { block_on(async { 1 }) }));
        assert!(
            message.contains("block_on") && message.contains("inside"),
            "unclear message: {message}"
        );
        // The outer executor left cleanly while unwinding: this thread runs block_on again,
        // with tasks and timers.
        let n = block_on(async {
            let t = spawn_local(async { 20 });
            aplex::time::sleep(Duration::from_millis(1)).await;
            t.await + 1
        });
        assert_eq!(n, 21);
    });
}

fn block_on_inside_a_pool_work_is_an_outcome_not_a_deadlock() {
    within("block_on in a pool work", || {
        let pool = ThreadPool::new(1);
        let outcomes = [
            pool.submit(|| block_on(async { 1 })).wait(),
            pool.spawn(|| async { block_on(async { 1 }) }).wait(),
        ];
        for outcome in outcomes {
            match outcome {
                Ok(1) => {}
                Err(Error::Panicked(message)) => {
                    assert!(message.contains("block_on"), "unclear message: {message}")
                }
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        // The worker survived the misuse.
        assert_eq!(pool.spawn(|| async { 2 }).wait(), Ok(2));
        assert_eq!(pool.submit(|| 3).wait(), Ok(3));
    });
}

fn spawn_local_outside_any_runtime_names_the_misuse() {
    within("spawn_local with no executor", || {
        let message = panic_message_of(|| spawn_local(async {}).detach());
        assert!(
            message.contains("spawn_local") && message.contains("outside"),
            "unclear message: {message}"
        );
        // Under a foreign executor there is no aplex executor either.
        let message = panic_message_of(|| run_foreign(async { spawn_local(async {}).detach() }));
        assert!(
            message.contains("spawn_local"),
            "unclear message: {message}"
        );
        // After a block_on ended, the thread has no running executor any more.
        block_on(async {});
        let message = panic_message_of(|| spawn_local(async {}).detach());
        assert!(
            message.contains("spawn_local"),
            "unclear message: {message}"
        );
    });
}

fn spawn_local_inside_a_plain_pool_closure_runs_or_says_why() {
    within("spawn_local in a plain closure", || {
        let pool = ThreadPool::new(1);
        let (tx, rx) = std::sync::mpsc::channel();
        let outcome = pool
            .submit(move || {
                spawn_local(async move {
                    aplex::time::sleep(Duration::from_millis(1)).await;
                    let _ = tx.send("ran");
                })
                .detach();
            })
            .wait();
        match outcome {
            // Accepted: then the detached task runs on the worker's executor.
            Ok(()) => assert_eq!(rx.recv_timeout(crate::HANG), Ok("ran")),
            Err(Error::Panicked(message)) => {
                assert!(
                    message.contains("spawn_local"),
                    "unclear message: {message}"
                )
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert_eq!(pool.submit(|| 1).wait(), Ok(1));
    });
}

// Returning a task out of its block_on, unawaited, is the point here.
#[allow(clippy::async_yields_async)]
fn local_task_awaited_after_its_executor_ended() {
    within("a LocalTask outliving its executor", || {
        let dropped = Rc::new(Cell::new(false));
        let unfinished = {
            let dropped = dropped.clone();
            block_on(async move {
                struct Flag(Rc<Cell<bool>>);
                impl Drop for Flag {
                    fn drop(&mut self) {
                        self.0.set(true);
                    }
                }
                let flag = Flag(dropped);
                spawn_local(async move {
                    let _flag = flag;
                    std::future::pending::<u32>().await
                })
            })
        };
        // Its executor dropped the future when block_on returned.
        assert!(
            dropped.get(),
            "the unfinished task's future was not dropped"
        );
        assert!(unfinished.is_finished());
        let message = panic_message_of(|| block_on(unfinished));
        assert!(
            message.contains("dropped") || message.contains("shut down"),
            "unclear message: {message}"
        );

        // A task that finished before its executor ended keeps its output, for any executor.
        let finished = block_on(async {
            let t = spawn_local(async { 7 });
            yield_now().await;
            t
        });
        assert!(finished.is_finished());
        assert_eq!(run_foreign(finished), 7);
        // And a cancel after the executor ended answers, without panicking.
        let t = block_on(async { spawn_local(std::future::pending::<u8>()) });
        assert_eq!(t.cancel(), None);
    });
}

fn dropped_local_task_runs_on_detached() {
    within("a detached LocalTask", || {
        let out = block_on(async {
            let (tx, rx) = aplex::sync::oneshot::channel();
            let t = spawn_local(async move {
                yield_now().await;
                aplex::time::sleep(Duration::from_millis(1)).await;
                let _ = tx.send(5);
            });
            drop(t);
            rx.await
        });
        assert_eq!(out, Ok(5));
    });
}

fn yield_loops_do_not_starve_timers_or_other_tasks() {
    within("yield loops", || {
        block_on(async {
            let stop = Rc::new(Cell::new(false));
            let spinners: Vec<_> = (0..3)
                .map(|_| {
                    let stop = stop.clone();
                    spawn_local(async move {
                        let mut turns = 0u64;
                        while !stop.get() {
                            yield_now().await;
                            turns += 1;
                        }
                        turns
                    })
                })
                .collect();
            // A timer fires while three tasks yield forever.
            aplex::time::sleep(Duration::from_millis(2)).await;
            // Another task gets its turn; the main future yields until it did.
            let done = Rc::new(Cell::new(false));
            let d = done.clone();
            spawn_local(async move { d.set(true) }).detach();
            while !done.get() {
                yield_now().await;
            }
            // A value from another thread reaches a task among the spinners.
            let (tx, rx) = aplex::sync::oneshot::channel();
            std::thread::spawn(move || tx.send(9));
            assert_eq!(rx.await, Ok(9));
            stop.set(true);
            for s in spinners {
                assert!(s.await > 0);
            }
        });
    });
}

/// Wakes itself on every poll until `stop`, never completing before.
async fn wake_self_until(stop: Arc<AtomicBool>) -> &'static str {
    poll_fn(|cx| {
        if stop.load(Ordering::SeqCst) {
            return Poll::Ready("stopped");
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}

fn a_self_waking_work_does_not_starve_its_worker() {
    within("a self-waking work", || {
        let pool = ThreadPool::builder()
            .workers(1)
            .max_works_per_worker(8)
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let spinner = pool.spawn(move || wake_self_until(s));
        let never = Arc::new(AtomicBool::new(false));
        let n = never.clone();
        let cancelled = pool.spawn(move || wake_self_until(n));
        // Another async work, a timer and a plain closure all run on the same worker.
        assert_eq!(pool.spawn(|| async { 1 }).wait(), Ok(1));
        let slept = pool.spawn(|| async {
            aplex::time::sleep(Duration::from_millis(2)).await;
            2
        });
        assert_eq!(slept.wait(), Ok(2));
        assert_eq!(pool.submit(|| 3).wait(), Ok(3));
        // A cancel reaches a work that never parks.
        assert!(cancelled.cancel());
        assert_eq!(cancelled.wait(), Err(Error::Cancelled));
        stop.store(true, Ordering::SeqCst);
        assert_eq!(spinner.wait(), Ok("stopped"));
    });
}

fn wakers_fired_after_their_executor_is_gone() {
    within("stale wakers", || {
        let stash: Arc<Mutex<Vec<Waker>>> = Arc::default();
        // The wakers of a task and of a block_on future, on a thread that then ends.
        let s = stash.clone();
        std::thread::spawn(move || {
            block_on(async move {
                let s2 = s.clone();
                let t = spawn_local(poll_fn(move |cx| {
                    s2.lock().unwrap().push(cx.waker().clone());
                    Poll::<()>::Pending
                }));
                yield_now().await;
                t.detach();
                poll_fn(|cx| {
                    s.lock().unwrap().push(cx.waker().clone());
                    Poll::Ready(())
                })
                .await;
            })
        })
        .join()
        .unwrap();
        let wakers = std::mem::take(&mut *stash.lock().unwrap());
        assert_eq!(wakers.len(), 2);
        for w in &wakers {
            w.wake_by_ref();
        }
        drop(wakers);

        // Stale wakers of an earlier block_on, fired from another thread while a later
        // block_on on the same thread runs tasks at the same slab indices.
        let s = stash.clone();
        block_on(async move {
            let s2 = s.clone();
            spawn_local(poll_fn(move |cx| {
                s2.lock().unwrap().push(cx.waker().clone());
                Poll::<()>::Pending
            }))
            .detach();
            yield_now().await;
        });
        let stale = std::mem::take(&mut *stash.lock().unwrap());
        assert_eq!(stale.len(), 1);
        let total = block_on(async move {
            let tasks: Vec<_> = (0..4)
                .map(|i| {
                    spawn_local(async move {
                        yield_now().await;
                        i
                    })
                })
                .collect();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    stale[0].wake_by_ref();
                }
            })
            .join()
            .unwrap();
            let mut total = 0;
            for t in tasks {
                total += t.await;
            }
            total
        });
        assert_eq!(total, 6);
    });
}

fn a_waker_cloned_to_a_thousand_threads_waking_at_once() {
    const THREADS: usize = 1000;
    within("a thousand wakers", || {
        let woken = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads = Arc::new(Mutex::new(Vec::new()));
        block_on(async {
            // The main future's waker and a spawned task's waker, half the threads each.
            let task_woken = Arc::new(AtomicUsize::new(0));
            let tw = task_woken.clone();
            let b = barrier.clone();
            let t = threads.clone();
            let mut spawned = false;
            let task = spawn_local(poll_fn(move |cx| {
                if tw.load(Ordering::SeqCst) == THREADS / 2 {
                    return Poll::Ready(());
                }
                if !spawned {
                    spawned = true;
                    let waking = spawn_wakers(cx.waker(), &tw, &b, THREADS / 2);
                    t.lock().unwrap().extend(waking);
                }
                Poll::Pending
            }));
            let mut spawned = false;
            poll_fn(|cx| {
                if woken.load(Ordering::SeqCst) == THREADS / 2 {
                    return Poll::Ready(());
                }
                if !spawned {
                    spawned = true;
                    let waking = spawn_wakers(cx.waker(), &woken, &barrier, THREADS / 2);
                    threads.lock().unwrap().extend(waking);
                }
                Poll::Pending
            })
            .await;
            task.await;
        });
        // Ended before the next case counts this process's threads.
        for t in std::mem::take(&mut *threads.lock().unwrap()) {
            t.join().expect("a waking thread");
        }
    });
}

/// Starts `n` threads that meet at `barrier`, then count and wake `waker` at once.
fn spawn_wakers(
    waker: &Waker,
    count: &Arc<AtomicUsize>,
    barrier: &Arc<Barrier>,
    n: usize,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let (waker, count, barrier) = (waker.clone(), count.clone(), barrier.clone());
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    barrier.wait();
                    count.fetch_add(1, Ordering::SeqCst);
                    waker.wake();
                })
                .expect("a waking thread")
        })
        .collect()
}
