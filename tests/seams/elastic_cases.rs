//! The elastic pool at its seams: resizing under queued works, and a shutdown that must
//! account for every work it was given.
#![cfg(feature = "elastic")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aplex::{ElasticPool, Error, ShutdownOptions};

use crate::{case, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "elastic_resize_to_zero_under_queued_works",
            elastic_resize_to_zero_under_queued_works,
        ),
        case(
            "elastic_shutdown_now_accounts_for_every_work",
            elastic_shutdown_now_accounts_for_every_work,
        ),
    ]
}

fn elastic_resize_to_zero_under_queued_works() {
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(1)
        .build()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let blocker = pool.try_submit(move || rx.recv().unwrap()).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let queued: Vec<_> = (0..5)
        .map(|_| {
            let ran = Arc::clone(&ran);
            pool.try_submit(move || ran.fetch_add(1, Ordering::SeqCst))
                .unwrap()
        })
        .collect();
    assert!(pool.resize(0, 0).is_err(), "documented: max 0 is refused");
    // Scale to zero at the minimum: the queued works still need a worker, and get one.
    pool.resize(0, 1).unwrap();
    tx.send(()).unwrap();
    assert_eq!(within("the blocker", move || blocker.wait()), Ok(()));
    for h in queued {
        assert!(within("a queued work after resize", move || h.wait()).is_ok());
    }
    assert_eq!(ran.load(Ordering::SeqCst), 5);
    let later = pool.try_submit(|| 9).unwrap();
    assert_eq!(
        within("a work on a pool scaled to zero", move || later.wait()),
        Ok(9)
    );
}

fn elastic_shutdown_now_accounts_for_every_work() {
    let pool = ElasticPool::builder()
        .min_workers(1)
        .max_workers(2)
        .build()
        .unwrap();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            pool.try_spawn(move || async move {
                if i % 2 == 0 {
                    aplex::time::sleep(Duration::from_secs(3600)).await;
                }
                i
            })
            .unwrap()
        })
        .collect();
    let opts = ShutdownOptions {
        cancel_pending: true,
        idle_timeout: None,
        total_timeout: Some(Duration::from_millis(200)),
    };
    let report = within("an elastic shutdown", move || {
        let r = pool.shutdown(opts);
        drop(pool);
        r
    });
    let mut ended = 0;
    for h in handles {
        match within("a handle after the elastic shutdown", move || h.wait()) {
            Ok(_) | Err(Error::Cancelled) | Err(Error::ShutDown) | Err(Error::TimedOut) => {
                ended += 1
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(ended, 20);
    assert!(
        report.completed + report.cancelled + report.unfinished <= 20,
        "{report:?}"
    );
}
