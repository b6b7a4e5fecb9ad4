//! Named works: [`works!`](crate::works), the typed handle [`Work`] and the [`Registry`].
//!
//! A registry is a static list of entries, one per work, in declaration order: its name and a
//! type-erased runner that decodes the argument, calls the function and encodes the outcome.
//! Parent and worker are the same program (or two builds of the same `works!`), so a work is
//! named on the wire by its index; the hello exchange checks that both sides list the same
//! names in the same order.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;

use crate::runtime::task::take_panic_message;
use crate::wire::Wire;

/// The outcome byte in front of each encoded result.
pub(crate) mod status {
    /// The work returned; its encoded value follows.
    pub(crate) const OK: u8 = 0;
    /// The worker could not run the work; a message follows.
    pub(crate) const REMOTE: u8 = 1;
    /// The work panicked; the panic's message follows.
    pub(crate) const PANIC: u8 = 2;
    /// The argument could not be decoded; a message follows.
    pub(crate) const WIRE: u8 = 3;
}

/// A typed handle to one work of a [`Registry`]: what [`ProcessPool::call`] takes, so that the
/// argument and result types are checked at compile time.
///
/// [`works!`](crate::works) declares one constant of this type per function.
///
/// [`ProcessPool::call`]: crate::ProcessPool::call
///
/// ```
/// aplex::works! {
///     pub mod works {
///         pub fn double(x: u64) -> u64 { x * 2 }
///     }
/// }
/// let work: aplex::Work<u64, u64> = works::double;
/// assert_eq!(work.name(), "double");
/// ```
pub struct Work<A, R> {
    index: usize,
    name: &'static str,
    /// The registry that declares this work (what `in_process` builds its pool from).
    registry: &'static Registry,
    _types: PhantomData<fn(A) -> R>,
}

impl<A, R> Work<A, R> {
    #[doc(hidden)]
    pub const fn __new(
        index: usize,
        name: &'static str,
        registry: &'static Registry,
    ) -> Work<A, R> {
        Work {
            index,
            name,
            registry,
            _types: PhantomData,
        }
    }

    /// The registry that declares this work.
    pub fn registry(&self) -> &'static Registry {
        self.registry
    }

    /// The work's name: the name of its function.
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn index(&self) -> usize {
        self.index
    }
}

impl<A, R> Clone for Work<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R> Copy for Work<A, R> {}

impl<A, R> fmt::Debug for Work<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Work")
            .field("name", &self.name)
            .field("index", &self.index)
            .finish()
    }
}

/// A future of one async work's encoded outcome (status byte, then payload).
#[doc(hidden)]
pub type Running = Pin<Box<dyn Future<Output = Vec<u8>>>>;

/// How a worker runs one work, whatever its types.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Runner {
    /// Runs the function on up to `n` arguments decoded one after the other from the input,
    /// appending each encoded outcome, and stops early when the outcomes are over `limit`
    /// bytes before an item (see [`Ran`]). One call per run of items, not per item: the
    /// function is inlined into the loop, and a chunk of tiny works pays one indirect call
    /// per stretch of items.
    Plain(fn(&mut &[u8], &mut Vec<u8>, usize, usize) -> Ran),
    /// Decodes one argument and returns the work's future, or the encoded decode error.
    Async(fn(&mut &[u8]) -> Result<Running, Vec<u8>>),
}

/// One work of a registry.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub(crate) name: &'static str,
    pub(crate) runner: Runner,
    /// The argument type is zero-sized, so an argument may take no bytes on the wire: a
    /// chunk's item count is then bounded by the result it makes, not by its input.
    pub(crate) zero_sized_arg: bool,
}

impl Entry {
    /// A plain work; `f` is the function itself (only its argument type is used).
    #[doc(hidden)]
    pub const fn plain<A, R>(
        name: &'static str,
        _f: fn(A) -> R,
        run: fn(&mut &[u8], &mut Vec<u8>, usize, usize) -> Ran,
    ) -> Entry {
        Entry {
            name,
            runner: Runner::Plain(run),
            zero_sized_arg: std::mem::size_of::<A>() == 0,
        }
    }

