//! The pool's shared state (one slot per worker index) and the supervisor thread that starts,
//! replaces and finally stops the workers. See the module docs of `process` for the ownership
//! rules.

use super::*;

/// One worker index of the pool.
pub(super) struct Slot {
    /// Works sent to this index (or waiting for it) and not yet ended.
    pub(super) load: Arc<AtomicUsize>,
    pub(super) state: Mutex<SlotState>,
}

pub(super) struct SlotState {
    /// The live worker, or `None` while a replacement starts.
    pub(super) conn: Option<Arc<Conn>>,
    /// Calls made while there was no live worker: job id, job, frame.
    pub(super) backlog: Vec<(u64, Arc<dyn Pending>, Vec<u8>)>,
}

/// What the supervisor thread is asked to do.
pub(super) enum Order {
    /// Start every worker; report when all said hello (or the first failure).
    Start(mpsc::Sender<Result<(), Error>>),
    /// Start a replacement for slot `i`.
    Respawn(usize),
    /// Shut down; `now` cancels in-flight works and kills the workers.
    Shutdown { now: bool },
}

/// A started worker's connection, and its reader and writer threads.
pub(super) type Started = (Arc<Conn>, [JoinHandle<()>; 2]);

/// What the pool, its maps, the supervisor and the reader threads share.
pub(crate) struct Shared {
    pub(super) names: Vec<&'static str>,
    /// Which works are async (cancellable by a frame).
    pub(super) asyncs: Vec<bool>,
    pub(super) max_works: usize,
    pub(super) max_frame: usize,
    pub(super) max_per_child: usize,
    pub(super) kill_on_cancel: bool,
    pub(super) shutdown_timeout: Option<Duration>,
    pub(super) slots: Vec<Slot>,
    pub(super) picker: Picker,
    pub(super) open: AtomicBool,
    /// Why the pool stopped replacing workers, once it did.
    pub(super) broken: Mutex<Option<String>>,
    /// Workers that died in a row before completing anything.
    pub(super) crashes: AtomicUsize,
    pub(super) next_id: AtomicU64,
    pub(super) orders: Mutex<mpsc::Sender<Order>>,
    /// Every started worker's connection and threads, until shutdown joins them.
    pub(super) started: Mutex<Vec<Started>>,
}

impl Shared {
    pub(super) fn load(&self, i: usize) -> Load {
        // ORDERING: Relaxed: loads are a hint for balancing.
        let n = self.slots[i].load.load(Ordering::Relaxed);
        let running = n.min(self.max_works);
        Load {
            running,
            queued: n - running,
            capacity: self.max_works,
        }
    }

    pub(super) fn order(&self, order: Order) {
        let _ = lock(&self.orders).send(order);
    }

