//! `ThreadPool::map`: order, chunk sizes, timeouts, endless input, panicking items.

use super::*;

#[test]
fn map_keeps_input_order_with_random_delays() {
    const N: u64 = stress(200) as u64;
    let pool = ThreadPool::new(2);
    let out: Vec<u64> = pool
        .map(
            |i: u64| {
                let jitter = (i.wrapping_mul(2654435761) >> 7) % 3;
                std::thread::sleep(Duration::from_millis(jitter));
                i * 2
            },
            0..N,
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(out, (0..N).map(|i| i * 2).collect::<Vec<_>>());
}

#[test]
fn map_chunk_sizes_give_identical_results() {
    const N: u32 = stress(5000) as u32;
    let pool = ThreadPool::new(2);
    let one: Vec<_> = pool
        .map(|x: u32| x.wrapping_mul(31) ^ 5, 0..N)
        .chunk_size(1)
        .collect();
    let big: Vec<_> = pool
        .map(|x: u32| x.wrapping_mul(31) ^ 5, 0..N)
        .chunk_size(1000)
        .collect();
    let odd: Vec<_> = pool
        .map(|x: u32| x.wrapping_mul(31) ^ 5, 0..N)
        .chunk_size(7)
        .collect();
    assert_eq!(one.len(), N as usize);
    assert_eq!(one, big);
    assert_eq!(one, odd);
}

#[test]
#[should_panic(expected = "chunk size must be at least 1")]
fn a_zero_chunk_size_panics() {
    expect_panics(&["aplex::Map::chunk_size"]);
    let pool = ThreadPool::new(1);
    let _ = pool.map(|x: u32| x, 0..1).chunk_size(0);
}

/// The quick items are read under a far deadline (a busy machine cannot make them late); then
/// a near one is set while a held item runs, which only its timer can end: no race either way.
#[test]
fn map_timeout_yields_timed_out_then_stops_and_the_rest_never_runs() {
    let pool = ThreadPool::new(1);
    let ran = Arc::new(AtomicUsize::new(0));
    let held = Gate::default();
    let (r, h) = (ran.clone(), held.clone());
    let mut out = pool
        .map(
            move |slow: bool| {
                r.fetch_add(1, Ordering::SeqCst);
                if slow {
                    h.wait();
                }
                slow
            },
            vec![false, false, true, true, true, true],
        )
        .timeout(BOUND);
    assert_eq!(Iterator::next(&mut out), Some(Ok(false)));
    assert_eq!(Iterator::next(&mut out), Some(Ok(false)));
    // The first slow item holds the worker before the near deadline is set: a worker slow to
    // take it would otherwise see it cancelled unstarted.
    eventually("the first slow item runs", || {
        ran.load(Ordering::SeqCst) == 3
    });
    let mut out = out.timeout(Duration::from_millis(20));
    assert_eq!(Iterator::next(&mut out), Some(Err(Error::TimedOut)));
    assert_eq!(Iterator::next(&mut out), None);
    held.open();
    drop(out);
    pool.shutdown(); // waits for the one running item
    assert_eq!(ran.load(Ordering::SeqCst), 3, "cancelled items ran");
}

#[test]
fn map_async_next_with_timeout() {
    let pool = ThreadPool::new(2);
    let held = Gate::default();
    let h = held.clone();
    let got = aplex::block_on(async {
        let mut out = pool
            .map(
                move |slow: bool| {
                    if slow {
                        h.wait();
                    }
                },
                vec![false, false, true],
            )
            .timeout(BOUND);
        let mut got = vec![out.next().await, out.next().await];
        let mut out = out.timeout(Duration::from_millis(20));
        got.push(out.next().await);
        got.push(out.next().await);
        got
    });
    held.open();
    assert_eq!(
        got,
        vec![Some(Ok(())), Some(Ok(())), Some(Err(Error::TimedOut)), None]
    );
}

#[test]
fn map_over_an_endless_iterator_stops_when_the_consumer_does() {
    let pool = ThreadPool::new(2);
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let input = (0u64..).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let first: Vec<u64> = pool
        .map(|x: u64| x + 1, input)
        .take(10)
        .map(Result::unwrap)
        .collect();
    assert_eq!(first, (1..=10).collect::<Vec<_>>());
    assert!(
        pulled.load(Ordering::SeqCst) < 100_000,
        "the map pulled too far ahead"
    );
}

#[test]
fn a_panicking_item_fails_only_itself() {
    expect_panics(&["item three"]);
    let pool = ThreadPool::new(2);
    let out: Vec<_> = pool
        .map(|x: u32| if x == 3 { panic!("item three") } else { x }, 0..6)
        .chunk_size(4)
        .collect();
    assert_eq!(out[3], Err(Error::Panicked("item three".into())));
    assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 5);
}
