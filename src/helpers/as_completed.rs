//! [`as_completed`] and [`wait_any`]: handles' outcomes in the order the works end.
//!
//! # Ownership rules
//!
//! `AsCompleted` owns the handles (`handles[i]` is `None` once its outcome was handed out) and
//! one waker per handle, made once. Handle *i* holds its waker in its completion slot; a wake
//! pushes `i` onto the shared `ready` queue and takes the consumer's waker, both under the
//! `ready` lock, then wakes the consumer after releasing it. Only the consumer pops the queue
//! and polls handles, and it polls only the handles whose index it popped: one poll per
//! completion, however many handles wait. An index may be queued twice (every index is queued
//! once at the start, and a wake may follow); a popped index whose handle is gone is skipped.

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::runtime::reactor::lock;
use crate::{Error, Handle};

/// The indices of the handles that may be ready, and the consumer's waker.
#[derive(Default)]
struct Ready {
    queue: VecDeque<usize>,
    consumer: Option<Waker>,
}

/// The waker registered with handle `index`.
struct IndexWaker {
    index: usize,
    ready: Arc<Mutex<Ready>>,
}

impl Wake for IndexWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut ready = lock(&self.ready);
        ready.queue.push_back(self.index);
        let consumer = ready.consumer.take();
        drop(ready);
        if let Some(waker) = consumer {
            waker.wake();
        }
    }
}

/// Yields the outcomes of `handles` in the order their works end, each with the handle's index
/// in `handles` (counted from 0): `(index, Result<T, Error>)`.
///
/// The result is a blocking [`Iterator`] and an async stream ([`next`](AsCompleted::next)
/// and [`poll_next`](AsCompleted::poll_next)). Each completion costs one poll of one handle,
/// however many are still waiting. Handles that finished before the first call come out in
/// input order. [`into_remaining`](AsCompleted::into_remaining) gives back the handles not
/// yet handed out.
///
/// ```
/// use std::sync::Arc;
/// use aplex::sync::Event;
///
/// let pool = aplex::ThreadPool::new(2);
/// let go = Arc::new(Event::new());
/// let g = Arc::clone(&go);
/// let slow = pool.spawn(move || async move { g.wait().await; "slow" });
/// let fast = pool.submit(|| "fast");
/// let mut done = aplex::as_completed([slow, fast]);
/// // `Iterator::next` blocks; the inherent `done.next()` is the async twin.
/// assert_eq!(Iterator::next(&mut done), Some((1, Ok("fast"))));
/// go.set();
/// assert_eq!(done.collect::<Vec<_>>(), [(0, Ok("slow"))]);
/// ```
pub fn as_completed<T, I>(handles: I) -> AsCompleted<T>
where
    I: IntoIterator<Item = Handle<T>>,
{
    let handles: Vec<Option<Handle<T>>> = handles.into_iter().map(Some).collect();
    let ready = Arc::new(Mutex::new(Ready {
        queue: (0..handles.len()).collect(),
        consumer: None,
    }));
    let wakers = (0..handles.len())
        .map(|index| {
            Waker::from(Arc::new(IndexWaker {
                index,
                ready: Arc::clone(&ready),
            }))
        })
        .collect();
    AsCompleted {
        remaining: handles.len(),
        handles,
        wakers,
        ready,
    }
}

/// Waits (blocking) for the first of `handles` to finish; returns its index in `handles`, its
/// outcome, and the other handles, in input order. `None` if `handles` is empty.
///
/// The other works go on; drop the returned handles to let them run unobserved, or cancel
/// them. From async code, use [`as_completed`] with `next().await`, then
/// [`into_remaining`](AsCompleted::into_remaining).
///
/// # Blocking
///
/// Parks the calling thread: do not call it from async code running on an executor.
///
/// ```
/// use std::sync::Arc;
/// use aplex::sync::Event;
///
/// let pool = aplex::ThreadPool::new(2);
/// let never = Arc::new(Event::new());
/// let n = Arc::clone(&never);
/// let stuck = pool.spawn(move || async move { n.wait().await; 0 });
/// let quick = pool.submit(|| 7);
/// let (index, outcome, rest) = aplex::wait_any([stuck, quick]).unwrap();
/// assert_eq!((index, outcome), (1, Ok(7)));
/// assert_eq!(rest.len(), 1);
/// assert!(rest[0].cancel()); // the other one was still waiting
/// ```
#[allow(clippy::type_complexity)] // a plain tuple, so that the caller destructures it in one line
pub fn wait_any<T, I>(handles: I) -> Option<(usize, Result<T, Error>, Vec<Handle<T>>)>
where
    I: IntoIterator<Item = Handle<T>>,
{
    let mut all = as_completed(handles);
    let (index, outcome) = Iterator::next(&mut all)?;
    Some((index, outcome, all.into_remaining()))
}

/// The stream of [`as_completed`]: `(index, outcome)` pairs in completion order.
#[must_use = "an AsCompleted does nothing unless iterated or polled"]
pub struct AsCompleted<T> {
    /// `None` once that handle's outcome was handed out.
    handles: Vec<Option<Handle<T>>>,
    /// One waker per handle, registered with it whenever it is polled.
    wakers: Vec<Waker>,
    ready: Arc<Mutex<Ready>>,
    /// Handles whose outcome has not been handed out yet.
    remaining: usize,
}

