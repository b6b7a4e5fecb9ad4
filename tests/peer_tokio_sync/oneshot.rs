//! tokio `tests/sync_oneshot.rs`.
//!
//! Not ported: `close_try_recv_poll` (tokio panics when a closed receiver is polled after
//! `try_recv` failed; aplex documents that it then resolves `RecvError`, tested below as
//! `poll_after_close_and_try_recv_resolves_closed`). tokio's `receiver_is_closed_*` and
//! `receiver_is_empty_*` are ported in `tests/sync_parity.rs`.

use std::sync::mpsc as std_mpsc;
use std::task::Poll;

use aplex::sync::oneshot::{self, RecvError, TryRecvError};

use crate::peer_common::{ready, spawn, TestTask};

fn assert_send<T: Send>() {}

#[test]
fn halves_are_send() {
    // tokio: `impl AssertSend for oneshot::Sender<i32>` / `Receiver<i32>`
    assert_send::<oneshot::Sender<i32>>();
    assert_send::<oneshot::Receiver<i32>>();
}

#[test]
fn send_recv() {
    // tokio: send_recv
    let (tx, rx) = oneshot::channel();
    let mut rx = spawn(rx);
    assert!(rx.poll().is_pending());
    assert_eq!(tx.send(1), Ok(()));
    assert!(rx.is_woken());
    assert_eq!(ready(rx.poll()), Ok(1));
}

#[test]
fn async_send_recv() {
    // tokio: async_send_recv
    let (tx, rx) = oneshot::channel();
    assert_eq!(tx.send(1), Ok(()));
    assert_eq!(aplex::block_on(rx), Ok(1));
}

#[test]
fn close_tx() {
    // tokio: close_tx
    let (tx, rx) = oneshot::channel::<i32>();
    let mut rx = spawn(rx);
    assert!(rx.poll().is_pending());
    drop(tx);
    assert!(rx.is_woken());
    assert_eq!(ready(rx.poll()), Err(RecvError));
}

#[test]
fn close_rx() {
    // tokio: close_rx
    let (tx, _) = oneshot::channel();
    assert_eq!(tx.send(1), Err(1));

    let (mut tx, rx) = oneshot::channel();
    let task = TestTask::new();
    {
        let mut closed = tx.closed();
        assert!(task.poll(&mut closed).is_pending());
        drop(rx);
        assert!(task.is_woken());
        assert!(task.poll(&mut closed).is_ready());
    }
    assert!(tx.is_closed());
    assert_eq!(tx.send(1), Err(1));
}

#[test]
fn async_rx_closed() {
    // tokio: async_rx_closed (the receiver is dropped by another thread)
    let (mut tx, rx) = oneshot::channel::<()>();
    let dropper = std::thread::spawn(move || drop(rx));
    aplex::block_on(tx.closed());
    dropper.join().unwrap();
}

#[test]
fn explicit_close_poll() {
    // tokio: explicit_close_poll
    // First, with the value sent.
    let (tx, rx) = oneshot::channel();
    let mut rx = spawn(rx);
    assert_eq!(tx.send(1), Ok(()));
    rx.future.close();
    assert_eq!(ready(rx.poll()), Ok(1));

    // Second, without the value sent.
    let (mut tx, rx) = oneshot::channel::<i32>();
    let mut rx = spawn(rx);
    let task = TestTask::new();
    {
        let mut closed = tx.closed();
        assert!(task.poll(&mut closed).is_pending());
        rx.future.close();
        assert!(task.is_woken());
        assert!(task.poll(&mut closed).is_ready());
    }
    assert!(tx.is_closed());
    assert_eq!(tx.send(1), Err(1));
    assert_eq!(ready(rx.poll()), Err(RecvError));

    // Again, never sending.
    let (mut tx, rx) = oneshot::channel::<i32>();
    let mut rx = spawn(rx);
    let task = TestTask::new();
    let mut closed = tx.closed();
    assert!(task.poll(&mut closed).is_pending());
    rx.future.close();
    assert!(task.is_woken());
    assert!(task.poll(&mut closed).is_ready());
    drop(closed);
    assert!(tx.is_closed());
    assert_eq!(ready(rx.poll()), Err(RecvError));
}

