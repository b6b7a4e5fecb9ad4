//! An elastic worker's steps: what its dispatcher does next — take works, wait, or leave.
//!
//! # Ownership rules
//!
//! - Each step takes the pool's lock once. Under it, the worker counts the works it ended since
//!   its last step, then takes its next works: the works it holds ([`Held`]) if none of a
//!   higher priority waits in the queue; else a fair share of the queue (at most [`TAKE`]);
//!   else half of the works another worker holds (the one that holds most). One lock round
//!   trip and one executor turn serve a whole batch.
//! - Taken works stay *held*: waiting, counted as queued, holding their queue rooms, and open
//!   to other workers, until the worker claims each right before starting it (see the `held`
//!   module). So a worker that blocks in a long closure, or whose room async works fill, keeps
//!   nothing from the others: a worker with room takes what it holds — woken, if it was parked,
//!   by the holder itself ([`blocking`], or the holder's step before it parks full).
//! - A worker with room registers in `idle` *before* its last look at the other workers' held
//!   works, under the lock; a worker about to block reads the idle count after its held works
//!   are in place (one about to park full looks under the lock). So either the parked worker
//!   sees the works, or the holder sees it parked.
//! - A plain closure holds its worker's thread until it returns, so a worker that runs async
//!   works (*busy*) starts none while the pool can offer a free worker ([`PlainRule`]): it
//!   takes no plain closure from the queue or from another worker, and gives back to the queue
//!   the plain closures it holds. A worker that passes a plain closure over summons a free
//!   worker under the same lock (wakes one parked with nothing running, or starts one), whose
//!   first look at the queue comes after it; so no plain closure is stranded. At `max`, with
//!   no free worker parked, a busy worker starts plain closures as before.
//! - Within one take (and one batch), a plain closure never follows an async work while the
//!   pool can offer a free worker: it would hold the thread that work needs. It is left for
//!   the worker's next step, which comes right after the batch (a worker always steps again),
//!   busy by then: it passes the closure over and summons a free worker.
//! - A busy worker woken for an async work cannot reach it past a plain closure at the front
//!   of the queue; the free worker summoned takes the closure (and maybe only it). So a worker
//!   that takes plain closures and leaves works in the queue wakes another parked worker.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use super::held::{Held, PlainRule, Queued};
use super::queue::{Intake, Shared, State};
use super::track::{self, Ending};
use crate::pool::cell::Job;
use crate::pool::worker::{JobSource, Room, Step};
use crate::runtime::reactor::lock;
use crate::time::Sleep;
use crate::Error;

/// The most works a worker takes from the queue in one step. A fair share of the queue is
/// taken (what waits over the number of workers), so that a short queue is spread over the
/// workers; this bounds how long a later work of a higher priority waits behind a batch.
pub(crate) const TAKE: usize = 32;

/// What one elastic worker keeps between steps.
pub(crate) struct ElasticWorker {
    pub(super) id: usize,
    /// Its count of finished works, shared with its record.
    pub(super) finished: Arc<AtomicUsize>,
    /// The works it took and has not started, shared with its record.
    pub(super) held: Arc<Held>,
    /// Running while the worker is idle and above `min`: when it fires, the worker leaves.
    idle_timer: Option<Sleep>,
    /// It has taken its first step (it no longer counts as starting).
    stepped: bool,
    /// Its pool, to start the workers a step summons.
    pool: Arc<Shared>,
}

impl ElasticWorker {
    pub(super) fn new(
        id: usize,
        finished: Arc<AtomicUsize>,
        held: Arc<Held>,
        pool: Arc<Shared>,
    ) -> ElasticWorker {
        ElasticWorker {
            id,
            finished,
            held,
            idle_timer: None,
            stepped: false,
            pool,
        }
    }
}

/// What a step leaves to do once the lock is released.
#[derive(Default)]
struct After {
    /// Ended works were counted: wake a waiting shutdown.
    counted: bool,
    /// `drain` futures to wake.
    drainers: Vec<Waker>,
    /// Held works to cancel (the worker leaves at a shutdown that stops now).
    cancel: Vec<Queued>,
    /// A free worker was summoned for the plain closure this worker passed over in the queue
    /// or in another worker's held works (once a step: it comes for the front one).
    summoned: bool,
    /// Free workers to wake, so summoned.
    wake: Vec<Waker>,
    /// Workers to start, so summoned (already counted).
    start: usize,
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
        let mut after = After::default();
        let step = self.step(me, room, batch, &mut after, cx);
        after.wake.drain(..).for_each(Waker::wake);
        for _ in 0..after.start {
            // A failed start is handled there (retried, or the queue's works failed).
            let _ = me.pool.start_worker(None);
        }
        if !after.cancel.is_empty() {
            let n = after.cancel.len();
            for q in after.cancel {
                q.job.fail(Error::Cancelled);
            }
            self.work_ended(n, Ending::TakenOut);
        }
        if after.counted {
            // ORDERING: Relaxed: a waiter counts itself under the lock we took to count.
            if self.mirrors.watching.load(Ordering::Relaxed) > 0 {
                self.notify(lock(&self.state));
            }
            after.drainers.into_iter().for_each(Waker::wake);
        }
        step
    }

    fn on_blocking(self: &Arc<Self>, _me: &ElasticWorker) -> Option<Box<dyn Fn()>> {
        let shared = self.clone();
        Some(Box::new(move || blocking(&shared)))
    }
}