impl<T> AsCompleted<T> {
    /// Polls for the next outcome to come: the core of [`next`](AsCompleted::next) and of the
    /// iterator, for adapting this into another crate's stream type without a dependency,
    /// e.g. `futures::stream::poll_fn(move |cx| done.poll_next(cx))`.
    ///
    /// `Ready(None)` once every handle's outcome has been handed out.
    ///
    /// ```
    /// use std::future::poll_fn;
    ///
    /// let pool = aplex::ThreadPool::new(1);
    /// let mut done = aplex::as_completed([pool.submit(|| 'a')]);
    /// let first = aplex::block_on(poll_fn(|cx| done.poll_next(cx)));
    /// assert_eq!(first, Some((0, Ok('a'))));
    /// assert_eq!(aplex::block_on(poll_fn(|cx| done.poll_next(cx))), None);
    /// ```
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, Result<T, Error>)>> {
        loop {
            if self.remaining == 0 {
                return Poll::Ready(None);
            }
            let mut ready = lock(&self.ready);
            let Some(index) = ready.queue.pop_front() else {
                let stale = match &ready.consumer {
                    Some(w) if w.will_wake(cx.waker()) => None,
                    _ => ready.consumer.replace(cx.waker().clone()),
                };
                drop(ready);
                drop(stale);
                return Poll::Pending;
            };
            drop(ready);
            let Some(handle) = &mut self.handles[index] else {
                continue; // queued twice; handed out already
            };
            let mut handle_cx = Context::from_waker(&self.wakers[index]);
            if let Poll::Ready(outcome) = Pin::new(handle).poll(&mut handle_cx) {
                self.handles[index] = None;
                self.remaining -= 1;
                return Poll::Ready(Some((index, outcome)));
            }
        }
    }

    /// The next outcome to come, waiting for it without blocking the thread; `None` once every
    /// handle's outcome has been handed out.
    ///
    /// Cancel-safe: dropping this future before it resolves loses no outcome.
    ///
    /// ```
    /// let pool = aplex::ThreadPool::new(2);
    /// let handles: Vec<_> = (0..4u32).map(|i| pool.submit(move || i * i)).collect();
    /// let total = aplex::block_on(async {
    ///     let mut done = aplex::as_completed(handles);
    ///     let mut total = 0;
    ///     while let Some((_index, outcome)) = done.next().await {
    ///         total += outcome.unwrap();
    ///     }
    ///     total
    /// });
    /// assert_eq!(total, 0 + 1 + 4 + 9);
    /// ```
    #[allow(clippy::should_implement_trait)] // it does implement Iterator; this is the async twin
    pub async fn next(&mut self) -> Option<(usize, Result<T, Error>)> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// How many outcomes are still to come.
    ///
    /// ```
    /// let pool = aplex::ThreadPool::new(1);
    /// let mut done = aplex::as_completed([pool.submit(|| 1), pool.submit(|| 2)]);
    /// assert_eq!(done.remaining(), 2);
    /// Iterator::next(&mut done);
    /// assert_eq!(done.remaining(), 1);
    /// ```
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// The handles whose outcomes have not been handed out, in input order (their indices are
    /// gone: a caller that needs them keeps its own list). Their works go on.
    ///
    /// ```
    /// let pool = aplex::ThreadPool::new(1);
    /// let mut done = aplex::as_completed([pool.submit(|| 1), pool.submit(|| 2)]);
    /// let (_, first) = Iterator::next(&mut done).unwrap();
    /// let rest = done.into_remaining();
    /// assert_eq!(rest.len(), 1);
    /// let second = rest.into_iter().next().unwrap().wait();
    /// assert_eq!(first.unwrap() + second.unwrap(), 3);
    /// ```
    pub fn into_remaining(self) -> Vec<Handle<T>> {
        self.handles.into_iter().flatten().collect()
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = (usize, Result<T, Error>);

    /// Blocks for the next outcome to come; `None` once every outcome has been handed out.
    fn next(&mut self) -> Option<(usize, Result<T, Error>)> {
        crate::sync::blocking::wait(poll_fn(|cx| self.poll_next(cx)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("handles", &self.handles.len())
            .field("remaining", &self.remaining)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_polled_once_per_wake_not_once_per_consumer_poll() {
        // Only queued indices are polled: with nothing queued, a poll touches no handle.
        let pool = crate::ThreadPool::new(1);
        let go = Arc::new(crate::sync::Event::new());
        let g = Arc::clone(&go);
        let mut done = as_completed([pool.spawn(move || async move { g.wait().await })]);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(done.poll_next(&mut cx).is_pending());
        assert!(lock(&done.ready).queue.is_empty());
        assert!(done.poll_next(&mut cx).is_pending());
        go.set();
        assert!(matches!(
            crate::sync::blocking::wait(poll_fn(|cx| done.poll_next(cx))),
            Some((0, Ok(())))
        ));
    }
}
