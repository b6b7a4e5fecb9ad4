//! `ProcessPool`: works run in worker processes, over stdin/stdout pipes.
//!
//! # Layout
//!
//! | file | what it holds |
//! |---|---|
//! | `works.rs` | [`works!`](crate::works), [`Work`], [`Registry`]: named works and their runners |
//! | `frame.rs` | the frame envelope, the hellos, and the frame reader |
//! | `worker.rs` | the worker side, run by [`serve_if_worker`] |
//! | `launch.rs` | starting one worker process and its threads |
//! | `conn.rs` | one live worker as the parent sees it: pipes, in-flight jobs, reader and writer |
//! | `job.rs` | a remote job: its completion, cancel and result decoding |
//! | `mod.rs` | the pool, its builder, and the supervisor thread |
//!
//! # Threads
//!
//! Each worker has a reader and a writer thread (see `conn.rs` for why). One **supervisor**
//! thread per pool starts every worker, replaces dead ones, and runs the shutdown. Starting
//! workers from one long-lived thread matters on Linux: a worker asks for a parent-death
//! signal, and the kernel sends it when the *thread* that forked the worker exits, not the
//! process. A pool built on a short-lived thread, or a replacement started by a reader thread
//! that is about to end, would lose its workers with that thread.
//!
//! # Ownership rules
//!
//! - `Shared` is owned by the pool, its maps, the supervisor and the reader threads. A slot
//!   (one per worker index) holds the live connection of that index, or none while a
//!   replacement starts; calls made meanwhile wait in the slot's backlog. The slot lock is
//!   taken before a connection's locks, never after.
//! - A connection is detached from its slot by whoever ends it: its reader (death), a caller
//!   (recycling after `max_works_per_child`), or the supervisor (shutdown). Only a reader that
//!   finds its connection still in the slot asks for a replacement.
//! - Every job ends once (see `job.rs`); the slot's load counts jobs sent or waiting and not
//!   yet ended by a result, a cancel or a failure.

mod conn;
mod frame;
mod job;
mod launch;
mod worker;
pub mod works;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use self::conn::Conn;
use self::job::{decode_chunk, decode_one, Pending, RemoteJob};
use self::launch::{await_hello, launch, Launched};
pub use self::works::{Registry, Work};
use super::map::Map;
use super::picker::Picker;
use super::Handle;
use crate::balance::{Balancer, Load, RoundRobin};
use crate::runtime::reactor::lock;
use crate::wire::Wire;
use crate::Error;

/// The name of the environment variable that marks a process as a worker.
///
/// The pool sets it (to [`WORKER_ENV_VALUE`]) on every command it launches. A launcher that
/// does not pass the environment through sets it on the far side:
/// `ssh host env APLEX_WORKER=1 ./app`.
///
/// ```
/// assert_eq!(format!("{}={}", aplex::WORKER_ENV, aplex::WORKER_ENV_VALUE), "APLEX_WORKER=1");
/// ```
pub const WORKER_ENV: &str = "APLEX_WORKER";

/// The value of [`WORKER_ENV`] that makes [`serve_if_worker`] serve.
///
/// ```
/// assert_eq!(aplex::WORKER_ENV_VALUE, "1");
/// ```
pub const WORKER_ENV_VALUE: &str = "1";

/// The default largest frame: 256 MiB.
pub(crate) const DEFAULT_MAX_FRAME: usize = 256 << 20;
/// Default limit of works running at once in one worker.
const DEFAULT_MAX_WORKS: usize = 100;
/// Default time a new worker has to send its hello.
const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(3);
/// Workers dying in a row before completing anything that break the pool.
const CRASH_LIMIT: usize = 3;
/// How long an idle worker has to exit after the shutdown frame before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Turns this process into a worker of `registry` when it was launched as one (the
/// [`WORKER_ENV`] marker is set), and never returns then: the process exits when its parent is
/// done with it. Returns at once otherwise.
///
/// Call it first in `main`, before anything prints to stdout or starts threads: a worker's
/// stdout carries the protocol (the worker moves it aside and points fd 1 at stderr, so
/// `println!` inside a work is safe).
///
/// ```no_run
/// aplex::works! {
///     pub mod works {
///         pub fn double(x: u64) -> u64 { x * 2 }
///     }
/// }
///
/// fn main() {
///     aplex::serve_if_worker(&works::WORKS);
///     // Only the parent gets here.
///     let pool = aplex::ProcessPool::builder().workers(2).build(&works::WORKS).unwrap();
///     assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
/// }
/// ```
pub fn serve_if_worker(registry: &Registry) {
    if std::env::var_os(WORKER_ENV).is_none_or(|v| v != WORKER_ENV_VALUE) {
        return;
    }
    // Programs a work starts are not workers.
    std::env::remove_var(WORKER_ENV);
    let code = match worker::serve(registry) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("aplex worker {}: {e}", std::process::id());
            1
        }
    };
    std::process::exit(code);
}

