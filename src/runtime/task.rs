//! A spawned local task: one allocation that holds the future, then its output, and serves as
//! the task's own waker.
//!
//! # Ownership rules
//!
//! A `Task<F>` lives in an `Arc`. The references to it are:
//!
//! - the executor's slab entry, on the owner thread, while the task is unfinished;
//! - the `LocalTask<T>` returned by `spawn_local`, which is `!Send`, so also on the owner thread;
//! - clones of the task's `Waker`, which may be on any thread. The waker a poll is given is
//!   borrowed from the run loop's reference for the length of that poll (see [`WakerRef`]).
//!
//! The run loop hands the task its `Arc` itself (`run(self: Arc<Self>)`, given back while the
//! task is unfinished), not a `&Task`: a waker is made from a pointer to the whole allocation,
//! counts included, which a pointer made from `&Task` is not (Miri rejects that one under
//! Stacked and Tree Borrows).
//!
//! The future `F` and the output `F::Output` need not be `Send`. They sit in `stage`, which is
//! touched **only on the owner thread**: by the executor (`run`, `close`) and by the `LocalTask`.
//! Other threads reach a task only through its `Waker`, and a waker touches only `header`
//! (atomics and the thread-safe `Shared`). `stage` is emptied on the owner thread before the
//! owner drops its last reference (the slab entry when the task finishes or the executor shuts
//! down, the `LocalTask` when it is dropped), so when the last reference is a waker dropped on
//! another thread, dropping the task frees no `F` and no output there.
//!
//! # Wake states
//!
//! `header.queued` is true while the task's index sits in a run queue, and stays true forever
//! once the task finished: a wake is then a no-op. The run loop clears it just before polling, so
//! a wake that arrives during a poll queues the task again.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::executor::Shared;

/// The run-queue index that stands for the `block_on` future itself.
pub(crate) const MAIN: u32 = u32::MAX;

/// The part of a task other threads may touch: enough to put it back on its run queue.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) index: u32,
    pub(crate) queued: AtomicBool,
    /// `DETACHED`, `CANCEL`, `CLOSED`: read and written on the owner thread only (an atomic so
    /// that the header stays `Sync`; it sits in what would be padding).
    flags: AtomicU8,
    pub(crate) shared: Arc<Shared>,
}

impl Header {
    pub(crate) fn new(index: u32, queued: bool, shared: Arc<Shared>) -> Header {
        Header {
            index,
            queued: AtomicBool::new(queued),
            flags: AtomicU8::new(0),
            shared,
        }
    }

    /// Queues the task unless it is already queued or finished.
    pub(crate) fn wake(&self) {
        // ORDERING: AcqRel: the Release half publishes what the waking thread did before the
        // wake (the event the task waits for) to the run loop's `start_poll`, which acquires.
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.shared.schedule(self.index);
        }
    }

    /// Marks the task as about to be polled, so that wakes from now on queue it again.
    pub(crate) fn start_poll(&self) {
        // ORDERING: AcqRel pairs with the swap in `wake`.
        self.queued.swap(false, Ordering::AcqRel);
    }
}

/// Flag: the `LocalTask` is gone; drop the output as soon as it exists.
const DETACHED: u8 = 1;
/// Flag: `cancel` was called; drop the future instead of polling it again.
const CANCEL: u8 = 2;
/// Flag: the future was dropped before it finished (cancelled, or its executor shut down).
const CLOSED: u8 = 4;

/// What a task holds over its life.
enum Stage<F: Future> {
    /// Not finished: the future, pinned in this allocation.
    Running(F),
    /// Finished: the output, or the panic that ended the future.
    Finished(std::thread::Result<F::Output>),
    /// Nothing: the output was taken, dropped, or the future was closed.
    Consumed,
}

/// A spawned future together with its output slot and wake state.
pub(crate) struct Task<F: Future> {
    header: Header,
    stage: RefCell<Stage<F>>,
    /// Who awaits the `LocalTask`.
    awaiter: Cell<Option<Waker>>,
}

// The `!Send` parts (`stage`, `awaiter`) are touched only on the owner thread, as the module's
// ownership rules say, and `stage` is empty before the last reference can be dropped elsewhere.
// SAFETY: other threads reach a `Task` only through its `Waker`, and waking touches only
// `header`, which is `Send + Sync`; the rest stays on the owner thread (above).
unsafe impl<F: Future> Send for Task<F> {}
// SAFETY: as for `Send`: the only shared access from other threads is `Header::wake`.
unsafe impl<F: Future> Sync for Task<F> {}

impl<F: Future + 'static> Wake for Task<F> {
    fn wake(self: Arc<Self>) {
        self.header.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.header.wake();
    }
}

/// The executor's view of a task: run it, or close it at shutdown.
pub(crate) trait Runnable {
    /// Polls the future once. Gives the task back while it is unfinished; `None` when it is
    /// finished and leaves the slab. Taking the `Arc` (rather than `&self`) lets the poll's
    /// waker borrow it without touching the count.
    fn run(self: Arc<Self>) -> Option<Arc<dyn Runnable>>;
    /// Drops the future without finishing it (executor shutdown).
    fn close(&self);
}

