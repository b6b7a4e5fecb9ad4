//! `resolve`: run an iterator of futures a few at a time inside the awaiting task, and stream
//! their outputs in input order.
//!
//! # Ownership rules
//!
//! Everything here belongs to the task that awaits it: the iterator is pulled, and the futures
//! are polled, only inside [`Resolve::next`] (or [`Collect`](super::Collect)'s poll). Nothing is
//! spawned, so the futures need be neither `Send` nor `'static` and may borrow.
//!
//! Counts, with `yielded` the outputs handed out so far and `pulled` the futures taken from the
//! iterator: the window `pulled - yielded` holds the running futures and the finished outputs
//! that wait (`buffered`). A future is pulled only while fewer than `workers` run and the window
//! is at most `greediness`, so at most `greediness` finished outputs ever wait unread.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::task::{Context, Poll};

use super::set::FutureSet;

/// Pulls futures lazily, runs up to `workers` of them, and hands their outputs out in input
/// order. The core of [`resolve`] and [`collect`](super::collect).
pub(crate) struct Ordered<I: Iterator>
where
    I::Item: Future,
{
    /// `None` once the iterator is exhausted.
    iter: Option<I>,
    running: FutureSet<I::Item>,
    /// Outputs of futures `yielded..pulled`, in input order; `None` while one still runs.
    window: VecDeque<Option<<I::Item as Future>::Output>>,
    yielded: usize,
    workers: usize,
    greediness: usize,
    buffered: usize,
}