/// One worker index of the pool.
struct Slot {
    /// Works sent to this index (or waiting for it) and not yet ended.
    load: Arc<AtomicUsize>,
    state: Mutex<SlotState>,
}

struct SlotState {
    /// The live worker, or `None` while a replacement starts.
    conn: Option<Arc<Conn>>,
    /// Calls made while there was no live worker: job id, job, frame.
    backlog: Vec<(u64, Arc<dyn Pending>, Vec<u8>)>,
}

/// What the supervisor thread is asked to do.
enum Order {
    /// Start every worker; report when all said hello (or the first failure).
    Start(mpsc::Sender<Result<(), Error>>),
    /// Start a replacement for slot `i`.
    Respawn(usize),
    /// Shut down; `now` cancels in-flight works and kills the workers.
    Shutdown { now: bool },
}

/// A started worker's connection, and its reader and writer threads.
type Started = (Arc<Conn>, [JoinHandle<()>; 2]);

/// What the pool, its maps, the supervisor and the reader threads share.
pub(crate) struct Shared {
    names: Vec<&'static str>,
    /// Which works are async (cancellable by a frame).
    asyncs: Vec<bool>,
    max_works: usize,
    max_frame: usize,
    max_per_child: usize,
    kill_on_cancel: bool,
    shutdown_timeout: Option<Duration>,
    slots: Vec<Slot>,
    picker: Picker,
    open: AtomicBool,
    /// Why the pool stopped replacing workers, once it did.
    broken: Mutex<Option<String>>,
    /// Workers that died in a row before completing anything.
    crashes: AtomicUsize,
    next_id: AtomicU64,
    orders: Mutex<mpsc::Sender<Order>>,
    /// Every started worker's connection and threads, until shutdown joins them.
    started: Mutex<Vec<Started>>,
}

impl Shared {
    fn load(&self, i: usize) -> Load {
        // ORDERING: Relaxed: loads are a hint for balancing.
        let n = self.slots[i].load.load(Ordering::Relaxed);
        let running = n.min(self.max_works);
        Load {
            running,
            queued: n - running,
            capacity: self.max_works,
        }
    }

    fn order(&self, order: Order) {
        let _ = lock(&self.orders).send(order);
    }