    /// An async work; `f` is the function itself (only its argument type is used).
    #[doc(hidden)]
    pub const fn spawn<A, R>(
        name: &'static str,
        _f: fn(A) -> R,
        run: fn(&mut &[u8]) -> Result<Running, Vec<u8>>,
    ) -> Entry {
        Entry {
            name,
            runner: Runner::Async(run),
            zero_sized_arg: std::mem::size_of::<A>() == 0,
        }
    }
}

/// The works a program offers to its worker processes, declared by [`works!`](crate::works)
/// as `WORKS`.
///
/// ```
/// aplex::works! {
///     pub mod works {
///         pub fn double(x: u64) -> u64 { x * 2 }
///         pub async fn echo(s: String) -> String { s }
///     }
/// }
/// assert_eq!(works::WORKS.names(), vec!["double", "echo"]);
/// ```
pub struct Registry {
    entries: &'static [Entry],
}

impl Registry {
    #[doc(hidden)]
    pub const fn __new(entries: &'static [Entry]) -> Registry {
        Registry { entries }
    }

    /// The names of the works, in declaration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.name).collect()
    }

    pub(crate) fn entries(&self) -> &'static [Entry] {
        self.entries
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("works", &self.names())
            .finish()
    }
}

/// The position of `name` in `names` (for the indexes [`works!`](crate::works) gives).
#[doc(hidden)]
pub const fn index_of(names: &[&str], name: &str) -> usize {
    let mut i = 0;
    while i < names.len() {
        let (a, b) = (names[i].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    panic!("aplex::works!: unknown work name")
}

/// Appends a status byte and a message.
fn encode_message(status: u8, message: &str, out: &mut Vec<u8>) {
    out.push(status);
    crate::wire::encode_str(message, out);
}

/// How a run of a plain work's items ended.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Every item asked for ran (its outcome may be a panic).
    All,
    /// The outcomes were over the limit before the next item: this many items ran.
    Full(usize),
    /// The argument of the item after `done` items could not be decoded (an error, or a
    /// panic of its `Wire::decode`): its failure is the last outcome in the output, from `at`
    /// on. Where the next argument begins is unknown, so the input is unusable past it.
    Broken { done: usize, at: usize },
}

/// The runner of a plain work `f`: see [`Runner::Plain`].
///
/// The user's decoding, work, value encoding and value drop all run inside one guard for as
/// many items as run without a panic: a panic is that item's `PANIC` outcome (or, in its
/// argument's decoding, a broken input), never the worker's end, and the items after it run
/// under a new guard.
#[doc(hidden)]
pub fn run_plain<A: Wire, R: Wire, F: Fn(A) -> R>(
    input: &mut &[u8],
    out: &mut Vec<u8>,
    n: usize,
    limit: usize,
    f: F,
) -> Ran {
    let mut done = 0;
    // Where the outcome of the item under way begins, and whether it is still decoding.
    let mut at = out.len();
    let mut decoding = false;
    while done < n {
        let ran = catch_unwind(AssertUnwindSafe(|| {
            while done < n {
                if out.len() > limit {
                    return Ran::Full(done);
                }
                at = out.len();
                decoding = true;
                let arg = match A::decode(input) {
                    Ok(arg) => arg,
                    Err(e) => {
                        let why = format!("could not decode the argument: {e}");
                        encode_message(status::WIRE, &why, out);
                        return Ran::Broken { done, at };
                    }
                };
                decoding = false;
                let value = f(arg);
                out.push(status::OK);
                value.encode(out);
                drop(value);
                done += 1;
            }
            Ran::All
        }));
        match ran {
            Ok(ran) => return ran,
            Err(panic) => {
                out.truncate(at);
                let message = take_panic_message(panic);
                if decoding {
                    let why = format!("decoding the argument panicked: {message}");
                    encode_message(status::PANIC, &why, out);
                    return Ran::Broken { done, at };
                }
                encode_message(status::PANIC, &message, out);
                done += 1;
            }
        }
    }
    Ran::All
}

/// Decodes a work's argument, or gives the encoded failure to send back: a typed error, or a
/// panic of the user's own `Wire::decode`.
fn decode_argument<A: Wire>(input: &mut &[u8]) -> Result<A, Vec<u8>> {
    let mut out = Vec::new();
    match catch_unwind(AssertUnwindSafe(|| A::decode(input))) {
        Ok(Ok(arg)) => return Ok(arg),
        Ok(Err(e)) => encode_message(
            status::WIRE,
            &format!("could not decode the argument: {e}"),
            &mut out,
        ),
        Err(panic) => encode_message(
            status::PANIC,
            &format!(
                "decoding the argument panicked: {}",
                take_panic_message(panic)
            ),
            &mut out,
        ),
    }
    Err(out)
}

/// The runner of an async work `f`. A panic while the future is polled is caught by the
/// worker, which polls it.
#[doc(hidden)]
pub fn start_async<A, R, F, Fut>(input: &mut &[u8], f: F) -> Result<Running, Vec<u8>>
where
    A: Wire,
    R: Wire,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = R> + 'static,
{
    let arg = decode_argument::<A>(input)?;
    let future = catch_unwind(AssertUnwindSafe(|| f(arg))).map_err(|panic| {
        let mut out = Vec::new();
        encode_message(status::PANIC, &take_panic_message(panic), &mut out);
        out
    })?;
    Ok(Box::pin(async move {
        let value = future.await;
        let mut out = vec![status::OK];
        value.encode(&mut out);
        out
    }))
}

/// Declares named works — plain and async functions a [`ProcessPool`](crate::ProcessPool)
/// runs in its worker processes — and their registry.
///
/// ```
/// aplex::works! {
///     /// The works of this program.
///     pub mod works {
///         /// Doubles a number.
///         pub fn double(x: u64) -> u64 { x * 2 }
///         /// Several arguments travel as one tuple.
///         pub fn add(pair: (i32, i32)) -> i32 { pair.0 + pair.1 }
///         /// Async works run concurrently inside one worker.
///         pub async fn nap(ms: u64) -> u64 {
///             aplex::time::sleep(std::time::Duration::from_millis(ms)).await;
///             ms
///         }
///     }
/// }
///
/// let typed: aplex::Work<(i32, i32), i32> = works::add;
/// assert_eq!(typed.name(), "add");
/// assert_eq!(works::WORKS.names(), vec!["double", "add", "nap"]);
/// ```
///
/// The module expands to `pub mod works { use super::*; pub const double: Work<u64, u64>;
/// …; pub static WORKS: Registry; }`: one [`Work`] constant per function (named like it) and the
/// registry `WORKS` to pass to [`serve_if_worker`](crate::serve_if_worker) and
/// [`ProcessPoolBuilder::build`](crate::ProcessPoolBuilder::build). The functions themselves
/// live in a private inner module and see the items of the enclosing scope.
///
/// Each function takes exactly one argument, a plain identifier whose type implements
/// [`Wire`](crate::wire::Wire) (a tuple for several values), and returns a `Wire` value (or
/// nothing). Doc comments on a function document its constant; other attributes stay on the
/// function. Works are identified on the wire by their order, so parent and workers must be
/// built from the same declaration (the handshake checks the names).
#[macro_export]
macro_rules! works {
    // Everything parsed: emit the bodies, the typed constants and the registry.
    (@munch [$(
        {[$($kw:tt)*] [$($doc:tt)*] [$($meta:tt)*] $name:ident $arg:ident [$aty:ty] [$($ret:ty)?] $body:block}
    )*] [] []) => {
        #[allow(non_snake_case, unused_imports, clippy::all)]
        mod __aplex_bodies {
            use super::*;
            $(
                $($meta)*
                pub(super) $($kw)* fn $name($arg: $aty) -> $crate::works!(@ret $($ret)?) $body
            )*
        }

        const __APLEX_NAMES: &[&str] = &[$(stringify!($name)),*];

        $(
            $crate::works!(@const [$($doc)*] $name [$aty] [$crate::works!(@ret $($ret)?)]);
        )*

        /// The registry of the works declared in this module.
        pub static WORKS: $crate::Registry = $crate::Registry::__new(&[
            $( $crate::works!(@entry [$($kw)*] $name) ),*
        ]);
    };

    // Doc comments go to the work's constant, other attributes to its function.
    (@munch [$($done:tt)*] [$($docs:tt)*] [$($attrs:tt)*] #[doc = $doc:expr] $($rest:tt)*) => {
        $crate::works!(@munch [$($done)*] [$($docs)* #[doc = $doc]] [$($attrs)*] $($rest)*);
    };
    (@munch [$($done:tt)*] [$($docs:tt)*] [$($attrs:tt)*] #[$meta:meta] $($rest:tt)*) => {
        $crate::works!(@munch [$($done)*] [$($docs)*] [$($attrs)* #[$meta]] $($rest)*);
    };

    // Normalize each function to `{[async?] [docs] [attrs] name arg [type] [return?] body}`.
    (@munch [$($done:tt)*] [$($docs:tt)*] [$($attrs:tt)*]
        $vis:vis async fn $name:ident ($arg:ident : $aty:ty $(,)?) $(-> $ret:ty)? $body:block
        $($rest:tt)*
    ) => {
        $crate::works!(@munch [$($done)*
            {[async] [$($docs)*] [$($attrs)*] $name $arg [$aty] [$($ret)?] $body}
        ] [] [] $($rest)*);
    };
    (@munch [$($done:tt)*] [$($docs:tt)*] [$($attrs:tt)*]
        $vis:vis fn $name:ident ($arg:ident : $aty:ty $(,)?) $(-> $ret:ty)? $body:block
        $($rest:tt)*
    ) => {
        $crate::works!(@munch [$($done)*
            {[] [$($docs)*] [$($attrs)*] $name $arg [$aty] [$($ret)?] $body}
        ] [] [] $($rest)*);
    };

    // A work's constant, with the function's doc comments or a line of its own.
    (@const [] $name:ident [$aty:ty] [$ret:ty]) => {
        $crate::works!(@const
            [#[doc = concat!("The work `", stringify!($name), "`.")]] $name [$aty] [$ret]);
    };
    (@const [$($doc:tt)+] $name:ident [$aty:ty] [$ret:ty]) => {
        $($doc)+
        #[allow(non_upper_case_globals)]
        pub const $name: $crate::Work<$aty, $ret> = $crate::Work::__new(
            $crate::__private::index_of(__APLEX_NAMES, stringify!($name)),
            stringify!($name),
            &WORKS,
        );
    };

    (@ret) => { () };
    (@ret $ret:ty) => { $ret };

    (@entry [async] $name:ident) => {
        $crate::__private::Entry::spawn(stringify!($name), __aplex_bodies::$name as fn(_) -> _, |input| {
            $crate::__private::start_async(input, __aplex_bodies::$name)
        })
    };
    (@entry [] $name:ident) => {
        $crate::__private::Entry::plain(stringify!($name), __aplex_bodies::$name as fn(_) -> _, |input, out, n, limit| {
            $crate::__private::run_plain(input, out, n, limit, __aplex_bodies::$name)
        })
    };

    (
        $(#[$mmeta:meta])*
        $mvis:vis mod $module:ident { $($items:tt)* }
    ) => {
        $(#[$mmeta])*
        $mvis mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::works!(@munch [] [] [] $($items)*);
        }
    };
}
