//! One live worker process, as the parent sees it: its pipes, its in-flight jobs, and the two
//! threads that move its frames (`write.rs`: the outbox and the writer thread; `read.rs`: the
//! reader thread and the death path).
//!
//! # Why a reader and a writer thread per worker
//!
//! Blocking I/O on a thread of its own per pipe direction keeps every worker independent: a
//! 64 MiB frame to or from one worker occupies only that worker's threads, never another's or
//! the caller's, and the code is straight-line. Two threads per worker are cheap next to the
//! worker process itself. (One I/O thread polling every pipe would save threads but make one
//! slow transfer everyone's problem.)
//!
//! **Killing.** A kill sends a `TERMINATE` frame (the only kill that crosses `ssh` or `srun`)
//! and `SIGKILL` to the launched process's group: each worker is launched as the leader of a
//! process group of its own, so a launcher that does not `exec` (`sh -c`) is killed with the
//! worker behind it and everything either started. The group is signalled only while its
//! leader is not reaped, so its id cannot belong to anyone else.
//!
//! # Ownership rules
//!
//! The pool's slot, the two threads and the supervisor hold `Arc<Conn>`; jobs hold a `Weak`.
//! `in_flight` is filled by callers and emptied by the reader (results), by cancels and by the
//! death path; whoever removes a job decrements the slot's load. The `Child` is reaped by the
//! reader thread only; `kill` may signal it until then.

mod read;
mod write;

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::io::AsRawFd;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use self::write::Outbox;
use super::exit_status::describe;
use super::frame;
use super::job::Pending;
use crate::runtime::reactor::lock;
use crate::sys::process::kill_group;
use crate::Error;

/// How long a launched process whose output ended may take to exit on its own, so that its
/// exit status (ssh's 255, the remote worker's own code) tells why, before it is killed.
/// `ssh` closes its output when the remote side closes, a moment before it exits.
const EXIT_LINGER: Duration = Duration::from_millis(200);
/// How long the reader waits for the end of a killed worker's output before giving it up.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(2);

/// A worker process and its pipes.
pub(crate) struct Conn {
    /// The pool slot this worker serves.
    pub(crate) index: usize,
    /// The pid of the launched process (the worker itself, unless a launcher stands between),
    /// and the id of the process group it leads.
    pub(crate) launcher_pid: u32,
    /// The worker's own pid, from its hello (0 until then; on another host with `ssh`).
    worker_pid: AtomicU32,
    /// The worker's host: the one its launcher targets (`hosts`), then the one its hello names.
    host: Mutex<Option<String>>,
    /// The launched program's name, for reasons (`ssh`, `srun`, `sh`).
    program: String,
    /// Bytes read before a whole hello: some, and then nothing, means a launcher that holds
    /// the worker's output back (line buffering).
    bytes_before_hello: AtomicUsize,
    /// When it was launched (for its hello deadline).
    launched_at: Instant,
    stdin: File,
    /// The stdin pipe is non-blocking, so callers may write to it directly.
    nonblocking: bool,
    out: Mutex<Outbox>,
    out_ready: Condvar,
    in_flight: Mutex<HashMap<u64, Arc<dyn Pending>, BuildHasherDefault<IdHasher>>>,
    /// The slot's load: works sent and not yet answered, cancelled or failed.
    load: Arc<AtomicUsize>,
    child: Mutex<Option<Child>>,
    /// Why the pool killed this worker, and when, if it did.
    lost: Mutex<Option<(String, Instant)>>,
    /// The reader has read all it will: the worker's output ended (or was given up).
    output_ended: AtomicBool,
    /// The reader is done: the worker is dead to the pool.
    over: AtomicBool,
    /// Works sent (for `max_works_per_child`).
    pub(crate) sent: AtomicUsize,
    /// Results received.
    pub(crate) completed: AtomicUsize,
    /// Replaced on purpose (recycled): its end needs no replacement.
    pub(crate) retired: AtomicBool,
    /// It said a valid hello.
    greeted: AtomicBool,
    pub(crate) max_frame: usize,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("index", &self.index)
            .field("launcher_pid", &self.launcher_pid)
            .field("worker_pid", &self.worker_pid())
            .finish_non_exhaustive()
    }
}

