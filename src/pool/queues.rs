//! The thread pool's per-worker queues, and how an idle worker takes works from a busy one.
//!
//! # Ownership rules
//!
//! - [`Queues`] is shared by the pool (which pushes, counts and closes) and every worker thread
//!   (which takes from its own queue, and steals from the others). A queue's lock is held only
//!   to push or take jobs and to swap its dispatcher's waker; no job runs and no waker is woken
//!   under it, and no thread holds two queue locks at once.
//! - A work the balancer pinned (its pick is binding: [`Balancer::is_binding`]) runs on the
//!   worker it was pushed to. Any other work that has not started may be taken by an idle
//!   worker, oldest first, up to half of what waits (at most one batch) per steal.
//! - A dispatcher takes up to a batch of works in one lock; a batch is all pinned or all free
//!   to move. Before a plain closure of a free batch holds its thread, the dispatcher moves the
//!   rest of the batch into its worker's `parked` slot (a swap; pushers never take that lock),
//!   then takes the rest from there one at a time, under that lock, until none is left. While
//!   a plain closure holds the worker's thread, an idle worker may take from the slot too
//!   (oldest first, before the queue: the parked works are older). A work leaves
//!   the `queued` count when a dispatcher takes it into a batch, so parking and stealing a
//!   parked work change no count, and a cancel of a parked work finds its mark already taken.
//!   A parked work is cancelled (shutdown now) or run (graceful shutdown) by whichever
//!   dispatcher takes it, as any batch's work is.
//! - `queued` counts the works waiting in a queue, less those cancelled there: each queued
//!   work carries a [`QueueMark`], and whichever comes first — the worker that takes it out of
//!   the queue, or a cancel — takes the mark and uncounts it. A cancelled work stays in the
//!   queue (no scan) until a worker pops it and drops it unstarted. A stolen work leaves the
//!   count at once and is counted as running by the thief when it starts, so balancers
//!   always see true loads.
//!
//! # Not missing a steal
//!
//! Only a *busy* worker's queue or parked slot is stolen from: one running a plain closure (it
//! cannot get to its queue until the closure ends) or one with no room. A worker that is merely waking up
//! keeps its works, so balancers' placements hold whenever they can be served in time.
//!
//! A dispatcher with room and nothing to take registers its waker, marks itself idle, and
//! only then looks at the other queues one last time. The other side wakes an idle worker
//! whenever works wait behind a busy worker: a push to a busy worker that is not waiting for
//! jobs, a worker about to run a plain closure with works queued or parked (it parks them
//! before it publishes that it blocks), a full worker with works queued, and a thief that
//! left works behind. Whoever wakes an idle worker clears its idle
//! flag, so the next callers do not take its lock again before it has looked. The idle and
//! blocking flags and the queue and parked counts are ordered by `SeqCst` fences, so either the thief's
//! last look sees the work or the other side sees the idle thief.
//!
//! [`Balancer::is_binding`]: crate::balance::Balancer::is_binding
//! [`QueueMark`]: super::cell::QueueMark

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::cell::{take_marks, Job, QueuedCounts};
use super::worker::{JobSource, Room, Step, WorkCounts, BATCH};
use crate::balance::Load;
use crate::runtime::reactor::lock;
use crate::Error;

/// How far into a victim's queue a thief looks for works it may take (past pinned ones).
const STEAL_SCAN: usize = 2 * BATCH;

/// Whether a worker (or the shared queue) takes new works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intake {
    /// Taking works.
    Open,
    /// Shutting down gracefully: finish what was accepted, take nothing new.
    Closing,
    /// Shutting down now: cancel what is queued or running.
    Stopping,
}

/// A work waiting in a queue.
struct Queued {
    job: Arc<dyn Job>,
    /// Only this queue's worker may run it.
    pinned: bool,
}

struct Queue {
    jobs: VecDeque<Queued>,
    /// The dispatcher, when it waits for jobs.
    waker: Option<Waker>,
    intake: Intake,
}

