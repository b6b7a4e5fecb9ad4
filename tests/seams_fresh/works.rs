//! The works of this test binary when a pool launches it as a worker, user types whose `Wire`
//! impls panic, and a fake worker that says hello and then closes its input.

use std::io::{Read, Write};
use std::time::Duration;

use aplex::wire::{Wire, WireError};

aplex::works! {
    /// The works of this test binary when it runs as a process-pool worker.
    pub mod works {
        pub fn double(x: u64) -> u64 { x * 2 }
        /// A string of `n` bytes: a result of a chosen size.
        pub fn make_string(n: usize) -> String { "x".repeat(n) }
        /// An argument of a chosen size.
        pub fn bytes_len(b: Vec<u8>) -> usize { b.len() }
        pub fn touchy_arg(t: Touchy) -> u8 { t.0 }
        pub fn touchy(x: u8) -> Touchy { Touchy(x) }
        pub fn fuse_arg(f: Fuse) -> u8 { f.0 }
    }
}

/// A user type whose decode panics on the byte 13 (an `unwrap` on bytes it did not expect).
#[derive(Debug, Clone, PartialEq)]
pub struct Touchy(pub u8);

impl Wire for Touchy {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let byte = u8::decode(input)?;
        assert_ne!(byte, 13, "Touchy cannot stand 13");
        Ok(Touchy(byte))
    }
}

/// A user type whose encode panics on the byte 13: the panic happens in the parent, while a
/// call or a map's chunk is encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Fuse(pub u8);

impl Wire for Fuse {
    fn encode(&self, out: &mut Vec<u8>) {
        assert_ne!(self.0, 13, "Fuse blows on 13");
        out.push(self.0);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        Ok(Fuse(u8::decode(input)?))
    }
}

/// The variable that makes this binary the fake worker that closes its input after its hello.
pub(crate) const CLOSES_INPUT_ENV: &str = "SEAMS_FRESH_CLOSES_INPUT";

/// Turns this binary into a worker (real, or the fake one) when a pool launched it as one.
pub(crate) fn serve() {
    if std::env::var_os(aplex::WORKER_ENV).is_some() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    if std::env::var_os(CLOSES_INPUT_ENV).is_some() {
        closes_input_after_hello();
    }
    aplex::serve_if_worker(&works::WORKS);
}

/// Reads the parent's hello, answers with a good one, closes its input (fd 0) and keeps its
/// output open: the parent's next write fails while no end of output ever comes.
fn closes_input_after_hello() -> ! {
    const HELLO_WORKER: u8 = 2;
    const VERSION: u32 = 2;
    let mut input = std::io::stdin();
    let mut len = [0u8; 4];
    if input.read_exact(&mut len).is_err() {
        std::process::exit(0);
    }
    let mut rest = vec![0u8; u32::from_le_bytes(len) as usize];
    if input.read_exact(&mut rest).is_err() {
        std::process::exit(0);
    }
    let mut hello = Vec::new();
    "aplex-worker".to_string().encode(&mut hello);
    "\n".to_string().encode(&mut hello);
    VERSION.encode(&mut hello);
    std::process::id().encode(&mut hello);
    "fake-host".to_string().encode(&mut hello);
    Some(0u64).encode(&mut hello);
    let names: Vec<String> = works::WORKS.names().iter().map(|n| n.to_string()).collect();
    names.encode(&mut hello);
    1u64.encode(&mut hello);
    (1u64 << 20).encode(&mut hello);
    let mut frame = ((9 + hello.len()) as u32).to_le_bytes().to_vec();
    frame.push(HELLO_WORKER);
    frame.extend_from_slice(&0u64.to_le_bytes());
    frame.extend_from_slice(&hello);
    let mut out = std::io::stdout();
    let _ = out.write_all(&frame);
    let _ = out.flush();
    extern "C" {
        fn close(fd: i32) -> i32;
    }
    // SAFETY: fd 0 is this process's stdin, which nothing else in it uses from here on (the
    // `Stdin` above is not read again); closing an fd touches no memory of ours.
    unsafe {
        close(0);
    }
    // Output stays open until the pool kills this process (or the bound ends it).
    std::thread::sleep(Duration::from_secs(60));
    std::process::exit(0);
}

/// The command that launches this binary as the fake worker that closes its input.
pub(crate) fn closes_input_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("the test binary"));
    cmd.env(CLOSES_INPUT_ENV, "1");
    cmd
}
