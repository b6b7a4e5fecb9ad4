//! Pools of workers: the thread pool, and what every pool shares (handles, work cells, maps).

mod cell;
#[cfg(feature = "elastic")]
mod elastic;
mod handle;
mod map;
mod picker;
#[cfg(feature = "process")]
mod process;
mod queues;
mod shared_queue;
#[cfg(feature = "process")]
#[doc(hidden)]
pub use process::works as process_private;
mod thread;
mod worker;

#[cfg(feature = "elastic")]
pub use elastic::{
    Apply, ElasticPool, ElasticPoolBuilder, ElasticStats, Priority, ShutdownOptions, ShutdownReport,
};
pub use handle::Handle;
pub use map::Map;
#[cfg(feature = "process")]
pub use process::{
    serve_if_worker, ProcessPool, ProcessPoolBuilder, Registry, SlotInfo, SlotState, Work,
    WORKER_ARG, WORKER_ENV, WORKER_ENV_VALUE, WORKER_HOST_ENV, WORKER_SLOT_ENV,
};
pub use thread::{Builder as ThreadPoolBuilder, ThreadPool};
