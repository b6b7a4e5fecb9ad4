//! Room in a bounded queue: how many more works may wait, who waits to be handed a room, and
//! who only watches for one (`wait_for_slot`).
//!
//! # Ownership rules
//!
//! - One mutex guards `free`, `line` and `watchers`. A room is in exactly one place: `free`,
//!   held by a queued work (a [`QueueRoom`] guard, given back when the work leaves the queue),
//!   or handed to a submitter in `line` (its entry popped) on its way to becoming a guard.
//! - A room that comes back goes to the head of `line` first (submitters that wait: `submit`,
//!   `submit_blocking`), so they are served in arrival order and cannot be starved. So `line`
//!   is empty whenever `free > 0`, and a free room is never refused: `try_take` takes it.
//! - Watchers take nothing. One watcher is woken each time a room becomes free; it completes if
//!   a room is still free when it looks (else it watches again), and a watcher dropped after its
//!   wake-up but before it looked hands the wake-up on, so no free room goes unseen.
//! - After `close` nothing waits: every waiter and watcher is woken, and every take succeeds
//!   with an empty guard (the pool refuses the work itself).
//! - Wakers are woken, and replaced ones dropped, after the lock is released.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use crate::runtime::reactor::lock;

struct State {
    /// Rooms nobody holds.
    free: usize,
    /// Submitters waiting to be handed a room, oldest first, by id.
    line: VecDeque<(u64, Waker)>,
    /// `wait_for_slot` callers waiting for a free room, oldest first, by id.
    watchers: VecDeque<(u64, Waker)>,
    next_id: u64,
    closed: bool,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// The rooms of one bounded queue.
pub(crate) struct Rooms {
    state: Mutex<State>,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("free", &lock(&self.state).free)
            .finish_non_exhaustive()
    }
}

/// Removes the entry with `id`; its waker if it was there.
fn remove(list: &mut VecDeque<(u64, Waker)>, id: u64) -> Option<Waker> {
    let i = list.iter().position(|(e, _)| *e == id)?;
    list.remove(i).map(|(_, w)| w)
}

/// Stores `waker` in the entry with `id` unless it wakes the same task; the replaced waker, or
/// `None` (also when the entry is gone).
fn refresh(list: &mut VecDeque<(u64, Waker)>, id: u64, waker: &Waker) -> Option<Option<Waker>> {
    let (_, stored) = list.iter_mut().find(|(e, _)| *e == id)?;
    if stored.will_wake(waker) {
        Some(None)
    } else {
        Some(Some(std::mem::replace(stored, waker.clone())))
    }
}

impl Rooms {
    pub(crate) fn new(capacity: usize) -> Arc<Rooms> {
        Arc::new(Rooms {
            state: Mutex::new(State {
                free: capacity,
                line: VecDeque::new(),
                watchers: VecDeque::new(),
                next_id: 0,
                closed: false,
            }),
        })
    }

    /// A free room now, if there is one (or the queue is closed: an empty guard).
    pub(crate) fn try_take(self: &Arc<Self>) -> Option<QueueRoom> {
        let mut st = lock(&self.state);
        if st.closed {
            return Some(QueueRoom(None));
        }
        if st.free == 0 {
            return None;
        }
        st.free -= 1;
        Some(QueueRoom(Some(self.clone())))
    }

    /// Waits in line to be handed a room.
    pub(crate) fn take(self: &Arc<Self>) -> TakeRoom {
        TakeRoom {
            rooms: self.clone(),
            waiting: None,
        }
    }

