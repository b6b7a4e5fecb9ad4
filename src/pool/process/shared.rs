//! What the pool, its maps, the supervisor and the reader threads share: the slots, and the
//! three events that move a slot (a call, a hello, a death). See the module docs of `process`
//! for the ownership rules and `slot.rs` for the states.

use super::slot::{backoff, Queued, Slot, SlotInner, SlotState, CRASH_LIMIT};
use super::supervisor::Order;
use super::*;

/// What the pool, its maps, the supervisor and the reader threads share.
pub(crate) struct Shared {
    pub(super) names: Vec<&'static str>,
    /// Which works are async (cancellable by a frame).
    pub(super) asyncs: Vec<bool>,
    /// Works one slot's worker runs at once, per slot (its `Load::capacity`).
    pub(super) max_works: Vec<usize>,
    pub(super) max_frame: usize,
    pub(super) max_per_child: usize,
    pub(super) kill_on_cancel: bool,
    pub(super) shutdown_timeout: Option<Duration>,
    pub(super) slots: Vec<Slot>,
    pub(super) picker: Picker,
    /// Calls are accepted.
    pub(super) open: AtomicBool,
    /// The shutdown under way is `shutdown_now`.
    pub(super) now: AtomicBool,
    /// `build` succeeded: deaths are answered by the supervisor (before, by `build` itself).
    pub(super) serving: AtomicBool,
    pub(super) next_id: AtomicU64,
    /// Why the last worker crashed or could not start, in any slot (a leaf lock: taken with a
    /// slot lock held, never the other way round).
    pub(super) last_crash: Mutex<Option<String>>,
    pub(super) orders: Mutex<mpsc::Sender<Order>>,
    /// Every launched worker's connection and threads, until shutdown joins them.
    pub(super) started: Mutex<Vec<Started>>,
    /// Set when the supervisor is done: the shutdown has ended, or the supervisor has.
    pub(super) closed: crate::sync::Event,
}

/// Frames routed to live workers and not yet sent, per worker, in order (see
/// [`Shared::submit_many`]).
#[derive(Default)]
struct Batch(Vec<(Arc<Conn>, Vec<u8>)>);

impl Batch {
    fn add(&mut self, conn: &Arc<Conn>, frame: &[u8]) {
        match self.0.iter_mut().find(|(c, _)| Arc::ptr_eq(c, conn)) {
            Some((_, bytes)) => bytes.extend_from_slice(frame),
            None => self.0.push((conn.clone(), frame.to_vec())),
        }
    }
}

/// A launched worker's connection, and its reader and writer threads.
pub(super) type Started = (Arc<Conn>, [JoinHandle<()>; 2]);

impl Shared {
    pub(super) fn load(&self, i: usize) -> Load {
        // ORDERING: Relaxed: loads are a hint for balancing.
        let n = self.slots[i].load.load(Ordering::Relaxed);
        let capacity = self.max_works[i];
        let running = n.min(capacity);
        Load {
            running,
            queued: n - running,
            capacity,
        }
    }

    /// The load a balancer is shown: a slot without a live worker looks full, so that
    /// balancers that look at loads send calls to live slots.
    fn pick_load(&self, i: usize) -> Load {
        if self.slots[i].phase() == SlotState::Ready {
            return self.load(i);
        }
        Load {
            running: self.max_works[i],
            queued: u32::MAX as usize,
            capacity: self.max_works[i],
        }
    }