    fn broken(&self) -> Option<Error> {
        lock(&self.broken)
            .as_ref()
            .map(|why| Error::WorkerLost(format!("the pool is broken: {why}")))
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a job to the worker the balancer picks (or fails it).
    fn submit(&self, hint: Option<u64>, id: u64, job: Arc<dyn Pending>, frame: Vec<u8>) {
        if !self.open.load(Ordering::Acquire) {
            job.fail(Error::ShutDown);
            return;
        }
        if let Some(e) = self.broken() {
            job.fail(e);
            return;
        }
        let i = self.picker.pick(
            self.slots.len(),
            |i| self.load(i),
            hint,
            |i| {
                self.slots[i].load.fetch_add(1, Ordering::Relaxed);
            },
        );
        let slot = &self.slots[i];
        let mut state = lock(&slot.state);
        let refusal = if !self.open.load(Ordering::Acquire) {
            Some(Error::ShutDown)
        } else {
            self.broken()
        };
        if let Some(e) = refusal {
            drop(state);
            slot.load.fetch_sub(1, Ordering::Relaxed);
            job.fail(e);
            return;
        }
        let Some(conn) = state.conn.clone() else {
            state.backlog.push((id, job, frame));
            return;
        };
        conn.track(id, job);
        // Alone in flight: write it now, on this thread, for the shortest round trip.
        let direct = slot.load.load(Ordering::Relaxed) <= 1;
        conn.send(&frame, direct);
        let sent = conn.sent.fetch_add(1, Ordering::Relaxed) + 1;
        if self.max_per_child > 0 && sent >= self.max_per_child {
            // Recycle: this worker finishes what it has and exits; a new one takes the slot.
            state.conn = None;
            conn.retired.store(true, Ordering::Relaxed);
            let mut bytes = Vec::new();
            frame::empty(&mut bytes, frame::SHUTDOWN, 0);
            conn.send(&bytes, false);
            drop(state);
            self.order(Order::Respawn(i));
        }
    }

    /// A worker's reader saw its end: fail its works, and replace it if it was current.
    fn on_death(&self, conn: &Arc<Conn>, why: String) {
        let was_current = {
            let mut state = lock(&self.slots[conn.index].state);
            let current = state.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn));
            if current {
                state.conn = None;
            }
            current
        };
        for job in conn.drain() {
            job.fail(Error::WorkerLost(why.clone()));
        }
        if !was_current || conn.retired.load(Ordering::Relaxed) {
            return;
        }
        if !conn.was_killed() {
            if conn.completed.load(Ordering::Relaxed) == 0 {
                let crashes = self.crashes.fetch_add(1, Ordering::Relaxed) + 1;
                if crashes >= CRASH_LIMIT {
                    self.break_pool(format!(
                        "{crashes} workers in a row died before completing a work; the last: {why}"
                    ));
                    return;
                }
            } else {
                self.crashes.store(0, Ordering::Relaxed);
            }
        }
        if self.open.load(Ordering::Acquire) {
            self.order(Order::Respawn(conn.index));
        }
    }

    /// Stops replacing workers; fails the calls waiting for one, and every new call.
    fn break_pool(&self, why: String) {
        lock(&self.broken).get_or_insert(why);
        let Some(error) = self.broken() else { return };
        for slot in &self.slots {
            self.fail_backlog(slot, &error);
        }
    }

    fn fail_backlog(&self, slot: &Slot, error: &Error) {
        let backlog = std::mem::take(&mut lock(&slot.state).backlog);
        slot.load.fetch_sub(backlog.len(), Ordering::Relaxed);
        for (_, job, _) in backlog {
            job.fail(copy_error(error));
        }
    }

    /// Makes a started worker the worker of its slot and sends it the slot's backlog.
    fn install(&self, launched: Launched) {
        let conn = launched.conn.clone();
        let slot = &self.slots[conn.index];
        {
            let mut state = lock(&slot.state);
            if self.open.load(Ordering::Acquire) {
                conn.installed.store(true, Ordering::Relaxed);
                state.conn = Some(conn.clone());
                let mut bytes = Vec::new();
                for (id, job, frame) in std::mem::take(&mut state.backlog) {
                    if job.is_done() {
                        slot.load.fetch_sub(1, Ordering::Relaxed);
                    } else {
                        conn.track(id, job);
                        bytes.extend_from_slice(&frame);
                        conn.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !bytes.is_empty() {
                    conn.send(&bytes, false);
                }
            }
        }
        self.keep(launched);
    }

    /// Keeps a started worker's threads for shutdown to join; joins those already done.
    fn keep(&self, launched: Launched) {
        let mut started = lock(&self.started);
        let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut *started)
            .into_iter()
            .partition(|(_, [r, w])| r.is_finished() && w.is_finished());
        *started = live;
        started.push((launched.conn, launched.threads));
        drop(started);
        for (_, [r, w]) in done {
            let _ = r.join();
            let _ = w.join();
        }
    }
}

/// A copy of an error, for every job a failure ends.
fn copy_error(e: &Error) -> Error {
    match e {
        Error::WorkerLost(m) => Error::WorkerLost(m.clone()),
        Error::ShutDown => Error::ShutDown,
        Error::Cancelled => Error::Cancelled,
        other => Error::WorkerLost(other.to_string()),
    }
}

