//! The cell one submitted work lives in: its state, its result slot, and the job to run.
//!
//! This file holds the completion's state machine, shared by every kind of work; the jobs
//! built on it live beside it: `plain.rs` (a closure) and `async_job.rs` (a closure that returns
//! a future, run as a local task on the worker).
//!
//! # Ownership rules
//!
//! A cell is shared (`Arc`) by the caller's [`Handle`](super::Handle) and, until the work starts,
//! by a worker's queue. The outcome is decided by one compare-and-swap on `state`, so exactly one
//! of "finished with a value or panic", "cancelled" and "failed" wins:
//!
//! ```text
//! QUEUED ──start──▶ RUNNING (async: cancellable) ──finish──▶ DONE
//!    │             BLOCKING (plain closure: not) ──finish──▶ DONE
//!    └──cancel / fail──▶ DONE (with the error)
//!                       RUNNING ──request_cancel──▶ RUNNING|CANCELLED ──future dropped──▶ DONE|CANCELLED
//! ```
//!
//! The `CANCELLED` bit is set by the same swap that decides a `Cancelled` outcome and stays set
//! (through `TAKEN`), so `cancel()` can report the outcome however often it is asked. A local
//! async work that is cancelled while it runs is decided at once (`RUNNING|CANCELLED`) but its
//! outcome is published only after its task has dropped the future: a handle that reports
//! `Cancelled` never races with the work's destructors.
//!
//! Whoever wins the swap to `DONE` writes the result into `slot` and wakes the waiter. The
//! loser writes nothing: a value that lost to a cancel is dropped by the worker. The job closure
//! (`Send`) is taken by whoever starts or cancels the work; the future it returns lives on the
//! worker thread only, in a local task that never leaves it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

mod async_job;
mod plain;

pub(crate) use async_job::AsyncJob;
pub(crate) use plain::PlainJob;

use super::worker::Room;
use crate::runtime::reactor::lock;
use crate::Error;

/// Waiting in a worker's queue.
const QUEUED: u8 = 0;
/// An async work whose future runs on a worker: cancel drops it.
const RUNNING: u8 = 1;
/// A plain closure running on a worker: it cannot be interrupted.
const BLOCKING: u8 = 2;
/// The outcome is decided (and written, or about to be, by the winner of the swap).
const DONE: u8 = 3;
/// The handle took the outcome (set under the slot's lock, only from `DONE`).
const TAKEN: u8 = 4;
/// The low bits above: where the work is.
const PHASE: u8 = 0b111;
/// Set with the decision when the outcome is `Cancelled`; never cleared. With `RUNNING`: the
/// cancel is decided, and the task has yet to drop the future and publish it.
const CANCELLED: u8 = 0b1000;

/// What a cancel request did.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// This call decided the cancel of a work that had not started: its closure can go.
    Queued,
    /// This call decided the cancel of a running work: whoever runs it must stop it (wake the
    /// local task, send a cancel frame).
    Running,
    /// The outcome was already `Cancelled` (or is being made so).
    Already,
    /// The work has another outcome, or is a running plain closure: nothing to do.
    TooLate,
}

impl Cancel {
    /// Whether the work's outcome is `Cancelled` after this request.
    pub(crate) fn cancelled(self) -> bool {
        self != Cancel::TooLate
    }
}

/// What waits for an outcome to be published.
type Deferred = Vec<Box<dyn FnOnce()>>;

thread_local! {
    /// While a work's future is dropped ahead of its outcome's publishing: what has to wait for
    /// the publishing (see [`after_publish`]).
    static AFTER_PUBLISH: RefCell<Option<Deferred>> = const { RefCell::new(None) };
}

/// Runs `f` once the outcome of the work whose future is being dropped on this thread is
/// published — at once if no such drop is under way. For code inside a work's future (a drop
/// guard) that must not run before the work's handle can see its outcome.
#[cfg_attr(not(feature = "elastic"), allow(dead_code))] // used by the elastic pool
pub(crate) fn after_publish(f: impl FnOnce() + 'static) {
    let mut f: Option<Box<dyn FnOnce()>> = Some(Box::new(f));
    // (During thread-local teardown the list is gone: nothing can be deferred, run it now.)
    let _ = AFTER_PUBLISH.try_with(|later| {
        if let Some(list) = later.borrow_mut().as_mut() {
            list.extend(f.take());
        }
    });
    if let Some(f) = f {
        f();
    }
}

