//! aplex: an async pool executor with no dependencies.
//!
//! A pool of worker threads, each running its own small waker-based executor and `poll(2)`
//! reactor: one worker runs hundreds of concurrent async works, and N workers use N cores.
//! Callers get [`Handle`]s they can block on or `.await` from any executor.
//!
//! # A tour
//!
//! **One thread's engine.** [`block_on`] runs a future on the calling thread with an executor
//! and a reactor, so [`spawn_local`] tasks, [`time`] and [`io`] work inside it:
//!
//! ```
//! use std::time::Duration;
//! let total = aplex::block_on(async {
//!     let a = aplex::spawn_local(async {
//!         aplex::time::sleep(Duration::from_millis(5)).await;
//!         1
//!     });
//!     let b = aplex::spawn_local(async { 2 });
//!     a.await + b.await
//! });
//! assert_eq!(total, 3);
//! ```
//!
//! **The pool.** [`ThreadPool::submit`] runs a plain closure; [`ThreadPool::spawn`] runs an
//! async work whose future stays on its worker (it need not be `Send`);
//! [`ThreadPool::map`] keeps input order:
//!
//! ```
//! use std::time::Duration;
//! let pool = aplex::ThreadPool::new(2);
//! let plain = pool.submit(|| 6 * 7);
//! let not_send = pool.spawn(|| async {
//!     let local = std::rc::Rc::new(21);
//!     aplex::time::sleep(Duration::from_millis(1)).await;
//!     *local * 2
//! });
//! assert_eq!(plain.wait(), Ok(42));
//! assert_eq!(aplex::block_on(not_send), Ok(42));
//! let doubled: Vec<_> = pool.map(|x: u32| x * 2, 1..=3).map(Result::unwrap).collect();
//! assert_eq!(doubled, vec![2, 4, 6]);
//! ```
//!
//! **Channels and semaphores** work across threads and executors, with async and blocking
//! sides:
//!
//! ```
//! use aplex::sync::{mpsc, Semaphore};
//! let (tx, mut rx) = mpsc::channel(2);
//! std::thread::spawn(move || {
//!     for i in 0..5 {
//!         tx.send_blocking(i).unwrap(); // waits while the channel is full
//!     }
//! });
//! let got: Vec<i32> = aplex::block_on(async {
//!     let permits = Semaphore::new(4);
//!     let _three = permits.acquire_many(3).await; // all three at once, or none
//!     let mut got = Vec::new();
//!     while let Some(v) = rx.recv().await {
//!         got.push(v);
//!     }
//!     got
//! });
//! assert_eq!(got, vec![0, 1, 2, 3, 4]);
//! ```
//!
//! **The rest of the crate:**
//!
//! - [`ProcessPool`]: works declared with [`works!`] run in worker processes over stdin/stdout
//!   pipes ([`serve_if_worker`] first in `main`); a crashed worker is replaced and its works
//!   end [`Error::WorkerLost`]. The [`wire`] format carries arguments and results.
//! - [`ElasticPool`]: one priority queue, workers between a minimum and a maximum, a bounded
//!   queue, `drain`, `resize` and a shutdown report.
//! - [`ConnectionPool`]: connections with a max size, max life, health check and clean-up.
//! - Helpers from aioextensions and aioutils: [`collect`], [`resolve`], [`RateLimiter`],
//!   [`in_thread`], [`in_process`], [`generate_in_thread`], [`Group`], [`Yielder`],
//!   [`OrderedYielder`], and the [`global`] pools behind them.
//! - [`balance`]: how a pool picks a worker for each work.
//!
//! Every submitted work ends in exactly one outcome: its value or an [`Error`] (`Panicked`,
//! `Cancelled`, `TimedOut`, `WorkerLost`, `ShutDown`). A panic in a work never kills its worker
//! (built with `panic = "abort"`, it ends the process instead: see the README).
//!
//! # Features
//!
//! Each feature is a part of the crate a build can leave out; all are on by default. With
//! `default-features = false` the crate is the runtime ([`block_on`], [`spawn_local`]),
//! [`time`], [`sync`], [`balance`] and the [`ThreadPool`] with its [`Handle`]s and [`Map`]s.
//!
//! | feature | adds |
//! |---|---|
//! | `process` | [`ProcessPool`], [`works!`], [`serve_if_worker`], [`WORKER_ENV`], the [`wire`] format |
//! | `elastic` | [`ElasticPool`] |
//! | `conn-pool` | [`ConnectionPool`] |
//! | `io` | [`io`]: async TCP and Unix sockets, [`io::Async`] over any fd |
//! | `helpers` | [`collect`], [`resolve`], [`RateLimiter`], [`in_thread`], [`generate_in_thread`], [`Group`], [`Yielder`], [`OrderedYielder`], [`global`]; with `process` too, [`in_process`] |
//!
//! # Platforms
//!
//! Unix only: Linux (tested), Android, macOS, FreeBSD, NetBSD, OpenBSD and DragonFly
//! (compile-checked); other Unixes build with fallbacks. The README's "Platforms" section says
//! what differs on each.
#![warn(missing_docs, missing_debug_implementations)]
// With a feature off, the docs above still name its items: those links cannot resolve then.
#![cfg_attr(
    not(all(
        feature = "process",
        feature = "elastic",
        feature = "conn-pool",
        feature = "io",
        feature = "helpers"
    )),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(not(unix))]
