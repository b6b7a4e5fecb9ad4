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
    /// Works running on this worker (async works in flight, or a plain closure), and ended.
    pub(crate) counts: Arc<WorkCounts>,
    capacity: usize,
}

/// A worker's running and ended works, published for other threads (loads, stats, join).
#[derive(Debug, Default)]
pub(crate) struct WorkCounts {
    /// Works running on the worker now.
    pub(crate) running: AtomicUsize,
    /// Works the worker has finished (with any outcome).
    pub(crate) ended: AtomicUsize,
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
            counts: Arc::default(),
            capacity,
        }
    }

    /// This worker's load, as balancers see it.
    pub(crate) fn load(&self) -> Load {
        // ORDERING: Relaxed: loads are a hint for balancing, read without synchronizing.
        Load {
            running: self.counts.running.load(Ordering::Relaxed),
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
}

/// Where a worker's dispatcher takes its jobs from.
pub(crate) trait JobSource {
    /// What one worker keeps between steps (an idle timer, say).
    type Worker;

    /// What the dispatcher does next: take a batch of at most `room.free()` jobs into `batch`,
    /// stop, or register `cx` to be woken when there is something to do.
    fn next_step(
        &self,
        me: &mut Self::Worker,
        room: &Room,
        batch: &mut Vec<Arc<dyn Job>>,
        cx: &mut Context<'_>,
    ) -> Poll<Step>;
}

impl JobSource for WorkerShared {
    type Worker = ();

    fn next_step(
        &self,
        _me: &mut (),
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
        if q.intake == Intake::Closing && q.jobs.is_empty() && room.running() == 0 {
            return Poll::Ready(Step::Stop);
        }
        match &q.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => q.waker = Some(cx.waker().clone()),
        }
        drop(q);
        room.wait_for_ends(cx);
        Poll::Pending
    }
}

/// The dispatcher's next move.
pub(crate) enum Step {
    /// Start the jobs taken into the batch.
    Run,
    /// The worker is done: leave.
    Stop,
}

/// The running works of one worker, on its own thread.
pub(crate) struct Room {
    running: Cell<usize>,
    max: usize,
    /// The dispatcher, when it waits for a running work to end.
    waiting: Cell<Option<Waker>>,
    /// Where the counts are published for other threads (loads, stats).
    published: Arc<WorkCounts>,
}

impl Room {
    /// How many more works may start now.
    pub(crate) fn free(&self) -> usize {
        self.max.saturating_sub(self.running.get())
    }

    /// How many works run on this worker now.
    pub(crate) fn running(&self) -> usize {
        self.running.get()
    }

    /// Asks to be woken (through `cx`) when a running work ends, if any runs.
    pub(crate) fn wait_for_ends(&self, cx: &Context<'_>) {
        if self.running.get() > 0 {
            self.waiting.set(Some(cx.waker().clone()));
        }
    }

    /// Counts one more running work until the guard drops.
    pub(crate) fn take(self: &Rc<Room>) -> RoomGuard {
        self.running.set(self.running.get() + 1);
        self.published.running.fetch_add(1, Ordering::Relaxed);
        RoomGuard(self.clone())
    }
}

/// A running work's place in its worker's [`Room`].
pub(crate) struct RoomGuard(Rc<Room>);

impl Drop for RoomGuard {
    fn drop(&mut self) {
        let room = &self.0;
        room.running.set(room.running.get() - 1);
        room.published.running.fetch_sub(1, Ordering::Relaxed);
        room.published.ended.fetch_add(1, Ordering::Relaxed);
        if let Some(w) = room.waiting.take() {
            w.wake();
        }
    }
}

/// The dispatcher: the life of a worker thread, run under `block_on`. Takes jobs from `source`
/// while this worker has room (at most `max` works at once), starts them, and waits when there
/// is nothing to take. `counts` is where the worker's counts are published.
pub(crate) async fn dispatch<S: JobSource>(
    source: Arc<S>,
    mut me: S::Worker,
    max: usize,
    counts: Arc<WorkCounts>,
) {
    let room = Rc::new(Room {
        running: Cell::new(0),
        max,
        waiting: Cell::new(None),
        published: counts,
    });
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match poll_fn(|cx| source.next_step(&mut me, &room, &mut batch, cx)).await {
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

/// How to start one worker thread.
pub(crate) struct ThreadStart {
    /// The thread's name.
    pub(crate) name: String,
    /// The worker's index, passed to `on_start`.
    pub(crate) index: usize,
    /// How long the idle executor spins before it parks.
    pub(crate) spin: std::time::Duration,
    /// The user's start hook.
    pub(crate) on_start: Option<Arc<dyn Fn(usize) + Send + Sync>>,
    /// Told `Ok` once the hook ran (or the hook's panic), if someone waits for it.
    pub(crate) ready: Option<std::sync::mpsc::Sender<Result<(), String>>>,
}

/// Starts a worker thread: it runs the start hook, says it is ready, then runs the future that
/// `body` makes, under `block_on`. The future is made on the new thread, so it need not be `Send`.
pub(crate) fn start_thread<B, Fut>(
    start: ThreadStart,
    body: B,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    B: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let ThreadStart {
        name,
        index,
        spin,
        on_start,
        ready,
    } = start;
    std::thread::Builder::new().name(name).spawn(move || {
        // A thread that cannot make its reactor (out of fds) ends here without a panic; the
        // builder, told nothing, reports the OS error (see `ThreadPool`'s `build`).
        if crate::runtime::reactor::Reactor::new().is_err() {
            return;
        }
        crate::runtime::set_thread_spin(spin);
        crate::block_on(async move {
            if let Some(f) = on_start {
                let hook = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(index)));
                if let Err(p) = hook {
                    if let Some(ready) = ready {
                        let _ = ready.send(Err(crate::runtime::task::panic_message(&*p)));
                    }
                    return;
                }
            }
            if let Some(ready) = ready {
                let _ = ready.send(Ok(()));
            }
            body().await;
        });
    })
}
