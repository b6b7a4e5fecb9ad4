//! `ProcessPool`: works run in worker processes, over stdin/stdout pipes.
//!
//! # Layout
//!
//! | file | what it holds |
//! |---|---|
//! | `works.rs` | [`works!`](crate::works), [`Work`], [`Registry`]: named works and their runners |
//! | `frame.rs` | the frame envelope, the hellos, and the frame reader |
//! | `chunks.rs` | a `map`'s input cut into chunk frames, sent in batches |
//! | `worker.rs` | the worker side, run by [`serve_if_worker`]: its executor thread |
//! | `input.rs` | the worker's input thread: reads the protocol, obeys `TERMINATE`, the watchdog |
//! | `launch.rs` | a slot's command (`command`, `launcher`, `hosts`), starting one worker process and its threads |
//! | `conn/` | one live worker as the parent sees it: pipes, in-flight jobs (`mod.rs`), its writer (`write.rs`) and reader (`read.rs`) |
//! | `exit_status.rs` | how a launched process's end reads in a reason (signals, a shell's report) |
//! | `job.rs` | a remote job: its completion, cancel and result decoding |
//! | `slot.rs` | one worker index: [`SlotState`], [`SlotInfo`], the crash-loop breaker and its backoff |
//! | `shared.rs` | what everyone shares: routing calls, and a slot's hello and death |
//! | `supervisor.rs` | the supervisor thread: launches, retries, hello deadlines, shutdown |
//! | `builder.rs` | the builder |
//! | `mod.rs` | the pool and `serve_if_worker` |
//!
//! # Threads
//!
//! Each worker has a reader and a writer thread (see `conn/mod.rs` for why). One **supervisor**
//! thread per pool launches every worker, replaces dead ones after their slot's backoff, and
//! runs the shutdown. Launching from one long-lived thread matters on Linux: a worker the pool
//! starts directly asks for a parent-death signal, and the kernel sends it when the *thread*
//! that forked the worker exits, not the process.
//!
//! # What a user can rely on under faults
//!
//! - **A death at any stage is contained.** Before its hello, between its hello and its
//!   install, or while serving: the works routed to that worker end `WorkerLost`, the death is
//!   counted, and the slot gets a replacement. The reader that sees a hello installs the worker
//!   itself, so no death slips between the two. A graceful drop never waits for a dead worker.
//! - **The protocol is private.** The worker moves it to close-on-exec fds; fd 0 reads
//!   `/dev/null`, fd 1 writes to stderr. A work's prints and the programs it starts cannot read
//!   or write frames.
//! - **Kills reach the whole worker.** Each worker is launched as a process-group leader; a
//!   kill sends `TERMINATE` (handled on the worker's input thread, which never waits for a
//!   work: the only kill that crosses `ssh`/`srun`) and `SIGKILL`s the group (a shell without
//!   `exec`, the worker's own children). Every wait after a kill is bounded (`KILL_WAIT`).
//! - **A worker is dead when its protocol closes**, or when it says so. A launcher that forks
//!   and exits (`setsid -f`) is not a dead worker; reasons name the worker's own pid.
//! - **No orphans.** The worker's input thread ends the process when the input ends (the
//!   parent is gone), even while a plain work runs; a worker whose parent is the pool itself
//!   also asks for a parent-death signal.
//! - **Crash loops back off per slot** (see `slot.rs`): calls go to live slots; the pool fails
//!   calls at once only while every slot is broken and none is alive. A failed spawn for want
//!   of fds, processes or memory is not a crash.
//! - **Shutdown.** Calls accepted while a slot respawns run on the worker starting (which then
//!   gets a shutdown frame) or end `WorkerLost` on a graceful drop, never `ShutDown`;
//!   `shutdown_now` cancels every call that has not started.
//! - **Counts are checked.** A chunk's item count is bounded by what its bytes can hold before
//!   any work runs; a chunk result whose count differs from the chunk's is `Error::Wire`.
//!
//! Launcher forms that keep these: `sh -c 'exec ./app'`, `ssh host ./app --aplex-worker`,
//! `srun -u ./app` (without `-u`, srun line-buffers the worker's stdout: the hello's early line
//! break then makes a partial hello, and the error says so).
//!
//! # Across hosts
//!
//! - **A launcher per slot.** Slot `i`'s workers, its first and every replacement, come from
//!   `launcher(i)` (or the one `command`, or the `ssh` template of `hosts`), so a slot stays on
//!   its host. The pool puts `APLEX_WORKER=1` and `APLEX_WORKER_SLOT=i` in the command's
//!   environment; the worker puts its pid, host and slot in its hello ([`ProcessPool::slots`]).
//! - **A host down is a slot failing.** Its launcher exits (ssh: 255, "could not reach host")
//!   or its connection drops: the works in flight there end `WorkerLost` naming the slot and
//!   host, the slot backs off (capped at 30 s) and keeps trying, calls and `map` chunks go to
//!   live slots, and the slot rejoins when a worker says hello again. `min_ready(n)` lets
//!   `build` return with `n` slots up. A silent partition is noticed when `ssh` gives up
//!   (`ServerAliveInterval` × `ServerAliveCountMax`: 15 s with `hosts`).
//! - **Balancing is per slot.** Balancers see one [`Load`] per slot; `capacity` is that slot's
//!   `max_works` (`max_works_per_worker`, or `max_works_for(slot)`).
//!
//! # Ownership rules
//!
//! - `Shared` is owned by the pool, its maps, the supervisor and the reader threads. A slot
//!   (one per worker index) holds its live connection, or the one starting, or neither while
//!   it backs off; calls made meanwhile wait in the slot's backlog (or go to a live slot). The
//!   slot lock is taken before a connection's locks, never after; no two slot locks are held
//!   at once.
//! - A connection becomes its slot's on its hello, by its reader (`Shared::on_hello`). It is
//!   detached by whoever ends it: its reader (death), a caller (recycling after
//!   `max_works_per_child`), or the supervisor (shutdown). Only a death of the slot's current
//!   or starting connection asks for a replacement.
//! - Every job ends once (see `job.rs`); the slot's load counts jobs sent or waiting and not
//!   yet ended by a result, a cancel or a failure.

