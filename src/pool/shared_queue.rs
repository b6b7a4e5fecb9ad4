//! The thread pool's other way to hold waiting works: one queue shared by every worker, served
//! first come, first served (`ThreadPoolBuilder::shared_queue`).
//!
//! # Ownership rules
//!
//! - [`SharedQueue`] is shared by the pool (which pushes and closes) and every worker thread
//!   (which takes from the front). One lock guards the jobs, the intake and the waiting
//!   dispatchers' wakers; it is held only to push, take, count and swap wakers. No job runs, no
//!   job is failed and no waker is woken under it.
//! - A work belongs to no worker until a dispatcher takes it, and a dispatcher takes only what
//!   it starts at once: works from the front while it has room, up to and including the first
//!   plain closure (which will hold its thread; the works behind it stay in the queue for the
//!   next free worker). So the works start in the order they were pushed, whichever worker
//!   frees up first.
//! - A dispatcher takes no more than its fair share while other workers with room and nothing
//!   running are idle or on their way to the queue: the queued works and its own running ones,
//!   spread over itself and them (see [`State::share`]). The rest stays for them, and an idle
//!   one is woken. So the first worker to wake does not take every async work its room allows
//!   while the others sit idle; the worker running least always gets at least one work, so a
//!   waiting work is never left with every worker parked.
//! - `queued` counts the queue's works for loads read without the lock, less those cancelled
//!   while they wait (a cancelled work stays in the queue until a dispatcher pops it and drops
//!   it unstarted; its [`QueueMark`] says who uncounts it, as in the per-worker queues); each
//!   worker's running count is its own [`WorkCounts`].
//!
//! [`QueueMark`]: super::cell::QueueMark
//!
//! # Not missing a wake-up
//!
//! A dispatcher with room and nothing to take registers its waker as idle in the same critical
//! section in which it saw the queue empty; a push adds its works and takes an idle waker out
//! under the same lock. So either the push comes first and the dispatcher takes the work, or
//! the dispatcher comes first and the push wakes it. A dispatcher that takes works and leaves
//! some behind wakes another idle one, so no worker stays idle while a work waits: every woken
//! dispatcher comes back to the queue (the executor keeps a wake that lands during its spin or
//! before its park), and either takes a work or registers as idle again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::cell::{take_marks, Job, QueuedCounts};
use super::queues::Intake;
use super::worker::{JobSource, Room, Step, WorkCounts, BATCH};
use crate::balance::Load;
use crate::runtime::reactor::lock;
use crate::runtime::task::contain;
use crate::Error;

/// A work waiting in the shared queue.
pub(crate) struct Queued {
    job: Arc<dyn Job>,
    /// A plain closure: it holds the thread that starts it until it ends.
    blocking: bool,
}

impl Queued {
    /// `blocking`: the job is a plain closure.
    pub(crate) fn new(job: Arc<dyn Job>, blocking: bool) -> Queued {
        Queued { job, blocking }
    }
}

/// Where a worker's dispatcher waits, if it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parked {
    /// Running (or looking at the queue now).
    No,
    /// On its way to the queue: woken while idle, or not there yet since its thread started.
    Woken,
    /// Waits for jobs, with room: a push wakes it.
    Idle,
    /// Waits for a running work to end (no room): only a close wakes it through the queue.
    Full,
}

struct State {
    jobs: VecDeque<Queued>,
    intake: Intake,
    /// Each worker's dispatcher waker while it waits, and how it waits.
    parked: Vec<(Parked, Option<Waker>)>,
    /// The idle workers, in the order they went idle.
    idle: Vec<usize>,
    /// How many workers are idle or woken (`Parked::Idle` or `Parked::Woken`).
    coming: usize,
}

impl State {
    /// Takes worker `me` out of the waiting dispatchers (it is looking at the queue now).
    fn unpark(&mut self, me: usize) {
        let (parked, _) = self.parked[me];
        if parked == Parked::Idle {
            self.idle.retain(|&w| w != me);
        }
        if matches!(parked, Parked::Idle | Parked::Woken) {
            self.coming -= 1;
        }
        self.parked[me].0 = Parked::No;
    }

    /// Registers worker `me`'s dispatcher to be woken, idle (with room) or full.
    fn park(&mut self, me: usize, how: Parked, cx: &Context<'_>) {
        let slot = &mut self.parked[me];
        slot.0 = how;
        match &slot.1 {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.1 = Some(cx.waker().clone()),
        }
        if how == Parked::Idle {
            self.idle.push(me);
            self.coming += 1;
        }
    }