/// The supervisor thread: starts, replaces and finally stops the workers.
struct Supervisor {
    shared: Arc<Shared>,
    command: Command,
    hello_timeout: Duration,
    /// Replacements to try again, and when.
    retries: Vec<(Instant, usize)>,
}

impl Supervisor {
    fn run(mut self, orders: mpsc::Receiver<Order>) {
        loop {
            let next_retry = self.retries.iter().map(|r| r.0).min();
            let order = match next_retry {
                None => orders
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(at) => orders.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match order {
                Ok(Order::Start(reply)) => {
                    let result = self.start_all();
                    let _ = reply.send(result);
                }
                Ok(Order::Respawn(i)) => self.respawn(i),
                Ok(Order::Shutdown { now }) => return self.shutdown(now),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    let (due, later): (Vec<_>, Vec<_>) =
                        self.retries.drain(..).partition(|r| r.0 <= now);
                    self.retries = later;
                    for (_, i) in due {
                        self.respawn(i);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.shutdown(true),
            }
        }
    }

    fn launch(&mut self, i: usize) -> Result<Launched, Error> {
        let load = self.shared.slots[i].load.clone();
        launch(&mut self.command, i, load, &self.shared)
    }

    fn start_all(&mut self) -> Result<(), Error> {
        let mut launched = Vec::new();
        let mut failure = None;
        for i in 0..self.shared.slots.len() {
            match self.launch(i) {
                Ok(l) => launched.push(l),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let deadline = Instant::now() + self.hello_timeout;
        for l in &launched {
            if failure.is_some() {
                break;
            }
            if let Err(e) = await_hello(l, deadline) {
                failure = Some(e);
            }
        }
        for l in launched {
            if failure.is_some() {
                l.conn.kill("stopped: the pool failed to start".to_string());
                self.shared.keep(l);
            } else {
                self.shared.install(l);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    fn respawn(&mut self, i: usize) {
        let shared = self.shared.clone();
        if !shared.open.load(Ordering::Acquire) {
            return;
        }
        if let Some(e) = shared.broken() {
            shared.fail_backlog(&shared.slots[i], &e);
            return;
        }
        let started = self.launch(i).and_then(|l| {
            let deadline = Instant::now() + self.hello_timeout;
            match await_hello(&l, deadline) {
                Ok(_) => Ok(l),
                Err(e) => {
                    shared.keep(l);
                    Err(e)
                }
            }
        });
        match started {
            Ok(l) => shared.install(l),
            Err(e) => {
                let crashes = shared.crashes.fetch_add(1, Ordering::Relaxed) + 1;
                if crashes >= CRASH_LIMIT {
                    shared.break_pool(format!(
                        "{crashes} workers in a row failed to start or died before completing a work; the last: {e}"
                    ));
                } else {
                    let backoff = Duration::from_millis(50 << crashes.min(5));
                    self.retries.push((Instant::now() + backoff, i));
                }
            }
        }
    }

    fn shutdown(self, now: bool) {
        let shared = &self.shared;
        shared.open.store(false, Ordering::Release);
        let mut shutdown_frame = Vec::new();
        frame::empty(&mut shutdown_frame, frame::SHUTDOWN, 0);
        for slot in &shared.slots {
            let conn = lock(&slot.state).conn.take();
            shared.fail_backlog(slot, &Error::ShutDown);
            if let Some(conn) = conn {
                conn.send(&shutdown_frame, false);
            }
        }
        let started = std::mem::take(&mut *lock(&shared.started));
        if now {
            for (conn, _) in &started {
                for job in conn.drain() {
                    job.fail(Error::Cancelled);
                }
                conn.kill("killed by shutdown_now".to_string());
            }
        }
        let begun = Instant::now();
        for (conn, [reader, writer]) in started {
            let mut idle_since: Option<Instant> = None;
            while !reader.is_finished() {
                if conn.in_flight() == 0 {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > EXIT_GRACE {
                        conn.kill("killed: it did not exit after the shutdown frame".to_string());
                    }
                } else {
                    idle_since = None;
                }
                if shared.shutdown_timeout.is_some_and(|t| begun.elapsed() > t) {
                    conn.kill("killed: the pool's shutdown timed out".to_string());
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            let _ = reader.join();
            conn.close();
            let _ = writer.join();
        }
    }
}

/// A pool of worker **processes**: aplex's `ProcessAsyncPoolExecutor`.
///
/// Works are the functions declared with [`works!`](crate::works); arguments and results cross
/// the pipes in the [`Wire`](crate::wire::Wire) format. Each worker runs aplex's executor, so
/// up to `max_works_per_worker` async works run at once in one process. Reasons to use
/// processes rather than threads: isolation (a crash, a leak or an `abort()` in C code takes
/// down one worker, not the program), memory hygiene (`max_works_per_child`), and reaching
/// other machines through the launcher command.
///
/// - A worker that dies (exit, signal, malformed frame) fails the works in flight on it with
///   [`Error::WorkerLost`] and the reason, and is replaced; works are never re-run. If
///   workers keep dying before completing anything (three in a row), the pool
///   stops replacing them and fails new works with a `WorkerLost` that says so.
/// - A panic in a work is [`Error::Panicked`] for that work only.
/// - Workers never outlive the parent: they exit at the end of their stdin and, on Linux,
///   are killed by the kernel when the parent dies.
/// - Dropping the pool shuts it down gracefully: accepted works finish, every worker exits
///   (or is killed after a grace period) and is reaped, every thread is joined.
///
/// The example is `no_run` because a worker must be a program whose `main` calls
/// [`serve_if_worker`] first, which a doc test is not.
///
/// ```no_run
/// use std::time::Duration;
///
/// aplex::works! {
///     pub mod works {
///         pub fn double(x: u64) -> u64 { x * 2 }
///         pub async fn nap(ms: u64) -> u64 {
///             aplex::time::sleep(Duration::from_millis(ms)).await;
///             ms
///         }
///     }
/// }
///
/// fn main() -> Result<(), aplex::Error> {
///     aplex::serve_if_worker(&works::WORKS);
///     let pool = aplex::ProcessPool::builder().workers(2).build(&works::WORKS)?;
///     assert_eq!(pool.call(&works::double, 21).wait()?, 42);
///     assert_eq!(aplex::block_on(pool.call(&works::nap, 5))?, 5);
///     let doubled: Vec<u64> = pool
///         .map(&works::double, 0..1000)
///         .chunk_size(100)
///         .map(Result::unwrap)
///         .collect();
///     assert_eq!(doubled[999], 1998);
///     Ok(())
/// }
/// ```
pub struct ProcessPool {
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPool")
            .field("workers", &self.shared.slots.len())
            .field("loads", &self.loads())
            .finish()
    }
}

impl ProcessPool {
    /// A builder to configure a pool.
    ///
    /// ```no_run
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// let pool = aplex::ProcessPool::builder()
    ///     .workers(4)
    ///     .max_works_per_worker(50)
    ///     .balancer(aplex::balance::LeastLoaded::new())
    ///     .build(&works::WORKS)
    ///     .unwrap();
    /// ```
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::default()
    }

    /// Runs `work(arg)` in a worker. The handle resolves to the work's value, or an
    /// [`Error`]: `Panicked`, `Remote`, `Wire` (the argument or result could not cross, or a
    /// frame is over the maximum), `WorkerLost`, `Cancelled`, `ShutDown`.
    ///
    /// ```no_run
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// # let pool = aplex::ProcessPool::builder().build(&works::WORKS).unwrap();
    /// assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
    /// ```
    pub fn call<A: Wire, R: Wire + Send + 'static>(&self, work: &Work<A, R>, arg: A) -> Handle<R> {
        self.call_inner(None, work, &arg)
    }

    /// Like [`call`](ProcessPool::call), passing `hint` to the balancer (with
    /// [`KeyAffinity`](crate::balance::KeyAffinity), calls with the same hint go to the same
    /// worker).
    pub fn call_with<A: Wire, R: Wire + Send + 'static>(
        &self,
        hint: u64,
        work: &Work<A, R>,
        arg: A,
    ) -> Handle<R> {
        self.call_inner(Some(hint), work, &arg)
    }

    fn call_inner<A: Wire, R: Wire + Send + 'static>(
        &self,
        hint: Option<u64>,
        work: &Work<A, R>,
        arg: &A,
    ) -> Handle<R> {
        let shared = &self.shared;
        let id = shared.next_id();
        let cancellable = self.is_async(work);
        let job = RemoteJob::new(id, decode_one::<R>, cancellable, shared.kill_on_cancel);
        let handle = Handle::new(job.clone());
        if let Err(e) = self.check(work) {
            job.fail(e);
            return handle;
        }
        let mut bytes = Vec::new();
        let start = frame::begin(&mut bytes, frame::CALL, id);
        (work.index() as u32).encode(&mut bytes);
        arg.encode(&mut bytes);
        match frame::finish(&mut bytes, start, shared.max_frame) {
            Ok(()) => shared.submit(hint, id, job, bytes),
            Err(e) => {
                job.fail(Error::Wire(e));
            }
        }
        handle
    }

    fn check<A, R>(&self, work: &Work<A, R>) -> Result<(), Error> {
        if self.shared.names.get(work.index()) == Some(&work.name()) {
            Ok(())
        } else {
            Err(Error::Wire(format!(
                "the work {:?} is not in this pool's registry",
                work.name()
            )))
        }
    }

    fn is_async<A, R>(&self, work: &Work<A, R>) -> bool {
        self.shared
            .asyncs
            .get(work.index())
            .copied()
            .unwrap_or(false)
    }

    /// Applies `work` to every item of `iter` in the workers; results come in input order.
    ///
    /// With [`chunk_size(n)`](Map::chunk_size), `n` items travel in one frame and their `n`
    /// results come back in one: the way to run many tiny works. A chunk's items run one
    /// after the other in one worker; a [`timeout`](Map::timeout) cancels the chunks left,
    /// which stop in the worker at their next item.
    ///
    /// ```no_run
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// # let pool = aplex::ProcessPool::builder().build(&works::WORKS).unwrap();
    /// let out: Vec<u64> = pool
    ///     .map(&works::double, 1..=4)
    ///     .chunk_size(2)
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(out, vec![2, 4, 6, 8]);
    /// ```
    pub fn map<A, R, I>(&self, work: &Work<A, R>, iter: I) -> Map<R>
    where
        A: Wire + Send + 'static,
        R: Wire + Send + 'static,
        I: IntoIterator<Item = A>,
        I::IntoIter: Send + 'static,
    {
        let shared = self.shared.clone();
        let mut iter = iter.into_iter().peekable();
        let checked = self.check(work).err().map(|e| e.to_string());
        let index = work.index() as u32;
        Map::from_source(
            shared.slots.len(),
            Box::new(move |n: usize| {
                iter.peek()?;
                let id = shared.next_id();
                let job = RemoteJob::new(id, decode_chunk::<R>, true, false);
                let handle = Handle::new(job.clone() as Arc<dyn crate::pool::cell::Outcome<_>>);
                let mut bytes = Vec::new();
                let start = frame::begin(&mut bytes, frame::CHUNK, id);
                index.encode(&mut bytes);
                let count_at = bytes.len();
                0u64.encode(&mut bytes);
                let mut len = 0usize;
                for item in iter.by_ref().take(n) {
                    item.encode(&mut bytes);
                    len += 1;
                }
                bytes[count_at..count_at + 8].copy_from_slice(&(len as u64).to_le_bytes());
                if let Some(e) = &checked {
                    job.fail(Error::Wire(e.clone()));
                } else {
                    match frame::finish(&mut bytes, start, shared.max_frame) {
                        Ok(()) => shared.submit(None, id, job, bytes),
                        Err(e) => {
                            job.fail(Error::Wire(e));
                        }
                    }
                }
                Some((len, handle))
            }),
        )
    }

    /// Each worker's load, in worker order: works sent to it and not yet answered
    /// (`running` up to `max_works_per_worker`, the rest `queued`).
    pub fn loads(&self) -> Vec<Load> {
        (0..self.shared.slots.len())
            .map(|i| self.shared.load(i))
            .collect()
    }

    /// How many workers the pool has.
    pub fn workers(&self) -> usize {
        self.shared.slots.len()
    }

    /// The process ids of the live workers, in worker order (a worker being replaced is
    /// missing). With a launcher command, these are the launched processes.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared
            .slots
            .iter()
            .filter_map(|s| lock(&s.state).conn.as_ref().map(|c| c.pid))
            .collect()
    }

    /// Shuts down gracefully: new calls resolve `Error::ShutDown`; each worker gets a shutdown
    /// frame, finishes its works and exits (an idle worker that does not exit within a second
    /// is killed); every worker is reaped and every thread joined. Idempotent.
    pub fn shutdown(&self) {
        self.close(false);
    }

    /// Shuts down now: works in flight resolve `Error::Cancelled`, the workers are killed and
    /// reaped, every thread is joined.
    pub fn shutdown_now(&self) {
        self.close(true);
    }

    fn close(&self, now: bool) {
        let Some(supervisor) = lock(&self.supervisor).take() else {
            return;
        };
        self.shared.open.store(false, Ordering::Release);
        self.shared.order(Order::Shutdown { now });
        let _ = supervisor.join();
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.close(false);
    }
}

/// Configures a [`ProcessPool`].
///
/// ```no_run
/// use std::process::Command;
/// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
/// // Any command that runs the worker with stdin and stdout attached works: `ssh`, `srun`,
/// // a container exec. The pool adds its marker to the command's environment.
/// let exe = std::env::current_exe().unwrap();
/// let mut via_shell = Command::new("sh");
/// via_shell.arg("-c").arg(format!("exec '{}'", exe.display()));
/// let pool = aplex::ProcessPool::builder()
///     .workers(2)
///     .command(via_shell)
///     .max_frame(64 << 20)
///     .max_works_per_child(10_000)
///     .kill_on_cancel(true)
///     .build(&works::WORKS)
///     .unwrap();
/// ```
pub struct ProcessPoolBuilder {
    workers: Option<usize>,
    max_works: usize,
    balancer: Box<dyn Balancer>,
    command: Option<Command>,
    max_frame: usize,
    max_per_child: usize,
    kill_on_cancel: bool,
    hello_timeout: Duration,
    shutdown_timeout: Option<Duration>,
}

impl std::fmt::Debug for ProcessPoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPoolBuilder")
            .field("workers", &self.workers)
            .field("max_works_per_worker", &self.max_works)
            .field("command", &self.command)
            .field("max_frame", &self.max_frame)
            .field("max_works_per_child", &self.max_per_child)
            .field("kill_on_cancel", &self.kill_on_cancel)
            .finish_non_exhaustive()
    }
}

impl Default for ProcessPoolBuilder {
    fn default() -> ProcessPoolBuilder {
        ProcessPoolBuilder {
            workers: None,
            max_works: DEFAULT_MAX_WORKS,
            balancer: Box::new(RoundRobin::new()),
            command: None,
            max_frame: DEFAULT_MAX_FRAME,
            max_per_child: 0,
            kill_on_cancel: false,
            hello_timeout: DEFAULT_HELLO_TIMEOUT,
            shutdown_timeout: None,
        }
    }
}

impl ProcessPoolBuilder {
    /// How many worker processes (default: the available cores).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// How many async works run at once in one worker (default 100); more wait in the
    /// worker. Plain works run one at a time, as they come.
    pub fn max_works_per_worker(mut self, n: usize) -> Self {
        self.max_works = n;
        self
    }

