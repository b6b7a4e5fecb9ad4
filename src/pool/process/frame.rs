//! Frames: the envelope of every message between a parent and a worker process.
//!
//! ```text
//! u32 LE length (of what follows) | u8 kind | u64 LE job id | payload (Wire-encoded)
//! ```
//!
//! | kind | direction | job id | payload |
//! |---|---|---|---|
//! | `HELLO_PARENT` | parent → worker | 0 | [`Hello`] (with the slot, `max_works`, `max_frame`) |
//! | `HELLO_WORKER` | worker → parent | 0 | [`Hello`] (with its pid, host and slot) |
//! | `CALL` | parent → worker | the job | `u32` work index, the argument |
//! | `CHUNK` | parent → worker | the job | `u32` work index, `u64` count, the arguments |
//! | `CANCEL` | parent → worker | the job | nothing |
//! | `RESULT` | worker → parent | the job | a status byte and value or message; for a chunk, `u64` count, then that per item |
//! | `SHUTDOWN` | parent → worker | 0 | nothing: finish what you have, then exit |
//! | `TERMINATE` | parent → worker | 0 | nothing: exit now, even in the middle of a plain work |
//!
//! The two hellos have different kinds and magic strings, so a program that echoes its input
//! (`cat`) is told apart from a worker. A length over the receiver's maximum is an error before
//! anything is allocated for it.
//!
//! The user's `max_frame` bounds what works send: calls, chunks, results. The protocol's own
//! frames are bounded by the protocol: a hello by [`hello_max`] (it names every work), and
//! the error a worker sends in place of a result over the maximum by [`read_max`]'s floor.
#![forbid(unsafe_code)]

use std::fmt;
use std::io::{self, Read};

use crate::wire::{Wire, WireError};

/// The protocol's version; both hellos carry it and must agree.
pub(crate) const VERSION: u32 = 2;
/// Bytes of the header after the length: the kind and the job id.
const HEADER: usize = 1 + 8;
/// The least `max_frame` a pool takes: a call's header and its work's index (a work whose
/// argument and result encode to nothing, and the error result, need no more).
pub(crate) const MIN_MAX_FRAME: usize = HEADER + 4;
/// Room for the frames a worker sends of its own whatever the user's `max_frame`: the error
/// that replaces a result over the maximum (about a hundred bytes).
const PROTOCOL_ROOM: usize = 1024;
/// Room in a hello for what is not a work name: its magic, its host name, its numbers.
const HELLO_ROOM: usize = 1 << 20;

pub(crate) const HELLO_PARENT: u8 = 1;
pub(crate) const HELLO_WORKER: u8 = 2;
pub(crate) const CALL: u8 = 3;
pub(crate) const CHUNK: u8 = 4;
pub(crate) const CANCEL: u8 = 5;
pub(crate) const RESULT: u8 = 6;
pub(crate) const SHUTDOWN: u8 = 7;
pub(crate) const TERMINATE: u8 = 8;

pub(crate) const PARENT_MAGIC: &str = "aplex-parent";
pub(crate) const WORKER_MAGIC: &str = "aplex-worker";

/// A line break early in every hello. A launcher that passes the worker's output on line by
/// line (plain `srun`, without `-u`) then delivers the hello's first bytes and holds the rest:
/// the parent sees a partial hello and says what is wrong, instead of seeing nothing.
const LINE_PROBE: &str = "\n";

/// Starts a frame in `out`; returns where it starts, for [`finish`].
pub(crate) fn begin(out: &mut Vec<u8>, kind: u8, id: u64) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    out.extend_from_slice(&id.to_le_bytes());
    start
}

