//! Handles: awaited from anywhere, dropped, sent across threads; errors cloned.

use super::*;

#[test]
fn a_handle_is_awaitable_from_a_foreign_executor_and_inside_block_on() {
    let pool = ThreadPool::new(2);
    let a = pool.spawn(|| async {
        sleep(Duration::from_millis(5)).await;
        1
    });
    let b = pool.submit(|| 2);
    let sum = aplex::block_on(async { a.await.unwrap() + b.await.unwrap() });
    assert_eq!(sum, 3);
    // A hand-made executor: poll, park, repeat.
    let h = pool.spawn(|| async {
        sleep(Duration::from_millis(5)).await;
        9
    });
    let value = {
        use std::future::Future;
        use std::task::{Context, Poll, Wake, Waker};
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut h = std::pin::pin!(h);
        loop {
            if let Poll::Ready(v) = h.as_mut().poll(&mut cx) {
                break v;
            }
            std::thread::park_timeout(Duration::from_millis(100));
        }
    };
    assert_eq!(value, Ok(9));
}

#[test]
fn dropping_a_handle_does_not_cancel_but_cancel_on_drop_does() {
    let pool = ThreadPool::new(1);
    let ran = Arc::new(AtomicUsize::new(0));
    // Neither work can end before both handles are dropped: they wait for this gate.
    let gate = Gate::default();
    let (r, g) = (ran.clone(), gate.clone());
    drop(pool.spawn(move || async move {
        g.passed().await;
        r.fetch_add(1, Ordering::SeqCst);
    }));
    let (r, g) = (ran.clone(), gate.clone());
    drop(
        pool.spawn(move || async move {
            g.passed().await;
            r.fetch_add(100, Ordering::SeqCst);
        })
        .cancel_on_drop(),
    );
    gate.open();
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn the_pool_and_its_handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}
    assert_send_sync::<ThreadPool>();
    assert_send::<aplex::Handle<Rc<()>>>(); // the handle is Send whatever T...
    assert_send::<aplex::Map<u8>>();
}

#[test]
fn a_handle_error_clones_to_an_equal_error_io_included() {
    expect_panics(&["cloned panic"]);
    let pool = ThreadPool::new(1);
    let err = pool
        .submit(|| -> u8 { panic!("cloned panic") })
        .wait()
        .unwrap_err();
    assert_eq!(err.clone(), err);
    let io = Error::Io(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "pipe gone",
    ));
    let copy = io.clone();
    assert_eq!(copy, io);
    match &copy {
        Error::Io(e) => {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
            assert_eq!(e.to_string(), "pipe gone");
        }
        other => panic!("an Io error cloned to {other:?}"),
    }
    let other_message = Error::Io(std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "another pipe",
    ));
    assert_ne!(other_message, io);
}