impl<F: Future + 'static> Task<F> {
    /// Allocates a queued task at slab `index`.
    pub(crate) fn new(index: u32, shared: Arc<Shared>, future: F) -> Arc<Task<F>> {
        Arc::new(Task {
            header: Header::new(index, true, shared),
            stage: RefCell::new(Stage::Running(future)),
            awaiter: Cell::new(None),
        })
    }

    fn has(&self, flag: u8) -> bool {
        // ORDERING: Relaxed: flags are read and written on the owner thread only.
        self.header.flags.load(Ordering::Relaxed) & flag != 0
    }

    fn set(&self, flag: u8) {
        self.header.flags.fetch_or(flag, Ordering::Relaxed);
    }

    /// Ends the task with `outcome` (or with nothing, for a closed one), then wakes the awaiter.
    fn finish(&self, outcome: Stage<F>) {
        // ORDERING: no wake may queue a finished task; Relaxed would do, as only the owner thread
        // reads the result of a queued index, but Release keeps the rule simple to check.
        self.header.queued.store(true, Ordering::Release);
        let outcome = if self.has(DETACHED) {
            Stage::Consumed
        } else {
            outcome
        };
        let old = std::mem::replace(&mut *self.stage.borrow_mut(), outcome);
        // Drop the future (or an unwanted output) with no borrow held: its destructor may touch
        // other tasks. A panic there must not take the executor down.
        drop_contained(old);
        if let Some(awaiter) = self.awaiter.take() {
            awaiter.wake();
        }
    }
}

/// The waker of one poll: it borrows a reference to the task for `'a` instead of taking a
/// count. A waker cloned from it takes a count of its own.
struct WakerRef<'a> {
    waker: ManuallyDrop<Waker>,
    _task: PhantomData<&'a ()>,
}

impl<'a> WakerRef<'a> {
    fn new<F: Future + 'static>(task: &'a Arc<Task<F>>) -> WakerRef<'a> {
        // `as_ptr` keeps the provenance of the whole allocation, counts included, which a
        // waker's clone and drop need (a pointer made from `&Task` covers only the task). The
        // `Arc` made here shares `task`'s count without adding to it: the `ManuallyDrop` (never
        // dropped) keeps it from ever decrementing that count.
        // SAFETY: the pointer comes from `Arc::as_ptr` of a live `Arc<Task<F>>`, as `from_raw`
        // requires; the lifetime `'a` keeps the waker from outliving that `Arc`.
        let this = unsafe { Arc::from_raw(Arc::as_ptr(task)) };
        WakerRef {
            waker: ManuallyDrop::new(Waker::from(this)),
            _task: PhantomData,
        }
    }
}

impl Deref for WakerRef<'_> {
    type Target = Waker;

    fn deref(&self) -> &Waker {
        &self.waker
    }
}

impl<F: Future + 'static> Runnable for Task<F> {
    fn run(self: Arc<Self>) -> Option<Arc<dyn Runnable>> {
        if self.has(CANCEL) {
            self.close();
            return None;
        }
        self.header.start_poll();
        let mut stage = self.stage.borrow_mut();
        let Stage::Running(future) = &mut *stage else {
            return None; // already finished: a stale queue entry
        };
        let waker = WakerRef::new(&self);
        // SAFETY: the future lives inside this task's `Arc` allocation and is never moved out of
        // it: the stage is only ever replaced in place, which drops the future where it lies, as
        // the pinning contract allows.
        let future = unsafe { Pin::new_unchecked(future) };
        let mut cx = Context::from_waker(&waker);
        let result = catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx)));
        drop(stage);
        match result {
            Ok(Poll::Pending) => return Some(self),
            Ok(Poll::Ready(output)) => self.finish(Stage::Finished(Ok(output))),
            Err(panic) => self.finish(Stage::Finished(Err(panic))),
        }
        None
    }

    fn close(&self) {
        let running = matches!(self.stage.try_borrow().as_deref(), Ok(Stage::Running(_)));
        if !running {
            return; // already finished
        }
        self.set(CLOSED);
        self.finish(Stage::Consumed);
    }
}

/// The `LocalTask`'s view of a task, typed by the output only.
trait Join<T> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<T>;
    fn is_finished(&self) -> bool;
    fn detach(&self);
    fn cancel(&self) -> Option<T>;
}

