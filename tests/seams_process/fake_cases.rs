//! The process pool against a fake worker that lies (see `fake_worker.rs`): every call ends in
//! one typed outcome, nothing hangs, the parent neither panics nor allocates what a forged
//! length or count claims, and the pool serves on with an honest replacement.

use std::path::Path;
use std::time::Duration;

use aplex::{Error, ProcessPool};

use crate::fake_worker::command;
use crate::works::{temp_dir, works};
use crate::{case, peak_kib, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "fake_results_for_unknown_ids_and_twice_are_ignored",
            fake_results_for_unknown_ids_and_twice_are_ignored,
        ),
        case(
            "fake_chunk_counts_off_by_one_fail_every_item_once",
            fake_chunk_counts_off_by_one_fail_every_item_once,
        ),
        case(
            "fake_hellos_that_lie_fail_build_with_a_typed_error",
            fake_hellos_that_lie_fail_build_with_a_typed_error,
        ),
        case(
            "fake_a_hello_with_absurd_counts_still_serves",
            fake_a_hello_with_absurd_counts_still_serves,
        ),
        case(
            "fake_bad_lengths_and_kinds_lose_the_worker_only",
            fake_bad_lengths_and_kinds_lose_the_worker_only,
        ),
        case(
            "fake_a_forged_count_or_length_allocates_nothing",
            fake_a_forged_count_or_length_allocates_nothing,
        ),
        case(
            "fake_bad_status_and_trailing_bytes_are_wire_errors",
            fake_bad_status_and_trailing_bytes_are_wire_errors,
        ),
        case(
            "fake_frames_dribbled_a_byte_at_a_time_arrive_whole",
            fake_frames_dribbled_a_byte_at_a_time_arrive_whole,
        ),
        case(
            "fake_a_result_after_its_cancel_stays_cancelled",
            fake_a_result_after_its_cancel_stays_cancelled,
        ),
    ]
}

/// A one-worker pool of fake workers running `script`; with `once`, only the first lies.
fn fake_pool(script: &str, once: Option<&Path>) -> Result<ProcessPool, Error> {
    ProcessPool::builder()
        .workers(1)
        .hello_timeout(Duration::from_secs(15))
        .command(command(script, once))
        .build(&works::WORKS)
}

fn fake_results_for_unknown_ids_and_twice_are_ignored() {
    for script in ["unknown_id", "twice"] {
        let p = fake_pool(script, None).expect("the fake pool starts");
        let got = within(script, move || {
            let outcomes: Vec<_> = (0..20u64)
                .map(|i| p.call(&works::double, i))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.wait())
                .collect();
            let loads = p.loads();
            (outcomes, loads)
        });
        let want: Vec<_> = (0..20u64).map(|i| Ok(i * 2)).collect();
        assert_eq!(got.0, want, "{script}");
        // A stray result must not have decremented another job's load.
        assert_eq!(got.1, vec![0], "{script}: loads after every call ended");
    }
}

fn fake_chunk_counts_off_by_one_fail_every_item_once() {
    for script in ["chunk_more", "chunk_fewer"] {
        let p = fake_pool(script, None).expect("the fake pool starts");
        let outcomes = within(script, move || {
            p.map(&works::double, 0..100u64)
                .chunk_size(7)
                .collect::<Vec<_>>()
        });
        assert_eq!(outcomes.len(), 100, "{script}: one outcome an item");
        for (i, o) in outcomes.iter().enumerate() {
            assert!(matches!(o, Err(Error::Wire(_))), "{script} item {i}: {o:?}");
        }
    }
}

fn fake_hellos_that_lie_fail_build_with_a_typed_error() {
    for script in ["bad_version", "names_claim_2_60", "result_before_hello"] {
        let built = within(script, move || fake_pool(script, None).map(|_| ()));
        match built {
            Err(Error::Wire(why)) => assert!(!why.is_empty()),
            other => panic!("{script}: {other:?}"),
        }
    }
}

