//! A fake worker: this test binary, launched with `SEAMS_FAKE=<script>`, speaks the protocol by
//! hand instead of through `serve_if_worker`, and lies the way the script says: results for
//! jobs never asked, results twice, chunk counts off by one, absurd hellos, lengths of
//! `u32::MAX`, payloads that claim 2^60 items, unknown kinds, frames dribbled out a byte at a
//! time, stray output on the protocol's stdout.
//!
//! The frame format, as the parent reads it: `u32` LE length of what follows, `u8` kind, `u64`
//! LE job id, payload. Kinds: 1 the parent's hello, 2 the worker's, 3 call, 4 chunk, 5 cancel,
//! 6 result, 7 shutdown, 8 terminate. A result payload is a status byte (0 ok, 1 remote, 2
//! panic, 3 wire) and the value or message; a chunk's is `0`, a `u64` count, then an outcome
//! per item.
//!
//! With `SEAMS_FAKE_ONCE=<path>`, only the worker that creates `path` first lies; its
//! replacements behave, so a case can check that the pool serves on after the lie.

use std::io::{Read, Write};
use std::time::Duration;

use aplex::wire::Wire;

use crate::works::works;

const HELLO_WORKER: u8 = 2;
const CALL: u8 = 3;
const CHUNK: u8 = 4;
const CANCEL: u8 = 5;
const RESULT: u8 = 6;
const SHUTDOWN: u8 = 7;
const TERMINATE: u8 = 8;
const VERSION: u32 = 2;

/// The environment variable that names the fake worker's script.
pub(crate) const FAKE_ENV: &str = "SEAMS_FAKE";
/// The environment variable that makes only the first fake worker lie.
pub(crate) const ONCE_ENV: &str = "SEAMS_FAKE_ONCE";

/// The command that launches this binary as a fake worker running `script`; with `once`, only
/// the first worker lies (the marker file is made in `once`).
pub(crate) fn command(script: &str, once: Option<&std::path::Path>) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("the test binary"));
    cmd.env(FAKE_ENV, script);
    if let Some(dir) = once {
        cmd.env(ONCE_ENV, dir.join("lied"));
    }
    cmd
}

/// Becomes a fake worker when launched as one, and never returns then.
pub(crate) fn serve_if_fake() {
    let Ok(script) = std::env::var(FAKE_ENV) else {
        return;
    };
    std::panic::set_hook(Box::new(|_| {}));
    let lies = match std::env::var_os(ONCE_ENV) {
        Some(marker) => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(marker)
            .is_ok(),
        None => true,
    };
    let script = if lies { script } else { "good".to_string() };
    Fake::new().run(&script);
    std::process::exit(0);
}

struct Fake {
    input: std::io::Stdin,
    out: std::io::Stdout,
}

fn index_of(name: &str) -> u32 {
    works::WORKS
        .names()
        .iter()
        .position(|n| *n == name)
        .expect("a work of the registry") as u32
}

impl Fake {
    fn new() -> Fake {
        Fake {
            input: std::io::stdin(),
            out: std::io::stdout(),
        }
    }

    /// The next frame from the parent; exits at the end of input, a shutdown or a terminate.
    fn read(&mut self) -> (u8, u64, Vec<u8>) {
        let mut len = [0u8; 4];
        if self.input.read_exact(&mut len).is_err() {
            std::process::exit(0);
        }
        let mut rest = vec![0u8; u32::from_le_bytes(len) as usize];
        if self.input.read_exact(&mut rest).is_err() || rest.len() < 9 {
            std::process::exit(0);
        }
        let kind = rest[0];
        if kind == SHUTDOWN || kind == TERMINATE {
            std::process::exit(0);
        }
        let id = u64::from_le_bytes(rest[1..9].try_into().expect("8 bytes"));
        (kind, id, rest[9..].to_vec())
    }

    fn raw(&mut self, bytes: &[u8]) {
        let _ = self.out.write_all(bytes);
        let _ = self.out.flush();
    }

    fn frame(&mut self, kind: u8, id: u64, payload: &[u8]) {
        self.raw(&frame(kind, id, payload));
    }

    /// Writes `bytes` a few at a time, pausing between pieces (pacing, not synchronisation).
    fn dribble(&mut self, bytes: &[u8], piece: usize, pause: Duration) {
        for part in bytes.chunks(piece) {
            self.raw(part);
            std::thread::sleep(pause);
        }
    }

