//! What a healthy pool does: values of every wire type cross, panics and prints stay in
//! their work, maps keep order, workers are recycled, and `in_process` uses a global pool.

use super::*;

/// This file's cases, in the order they run.
pub(crate) const CASES: Cases = cases![
    round_trip_of_every_wire_type,
    a_panic_is_panicked_and_the_worker_lives_on,
    println_in_a_work_does_not_corrupt_the_stream,
    frames_over_the_maximum_are_typed_errors,
    a_64_mib_round_trip_does_not_stall_other_workers,
    map_keeps_order_and_chunks,
    map_awaited_or_iterated_gives_every_item,
    max_works_per_child_recycles_workers,
    in_process_runs_a_registered_work_on_the_global_pool,
];

pub(crate) fn round_trip_of_every_wire_type() {
    let pool = pool(2);
    let numbers = (
        1u8,
        2u16,
        3u32,
        u64::MAX,
        u128::MAX - 5,
        -8i8,
        i64::MIN,
        -3isize,
    );
    assert_eq!(pool.call(&works::echo_numbers, numbers).wait(), Ok(numbers));
    let misc = (
        1.5f32,
        f64::MAX,
        true,
        'é',
        (),
        "héllo".to_string(),
        Duration::new(3, 7),
        [1, 2, 3],
    );
    assert_eq!(pool.call(&works::echo_misc, misc.clone()).wait(), Ok(misc));
    let containers = (
        vec!["a".to_string(), String::new()],
        Some(-4i16),
        Err::<u8, String>("no".to_string()),
        Box::new(9u32),
        HashMap::from([("k".to_string(), 1u32), ("l".to_string(), 2)]),
        BTreeMap::from([(1u8, vec![1u8, 2]), (2, vec![])]),
    );
    assert_eq!(
        pool.call(&works::echo_containers, containers.clone())
            .wait(),
        Ok(containers)
    );
    assert_eq!(pool.call(&works::double, 21).wait(), Ok(42));
    assert_eq!(aplex::block_on(pool.call(&works::nap, 3)), Ok(3));
}

pub(crate) fn a_panic_is_panicked_and_the_worker_lives_on() {
    let pool = pool(1);
    let before = pool.worker_pids();
    assert_eq!(
        pool.call(&works::boom, 7).wait(),
        Err(Error::Panicked("boom 7".to_string()))
    );
    assert_eq!(pool.call(&works::double, 2).wait(), Ok(4));
    assert_eq!(pool.worker_pids(), before);
}

pub(crate) fn println_in_a_work_does_not_corrupt_the_stream() {
    let pool = pool(1);
    for i in 0..20 {
        let s = format!("line {i}");
        assert_eq!(pool.call(&works::shout, s.clone()).wait(), Ok(s));
    }
    assert_eq!(pool.call(&works::double, 5).wait(), Ok(10));
}

pub(crate) fn frames_over_the_maximum_are_typed_errors() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_frame(4096)
        .build(&works::WORKS)
        .unwrap();
    match pool.call(&works::echo_bytes, vec![0; 5000]).wait() {
        Err(Error::Wire(msg)) => assert!(msg.contains("over the maximum"), "{msg}"),
        other => panic!("unexpected {other:?}"),
    }
    match pool.call(&works::make_string, 5000).wait() {
        Err(Error::Remote(msg)) => assert!(msg.contains("over the maximum"), "{msg}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        pool.call(&works::make_string, 10).wait().map(|s| s.len()),
        Ok(10)
    );
}

pub(crate) fn a_64_mib_round_trip_does_not_stall_other_workers() {
    let pool = ProcessPool::builder()
        .workers(2)
        .balancer(KeyAffinity::new())
        .build(&works::WORKS)
        .unwrap();
    // Find two hints that land on different workers.
    let on = |hint: u64| pool.call_with(hint, &works::pid, ()).wait().unwrap();
    let big_hint = 0;
    let small_hint = (1..100).find(|&h| on(h) != on(big_hint)).unwrap();
    // A String: its bytes are copied in bulk, so a debug build moves 64 MiB in well under a
    // second (a `Vec<u8>` is encoded byte by byte).
    let data: String = "0123456789abcdef".repeat(4 << 20);
    let big = pool.call_with(big_hint, &works::echo_string, data.clone());
    let start = Instant::now();
    // Small calls on the other worker come back while the big one is still in flight.
    let mut small_calls_during = 0;
    while !big.is_finished() && start.elapsed() < Duration::from_secs(60) {
        assert_eq!(pool.call_with(small_hint, &works::double, 1).wait(), Ok(2));
        if !big.is_finished() {
            small_calls_during += 1;
        }
    }
    assert_eq!(big.wait().map(|s| s == data), Ok(true));
    assert!(
        small_calls_during > 0,
        "every small call waited for the big one"
    );
}

