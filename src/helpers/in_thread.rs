//! `in_thread`: run a blocking closure on the global pool (aioextensions' `in_thread`).

use crate::Handle;

/// Runs a blocking closure on the global thread pool and returns its [`Handle`]
/// (aioextensions' `in_thread`).
///
/// The pool starts on first use with 10 threads per core — it is meant for blocking I/O, where
/// threads mostly wait — and can be sized beforehand with
/// [`global::configure`](crate::global::configure). A call starts at once on an idle thread;
/// when every thread is busy, the excess calls wait in one queue and start **first come, first
/// served**, each on the first thread to free up (the pool is built with
/// [`shared_queue`](crate::ThreadPoolBuilder::shared_queue)). Await the handle from async code (the caller's executor keeps running) or
/// [`wait`](Handle::wait) on it.
///
/// After [`global::shutdown`](crate::global::shutdown) the handle resolves
/// `Err(Error::ShutDown)`. A panic in the closure resolves it `Err(Error::Panicked(..))`.
///
/// # Panics
///
/// Panics if the global pool has to start and its threads cannot be started.
///
/// ```
/// use std::sync::{Arc, Barrier};
/// // Four blocking calls that each return only once all four are in: they run side by side.
/// let all_in = Arc::new(Barrier::new(4));
/// let calls: Vec<_> = (0..4)
///     .map(|i| {
///         let all_in = Arc::clone(&all_in);
///         aplex::in_thread(move || {
///             all_in.wait(); // a blocking call
///             i
///         })
///     })
///     .collect();
/// let sum = aplex::block_on(async {
///     let mut sum = 0;
///     for handle in calls {
///         sum += handle.await.unwrap();
///     }
///     sum
/// });
/// assert_eq!(sum, 6);
/// ```
pub fn in_thread<F, T>(f: F) -> Handle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    super::global::thread_pool().submit(f)
}
