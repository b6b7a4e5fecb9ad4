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
    /// `chosen(k, i)` runs for submission `k` on worker `i` before the next pick, so that each
    /// pick sees the ones before it counted. (A pick of this kind is never binding.)
    pub(crate) fn pick_each(
        &self,
        n: usize,
        workers: usize,
        load: impl Fn(usize) -> Load,
        mut chosen: impl FnMut(usize, usize),
    ) {
        let mut inner = lock(&self.inner);
        for k in 0..n {
            let (i, _) = inner.pick(workers, &load, None);
            chosen(k, i);
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
        let inner = self;
        inner.loads.clear();
        inner.loads.extend((0..workers).map(load));
        let (balancer, loads) = (&mut inner.balancer, &inner.loads);
        let picked = catch_unwind(AssertUnwindSafe(|| {
            (balancer.pick(loads, hint), balancer.is_binding(hint))
        }));
        match picked {
            Ok((i, binding)) => (i % workers, binding),
            Err(_) => {
                inner.fallback = (inner.fallback + 1) % workers;
                (inner.fallback, false)
            }
        }
    }
}
