//! The cell one submitted work lives in: its state, its result slot, and the job to run.
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
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::runtime::reactor::lock;
use crate::runtime::task::{contain, take_panic_message};
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
    result: Option<Result<T, Error>>,
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
            slot.result = Some(result);
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
            return Poll::Ready(result);
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

/// The completion of a plain closure, which waits in the slot until it starts.
impl<T, F> Completion<T, Option<F>> {
    /// Fails the work with `error` unless it has an outcome, and drops the closure (outside
    /// the lock).
    pub(crate) fn fail_closure(&self, error: Error) {
        self.fail(error);
        let closure = self.extra(Option::take);
        drop(closure);
    }

    /// Cancels the work; a queued one's closure is dropped at once (outside the lock).
    pub(crate) fn cancel_closure(&self) -> Cancel {
        let cancel = self.cancel();
        if cancel == Cancel::Queued {
            let closure = self.extra(Option::take);
            drop(closure);
        }
        cancel
    }
}

/// A queued work as a worker sees it, whatever its types.
pub(crate) trait Job: Send + Sync {
    /// Starts the work on the worker thread: a plain closure runs to the end here; an async
    /// work's closure is called here and its future is spawned as a local task.
    fn start(self: Arc<Self>, room: &Rc<super::worker::Room>);
    /// Ends the work with `error` unless it already has an outcome, and drops the closure.
    fn fail(&self, error: Error);
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

/// A plain closure `FnOnce() -> T`.
pub(crate) struct PlainJob<F, T> {
    /// The closure waits in the completion's slot until the work starts (or is cancelled).
    completion: Completion<T, Option<F>>,
}

impl<F, T> PlainJob<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    pub(crate) fn new(closure: F) -> Arc<PlainJob<F, T>> {
        Arc::new(PlainJob {
            completion: Completion::with_extra(Some(closure)),
        })
    }
}

impl<F, T> Job for PlainJob<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn start(self: Arc<Self>, room: &Rc<super::worker::Room>) {
        // Nobody else holds the work (its handle was dropped, not cancelled): nobody can see
        // its outcome or cancel it any more. Take the closure without the state swap, the lock
        // and the publishing, and free the work before its closure runs.
        let this = match Arc::try_unwrap(self) {
            Ok(job) => return job.run_unobserved(room),
            Err(shared) => shared,
        };
        if !this.completion.start(false) {
            return; // cancelled while queued
        }
        let Some(closure) = this.completion.extra(Option::take) else {
            return;
        };
        // Counted as running while it runs, so balancers see a worker busy with a long closure;
        // uncounted before the result is published, so the caller never sees a stale load.
        let running = room.take_blocking();
        let result = catch_unwind(AssertUnwindSafe(closure))
            .map_err(|panic| Error::Panicked(take_panic_message(panic)));
        drop(running);
        this.completion.finish(result);
    }

    fn fail(&self, error: Error) {
        self.completion.fail_closure(error);
    }
}

impl<F, T> PlainJob<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    /// Runs a work whose handle is gone (taken out of its `Arc`): its value or panic goes
    /// nowhere. A work cancelled on the handle's drop has an outcome already and does not run.
    fn run_unobserved(self, room: &Rc<super::worker::Room>) {
        let completion = self.completion;
        if completion.state.into_inner() != QUEUED {
            return;
        }
        let slot = completion
            .slot
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(closure) = slot.extra else {
            return;
        };
        let running = room.take_blocking();
        // (The value is dropped inside the guard too: a panicking destructor is the work's.)
        contain(move || drop(closure()));
        drop(running);
    }
}

impl<F, T> Outcome<T> for PlainJob<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn completion(&self) -> &Completion<T, dyn Send> {
        &self.completion
    }

    fn cancel(&self) -> bool {
        self.completion.cancel_closure().cancelled()
    }
}

/// An async work: a `Send` closure called on the worker, returning a future that need not be
/// `Send`.
pub(crate) struct AsyncJob<F, T> {
    completion: Completion<T, AsyncParts<F>>,
}

/// What an async work keeps in its completion's slot, under the slot's lock.
pub(crate) struct AsyncParts<F> {
    /// The closure, until the work starts (or is cancelled).
    closure: Option<F>,
    /// The local task running the future, woken by a cancel so that it drops the future.
    task: Option<Waker>,
}

impl<F, Fut> AsyncJob<F, Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    pub(crate) fn new(closure: F) -> Arc<AsyncJob<F, Fut::Output>> {
        Arc::new(AsyncJob {
            completion: Completion::with_extra(AsyncParts {
                closure: Some(closure),
                task: None,
            }),
        })
    }
}

impl<F, Fut> Job for AsyncJob<F, Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    fn start(self: Arc<Self>, room: &Rc<super::worker::Room>) {
        if !self.completion.start(true) {
            return; // cancelled while queued
        }
        let Some(closure) = self.completion.extra(|p| p.closure.take()) else {
            return;
        };
        let future = match catch_unwind(AssertUnwindSafe(closure)) {
            Ok(future) => future,
            Err(panic) => {
                // (A cancel decided meanwhile makes this `Cancelled`: no future exists.)
                self.completion
                    .finish(Err(Error::Panicked(take_panic_message(panic))));
                return;
            }
        };
        let guard = room.take();
        crate::spawn_local(RunAsync {
            future: Some(future),
            job: self,
            room: Some(guard),
        })
        .detach();
    }

    fn fail(&self, error: Error) {
        self.completion.fail(error);
        let closure = self.completion.extra(|p| p.closure.take());
        drop(closure); // outside the lock
    }
}

