//! The works of this test binary when a pool launches it as a real worker, and the user types
//! that cross the wire through `wire_type!`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

aplex::wire_type! {
    /// A user struct holding nested std types and another user type.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Order {
        pub id: u64,
        pub lines: Vec<(String, u32)>,
        pub note: Option<String>,
        pub state: State,
    }
}

aplex::wire_type! {
    /// A user enum with unit, tuple and named variants.
    #[derive(Debug, Clone, PartialEq)]
    pub enum State {
        Open,
        Held(String),
        Shipped { at: u64, parts: Vec<u16> },
    }
}

aplex::wire_type! {
    /// Values at the edges of their types, to cross a real worker and come back bit for bit.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Edges {
        pub f64s: Vec<f64>,
        pub f32s: Vec<f32>,
        pub wide: (u128, i128, i64, usize, isize),
        pub text: (String, String, char, char),
        pub maybe: Vec<Option<Result<bool, ()>>>,
        pub spans: Vec<Duration>,
        pub nested: Vec<Vec<Vec<Vec<u8>>>>,
    }
}

aplex::works! {
    /// The works of this test binary when it runs as a process-pool worker.
    pub mod works {
        pub fn double(x: u64) -> u64 { x * 2 }
        pub fn exit_now(code: i32) -> u8 { std::process::exit(code) }
        /// Exits the worker on the item `x == at.1`; passes other items through.
        pub fn exit_on(at: (u64, u64)) -> u64 {
            if at.0 == at.1 {
                std::process::exit(3)
            }
            at.0
        }
        /// A plain work that waits for a file that never comes: only a kill ends it.
        pub fn block_forever(dir: String) -> u8 {
            touch(&Path::new(&dir).join("plain-started"));
            loop {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        /// An async work that marks `dir/started-ID`, then waits for `dir/go`; returns the
        /// most gated works its worker ran at once. Its future marks `dir/ended-ID` when it is
        /// dropped, finished or cancelled.
        pub async fn gated(arg: (String, u64)) -> usize {
            let (dir, id) = arg;
            let dir = PathBuf::from(dir);
            let _ended = MarkOnDrop(dir.join(format!("ended-{id}")));
            let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
            MOST.fetch_max(now, Ordering::SeqCst);
            touch(&dir.join(format!("started-{id}")));
            while !dir.join("go").exists() {
                aplex::time::sleep(Duration::from_millis(5)).await;
            }
            RUNNING.fetch_sub(1, Ordering::SeqCst);
            MOST.load(Ordering::SeqCst)
        }
        pub async fn nap(ms: u64) -> u64 {
            aplex::time::sleep(Duration::from_millis(ms)).await;
            ms
        }
        pub async fn checked_div(ab: (i64, i64)) -> Result<i64, String> {
            aplex::yield_now().await;
            if ab.1 == 0 { Err("division by zero".to_string()) } else { Ok(ab.0 / ab.1) }
        }
        pub fn first_word(s: String) -> Option<String> {
            s.split_whitespace().next().map(str::to_string)
        }
        pub fn split(s: String) -> (Vec<String>, usize, bool) {
            let words: Vec<String> = s.split(' ').map(str::to_string).collect();
            let n = words.len();
            (words, n, s.is_empty())
        }
        pub async fn ship(order: Order) -> Order {
            aplex::yield_now().await;
            let parts = order.lines.iter().map(|l| l.1 as u16).collect();
            Order { state: State::Shipped { at: order.id, parts }, ..order }
        }
        pub fn unit(_u: ()) {}
        pub fn pid(_u: ()) -> u32 { std::process::id() }
        pub fn echo_edges(e: Edges) -> Edges { e }
        pub fn touchy(x: u8) -> Touchy { Touchy(x) }
        pub fn touchy_arg(t: Touchy) -> u8 { t.0 }
    }
}

/// A user type whose hand-written decode panics on the byte 13, as a decode with an
/// `unwrap` in it would on bytes it did not expect.
#[derive(Debug, Clone, PartialEq)]
pub struct Touchy(pub u8);

impl aplex::wire::Wire for Touchy {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, aplex::wire::WireError> {
        let byte = <u8 as aplex::wire::Wire>::decode(input)?;
        assert_ne!(byte, 13, "Touchy cannot stand 13");
        Ok(Touchy(byte))
    }
}

/// Gated works running now, and the most at once, in this worker process.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST: AtomicUsize = AtomicUsize::new(0);

/// Marks its path when dropped.
struct MarkOnDrop(PathBuf);

impl Drop for MarkOnDrop {
    fn drop(&mut self) {
        touch(&self.0);
    }
}

fn touch(path: &Path) {
    let _ = std::fs::write(path, b"");
}

/// Turns this binary into a real worker when a pool launched it as one.
pub(crate) fn serve() {
    if std::env::var_os(aplex::WORKER_ENV).is_some() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    aplex::serve_if_worker(&works::WORKS);
}

/// A fresh empty directory for one case's gates and markers.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("aplex-seams-process-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}
