//! A process pool's `map` input: its items cut into chunk frames, sent in batches.
//!
//! A map keeps a window of chunks in flight and asks for one more each time one comes back.
//! Sent one by one, every chunk would cost its own write, its own wake-up of the worker's
//! input thread and executor, its own result write and its own wake-up of the reader: for
//! chunks of tiny works those wake-ups, not the works, are the time. So the source cuts a
//! **batch** of chunks, routes each (so the balancer still sees every chunk), and sends each
//! worker its share in one write; it then hands the map one chunk at a time from the batch. A
//! worker reads the batch in one read, runs its chunks in one turn and answers them in one
//! write.
//!
//! The next batch leaves as soon as less than a batch is left to hand out, not when none is:
//! the workers then have the next batch in their pipes while they answer the current one, and
//! never wait idle for the map to drain it first. Each batch costs about four wake-ups per
//! worker (the worker's input thread and executor, the pool's reader, the map's caller), so
//! batches are large: with chunks of 256 tiny works, batches of 8192 items rather than 2048
//! cut the context switches of a million items from about 3,200 to about 1,000. A batch also
//! stops at a mebibyte of frames: large items amortize their wake-ups without batches, and
//! what is sent ahead of the map's window stays within about two mebibytes (and a chunk).
//!
//! # Ownership rules
//!
//! The source is owned by its map. Chunks it has sent but not yet handed to the map are its
//! own: dropping the source (the map dropped, or timed out) cancels them, as the map cancels
//! the ones it holds.

use std::collections::VecDeque;
use std::iter::Peekable;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::job::{decode_chunk, Pending, RemoteJob};
use super::shared::Shared;
use super::slot::Queued;
use super::{frame, Arc, Error, Handle};
use crate::pool::map::DenseResults;
use crate::wire::Wire;

/// A batch holds about this many items (and at least one chunk), or [`BATCH_BYTES`]. The
/// items in flight are at most the map's window and two batches.
const BATCH_ITEMS: usize = 8192;
/// A batch stops growing once its frames hold this many bytes (after at least one chunk):
/// batching saves wake-ups for tiny items; large ones need no batches to amortize theirs, and
/// must not pile up in memory.
const BATCH_BYTES: usize = 1 << 20;
/// The most chunks in one batch.
const BATCH_CHUNKS: usize = 64;
/// The most bytes of a chunk's frame reserved ahead of encoding its items.
const RESERVE_CAP: usize = 64 << 10;

/// How many chunks of `n` items a batch holds.
fn batch_chunks(n: usize) -> usize {
    (BATCH_ITEMS / n.max(1)).clamp(1, BATCH_CHUNKS)
}

/// The source of a process pool's map: see the module docs.
pub(super) struct ChunkSource<A, R, I: Iterator<Item = A>> {
    shared: Arc<Shared>,
    iter: Peekable<I>,
    /// The work's index on the wire.
    index: u32,
    /// Why the work cannot run in this pool, if it cannot (every chunk fails with it).
    refused: Option<String>,
    /// Chunks sent and not yet handed to the map, oldest first, with their frames' sizes.
    ahead: VecDeque<(usize, Handle<DenseResults<R>>, usize)>,
    /// The bytes of the frames in `ahead`.
    ahead_bytes: usize,
}

impl<A, R, I> ChunkSource<A, R, I>
where
    A: Wire,
    R: Wire + Send + 'static,
    I: Iterator<Item = A>,
{
    pub(super) fn new(
        shared: Arc<Shared>,
        iter: I,
        index: u32,
        refused: Option<String>,
    ) -> ChunkSource<A, R, I> {
        ChunkSource {
            shared,
            iter: iter.peekable(),
            index,
            refused,
            ahead: VecDeque::new(),
            ahead_bytes: 0,
        }
    }

    /// The next chunk of up to `n` items, sent (or failed): its length and handle; `None` at
    /// the end of the input.
    pub(super) fn next_chunk(&mut self, n: usize) -> Option<(usize, Handle<DenseResults<R>>)> {
        let short = self.ahead.len() < batch_chunks(n) && self.ahead_bytes < BATCH_BYTES;
        if short && self.iter.peek().is_some() {
            self.send_batch(n);
        }
        let (len, handle, bytes) = self.ahead.pop_front()?;
        self.ahead_bytes -= bytes;
        Some((len, handle))
    }

    /// Cuts up to a batch of chunks of `n` items from the input and sends them.
    fn send_batch(&mut self, n: usize) {
        let chunks = batch_chunks(n);
        let mut calls = Vec::with_capacity(chunks);
        // The input (the user's iterator, the items' `Wire::encode`) may panic: the chunks cut
        // before it are already awaited in `ahead`, so they are sent all the same, and the
        // panic goes on to the caller afterwards.
        let mut batch_bytes = 0;
        let cutting = catch_unwind(AssertUnwindSafe(|| {
            for _ in 0..chunks {
                if self.iter.peek().is_none() || batch_bytes >= BATCH_BYTES {
                    break;
                }
                let (len, handle, call) = self.cut(n);
                let bytes = call.as_ref().map_or(0, |(_, _, frame)| frame.len());
                batch_bytes += bytes;
                self.ahead_bytes += bytes;
                self.ahead.push_back((len, handle, bytes));
                if let Some(call) = call {
                    calls.push(call);
                }
            }
        }));
        self.shared.submit_many(calls);
        if let Err(panic) = cutting {
            resume_unwind(panic);
        }
    }

    /// Encodes the next chunk of up to `n` items into a frame: its length, its handle, and
    /// what to send (`None` if it failed already: a refused work, a frame over the maximum).
    fn cut(&mut self, n: usize) -> (usize, Handle<DenseResults<R>>, Option<Queued>) {
        let shared = &self.shared;
        let id = shared.next_id();
        let guess = n.saturating_mul(std::mem::size_of::<A>()).min(RESERVE_CAP);
        let mut bytes = Vec::with_capacity(guess + 32);
        let start = frame::begin(&mut bytes, frame::CHUNK, id);
        self.index.encode(&mut bytes);
        let count_at = bytes.len();
        0u64.encode(&mut bytes);
        let mut len = 0usize;
        for item in self.iter.by_ref().take(n) {
            item.encode(&mut bytes);
            len += 1;
        }
        bytes[count_at..count_at + 8].copy_from_slice(&(len as u64).to_le_bytes());
        let decode = Box::new(move |payload: &[u8]| decode_chunk::<R>(payload, len));
        let job = RemoteJob::new(id, decode, true, false, len as u64);
        let handle = Handle::new(job.clone() as Arc<dyn crate::pool::cell::Outcome<_>>);
        if let Some(e) = &self.refused {
            job.fail(Error::Wire(e.clone()));
            return (len, handle, None);
        }
        match frame::finish(&mut bytes, start, shared.max_frame) {
            Ok(()) => (len, handle, Some((id, job, bytes))),
            Err(e) => {
                job.fail(Error::Wire(e));
                (len, handle, None)
            }
        }
    }
}

impl<A, R, I: Iterator<Item = A>> Drop for ChunkSource<A, R, I> {
    fn drop(&mut self) {
        // Nobody will read these results: do not run what has not started.
        for (_, handle, _) in self.ahead.drain(..) {
            let _ = handle.cancel();
        }
    }
}