impl<I> Ordered<I>
where
    I: Iterator,
    I::Item: Future,
{
    /// # Panics
    ///
    /// Panics if `workers` is 0, naming `caller` in the message.
    pub(crate) fn new(iter: I, workers: usize, caller: &str) -> Ordered<I> {
        assert!(
            workers > 0,
            "aplex::{caller}: workers must be at least 1 (got 0)"
        );
        Ordered {
            iter: Some(iter),
            running: FutureSet::new(),
            window: VecDeque::new(),
            yielded: 0,
            workers,
            greediness: usize::MAX,
            buffered: 0,
        }
    }

    /// Starts futures while a worker is free and the window has room.
    fn fill(&mut self) {
        while self.running.len() < self.workers && self.window.len() <= self.greediness {
            let Some(iter) = self.iter.as_mut() else {
                return;
            };
            match iter.next() {
                Some(future) => {
                    let key = self.yielded + self.window.len();
                    self.window.push_back(None);
                    self.running.push(key, future);
                }
                None => self.iter = None,
            }
        }
    }

    /// The next output in input order, `Ready(None)` once every future has been handed out.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<<I::Item as Future>::Output>> {
        loop {
            self.fill();
            if matches!(self.window.front(), Some(Some(_))) {
                if let Some(Some(output)) = self.window.pop_front() {
                    self.yielded += 1;
                    self.buffered -= 1;
                    return Poll::Ready(Some(output));
                }
            }
            match self.running.poll_next(cx) {
                Poll::Ready(Some((key, output))) => {
                    if let Some(place) = self.window.get_mut(key - self.yielded) {
                        *place = Some(output);
                        self.buffered += 1;
                    }
                }
                // Nothing runs and the head is not ready: the window is empty and so is the
                // iterator (`fill` would have started something otherwise).
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// An ordered stream of the outputs of futures run a few at a time; made by [`resolve`].
///
/// Call [`next`](Resolve::next) in a loop. The futures run inside the task that awaits `next`
/// (only while it awaits), at most `workers` at once; each output is handed out as soon as it
/// and every one before it are ready. A future whose output is an error does not stop the
/// others: outputs are whatever the futures return.
pub struct Resolve<I: Iterator>
where
    I::Item: Future,
{
    core: Ordered<I>,
}

// The futures are boxed and the iterator is never pinned, so moving a `Resolve` is fine.
impl<I: Iterator> Unpin for Resolve<I> where I::Item: Future {}

impl<I> std::fmt::Debug for Resolve<I>
where
    I: Iterator,
    I::Item: Future,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolve")
            .field("workers", &self.core.workers)
            .field("greediness", &self.core.greediness)
            .field("running", &self.core.running.len())
            .field("buffered", &self.core.buffered)
            .field("yielded", &self.core.yielded)
            .finish()
    }
}

/// Runs the futures of `futures` with at most `workers` in flight, and streams their outputs in
/// input order (aioextensions' `resolve`).
///
/// The iterator is pulled lazily: a future is taken only when a worker slot is free (a new one
/// starts as soon as one ends), so an endless iterator is fine. Nothing is spawned: the futures
/// run inside the task that awaits [`Resolve::next`], so they need be neither `Send` nor
/// `'static`. Bound how many finished outputs may wait unread with
/// [`greediness`](Resolve::greediness).
///
/// # Panics
///
/// Panics if `workers` is 0. A panic of one of the futures propagates out of `next`.
///
/// ```
/// use std::time::Duration;
/// let delays = [30u64, 10, 20];
/// let got = aplex::block_on(async {
///     let mut results = aplex::resolve(
///         delays.iter().map(|&ms| async move {
///             aplex::time::sleep(Duration::from_millis(ms)).await;
///             ms
///         }),
///         3,
///     );
///     let mut got = Vec::new();
///     while let Some(ms) = results.next().await {
///         got.push(ms);
///     }
///     got
/// });
/// assert_eq!(got, vec![30, 10, 20]); // input order, not completion order
/// ```
pub fn resolve<I>(futures: I, workers: usize) -> Resolve<I::IntoIter>
where
    I: IntoIterator,
    I::Item: Future,
{
    Resolve {
        core: Ordered::new(futures.into_iter(), workers, "resolve"),
    }
}

impl<I> Resolve<I>
where
    I: Iterator,
    I::Item: Future,
{
    /// At most `n` finished outputs may wait unread (default: no bound). Futures ahead of the
    /// reader are started only while fewer than `n + 1` are pulled and unread, so a slow reader
    /// slows the work down instead of filling memory.
    ///
    /// `0` means **no bound**, as aioextensions' `worker_greediness=0` does (and as the default).
    /// For one future at a time, pass `workers = 1` to [`resolve`].
    ///
    /// ```
    /// use std::time::Duration;
    /// aplex::block_on(async {
    ///     let mut results = aplex::resolve(
    ///         (0..20u32).map(|i| async move {
    ///             aplex::time::sleep(Duration::from_millis(1)).await;
    ///             i
    ///         }),
    ///         8,
    ///     )
    ///     .greediness(2);
    ///     let mut expected = 0;
    ///     while let Some(i) = results.next().await {
    ///         assert_eq!(i, expected);
    ///         assert!(results.buffered() <= 2);
    ///         expected += 1;
    ///     }
    ///     assert_eq!(expected, 20);
    /// });
    /// ```
    pub fn greediness(mut self, n: usize) -> Self {
        self.core.greediness = if n == 0 { usize::MAX } else { n };
        self
    }

    /// The next output in input order; `None` once every future's output has been handed out.
    pub async fn next(&mut self) -> Option<<I::Item as Future>::Output> {
        poll_fn(|cx| self.core.poll_next(cx)).await
    }

    /// Polls for the next output in input order: the core of [`next`](Resolve::next), for
    /// adapting a `Resolve` into another crate's stream type without a dependency, e.g.
    /// `futures::stream::poll_fn(move |cx| results.poll_next(cx))`.
    ///
    /// ```
    /// use std::future::poll_fn;
    /// let mut results = aplex::resolve([std::future::ready(1), std::future::ready(2)], 2);
    /// let first = aplex::block_on(poll_fn(|cx| results.poll_next(cx)));
    /// assert_eq!(first, Some(1));
    /// ```
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<<I::Item as Future>::Output>> {
        self.core.poll_next(cx)
    }

    /// How many finished outputs wait unread right now.
    ///
    /// ```
    /// use std::time::Duration;
    /// aplex::block_on(async {
    ///     let mut results = aplex::resolve(
    ///         [20u64, 0].into_iter().map(|ms| async move {
    ///             aplex::time::sleep(Duration::from_millis(ms)).await;
    ///             ms
    ///         }),
    ///         2,
    ///     );
    ///     assert_eq!(results.next().await, Some(20));
    ///     assert_eq!(results.buffered(), 1); // the second one finished first and waits
    ///     assert_eq!(results.next().await, Some(0));
    ///     assert_eq!(results.buffered(), 0);
    /// });
    /// ```
    pub fn buffered(&self) -> usize {
        self.core.buffered
    }

    /// How many futures are running (started, not finished) right now.
    ///
    /// ```
    /// let results = aplex::resolve([async { 1 }], 1);
    /// assert_eq!(results.running(), 0); // nothing starts before the first `next`
    /// ```
    pub fn running(&self) -> usize {
        self.core.running.len()
    }
}
