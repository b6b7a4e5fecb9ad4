//! The worker side: what [`serve_if_worker`](crate::serve_if_worker) runs in a worker process.
//!
//! One thread, one executor. The protocol's stdout is duplicated first and fd 1 is pointed at
//! stderr, so a work that prints cannot corrupt the stream. Then everything runs in `block_on`:
//!
//! - the **reader** waits for stdin through the reactor (stdin is non-blocking), reads large
//!   chunks and handles every whole frame in them: a plain call runs right there (it cannot
//!   be interrupted anyway), an async call or a chunk becomes a local task, up to
//!   `max_works` at once, more wait in a queue; a cancel drops a task or a queued call;
//! - results go to one **outbox**; the **flusher** task writes it when it is woken, after one
//!   yield, so that the results of everything that finished in the same turn leave in one
//!   write.
//!
//! # Ownership rules
//!
//! All state is in one `Rc<State>` on the worker's thread; `RefCell` borrows never span an
//! `.await` or a call into a work. A running task is owned by `State::running` until it ends
//! (it removes itself) or a cancel frame takes and cancels it.
//!
//! The worker exits when stdin ends (the parent is gone), after a shutdown frame once its
//! works are done, or when writing to the parent fails.
#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::future::{poll_fn, Future};
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::frame::{self, FrameReader, Hello};
use super::works::{status, Entry, Registry, Runner};
use crate::runtime::reactor::Interest;
use crate::runtime::task::panic_message;
use crate::sys::process as psys;
use crate::wire::Wire;
use crate::LocalTask;

/// How long a chunk of plain works runs before it yields (so that a cancel frame is seen).
const CHUNK_SLICE: Duration = Duration::from_millis(2);

/// A call waiting for room.
struct Call {
    kind: u8,
    id: u64,
    payload: Vec<u8>,
}

struct State {
    entries: &'static [Entry],
    outbox: RefCell<Vec<u8>>,
    flusher: RefCell<Option<Waker>>,
    running: RefCell<HashMap<u64, LocalTask<()>>>,
    queue: RefCell<VecDeque<Call>>,
    max_works: Cell<usize>,
    max_frame: Cell<usize>,
    /// A shutdown frame came: exit once idle.
    closing: Cell<bool>,
    /// Time to exit; the main future waits for it.
    finished: Cell<bool>,
    main: RefCell<Option<Waker>>,
}

impl State {
    /// Appends one result frame (a too large one becomes an error result).
    fn push_result(&self, id: u64, outcome: &[u8]) {
        let mut out = self.outbox.borrow_mut();
        let was_empty = out.is_empty();
        let start = frame::begin(&mut out, frame::RESULT, id);
        out.extend_from_slice(outcome);
        if let Err(e) = frame::finish(&mut out, start, self.max_frame.get()) {
            let start = frame::begin(&mut out, frame::RESULT, id);
            out.push(status::REMOTE);
            crate::wire::encode_str(&format!("the result could not be sent: {e}"), &mut out);
            let _ = frame::finish(&mut out, start, usize::MAX);
        }
        drop(out);
        if was_empty {
            self.wake_flusher();
        }
    }

    fn wake_flusher(&self) {
        if let Some(w) = self.flusher.borrow_mut().take() {
            w.wake();
        }
    }

    fn finish(&self) {
        self.finished.set(true);
        if let Some(w) = self.main.borrow_mut().take() {
            w.wake();
        }
    }

    fn check_idle(&self) {
        if self.closing.get() && self.running.borrow().is_empty() && self.queue.borrow().is_empty()
        {
            self.finish();
        }
    }
}

