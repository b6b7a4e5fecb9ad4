//! One thread's engine: the executor, the reactor, and `block_on`.
//!
//! Nothing here knows about pools: a pool worker is a thread that runs [`block_on`] on a loop
//! that takes in works.

mod block_on;
mod cores;
pub(crate) mod executor;
pub(crate) mod reactor;
pub(crate) mod task;
mod timers;
mod wakeup;

pub use block_on::block_on;
pub(crate) use cores::available_cores;
pub(crate) use executor::set_thread_spin;
pub use executor::{spawn_local, yield_now, YieldNow};
pub use task::LocalTask;
