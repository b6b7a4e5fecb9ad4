//! One worker index of a pool (a *slot*): its state, its worker, the calls waiting for one,
//! and its crash-loop breaker.
//!
//! # States
//!
//! ```text
//!            hello                      death (first crash, or after completing works)
//! Starting ────────► Ready ───────────────────────────────────────────────► Starting
//!    │  ▲                                  │ death: second crash in a row, or a failed spawn
//!    │  └──── retry when the backoff ends ─┤
//!    └─ death before hello ────────────────┴──► BackingOff ──(third crash in a row)──► Broken
//! ```
//!
//! A *crash* is a worker that dies before its hello, or before completing any work (unless the
//! pool killed it); a worker that completed works starts the count again. A failed spawn for
//! want of a resource (`EMFILE`, `ENFILE`, `EAGAIN`, `ENOMEM`) is not a crash: the slot backs off
//! and tries again, and recovers when the shortage ends. A `Broken` slot keeps retrying, at the
//! backoff's cap at most. Each slot counts on its own: a crash loop in one slot never stops
//! another from serving.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::conn::Conn;
use super::job::Pending;

/// Crashes in a row that make a slot [`SlotState::Broken`].
pub(crate) const CRASH_LIMIT: u32 = 3;
/// The first backoff; each further failure in a row doubles it, up to [`BACKOFF_CAP`].
const BACKOFF_START: Duration = Duration::from_millis(100);
/// The longest a slot waits before trying again.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// The state of one worker slot of a [`ProcessPool`](crate::ProcessPool), from
/// [`ProcessPool::slot_states`](crate::ProcessPool::slot_states).
///
/// ```
/// use aplex::SlotState;
/// assert_ne!(SlotState::Ready, SlotState::Broken);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SlotState {
    /// A worker was launched and has not said hello yet; calls routed here wait for it.
    Starting,
    /// A live worker serves this slot.
    Ready,
    /// The slot's last worker died early or could not be spawned; it tries again after a
    /// backoff (100 ms, doubling up to 30 s).
    BackingOff,
    /// Three or more workers in a row died before completing anything: a crash loop. The slot
    /// still tries again after its backoff. While every slot is broken and none is alive, calls
    /// fail at once with [`Error::WorkerLost`](crate::Error::WorkerLost).
    Broken,
}

impl SlotState {
    fn to_u8(self) -> u8 {
        match self {
            SlotState::Starting => 0,
            SlotState::Ready => 1,
            SlotState::BackingOff => 2,
            SlotState::Broken => 3,
        }
    }

    fn from_u8(v: u8) -> SlotState {
        match v {
            0 => SlotState::Starting,
            1 => SlotState::Ready,
            2 => SlotState::BackingOff,
            _ => SlotState::Broken,
        }
    }
}

/// One worker slot of a [`ProcessPool`](crate::ProcessPool) as
/// [`ProcessPool::slots`](crate::ProcessPool::slots) shows it: where its worker runs, who it
/// is, how it fares.
///
/// ```no_run
/// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
/// # let pool = aplex::ProcessPool::builder().workers(2).build(&works::WORKS).unwrap();
/// assert_eq!(pool.call(&works::double, 1).wait(), Ok(2));
/// let slots = pool.slots();
/// assert_eq!(slots[1].index, 1);
/// assert_eq!(slots[0].state, aplex::SlotState::Ready);
/// assert!(slots[0].pid.is_some() && slots[0].host.is_some());
/// assert_eq!(slots.iter().map(|s| s.completed).sum::<u64>(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlotInfo {
    /// The slot's index, `0..workers`: the argument its launcher is called with.
    pub index: usize,
    /// The host its worker runs on: the one named by the last hello from this slot (the
    /// worker's [`WORKER_HOST_ENV`](crate::WORKER_HOST_ENV), else its machine's host name);
    /// before any, the host [`hosts`](crate::ProcessPoolBuilder::hosts) aims it at.
    pub host: Option<String>,
    /// The live worker's own process id, from its hello (on its host); `None` while the slot
    /// has no live worker.
    pub pid: Option<u32>,
    /// The process id of the launched process (`ssh`, `srun`, a shell, or the worker itself),
    /// here; `None` while the slot has no worker, live or starting.
    pub launcher_pid: Option<u32>,
    /// Whether it serves, starts a worker, or backs off.
    pub state: SlotState,
    /// Works completed in this slot, by all its workers so far (each item of a map counts).
    pub completed: u64,
    /// Workers launched for this slot after its first.
    pub restarts: u64,
}

/// A call accepted for a slot that has no live worker yet: job id, job, frame.
pub(crate) type Queued = (u64, Arc<dyn Pending>, Vec<u8>);

