//! [`Permit`] and [`ReserveFuture`]: a slot reserved ahead of the value (see the ownership
//! rules of [`mpsc`](super) for how slots are handed over).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::super::waiters::{lock, wake_all, Registration};
use super::{SendError, Sender};

/// A reserved slot in a channel, from [`Sender::reserve`] or [`Sender::try_reserve`]:
/// [`send`](Permit::send) fills it without waiting. Dropped unused, it gives the slot back.
///
/// A permit outlives a [`Receiver::close`](super::Receiver::close), as in tokio: its value is
/// still delivered, and the receiver reports the end only after every permit has sent or been
/// dropped, so closing and then receiving until `None` loses nothing.
///
/// # Examples
///
/// ```
/// let (tx, mut rx) = aplex::sync::mpsc::channel(1);
/// let permit = aplex::block_on(tx.reserve()).unwrap();
/// drop(permit); // the slot is free again
/// tx.try_send('a').unwrap();
/// assert_eq!(rx.try_recv(), Ok('a'));
/// ```
#[must_use = "a dropped Permit gives its slot back unused"]
pub struct Permit<'a, T> {
    tx: &'a Sender<T>,
}

impl<'a, T> Permit<'a, T> {
    /// A permit for a slot already counted in `reserved`.
    pub(super) fn new(tx: &'a Sender<T>) -> Permit<'a, T> {
        Permit { tx }
    }

    /// Sends `value` into the reserved slot. Never waits.
    ///
    /// It succeeds even if the receiver has called [`close`](super::Receiver::close) since the
    /// slot was reserved: the receiver still gets the value (tokio's rule).
    ///
    /// # Errors
    ///
    /// Gives the value back in [`SendError`] if the receiver was dropped since the slot was
    /// reserved. tokio's `Permit::send` returns nothing and drops the value then; `let _ =
    /// permit.send(v);` does the same here.
    ///
    /// # Examples
    ///
    /// ```
    /// use aplex::sync::mpsc::{self, SendError};
    ///
    /// let (tx, mut rx) = mpsc::channel(2);
    /// let permit = aplex::block_on(tx.reserve()).unwrap();
    /// rx.close();
    /// assert_eq!(permit.send(4), Ok(())); // reserved before the close: delivered
    /// assert_eq!(rx.try_recv(), Ok(4));
    ///
    /// let (tx, rx) = mpsc::channel(2);
    /// let permit = aplex::block_on(tx.reserve()).unwrap();
    /// drop(rx);
    /// assert_eq!(permit.send(5), Err(SendError(5))); // nobody to deliver to
    /// ```
    pub fn send(self, value: T) -> Result<(), SendError<T>> {
        let mut chan = lock(&self.tx.chan);
        chan.reserved -= 1;
        // The slot is used (or nobody receives): the drop below has nothing to give back.
        std::mem::forget(self);
        if chan.receiver_gone {
            drop(chan);
            return Err(SendError(value));
        }
        chan.queue.push_back(value);
        let waker = chan.recv_waker.take();
        drop(chan);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl<T> Drop for Permit<'_, T> {
    fn drop(&mut self) {
        let wakers = lock(&self.tx.chan).unreserve();
        wake_all(wakers.into_iter().flatten());
    }
}

impl<T> fmt::Debug for Permit<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

/// The future of [`Sender::reserve`].
///
/// # Examples
///
/// ```
/// use aplex::sync::mpsc::{self, SendError};
///
/// let (tx, rx) = mpsc::channel::<u8>(1);
/// drop(rx);
/// let reserve: mpsc::ReserveFuture<'_, u8> = tx.reserve();
/// assert!(matches!(aplex::block_on(reserve), Err(SendError(()))));
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct ReserveFuture<'a, T> {
    tx: &'a Sender<T>,
    registration: Registration,
}

impl<'a, T> ReserveFuture<'a, T> {
    pub(super) fn new(tx: &'a Sender<T>) -> ReserveFuture<'a, T> {
        ReserveFuture {
            tx,
            registration: Registration::Idle,
        }
    }
}

impl<'a, T> Future for ReserveFuture<'a, T> {
    type Output = Result<Permit<'a, T>, SendError<()>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut chan = lock(&this.tx.chan);
        let granted = match this.registration {
            Registration::Idle => {
                if chan.closed {
                    Err(SendError(()))
                } else if chan.is_full() {
                    let id = chan.blocked.push(cx.waker().clone(), None);
                    this.registration = Registration::Waiting(id);
                    return Poll::Pending;
                } else {
                    chan.reserved += 1;
                    Ok(())
                }
            }
            Registration::Waiting(id) => {
                let closed = chan.closed;
                match chan.blocked.get_mut(id) {
                    // Served: a freed slot was reserved for us.
                    None => Ok(()),
                    Some(_) if closed => {
                        let entry = chan.blocked.remove(id);
                        drop(chan);
                        drop(entry);
                        this.registration = Registration::Done;
                        return Poll::Ready(Err(SendError(())));
                    }
                    Some(entry) => {
                        let stale = entry.refresh(cx.waker());
                        drop(chan);
                        drop(stale);
                        return Poll::Pending;
                    }
                }
            }
            Registration::Done => panic!("ReserveFuture polled after completion"),
        };
        drop(chan);
        this.registration = Registration::Done;
        Poll::Ready(granted.map(|()| Permit { tx: this.tx }))
    }
}

impl<T> Drop for ReserveFuture<'_, T> {
    fn drop(&mut self) {
        if let Registration::Waiting(id) = self.registration {
            let mut chan = lock(&self.tx.chan);
            let wakers = match chan.blocked.remove(id) {
                Some(_) => [None, None],
                // Served but never polled: the slot reserved for us goes to the next in line.
                None => chan.unreserve(),
            };
            drop(chan);
            wake_all(wakers.into_iter().flatten());
        }
    }
}

impl<T> fmt::Debug for ReserveFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReserveFuture")
            .field("registration", &self.registration)
            .finish_non_exhaustive()
    }
}