/// Writes the length of the frame begun at `start`. Errors if it is over `max` (the frame is
/// then removed from `out`).
pub(crate) fn finish(out: &mut Vec<u8>, start: usize, max: usize) -> Result<(), String> {
    let len = out.len() - start - 4;
    if len > max || u32::try_from(len).is_err() {
        out.truncate(start);
        return Err(format!(
            "a frame of {len} bytes is over the maximum of {max} bytes"
        ));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(())
}

/// The largest frame a parent reads from a worker that said hello: `max_frame`, or a little
/// more when it is tiny, so the worker's own error frames always pass.
pub(crate) fn read_max(max_frame: usize) -> usize {
    max_frame.max(PROTOCOL_ROOM)
}

/// The largest hello a side reads, whatever the user's `max_frame`: a hello names every work,
/// so it is bounded by the registry (here twice over: another build's hello, with more works,
/// is read to be told apart) and a host name, not by the size of a work's payload. The reader
/// never allocates for a length it has not received, so the bound costs nothing.
pub(crate) fn hello_max(names: &[&str]) -> usize {
    let names: usize = names.iter().map(|n| n.len().saturating_add(8)).sum();
    names.saturating_mul(2).saturating_add(HELLO_ROOM)
}

/// A whole frame with no payload.
pub(crate) fn empty(out: &mut Vec<u8>, kind: u8, id: u64) {
    let start = begin(out, kind, id);
    let _ = finish(out, start, usize::MAX); // 9 bytes: always fits
}

/// The hello both sides send first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hello {
    pub(crate) magic: String,
    pub(crate) version: u32,
    pub(crate) pid: u32,
    /// Worker only: the host it runs on (`APLEX_WORKER_HOST`, else the machine's name).
    pub(crate) host: String,
    /// The slot index: the worker's from `APLEX_WORKER_SLOT` (if set), the parent's own.
    pub(crate) slot: Option<u64>,
    pub(crate) names: Vec<String>,
    /// Parent only: how many works run at once in the worker.
    pub(crate) max_works: u64,
    /// Parent only: the largest frame either side may send.
    pub(crate) max_frame: u64,
}

impl Wire for Hello {
    fn encode(&self, out: &mut Vec<u8>) {
        self.magic.encode(out);
        crate::wire::encode_str(LINE_PROBE, out);
        self.version.encode(out);
        self.pid.encode(out);
        self.host.encode(out);
        self.slot.encode(out);
        self.names.encode(out);
        self.max_works.encode(out);
        self.max_frame.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        Ok(Hello {
            magic: String::decode(input)?,
            version: {
                let _probe = String::decode(input)?;
                u32::decode(input)?
            },
            pid: u32::decode(input)?,
            host: String::decode(input)?,
            slot: Option::decode(input)?,
            names: Vec::decode(input)?,
            max_works: u64::decode(input)?,
            max_frame: u64::decode(input)?,
        })
    }
}

impl Hello {
    /// Checks the other side's hello against ours: magic, version, work names.
    pub(crate) fn check(&self, magic: &str, names: &[&str]) -> Result<(), String> {
        if self.magic != magic {
            return Err(format!(
                "expected a hello from {magic:?}, got {:?}",
                self.magic
            ));
        }
        if self.version != VERSION {
            return Err(format!(
                "protocol version {} on the other side, {VERSION} here (another aplex: is \
                 the same build of the program on every host?)",
                self.version
            ));
        }
        if self
            .names
            .iter()
            .map(String::as_str)
            .ne(names.iter().copied())
        {
            return Err(format!(
                "the works differ: {:?} on the other side, {names:?} here (is the same build \
                 of the program at that path on every host?)",
                self.names
            ));
        }
        Ok(())
    }
}

/// One frame, borrowed from the reader's buffer.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) kind: u8,
    pub(crate) id: u64,
    pub(crate) payload: &'a [u8],
}

/// A frame length the reader cannot accept: the stream cannot be read past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The length field is over the reader's maximum.
    TooLong { len: usize, max: usize },
    /// The length field is too short for the kind and job id.
    TooShort { len: usize },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { len, max } => {
                write!(
                    f,
                    "a frame of {len} bytes is over the maximum of {max} bytes"
                )
            }
            FrameError::TooShort { len } => {
                write!(f, "a frame of {len} bytes is too short for its header")
            }
        }
    }
}

impl From<FrameError> for String {
    fn from(error: FrameError) -> String {
        error.to_string()
    }
}

/// Reads frames from a byte stream in large reads, and cuts them out of its buffer.
///
/// The buffer is zeroed once when it grows and then reused, so a read costs no clearing. It
/// grows with what has arrived, never with what a length field declares: a sender that declares
/// a large frame and sends little of it gets a buffer of what it sent, at most doubled (and never
/// more than [`GROW_AHEAD`] beyond it) plus one ordinary read.
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    /// Start of the bytes not yet handed out.
    start: usize,
    /// End of the bytes read.
    end: usize,
    /// Largest frame accepted (the length field's value).
    max: usize,
}

