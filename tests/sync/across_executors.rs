//! Primitives driven by a foreign executor, error types, and thread safety.

use super::*;

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
