//! The wire format at the seams `tests/wire.rs` does not reach: values at their edges across a
//! real worker, a user decode that panics halfway through a nested value (the decode budget
//! lives in a thread-local: the unwind must give it back whole), a user decode that nests a
//! `from_bytes` of its own, and every truncation and byte flip of a nested user value.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use aplex::wire::{Wire, WireError, MAX_DEPTH, MAX_ZERO_SIZED_LEN};
use aplex::ProcessPool;

use crate::works::{works, Edges, Order, State, Touchy};
use crate::{case, within, Case};

pub(crate) fn cases() -> Vec<Case> {
    vec![
        case(
            "wire_edge_values_cross_a_worker_bit_for_bit",
            wire_edge_values_cross_a_worker_bit_for_bit,
        ),
        case(
            "wire_a_panicking_user_decode_leaves_the_budget_whole",
            wire_a_panicking_user_decode_leaves_the_budget_whole,
        ),
        case(
            "wire_a_user_decode_may_nest_from_bytes",
            wire_a_user_decode_may_nest_from_bytes,
        ),
        case(
            "wire_every_cut_and_byte_flip_of_a_user_value",
            wire_every_cut_and_byte_flip_of_a_user_value,
        ),
    ]
}

fn edges() -> Edges {
    Edges {
        f64s: vec![
            f64::from_bits(0x7FF8_0000_0000_1234), // a NaN with a payload
            f64::from_bits(0xFFF0_0000_0000_0001), // a signalling NaN, negative
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 2.0, // subnormal
            f64::MAX,
        ],
        f32s: vec![f32::from_bits(0x7FC0_0042), -0.0, f32::MIN],
        wide: (u128::MAX, i128::MIN, i64::MIN, usize::MAX, isize::MIN),
        text: (String::new(), "nul\0 é 𝄞".to_string(), char::MAX, '\0'),
        maybe: vec![None, Some(Ok(true)), Some(Ok(false)), Some(Err(()))],
        spans: vec![Duration::ZERO, Duration::MAX, Duration::new(1, 999_999_999)],
        nested: vec![vec![], vec![vec![], vec![vec![], vec![0, 255]]]],
    }
}

fn bits(e: &Edges) -> (Vec<u64>, Vec<u32>) {
    (
        e.f64s.iter().map(|f| f.to_bits()).collect(),
        e.f32s.iter().map(|f| f.to_bits()).collect(),
    )
}

fn wire_edge_values_cross_a_worker_bit_for_bit() {
    let p = ProcessPool::builder()
        .workers(1)
        .build(&works::WORKS)
        .expect("the pool starts");
    let back = within("edge values through a worker", move || {
        p.call(&works::echo_edges, edges()).wait()
    })
    .expect("the values come back");
    let sent = edges();
    assert_eq!(
        bits(&back),
        bits(&sent),
        "float bits, NaN payloads and signs"
    );
    assert_eq!(back.wide, sent.wide);
    assert_eq!(back.text, sent.text);
    assert_eq!(back.maybe, sent.maybe);
    assert_eq!(back.spans, sent.spans);
    assert_eq!(back.nested, sent.nested);
}

/// What a decode that needs the whole budget gives on this thread: many elements that take no
/// bytes, and a value nested as deep as allowed.
fn full_budget_decodes() -> (Result<usize, WireError>, Result<usize, WireError>) {
    let units = vec![(); MAX_ZERO_SIZED_LEN];
    let units = Vec::<()>::from_bytes(&units.to_bytes()).map(|v| v.len());
    // `Box`es count as levels: the deepest a Box chain may go.
    let mut deep = vec![1u8; MAX_DEPTH - 1]; // Some, Some, …
    deep.push(0u8); // None
    let depth = Chain::from_bytes(&deep).map(|c| c.depth());
    (units, depth)
}

/// `Option<Box<Chain>>`: one level per link.
#[derive(Debug)]
struct Chain(Option<Box<Chain>>);

