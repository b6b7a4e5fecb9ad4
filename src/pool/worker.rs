//! One worker thread: the dispatcher that takes works from a [`JobSource`] and runs them on the
//! thread's own executor.
//!
//! # Ownership rules
//!
//! - The [`JobSource`] is shared by the pool and its worker threads (the thread pool's per-worker
//!   queues in `queues.rs` or its one first-come-first-served queue in `shared_queue.rs`, the
//!   elastic pool's priority queue); the dispatcher only asks it for the next step.
//! - [`Room`] lives on the worker thread only: how many works run there now, against the limit
//!   `max_works_per_worker`. Every running work holds a [`RoomGuard`]; dropping the guard frees
//!   the room and wakes the dispatcher if it waits for room.
//! - The dispatcher is the `block_on` future of the worker thread. It takes jobs while there is
//!   room, starts them (a plain closure runs to its end right there; an async work becomes a
//!   local task), and parks on the queue when there is nothing to take. The batch it took is
//!   its own until each job starts, except that before a plain closure of the batch runs, the
//!   source may take the rest ([`JobSource::park`]) where other workers can reach it while the
//!   closure holds the thread; the dispatcher then takes it back one job at a time
//!   ([`JobSource::take_parked`]).

use std::cell::Cell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::cell::Job;
use crate::runtime::task::contain;
use crate::Error;

/// How many jobs the dispatcher takes from its queue in one go.
pub(crate) const BATCH: usize = 64;

/// A worker's running and ended works, published for other threads (loads, stats, join).
///
/// Aligned to two cache lines (the pair the CPU fetches together): each worker writes its
/// counts at every work, and two workers' counts side by side would bounce one line between
/// their cores at every work.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct WorkCounts {
    /// Works running on the worker now.
    pub(crate) running: AtomicUsize,
    /// Works the worker has finished (with any outcome).
    pub(crate) ended: AtomicUsize,
    /// The worker runs a plain closure now: it cannot get to its queue until the closure ends.
    pub(crate) blocking: AtomicBool,
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

    /// True once the pool is shutting down now: works taken into a batch but not started yet
    /// are cancelled rather than run.
    fn stopping(&self, _me: &Self::Worker) -> bool {
        false
    }

    /// What to run each time a plain closure is about to hold worker `me`'s thread (works
    /// queued for it could go to an idle worker meanwhile). Asked once, when the worker starts.
    fn on_blocking(self: &Arc<Self>, _me: &Self::Worker) -> Option<Box<dyn Fn()>> {
        None
    }

    /// A plain closure is about to hold worker `me`'s thread while `rest` (the batch's
    /// unstarted works, the next one last) waits behind it: the source may take `rest` where
    /// an idle worker can reach it, leaving `rest` empty, and says whether it did. It runs
    /// before the closure's [`Room::take_blocking`], so its `on_blocking` hook sees them.
    /// The dispatcher then takes the rest back one at a time with
    /// [`take_parked`](JobSource::take_parked), before each start.
    fn park(&self, _me: &Self::Worker, _rest: &mut Vec<Arc<dyn Job>>) -> bool {
        false
    }

    /// The next of the works [`park`](JobSource::park) took that no other worker took, or
    /// `None` once there is none left.
    fn take_parked(&self, _me: &Self::Worker) -> Option<Arc<dyn Job>> {
        None
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
    /// Called when a plain closure is about to hold the thread (see [`JobSource::on_blocking`]).
    on_blocking: Option<Box<dyn Fn()>>,
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
        RoomGuard(self.clone(), false)
    }

    /// Like [`take`](Room::take), for a plain closure that holds the thread until it ends:
    /// marks the worker blocking, and lets the source hand what waits here to an idle worker.
    pub(crate) fn take_blocking(self: &Rc<Room>) -> RoomGuard {
        let mut guard = self.take();
        guard.1 = true;
        // ORDERING: SeqCst store and fence, paired with the fence a pusher runs between
        // queueing a work and reading this flag: one of the two sees the other.
        self.published.blocking.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if let Some(hook) = &self.on_blocking {
            hook();
        }
        guard
    }
}

/// A running work's place in its worker's [`Room`] (and whether it blocks the worker).
pub(crate) struct RoomGuard(Rc<Room>, bool);

impl Drop for RoomGuard {
    fn drop(&mut self) {
        let room = &self.0;
        if self.1 {
            // ORDERING: Relaxed: stale "blocking" only makes a thief look at this queue.
            room.published.blocking.store(false, Ordering::Relaxed);
        }
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
        on_blocking: source.on_blocking(&me),
    });
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        match poll_fn(|cx| source.next_step(&mut me, &room, &mut batch, cx)).await {
            Step::Stop => break,
            Step::Run => {
                // The jobs were written on other cores: ask for all their lines at once, so
                // that the misses overlap instead of stalling one job at a time.
                for job in &batch {
                    std::hint::black_box(Arc::strong_count(job));
                }
                // Oldest last, so that each start pops the next one and the rest stays whole.
                batch.reverse();
                // Once parked, the rest stays parked (one lock per start, taken by nobody
                // else unless a closure holds the thread) until it is all started.
                let mut parked = false;
                loop {
                    let next = if parked {
                        source.take_parked(&me)
                    } else {
                        batch.pop()
                    };
                    let Some(job) = next else { break };
                    // A plain closure holds this thread until it ends: the rest of the batch
                    // waits where an idle worker can take it meanwhile.
                    if !parked && job.holds_thread() && !batch.is_empty() {
                        parked = source.park(&me, &mut batch);
                    }
                    // A plain closure before this one may have run long: a shutdown-now
                    // called meanwhile cancels the rest of the batch, which has not started.
                    let stopping = source.stopping(&me);
                    // Every outcome is published before any user value is dropped, but such a
                    // drop (a closure's captures, a value nobody waits for, a panic's payload)
                    // may still panic here: it must not end the worker and strand its queue.
                    contain(|| {
                        if stopping {
                            job.fail(Error::Cancelled);
                        } else {
                            job.start(&room);
                        }
                    });
                }
                // Let the works just started run before taking more.
                crate::yield_now().await;
            }
        }
    }
}

/// Why a worker thread did not start.
#[derive(Debug)]
pub(crate) enum StartFailure {
    /// The start hook panicked; its message.
    Hook(String),
    /// The thread could not make its executor's reactor (out of fds, say).
    Os(std::io::Error),
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
    pub(crate) ready: Option<std::sync::mpsc::Sender<Result<(), StartFailure>>>,
    /// Told the OS error when the thread could not make its executor (out of fds) and nobody
    /// waits on `ready`: the body never runs, so whoever counted the worker must uncount it.
    pub(crate) on_no_executor: Option<Box<dyn FnOnce(std::io::Error) + Send>>,
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
        on_no_executor,
    } = start;
    std::thread::Builder::new().name(name).spawn(move || {
        // A thread that cannot make its executor and reactor (out of fds) ends here without a
        // panic and tells the builder the OS error. What it made is what `block_on` below
        // runs on, so no sibling can take the fds in between.
        if let Err(e) = crate::runtime::executor::Local::prepare() {
            if let Some(ready) = ready {
                let _ = ready.send(Err(StartFailure::Os(e)));
            } else if let Some(told) = on_no_executor {
                told(e);
            }
            return;
        }
        crate::runtime::set_thread_spin(spin);
        crate::block_on(async move {
            if let Some(f) = on_start {
                let hook = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(index)));
                if let Err(p) = hook {
                    if let Some(ready) = ready {
                        let why = crate::runtime::task::take_panic_message(p);
                        let _ = ready.send(Err(StartFailure::Hook(why)));
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
