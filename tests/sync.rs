//! Behaviour of `aplex::sync`: channels, semaphore and event, driven by `block_on`, by plain
//! threads, by hand-polling, and by a minimal foreign executor written below.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use aplex::block_on;
use aplex::sync::{mpsc, oneshot, Event, Semaphore};

mod expected_panics;
use expected_panics::expect_panics;

/// How long to wait before concluding that a blocked call is really blocked.
const SETTLE: Duration = Duration::from_millis(50);
/// The longest any background job may take before a test fails instead of hanging: only a
/// hang or a lost wake-up reaches it, however busy the machine.
const BOUND: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Helpers

/// A closure running on its own thread whose result is awaited with a time bound.
struct Job<T> {
    result: std::sync::mpsc::Receiver<T>,
}

fn spawn_job<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Job<T> {
    let (tx, result) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    Job { result }
}

impl<T> Job<T> {
    /// The job's result; fails the test if it does not come within `BOUND`.
    fn join(self) -> T {
        self.result
            .recv_timeout(BOUND)
            .expect("job did not finish in time")
    }

    /// Asserts that the job is still blocked after a short pause.
    fn assert_blocked(&self) {
        thread::sleep(SETTLE);
        assert!(
            self.result.try_recv().is_err(),
            "job finished but should be blocked"
        );
    }
}

/// How many times a stress loop runs: `n`, or 10 under Miri (the checker for undefined
/// behaviour), which interprets every step about 100× slower.
const fn stress(n: usize) -> usize {
    if cfg!(miri) {
        10
    } else {
        n
    }
}

/// A waker that counts its wakes.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, Waker) {
    let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
    (Arc::clone(&counter), Waker::from(counter))
}

impl CountingWaker {
    fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn poll_once<F: Future + Unpin>(f: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(waker))
}

/// A value that counts how many times it was dropped.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A minimal foreign executor: a Condvar-based waker and a loop, sharing no code with aplex.
mod foreign {
    use super::*;

    struct Signal {
        woken: Mutex<bool>,
        cond: Condvar,
    }

    impl Wake for Signal {
        fn wake(self: Arc<Self>) {
            *self.woken.lock().unwrap() = true;
            self.cond.notify_one();
        }
    }

    /// Drives `f` to completion on this thread.
    pub fn run<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let signal = Arc::new(Signal {
            woken: Mutex::new(false),
            cond: Condvar::new(),
        });
        let waker = Waker::from(Arc::clone(&signal));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            let mut woken = signal.woken.lock().unwrap();
            while !*woken {
                woken = signal.cond.wait(woken).unwrap();
            }
            *woken = false;
        }
    }

    /// Polls two futures concurrently on one thread until both complete.
    pub async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
        let mut a = std::pin::pin!(a);
        let mut b = std::pin::pin!(b);
        let (mut ra, mut rb) = (None, None);
        std::future::poll_fn(move |cx| {
            if ra.is_none() {
                if let Poll::Ready(v) = a.as_mut().poll(cx) {
                    ra = Some(v);
                }
            }
            if rb.is_none() {
                if let Poll::Ready(v) = b.as_mut().poll(cx) {
                    rb = Some(v);
                }
            }
            if ra.is_some() && rb.is_some() {
                Poll::Ready((ra.take().unwrap(), rb.take().unwrap()))
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// mpsc

#[test]
fn mpsc_full_channel_blocks_sender_until_recv() {
    let (tx, mut rx) = mpsc::channel(2);
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!(tx.try_send(3), Err(mpsc::TrySendError::Full(3)));

    let blocked = spawn_job(move || tx.send_blocking(3));
    blocked.assert_blocked();
    assert_eq!(rx.len(), 2);

    assert_eq!(rx.recv_blocking(), Some(1));
    assert_eq!(blocked.join(), Ok(()));
    assert_eq!(rx.recv_blocking(), Some(2));
    assert_eq!(rx.recv_blocking(), Some(3));
    assert_eq!(rx.recv_blocking(), None);
}

#[test]
fn mpsc_four_senders_ten_thousand_each_arrive_in_order_per_sender() {
    const SENDERS: usize = 4;
    const PER_SENDER: usize = stress(10_000);
    let (tx, rx) = mpsc::channel(16);
    for id in 0..SENDERS {
        let tx = tx.clone();
        thread::spawn(move || {
            for i in 0..PER_SENDER {
                // Half the senders use the async side, half the blocking side.
                if id % 2 == 0 {
                    tx.send_blocking((id, i)).unwrap();
                } else {
                    block_on(tx.send((id, i))).unwrap();
                }
            }
        });
    }
    drop(tx);
    let consumer = spawn_job(move || {
        let mut next = [0; SENDERS];
        for (id, i) in rx {
            assert_eq!(i, next[id], "sender {id} out of order");
            next[id] += 1;
        }
        next
    });
    assert_eq!(consumer.join(), [PER_SENDER; SENDERS]);
}

#[test]
fn mpsc_receiver_dropped_then_sends_return_the_value() {
    let (tx, rx) = mpsc::channel(4);
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(1), Err(mpsc::TrySendError::Closed(1)));
    assert_eq!(tx.send_blocking(2), Err(mpsc::SendError(2)));
    assert_eq!(block_on(tx.send(3)), Err(mpsc::SendError(3)));
}

#[test]
fn mpsc_receiver_dropped_wakes_blocked_sender_with_its_value() {
    let (tx, rx) = mpsc::channel(1);
    tx.try_send("first").unwrap();
    let blocked = spawn_job(move || tx.send_blocking("second"));
    blocked.assert_blocked();
    drop(rx);
    assert_eq!(blocked.join(), Err(mpsc::SendError("second")));
}

#[test]
fn mpsc_last_sender_dropped_then_recv_drains_buffer_then_none() {
    let (tx, mut rx) = mpsc::channel(4);
    let tx2 = tx.clone();
    tx.try_send(1).unwrap();
    tx2.try_send(2).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    drop(tx2);
    assert_eq!(block_on(rx.recv()), Some(2));
    assert_eq!(block_on(rx.recv()), None);
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Closed));
}