pub(crate) fn map_keeps_order_and_chunks() {
    let pool = pool(2);
    let out: Vec<u64> = pool
        .map(&works::double, 0..10_000)
        .chunk_size(256)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..10_000).map(|x| x * 2).collect::<Vec<_>>());
    let naps: Vec<_> = pool.map(&works::nap, [30, 1, 20, 2]).collect();
    assert_eq!(naps, vec![Ok(30), Ok(1), Ok(20), Ok(2)]);
    let mixed: Vec<_> = pool.map(&works::boom, [1, 2]).chunk_size(2).collect();
    assert_eq!(
        mixed,
        vec![
            Err(Error::Panicked("boom 1".into())),
            Err(Error::Panicked("boom 2".into()))
        ]
    );
}

/// The async `next` and the blocking `Iterator::next` yield the same items, for every chunk
/// size, with and without a timeout, and mixed on one map (the awaited map once gave none).
pub(crate) fn map_awaited_or_iterated_gives_every_item() {
    let pool = pool(2);
    for chunk in [1usize, 2, 3, 64, 1024] {
        for len in [0u64, 1, 10, 1500] {
            for timeout in [None, Some(Duration::from_secs(120)), Some(Duration::MAX)] {
                let expected: Vec<Result<u64, Error>> = (0..len).map(|x| Ok(x * 2)).collect();
                let make = || {
                    let map = pool.map(&works::double, 0..len).chunk_size(chunk);
                    match timeout {
                        Some(t) => map.timeout(t),
                        None => map,
                    }
                };
                let what = format!("chunk {chunk}, {len} items, timeout {timeout:?}");
                let iterated: Vec<_> = make().collect();
                assert_eq!(iterated, expected, "iterated: {what}");
                let mut map = make();
                let awaited = aplex::block_on(async {
                    let mut out = Vec::new();
                    while let Some(r) = map.next().await {
                        out.push(r);
                    }
                    out
                });
                assert_eq!(awaited, expected, "awaited: {what}");
                let mut map = make();
                let mut mixed = Vec::new();
                for i in 0.. {
                    let next = if i % 2 == 0 {
                        Iterator::next(&mut map)
                    } else {
                        aplex::block_on(map.next())
                    };
                    match next {
                        Some(r) => mixed.push(r),
                        None => break,
                    }
                }
                assert_eq!(mixed, expected, "mixed: {what}");
            }
        }
    }
}

pub(crate) fn max_works_per_child_recycles_workers() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_works_per_child(5)
        .build(&works::WORKS)
        .unwrap();
    let pids: std::collections::HashSet<u32> = (0..12)
        .map(|_| pool.call(&works::pid, ()).wait().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
}

pub(crate) fn in_process_runs_a_registered_work_on_the_global_pool() {
    let config = aplex::global::GlobalConfig {
        processes: Some(2),
        ..Default::default()
    };
    aplex::global::configure(config).unwrap();
    assert_eq!(aplex::in_process(&works::double, 21).wait(), Ok(42));
    // Async works too, awaited from block_on; both run in other processes.
    let (nap, pid) = aplex::block_on(async {
        let nap = aplex::in_process(&works::nap, 5).await;
        let pid = aplex::in_process(&works::pid, ()).await;
        (nap, pid)
    });
    assert_eq!(nap, Ok(5));
    assert_ne!(pid, Ok(std::process::id()));
    // Configuring after the start is refused; shutting down reaps the workers.
    assert!(aplex::global::configure(aplex::global::GlobalConfig::default()).is_err());
    aplex::global::shutdown();
    assert_eq!(
        aplex::in_process(&works::double, 1).wait(),
        Err(Error::ShutDown)
    );
}
