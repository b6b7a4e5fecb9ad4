//! `FutureSet`: poll a set of futures inside one task, re-polling only the ones that were woken.
//!
//! # Ownership rules
//!
//! - The set (its slots, and the futures in them) belongs to the task that polls it; futures are
//!   polled only there, so they need be neither `Send` nor `'static`.
//! - Each future gets its own [`SlotWaker`], which may travel to any thread. A wake only pushes
//!   `(slot, generation)` onto the shared ready list (once per wake-up, thanks to `queued`) and
//!   wakes the owner task's waker, after releasing the lock.
//! - The owner stores its waker in the ready list *before* it drains the list, so a wake that
//!   lands after the drain always reaches it.
//! - A slot is reused by later futures; a stale waker of an earlier occupant carries the old
//!   generation and is ignored.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::runtime::reactor::lock;

/// The woken slots, and the waker of the task that polls the set.
#[derive(Default)]
struct ReadyList {
    /// `(slot, generation)` of the futures to poll next, in wake order.
    woken: VecDeque<(usize, u64)>,
    /// The owner task's waker, taken by the first wake after each poll.
    owner: Option<Waker>,
}

/// The waker of one future in the set.
struct SlotWaker {
    slot: usize,
    generation: u64,
    /// On the ready list already (cleared by the owner just before it polls the future).
    queued: AtomicBool,
    ready: Arc<Mutex<ReadyList>>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // ORDERING: AcqRel: the owner's Release store (before it polls) pairs with this swap; the
        // ready list's lock orders the rest.
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let owner = {
            let mut ready = lock(&self.ready);
            ready.woken.push_back((self.slot, self.generation));
            ready.owner.take()
        };
        if let Some(owner) = owner {
            owner.wake();
        }
    }
}

struct Slot<F> {
    future: Pin<Box<F>>,
    key: usize,
    waker: Arc<SlotWaker>,
}

/// Futures polled together by one task; each is polled only after its own waker fired.
pub(crate) struct FutureSet<F> {
    slots: Vec<Option<Slot<F>>>,
    free: Vec<usize>,
    live: usize,
    next_generation: u64,
    ready: Arc<Mutex<ReadyList>>,
}

impl<F> std::fmt::Debug for FutureSet<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FutureSet")
            .field("live", &self.live)
            .finish()
    }
}

impl<F: Future> FutureSet<F> {
    pub(crate) fn new() -> FutureSet<F> {
        FutureSet {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            next_generation: 0,
            ready: Arc::new(Mutex::new(ReadyList::default())),
        }
    }

    /// How many futures are in the set.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Adds a future under `key`; it is polled at the next [`poll_next`](Self::poll_next).
    pub(crate) fn push(&mut self, key: usize, future: F) {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let generation = self.next_generation;
        self.next_generation += 1;
        let waker = Arc::new(SlotWaker {
            slot,
            generation,
            queued: AtomicBool::new(true),
            ready: Arc::clone(&self.ready),
        });
        lock(&self.ready).woken.push_back((slot, generation));
        self.slots[slot] = Some(Slot {
            future: Box::pin(future),
            key,
            waker,
        });
        self.live += 1;
    }

    /// Polls the woken futures until one completes: `Ready(Some((key, output)))`, its future
    /// already dropped. `Ready(None)` when the set is empty; `Pending` when no woken future
    /// completed (the task is woken when one of them is woken again). Each future is polled at
    /// most once per call.
    pub(crate) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<(usize, F::Output)>> {
        if self.live == 0 {
            return Poll::Ready(None);
        }
        {
            let mut ready = lock(&self.ready);
            match &ready.owner {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => ready.owner = Some(cx.waker().clone()),
            }
        }
        // Poll only what was woken before this call: a future that wakes itself (`yield_now`)
        // is polled again at the next call, after the task has yielded to its executor (that
        // wake already woke the task).
        let mut budget = lock(&self.ready).woken.len();
        loop {
            if budget == 0 {
                return Poll::Pending;
            }
            budget -= 1;
            let next = lock(&self.ready).woken.pop_front();
            let Some((index, generation)) = next else {
                return Poll::Pending;
            };
            let Some(slot) = self.slots.get_mut(index).and_then(Option::as_mut) else {
                continue;
            };
            if slot.waker.generation != generation {
                continue; // a stale wake of an earlier occupant
            }
            // ORDERING: Release pairs with the AcqRel swap in `wake_by_ref`: a wake after this
            // store queues the slot again.
            slot.waker.queued.store(false, Ordering::Release);
            let waker = Waker::from(Arc::clone(&slot.waker));
            let mut slot_cx = Context::from_waker(&waker);
            if let Poll::Ready(output) = slot.future.as_mut().poll(&mut slot_cx) {
                let key = slot.key;
                self.slots[index] = None; // drop the finished future before anything else starts
                self.free.push(index);
                self.live -= 1;
                return Poll::Ready(Some((key, output)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::sync::atomic::AtomicUsize;

    /// A future that counts its polls and is ready after `ready_after` of them, waking itself
    /// each time it is pending.
    fn counting(
        polls: &AtomicUsize,
        ready_after: usize,
        wake_self: bool,
    ) -> impl Future<Output = usize> + '_ {
        poll_fn(move |cx| {
            let n = polls.fetch_add(1, Ordering::SeqCst) + 1;
            if n >= ready_after {
                Poll::Ready(n)
            } else {
                if wake_self {
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
        })
    }

    #[test]
    fn only_woken_futures_are_polled_again() {
        let (a, b) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let mut set = FutureSet::new();
        set.push(0, counting(&a, 3, true));
        set.push(1, counting(&b, 100, false)); // never wakes itself
        let outputs = crate::block_on(poll_fn(|cx| set.poll_next(cx)));
        assert_eq!(outputs, Some((0, 3)));
        assert_eq!(b.load(Ordering::SeqCst), 1); // polled once, never woken, never re-polled
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn empty_set_is_ready_none() {
        let mut set: FutureSet<std::future::Ready<u8>> = FutureSet::new();
        assert_eq!(crate::block_on(poll_fn(|cx| set.poll_next(cx))), None);
    }
}
