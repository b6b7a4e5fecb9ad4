//! Choosing a worker for each submission: a balancer behind a lock, shown fresh loads.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use crate::balance::{Balancer, Load};
use crate::runtime::reactor::lock;

/// A pool's balancer, called once per submission, in submission order (the lock orders them).
pub(crate) struct Picker {
    inner: Mutex<PickerInner>,
}

struct PickerInner {
    balancer: Box<dyn Balancer>,
    /// Reused buffer for the loads the balancer is shown.
    loads: Vec<Load>,
    /// Reused buffer for how many works a batch of picks gave each worker.
    added: Vec<usize>,
    /// Round-robin cursor used when the balancer panics.
    fallback: usize,
}

impl std::fmt::Debug for Picker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picker").finish_non_exhaustive()
    }
}

impl Picker {
    pub(crate) fn new(balancer: Box<dyn Balancer>) -> Picker {
        Picker {
            inner: Mutex::new(PickerInner {
                balancer,
                loads: Vec::new(),
                added: Vec::new(),
                fallback: 0,
            }),
        }
    }

    /// Picks one of `workers` workers (`workers > 0`), given each one's load and the caller's
    /// hint. An index out of range is taken modulo the worker count; a panicking balancer falls
    /// back to round-robin for that pick. `chosen(i)` runs under the lock, so that the next
    /// pick sees the work counted on worker `i`.
    #[cfg_attr(not(feature = "process"), allow(dead_code))] // used by the process pool
    pub(crate) fn pick(
        &self,
        workers: usize,
        load: impl Fn(usize) -> Load,
        hint: Option<u64>,
        chosen: impl FnOnce(usize),
    ) -> usize {
        self.pick_binding(workers, load, hint, chosen).0
    }

    /// Like [`pick`](Picker::pick), and says whether the pick is binding (the balancer pinned
    /// the work to that worker: no other worker may take it).
    pub(crate) fn pick_binding(
        &self,
        workers: usize,
        load: impl Fn(usize) -> Load,
        hint: Option<u64>,
        chosen: impl FnOnce(usize),
    ) -> (usize, bool) {
        let mut inner = lock(&self.inner);
        let picked = inner.pick(workers, &load, hint);
        chosen(picked.0);
        picked
    }

    /// Picks a worker for each of `n` submissions without hints, in order, under one lock:
    /// `chosen(k, i)` runs for submission `k` on worker `i`. The workers' loads are read once
    /// for the whole batch (they are written by other cores: one read of each a pick would
    /// cost a miss each), and each pick sees the ones before it counted as queued in that
    /// snapshot. Before the lock goes, `count(i, m)` runs for each worker `i` given `m > 0`
    /// of them, so that the next caller's picks see them counted. (A pick of this kind is never
    /// binding.)
    pub(crate) fn pick_each(
        &self,
        n: usize,
        workers: usize,
        load: impl Fn(usize) -> Load,
        mut chosen: impl FnMut(usize, usize),
        mut count: impl FnMut(usize, usize),
    ) {
        let mut inner = lock(&self.inner);
        inner.read_loads(workers, &load);
        inner.added.clear();
        inner.added.resize(workers, 0);
        for k in 0..n {
            let (i, _) = inner.pick_shown(workers, None);
            inner.loads[i].queued = inner.loads[i].queued.saturating_add(1);
            inner.added[i] += 1;
            chosen(k, i);
        }
        for (i, &added) in inner.added.iter().enumerate() {
            if added > 0 {
                count(i, added);
            }
        }
    }
}

impl PickerInner {
    /// One pick: shows the balancer fresh loads, and says whether the pick is binding.
    fn pick(
        &mut self,
        workers: usize,
        load: &impl Fn(usize) -> Load,
        hint: Option<u64>,
    ) -> (usize, bool) {
        self.read_loads(workers, load);
        self.pick_shown(workers, hint)
    }

    /// Reads every worker's load into the buffer shown to the balancer.
    fn read_loads(&mut self, workers: usize, load: &impl Fn(usize) -> Load) {
        self.loads.clear();
        self.loads.extend((0..workers).map(load));
    }

    /// One pick, showing the balancer the loads in the buffer; says whether it is binding.
    fn pick_shown(&mut self, workers: usize, hint: Option<u64>) -> (usize, bool) {
        let inner = self;
        let (balancer, loads) = (&mut inner.balancer, &inner.loads);
        let picked = catch_unwind(AssertUnwindSafe(|| {
            (balancer.pick(loads, hint), balancer.is_binding(hint))
        }));
        match picked {
            // (Compare first: a division costs more than the rest of a pick.)
            Ok((i, binding)) if i < workers => (i, binding),
            Ok((i, binding)) => (i % workers, binding),
            Err(_) => {
                inner.fallback = (inner.fallback + 1) % workers;
                (inner.fallback, false)
            }
        }
    }
}
