//! One live worker process, as the parent sees it: its pipes, its in-flight jobs, and the two
//! threads that move its frames.
//!
//! # Why a reader and a writer thread per worker
//!
//! Blocking I/O on a thread of its own per pipe direction keeps every worker independent: a
//! 64 MiB frame to or from one worker occupies only that worker's threads, never another's or
//! the caller's, and the code is straight-line. Two threads per worker are cheap next to the
//! worker process itself. (One I/O thread polling every pipe would save threads but make one
//! slow transfer everyone's problem.)
//!
//! **Writing.** A caller appends its encoded frame to the outbox under a lock. If the outbox
//! is empty, no write is in progress and the worker has nothing else in flight, the caller
//! writes the frame itself with one non-blocking `write` (no thread hop: the sequential round
//! trip stays close to the pipe's floor). Otherwise, or if the pipe is full, the bytes stay in
//! the outbox and the writer thread is woken — once: while it writes, later calls only
//! append, so a burst of calls leaves in a few large writes.
//!
//! **Reading.** The reader thread reads large chunks, cuts every whole frame out of them,
//! takes the matching jobs out of the in-flight table under one lock, and delivers their
//! results outside it. A valid hello makes the worker its slot's (`Shared::on_hello`), on this
//! same thread, so that no death can slip between a hello and the install. End of file, a read
//! error or a malformed frame ends the connection: the reader kills what is left of the
//! worker's process group, reaps the launched process and hands the reason to the pool (see
//! `Shared::on_death`). After the pool kills a worker, the reader waits at most
//! [`KILL_WAIT`] for the end of its output (a worker in another session or on another host
//! may not die of the signal), then gives it up.
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

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::process::{Child, ChildStdout, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::exit_status::describe;
use super::frame::{self, FrameReader, Hello};
use super::job::Pending;
use super::Shared;
use crate::runtime::reactor::lock;
use crate::sys::process::kill_group;
use crate::sys::{poll_fds, PollFd, POLLIN, POLLOUT};
use crate::wire::Wire;
use crate::Error;

/// How long a launched process whose output ended may take to exit on its own, so that its
/// exit status (ssh's 255, the remote worker's own code) tells why, before it is killed.
/// `ssh` closes its output when the remote side closes, a moment before it exits.
const EXIT_LINGER: Duration = Duration::from_millis(200);
/// How long the reader waits for the end of a killed worker's output before giving it up.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(2);
/// How often a reader waiting for output checks whether its kill has expired.
const READ_TICK: Duration = Duration::from_millis(500);

struct Outbox {
    buf: Vec<u8>,
    /// The writer thread is writing a batch taken from `buf`.
    writing: bool,
    /// The writer thread waits for bytes.
    waiting: bool,
    /// No more writes: the writer thread exits once `buf` is written (or dropped on error).
    closed: bool,
}

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
    in_flight: Mutex<HashMap<u64, Arc<dyn Pending>>>,
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
            in_flight: Mutex::new(HashMap::new()),
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

    /// Queues `bytes` (whole frames) for the worker. With `direct`, a caller that finds the
    /// pipe idle writes them itself.
    pub(crate) fn send(&self, bytes: &[u8], direct: bool) {
        let mut out = lock(&self.out);
        if out.closed {
            return; // the worker is gone or going; its reader fails what is in flight
        }
        let mut rest = bytes;
        if direct && self.nonblocking && !out.writing && out.buf.is_empty() {
            match (&self.stdin).write(bytes) {
                Ok(n) => rest = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return, // broken pipe: the reader sees the end
            }
            if rest.is_empty() {
                return;
            }
        }
        out.buf.extend_from_slice(rest);
        if out.waiting {
            out.waiting = false;
            drop(out);
            self.out_ready.notify_one();
        }
    }

    /// No more writes; the writer thread exits once it has written what it has.
    pub(crate) fn close(&self) {
        lock(&self.out).closed = true;
        self.out_ready.notify_one();
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

    /// The writer thread: writes the outbox in batches until closed.
    pub(crate) fn write_loop(&self) {
        let mut batch = Vec::new();
        loop {
            {
                let mut out = lock(&self.out);
                out.writing = false;
                while out.buf.is_empty() && !out.closed {
                    out.waiting = true;
                    out = self
                        .out_ready
                        .wait(out)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if out.buf.is_empty() {
                    return; // closed and all written
                }
                std::mem::swap(&mut batch, &mut out.buf);
                out.writing = true;
            }
            if let Err(e) = self.write_all(&batch) {
                let mut out = lock(&self.out);
                out.closed = true;
                out.buf = Vec::new();
                out.writing = false;
                drop(out);
                self.write_failed(e);
                return;
            }
            batch.clear();
            if batch.capacity() > 1 << 20 {
                batch = Vec::new(); // do not keep a large frame's buffer
            }
        }
    }

    /// Writing to the worker failed: its input is closed, which a worker does by dying. Its
    /// output then ends too, and its reader reports the death with the exit status or signal:
    /// that is why its works are lost, not the write. So the reader gets [`EXIT_LINGER`] to
    /// see the end; only a worker whose output is still open then (its input closed some
    /// other way) is killed for the failed write, which also bounds the reader's wait.
    fn write_failed(&self, e: io::Error) {
        let until = Instant::now() + EXIT_LINGER;
        // ORDERING: Acquire pairs with the reader's Release store.
        while !self.output_ended.load(Ordering::Acquire) {
            if Instant::now() >= until {
                self.kill(format!(
                    "killed: writing to it failed ({e}) while its output stayed open"
                ));
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match (&self.stdin).write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut fds = [PollFd::new(self.stdin.as_raw_fd(), POLLOUT)];
                    poll_fds(&mut fds, Some(Duration::from_millis(100)))?;
                    if lock(&self.out).closed && self.was_killed() {
                        return Err(io::ErrorKind::BrokenPipe.into());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The reader thread: the worker's hello (reported on `hello`), then results until the
    /// end; then the death path.
    pub(crate) fn read_loop(
        self: Arc<Self>,
        mut stdout: ChildStdout,
        shared: Arc<Shared>,
        hello: mpsc::Sender<(usize, HelloResult)>,
    ) {
        // The hello under the protocol's bound, then every frame under the user's.
        let mut reader = FrameReader::new(frame::hello_max(&shared.names).max(self.max_frame));
        let mut hello = Some(hello);
        let mut batch: Vec<(Arc<dyn Pending>, std::ops::Range<usize>)> = Vec::new();
        let mut ranges = Vec::new();
        let fd = stdout.as_raw_fd();
        // A hello that came and was refused says why itself (no "aplex worker?" hint).
        let mut refused = false;
        let protocol_error: Option<String> = 'read: loop {
            // Wait for output in ticks, so that a kill that did not end the worker (another
            // session, another host) is given up after KILL_WAIT.
            let mut fds = [PollFd::new(fd, POLLIN)];
            match poll_fds(&mut fds, Some(READ_TICK)) {
                Ok(0) => {
                    if self.kill_expired() {
                        break Some(format!(
                            "did not close its output within {KILL_WAIT:?} after it was killed"
                        ));
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => break Some(format!("waiting for the worker failed: {e}")),
            }
            match reader.fill(&mut stdout) {
                Ok(0) => break None,
                Ok(n) if hello.is_some() => {
                    self.bytes_before_hello.fetch_add(n, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => break Some(format!("reading from the worker failed: {e}")),
            }
            loop {
                let (kind, id, at) = match reader.next_at() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => break 'read Some(format!("it sent a malformed frame: {e}")),
                };
                if let Some(tx) = hello.take() {
                    match check_hello(kind, reader.slice(at), &shared.names) {
                        Ok(theirs) => {
                            reader.set_max(frame::read_max(self.max_frame));
                            self.worker_pid.store(theirs.pid, Ordering::Relaxed);
                            if !theirs.host.is_empty() {
                                *lock(&self.host) = Some(theirs.host);
                            }
                            self.greeted.store(true, Ordering::Release);
                            shared.on_hello(&self);
                            let _ = tx.send((self.index, Ok(theirs.pid)));
                        }
                        Err(e) => {
                            let why = e.to_string();
                            let e = Error::Wire(format!("{}: {why}", self.name()));
                            let _ = tx.send((self.index, Err(e)));
                            refused = true;
                            break 'read Some(why);
                        }
                    }
                    continue;
                }
                if kind != frame::RESULT {
                    break 'read Some(format!("it sent a frame of unexpected kind {kind}"));
                }
                ranges.push((id, at));
            }
            if ranges.is_empty() {
                continue;
            }
            {
                let mut in_flight = lock(&self.in_flight);
                for (id, at) in ranges.drain(..) {
                    if let Some(job) = in_flight.remove(&id) {
                        batch.push((job, at));
                    }
                }
            }
            self.load.fetch_sub(batch.len(), Ordering::Relaxed);
            self.completed.fetch_add(batch.len(), Ordering::Relaxed);
            let items: u64 = batch.iter().map(|(job, _)| job.items()).sum();
            shared.slots[self.index]
                .completed
                .fetch_add(items, Ordering::Relaxed);
            for (job, at) in batch.drain(..) {
                job.deliver(reader.slice(at));
            }
        };
        self.output_ended.store(true, Ordering::Release);
        self.close();
        let status = self.reap();
        let name = self.name();
        let lost = lock(&self.lost).take();
        let why = match (protocol_error, lost) {
            (Some(e), _) if !self.greeted() && !refused => format!(
                "{name} {e} before its hello: is the command an aplex worker (serve_if_worker \
                 first in main)?"
            ),
            (Some(e), _) => format!("{name} {e}"),
            (None, Some((why, _))) => format!("{name} was {why}"),
            (None, None) => self.ended(status),
        };
        if let Some(tx) = hello.take() {
            let _ = tx.send((self.index, Err(Error::Wire(why.clone()))));
        }
        drop(stdout);
        self.over.store(true, Ordering::Release);
        shared.on_death(&self, why);
    }

    /// Gives the launched process up to [`EXIT_LINGER`] to exit on its own. It stays unreaped
    /// (a zombie), so its process group id stays ours to signal.
    fn let_exit(&self) {
        let until = Instant::now() + EXIT_LINGER;
        while crate::sys::process::has_exited(self.launcher_pid) == Some(false)
            && Instant::now() < until
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Reaps a worker whose reader thread could not be started.
    pub(crate) fn reap_unread(&self) {
        let _ = self.reap();
    }

    /// Kills what is left of the worker's process group (its protocol is closed: it is dead
    /// to the pool, and nothing it started may outlive it), then reaps the launched process.
    /// Both are bounded: the launched process itself is `SIGKILL`ed.
    fn reap(&self) -> Option<ExitStatus> {
        if !self.was_killed() {
            self.let_exit();
        }
        let mut guard = lock(&self.child);
        let child = guard.as_mut()?;
        let _ = kill_group(self.launcher_pid);
        let _ = child.kill();
        let status = child.wait().ok();
        *guard = None;
        status
    }
}

fn check_hello(kind: u8, payload: &[u8], names: &[&str]) -> Result<Hello, Error> {
    if kind == frame::HELLO_PARENT {
        return Err(Error::Wire(
            "the worker echoed the parent's hello back: the command is not an aplex worker (is it `cat`?)"
                .to_string(),
        ));
    }
    if kind != frame::HELLO_WORKER {
        return Err(Error::Wire(format!(
            "expected the worker's hello, got a frame of kind {kind}"
        )));
    }
    let hello = Hello::from_bytes(payload)
        .map_err(|e| Error::Wire(format!("the worker's hello is malformed: {e}")))?;
    hello
        .check(frame::WORKER_MAGIC, names)
        .map_err(|e| Error::Wire(format!("the worker's hello does not match: {e}")))?;
    Ok(hello)
}
