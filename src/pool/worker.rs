//! One worker thread: a queue other threads push works into, and the dispatcher that runs them
//! on the thread's own executor.
//!
//! # Ownership rules
//!
//! - [`WorkerShared`] is shared by the pool (which pushes, counts and closes) and the worker
//!   thread (which takes). Its lock is held only to push or take jobs and to swap the
//!   dispatcher's waker; no job runs and no waker is woken under it.
//! - [`Room`] lives on the worker thread only: how many works run there now, against the limit
//!   `max_works_per_worker`. Every running work holds a [`RoomGuard`]; dropping the guard frees
//!   the room and wakes the dispatcher if it waits for room.
//! - The dispatcher is the `block_on` future of the worker thread. It takes jobs while there is
//!   room, starts them (a plain closure runs to its end right there; an async work becomes a
//!   local task), and parks on the queue when there is nothing to take.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::cell::Job;
use crate::balance::Load;
use crate::runtime::reactor::lock;
use crate::Error;

/// How many jobs the dispatcher takes from its queue in one go.
const BATCH: usize = 64;

/// Whether a worker takes new works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intake {
    /// Taking works.
    Open,
    /// Shutting down gracefully: finish what was accepted, take nothing new.
    Closing,
    /// Shutting down now: cancel what is queued or running.
    Stopping,
}

struct Queue {
    jobs: VecDeque<Arc<dyn Job>>,
    /// The dispatcher, when it waits for jobs.
    waker: Option<Waker>,
    intake: Intake,
}

/// The part of a worker the pool and the worker thread share.
pub(crate) struct WorkerShared {
    queue: Mutex<Queue>,
    /// Works waiting in this worker's queue (counted by the pool when it picks this worker).
    pub(crate) queued: AtomicUsize,
    /// Works running on this worker (async works in flight, or a plain closure).
    pub(crate) running: AtomicUsize,
    capacity: usize,
}

impl std::fmt::Debug for WorkerShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerShared")
            .field("load", &self.load())
            .finish()
    }
}

impl WorkerShared {
    pub(crate) fn new(capacity: usize) -> WorkerShared {
        WorkerShared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                waker: None,
                intake: Intake::Open,
            }),
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            capacity,
        }
    }

    /// This worker's load, as balancers see it.
    pub(crate) fn load(&self) -> Load {
        // ORDERING: Relaxed: loads are a hint for balancing, read without synchronizing.
        Load {
            running: self.running.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            capacity: self.capacity,
        }
    }

    /// Queues a job (the caller already counted it in `queued`). A closed worker fails it with
    /// `ShutDown` instead.
    pub(crate) fn push(&self, job: Arc<dyn Job>) {
        let waker = {
            let mut q = lock(&self.queue);
            if q.intake != Intake::Open {
                drop(q);
                self.queued.fetch_sub(1, Ordering::Relaxed);
                job.fail(Error::ShutDown);
                return;
            }
            q.jobs.push_back(job);
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Stops intake; `now` also cancels what is queued or running.
    pub(crate) fn close(&self, now: bool) {
        let waker = {
            let mut q = lock(&self.queue);
            q.intake = match (q.intake, now) {
                (_, true) | (Intake::Stopping, _) => Intake::Stopping,
                _ => Intake::Closing,
            };
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// What the dispatcher does next: take a batch of jobs, stop, or wait.
    fn next_step(
        &self,
        room: &Room,
        batch: &mut Vec<Arc<dyn Job>>,
        cx: &mut Context<'_>,
    ) -> Poll<Step> {
        let mut q = lock(&self.queue);
        if q.intake == Intake::Stopping {
            batch.extend(q.jobs.drain(..));
            drop(q);
            self.queued.store(0, Ordering::Relaxed);
            for job in batch.drain(..) {
                job.fail(Error::Cancelled);
            }
            return Poll::Ready(Step::Stop);
        }
        let free = room.free();
        if free > 0 && !q.jobs.is_empty() {
            let n = free.min(BATCH).min(q.jobs.len());
            batch.extend(q.jobs.drain(..n));
            drop(q);
            self.queued.fetch_sub(n, Ordering::Relaxed);
            return Poll::Ready(Step::Run);
        }
        if q.intake == Intake::Closing && q.jobs.is_empty() && room.running.get() == 0 {
            return Poll::Ready(Step::Stop);
        }
        match &q.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => q.waker = Some(cx.waker().clone()),
        }
        drop(q);
        if free == 0 || room.running.get() > 0 {
            // Woken also when a running work ends: it frees room, or it was the last one.
            room.waiting.set(Some(cx.waker().clone()));
        }
        Poll::Pending
    }
}

enum Step {
    Run,
    Stop,
}

/// The running works of one worker, on its own thread.
pub(crate) struct Room {
    running: Cell<usize>,
    max: usize,
    /// The dispatcher, when it waits for a running work to end.
    waiting: Cell<Option<Waker>>,
    shared: Arc<WorkerShared>,
}

impl Room {
    fn free(&self) -> usize {
        self.max.saturating_sub(self.running.get())
    }

    /// Counts one more running work until the guard drops.
    pub(crate) fn take(self: &Rc<Room>) -> RoomGuard {
        self.running.set(self.running.get() + 1);
        self.shared.running.fetch_add(1, Ordering::Relaxed);
        RoomGuard(self.clone())
    }
}

/// A running work's place in its worker's [`Room`].
pub(crate) struct RoomGuard(Rc<Room>);

impl Drop for RoomGuard {
    fn drop(&mut self) {
        let room = &self.0;
        room.running.set(room.running.get() - 1);
        room.shared.running.fetch_sub(1, Ordering::Relaxed);
        if let Some(w) = room.waiting.take() {
            w.wake();
        }
    }
}

/// The dispatcher: the life of a worker thread, run under `block_on`.
pub(crate) async fn dispatch(shared: Arc<WorkerShared>, max: usize) {
    let room = Rc::new(Room {
        running: Cell::new(0),
        max,
        waiting: Cell::new(None),
        shared: shared.clone(),
    });
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match poll_fn(|cx| shared.next_step(&room, &mut batch, cx)).await {
            Step::Stop => break,
            Step::Run => {
                for job in batch.drain(..) {
                    job.start(&room);
                }
                // Let the works just started run before taking more.
                crate::yield_now().await;
            }
        }
    }
}
