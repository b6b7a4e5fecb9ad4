//! The elastic pool's queue of waiting works: one first-come, first-served lane per priority,
//! the highest priority served first.
//!
//! A binary heap costs a sift through all its levels per pop (about 17 for 100,000 works); a
//! lane is a ring buffer, so a push and a pop cost the same however long the queue is. The
//! default priority's lane stays when it empties (its buffer is reused by the next burst);
//! other lanes go, so a pool that saw many priorities keeps no empty lanes.

use std::collections::{BTreeMap, VecDeque};

/// The default priority, whose lane is kept apart: most pools use no other, and then no
/// push or pop touches the map.
const DEFAULT_PRIORITY: i32 = 0;

/// Works by priority, first come first served within one.
#[derive(Debug)]
pub(crate) struct Lanes<T> {
    /// The default priority's lane (kept when empty, its buffer reused by the next burst).
    default: VecDeque<T>,
    /// The other priorities' lanes, none of them empty.
    others: BTreeMap<i32, VecDeque<T>>,
    len: usize,
}

impl<T> Default for Lanes<T> {
    fn default() -> Lanes<T> {
        Lanes {
            default: VecDeque::new(),
            others: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<T> Lanes<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn push(&mut self, priority: i32, item: T) {
        if priority == DEFAULT_PRIORITY {
            self.default.push_back(item);
        } else {
            self.others.entry(priority).or_default().push_back(item);
        }
        self.len += 1;
    }

    /// Puts `item` back at the front of its priority's lane: a work given back to the queue
    /// was taken from the front, so it goes before every work of its priority still waiting.
    pub(crate) fn push_front(&mut self, priority: i32, item: T) {
        if priority == DEFAULT_PRIORITY {
            self.default.push_front(item);
        } else {
            self.others.entry(priority).or_default().push_front(item);
        }
        self.len += 1;
    }

    /// The work [`pop_above`](Lanes::pop_above) would take, without taking it.
    pub(crate) fn peek_above(&self, floor: Option<i32>) -> Option<&T> {
        let top = self.top()?;
        if floor.is_some_and(|floor| top <= floor) {
            return None;
        }
        if top == DEFAULT_PRIORITY {
            self.default.front()
        } else {
            self.others.get(&top).and_then(VecDeque::front)
        }
    }

    /// The highest priority waiting, if any.
    pub(crate) fn top(&self) -> Option<i32> {
        let default = (!self.default.is_empty()).then_some(DEFAULT_PRIORITY);
        if self.others.is_empty() {
            return default;
        }
        let other = self.others.keys().next_back().copied();
        other.max(default)
    }

    /// The lane of priority `p` (which waits).
    fn lane(&mut self, p: i32) -> Option<&mut VecDeque<T>> {
        if p == DEFAULT_PRIORITY {
            Some(&mut self.default)
        } else {
            self.others.get_mut(&p)
        }
    }

    /// Takes the front of lane `p`'s queue, or its item `i`.
    fn take(&mut self, p: i32, i: usize) -> Option<T> {
        let lane = self.lane(p)?;
        let item = lane.remove(i)?;
        if lane.is_empty() && p != DEFAULT_PRIORITY {
            self.others.remove(&p);
        }
        self.len -= 1;
        Some(item)
    }

    /// The oldest work of the highest priority.
    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.others.is_empty() {
            let item = self.default.pop_front()?;
            self.len -= 1;
            return Some(item);
        }
        let top = self.top()?;
        self.take(top, 0)
    }

    /// The oldest work of the highest priority, if that priority is above `floor`.
    pub(crate) fn pop_above(&mut self, floor: Option<i32>) -> Option<T> {
        match (self.top(), floor) {
            (Some(top), Some(floor)) if top <= floor => None,
            _ => self.pop(),
        }
    }

    /// Takes out the first work (in serving order) that `which` picks.
    pub(crate) fn remove_first(&mut self, which: impl Fn(&T) -> bool) -> Option<T> {
        let mut priorities: Vec<i32> = self.others.keys().copied().collect();
        priorities.push(DEFAULT_PRIORITY);
        priorities.sort_unstable_by(|a, b| b.cmp(a));
        for p in priorities {
            if let Some(i) = self.lane(p).and_then(|lane| lane.iter().position(&which)) {
                return self.take(p, i);
            }
        }
        None
    }

    /// Takes every work out, in serving order.
    pub(crate) fn drain(&mut self) -> Vec<T> {
        let mut all = Vec::with_capacity(self.len);
        while let Some(item) = self.pop() {
            all.push(item);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::Lanes;

    #[test]
    fn higher_priority_first_then_first_come_first_served() {
        let mut lanes = Lanes::default();
        for (p, x) in [
            (1, "p1-a"),
            (5, "p5-a"),
            (0, "p0"),
            (9, "p9"),
            (5, "p5-b"),
            (-3, "neg"),
        ] {
            lanes.push(p, x);
        }
        assert_eq!((lanes.len(), lanes.top()), (6, Some(9)));
        assert_eq!(lanes.remove_first(|x| *x == "p5-a"), Some("p5-a"));
        assert_eq!(lanes.peek_above(Some(9)), None);
        assert_eq!(lanes.peek_above(Some(8)), Some(&"p9"));
        assert_eq!(lanes.pop(), Some("p9"));
        lanes.push_front(5, "p5-first");
        assert_eq!(lanes.peek_above(None), Some(&"p5-first"));
        assert_eq!(lanes.pop(), Some("p5-first"));
        assert_eq!(lanes.drain(), vec!["p5-b", "p1-a", "p0", "neg"]);
        assert!(lanes.is_empty());
        assert_eq!((lanes.pop(), lanes.top()), (None, None));
        // No empty lane is kept but the default one.
        assert!(lanes.others.is_empty());
    }
}