impl<F: Future + 'static> Join<F::Output> for Task<F> {
    fn poll_join(&self, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut stage = self.stage.borrow_mut();
        match &*stage {
            Stage::Running(_) => {
                let w = self.awaiter.take();
                match w {
                    Some(w) if w.will_wake(cx.waker()) => self.awaiter.set(Some(w)),
                    _ => self.awaiter.set(Some(cx.waker().clone())),
                }
                Poll::Pending
            }
            Stage::Finished(_) => match std::mem::replace(&mut *stage, Stage::Consumed) {
                Stage::Finished(Ok(output)) => Poll::Ready(output),
                Stage::Finished(Err(panic)) => {
                    drop(stage);
                    resume_unwind(panic)
                }
                _ => unreachable!("the stage was just matched as finished"),
            },
            Stage::Consumed if self.has(CLOSED) => {
                panic!("awaited a LocalTask whose future was dropped: it was cancelled, or its executor shut down first")
            }
            Stage::Consumed => panic!("LocalTask polled after it returned its output"),
        }
    }

    fn is_finished(&self) -> bool {
        match self.stage.try_borrow() {
            Ok(stage) => !matches!(*stage, Stage::Running(_)),
            Err(_) => false, // borrowed: it is being polled right now
        }
    }

    fn detach(&self) {
        self.set(DETACHED);
        let old = match self.stage.try_borrow_mut() {
            Ok(mut stage) if matches!(*stage, Stage::Finished(_)) => {
                std::mem::replace(&mut *stage, Stage::Consumed)
            }
            _ => Stage::Consumed,
        };
        drop(old);
    }

    fn cancel(&self) -> Option<F::Output> {
        self.set(DETACHED);
        let taken = match self.stage.try_borrow_mut() {
            Ok(mut stage) if matches!(*stage, Stage::Finished(_)) => {
                std::mem::replace(&mut *stage, Stage::Consumed)
            }
            Ok(stage) if matches!(*stage, Stage::Consumed) => return None,
            _ => {
                // Running (or being polled right now): drop the future at its next turn.
                self.set(CANCEL);
                self.header.wake();
                return None;
            }
        };
        match taken {
            Stage::Finished(Ok(output)) => Some(output),
            _ => None,
        }
    }
}

/// A handle to a task started with [`spawn_local`](crate::spawn_local): a future of its output.
///
/// Awaiting it gives the task's output; if the task panicked, the panic resumes in the awaiter.
/// Dropping it **detaches** the task (it runs on, its output is dropped); [`cancel`] stops it.
/// A `LocalTask` is not `Send`: it belongs to the thread whose executor runs the task.
///
/// [`cancel`]: LocalTask::cancel
///
/// ```
/// let n = aplex::block_on(async {
///     let task = aplex::spawn_local(async { 40 + 2 });
///     task.await
/// });
/// assert_eq!(n, 42);
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// aplex::block_on(async { assert_send(aplex::spawn_local(async {})) });
/// ```
#[must_use = "a dropped LocalTask detaches its task; call .detach() to say so"]
pub struct LocalTask<T> {
    task: Option<Arc<dyn Join<T>>>,
    _not_send: PhantomData<*const ()>,
}

impl<T> std::fmt::Debug for LocalTask<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTask")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T: 'static> LocalTask<T> {
    pub(crate) fn new<F: Future<Output = T> + 'static>(task: Arc<Task<F>>) -> LocalTask<T> {
        LocalTask {
            task: Some(task),
            _not_send: PhantomData,
        }
    }
}

impl<T> LocalTask<T> {
    /// True once the task has finished (with a value, a panic, or by cancellation). For
    /// `select!` loops: a `LocalTask` is not fused (polling it after it gave its output panics),
    /// so check this before polling one kept across loop turns.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Lets the task run on without anyone waiting for it; its output will be dropped.
    pub fn detach(mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }

    /// Stops the task: its future is dropped at its next suspension point and never polled
    /// again. Returns the output if the task had already finished with one.
    ///
    /// ```
    /// use std::time::Duration;
    /// aplex::block_on(async {
    ///     let task = aplex::spawn_local(async {
    ///         aplex::time::sleep(Duration::from_secs(60)).await;
    ///         unreachable!("cancelled before the sleep ends");
    ///     });
    ///     aplex::yield_now().await;
    ///     assert_eq!(task.cancel(), None);
    /// });
    /// ```
    pub fn cancel(mut self) -> Option<T> {
        self.task.take().and_then(|t| t.cancel())
    }
}

impl<T> Future for LocalTask<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        match &self.task {
            Some(task) => task.poll_join(cx),
            None => panic!("LocalTask polled after it returned its output"),
        }
    }
}

impl<T> Drop for LocalTask<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

/// Tells a caught panic's message and drops its payload where a panicking destructor cannot
/// unwind any further: a payload is the user's value, and its `Drop` may panic too (for
/// instance `panic_any(value)`); that second panic must not take a worker down.
pub(crate) fn take_panic_message(payload: Box<dyn Any + Send>) -> String {
    let message = panic_message(&*payload);
    drop_payload(payload);
    message
}

/// Drops `value` inside an unwind guard: a panic in its destructor is swallowed.
pub(crate) fn drop_contained<T>(value: T) {
    contain(move || drop(value));
}

/// Runs `f`, stopping a panic from unwinding past this call; `None` if it panicked.
pub(crate) fn contain<R>(f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(payload) => {
            drop_payload(payload);
            None
        }
    }
}

/// Drops a caught panic's payload inside a guard. Should the payload's own destructor panic,
/// that second payload is leaked rather than dropped, since its destructor could panic again.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Tells a panic payload's message, for errors that carry it as text.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}