mod builder;
mod chunks;
mod conn;
mod exit_status;
mod frame;
mod input;
mod job;
mod launch;
mod shared;
mod slot;
mod supervisor;
mod worker;
pub mod works;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use self::builder::ProcessPoolBuilder;
use self::chunks::ChunkSource;
use self::conn::Conn;
use self::job::{decode_one, Pending, RemoteJob};
use self::launch::{HelloSender, Launched, Launcher};
use self::shared::Shared;
pub use self::slot::{SlotInfo, SlotState};
use self::supervisor::{Order, Supervisor};
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

/// The first argument that marks a process as a worker, in place of [`WORKER_ENV`]: for
/// launchers that do not pass the environment on, `ssh host ./app --aplex-worker` needs no
/// `env`, no `AcceptEnv`.
///
/// ```
/// assert_eq!(aplex::WORKER_ARG, "--aplex-worker");
/// ```
pub const WORKER_ARG: &str = "--aplex-worker";

/// The environment variable that tells a worker its slot index (`0`, `1`, …). The pool sets
/// it on every command it launches; a worker reports it in its hello, and a work may read it
/// for logs or placement.
///
/// ```
/// assert_eq!(aplex::WORKER_SLOT_ENV, "APLEX_WORKER_SLOT");
/// ```
pub const WORKER_SLOT_ENV: &str = "APLEX_WORKER_SLOT";

/// The environment variable that, when set in a worker, names its host in its hello (and in
/// [`SlotInfo::host`]) in place of the machine's host name: a pod or container name, say.
///
/// ```
/// assert_eq!(aplex::WORKER_HOST_ENV, "APLEX_WORKER_HOST");
/// ```
pub const WORKER_HOST_ENV: &str = "APLEX_WORKER_HOST";

