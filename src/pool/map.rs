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
    source: Option<Source<T>>,
    /// Submitted chunks, oldest first, with their sizes.
    in_flight: VecDeque<(usize, Handle<ChunkResults<T>>)>,
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
    /// A map over `iter` that runs `f` on each item, in chunks: `submit` sends one chunk (a
    /// closure that applies `f` to its items, each panic caught as that item's error) to the
    /// pool and returns its handle. `workers` sizes the window of chunks in flight.
    pub(crate) fn from_chunks<A, F, I, S>(
        f: F,
        mut iter: I,
        workers: usize,
        mut submit: S,
    ) -> Map<T>
    where
        F: Fn(A) -> T + Send + Sync + 'static,
        I: Iterator<Item = A> + Send + 'static,
        A: Send + 'static,
        S: FnMut(Chunk<A, F>) -> Handle<ChunkResults<T>> + Send + 'static,
    {
        let f = Arc::new(f);
        Map::from_source(
            workers,
            Box::new(move |n: usize| {
                let items: Vec<A> = iter.by_ref().take(n).collect();
                if items.is_empty() {
                    return None;
                }
                let len = items.len();
                Some((
                    len,
                    submit(Chunk {
                        f: f.clone(),
                        items,
                    }),
                ))
            }),
        )
    }

    /// A map fed by `source`, which submits the next chunk of up to `n` items and returns its
    /// size and handle, or `None` at the end of the input.
    pub(crate) fn from_source(workers: usize, source: Source<T>) -> Map<T> {
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

    /// Takes in the outcome of the oldest chunk.
    fn accept(&mut self, len: usize, outcome: Result<ChunkResults<T>, Error>) {
        self.ready = match outcome {
            Ok(results) => results.into_iter(),
            // The whole chunk failed (cancelled, shut down): every item says so.
            Err(e) => {
                let mut all = Vec::with_capacity(len);
                all.extend((1..len).map(|_| Err(duplicate(&e))));
                all.push(Err(e));
                all.into_iter()
            }
        };
    }

    /// The time ran out: cancel everything left and end.
    fn expire(&mut self) -> Option<Result<T, Error>> {
        self.ended = true;
        self.source = None;
        for (_, handle) in self.in_flight.drain(..) {
            handle.cancel();
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
            if let Some(r) = self.ready.next() {
                return Some(r);
            }
            if self.ended {
                return None;
            }
            self.fill();
            let (len, mut handle) = self.in_flight.pop_front()?;
            let outcome = match self.deadline {
                None => (&mut handle).await,
                Some(deadline) => match crate::time::timeout_at(deadline, &mut handle).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        handle.cancel();
                        return self.expire();
                    }
                },
            };
            self.accept(len, outcome);
        }
    }
}

impl<T> Iterator for Map<T> {
    type Item = Result<T, Error>;

    fn next(&mut self) -> Option<Result<T, Error>> {
        loop {
            if let Some(r) = self.ready.next() {
                return Some(r);
            }
            if self.ended {
                return None;
            }
            self.fill();
            let (len, mut handle) = self.in_flight.pop_front()?;
            let outcome = match self.deadline {
                None => handle.wait(),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match handle.wait_timeout(left) {
                        Err(Error::TimedOut) => {
                            handle.cancel();
                            return self.expire();
                        }
                        outcome => outcome,
                    }
                }
            };
            self.accept(len, outcome);
        }
    }
}

impl<T> Drop for Map<T> {
    fn drop(&mut self) {
        // Nobody will read these results: do not run what has not started.
        for (_, handle) in self.in_flight.drain(..) {
            handle.cancel();
        }
    }
}

/// A copy of an error, for every item of a chunk that failed as a whole.
fn duplicate(e: &Error) -> Error {
    match e {
        Error::Panicked(m) => Error::Panicked(m.clone()),
        Error::Cancelled => Error::Cancelled,
        Error::TimedOut => Error::TimedOut,
        Error::WorkerLost(m) => Error::WorkerLost(m.clone()),
        Error::ShutDown => Error::ShutDown,
        Error::QueueFull => Error::QueueFull,
        Error::Remote(m) => Error::Remote(m.clone()),
        Error::Wire(m) => Error::Wire(m.clone()),
        Error::Io(io) => Error::Io(std::io::Error::new(io.kind(), io.to_string())),
    }
}
