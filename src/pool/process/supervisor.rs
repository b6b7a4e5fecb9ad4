//! The supervisor thread: it launches every worker (the first ones, replacements after a
//! backoff), enforces hello deadlines, and finally stops the workers. See the module docs of
//! `process` for why one long-lived thread launches them all.

use super::*;

/// What the supervisor thread is asked to do.
pub(super) enum Order {
    /// Start every worker; report when `min_ready` said hello (or enough failed that they
    /// cannot).
    Start(mpsc::Sender<Result<(), Error>>),
    /// Start a replacement for `slot` at `at` (or at once if that has passed).
    Respawn { slot: usize, at: Instant },
    /// Shut down; `now` cancels in-flight works and kills the workers.
    Shutdown { now: bool },
}

/// The supervisor thread: starts, replaces and finally stops the workers.
pub(super) struct Supervisor {
    pub(super) shared: Arc<Shared>,
    pub(super) launcher: Launcher,
    pub(super) hello_timeout: Duration,
    /// Workers that must say hello for `build` to succeed.
    pub(super) min_ready: usize,
    /// Replacements to start, and when.
    pub(super) retries: Vec<(Instant, usize)>,
    /// Launched workers that must say hello by a deadline.
    pub(super) hellos: Vec<(Instant, Arc<Conn>)>,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Its last act, after the shutdown joined everything (or if it panicked).
        self.shared.closed.set();
    }
}

impl Supervisor {
    pub(super) fn run(mut self, orders: mpsc::Receiver<Order>) {
        loop {
            let next = self
                .retries
                .iter()
                .map(|r| r.0)
                .chain(self.hellos.iter().map(|h| h.0))
                .min();
            let order = match next {
                None => orders
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(at) => orders.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match order {
                Ok(Order::Start(reply)) => {
                    let result = self.start_all();
                    let _ = reply.send(result);
                }
                Ok(Order::Respawn { slot, at }) => self.retries.push((at, slot)),
                Ok(Order::Shutdown { now }) => return self.shutdown(now),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.shutdown(true),
            }
            self.run_due();
        }
    }

    /// Starts the replacements that are due and kills the workers late with their hello.
    fn run_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.retries.drain(..).partition(|r| r.0 <= now);
        self.retries = later;
        for (_, i) in due {
            self.respawn(i);
        }
        self.hellos.retain(|(deadline, conn)| {
            if conn.greeted() || conn.is_over() {
                return false;
            }
            if *deadline > now {
                return true;
            }
            conn.kill(conn.no_hello());
            false
        });
    }

    /// Launches a worker for slot `i`; it becomes the slot's `starting` worker, and its hello
    /// has a deadline. Its reader reports the hello on `hello`.
    fn launch(&mut self, i: usize, hello: HelloSender) -> Result<Launched, Error> {
        let spawned = launch::spawn(&mut self.launcher, i, &self.shared)?;
        self.start_threads(spawned, hello)
    }

    /// Starts a spawned worker's threads (see [`launch`](Supervisor::launch)).
    fn start_threads(
        &mut self,
        spawned: launch::Spawned,
        hello: HelloSender,
    ) -> Result<Launched, Error> {
        let launched = launch::start_threads(spawned, &self.shared, hello)?;
        let deadline = Instant::now().checked_add(self.hello_timeout);
        if let Some(deadline) = deadline {
            self.hellos.push((deadline, launched.conn.clone()));
        }
        Ok(launched)
    }

    /// Launches every slot's first worker and waits until `min_ready` of them said hello, or
    /// until so many failed (or the deadline passed) that they cannot. The others go on in
    /// the background: a slot that failed backs off and tries again.
    fn start_all(&mut self) -> Result<(), Error> {
        let shared = self.shared.clone();
        let workers = shared.slots.len();
        let need_all = self.min_ready >= workers;
        let (tx, hellos) = mpsc::channel();
        let mut first_error: Option<Error> = None;
        let mut failed = 0;
        // Every process first, then their threads: the workers start up meanwhile.
        let mut spawned = Vec::new();
        let mut failures = Vec::new();
        for i in 0..workers {
            match launch::spawn(&mut self.launcher, i, &shared) {
                Ok(s) => spawned.push(s),
                Err(e) => {
                    failures.push((i, e));
                    if need_all {
                        break;
                    }
                }
            }
        }
        for s in spawned {
            let i = s.conn.index;
            match self.start_threads(s, tx.clone()) {
                Ok(l) => shared.keep(l.conn, l.threads),
                Err(e) => failures.push((i, e)),
            }
        }
        for (i, e) in failures {
            failed += 1;
            if need_all {
                first_error.get_or_insert(e);
                continue;
            }
            let at = shared.on_spawn_failure(i, &e);
            self.retries.push((at, i));
            first_error.get_or_insert(e);
        }
        drop(tx);
        let deadline = Instant::now().checked_add(self.hello_timeout);
        let mut ready = 0;
        let mut failure = None;
        while ready < self.min_ready {
            if workers - failed < self.min_ready {
                failure = first_error.take();
                break;
            }
            let received = match deadline {
                None => hellos
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(d) => hellos.recv_timeout(d.saturating_duration_since(Instant::now())),
            };
            match received {
                Ok((_, Ok(_))) => ready += 1,
                Ok((_, Err(e))) => {
                    failed += 1;
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    failure = Some(self.no_hellos(ready));
                    break;
                }
            }
        }
        if let Some(e) = failure {
            for (conn, _) in lock(&shared.started).iter() {
                conn.kill("stopped: the pool failed to start".to_string());
            }
            return Err(e);
        }
        shared.serving.store(true, Ordering::Release);
        // A slot whose worker died (or could not start) before this point is retried now, or
        // after its backoff; one already set to retry is not started twice.
        for i in 0..workers {
            let state = lock(&shared.slots[i].state);
            if state.conn.is_none() && state.starting.is_none() {
                let delay = slot::backoff(state.crashes);
                drop(state);
                let at = Instant::now()
                    .checked_add(delay)
                    .unwrap_or_else(Instant::now);
                self.retries.push((at, i));
            }
        }
        Ok(())
    }

