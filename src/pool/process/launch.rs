//! Starting one worker process: the command, the pipes, the two threads, the hello.
//!
//! The supervisor thread starts every worker of a pool (see `mod.rs` for why), through
//! [`launch`]; the worker's reader reports its hello on a channel.

use std::fs::File;
use std::os::unix::io::OwnedFd;
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::conn::{Conn, HelloResult};
use super::frame::{self, Hello};
use super::slot::SlotState;
use super::{Shared, WORKER_ENV, WORKER_ENV_VALUE, WORKER_SLOT_ENV};
use crate::runtime::reactor::lock;
use crate::wire::Wire;
use crate::Error;

/// A started worker: its connection and its threads.
pub(crate) struct Launched {
    pub(crate) conn: Arc<Conn>,
    pub(crate) threads: [JoinHandle<()>; 2],
}

/// Where a worker's reader reports the outcome of its hello exchange, with the slot index.
pub(crate) type HelloSender = mpsc::Sender<(usize, HelloResult)>;

/// What makes a slot's command: the builder's `command` (the same for every slot) or its
/// `launcher` (one per slot index).
pub(crate) enum Launcher {
    Same(Command),
    PerSlot(Box<dyn Fn(usize) -> Command + Send + Sync>),
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Launcher::Same(c) => f.debug_tuple("Same").field(c).finish(),
            Launcher::PerSlot(_) => f.write_str("PerSlot(..)"),
        }
    }
}

impl Launcher {
    /// Spawns slot `index`'s command, with the worker marker and the slot index in its
    /// environment, its stdin and stdout piped (the protocol's, whatever the command set), its
    /// stderr as the command set it (inherited unless the user chose), as the leader of a new
    /// process group. Returns
    /// the child and the program's name (for reasons). A launcher that panics is a failed
    /// spawn, not a dead supervisor.
    fn spawn(&mut self, index: usize) -> Result<(Child, String), Error> {
        let mut made;
        let command = match self {
            Launcher::Same(c) => c,
            Launcher::PerSlot(f) => {
                made = catch_unwind(AssertUnwindSafe(|| f(index))).map_err(|p| {
                    Error::Io(std::io::Error::other(format!(
                        "the launcher panicked for slot {index}: {}",
                        crate::runtime::task::take_panic_message(p)
                    )))
                })?;
                &mut made
            }
        };
        let program = std::path::Path::new(command.get_program())
            .file_name()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let child = command
            .env(WORKER_ENV, WORKER_ENV_VALUE)
            .env(WORKER_SLOT_ENV, index.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()?;
        Ok((child, program))
    }
}

/// A worker process spawned and greeted, whose threads are not started yet.
pub(crate) struct Spawned {
    pub(crate) conn: Arc<Conn>,
    stdout: ChildStdout,
}

/// Spawns a worker for slot `index` with its launcher's command, as the leader of a new
/// process group, makes it the slot's starting worker and sends the parent's hello. Its
/// threads start with [`start_threads`]: a pool starting several workers spawns every
/// process first, so that they all start up while the threads are made.
///
/// # Errors
///
/// `Error::Io` if the command cannot be spawned (a missing binary fails here, at once).
pub(crate) fn spawn(
    launcher: &mut Launcher,
    index: usize,
    shared: &Arc<Shared>,
) -> Result<Spawned, Error> {
    let load = shared.slots[index].load.clone();
    let (mut child, program) = launcher.spawn(index)?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::Io(std::io::Error::other(
            "the worker's pipes are missing",
        )));
    };
    let stdin = File::from(OwnedFd::from(stdin));
    let host = lock(&shared.slots[index].state).host.clone();
    let conn = Arc::new(Conn::new(
        index,
        (host, program),
        child,
        stdin,
        load,
        shared.max_frame,
    ));

    let ours = Hello {
        magic: frame::PARENT_MAGIC.to_string(),
        version: frame::VERSION,
        pid: std::process::id(),
        host: String::new(),
        slot: Some(index as u64),
        names: shared.names.iter().map(|n| n.to_string()).collect(),
        max_works: shared.max_works[index] as u64,
        max_frame: shared.max_frame as u64,
    };
    let mut bytes = Vec::new();
    let start = frame::begin(&mut bytes, frame::HELLO_PARENT, 0);
    ours.encode(&mut bytes);
    let _ = frame::finish(&mut bytes, start, usize::MAX);
    conn.send(&bytes, true);

    // The slot knows its starting worker before the reader can see the hello.
    let slot = &shared.slots[index];
    let mut state = lock(&slot.state);
    if state.launched {
        state.restarts += 1;
    }
    state.launched = true;
    state.shortages = 0;
    state.starting = Some(conn.clone());
    slot.set_phase(&state, SlotState::Starting);
    drop(state);
    Ok(Spawned { conn, stdout })
}

/// Starts a spawned worker's writer and reader threads; the reader reports the hello on
/// `hello`.
///
/// # Errors
///
/// `Error::Io` if a thread cannot be started; the worker is then killed and reaped.
pub(crate) fn start_threads(
    spawned: Spawned,
    shared: &Arc<Shared>,
    hello: HelloSender,
) -> Result<Launched, Error> {
    let Spawned { conn, stdout } = spawned;
    let index = conn.index;
    let w = conn.clone();
    let writer = std::thread::Builder::new()
        .name(format!("aplex-proc-{index}-w"))
        .spawn(move || w.write_loop());
    let writer = match writer {
        Ok(t) => t,
        Err(e) => {
            conn.kill("not started: no writer thread".to_string());
            conn.reap_unread();
            unset_starting(shared, &conn);
            return Err(Error::Io(e));
        }
    };
    let (r, s) = (conn.clone(), shared.clone());
    let reader = std::thread::Builder::new()
        .name(format!("aplex-proc-{index}-r"))
        .spawn(move || r.read_loop(stdout, s, hello));
    match reader {
        Ok(reader) => Ok(Launched {
            conn,
            threads: [reader, writer],
        }),
        Err(e) => {
            conn.kill("not started: no reader thread".to_string());
            conn.close();
            let _ = writer.join();
            conn.reap_unread();
            unset_starting(shared, &conn);
            Err(Error::Io(e))
        }
    }
}

/// Takes a worker that could not be started out of its slot.
fn unset_starting(shared: &Shared, conn: &Arc<Conn>) {
    let mut state = lock(&shared.slots[conn.index].state);
    if state
        .starting
        .as_ref()
        .is_some_and(|c| Arc::ptr_eq(c, conn))
    {
        state.starting = None;
    }
}
