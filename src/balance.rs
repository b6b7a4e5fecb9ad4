//! Load balancers: which worker gets the next submitted work.
//!
//! A pool asks its balancer once per submission, on the submitting thread and in submission
//! order. The balancer sees one [`Load`] per worker, in worker order, plus the caller's hint
//! (the `hint` of `submit_with(hint, …)` / `spawn_with(hint, …)`, `None` for a plain
//! `submit`), and returns the index of the worker that gets the work. A pool takes its
//! balancer through its builder, e.g. `ThreadPool::builder().balancer(KeyAffinity::new())`.
//!
//! # Choosing one
//!
//! | balancer | fits when | ignores the hint |
//! |---|---|---|
//! | [`RoundRobin`] (the default) | works cost about the same; cheap and predictable | yes |
//! | [`Random`] | many submitters or many workers; no shared rhythm to fall into | yes |
//! | [`LeastLoaded`] | work costs vary a lot; send new work where the queue is shortest | yes |
//! | [`KeyAffinity`] | works with the same key must run in order, or share a warm cache | no |
//!
//! All of them except [`KeyAffinity`] prefer a worker with room ([`Load::has_room`]): a work sent
//! to a full worker waits in that worker's queue even if another worker is idle.
//!
//! # Writing your own
//!
//! Implement [`Balancer`] for a type of your own, or wrap a closure with [`from_fn`]. This one
//! treats the hint as a worker number and falls back to the emptiest worker:
//!
//! ```
//! use aplex::balance::{Balancer, Load};
//!
//! #[derive(Debug, Default)]
//! struct Pinned;
//!
//! impl Balancer for Pinned {
//!     fn pick(&mut self, loads: &[Load], hint: Option<u64>) -> usize {
//!         match hint {
//!             // Out of range is fine: the pool takes the index modulo the worker count.
//!             Some(worker) => worker as usize,
//!             None => (0..loads.len()).min_by_key(|&i| loads[i].total()).unwrap_or(0),
//!         }
//!     }
//! }
//!
//! let loads = [
//!     Load { running: 2, queued: 0, capacity: 2 },
//!     Load { running: 1, queued: 0, capacity: 2 },
//! ];
//! let mut pinned = Pinned;
//! assert_eq!(pinned.pick(&loads, Some(0)), 0);
//! assert_eq!(pinned.pick(&loads, None), 1);
//! ```
//!
//! A balancer is plain code called with the pool's bookkeeping at hand: keep `pick` short,
//! and do not block in it.
#![forbid(unsafe_code)]

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// What one worker is doing, as the pool tells its balancer.
///
/// `running` works are being executed, `queued` works wait for a slot on that worker, and
/// `capacity` is how many may run at once (the pool's `max_works_per_worker`).
///
/// ```
/// use aplex::balance::Load;
///
/// let load = Load { running: 3, queued: 1, capacity: 4 };
/// assert_eq!(load.total(), 4);
/// assert!(!load.has_room());
/// assert_eq!(Load::default(), Load { running: 0, queued: 0, capacity: 0 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Load {
    /// Works executing on the worker now.
    pub running: usize,
    /// Works accepted by the worker and waiting for a free slot.
    pub queued: usize,
    /// How many works the worker runs at once.
    pub capacity: usize,
}

impl Load {
    /// Whether a new work would start at once: `running + queued < capacity`.
    ///
    /// Queued works count, because they take the next free slots before a new one does. A
    /// worker with `capacity` 0 never has room.
    ///
    /// ```
    /// use aplex::balance::Load;
    ///
    /// assert!(Load { running: 1, queued: 0, capacity: 2 }.has_room());
    /// assert!(!Load { running: 1, queued: 1, capacity: 2 }.has_room());
    /// assert!(!Load { running: 0, queued: 0, capacity: 0 }.has_room());
    /// ```
    pub fn has_room(&self) -> bool {
        self.total() < self.capacity
    }

    /// All the works on the worker: `running + queued` (saturating at `usize::MAX`).
    ///
    /// ```
    /// use aplex::balance::Load;
    ///
    /// assert_eq!(Load { running: 2, queued: 5, capacity: 2 }.total(), 7);
    /// ```
    pub fn total(&self) -> usize {
        self.running.saturating_add(self.queued)
    }
}