/// The state a decided outcome moves to: `DONE`, marked when it is a cancel.
fn done_state<T>(result: &Result<T, Error>) -> u8 {
    match result {
        Err(Error::Cancelled) => DONE | CANCELLED,
        _ => DONE,
    }
}

/// The result slot, the waker around it, and what the job keeps under the same lock (`extra`:
/// its closure until it starts, say).
struct Slot<T, X: ?Sized> {
    /// The outcome, its error boxed: an `Error` is 32 bytes inline and most outcomes are
    /// values, so the box (made only for an error) keeps every work's cell 16 bytes smaller —
    /// memory that crosses cores at every work.
    result: Option<Result<T, Box<Error>>>,
    /// The caller waiting on the handle.
    waiter: Option<Waker>,
    /// Last, so that a `Completion<T, X>` can be seen as a `Completion<T, dyn Send>`.
    extra: X,
}

/// State and result of one work, shared by its handle and its worker, with the job's own
/// `extra` state under the same lock (one lock per work, one allocation with the job).
pub(crate) struct Completion<T, X: ?Sized = ()> {
    state: AtomicU8,
    /// The handle cancels the work when it is dropped (kept here: it fits in padding).
    cancel_on_drop: AtomicBool,
    /// Which queue counts the work as waiting (kept here: it fits in padding too).
    queue_mark: QueueMark,
    slot: Mutex<Slot<T, X>>,
}

impl<T> Completion<T> {
    #[cfg_attr(not(feature = "process"), allow(dead_code))] // used by the process pool
    pub(crate) fn new() -> Completion<T> {
        Completion::with_extra(())
    }
}

impl<T, X> Completion<T, X> {
    /// A completion whose slot also holds `extra`.
    pub(crate) fn with_extra(extra: X) -> Completion<T, X> {
        Completion {
            state: AtomicU8::new(QUEUED),
            cancel_on_drop: AtomicBool::new(false),
            queue_mark: QueueMark(AtomicU32::new(0)),
            slot: Mutex::new(Slot {
                result: None,
                waiter: None,
                extra,
            }),
        }
    }
}

impl<T, X: ?Sized> Completion<T, X> {
    /// Runs `f` on the job's extra state, under the slot's lock (call no user code in `f`).
    pub(crate) fn extra<R>(&self, f: impl FnOnce(&mut X) -> R) -> R {
        f(&mut lock(&self.slot).extra)
    }

    fn state(&self) -> u8 {
        // ORDERING: Acquire pairs with the AcqRel swaps: whoever sees a decided state also sees
        // what the decider did before it.
        self.state.load(Ordering::Acquire)
    }

