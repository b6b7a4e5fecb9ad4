//! Helpers on top of the runtime and the pools, from aioextensions and aioutils.
//!
//! | file | what |
//! |---|---|
//! | `as_completed.rs` | [`as_completed`], [`wait_any`]: handles' outcomes in completion order |
//! | `set.rs` | `FutureSet`: poll many futures in one task, re-polling only the woken ones |
//! | `resolve.rs`, `collect.rs` | [`resolve`] and [`collect`]: a few futures at a time, input order |
//! | `rate_limit.rs` | [`RateLimiter`] |
//! | `global.rs` | the lazily started global pool, [`global::configure`], [`global::shutdown`] |
//! | `in_thread.rs`, `generate.rs` | [`in_thread`], [`generate_in_thread`] on the global pool |
//! | `in_process.rs` | [`in_process`] on the global process pool |
//! | `group.rs`, `yielder.rs` | [`Group`], [`Yielder`], [`OrderedYielder`]: async work driven from sync code |
//!
//! This module has no `unsafe` code.

#![forbid(unsafe_code)]

mod as_completed;
mod collect;
mod generate;
pub mod global;
mod group;
#[cfg(feature = "process")]
mod in_process;
mod in_thread;
mod rate_limit;
mod resolve;
mod set;
mod yielder;

pub use as_completed::{as_completed, wait_any, AsCompleted};
pub use collect::{collect, Collect};
pub use generate::{generate_in_thread, GENERATE_CAPACITY};
pub use group::{Group, GroupHandle};
#[cfg(feature = "process")]
pub use in_process::in_process;
pub use in_thread::in_thread;
pub use rate_limit::{RateLimitAcquire, RateLimiter};
pub use resolve::{resolve, Resolve};
pub use yielder::{OrderedYielder, OrderedYielderIter, Yielder, YielderIter};