/// Chooses the worker that gets a submitted work.
///
/// The pool calls [`pick`](Balancer::pick) exactly once per submission, on the submitting
/// thread, in submission order, so a balancer may keep plain state (a cursor, a PRNG) in
/// `&mut self`.
///
/// * `loads` has one entry per worker, in worker order. The pool never passes an empty slice;
///   the built-in balancers return 0 if given one.
/// * `hint` is the caller's per-call hint (`submit_with(hint, …)`), `None` otherwise.
/// * The returned index is taken **modulo the worker count** by the pool, so an index out of
///   range picks a worker rather than panicking.
///
/// `Box<B>` is a balancer when `B` is, so `Box<dyn Balancer>` works; [`from_fn`] makes one from
/// a closure.
///
/// ```
/// use aplex::balance::{Balancer, Load, RoundRobin};
///
/// let mut balancer: Box<dyn Balancer> = Box::new(RoundRobin::new());
/// let loads = [Load { running: 0, queued: 0, capacity: 4 }; 3];
/// assert_eq!(balancer.pick(&loads, None), 0);
/// assert_eq!(balancer.pick(&loads, None), 1);
/// ```
pub trait Balancer: Send {
    /// Returns the index of the worker that gets the next work.
    ///
    /// ```
    /// use aplex::balance::{Balancer, KeyAffinity, Load};
    ///
    /// let mut balancer = KeyAffinity::new();
    /// let loads = [Load { running: 0, queued: 0, capacity: 1 }; 4];
    /// let first = balancer.pick(&loads, Some(42));
    /// assert!(first < 4);
    /// assert_eq!(balancer.pick(&loads, Some(42)), first);
    /// ```
    fn pick(&mut self, loads: &[Load], hint: Option<u64>) -> usize;

    /// Whether the pick for a work with this `hint` is binding: the work must run on the worker
    /// picked for it. A thread pool lets an idle worker take works that have not started from a
    /// busy worker's queue; a binding pick pins the work so that it is never moved. Asked once
    /// per submission, right after [`pick`](Balancer::pick).
    ///
    /// The default is `false` (a pick is a placement, not a promise). [`KeyAffinity`] returns
    /// `true` for every work with a hint, so the works of one key run on one worker, in order.
    ///
    /// ```
    /// use aplex::balance::{Balancer, KeyAffinity, RoundRobin};
    ///
    /// assert!(!RoundRobin::new().is_binding(Some(7)));
    /// assert!(KeyAffinity::new().is_binding(Some(7)));
    /// assert!(!KeyAffinity::new().is_binding(None));
    /// ```
    fn is_binding(&self, hint: Option<u64>) -> bool {
        let _ = hint;
        false
    }
}

impl<B: Balancer + ?Sized> Balancer for Box<B> {
    fn pick(&mut self, loads: &[Load], hint: Option<u64>) -> usize {
        (**self).pick(loads, hint)
    }

    fn is_binding(&self, hint: Option<u64>) -> bool {
        (**self).is_binding(hint)
    }
}

/// Hands works to the workers in turn, skipping full ones. The default balancer.
///
/// Starting from the worker after the last one picked, it takes the first worker with room;
/// if no worker has room, it takes the next worker in turn anyway. The hint is ignored.
///
/// ```
/// use aplex::balance::{Balancer, Load, RoundRobin};
///
/// let mut rr = RoundRobin::new();
/// let loads = [Load { running: 0, queued: 0, capacity: 4 }; 3];
/// assert_eq!(rr.pick(&loads, None), 0);
/// assert_eq!(rr.pick(&loads, None), 1);
/// assert_eq!(rr.pick(&loads, None), 2);
/// assert_eq!(rr.pick(&loads, None), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    next: usize,
}

impl RoundRobin {
    /// A round-robin balancer whose first pick is worker 0.
    ///
    /// ```
    /// use aplex::balance::{Balancer, Load, RoundRobin};
    ///
    /// let full = Load { running: 1, queued: 0, capacity: 1 };
    /// let free = Load { running: 0, queued: 0, capacity: 1 };
    /// let mut rr = RoundRobin::new();
    /// assert_eq!(rr.pick(&[full, free, free], None), 1);
    /// ```
    pub fn new() -> Self {
        RoundRobin { next: 0 }
    }
}

impl Balancer for RoundRobin {
    fn pick(&mut self, loads: &[Load], _hint: Option<u64>) -> usize {
        let n = loads.len();
        if n == 0 {
            return 0;
        }
        // (Compare and wrap rather than `%`: a division costs more than the rest of a pick.)
        let start = wrap(self.next, n);
        let mut picked = start;
        while !loads[picked].has_room() {
            picked = if picked + 1 == n { 0 } else { picked + 1 };
            if picked == start {
                break; // nobody has room: the next in turn anyway
            }
        }
        self.next = picked + 1; // wrapped at the next pick
        picked
    }
}

/// Picks a worker at random: uniformly among the workers with room, or among all workers if
/// none has room. The hint is ignored.
///
/// The generator is SplitMix64, written here (no dependency): fast, and good enough to spread
/// work; not for anything secret.
///
/// ```
/// use aplex::balance::{Balancer, Load, Random};
///
/// let mut random = Random::new();
/// let loads = [Load { running: 0, queued: 0, capacity: 2 }; 4];
/// assert!(random.pick(&loads, None) < 4);
/// ```
#[derive(Debug, Clone)]
pub struct Random {
    state: u64,
}