impl<F, Fut> Outcome<Fut::Output> for AsyncJob<F, Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    fn completion(&self) -> &Completion<Fut::Output, dyn Send> {
        &self.completion
    }

    fn cancel(&self) -> bool {
        let cancel = self.completion.request_cancel();
        match cancel {
            Cancel::Queued => {
                let closure = self.completion.extra(|p| p.closure.take());
                drop(closure); // outside the lock
            }
            Cancel::Running => {
                // The task drops the future at its next poll, then publishes `Cancelled`. (Not
                // yet spawned? Its first poll sees the cancel.)
                let task = self.completion.extra(|p| p.task.clone());
                if let Some(task) = task {
                    task.wake();
                }
            }
            Cancel::Already | Cancel::TooLate => {}
        }
        cancel.cancelled()
    }
}

/// The local task of an async work: polls the user's future and publishes its outcome.
///
/// The future is dropped before any outcome is published. Dropped without finishing (the
/// worker shut down now), the task fails the work as `Cancelled`.
struct RunAsync<F, Fut: Future> {
    /// `None` once dropped (it finished, panicked or was cancelled).
    future: Option<Fut>,
    job: Arc<AsyncJob<F, Fut::Output>>,
    /// Released before the outcome is published, so the caller never sees a stale load.
    room: Option<super::worker::RoomGuard>,
}

impl<F, Fut: Future> RunAsync<F, Fut> {
    /// Drops the future in place (a panic in its destructor is caught: the outcome stands).
    fn drop_future(self: Pin<&mut Self>) {
        // SAFETY: `future` is structurally pinned (see `poll`): it is dropped in place here and
        // never moved; the pointer is used only within this call.
        let slot: *mut Option<Fut> = unsafe { &mut self.get_unchecked_mut().future };
        // SAFETY: `slot` points to a live `Option<Fut>`. After `drop_in_place` — even one that
        // unwinds — the value counts as dropped, so it is overwritten with `None` without being
        // dropped again.
        contain(|| unsafe { std::ptr::drop_in_place(slot) });
        // SAFETY: as above: the old value is gone; this write drops nothing.
        unsafe { std::ptr::write(slot, None) };
    }

    /// Drops the future, frees the room, and ends the work with `result` (or `Cancelled` if a
    /// cancel was decided).
    fn end(mut self: Pin<&mut Self>, result: Result<Fut::Output, Error>) {
        let outer = AFTER_PUBLISH.try_with(|later| later.replace(Some(Vec::new())));
        self.as_mut().drop_future();
        // SAFETY: `room` and `job` are not structurally pinned; nothing is moved out of `self`.
        let this = unsafe { self.get_unchecked_mut() };
        this.room = None;
        this.job.completion.finish(result);
        if let Ok(outer) = outer {
            let waiting = AFTER_PUBLISH.try_with(|later| later.replace(outer));
            for f in waiting.ok().flatten().into_iter().flatten() {
                f();
            }
        }
    }
}

impl<F, Fut: Future> Future for RunAsync<F, Fut> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let job = self.job.clone();
        let completion = &job.completion;
        // Register before looking at the state: a cancel that swaps the state after this look
        // finds the waker, one that swapped before is seen by the look. (An executor's task
        // waker never changes, so the first poll stores it.)
        completion.extra(|p| {
            if p.task.is_none() {
                p.task = Some(cx.waker().clone());
            }
        });
        if completion.is_decided() {
            // Cancelled: drop the future, then publish.
            self.end(Err(Error::Cancelled));
            return Poll::Ready(());
        }
        // SAFETY: `future` is structurally pinned: `RunAsync` never moves it out (it is only
        // dropped in place, by `Pin::set` or with `RunAsync`), and `RunAsync` is `Unpin` only if
        // `Fut` is.
        let future = unsafe { self.as_mut().map_unchecked_mut(|this| &mut this.future) };
        let Some(future) = future.as_pin_mut() else {
            return Poll::Ready(()); // already ended
        };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                self.end(Ok(value));
                Poll::Ready(())
            }
            Err(panic) => {
                self.end(Err(Error::Panicked(take_panic_message(panic))));
                Poll::Ready(())
            }
        }
    }
}

impl<F, Fut: Future> Drop for RunAsync<F, Fut> {
    fn drop(&mut self) {
        if self.future.is_some() {
            // Dropped before it ended: the worker shut down now.
            // SAFETY: `self` is being dropped and is never moved again; the future is dropped
            // in place, as pinning requires.
            let this = unsafe { Pin::new_unchecked(&mut *self) };
            this.end(Err(Error::Cancelled));
        }
        // The task is ending: let go of its waker, so the task's memory goes now rather than
        // with the handle.
        let task = self.job.completion.extra(|p| p.task.take());
        drop(task); // outside the lock
    }
}