/// One worker's queue and counts, on cache lines of its own (see [`WorkCounts`]): the workers
/// sit side by side in one `Vec`.
#[repr(align(128))]
pub(crate) struct WorkerShared {
    queue: Mutex<Queue>,
    /// Works waiting in this worker's queue (counted by the pool when it picks this worker),
    /// less those cancelled while they wait.
    pub(crate) queued: AtomicUsize,
    /// Works running on this worker (async works in flight, or a plain closure), and ended.
    pub(crate) counts: Arc<WorkCounts>,
    capacity: usize,
    /// Set by `close(now)`: the dispatcher cancels what it took but has not started.
    stopping: AtomicBool,
    /// The dispatcher waits for jobs with room to spare: a steal target for pushes elsewhere.
    idle: AtomicBool,
    /// The unstarted rest of the dispatcher's batch while a plain closure holds its thread
    /// (newest first: the oldest is at the end), where an idle worker may take it.
    parked: Mutex<Vec<Arc<dyn Job>>>,
    /// How many works `parked` holds (a hint for thieves; the lock decides).
    parked_len: AtomicUsize,
    /// The dispatcher's last batch holds pinned works: it may not park them. Only the
    /// dispatcher's own thread touches it.
    batch_pinned: AtomicBool,
}

impl std::fmt::Debug for WorkerShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerShared")
            .field("load", &self.load())
            .finish()
    }
}