#[test]
fn mpsc_last_sender_dropped_wakes_blocked_receiver() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let tx2 = tx.clone();
    let blocked = spawn_job(move || rx.recv_blocking());
    blocked.assert_blocked();
    drop(tx);
    blocked.assert_blocked(); // one sender is still alive
    drop(tx2);
    assert_eq!(blocked.join(), None);
}

#[test]
fn mpsc_receiver_iterator_ends_when_senders_drop() {
    let (tx, rx) = mpsc::channel(3);
    let producer = spawn_job(move || {
        for i in 0..100 {
            tx.send_blocking(i).unwrap();
        }
    });
    let got: Vec<i32> = rx.collect();
    producer.join();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn mpsc_unbounded_accepts_everything_without_waiting() {
    let (tx, rx) = mpsc::unbounded();
    assert_eq!(rx.capacity(), None);
    const N: usize = stress(10_000);
    for i in 0..N {
        tx.try_send(i).unwrap();
    }
    block_on(tx.send(N)).unwrap();
    tx.send_blocking(N + 1).unwrap();
    assert_eq!(rx.len(), N + 2);
    drop(tx);
    assert!((0..N + 2).eq(rx));
}

#[test]
fn mpsc_pending_send_dropped_before_room_is_not_delivered() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (_, waker) = counting_waker();
    let mut send = tx.send(2);
    assert!(poll_once(&mut send, &waker).is_pending());
    drop(send);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
    tx.try_send(3).unwrap();
    assert_eq!(rx.try_recv(), Ok(3));
}

#[test]
fn mpsc_pending_send_moved_in_by_recv_then_dropped_is_delivered_once() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (counter, waker) = counting_waker();
    let mut send = tx.send(2);
    assert!(poll_once(&mut send, &waker).is_pending());
    assert_eq!(rx.try_recv(), Ok(1)); // frees the slot: value 2 moves in, sender woken
    assert_eq!(counter.wakes(), 1);
    drop(send); // never polled to completion, yet the value was delivered
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
}

#[test]
fn mpsc_blocked_senders_resume_in_fifo_order() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(0).unwrap();
    let (counter, waker) = counting_waker();
    let mut sends: Vec<_> = (1..=3).map(|i| tx.send(i)).collect();
    for send in &mut sends {
        assert!(poll_once(send, &waker).is_pending());
    }
    // A late try_send must not jump the queue.
    assert_eq!(tx.try_send(99), Err(mpsc::TrySendError::Full(99)));
    for expected in 0..=3 {
        assert_eq!(rx.try_recv(), Ok(expected));
    }
    assert_eq!(counter.wakes(), 3);
    for send in &mut sends {
        assert_eq!(poll_once(send, &waker), Poll::Ready(Ok(())));
    }
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn mpsc_zero_capacity_panics() {
    expect_panics(&["mpsc::channel: capacity must be at least 1"]);
    let _ = mpsc::channel::<u8>(0);
}

#[test]
fn mpsc_pending_recv_dropped_then_send_loses_nothing() {
    let (tx, mut rx) = mpsc::channel(1);
    let (counter, waker) = counting_waker();
    let mut recv = rx.recv();
    assert!(poll_once(&mut recv, &waker).is_pending());
    drop(recv);
    tx.try_send(7).unwrap();
    assert_eq!(
        counter.wakes(),
        0,
        "a dropped recv future must not be woken"
    );
    assert_eq!(rx.try_recv(), Ok(7));
}

#[test]
fn mpsc_close_then_blocked_sender_gets_value_back_and_buffer_drains() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let blocked = spawn_job({
        let tx = tx.clone();
        move || tx.send_blocking(2)
    });
    blocked.assert_blocked();
    rx.close();
    assert_eq!(blocked.join(), Err(mpsc::SendError(2)));
    assert_eq!(tx.try_send(3), Err(mpsc::TrySendError::Closed(3)));
    assert_eq!(rx.recv_blocking(), Some(1));
    assert_eq!(rx.recv_blocking(), None); // a sender is alive, but the channel is closed
}