/// A worker is about to run a plain closure (its blocking flag is set and fenced): if it holds
/// works and a worker is idle, wake that one to take them.
fn blocking(shared: &Shared) {
    // ORDERING: SeqCst, paired with the store in `Shared::mirror_idle`: an idle worker
    // registers before it looks at the held works; we looked at ours (when we claimed this
    // work) before the idle count. (Held works stolen since only make the wake-up needless.)
    if track::held_after_claim() && shared.mirrors.idle_count.load(Ordering::SeqCst) > 0 {
        let waker = {
            let mut st = lock(&shared.state);
            let waker = st.idle.take_other(None);
            shared.mirror_idle(&st);
            waker
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Shared {
    fn step(
        &self,
        me: &mut ElasticWorker,
        room: &Room,
        batch: &mut Vec<Arc<dyn Job>>,
        after: &mut After,
        cx: &mut Context<'_>,
    ) -> Poll<Step> {
        let mut st = lock(&self.state);
        if !me.stepped {
            me.stepped = true;
            st.starting -= 1;
        }
        let n = track::take_ended_here();
        if n > 0 {
            // ORDERING: a count read after the workers are joined, or as a statistic.
            me.finished.fetch_add(n, Ordering::Relaxed);
            after.drainers = self.count_ended(&mut st, n, Ending::Ran);
            after.counted = true;
        }
        if st.intake == Intake::Stopping {
            after.cancel = me.held.drain();
            return Poll::Ready(self.leave(&mut st, me));
        }
        let rule = PlainRule {
            busy: room.running() > 0,
            offer: self.offers_free_worker(&st),
        };
        if !rule.allows(rule.busy) {
            // One free worker for each: a worker takes a fair share of the queue, so the
            // first one summoned may take only the first of them.
            let back = me.held.take_plain();
            if !back.is_empty() {
                for _ in 0..back.len() {
                    self.summon_one(&mut st, me, after);
                }
                for q in back.into_iter().rev() {
                    st.queue.push_front(q.priority, q);
                }
                self.mirror_top(&st);
            }
        }
        // Any worker with room takes (and steals): it parks among the idle ones, and the one a
        // blocking worker wakes must be able to take what that worker holds.
        if room.free() > 0
            && (self.take(&mut st, me, room, batch, rule, after)
                || self.steal(&mut st, me, room, batch, rule, after, cx))
        {
            me.idle_timer = None;
            if st.idle.remove(me.id).is_some() {
                self.mirror_idle(&st);
            }
            return Poll::Ready(Step::Run);
        }
        let idle = room.running() == 0;
        if st.intake == Intake::Closing && st.queue.is_empty() && idle {
            return Poll::Ready(self.leave(&mut st, me));
        }
        if idle && st.retire > 0 {
            st.retire -= 1;
            return Poll::Ready(self.leave(&mut st, me));
        }
        if idle && st.workers > st.min && st.intake == Intake::Open {
            if me.idle_timer.is_none() {
                // A timeout too long for `Instant` means the worker never leaves for idling.
                me.idle_timer = Instant::now()
                    .checked_add(self.config.idle_timeout)
                    .map(crate::time::sleep_until);
            }
            if let Some(timer) = &mut me.idle_timer {
                if Pin::new(timer).poll(cx).is_ready() {
                    me.idle_timer = None;
                    return Poll::Ready(self.leave(&mut st, me));
                }
            }
        } else if !idle {
            me.idle_timer = None;
        }
        if room.free() > 0 && st.idle.set(me.id, cx.waker(), rule.busy) {
            self.mirror_idle(&st);
        }
        // Full (async works fill the room), with works held: an idle worker may take them.
        let helper = if room.free() == 0 && me.held.len() > 0 {
            let helper = st.idle.take_other(Some(me.id));
            self.mirror_idle(&st);
            helper
        } else {
            None
        };
        st.waiting.set(me.id, cx.waker(), rule.busy);
        drop(st);
        if let Some(w) = helper {
            w.wake();
        }
        room.wait_for_ends(cx);
        Poll::Pending
    }

    /// Summons a free worker for the plain closure `me` passed over, once a step (see the
    /// module docs).
    fn summon(&self, st: &mut State, me: &ElasticWorker, after: &mut After) {
        if !after.summoned {
            after.summoned = true;
            self.summon_one(st, me, after);
        }
    }

    /// Wakes a free worker, or counts one to start.
    fn summon_one(&self, st: &mut State, me: &ElasticWorker, after: &mut After) {
        let (wake, start) = self.summon_free(st, me.id);
        after.wake.extend(wake);
        after.start += usize::from(start);
    }

    /// Puts the next works to try into `batch`: what `me` holds, unless a higher priority waits
    /// in the queue; else a fair share of the queue. False if there is nothing.
    fn take(
        &self,
        st: &mut State,
        me: &ElasticWorker,
        room: &Room,
        batch: &mut Vec<Arc<dyn Job>>,
        rule: PlainRule,
        after: &mut After,
    ) -> bool {
        let floor = me.held.front_priority();
        if st.priorities_used && self.steal_higher(st, me, room, batch, floor, rule, after) {
            return true;
        }
        let share = (st.queue.len() / st.workers.max(1)).clamp(1, TAKE);
        let mut taken: Vec<Queued> = Vec::new();
        // Busy by the time the next work would start, after the async works taken before it.
        let mut busy = rule.busy;
        while taken.len() < share {
            // (Any work is fine, without a look, when the pool has no free worker to offer.)
            let plain = rule.offer && st.queue.peek_above(floor).is_some_and(|q| q.plain);
            if plain && !rule.allows(busy) {
                // Busy only with the async works just taken: the next step (right after this
                // batch) passes it over, or takes it if they have ended by then.
                if !rule.busy {
                    break;
                }
                self.summon(st, me, after);
                if taken.is_empty() && floor.is_some() {
                    // A plain closure of a higher priority than anything held here waits: the
                    // held works may not start before it, so rather than spin on them they go
                    // back to the queue, behind it, for whoever comes once it is taken.
                    for q in me.held.drain().into_iter().rev() {
                        st.queue.push_front(q.priority, q);
                    }
                    self.mirror_top(st);
                    return false;
                }
                break;
            }
            match st.queue.pop_above(floor) {
                Some(q) => {
                    busy |= !q.plain;
                    taken.push(q);
                }
                None => break,
            }
        }
        if taken.is_empty() && floor.is_none() {
            return false;
        }
        if !taken.is_empty() {
            self.mirror_top(st);
            if !st.queue.is_empty() && taken.iter().any(|q| q.plain) {
                // These closures may hold this thread for long, and what they leave in the
                // queue may be the work that a busy worker was woken for and could not reach
                // past them: wake another worker to look again.
                after.wake.extend(st.idle.take_other(Some(me.id)));
                self.mirror_idle(st);
            }
        }
        me.held.hold_first(taken, batch, room.free(), rule);
        true
    }

    /// A worker with room and nothing to take takes half of what the worker holding most
    /// holds. It registers as idle first (see the module docs), and stays so if it took
    /// nothing.
    #[allow(clippy::too_many_arguments)] // a step's parts, each passed along from `step`
    fn steal(
        &self,
        st: &mut State,
        me: &ElasticWorker,
        room: &Room,
        batch: &mut Vec<Arc<dyn Job>>,
        rule: PlainRule,
        after: &mut After,
        cx: &Context<'_>,
    ) -> bool {
        if st.idle.set(me.id, cx.waker(), rule.busy) {
            self.mirror_idle(st);
        }
        let victim = st
            .records
            .iter()
            .filter(|r| !Arc::ptr_eq(&r.held, &me.held))
            .map(|r| (r.held.len(), &r.held))
            .max_by_key(|(len, _)| *len);
        let (stolen, passed_over) = match victim {
            Some((len, held)) if len > 0 => held.steal_half(rule),
            _ => return false,
        };
        if passed_over {
            self.summon(st, me, after);
        }
        if stolen.is_empty() {
            return false;
        }
        me.held.hold_first(stolen, batch, room.free(), rule);
        true
    }

    /// Takes the first half of what another worker holds if it starts with a priority higher
    /// than anything else this worker could take: priorities hold across the workers' lists.
    #[allow(clippy::too_many_arguments)] // a step's parts, each passed along from `take`
    fn steal_higher(
        &self,
        st: &mut State,
        me: &ElasticWorker,
        room: &Room,
        batch: &mut Vec<Arc<dyn Job>>,
        floor: Option<i32>,
        rule: PlainRule,
        after: &mut After,
    ) -> bool {
        let best = st
            .records
            .iter()
            .filter(|r| !Arc::ptr_eq(&r.held, &me.held))
            .filter_map(|r| Some((r.held.front_priority()?, &r.held)))
            .max_by_key(|(p, _)| *p);
        let Some((p, victim)) = best else {
            return false;
        };
        if floor.max(st.queue.top()).is_some_and(|mine| mine >= p) {
            return false;
        }
        let (stolen, passed_over) = victim.steal_half(rule);
        if passed_over {
            self.summon(st, me, after);
        }
        if stolen.is_empty() {
            return false;
        }
        me.held.hold_first(stolen, batch, room.free(), rule);
        true
    }

    /// The worker leaves: uncount it and forget its waker.
    fn leave(&self, st: &mut State, me: &ElasticWorker) -> Step {
        st.workers -= 1;
        st.idle.remove(me.id);
        st.waiting.remove(me.id);
        self.mirror_idle(st);
        Step::Stop
    }
}
