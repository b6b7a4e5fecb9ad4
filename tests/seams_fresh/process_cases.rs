//! The process pool's fresh seams: `max_frame` at its exact edges, user `Wire` impls that
//! panic inside a map's chunk or while the parent encodes an argument, and a worker that
//! closes its input but keeps its output open.

use std::panic::{catch_unwind, AssertUnwindSafe};

use aplex::{Error, ProcessPool};

use crate::works::{closes_input_command, works, Fuse, Touchy};
use crate::{bug, case, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "process_max_frame_edges_for_results_and_arguments",
            process_max_frame_edges_for_results_and_arguments,
        ),
        case(
            "process_a_panicking_decode_of_one_item_in_a_chunk",
            process_a_panicking_decode_of_one_item_in_a_chunk,
        ),
        case(
            "process_call_whose_argument_encode_panics_in_the_parent",
            process_call_whose_argument_encode_panics_in_the_parent,
        ),
        case(
            "process_map_whose_item_encode_panics_mid_batch",
            process_map_whose_item_encode_panics_mid_batch,
        ),
        bug(
            "process_a_worker_that_closes_its_input_but_keeps_its_output",
            process_a_worker_that_closes_its_input_but_keeps_its_output,
            "known limitation: a worker that closed its input after its hello but keeps its \
             output open and never answers looks like a worker running a stuck work; a call \
             whose frame went into the pipe before the close is not answered (bound it with \
             wait_timeout or Map::timeout)",
        ),
    ]
}

fn pool(max_frame: usize) -> ProcessPool {
    ProcessPool::builder()
        .workers(1)
        .max_frame(max_frame)
        .build(&works::WORKS)
        .expect("a pool")
}

/// Outcomes by size must be a run of values and then only typed "over the maximum" errors:
/// never a lost worker, never a value after an error.
fn assert_edge<T: std::fmt::Debug>(what: &str, outcomes: &[Result<T, Error>]) -> usize {
    let fits = outcomes.iter().take_while(|r| r.is_ok()).count();
    for (n, r) in outcomes.iter().enumerate().skip(fits) {
        match r {
            Err(Error::Wire(m) | Error::Remote(m)) if m.contains("over the maximum") => {}
            other => panic!("{what} of size {n} (the first {fits} fit): {other:?}"),
        }
    }
    fits
}

fn process_max_frame_edges_for_results_and_arguments() {
    for max in [13, 14, 40] {
        within("results and arguments at the frame maximum", move || {
            let p = pool(max);
            let results: Vec<_> = (0..max + 3)
                .map(|n| p.call(&works::make_string, n).wait())
                .collect();
            let fit = assert_edge("a result", &results);
            let args: Vec<_> = (0..max + 3)
                .map(|n| p.call(&works::bytes_len, vec![7u8; n]).wait())
                .collect();
            let fit_args = assert_edge("an argument", &args);
            assert!(fit_args < max && fit < max, "{fit_args} {fit}");
            // A map's chunks at the same edges: one outcome per item, the same verdicts.
            let mapped: Vec<_> = p
                .map(&works::make_string, 0..max + 3)
                .chunk_size(1)
                .collect();
            assert_eq!(mapped.len(), max + 3);
            assert_eq!(
                p.slots()[0].restarts,
                0,
                "no frame above was a protocol error"
            );
            if max == 40 {
                assert_eq!(p.call(&works::double, 4).wait(), Ok(8));
            }
        });
    }
}

fn process_a_panicking_decode_of_one_item_in_a_chunk() {
    let got = within("a chunk with one item whose decode panics", || {
        let p = pool(1 << 20);
        let in_worker: Vec<_> = p
            .map(&works::touchy_arg, (0..20).map(Touchy))
            .chunk_size(4)
            .collect();
        let in_parent: Vec<Result<u8, Error>> = p
            .map(&works::touchy, 0..20u8)
            .chunk_size(4)
            .map(|r| r.map(|t| t.0))
            .collect();
        let after = p.call(&works::double, 1).wait();
        (in_worker, in_parent, after)
    });
    // Item 13 fails with the decode's panic. Once a decode has panicked, where the next item's
    // bytes begin is unknown, so the rest of its chunk (items 14 and 15) fails with it, as
    // documented; every other item, the ones before it in its chunk included, has its value.
    for (which, outcomes) in [("worker", &got.0), ("parent", &got.1)] {
        assert_eq!(outcomes.len(), 20, "{which}: one outcome per item");
        for (i, r) in outcomes.iter().enumerate() {
            match (i, r) {
                (13..=15, Err(Error::Panicked(_) | Error::Wire(_))) => {}
                (13, other) => panic!("{which}: item 13: {other:?}"),
                (_, Ok(v)) => assert_eq!(usize::from(*v), i, "{which}: item {i}"),
                (_, other) => panic!("{which}: item {i} fails with its neighbour: {other:?}"),
            }
        }
    }
    assert_eq!(got.2, Ok(2));
}

fn process_call_whose_argument_encode_panics_in_the_parent() {
    within("a call whose argument's encode panics", || {
        let p = pool(1 << 20);
        let call = catch_unwind(AssertUnwindSafe(|| p.call(&works::fuse_arg, Fuse(13))));
        match call {
            Err(_) => {} // the panic reached the caller
            Ok(h) => assert!(matches!(h.wait(), Err(Error::Panicked(_) | Error::Wire(_)))),
        }
        assert_eq!(p.call(&works::fuse_arg, Fuse(12)).wait(), Ok(12));
        assert_eq!(p.loads(), vec![0], "the failed call left no load");
        p.shutdown();
    });
}

fn process_map_whose_item_encode_panics_mid_batch() {
    let got = within("a map whose item's encode panics", || {
        let p = pool(1 << 20);
        let mut map = p.map(&works::fuse_arg, (0..40).map(Fuse)).chunk_size(4);
        let mut seen = Vec::new();
        let mut panics = 0;
        for _ in 0..60 {
            match catch_unwind(AssertUnwindSafe(|| Iterator::next(&mut map))) {
                Ok(Some(r)) => seen.push(r),
                Ok(None) => break,
                Err(_) => {
                    panics += 1;
                    if panics > 3 {
                        break;
                    }
                }
            }
        }
        drop(map);
        let after = p.call(&works::double, 2).wait();
        let loads = p.loads();
        p.shutdown();
        (seen, panics, after, loads)
    });
    let (seen, panics, after, loads) = got;
    assert!(panics >= 1, "the encode's panic reaches the caller");
    // The chunks cut before the panic were sent and answer in order.
    for (i, r) in seen.iter().take(12).enumerate() {
        assert_eq!(r, &Ok(i as u8), "item {i}");
    }
    // Items after the panic, if the map goes on, must not pretend to be earlier ones.
    for (i, r) in seen.iter().enumerate().skip(12) {
        if let Ok(v) = r {
            assert!(*v as usize >= i, "item {i} answered {v}: results shifted");
        }
    }
    assert_eq!(after, Ok(4));
    assert_eq!(loads, vec![0], "nothing stranded in the worker's load");
}

fn process_a_worker_that_closes_its_input_but_keeps_its_output() {
    within("a call to a worker whose input is closed", || {
        let p = ProcessPool::builder()
            .workers(1)
            .command(closes_input_command())
            .build(&works::WORKS)
            .expect("the fake worker says hello");
        let got = p.call(&works::double, 1).wait();
        assert!(matches!(got, Err(Error::WorkerLost(_))), "{got:?}");
        p.shutdown_now();
    });
}
