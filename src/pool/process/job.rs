//! A remote work as the parent sees it: its completion, and how to decode its result.
//!
//! # Ownership rules
//!
//! A `RemoteJob` is shared by the caller's [`Handle`](crate::Handle) and, while it is in
//! flight, by the in-flight table of the worker connection it was sent to (or by a slot's
//! backlog while that slot waits for a replacement worker). The outcome is decided by one
//! swap in its [`Completion`]: the reader thread's result, a cancel, and a worker's death race
//! there, and exactly one wins. The job knows its connection only weakly, to send a cancel
//! frame or to kill the worker; the connection owns the job, not the other way round.
#![forbid(unsafe_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, Weak};

use super::conn::Conn;
use super::works::status;
use crate::pool::cell::{Cancel, Completion, Outcome};
use crate::pool::map::DenseResults;
use crate::runtime::reactor::lock;
use crate::runtime::task::{contain, take_panic_message};
use crate::wire::Wire;
use crate::Error;

/// The parent's view of any remote job, whatever its result type.
pub(crate) trait Pending: Send + Sync {
    /// Decodes the result payload and ends the job with it (unless it already ended).
    fn deliver(&self, payload: &[u8]);
    /// Ends the job with `error` unless it already ended. True if this decided the outcome.
    fn fail(&self, error: Error) -> bool;
    fn is_done(&self) -> bool;
    /// Records the connection the job was sent to.
    fn sent_to(&self, conn: &Arc<Conn>);
    /// The works it carries: 1 for a call, the item count for a map's chunk.
    fn items(&self) -> u64;
}

/// How a job's result payload becomes its value (a chunk's decoder knows the chunk's length).
pub(crate) type Decode<T> = Box<dyn Fn(&[u8]) -> Result<T, Error> + Send + Sync>;

/// One call (or one chunk of a map) sent to a worker process.
pub(crate) struct RemoteJob<T> {
    completion: Completion<T>,
    id: u64,
    decode: Decode<T>,
    /// An async work or a chunk: a cancel frame stops it in the worker.
    cancellable: bool,
    /// A plain work: cancelling it kills its worker.
    kill_on_cancel: bool,
    /// The works it carries (see [`Pending::items`]).
    items: u64,
    conn: Mutex<Weak<Conn>>,
}

impl<T: Send + 'static> RemoteJob<T> {
    pub(crate) fn new(
        id: u64,
        decode: Decode<T>,
        cancellable: bool,
        kill_on_cancel: bool,
        items: u64,
    ) -> Arc<RemoteJob<T>> {
        let completion = Completion::new();
        // Sent at once: a remote work is running from the caller's point of view.
        completion.start(cancellable);
        Arc::new(RemoteJob {
            completion,
            id,
            decode,
            cancellable,
            kill_on_cancel,
            items,
            conn: Mutex::new(Weak::new()),
        })
    }

    fn conn(&self) -> Option<Arc<Conn>> {
        lock(&self.conn).upgrade()
    }

    /// Ends the job with `error` and, if it won, kills the worker running it (a plain work
    /// cannot be stopped otherwise). The worker's other works end `WorkerLost`.
    pub(crate) fn kill(&self, error: Error, why: &str) -> bool {
        if !self.completion.fail(error) {
            return false;
        }
        if let Some(conn) = self.conn() {
            conn.forget(self.id);
            conn.kill(format!("killed {why} (job {})", self.id));
        }
        true
    }
}

impl<T: Send + 'static> Pending for RemoteJob<T> {
    fn deliver(&self, payload: &[u8]) {
        // The decode runs the user's `Wire::decode`, on the pool's reader thread: its panic is
        // this call's outcome, and must not end the reader (which would strand every call
        // after it on this worker).
        let result =
            catch_unwind(AssertUnwindSafe(|| (self.decode)(payload))).unwrap_or_else(|panic| {
                Err(Error::Panicked(format!(
                    "decoding the result panicked: {}",
                    take_panic_message(panic)
                )))
            });
        // Publishing wakes the caller's waker and may drop a value nobody waits for: both
        // user code, contained too.
        contain(|| self.completion.finish(result));
    }

    fn fail(&self, error: Error) -> bool {
        self.completion.fail(error)
    }

    fn is_done(&self) -> bool {
        self.completion.is_done()
    }

    fn sent_to(&self, conn: &Arc<Conn>) {
        *lock(&self.conn) = Arc::downgrade(conn);
    }

    fn items(&self) -> u64 {
        self.items
    }
}

impl<T: Send + 'static> Outcome<T> for RemoteJob<T> {
    fn completion(&self) -> &Completion<T, dyn Send> {
        &self.completion
    }

    fn cancel(&self) -> bool {
        if self.cancellable {
            if self.completion.cancel() == Cancel::Running {
                if let Some(conn) = self.conn() {
                    conn.cancel(self.id);
                }
            }
        } else if self.kill_on_cancel {
            self.kill(Error::Cancelled, "to cancel a running plain work");
        }
        // True exactly when the outcome is `Cancelled`, whoever decided it.
        self.completion.is_cancelled()
    }
}

/// Reads one outcome (status byte, then value or message) from the front of `input`.
/// The outer error means the bytes are malformed.
#[inline]
fn decode_outcome<R: Wire>(input: &mut &[u8]) -> Result<Result<R, Error>, Error> {
    match input.split_first() {
        Some((&status::OK, rest)) => {
            *input = rest;
            R::decode(input).map(Ok).map_err(bad_result)
        }
        _ => decode_failure(input).map(Err),
    }
}

