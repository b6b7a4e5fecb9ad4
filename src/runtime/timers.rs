//! Timers of one reactor: a binary min-heap of deadlines over a slab of entries.
//!
//! A timer is found by its id in O(1) and removed in O(log n), so a dropped `Sleep` takes its
//! timer out at once (no leak with many cancelled timeouts). The heap holds 4-byte slab
//! indices, and an entry is 32 bytes: about half what an ordered map costs per timer when
//! deadlines arrive in rising order (its nodes then stay half full).
//!
//! An id is `generation << 32 | slot`: a slot reused by a new timer has a new generation, so an
//! old id (of a timer that already fired) can never touch the new one.

use std::task::Waker;

/// A timer's id, returned by [`Timers::insert`].
pub(crate) type TimerId = u64;

struct Entry {
    /// Nanoseconds since the reactor's epoch.
    deadline: u64,
    generation: u32,
    /// Position in `heap` while pending.
    pos: u32,
    /// `None` while the slot is free.
    waker: Option<Waker>,
}

/// Below this many slots, the store keeps its memory.
const SHRINK_MIN: usize = if cfg!(miri) { 64 } else { 4096 };

/// Pending timers, earliest first.
///
/// The store gives memory back when it is mostly empty (after a storm of timers): when the
/// pending timers fall to a quarter of the slots, the free slots past the last pending one are
/// dropped, or, if a pending timer sits near the end, the free list is put in order so that new
/// timers fill the low slots and the high ones can go at the next check. A dropped slot's generation
/// is not lost: slots made afresh start past every generation dropped, so an old id never
/// names a new timer.
pub(crate) struct Timers {
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Slab indices in min-heap order of their deadlines.
    heap: Vec<u32>,
    /// The generation of a slot made afresh.
    fresh: u32,
    /// The next shrink check comes when no more than this many timers are pending: checks at
    /// a quarter of the slots, then each time the pending count halves (so a storm costs
    /// O(log n) checks). Re-armed when the store fills up again.
    next_check: usize,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            entries: Vec::new(),
            free: Vec::new(),
            heap: Vec::new(),
            fresh: 0,
            next_check: usize::MAX,
        }
    }
}

impl Timers {
    /// How many timers are pending.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Adds a timer; returns its id.
    pub(crate) fn insert(&mut self, deadline: u64, waker: Waker) -> TimerId {
        let pos = self.heap.len() as u32;
        let slot = match self.free.pop() {
            Some(slot) => {
                let e = &mut self.entries[slot as usize];
                e.deadline = deadline;
                e.generation = e.generation.wrapping_add(1);
                e.pos = pos;
                e.waker = Some(waker);
                slot
            }
            None => {
                assert!(
                    self.entries.len() < u32::MAX as usize,
                    "more than 4 billion timers"
                );
                self.entries.push(Entry {
                    deadline,
                    generation: self.fresh,
                    pos,
                    waker: Some(waker),
                });
                (self.entries.len() - 1) as u32
            }
        };
        self.heap.push(slot);
        self.sift_up(pos as usize);
        if self.heap.len() > self.entries.len() / 4 {
            self.next_check = usize::MAX;
        }
        id(self.entries[slot as usize].generation, slot)
    }

    /// The pending entry `id` names, if it is still pending.
    fn entry_mut(&mut self, id: TimerId) -> Option<&mut Entry> {
        let (generation, slot) = ((id >> 32) as u32, id as u32);
        self.entries
            .get_mut(slot as usize)
            .filter(|e| e.generation == generation && e.waker.is_some())
    }

    /// Replaces a pending timer's waker. False if it already fired or was removed.
    pub(crate) fn update(&mut self, id: TimerId, waker: &Waker) -> bool {
        match self.entry_mut(id) {
            Some(e) => {
                match &mut e.waker {
                    Some(w) if w.will_wake(waker) => {}
                    w => *w = Some(waker.clone()),
                }
                true
            }
            None => false,
        }
    }

    /// Removes a pending timer; returns its waker (to drop outside the caller's lock).
    pub(crate) fn remove(&mut self, id: TimerId) -> Option<Waker> {
        let pos = self.entry_mut(id)?.pos as usize;
        Some(self.remove_at(pos))
    }

    /// Takes the wakers of every timer due at `now`; returns the next pending deadline.
    pub(crate) fn pop_due(&mut self, now: u64, due: &mut Vec<Waker>) -> Option<u64> {
        while let Some(&top) = self.heap.first() {
            let deadline = self.entries[top as usize].deadline;
            if deadline > now {
                return Some(deadline);
            }
            due.push(self.remove_at(0));
        }
        None
    }

    /// Removes the heap entry at `pos`, frees its slot, and returns its waker.
    fn remove_at(&mut self, pos: usize) -> Waker {
        let slot = self.heap.swap_remove(pos);
        if pos < self.heap.len() {
            self.entries[self.heap[pos] as usize].pos = pos as u32;
            self.sift_down(pos);
            self.sift_up(pos);
        }
        self.free.push(slot);
        let waker = self.entries[slot as usize]
            .waker
            .take()
            .expect("a pending timer has a waker");
        let slots = self.entries.len();
        if slots >= SHRINK_MIN && self.heap.len() <= self.next_check.min(slots / 4) {
            self.shrink();
        }
        waker
    }

