//! Starting the elastic pool's workers: a worker's thread and its life (start hook, then
//! dispatcher), the starts that fail (a start hook that panics, a thread the OS refuses), and
//! joining the threads that ended.
//!
//! # Ownership rules
//!
//! - A worker is counted in `workers` and `threads` before it is started (under the lock, by
//!   whoever decided to start it); a failed start uncounts it under the lock and decides there
//!   what follows ([`AfterFailedStart`]), done once the lock is released.
//! - Failed starts are counted in a row; a start that succeeds ends the row. After
//!   [`START_FAILURES_IN_A_ROW`], the pool stops replacing them; if no worker is alive then,
//!   nothing would ever run the queue, so its works fail `Error::WorkerLost`, and the row starts
//!   over: a later submit tries again.

use std::cell::RefCell;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::task::Waker;
use std::thread::JoinHandle;

use super::held::{Held, Queued};
use super::queue::{Intake, Shared, State, WorkerRecord};
use super::steps::ElasticWorker;
use super::track::{self, Ending};
use crate::pool::worker::{dispatch, start_thread, ThreadStart, WorkCounts};
use crate::runtime::reactor::lock;
use crate::Error;

/// Failed worker starts in a row (start hooks that panicked, threads the OS refused) after
/// which the pool stops replacing them: a hook that always panics must not spin up threads
/// forever. If no worker is alive then, the queued works fail (see [`AfterFailedStart`]).
pub(super) const START_FAILURES_IN_A_ROW: usize = 3;

/// What to do after a worker failed to start, decided under the lock.
#[must_use]
enum AfterFailedStart {
    /// Nothing: the pool needs no worker, or is shutting down.
    Nothing,
    /// Start another worker (counted already).
    Retry,
    /// Starts failed too often in a row, and workers are alive: wake a parked one to look at
    /// the queue (the work it was to be started for waits there, and a busy worker may now
    /// take a plain closure: the pool cannot offer a free one).
    Wake(Waker),
    /// Starts failed too often in a row and no worker is alive: nothing would ever run these
    /// queued works, so fail them (`Error::WorkerLost`, with the reason). The count of
    /// failures starts over, so a later submit tries again.
    GiveUp(Vec<Queued>, String),
}

thread_local! {
    /// On a worker thread: tells the pool when the thread is gone (after its tasks were dropped).
    static THREAD_EXIT: RefCell<Option<ThreadExit>> = const { RefCell::new(None) };
}

struct ThreadExit(Arc<Shared>);

impl Drop for ThreadExit {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.threads -= 1;
        self.0.notify(st);
    }
}

impl Shared {
    /// Reserves and starts one worker (or `build`'s, with `ready`).
    pub(crate) fn start_new_worker(
        self: &Arc<Self>,
        ready: Option<std::sync::mpsc::Sender<Result<(), String>>>,
    ) -> std::io::Result<()> {
        lock(&self.state).reserve_worker();
        self.start_worker(ready)
    }