    /// `build`'s error when the deadline passed with `ready` hellos, fewer than needed.
    fn no_hellos(&self, ready: usize) -> Error {
        let late = lock(&self.shared.started)
            .iter()
            .find(|(c, _)| !c.greeted() && !c.is_over())
            .map(|(c, _)| c.clone());
        let why = match late {
            Some(conn) => {
                let why = conn.no_hello();
                conn.kill(why.clone());
                format!(
                    "slot {} (process {}) was {why}",
                    conn.index, conn.launcher_pid
                )
            }
            None => "no worker said hello in time".to_string(),
        };
        Error::Wire(format!(
            "{ready} of the {} workers needed said hello within {:?}: {why}",
            self.min_ready, self.hello_timeout
        ))
    }

    fn respawn(&mut self, i: usize) {
        let shared = self.shared.clone();
        if !shared.open.load(Ordering::Acquire) {
            return;
        }
        {
            let state = lock(&shared.slots[i].state);
            if state.conn.is_some() || state.starting.is_some() {
                return; // already has a worker (a repeated order)
            }
        }
        // Nobody waits for a replacement's hello: its reader's report is dropped.
        let (tx, _) = mpsc::channel();
        match self.launch(i, tx) {
            Ok(l) => shared.keep(l.conn, l.threads),
            Err(e) => {
                let at = shared.on_spawn_failure(i, &e);
                self.retries.push((at, i));
            }
        }
    }

    fn shutdown(self, now: bool) {
        let shared = &self.shared;
        // A `shutdown_now` may have come after a graceful shutdown began (it only sets the
        // flag then): it is never undone, and it is honoured here whenever it comes.
        if now {
            shared.now.store(true, Ordering::Release);
        }
        let now = shared.now.load(Ordering::Acquire);
        shared.open.store(false, Ordering::Release);
        let mut shutdown_frame = Vec::new();
        frame::empty(&mut shutdown_frame, frame::SHUTDOWN, 0);
        for (i, slot) in shared.slots.iter().enumerate() {
            let mut state = lock(&slot.state);
            let conn = state.conn.take();
            // Calls that wait for a worker: cancelled by `shutdown_now`; run by a worker that
            // is starting (it gets them, then a shutdown frame); lost if none is coming.
            let waiting = if now || state.starting.is_none() {
                std::mem::take(&mut state.backlog)
            } else {
                Vec::new()
            };
            let why = state.last_error.clone();
            drop(state);
            let error = if now {
                Error::Cancelled
            } else {
                Error::WorkerLost(format!(
                    "the pool shut down while the work waited for a worker to start (the last \
                     failure: {})",
                    why.as_deref().unwrap_or("none")
                ))
            };
            shared.fail_queued(i, waiting, &error);
            if let Some(conn) = conn {
                conn.send(&shutdown_frame, false);
            }
        }
        let started = std::mem::take(&mut *lock(&shared.started));
        let mut cancelled = false;
        if now {
            cancel_everything(shared, &started);
            cancelled = true;
        }
        let begun = Instant::now();
        for (conn, [reader, _]) in &started {
            let mut idle_since: Option<Instant> = None;
            while !reader.is_finished() {
                if !cancelled && shared.now.load(Ordering::Acquire) {
                    cancel_everything(shared, &started);
                    cancelled = true;
                }
                if conn.greeted() && conn.in_flight() == 0 {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > EXIT_GRACE {
                        conn.kill("killed: it did not exit after the shutdown frame".to_string());
                    }
                } else {
                    idle_since = None;
                }
                if !conn.greeted() && conn.hello_overdue(self.hello_timeout) {
                    conn.kill(conn.no_hello());
                }
                if shared.shutdown_timeout.is_some_and(|t| begun.elapsed() > t) {
                    conn.kill("killed: the pool's shutdown timed out".to_string());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        for (conn, [reader, writer]) in started {
            let _ = reader.join();
            conn.close();
            let _ = writer.join();
        }
    }
}

/// What `shutdown_now` does to a pool that is shutting down: every call not yet ended is
/// cancelled (queued for a worker, or sent to one) and every worker is killed.
fn cancel_everything(shared: &Shared, started: &[(Arc<Conn>, [JoinHandle<()>; 2])]) {
    for (i, slot) in shared.slots.iter().enumerate() {
        let waiting = std::mem::take(&mut lock(&slot.state).backlog);
        shared.fail_queued(i, waiting, &Error::Cancelled);
    }
    for (conn, _) in started {
        for job in conn.drain() {
            job.fail(Error::Cancelled);
        }
        conn.kill("killed by shutdown_now".to_string());
    }
}