impl WorkerShared {
    fn new(capacity: usize) -> WorkerShared {
        WorkerShared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                waker: None,
                intake: Intake::Open,
            }),
            queued: AtomicUsize::new(0),
            counts: Arc::default(),
            capacity,
            stopping: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            parked: Mutex::new(Vec::new()),
            parked_len: AtomicUsize::new(0),
            batch_pinned: AtomicBool::new(false),
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

    /// True while the worker cannot get to its queue soon: it runs a plain closure, or it has
    /// no room. Only a busy worker's queue is stolen from, so a worker that is merely waking up
    /// to take its own works keeps them.
    fn is_busy(&self) -> bool {
        // ORDERING: SeqCst for `blocking`: see `Queues::push`; the count is a hint.
        self.counts.blocking.load(Ordering::SeqCst)
            || self.counts.running.load(Ordering::Relaxed) >= self.capacity
    }

    /// Stops intake; `now` also cancels what is queued or running.
    fn close(&self, now: bool) {
        if now {
            // ORDERING: Relaxed: a hint read between two starts; the queue's lock orders the rest.
            self.stopping.store(true, Ordering::Relaxed);
        }
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

    /// Takes up to `max` of the oldest works another worker may run (not pinned), at most half
    /// of what waits (rounded up). Returns how many it took.
    fn give_away(&self, max: usize, batch: &mut Vec<Arc<dyn Job>>) -> usize {
        let mut q = lock(&self.queue);
        if q.intake == Intake::Stopping || q.jobs.is_empty() {
            return 0;
        }
        let want = max.min(q.jobs.len().div_ceil(2));
        let mut taken = 0;
        let mut at = 0;
        let start = batch.len();
        while taken < want && at < q.jobs.len() && at < STEAL_SCAN {
            if q.jobs[at].pinned {
                at += 1;
            } else if let Some(queued) = q.jobs.remove(at) {
                batch.push(queued.job);
                taken += 1;
            }
        }
        drop(q);
        self.uncount(take_marks(&batch[start..]));
        taken
    }

    /// Takes up to `max` of the oldest parked works (at most half, rounded up), while the
    /// worker runs a plain closure. They left the waiting count when the worker took them.
    fn give_away_parked(&self, max: usize, batch: &mut Vec<Arc<dyn Job>>) -> usize {
        // ORDERING: Relaxed: see `close`; shutting down now, the owner cancels them itself.
        if self.stopping.load(Ordering::Relaxed) {
            return 0;
        }
        let mut parked = lock(&self.parked);
        let want = max.min(parked.len().div_ceil(2));
        let from = parked.len() - want;
        // Oldest first: the oldest parked work is at the end.
        batch.extend(parked.drain(from..).rev());
        // ORDERING: Relaxed: a hint for thieves; this lock orders the works themselves.
        self.parked_len.store(parked.len(), Ordering::Relaxed);
        want
    }

    /// Works waiting here that an idle worker may take now, parked or queued (hints).
    fn has_spare(&self) -> bool {
        // ORDERING: Relaxed: hints read after a SeqCst fence; the locks decide.
        self.parked_len.load(Ordering::Relaxed) > 0 || self.queued.load(Ordering::Relaxed) > 0
    }

    /// Takes `n` works out of the waiting count (they left the queue, or were cancelled).
    fn uncount(&self, n: usize) {
        if n > 0 {
            // ORDERING: Relaxed: a count for loads; every decrement follows its increment
            // (through the queue's lock or the handle's hand-over), so it never wraps.
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// The workers of one thread pool, as the pool and their dispatchers see them.
pub(crate) struct Queues {
    workers: Vec<WorkerShared>,
    /// How many workers are marked idle (on a line of its own: the workers write it, while
    /// every handle's clone of the pool's `Arc` writes the reference count beside it).
    idle: IdleCount,
}

/// The count of idle workers, aligned to two cache lines (see [`WorkCounts`]).
#[repr(align(128))]
struct IdleCount(AtomicUsize);

impl std::ops::Deref for IdleCount {
    type Target = AtomicUsize;

    fn deref(&self) -> &AtomicUsize {
        &self.0
    }
}

impl QueuedCounts for Queues {
    fn uncount(&self, worker: usize) {
        self.workers[worker].uncount(1);
    }
}

impl std::fmt::Debug for Queues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queues")
            .field("workers", &self.workers)
            .finish_non_exhaustive()
    }
}

impl Queues {
    /// `n` workers, each running at most `capacity` works at once.
    pub(crate) fn new(n: usize, capacity: usize) -> Queues {
        Queues {
            workers: (0..n).map(|_| WorkerShared::new(capacity)).collect(),
            idle: IdleCount(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.workers.len()
    }

    pub(crate) fn worker(&self, i: usize) -> &WorkerShared {
        &self.workers[i]
    }

    /// Every worker's load, in worker order.
    pub(crate) fn loads(&self) -> Vec<Load> {
        self.workers.iter().map(WorkerShared::load).collect()
    }

    /// Queues a job on worker `i` (the caller already counted it in that worker's `queued`);
    /// `pinned`: no other worker may take it. A closed worker fails it with `ShutDown`.
    pub(crate) fn push(&self, i: usize, job: Arc<dyn Job>, pinned: bool) {
        self.push_all(i, std::iter::once(job), pinned);
    }

    /// Queues jobs on worker `i`, as [`push`](Queues::push) does, under one lock and with at
    /// most one wake-up (the caller already counted each of them in that worker's `queued`).
    pub(crate) fn push_all(
        &self,
        i: usize,
        jobs: impl ExactSizeIterator<Item = Arc<dyn Job>>,
        pinned: bool,
    ) {
        let target = &self.workers[i];
        let waker = {
            let mut q = lock(&target.queue);
            if q.intake != Intake::Open {
                drop(q);
                let jobs: Vec<Arc<dyn Job>> = jobs.collect();
                target.uncount(take_marks(&jobs));
                for job in jobs {
                    job.fail(Error::ShutDown);
                }
                return;
            }
            q.jobs.reserve(jobs.len());
            for job in jobs {
                q.jobs.push_back(Queued { job, pinned });
            }
            q.waker.take()
        };
        match waker {
            Some(w) => w.wake(),
            None if !pinned => {
                // ORDERING: paired with the fence in `Room::take_blocking` and the one in
                // `next_step`: either the worker about to block (or the thief about to wait)
                // sees this work queued, or this push sees it blocking (or idle).
                fence(Ordering::SeqCst);
                // No idle worker now: one that goes idle later looks at this queue first.
                if self.idle.load(Ordering::SeqCst) > 0 && target.is_busy() {
                    self.wake_idle(i);
                }
            }
            None => {}
        }
    }

    /// Worker `me` is about to run a plain closure: if works wait in its queue or its parked
    /// slot, an idle worker may take them meanwhile.
    fn blocking(&self, me: usize) {
        // ORDERING: after the fence in `Room::take_blocking` (the parked works were published
        // before it). No idle worker now: one that goes idle later sees this worker blocking
        // and looks at its parked slot and its queue.
        if self.idle.load(Ordering::SeqCst) > 0 && self.workers[me].has_spare() {
            self.wake_idle(me);
        }
    }

    /// Wakes one idle worker other than `busy`, if any, so that it steals.
    fn wake_idle(&self, busy: usize) {
        // ORDERING: SeqCst, paired with the thief's SeqCst store of its idle flag before its
        // last look at the queues (see the module docs).
        if self.idle.load(Ordering::SeqCst) == 0 {
            return;
        }
        let n = self.workers.len();
        for j in (1..n).map(|k| (busy + k) % n) {
            let w = &self.workers[j];
            // Whoever clears an idle worker's flag wakes it: the callers after it (a busy
            // worker calls this at every plain closure) skip that worker, and its lock, until
            // it marks itself idle again.
            if !w.idle.load(Ordering::SeqCst) || !w.idle.swap(false, Ordering::SeqCst) {
                continue;
            }
            self.idle.fetch_sub(1, Ordering::SeqCst);
            let waker = lock(&w.queue).waker.take();
            if let Some(waker) = waker {
                waker.wake();
                return;
            }
        }
    }

    /// Stops intake on every worker; `now` also cancels what is queued or running.
    pub(crate) fn close(&self, now: bool) {
        for w in &self.workers {
            w.close(now);
        }
    }

    /// Marks worker `me` idle or not, keeping the count.
    fn set_idle(&self, me: &WorkerShared, idle: bool) {
        // Only this worker sets its flag (`wake_idle` may clear it), and each step clears it
        // before it may set it: a plain read skips the swap when nothing changes. (A stale
        // `true` read here only makes the swap below find the flag cleared already.)
        if me.idle.load(Ordering::Relaxed) == idle {
            return;
        }
        // ORDERING: SeqCst: see `wake_idle`.
        if me.idle.swap(idle, Ordering::SeqCst) != idle {
            if idle {
                self.idle.fetch_add(1, Ordering::SeqCst);
            } else {
                self.idle.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Takes up to `max` works that have not started from the other workers, trying each
    /// from the one after `me`. Returns how many it took.
    fn steal(&self, me: usize, max: usize, batch: &mut Vec<Arc<dyn Job>>) -> usize {
        let n = self.workers.len();
        for j in (1..n).map(|k| (me + k) % n) {
            let victim = &self.workers[j];
            if !victim.has_spare() || !victim.is_busy() {
                continue;
            }
            // Parked works are older than queued ones: they go first.
            // ORDERING: Relaxed after the caller's fence: a hint; the victim's locks decide.
            let mut taken = 0;
            if victim.parked_len.load(Ordering::Relaxed) > 0 {
                taken = victim.give_away_parked(max, batch);
            }
            if taken == 0 {
                taken = victim.give_away(max, batch);
            }
            if taken > 0 {
                if victim.has_spare() {
                    self.wake_idle(j); // more for another idle worker
                }
                return taken;
            }
        }
        0
    }
}

impl JobSource for Queues {
    /// The worker's index.
    type Worker = usize;

    fn next_step(
        &self,
        me: &mut usize,
        room: &Room,
        batch: &mut Vec<Arc<dyn Job>>,
        cx: &mut Context<'_>,
    ) -> Poll<Step> {
        let own = &self.workers[*me];
        self.set_idle(own, false);
        let mut q = lock(&own.queue);
        if q.intake == Intake::Stopping {
            batch.extend(q.jobs.drain(..).map(|queued| queued.job));
            drop(q);
            own.uncount(take_marks(batch));
            for job in batch.drain(..) {
                job.fail(Error::Cancelled);
            }
            return Poll::Ready(Step::Stop);
        }
        let free = room.free().min(BATCH);
        if free > 0 && !q.jobs.is_empty() {
            // One batch is all pinned or all free to move: the dispatcher parks the rest of a
            // free one while a plain closure holds this thread, where an idle worker can take
            // it; a pinned one stays here, as nobody else may run it anyway.
            let pinned = q.jobs[0].pinned;
            let n = free.min(q.jobs.len());
            let n = q
                .jobs
                .iter()
                .take(n)
                .position(|queued| queued.pinned != pinned)
                .unwrap_or(n);
            batch.extend(q.jobs.drain(..n).map(|queued| queued.job));
            drop(q);
            // ORDERING: Relaxed: only this worker's thread reads or writes it.
            own.batch_pinned.store(pinned, Ordering::Relaxed);
            own.uncount(take_marks(batch));
            return Poll::Ready(Step::Run);
        }
        if free == 0 {
            // Full: wait for a running work to end (or for the queue, to close).
            if q.intake == Intake::Closing && q.jobs.is_empty() && room.running() == 0 {
                return Poll::Ready(Step::Stop);
            }
            register(&mut q, cx);
            let waiting = !q.jobs.is_empty();
            drop(q);
            if waiting {
                // Full, with works waiting: an idle worker may take them.
                self.wake_idle(*me);
            }
            room.wait_for_ends(cx);
            return Poll::Pending;
        }
        // Room and nothing of our own: wait, marked idle, after one last look elsewhere.
        register(&mut q, cx);
        let closing = q.intake == Intake::Closing;
        drop(q);
        self.set_idle(own, true);
        // ORDERING: see `push`.
        fence(Ordering::SeqCst);
        if self.steal(*me, free, batch) > 0 {
            // ORDERING: Relaxed: only this worker's thread reads or writes it.
            own.batch_pinned.store(false, Ordering::Relaxed); // a thief takes no pinned work
            self.set_idle(own, false);
            return Poll::Ready(Step::Run);
        }
        if closing && room.running() == 0 {
            self.set_idle(own, false);
            return Poll::Ready(Step::Stop);
        }
        room.wait_for_ends(cx);
        Poll::Pending
    }

    fn stopping(&self, me: &usize) -> bool {
        // ORDERING: Relaxed: see `WorkerShared::close`.
        self.workers[*me].stopping.load(Ordering::Relaxed)
    }

    fn park(&self, me: &usize, rest: &mut Vec<Arc<dyn Job>>) -> bool {
        let own = &self.workers[*me];
        // ORDERING: Relaxed: only this worker's thread reads or writes it.
        if self.workers.len() < 2 || own.batch_pinned.load(Ordering::Relaxed) {
            return false;
        }
        let mut parked = lock(&own.parked);
        debug_assert!(parked.is_empty(), "a parked batch was not taken back");
        std::mem::swap(&mut *parked, rest);
        // ORDERING: Relaxed: published to thieves by the SeqCst store and fence that follow in
        // `Room::take_blocking` (see `blocking`).
        own.parked_len.store(parked.len(), Ordering::Relaxed);
        true
    }

    fn take_parked(&self, me: &usize) -> Option<Arc<dyn Job>> {
        let own = &self.workers[*me];
        let mut parked = lock(&own.parked);
        let job = parked.pop();
        // ORDERING: Relaxed: a hint; thieves take parked works under the lock only.
        own.parked_len.store(parked.len(), Ordering::Relaxed);
        job
    }

    fn on_blocking(self: &Arc<Self>, me: &usize) -> Option<Box<dyn Fn()>> {
        if self.workers.len() < 2 {
            return None; // nobody to hand works to
        }
        let (queues, me) = (self.clone(), *me);
        Some(Box::new(move || queues.blocking(me)))
    }
}

/// Registers the dispatcher's waker in its queue (the queue's lock is held).
fn register(q: &mut Queue, cx: &Context<'_>) {
    match &q.waker {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => q.waker = Some(cx.waker().clone()),
    }
}