#[test]
fn mpsc_recv_repolled_with_new_waker_wakes_only_new_waker() {
    let (tx, mut rx) = mpsc::channel(1);
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    let mut recv = rx.recv();
    assert!(poll_once(&mut recv, &first_waker).is_pending());
    assert!(poll_once(&mut recv, &second_waker).is_pending());
    tx.try_send(5).unwrap();
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert_eq!(poll_once(&mut recv, &second_waker), Poll::Ready(Some(5)));
}

#[test]
fn mpsc_send_repolled_with_new_waker_wakes_only_new_waker() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    let mut send = tx.send(2);
    assert!(poll_once(&mut send, &first_waker).is_pending());
    assert!(poll_once(&mut send, &second_waker).is_pending());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert_eq!(poll_once(&mut send, &second_waker), Poll::Ready(Ok(())));
}

#[test]
fn mpsc_receiver_dropped_drops_buffered_values() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded();
    for _ in 0..3 {
        tx.try_send(DropCounter(Arc::clone(&drops))).unwrap();
    }
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
}

#[test]
fn mpsc_recv_timeout_times_out_then_receives() {
    let (tx, mut rx) = mpsc::channel(1);
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(10)),
        Err(mpsc::RecvTimeoutError::Timeout)
    );
    let _sender = spawn_job(move || {
        thread::sleep(Duration::from_millis(10));
        tx.send_blocking(8).unwrap();
    });
    assert_eq!(rx.recv_timeout(BOUND), Ok(8));
    assert_eq!(rx.recv_timeout(BOUND), Err(mpsc::RecvTimeoutError::Closed));
}

#[test]
fn mpsc_poll_next_pending_then_woken_by_send_then_none_after_last_sender() {
    let (tx, mut rx) = mpsc::channel(1);
    let (counter, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(rx.poll_next(&mut cx).is_pending());
    tx.try_send(3).unwrap();
    assert_eq!(counter.wakes(), 1);
    assert_eq!(rx.poll_next(&mut cx), Poll::Ready(Some(3)));
    assert!(rx.poll_recv(&mut cx).is_pending());
    drop(tx);
    assert_eq!(counter.wakes(), 2);
    assert_eq!(rx.poll_next(&mut cx), Poll::Ready(None));
}

#[test]
fn mpsc_poll_next_frees_a_slot_for_a_blocked_sender() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let blocked = spawn_job({
        let tx = tx.clone();
        move || tx.send_blocking(2)
    });
    blocked.assert_blocked();
    let (_counter, waker) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(rx.poll_next(&mut cx), Poll::Ready(Some(1)));
    assert_eq!(blocked.join(), Ok(()));
    assert_eq!(rx.poll_next(&mut cx), Poll::Ready(Some(2)));
}

#[test]
fn mpsc_reserve_takes_the_slot_until_the_permit_sends() {
    let (tx, mut rx) = mpsc::channel(1);
    let permit = block_on(tx.reserve()).unwrap();
    assert_eq!(tx.try_send(1), Err(mpsc::TrySendError::Full(1)));
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
    permit.send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));
    tx.try_send(3).unwrap();
    assert_eq!(rx.try_recv(), Ok(3));
}

#[test]
fn mpsc_permit_dropped_unused_hands_the_slot_to_the_blocked_sender() {
    let (tx, mut rx) = mpsc::channel(1);
    let permit = block_on(tx.reserve()).unwrap();
    let (counter, waker) = counting_waker();
    let mut blocked = tx.send(7);
    assert!(poll_once(&mut blocked, &waker).is_pending());
    drop(permit);
    assert_eq!(counter.wakes(), 1);
    assert_eq!(rx.try_recv(), Ok(7)); // moved in by the permit's drop
    assert_eq!(poll_once(&mut blocked, &waker), Poll::Ready(Ok(())));
}

#[test]
fn mpsc_reserve_waits_in_line_and_is_served_by_recv() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (counter, waker) = counting_waker();
    let mut reserve = tx.reserve();
    assert!(poll_once(&mut reserve, &waker).is_pending());
    // A later send waits behind the reserve: the freed slot is the reserve's.
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(counter.wakes(), 1);
    assert_eq!(tx.try_send(2), Err(mpsc::TrySendError::Full(2)));
    let Poll::Ready(Ok(permit)) = poll_once(&mut reserve, &waker) else {
        panic!("a served reserve must be ready");
    };
    permit.send(3).unwrap();
    assert_eq!(rx.try_recv(), Ok(3));
}

