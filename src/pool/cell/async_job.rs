//! An async work's job, and the local task that runs its future on the worker.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::{Cancel, Completion, Job, Outcome, QueueMark, AFTER_PUBLISH};
use crate::pool::worker::{Room, RoomGuard};
use crate::runtime::task::{contain, take_panic_message};
use crate::Error;

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
    fn start(self: Arc<Self>, room: &Rc<Room>) {
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

    fn queue_mark(&self) -> Option<&QueueMark> {
        Some(self.completion.queue_mark())
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
    room: Option<RoomGuard>,
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
