//! aplex: an async pool executor.
#![warn(missing_docs, missing_debug_implementations)]

pub mod balance;
mod error;
mod pool;
mod runtime;
pub mod sync;
mod sys;
pub mod time;
pub mod wire;

pub use error::Error;
pub use pool::{Handle, Map, ThreadPool, ThreadPoolBuilder};
pub use runtime::{block_on, spawn_local, yield_now, LocalTask, YieldNow};