    /// Starts one worker, already counted in `workers` and `threads`.
    pub(super) fn start_worker(
        self: &Arc<Self>,
        ready: Option<std::sync::mpsc::Sender<Result<(), String>>>,
    ) -> std::io::Result<()> {
        let counts = Arc::new(WorkCounts::default());
        let finished = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Held::default());
        let id = {
            let mut st = lock(&self.state);
            let id = st.next_id;
            st.next_id += 1;
            st.records.push(WorkerRecord {
                id,
                counts: counts.clone(),
                finished: finished.clone(),
                thread: None,
                lost: None,
                held: held.clone(),
            });
            id
        };
        let start = ThreadStart {
            name: format!("{}-{id}", self.config.name),
            index: id,
            spin: self.config.spin,
            on_start: None, // run by `worker_life`, which handles its panic
            ready: None,
            on_no_executor: None,
        };
        let replace = ready.is_none(); // `build`'s workers are not replaced: it fails
                                       // A thread that cannot make its executor (out of fds) never runs `worker_life`: it is
                                       // uncounted here, as a thread the OS refused (and `build`, if it waits, sees its
                                       // `ready` dropped).
        let failed = self.clone();
        let start = ThreadStart {
            on_no_executor: Some(Box::new(move |e: std::io::Error| {
                failed.thread_failed(
                    id,
                    replace,
                    format!("a worker could not make its reactor: {e}"),
                );
            })),
            ..start
        };
        let shared = self.clone();
        let me = ElasticWorker::new(id, finished, held, self.clone());
        match start_thread(start, move || shared.worker_life(me, counts, ready)) {
            Ok(thread) => {
                if let Some(r) = lock(&self.state).record(id) {
                    r.thread = Some(thread);
                }
                // Workers that retired since the last start are joined now, so a pool that
                // grows and shrinks all day keeps no finished thread's stack around.
                self.reap(false);
                Ok(())
            }
            Err(e) => {
                self.thread_failed(id, replace, format!("a worker thread could not start: {e}"));
                Err(e)
            }
        }
    }

    /// Worker `id`'s thread did not start or ended before its life began: it is uncounted,
    /// and replaced if the pool needs a worker (`replace`).
    fn thread_failed(self: &Arc<Self>, id: usize, replace: bool, why: String) {
        let mut st = lock(&self.state);
        st.workers -= 1;
        st.starting -= 1;
        st.threads -= 1;
        st.records.retain(|r| r.id != id);
        let next = self.after_failed_start(&mut st, replace, why);
        self.notify(st);
        self.follow(next);
    }

    /// A worker's thread: its start hook, then its dispatcher.
    async fn worker_life(
        self: Arc<Self>,
        me: ElasticWorker,
        counts: Arc<WorkCounts>,
        ready: Option<std::sync::mpsc::Sender<Result<(), String>>>,
    ) {
        THREAD_EXIT.with(|exit| *exit.borrow_mut() = Some(ThreadExit(self.clone())));
        track::enter_worker(self.clone(), &me);
        if let Some(hook) = &self.config.on_start {
            let id = me.id;
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(id)));
            if let Err(panic) = ran {
                let why = crate::runtime::task::take_panic_message(panic);
                self.start_failed(id, &why, ready.is_none());
                if let Some(ready) = ready {
                    let _ = ready.send(Err(why));
                }
                return;
            }
        }
        lock(&self.state).start_failures = 0;
        if let Some(ready) = ready {
            let _ = ready.send(Ok(()));
        }
        let max = self.config.max_works;
        dispatch(self, me, max, counts).await;
    }

    /// A worker's start hook panicked: it is not counted, it is reported (in `join`), and it is
    /// replaced if the pool needs a worker (`replace`: not during `build`, which fails).
    fn start_failed(self: &Arc<Self>, id: usize, why: &str, replace: bool) {
        let next = {
            let mut st = lock(&self.state);
            st.workers -= 1;
            st.starting -= 1;
            let why = format!("on_worker_start panicked: {why}");
            if let Some(r) = st.record(id) {
                r.lost = Some(why.clone());
            }
            self.after_failed_start(&mut st, replace, why)
        };
        self.follow(next);
    }

    /// Counts a failed start (already uncounted from `workers`) and decides what follows.
    fn after_failed_start(&self, st: &mut State, replace: bool, why: String) -> AfterFailedStart {
        st.start_failures += 1;
        let needed = st.workers < st.min
            || (self.config.scaling && st.queued_len() > 0 && st.workers < st.max);
        if !(replace && needed && st.intake == Intake::Open) {
            return AfterFailedStart::Nothing;
        }
        if st.start_failures < START_FAILURES_IN_A_ROW {
            st.reserve_worker();
            return AfterFailedStart::Retry;
        }
        if st.workers > 0 {
            let parked = st.idle.take_other(None);
            self.mirror_idle(st);
            return parked.map_or(AfterFailedStart::Nothing, AfterFailedStart::Wake);
        }
        st.start_failures = 0;
        let mut queued = st.queue.drain();
        self.mirror_top(st);
        for r in &st.records {
            queued.extend(r.held.drain()); // (none: no worker is alive to hold any)
        }
        AfterFailedStart::GiveUp(queued, why)
    }

    /// Does what [`after_failed_start`](Shared::after_failed_start) decided, outside the lock.
    fn follow(self: &Arc<Self>, next: AfterFailedStart) {
        match next {
            AfterFailedStart::Nothing => {}
            AfterFailedStart::Retry => {
                let _ = self.start_worker(None);
            }
            AfterFailedStart::Wake(w) => w.wake(),
            AfterFailedStart::GiveUp(queued, why) => {
                let n = queued.len();
                let why = format!("no worker could start ({why})");
                for q in queued {
                    q.job.fail(Error::WorkerLost(why.clone()));
                }
                if n > 0 {
                    // Ended by the pool but not by a shutdown: the report counts them completed.
                    self.work_ended(n, Ending::Ran);
                }
            }
        }
    }

    /// Joins the worker threads that have finished, noting a panic in the worker's record;
    /// with `detach`, lets go of the unfinished ones too.
    pub(crate) fn reap(&self, detach: bool) {
        let threads: Vec<(usize, JoinHandle<()>)> = {
            let mut st = lock(&self.state);
            st.records
                .iter_mut()
                .filter(|r| detach || r.thread.as_ref().is_some_and(JoinHandle::is_finished))
                .filter_map(|r| r.thread.take().map(|t| (r.id, t)))
                .collect()
        };
        for (id, thread) in threads {
            if !thread.is_finished() {
                continue; // detached
            }
            if let Err(panic) = thread.join() {
                let why = crate::runtime::task::take_panic_message(panic);
                if let Some(r) = lock(&self.state).record(id) {
                    r.lost.get_or_insert(why);
                }
            }
        }
    }
}