/// Reads an outcome that is not `OK`: its status byte and message.
#[cold]
fn decode_failure(input: &mut &[u8]) -> Result<Error, Error> {
    let text = |input: &mut &[u8]| String::decode(input).map_err(bad_result);
    Ok(match u8::decode(input).map_err(bad_result)? {
        status::REMOTE => Error::Remote(text(input)?),
        status::PANIC => Error::Panicked(text(input)?),
        status::WIRE => Error::Wire(text(input)?),
        other => return Err(Error::Wire(format!("unknown result status {other}"))),
    })
}

#[cold]
fn bad_result(e: crate::wire::WireError) -> Error {
    Error::Wire(format!("bad result from the worker: {e}"))
}

/// The decoder of one call's result.
pub(crate) fn decode_one<R: Wire>(payload: &[u8]) -> Result<R, Error> {
    let mut input = payload;
    let outcome = decode_outcome::<R>(&mut input)?;
    if !input.is_empty() && outcome.is_ok() {
        return Err(Error::Wire(format!(
            "{} trailing bytes after a result",
            input.len()
        )));
    }
    outcome
}

/// The decoder of one chunk's results: `OK`, a count, then an outcome per item; or a whole
/// chunk's error. The count must be the `len` items the chunk carried: a worker that answers
/// with more or fewer is a `Wire` error for the whole chunk, never silently fewer items.
///
/// The values land dense (a `Vec<R>`, the failures by index beside it): for tiny values the
/// reader writes a quarter of the memory a `Result` an item would take.
pub(crate) fn decode_chunk<R: Wire>(payload: &[u8], len: usize) -> Result<DenseResults<R>, Error> {
    let mut input = payload;
    let wire = |e: crate::wire::WireError| Error::Wire(format!("bad chunk result: {e}"));
    if input.first() != Some(&status::OK) {
        return match decode_outcome::<()>(&mut input)? {
            Err(e) => Err(e),
            Ok(()) => Err(Error::Wire("a chunk result without its status".to_string())),
        };
    }
    input = &input[1..];
    let count = u64::decode(&mut input).map_err(wire)?;
    if count != len as u64 {
        return Err(Error::Wire(format!(
            "the worker answered a chunk of {len} items with {count} results"
        )));
    }
    // Each outcome takes at least its status byte, so `count` can be no more than the bytes
    // left; the reservation stays small whatever the count claims (a slot is far larger than a
    // byte), and the vector grows only with outcomes actually decoded.
    if count > input.len() as u64 {
        return Err(Error::Wire(format!(
            "a chunk result claims {count} items in {} bytes",
            input.len()
        )));
    }
    let mut values = Vec::with_capacity(len.min(CHUNK_RESERVE));
    let mut failed = Vec::new();
    // The user's `Wire::decode` may fail or panic on one item. The items before it keep their
    // values; where the next item's bytes begin is unknown after it, so it and the rest of the
    // chunk end with its error.
    let mut broken: Option<Error> = None;
    let mut at = 0;
    let decoded = catch_unwind(AssertUnwindSafe(|| -> Result<(), Error> {
        while at < len {
            // A run of `OK` outcomes, then one failure (or the end).
            match decode_values(&mut input, &mut values, len - at) {
                (n, Ok(())) => at += n,
                (n, Err(e)) => {
                    at += n;
                    broken = Some(bad_result(e));
                    return Ok(());
                }
            }
            if at < len {
                failed.push((at, decode_failure(&mut input)?));
                at += 1;
            }
        }
        Ok(())
    }));
    match decoded {
        Ok(result) => result?,
        Err(panic) => {
            // The item that panicked is the one after those accounted for.
            at = values.len() + failed.len();
            broken = Some(Error::Panicked(format!(
                "decoding the result panicked: {}",
                take_panic_message(panic)
            )));
        }
    }
    if let Some(error) = broken {
        failed.extend((at..len).map(|i| (i, error.duplicate())));
        return Ok(DenseResults { values, failed });
    }
    if !input.is_empty() {
        return Err(Error::Wire(format!(
            "{} trailing bytes after a chunk's results",
            input.len()
        )));
    }
    Ok(DenseResults { values, failed })
}

/// Decodes up to `n` `OK` outcomes from the front of `input` into `values`, and stops before
/// the first outcome that is not `OK`: how many it decoded, and the error of a value that
/// could not be (its outcome then taken). The hot loop of a map's results, in locals the
/// compiler keeps in registers.
fn decode_values<R: Wire>(
    input: &mut &[u8],
    values: &mut Vec<R>,
    n: usize,
) -> (usize, Result<(), crate::wire::WireError>) {
    let mut rest = *input;
    let mut done = 0;
    while done < n {
        let Some((&status::OK, after)) = rest.split_first() else {
            break;
        };
        rest = after;
        match R::decode(&mut rest) {
            Ok(value) => values.push(value),
            Err(e) => {
                *input = rest;
                return (done, Err(e));
            }
        }
        done += 1;
    }
    *input = rest;
    (done, Ok(()))
}

/// The most result slots reserved ahead of decoding a chunk.
const CHUNK_RESERVE: usize = 1024;
