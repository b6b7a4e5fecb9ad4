//! The worker side: what [`serve_if_worker`](crate::serve_if_worker) runs in a worker process.
//!
//! First the protocol moves to private close-on-exec fds: fd 0 then reads `/dev/null` and fd 1
//! writes to stderr, so neither a work's prints nor the programs it starts can touch the
//! stream. Two threads then serve:
//!
//! - the **input thread** (`input.rs`) reads the protocol and hands frames over a channel; it
//!   also ends the process at a terminate frame or at the end of input, even while a plain
//!   work runs;
//! - the **executor thread** runs everything else in `block_on`: a plain call runs right
//!   there (it cannot be interrupted anyway), an async call or a chunk becomes a local task,
//!   up to `max_works` at once, more wait in a queue; a cancel drops a task or a queued call.
//!   Results go to one **outbox**; the **flusher** task writes it when it is woken, after one
//!   yield, so that the results of everything that finished in the same turn leave in one
//!   write.
//!
//! # Ownership rules
//!
//! All executor state is in one `Rc<State>` on the executor thread; `RefCell` borrows never
//! span an `.await` or a call into a work. A running task is owned by `State::running` until it
//! ends (it removes itself) or a cancel frame takes and cancels it. The input thread owns the
//! protocol's input and shares nothing but the channel.
//!
//! The worker exits when its input ends (the parent is gone), at a terminate frame, after a
//! shutdown frame once its works are done, or when writing to the parent fails.
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

