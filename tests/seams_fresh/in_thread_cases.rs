//! `in_thread`, now a shared-queue pool: ten thousand calls from eight threads, every handle
//! checked.

use std::sync::{Arc, Barrier};

use aplex::Error;

use crate::{case, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    vec![case(
        "in_thread_ten_thousand_calls_from_eight_threads",
        in_thread_ten_thousand_calls_from_eight_threads,
    )]
}

fn in_thread_ten_thousand_calls_from_eight_threads() {
    within("10,000 in_thread calls from 8 threads", || {
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    let handles: Vec<_> = (0..1250u64)
                        .map(|i| {
                            let n = t * 10_000 + i;
                            (
                                n,
                                aplex::in_thread(move || {
                                    assert!(n % 997 != 0, "call {n} panics");
                                    n
                                }),
                            )
                        })
                        .collect();
                    for (n, h) in handles {
                        match h.wait() {
                            Ok(v) => assert_eq!(v, n),
                            Err(Error::Panicked(m)) => {
                                assert_eq!(n % 997, 0, "{m}");
                            }
                            Err(e) => panic!("call {n}: {e:?}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("every call checked");
        }
    });
}
