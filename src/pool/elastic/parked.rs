//! Dispatchers parked on the pool, by worker id: a handful of entries (one per worker at
//! most), so a list beats a hash map — no hashing, and a re-park with the same waker (the
//! usual case: an executor's task waker never changes) clones nothing.

use std::task::Waker;

/// Parked dispatchers' wakers, by worker id.
#[derive(Debug, Default)]
pub(crate) struct Parked(Vec<(usize, Waker)>);

impl Parked {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Parks `id` with `waker` (or refreshes its waker); true if it was not parked.
    pub(crate) fn set(&mut self, id: usize, waker: &Waker) -> bool {
        match self.0.iter_mut().find(|(e, _)| *e == id) {
            Some((_, stored)) => {
                if !stored.will_wake(waker) {
                    stored.clone_from(waker);
                }
                false
            }
            None => {
                self.0.push((id, waker.clone()));
                true
            }
        }
    }

    pub(crate) fn remove(&mut self, id: usize) -> Option<Waker> {
        let i = self.0.iter().position(|(e, _)| *e == id)?;
        Some(self.0.swap_remove(i).1)
    }

    /// Unparks any one dispatcher other than `not`'s.
    pub(crate) fn take_other(&mut self, not: Option<usize>) -> Option<Waker> {
        let i = self.0.iter().position(|(e, _)| Some(*e) != not)?;
        Some(self.0.swap_remove(i).1)
    }

    /// Unparks every dispatcher.
    pub(crate) fn drain(&mut self) -> Vec<Waker> {
        self.0.drain(..).map(|(_, w)| w).collect()
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}