impl Chain {
    fn depth(&self) -> usize {
        let mut n = 0;
        let mut at = self;
        while let Some(next) = &at.0 {
            n += 1;
            at = next;
        }
        n
    }
}

impl Wire for Chain {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        Option::decode(input).map(Chain)
    }
}

fn wire_a_panicking_user_decode_leaves_the_budget_whole() {
    let fresh = within("a fresh thread's full budget", full_budget_decodes);
    assert_eq!(fresh.0, Ok(MAX_ZERO_SIZED_LEN));
    assert!(fresh.1.is_ok(), "{:?}", fresh.1);
    let after = within("the budget after panics mid-decode", || {
        // A panic three levels down, inside from_bytes and inside a bare decode.
        let bad = vec![vec![vec![Touchy(1), Touchy(13)]]].to_bytes();
        for _ in 0..3 {
            let r = catch_unwind(AssertUnwindSafe(|| {
                Vec::<Vec<Vec<Touchy>>>::from_bytes(&bad)
            }));
            assert!(r.is_err(), "the decode panics");
            let r = catch_unwind(AssertUnwindSafe(|| {
                Vec::<Vec<Vec<Touchy>>>::decode(&mut &bad[..])
            }));
            assert!(r.is_err(), "the decode panics");
        }
        full_budget_decodes()
    });
    assert_eq!(
        after, fresh,
        "the unwinds gave every level and reservation back"
    );
}

/// A message whose payload is itself a message, decoded with its own `from_bytes`.
#[derive(Debug, PartialEq)]
struct Envelope(Order);

impl Wire for Envelope {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.to_bytes().encode(out);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let inner = Vec::<u8>::decode(input)?;
        Order::from_bytes(&inner).map(Envelope)
    }
}

fn order() -> Order {
    Order {
        id: u64::MAX,
        lines: vec![("a".to_string(), 1), ("ß".to_string(), 0)],
        note: Some(String::new()),
        state: State::Shipped {
            at: 3,
            parts: vec![1, 2],
        },
    }
}

fn wire_a_user_decode_may_nest_from_bytes() {
    let envelopes = vec![Envelope(order()), Envelope(order())];
    let bytes = envelopes.to_bytes();
    assert_eq!(Vec::<Envelope>::from_bytes(&bytes), Ok(envelopes));
    // An inner message with bytes after it is an error, not a panic.
    let mut inner = order().to_bytes();
    inner.push(0);
    let bytes = vec![inner].to_bytes();
    assert!(Vec::<Envelope>::from_bytes(&bytes).is_err());
    // And the thread's budget is whole after both.
    let units = vec![(); MAX_ZERO_SIZED_LEN];
    assert_eq!(Vec::<()>::from_bytes(&units.to_bytes()), Ok(units));
}

fn wire_every_cut_and_byte_flip_of_a_user_value() {
    let values = vec![
        order(),
        Order {
            note: None,
            state: State::Open,
            ..order()
        },
    ];
    let bytes = values.to_bytes();
    let decode = |b: &[u8]| catch_unwind(AssertUnwindSafe(|| Vec::<Order>::from_bytes(b)));
    for cut in 0..bytes.len() {
        match decode(&bytes[..cut]) {
            Ok(Err(_)) => {}
            Ok(Ok(v)) => panic!("a cut at {cut} decoded: {v:?}"),
            Err(_) => panic!("a cut at {cut} panicked"),
        }
    }
    for at in 0..bytes.len() {
        for flip in [0x00, 0x01, 0x7F, 0x80, 0xFF] {
            let mut b = bytes.clone();
            b[at] = flip;
            match decode(&b) {
                // A flip that still decodes gives a value that encodes back to those bytes.
                Ok(Ok(v)) => assert_eq!(v.to_bytes(), b, "byte {at} = {flip:#x}"),
                Ok(Err(_)) => {}
                Err(_) => panic!("byte {at} = {flip:#x} panicked"),
            }
        }
    }
}