    /// The balancer that picks a worker for each call (default [`RoundRobin`]).
    pub fn balancer(mut self, balancer: impl Balancer + 'static) -> Self {
        self.balancer = Box::new(balancer);
        self
    }

    /// The command that starts a worker (default: this executable again, with no
    /// arguments). The pool sets [`WORKER_ENV`] in its environment and attaches stdin and
    /// stdout; stderr is inherited. The program must call [`serve_if_worker`] with the same
    /// registry first in `main`.
    pub fn command(mut self, command: Command) -> Self {
        self.command = Some(command);
        self
    }

    /// The largest frame, in bytes, either side may send (default 256 MiB). A call whose
    /// argument makes a larger frame resolves `Error::Wire` without being sent; a result over
    /// it comes back as `Error::Remote`; a frame claiming more is a protocol error, never an
    /// allocation.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Replaces each worker after `n` works were sent to it (Python's `max_tasks_per_child`;
    /// default: never). The old worker finishes its works, then exits.
    pub fn max_works_per_child(mut self, n: usize) -> Self {
        self.max_per_child = n;
        self
    }

    /// Makes [`Handle::cancel`] of a running **plain** work kill the worker running it
    /// (default false: a plain work cannot be interrupted, and its cancel returns false).
    /// That handle resolves `Cancelled`; the other works in flight on that worker resolve
    /// `WorkerLost`; a replacement starts. Async works are cancelled by a frame either way.
    pub fn kill_on_cancel(mut self, yes: bool) -> Self {
        self.kill_on_cancel = yes;
        self
    }