/// Hashes the pool's job ids for the in-flight table: one multiply, not SipHash (two hashes
/// a call were a tenth of a tiny call's instructions). The ids are the pool's own, counted up
/// from one, so no one can choose keys that collide; a worker only names ids to look up.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        // Fibonacci hashing: consecutive ids spread over the high bits the table uses.
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// The outcome of the hello exchange, sent by the reader to whoever started the worker.
pub(crate) type HelloResult = Result<u32, Error>;

impl Conn {
    /// Wraps a spawned child whose stdin and stdout were taken out.
    pub(crate) fn new(
        index: usize,
        (host, program): (Option<String>, String),
        child: Child,
        stdin: File,
        load: Arc<AtomicUsize>,
        max_frame: usize,
    ) -> Conn {
        let nonblocking = crate::sys::net::set_nonblocking(stdin.as_raw_fd()).is_ok();
        Conn {
            index,
            launcher_pid: child.id(),
            worker_pid: AtomicU32::new(0),
            host: Mutex::new(host),
            program,
            bytes_before_hello: AtomicUsize::new(0),
            launched_at: Instant::now(),
            stdin,
            nonblocking,
            out: Mutex::new(Outbox {
                buf: Vec::new(),
                writing: false,
                waiting: false,
                closed: false,
            }),
            out_ready: Condvar::new(),
            in_flight: Mutex::new(HashMap::default()),
            load,
            child: Mutex::new(Some(child)),
            lost: Mutex::new(None),
            output_ended: AtomicBool::new(false),
            over: AtomicBool::new(false),
            sent: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            greeted: AtomicBool::new(false),
            max_frame,
        }
    }

