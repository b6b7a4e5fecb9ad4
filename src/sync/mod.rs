//! Channels and synchronization primitives with an async side and a blocking side.
//!
//! | primitive | async | blocking | non-blocking |
//! |---|---|---|---|
//! | [`oneshot`] | `rx.await` | `rx.recv_blocking()` | `rx.try_recv()`, `tx.send(v)`, `rx.is_empty()` |
//! | [`mpsc`] | `tx.send(v).await`, `tx.reserve().await`, `rx.recv().await`, `rx.recv_many(..).await` | `send_blocking`, `recv_blocking`, iterating | `try_send`, `try_reserve`, `try_recv`, `rx.poll_next(cx)` |
//! | [`Semaphore`] | `acquire().await`, `acquire_many(k).await`, `checked_acquire().await` | `acquire_blocking()` | `try_acquire()`, `close()` |
//! | [`Event`] | `wait().await` | `wait_blocking()`, `wait_timeout(d)` | `is_set()` |
//!
//! They are built from std alone (`Mutex`, `Waker`, `thread::park`) and know nothing about any
//! executor: their futures work under [`block_on`](crate::block_on), on a pool worker, in another
//! runtime, or driven by the blocking methods, and every handle works across threads.
//!
//! ```
//! use aplex::sync::{mpsc, oneshot};
//!
//! let (tx, mut rx) = mpsc::channel(8);
//! let (done_tx, done_rx) = oneshot::channel();
//! std::thread::spawn(move || {
//!     let mut sum = 0;
//!     while let Some(n) = rx.recv_blocking() {
//!         sum += n;
//!     }
//!     done_tx.send(sum).unwrap();
//! });
//! aplex::block_on(async {
//!     for n in 1..=10 {
//!         tx.send(n).await.unwrap();
//!     }
//!     drop(tx);
//!     assert_eq!(done_rx.await, Ok(55));
//! });
//! ```
//!
//! # Thread safety
//!
//! `Semaphore` and `Event` are `Send + Sync`; channel halves are `Send` (and `Sync`) when the
//! value type is `Send`. A channel of a non-`Send` type stays on its thread:
//!
//! ```compile_fail
//! fn assert_send<T: Send>() {}
//! assert_send::<aplex::sync::mpsc::Sender<std::rc::Rc<u8>>>();
//! ```
//!
//! # Shared rules
//!
//! - Each primitive has one core that never blocks (`try_*`, or a poll that registers a waker);
//!   the future polls it, and the blocking method drives that future with a thread parker.
//! - Every pending future owns a waiter entry and removes it when dropped, so cancelling an await
//!   loses no value and leaks no permit.
//! - No waker is woken, and no user value dropped, while an internal lock is held; internal locks
//!   ignore poisoning.
//! - This module has no `unsafe` code.

#![forbid(unsafe_code)]

pub(crate) mod blocking;
mod error;
mod event;
pub mod mpsc;
pub mod oneshot;
mod semaphore;
mod waiters;

pub use event::{Event, WaitFuture};
pub use semaphore::{
    AcquireArcFuture, AcquireFuture, Semaphore, SemaphoreGuard, SemaphoreGuardArc,
};
pub use semaphore::{AcquireError, CheckedAcquireFuture};