    /// Drops the free slots past the last pending one if that halves the store at least; else
    /// orders the free list so that new timers take the lowest slots first.
    fn shrink(&mut self) {
        let slots = self.entries.len();
        self.next_check = self.heap.len() / 2;
        let keep = self
            .entries
            .iter()
            .rposition(|e| e.waker.is_some())
            .map_or(0, |last| last + 1);
        if keep > slots / 2 {
            // `pop` takes from the end: list the free slots highest first. Built by one pass
            // over the slots rather than by sorting the list (no sort code in the binary).
            self.free.clear();
            let free = (0..slots as u32).rev();
            self.free
                .extend(free.filter(|&slot| self.entries[slot as usize].waker.is_none()));
            return;
        }
        for e in &self.entries[keep..] {
            self.fresh = self.fresh.max(e.generation.wrapping_add(1));
        }
        self.entries.truncate(keep);
        self.next_check = usize::MAX;
        self.entries.shrink_to_fit();
        self.free.retain(|&slot| (slot as usize) < keep);
        self.free.shrink_to_fit();
        self.heap.shrink_to_fit();
    }

    fn deadline_at(&self, pos: usize) -> u64 {
        self.entries[self.heap[pos] as usize].deadline
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.entries[self.heap[a] as usize].pos = a as u32;
        self.entries[self.heap[b] as usize].pos = b as u32;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.deadline_at(parent) <= self.deadline_at(pos) {
                break;
            }
            self.swap(parent, pos);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        loop {
            let (left, right) = (2 * pos + 1, 2 * pos + 2);
            let mut least = pos;
            if left < self.heap.len() && self.deadline_at(left) < self.deadline_at(least) {
                least = left;
            }
            if right < self.heap.len() && self.deadline_at(right) < self.deadline_at(least) {
                least = right;
            }
            if least == pos {
                break;
            }
            self.swap(pos, least);
            pos = least;
        }
    }
}

fn id(generation: u32, slot: u32) -> TimerId {
    (u64::from(generation) << 32) | u64::from(slot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    fn waker() -> Waker {
        Waker::from(Arc::new(Noop))
    }

    /// A tiny xorshift, to shuffle deadlines deterministically.
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// How many timers the ordering test shuffles: fewer under Miri (the checker for undefined
    /// behaviour), which interprets every step about 100× slower.
    const TIMERS: usize = if cfg!(miri) { 100 } else { 1000 };

    #[test]
    fn a_storm_of_timers_gives_its_memory_back_and_old_ids_stay_dead() {
        let n = if cfg!(miri) { 2 * SHRINK_MIN } else { 100_000 };
        let mut t = Timers::default();
        let ids: Vec<_> = (0..n as u64).map(|d| t.insert(d, waker())).collect();
        // One long-lived timer near the end keeps its slot while the rest go.
        let survivor = ids[n - 10];
        for &id in &ids {
            if id != survivor {
                assert!(t.remove(id).is_some());
            }
        }
        assert_eq!(t.len(), 1);
        // New timers fill the low slots, so the survivor's end of the store can go later.
        let again: Vec<_> = (0..100u64).map(|d| t.insert(d, waker())).collect();
        assert!(again.iter().all(|&id| (id as u32 as usize) < 200));
        for id in again {
            assert!(t.remove(id).is_some());
        }
        assert!(t.remove(survivor).is_some());
        assert_eq!(t.len(), 0);
        assert!(
            t.entries.capacity() < SHRINK_MIN,
            "{}",
            t.entries.capacity()
        );
        assert!(t.heap.capacity() < SHRINK_MIN && t.free.capacity() < SHRINK_MIN);
        // Ids from before the shrink name nothing, even where their slots were made afresh.
        let fresh: Vec<_> = (0..n as u64).map(|d| t.insert(d, waker())).collect();
        for &old in &ids {
            assert!(t.remove(old).is_none(), "an old id removed a new timer");
            assert!(!t.update(old, &waker()));
        }
        assert_eq!(t.len(), fresh.len());
    }

    #[test]
    fn timers_fire_in_deadline_order_and_removed_ones_never_fire() {
        let mut t = Timers::default();
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut ids = Vec::new();
        for _ in 0..TIMERS {
            let d = next(&mut seed) % 10_000;
            ids.push((d, t.insert(d, waker())));
        }
        // Remove every third one.
        let mut kept = Vec::new();
        for (i, (d, id)) in ids.into_iter().enumerate() {
            if i % 3 == 0 {
                assert!(t.remove(id).is_some());
                assert!(t.remove(id).is_none(), "a second remove finds nothing");
            } else {
                kept.push(d);
            }
        }
        assert_eq!(t.len(), kept.len());
        kept.sort_unstable();
        let mut fired = Vec::new();
        let mut now = 0;
        while t.len() > 0 {
            let mut due = Vec::new();
            let next_deadline = t.pop_due(now, &mut due);
            fired.extend(std::iter::repeat_n(now, due.len()));
            now = next_deadline.unwrap_or(now);
        }
        assert_eq!(
            fired, kept,
            "each timer fires exactly at its deadline, in order"
        );
    }

    #[test]
    fn a_stale_id_cannot_touch_a_reused_slot() {
        let mut t = Timers::default();
        let old = t.insert(5, waker());
        let mut due = Vec::new();
        assert_eq!(t.pop_due(5, &mut due), None);
        assert_eq!(due.len(), 1);
        let new = t.insert(7, waker());
        assert_ne!(old, new, "the reused slot has a new generation");
        assert!(t.remove(old).is_none());
        assert!(!t.update(old, &waker()));
        assert_eq!(t.len(), 1);
        assert!(t.remove(new).is_some());
        assert_eq!(t.len(), 0);
    }
}
