//! The elastic pool's shared priority queue, which its workers pull from, and the rules for
//! growing and shrinking the set of workers.
//!
//! # Ownership rules
//!
//! - `State` is behind one lock shared by the submitters, the workers and the pool handle. The
//!   lock is held only to push, pop, count and swap wakers; no job runs, no waker is woken and no
//!   thread is started under it.
//! - A worker counts in `workers` from the moment a submitter or `resize` decides to start it
//!   until its dispatcher decides to leave (both under the lock), so the count never overshoots
//!   `max` however many submitters race.
//! - An idle worker parks its dispatcher's waker in `idle` (keyed by the worker's id); a
//!   submitter takes one out and wakes it. A worker that leaves removes its own entry.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::pool::cell::Job;
use crate::pool::worker::{dispatch, start_thread, JobSource, Room, Step, ThreadStart, WorkCounts};
use crate::runtime::reactor::lock;
use crate::sync::SemaphoreGuardArc;
use crate::time::Sleep;
use crate::Error;

/// One waiting work: higher priority first, then first come, first served.
struct Queued {
    priority: i32,
    seq: u64,
    job: Arc<dyn Job>,
    /// The queue-capacity permit this work holds while it waits.
    permit: Option<SemaphoreGuardArc>,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Queued) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Queued) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Queued) -> CmpOrdering {
        // A max-heap: the greater pops first, so an earlier `seq` must compare greater.
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

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
    pub(crate) counts: Arc<WorkCounts>,
    /// Until the thread is joined (or detached).
    pub(crate) thread: Option<JoinHandle<()>>,
    /// The panic that ended the thread outside any work, once it was joined.
    pub(crate) lost: Option<String>,
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

pub(crate) struct State {
    heap: BinaryHeap<Queued>,
    seq: u64,
    /// Dispatchers of workers with room that wait for a job, by worker id.
    idle: HashMap<usize, Waker>,
    /// Every waiting dispatcher, busy or not, by worker id: woken when the intake changes.
    waiting: HashMap<usize, Waker>,
    /// Workers alive or starting.
    pub(crate) workers: usize,
    pub(crate) min: usize,
    pub(crate) max: usize,
    /// Idle workers asked to leave (after `resize` lowered `max`).
    retire: usize,
    pub(crate) intake: Intake,
    /// Every worker ever started, in start order.
    pub(crate) records: Vec<WorkerRecord>,
    next_id: usize,
}

impl State {
    /// Works waiting in the queue.
    pub(crate) fn queued_len(&self) -> usize {
        self.heap.len()
    }
}

/// What the pool handle and every worker share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) config: Config,
    /// Set while nothing is queued or running; `drain` waits on it.
    pub(crate) idle_event: crate::sync::Event,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElasticShared").finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(config: Config, min: usize, max: usize) -> Shared {
        let idle_event = crate::sync::Event::new();
        idle_event.set();
        Shared {
            state: Mutex::new(State {
                heap: BinaryHeap::new(),
                seq: 0,
                idle: HashMap::new(),
                waiting: HashMap::new(),
                workers: 0,
                min,
                max,
                retire: 0,
                intake: Intake::Open,
                records: Vec::new(),
                next_id: 0,
            }),
            config,
            idle_event,
        }
    }

    /// Queues a job (or fails it, if the pool is closed), waking an idle worker or starting a
    /// new one when every worker is busy.
    pub(crate) fn enqueue(
        self: &Arc<Self>,
        priority: i32,
        job: Arc<dyn Job>,
        permit: Option<SemaphoreGuardArc>,
    ) {
        let (waker, grow) = {
            let mut st = lock(&self.state);
            if st.intake != Intake::Open {
                drop(st);
                drop(permit);
                job.fail(Error::ShutDown);
                return;
            }
            self.idle_event.clear();
            let seq = st.seq;
            st.seq += 1;
            st.heap.push(Queued {
                priority,
                seq,
                job,
                permit,
            });
            let waker = st
                .idle
                .keys()
                .next()
                .copied()
                .and_then(|id| st.idle.remove(&id));
            let grow = waker.is_none() && self.config.scaling && st.workers < st.max;
            if grow {
                st.workers += 1;
            }
            (waker, grow)
        };
        if let Some(w) = waker {
            w.wake();
        }
        if grow {
            // A failed start gives the slot back; the queued work waits for another worker.
            let _ = self.start_worker(None, true);
        }
    }

    /// Starts one worker, already counted in `workers` (`counted`) or not.
    pub(crate) fn start_worker(
        self: &Arc<Self>,
        ready: Option<std::sync::mpsc::Sender<Result<(), String>>>,
        counted: bool,
    ) -> std::io::Result<()> {
        let counts = Arc::new(WorkCounts::default());
        let id = {
            let mut st = lock(&self.state);
            if !counted {
                st.workers += 1;
            }
            let id = st.next_id;
            st.next_id += 1;
            id
        };
        let start = ThreadStart {
            name: format!("{}-{id}", self.config.name),
            index: id,
            spin: self.config.spin,
            on_start: self.config.on_start.clone(),
            ready,
        };
        let shared = self.clone();
        let c = counts.clone();
        let max = self.config.max_works;
        let me = ElasticWorker {
            id,
            idle_timer: None,
        };
        match start_thread(start, move || dispatch(shared, me, max, c)) {
            Ok(thread) => {
                lock(&self.state).records.push(WorkerRecord {
                    counts,
                    thread: Some(thread),
                    lost: None,
                });
                // Workers that retired since the last start are joined now, so a pool that
                // grows and shrinks all day keeps no finished thread's stack around.
                self.reap(false);
                Ok(())
            }
            Err(e) => {
                lock(&self.state).workers -= 1;
                Err(e)
            }
        }
    }

    /// Joins the worker threads that have finished, noting a panic in the worker's record;
    /// with `detach`, lets go of the unfinished ones too.
    pub(crate) fn reap(&self, detach: bool) {
        let threads: Vec<(usize, JoinHandle<()>)> = {
            let mut st = lock(&self.state);
            st.records
                .iter_mut()
                .enumerate()
                .filter(|(_, r)| detach || r.thread.as_ref().is_some_and(JoinHandle::is_finished))
                .filter_map(|(i, r)| r.thread.take().map(|t| (i, t)))
                .collect()
        };
        for (i, thread) in threads {
            if !thread.is_finished() {
                continue; // detached
            }
            if let Err(panic) = thread.join() {
                let why = crate::runtime::task::panic_message(&*panic);
                lock(&self.state).records[i].lost = Some(why);
            }
        }
    }

    /// Takes every queued job out (to cancel them).
    pub(crate) fn take_queued(&self) -> Vec<Arc<dyn Job>> {
        let drained: Vec<Queued> = lock(&self.state).heap.drain().collect();
        drained.into_iter().map(|q| q.job).collect()
    }

    /// Changes the intake and wakes every idle worker to see it.
    pub(crate) fn set_intake(&self, intake: Intake) {
        let wakers: Vec<Waker> = {
            let mut st = lock(&self.state);
            if st.intake != Intake::Stopping {
                st.intake = intake;
            }
            st.idle.clear();
            st.waiting.drain().map(|(_, w)| w).collect()
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Changes the bounds: starts workers up to `min`, asks idle ones above `max` to leave.
    pub(crate) fn resize(self: &Arc<Self>, min: usize, max: usize) {
        let (start, wakers) = {
            let mut st = lock(&self.state);
            st.min = min;
            st.max = max;
            let start = min.saturating_sub(st.workers);
            st.workers += start;
            st.retire = st.workers.saturating_sub(max);
            let wakers: Vec<Waker> = if st.retire > 0 {
                st.idle.clear();
                st.waiting.drain().map(|(_, w)| w).collect()
            } else {
                Vec::new()
            };
            (start, wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
        for _ in 0..start {
            let _ = self.start_worker(None, true);
        }
    }

    /// Queued works, and works running across the workers.
    pub(crate) fn queued_and_running(&self) -> (usize, usize) {
        let st = lock(&self.state);
        let running = st
            .records
            .iter()
            .map(|r| r.counts.running.load(Ordering::Relaxed))
            .sum();
        (st.heap.len(), running)
    }
}

/// What one elastic worker keeps between steps.
pub(crate) struct ElasticWorker {
    id: usize,
    /// Running while the worker is idle and above `min`: when it fires, the worker leaves.
    idle_timer: Option<Sleep>,
}

impl JobSource for Shared {
    type Worker = ElasticWorker;

    fn next_step(
        &self,
        me: &mut ElasticWorker,
        room: &Room,
        batch: &mut Vec<Arc<dyn Job>>,
        cx: &mut Context<'_>,
    ) -> Poll<Step> {
        let mut permits = Vec::new();
        let step = self.step(me, room, batch, &mut permits, cx);
        drop(permits); // queue room frees outside the lock
        step
    }
}

impl Shared {
    fn step(
        &self,
        me: &mut ElasticWorker,
        room: &Room,
        batch: &mut Vec<Arc<dyn Job>>,
        permits: &mut Vec<SemaphoreGuardArc>,
        cx: &mut Context<'_>,
    ) -> Poll<Step> {
        let mut st = lock(&self.state);
        if st.intake == Intake::Stopping {
            return Poll::Ready(self.leave(&mut st, me));
        }
        let free = room.free();
        if free > 0 && !st.heap.is_empty() {
            while batch.len() < free {
                let Some(q) = st.heap.pop() else { break };
                batch.push(q.job);
                permits.extend(q.permit);
            }
            me.idle_timer = None;
            return Poll::Ready(Step::Run);
        }
        let idle = room.running() == 0;
        if idle && st.heap.is_empty() && self.running_now(&st) == 0 {
            self.idle_event.set();
        }
        if st.intake == Intake::Closing && st.heap.is_empty() && idle {
            return Poll::Ready(self.leave(&mut st, me));
        }
        if idle && st.retire > 0 {
            st.retire -= 1;
            return Poll::Ready(self.leave(&mut st, me));
        }
        if idle && st.workers > st.min && st.intake == Intake::Open {
            let timer = me
                .idle_timer
                .get_or_insert_with(|| crate::time::sleep(self.config.idle_timeout));
            if Pin::new(timer).poll(cx).is_ready() {
                me.idle_timer = None;
                return Poll::Ready(self.leave(&mut st, me));
            }
        } else if !idle {
            me.idle_timer = None;
        }
        if free > 0 {
            st.idle.insert(me.id, cx.waker().clone());
        }
        st.waiting.insert(me.id, cx.waker().clone());
        drop(st);
        room.wait_for_ends(cx);
        Poll::Pending
    }

    fn running_now(&self, st: &State) -> usize {
        st.records
            .iter()
            .map(|r| r.counts.running.load(Ordering::Relaxed))
            .sum()
    }

    /// The worker leaves: uncount it and forget its waker.
    fn leave(&self, st: &mut State, me: &ElasticWorker) -> Step {
        st.workers -= 1;
        st.idle.remove(&me.id);
        st.waiting.remove(&me.id);
        Step::Stop
    }
}
