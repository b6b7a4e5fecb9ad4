//! How a thread pool holds its waiting works: a queue per worker (the balancer picks one; idle
//! workers steal from busy ones), or one queue that every worker serves, first come, first
//! served (`Builder::shared_queue`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::balance::Load;
use crate::pool::cell::QueuedCounts;
use crate::pool::queues::Queues;
use crate::pool::shared_queue::SharedQueue;
use crate::pool::worker::{dispatch, WorkCounts};

/// The pool's waiting works, one way or the other.
#[derive(Debug, Clone)]
pub(crate) enum Queueing {
    /// A queue per worker, fed by the balancer.
    PerWorker(Arc<Queues>),
    /// One queue, served in arrival order; no balancer.
    Shared(Arc<SharedQueue>),
}

impl Queueing {
    /// Queues for `n` workers, each running at most `capacity` works at once.
    pub(crate) fn new(shared: bool, n: usize, capacity: usize) -> Queueing {
        if shared {
            Queueing::Shared(Arc::new(SharedQueue::new(n, capacity)))
        } else {
            Queueing::PerWorker(Arc::new(Queues::new(n, capacity)))
        }
    }

    /// How many workers.
    pub(crate) fn len(&self) -> usize {
        match self {
            Queueing::PerWorker(q) => q.len(),
            Queueing::Shared(q) => q.len(),
        }
    }

    /// Every worker's load, in worker order.
    pub(crate) fn loads(&self) -> Vec<Load> {
        match self {
            Queueing::PerWorker(q) => q.loads(),
            Queueing::Shared(q) => q.loads(),
        }
    }

    /// The queues, as the counts of waiting works that a handle's cancel lowers.
    pub(crate) fn counts(&self) -> Arc<dyn QueuedCounts> {
        match self {
            Queueing::PerWorker(q) => q.clone(),
            Queueing::Shared(q) => q.clone(),
        }
    }

    /// Stops intake; `now` also cancels what is queued or running.
    pub(crate) fn close(&self, now: bool) {
        match self {
            Queueing::PerWorker(q) => q.close(now),
            Queueing::Shared(q) => q.close(now),
        }
    }

    /// Worker `i`'s dispatcher, running at most `max` works at once. Called on the worker's
    /// own thread (the future is not `Send`).
    pub(crate) fn dispatcher(&self, i: usize, max: usize) -> Pin<Box<dyn Future<Output = ()>>> {
        match self {
            Queueing::PerWorker(q) => {
                let counts: Arc<WorkCounts> = q.worker(i).counts.clone();
                Box::pin(dispatch(q.clone(), i, max, counts))
            }
            Queueing::Shared(q) => {
                let counts = q.counts(i).clone();
                Box::pin(dispatch(q.clone(), i, max, counts))
            }
        }
    }
}
