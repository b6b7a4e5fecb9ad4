//! The elastic pool's shared priority queue, which its workers pull from; the rules for growing
//! and shrinking the set of workers (starting one is the `starts` module's); and the counts of
//! accepted works.
//!
//! # Ownership rules
//!
//! - `State` is behind one lock shared by the submitters, the workers and the pool handle. The
//!   lock is held only to push, pop, count and swap wakers; no job runs, no waker is woken, no
//!   room is given back and no thread is started under it.
//! - A worker counts in `workers` from the moment a submitter, `resize`, a step or a failed start
//!   decides to start it until its dispatcher decides to leave (both under the lock), so the count never
//!   overshoots `max` however many submitters race. It counts in `threads` from the same moment
//!   until its thread has dropped every task it ran (a thread-local guard, dropped as the thread
//!   exits), which is what a shutdown waits for.
//! - A worker takes a few works from the queue per step (see the `steps` module); until it
//!   starts one, the work is still waiting, counted as queued, and open to other workers (see
//!   the `held` module). A work counts as running once it left both.
//! - `tally` counts every accepted work from its submit until its outcome is published (see the
//!   `track` module for who ends it); `drain` and the shutdown wait on it.
//! - An idle worker parks its dispatcher's waker in `idle` (keyed by the worker's id, marked
//!   busy if it runs async works); a submitter takes one out and wakes it (for a plain closure,
//!   a free one, else it starts a worker: see the `steps` module). A worker that leaves removes
//!   its own entry. The queue's top priority and the idle count are mirrored in atomics
//!   (`Shared::mirror_top`, `mirror_idle`) after every change, for the workers that read them
//!   without the lock.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use super::held::{Held, Queued};
use super::lanes::Lanes;
use super::parked::Parked;
use super::room::{QueueRoom, Rooms};
use super::starts::START_FAILURES_IN_A_ROW;
use super::track::{Ending, Queueable};
use crate::pool::cell::Job;
use crate::pool::worker::WorkCounts;
use crate::pool::Handle;
use crate::runtime::reactor::lock;
use crate::Error;

/// Whether the pool takes works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intake {
    Open,
    /// Take nothing new; workers finish the queue, then leave.
    Closing,
    /// Workers leave now, dropping their running async works.
    Stopping,
}

/// A worker thread the pool started, and what it counted.
pub(crate) struct WorkerRecord {
    pub(super) id: usize,
    /// Works running on it now (for `idle`).
    pub(crate) counts: Arc<WorkCounts>,
    /// Works it took from the queue that have ended (any outcome).
    pub(crate) finished: Arc<AtomicUsize>,
    /// Until the thread is joined (or detached).
    pub(crate) thread: Option<JoinHandle<()>>,
    /// Why the worker was lost: its start hook panicked, or its thread died outside any work.
    pub(crate) lost: Option<String>,
    /// The works it took from the queue and has not started.
    pub(super) held: Arc<Held>,
}

/// Settings that do not change after `build`.
pub(crate) struct Config {
    pub(crate) name: String,
    pub(crate) spin: Duration,
    pub(crate) max_works: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) scaling: bool,
    pub(crate) on_start: Option<Arc<dyn Fn(usize) + Send + Sync>>,
}

/// Accepted works, counted from submit until their outcome is published.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    /// Accepted and not ended: queued, or taken by a worker.
    pub(crate) unfinished: usize,
    /// Ended, any outcome.
    pub(crate) ended: usize,
    /// Ended by a shutdown: taken out of the queue, or dropped unfinished by a leaving worker.
    pub(crate) by_shutdown: usize,
}

