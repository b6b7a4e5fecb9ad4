//! `aplex::as_completed` and `aplex::wait_any`: outcomes in the order the works end, decided by
//! gates the tests open, never by timing.
#![cfg(feature = "helpers")]

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use aplex::sync::Event;
use aplex::time::timeout;
use aplex::{as_completed, block_on, wait_any, Error, Handle, ThreadPool};

mod expected_panics;
use expected_panics::expect_panics;

/// How long anything may take before a test fails instead of hanging.
const BOUND: Duration = Duration::from_secs(20);

/// `n` async works on `pool`, work *i* returning `i * 10` once gate *i* opens.
fn gated_works(pool: &ThreadPool, n: usize) -> (Vec<Arc<Event>>, Vec<Handle<usize>>) {
    let gates: Vec<_> = (0..n).map(|_| Arc::new(Event::new())).collect();
    let handles = gates
        .iter()
        .enumerate()
        .map(|(i, gate)| {
            let gate = Arc::clone(gate);
            pool.spawn(move || async move {
                let opened = timeout(BOUND, gate.wait()).await;
                assert!(opened.is_ok(), "gate {i} was never opened");
                i * 10
            })
        })
        .collect();
    (gates, handles)
}

#[test]
fn outcomes_come_in_the_order_the_gates_open() {
    let pool = ThreadPool::new(2);
    let (gates, handles) = gated_works(&pool, 5);
    let mut done = as_completed(handles);
    for i in [3, 0, 4, 1, 2] {
        gates[i].set();
        assert_eq!(Iterator::next(&mut done), Some((i, Ok(i * 10))));
    }
    assert_eq!(done.remaining(), 0);
    assert_eq!(Iterator::next(&mut done), None);
}

#[test]
fn the_async_stream_gives_the_same_order_and_does_not_block() {
    let pool = ThreadPool::new(2);
    let (gates, handles) = gated_works(&pool, 3);
    let mut done = as_completed(handles);
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    assert!(
        done.poll_next(&mut cx).is_pending(),
        "nothing has ended yet"
    );
    block_on(async {
        for i in [2, 0, 1] {
            gates[i].set();
            let next = timeout(BOUND, done.next()).await.expect("an outcome came");
            assert_eq!(next, Some((i, Ok(i * 10))));
        }
        assert_eq!(done.next().await, None);
    });
    assert_eq!(done.poll_next(&mut cx), Poll::Ready(None));
}

#[test]
fn errors_come_out_as_outcomes_with_their_index() {
    expect_panics(&["as_completed test panic"]);
    let pool = ThreadPool::new(1);
    let (gates, mut handles) = gated_works(&pool, 1);
    handles.push(pool.submit(|| -> usize { panic!("as_completed test panic") }));
    assert!(handles[0].cancel());
    let mut outcomes: Vec<_> = as_completed(handles).collect();
    outcomes.sort_by_key(|(i, _)| *i);
    assert_eq!(outcomes[0], (0, Err(Error::Cancelled)));
    assert_eq!(
        outcomes[1],
        (1, Err(Error::Panicked("as_completed test panic".into())))
    );
    drop(gates);
}

#[test]
fn finished_handles_come_out_in_input_order() {
    // One worker runs plain works one after the other: once the last one's outcome is in,
    // the four before it have theirs.
    let pool = ThreadPool::new(1);
    let handles: Vec<_> = (0..4).map(|i| pool.submit(move || i)).collect();
    assert_eq!(pool.submit(|| 4).wait(), Ok(4));
    assert!(handles.iter().all(|h| h.is_finished()));
    let order: Vec<_> = as_completed(handles).map(|(i, _)| i).collect();
    assert_eq!(order, [0, 1, 2, 3]);
}

#[test]
fn many_waiting_handles_each_come_out_once() {
    let pool = ThreadPool::new(2);
    let (gates, handles) = gated_works(&pool, 200);
    let mut done = as_completed(handles);
    for i in (0..200).rev() {
        gates[i].set();
        assert_eq!(Iterator::next(&mut done), Some((i, Ok(i * 10))));
    }
    assert_eq!(Iterator::next(&mut done), None);
}

#[test]
fn wait_any_returns_the_first_and_the_rest_in_input_order() {
    let pool = ThreadPool::new(2);
    let (gates, handles) = gated_works(&pool, 4);
    gates[2].set();
    let (index, outcome, rest) = wait_any(handles).expect("four handles");
    assert_eq!((index, outcome), (2, Ok(20)));
    assert_eq!(rest.len(), 3);
    for gate in &gates {
        gate.set();
    }
    let values: Vec<_> = rest.into_iter().map(|h| h.wait().unwrap()).collect();
    assert_eq!(values, [0, 10, 30]);
}

#[test]
fn wait_any_of_nothing_is_none() {
    assert!(wait_any(Vec::<Handle<u8>>::new()).is_none());
    assert_eq!(as_completed(Vec::<Handle<u8>>::new()).count(), 0);
}

#[test]
fn into_remaining_gives_back_the_unfinished_handles() {
    let pool = ThreadPool::new(2);
    let (gates, handles) = gated_works(&pool, 3);
    let mut done = as_completed(handles);
    gates[1].set();
    assert_eq!(Iterator::next(&mut done), Some((1, Ok(10))));
    let rest = done.into_remaining();
    assert_eq!(rest.len(), 2);
    gates[0].set();
    gates[2].set();
    let values: Vec<_> = rest.into_iter().map(|h| h.wait().unwrap()).collect();
    assert_eq!(values, [0, 20]);
}

#[test]
fn as_completed_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<aplex::AsCompleted<String>>();
}
