//! `Map<T>`: a function applied over an iterator on a pool, results in input order.

mod feed;
mod flight;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub(crate) use self::feed::SubmitJobs;
use self::feed::{Feed, FlexSource, Source, STAGE};
pub(crate) use self::flight::{Chunk, ChunkResults, DenseResults, Single};
use self::flight::{InFlight, Landed, Ready};
use super::cell::{Job, Outcome, PlainJob, QueuedCounts};
use super::Handle;
use crate::time::{sleep_until, Sleep};
use crate::Error;

/// Items in flight, at most, across the pool (as chunks of `chunk_size`).
const WINDOW_ITEMS: usize = 4096;

/// The results of [`ThreadPool::map`](crate::ThreadPool::map), in input order.
///
/// A blocking [`Iterator`], and an async stream through [`Map::next`] — note that
/// `map.next()` written as a method call is the **async** one (inherent methods come first);
/// in blocking code use `for`, the iterator adapters, or `Iterator::next(&mut map)`. Each item's result is
/// `Ok(value)` or the error of that item (a panic in `f` is `Error::Panicked` for that item
/// only). The map is lazy: it pulls input only to keep a bounded window of items in flight.
///
/// ```
/// use std::time::Duration;
/// let pool = aplex::ThreadPool::new(2);
/// let out: Vec<_> = pool
///     .map(|x: u32| x + 1, 0..1000)
///     .chunk_size(100) // 100 items per job: fewer wake-ups for tiny items
///     .timeout(Duration::from_secs(10))
///     .collect();
/// assert_eq!(out.len(), 1000);
/// assert_eq!(out[999], Ok(1000));
/// ```
#[must_use = "a Map does nothing until it is iterated"]
pub struct Map<T> {
    /// Workers of the pool, to size the window.
    workers: usize,
    source: Option<Feed<T>>,
    /// Submitted items and chunks, oldest first.
    in_flight: VecDeque<InFlight<T>>,
    /// Results of the oldest finished chunk not yet handed out.
    ready: Ready<T>,
    chunk_size: usize,
    deadline: Option<Instant>,
    /// The async side's timer for `deadline`, made when it first waits.
    timer: Option<Sleep>,
    /// The time ran out: everything left was cancelled; nothing more comes.
    ended: bool,
    /// The pool's counts of waiting works, which a cancel of a waiting item lowers (a thread
    /// pool's map; kept once here rather than in every item's handle).
    queued_in: Option<Arc<dyn QueuedCounts>>,
}

impl<T> std::fmt::Debug for Map<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("chunk_size", &self.chunk_size)
            .field("in_flight", &self.in_flight.len())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Map<T> {
    /// A map over `iter` that runs `f` on each item: `submit_one` sends one item as a work of
    /// its own (chunk size 1: its outcome is the item's result), `submit_chunk` sends a chunk
    /// (a closure that applies `f` to its items, each panic caught as that item's error).
    /// `workers` sizes the window of work in flight. (The elastic pool's map; the thread
    /// pool stages its single items in batches instead.)
    #[cfg(feature = "elastic")]
    pub(crate) fn from_items<A, F, I, S1, SN>(
        f: F,
        mut iter: I,
        workers: usize,
        mut submit_one: S1,
        mut submit_chunk: SN,
    ) -> Map<T>
    where
        F: Fn(A) -> T + Send + Sync + 'static,
        I: Iterator<Item = A> + Send + 'static,
        A: Send + 'static,
        S1: FnMut(Single<A, F>) -> Handle<T> + Send + 'static,
        SN: FnMut(Chunk<A, F>) -> Handle<DenseResults<T>> + Send + 'static,
    {
        let f = Arc::new(f);
        Map::with_source(
            workers,
            Box::new(move |n: usize| {
                if n == 1 {
                    let item = iter.next()?;
                    return Some(InFlight::One(submit_one(Single { f: f.clone(), item })));
                }
                let items: Vec<A> = iter.by_ref().take(n).collect();
                if items.is_empty() {
                    return None;
                }
                let len = items.len();
                Some(InFlight::Dense(
                    len,
                    submit_chunk(Chunk {
                        f: f.clone(),
                        items,
                    }),
                ))
            }),
        )
    }

    /// A map fed by `source`, which submits the next chunk of up to `n` items and returns its
    /// size and handle, or `None` at the end of the input.
    #[cfg_attr(not(feature = "process"), allow(dead_code))] // used by the process pool
    pub(crate) fn from_source(workers: usize, mut source: Source<T>) -> Map<T> {
        Map::with_source(
            workers,
            Box::new(move |n| source(n).map(|(len, h)| InFlight::Dense(len, h))),
        )
    }

    /// A thread pool's map over `iter`: items and chunks become plain jobs, staged and sent
    /// to the pool by `submit` in batches.
    pub(crate) fn staged<A, F, I>(
        f: F,
        mut iter: I,
        workers: usize,
        submit: SubmitJobs,
        queued_in: Arc<dyn QueuedCounts>,
    ) -> Map<T>
    where
        F: Fn(A) -> T + Send + Sync + 'static,
        I: Iterator<Item = A> + Send + 'static,
        A: Send + 'static,
    {
        let f = Arc::new(f);
        let pull = move |n: usize, staged: &mut Vec<Arc<dyn Job>>| {
            if n == 1 {
                let item = Single {
                    f: f.clone(),
                    item: iter.next()?,
                };
                let job = PlainJob::new(move || item.run());
                let handle = Handle::new(job.clone() as Arc<dyn Outcome<T>>);
                staged.push(job);
                return Some(InFlight::One(handle));
            }
            let items: Vec<A> = iter.by_ref().take(n).collect();
            if items.is_empty() {
                return None;
            }
            let len = items.len();
            let chunk = Chunk {
                f: f.clone(),
                items,
            };
            let job = PlainJob::new(move || chunk.run());
            let handle = Handle::new(job.clone() as Arc<dyn Outcome<DenseResults<T>>>);
            staged.push(job);
            Some(InFlight::Dense(len, handle))
        };
        let mut map = Map::with_source(workers, Box::new(|_| None));
        map.queued_in = Some(queued_in);
        map.source = Some(Feed::Staged {
            pull: Box::new(pull),
            staged: Vec::with_capacity(STAGE),
            submit,
        });
        map
    }

    fn with_source(workers: usize, source: FlexSource<T>) -> Map<T> {
        Map {
            workers: workers.max(1),
            source: Some(Feed::Each(source)),
            in_flight: VecDeque::new(),
            ready: Ready::empty(),
            chunk_size: 1,
            deadline: None,
            timer: None,
            ended: false,
            queued_in: None,
        }
    }
}

