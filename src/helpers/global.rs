//! The global pool behind [`in_thread`](crate::in_thread) and
//! [`generate_in_thread`](crate::generate_in_thread): started lazily on first use, configurable
//! once before that, shut down on request.
//!
//! ```
//! use aplex::global::{self, GlobalConfig};
//!
//! // Before first use: size the pool (default: 10 threads per core, for blocking I/O).
//! global::configure(GlobalConfig { threads: Some(4), ..Default::default() }).unwrap();
//! assert_eq!(aplex::in_thread(|| 6 * 7).wait(), Ok(42));
//! // Too late now: it has started.
//! assert!(global::configure(GlobalConfig::default()).is_err());
//! global::shutdown();
//! assert_eq!(aplex::in_thread(|| 1).wait(), Err(aplex::Error::ShutDown));
//! ```
//!
//! # At process exit
//!
//! Like any global, the pool is not dropped when `main` returns: its threads are not joined,
//! and a closure still running is cut off when the process exits. Call [`shutdown`] at the end
//! of `main` to let accepted closures finish first.
//!
//! # Ownership rules
//!
//! `GLOBAL` holds the configuration until the pool starts, then the pool (an `Arc`, so a caller
//! submits without holding the lock). The lock is held to read or change that state and to
//! build the pool (which runs no user code); never while a closure runs or while the pool shuts
//! down, so a closure may itself call [`in_thread`](crate::in_thread) or [`shutdown`].

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::runtime::reactor::lock;
use crate::ThreadPool;
#[cfg(feature = "process")]
use crate::{Error, ProcessPool, Registry};

/// How many threads per core the global pool has by default: its closures mostly wait on I/O.
const THREADS_PER_CORE: usize = 10;

/// The settings of the global pool; fields left out with `..Default::default()` keep their
/// defaults (always write it that way: more fields may come).
///
/// ```
/// let config = aplex::global::GlobalConfig { threads: Some(8), ..Default::default() };
/// assert_eq!(config.threads, Some(8));
/// assert_eq!(config.thread_name, "aplex-global");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalConfig {
    /// Threads of the pool behind `in_thread` (default `None`: 10 per core).
    pub threads: Option<usize>,
    /// The prefix of those threads' names (default `"aplex-global"`).
    pub thread_name: String,
    /// Worker processes of the pool behind `in_process` (default `None`: one per core).
    pub processes: Option<usize>,
}

impl Default for GlobalConfig {
    fn default() -> GlobalConfig {
        GlobalConfig {
            threads: None,
            thread_name: "aplex-global".to_string(),
            processes: None,
        }
    }
}

/// Why [`configure`] refused a configuration.
///
/// ```
/// use aplex::global::{configure, ConfigureError, GlobalConfig};
/// let zero = GlobalConfig { threads: Some(0), ..Default::default() };
/// assert_eq!(configure(zero), Err(ConfigureError::ZeroThreads));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigureError {
    /// The global pool has started already (or was shut down): it can no longer be changed.
    AlreadyStarted,
    /// `threads` or `processes` was `Some(0)`.
    ZeroThreads,
}

impl fmt::Display for ConfigureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigureError::AlreadyStarted => f.write_str("the global pool has already started"),
            ConfigureError::ZeroThreads => f.write_str("the global pool needs at least one thread"),
        }
    }
}

impl std::error::Error for ConfigureError {}

enum Global {
    /// Not started; the configuration to start with.
    Idle(Option<GlobalConfig>),
    Running(Arc<ThreadPool>),
    /// Shut down; kept so that later submissions resolve `Error::ShutDown`.
    Stopped(Arc<ThreadPool>),
}

static GLOBAL: Mutex<Global> = Mutex::new(Global::Idle(None));

/// Sets the global pool's configuration. Call it before the first use of the pool (the first
/// [`in_thread`](crate::in_thread) or [`generate_in_thread`](crate::generate_in_thread));
/// calling it again before then replaces the configuration.
///
/// # Errors
///
/// [`ConfigureError::AlreadyStarted`] once the pool has started; [`ConfigureError::ZeroThreads`]
/// for `threads: Some(0)`.
///
/// ```
/// use aplex::global::{configure, GlobalConfig};
/// configure(GlobalConfig { threads: Some(2), ..Default::default() }).unwrap();
/// let name = aplex::in_thread(|| std::thread::current().name().map(String::from));
/// assert!(name.wait().unwrap().unwrap().starts_with("aplex-global-"));
/// ```
pub fn configure(config: GlobalConfig) -> Result<(), ConfigureError> {
    if config.threads == Some(0) || config.processes == Some(0) {
        return Err(ConfigureError::ZeroThreads);
    }
    #[cfg(feature = "process")]
    if !matches!(*lock(&PROCESSES), Processes::Idle) {
        return Err(ConfigureError::AlreadyStarted);
    }
    #[cfg(feature = "process")]
    {
        *lock(&PROCESS_COUNT) = config.processes;
    }
    let mut global = lock(&GLOBAL);
    match &mut *global {
        Global::Idle(slot) => {
            *slot = Some(config);
            Ok(())
        }
        Global::Running(_) | Global::Stopped(_) => Err(ConfigureError::AlreadyStarted),
    }
}

