//! Drops and wakes at awkward moments on the thread pool: a handle dropped inside its own
//! waker, a waker that panics when the worker wakes it, a cancelled future whose `Drop`
//! submits to the pool being shut down, and a value whose `Drop` waits on the pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Wake, Waker};
use std::time::Duration;

use aplex::sync::Event;
use aplex::{Error, Handle, ThreadPool};

use super::time_cases::PanickingWaker;
use super::{case, eventually, poll_with, within, Case, HANG};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "pool_handle_dropped_inside_its_own_waker",
            handle_dropped_inside_its_own_waker,
        ),
        case(
            "pool_a_handle_waker_that_panics_does_not_kill_the_worker",
            a_handle_waker_that_panics_does_not_kill_the_worker,
        ),
        case(
            "pool_a_cancelled_future_whose_drop_submits_to_the_pool_shutting_down",
            a_cancelled_future_whose_drop_submits_to_the_pool_shutting_down,
        ),
        case(
            "pool_a_value_whose_drop_waits_on_the_pool",
            a_value_whose_drop_waits_on_the_pool,
        ),
        case(
            "pool_map_polled_by_a_waker_that_panics",
            map_polled_by_a_waker_that_panics,
        ),
    ]
}

/// A waker that, when woken, drops the handle that registered it.
struct DropsHandle {
    handle: Mutex<Option<Handle<u32>>>,
    wakes: AtomicUsize,
}

impl Wake for DropsHandle {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        drop(self.handle.lock().unwrap().take());
    }
}

/// A handle polled once with a waker that drops that very handle when woken: the work's end
/// wakes it, the drop inside the wake neither deadlocks nor panics, and the worker goes on.
fn handle_dropped_inside_its_own_waker() {
    within("a handle dropped in its waker", || {
        let pool = ThreadPool::new(1);
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let handle = pool.spawn(move || async move {
            g.wait().await;
            3
        });
        let waker_state = Arc::new(DropsHandle {
            handle: Mutex::new(Some(handle)),
            wakes: AtomicUsize::new(0),
        });
        let waker = Waker::from(Arc::clone(&waker_state));
        {
            let mut slot = waker_state.handle.lock().unwrap();
            let h = slot.as_mut().unwrap();
            assert!(poll_with(std::pin::Pin::new(h), &waker).is_pending());
        }
        gate.set();
        eventually("the waker woken", || {
            waker_state.wakes.load(Ordering::SeqCst) > 0
        });
        assert!(waker_state.handle.lock().unwrap().is_none());
        assert_eq!(pool.submit(|| 4).wait_timeout_or_hang(), Ok(4));
    });
}

/// A handle polled with a waker that panics when woken; the worker that ends the work wakes
/// it. The panic stays with the waker: the one worker lives on and runs the next work.
fn a_handle_waker_that_panics_does_not_kill_the_worker() {
    within("a panicking handle waker", || {
        let pool = ThreadPool::new(1);
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let mut handle = pool.spawn(move || async move {
            g.wait().await;
            1
        });
        let bad = Arc::new(PanickingWaker::default());
        let waker = Waker::from(Arc::clone(&bad));
        assert!(poll_with(std::pin::Pin::new(&mut handle), &waker).is_pending());
        gate.set();
        eventually("the panicking waker woken", || {
            bad.wakes.load(Ordering::SeqCst) > 0
        });
        assert_eq!(handle.wait_timeout(HANG), Ok(1));
        assert_eq!(pool.submit(|| 2).wait_timeout_or_hang(), Ok(2));
        let plain = pool.submit(|| 5);
        assert_eq!(plain.wait_timeout_or_hang(), Ok(5));
    });
}