impl<T> Map<T> {
    /// Groups `n` items into one job (default 1): fewer wake-ups and frames for tiny items.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0.
    pub fn chunk_size(mut self, n: usize) -> Map<T> {
        assert!(
            n > 0,
            "aplex::Map::chunk_size: the chunk size must be at least 1"
        );
        self.chunk_size = n;
        self
    }

    /// Bounds the whole map, from now: once `timeout` passes, the next item yields
    /// `Err(Error::TimedOut)`, every remaining item is cancelled, and the map ends.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use aplex::sync::Event;
    ///
    /// let pool = aplex::ThreadPool::new(1);
    /// let go = Arc::new(Event::new());
    /// let g = Arc::clone(&go);
    /// let mut out = pool
    ///     .map(move |_: u32| g.wait_blocking(), [1, 2, 3]) // each waits for `go`
    ///     .timeout(Duration::from_millis(20));
    /// assert_eq!(Iterator::next(&mut out), Some(Err(aplex::Error::TimedOut)));
    /// assert_eq!(Iterator::next(&mut out), None); // 2 and 3 were cancelled
    /// go.set(); // lets the running item end
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Map<T> {
        self.deadline = Instant::now().checked_add(timeout);
        self.timer = None;
        self
    }

    /// Keeps the window of chunks in flight full.
    fn fill(&mut self) {
        let window = (WINDOW_ITEMS / self.chunk_size).max(8 * self.workers);
        let Some(source) = &mut self.source else {
            return;
        };
        // A staged feed of single items refills the window by halves, so that its batches are
        // worth sending.
        let staged = matches!(source, Feed::Staged { .. }) && self.chunk_size == 1;
        if staged && self.in_flight.len() > window / 2 {
            return;
        }
        while self.in_flight.len() < window {
            match source.pull(self.chunk_size) {
                Some(chunk) => self.in_flight.push_back(chunk),
                None => break,
            }
        }
        source.flush();
        if self.in_flight.len() < window {
            self.source = None; // the input ended
        }
    }

    /// The oldest work in flight, after refilling the window; `None` at the end of the map.
    fn oldest(&mut self) -> Option<&mut InFlight<T>> {
        if self.ended {
            return None;
        }
        self.fill();
        self.in_flight.front_mut()
    }

    /// Takes in the outcome of the oldest work (just popped): the item to hand out, if one.
    fn land(&mut self, landed: Landed<T>) -> Option<Result<T, Error>> {
        match landed {
            Landed::One(outcome) => Some(outcome),
            Landed::Dense(len, outcome) => {
                match outcome {
                    Ok(dense) if dense.values.len() + dense.failed.len() == len => {
                        self.ready = Ready::Dense {
                            values: dense.values.into_iter(),
                            failed: dense.failed.into_iter(),
                            at: 0,
                        };
                    }
                    Ok(dense) => {
                        // (A chunk run here accounts for every item; were one missing, every
                        // item would fail rather than shift.)
                        let got = dense.values.len() + dense.failed.len();
                        let e = format!("a chunk of {len} items came back with {got} results");
                        self.accept(len, Err(Error::Wire(e)));
                    }
                    Err(e) => self.accept(len, Err(e)),
                }
                self.ready.next()
            }
        }
    }