pub(crate) struct State {
    pub(super) queue: Lanes<Queued>,
    /// Dispatchers of workers with room that wait for a job, by worker id (their number is
    /// mirrored in `Shared::idle_count`).
    pub(super) idle: Parked,
    /// Every waiting dispatcher, busy or not, by worker id: woken when the intake changes.
    pub(super) waiting: Parked,
    /// Workers alive or starting.
    pub(crate) workers: usize,
    /// Workers counted in `workers` that have not taken their first step: free workers on
    /// their way to the queue.
    pub(super) starting: usize,
    /// Worker threads alive or starting, until each has dropped its tasks.
    pub(crate) threads: usize,
    pub(crate) min: usize,
    pub(crate) max: usize,
    /// Idle workers asked to leave (after `resize` lowered `max`).
    pub(super) retire: usize,
    /// A work with a priority other than the default was accepted: workers compare the
    /// priorities of each other's held works.
    pub(super) priorities_used: bool,
    pub(crate) intake: Intake,
    /// Every worker ever started, in start order.
    pub(crate) records: Vec<WorkerRecord>,
    pub(super) next_id: usize,
    pub(crate) tally: Tally,
    /// `drain` futures waiting for `tally.unfinished` to reach 0.
    pub(super) drainers: Vec<Waker>,
    /// Async waiters of the `watch` module (`shutdown_async`, `closed`), woken by `notify`.
    pub(super) watchers: Vec<Waker>,
    /// Worker starts that failed in a row.
    pub(super) start_failures: usize,
    /// A shutdown has run to its end.
    pub(crate) shut: bool,
}

impl State {
    /// Works waiting: in the queue, or held by a worker that has not started them.
    pub(crate) fn queued_len(&self) -> usize {
        self.queue.len() + self.records.iter().map(|r| r.held.len()).sum::<usize>()
    }

    /// Counts a worker to be started.
    pub(super) fn reserve_worker(&mut self) {
        self.workers += 1;
        self.starting += 1;
        self.threads += 1;
    }

    pub(super) fn record(&mut self, id: usize) -> Option<&mut WorkerRecord> {
        self.records.iter_mut().find(|r| r.id == id)
    }
}

/// What the pool handle and every worker share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) config: Config,
    /// Queue room, when the queue is bounded.
    pub(crate) rooms: Option<Arc<Rooms>>,
    /// Notified when a work ends, a thread exits, a plain closure starts, the intake changes or
    /// a shutdown ends, if someone waits (`watching`); see the `watch` module.
    pub(super) changed: Condvar,
    /// What workers read without the lock, on cache lines of their own.
    pub(super) mirrors: Mirrors,
}