/// A future whose `Drop` submits to its own pool, dropped by `shutdown_now` while it waits:
/// the submission made from the drop resolves `ShutDown` (it is not run, does not hang, does
/// not panic), and the cancelled work is `Cancelled`.
fn a_cancelled_future_whose_drop_submits_to_the_pool_shutting_down() {
    within("a drop that submits during shutdown", || {
        struct SubmitsOnDrop {
            pool: Arc<ThreadPool>,
            outcome: Arc<Mutex<Option<Result<u8, Error>>>>,
        }
        impl Drop for SubmitsOnDrop {
            fn drop(&mut self) {
                let late = self.pool.submit(|| 1u8);
                // Not awaited here: a worker must not wait for its own pool.
                let outcome = Arc::clone(&self.outcome);
                std::thread::spawn(move || {
                    *outcome.lock().unwrap() = Some(late.wait_timeout_or_hang());
                });
            }
        }
        let pool = Arc::new(ThreadPool::new(2));
        let outcome = Arc::new(Mutex::new(None));
        let started = Arc::new(Event::new());
        let (p, o, s) = (
            Arc::clone(&pool),
            Arc::clone(&outcome),
            Arc::clone(&started),
        );
        let work = pool.spawn(move || async move {
            let _guard = SubmitsOnDrop {
                pool: p,
                outcome: o,
            };
            s.set();
            std::future::pending::<()>().await;
        });
        started.wait_blocking();
        pool.shutdown_now();
        assert_eq!(work.wait_timeout_or_hang(), Err(Error::Cancelled));
        eventually("the late submission resolved", || {
            outcome.lock().unwrap().is_some()
        });
        let late = outcome.lock().unwrap().take().unwrap();
        assert!(
            matches!(late, Err(Error::ShutDown) | Ok(1)),
            "the late submission: {late:?}"
        );
    });
}

/// A work's value whose `Drop` submits to the same pool and waits for it; the handle is
/// dropped unread, so the value drops wherever the pool drops it (on a worker, at the work's
/// end). With a second worker free the wait ends; a read value drops on the reader's thread;
/// the pool's shutdown afterwards hangs nowhere.
fn a_value_whose_drop_waits_on_the_pool() {
    within("a value whose drop waits on the pool", || {
        struct WaitsOnDrop {
            pool: Arc<ThreadPool>,
            ran: Arc<AtomicUsize>,
        }
        impl Drop for WaitsOnDrop {
            fn drop(&mut self) {
                let ran = Arc::clone(&self.ran);
                let inner = self.pool.submit(move || ran.fetch_add(1, Ordering::SeqCst));
                let _ = inner.wait_timeout_or_hang();
            }
        }
        let pool = Arc::new(ThreadPool::new(2));
        let ran = Arc::new(AtomicUsize::new(0));
        let (p, r) = (Arc::clone(&pool), Arc::clone(&ran));
        drop(pool.submit(move || WaitsOnDrop { pool: p, ran: r }));
        eventually("the unread value's drop ran its work", || {
            ran.load(Ordering::SeqCst) == 1
        });
        let (p, r) = (Arc::clone(&pool), Arc::clone(&ran));
        let read = pool.submit(move || WaitsOnDrop { pool: p, ran: r });
        drop(read.wait_timeout_or_hang());
        assert_eq!(ran.load(Ordering::SeqCst), 2);
        drop(pool);
    });
}

/// A map polled once by a waker that panics when woken, then read to the end on this
/// thread: every item arrives in order, and the workers live on.
fn map_polled_by_a_waker_that_panics() {
    within("a map with a panicking waker", || {
        let pool = ThreadPool::new(2);
        let gate = Arc::new(Event::new());
        let g = Arc::clone(&gate);
        let mut map = pool.map(
            move |x: u32| {
                g.wait_blocking();
                x + 1
            },
            0..8,
        );
        let bad = Arc::new(PanickingWaker::default());
        let waker = Waker::from(Arc::clone(&bad));
        {
            let mut next = std::pin::pin!(map.next());
            assert!(poll_with(next.as_mut(), &waker).is_pending());
        }
        gate.set();
        let got: Vec<_> = map.map(Result::unwrap).collect();
        assert_eq!(got, (1..9).collect::<Vec<_>>());
        assert_eq!(pool.submit(|| 9).wait_timeout_or_hang(), Ok(9));
    });
}

/// Waits for a handle with the hang bound.
trait WaitOrHang<T> {
    fn wait_timeout_or_hang(self) -> Result<T, Error>;
}

impl<T> WaitOrHang<T> for Handle<T> {
    fn wait_timeout_or_hang(mut self) -> Result<T, Error> {
        let out = self.wait_timeout(HANG + Duration::from_secs(1));
        assert_ne!(out.as_ref().err(), Some(&Error::TimedOut), "hung");
        out
    }
}
