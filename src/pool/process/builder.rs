//! The builder of a [`ProcessPool`].

use super::*;

/// Configures a [`ProcessPool`].
///
/// ```no_run
/// use std::process::Command;
/// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
/// // Any command that runs the worker with stdin and stdout attached works: `ssh`, `srun`,
/// // a container exec. The pool adds its marker to the command's environment.
/// let exe = std::env::current_exe().unwrap();
/// let mut via_shell = Command::new("sh");
/// via_shell.arg("-c").arg(format!("exec '{}'", exe.display()));
/// let pool = aplex::ProcessPool::builder()
///     .workers(2)
///     .command(via_shell)
///     .max_frame(64 << 20)
///     .max_works_per_child(10_000)
///     .kill_on_cancel(true)
///     .build(&works::WORKS)
///     .unwrap();
/// ```
pub struct ProcessPoolBuilder {
    workers: Option<usize>,
    max_works: usize,
    balancer: Box<dyn Balancer>,
    command: Option<Command>,
    max_frame: usize,
    max_per_child: usize,
    kill_on_cancel: bool,
    hello_timeout: Duration,
    shutdown_timeout: Option<Duration>,
}

impl std::fmt::Debug for ProcessPoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPoolBuilder")
            .field("workers", &self.workers)
            .field("max_works_per_worker", &self.max_works)
            .field("command", &self.command)
            .field("max_frame", &self.max_frame)
            .field("max_works_per_child", &self.max_per_child)
            .field("kill_on_cancel", &self.kill_on_cancel)
            .finish_non_exhaustive()
    }
}

impl Default for ProcessPoolBuilder {
    fn default() -> ProcessPoolBuilder {
        ProcessPoolBuilder {
            workers: None,
            max_works: DEFAULT_MAX_WORKS,
            balancer: Box::new(RoundRobin::new()),
            command: None,
            max_frame: DEFAULT_MAX_FRAME,
            max_per_child: 0,
            kill_on_cancel: false,
            hello_timeout: DEFAULT_HELLO_TIMEOUT,
            shutdown_timeout: None,
        }
    }
}

impl ProcessPoolBuilder {
    /// How many worker processes (default: the available cores).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// How many async works run at once in one worker (default 100); more wait in the
    /// worker. Plain works run one at a time, as they come.
    pub fn max_works_per_worker(mut self, n: usize) -> Self {
        self.max_works = n;
        self
    }

    /// The balancer that picks a worker for each call (default [`RoundRobin`]).
    pub fn balancer(mut self, balancer: impl Balancer + 'static) -> Self {
        self.balancer = Box::new(balancer);
        self
    }

    /// The command that starts a worker (default: this executable again, with no
    /// arguments). The pool sets [`WORKER_ENV`] in its environment and attaches stdin and
    /// stdout; stderr is inherited. The program must call [`serve_if_worker`] with the same
    /// registry first in `main`.
    pub fn command(mut self, command: Command) -> Self {
        self.command = Some(command);
        self
    }

    /// The largest frame, in bytes, either side may send (default 256 MiB). A call whose
    /// argument makes a larger frame resolves `Error::Wire` without being sent; a result over
    /// it comes back as `Error::Remote`; a frame claiming more is a protocol error, never an
    /// allocation.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Replaces each worker after `n` works were sent to it (Python's `max_tasks_per_child`;
    /// default: never). The old worker finishes its works, then exits.
    pub fn max_works_per_child(mut self, n: usize) -> Self {
        self.max_per_child = n;
        self
    }

    /// Makes [`Handle::cancel`] of a running **plain** work kill the worker running it
    /// (default false: a plain work cannot be interrupted, and its cancel returns false).
    /// That handle resolves `Cancelled`; the other works in flight on that worker resolve
    /// `WorkerLost`; a replacement starts. Async works are cancelled by a frame either way.
    pub fn kill_on_cancel(mut self, yes: bool) -> Self {
        self.kill_on_cancel = yes;
        self
    }

    /// How long a new worker has to send its hello (default 3 s; `Duration::MAX` means no
    /// limit); a worker that does not is killed with its launcher's process group, and `build`
    /// fails with `Error::Wire` (a replacement's failure counts toward its slot's backoff).
    pub fn hello_timeout(mut self, timeout: Duration) -> Self {
        self.hello_timeout = timeout;
        self
    }

    /// Bounds a graceful shutdown: workers still running works after `timeout` are killed
    /// (default, and `Duration::MAX`: wait for accepted works).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Starts the workers; returns once every one of them said hello.
    ///
    /// # Errors
    ///
    /// - `Error::Io` (`InvalidInput`) for zero workers or zero `max_works_per_worker`; the
    ///   OS error if the command cannot be started (a missing binary fails at once);
    /// - `Error::Wire` if a worker's hello does not come in time or does not match: another
    ///   program (`cat` echoes, `true` exits), a different protocol version, other works.
    pub fn build(self, registry: &Registry) -> Result<ProcessPool, Error> {
        let workers = match self.workers {
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        if workers == 0 || self.max_works == 0 {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a process pool needs at least one worker and max_works_per_worker >= 1",
            )));
        }
        let mut command = match self.command {
            Some(c) => c,
            None => Command::new(std::env::current_exe()?),
        };
        command.env(WORKER_ENV, WORKER_ENV_VALUE);
        let (tx, rx) = mpsc::channel();
        let entries = registry.entries();
        let shared = Arc::new(Shared {
            names: entries.iter().map(|e| e.name).collect(),
            asyncs: entries
                .iter()
                .map(|e| matches!(e.runner, works::Runner::Async(_)))
                .collect(),
            max_works: self.max_works,
            max_frame: self.max_frame,
            max_per_child: self.max_per_child,
            kill_on_cancel: self.kill_on_cancel,
            shutdown_timeout: self.shutdown_timeout,
            slots: (0..workers).map(|_| slot::Slot::new()).collect(),
            picker: Picker::new(self.balancer),
            open: AtomicBool::new(true),
            now: AtomicBool::new(false),
            serving: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            last_crash: Mutex::new(None),
            orders: Mutex::new(tx),
            started: Mutex::new(Vec::new()),
        });
        let supervisor = Supervisor {
            shared: shared.clone(),
            command,
            hello_timeout: self.hello_timeout,
            retries: Vec::new(),
            hellos: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("aplex-proc-supervisor".to_string())
            .spawn(move || supervisor.run(rx))?;
        let pool = ProcessPool {
            shared,
            supervisor: Mutex::new(Some(thread)),
        };
        let (reply_tx, reply_rx) = mpsc::channel();
        pool.shared.order(Order::Start(reply_tx));
        match reply_rx.recv() {
            Ok(Ok(())) => Ok(pool),
            Ok(Err(e)) => {
                pool.shutdown_now();
                Err(e)
            }
            Err(_) => {
                pool.shutdown_now();
                Err(Error::Io(std::io::Error::other(
                    "the pool's supervisor stopped",
                )))
            }
        }
    }
}