    pub(super) fn order(&self, order: Order) {
        let _ = lock(&self.orders).send(order);
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a job to the worker the balancer picks, or to a live one if that one is not live,
    /// or keeps it for the next worker to start; fails it if the pool is closed or broken.
    pub(super) fn submit(&self, hint: Option<u64>, id: u64, job: Arc<dyn Pending>, frame: Vec<u8>) {
        if !self.open.load(Ordering::Acquire) {
            job.fail(Error::ShutDown);
            return;
        }
        let i = self.picker.pick(
            self.slots.len(),
            |i| self.pick_load(i),
            hint,
            |i| {
                self.slots[i].load.fetch_add(1, Ordering::Relaxed);
            },
        );
        self.route(i, (id, job, frame));
    }

    /// Sends several jobs (a map's batch of chunks): each where [`submit`](Shared::submit)
    /// would send it, in order, but each worker gets its share in one write.
    pub(super) fn submit_many(&self, calls: Vec<Queued>) {
        let mut batch = Batch::default();
        for (id, job, frame) in calls {
            if !self.open.load(Ordering::Acquire) {
                job.fail(Error::ShutDown);
                continue;
            }
            let i = self.picker.pick(
                self.slots.len(),
                |i| self.pick_load(i),
                None,
                |i| {
                    self.slots[i].load.fetch_add(1, Ordering::Relaxed);
                },
            );
            self.route_into(i, (id, job, frame), Some(&mut batch));
        }
        for (conn, bytes) in batch.0 {
            conn.send(&bytes, true);
        }
    }

    /// True while more calls are in flight than the pool has workers: calls come faster
    /// than workers answer them, so a write per call would cost a wake-up of a worker per call.
    fn in_a_burst(&self) -> bool {
        // ORDERING: Relaxed: a hint; a stale count costs one write more or less.
        let total: usize = self
            .slots
            .iter()
            .map(|s| s.load.load(Ordering::Relaxed))
            .sum();
        total > self.slots.len()
    }

    /// Moves one unit of load from slot `from` to slot `to`.
    fn move_load(&self, from: usize, to: usize) {
        if from != to {
            self.slots[to].load.fetch_add(1, Ordering::Relaxed);
            self.slots[from].load.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Places a call counted in slot `i`'s load (see [`submit`](Shared::submit)).
    fn route(&self, i: usize, call: Queued) {
        self.route_into(i, call, None);
    }

    /// Like [`route`](Shared::route); with a `batch`, a frame for a live worker is added to
    /// that worker's bytes in the batch rather than sent.
    fn route_into(&self, mut i: usize, call: Queued, mut batch: Option<&mut Batch>) {
        for _ in 0..=self.slots.len() {
            let slot = &self.slots[i];
            let mut state = lock(&slot.state);
            if !self.open.load(Ordering::Acquire) {
                drop(state);
                slot.load.fetch_sub(1, Ordering::Relaxed);
                call.1.fail(Error::ShutDown);
                return;
            }
            if let Some(conn) = state.conn.clone() {
                self.send_to(i, state, &conn, call, batch.as_deref_mut());
                return;
            }
            // Not live: prefer a live slot, else wait for this one (or a better one) to start.
            let target = self.live_slot().unwrap_or_else(|| self.waiting_slot(i));
            if target == i {
                if let Some(e) = self.broken() {
                    drop(state);
                    slot.load.fetch_sub(1, Ordering::Relaxed);
                    call.1.fail(e);
                    return;
                }
                state.backlog.push(call);
                return;
            }
            drop(state);
            self.move_load(i, target);
            i = target;
        }
        // Slots kept changing under us: wait in the last one tried.
        lock(&self.slots[i].state).backlog.push(call);
    }

    /// The least loaded slot with a live worker.
    fn live_slot(&self) -> Option<usize> {
        (0..self.slots.len())
            .filter(|&j| self.slots[j].phase() == SlotState::Ready)
            .min_by_key(|&j| self.slots[j].load.load(Ordering::Relaxed))
    }

    /// The slot a call should wait in when none is live: `i` unless another will start sooner.
    fn waiting_slot(&self, i: usize) -> usize {
        let rank = |s: SlotState| match s {
            SlotState::Ready | SlotState::Starting => 0,
            SlotState::BackingOff => 1,
            _ => 2,
        };
        (0..self.slots.len())
            .min_by_key(|&j| (rank(self.slots[j].phase()), j != i))
            .unwrap_or(i)
    }

    /// The error for new calls while every slot is broken (crash-looping) and none is alive.
    pub(super) fn broken(&self) -> Option<Error> {
        if !self.slots.iter().all(|s| s.phase() == SlotState::Broken) {
            return None;
        }
        let last = lock(&self.last_crash).clone();
        Some(Error::WorkerLost(format!(
            "the pool is broken: in every slot, {CRASH_LIMIT} or more workers in a row died \
             before completing a work (the last: {}); slots retry after a backoff",
            last.as_deref().unwrap_or("unknown")
        )))
    }

    /// Sends a call to slot `i`'s live worker (`state` is that slot's locked state), or adds
    /// its frame to `batch`.
    fn send_to(
        &self,
        i: usize,
        mut state: MutexGuard<'_, SlotInner>,
        conn: &Arc<Conn>,
        call: Queued,
        mut batch: Option<&mut Batch>,
    ) {
        let slot = &self.slots[i];
        let (id, job, frame) = call;
        conn.track(id, job);
        match batch.as_deref_mut() {
            Some(batch) => batch.add(conn, &frame),
            None => {
                // Alone in flight on its worker, and no burst under way (no more calls in
                // flight than workers): write it now, on this thread, for the shortest round
                // trip. In a burst, the writer thread gathers the calls into large writes.
                let direct = slot.load.load(Ordering::Relaxed) <= 1 && !self.in_a_burst();
                conn.send(&frame, direct);
            }
        }
        let sent = conn.sent.fetch_add(1, Ordering::Relaxed) + 1;
        if self.max_per_child > 0 && sent >= self.max_per_child {
            // Recycle: this worker finishes what it has and exits; a new one takes the slot.
            state.conn = None;
            slot.set_phase(&state, SlotState::Starting);
            conn.retired.store(true, Ordering::Relaxed);
            let mut bytes = Vec::new();
            frame::empty(&mut bytes, frame::SHUTDOWN, 0);
            // After the frames of this batch, if any: the worker must get the call first.
            match batch {
                Some(batch) => batch.add(conn, &bytes),
                None => conn.send(&bytes, false),
            }
            drop(state);
            self.order(Order::Respawn {
                slot: i,
                at: Instant::now(),
            });
        }
    }

    /// A launched worker said a valid hello (called by its reader): it becomes its slot's
    /// worker and gets the calls that waited for one. During a graceful shutdown it gets them
    /// and then a shutdown frame; during `shutdown_now`, it is killed.
    pub(super) fn on_hello(&self, conn: &Arc<Conn>) {
        let slot = &self.slots[conn.index];
        let mut state = lock(&slot.state);
        if !state
            .starting
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, conn))
        {
            return; // given up on (a failed build), or replaced
        }
        state.starting = None;
        if self.now.load(Ordering::Acquire) {
            drop(state);
            conn.kill("killed by shutdown_now".to_string());
            return;
        }
        let open = self.open.load(Ordering::Acquire);
        if let Some(host) = conn.host() {
            state.host = Some(host);
        }
        if open {
            state.conn = Some(conn.clone());
            slot.set_phase(&state, SlotState::Ready);
        } else {
            conn.retired.store(true, Ordering::Relaxed);
        }
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
        if !open {
            frame::empty(&mut bytes, frame::SHUTDOWN, 0);
        }
        if !bytes.is_empty() {
            conn.send(&bytes, false);
        }
        drop(state);
        if open {
            // Calls waiting in slots that are not starting come here now.
            for j in 0..self.slots.len() {
                if j != conn.index {
                    self.reroute_backlog(j);
                }
            }
        }
    }

    /// A worker's reader saw its end (at any stage: before its hello, before it was installed,
    /// while serving): fail its works, and start a replacement now or after a backoff.
    pub(super) fn on_death(&self, conn: &Arc<Conn>, why: String) {
        let i = conn.index;
        let slot = &self.slots[i];
        let mut state = lock(&slot.state);
        let mut current = false;
        if state.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            state.conn = None;
            current = true;
        }
        if state
            .starting
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, conn))
        {
            state.starting = None;
            current = true;
        }
        let open = self.open.load(Ordering::Acquire);
        let mut next = None;
        if current && !conn.retired.load(Ordering::Relaxed) {
            let completed = conn.completed.load(Ordering::Relaxed) > 0;
            if completed {
                state.crashes = 0;
            }
            if !conn.greeted() || (!completed && !conn.was_killed()) {
                state.crashes += 1;
                state.last_error = Some(why.clone());
                *lock(&self.last_crash) = Some(why.clone());
            }
            if open {
                let delay = backoff(state.crashes);
                let phase = if state.crashes >= CRASH_LIMIT {
                    SlotState::Broken
                } else if delay.is_zero() {
                    SlotState::Starting
                } else {
                    SlotState::BackingOff
                };
                slot.set_phase(&state, phase);
                next = Some(delay);
            }
        }
        // A graceful drop never waits for a worker that will not come.
        let orphans = if !open && state.conn.is_none() && state.starting.is_none() {
            std::mem::take(&mut state.backlog)
        } else {
            Vec::new()
        };
        drop(state);
        for job in conn.drain() {
            job.fail(Error::WorkerLost(why.clone()));
        }
        self.fail_queued(i, orphans, &Error::WorkerLost(why.clone()));
        if let Some(delay) = next {
            if self.serving.load(Ordering::Acquire) {
                let at = Instant::now()
                    .checked_add(delay)
                    .unwrap_or_else(Instant::now);
                self.order(Order::Respawn { slot: i, at });
            }
            if !delay.is_zero() {
                self.reroute_backlog(i);
            }
        }
    }

    /// A spawn for slot `i` failed: back off (a shortage is not a crash), and move the calls
    /// waiting there to live slots. Returns when to try again.
    pub(super) fn on_spawn_failure(&self, i: usize, e: &Error) -> Instant {
        let slot = &self.slots[i];
        let mut state = lock(&slot.state);
        let shortage = matches!(e, Error::Io(io) if super::slot::is_shortage(io));
        let failures = if shortage {
            state.shortages += 1;
            state.shortages + 1 // back off from the first shortage on
        } else {
            state.crashes += 1;
            state.crashes
        };
        let why = format!("the worker could not be started: {e}");
        *lock(&self.last_crash) = Some(why.clone());
        state.last_error = Some(why);
        let phase = if state.crashes >= CRASH_LIMIT {
            SlotState::Broken
        } else {
            SlotState::BackingOff
        };
        slot.set_phase(&state, phase);
        drop(state);
        self.reroute_backlog(i);
        let delay = backoff(failures.max(2));
        Instant::now()
            .checked_add(delay)
            .unwrap_or_else(Instant::now)
    }

    /// Moves the calls waiting in slot `i` (when it has no worker starting) to live slots; if
    /// the pool is broken, fails them.
    pub(super) fn reroute_backlog(&self, i: usize) {
        let backlog = {
            let mut state = lock(&self.slots[i].state);
            if state.conn.is_some() || state.starting.is_some() || state.backlog.is_empty() {
                return;
            }
            if self.live_slot().is_none() && self.broken().is_none() {
                return; // nowhere better: keep waiting for this slot's next worker
            }
            std::mem::take(&mut state.backlog)
        };
        for call in backlog {
            self.route(i, call);
        }
    }

    /// Fails calls that waited in slot `i`.
    pub(super) fn fail_queued(&self, i: usize, calls: Vec<Queued>, error: &Error) {
        self.slots[i].load.fetch_sub(calls.len(), Ordering::Relaxed);
        for (_, job, _) in calls {
            job.fail(error.duplicate());
        }
    }

    /// Keeps a launched worker's threads for shutdown to join; joins those already done.
    pub(super) fn keep(&self, conn: Arc<Conn>, threads: [JoinHandle<()>; 2]) {
        let mut started = lock(&self.started);
        let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut *started)
            .into_iter()
            .partition(|(_, [r, w])| r.is_finished() && w.is_finished());
        *started = live;
        started.push((conn, threads));
        drop(started);
        for (_, [r, w]) in done {
            let _ = r.join();
            let _ = w.join();
        }
    }
}