    /// Waits until a room is free (or the queue is closed), taking nothing.
    pub(crate) fn watch(&self) -> WatchRoom<'_> {
        WatchRoom {
            rooms: self,
            waiting: None,
        }
    }

    /// Wakes everyone: from now on nothing waits for room.
    pub(crate) fn close(&self) {
        let woken: Vec<Waker> = {
            let mut st = lock(&self.state);
            st.closed = true;
            let line = std::mem::take(&mut st.line);
            let watchers = std::mem::take(&mut st.watchers);
            line.into_iter().chain(watchers).map(|(_, w)| w).collect()
        };
        woken.into_iter().for_each(Waker::wake);
    }

    /// A room comes back: to the first in line, or free (and one watcher told).
    fn release(&self) {
        let woken = {
            let mut st = lock(&self.state);
            if st.closed {
                return;
            }
            match st.line.pop_front() {
                Some((_, handed)) => Some(handed),
                None => {
                    st.free += 1;
                    st.watchers.pop_front().map(|(_, w)| w)
                }
            }
        };
        if let Some(w) = woken {
            w.wake();
        }
    }

    /// Tells the next watcher, if a room is free (a woken watcher gave up before looking).
    fn pass_on(&self) {
        let woken = {
            let mut st = lock(&self.state);
            if st.free == 0 {
                return;
            }
            st.watchers.pop_front().map(|(_, w)| w)
        };
        if let Some(w) = woken {
            w.wake();
        }
    }
}

/// One room of a bounded queue, held by a queued work; dropping it gives the room back.
/// Empty for an unbounded (or closed) queue.
#[derive(Debug)]
pub(crate) struct QueueRoom(Option<Arc<Rooms>>);

impl QueueRoom {
    /// The guard of a queue without bounds.
    pub(crate) fn unbounded() -> QueueRoom {
        QueueRoom(None)
    }
}

impl Drop for QueueRoom {
    fn drop(&mut self) {
        if let Some(rooms) = self.0.take() {
            rooms.release();
        }
    }
}

/// The future of [`Rooms::take`].
#[derive(Debug)]
pub(crate) struct TakeRoom {
    rooms: Arc<Rooms>,
    /// Our id in `line`, once we wait there.
    waiting: Option<u64>,
}

impl Future for TakeRoom {
    type Output = QueueRoom;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<QueueRoom> {
        let this = &mut *self;
        let mut st = lock(&this.rooms.state);
        if st.closed {
            this.waiting = None;
            return Poll::Ready(QueueRoom(None));
        }
        let stale = match this.waiting {
            None if st.free > 0 => {
                st.free -= 1;
                return Poll::Ready(QueueRoom(Some(this.rooms.clone())));
            }
            None => {
                let id = st.id();
                st.line.push_back((id, cx.waker().clone()));
                this.waiting = Some(id);
                None
            }
            Some(id) => match refresh(&mut st.line, id, cx.waker()) {
                Some(stale) => stale,
                None => {
                    // Our entry was popped by `release`: the room is ours.
                    this.waiting = None;
                    return Poll::Ready(QueueRoom(Some(this.rooms.clone())));
                }
            },
        };
        drop(st);
        drop(stale);
        Poll::Pending
    }
}

impl Drop for TakeRoom {
    fn drop(&mut self) {
        let Some(id) = self.waiting else { return };
        let mut st = lock(&self.rooms.state);
        let still_waiting = remove(&mut st.line, id);
        let closed = st.closed;
        drop(st);
        if still_waiting.is_none() && !closed {
            // Handed a room we never took: give it to the next.
            self.rooms.release();
        }
    }
}

/// The future of [`Rooms::watch`].
#[derive(Debug)]
pub(crate) struct WatchRoom<'a> {
    rooms: &'a Rooms,
    /// Our id in `watchers`, once we watch.
    waiting: Option<u64>,
}

impl Future for WatchRoom<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = lock(&this.rooms.state);
        if st.closed || st.free > 0 {
            if let Some(id) = this.waiting.take() {
                remove(&mut st.watchers, id);
            }
            return Poll::Ready(());
        }
        let stale = match this
            .waiting
            .and_then(|id| refresh(&mut st.watchers, id, cx.waker()))
        {
            Some(stale) => stale,
            None => {
                // First look, or woken and the room was taken first: watch (again).
                let id = st.id();
                st.watchers.push_back((id, cx.waker().clone()));
                this.waiting = Some(id);
                None
            }
        };
        drop(st);
        drop(stale);
        Poll::Pending
    }
}

impl Drop for WatchRoom<'_> {
    fn drop(&mut self) {
        let Some(id) = self.waiting else { return };
        let removed = remove(&mut lock(&self.rooms.state).watchers, id);
        if removed.is_none() {
            // We were woken for a free room and never looked: tell the next watcher.
            self.rooms.pass_on();
        }
    }
}
