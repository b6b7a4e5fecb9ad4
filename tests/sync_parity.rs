//! The `sync` API a tokio user expects beside what `peer_tokio_sync` ports: oneshot's
//! `Receiver::is_closed` / `is_empty` / `is_terminated` (tokio's `receiver_is_closed_*` and
//! `receiver_is_empty_*` tests among them), a sender's view of a receiver that closed and then
//! saw the close, mpsc's `Sender::try_reserve` (tokio's `try_reserve_fails`), and a `Permit`
//! that outlives `Receiver::close` (delivered) or the receiver (its value comes back).

mod peer_common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use aplex::sync::mpsc::{self, SendError, TryRecvError, TrySendError};
use aplex::sync::oneshot;

use peer_common::{ready, spawn};

// -- oneshot ----------------------------------------------------------------------------------

#[test]
fn oneshot_receiver_is_closed_once_sent() {
    // tokio: receiver_is_closed_send
    let (tx, rx) = oneshot::channel::<i32>();
    assert!(!rx.is_closed());
    tx.send(17).unwrap();
    assert!(rx.is_closed());
}

#[test]
fn oneshot_receiver_is_closed_once_the_sender_is_dropped() {
    // tokio: receiver_is_closed_drop
    let (tx, rx) = oneshot::channel::<i32>();
    assert!(!rx.is_closed());
    drop(tx);
    assert!(rx.is_closed());
}

#[test]
fn oneshot_receiver_is_closed_after_its_own_close() {
    // tokio: receiver_is_closed_rx_close
    let (_tx, mut rx) = oneshot::channel::<i32>();
    assert!(!rx.is_closed());
    rx.close();
    assert!(rx.is_closed());
}

#[test]
fn oneshot_receiver_is_empty_until_sent_and_again_once_received() {
    // tokio: receiver_is_empty_send
    let (tx, mut rx) = oneshot::channel::<i32>();
    assert!(rx.is_empty());
    tx.send(17).unwrap();
    assert!(!rx.is_empty());
    assert!(!rx.is_terminated(), "sent but not received");
    let mut recv = spawn(&mut rx);
    assert_eq!(ready(recv.poll()), Ok(17));
    drop(recv);
    assert!(rx.is_empty());
    assert!(rx.is_terminated());
}

#[test]
fn oneshot_receiver_is_empty_when_the_sender_is_dropped() {
    // tokio: receiver_is_empty_drop
    let (tx, mut rx) = oneshot::channel::<i32>();
    assert!(rx.is_empty());
    drop(tx);
    assert!(rx.is_empty());
    assert!(!rx.is_terminated(), "the end is known, not yet received");
    let mut recv = spawn(&mut rx);
    assert!(ready(recv.poll()).is_err());
    drop(recv);
    assert!(rx.is_empty());
    assert!(rx.is_terminated());
}

#[test]
fn oneshot_receiver_is_empty_after_its_own_close() {
    // tokio: receiver_is_empty_rx_close
    let (_tx, mut rx) = oneshot::channel::<i32>();
    assert!(rx.is_empty());
    rx.close();
    assert!(rx.is_empty());
}

#[test]
fn oneshot_a_value_sent_before_close_keeps_the_receiver_non_empty() {
    let (tx, mut rx) = oneshot::channel();
    tx.send('v').unwrap();
    rx.close();
    assert!(rx.is_closed() && !rx.is_empty());
    assert_eq!(rx.try_recv(), Ok('v'));
    assert!(rx.is_empty() && rx.is_terminated());
}

#[test]
fn oneshot_pending_receive_is_not_terminated() {
    let (tx, mut rx) = oneshot::channel::<u8>();
    let mut recv = spawn(&mut rx);
    assert!(recv.poll().is_pending());
    drop(recv);
    assert!(!rx.is_terminated() && !rx.is_closed() && rx.is_empty());
    drop(tx);
}

#[test]
fn oneshot_sender_still_sees_the_close_after_the_receiver_saw_it() {
    // close, then try_recv: the receiver has taken its outcome, and the sender must still
    // read the channel as closed (and a pending `closed()` must be ready).
    let (mut tx, mut rx) = oneshot::channel::<u8>();
    rx.close();
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
    assert!(tx.is_closed());
    let mut closed = spawn(tx.closed());
    assert_eq!(ready(closed.poll()), ());
    drop(closed);
    assert_eq!(tx.send(1), Err(1));
}