    /// Drains the input until the parent closes it (or kills this process).
    fn linger(&mut self) -> ! {
        let mut sink = [0u8; 4096];
        while matches!(self.input.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    }

    fn run(&mut self, script: &str) {
        let (_, _, _parent_hello) = self.read();
        let names: Vec<String> = works::WORKS.names().iter().map(|n| n.to_string()).collect();
        let hello = match script {
            "bad_version" => hello(VERSION + 7, &names, 0, 0),
            "absurd_counts" => hello(VERSION, &names, u64::MAX, u64::MAX),
            "names_claim_2_60" => {
                let mut h = hello_head(VERSION);
                (1u64 << 60).encode(&mut h); // a count of names with none behind it
                h
            }
            _ => hello(VERSION, &names, 1, 1 << 20),
        };
        match script {
            "result_before_hello" => {
                self.frame(RESULT, 1, &[0]);
                self.linger();
            }
            "slow_partial" => {
                let bytes = frame(HELLO_WORKER, 0, &hello);
                self.dribble(&bytes, 7, Duration::from_millis(30));
            }
            _ => self.frame(HELLO_WORKER, 0, &hello),
        }
        match script {
            "hello_twice" => self.frame(HELLO_WORKER, 0, &hello),
            "stdout_garbage" => self.raw(b"a stray print on the protocol's stdout\n"),
            _ => {}
        }
        loop {
            let (kind, id, payload) = self.read();
            match kind {
                CALL => self.call(script, id, &payload),
                CHUNK => self.chunk(script, id, &payload),
                CANCEL if script == "answer_after_cancel" => {
                    self.frame(RESULT, id, &ok_u64(1));
                }
                _ => {}
            }
        }
    }

    fn call(&mut self, script: &str, id: u64, payload: &[u8]) {
        let mut input = payload;
        let index = u32::decode(&mut input).expect("a work index");
        let reply = if index == index_of("double") {
            let x = u64::decode(&mut input).expect("a u64 argument");
            ok_u64(x.wrapping_mul(2))
        } else if index == index_of("nap") {
            if script == "answer_after_cancel" {
                return; // answered when the cancel comes
            }
            let ms = u64::decode(&mut input).expect("a u64 argument");
            ok_u64(ms)
        } else if index == index_of("split") {
            let mut r = vec![0u8];
            (vec!["a".to_string(), "b".to_string()], 2usize, false).encode(&mut r);
            r
        } else {
            let mut r = vec![1u8];
            "the fake worker does not run this work"
                .to_string()
                .encode(&mut r);
            r
        };
        match script {
            "unknown_id" => {
                self.frame(RESULT, id ^ (1 << 40), &ok_u64(7));
                self.frame(RESULT, id, &reply);
            }
            "twice" => {
                self.frame(RESULT, id, &reply);
                self.frame(RESULT, id, &ok_u64(999));
            }
            "len_max" => {
                self.raw(&u32::MAX.to_le_bytes());
                self.linger();
            }
            "len_too_short" => {
                self.raw(&[3, 0, 0, 0, RESULT, 0, 0]);
                self.linger();
            }
            "big_then_exit" => {
                // A valid length under the maximum, a mebibyte of it, then the end.
                let declared: u32 = 200 << 20;
                self.raw(&declared.to_le_bytes());
                self.raw(&[RESULT]);
                self.raw(&id.to_le_bytes());
                self.raw(&vec![0u8; 1 << 20]);
                std::process::exit(0);
            }
            "claims_2_60" if index == index_of("split") => {
                let mut r = vec![0u8];
                (1u64 << 60).encode(&mut r); // Vec<String>'s count, nothing behind it
                self.frame(RESULT, id, &r);
            }
            "unknown_kind" => self.frame(99, id, &reply),
            "bad_status" => self.frame(RESULT, id, &[9, 1, 2, 3]),
            "trailing" => {
                let mut r = reply;
                r.extend_from_slice(&[1, 2, 3]);
                self.frame(RESULT, id, &r);
            }
            "slow_partial" => {
                let bytes = frame(RESULT, id, &reply);
                self.dribble(&bytes, 1, Duration::from_millis(10));
            }
            _ => self.frame(RESULT, id, &reply),
        }
    }

    fn chunk(&mut self, script: &str, id: u64, payload: &[u8]) {
        let mut input = payload;
        let _index = u32::decode(&mut input).expect("a work index");
        let count = u64::decode(&mut input).expect("a count");
        let mut items = Vec::new();
        for _ in 0..count {
            items.push(u64::decode(&mut input).expect("a u64 item"));
        }
        let answered = match script {
            "chunk_more" => count + 1,
            "chunk_fewer" => count.saturating_sub(1),
            _ => count,
        };
        let mut r = vec![0u8];
        answered.encode(&mut r);
        for k in 0..answered as usize {
            r.push(0);
            items
                .get(k)
                .copied()
                .unwrap_or(0)
                .wrapping_mul(2)
                .encode(&mut r);
        }
        self.frame(RESULT, id, &r);
    }
}

/// A whole frame.
pub(crate) fn frame(kind: u8, id: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(13 + payload.len());
    out.extend_from_slice(&((9 + payload.len()) as u32).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// An `OK` outcome holding `x`.
fn ok_u64(x: u64) -> Vec<u8> {
    let mut r = vec![0u8];
    x.encode(&mut r);
    r
}

/// A worker hello's fields up to (not including) the work names.
fn hello_head(version: u32) -> Vec<u8> {
    let mut h = Vec::new();
    "aplex-worker".to_string().encode(&mut h);
    "\n".to_string().encode(&mut h);
    version.encode(&mut h);
    std::process::id().encode(&mut h);
    "fake-host".to_string().encode(&mut h);
    Some(0u64).encode(&mut h);
    h
}

/// A worker hello.
fn hello(version: u32, names: &[String], max_works: u64, max_frame: u64) -> Vec<u8> {
    let mut h = hello_head(version);
    names.to_vec().encode(&mut h);
    max_works.encode(&mut h);
    max_frame.encode(&mut h);
    h
}