/// The default largest frame: 256 MiB.
pub(crate) const DEFAULT_MAX_FRAME: usize = 256 << 20;
/// Default limit of works running at once in one worker.
const DEFAULT_MAX_WORKS: usize = 100;
/// Default time a new worker has to send its hello.
const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an idle worker has to exit after the shutdown frame before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Turns this process into a worker of `registry` when it was launched as one (the
/// [`WORKER_ENV`] marker is set to [`WORKER_ENV_VALUE`], or the first argument is
/// [`WORKER_ARG`]), and never returns then: the process exits when its parent is done with it.
/// Returns at once otherwise.
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
    let by_env = std::env::var_os(WORKER_ENV).is_some_and(|v| v == WORKER_ENV_VALUE);
    let by_arg = std::env::args_os().nth(1).is_some_and(|a| a == WORKER_ARG);
    if !by_env && !by_arg {
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

/// A pool of worker **processes**: aplex's `ProcessAsyncPoolExecutor`.
///
/// Works are the functions declared with [`works!`](crate::works); arguments and results cross
/// the pipes in the [`Wire`](crate::wire::Wire) format. Each worker runs aplex's executor, so
/// up to `max_works_per_worker` async works run at once in one process. Reasons to use
/// processes rather than threads: isolation (a crash, a leak or an `abort()` in C code takes
/// down one worker, not the program), memory hygiene (`max_works_per_child`), and reaching
/// other machines through the launcher command.
///
/// - A worker that dies (exit, signal, malformed frame), at any stage, fails the works in
///   flight on it with [`Error::WorkerLost`] and the reason, and is replaced; works are never
///   re-run. A slot whose workers keep dying before completing anything backs off (100 ms
///   doubling to 30 s) while the other slots serve; calls fail at once only while every slot
///   is crash-looping (see [`SlotState`]).
/// - A panic in a work is [`Error::Panicked`] for that work only.
/// - Workers never outlive the parent, behind any launcher: they exit at the end of their
///   input even in the middle of a plain work. Kills reach the launcher's whole process group
///   and cross `ssh` as a terminate frame.
/// - Dropping the pool shuts it down gracefully: accepted works finish, every worker exits
///   (or is killed after a grace period) and is reaped, every thread is joined.
/// - Across hosts: [`launcher`](ProcessPoolBuilder::launcher) gives each slot its command
///   (`ssh`, `srun -u`, `kubectl exec -i`), [`hosts`](ProcessPoolBuilder::hosts) does it
///   over ssh, [`min_ready`](ProcessPoolBuilder::min_ready) starts with some hosts down, and
///   [`slots`](ProcessPool::slots) tells which slot runs where and how it fares. A host
///   down loses only the works in flight on its slots.
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
    /// [`Handle::cancel`] resolves the handle `Cancelled` at once and sends a cancel frame: a
    /// running async work is dropped at its next `.await`, and a call queued in the worker is
    /// dropped unstarted — unless the worker reaches it before the frame arrives, in which case
    /// it runs and its result is discarded.
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
        let job = RemoteJob::new(
            id,
            Box::new(decode_one::<R>),
            cancellable,
            shared.kill_on_cancel,
            1,
        );
        let handle = Handle::new(job.clone());
        if let Err(e) = self.check(work) {
            job.fail(e);
            return handle;
        }
        // Room for the header and a small argument: no regrowth for the common call.
        let mut bytes = Vec::with_capacity(64);
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
    /// which stop in the worker at their next item. The map keeps a window of chunks in flight
    /// (about 4096 items' worth, at least eight chunks per worker), so a slow link's round trip
    /// is paid once per window, not per chunk; it sends chunks in batches of about 8192 items
    /// or a mebibyte (each worker's share of a batch in one write, answered in one write, the
    /// next batch sent before the current one is drained), so that tiny works do not each pay
    /// a wake-up of the worker and of the reader.
    ///
    /// Chunk size over a launcher: locally a round trip costs ~20–30 µs, through `ssh`
    /// ~100–150 µs (more across a network), through `srun -u` about as much. Pick chunks whose
    /// work takes well over one round trip: for works of a few µs, 256 to 1024 items; for
    /// works of a millisecond, 1 to 16, so the window still spreads over every slot. A chunk
    /// lost with its host loses all its items (`WorkerLost`), so do not make chunks larger
    /// than you would re-run. Likewise, an item whose argument or result a `Wire::decode`
    /// cannot read (an error, or a panic of a user's impl) fails with the rest of its chunk
    /// after it: past it, where the next item's bytes begin is unknown. The items before it
    /// keep their values.
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
        let refused = self.check(work).err().map(|e| e.to_string());
        let index = work.index() as u32;
        let mut source = ChunkSource::new(self.shared.clone(), iter.into_iter(), index, refused);
        Map::from_source(
            self.shared.slots.len(),
            Box::new(move |n: usize| source.next_chunk(n)),
        )
    }

    /// How many works each slot holds (sent to it and not yet answered), in slot order.
    pub fn loads(&self) -> Vec<usize> {
        self.detailed_loads().iter().map(Load::total).collect()
    }

    /// Each slot's load, in slot order: works sent to it and not yet answered (`running` up
    /// to the slot's capacity, the rest `queued`). `capacity` is per slot:
    /// `max_works_per_worker`, or what `max_works_for` gives that slot. The balancer sees the
    /// same loads, except that a slot without a live worker looks full.
    pub fn detailed_loads(&self) -> Vec<Load> {
        (0..self.shared.slots.len())
            .map(|i| self.shared.load(i))
            .collect()
    }

    /// How many workers the pool has.
    pub fn workers(&self) -> usize {
        self.shared.slots.len()
    }

    /// The process ids of the live workers, in worker order (a worker being replaced is
    /// missing). These are the workers' own pids, from their hellos: behind a launcher (`sh -c`
    /// without `exec`, `setsid -f`) they differ from the launched processes', and through
    /// `ssh` they are pids on the other host.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared
            .slots
            .iter()
            .filter_map(|s| lock(&s.state).conn.as_ref().and_then(|c| c.worker_pid()))
            .collect()
    }

    /// The state of each worker slot, in worker order: whether it serves, starts a worker,
    /// or backs off after failures (see [`SlotState`]).
    ///
    /// ```no_run
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// # let pool = aplex::ProcessPool::builder().workers(2).build(&works::WORKS).unwrap();
    /// use aplex::SlotState;
    /// assert_eq!(pool.slot_states(), vec![SlotState::Ready, SlotState::Ready]);
    /// ```
    pub fn slot_states(&self) -> Vec<SlotState> {
        self.shared.slots.iter().map(|s| s.phase()).collect()
    }

    /// Each slot's identity and record, in slot order: its host, its worker's own pid and
    /// its launcher's, its state, the works it completed and its restarts (see [`SlotInfo`]).
    /// For a pool across hosts, this is where to see which host is down.
    ///
    /// ```no_run
    /// # aplex::works! { pub mod works { pub fn pid(_u: ()) -> u32 { std::process::id() } } }
    /// # let pool = aplex::ProcessPool::builder().workers(1).build(&works::WORKS).unwrap();
    /// let worker = pool.call(&works::pid, ()).wait().unwrap();
    /// let slot = &pool.slots()[0];
    /// assert_eq!(slot.pid, Some(worker));
    /// assert_eq!((slot.completed, slot.restarts), (1, 0));
    /// ```
    pub fn slots(&self) -> Vec<SlotInfo> {
        let slots = &self.shared.slots;
        slots.iter().enumerate().map(|(i, s)| s.info(i)).collect()
    }

    /// Shuts down gracefully: new calls resolve `Error::ShutDown`; each worker gets a shutdown
    /// frame, finishes its works and exits (an idle worker that does not exit within a second
    /// is killed); every worker is reaped and every thread joined. Idempotent.
    pub fn shutdown(&self) {
        self.close(false);
    }

    /// Shuts down now: every call that has not ended resolves `Error::Cancelled` (those in
    /// flight, and those waiting for a worker to start), the workers are killed and reaped,
    /// every thread is joined.
    pub fn shutdown_now(&self) {
        self.close(true);
    }

    /// Shuts down gracefully, as [`shutdown`](ProcessPool::shutdown) does, and resolves once
    /// every accepted call has ended, every worker has exited (or been killed after its grace
    /// period) and been reaped, and every thread of the pool has been joined — without
    /// blocking the thread that awaits it, so it may be awaited under `block_on`, on a pool,
    /// or in another runtime's task. Dropping the future does not undo the shutdown (which
    /// has begun at its first poll); the pool's drop then waits for what is left.
    ///
    /// ```no_run
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// let pool = aplex::ProcessPool::builder().workers(2).build(&works::WORKS).unwrap();
    /// let pending = pool.call(&works::double, 21);
    /// aplex::block_on(pool.shutdown_async());
    /// assert_eq!(pending.wait(), Ok(42)); // an accepted call ends with its value
    /// assert_eq!(pool.call(&works::double, 1).wait(), Err(aplex::Error::ShutDown));
    /// ```
    pub async fn shutdown_async(&self) {
        self.begin_close(false);
        self.closed().await;
    }

    /// Resolves once the pool has been shut down (by [`shutdown`](ProcessPool::shutdown),
    /// [`shutdown_now`](ProcessPool::shutdown_now), `shutdown_async`, or the pool's drop on
    /// another thread) and that shutdown is complete: every call ended, every worker reaped,
    /// every thread joined. It does not start a shutdown itself, and does not block the
    /// thread that awaits it.
    ///
    /// ```no_run
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// use std::sync::Arc;
    ///
    /// let pool = Arc::new(aplex::ProcessPool::builder().build(&works::WORKS).unwrap());
    /// let closer = {
    ///     let pool = Arc::clone(&pool);
    ///     std::thread::spawn(move || pool.shutdown())
    /// };
    /// aplex::block_on(pool.closed());
    /// assert_eq!(pool.call(&works::double, 1).wait(), Err(aplex::Error::ShutDown));
    /// closer.join().unwrap();
    /// ```
    pub async fn closed(&self) {
        self.shared.closed.wait().await;
        // The supervisor has set the event as its last act: joining it takes no time.
        let supervisor = lock(&self.supervisor).take();
        if let Some(supervisor) = supervisor {
            let _ = supervisor.join();
        }
    }

    /// Begins the shutdown unless one has begun: no new calls, and the supervisor's order.
    fn begin_close(&self, now: bool) {
        if now {
            // Seen by a shutdown already under way, which then cancels and kills as well.
            self.shared.now.store(true, Ordering::Release);
        }
        if self.shared.open.swap(false, Ordering::AcqRel) {
            self.shared.order(Order::Shutdown { now });
        }
    }

    fn close(&self, now: bool) {
        self.begin_close(now);
        let supervisor = lock(&self.supervisor).take();
        match supervisor {
            Some(supervisor) => {
                let _ = supervisor.join();
            }
            // Another shutdown joins it; this one waits for the end all the same.
            None => self.shared.closed.wait_blocking(),
        }
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.close(false);
    }
}