    pub(super) fn broken(&self) -> Option<Error> {
        lock(&self.broken)
            .as_ref()
            .map(|why| Error::WorkerLost(format!("the pool is broken: {why}")))
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a job to the worker the balancer picks (or fails it).
    pub(super) fn submit(&self, hint: Option<u64>, id: u64, job: Arc<dyn Pending>, frame: Vec<u8>) {
        if !self.open.load(Ordering::Acquire) {
            job.fail(Error::ShutDown);
            return;
        }
        if let Some(e) = self.broken() {
            job.fail(e);
            return;
        }
        let i = self.picker.pick(
            self.slots.len(),
            |i| self.load(i),
            hint,
            |i| {
                self.slots[i].load.fetch_add(1, Ordering::Relaxed);
            },
        );
        let slot = &self.slots[i];
        let mut state = lock(&slot.state);
        let refusal = if !self.open.load(Ordering::Acquire) {
            Some(Error::ShutDown)
        } else {
            self.broken()
        };
        if let Some(e) = refusal {
            drop(state);
            slot.load.fetch_sub(1, Ordering::Relaxed);
            job.fail(e);
            return;
        }
        let Some(conn) = state.conn.clone() else {
            state.backlog.push((id, job, frame));
            return;
        };
        conn.track(id, job);
        // Alone in flight: write it now, on this thread, for the shortest round trip.
        let direct = slot.load.load(Ordering::Relaxed) <= 1;
        conn.send(&frame, direct);
        let sent = conn.sent.fetch_add(1, Ordering::Relaxed) + 1;
        if self.max_per_child > 0 && sent >= self.max_per_child {
            // Recycle: this worker finishes what it has and exits; a new one takes the slot.
            state.conn = None;
            conn.retired.store(true, Ordering::Relaxed);
            let mut bytes = Vec::new();
            frame::empty(&mut bytes, frame::SHUTDOWN, 0);
            conn.send(&bytes, false);
            drop(state);
            self.order(Order::Respawn(i));
        }
    }

    /// A worker's reader saw its end: fail its works, and replace it if it was current.
    pub(super) fn on_death(&self, conn: &Arc<Conn>, why: String) {
        let was_current = {
            let mut state = lock(&self.slots[conn.index].state);
            let current = state.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn));
            if current {
                state.conn = None;
            }
            current
        };
        for job in conn.drain() {
            job.fail(Error::WorkerLost(why.clone()));
        }
        if !was_current || conn.retired.load(Ordering::Relaxed) {
            return;
        }
        if !conn.was_killed() {
            if conn.completed.load(Ordering::Relaxed) == 0 {
                let crashes = self.crashes.fetch_add(1, Ordering::Relaxed) + 1;
                if crashes >= CRASH_LIMIT {
                    self.break_pool(format!(
                        "{crashes} workers in a row died before completing a work; the last: {why}"
                    ));
                    return;
                }
            } else {
                self.crashes.store(0, Ordering::Relaxed);
            }
        }
        if self.open.load(Ordering::Acquire) {
            self.order(Order::Respawn(conn.index));
        }
    }

    /// Stops replacing workers; fails the calls waiting for one, and every new call.
    pub(super) fn break_pool(&self, why: String) {
        lock(&self.broken).get_or_insert(why);
        let Some(error) = self.broken() else { return };
        for slot in &self.slots {
            self.fail_backlog(slot, &error);
        }
    }

    pub(super) fn fail_backlog(&self, slot: &Slot, error: &Error) {
        let backlog = std::mem::take(&mut lock(&slot.state).backlog);
        slot.load.fetch_sub(backlog.len(), Ordering::Relaxed);
        for (_, job, _) in backlog {
            job.fail(Error::duplicate(error));
        }
    }

    /// Makes a started worker the worker of its slot and sends it the slot's backlog.
    pub(super) fn install(&self, launched: Launched) {
        let conn = launched.conn.clone();
        let slot = &self.slots[conn.index];
        {
            let mut state = lock(&slot.state);
            if self.open.load(Ordering::Acquire) {
                conn.installed.store(true, Ordering::Relaxed);
                state.conn = Some(conn.clone());
                let mut bytes = Vec::new();
                for (id, job, frame) in std::mem::take(&mut state.backlog) {
                    if job.is_done() {
                        slot.load.fetch_sub(1, Ordering::Relaxed);
                    } else {
                        conn.track(id, job);
                        bytes.extend_from_slice(&frame);
                        conn.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !bytes.is_empty() {
                    conn.send(&bytes, false);
                }
            }
        }
        self.keep(launched);
    }

    /// Keeps a started worker's threads for shutdown to join; joins those already done.
    pub(super) fn keep(&self, launched: Launched) {
        let mut started = lock(&self.started);
        let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut *started)
            .into_iter()
            .partition(|(_, [r, w])| r.is_finished() && w.is_finished());
        *started = live;
        started.push((launched.conn, launched.threads));
        drop(started);
        for (_, [r, w]) in done {
            let _ = r.join();
            let _ = w.join();
        }
    }
}

/// The supervisor thread: starts, replaces and finally stops the workers.
pub(super) struct Supervisor {
    pub(super) shared: Arc<Shared>,
    pub(super) command: Command,
    pub(super) hello_timeout: Duration,
    /// Replacements to try again, and when.
    pub(super) retries: Vec<(Instant, usize)>,
}

