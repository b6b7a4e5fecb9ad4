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
    /// Per-slot `max_works`, from `max_works_for`.
    max_works_for: Option<Box<dyn Fn(usize) -> usize + Send + Sync>>,
    balancer: Box<dyn Balancer>,
    launcher: Option<Launcher>,
    /// The host each slot is aimed at, from `hosts` (empty otherwise).
    hosts: Vec<String>,
    /// Why `hosts` could not make its launcher (reported by `build`).
    deferred: Option<std::io::Error>,
    min_ready: Option<usize>,
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
            .field("launcher", &self.launcher)
            .field("hosts", &self.hosts)
            .field("min_ready", &self.min_ready)
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
            max_works_for: None,
            balancer: Box::new(RoundRobin::new()),
            launcher: None,
            hosts: Vec::new(),
            deferred: None,
            min_ready: None,
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

    /// How many async works run at once in slot `i`'s worker, per slot: a capacity weight for
    /// pools whose slots differ (a slot on a 64-core host may take more than one on a
    /// laptop). It overrides [`max_works_per_worker`](ProcessPoolBuilder::max_works_per_worker),
    /// and each slot's [`Load::capacity`] shows it to the balancer: the balancers that
    /// prefer a worker with room ([`LeastLoaded`](crate::balance::LeastLoaded), the default
    /// [`RoundRobin`]) send a larger slot more when the pool is busy. A 0 is refused by
    /// `build`.
    ///
    /// ```no_run
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// let pool = aplex::ProcessPool::builder()
    ///     .workers(3)
    ///     .max_works_for(|slot| if slot == 0 { 200 } else { 50 })
    ///     .build(&works::WORKS)
    ///     .unwrap();
    /// let capacities: Vec<usize> = pool.detailed_loads().iter().map(|l| l.capacity).collect();
    /// assert_eq!(capacities, [200, 50, 50]);
    /// ```
    pub fn max_works_for(mut self, f: impl Fn(usize) -> usize + Send + Sync + 'static) -> Self {
        self.max_works_for = Some(Box::new(f));
        self
    }

    /// The balancer that picks a worker for each call (default [`RoundRobin`]).
    pub fn balancer(mut self, balancer: impl Balancer + 'static) -> Self {
        self.balancer = Box::new(balancer);
        self
    }

    /// The command that starts a worker, the same for every slot (default: this executable
    /// again, with no arguments). The pool sets [`WORKER_ENV`] and [`WORKER_SLOT_ENV`] in its
    /// environment. Its stdin and stdout carry the protocol: the pool pipes them, in place of
    /// any the command set. Its stderr is the command's: inherited unless it says otherwise
    /// (`Stdio::null()`, a log file); the worker points its stdout there too, so that is
    /// where a work's prints go. The program must call [`serve_if_worker`] with the same
    /// registry first in `main`. Replaces an earlier
    /// [`launcher`](ProcessPoolBuilder::launcher) or [`hosts`](ProcessPoolBuilder::hosts).
    ///
    /// ```no_run
    /// use std::process::{Command, Stdio};
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// let mut quiet = Command::new(std::env::current_exe().unwrap());
    /// quiet.stderr(Stdio::null()); // the workers' prints and messages are dropped
    /// let pool = aplex::ProcessPool::builder()
    ///     .command(quiet)
    ///     .build(&works::WORKS)
    ///     .unwrap();
    /// assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
    /// ```
    pub fn command(mut self, command: Command) -> Self {
        self.launcher = Some(Launcher::Same(command));
        self.hosts.clear();
        self
    }

    /// The command for each slot: `launcher(i)` starts slot `i`'s worker, its first and
    /// every replacement, so a slot stays on its host. This is how one pool spans machines:
    /// slots 0–7 through `ssh big`, 8–9 through `ssh small`. The pool adds [`WORKER_ENV`] and
    /// [`WORKER_SLOT_ENV`] to each command's environment; a launcher that does not pass the
    /// environment on (`ssh`) sets them on the far side or passes [`WORKER_ARG`]. Each
    /// command's stdin and stdout are piped for the protocol, its stderr is its own (as with
    /// [`command`](ProcessPoolBuilder::command)). A launcher that panics counts as a failed
    /// start of that slot. Replaces an earlier
    /// [`command`](ProcessPoolBuilder::command) or [`hosts`](ProcessPoolBuilder::hosts).
    ///
    /// ```no_run
    /// use std::process::Command;
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// let exe = std::env::current_exe().unwrap();
    /// let pool = aplex::ProcessPool::builder()
    ///     .workers(10)
    ///     .launcher(move |slot| {
    ///         let host = if slot < 8 { "big" } else { "small" };
    ///         let mut ssh = Command::new("ssh");
    ///         ssh.args(["-o", "BatchMode=yes", "-o", "ServerAliveInterval=5", host]);
    ///         ssh.arg(&exe).arg(aplex::WORKER_ARG);
    ///         ssh
    ///     })
    ///     .min_ready(1)
    ///     .build(&works::WORKS)
    ///     .unwrap();
    /// assert_eq!(pool.slots().len(), 10);
    /// ```
    pub fn launcher<F>(mut self, launcher: F) -> Self
    where
        F: Fn(usize) -> Command + Send + Sync + 'static,
    {
        self.launcher = Some(Launcher::PerSlot(Box::new(launcher)));
        self.hosts.clear();
        self
    }

    /// `per_host` workers on each of `hosts`, over `ssh`, running this same executable at the
    /// same path (it must be there on every host). Sets `workers` to `hosts × per_host`;
    /// slots `0..per_host` go to the first host, the next `per_host` to the second, and so on
    /// (a later [`workers(n)`](ProcessPoolBuilder::workers) wraps around that list).
    /// Slot `i` on host `H` runs:
    ///
    /// ```text
    /// ssh -T -o BatchMode=yes -o ServerAliveInterval=5 -o ServerAliveCountMax=3 H \
    ///     env APLEX_WORKER=1 APLEX_WORKER_SLOT=i '/path/to/this/exe' --aplex-worker
    /// ```
    ///
    /// `BatchMode` makes a host that wants a password fail (ssh exits 255: the slot's reason
    /// says "could not reach host") instead of prompting; the `ServerAlive` options bound how
    /// long a silent network partition goes unnoticed (about 15 s): then ssh exits, the
    /// slot's works end `WorkerLost`, and the slot backs off and tries again. For other ssh
    /// options (a port, a key, a jump host) write the same with
    /// [`launcher`](ProcessPoolBuilder::launcher), or use `~/.ssh/config`.
    ///
    /// ```no_run
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// let pool = aplex::ProcessPool::builder()
    ///     .hosts(["node1", "node2"], 4)
    ///     .min_ready(4) // start when one host's worth is up; the rest join as they come
    ///     .build(&works::WORKS)
    ///     .unwrap();
    /// assert_eq!(pool.workers(), 8);
    /// assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
    /// ```
    pub fn hosts<I, S>(mut self, hosts: I, per_host: usize) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = hosts.into_iter().map(Into::into).collect();
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => {
                self.deferred = Some(e);
                return self;
            }
        };
        let exe = shell_quote(&exe.to_string_lossy());
        let by_slot: Vec<String> = names
            .iter()
            .flat_map(|h| std::iter::repeat_n(h.clone(), per_host))
            .collect();
        self.workers = Some(by_slot.len());
        self.hosts = by_slot.clone();
        self.launcher = Some(Launcher::PerSlot(Box::new(move |slot| {
            let host = host_of(&by_slot, slot).unwrap_or("");
            ssh_command(host, slot, &exe)
        })));
        self
    }

    /// How many workers must say hello for [`build`](ProcessPoolBuilder::build) to succeed
    /// (default: all of them). `build` returns as soon as `n` did; the other slots go on
    /// starting in the background, and a slot that fails (its host is down) backs off and
    /// tries again, and joins when its worker says hello. Calls go to the live slots
    /// meanwhile. `0`, or more than the workers, is refused by `build`.
    pub fn min_ready(mut self, n: usize) -> Self {
        self.min_ready = Some(n);
        self
    }

    /// The largest frame, in bytes, either side may send for a work (default 256 MiB). A call
    /// whose argument makes a larger frame resolves `Error::Wire` without being sent; a result
    /// over it comes back as `Error::Remote`; a frame claiming more is a protocol error, never
    /// an allocation. It caps works' payloads only: the protocol's own frames (the hellos,
    /// which name every work) have bounds of their own, so a small value works. A frame takes
    /// 13 bytes before its argument (its header and the work's index): less is refused by
    /// `build`.
    ///
    /// ```no_run
    /// # aplex::works! { pub mod works { pub fn double(x: u64) -> u64 { x * 2 } } }
    /// let pool = aplex::ProcessPool::builder()
    ///     .max_frame(64)
    ///     .build(&works::WORKS)
    ///     .unwrap();
    /// assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
    /// ```
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

    /// Starts the workers; returns once every one of them (or
    /// [`min_ready`](ProcessPoolBuilder::min_ready) of them) said hello.
    ///
    /// # Errors
    ///
    /// - `Error::Io` (`InvalidInput`) for zero workers, zero `max_works_per_worker`, a
    ///   `min_ready` of zero or over the workers, or a `max_frame` under 13 bytes; the OS error if the command cannot be
    ///   started (a missing binary fails at once; with `min_ready`, once too few can start);
    /// - `Error::Wire` if too few hellos come in time or match: another program (`cat`
    ///   echoes, `true` exits), a different protocol version, other works, a host that cannot
    ///   be reached (its slot and host are named), a launcher that buffers the worker's
    ///   output (`srun` without `-u`).
    pub fn build(self, registry: &Registry) -> Result<ProcessPool, Error> {
        let workers = match self.workers {
            Some(n) => n,
            None => crate::runtime::available_cores(),
        };
        let invalid = |why: String| {
            Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                why,
            )))
        };
        if workers == 0 || self.max_works == 0 {
            return invalid(
                "a process pool needs at least one worker and max_works_per_worker >= 1"
                    .to_string(),
            );
        }
        let max_works: Vec<usize> = match &self.max_works_for {
            Some(f) => (0..workers).map(f).collect(),
            None => vec![self.max_works; workers],
        };
        if let Some(slot) = max_works.iter().position(|&n| n == 0) {
            return invalid(format!("max_works_for gives slot {slot} no room (0)"));
        }
        let min_ready = self.min_ready.unwrap_or(workers);
        if min_ready == 0 || min_ready > workers {
            return invalid(format!(
                "min_ready({min_ready}) must be between 1 and the {workers} workers"
            ));
        }
        if self.max_frame < frame::MIN_MAX_FRAME {
            return invalid(format!(
                "max_frame({}) cannot carry any call: it takes at least {} bytes (a frame's \
                 header and a work's index)",
                self.max_frame,
                frame::MIN_MAX_FRAME
            ));
        }
        if let Some(e) = self.deferred {
            return Err(Error::Io(e));
        }
        let launcher = match self.launcher {
            Some(l) => l,
            None => Launcher::Same(Command::new(std::env::current_exe()?)),
        };
        let (tx, rx) = mpsc::channel();
        let entries = registry.entries();
        let shared = Arc::new(Shared {
            names: entries.iter().map(|e| e.name).collect(),
            asyncs: entries
                .iter()
                .map(|e| matches!(e.runner, works::Runner::Async(_)))
                .collect(),
            max_works,
            max_frame: self.max_frame,
            max_per_child: self.max_per_child,
            kill_on_cancel: self.kill_on_cancel,
            shutdown_timeout: self.shutdown_timeout,
            slots: (0..workers)
                .map(|i| slot::Slot::new(host_of(&self.hosts, i).map(str::to_string)))
                .collect(),
            picker: Picker::new(self.balancer),
            open: AtomicBool::new(true),
            now: AtomicBool::new(false),
            serving: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            last_crash: Mutex::new(None),
            orders: Mutex::new(tx),
            started: Mutex::new(Vec::new()),
            closed: crate::sync::Event::new(),
        });
        let supervisor = Supervisor {
            shared: shared.clone(),
            launcher,
            hello_timeout: self.hello_timeout,
            min_ready,
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

/// The `ssh` command of [`ProcessPoolBuilder::hosts`] for `slot` on `host`; `exe` is quoted for
/// the remote shell.
fn ssh_command(host: &str, slot: usize, exe: &str) -> Command {
    let mut ssh = Command::new("ssh");
    ssh.arg("-T")
        .args(["-o", "BatchMode=yes"])
        .args(["-o", "ServerAliveInterval=5"])
        .args(["-o", "ServerAliveCountMax=3"])
        .arg(host)
        .arg("env")
        .arg(format!("{WORKER_ENV}={WORKER_ENV_VALUE}"))
        .arg(format!("{WORKER_SLOT_ENV}={slot}"))
        .arg(exe)
        .arg(WORKER_ARG);
    ssh
}

/// The host of slot `slot` when slots go to `by_slot` in order, wrapping around.
fn host_of(by_slot: &[String], slot: usize) -> Option<&str> {
    by_slot
        .get(slot.checked_rem(by_slot.len())?)
        .map(String::as_str)
}

/// `s` in single quotes for a POSIX shell (the remote side of `ssh` runs one).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The builder may move to another thread; the pool and its slot records are shared.
const _: () = {
    const fn send<T: Send>() {}
    const fn send_and_sync<T: Send + Sync>() {}
    send::<ProcessPoolBuilder>();
    send_and_sync::<ProcessPool>();
    send_and_sync::<SlotInfo>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssh_template_quotes_the_path_and_names_the_slot() {
        let exe = shell_quote("/opt/my app/it's");
        assert_eq!(exe, r"'/opt/my app/it'\''s'");
        let ssh = ssh_command("node1", 3, &exe);
        let args: Vec<String> = ssh
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(ssh.get_program(), "ssh");
        let at = args.iter().position(|a| a == "node1").unwrap();
        assert_eq!(
            args[at + 1..],
            [
                "env",
                "APLEX_WORKER=1",
                "APLEX_WORKER_SLOT=3",
                &exe,
                "--aplex-worker"
            ]
        );
        assert!(args[..at].contains(&"BatchMode=yes".to_string()));
    }

    #[test]
    fn hosts_sets_one_slot_per_host_and_worker_in_host_order() {
        let b = ProcessPool::builder().hosts(["a", "b"], 2);
        assert_eq!(b.workers, Some(4));
        assert_eq!(b.hosts, ["a", "a", "b", "b"]);
        assert_eq!(
            host_of(&b.hosts, 5),
            Some("a"),
            "a later workers(n) wraps around"
        );
        assert_eq!(host_of(&[], 0), None);
    }
}
