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
//! results outside it. End of file, a read error or a malformed frame ends the connection:
//! the reader reaps the process and hands the reason to the pool (see `Shared::on_death`).
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::frame::{self, FrameReader, Hello};
use super::job::Pending;
use super::Shared;
use crate::runtime::reactor::lock;
use crate::sys::{poll_fds, PollFd, POLLOUT};
use crate::wire::Wire;
use crate::Error;

/// How long the reader waits for a process whose stdout ended to exit before killing it.
const EXIT_WAIT: Duration = Duration::from_millis(500);

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
    /// The pid of the launched process (the worker itself, unless a launcher stands between).
    pub(crate) pid: u32,
    stdin: File,
    /// The stdin pipe is non-blocking, so callers may write to it directly.
    nonblocking: bool,
    out: Mutex<Outbox>,
    out_ready: Condvar,
    in_flight: Mutex<HashMap<u64, Arc<dyn Pending>>>,
    /// The slot's load: works sent and not yet answered, cancelled or failed.
    load: Arc<AtomicUsize>,
    child: Mutex<Option<Child>>,
    /// Why the pool killed this worker, if it did.
    lost: Mutex<Option<String>>,
    /// Works sent (for `max_works_per_child`).
    pub(crate) sent: AtomicUsize,
    /// Results received.
    pub(crate) completed: AtomicUsize,
    /// Replaced on purpose (recycled): its end needs no replacement.
    pub(crate) retired: AtomicBool,
    /// Became a slot's worker after its hello.
    pub(crate) installed: AtomicBool,
    pub(crate) max_frame: usize,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("index", &self.index)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// The outcome of the hello exchange, sent by the reader to whoever started the worker.
pub(crate) type HelloResult = Result<u32, Error>;

impl Conn {
    /// Wraps a spawned child whose stdin and stdout were taken out.
    pub(crate) fn new(
        index: usize,
        child: Child,
        stdin: File,
        load: Arc<AtomicUsize>,
        max_frame: usize,
    ) -> Conn {
        let nonblocking = crate::sys::net::set_nonblocking(stdin.as_raw_fd()).is_ok();
        Conn {
            index,
            pid: child.id(),
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
            sent: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
            installed: AtomicBool::new(false),
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

    /// Kills the worker process (the reader then sees the end and cleans up); `why` becomes
    /// the reason its other works are lost.
    pub(crate) fn kill(&self, why: String) {
        lock(&self.lost).get_or_insert(why);
        if let Some(child) = lock(&self.child).as_mut() {
            let _ = child.kill();
        }
    }

    /// True if the pool killed this worker on purpose.
    pub(crate) fn was_killed(&self) -> bool {
        lock(&self.lost).is_some()
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
            if self.write_all(&batch).is_err() {
                let mut out = lock(&self.out);
                out.closed = true;
                out.buf = Vec::new();
                out.writing = false;
                drop(out);
                self.kill("writing to it failed".to_string());
                return;
            }
            batch.clear();
            if batch.capacity() > 1 << 20 {
                batch = Vec::new(); // do not keep a large frame's buffer
            }
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
        hello: mpsc::Sender<HelloResult>,
    ) {
        let mut reader = FrameReader::new(self.max_frame);
        let mut hello = Some(hello);
        let mut batch: Vec<(Arc<dyn Pending>, std::ops::Range<usize>)> = Vec::new();
        let mut ranges = Vec::new();
        let protocol_error: Option<String> = 'read: loop {
            match reader.fill(&mut stdout) {
                Ok(0) => break None,
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
                    let result = check_hello(kind, reader.slice(at), &shared.names);
                    let failed = result.as_ref().err().map(|e| e.to_string());
                    let _ = tx.send(result);
                    if let Some(e) = failed {
                        break 'read Some(e);
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
            for (job, at) in batch.drain(..) {
                job.deliver(reader.slice(at));
            }
        };
        if protocol_error.is_some() {
            self.kill(String::new());
        }
        self.close();
        let status = self.reap(protocol_error.is_none());
        let why = match (protocol_error, lock(&self.lost).take()) {
            (Some(e), _) => format!("worker process {} {e}", self.pid),
            (None, Some(why)) if !why.is_empty() => {
                format!("worker process {} was {why}", self.pid)
            }
            _ => format!("worker process {} {}", self.pid, describe(status)),
        };
        if let Some(tx) = hello.take() {
            let _ = tx.send(Err(Error::Wire(format!(
                "{why} before its hello: is the command an aplex worker (serve_if_worker first in main)?"
            ))));
        }
        drop(stdout);
        shared.on_death(&self, why);
    }

    /// Waits for the process to exit (killing it if it lingers) and returns its status.
    fn reap(&self, graceful: bool) -> Option<ExitStatus> {
        let mut child = lock(&self.child).take()?;
        if graceful {
            let end = Instant::now() + EXIT_WAIT;
            while Instant::now() < end {
                match child.try_wait() {
                    Ok(Some(status)) => return Some(status),
                    Ok(None) => std::thread::sleep(Duration::from_millis(1)),
                    Err(_) => break,
                }
            }
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

fn check_hello(kind: u8, payload: &[u8], names: &[&str]) -> HelloResult {
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
    Ok(hello.pid)
}

/// "exited with status 3", "was killed by signal 9".
fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "ended (its exit status is unknown)".to_string(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(9)) => "was killed by signal 9 (SIGKILL)".to_string(),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => format!("ended: {s}"),
        },
    }
}
