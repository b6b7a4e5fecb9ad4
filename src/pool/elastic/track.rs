//! The elastic pool's works, and how the pool follows each one it accepted, from its submit
//! until its outcome is published: the counts behind `drain`, `stats`, `join` and the shutdown
//! report.
//!
//! A plain work is **one allocation**: its completion (closure and result slot) and the link
//! its handle uses to take it out of the queue when cancelled. The same `Arc` is the queue's job
//! and the handle's outcome.
//!
//! # Ownership rules
//!
//! - An accepted work is counted in the tally from its accept (under the queue's lock) until it
//!   ends, exactly once. Whoever takes it out of where it waits — the queue, or a worker's held
//!   list (see the `held` module), each under its own lock, so there is one — ends it, once its
//!   outcome is published:
//!   - the worker that claimed it, once `start` returned: a plain closure has run to its end there
//!     (or was cancelled before), and so has an async work whose future never came to exist.
//!     The end is counted on the worker's thread ([`ENDED_HERE`]) and added to the tally at the
//!     worker's next step, under the lock that step takes anyway: one lock per step, not one
//!     per work. A worker always steps again (or leaves, which counts too) after a batch.
//!   - an async work's future wrapper ([`Tracked`]), which takes a [`Ticket`] when the future is
//!     made; the worker then counts nothing. The ticket ends when the worker drops the future,
//!     once the outcome that follows the drop is published.
//!   - the pool, for a queued work it takes out (a cancel from the handle, or a shutdown), after
//!     failing or cancelling it.
//! - A work refused at submit is counted nowhere.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use super::held::Held;
use super::queue::Shared;
use super::steps::ElasticWorker;
use crate::pool::cell::{after_publish, AsyncJob, Completion, Job, Outcome};
use crate::pool::worker::Room;
use crate::runtime::task::take_panic_message;
use crate::Error;

/// How a work ended, as the shutdown report sorts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// It ran, or was cancelled by its handle: whatever the outcome, the shutdown did not end it.
    Ran,
    /// The pool took it out of the queue to end it (a shutdown).
    TakenOut,
    /// Its future was dropped before it finished (the worker left, or its handle cancelled it).
    Dropped,
}

thread_local! {
    /// On a worker thread: works it ended since its last step, for the step to count.
    static ENDED_HERE: Cell<usize> = const { Cell::new(0) };
    /// Set while an async work starts, once its future exists (its wrapper then ends it).
    static FUTURE_MADE: Cell<bool> = const { Cell::new(false) };
    /// Whether the worker still held works when it claimed its last one (only it adds any).
    static HELD_AFTER_CLAIM: Cell<bool> = const { Cell::new(false) };
    /// On a worker thread: its pool, and its count of finished works.
    static WORKER_HERE: RefCell<Option<WorkerHere>> = const { RefCell::new(None) };
}

/// What a worker thread's works need to know about it.
struct WorkerHere {
    shared: Arc<Shared>,
    finished: Arc<AtomicUsize>,
    held: Arc<Held>,
}

/// Called once on each worker thread, before it runs any work.
pub(crate) fn enter_worker(shared: Arc<Shared>, me: &ElasticWorker) {
    let here = WorkerHere {
        shared,
        finished: me.finished.clone(),
        held: me.held.clone(),
    };
    WORKER_HERE.with(|w| *w.borrow_mut() = Some(here));
}

/// Claims the work at `job` for this worker, right before it starts: true if it is the oldest
/// work the worker holds, the worker has room, and no higher priority waits in the queue.
/// Else it is left where it is (held, stolen, or taken out by a cancel or a shutdown).
fn claim_here(job: *const (), room: &Room) -> bool {
    if room.free() == 0 {
        return false;
    }
    let claimed = WORKER_HERE.with(|w| {
        let w = w.borrow();
        let w = w.as_ref()?;
        // ORDERING: Relaxed: see `Shared::mirror_top`.
        let top = w.shared.mirrors.top.load(Ordering::Relaxed);
        w.held.claim(job, |priority| i64::from(priority) >= top)
    });
    let Some((claimed, left)) = claimed else {
        return false;
    };
    HELD_AFTER_CLAIM.with(|held| held.set(left > 0));
    drop(claimed); // its queue room frees here, outside the held lock
    true
}

/// Whether this worker held other works when it claimed the work it is starting: none can
/// have come since (only the worker itself adds any, between batches).
pub(crate) fn held_after_claim() -> bool {
    HELD_AFTER_CLAIM.with(Cell::get)
}

/// The works this worker thread ended since the last call.
pub(crate) fn take_ended_here() -> usize {
    ENDED_HERE.with(|n| n.replace(0))
}

/// A work a worker took has ended on this thread.
fn ended_here() {
    ENDED_HERE.with(|n| n.set(n.get() + 1));
}

/// A plain closure is about to hold this worker's thread: a shutdown waiting for the threads
/// that are not held may have to look again.
fn plain_started_here() {
    WORKER_HERE.with(|w| {
        if let Some(w) = &*w.borrow() {
            w.shared.plain_started();
        }
    });
}

/// An async work's place in the pool's counts, once its future exists.
pub(crate) struct Ticket {
    shared: Arc<Shared>,
    /// The finished-works count of the worker that runs it.
    worker: Arc<AtomicUsize>,
}

impl Ticket {
    /// A ticket for a future made on this worker thread (none elsewhere: nothing counts it).
    fn here() -> Option<Ticket> {
        WORKER_HERE.with(|w| {
            w.borrow().as_ref().map(|w| Ticket {
                shared: w.shared.clone(),
                worker: w.finished.clone(),
            })
        })
    }