/// Counts kept under the pool's lock and read without it, on every work: kept apart from the
/// lock (which the submitter and the workers write all the time), and written only when they
/// change, so a read hits the cache.
#[repr(align(128))]
pub(crate) struct Mirrors {
    /// Threads waiting on `changed` (changed under the lock; read without it by a worker that
    /// starts a plain closure).
    pub(super) watching: AtomicUsize,
    /// The highest priority in the queue (`i64::MIN` when empty), kept with it under the lock
    /// and read without it: a worker starts a held work only if none higher waits.
    pub(super) top: AtomicI64,
    /// `State::idle`'s length, kept with it under the lock and read without it: a worker about
    /// to block with works held wakes an idle one to take them.
    pub(super) idle_count: AtomicUsize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticShared").finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(config: Config, min: usize, max: usize, rooms: Option<Arc<Rooms>>) -> Shared {
        Shared {
            state: Mutex::new(State {
                queue: Lanes::default(),
                idle: Parked::default(),
                waiting: Parked::default(),
                workers: 0,
                starting: 0,
                threads: 0,
                min,
                max,
                retire: 0,
                priorities_used: false,
                intake: Intake::Open,
                records: Vec::new(),
                next_id: 0,
                tally: Tally::default(),
                drainers: Vec::new(),
                watchers: Vec::new(),
                start_failures: 0,
                shut: false,
            }),
            config,
            rooms,
            changed: Condvar::new(),
            mirrors: Mirrors {
                watching: AtomicUsize::new(0),
                top: AtomicI64::new(i64::MIN),
                idle_count: AtomicUsize::new(0),
            },
        }
    }

    /// Mirrors the queue's top priority after `st` changed the queue.
    pub(super) fn mirror_top(&self, st: &State) {
        let top = st.queue.top().map_or(i64::MIN, i64::from);
        // ORDERING: Relaxed: a stale top only delays a held work to the worker's next step,
        // which looks under the lock.
        if self.mirrors.top.load(Ordering::Relaxed) != top {
            self.mirrors.top.store(top, Ordering::Relaxed);
        }
    }

    /// Mirrors the idle count after `st` changed `idle`.
    pub(super) fn mirror_idle(&self, st: &State) {
        // ORDERING: SeqCst, paired with the load in `steps::blocking`: see there. (The count
        // changes, and is stored, each time a worker parks or unparks.)
        let idle = st.idle.len();
        if self.mirrors.idle_count.load(Ordering::Relaxed) != idle {
            self.mirrors.idle_count.store(idle, Ordering::SeqCst);
        }
    }

    /// Whether the pool can offer a free worker to a plain closure: one parked with nothing
    /// running, or room to start one (unless starts keep failing).
    pub(super) fn offers_free_worker(&self, st: &State) -> bool {
        st.idle.has_free() || self.may_grow(st)
    }

    /// Whether a worker may be started for the queue.
    fn may_grow(&self, st: &State) -> bool {
        self.config.scaling
            && st.intake == Intake::Open
            && st.workers < st.max
            && st.start_failures < START_FAILURES_IN_A_ROW
    }

    /// Brings a free worker to the queue for a plain closure that a busy worker (`not`, which
    /// runs async works) passed over: wakes one parked with nothing running, else counts a new
    /// one, to be started once the lock is released (true). Called under the same lock as the
    /// pass-over, so the woken or new worker's first look at the queue comes after it (or
    /// that of a worker still starting, which comes instead).
    pub(super) fn summon_free(&self, st: &mut State, not: usize) -> (Option<Waker>, bool) {
        if let Some(w) = st.idle.take_free(Some(not)) {
            self.mirror_idle(st);
            return (Some(w), false);
        }
        // A worker that is starting looks at the queue first thing: busy workers that step
        // again and again while it starts must not start one more each time.
        let grow = st.starting == 0 && self.may_grow(st);
        if grow {
            st.reserve_worker();
        }
        (None, grow)
    }

    /// Accepts a work (or fails it, if the pool is closed), waking an idle worker or starting a
    /// new one when every worker is busy.
    pub(crate) fn accept<T: 'static, W: Queueable<T> + 'static>(
        self: &Arc<Self>,
        priority: i32,
        work: Arc<W>,
        room: QueueRoom,
    ) -> Handle<T> {
        let (waker, grow) = {
            let mut st = lock(&self.state);
            if st.intake != Intake::Open {
                drop(st);
                drop(room);
                work.fail(Error::ShutDown); // counted nowhere
                return Handle::new(work);
            }
            st.tally.unfinished += 1;
            st.priorities_used |= priority != 0;
            let job: Arc<dyn Job> = work.clone();
            let queued = Queued {
                priority,
                plain: W::PLAIN,
                job,
                _room: room,
            };
            st.queue.push(priority, queued);
            let can_grow = self.config.scaling && st.workers < st.max;
            // A plain closure holds its worker's thread: it goes to a worker with nothing
            // running, else to a new one; only at `max` to one that runs async works (which
            // it stalls until it returns; see `max_works_per_worker`).
            let waker = if W::PLAIN && can_grow {
                st.idle.take_free(None)
            } else {
                st.idle.take_other(None)
            };
            let grow = waker.is_none() && can_grow;
            if grow {
                st.reserve_worker();
            }
            self.mirror_top(&st);
            if waker.is_some() {
                self.mirror_idle(&st);
            }
            (waker, grow)
        };
        if let Some(w) = waker {
            w.wake();
        }
        if grow {
            // A failed start gives the slot back; the queued work waits for another worker.
            let _ = self.start_worker(None);
        }
        Handle::new(work)
    }

    /// A queued work (`work` is its address) was cancelled by its handle: take it out now,
    /// freeing its room. A worker that took it first ends it instead.
    pub(crate) fn forget_cancelled(&self, work: *const ()) {
        let removed = {
            let mut st = lock(&self.state);
            let removed = st.queue.remove_first(|q| q.is(work));
            self.mirror_top(&st);
            removed.or_else(|| st.records.iter().find_map(|r| r.held.remove(work)))
        };
        if let Some(q) = removed {
            self.work_ended(1, Ending::Ran);
            drop(q); // its room frees outside the lock
        }
    }

    /// Takes every queued work out and ends it with `error`; their rooms free.
    pub(crate) fn end_queued(&self, error: fn() -> Error) {
        let drained = {
            let mut st = lock(&self.state);
            let mut drained = st.queue.drain();
            self.mirror_top(&st);
            for r in &st.records {
                drained.extend(r.held.drain());
            }
            drained
        };
        let n = drained.len();
        for q in drained {
            q.job.fail(error());
        }
        if n > 0 {
            self.work_ended(n, Ending::TakenOut);
        }
    }

    /// Changes the intake, wakes every waiting worker to see it, and frees every submitter
    /// waiting for room. Returns the tally at the change.
    pub(crate) fn set_intake(&self, intake: Intake) -> Tally {
        let (wakers, tally) = {
            let mut st = lock(&self.state);
            if st.intake != Intake::Stopping {
                st.intake = intake;
            }
            st.idle.clear();
            self.mirror_idle(&st);
            let wakers = st.waiting.drain();
            let tally = st.tally;
            self.notify(st); // `closed` may be waiting for the intake to close
            (wakers, tally)
        };
        wakers.into_iter().for_each(Waker::wake);
        if let Some(rooms) = &self.rooms {
            rooms.close();
        }
        tally
    }

    /// `n` works ended (their outcomes are published): count them, and wake `drain` when none
    /// is left.
    pub(crate) fn work_ended(&self, n: usize, how: Ending) {
        let mut st = lock(&self.state);
        let drainers = self.count_ended(&mut st, n, how);
        self.notify(st);
        drainers.into_iter().for_each(Waker::wake);
    }

    /// Counts `n` ended works; the `drain` wakers to wake (after the lock) if none is left.
    pub(super) fn count_ended(&self, st: &mut State, n: usize, how: Ending) -> Vec<Waker> {
        let by_shutdown = match how {
            Ending::Ran => false,
            Ending::TakenOut => true,
            Ending::Dropped => st.intake == Intake::Stopping,
        };
        let t = &mut st.tally;
        t.unfinished -= n;
        t.ended += n;
        if by_shutdown {
            t.by_shutdown += n;
        }
        if t.unfinished == 0 {
            std::mem::take(&mut st.drainers)
        } else {
            Vec::new()
        }
    }

    /// A plain closure is about to hold a worker's thread: a shutdown that waits for the
    /// threads not so held looks again.
    pub(crate) fn plain_started(&self) {
        // ORDERING: SeqCst, after the worker's SeqCst store of its blocking flag: either this
        // sees the waiter (who counts itself before it looks at the flags), or the waiter's
        // look sees the flag.
        if self.mirrors.watching.load(Ordering::SeqCst) > 0 {
            self.notify(lock(&self.state));
        }
    }

    /// Plain closures running now (each holds its worker's thread).
    pub(crate) fn plain_running(st: &State) -> usize {
        st.records
            .iter()
            // ORDERING: SeqCst, paired with `plain_started`.
            .filter(|r| r.counts.blocking.load(Ordering::SeqCst))
            .count()
    }

    /// `drain`'s step: ready once every accepted work has ended.
    pub(crate) fn poll_drained(&self, cx: &Context<'_>) -> Poll<()> {
        let mut st = lock(&self.state);
        if st.tally.unfinished == 0 {
            return Poll::Ready(());
        }
        if !st.drainers.iter().any(|w| w.will_wake(cx.waker())) {
            st.drainers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Changes the bounds: starts workers up to `min` and, with scaling, as many more as the
    /// queue needs (as submits would have); asks idle ones above `max` to leave.
    pub(crate) fn resize(self: &Arc<Self>, min: usize, max: usize) {
        let (start, wakers) = {
            let mut st = lock(&self.state);
            st.min = min;
            st.max = max;
            let mut start = min.saturating_sub(st.workers);
            if self.config.scaling && st.intake == Intake::Open {
                let unserved = st.queued_len().saturating_sub(st.idle.len());
                let room = max.saturating_sub(st.workers + start);
                start += unserved.saturating_sub(start).min(room);
            }
            for _ in 0..start {
                st.reserve_worker();
            }
            st.retire = st.workers.saturating_sub(max);
            let wakers: Vec<Waker> = if st.retire > 0 {
                st.idle.clear();
                self.mirror_idle(&st);
                st.waiting.drain()
            } else {
                Vec::new()
            };
            (start, wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
        for _ in 0..start {
            let _ = self.start_worker(None);
        }
    }
}
