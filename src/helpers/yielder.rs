//! `Yielder` and `OrderedYielder`: spawn futures from plain synchronous code, then iterate their
//! outputs (aioutils' `Yielder` and `OrderedYielder`).
//!
//! # Ownership rules
//!
//! A yielder owns a [`Group`] (where its futures run) and both ends of an unbounded channel.
//! Each spawned future holds a clone of the sender and sends its outcome — its output, or its
//! panic's message — as its last act; the yielder drops its own sender when it turns into an
//! iterator, so the channel ends exactly when every spawned future has ended. The receiver and
//! the group live in a [`Source`], which the yielder hands to its iterator: reaching the end
//! joins the group; dropping the source earlier (the yielder before iterating, or the iterator
//! before its end) cancels what still runs.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::group::{catch_panic, Group};
use crate::sync::mpsc::{self, Receiver, Sender};

macro_rules! debug_with_group {
    ($name:ident, $($group:ident).+) => {
        impl<T> std::fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("group", &self.$($group).+)
                    .finish_non_exhaustive()
            }
        }
    };
}

debug_with_group!(Yielder, source.group);
debug_with_group!(OrderedYielder, source.group);
debug_with_group!(YielderIter, source.group);
debug_with_group!(OrderedYielderIter, source.group);

/// A future's outcome: its output, or the message of its panic.
type Outcome<T> = Result<T, String>;

/// Gives a panic message back to the thread that iterates.
fn reraise(kind: &str, msg: String) -> ! {
    panic!("aplex::{kind}: a spawned future panicked: {msg}")
}

/// The receiver and the group behind an iterator, and how to end them.
struct Source<M> {
    rx: Receiver<M>,
    group: Option<Group>,
}

impl<M> Source<M> {
    fn new(rx: Receiver<M>) -> Source<M> {
        Source {
            rx,
            group: Some(Group::new()),
        }
    }

    /// Spawns into the group (there until the source is dropped or runs out).
    fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        if let Some(group) = &self.group {
            group.spawn(future);
        }
    }

    /// The next message, or `None` (and the group joined) once every future has ended.
    fn recv(&mut self) -> Option<M> {
        let message = self.rx.recv_blocking();
        if message.is_none() {
            if let Some(group) = self.group.take() {
                // Every future sent its outcome (panics included) before its end, so the group
                // has nothing left to report.
                let _ = group.join();
            }
        }
        message
    }
}

impl<M> Drop for Source<M> {
    fn drop(&mut self) {
        if let Some(group) = self.group.take() {
            group.shared().cancel_all(); // nobody will read what is still to come
        }
    }
}

/// Futures spawned from sync code whose outputs you iterate **in completion order**
/// (aioutils' `Yielder`).
///
/// [`spawn`](Yielder::spawn) futures (from any thread: a `Yielder` is `Sync`), then iterate the
/// yielder: each output comes as soon as its future ends, and the iteration ends once every
/// future has. The futures run on threads of the yielder's own (see [`Group`]); the caller
/// needs no runtime.
///
/// aioutils skips `None` outputs; here every output is yielded. To skip them, spawn futures of
/// `Option<T>` and iterate with `.into_iter().flatten()`.
///
/// Dropping the yielder without iterating it, or the iterator before its end, cancels the
/// futures still running (their futures are dropped) rather than waiting for them.
///
/// # Panics
///
/// If a spawned future panicked, the iteration panics with its message at the point where its
/// output would have come.
///
/// ```
/// use std::time::Duration;
/// let yielder = aplex::Yielder::new();
/// for ms in [30u64, 10, 20] {
///     yielder.spawn(async move {
///         aplex::time::sleep(Duration::from_millis(ms)).await;
///         (ms > 15).then_some(ms) // an Option, to show the filtering
///     });
/// }
/// let big: Vec<u64> = yielder.into_iter().flatten().collect();
/// assert_eq!(big, vec![20, 30]); // completion order, `None` skipped
/// ```
pub struct Yielder<T> {
    tx: Sender<Outcome<T>>,
    source: Source<Outcome<T>>,
}

impl<T: Send + 'static> Default for Yielder<T> {
    fn default() -> Yielder<T> {
        Yielder::new()
    }
}

impl<T: Send + 'static> Yielder<T> {
    /// An empty yielder.
    ///
    /// # Panics
    ///
    /// Panics if its worker threads cannot be started.
    ///
    /// ```
    /// let yielder: aplex::Yielder<u8> = aplex::Yielder::new();
    /// assert_eq!(yielder.into_iter().count(), 0);
    /// ```
    pub fn new() -> Yielder<T> {
        let (tx, rx) = mpsc::unbounded();
        Yielder {
            tx,
            source: Source::new(rx),
        }
    }

    /// Starts `future`; its output comes out of the iteration when it ends.
    ///
    /// ```
    /// let yielder = aplex::Yielder::new();
    /// std::thread::scope(|s| {
    ///     for i in 0..4 {
    ///         let y = &yielder;
    ///         s.spawn(move || y.spawn(async move { i * 10 }));
    ///     }
    /// });
    /// let mut got: Vec<i32> = yielder.into_iter().collect();
    /// got.sort();
    /// assert_eq!(got, vec![0, 10, 20, 30]);
    /// ```
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let tx = self.tx.clone();
        self.source.spawn(async move {
            let outcome = catch_panic(future).await;
            let _ = tx.try_send(outcome); // fails only if the iterator is gone
        });
    }
}

