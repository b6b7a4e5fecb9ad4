//! How a map's input reaches the pool: each pull submitted at once, or single items staged as
//! jobs and sent in batches.

use std::sync::Arc;

use super::flight::{DenseResults, InFlight};
use crate::pool::cell::Job;
use crate::pool::Handle;
use crate::Error;

/// Pulls the next chunk of up to `n` items from the input and submits it.
#[cfg_attr(not(feature = "process"), allow(dead_code))] // used by the process pool
pub(super) type Source<T> =
    Box<dyn FnMut(usize) -> Option<(usize, Handle<DenseResults<T>>)> + Send>;

/// Pulls the next item, or chunk of up to `n` items, and submits it.
pub(super) type FlexSource<T> = Box<dyn FnMut(usize) -> Option<InFlight<T>> + Send>;

/// Sends jobs staged by a batched map to the pool, in order (and empties the list).
pub(crate) type SubmitJobs = Box<dyn FnMut(&mut Vec<Arc<dyn Job>>) + Send>;

/// Pulls the next item, or chunk of up to `n` items, as a job staged in the list.
pub(super) type StagedSource<T> =
    Box<dyn FnMut(usize, &mut Vec<Arc<dyn Job>>) -> Option<InFlight<T>> + Send>;

/// How many staged single items a batched map sends at once (at most).
pub(super) const STAGE: usize = 64;

/// A map's input and how it reaches the pool.
pub(super) enum Feed<T> {
    /// Each pull is submitted at once.
    Each(FlexSource<T>),
    /// Single items are staged as jobs and sent `STAGE` at a time (a chunk goes at once), so
    /// that a map of tiny items takes the balancer's lock and each worker's queue once a
    /// batch, not once an item.
    Staged {
        pull: StagedSource<T>,
        staged: Vec<Arc<dyn Job>>,
        submit: SubmitJobs,
    },
}

impl<T> Feed<T> {
    pub(super) fn pull(&mut self, n: usize) -> Option<InFlight<T>> {
        match self {
            Feed::Each(source) => source(n),
            Feed::Staged {
                pull,
                staged,
                submit,
            } => {
                let next = pull(n, staged);
                // (A chunk is worth a lock of its own, and its workers should start at once.)
                if staged.len() >= STAGE || n > 1 {
                    submit(staged);
                }
                next
            }
        }
    }

    /// Sends what is staged.
    pub(super) fn flush(&mut self) {
        if let Feed::Staged { staged, submit, .. } = self {
            if !staged.is_empty() {
                submit(staged);
            }
        }
    }
}

impl<T> Drop for Feed<T> {
    fn drop(&mut self) {
        // (Only an input iterator that panicked mid-fill leaves jobs staged: their handles are
        // cancelled by the map's drop; send nothing.)
        if let Feed::Staged { staged, .. } = self {
            for job in staged.drain(..) {
                job.fail(Error::Cancelled);
            }
        }
    }
}
