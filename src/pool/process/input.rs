//! The worker's input thread: it reads the protocol for the worker's executor thread, and it is
//! the worker's watchdog.
//!
//! A plain work runs on the executor thread and cannot be interrupted, so whatever must happen
//! *while* one runs happens here, on a thread that never waits for a work:
//!
//! - a `TERMINATE` frame ends the process at once (the one kill that crosses `ssh` or `srun`,
//!   where the parent cannot signal the worker);
//! - the end of the protocol's input (the parent is gone, or closed the pipe) ends the process
//!   at once, so no worker outlives its parent behind any launcher;
//! - a frame stream that stops making sense (a bad length, an unknown kind is caught by the
//!   executor) ends the process: the parent then fails this worker's works.
//!
//! Every other frame is handed to the executor thread through a queue (an `Inbox`), in order,
//! one batch per read; the executor takes all that is there at once. The thread exits the process itself; it never returns while the worker lives.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::frame::{self, FrameReader, Hello};
use crate::runtime::reactor::lock;
use crate::sys::process as psys;
use crate::wire::Wire;

/// Exit code of a worker whose protocol input ended.
pub(crate) const EXIT_INPUT_CLOSED: i32 = 0;
/// Exit code of a worker told to terminate.
pub(crate) const EXIT_TERMINATED: i32 = 0;
/// Exit code of a worker whose input made no sense.
pub(crate) const EXIT_PROTOCOL: i32 = 2;

/// What the input thread hands to the executor.
pub(crate) enum Incoming {
    /// The parent's hello, checked.
    Hello { max_works: usize, max_frame: usize },
    /// The frames of one read, in order.
    Frames(Frames),
}

/// The frames of one read, copied out of the reader's buffer in one piece (not one
/// allocation per frame: a burst of small calls comes as many frames per read).
pub(crate) struct Frames {
    bytes: Vec<u8>,
    /// Each frame's kind, job id and payload range in `bytes`.
    heads: Vec<(u8, u64, std::ops::Range<usize>)>,
    /// How many of them are cancels.
    cancels: usize,
}

impl Frames {
    /// Each frame's kind, job id and payload, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u8, u64, &[u8])> {
        self.heads
            .iter()
            .map(|(kind, id, at)| (*kind, *id, &self.bytes[at.clone()]))
    }
}

/// What the input thread has read and the executor not yet taken, and the executor's waker.
#[derive(Default)]
struct Queue {
    items: VecDeque<Incoming>,
    waker: Option<Waker>,
    /// The executor is done: nothing more is taken.
    closed: bool,
    /// Cancel frames among `items`: a look for them scans nothing while there are none.
    cancels: usize,
}

/// The executor's end of the input thread's queue.
pub(crate) struct Inbox(Arc<Mutex<Queue>>);

impl Inbox {
    /// Everything read so far, in order; pending (with the waker kept) while there is nothing.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<VecDeque<Incoming>> {
        let mut queue = lock(&self.0);
        if queue.items.is_empty() {
            let old = queue.waker.replace(cx.waker().clone());
            drop(queue);
            drop(old);
            return Poll::Pending;
        }
        queue.cancels = 0;
        Poll::Ready(std::mem::take(&mut queue.items))
    }
}

impl Inbox {
    /// A look at what is read and not yet taken, for the executor's other tasks.
    pub(crate) fn pending(&self) -> Pending {
        Pending(self.0.clone())
    }
}

/// A look at what the input thread has read and the executor not yet taken.
pub(crate) struct Pending(Arc<Mutex<Queue>>);