    /// How long a new worker has to send its hello (default 3 s); a worker that does not is
    /// killed, and `build` fails with `Error::Wire`.
    pub fn hello_timeout(mut self, timeout: Duration) -> Self {
        self.hello_timeout = timeout;
        self
    }

    /// Bounds a graceful shutdown: workers still running works after `timeout` are killed
    /// (default: wait for accepted works).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Starts the workers; returns once every one of them said hello.
    ///
    /// # Errors
    ///
    /// - `Error::Io` (`InvalidInput`) for zero workers or zero `max_works_per_worker`; the
    ///   OS error if the command cannot be started (a missing binary fails at once);
    /// - `Error::Wire` if a worker's hello does not come in time or does not match: another
    ///   program (`cat` echoes, `true` exits), a different protocol version, other works.
    pub fn build(self, registry: &Registry) -> Result<ProcessPool, Error> {
        let workers = match self.workers {
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if workers == 0 || self.max_works == 0 {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a process pool needs at least one worker and max_works_per_worker >= 1",
            )));
        }
        let mut command = match self.command {
            Some(c) => c,
            None => Command::new(std::env::current_exe()?),
        };
        command.env(WORKER_ENV, WORKER_ENV_VALUE);
        let (tx, rx) = mpsc::channel();
        let entries = registry.entries();
        let shared = Arc::new(Shared {
            names: entries.iter().map(|e| e.name).collect(),
            asyncs: entries
                .iter()
                .map(|e| matches!(e.runner, works::Runner::Async(_)))
                .collect(),
            max_works: self.max_works,
            max_frame: self.max_frame,
            max_per_child: self.max_per_child,
            kill_on_cancel: self.kill_on_cancel,
            shutdown_timeout: self.shutdown_timeout,
            slots: (0..workers)
                .map(|_| Slot {
                    load: Arc::new(AtomicUsize::new(0)),
                    state: Mutex::new(SlotState {
                        conn: None,
                        backlog: Vec::new(),
                    }),
                })
                .collect(),
            picker: Picker::new(self.balancer),
            open: AtomicBool::new(true),
            broken: Mutex::new(None),
            crashes: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            orders: Mutex::new(tx),
            started: Mutex::new(Vec::new()),
        });
        let supervisor = Supervisor {
            shared: shared.clone(),
            command,
            hello_timeout: self.hello_timeout,
            retries: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("aplex-proc-supervisor".to_string())
            .spawn(move || supervisor.run(rx))?;
        let pool = ProcessPool {
            shared,
            supervisor: Mutex::new(Some(thread)),
        };
        let (reply_tx, reply_rx) = mpsc::channel();
        pool.shared.order(Order::Start(reply_tx));
        match reply_rx.recv() {
            Ok(Ok(())) => Ok(pool),
            Ok(Err(e)) => {
                pool.shutdown_now();
                Err(e)
            }
            Err(_) => {
                pool.shutdown_now();
                Err(Error::Io(std::io::Error::other(
                    "the pool's supervisor stopped",
                )))
            }
        }
    }
}