/// The most a reader asks for in one read when no large frame is pending.
const READ_SIZE: usize = 64 * 1024;
/// The most a reader grows its buffer by ahead of the data of a large frame.
const GROW_AHEAD: usize = 16 << 20;
/// Bytes of the length field.
const LEN_FIELD: usize = 4;

impl FrameReader {
    pub(crate) fn new(max: usize) -> FrameReader {
        FrameReader {
            buf: vec![0; READ_SIZE],
            start: 0,
            end: 0,
            max,
        }
    }

    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Reads once from `r` into the buffer. `Ok(0)` is end of file.
    pub(crate) fn fill(&mut self, r: &mut impl Read) -> io::Result<usize> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
            if self.buf.len() > 2 * GROW_AHEAD {
                self.buf = vec![0; READ_SIZE]; // do not keep a large frame's buffer
            }
        }
        if self.buf.len() - self.end < READ_SIZE / 2 {
            self.make_room();
        }
        let n = loop {
            match r.read(&mut self.buf[self.end..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.end += n;
        Ok(n)
    }

    /// Moves the bytes not yet handed out to the front, and grows the buffer if that did not
    /// leave room for half an ordinary read.
    fn make_room(&mut self) {
        let arrived = self.end - self.start;
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, arrived);
        }
        if self.buf.len() - self.end >= READ_SIZE / 2 {
            return;
        }
        // Room for the rest of a pending frame, but never more than what has arrived (so a
        // large frame that keeps coming grows the buffer by doubling), nor more than
        // GROW_AHEAD; or for one ordinary read.
        let missing = match self.frame_len() {
            Some(len) if len <= self.max => len.saturating_add(LEN_FIELD).saturating_sub(arrived),
            _ => 0, // unknown yet, or `next` will refuse it
        };
        let step = arrived.clamp(READ_SIZE, GROW_AHEAD);
        let size = arrived.saturating_add(missing.clamp(READ_SIZE, step));
        // Exactly: `resize` alone may double the capacity.
        self.buf.reserve_exact(size - self.buf.len());
        self.buf.resize(size, 0);
    }

    /// The length field of the frame at the front, if it is in.
    fn frame_len(&self) -> Option<usize> {
        let head = self.buf[..self.end].get(self.start..self.start + LEN_FIELD)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        // Lossless where usize has 32 bits or more; elsewhere, over any maximum.
        Some(usize::try_from(len).unwrap_or(usize::MAX))
    }

    /// The next whole frame in the buffer, `Ok(None)` if it is not all in yet.
    ///
    /// # Errors
    ///
    /// A length over the maximum, or too short for a header: the stream cannot be read on.
    #[cfg(test)] // the reading threads use `next_at`
    pub(crate) fn next(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        Ok(self.next_at()?.map(|(kind, id, at)| Frame {
            kind,
            id,
            payload: &self.buf[at],
        }))
    }

    /// The bytes at `at`, a payload range from [`next_at`](FrameReader::next_at); valid
    /// until the next [`fill`](FrameReader::fill).
    pub(crate) fn slice(&self, at: std::ops::Range<usize>) -> &[u8] {
        &self.buf[at]
    }

    /// Like [`next`](FrameReader::next), with the payload as a range of the buffer.
    pub(crate) fn next_at(
        &mut self,
    ) -> Result<Option<(u8, u64, std::ops::Range<usize>)>, FrameError> {
        let Some(len) = self.frame_len() else {
            return Ok(None);
        };
        let too_long = FrameError::TooLong { len, max: self.max };
        if len > self.max {
            return Err(too_long);
        }
        if len < HEADER {
            return Err(FrameError::TooShort { len });
        }
        let Some(total) = len.checked_add(LEN_FIELD) else {
            return Err(too_long); // only where usize is 32 bits wide
        };
        if self.end - self.start < total {
            return Ok(None);
        }
        let at = self.start + LEN_FIELD;
        self.start += total;
        let mut id = [0; 8];
        id.copy_from_slice(&self.buf[at + 1..at + HEADER]);
        Ok(Some((
            self.buf[at],
            u64::from_le_bytes(id),
            at + HEADER..at + len,
        )))
    }
}

#[cfg(test)]
mod tests;