    fn end(self, how: Ending) {
        // ORDERING: a count read after the workers are joined, or as a statistic.
        self.worker.fetch_add(1, Ordering::Relaxed);
        self.shared.work_ended(1, how);
    }
}

/// An accepted work as the queue sees it: a job whose handle may take it out of the queue.
pub(crate) trait Queueable<T>: Job + Outcome<T> {
    /// A plain closure: it frees its worker's room before the next work starts, whereas an
    /// async work keeps it while its future lives.
    const PLAIN: bool;
}

impl<F, T> Queueable<T> for PlainWork<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    const PLAIN: bool = true;
}

impl<G, Fut> Queueable<Fut::Output> for AsyncWork<G, Fut::Output>
where
    G: FnOnce() -> Tracked<Fut> + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    const PLAIN: bool = false;
}

/// Takes a cancelled work out of its pool's queue at once, freeing its room.
fn forget(shared: &Weak<Shared>, work: *const ()) {
    if let Some(shared) = shared.upgrade() {
        shared.forget_cancelled(work);
    }
}

/// A plain closure `FnOnce() -> T`, with what the elastic pool needs to follow it.
pub(crate) struct PlainWork<F, T> {
    /// The closure waits in the completion's slot until the work starts (or is cancelled).
    completion: Completion<T, Option<F>>,
    shared: Weak<Shared>,
}

/// A plain closure, to be accepted by `shared`.
pub(crate) fn plain<F, T>(f: F, shared: &Arc<Shared>) -> Arc<PlainWork<F, T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Arc::new(PlainWork {
        completion: Completion::with_extra(Some(f)),
        shared: Arc::downgrade(shared),
    })
}

impl<F, T> Job for PlainWork<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn start(self: Arc<Self>, room: &Rc<Room>) {
        if !claim_here(Arc::as_ptr(&self).cast(), room) {
            return;
        }
        // (Cancelled while queued: there is nothing to run.)
        if self.completion.start(false) {
            if let Some(closure) = self.completion.extra(Option::take) {
                // Counted as running while it runs; uncounted before the result is published.
                let running = room.take_blocking();
                plain_started_here();
                let result = catch_unwind(AssertUnwindSafe(closure))
                    .map_err(|panic| Error::Panicked(take_panic_message(panic)));
                drop(running);
                self.completion.finish(result);
            }
        }
        ended_here();
    }

    fn fail(&self, error: Error) {
        self.completion.fail_closure(error);
    }
}

impl<F, T> Outcome<T> for PlainWork<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn completion(&self) -> &Completion<T, dyn Send> {
        &self.completion
    }

    fn cancel(&self) -> bool {
        let cancel = self.completion.cancel_closure();
        if cancel == crate::pool::cell::Cancel::Queued {
            forget(&self.shared, (self as *const Self).cast());
        }
        cancel.cancelled()
    }
}

/// An async work, with what the elastic pool needs to follow it. `G` is the user's closure
/// wrapped so that the future it makes is [`Tracked`].
pub(crate) struct AsyncWork<G, T> {
    job: Arc<AsyncJob<G, T>>,
    shared: Weak<Shared>,
}

/// An async work, to be accepted by `shared`: its future is wrapped so that it ends the work
/// when the worker drops it.
pub(crate) fn asynchronous<F, Fut>(
    f: F,
    shared: &Arc<Shared>,
) -> Arc<AsyncWork<impl FnOnce() -> Tracked<Fut> + Send + 'static, Fut::Output>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let make = move || {
        let future = f();
        // The future exists: from now on its drop ends the work.
        FUTURE_MADE.with(|made| made.set(true));
        Tracked {
            future: Box::pin(future),
            ticket: Ticket::here(),
            finished: false,
        }
    };
    Arc::new(AsyncWork {
        job: AsyncJob::new(make),
        shared: Arc::downgrade(shared),
    })
}

impl<G, Fut> Job for AsyncWork<G, Fut::Output>
where
    G: FnOnce() -> Tracked<Fut> + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    fn start(self: Arc<Self>, room: &Rc<Room>) {
        if !claim_here(Arc::as_ptr(&self).cast(), room) {
            return;
        }
        FUTURE_MADE.with(|made| made.set(false));
        self.job.clone().start(room);
        // Ended now, unless its future exists and took a ticket.
        if !FUTURE_MADE.with(|made| made.replace(false)) {
            ended_here();
        }
    }

    fn fail(&self, error: Error) {
        self.job.fail(error);
    }
}

impl<G, Fut> Outcome<Fut::Output> for AsyncWork<G, Fut::Output>
where
    G: FnOnce() -> Tracked<Fut> + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    fn completion(&self) -> &Completion<Fut::Output, dyn Send> {
        self.job.completion()
    }

    fn cancel(&self) -> bool {
        let cancelled = self.job.cancel();
        if cancelled {
            // Taken out of the queue if it is still there.
            forget(&self.shared, (self as *const Self).cast());
        }
        cancelled
    }
}

/// An async work's future, which ends its ticket when dropped.
pub(crate) struct Tracked<Fut> {
    future: Pin<Box<Fut>>,
    ticket: Option<Ticket>,
    finished: bool,
}

impl<Fut: Future> Future for Tracked<Fut> {
    type Output = Fut::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Fut::Output> {
        let out = self.future.as_mut().poll(cx);
        if out.is_ready() {
            self.finished = true;
        }
        out
    }
}

impl<Fut> Drop for Tracked<Fut> {
    fn drop(&mut self) {
        // The worker drops the future just before it publishes the outcome (see `RunAsync`):
        // the ticket ends once the outcome is out.
        if let Some(ticket) = self.ticket.take() {
            let how = if self.finished {
                Ending::Ran
            } else {
                Ending::Dropped
            };
            after_publish(move || ticket.end(how));
        }
    }
}