#[test]
fn mpsc_served_reserve_dropped_unpolled_gives_the_slot_back() {
    let (tx, mut rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    let (_counter, waker) = counting_waker();
    let mut reserve = tx.reserve();
    assert!(poll_once(&mut reserve, &waker).is_pending());
    assert_eq!(rx.try_recv(), Ok(1)); // the slot is handed to the reserve
    drop(reserve);
    assert_eq!(tx.try_send(2), Ok(()));
    assert_eq!(rx.try_recv(), Ok(2));
}

#[test]
fn mpsc_reserve_on_a_closed_channel_fails_and_a_blocked_reserve_is_released() {
    let (tx, mut rx) = mpsc::channel::<u8>(1);
    tx.try_send(1).unwrap();
    let (counter, waker) = counting_waker();
    let mut blocked = tx.reserve();
    assert!(poll_once(&mut blocked, &waker).is_pending());
    rx.close();
    assert_eq!(counter.wakes(), 1);
    assert!(matches!(
        poll_once(&mut blocked, &waker),
        Poll::Ready(Err(mpsc::SendError(())))
    ));
    assert!(block_on(tx.reserve()).is_err());
    assert_eq!(rx.try_recv(), Ok(1)); // the buffered value is still there
}

#[test]
fn mpsc_unbounded_reserve_is_always_ready() {
    let (tx, mut rx) = mpsc::unbounded();
    let permits: Vec<_> = (0..100).map(|_| block_on(tx.reserve()).unwrap()).collect();
    for (i, permit) in permits.into_iter().enumerate() {
        permit.send(i).unwrap();
    }
    assert_eq!(rx.len(), 100);
    assert_eq!(rx.try_recv(), Ok(0));
}

#[test]
fn mpsc_recv_many_waits_for_one_then_takes_up_to_limit() {
    let (tx, mut rx) = mpsc::channel(4);
    let mut buf = vec![100];
    let (counter, waker) = counting_waker();
    {
        let mut many = std::pin::pin!(rx.recv_many(&mut buf, 3));
        assert!(many
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        for i in 0..4 {
            tx.try_send(i).unwrap();
        }
        assert!(counter.wakes() >= 1);
        assert_eq!(
            many.as_mut().poll(&mut Context::from_waker(&waker)),
            Poll::Ready(3)
        );
    }
    assert_eq!(buf, [100, 0, 1, 2]);
    assert_eq!(block_on(rx.recv_many(&mut buf, 0)), 0);
    drop(tx);
    assert_eq!(block_on(rx.recv_many(&mut buf, 10)), 1);
    assert_eq!(block_on(rx.recv_many(&mut buf, 10)), 0);
    assert_eq!(buf, [100, 0, 1, 2, 3]);
}

#[test]
fn mpsc_recv_many_serves_blocked_senders_in_order() {
    let (tx, mut rx) = mpsc::channel(2);
    tx.try_send(0).unwrap();
    tx.try_send(1).unwrap();
    let (counter, waker) = counting_waker();
    let mut blocked = tx.send(2);
    assert!(poll_once(&mut blocked, &waker).is_pending());
    let mut buf = Vec::new();
    // Taking both buffered values moves the blocked value in, which is taken too.
    assert_eq!(block_on(rx.recv_many(&mut buf, 10)), 3);
    assert_eq!(counter.wakes(), 1);
    assert_eq!(poll_once(&mut blocked, &waker), Poll::Ready(Ok(())));
    assert_eq!(buf, [0, 1, 2]);
}

#[test]
fn mpsc_sender_sees_capacity_and_close() {
    let (tx, mut rx) = mpsc::channel::<u8>(5);
    assert_eq!(tx.capacity(), Some(5));
    assert_eq!(mpsc::unbounded::<u8>().0.capacity(), None);
    assert!(!tx.is_closed());
    rx.close();
    assert!(tx.is_closed());
}

// ---------------------------------------------------------------------------------------------
// oneshot

#[test]
fn oneshot_send_then_recv() {
    let (tx, rx) = oneshot::channel();
    tx.send(String::from("hello")).unwrap();
    assert_eq!(block_on(rx), Ok(String::from("hello")));
}

#[test]
fn oneshot_recv_then_send_from_other_thread() {
    let (tx, rx) = oneshot::channel();
    let sender = spawn_job(move || {
        thread::sleep(Duration::from_millis(10));
        tx.send(7u32)
    });
    assert_eq!(block_on(rx), Ok(7));
    assert_eq!(sender.join(), Ok(()));
}

#[test]
fn oneshot_sender_dropped_then_recv_error() {
    let (tx, rx) = oneshot::channel::<u8>();
    drop(tx);
    assert_eq!(rx.recv_blocking(), Err(oneshot::RecvError));

    let (tx, mut rx) = oneshot::channel::<u8>();
    drop(tx);
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
}

#[test]
fn oneshot_pending_receiver_woken_when_sender_dropped() {
    let (tx, rx) = oneshot::channel::<u8>();
    let receiver = spawn_job(move || block_on(rx));
    receiver.assert_blocked();
    drop(tx);
    assert_eq!(receiver.join(), Err(oneshot::RecvError));
}

#[test]
fn oneshot_receiver_dropped_then_send_returns_value() {
    let (tx, rx) = oneshot::channel();
    assert!(!tx.is_closed());
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send(vec![1, 2]), Err(vec![1, 2]));
}

#[test]
fn oneshot_closed_resolves_when_receiver_dropped_on_other_thread() {
    let (mut tx, rx) = oneshot::channel::<u8>();
    let (counter, waker) = counting_waker();
    {
        let mut closed = tx.closed();
        assert!(poll_once(&mut closed, &waker).is_pending());
    }
    let dropper = spawn_job(move || {
        thread::sleep(Duration::from_millis(10));
        drop(rx);
    });
    block_on(tx.closed());
    dropper.join();
    assert_eq!(
        counter.wakes(),
        0,
        "a dropped closed() future must not be woken"
    );
    assert_eq!(tx.send(1), Err(1));
}

#[test]
fn oneshot_receiver_dropped_drops_sent_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = oneshot::channel();
    tx.send(DropCounter(Arc::clone(&drops))).ok().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn oneshot_receiver_repolled_with_new_waker_wakes_only_new_waker() {
    let (tx, mut rx) = oneshot::channel();
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    assert!(poll_once(&mut rx, &first_waker).is_pending());
    assert!(poll_once(&mut rx, &second_waker).is_pending());
    tx.send(1).unwrap();
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert_eq!(poll_once(&mut rx, &second_waker), Poll::Ready(Ok(1)));
    assert_eq!(
        poll_once(&mut rx, &second_waker),
        Poll::Ready(Err(oneshot::RecvError))
    );
}

#[test]
fn oneshot_recv_timeout_times_out_then_receives() {
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(10)),
        Err(oneshot::RecvTimeoutError::Timeout)
    );
    tx.send(3).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Ok(3));
}

