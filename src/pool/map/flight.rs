//! The units a map sends to its pool (one item, or a chunk of items, with the function) and what
//! comes back from them, in flight until their results are handed out.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::pool::cell::QueuedCounts;
use crate::pool::Handle;
use crate::runtime::task::take_panic_message;
use crate::Error;

/// The results of one chunk of items, one `Result` each (a chunk that failed as a whole).
pub(crate) type ChunkResults<T> = Vec<Result<T, Error>>;

/// The results of one chunk (run in this process, or decoded from a worker process's reply):
/// the values of the items that succeeded, in order, and the items that failed, by their index
/// in the chunk (ascending). A chunk of `u64`s hands back 8 bytes an item rather than a 32-byte
/// `Result`: the reader pulls a quarter of the memory across cores.
pub(crate) struct DenseResults<T> {
    pub(crate) values: Vec<T>,
    pub(crate) failed: Vec<(usize, Error)>,
}

/// Submitted input whose results have not been handed out.
pub(super) enum InFlight<T> {
    /// One item, run as one work: its outcome is the item's result.
    One(Handle<T>),
    /// A chunk of `len` items run in this process, its results dense.
    Dense(usize, Handle<DenseResults<T>>),
}

/// The outcome of a waited-for work.
pub(super) enum Landed<T> {
    One(Result<T, Error>),
    Dense(usize, Result<DenseResults<T>, Error>),
}

impl<T> InFlight<T> {
    /// Cancels the work; `queued_in`: the pool's counts of waiting works, to lower at once.
    pub(super) fn cancel(&self, queued_in: Option<&dyn QueuedCounts>) -> bool {
        match self {
            InFlight::One(h) => h.cancel_counted(queued_in),
            InFlight::Dense(_, h) => h.cancel_counted(queued_in),
        }
    }

    /// Polls the work; its outcome, tagged with its shape.
    pub(super) fn poll_landed(&mut self, cx: &mut Context<'_>) -> Poll<Landed<T>> {
        match self {
            InFlight::One(h) => Pin::new(h).poll(cx).map(Landed::One),
            InFlight::Dense(len, h) => {
                let len = *len;
                Pin::new(h).poll(cx).map(|o| Landed::Dense(len, o))
            }
        }
    }

    /// Blocks until the work ends or `deadline` passes (`None`).
    pub(super) fn wait_landed(&mut self, deadline: Option<Instant>) -> Option<Landed<T>> {
        match self {
            InFlight::One(h) => h.wait_until(deadline).map(Landed::One),
            InFlight::Dense(len, h) => {
                let len = *len;
                h.wait_until(deadline).map(|o| Landed::Dense(len, o))
            }
        }
    }
}

/// The results of the oldest landed chunk not yet handed out.
pub(super) enum Ready<T> {
    /// One result an item (a process pool's chunk, or a chunk that failed as a whole).
    Each(std::vec::IntoIter<Result<T, Error>>),
    /// A dense chunk: `at` is the index of the next item, `failed` the failures still ahead.
    Dense {
        values: std::vec::IntoIter<T>,
        failed: std::vec::IntoIter<(usize, Error)>,
        at: usize,
    },
}

impl<T> Ready<T> {
    pub(super) fn empty() -> Ready<T> {
        Ready::Each(Vec::new().into_iter())
    }

    #[inline]
    pub(super) fn next(&mut self) -> Option<Result<T, Error>> {
        match self {
            Ready::Each(results) => results.next(),
            Ready::Dense { values, failed, at } => {
                let index = *at;
                *at += 1;
                if failed.as_slice().first().is_some_and(|(i, _)| *i == index) {
                    return failed.next().map(|(_, e)| Err(e));
                }
                values.next().map(Ok)
            }
        }
    }
}

/// One item of a map's input with the function to apply.
pub(crate) struct Single<A, F> {
    pub(super) f: Arc<F>,
    pub(super) item: A,
}

impl<A, T, F: Fn(A) -> T> Single<A, F> {
    /// Applies the function (a panic unwinds to the caller, which owns the item's outcome).
    pub(crate) fn run(self) -> T {
        (self.f)(self.item)
    }
}

/// One chunk of a map's input with the function to apply; calling it runs the chunk.
pub(crate) struct Chunk<A, F> {
    pub(super) f: Arc<F>,
    pub(super) items: Vec<A>,
}

impl<A, T, F: Fn(A) -> T> Chunk<A, F> {
    /// Applies the function to every item, a panic becoming that item's error.
    pub(crate) fn run(self) -> DenseResults<T> {
        let f = &*self.f;
        let mut values = Vec::with_capacity(self.items.len());
        let mut failed = Vec::new();
        let mut items = self.items.into_iter();
        // One unwind guard for the stretch of items up to the next panic, not one an item:
        // the loop stays tight. The item that panicked is the one after those accounted for.
        while let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
            for a in items.by_ref() {
                values.push(f(a));
            }
        })) {
            let index = values.len() + failed.len();
            failed.push((index, Error::Panicked(take_panic_message(panic))));
        }
        DenseResults { values, failed }
    }
}
