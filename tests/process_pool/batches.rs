//! Frames that travel in batches: a burst of calls leaves in a few writes, a map sends its
//! chunks in batches, and a worker answers what it read in one write. A batch is only a way
//! of writing: every frame in it is still checked against the maximum on its own, and a
//! worker that dies in the middle of one loses exactly the works it had.

use std::io::{Read, Write};
use std::process::Command;

use aplex::balance::RoundRobin;
use aplex::{Error, ProcessPool};

use super::{cases, hello_payload, lost, works, Cases};

/// This file's cases, in the order they run.
pub(crate) const CASES: Cases = cases![
    a_death_in_the_middle_of_a_map_batch_loses_only_that_workers_chunks,
    a_death_in_the_middle_of_a_burst_of_calls_never_hangs_one,
    a_burst_larger_than_the_maximum_frame_is_many_frames,
    a_map_batch_larger_than_the_maximum_frame_fails_only_the_chunk_over_it,
    a_result_batch_cut_short_delivers_the_whole_frames_only,
];

/// A worker dies on one item of a map's batch: the items of its chunk are lost, every other
/// item ends once (with its value, or lost with the worker), and the other worker's chunks
/// are untouched.
pub(crate) fn a_death_in_the_middle_of_a_map_batch_loses_only_that_workers_chunks() {
    let pool = ProcessPool::builder()
        .workers(2)
        .balancer(RoundRobin::new())
        .build(&works::WORKS)
        .unwrap();
    // 8 chunks of 8 items, sent as one batch and dealt in turn: chunk c goes to slot c % 2.
    let victim = 20; // in chunk 2
    let items: Vec<(u64, u64)> = (0..64).map(|i| (i, victim)).collect();
    let out: Vec<_> = pool.map(&works::die_at, items).chunk_size(8).collect();
    assert_eq!(out.len(), 64, "no item may go missing");
    for (i, r) in out.into_iter().enumerate() {
        let chunk = i / 8;
        match r {
            Ok(v) => {
                assert_eq!(v, 2 * i as u64);
                assert_ne!(chunk, 2, "item {i} ran after its worker died");
            }
            Err(e) => {
                lost(Err::<(), _>(e));
                assert_eq!(chunk % 2, 0, "item {i} was on the worker that lived");
            }
        }
    }
    // The slot got a new worker.
    let again: Vec<_> = pool
        .map(&works::double, 0..100)
        .chunk_size(8)
        .map(Result::unwrap)
        .collect();
    assert_eq!(again, (0..100).map(|i| 2 * i).collect::<Vec<_>>());
}

/// A worker dies in the middle of a burst of calls: its own call and, at most, the calls in
/// flight with it are lost; none hangs, each ends once, and the pool serves on.
pub(crate) fn a_death_in_the_middle_of_a_burst_of_calls_never_hangs_one() {
    let pool = ProcessPool::builder()
        .workers(1)
        .build(&works::WORKS)
        .unwrap();
    let before: Vec<_> = (0..500).map(|i| pool.call(&works::double, i)).collect();
    let dies = pool.call(&works::exit_now, 3);
    let after: Vec<_> = (500..1000).map(|i| pool.call(&works::double, i)).collect();
    // Lost by its exit status, even where a write found its pipe closed first.
    let why = lost(dies.wait());
    assert!(why.contains("exited with status 3"), "{why}");
    let mut lost_count = 0;
    for (i, h) in before.into_iter().chain(after).enumerate() {
        match h.wait() {
            Ok(v) => assert_eq!(v, 2 * i as u64),
            Err(Error::WorkerLost(why)) => {
                assert!(why.contains("exited with status 3"), "call {i}: {why}");
                lost_count += 1;
            }
            other => panic!("call {i}: unexpected {other:?}"),
        }
    }
    // At least the calls in flight with the dying one: those written with it in one batch.
    assert!(lost_count > 0);
    assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
}