use super::frame::{self, Hello};
use super::input::{self, Incoming};
use super::works::{status, Entry, Ran, Registry, Runner};
use crate::runtime::task::take_panic_message;
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
    /// A plain call's outcome buffer, reused.
    scratch: Cell<Vec<u8>>,
    /// Per work: items a chunk of it runs between two readings of the clock (see [`Slice`]).
    strides: Box<[Cell<u32>]>,
    flusher: RefCell<Option<Waker>>,
    running: RefCell<HashMap<u64, LocalTask<()>>>,
    queue: RefCell<VecDeque<Call>>,
    /// The input thread's frames not yet handled: cancels there are honoured before a queued
    /// call starts.
    pending: input::Pending,
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
    // The protocol moves to private close-on-exec fds; fd 1 becomes stderr and fd 0
    // `/dev/null`, so that nothing a work prints or starts can read or write frames.
    let mut out = psys::dup_cloexec(1)?;
    psys::redirect(2, 1)?;
    let protocol_in = psys::dup_cloexec(0)?;
    let null = File::open("/dev/null")?;
    psys::redirect(std::os::unix::io::AsRawFd::as_raw_fd(&null), 0)?;
    drop(null);

    let entries = registry.entries();
    let names: Vec<&'static str> = entries.iter().map(|e| e.name).collect();
    let hello = Hello {
        magic: frame::WORKER_MAGIC.to_string(),
        version: frame::VERSION,
        pid: std::process::id(),
        host: std::env::var(super::WORKER_HOST_ENV)
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(psys::host_name)
            .unwrap_or_default(),
        slot: std::env::var(super::WORKER_SLOT_ENV)
            .ok()
            .and_then(|s| s.parse().ok()),
        names: names.iter().map(|n| n.to_string()).collect(),
        max_works: 0,
        max_frame: 0,
    };
    let mut bytes = Vec::new();
    let start = frame::begin(&mut bytes, frame::HELLO_WORKER, 0);
    hello.encode(&mut bytes);
    let _ = frame::finish(&mut bytes, start, usize::MAX);
    out.write_all(&bytes)?;
    let incoming = input::start(protocol_in, names)?;

    let state = Rc::new(State {
        entries,
        outbox: RefCell::new(Vec::new()),
        scratch: Cell::new(Vec::new()),
        strides: entries.iter().map(|_| Cell::new(1)).collect(),
        flusher: RefCell::new(None),
        running: RefCell::new(HashMap::new()),
        queue: RefCell::new(VecDeque::new()),
        pending: incoming.pending(),
        max_works: Cell::new(1),
        max_frame: Cell::new(super::DEFAULT_MAX_FRAME),
        closing: Cell::new(false),
        finished: Cell::new(false),
        main: RefCell::new(None),
    });
    let out = Rc::new(RefCell::new(out));
    crate::block_on(async {
        crate::spawn_local(read_loop(state.clone(), incoming)).detach();
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

/// Handles the frames the input thread hands over, in order.
async fn read_loop(state: Rc<State>, incoming: input::Inbox) {
    let mut greeted = false;
    let result: Result<(), String> = async {
        loop {
            // Everything already here is handled before the flusher runs, so that the
            // results of a burst of plain calls leave in one write.
            for next in poll_fn(|cx| incoming.poll_take(cx)).await {
                match next {
                    Incoming::Hello {
                        max_works,
                        max_frame,
                    } => {
                        state.max_works.set(max_works);
                        state.max_frame.set(max_frame);
                        greeted = true;
                    }
                    Incoming::Frames(frames) if greeted => {
                        for (kind, id, payload) in frames.iter() {
                            handle(&state, kind, id, payload)?;
                        }
                    }
                    Incoming::Frames(_) => return Err("a frame before the hello".to_string()),
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
        psys::exit_now(input::EXIT_PROTOCOL);
    }
    state.finish();
}

/// Handles one frame from the parent.
fn handle(state: &Rc<State>, kind: u8, id: u64, payload: &[u8]) -> Result<(), String> {
    match kind {
        frame::CALL | frame::CHUNK => {
            let plain = kind == frame::CALL && is_plain(state, payload);
            if plain {
                run_plain_call(state, id, payload);
            } else {
                state.queue.borrow_mut().push_back(Call {
                    kind,
                    id,
                    payload: payload.to_vec(),
                });
                pump(state);
            }
        }
        frame::CANCEL => cancel(state, id),
        frame::SHUTDOWN => {
            state.closing.set(true);
            state.check_idle();
        }
        kind => return Err(format!("unknown frame kind {kind}")),
    }
    Ok(())
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
    // The buffer is taken out while the work runs (a work may re-enter the executor), and
    // kept for the next call: no allocation per call.
    let mut outcome = state.scratch.take();
    outcome.clear();
    run(&mut input, &mut outcome, 1, usize::MAX);
    state.push_result(id, &outcome);
    if outcome.capacity() <= SCRATCH_KEEP {
        state.scratch.set(outcome);
    }
}

/// The largest outcome buffer kept between plain calls.
const SCRATCH_KEEP: usize = 64 << 10;

/// Starts queued calls while there is room.
fn pump(state: &Rc<State>) {
    drop_cancelled_in_queue(state);
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

/// Drops queued calls whose cancel frame is already read but not yet handled (it waits behind
/// the frames of an earlier read): a call cancelled while queued must not start because the
/// work ahead of it ended first. Handling that frame later finds nothing to cancel.
fn drop_cancelled_in_queue(state: &State) {
    if state.queue.borrow().is_empty() {
        return;
    }
    let mut ids = Vec::new();
    state.pending.cancels(|id| ids.push(id));
    if !ids.is_empty() {
        ids.sort_unstable();
        state
            .queue
            .borrow_mut()
            .retain(|c| ids.binary_search(&c.id).is_err());
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
        Ok((entry, input)) if call.kind == frame::CHUNK => {
            let index = u32::decode(&mut call.payload.as_slice()).unwrap_or(0);
            let stride = &state.strides[index as usize];
            run_chunk(entry, input, state.max_frame.get(), stride).await
        }
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
            run(input, &mut out, 1, usize::MAX);
            out
        }
        Runner::Async(start) => match start(input) {
            Ok(future) => CatchUnwind(future).await,
            Err(out) => out,
        },
    }
}

/// Runs a chunk's items one after the other; the count, then each item's outcome.
///
/// The count comes from the other side, so it is checked before any work runs: each item's
/// outcome takes at least one byte of a result that must fit in `max_frame`, and each argument
/// at least one byte of the input unless its type is zero-sized. A result that outgrows
/// `max_frame` on the way (a failing item's message repeated for the items behind it) stops
/// the chunk: it could not be sent anyway.
///
/// Plain works run in stretches of `stride` items (see [`Slice`]), each one call of the
/// work's runner; `stride` is the work's, kept from chunk to chunk.
async fn run_chunk(
    entry: Entry,
    mut input: &[u8],
    max_frame: usize,
    stride: &Cell<u32>,
) -> Vec<u8> {
    let count = match u64::decode(&mut input) {
        Ok(n) => n,
        Err(e) => return message(status::REMOTE, &format!("bad chunk: {e}")),
    };
    if let Err(e) = check_count(count, input.len(), entry.zero_sized_arg, max_frame) {
        return message(status::REMOTE, &e);
    }
    let too_large = || {
        message(
            status::REMOTE,
            &format!("the chunk's results are over the maximum frame of {max_frame} bytes"),
        )
    };
    // Results are about as large as arguments, plus a status byte each.
    let guess = input.len().saturating_add(count as usize).min(max_frame);
    let mut out = Vec::with_capacity(guess.min(RESERVE_CAP).saturating_add(9));
    out.push(status::OK);
    count.encode(&mut out);
    // `check_count` bounds `count` by `max_frame`, a `usize`.
    let mut left = usize::try_from(count).unwrap_or(usize::MAX);
    let mut broken: Option<Vec<u8>> = None;
    match entry.runner {
        Runner::Plain(run) => {
            let mut slice = Slice::new(stride.get());
            while left > 0 {
                let n = left.min(slice.stride as usize);
                match run(&mut input, &mut out, n, max_frame) {
                    Ran::All => left -= n,
                    Ran::Full(_) => return too_large(),
                    Ran::Broken { done, at } => {
                        left -= done + 1;
                        broken = Some(out[at..].to_vec()); // the rest cannot be decoded
                        break;
                    }
                }
                if slice.after_stretch() {
                    crate::yield_now().await;
                }
            }
            stride.set(slice.stride);
        }
        Runner::Async(start) => {
            while left > 0 {
                if out.len() > max_frame {
                    return too_large();
                }
                left -= 1;
                match start(&mut input) {
                    Ok(future) => out.extend_from_slice(&CatchUnwind(future).await),
                    Err(e) => {
                        out.extend_from_slice(&e);
                        broken = Some(e);
                        break;
                    }
                }
            }
        }
    }
    if let Some(b) = broken {
        for _ in 0..left {
            if out.len() > max_frame {
                return too_large();
            }
            out.extend_from_slice(&b);
        }
    }
    out
}

/// The most a chunk's result reserves ahead of its items.
const RESERVE_CAP: usize = 1 << 20;
/// The most items a chunk runs between two readings of the clock.
const MAX_STRIDE: u32 = 64;

/// When a chunk of plain works yields: once [`CHUNK_SLICE`] has passed since it last did.
/// Reading the clock costs more than a tiny work, so it is read every `stride` items: the
/// stride doubles (up to [`MAX_STRIDE`]) while items pass faster than an eighth of a slice
/// between readings, and drops back to one when they do not, so slow items are timed one by
/// one. The worker keeps each work's stride from one chunk to the next (its items are alike).
struct Slice {
    start: Instant,
    checked: Instant,
    stride: u32,
}

impl Slice {
    fn new(stride: u32) -> Slice {
        let now = Instant::now();
        Slice {
            start: now,
            checked: now,
            stride: stride.clamp(1, MAX_STRIDE),
        }
    }

    /// After a stretch of items (at most a stride): true when the chunk should yield now.
    fn after_stretch(&mut self) -> bool {
        let now = Instant::now();
        self.stride = if now - self.checked < CHUNK_SLICE / 8 {
            (self.stride * 2).min(MAX_STRIDE)
        } else {
            1
        };
        self.checked = now;
        if now - self.start > CHUNK_SLICE {
            self.start = now;
            return true;
        }
        false
    }
}

/// Checks a chunk's claimed item count against what its input and its result can hold.
fn check_count(count: u64, input: usize, zero_sized: bool, max_frame: usize) -> Result<(), String> {
    // The result frame: header, status byte, count, then at least a byte per item.
    let result_room = max_frame.saturating_sub(1 + 8 + 1 + 8) as u64;
    if count > result_room {
        return Err(format!(
            "bad chunk: {count} items cannot fit a result of at most {max_frame} bytes"
        ));
    }
    if !zero_sized && count > input as u64 {
        return Err(format!("bad chunk: {count} items in {input} bytes"));
    }
    Ok(())
}

/// Polls a work's future, turning a panic into a panic outcome.
struct CatchUnwind(super::works::Running);

impl Future for CatchUnwind {
    type Output = Vec<u8>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<u8>> {
        let future = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(message(status::PANIC, &take_panic_message(panic))),
        }
    }
}