impl Random {
    /// A random balancer seeded differently on each call (from std's randomly keyed hasher and
    /// the clock).
    ///
    /// ```
    /// use aplex::balance::{Balancer, Load, Random};
    ///
    /// let full = Load { running: 2, queued: 0, capacity: 2 };
    /// let free = Load { running: 0, queued: 0, capacity: 2 };
    /// let mut random = Random::new();
    /// assert_eq!(random.pick(&[full, free, full], None), 1);
    /// ```
    pub fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        Random::with_seed(hasher.finish())
    }

    /// A random balancer whose picks are fully determined by `seed` (for tests and replays).
    ///
    /// ```
    /// use aplex::balance::{Balancer, Load, Random};
    ///
    /// let loads = [Load { running: 0, queued: 0, capacity: 2 }; 8];
    /// let (mut a, mut b) = (Random::with_seed(7), Random::with_seed(7));
    /// for _ in 0..100 {
    ///     assert_eq!(a.pick(&loads, None), b.pick(&loads, None));
    /// }
    /// ```
    pub fn with_seed(seed: u64) -> Self {
        Random { state: seed }
    }

    /// SplitMix64: a Weyl sequence passed through a 64-bit mixer.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// A number in `0..n` (`n > 0`); multiply-shift, bias below `n / 2^64`.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

impl Default for Random {
    /// Same as [`Random::new`].
    ///
    /// ```
    /// use aplex::balance::{Balancer, Load, Random};
    ///
    /// let loads = [Load { running: 0, queued: 0, capacity: 1 }; 2];
    /// assert!(Random::default().pick(&loads, None) < 2);
    /// ```
    fn default() -> Self {
        Random::new()
    }
}

impl Balancer for Random {
    fn pick(&mut self, loads: &[Load], _hint: Option<u64>) -> usize {
        if loads.is_empty() {
            return 0;
        }
        let with_room = loads.iter().filter(|l| l.has_room()).count();
        if with_room == 0 {
            return self.below(loads.len());
        }
        let nth = self.below(with_room);
        // `nth < with_room`, so the search always succeeds; 0 keeps the code panic-free.
        (0..loads.len())
            .filter(|&i| loads[i].has_room())
            .nth(nth)
            .unwrap_or(0)
    }
}

/// Picks the worker with the fewest works (`running + queued`), preferring workers with room.
///
/// This is Python aplex's "Average" balancer. The comparison, in order:
///
/// 1. a worker with room ([`Load::has_room`]) beats a full one;
/// 2. then the smaller [`Load::total`] wins (plain counts, not divided by capacity; with the
///    pool's equal capacities the two orders agree, and step 1 already accounts for capacity);
/// 3. ties rotate: the search starts after the last worker picked, so equal workers take turns
///    instead of worker 0 getting every tie.
///
/// The hint is ignored.
///
/// ```
/// use aplex::balance::{Balancer, LeastLoaded, Load};
///
/// let load = |running, queued| Load { running, queued, capacity: 4 };
/// let mut least = LeastLoaded::new();
/// assert_eq!(least.pick(&[load(3, 0), load(1, 1), load(1, 0)], None), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct LeastLoaded {
    next: usize,
}

impl LeastLoaded {
    /// A least-loaded balancer whose first tie goes to worker 0.
    ///
    /// ```
    /// use aplex::balance::{Balancer, LeastLoaded, Load};
    ///
    /// let loads = [Load { running: 0, queued: 0, capacity: 1 }; 3];
    /// let mut least = LeastLoaded::new();
    /// let picks: Vec<usize> = (0..3).map(|_| least.pick(&loads, None)).collect();
    /// assert_eq!(picks, [0, 1, 2]);
    /// ```
    pub fn new() -> Self {
        LeastLoaded { next: 0 }
    }
}

impl Balancer for LeastLoaded {
    fn pick(&mut self, loads: &[Load], _hint: Option<u64>) -> usize {
        let n = loads.len();
        if n == 0 {
            return 0;
        }
        // Smaller is better: `false` (has room) sorts before `true` (full).
        let key = |i: usize| (!loads[i].has_room(), loads[i].total());
        let start = wrap(self.next, n);
        let (mut best, mut best_key) = (start, key(start));
        for step in 1..n {
            let i = start + step;
            let i = if i >= n { i - n } else { i }; // `start + step < 2n`
            let k = key(i);
            if k < best_key {
                (best, best_key) = (i, k);
            }
        }
        self.next = best + 1; // wrapped at the next pick
        best
    }
}