fn fake_a_hello_with_absurd_counts_still_serves() {
    // The worker's own max_works and max_frame mean nothing to the parent.
    let p = fake_pool("absurd_counts", None).expect("the fake pool starts");
    let got = within("a call", move || p.call(&works::double, 21).wait());
    assert_eq!(got, Ok(42));
}

fn fake_bad_lengths_and_kinds_lose_the_worker_only() {
    for script in [
        "len_max",
        "len_too_short",
        "unknown_kind",
        "hello_twice",
        "stdout_garbage",
    ] {
        let dir = temp_dir(script);
        let p = fake_pool(script, Some(&dir)).expect("the fake pool starts");
        let (lied, after) = within(script, move || {
            let lied = p.call(&works::double, 1).wait();
            let after = p.call(&works::double, 2).wait();
            (lied, after)
        });
        assert!(
            matches!(&lied, Err(Error::WorkerLost(_))),
            "{script}: {lied:?}"
        );
        assert_eq!(after, Ok(4), "{script}: the replacement serves");
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn fake_a_forged_count_or_length_allocates_nothing() {
    let before = peak_kib();
    let dir = temp_dir("forged");
    let p = fake_pool("claims_2_60", None).expect("the fake pool starts");
    let claims = within("a result claiming 2^60 strings", move || {
        let claims = p.call(&works::split, "a b".to_string()).wait();
        let after = p.call(&works::double, 3).wait();
        (claims, after)
    });
    assert!(matches!(claims.0, Err(Error::Wire(_))), "{:?}", claims.0);
    assert_eq!(claims.1, Ok(6), "the worker that sent a bad value lives on");
    let p = fake_pool("big_then_exit", Some(&dir)).expect("the fake pool starts");
    let big = within("200 MiB declared, 1 MiB sent", move || {
        let big = p.call(&works::double, 1).wait();
        let after = p.call(&works::double, 2).wait();
        (big, after)
    });
    assert!(matches!(big.0, Err(Error::WorkerLost(_))), "{:?}", big.0);
    assert_eq!(big.1, Ok(4));
    let grown = peak_kib().saturating_sub(before);
    // The reader grows with what arrives (about 1 MiB, at most doubled), never with the
    // 200 MiB declared nor the 2^60 items claimed.
    assert!(grown < 48 << 10, "the peak grew by {grown} KiB");
    let _ = std::fs::remove_dir_all(dir);
}

fn fake_bad_status_and_trailing_bytes_are_wire_errors() {
    for script in ["bad_status", "trailing"] {
        let p = fake_pool(script, None).expect("the fake pool starts");
        let got = within(script, move || {
            let first = p.call(&works::double, 1).wait();
            let loads = p.loads();
            (first, loads)
        });
        assert!(
            matches!(got.0, Err(Error::Wire(_))),
            "{script}: {:?}",
            got.0
        );
        assert_eq!(got.1, vec![0], "{script}");
    }
}

fn fake_frames_dribbled_a_byte_at_a_time_arrive_whole() {
    let p = fake_pool("slow_partial", None).expect("a hello in 7-byte pieces is a hello");
    let got = within("results a byte at a time", move || {
        let hs: Vec<_> = (0..3u64).map(|i| p.call(&works::double, i)).collect();
        hs.into_iter().map(|h| h.wait()).collect::<Vec<_>>()
    });
    assert_eq!(got, vec![Ok(0), Ok(2), Ok(4)]);
}

fn fake_a_result_after_its_cancel_stays_cancelled() {
    let p = fake_pool("answer_after_cancel", None).expect("the fake pool starts");
    let got = within("a result that comes after its cancel", move || {
        let h = p.call(&works::nap, 60_000);
        let cancelled = h.cancel();
        let outcome = h.wait();
        // The fake answers the cancel with a result; it must change nothing.
        let next = p.call(&works::double, 5).wait();
        (cancelled, outcome, next, p.loads())
    });
    assert!(got.0, "cancel() of a running async call");
    assert_eq!(got.1, Err(Error::Cancelled));
    assert_eq!(got.2, Ok(10));
    assert_eq!(got.3, vec![0]);
}