    fn swap_state(&self, from: u8, to: u8) -> bool {
        // ORDERING: AcqRel: the winner's later writes to `slot` are published through the
        // mutex; the swap itself only has to be a single total decision.
        self.state
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Marks a queued work as started: `cancellable` (an async work, whose cancel is honoured
    /// while it runs) or not (a plain closure). False if it was cancelled or failed first.
    pub(crate) fn start(&self, cancellable: bool) -> bool {
        self.swap_state(QUEUED, if cancellable { RUNNING } else { BLOCKING })
    }

    /// Writes the outcome and wakes the waiter; the caller has won the swap to `DONE`.
    fn publish(&self, result: Result<T, Error>) {
        let waiter = {
            let mut slot = lock(&self.slot);
            slot.result = Some(result.map_err(Box::new));
            slot.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// Ends a started work with its result — or with `Cancelled` if a cancel was decided while
    /// it ran (the caller has dropped the work's future by now). Returns false (and drops the
    /// result) if the outcome was already published.
    pub(crate) fn finish(&self, result: Result<T, Error>) -> bool {
        loop {
            match self.state() {
                from @ (RUNNING | BLOCKING) => {
                    if self.swap_state(from, done_state(&result)) {
                        self.publish(result);
                        return true;
                    }
                }
                from if from == RUNNING | CANCELLED => {
                    if self.swap_state(from, DONE | CANCELLED) {
                        self.publish(Err(Error::Cancelled));
                        return true;
                    }
                }
                _ => return false,
            }
        }
    }

    /// Cancels a queued work, or a running one at once (a remote work: its worker is told
    /// separately; nothing local has to be dropped first).
    pub(crate) fn cancel(&self) -> Cancel {
        self.cancel_from(DONE | CANCELLED)
    }

    /// Cancels a queued work at once; for a running local async work, decides the cancel and
    /// leaves the publishing to its task, which drops the future first (`Cancel::Running`:
    /// wake the task).
    pub(crate) fn request_cancel(&self) -> Cancel {
        self.cancel_from(RUNNING | CANCELLED)
    }

    /// The cancel transitions; a running work moves to `running_to`.
    fn cancel_from(&self, running_to: u8) -> Cancel {
        loop {
            let state = self.state();
            if state & CANCELLED != 0 {
                return Cancel::Already;
            }
            match state {
                QUEUED => {
                    if self.swap_state(QUEUED, DONE | CANCELLED) {
                        self.publish(Err(Error::Cancelled));
                        return Cancel::Queued;
                    }
                }
                RUNNING => {
                    if self.swap_state(RUNNING, running_to) {
                        if running_to & PHASE == DONE {
                            self.publish(Err(Error::Cancelled));
                        }
                        return Cancel::Running;
                    }
                }
                _ => return Cancel::TooLate,
            }
        }
    }

    /// Ends a work that has not finished with `error`, whatever its state (pool shut down, worker
    /// lost). True if this call decided the outcome. A local cancel already decided is left to
    /// the task that drops the future.
    pub(crate) fn fail(&self, error: Error) -> bool {
        let to = if matches!(error, Error::Cancelled) {
            DONE | CANCELLED
        } else {
            DONE
        };
        for from in [QUEUED, RUNNING, BLOCKING] {
            if self.swap_state(from, to) {
                self.publish(Err(error));
                return true;
            }
        }
        false
    }

    /// Where the work is counted as waiting, while it is.
    pub(crate) fn queue_mark(&self) -> &QueueMark {
        &self.queue_mark
    }

    /// Makes dropping the handle cancel the work.
    pub(crate) fn set_cancel_on_drop(&self) {
        self.cancel_on_drop.store(true, Ordering::Relaxed);
    }

    /// Whether dropping the handle cancels the work.
    pub(crate) fn cancels_on_drop(&self) -> bool {
        self.cancel_on_drop.load(Ordering::Relaxed)
    }

    /// True once the outcome is published or about to be (the handle will not wait long).
    pub(crate) fn is_done(&self) -> bool {
        self.state() & PHASE >= DONE
    }

    /// True once the outcome is decided to be `Cancelled` (even while the work's future is
    /// still being dropped).
    #[cfg_attr(not(feature = "process"), allow(dead_code))] // used by the process pool
    pub(crate) fn is_cancelled(&self) -> bool {
        self.state() & CANCELLED != 0
    }

    /// True once a cancel or another outcome is decided: a running task should stop.
    fn is_decided(&self) -> bool {
        self.state() & (PHASE | CANCELLED) >= DONE
    }

    /// Takes the outcome, or registers `waker` to hear when it comes.
    pub(crate) fn poll_result(&self, waker: &Waker) -> Poll<Result<T, Error>> {
        let mut slot = lock(&self.slot);
        if let Some(result) = slot.result.take() {
            // ORDERING: Relaxed: only this lock's holders read TAKEN, and nothing swaps from
            // DONE, so this store cannot undo a decision. The CANCELLED bit is kept.
            let state = self.state.load(Ordering::Relaxed);
            self.state
                .store(TAKEN | (state & CANCELLED), Ordering::Relaxed);
            return Poll::Ready(result.map_err(|e| *e));
        }
        assert!(
            self.state.load(Ordering::Relaxed) & PHASE != TAKEN,
            "aplex::Handle polled after it returned its result"
        );
        match &slot.waiter {
            Some(w) if w.will_wake(waker) => {}
            _ => slot.waiter = Some(waker.clone()),
        }
        Poll::Pending
    }
}

/// A queued work as a worker sees it, whatever its types.
pub(crate) trait Job: Send + Sync {
    /// Starts the work on the worker thread: a plain closure runs to the end here; an async
    /// work's closure is called here and its future is spawned as a local task.
    fn start(self: Arc<Self>, room: &Rc<Room>);
    /// Ends the work with `error` unless it already has an outcome, and drops the closure.
    fn fail(&self, error: Error);
    /// Where the work is counted as waiting, for a queue whose loads a cancel should lower at
    /// once (the thread pool's); `None` for a work no such queue holds.
    fn queue_mark(&self) -> Option<&QueueMark> {
        None
    }
    /// True for a plain closure: once started, it holds the worker's thread until it ends.
    fn holds_thread(&self) -> bool {
        false
    }
}

/// Which worker's queue counts a work as waiting, so that a cancel can take the work out of
/// the loads at once, while the work itself stays in the queue until a worker pops it.
///
/// The count and the mark move together: the pool counts the work in worker `i`'s queue and
/// sets the mark to `i` before it queues the work; then exactly one side takes the mark, and
/// with it the duty to uncount: the worker that takes the work out of the queue (to start,
/// steal, fail or cancel it), or a cancel that decided `Cancelled` while the work waited. So a
/// count never drops twice or stays up for a work that has left (see [`QueuedCounts`]).
#[derive(Debug)]
pub(crate) struct QueueMark(
    /// `0`: counted nowhere; `i + 1`: counted in worker `i`'s queue (a pool has fewer than
    /// `u32::MAX` worker threads).
    AtomicU32,
);

impl QueueMark {
    /// Marks the work as counted in worker `worker`'s queue (before the work is queued).
    pub(crate) fn set(&self, worker: usize) {
        let mark = u32::try_from(worker + 1).unwrap_or(u32::MAX);
        // ORDERING: Relaxed: the queue's lock (for the worker that pops the work) and the
        // hand-over of the handle (for a cancel) publish it.
        self.0.store(mark, Ordering::Relaxed);
    }

    /// Takes the mark: the worker whose queue still counts the work, if this call is the one
    /// that must uncount it.
    pub(crate) fn take(&self) -> Option<usize> {
        // ORDERING: Relaxed: the swaps on one atomic are totally ordered; one of them wins.
        match self.0.swap(0, Ordering::Relaxed) {
            0 => None,
            mark => Some(mark as usize - 1),
        }
    }
}

/// A pool's counts of waiting works, per worker (the `queued` of its loads). (Unwind-safe, as
/// the pools that hold it are.)
pub(crate) trait QueuedCounts: Send + Sync + std::panic::RefUnwindSafe {
    /// A work counted as waiting in worker `worker`'s queue was cancelled there: uncount it.
    fn uncount(&self, worker: usize);
}

/// Uncounts a cancelled work that still waits in a queue (if it does: the worker that pops it
/// otherwise does).
pub(crate) fn uncount_cancelled<T>(
    completion: &Completion<T, dyn Send>,
    counts: &dyn QueuedCounts,
) {
    if let Some(worker) = completion.queue_mark().take() {
        counts.uncount(worker);
    }
}

/// How many of `jobs`, just taken out of a queue, were still counted as waiting there (their
/// marks are taken: no cancel will uncount them now).
pub(crate) fn take_marks(jobs: &[Arc<dyn Job>]) -> usize {
    // The jobs were written on other cores. A locked swap waits for its line before the next
    // one starts, so ask for every line first: the misses overlap instead of queueing up.
    for job in jobs {
        if let Some(mark) = job.queue_mark() {
            // ORDERING: Relaxed: only a read ahead of the swap below.
            std::hint::black_box(mark.0.load(Ordering::Relaxed));
        }
    }
    jobs.iter()
        .filter(|job| job.queue_mark().is_some_and(|mark| mark.take().is_some()))
        .count()
}

/// The outcome side of a work, as its handle sees it.
pub(crate) trait Outcome<T>: Send + Sync {
    fn completion(&self) -> &Completion<T, dyn Send>;
    /// Cancels (a queued work's closure is dropped at once). True exactly when the outcome is
    /// `Cancelled`, however often it is asked.
    fn cancel(&self) -> bool;
}

/// A bare completion is the outcome of a work that never ran anywhere (one that could not be
/// submitted): its handle resolves to the error it was failed with.
impl<T: Send> Outcome<T> for Completion<T> {
    fn completion(&self) -> &Completion<T, dyn Send> {
        self
    }

    fn cancel(&self) -> bool {
        Completion::cancel(self).cancelled()
    }
}