    /// Takes in the outcome of the oldest chunk, of `len` items. A chunk that came back with
    /// another count of results (a worker that broke the protocol) fails every one of its
    /// items, rather than shifting or dropping any.
    fn accept(&mut self, len: usize, outcome: Result<ChunkResults<T>, Error>) {
        let outcome = match outcome {
            Ok(results) if results.len() != len => Err(Error::Wire(format!(
                "a chunk of {len} items came back with {} results",
                results.len()
            ))),
            other => other,
        };
        self.ready = Ready::Each(match outcome {
            Ok(results) => results.into_iter(),
            // The whole chunk failed (cancelled, shut down): every item says so.
            Err(e) => {
                let mut all = Vec::with_capacity(len);
                all.extend((1..len).map(|_| Err(e.duplicate())));
                if len > 0 {
                    all.push(Err(e));
                }
                all.into_iter()
            }
        });
    }

    /// The time ran out: cancel everything left and end.
    fn expire(&mut self) -> Option<Result<T, Error>> {
        self.ended = true;
        self.source = None;
        self.timer = None;
        for pending in self.in_flight.drain(..) {
            pending.cancel(self.queued_in.as_deref());
        }
        self.ready = Ready::empty();
        Some(Err(Error::TimedOut))
    }

    /// The next result in input order, waiting for it without blocking the thread.
    ///
    /// Cancel-safe: dropping this future before it resolves loses no item (the next call picks
    /// up where it stopped). The future is `Send` when `T` is, so it can be awaited inside
    /// another runtime's spawned task. The async and the blocking `next` may be mixed on one
    /// map: they share one sequence.
    ///
    /// ```
    /// let pool = aplex::ThreadPool::new(2);
    /// let total = aplex::block_on(async {
    ///     let mut results = pool.map(|x: u32| x * 10, 1..=3).chunk_size(2);
    ///     let mut total = 0;
    ///     while let Some(r) = results.next().await {
    ///         total += r.unwrap();
    ///     }
    ///     total
    /// });
    /// assert_eq!(total, 60);
    /// ```
    #[allow(clippy::should_implement_trait)] // it does implement Iterator; this is the async twin
    pub async fn next(&mut self) -> Option<Result<T, Error>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Polls for the next result in input order: the core of [`next`](Map::next), for
    /// adapting a `Map` into another crate's stream type without a dependency, e.g.
    /// `futures::stream::poll_fn(move |cx| map.poll_next(cx))`.
    ///
    /// `Ready(None)` once the map has ended (and at every poll after that).
    ///
    /// ```
    /// use std::future::poll_fn;
    /// let pool = aplex::ThreadPool::new(2);
    /// let mut squares = pool.map(|x: u64| x * x, 1..=4).chunk_size(3);
    /// let first = aplex::block_on(poll_fn(|cx| squares.poll_next(cx)));
    /// assert_eq!(first, Some(Ok(1)));
    /// ```
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        loop {
            if let Some(r) = self.ready.next() {
                return Poll::Ready(Some(r));
            }
            let Some(oldest) = self.oldest() else {
                return Poll::Ready(None);
            };
            if let Poll::Ready(landed) = oldest.poll_landed(cx) {
                self.in_flight.pop_front();
                match self.land(landed) {
                    Some(item) => return Poll::Ready(Some(item)),
                    None => continue, // an empty chunk
                }
            }
            let Some(deadline) = self.deadline else {
                return Poll::Pending;
            };
            let timer = self.timer.get_or_insert_with(|| sleep_until(deadline));
            return match Pin::new(timer).poll(cx) {
                Poll::Ready(()) => Poll::Ready(self.expire()),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

impl<T> Iterator for Map<T> {
    type Item = Result<T, Error>;

    #[inline]
    fn next(&mut self) -> Option<Result<T, Error>> {
        // The hot path, inlined into the caller's loop: the results of a finished chunk.
        match self.ready.next() {
            Some(r) => Some(r),
            None => self.next_landed(),
        }
    }
}

impl<T> Map<T> {
    /// The blocking `next` once the ready results are spent: waits for the oldest work.
    fn next_landed(&mut self) -> Option<Result<T, Error>> {
        loop {
            if let Some(r) = self.ready.next() {
                return Some(r);
            }
            let deadline = self.deadline;
            let Some(landed) = self.oldest()?.wait_landed(deadline) else {
                return self.expire();
            };
            self.in_flight.pop_front();
            if let Some(item) = self.land(landed) {
                return Some(item);
            }
        }
    }
}

impl<T> Drop for Map<T> {
    fn drop(&mut self) {
        // Nobody will read these results: do not run what has not started.
        for pending in self.in_flight.drain(..) {
            pending.cancel(self.queued_in.as_deref());
        }
    }
}