/// Sends works with the same hint to the same worker; works without a hint go round-robin.
///
/// The worker for a hint is a hash of the hint modulo the worker count: it depends only on the
/// hint and the number of workers (not on the instance, the run or the loads), so works sharing
/// a key run in submission order on one worker and find its caches warm. Stickiness beats load:
/// a keyed work goes to its worker **even when that worker is full** and others are idle, and
/// its pick is binding ([`Balancer::is_binding`]): no idle worker takes it from that worker's
/// queue. Works
/// without a hint are spread by an inner [`RoundRobin`], which does prefer workers with room.
///
/// ```
/// use aplex::balance::{Balancer, KeyAffinity, Load};
///
/// let idle = Load { running: 0, queued: 0, capacity: 2 };
/// let busy = Load { running: 2, queued: 9, capacity: 2 };
/// let mut affinity = KeyAffinity::new();
/// let worker = affinity.pick(&[idle; 4], Some(1234));
/// let mut loads = [idle; 4];
/// loads[worker] = busy;
/// assert_eq!(affinity.pick(&loads, Some(1234)), worker);
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeyAffinity {
    unkeyed: RoundRobin,
}

impl KeyAffinity {
    /// A key-affinity balancer.
    ///
    /// ```
    /// use aplex::balance::{Balancer, KeyAffinity, Load};
    ///
    /// let loads = [Load { running: 0, queued: 0, capacity: 1 }; 3];
    /// let (mut a, mut b) = (KeyAffinity::new(), KeyAffinity::new());
    /// assert_eq!(a.pick(&loads, Some(99)), b.pick(&loads, Some(99)));
    /// assert_eq!(a.pick(&loads, None), 0);
    /// assert_eq!(a.pick(&loads, None), 1);
    /// ```
    pub fn new() -> Self {
        KeyAffinity {
            unkeyed: RoundRobin::new(),
        }
    }
}

impl Balancer for KeyAffinity {
    fn pick(&mut self, loads: &[Load], hint: Option<u64>) -> usize {
        match hint {
            _ if loads.is_empty() => 0,
            // Mixing first, so that hints like 0, 4, 8, … do not all land on one worker.
            Some(key) => (mix64(key) % loads.len() as u64) as usize,
            None => self.unkeyed.pick(loads, None),
        }
    }

    /// A keyed work stays on its key's worker: no idle worker takes it.
    fn is_binding(&self, hint: Option<u64>) -> bool {
        hint.is_some()
    }
}

/// Makes a balancer from a closure `FnMut(&[Load], Option<u64>) -> usize + Send`.
///
/// (A blanket `impl Balancer for F: FnMut…` would overlap with `impl Balancer for Box<B>`,
/// because a boxed closure is itself `FnMut`; this wrapper avoids that.)
///
/// ```
/// use aplex::balance::{from_fn, Balancer, Load};
///
/// // Everything to the last worker.
/// let mut last = from_fn(|loads: &[Load], _hint| loads.len().saturating_sub(1));
/// let loads = [Load { running: 0, queued: 0, capacity: 1 }; 3];
/// assert_eq!(last.pick(&loads, None), 2);
/// ```
pub fn from_fn<F>(f: F) -> FnBalancer<F>
where
    F: FnMut(&[Load], Option<u64>) -> usize + Send,
{
    FnBalancer { f }
}

/// A balancer made from a closure by [`from_fn`].
///
/// ```
/// use aplex::balance::{from_fn, Balancer, FnBalancer, Load};
///
/// let mut by_hint: FnBalancer<_> = from_fn(|_: &[Load], hint: Option<u64>| hint.unwrap_or(0) as usize);
/// let loads = [Load { running: 0, queued: 0, capacity: 1 }; 4];
/// assert_eq!(by_hint.pick(&loads, Some(3)), 3);
/// assert_eq!(format!("{by_hint:?}"), "FnBalancer { .. }");
/// ```
pub struct FnBalancer<F> {
    f: F,
}

impl<F> fmt::Debug for FnBalancer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnBalancer").finish_non_exhaustive()
    }
}

impl<F> Balancer for FnBalancer<F>
where
    F: FnMut(&[Load], Option<u64>) -> usize + Send,
{
    fn pick(&mut self, loads: &[Load], hint: Option<u64>) -> usize {
        (self.f)(loads, hint)
    }
}

/// `i` taken into `0..n` (`n > 0`): a cursor that may have run one past the end (or that was
/// set for more workers) wraps to the start, without a division in the common case.
fn wrap(i: usize, n: usize) -> usize {
    if i < n {
        i
    } else if i == n {
        0
    } else {
        i % n
    }
}

/// SplitMix64's finalizer: every input bit affects every output bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
