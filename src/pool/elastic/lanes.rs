//! The elastic pool's queue of waiting works: one first-come, first-served lane per priority,
//! the highest priority served first.
//!
//! A binary heap costs a sift through all its levels per pop (about 17 for 100,000 works); a
//! lane is a ring buffer, so a push and a pop cost the same however long the queue is. The
//! default priority's lane stays when it empties (its buffer is reused by the next burst);
//! other lanes go, so a pool that saw many priorities keeps no empty lanes.

use std::collections::{BTreeMap, VecDeque};

/// The priority whose lane is kept when empty.
const DEFAULT_PRIORITY: i32 = 0;

/// Works by priority, first come first served within one.
#[derive(Debug)]
pub(crate) struct Lanes<T> {
    lanes: BTreeMap<i32, VecDeque<T>>,
    len: usize,
}

impl<T> Default for Lanes<T> {
    fn default() -> Lanes<T> {
        Lanes {
            lanes: BTreeMap::new(),
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
        self.lanes.entry(priority).or_default().push_back(item);
        self.len += 1;
    }

    /// The highest priority waiting, if any.
    pub(crate) fn top(&self) -> Option<i32> {
        self.lanes
            .iter()
            .rev()
            .find(|(_, lane)| !lane.is_empty())
            .map(|(p, _)| *p)
    }

    /// The oldest work of the highest priority.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let (&priority, lane) = self
            .lanes
            .iter_mut()
            .rev()
            .find(|(_, lane)| !lane.is_empty())?;
        let item = lane.pop_front();
        if lane.is_empty() && priority != DEFAULT_PRIORITY {
            self.lanes.remove(&priority);
        }
        self.len -= 1;
        item
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
        let (&priority, lane, i) = self.lanes.iter_mut().rev().find_map(|(p, lane)| {
            let i = lane.iter().position(&which)?;
            Some((p, lane, i))
        })?;
        let item = lane.remove(i);
        if lane.is_empty() && priority != DEFAULT_PRIORITY {
            self.lanes.remove(&priority);
        }
        self.len -= 1;
        item
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
        assert_eq!(lanes.pop(), Some("p9"));
        assert_eq!(lanes.drain(), vec!["p5-b", "p1-a", "p0", "neg"]);
        assert!(lanes.is_empty());
        assert_eq!((lanes.pop(), lanes.top()), (None, None));
        // Only the default lane is kept empty.
        assert_eq!(lanes.lanes.len(), 1);
    }
}
