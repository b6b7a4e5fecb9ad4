//! The parent's reading side of one worker: the reader thread, and the death path it runs.
//!
//! The reader thread reads large chunks, cuts every whole frame out of them, takes the
//! matching jobs out of the in-flight table under one lock, and delivers their results outside
//! it. A valid hello makes the worker its slot's (`Shared::on_hello`), on this same thread, so
//! that no death can slip between a hello and the install. End of file, a read error or a
//! malformed frame ends the connection: the reader kills what is left of the worker's process
//! group, reaps the launched process and hands the reason to the pool (see
//! `Shared::on_death`). After the pool kills a worker, the reader waits at most
//! [`KILL_WAIT`] for the end of its output (a worker in another session or on another host
//! may not die of the signal), then gives it up.

use std::os::unix::io::AsRawFd;
use std::process::{ChildStdout, ExitStatus};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::super::frame::{self, FrameReader, Hello};
use super::super::job::Pending;
use super::super::Shared;
use super::{Conn, HelloResult, EXIT_LINGER, KILL_WAIT};
use crate::runtime::reactor::lock;
use crate::sys::process::kill_group;
use crate::sys::{poll_fds, PollFd, POLLIN};
use crate::wire::Wire;
use crate::Error;

/// How often a reader waiting for output checks whether its kill has expired.
const READ_TICK: Duration = Duration::from_millis(500);

impl Conn {
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