    /// Registers a job as in flight here (the slot's load already counts it).
    pub(crate) fn track(self: &Arc<Self>, id: u64, job: Arc<dyn Pending>) {
        job.sent_to(self);
        lock(&self.in_flight).insert(id, job);
    }

    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.in_flight).len()
    }

    /// Takes a job out of the in-flight table; true if it was there.
    pub(crate) fn forget(&self, id: u64) -> bool {
        let removed = lock(&self.in_flight).remove(&id).is_some();
        if removed {
            self.load.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Takes every job out of the in-flight table.
    pub(crate) fn drain(&self) -> Vec<Arc<dyn Pending>> {
        let jobs: Vec<_> = lock(&self.in_flight).drain().map(|(_, j)| j).collect();
        self.load.fetch_sub(jobs.len(), Ordering::Relaxed);
        jobs
    }

    /// Tells the worker to drop job `id` (its outcome is already decided).
    pub(crate) fn cancel(&self, id: u64) {
        if self.forget(id) {
            let mut bytes = Vec::with_capacity(13);
            frame::empty(&mut bytes, frame::CANCEL, id);
            self.send(&bytes, false);
        }
    }

    /// Kills the worker: a terminate frame, then `SIGKILL` to its process group (the reader
    /// then sees the end and cleans up). `why` becomes the reason its other works are lost.
    pub(crate) fn kill(&self, why: String) {
        lock(&self.lost).get_or_insert((why, Instant::now()));
        let mut bytes = Vec::with_capacity(13);
        frame::empty(&mut bytes, frame::TERMINATE, 0);
        self.send(&bytes, false);
        self.signal();
    }

    /// `SIGKILL` to the launched process's group and to the process itself, unless reaped.
    fn signal(&self) {
        if let Some(child) = lock(&self.child).as_mut() {
            let _ = kill_group(self.launcher_pid);
            let _ = child.kill();
        }
    }

    /// True if the pool killed this worker on purpose.
    pub(crate) fn was_killed(&self) -> bool {
        lock(&self.lost).is_some()
    }

    /// True once the worker sent a valid hello.
    pub(crate) fn greeted(&self) -> bool {
        self.greeted.load(Ordering::Acquire)
    }

    /// True once its reader is done with it.
    pub(crate) fn is_over(&self) -> bool {
        self.over.load(Ordering::Acquire)
    }

    /// True if `timeout` has passed since the launch (`Duration::MAX`: never).
    pub(crate) fn hello_overdue(&self, timeout: Duration) -> bool {
        self.launched_at.elapsed() > timeout
    }

    /// The worker's own pid, once its hello told it.
    pub(crate) fn worker_pid(&self) -> Option<u32> {
        Some(self.worker_pid.load(Ordering::Relaxed)).filter(|&p| p != 0)
    }

    /// The worker's host, as far as known (see the field).
    pub(crate) fn host(&self) -> Option<String> {
        lock(&self.host).clone()
    }

    /// How the worker is named in reasons: its own pid, its slot and host, and the
    /// launcher's pid if another.
    fn name(&self) -> String {
        let at = match self.host() {
            Some(host) => format!("slot {} on host {host}", self.index),
            None => format!("slot {}", self.index),
        };
        match self.worker_pid() {
            Some(pid) if pid != self.launcher_pid => {
                format!(
                    "worker process {pid} ({at}, launched by process {})",
                    self.launcher_pid
                )
            }
            Some(pid) => format!("worker process {pid} ({at})"),
            None => format!("worker process {} ({at})", self.launcher_pid),
        }
    }

    /// Why a worker sent no hello by its deadline (for its kill, and `build`'s error).
    pub(crate) fn no_hello(&self) -> String {
        // ORDERING: Relaxed: the reader wrote it before the deadline this runs after; a
        // stale 0 only makes the message less specific.
        match self.bytes_before_hello.load(Ordering::Relaxed) {
            0 => "killed: it sent no hello in time (is the command an aplex worker, with \
                  serve_if_worker first in main?)"
                .to_string(),
            n => format!(
                "killed: it sent {n} bytes of its hello and then nothing: the launcher holds \
                 the worker's output back, line by line (plain `srun` does: use `srun -u`)"
            ),
        }
    }

    /// Why a worker ended, from its launched process's exit `status`, when the pool did not
    /// kill it and its frames made sense.
    fn ended(&self, status: Option<ExitStatus>) -> String {
        let name = self.name();
        let code = status.and_then(|s| s.code());
        let prog = &self.program;
        let greeted = self.greeted();
        let own = self.worker_pid() == Some(self.launcher_pid);
        // Known to stand in front of the worker only once the worker's hello named its pid.
        let behind = self
            .worker_pid()
            .is_some_and(|pid| pid != self.launcher_pid);
        match code {
            // ssh's own failures exit 255 (srun's and kubectl's are other codes).
            Some(255) if !greeted => format!(
                "{name}: its launcher `{prog}` exited with status 255 before the worker's \
                 hello: could not reach {}",
                self.host()
                    .map_or("its host".to_string(), |h| format!("host {h}"))
            ),
            // ssh also exits 255 when the remote command dies of a signal.
            Some(255) if !own => format!(
                "{name}: its launcher `{prog}` exited with status 255: the connection to the \
                 host was lost, or the worker was killed by a signal there"
            ),
            Some(127) if !greeted => format!(
                "{name}: its launcher `{prog}` exited with status 127 before the worker's hello: \
                 a program was not found (is the same binary at the same path on the host?)"
            ),
            _ if !greeted => format!(
                "{name} {} before its hello: is the command an aplex worker (serve_if_worker \
                 first in main)?",
                describe(status, behind)
            ),
            _ => format!("{name} {}", describe(status, behind)),
        }
    }

    /// True if the pool killed it more than [`KILL_WAIT`] ago.
    fn kill_expired(&self) -> bool {
        lock(&self.lost)
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() > KILL_WAIT)
    }
}