#[test]
fn explicit_close_try_recv() {
    // tokio: explicit_close_try_recv
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(tx.send(1), Ok(()));
    rx.close();
    assert_eq!(rx.try_recv(), Ok(1));

    let (mut tx, mut rx) = oneshot::channel::<i32>();
    let task = TestTask::new();
    {
        let mut closed = tx.closed();
        assert!(task.poll(&mut closed).is_pending());
        rx.close();
        assert!(task.is_woken());
        assert!(task.poll(&mut closed).is_ready());
    }
    assert!(tx.is_closed());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn poll_after_close_and_try_recv_resolves_closed() {
    // tokio: close_try_recv_poll (tokio panics there; aplex resolves `RecvError`, as its
    // `Receiver::close` documents)
    let (_tx, rx) = oneshot::channel::<i32>();
    let mut rx = spawn(rx);
    rx.future.close();
    assert_eq!(rx.future.try_recv(), Err(TryRecvError::Closed));
    assert_eq!(ready(rx.poll()), Err(RecvError));
}

#[test]
fn close_after_recv() {
    // tokio: close_after_recv
    let (tx, mut rx) = oneshot::channel::<i32>();
    tx.send(17).unwrap();
    assert_eq!(rx.try_recv(), Ok(17));
    rx.close();
}

#[test]
fn try_recv_after_completion() {
    // tokio: try_recv_after_completion
    let (tx, mut rx) = oneshot::channel::<i32>();
    tx.send(17).unwrap();
    assert_eq!(rx.try_recv(), Ok(17));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    rx.close();
}

#[test]
fn try_recv_after_completion_await() {
    // tokio: try_recv_after_completion_await
    let (tx, rx) = oneshot::channel::<i32>();
    let mut rx = spawn(rx);
    tx.send(17).unwrap();
    assert_eq!(rx.poll(), Poll::Ready(Ok(17)));
    assert_eq!(rx.future.try_recv(), Err(TryRecvError::Closed));
    rx.future.close();
}

#[test]
fn drops_tasks() {
    // tokio: drops_tasks: once both halves are gone, no waker of either task is kept
    let (mut tx, mut rx) = oneshot::channel::<i32>();
    let tx_task = TestTask::new();
    let rx_task = TestTask::new();
    let mut closed = tx.closed();
    assert!(tx_task.poll(&mut closed).is_pending());
    assert!(rx_task.poll(&mut rx).is_pending());
    assert_eq!(tx_task.stored_wakers(), 1);
    assert_eq!(rx_task.stored_wakers(), 1);
    drop(closed);
    drop(tx);
    drop(rx);
    assert_eq!(tx_task.stored_wakers(), 0);
    assert_eq!(rx_task.stored_wakers(), 0);
}

#[test]
fn receiver_changes_task() {
    // tokio: receiver_changes_task: only the last task to poll is kept and woken
    let (tx, mut rx) = oneshot::channel();
    let task1 = TestTask::new();
    let task2 = TestTask::new();

    assert!(task1.poll(&mut rx).is_pending());
    assert_eq!(task1.stored_wakers(), 1);
    assert_eq!(task2.stored_wakers(), 0);

    assert!(task2.poll(&mut rx).is_pending());
    assert_eq!(task1.stored_wakers(), 0);
    assert_eq!(task2.stored_wakers(), 1);

    assert_eq!(tx.send(1), Ok(()));
    assert!(!task1.is_woken());
    assert!(task2.is_woken());
    assert_eq!(task2.poll(&mut rx), Poll::Ready(Ok(1)));
}

#[test]
fn sender_changes_task() {
    // tokio: sender_changes_task (one `closed()` future, polled from two tasks in turn)
    let (mut tx, rx) = oneshot::channel::<i32>();
    let task1 = TestTask::new();
    let task2 = TestTask::new();
    let mut closed = tx.closed();

    assert!(task1.poll(&mut closed).is_pending());
    assert_eq!(task1.stored_wakers(), 1);
    assert_eq!(task2.stored_wakers(), 0);

    assert!(task2.poll(&mut closed).is_pending());
    assert_eq!(task1.stored_wakers(), 0);
    assert_eq!(task2.stored_wakers(), 1);

    drop(rx);
    assert!(!task1.is_woken());
    assert!(task2.is_woken());
    assert!(task2.poll(&mut closed).is_ready());
}

#[test]
fn send_from_another_thread_wakes_a_blocked_receiver() {
    // tokio: async_send_recv, with the value sent from a thread while the receiver waits
    let (tx, rx) = oneshot::channel();
    let (started_tx, started_rx) = std_mpsc::channel();
    let sender = std::thread::spawn(move || {
        started_rx.recv().unwrap();
        tx.send("late").unwrap();
    });
    let value = aplex::block_on(async move {
        started_tx.send(()).unwrap();
        rx.await
    });
    assert_eq!(value, Ok("late"));
    sender.join().unwrap();
}
