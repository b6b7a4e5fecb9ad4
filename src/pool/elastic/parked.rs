//! Dispatchers parked on the pool, by worker id: a handful of entries (one per worker at
//! most), so a list beats a hash map — no hashing, and a re-park with the same waker (the
//! usual case: an executor's task waker never changes) clones nothing.
//!
//! Each entry also says whether its worker was running async works when it parked (*busy*):
//! a plain closure holds its worker's thread until it returns, so it goes to a free worker
//! when there is one (see the `steps` module). A worker's works only start after it leaves
//! this list, so a "free" entry is never stale; a "busy" one may be (its works ended since),
//! which only costs a needless wake or start.

use std::task::Waker;

/// One parked dispatcher.
#[derive(Debug)]
struct Entry {
    id: usize,
    waker: Waker,
    /// Its worker ran async works when it parked.
    busy: bool,
}

/// Parked dispatchers' wakers, by worker id.
#[derive(Debug, Default)]
pub(crate) struct Parked(Vec<Entry>);

impl Parked {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Parks `id` with `waker` (or refreshes its waker and busy flag); true if it was not
    /// parked.
    pub(crate) fn set(&mut self, id: usize, waker: &Waker, busy: bool) -> bool {
        match self.0.iter_mut().find(|e| e.id == id) {
            Some(e) => {
                if !e.waker.will_wake(waker) {
                    e.waker.clone_from(waker);
                }
                e.busy = busy;
                false
            }
            None => {
                self.0.push(Entry {
                    id,
                    waker: waker.clone(),
                    busy,
                });
                true
            }
        }
    }

    pub(crate) fn remove(&mut self, id: usize) -> Option<Waker> {
        let i = self.0.iter().position(|e| e.id == id)?;
        Some(self.0.swap_remove(i).waker)
    }

    /// Whether a worker with nothing running is parked.
    pub(crate) fn has_free(&self) -> bool {
        self.0.iter().any(|e| !e.busy)
    }

    /// Unparks a dispatcher other than `not`'s whose worker runs nothing.
    pub(crate) fn take_free(&mut self, not: Option<usize>) -> Option<Waker> {
        let i = self.0.iter().position(|e| !e.busy && Some(e.id) != not)?;
        Some(self.0.swap_remove(i).waker)
    }

    /// Unparks any one dispatcher other than `not`'s, one whose worker runs nothing if there
    /// is one (it may take anything; a busy one takes no plain closure while the pool can
    /// offer a free worker).
    pub(crate) fn take_other(&mut self, not: Option<usize>) -> Option<Waker> {
        let other = |e: &Entry| Some(e.id) != not;
        let i = (self.0.iter().position(|e| other(e) && !e.busy))
            .or_else(|| self.0.iter().position(other))?;
        Some(self.0.swap_remove(i).waker)
    }

    /// Unparks every dispatcher.
    pub(crate) fn drain(&mut self) -> Vec<Waker> {
        self.0.drain(..).map(|e| e.waker).collect()
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}