/// The frames of a burst, and a worker's answers to it, leave in writes far larger than the
/// maximum frame: each frame is still under it, and the one frame over it is that call's
/// error alone.
pub(crate) fn a_burst_larger_than_the_maximum_frame_is_many_frames() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_frame(1024)
        .build(&works::WORKS)
        .unwrap();
    let first: Vec<_> = (0..1000).map(|i| pool.call(&works::double, i)).collect();
    let too_large = pool.call(&works::make_string, 5000);
    let second: Vec<_> = (1000..2000).map(|i| pool.call(&works::double, i)).collect();
    match too_large.wait() {
        Err(Error::Remote(msg)) => assert!(msg.contains("over the maximum"), "{msg}"),
        other => panic!("unexpected {other:?}"),
    }
    for (i, h) in first.into_iter().chain(second).enumerate() {
        assert_eq!(h.wait(), Ok(2 * i as u64));
    }
}

/// A map's batch is larger than the maximum frame; one chunk in it is over the maximum on its
/// own: that chunk's items are `Wire` errors, every other item comes back.
pub(crate) fn a_map_batch_larger_than_the_maximum_frame_fails_only_the_chunk_over_it() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_frame(4096)
        .build(&works::WORKS)
        .unwrap();
    let item = |i: usize| vec![i as u8; if i == 30 { 5000 } else { 100 }];
    // 16 chunks of 4 items (about 7 KiB) in one batch; chunk 7 holds the large item.
    let out: Vec<_> = pool
        .map(&works::echo_bytes, (0..64).map(item))
        .chunk_size(4)
        .collect();
    assert_eq!(out.len(), 64);
    for (i, r) in out.into_iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(v, item(i)),
            Err(Error::Wire(msg)) if i / 4 == 7 => {
                assert!(msg.contains("over the maximum"), "{msg}")
            }
            other => panic!("item {i}: unexpected {other:?}"),
        }
    }
}

/// The role "half_result_worker": a hand-written worker that reads three chunk frames, then
/// answers the first two whole and the third by half, in one write, and exits.
pub(crate) fn role_half_result_worker() {
    use aplex::wire::Wire;
    let names: Vec<String> = works::WORKS.names().iter().map(|n| n.to_string()).collect();
    let hello = hello_payload("aplex-worker", std::process::id(), names, 0, 0);
    let frame = |kind: u8, id: u64, payload: &[u8]| {
        let mut out = ((9 + payload.len()) as u32).to_le_bytes().to_vec();
        out.push(kind);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(payload);
        out
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&frame(2, 0, &hello)).unwrap();
    out.flush().unwrap();
    let mut input = std::io::stdin().lock();
    let mut answers = Vec::new();
    while answers.len() < 3 {
        let mut head = [0u8; 13];
        if input.read_exact(&mut head).is_err() {
            std::process::exit(0);
        }
        let len = u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; len - 9];
        input.read_exact(&mut payload).unwrap();
        match head[4] {
            4 => {}
            7 => std::process::exit(0), // shutdown
            _ => continue,              // the parent's hello
        }
        // Work index, count, then the items: answer OK, the count, each item doubled.
        let mut args = &payload[4..];
        let count = u64::decode(&mut args).unwrap();
        let mut result = vec![0u8];
        count.encode(&mut result);
        for _ in 0..count {
            result.push(0);
            (u64::decode(&mut args).unwrap() * 2).encode(&mut result);
        }
        let id = u64::from_le_bytes(head[5..13].try_into().unwrap());
        answers.push(frame(6, id, &result));
    }
    let mut bytes = [answers[0].as_slice(), answers[1].as_slice()].concat();
    bytes.extend_from_slice(&answers[2][..answers[2].len() / 2]);
    out.write_all(&bytes).unwrap();
    out.flush().unwrap();
    std::process::exit(0);
}

/// A worker's answer to a batch ends in the middle of a frame: the whole frames before it
/// count, the chunk cut short and the chunks not answered are lost with the worker.
pub(crate) fn a_result_batch_cut_short_delivers_the_whole_frames_only() {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("APLEX_TEST_ROLE", "half_result_worker");
    let pool = ProcessPool::builder()
        .workers(1)
        .command(cmd)
        .build(&works::WORKS)
        .unwrap();
    // 4 chunks of 4 items, in one batch to the one worker.
    let out: Vec<_> = pool.map(&works::double, 0..16).chunk_size(4).collect();
    assert_eq!(out.len(), 16, "no item may go missing");
    for (i, r) in out.into_iter().enumerate() {
        if i < 8 {
            assert_eq!(r, Ok(2 * i as u64), "item {i}");
        } else {
            lost(r);
        }
    }
}
