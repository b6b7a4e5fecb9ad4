//! How the elastic pool follows each work it accepted, from its submit until its outcome is
//! published: the counts behind `drain`, `stats`, `join` and the shutdown report.
//!
//! # Ownership rules
//!
//! - Each accepted work has one [`Ticket`], kept in its [`EndSlot`] until the work ends. Whoever
//!   takes the ticket out ends it — exactly once, and only once the work's outcome is published:
//!   - the worker, right after `start` returned: a plain closure has run to its end there (or
//!     was cancelled before), and so has an async work whose future never came to exist (it was
//!     cancelled first, or its closure panicked);
//!   - an async work's future wrapper ([`Tracked`]), which took the ticket when the future was
//!     made, when the worker drops it — the ticket ends once the outcome that follows the drop
//!     is published (finished, cancelled, or failed because the worker left);
//!   - the pool, for a queued work it takes out of the queue (a cancel from the handle, or a
//!     shutdown), after failing or cancelling it.
//! - A ticket is armed (given its pool) when the pool accepts the work, under the queue's lock;
//!   a work refused at submit has no armed ticket and is counted nowhere.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use super::queue::Shared;
use crate::pool::cell::{after_publish, AsyncJob, Job, Outcome, PlainJob};
use crate::pool::worker::Room;
use crate::runtime::reactor::lock;
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

/// One accepted work's place in the pool's counts.
pub(crate) struct Ticket {
    pub(crate) shared: Arc<Shared>,
    /// The finished-works count of the worker that took it, once one did.
    pub(crate) worker: Option<Arc<AtomicUsize>>,
    /// A plain closure a worker has started: counted while it holds its thread.
    pub(crate) plain_running: bool,
}

/// Where a work's ticket waits until the work ends.
#[derive(Default)]
pub(crate) struct EndSlot(Mutex<Option<Ticket>>);

impl EndSlot {
    /// Ends the work, if nobody else has: the outcome is published.
    pub(crate) fn end(&self, how: Ending) {
        let ticket = lock(&self.0).take();
        if let Some(ticket) = ticket {
            ticket.shared.clone().work_ended(ticket, how);
        }
    }

    pub(crate) fn arm(&self, ticket: Ticket) {
        *lock(&self.0) = Some(ticket);
    }

    /// Runs `f` on the ticket, if the work has not ended.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Ticket) -> R) -> Option<R> {
        lock(&self.0).as_mut().map(f)
    }

    fn take(&self) -> Option<Ticket> {
        lock(&self.0).take()
    }
}

/// An accepted work as the queue and the workers see it: the job, with its ticket.
pub(crate) struct Accepted {
    job: Arc<dyn Job>,
    pub(crate) end: Arc<EndSlot>,
    plain: bool,
}

impl Job for Accepted {
    fn start(self: Arc<Self>, room: &Rc<Room>) {
        if self.plain {
            if let Some(shared) = self.end.with(|t| {
                t.plain_running = true;
                t.shared.clone()
            }) {
                shared.plain_started();
            }
        }
        self.job.clone().start(room);
        // Ended now, unless an async work's future exists and took the ticket.
        self.end.end(Ending::Ran);
    }

    fn fail(&self, error: Error) {
        self.job.fail(error);
        self.end.end(Ending::TakenOut);
    }
}

/// A work made and not yet accepted: the queue's side and the handle's side.
pub(crate) struct Work<T> {
    pub(crate) job: Arc<Accepted>,
    pub(crate) outcome: Arc<dyn Outcome<T>>,
}

/// A plain closure, to be accepted.
pub(crate) fn plain<F, T>(f: F) -> Work<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let job = PlainJob::new(f);
    Work {
        job: Arc::new(Accepted {
            job: job.clone(),
            end: Arc::default(),
            plain: true,
        }),
        outcome: job,
    }
}

/// An async work, to be accepted: its future is wrapped so that it ends the ticket when the
/// worker drops it.
pub(crate) fn asynchronous<F, Fut>(f: F) -> Work<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + 'static,
    Fut::Output: Send + 'static,
{
    let end: Arc<EndSlot> = Arc::default();
    let slot = end.clone();
    let job = AsyncJob::new(move || {
        let future = f();
        // The future exists: from now on its drop ends the work.
        Tracked {
            future: Box::pin(future),
            ticket: slot.take(),
            finished: false,
        }
    });
    Work {
        job: Arc::new(Accepted {
            job: job.clone(),
            end,
            plain: false,
        }),
        outcome: job,
    }
}

/// An async work's future, which ends its ticket when dropped.
struct Tracked<Fut> {
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
            after_publish(move || ticket.shared.clone().work_ended(ticket, how));
        }
    }
}

/// The handle's side of an accepted work: a cancel also takes a queued work out of the queue at
/// once, freeing its room.
pub(crate) struct Cancellable<T> {
    pub(crate) outcome: Arc<dyn Outcome<T>>,
    pub(crate) shared: Weak<Shared>,
    pub(crate) seq: u64,
}

impl<T> Outcome<T> for Cancellable<T> {
    fn completion(&self) -> &crate::pool::cell::Completion<T, dyn Send> {
        self.outcome.completion()
    }

    fn cancel(&self) -> bool {
        let cancelled = self.outcome.cancel();
        if cancelled {
            if let Some(shared) = self.shared.upgrade() {
                shared.forget_cancelled(self.seq);
            }
        }
        cancelled
    }
}