impl<T> IntoIterator for Yielder<T> {
    type Item = T;
    type IntoIter = YielderIter<T>;

    fn into_iter(self) -> YielderIter<T> {
        let Yielder { tx, source } = self;
        drop(tx);
        YielderIter { source }
    }
}

/// The blocking iterator of a [`Yielder`]: outputs in completion order.
pub struct YielderIter<T> {
    source: Source<Outcome<T>>,
}

impl<T> Iterator for YielderIter<T> {
    type Item = T;

    /// Blocks for the next output to be ready; `None` once every future has ended.
    fn next(&mut self) -> Option<T> {
        match self.source.recv()? {
            Ok(value) => Some(value),
            Err(msg) => reraise("Yielder", msg),
        }
    }
}

/// Futures spawned from sync code whose outputs you iterate **in spawn order**
/// (aioutils' `OrderedYielder`).
///
/// The same as [`Yielder`], except that each output waits for every output spawned before it.
/// Spawns from several threads are ordered by when each `spawn` call took its place. Dropping
/// it without iterating cancels its futures, as for [`Yielder`].
///
/// # Panics
///
/// If a spawned future panicked, the iteration panics with its message at that future's place.
///
/// ```
/// use std::time::Duration;
/// let yielder = aplex::OrderedYielder::new();
/// for ms in [30u64, 10, 20] {
///     yielder.spawn(async move {
///         aplex::time::sleep(Duration::from_millis(ms)).await;
///         ms
///     });
/// }
/// let got: Vec<u64> = yielder.into_iter().collect();
/// assert_eq!(got, vec![30, 10, 20]); // spawn order
/// ```
pub struct OrderedYielder<T> {
    next_index: AtomicUsize,
    tx: Sender<(usize, Outcome<T>)>,
    source: Source<(usize, Outcome<T>)>,
}

impl<T: Send + 'static> Default for OrderedYielder<T> {
    fn default() -> OrderedYielder<T> {
        OrderedYielder::new()
    }
}

impl<T: Send + 'static> OrderedYielder<T> {
    /// An empty yielder.
    ///
    /// # Panics
    ///
    /// Panics if its worker threads cannot be started.
    ///
    /// ```
    /// let yielder: aplex::OrderedYielder<u8> = aplex::OrderedYielder::new();
    /// assert_eq!(yielder.into_iter().next(), None);
    /// ```
    pub fn new() -> OrderedYielder<T> {
        let (tx, rx) = mpsc::unbounded();
        OrderedYielder {
            next_index: AtomicUsize::new(0),
            tx,
            source: Source::new(rx),
        }
    }

    /// Starts `future`; its output comes out of the iteration after every output spawned
    /// before it.
    ///
    /// ```
    /// let yielder = aplex::OrderedYielder::new();
    /// yielder.spawn(async { "first" });
    /// yielder.spawn(async { "second" });
    /// assert_eq!(yielder.into_iter().collect::<Vec<_>>(), vec!["first", "second"]);
    /// ```
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        let index = self.next_index.fetch_add(1, Ordering::Relaxed);
        let tx = self.tx.clone();
        self.source.spawn(async move {
            let outcome = catch_panic(future).await;
            let _ = tx.try_send((index, outcome)); // fails only if the iterator is gone
        });
    }
}

impl<T> IntoIterator for OrderedYielder<T> {
    type Item = T;
    type IntoIter = OrderedYielderIter<T>;

    fn into_iter(self) -> OrderedYielderIter<T> {
        let OrderedYielder { tx, source, .. } = self;
        drop(tx);
        OrderedYielderIter {
            source,
            next: 0,
            early: BTreeMap::new(),
        }
    }
}

/// The blocking iterator of an [`OrderedYielder`]: outputs in spawn order.
pub struct OrderedYielderIter<T> {
    source: Source<(usize, Outcome<T>)>,
    /// The place of the next output to hand out.
    next: usize,
    /// Outputs that ended before an earlier one, by place.
    early: BTreeMap<usize, Outcome<T>>,
}

impl<T> Iterator for OrderedYielderIter<T> {
    type Item = T;

    /// Blocks for the next output in spawn order; `None` once every future has ended.
    fn next(&mut self) -> Option<T> {
        let outcome = loop {
            if let Some(outcome) = self.early.remove(&self.next) {
                break outcome;
            }
            match self.source.recv() {
                Some((index, outcome)) if index == self.next => break outcome,
                Some((index, outcome)) => {
                    self.early.insert(index, outcome);
                }
                // Every future has ended: a place never filled was a future dropped unrun.
                None => {
                    let (index, outcome) = self.early.pop_first()?;
                    self.next = index;
                    break outcome;
                }
            }
        };
        self.next += 1;
        match outcome {
            Ok(value) => Some(value),
            Err(msg) => reraise("OrderedYielder", msg),
        }
    }
}