/// One worker index of the pool.
pub(crate) struct Slot {
    /// Works sent to this index (or waiting for it) and not yet ended.
    pub(crate) load: Arc<AtomicUsize>,
    /// Works completed by this slot's workers (see [`SlotInfo::completed`]).
    pub(crate) completed: AtomicU64,
    /// The slot's [`SlotState`], readable without the lock (written under it).
    phase: AtomicU8,
    pub(crate) state: Mutex<SlotInner>,
}

/// What the slot lock guards.
#[derive(Default)]
pub(crate) struct SlotInner {
    /// The live worker (state `Ready`).
    pub(crate) conn: Option<Arc<Conn>>,
    /// A launched worker that has not said hello yet (state `Starting`).
    pub(crate) starting: Option<Arc<Conn>>,
    /// Calls accepted while there was no live worker to take them.
    pub(crate) backlog: Vec<Queued>,
    /// Workers in a row that crashed (see the module docs).
    pub(crate) crashes: u32,
    /// Spawns in a row that failed for want of a resource.
    pub(crate) shortages: u32,
    /// Why the last worker or spawn failed.
    pub(crate) last_error: Option<String>,
    /// A worker was launched for this slot before.
    pub(crate) launched: bool,
    /// Workers launched after the first.
    pub(crate) restarts: u64,
    /// The host its last worker named in its hello, or the one `hosts` aims it at.
    pub(crate) host: Option<String>,
}

impl Slot {
    /// A slot whose workers run on `host`, if the pool knows it ahead.
    pub(crate) fn new(host: Option<String>) -> Slot {
        Slot {
            load: Arc::new(AtomicUsize::new(0)),
            completed: AtomicU64::new(0),
            phase: AtomicU8::new(SlotState::Starting.to_u8()),
            state: Mutex::new(SlotInner {
                host,
                ..SlotInner::default()
            }),
        }
    }

    /// What [`ProcessPool::slots`](crate::ProcessPool::slots) shows of slot `index`.
    pub(crate) fn info(&self, index: usize) -> SlotInfo {
        let state = crate::runtime::reactor::lock(&self.state);
        let live = state.conn.as_ref();
        let launched = live.or(state.starting.as_ref());
        SlotInfo {
            index,
            host: live.and_then(|c| c.host()).or_else(|| state.host.clone()),
            pid: live.and_then(|c| c.worker_pid()),
            launcher_pid: launched.map(|c| c.launcher_pid),
            state: self.phase(),
            // ORDERING: Relaxed: a count for display; results are delivered after it grows.
            completed: self.completed.load(Ordering::Relaxed),
            restarts: state.restarts,
        }
    }

    pub(crate) fn phase(&self) -> SlotState {
        // ORDERING: Relaxed: a routing hint; whoever acts on it re-checks under the lock.
        SlotState::from_u8(self.phase.load(Ordering::Relaxed))
    }

    /// Sets the state; called with the slot lock held (the `_held` guard proves it).
    pub(crate) fn set_phase(&self, _held: &SlotInner, phase: SlotState) {
        self.phase.store(phase.to_u8(), Ordering::Relaxed);
    }
}

/// How long a slot waits before its next start after `failures` failures in a row: at once
/// after the first, then 100 ms doubling up to 30 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let doublings = (failures - 2).min(16);
    BACKOFF_START
        .saturating_mul(1 << doublings)
        .min(BACKOFF_CAP)
}

/// True for spawn errors that mean a passing shortage, not a broken command: out of fds
/// (`EMFILE`, `ENFILE`), processes or threads (`EAGAIN`), or memory (`ENOMEM`).
pub(crate) fn is_shortage(e: &std::io::Error) -> bool {
    // EMFILE and ENFILE are 24 and 23 on Linux, the BSDs and macOS.
    matches!(e.raw_os_error(), Some(23) | Some(24))
        || matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::OutOfMemory
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_exponential_and_never_overflows() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(200));
        assert_eq!(backoff(10), Duration::from_millis(25_600));
        assert_eq!(backoff(11), Duration::from_secs(30));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn shortages_are_told_from_broken_commands() {
        assert!(is_shortage(&std::io::Error::from_raw_os_error(24)));
        assert!(is_shortage(&std::io::Error::from_raw_os_error(23)));
        assert!(is_shortage(&std::io::ErrorKind::WouldBlock.into()));
        assert!(!is_shortage(&std::io::ErrorKind::NotFound.into()));
        assert!(!is_shortage(&std::io::ErrorKind::PermissionDenied.into()));
    }
}