impl Pending {
    /// Calls `f` with the job id of every cancel frame read and not yet taken, in order.
    pub(crate) fn cancels(&self, mut f: impl FnMut(u64)) {
        let queue = lock(&self.0);
        if queue.cancels == 0 {
            return;
        }
        for item in &queue.items {
            if let Incoming::Frames(frames) = item {
                for (kind, id, _) in frames.iter() {
                    if kind == frame::CANCEL {
                        f(id);
                    }
                }
            }
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        let waker = {
            let mut queue = lock(&self.0);
            queue.closed = true;
            queue.items.clear();
            queue.waker.take()
        };
        drop(waker);
    }
}

/// The input thread's end: false once the executor is done.
struct Outlet(Arc<Mutex<Queue>>);

impl Outlet {
    fn send(&self, item: Incoming) -> bool {
        let waker = {
            let mut queue = lock(&self.0);
            if queue.closed {
                return false;
            }
            if let Incoming::Frames(frames) = &item {
                queue.cancels += frames.cancels;
            }
            queue.items.push_back(item);
            queue.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }
}

/// Starts the input thread on the protocol's input `input`.
pub(crate) fn start(input: File, names: Vec<&'static str>) -> io::Result<Inbox> {
    let queue = Arc::new(Mutex::new(Queue::default()));
    let tx = Outlet(queue.clone());
    let rx = Inbox(queue);
    std::thread::Builder::new()
        .name("aplex-worker-input".to_string())
        .spawn(move || {
            let why = read(input, &names, &tx);
            eprintln!("aplex worker {}: {why}", std::process::id());
            psys::exit_now(EXIT_PROTOCOL)
        })?;
    Ok(rx)
}

/// Reads frames until the process must end; returns why, for a protocol error. Ends the
/// process itself at a terminate frame or the end of input.
fn read(mut input: File, names: &[&'static str], tx: &Outlet) -> String {
    let mut reader = FrameReader::new(super::DEFAULT_MAX_FRAME);
    let mut greeted = false;
    loop {
        match reader.fill(&mut input) {
            Ok(0) => psys::exit_now(EXIT_INPUT_CLOSED),
            Ok(_) => {}
            Err(e) => return format!("reading the protocol failed: {e}"),
        }
        let mut heads = Vec::new();
        loop {
            let (kind, id, at) = match reader.next_at() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return format!("protocol error: {e}"),
            };
            if kind == frame::TERMINATE {
                psys::exit_now(EXIT_TERMINATED);
            }
            if greeted {
                heads.push((kind, id, at));
                continue;
            }
            if kind != frame::HELLO_PARENT {
                return format!("expected the parent's hello, got a frame of kind {kind}");
            }
            let hello = match Hello::from_bytes(reader.slice(at)) {
                Ok(h) => h,
                Err(e) => return format!("bad hello: {e}"),
            };
            if let Err(e) = hello.check(frame::PARENT_MAGIC, names) {
                return e;
            }
            die_with(hello.pid);
            let max_frame = usize::try_from(hello.max_frame).unwrap_or(usize::MAX);
            reader.set_max(max_frame);
            greeted = true;
            let max_works = usize::try_from(hello.max_works)
                .unwrap_or(usize::MAX)
                .max(1);
            if !tx.send(Incoming::Hello {
                max_works,
                max_frame,
            }) {
                finished();
            }
        }
        if let (Some(first), Some(last)) = (heads.first(), heads.last()) {
            let (from, to) = (first.2.start, last.2.end);
            let bytes = reader.slice(from..to).to_vec();
            for head in &mut heads {
                head.2 = head.2.start - from..head.2.end - from;
            }
            let cancels = heads.iter().filter(|h| h.0 == frame::CANCEL).count();
            if !tx.send(Incoming::Frames(Frames {
                bytes,
                heads,
                cancels,
            })) {
                finished();
            }
        }
    }
}

/// The executor is done (after a shutdown frame): it writes its last results and exits the
/// process, which this thread must not cut short.
fn finished() -> ! {
    loop {
        std::thread::park();
    }
}

/// When the pool itself started this process (its parent is the pool), asks the kernel to kill
/// it with the pool where it can. Behind a launcher the parent is the launcher, whose exit
/// means nothing (`setsid -f` exits at once): the end of input is the watchdog there.
fn die_with(pool_pid: u32) {
    if psys::parent_pid() == pool_pid && psys::die_with_parent() && psys::parent_pid() != pool_pid {
        psys::exit_now(EXIT_INPUT_CLOSED); // the pool died between the two checks
    }
}