    /// How many works worker `me` may take now, running `mine` works: everything while no
    /// other worker with room and nothing running is idle or on its way here; else its fair
    /// share of the queued works and the running ones of it and those workers, less what it
    /// runs already (0 when it has its share: the rest is theirs).
    ///
    /// A worker running nothing always gets at least one (`ceil(k / m) >= 1` with `k >= 1`
    /// works queued). So a declined work never waits on decliners alone: those workers run
    /// nothing, and whichever comes first takes one; the decliner wakes one that is idle.
    fn share(&self, me: usize, mine: usize, counts: &[Arc<WorkCounts>]) -> usize {
        if self.coming == 0 {
            return usize::MAX;
        }
        // ORDERING: Relaxed: a hint. A worker idle or woken with nothing running runs nothing
        // until it comes here, under this lock, so the count cannot rise meanwhile.
        let others = (0..self.parked.len())
            .filter(|&w| {
                w != me
                    && matches!(self.parked[w].0, Parked::Idle | Parked::Woken)
                    && counts[w].running.load(Ordering::Relaxed) == 0
            })
            .count();
        if others == 0 {
            return usize::MAX;
        }
        (self.jobs.len() + mine)
            .div_ceil(others + 1)
            .saturating_sub(mine)
    }

    /// Takes the waker of an idle worker, if any: the one that went idle last among those
    /// running nothing (a plain closure there holds no async works up; none in a pool of plain
    /// closures), else the one that went idle last (its cache is the warmest, and it may still
    /// be spinning).
    fn take_idle(&mut self, counts: &[Arc<WorkCounts>]) -> Option<Waker> {
        let last = self.idle.len().checked_sub(1)?;
        let at = self.last_idle_running_nothing(counts).unwrap_or(last);
        self.wake_at(at)
    }

    /// Takes the waker of the idle worker that went idle last among those running nothing, if
    /// any: the one that takes its share of what another worker left.
    fn take_idle_running_nothing(&mut self, counts: &[Arc<WorkCounts>]) -> Option<Waker> {
        let at = self.last_idle_running_nothing(counts)?;
        self.wake_at(at)
    }

    /// Where in `idle` the last idle worker running nothing is.
    fn last_idle_running_nothing(&self, counts: &[Arc<WorkCounts>]) -> Option<usize> {
        // ORDERING: Relaxed: a hint; whichever worker comes first takes the work.
        self.idle
            .iter()
            .rposition(|&w| counts[w].running.load(Ordering::Relaxed) == 0)
    }

    /// Takes the idle worker at `at` in `idle` out of it, as woken, and its waker.
    fn wake_at(&mut self, at: usize) -> Option<Waker> {
        let w = self.idle.remove(at);
        self.parked[w].0 = Parked::Woken; // still counted in `coming`: it is on its way
        self.parked[w].1.take()
    }
}

/// One queue of waiting works, shared by all the workers of a thread pool.
pub(crate) struct SharedQueue {
    state: Mutex<State>,
    /// The queue's works, less those cancelled there (see the module docs).
    queued: AtomicUsize,
    /// Each worker's running and ended works.
    counts: Vec<Arc<WorkCounts>>,
    capacity: usize,
    /// Set by `close(true)`: dispatchers cancel what they took but have not started.
    stopping: AtomicBool,
}