impl Supervisor {
    pub(super) fn run(mut self, orders: mpsc::Receiver<Order>) {
        loop {
            let next_retry = self.retries.iter().map(|r| r.0).min();
            let order = match next_retry {
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
                Ok(Order::Respawn(i)) => self.respawn(i),
                Ok(Order::Shutdown { now }) => return self.shutdown(now),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    let (due, later): (Vec<_>, Vec<_>) =
                        self.retries.drain(..).partition(|r| r.0 <= now);
                    self.retries = later;
                    for (_, i) in due {
                        self.respawn(i);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.shutdown(true),
            }
        }
    }

    pub(super) fn launch(&mut self, i: usize) -> Result<Launched, Error> {
        let load = self.shared.slots[i].load.clone();
        launch(&mut self.command, i, load, &self.shared)
    }

    pub(super) fn start_all(&mut self) -> Result<(), Error> {
        let mut launched = Vec::new();
        let mut failure = None;
        for i in 0..self.shared.slots.len() {
            match self.launch(i) {
                Ok(l) => launched.push(l),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let deadline = Instant::now() + self.hello_timeout;
        for l in &launched {
            if failure.is_some() {
                break;
            }
            if let Err(e) = await_hello(l, deadline) {
                failure = Some(e);
            }
        }
        for l in launched {
            if failure.is_some() {
                l.conn.kill("stopped: the pool failed to start".to_string());
                self.shared.keep(l);
            } else {
                self.shared.install(l);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    pub(super) fn respawn(&mut self, i: usize) {
        let shared = self.shared.clone();
        if !shared.open.load(Ordering::Acquire) {
            return;
        }
        if let Some(e) = shared.broken() {
            shared.fail_backlog(&shared.slots[i], &e);
            return;
        }
        let started = self.launch(i).and_then(|l| {
            let deadline = Instant::now() + self.hello_timeout;
            match await_hello(&l, deadline) {
                Ok(_) => Ok(l),
                Err(e) => {
                    shared.keep(l);
                    Err(e)
                }
            }
        });
        match started {
            Ok(l) => shared.install(l),
            Err(e) => {
                let crashes = shared.crashes.fetch_add(1, Ordering::Relaxed) + 1;
                if crashes >= CRASH_LIMIT {
                    shared.break_pool(format!(
                        "{crashes} workers in a row failed to start or died before completing a work; the last: {e}"
                    ));
                } else {
                    let backoff = Duration::from_millis(50 << crashes.min(5));
                    self.retries.push((Instant::now() + backoff, i));
                }
            }
        }
    }

    pub(super) fn shutdown(self, now: bool) {
        let shared = &self.shared;
        shared.open.store(false, Ordering::Release);
        let mut shutdown_frame = Vec::new();
        frame::empty(&mut shutdown_frame, frame::SHUTDOWN, 0);
        for slot in &shared.slots {
            let conn = lock(&slot.state).conn.take();
            shared.fail_backlog(slot, &Error::ShutDown);
            if let Some(conn) = conn {
                conn.send(&shutdown_frame, false);
            }
        }
        let started = std::mem::take(&mut *lock(&shared.started));
        if now {
            for (conn, _) in &started {
                for job in conn.drain() {
                    job.fail(Error::Cancelled);
                }
                conn.kill("killed by shutdown_now".to_string());
            }
        }
        let begun = Instant::now();
        for (conn, [reader, writer]) in started {
            let mut idle_since: Option<Instant> = None;
            while !reader.is_finished() {
                if conn.in_flight() == 0 {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > EXIT_GRACE {
                        conn.kill("killed: it did not exit after the shutdown frame".to_string());
                    }
                } else {
                    idle_since = None;
                }
                if shared.shutdown_timeout.is_some_and(|t| begun.elapsed() > t) {
                    conn.kill("killed: the pool's shutdown timed out".to_string());
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            let _ = reader.join();
            conn.close();
            let _ = writer.join();
        }
    }
}
