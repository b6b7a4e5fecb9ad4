//! `collect`: run an iterator of futures a few at a time inside the awaiting task, and gather
//! their outputs in input order. The ownership rules are [`resolve`](super::resolve)'s: it is
//! the same core, read to the end.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::resolve::Ordered;

/// The future of [`collect`]: resolves to every output, in input order.
#[must_use = "futures do nothing unless awaited"]
pub struct Collect<I: Iterator>
where
    I::Item: Future,
{
    core: Ordered<I>,
    outputs: Vec<<I::Item as Future>::Output>,
}

// The futures are boxed and the iterator is never pinned, so moving a `Collect` is fine.
impl<I: Iterator> Unpin for Collect<I> where I::Item: Future {}

impl<I> std::fmt::Debug for Collect<I>
where
    I: Iterator,
    I::Item: Future,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collect")
            .field("done", &self.outputs.len())
            .finish_non_exhaustive()
    }
}

/// Runs the futures of `futures` with at most `workers` in flight and returns their outputs in
/// input order (aioextensions' `collect`).
///
/// Every slot stays busy: a new future is pulled from the iterator as soon as one ends (not in
/// waves), and never before, so at most `workers` futures exist at once. Nothing is spawned: the
/// futures run inside the task that awaits `collect`, so they need be neither `Send` nor
/// `'static` and may borrow. A future whose output is an error does not stop the others.
///
/// # Panics
///
/// Panics if `workers` is 0 (at the call, like [`slice::chunks`]). A panic of one of the
/// futures propagates out of the `await`.
///
/// ```
/// use std::time::{Duration, Instant};
/// let names = vec!["a".to_string(), "bb".to_string(), "ccc".to_string()];
/// let start = Instant::now();
/// let lengths = aplex::block_on(aplex::collect(
///     names.iter().map(|name| async move {   // borrows `names`
///         aplex::time::sleep(Duration::from_millis(20)).await;
///         name.len()
///     }),
///     2,
/// ));
/// assert_eq!(lengths, vec![1, 2, 3]);
/// assert!(start.elapsed() >= Duration::from_millis(40)); // 2 at a time: two rounds of 20 ms
/// ```
pub fn collect<I>(futures: I, workers: usize) -> Collect<I::IntoIter>
where
    I: IntoIterator,
    I::Item: Future,
{
    Collect {
        core: Ordered::new(futures.into_iter(), workers, "collect"),
        outputs: Vec::new(),
    }
}

impl<I> Future for Collect<I>
where
    I: Iterator,
    I::Item: Future,
{
    type Output = Vec<<I::Item as Future>::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match this.core.poll_next(cx) {
                Poll::Ready(Some(output)) => this.outputs.push(output),
                Poll::Ready(None) => return Poll::Ready(std::mem::take(&mut this.outputs)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