impl std::fmt::Debug for SharedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedQueue")
            .field("workers", &self.counts.len())
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SharedQueue {
    /// A queue for `n` workers, each running at most `capacity` works at once.
    pub(crate) fn new(n: usize, capacity: usize) -> SharedQueue {
        SharedQueue {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                intake: Intake::Open,
                // Every worker is on its way to its first look at the queue.
                parked: (0..n).map(|_| (Parked::Woken, None)).collect(),
                idle: Vec::with_capacity(n),
                coming: n,
            }),
            queued: AtomicUsize::new(0),
            counts: (0..n).map(|_| Arc::default()).collect(),
            capacity,
            stopping: AtomicBool::new(false),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.counts.len()
    }

    /// Worker `i`'s published counts.
    pub(crate) fn counts(&self, i: usize) -> &Arc<WorkCounts> {
        &self.counts[i]
    }

    /// Every worker's load, in worker order. The waiting works belong to no worker: they are
    /// spread evenly over the loads (the first workers get the remainder), so the loads still
    /// add up to every work the pool holds.
    pub(crate) fn loads(&self) -> Vec<Load> {
        let n = self.counts.len();
        // ORDERING: Relaxed: loads are a hint, read without synchronizing.
        let queued = self.queued.load(Ordering::Relaxed);
        self.counts
            .iter()
            .enumerate()
            .map(|(i, counts)| Load {
                running: counts.running.load(Ordering::Relaxed),
                queued: queued / n + usize::from(i < queued % n),
                capacity: self.capacity,
            })
            .collect()
    }

    /// Queues `jobs` at the back, in order, under one lock, and wakes an idle worker for each
    /// (as many as there are). A closed queue fails them with `ShutDown`.
    pub(crate) fn push_all(&self, jobs: impl ExactSizeIterator<Item = Queued>) {
        let n = jobs.len();
        // (The first waker apart: a push of one work wakes at most one worker, and should not
        // allocate a list for it.)
        let (mut first, mut more) = (None, Vec::new());
        {
            let mut st = lock(&self.state);
            if st.intake != Intake::Open {
                drop(st);
                for queued in jobs {
                    contain(|| queued.job.fail(Error::ShutDown));
                }
                return;
            }
            // Every job is marked (as counted in the one queue, "worker 0") before it is seen.
            st.jobs.reserve(n);
            for queued in jobs {
                if let Some(mark) = queued.job.queue_mark() {
                    mark.set(0);
                }
                st.jobs.push_back(queued);
            }
            // ORDERING: Relaxed: a count for loads; see `uncount`.
            self.queued.fetch_add(n, Ordering::Relaxed);
            if n > 0 {
                first = st.take_idle(&self.counts);
            }
            while first.is_some() && more.len() + 1 < n {
                match st.take_idle(&self.counts) {
                    Some(w) => more.push(w),
                    None => break,
                }
            }
        }
        first.into_iter().chain(more).for_each(Waker::wake);
    }

    /// Takes `n` works out of the waiting count (they left the queue, or were cancelled).
    fn uncount(&self, n: usize) {
        if n > 0 {
            // ORDERING: Relaxed: a count for loads; every decrement follows its increment
            // (through the lock or the handle's hand-over), so it never wraps.
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }

    /// Queues one job at the back (see [`push_all`](SharedQueue::push_all)).
    pub(crate) fn push(&self, queued: Queued) {
        self.push_all(std::iter::once(queued));
    }

    /// Stops intake; `now` also cancels every queued work at once (their handles resolve
    /// `Cancelled` even while every worker is held by a plain closure) and the running async
    /// works. Wakes every waiting dispatcher, to finish or stop.
    pub(crate) fn close(&self, now: bool) {
        if now {
            // ORDERING: Relaxed: a hint read between two starts; the lock orders the rest.
            self.stopping.store(true, Ordering::Relaxed);
        }
        let (cancelled, wakers) = {
            let mut st = lock(&self.state);
            st.intake = match (st.intake, now) {
                (_, true) | (Intake::Stopping, _) => Intake::Stopping,
                _ => Intake::Closing,
            };
            let cancelled: Vec<Arc<dyn Job>> = if now {
                st.jobs.drain(..).map(|queued| queued.job).collect()
            } else {
                Vec::new()
            };
            st.idle.clear();
            st.coming = 0;
            let wakers: Vec<Waker> = st
                .parked
                .iter_mut()
                .filter_map(|(parked, waker)| {
                    *parked = Parked::No;
                    waker.take()
                })
                .collect();
            (cancelled, wakers)
        };
        self.uncount(take_marks(&cancelled));
        // A closure's captures may panic as they drop: that must not keep the rest queued.
        for job in cancelled {
            contain(|| job.fail(Error::Cancelled));
        }
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl QueuedCounts for SharedQueue {
    fn uncount(&self, _worker: usize) {
        SharedQueue::uncount(self, 1);
    }
}

impl JobSource for SharedQueue {
    /// The worker's index.
    type Worker = usize;

    fn next_step(
        &self,
        me: &mut usize,
        room: &Room,
        batch: &mut Vec<Arc<dyn Job>>,
        cx: &mut Context<'_>,
    ) -> Poll<Step> {
        let me = *me;
        let mut st = lock(&self.state);
        st.unpark(me);
        if st.intake == Intake::Stopping {
            return Poll::Ready(Step::Stop); // `close(true)` cancelled the queue
        }
        let free = room.free().min(BATCH);
        let share = if free > 0 && !st.jobs.is_empty() {
            st.share(me, room.running(), &self.counts).min(free)
        } else {
            0
        };
        if share > 0 {
            // Only what starts at once: a plain closure holds this thread, so the works behind
            // it are left to the next free worker.
            while batch.len() < share {
                let Some(queued) = st.jobs.pop_front() else {
                    break;
                };
                batch.push(queued.job);
                if queued.blocking {
                    break;
                }
            }
            let more = if st.jobs.is_empty() {
                None
            } else {
                st.take_idle(&self.counts) // works left behind: another idle worker takes the next
            };
            drop(st);
            self.uncount(take_marks(batch));
            if let Some(w) = more {
                w.wake();
            }
            return Poll::Ready(Step::Run);
        }
        if st.intake == Intake::Closing && st.jobs.is_empty() && room.running() == 0 {
            return Poll::Ready(Step::Stop);
        }
        // Full: wait for a running work to end (registered for a close too). Room and nothing
        // to take (or our share taken): wait, idle, for a push.
        let how = if free == 0 {
            Parked::Full
        } else {
            Parked::Idle
        };
        // Our share is taken and works wait: they are for the workers with nothing running on
        // their way here, or idle (one is woken; it takes its share and wakes the next if works
        // are left).
        let more = if how == Parked::Idle && !st.jobs.is_empty() {
            st.take_idle_running_nothing(&self.counts)
        } else {
            None
        };
        st.park(me, how, cx);
        drop(st);
        if let Some(w) = more {
            w.wake();
        }
        room.wait_for_ends(cx);
        Poll::Pending
    }

    fn stopping(&self, _me: &usize) -> bool {
        // ORDERING: Relaxed: see `close`.
        self.stopping.load(Ordering::Relaxed)
    }
}
