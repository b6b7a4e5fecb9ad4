//! aplex: an async pool executor.
#![warn(missing_docs, missing_debug_implementations)]

pub mod balance;
mod runtime;
mod sys;
pub mod time;

pub use runtime::{block_on, spawn_local, yield_now, LocalTask, YieldNow};
