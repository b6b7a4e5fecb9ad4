//! `Map<T>`: a function applied over an iterator on a pool, results in input order.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Handle;
use crate::runtime::task::panic_message;
use crate::Error;

/// Items in flight, at most, across the pool (as chunks of `chunk_size`).
const WINDOW_ITEMS: usize = 4096;

/// The results of one chunk of items.
pub(crate) type ChunkResults<T> = Vec<Result<T, Error>>;

/// Pulls the next chunk of up to `n` items from the input and submits it.
type Source<T> = Box<dyn FnMut(usize) -> Option<(usize, Handle<ChunkResults<T>>)> + Send>;

/// Pulls the next item, or chunk of up to `n` items, and submits it.
type FlexSource<T> = Box<dyn FnMut(usize) -> Option<InFlight<T>> + Send>;

/// Submitted input whose results have not been handed out.
enum InFlight<T> {
    /// One item, run as one work: its outcome is the item's result.
    One(Handle<T>),
    /// A chunk of `len` items in one work, with a result per item.
    Chunk(usize, Handle<ChunkResults<T>>),
}

/// What `advance` found.
enum Step<T> {
    /// The next item (or `None`: the map ended).
    Done(Option<Result<T, Error>>),
    /// Wait for this work first.
    Wait(InFlight<T>),
}

/// The outcome of a waited-for work.
enum Landed<T> {
    One(Result<T, Error>),
    Chunk(usize, Result<ChunkResults<T>, Error>),
}