/// Runs this process as a worker of `registry` until its parent is done with it.
pub(crate) fn serve(registry: &Registry) -> io::Result<()> {
    // Never outlive the parent: a parent-death signal where there is one (checking the parent
    // after asking closes the race with a parent that died just before), and stdin's end of
    // file everywhere.
    let parent = psys::parent_pid();
    if psys::die_with_parent() && psys::parent_pid() != parent {
        return Ok(());
    }
    let mut out = psys::dup_cloexec(1)?;
    psys::redirect(2, 1)?;
    let stdin = psys::dup_cloexec(0)?;
    crate::sys::net::set_nonblocking(std::os::unix::io::AsRawFd::as_raw_fd(&stdin))?;

    let entries = registry.entries();
    let names: Vec<&str> = entries.iter().map(|e| e.name).collect();
    let hello = Hello {
        magic: frame::WORKER_MAGIC.to_string(),
        version: frame::VERSION,
        pid: std::process::id(),
        names: names.iter().map(|n| n.to_string()).collect(),
        max_works: 0,
        max_frame: 0,
    };
    let mut bytes = Vec::new();
    let start = frame::begin(&mut bytes, frame::HELLO_WORKER, 0);
    hello.encode(&mut bytes);
    let _ = frame::finish(&mut bytes, start, usize::MAX);
    out.write_all(&bytes)?;

    let state = Rc::new(State {
        entries,
        outbox: RefCell::new(Vec::new()),
        flusher: RefCell::new(None),
        running: RefCell::new(HashMap::new()),
        queue: RefCell::new(VecDeque::new()),
        max_works: Cell::new(1),
        max_frame: Cell::new(super::DEFAULT_MAX_FRAME),
        closing: Cell::new(false),
        finished: Cell::new(false),
        main: RefCell::new(None),
    });
    let out = Rc::new(RefCell::new(out));
    crate::block_on(async {
        crate::spawn_local(read_loop(state.clone(), stdin, names)).detach();
        crate::spawn_local(flush_loop(state.clone(), out.clone())).detach();
        poll_fn(|cx| {
            if state.finished.get() {
                return Poll::Ready(());
            }
            *state.main.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
    });
    let rest = std::mem::take(&mut *state.outbox.borrow_mut());
    let _ = out.borrow_mut().write_all(&rest);
    Ok(())
}

/// Writes the outbox whenever it has something, after letting the current turn finish.
async fn flush_loop(state: Rc<State>, out: Rc<RefCell<File>>) {
    let mut spare = Vec::new();
    loop {
        poll_fn(|cx| {
            if !state.outbox.borrow().is_empty() {
                return Poll::Ready(());
            }
            *state.flusher.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        crate::yield_now().await; // results finishing in this turn leave with these
        std::mem::swap(&mut spare, &mut *state.outbox.borrow_mut());
        if out.borrow_mut().write_all(&spare).is_err() {
            state.finish(); // the parent is gone
            return;
        }
        spare.clear();
    }
}

/// Reads frames from stdin and handles them.
async fn read_loop(state: Rc<State>, mut stdin: File, names: Vec<&'static str>) {
    let Some(reactor) = crate::runtime::executor::current_reactor() else {
        state.finish();
        return;
    };
    let source = reactor.register(std::os::unix::io::AsRawFd::as_raw_fd(&stdin));
    let mut reader = FrameReader::new(super::DEFAULT_MAX_FRAME);
    let mut greeted = false;
    let result: Result<(), String> = async {
        loop {
            let ticks = source.ticks(Interest::Read);
            match reader.fill(&mut stdin) {
                Ok(0) => return Ok(()), // the parent is gone
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    poll_fn(|cx| source.poll_ready(Interest::Read, ticks, cx)).await;
                    continue;
                }
                Err(e) => return Err(format!("reading stdin: {e}")),
            }
            while let Some(f) = reader.next()? {
                if !greeted {
                    if f.kind != frame::HELLO_PARENT {
                        return Err(format!(
                            "expected the parent's hello, got a frame of kind {}",
                            f.kind
                        ));
                    }
                    let hello =
                        Hello::from_bytes(f.payload).map_err(|e| format!("bad hello: {e}"))?;
                    hello.check(frame::PARENT_MAGIC, &names)?;
                    state.max_works.set((hello.max_works as usize).max(1));
                    let max_frame = usize::try_from(hello.max_frame).unwrap_or(usize::MAX);
                    state.max_frame.set(max_frame);
                    greeted = true;
                    reader.set_max(max_frame);
                    continue;
                }
                match f.kind {
                    frame::CALL | frame::CHUNK => {
                        let plain = f.kind == frame::CALL && is_plain(&state, f.payload);
                        if plain {
                            run_plain_call(&state, f.id, f.payload);
                        } else {
                            state.queue.borrow_mut().push_back(Call {
                                kind: f.kind,
                                id: f.id,
                                payload: f.payload.to_vec(),
                            });
                            pump(&state);
                        }
                    }
                    frame::CANCEL => cancel(&state, f.id),
                    frame::SHUTDOWN => {
                        state.closing.set(true);
                        state.check_idle();
                    }
                    kind => return Err(format!("unknown frame kind {kind}")),
                }
            }
            if !state.outbox.borrow().is_empty() {
                crate::yield_now().await; // let the flusher send what is done
            }
        }
    }
    .await;
    if let Err(e) = result {
        eprintln!("aplex worker {}: protocol error: {e}", std::process::id());
    }
    source.deregister();
    state.finish();
}

/// The entry a call payload names, and the rest of the payload.
fn entry<'a>(state: &State, payload: &'a [u8]) -> Result<(Entry, &'a [u8]), String> {
    let mut input = payload;
    let index = u32::decode(&mut input).map_err(|e| e.to_string())?;
    match state.entries.get(index as usize) {
        Some(e) => Ok((*e, input)),
        None => Err(format!("no work number {index}")),
    }
}

fn is_plain(state: &State, payload: &[u8]) -> bool {
    matches!(
        entry(state, payload),
        Ok((
            Entry {
                runner: Runner::Plain(_),
                ..
            },
            _
        ))
    )
}

/// Runs a plain call at once, writing its result frame straight into the outbox.
fn run_plain_call(state: &State, id: u64, payload: &[u8]) {
    let Ok((
        Entry {
            runner: Runner::Plain(run),
            ..
        },
        mut input,
    )) = entry(state, payload)
    else {
        return;
    };
    let mut outcome = Vec::new();
    run(&mut input, &mut outcome);
    state.push_result(id, &outcome);
}

/// Starts queued calls while there is room.
fn pump(state: &Rc<State>) {
    loop {
        if state.running.borrow().len() >= state.max_works.get() {
            return;
        }
        let Some(call) = state.queue.borrow_mut().pop_front() else {
            return;
        };
        let id = call.id;
        let task = crate::spawn_local(run_call(state.clone(), call));
        state.running.borrow_mut().insert(id, task);
    }
}

fn cancel(state: &Rc<State>, id: u64) {
    let task = state.running.borrow_mut().remove(&id);
    match task {
        Some(task) => {
            task.cancel();
            pump(state);
        }
        None => state.queue.borrow_mut().retain(|c| c.id != id),
    }
    state.check_idle();
}

/// Runs one async call or one chunk, then sends its result.
async fn run_call(state: Rc<State>, call: Call) {
    let outcome = match entry(&state, &call.payload) {
        Err(e) => message(status::REMOTE, &e),
        Ok((entry, input)) if call.kind == frame::CHUNK => run_chunk(entry, input).await,
        Ok((entry, mut input)) => run_one(entry, &mut input).await,
    };
    state.push_result(call.id, &outcome);
    drop(state.running.borrow_mut().remove(&call.id));
    pump(&state);
    state.check_idle();
}

fn message(status: u8, text: &str) -> Vec<u8> {
    let mut out = vec![status];
    crate::wire::encode_str(text, &mut out);
    out
}

/// Runs one work on the argument at the front of `input`; its encoded outcome.
async fn run_one(entry: Entry, input: &mut &[u8]) -> Vec<u8> {
    match entry.runner {
        Runner::Plain(run) => {
            let mut out = Vec::new();
            run(input, &mut out);
            out
        }
        Runner::Async(start) => match start(input) {
            Ok(future) => CatchUnwind(future).await,
            Err(out) => out,
        },
    }
}

/// Runs a chunk's items one after the other; the count, then each item's outcome.
async fn run_chunk(entry: Entry, mut input: &[u8]) -> Vec<u8> {
    let count = match u64::decode(&mut input) {
        Ok(n) => n,
        Err(e) => return message(status::REMOTE, &format!("bad chunk: {e}")),
    };
    let mut out = vec![status::OK];
    count.encode(&mut out);
    let mut slice_start = Instant::now();
    let mut broken: Option<Vec<u8>> = None;
    for _ in 0..count {
        if let Some(b) = &broken {
            out.extend_from_slice(b);
            continue;
        }
        match entry.runner {
            Runner::Plain(run) => {
                let at = out.len();
                if !run(&mut input, &mut out) {
                    broken = Some(out[at..].to_vec()); // the rest cannot be decoded
                }
                if slice_start.elapsed() > CHUNK_SLICE {
                    crate::yield_now().await;
                    slice_start = Instant::now();
                }
            }
            Runner::Async(start) => match start(&mut input) {
                Ok(future) => out.extend_from_slice(&CatchUnwind(future).await),
                Err(e) => {
                    out.extend_from_slice(&e);
                    broken = Some(e);
                }
            },
        }
    }
    out
}

/// Polls a work's future, turning a panic into a panic outcome.
struct CatchUnwind(super::works::Running);

impl Future for CatchUnwind {
    type Output = Vec<u8>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<u8>> {
        let future = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(message(status::PANIC, &panic_message(&*panic))),
        }
    }
}
