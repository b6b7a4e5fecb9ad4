//! `aplex::io` objects moving to the fallback reactor: many at once, one whose read waits at
//! home while another thread moves it, and objects dropped while a move races a cancelled wait.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdUnix;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use aplex::io::{Async, UnixStream};

use crate::{case, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "io_many_objects_move_to_the_fallback_at_once",
            io_many_objects_move_to_the_fallback_at_once,
        ),
        case(
            "io_a_read_waiting_at_home_while_another_thread_moves_it",
            io_a_read_waiting_at_home_while_another_thread_moves_it,
        ),
        case(
            "io_objects_dropped_while_a_move_races_a_cancelled_wait",
            io_objects_dropped_while_a_move_races_a_cancelled_wait,
        ),
    ]
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fn io_many_objects_move_to_the_fallback_at_once() {
    within("64 pairs moving from an ended home at once", || {
        // Made under a block_on on a thread that then ends: their home reactor is gone.
        let pairs: Vec<(UnixStream, UnixStream)> = std::thread::spawn(|| {
            aplex::block_on(async { (0..64).map(|_| UnixStream::pair().unwrap()).collect() })
        })
        .join()
        .unwrap();
        let mut groups: Vec<Vec<(UnixStream, UnixStream)>> = (0..8).map(|_| Vec::new()).collect();
        for (i, pair) in pairs.into_iter().enumerate() {
            groups[i % 8].push(pair);
        }
        let threads: Vec<_> = groups
            .into_iter()
            .map(|mut group| {
                std::thread::spawn(move || {
                    aplex::block_on(async move {
                        for round in 0..20u8 {
                            for (a, b) in group.iter_mut() {
                                a.write_all(&[round]).await.unwrap();
                                let mut got = [0u8];
                                b.read_exact(&mut got).await.unwrap();
                                assert_eq!(got[0], round);
                            }
                        }
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().expect("every pair answers");
        }
    });
}

fn io_a_read_waiting_at_home_while_another_thread_moves_it() {
    within("a home read while another thread moves the object", || {
        for round in 0..100u8 {
            let (ours, mut theirs) = StdUnix::pair().unwrap();
            let (handover_tx, handover) = std_mpsc::channel::<Arc<Async<StdUnix>>>();
            let mover = std::thread::spawn(move || {
                let a = handover.recv().unwrap();
                // Waiting here, off the home reactor, moves the registration.
                aplex::block_on(a.writable()).unwrap();
                theirs.write_all(&[round]).unwrap();
                theirs
            });
            let got = aplex::block_on(async move {
                let a = Arc::new(Async::new(ours).unwrap());
                handover_tx.send(a.clone()).unwrap();
                a.read_with(|s| {
                    let mut b = [0u8];
                    (&*s).read(&mut b).map(|_| b[0])
                })
                .await
                .unwrap()
            });
            assert_eq!(got, round);
            drop(mover.join().unwrap());
        }
    });
}

fn io_objects_dropped_while_a_move_races_a_cancelled_wait() {
    within("drops racing moves", || {
        let round = || {
            let (ours, mut theirs) = StdUnix::pair().unwrap();
            let (handover_tx, handover) = std_mpsc::channel::<Arc<Async<StdUnix>>>();
            let mover = std::thread::spawn(move || {
                let a = handover.recv().unwrap();
                let r =
                    aplex::block_on(aplex::time::timeout(Duration::from_millis(1), a.readable()));
                drop(a);
                r.is_err()
            });
            aplex::block_on(async move {
                let a = Arc::new(Async::new(ours).unwrap());
                handover_tx.send(a.clone()).unwrap();
                let _ = aplex::time::timeout(Duration::from_millis(1), a.readable()).await;
            });
            assert!(
                mover.join().unwrap(),
                "nothing was written: the wait timed out"
            );
            // Both shares gone: the fd is closed and the peer reads its end — even while the
            // reactor that watched it last sleeps in `poll`, which pins an open file.
            let mut rest = Vec::new();
            theirs.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
        };
        // The first round makes what lives on (this thread's reactor, the fallback reactor).
        round();
        let before = open_fds();
        for _ in 0..100 {
            round();
        }
        assert_eq!(open_fds(), before, "fds leaked");
    });
}
