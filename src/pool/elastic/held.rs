//! The works a worker took from the shared queue in one step and has not started yet: still
//! waiting (they count as queued and keep their queue rooms), and still open to other workers.
//!
//! # Ownership rules
//!
//! - A waiting work is in exactly one place: the shared queue (`Lanes`), or one worker's
//!   [`Held`]. Whoever takes it out of there (under that place's lock) owns it: its worker when
//!   it starts it, an idle worker that steals it (into its own `Held`), a cancel from its
//!   handle, or a shutdown. So a work runs or fails exactly once.
//! - Held works are in serving order. Its worker takes works out from the front only, each
//!   right before it starts it ([`Held::claim`]); a thief takes the front half. The
//!   dispatcher's batch holds clones of
//!   the held works; a work it cannot claim any more (stolen, cancelled, or kept back because
//!   the worker has no room or a higher priority waits) is skipped, and is still held or gone.
//! - Lock order: the pool's state, then a `Held`; never two `Held`s at once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::pool::cell::Job;
use crate::runtime::reactor::lock;

use super::room::QueueRoom;

/// When a worker may start a plain closure: one holds its worker's thread until it returns, so
/// on a worker that runs async works it would stall them, and hang for good if it waits on
/// one of them. Such a worker starts none while the pool can offer a free worker instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlainRule {
    /// The worker runs async works now.
    pub(crate) busy: bool,
    /// The pool can offer a free worker: one parked with nothing running, or room to grow.
    pub(crate) offer: bool,
}

impl PlainRule {
    /// Whether a plain closure may start on this worker, `busy` or not by then.
    pub(crate) fn allows(self, busy: bool) -> bool {
        !busy || !self.offer
    }
}

/// One waiting work.
pub(crate) struct Queued {
    pub(crate) priority: i32,
    /// A plain closure (see `Queueable::PLAIN`).
    pub(crate) plain: bool,
    pub(crate) job: Arc<dyn Job>,
    /// The queue room this work holds while it waits (given back when this drops).
    pub(crate) _room: QueueRoom,
}

impl Queued {
    /// Whether this is the work at `job`.
    pub(crate) fn is(&self, job: *const ()) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.job).cast::<()>(), job)
    }
}

/// One worker's held works, oldest first.
#[derive(Default)]
pub(crate) struct Held(Mutex<VecDeque<Queued>>);

impl Held {
    pub(crate) fn len(&self) -> usize {
        lock(&self.0).len()
    }

    /// Holds `works` ahead of those already held (they were taken for their higher priority,
    /// or nothing is held), and puts into `batch` a clone of each held job, in order, that a
    /// worker with `free` rooms may start: plain closures free their room as they end, so the
    /// batch stops after its `free`-th async work; and it stops before a plain closure that
    /// `rule` does not allow on the worker as busy as the batch makes it.
    pub(crate) fn hold_first(
        &self,
        works: Vec<Queued>,
        batch: &mut Vec<Arc<dyn Job>>,
        free: usize,
        rule: PlainRule,
    ) {
        let mut held = lock(&self.0);
        for q in works.into_iter().rev() {
            held.push_front(q);
        }
        let mut rooms = free;
        let mut busy = rule.busy;
        for q in held.iter() {
            if rooms == 0 || (q.plain && !rule.allows(busy)) {
                break;
            }
            batch.push(q.job.clone());
            if !q.plain {
                rooms -= 1;
                busy = true;
            }
        }
    }

    /// Takes out the held plain closures (keeping the async works in order), for a worker that
    /// may not start them any more.
    pub(crate) fn take_plain(&self) -> Vec<Queued> {
        let mut held = lock(&self.0);
        if !held.iter().any(|q| q.plain) {
            return Vec::new();
        }
        let (plain, kept): (Vec<Queued>, Vec<Queued>) = held.drain(..).partition(|q| q.plain);
        held.extend(kept);
        plain
    }

    /// Takes out the oldest held work if it is `job` and `may(its priority)`, with how many
    /// are left; `None` if it is not held at the front any more, or may not start now.
    pub(crate) fn claim(
        &self,
        job: *const (),
        may: impl FnOnce(i32) -> bool,
    ) -> Option<(Queued, usize)> {
        let mut held = lock(&self.0);
        match held.front() {
            Some(q) if q.is(job) && may(q.priority) => {
                let claimed = held.pop_front()?;
                Some((claimed, held.len()))
            }
            _ => None,
        }
    }

    /// The priority of the oldest held work.
    pub(crate) fn front_priority(&self) -> Option<i32> {
        lock(&self.0).front().map(|q| q.priority)
    }

    /// Takes the first half (rounded up) of the held works, the ones to serve first, for a
    /// thief under `rule`: one that may not start plain closures takes only the async works
    /// before the first of them. True with them if it passed a plain closure over.
    pub(crate) fn steal_half(&self, rule: PlainRule) -> (Vec<Queued>, bool) {
        let mut held = lock(&self.0);
        let half = held.len().div_ceil(2);
        let n = if rule.allows(rule.busy) {
            half
        } else {
            held.iter().take(half).take_while(|q| !q.plain).count()
        };
        (held.drain(..n).collect(), n < half)
    }

    /// Takes out the held work at `job`, if it is here.
    pub(crate) fn remove(&self, job: *const ()) -> Option<Queued> {
        let mut held = lock(&self.0);
        let i = held.iter().position(|q| q.is(job))?;
        held.remove(i)
    }

    /// Takes every held work out.
    pub(crate) fn drain(&self) -> Vec<Queued> {
        lock(&self.0).drain(..).collect()
    }
}
