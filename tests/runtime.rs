//! The single-thread engine: spawning, waking, cancelling, panics, nesting.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use aplex::{block_on, spawn_local, yield_now};

mod expected_panics;
use expected_panics::expect_panics;

/// How long anything may take before a test fails instead of hanging: only a hang or a lost
/// wake-up reaches it, however busy the machine.
const BOUND: Duration = Duration::from_secs(20);

/// A slot another thread fills, awaited by a task (the test's own tiny channel).
#[derive(Default)]
struct Slot(Mutex<(Option<u64>, Option<Waker>)>);

impl Slot {
    fn fill(&self, v: u64) {
        let w = {
            let mut s = self.0.lock().unwrap();
            s.0 = Some(v);
            s.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

struct Take(Arc<Slot>);

impl Future for Take {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let mut s = self.0 .0.lock().unwrap();
        match s.0 {
            Some(v) => Poll::Ready(v),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// User + system CPU time of one thread (`/proc/<pid>/task/<tid>`), in clock ticks.
fn thread_cpu_ticks(task_dir: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{task_dir}/stat")).expect("procfs");
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are 11 and 12 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

// Miri cannot emulate this one: it reads the executor thread's CPU time from /proc, which
// Miri's interpreted threads do not have (and 100 000 tasks would take it hours).
#[test]
#[cfg_attr(miri, ignore)]
fn hundred_thousand_tasks_woken_from_another_thread_complete_and_the_executor_parks() {
    const N: usize = 100_000;
    let slots: Vec<Arc<Slot>> = (0..N).map(|_| Arc::new(Slot::default())).collect();
    let filler_slots = slots.clone();
    let (parked_tx, parked_rx) = std::sync::mpsc::channel::<String>();
    // The filler measures the executor thread's CPU over 300 ms in which every task waits,
    // then fills the slots from its own thread.
    let filler = std::thread::spawn(move || {
        let executor = parked_rx.recv().unwrap();
        let before = thread_cpu_ticks(&executor);
        std::thread::sleep(Duration::from_millis(300));
        let idle_ticks = thread_cpu_ticks(&executor) - before;
        for (i, s) in filler_slots.iter().enumerate() {
            s.fill(i as u64);
        }
        idle_ticks
    });
    let sum = block_on(async {
        let tasks: Vec<_> = slots.iter().map(|s| spawn_local(Take(s.clone()))).collect();
        // Let every task run once and wait on its slot, then say where to look.
        yield_now().await;
        let me = std::fs::read_link("/proc/thread-self").expect("procfs");
        parked_tx.send(me.to_string_lossy().into_owned()).unwrap();
        let mut sum = 0u64;
        for t in tasks {
            sum += t.await;
        }
        sum
    });
    let idle_ticks = filler.join().unwrap();
    assert_eq!(sum, (N as u64) * (N as u64 - 1) / 2);
    // 300 ms of waiting: a busy-polling executor burns ~30 ticks; a parked one ~0.
    assert!(
        idle_ticks <= 3,
        "the executor used {idle_ticks} ticks of CPU while waiting"
    );
}

#[test]
fn a_panicking_task_does_not_stop_the_executor_and_its_awaiter_gets_the_panic() {
    expect_panics(&["boom"]);
    block_on(async {
        let bad = spawn_local(async { panic!("boom in a task") });
        let good = spawn_local(async { 7 });
        assert_eq!(good.await, 7);
        // Await the panicking task inside a task of its own: that task panics in turn.
        let observer = spawn_local(bad);
        yield_now().await;
        yield_now().await;
        assert!(observer.is_finished());
        let after = spawn_local(async { "still running" });
        assert_eq!(after.await, "still running");
    });
    let result = std::panic::catch_unwind(|| {
        block_on(async { spawn_local(async { panic!("boom") }).await })
    });
    let payload = result.expect_err("awaiting a panicked task panics");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
}

#[test]
fn a_panic_in_a_detached_task_is_contained() {
    expect_panics(&["detached panic"]);
    let n = block_on(async {
        for _ in 0..100 {
            spawn_local(async { panic!("detached panic") }).detach();
        }
        yield_now().await;
        spawn_local(async { 1 }).await
    });
    assert_eq!(n, 1);
}

#[test]
fn cancel_drops_the_future_at_its_next_suspension() {
    block_on(async {
        let after_await = Rc::new(Cell::new(false));
        let flag = after_await.clone();
        let task = spawn_local(async move {
            aplex::time::sleep(Duration::from_millis(20)).await;
            flag.set(true);
        });
        yield_now().await; // the task is now parked on its sleep
        assert_eq!(task.cancel(), None);
        aplex::time::sleep(Duration::from_millis(40)).await;
        assert!(!after_await.get(), "a cancelled task ran past its await");
        assert_eq!(
            aplex::time::pending_timers(),
            0,
            "the cancelled sleep left its timer"
        );
    });
}

#[test]
fn cancel_after_finish_returns_the_output() {
    block_on(async {
        let task = spawn_local(async { 5 });
        yield_now().await;
        assert!(task.is_finished());
        assert_eq!(task.cancel(), Some(5));
    });
}

#[test]
fn cancel_before_first_poll_never_runs_the_future() {
    block_on(async {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let task = spawn_local(async move { r.set(true) });
        assert_eq!(task.cancel(), None);
        yield_now().await;
        assert!(!ran.get());
    });
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    match payload.downcast_ref::<&str>() {
        Some(s) => s.to_string(),
        None => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    }
}

/// Counts drops, to see that futures are released.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn tasks_unfinished_when_block_on_returns_are_dropped() {
    let drops = Arc::new(AtomicUsize::new(0));
    block_on(async {
        for _ in 0..10 {
            let guard = DropCounter(drops.clone());
            spawn_local(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            })
            .detach();
        }
        yield_now().await;
        assert_eq!(drops.load(Ordering::SeqCst), 0);
    });
    assert_eq!(drops.load(Ordering::SeqCst), 10);
    // The thread's executor is reused and starts empty.
    let n = block_on(async { spawn_local(async { 3 }).await });
    assert_eq!(n, 3);
}

#[test]
fn a_detached_task_runs_to_completion() {
    block_on(async {
        let done = Rc::new(aplex::sync::Event::new());
        let d = done.clone();
        spawn_local(async move {
            aplex::time::sleep(Duration::from_millis(5)).await;
            d.set();
        })
        .detach();
        // Nobody awaits the detached task: it ends on its own, which this waits for (bounded).
        let ended = aplex::time::timeout(BOUND, done.wait()).await;
        assert!(ended.is_ok(), "the detached task never ran to its end");
    });
}

#[test]
fn nested_block_on_panics_with_a_message() {
    expect_panics(&["aplex::block_on was called inside another block_on"]);
    let result = std::panic::catch_unwind(|| block_on(async { block_on(async {}) }));
    let payload = result.expect_err("nested block_on must panic");
    let msg = panic_text(&*payload);
    assert!(
        msg.contains("inside another block_on"),
        "message was {msg:?}"
    );
    // The thread is usable again afterwards.
    assert_eq!(block_on(async { 1 }), 1);
}

#[test]
fn spawn_local_outside_a_runtime_panics_with_a_message() {
    expect_panics(&["aplex::spawn_local was called outside of aplex::block_on"]);
    let result = std::panic::catch_unwind(|| spawn_local(async {}).detach());
    let payload = result.expect_err("spawn_local needs an executor");
    let msg = panic_text(&*payload);
    assert!(
        msg.contains("outside of aplex::block_on"),
        "message was {msg:?}"
    );
}

#[test]
fn the_main_future_is_woken_from_another_thread() {
    let slot = Arc::new(Slot::default());
    let s = slot.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        s.fill(99);
    });
    assert_eq!(block_on(Take(slot)), 99);
    t.join().unwrap();
}

#[test]
fn yield_now_runs_tasks_in_fifo_order() {
    let order = Rc::new(RefCell::new(Vec::new()));
    block_on(async {
        for i in 0..3 {
            let order = order.clone();
            spawn_local(async move {
                order.borrow_mut().push(i);
                yield_now().await;
                order.borrow_mut().push(i + 10);
            })
            .detach();
        }
        while order.borrow().len() < 6 {
            yield_now().await;
        }
    });
    assert_eq!(*order.borrow(), vec![0, 1, 2, 10, 11, 12]);
}

#[test]
fn tasks_spawn_tasks() {
    let total = block_on(async {
        let outer: Vec<_> = (0..10u64)
            .map(|i| {
                spawn_local(async move {
                    let inner: Vec<_> = (0..10u64)
                        .map(|j| spawn_local(async move { i * 10 + j }))
                        .collect();
                    let mut s = 0;
                    for t in inner {
                        s += t.await;
                    }
                    s
                })
            })
            .collect();
        let mut s = 0;
        for t in outer {
            s += t.await;
        }
        s
    });
    assert_eq!(total, (0..100).sum::<u64>());
}

#[test]
fn block_on_runs_on_many_threads_at_once() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                block_on(async move {
                    aplex::time::sleep(Duration::from_millis(10)).await;
                    spawn_local(async move { i * 2 }).await
                })
            })
        })
        .collect();
    let results: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results, vec![0, 2, 4, 6]);
}

#[test]
fn a_waker_outliving_its_task_is_harmless() {
    let kept: Arc<Mutex<Option<Waker>>> = Arc::default();
    let k = kept.clone();
    block_on(async move {
        struct Grab(Arc<Mutex<Option<Waker>>>, bool);
        impl Future for Grab {
            type Output = ();
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                if self.1 {
                    return Poll::Ready(());
                }
                self.1 = true;
                *self.0.lock().unwrap() = Some(cx.waker().clone());
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
        spawn_local(Grab(k, false)).await;
    });
    let waker = kept.lock().unwrap().take().unwrap();
    // Waking a finished task of a finished block_on, from another thread, does nothing.
    std::thread::spawn(move || waker.wake()).join().unwrap();
    let start = Instant::now();
    assert_eq!(block_on(async { spawn_local(async { 1 }).await }), 1);
    assert!(start.elapsed() < BOUND);
}
