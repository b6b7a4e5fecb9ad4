//! The single-threaded executor: a slab of tasks, a local run queue, and an inbox for wakes that
//! come from other threads.
//!
//! # Ownership rules
//!
//! - [`Local`] belongs to its owner thread (it is reached through a thread-local and an `Rc`).
//!   Its slab and run queue are touched only there.
//! - [`Shared`] is the part other threads see, through the `Arc` every task header holds: the
//!   inbox of remote wakes and the reactor. Its lock is held only to push or take indices and to
//!   read or write `sleeping`, never while a waker or a future runs.
//! - A task is polled only after its waker fired: the run queue holds nothing else. There is no
//!   busy polling; an idle executor parks in the reactor's `poll(2)`.
//!
//! # Parking without lost wake-ups
//!
//! Before parking, the owner takes the inbox lock, finds it empty and sets `sleeping`. A remote
//! wake pushes its index under the same lock and, if `sleeping` was set, clears it and writes the
//! wake pipe. Either the owner sees the index, or the waker sees `sleeping`: the lock orders them.
//! Only the first remote wake of a sleep writes the pipe; the rest only push.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::reactor::{lock, Reactor};
use super::task::{LocalTask, Runnable, Task, MAIN};

/// How many queued tasks run before the executor looks at remote wakes and timers again.
const BATCH: usize = 256;
/// Every this many busy batches, the executor asks the kernel about fds.
#[cfg(feature = "io")]
const IO_EVERY: u32 = 61;

/// The part of an executor that other threads reach.
#[derive(Debug)]
pub(crate) struct Shared {
    inbox: Mutex<Inbox>,
    /// A hint that the inbox is not empty, for the owner to spin on without taking the lock.
    has_wakes: AtomicBool,
    pub(crate) reactor: Arc<Reactor>,
}

#[derive(Debug, Default)]
struct Inbox {
    wakes: Vec<u32>,
    sleeping: bool,
}

impl Shared {
    /// Puts task `index` on its executor's run queue, from any thread.
    pub(crate) fn schedule(&self, index: u32) {
        let local = with_current(|local| {
            if std::ptr::eq(&*local.shared, self) {
                local.queue.borrow_mut().push_back(index);
                true
            } else {
                false
            }
        });
        if local != Some(true) {
            self.schedule_remote(index);
        }
    }

    fn schedule_remote(&self, index: u32) {
        let rouse = {
            let mut inbox = lock(&self.inbox);
            inbox.wakes.push(index);
            // ORDERING: Release, read by the spinning owner with Acquire; the lock orders the
            // rest.
            self.has_wakes.store(true, Ordering::Release);
            std::mem::take(&mut inbox.sleeping)
        };
        if rouse {
            self.reactor.notify();
        }
    }
}

/// The owner thread's executor state.
pub(crate) struct Local {
    pub(crate) shared: Arc<Shared>,
    queue: RefCell<VecDeque<u32>>,
    slab: RefCell<Slab>,
    /// Inside a `block_on` right now (spawning is allowed, nesting is not).
    entered: Cell<bool>,
    /// Counts busy batches, to poll fds now and then while busy.
    #[cfg(feature = "io")]
    ticks: Cell<u32>,
    /// A spare vector swapped with the inbox, so that draining it allocates nothing.
    spare: RefCell<Vec<u32>>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("tasks", &self.slab.borrow().live)
            .field("queued", &self.queue.borrow().len())
            .finish()
    }
}

/// Unfinished tasks by index; indices of finished ones are reused.
#[derive(Default)]
struct Slab {
    tasks: Vec<Option<Arc<dyn Runnable>>>,
    free: Vec<u32>,
    live: usize,
}

impl Slab {
    fn reserve(&mut self) -> u32 {
        self.live += 1;
        match self.free.pop() {
            Some(index) => index,
            None => {
                let index = self.tasks.len();
                assert!(index < MAIN as usize, "more than 4 billion live tasks");
                self.tasks.push(None);
                index as u32
            }
        }
    }

    fn release(&mut self, index: u32) {
        self.live -= 1;
        self.free.push(index);
    }
}

thread_local! {
    /// This thread's executor, made on first use and kept for later `block_on` calls.
    static RUNTIME: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
    /// How long this thread's executor spins for remote wakes before it parks.
    static SPIN: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// Makes this thread's executor spin up to `spin` for wakes from other threads before it parks
/// (pool workers do; a plain `block_on` does not).
pub(crate) fn set_thread_spin(spin: Duration) {
    SPIN.with(|s| s.set(spin.min(MAX_SPIN)));
}

/// The longest spin window: past it, a spinner would starve the timers and fds it does not
/// look at while it spins.
pub(crate) const MAX_SPIN: Duration = Duration::from_millis(1);

/// Runs `f` with this thread's executor if a `block_on` is running on this thread.
pub(crate) fn with_current<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    RUNTIME
        .try_with(|rt| match &*rt.borrow() {
            Some(local) if local.entered.get() => Some(f(local)),
            _ => None,
        })
        .ok()
        .flatten()
}