#[test]
fn oneshot_close_wakes_a_pending_closed_then_send_gives_the_value_back() {
    let (mut tx, mut rx) = oneshot::channel::<String>();
    let (counter, waker) = counting_waker();
    {
        let mut closed = tx.closed();
        assert!(poll_once(&mut closed, &waker).is_pending());
        rx.close();
        assert_eq!(counter.wakes(), 1);
        assert_eq!(poll_once(&mut closed, &waker), Poll::Ready(()));
    }
    assert!(tx.is_closed());
    assert_eq!(tx.send("late".to_string()), Err("late".to_string()));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
    assert_eq!(block_on(rx), Err(oneshot::RecvError));
}

#[test]
fn oneshot_close_after_send_keeps_the_value_receivable() {
    let (tx, mut rx) = oneshot::channel();
    tx.send(5).unwrap();
    rx.close();
    assert_eq!(rx.try_recv(), Ok(5));
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Closed));
}

#[test]
fn oneshot_try_recv_empty_then_value() {
    let (tx, mut rx) = oneshot::channel();
    assert_eq!(rx.try_recv(), Err(oneshot::TryRecvError::Empty));
    spawn_job(move || tx.send(9).unwrap()).join();
    assert_eq!(rx.try_recv(), Ok(9));
}

// ---------------------------------------------------------------------------------------------
// Semaphore

