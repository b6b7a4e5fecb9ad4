//! A plain closure's work: the closure waits in its completion's slot until a worker runs it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use super::{Cancel, Completion, Job, Outcome, QueueMark, QUEUED};
use crate::pool::worker::Room;
use crate::runtime::task::{contain, take_panic_message};
use crate::Error;

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
    fn start(self: Arc<Self>, room: &Rc<Room>) {
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

    fn queue_mark(&self) -> Option<&QueueMark> {
        Some(self.completion.queue_mark())
    }

    fn holds_thread(&self) -> bool {
        true
    }
}

impl<F, T> PlainJob<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    /// Runs a work whose handle is gone (taken out of its `Arc`): its value or panic goes
    /// nowhere. A work cancelled on the handle's drop has an outcome already and does not run.
    fn run_unobserved(self, room: &Rc<Room>) {
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
