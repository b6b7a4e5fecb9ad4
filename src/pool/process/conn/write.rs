//! The parent's writing side of one worker: the outbox and the writer thread.
//!
//! A caller appends its encoded frame to the outbox under a lock. If the outbox is empty, no
//! write is in progress and the worker has nothing else in flight, the caller writes the frame
//! itself with one non-blocking `write` (no thread hop: the sequential round trip stays close
//! to the pipe's floor). Otherwise, or if the pipe is full, the bytes stay in the outbox and
//! the writer thread is woken — once: while it writes, later calls only append, so a burst of
//! calls leaves in a few large writes.

use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Conn, EXIT_LINGER};
use crate::runtime::reactor::lock;
use crate::sys::{poll_fds, PollFd, POLLOUT};

/// The bytes callers queued for the worker, and what the writer thread is doing with them.
pub(super) struct Outbox {
    pub(super) buf: Vec<u8>,
    /// The writer thread is writing a batch taken from `buf`.
    pub(super) writing: bool,
    /// The writer thread waits for bytes.
    pub(super) waiting: bool,
    /// No more writes: the writer thread exits once `buf` is written (or dropped on error).
    pub(super) closed: bool,
}

impl Conn {
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
}