#[test]
fn semaphore_two_tasks_wanting_three_of_four_both_finish_repeatedly() {
    const ROUNDS: usize = stress(500);
    let sem = Arc::new(Semaphore::new(4));
    let in_use = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|id| {
            let sem = Arc::clone(&sem);
            let in_use = Arc::clone(&in_use);
            spawn_job(move || {
                for _ in 0..ROUNDS {
                    // One side awaits an owned guard, the other blocks for a borrowed one.
                    if id == 0 {
                        let _guard = block_on(sem.acquire_many_arc(3));
                        hold_three(&in_use);
                    } else {
                        let _guard = sem.acquire_many_blocking(3);
                        hold_three(&in_use);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join();
    }
    assert_eq!(sem.available_permits(), 4);
}

/// Checks that nobody else holds 3 permits while we do.
fn hold_three(in_use: &AtomicUsize) {
    assert_eq!(in_use.fetch_add(3, Ordering::SeqCst), 0);
    thread::yield_now();
    in_use.fetch_sub(3, Ordering::SeqCst);
}

#[test]
fn semaphore_head_waiter_for_three_not_starved_by_later_waiters_for_one() {
    let sem = Semaphore::new(3);
    let held = sem.acquire_many_blocking(2); // 1 free
    let (big_counter, big_waker) = counting_waker();
    let (small_counter, small_waker) = counting_waker();

    let mut big = sem.acquire_many(3);
    assert!(poll_once(&mut big, &big_waker).is_pending());
    // One permit is free, but the big waiter is queued first.
    let mut small = sem.acquire();
    assert!(poll_once(&mut small, &small_waker).is_pending());
    assert!(sem.try_acquire().is_none());
    assert_eq!(sem.available_permits(), 1);

    drop(held);
    assert_eq!((big_counter.wakes(), small_counter.wakes()), (1, 0));
    let big_guard = match poll_once(&mut big, &big_waker) {
        Poll::Ready(guard) => guard,
        Poll::Pending => panic!("big waiter should have been granted"),
    };
    assert_eq!(big_guard.permits(), 3);
    assert!(poll_once(&mut small, &small_waker).is_pending());

    drop(big_guard);
    assert_eq!(small_counter.wakes(), 1);
    assert!(poll_once(&mut small, &small_waker).is_ready());
    drop((big, small));
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn semaphore_guard_drop_releases_permits() {
    let sem = Semaphore::new(3);
    let a = sem.acquire_blocking();
    let b = block_on(sem.acquire_many(2));
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_none());
    drop(b);
    assert_eq!(sem.available_permits(), 2);
    drop(a);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn semaphore_failed_try_acquire_takes_and_gives_back_nothing() {
    let sem = Arc::new(Semaphore::new(2));
    let held = sem.try_acquire_many(2).unwrap();
    assert!(sem.try_acquire().is_none());
    assert!(sem.try_acquire_many(2).is_none());
    assert!(sem.try_acquire_arc().is_none());
    assert!(sem.try_acquire_many_arc(1).is_none());
    assert_eq!(sem.available_permits(), 0);
    drop(held);
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn semaphore_forget_keeps_permits_taken() {
    let sem = Arc::new(Semaphore::new(3));
    sem.acquire_blocking().forget();
    sem.try_acquire_arc().unwrap().forget();
    assert_eq!(sem.available_permits(), 1);
    sem.add_permits(2);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn semaphore_add_permits_wakes_blocked_waiters() {
    let sem = Arc::new(Semaphore::new(0));
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let sem = Arc::clone(&sem);
            spawn_job(move || sem.acquire_many_blocking(2).permits())
        })
        .collect();
    for waiter in &waiters {
        waiter.assert_blocked();
    }
    sem.add_permits(4);
    for waiter in waiters {
        assert_eq!(waiter.join(), 2);
    }
    assert_eq!(sem.available_permits(), 4);
}

#[test]
fn semaphore_granted_then_dropped_unpolled_returns_permits() {
    let sem = Semaphore::new(2);
    let held = sem.acquire_many_blocking(2);
    let (counter, waker) = counting_waker();
    let mut pending = sem.acquire_many(2);
    assert!(poll_once(&mut pending, &waker).is_pending());
    drop(held); // grants both permits to `pending`
    assert_eq!(counter.wakes(), 1);
    assert_eq!(sem.available_permits(), 0);
    drop(pending); // never polled again
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn semaphore_granted_then_dropped_unpolled_passes_permits_to_next_waiter() {
    let sem = Semaphore::new(1);
    let held = sem.acquire_blocking();
    let (first_counter, first_waker) = counting_waker();
    let (second_counter, second_waker) = counting_waker();
    let mut first = sem.acquire();
    let mut second = sem.acquire();
    assert!(poll_once(&mut first, &first_waker).is_pending());
    assert!(poll_once(&mut second, &second_waker).is_pending());
    drop(held);
    assert_eq!((first_counter.wakes(), second_counter.wakes()), (1, 0));
    drop(first);
    assert_eq!(second_counter.wakes(), 1);
    let guard = match poll_once(&mut second, &second_waker) {
        Poll::Ready(guard) => guard,
        Poll::Pending => panic!("second waiter should have been granted"),
    };
    assert_eq!(sem.available_permits(), 0);
    drop(guard);
    drop(second);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn semaphore_cancelled_head_waiter_lets_smaller_waiters_through() {
    let sem = Semaphore::new(2);
    let held = sem.acquire(); // 1 free once polled
    let held = block_on(held);
    let (_, waker) = counting_waker();
    let (small_counter, small_waker) = counting_waker();
    let mut big = sem.acquire_many(2);
    let mut small = sem.acquire();
    assert!(poll_once(&mut big, &waker).is_pending());
    assert!(poll_once(&mut small, &small_waker).is_pending());
    drop(big);
    assert_eq!(small_counter.wakes(), 1);
    assert!(poll_once(&mut small, &small_waker).is_ready());
    drop((held, small));
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn semaphore_acquire_repolled_with_new_waker_wakes_only_new_waker() {
    let sem = Semaphore::new(1);
    let held = sem.acquire_blocking();
    let (first, first_waker) = counting_waker();
    let (second, second_waker) = counting_waker();
    let mut acquire = sem.acquire();
    assert!(poll_once(&mut acquire, &first_waker).is_pending());
    assert!(poll_once(&mut acquire, &second_waker).is_pending());
    drop(held);
    assert_eq!((first.wakes(), second.wakes()), (0, 1));
    assert!(poll_once(&mut acquire, &second_waker).is_ready());
}

#[test]
fn semaphore_arc_guard_moves_to_another_thread() {
    let sem = Arc::new(Semaphore::new(1));
    let guard = block_on(sem.acquire_arc());
    assert_eq!(sem.available_permits(), 0);
    spawn_job(move || drop(guard)).join();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn semaphore_mixed_sizes_never_exceed_the_permits() {
    const PERMITS: usize = 5;
    let sem = Arc::new(Semaphore::new(PERMITS));
    let in_use = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (1..=4)
        .map(|k| {
            let sem = Arc::clone(&sem);
            let in_use = Arc::clone(&in_use);
            spawn_job(move || {
                for round in 0..stress(200) {
                    let guard = if round % 2 == 0 {
                        sem.acquire_many_blocking(k)
                    } else {
                        block_on(sem.acquire_many(k))
                    };
                    assert!(in_use.fetch_add(k, Ordering::SeqCst) + k <= PERMITS);
                    in_use.fetch_sub(k, Ordering::SeqCst);
                    drop(guard);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join();
    }
    assert_eq!(sem.available_permits(), PERMITS);
}

#[test]
fn semaphore_close_fails_pending_and_later_checked_acquires() {
    let sem = Semaphore::new(1);
    let held = sem.try_acquire().unwrap();
    let (counter, waker) = counting_waker();
    let mut pending = sem.checked_acquire();
    assert!(poll_once(&mut pending, &waker).is_pending());
    sem.close();
    assert_eq!(counter.wakes(), 1);
    assert!(matches!(
        poll_once(&mut pending, &waker),
        Poll::Ready(Err(aplex::sync::AcquireError))
    ));
    assert!(sem.is_closed());
    assert!(block_on(sem.checked_acquire_many(0)).is_err());
    assert!(sem.try_acquire().is_none());
    // A guard handed out before the close gives its permit back as usual.
    drop(held);
    assert_eq!(sem.available_permits(), 1);
    assert!(sem.try_acquire().is_none());
}

#[test]
fn semaphore_granted_before_close_keeps_its_permits() {
    let sem = Semaphore::new(0);
    let (_counter, waker) = counting_waker();
    let mut pending = sem.checked_acquire();
    assert!(poll_once(&mut pending, &waker).is_pending());
    sem.add_permits(1); // granted now
    sem.close();
    let Poll::Ready(Ok(guard)) = poll_once(&mut pending, &waker) else {
        panic!("an acquire granted before the close must succeed");
    };
    assert_eq!(guard.permits(), 1);
}

#[test]
fn semaphore_close_wakes_a_blocked_thread_with_an_error() {
    let sem = Arc::new(Semaphore::new(0));
    let waiter = spawn_job({
        let sem = Arc::clone(&sem);
        move || block_on(sem.checked_acquire_many(2)).map(|g| g.permits())
    });
    waiter.assert_blocked();
    sem.close();
    assert_eq!(waiter.join(), Err(aplex::sync::AcquireError));
}

#[test]
fn semaphore_guard_returning_acquire_panics_on_close() {
    expect_panics(&["Semaphore: acquire on a closed semaphore"]);
    let sem = Semaphore::new(0);
    let (_counter, waker) = counting_waker();
    let mut pending = sem.acquire();
    assert!(poll_once(&mut pending, &waker).is_pending());
    sem.close();
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = poll_once(&mut pending, &waker);
    }));
    assert!(polled.is_err());
    drop(pending);
    assert_eq!(sem.available_permits(), 0);
}

#[test]
fn semaphore_forget_permits_removes_only_free_ones() {
    let sem = Semaphore::new(4);
    let held = sem.try_acquire_many(3).unwrap();
    assert_eq!(sem.forget_permits(2), 1);
    assert_eq!(sem.forget_permits(2), 0);
    drop(held);
    assert_eq!(sem.available_permits(), 3);
    assert_eq!(sem.forget_permits(3), 3);
    assert!(sem.try_acquire().is_none());
}

// ---------------------------------------------------------------------------------------------
// Event

#[test]
fn event_set_wakes_all_async_and_blocking_waiters() {
    let event = Arc::new(Event::new());
    let waiters: Vec<_> = (0..6)
        .map(|i| {
            let event = Arc::clone(&event);
            spawn_job(move || {
                if i % 2 == 0 {
                    event.wait_blocking();
                } else {
                    block_on(event.wait());
                }
            })
        })
        .collect();
    for waiter in &waiters {
        waiter.assert_blocked();
    }
    event.set();
    for waiter in waiters {
        waiter.join();
    }
}

#[test]
fn event_clear_after_set_makes_waits_wait_again() {
    let event = Event::new();
    event.set();
    block_on(event.wait());
    event.clear();
    assert!(!event.is_set());
    let (_, waker) = counting_waker();
    let mut wait = event.wait();
    assert!(poll_once(&mut wait, &waker).is_pending());
}

#[test]
fn event_wait_timeout_false_then_true() {
    let event = Arc::new(Event::new());
    assert!(!event.wait_timeout(Duration::from_millis(10)));
    let setter = {
        let event = Arc::clone(&event);
        spawn_job(move || {
            thread::sleep(Duration::from_millis(10));
            event.set();
        })
    };
    assert!(event.wait_timeout(BOUND));
    setter.join();
    assert!(event.wait_timeout(Duration::ZERO));
}

#[test]
fn event_set_then_clear_still_releases_pending_waiters() {
    let event = Event::new();
    let (counter, waker) = counting_waker();
    let mut wait = event.wait();
    assert!(poll_once(&mut wait, &waker).is_pending());
    event.set();
    event.clear();
    assert_eq!(counter.wakes(), 1);
    assert!(poll_once(&mut wait, &waker).is_ready());
}

#[test]
fn event_dropped_wait_future_unregisters() {
    let event = Event::new();
    let (counter, waker) = counting_waker();
    let mut wait = event.wait();
    assert!(poll_once(&mut wait, &waker).is_pending());
    assert!(format!("{event:?}").contains("waiters: 1"));
    drop(wait);
    assert!(format!("{event:?}").contains("waiters: 0"));
    event.set();
    assert_eq!(counter.wakes(), 0);
}

// ---------------------------------------------------------------------------------------------
// Foreign executor, errors, thread safety

#[test]
fn foreign_executor_drives_every_primitive_across_threads() {
    let (once_tx, once_rx) = oneshot::channel();
    let (tx, mut rx) = mpsc::channel(2);
    let sem = Arc::new(Semaphore::new(0));
    let event = Arc::new(Event::new());
    let helper = {
        let sem = Arc::clone(&sem);
        let event = Arc::clone(&event);
        spawn_job(move || {
            thread::sleep(Duration::from_millis(5));
            once_tx.send(1).unwrap();
            for i in 0..10 {
                tx.send_blocking(i).unwrap();
            }
            drop(tx);
            sem.add_permits(3);
            event.set();
        })
    };
    let total = foreign::run(async {
        let mut total = once_rx.await.unwrap();
        while let Some(i) = rx.recv().await {
            total += i;
        }
        let guard = sem.acquire_many(3).await;
        total += guard.permits();
        event.wait().await;
        total
    });
    helper.join();
    assert_eq!(total, 1 + 45 + 3);
    assert_eq!(sem.available_permits(), 3);
}

#[test]
fn foreign_executor_runs_producer_and_consumer_on_one_thread() {
    let (tx, mut rx) = mpsc::channel(1);
    let producer = async move {
        for i in 0..100 {
            tx.send(i).await.unwrap();
        }
    };
    let consumer = async move {
        let mut got = Vec::new();
        while let Some(i) = rx.recv().await {
            got.push(i);
        }
        got
    };
    let ((), got) = foreign::run(foreign::join(producer, consumer));
    assert_eq!(got, (0..100).collect::<Vec<_>>());
}

#[test]
fn error_types_are_lowercase_std_errors() {
    fn check<E: std::error::Error + Clone + PartialEq + Eq + Send + Sync + 'static>(e: E) {
        let text = e.to_string();
        assert!(text.chars().next().unwrap().is_lowercase(), "{text}");
        assert!(e.clone() == e);
        let _boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
    }
    check(oneshot::RecvError);
    check(oneshot::TryRecvError::Empty);
    check(oneshot::TryRecvError::Closed);
    check(oneshot::RecvTimeoutError::Timeout);
    check(mpsc::SendError(1));
    check(mpsc::TrySendError::Full(1));
    check(mpsc::TrySendError::Closed(1));
    check(mpsc::TryRecvError::Empty);
    check(mpsc::RecvTimeoutError::Closed);
    check(aplex::sync::AcquireError);
    assert_eq!(format!("{:?}", mpsc::SendError(vec![1])), "SendError(..)");
}

#[test]
fn handles_and_futures_are_send_and_sync() {
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}

    assert_send::<Semaphore>();
    assert_sync::<Semaphore>();
    assert_send::<aplex::sync::SemaphoreGuard<'static>>();
    assert_send::<aplex::sync::SemaphoreGuardArc>();
    assert_sync::<aplex::sync::SemaphoreGuardArc>();
    assert_send::<aplex::sync::AcquireFuture<'static>>();
    assert_send::<aplex::sync::AcquireArcFuture>();
    assert_send::<aplex::sync::CheckedAcquireFuture<'static>>();

    assert_send::<Event>();
    assert_sync::<Event>();
    assert_send::<aplex::sync::WaitFuture<'static>>();

    assert_send::<mpsc::Sender<String>>();
    assert_sync::<mpsc::Sender<String>>();
    assert_send::<mpsc::Receiver<String>>();
    assert_sync::<mpsc::Receiver<String>>();
    assert_send::<mpsc::SendFuture<'static, String>>();
    assert_send::<mpsc::RecvFuture<'static, String>>();
    assert_send::<mpsc::ReserveFuture<'static, String>>();
    assert_send::<mpsc::Permit<'static, String>>();

    assert_send::<oneshot::Sender<String>>();
    assert_sync::<oneshot::Sender<String>>();
    assert_send::<oneshot::Receiver<String>>();
    assert_sync::<oneshot::Receiver<String>>();
    assert_send::<oneshot::ClosedFuture<'static, String>>();
}
