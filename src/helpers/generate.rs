//! `generate_in_thread`: drive a blocking iterator on the global pool and stream its items to
//! async code (aioextensions' `generate_in_thread`).
//!
//! The producer is one closure on the global pool that owns the iterator and the sender of a
//! bounded channel; the caller owns the receiver. The producer pulls an item only after the
//! previous one was accepted by the channel, so at most `capacity` items wait, plus the one in
//! the producer's hand. When the receiver is dropped, the producer's next send fails and it
//! stops pulling and drops the iterator.

use crate::sync::mpsc::{self, Receiver};

/// How many produced items may wait for the consumer before the producer waits.
pub const GENERATE_CAPACITY: usize = 16;

/// Drives the blocking iterator `iter` on the global thread pool (see
/// [`in_thread`](crate::in_thread)) and streams its items through a bounded channel
/// (aioextensions' `generate_in_thread`).
///
/// - Backpressure: at most [`GENERATE_CAPACITY`] items wait unread; then the producer blocks
///   until the consumer takes one.
/// - `recv().await` the receiver from async code, or iterate it (blocking) from sync code. It
///   gives `None` after the last item.
/// - Drop the receiver to stop early: the producer stops pulling at its next send, so the
///   iterator is advanced at most `GENERATE_CAPACITY + 1` items past what was read, then dropped
///   on the pool's thread.
/// - A panic in the iterator ends the stream early (the panic is printed by the panic hook as
///   usual). After [`global::shutdown`](crate::global::shutdown) the stream is empty.
///
/// The iterator holds one pool thread until it ends or the receiver is dropped.
///
/// # Panics
///
/// Panics if the global pool has to start and its threads cannot be started.
///
/// ```
/// let lines = aplex::generate_in_thread((1..=5).map(|i| {
///     std::thread::sleep(std::time::Duration::from_millis(1)); // a blocking read, say
///     format!("line {i}")
/// }));
/// let got = aplex::block_on(async move {
///     let mut lines = lines;
///     let mut got = Vec::new();
///     while let Some(line) = lines.recv().await {
///         got.push(line);
///     }
///     got
/// });
/// assert_eq!(got.len(), 5);
/// assert_eq!(got[4], "line 5");
/// ```
pub fn generate_in_thread<I>(iter: I) -> Receiver<I::Item>
where
    I: IntoIterator,
    I::IntoIter: Send + 'static,
    I::Item: Send + 'static,
{
    let (tx, rx) = mpsc::channel(GENERATE_CAPACITY);
    let iter = iter.into_iter();
    // The handle is not needed: the channel tells the consumer when the producer has ended.
    let handle = super::global::thread_pool().submit(move || {
        for item in iter {
            if tx.send_blocking(item).is_err() {
                break; // the receiver is gone
            }
        }
    });
    drop(handle); // the work runs on; its outcome is not needed
    rx
}
