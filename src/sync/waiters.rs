//! Plumbing shared by the primitives: the FIFO list of pending futures (`Waiters`, used by
//! `mpsc`, `Semaphore` and `Event`), single waker slots, poison-proof locking, and waking.
//!
//! # Ownership rules
//!
//! A `Waiters` lives inside its primitive's `Mutex` and is only touched with that lock held. Each
//! entry belongs to one future, which knows it by its id (`Registration::Waiting(id)`). An entry
//! leaves the list in exactly one of two ways, and the future tells them apart by looking for its
//! id on its next poll or in its `Drop`:
//!
//! - the primitive pops it to **release** the waiter (value delivered, permits granted, event
//!   set) and wakes its waker: the future finds its id gone and completes;
//! - the future removes it itself when it gives up (it is dropped, or the channel closed).
//!
//! Ids grow with every push and entries keep push order, so the list stays sorted by id and an
//! entry is found by binary search.
//!
//! Wakers are woken, and replaced wakers and entry data dropped, only after the lock is released
//! (by the caller, with [`wake_all`] or a plain `drop`): a waker or a value may run foreign code.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;

/// Locks `mutex`, ignoring poisoning: every critical section in `sync` leaves its state
/// consistent before anything that could panic, so a panic elsewhere never leaves it half-done.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stores `waker` in a single-waiter slot unless the stored one wakes the same task; returns the
/// replaced waker, to be dropped after the lock is released.
#[must_use = "drop the replaced waker after releasing the lock"]
pub(crate) fn store_waker(slot: &mut Option<Waker>, waker: &Waker) -> Option<Waker> {
    match slot {
        Some(stored) if stored.will_wake(waker) => None,
        _ => slot.replace(waker.clone()),
    }
}

/// Where a waiting future stands with its primitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registration {
    /// Not polled yet: nothing in any list.
    Idle,
    /// Polled and pending: owns the entry with this id, unless the primitive released it.
    Waiting(u64),
    /// Completed: owns nothing.
    Done,
}

/// One pending future: its waker and what it is waiting with (a value, a permit count, nothing).
#[derive(Debug)]
pub(crate) struct Entry<T> {
    pub(crate) id: u64,
    pub(crate) waker: Waker,
    pub(crate) data: T,
}

impl<T> Entry<T> {
    /// Stores `waker` unless the stored one wakes the same task; returns the replaced waker, to be
    /// dropped after the lock is released.
    #[must_use = "drop the replaced waker after releasing the lock"]
    pub(crate) fn refresh(&mut self, waker: &Waker) -> Option<Waker> {
        if self.waker.will_wake(waker) {
            None
        } else {
            Some(std::mem::replace(&mut self.waker, waker.clone()))
        }
    }
}

/// Pending futures, oldest first.
#[derive(Debug)]
pub(crate) struct Waiters<T> {
    next_id: u64,
    entries: VecDeque<Entry<T>>,
}

impl<T> Waiters<T> {
    pub(crate) const fn new() -> Self {
        Waiters {
            next_id: 0,
            entries: VecDeque::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends a waiter and returns its id.
    pub(crate) fn push(&mut self, waker: Waker, data: T) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push_back(Entry { id, waker, data });
        id
    }

    /// The waiter with this id, if it is still in the list.
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Entry<T>> {
        let index = self.entries.binary_search_by_key(&id, |e| e.id).ok()?;
        self.entries.get_mut(index)
    }

    /// Takes the waiter with this id out of the list, if it is still there.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Entry<T>> {
        let index = self.entries.binary_search_by_key(&id, |e| e.id).ok()?;
        self.entries.remove(index)
    }

    /// Takes the oldest waiter out of the list.
    pub(crate) fn pop_front(&mut self) -> Option<Entry<T>> {
        self.entries.pop_front()
    }

    /// Takes the oldest waiter out of the list if `release` says it may go.
    pub(crate) fn pop_front_if(&mut self, release: impl FnOnce(&T) -> bool) -> Option<Entry<T>> {
        if release(&self.entries.front()?.data) {
            self.entries.pop_front()
        } else {
            None
        }
    }

    /// Takes every waiter out of the list, oldest first.
    pub(crate) fn take_all(&mut self) -> VecDeque<Entry<T>> {
        std::mem::take(&mut self.entries)
    }

    /// Clones of every waiter's waker, oldest first; the entries stay in the list.
    pub(crate) fn wakers(&self) -> Vec<Waker> {
        self.entries.iter().map(|e| e.waker.clone()).collect()
    }
}

/// Wakes every waker, in order, even if one of them panics; the first panic is then resumed,
/// unless this thread is already unwinding: guards wake from their `Drop`, and a panic out of
/// a drop during an unwind aborts the process. The waker's panic is dropped then.
///
/// Call it with no lock held.
pub(crate) fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    let mut first_panic = None;
    for waker in wakers {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| waker.wake())) {
            first_panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = first_panic {
        if std::thread::panicking() {
            crate::runtime::task::drop_contained(payload);
        } else {
            panic::resume_unwind(payload);
        }
    }
}