compile_error!(
    "aplex supports Unix only: Linux, Android, macOS, FreeBSD, NetBSD, OpenBSD and DragonFly \
     (other Unixes build with fallbacks). Its reactor is poll(2), its process pool runs on \
     pipes, fds and process groups; Windows and wasm have none of these."
);

pub mod balance;
#[cfg(feature = "conn-pool")]
mod conn_pool;
mod error;
#[cfg(feature = "helpers")]
mod helpers;
#[cfg(feature = "io")]
pub mod io;
mod pool;
mod runtime;
pub mod sync;
mod sys;
pub mod time;
#[cfg(feature = "process")]
pub mod wire;

#[cfg(feature = "conn-pool")]
pub use conn_pool::{ConnectionPool, ConnectionPoolBuilder, ConnectionPoolStats, Pooled};
pub use error::Error;
#[cfg(feature = "helpers")]
pub use helpers::global;
#[cfg(all(feature = "helpers", feature = "process"))]
pub use helpers::in_process;
#[cfg(feature = "helpers")]
pub use helpers::{as_completed, wait_any, AsCompleted};
#[cfg(feature = "helpers")]
pub use helpers::{
    collect, generate_in_thread, in_thread, resolve, Collect, Group, GroupHandle, OrderedYielder,
    OrderedYielderIter, RateLimitAcquire, RateLimiter, Resolve, Yielder, YielderIter,
    GENERATE_CAPACITY,
};
#[cfg(feature = "process")]
pub use pool::{
    serve_if_worker, ProcessPool, ProcessPoolBuilder, Registry, SlotInfo, SlotState, Work,
    WORKER_ARG, WORKER_ENV, WORKER_ENV_VALUE, WORKER_HOST_ENV, WORKER_SLOT_ENV,
};
#[cfg(feature = "elastic")]
pub use pool::{
    Apply, ElasticPool, ElasticPoolBuilder, ElasticStats, Priority, ShutdownOptions, ShutdownReport,
};
pub use pool::{Handle, Map, ThreadPool, ThreadPoolBuilder};
/// What [`works!`] expands to uses; not part of the API.
#[cfg(feature = "process")]
#[doc(hidden)]
pub mod __private {
    pub use crate::pool::process_private::{index_of, run_plain, start_async, Entry, Running};
}
pub use runtime::{block_on, spawn_local, yield_now, LocalTask, YieldNow};

/// The README's examples, run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(all(
    doctest,
    feature = "process",
    feature = "elastic",
    feature = "conn-pool",
    feature = "io",
    feature = "helpers"
))]
pub struct ReadmeDoctests;