/// Shuts the global pools down gracefully: the closures it accepted finish, its threads are
/// joined, and the worker processes of [`in_process`](crate::in_process) finish their works and
/// are reaped. Later submissions resolve `Error::ShutDown`; the pool does not start again.
/// Idempotent; before the pool ever started, it only keeps it from starting.
///
/// Called from inside one of the pool's own closures, it closes the pool and returns without
/// joining (the threads finish their work and exit on their own).
///
/// # Blocking
///
/// Waits for the running closures to end.
///
/// ```
/// aplex::global::shutdown();
/// assert_eq!(aplex::in_thread(|| 1).wait(), Err(aplex::Error::ShutDown));
/// ```
pub fn shutdown() {
    #[cfg(feature = "process")]
    {
        let processes = std::mem::replace(&mut *lock(&PROCESSES), Processes::Stopped);
        if let Processes::Running(pool, _) = processes {
            pool.shutdown(); // reaps every worker process
        }
    }
    let pool = {
        let mut global = lock(&GLOBAL);
        match &*global {
            Global::Running(pool) => {
                let pool = Arc::clone(pool);
                *global = Global::Stopped(Arc::clone(&pool));
                pool
            }
            Global::Stopped(_) => return,
            Global::Idle(_) => {
                // Never started: keep it from starting with a pool already closed.
                let pool = Arc::new(build(&GlobalConfig {
                    threads: Some(1),
                    ..GlobalConfig::default()
                }));
                *global = Global::Stopped(Arc::clone(&pool));
                pool
            }
        }
    };
    pool.shutdown();
}

/// The global thread pool, started on first call.
///
/// # Panics
///
/// Panics if its threads cannot be started.
pub(crate) fn thread_pool() -> Arc<ThreadPool> {
    let mut global = lock(&GLOBAL);
    match &mut *global {
        Global::Running(pool) | Global::Stopped(pool) => Arc::clone(pool),
        Global::Idle(config) => {
            let config = config.take().unwrap_or_default();
            let pool = Arc::new(build(&config));
            *global = Global::Running(Arc::clone(&pool));
            pool
        }
    }
}

/// The global process pool behind `in_process`.
#[cfg(feature = "process")]
enum Processes {
    Idle,
    /// Serving the works of one registry.
    Running(Arc<ProcessPool>, &'static Registry),
    Stopped,
}

#[cfg(feature = "process")]
static PROCESSES: Mutex<Processes> = Mutex::new(Processes::Idle);
/// `GlobalConfig::processes`, kept apart from the thread pool's state.
#[cfg(feature = "process")]
static PROCESS_COUNT: Mutex<Option<usize>> = Mutex::new(None);

/// The global process pool for `registry`, started on first call.
///
/// # Errors
///
/// `ShutDown` after [`shutdown`]; `Wire` if the pool serves another registry (one program
/// declares one `works!` registry for `in_process`); the pool's build error.
#[cfg(feature = "process")]
pub(crate) fn process_pool(registry: &'static Registry) -> Result<Arc<ProcessPool>, Error> {
    let mut processes = lock(&PROCESSES);
    match &*processes {
        Processes::Running(pool, serving) if std::ptr::eq(*serving, registry) => Ok(pool.clone()),
        Processes::Running(..) => Err(Error::Wire(
            "in_process: this work belongs to another registry than the one the global process \
             pool serves"
                .to_string(),
        )),
        Processes::Stopped => Err(Error::ShutDown),
        Processes::Idle => {
            let workers = lock(&PROCESS_COUNT).unwrap_or_else(crate::runtime::available_cores);
            // Built under the lock, so racing first calls start one pool; building runs no
            // user code, only launches the workers.
            let pool = Arc::new(ProcessPool::builder().workers(workers).build(registry)?);
            *processes = Processes::Running(pool.clone(), registry);
            Ok(pool)
        }
    }
}

fn build(config: &GlobalConfig) -> ThreadPool {
    let threads = config.threads.unwrap_or_else(|| {
        let cores = crate::runtime::available_cores();
        cores.saturating_mul(THREADS_PER_CORE)
    });
    ThreadPool::builder()
        .workers(threads)
        // Blocking closures hold their thread: the calls that find every thread busy wait in
        // one queue and start first come, first served (aioextensions' promise), each on the
        // first thread to free up.
        .shared_queue(true)
        .thread_name(config.thread_name.clone())
        .build()
        .unwrap_or_else(|e| panic!("aplex: cannot start the global thread pool: {e}"))
}