/// The reactor of the executor running on this thread, if any.
#[cfg(feature = "io")]
pub(crate) fn current_reactor() -> Option<Arc<Reactor>> {
    with_current(|local| local.shared.reactor.clone())
}

/// True if `reactor` belongs to the executor running on this thread.
#[cfg(feature = "io")]
pub(crate) fn is_current_reactor(reactor: &Reactor) -> bool {
    with_current(|local| std::ptr::eq(&*local.shared.reactor, reactor)) == Some(true)
}

impl Local {
    fn new() -> std::io::Result<Local> {
        Ok(Local {
            shared: Arc::new(Shared {
                inbox: Mutex::new(Inbox::default()),
                has_wakes: AtomicBool::new(false),
                reactor: Arc::new(Reactor::new()?),
            }),
            queue: RefCell::new(VecDeque::new()),
            slab: RefCell::new(Slab::default()),
            entered: Cell::new(false),
            #[cfg(feature = "io")]
            ticks: Cell::new(0),
            spare: RefCell::new(Vec::new()),
        })
    }

    /// Makes this thread's executor (and its reactor) now, if it has none yet, so that a
    /// thread that must not panic learns of a failure (out of fds) as an error. The executor
    /// made here is the one the thread's next `block_on` enters: checking and using are one.
    pub(crate) fn prepare() -> std::io::Result<()> {
        RUNTIME.with(|rt| {
            let mut rt = rt.borrow_mut();
            if rt.is_none() {
                *rt = Some(Rc::new(Local::new()?));
            }
            Ok(())
        })
    }

    /// Enters this thread's executor; panics if one is already running here.
    pub(crate) fn enter() -> Rc<Local> {
        RUNTIME.with(|rt| {
            let mut rt = rt.borrow_mut();
            let local = match &*rt {
                Some(local) => local.clone(),
                None => {
                    let local = Rc::new(Local::new().unwrap_or_else(|e| {
                        panic!("aplex could not create its reactor (a wake-up socket pair): {e}")
                    }));
                    *rt = Some(local.clone());
                    local
                }
            };
            assert!(
                !local.entered.get(),
                "aplex::block_on was called inside another block_on (or a pool worker) on the same \
                 thread; it would stall every task of the outer one: use .await instead"
            );
            local.entered.set(true);
            // Wakes left over from an earlier run name tasks that no longer exist.
            lock(&local.shared.inbox).wakes.clear();
            local.queue.borrow_mut().clear();
            local
        })
    }

    /// Leaves the executor: closes every unfinished task (dropping its future) on this thread.
    pub(crate) fn exit(&self) {
        loop {
            let tasks: Vec<_> = {
                let mut slab = self.slab.borrow_mut();
                slab.free.clear();
                slab.live = 0;
                slab.tasks.drain(..).flatten().collect()
            };
            if tasks.is_empty() {
                break;
            }
            // Dropping a future may spawn new tasks: the loop closes those too.
            for task in tasks {
                task.close();
            }
        }
        self.queue.borrow_mut().clear();
        lock(&self.shared.inbox).wakes.clear();
        self.entered.set(false);
    }