impl<T> InFlight<T> {
    fn cancel(&self) -> bool {
        match self {
            InFlight::One(h) => h.cancel(),
            InFlight::Chunk(_, h) => h.cancel(),
        }
    }
}

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
    source: Option<FlexSource<T>>,
    /// Submitted items and chunks, oldest first.
    in_flight: VecDeque<InFlight<T>>,
    /// Results of the oldest finished chunk not yet handed out.
    ready: std::vec::IntoIter<Result<T, Error>>,
    chunk_size: usize,
    deadline: Option<Instant>,
    /// The time ran out: everything left was cancelled; nothing more comes.
    ended: bool,
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
    /// `workers` sizes the window of work in flight.
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
        SN: FnMut(Chunk<A, F>) -> Handle<ChunkResults<T>> + Send + 'static,
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
                Some(InFlight::Chunk(
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
    pub(crate) fn from_source(workers: usize, mut source: Source<T>) -> Map<T> {
        Map::with_source(
            workers,
            Box::new(move |n| source(n).map(|(len, h)| InFlight::Chunk(len, h))),
        )
    }

    fn with_source(workers: usize, source: FlexSource<T>) -> Map<T> {
        Map {
            workers: workers.max(1),
            source: Some(source),
            in_flight: VecDeque::new(),
            ready: Vec::new().into_iter(),
            chunk_size: 1,
            deadline: None,
            ended: false,
        }
    }
}

/// One item of a map's input with the function to apply.
pub(crate) struct Single<A, F> {
    f: Arc<F>,
    item: A,
}

impl<A, T, F: Fn(A) -> T> Single<A, F> {
    /// Applies the function (a panic unwinds to the caller, which owns the item's outcome).
    pub(crate) fn run(self) -> T {
        (self.f)(self.item)
    }
}

/// One chunk of a map's input with the function to apply; calling it runs the chunk.
pub(crate) struct Chunk<A, F> {
    f: Arc<F>,
    items: Vec<A>,
}

impl<A, T, F: Fn(A) -> T> Chunk<A, F> {
    /// Applies the function to every item, a panic becoming that item's error.
    pub(crate) fn run(self) -> ChunkResults<T> {
        let f = &*self.f;
        self.items
            .into_iter()
            .map(|a| {
                catch_unwind(AssertUnwindSafe(|| f(a)))
                    .map_err(|p| Error::Panicked(panic_message(&*p)))
            })
            .collect()
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
    /// use std::time::Duration;
    /// let pool = aplex::ThreadPool::new(1);
    /// let mut out = pool
    ///     .map(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), [1, 500, 500])
    ///     .timeout(Duration::from_millis(100));
    /// assert_eq!(Iterator::next(&mut out), Some(Ok(())));
    /// assert_eq!(Iterator::next(&mut out), Some(Err(aplex::Error::TimedOut)));
    /// assert_eq!(Iterator::next(&mut out), None);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Map<T> {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// Keeps the window of chunks in flight full.
    fn fill(&mut self) {
        let window = (WINDOW_ITEMS / self.chunk_size).max(2 * self.workers);
        while self.in_flight.len() < window {
            let Some(source) = &mut self.source else {
                return;
            };
            match source(self.chunk_size) {
                Some(chunk) => self.in_flight.push_back(chunk),
                None => self.source = None,
            }
        }
    }

    /// The non-blocking part of both `next`s once no result is ready: the end, or the oldest
    /// work in flight to wait for.
    fn advance(&mut self) -> Step<T> {
        if self.ended {
            return Step::Done(None);
        }
        self.fill();
        match self.in_flight.pop_front() {
            Some(pending) => Step::Wait(pending),
            None => Step::Done(None),
        }
    }

    /// Takes in what the wait for the oldest work gave (`None`: the deadline passed first).
    /// Returns the item to hand out, if that decides one.
    fn land(&mut self, landed: Option<Landed<T>>) -> Option<Option<Result<T, Error>>> {
        match landed {
            None => Some(self.expire()),
            Some(Landed::One(outcome)) => Some(Some(outcome)),
            Some(Landed::Chunk(len, outcome)) => {
                self.accept(len, outcome);
                None
            }
        }
    }

    /// Takes in the outcome of the oldest chunk.
    fn accept(&mut self, len: usize, outcome: Result<ChunkResults<T>, Error>) {
        self.ready = match outcome {
            Ok(results) => results.into_iter(),
            // The whole chunk failed (cancelled, shut down): every item says so.
            Err(e) => {
                let mut all = Vec::with_capacity(len);
                all.extend((1..len).map(|_| Err(e.duplicate())));
                all.push(Err(e));
                all.into_iter()
            }
        };
    }

    /// The time ran out: cancel everything left and end.
    fn expire(&mut self) -> Option<Result<T, Error>> {
        self.ended = true;
        self.source = None;
        for pending in self.in_flight.drain(..) {
            pending.cancel();
        }
        self.ready = Vec::new().into_iter();
        Some(Err(Error::TimedOut))
    }

    /// The next result in input order, waiting for it without blocking the thread.
    ///
    /// ```
    /// let pool = aplex::ThreadPool::new(2);
    /// let total = aplex::block_on(async {
    ///     let mut results = pool.map(|x: u32| x * 10, 1..=3);
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
        loop {
            let landed = match self.advance() {
                Step::Done(item) => return item,
                Step::Wait(InFlight::One(mut h)) => {
                    self.await_deadline(&mut h).await.map(Landed::One)
                }
                Step::Wait(InFlight::Chunk(len, mut h)) => self
                    .await_deadline(&mut h)
                    .await
                    .map(|o| Landed::Chunk(len, o)),
            };
            if let Some(item) = self.land(landed) {
                return item;
            }
        }
    }

    /// Awaits one handle until the map's deadline; `None` (and the work cancelled) past it.
    async fn await_deadline<R>(&self, handle: &mut Handle<R>) -> Option<Result<R, Error>> {
        let Some(deadline) = self.deadline else {
            return Some(handle.await);
        };
        match crate::time::timeout_at(deadline, &mut *handle).await {
            Ok(outcome) => Some(outcome),
            Err(_) => {
                handle.cancel();
                None
            }
        }
    }

    /// Waits for one handle until the map's deadline; `None` (and the work cancelled) past it.
    fn wait_deadline<R>(&self, handle: &mut Handle<R>) -> Option<Result<R, Error>> {
        let outcome = handle.wait_until(self.deadline);
        if outcome.is_none() {
            handle.cancel();
        }
        outcome
    }
}

impl<T> Iterator for Map<T> {
    type Item = Result<T, Error>;

    fn next(&mut self) -> Option<Result<T, Error>> {
        loop {
            // The hot path: the results of a finished chunk.
            if let Some(r) = self.ready.next() {
                return Some(r);
            }
            let landed = match self.advance() {
                Step::Done(item) => return item,
                Step::Wait(InFlight::One(mut h)) => self.wait_deadline(&mut h).map(Landed::One),
                Step::Wait(InFlight::Chunk(len, mut h)) => {
                    self.wait_deadline(&mut h).map(|o| Landed::Chunk(len, o))
                }
            };
            if let Some(item) = self.land(landed) {
                return item;
            }
        }
    }
}

impl<T> Drop for Map<T> {
    fn drop(&mut self) {
        // Nobody will read these results: do not run what has not started.
        for pending in self.in_flight.drain(..) {
            pending.cancel();
        }
    }
}