// -- mpsc try_reserve -------------------------------------------------------------------------

#[test]
fn mpsc_try_reserve_tells_full_from_closed() {
    // tokio: try_reserve_fails
    let (tx, mut rx) = mpsc::channel(1);
    let permit = tx.try_reserve().unwrap();
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
    assert_eq!(tx.try_send("x"), Err(TrySendError::Full("x")));
    drop(permit);
    let permit = tx.try_reserve().unwrap(); // the dropped permit gave its slot back
    permit.send("y").unwrap();
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
    assert_eq!(rx.try_recv(), Ok("y"));
    assert!(tx.try_reserve().is_ok());
    drop(rx);
    let closed = tx.try_reserve().unwrap_err();
    assert!(closed.is_closed() && !closed.is_full());
}

#[test]
fn mpsc_try_reserve_never_jumps_a_waiting_sender() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let mut blocked = spawn(tx.send(2));
    assert!(blocked.poll().is_pending());
    assert_eq!(rx.try_recv(), Ok(1)); // the freed slot goes to the waiting send
    assert!(blocked.is_woken());
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Full(()))));
    assert_eq!(ready(blocked.poll()), Ok(()));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn mpsc_try_reserve_on_an_unbounded_channel_succeeds_until_closed() {
    let (tx, mut rx) = mpsc::unbounded();
    let permits: Vec<_> = (0..100).map(|_| tx.try_reserve().unwrap()).collect();
    for (i, permit) in permits.into_iter().enumerate() {
        permit.send(i).unwrap();
    }
    assert_eq!(rx.len(), 100);
    rx.close();
    assert!(matches!(tx.try_reserve(), Err(TrySendError::Closed(()))));
}

// -- mpsc permits across a close or the receiver's drop --------------------------------------

#[test]
fn mpsc_permit_reserved_then_close_then_send_is_received() {
    let (tx, mut rx) = mpsc::channel(2);
    let permit = tx.try_reserve().unwrap();
    rx.close();
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(0), Err(TrySendError::Closed(0)));
    let mut recv = spawn(rx.recv());
    assert!(
        recv.poll().is_pending(),
        "the end waits for the outstanding permit"
    );
    assert_eq!(permit.send(7), Ok(()));
    assert!(recv.is_woken());
    assert_eq!(ready(recv.poll()), Some(7));
    drop(recv);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn mpsc_permit_reserved_then_close_then_dropped_ends_the_stream() {
    let (tx, mut rx) = mpsc::channel::<u8>(2);
    let first = tx.try_reserve().unwrap();
    let second = tx.try_reserve().unwrap();
    rx.close();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let mut recv = spawn(rx.recv());
    assert!(recv.poll().is_pending());
    drop(first);
    assert!(!recv.is_woken(), "one permit is still out");
    assert!(recv.poll().is_pending());
    drop(second);
    assert!(recv.is_woken());
    assert_eq!(ready(recv.poll()), None);
}

#[test]
fn mpsc_permit_reserved_then_receiver_dropped_gives_the_value_back() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::channel(2);
    let delivered = tx.try_reserve().unwrap();
    let late = tx.try_reserve().unwrap();
    rx.close();
    delivered.send(Counted(Arc::clone(&drops))).unwrap(); // queued for the closed receiver
    drop(rx); // drops what was queued
    assert_eq!(drops.load(SeqCst), 1);
    let back = late.send(Counted(Arc::clone(&drops)));
    assert!(matches!(back, Err(SendError(_))), "nobody to deliver to");
    assert_eq!(
        drops.load(SeqCst),
        1,
        "the value came back, not dropped inside"
    );
    drop(back);
    assert_eq!(drops.load(SeqCst), 2);
}

#[test]
fn mpsc_reserve_waiting_at_close_fails_while_the_earlier_permit_delivers() {
    let (tx, mut rx) = mpsc::channel(1);
    let permit = tx.try_reserve().unwrap();
    let mut waiting = spawn(tx.reserve());
    assert!(waiting.poll().is_pending());
    rx.close();
    assert!(waiting.is_woken());
    assert!(ready(waiting.poll()).is_err());
    drop(waiting);
    permit.send(5).unwrap();
    assert_eq!(aplex::block_on(rx.recv()), Some(5));
    assert_eq!(aplex::block_on(rx.recv()), None);
}
