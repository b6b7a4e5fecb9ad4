//! `in_process`: run a registered work in a worker process of the global process pool
//! (aioextensions' `in_process`).

use crate::wire::Wire;
use crate::{Handle, Work};

/// Runs `work` with `arg` in a worker process of the global process pool and returns its
/// [`Handle`] (aioextensions' `in_process`).
///
/// The pool starts on the first call, with one worker per core (size it beforehand with
/// [`global::configure`](crate::global::configure)), from the registry `work` was declared in
/// by [`works!`](crate::works). The program must call
/// [`serve_if_worker`](crate::serve_if_worker) first in `main`, as for any
/// [`ProcessPool`](crate::ProcessPool). One registry per program serves `in_process`: a work of
/// another registry resolves `Err(Error::Wire(..))`.
///
/// The handle resolves `Err` with the pool's build error if the workers cannot start, and
/// `Err(Error::ShutDown)` after [`global::shutdown`](crate::global::shutdown), which also
/// reaps the worker processes.
///
/// ```no_run
/// aplex::works! {
///     pub mod works {
///         pub fn square(x: u64) -> u64 { x * x }
///     }
/// }
///
/// fn main() {
///     aplex::serve_if_worker(&works::WORKS);
///     assert_eq!(aplex::in_process(&works::square, 12).wait(), Ok(144));
///     aplex::global::shutdown();
/// }
/// ```
pub fn in_process<A, R>(work: &Work<A, R>, arg: A) -> Handle<R>
where
    A: Wire,
    R: Wire + Send + 'static,
{
    match super::global::process_pool(work.registry()) {
        Ok(pool) => pool.call(work, arg),
        Err(e) => Handle::failed(e),
    }
}