    /// Spawns `future` on this executor.
    pub(crate) fn spawn<F>(&self, future: F) -> LocalTask<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let index = self.slab.borrow_mut().reserve();
        let task = Task::new(index, self.shared.clone(), future);
        self.slab.borrow_mut().tasks[index as usize] = Some(task.clone());
        self.queue.borrow_mut().push_back(index);
        LocalTask::new(task)
    }

    /// Runs queued tasks, takes in remote wakes and due timers, and parks when there is nothing
    /// to do. Returns true when the `block_on` future was woken.
    pub(crate) fn tick(&self) -> bool {
        let mut main = self.run_batch();
        main |= self.drain_inbox();
        self.shared.reactor.fire_timers();

        if main || !self.queue.borrow().is_empty() {
            #[cfg(feature = "io")]
            self.poll_fds_while_busy();
            return main;
        }
        if self.spin_for_wakes() {
            return self.drain_inbox();
        }
        if self.prepare_to_sleep() {
            self.turn_reactor(None);
        }
        lock(&self.shared.inbox).sleeping = false;
        self.drain_inbox()
    }

    /// Every `IO_EVERY` busy batches, asks the kernel about fds without waiting, so that a
    /// busy executor does not starve its sockets.
    #[cfg(feature = "io")]
    fn poll_fds_while_busy(&self) {
        let ticks = self.ticks.get().wrapping_add(1);
        self.ticks.set(ticks);
        if ticks % IO_EVERY == 0 && self.shared.reactor.source_count() > 0 {
            self.turn_reactor(Some(Duration::ZERO));
        }
    }

    fn turn_reactor(&self, timeout: Option<Duration>) {
        if let Err(e) = self.shared.reactor.turn(timeout) {
            // poll(2) fails only on a broken fd set or no memory: nothing to retry.
            panic!("aplex's reactor failed in poll(2): {e}");
        }
    }

    /// Spins up to this thread's spin window for a remote wake. True if one came.
    fn spin_for_wakes(&self) -> bool {
        let spin = SPIN.with(Cell::get);
        if spin.is_zero() {
            return false;
        }
        let end = Instant::now() + spin; // at most MAX_SPIN
        loop {
            for _ in 0..8 {
                // ORDERING: Acquire pairs with the Release store in `schedule_remote`.
                if self.shared.has_wakes.load(Ordering::Acquire) {
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= end {
                return false;
            }
            // More spinners than cores would keep the thread with the work off its core.
            std::thread::yield_now();
        }
    }

    /// Says "sleeping" unless a remote wake is already waiting.
    fn prepare_to_sleep(&self) -> bool {
        let mut inbox = lock(&self.shared.inbox);
        if inbox.wakes.is_empty() {
            inbox.sleeping = true;
            true
        } else {
            false
        }
    }

    /// Moves remote wakes onto the run queue. Returns true if the main future was among them.
    fn drain_inbox(&self) -> bool {
        let mut spare = self.spare.borrow_mut();
        {
            let mut inbox = lock(&self.shared.inbox);
            self.shared.has_wakes.store(false, Ordering::Relaxed);
            if inbox.wakes.is_empty() {
                return false;
            }
            std::mem::swap(&mut inbox.wakes, &mut *spare);
        }
        let mut main = false;
        let mut queue = self.queue.borrow_mut();
        for index in spare.drain(..) {
            if index == MAIN {
                main = true;
            } else {
                queue.push_back(index);
            }
        }
        main
    }

    /// Polls up to `BATCH` queued tasks. Returns true if the main future was woken.
    fn run_batch(&self) -> bool {
        let mut main = false;
        for _ in 0..BATCH {
            let Some(index) = self.queue.borrow_mut().pop_front() else {
                break;
            };
            if index == MAIN {
                main = true;
                continue;
            }
            // Take the task out of its slot while it runs: it may spawn, which grows the slab.
            let Some(task) = self
                .slab
                .borrow_mut()
                .tasks
                .get_mut(index as usize)
                .and_then(Option::take)
            else {
                continue; // a stale wake of a finished task
            };
            // `run` keeps the reference of a finished task and drops it with no slab borrow held.
            match task.run() {
                Some(task) => self.slab.borrow_mut().tasks[index as usize] = Some(task),
                None => self.slab.borrow_mut().release(index),
            }
        }
        main
    }
}

/// Spawns a future on the executor of the current thread: inside [`block_on`](crate::block_on)
/// or a pool worker. The future need not be `Send`.
///
/// The returned [`LocalTask`] is a future of the output; dropping it lets the task run on
/// (detached). Tasks still unfinished when their `block_on` returns are dropped.
///
/// # Panics
///
/// Panics if no aplex executor runs on this thread.
///
/// ```
/// use std::rc::Rc;
/// let total = aplex::block_on(async {
///     let shared = Rc::new(5); // not Send: fine for a local task
///     let tasks: Vec<_> = (0..4)
///         .map(|i| {
///             let shared = shared.clone();
///             aplex::spawn_local(async move { *shared + i })
///         })
///         .collect();
///     let mut sum = 0;
///     for t in tasks {
///         sum += t.await;
///     }
///     sum
/// });
/// assert_eq!(total, 26);
/// ```
pub fn spawn_local<F>(future: F) -> LocalTask<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match with_current(|local| local.spawn(future)) {
        Some(task) => task,
        None => panic!(
            "aplex::spawn_local was called outside of aplex::block_on or a pool worker: \
             there is no executor on this thread to run the task"
        ),
    }
}

/// Lets the other ready tasks run before this one goes on (aioextensions' `force_loop_cycle`).
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// aplex::block_on(async {
///     let ran = Rc::new(Cell::new(false));
///     let r = ran.clone();
///     aplex::spawn_local(async move { r.set(true) }).detach();
///     assert!(!ran.get());
///     aplex::yield_now().await;
///     assert!(ran.get());
/// });
/// ```
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
