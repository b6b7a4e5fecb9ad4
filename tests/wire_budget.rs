//! `aplex::wire` under forged input: what one decode may allocate, how long it may run and how
//! much stack it may take, whatever the bytes. Each test is the minimal input of one known attack.
//!
//! A counting allocator (in `wire_common`) measures what the decoding thread allocates.

#![allow(missing_docs)]
#![cfg(feature = "process")]

mod wire_common;

use aplex::wire::*;
use wire_common::{allowed, measure, Cost};

// ---- The forged inputs --------------------------------------------------------------------------

aplex::wire_type! {
    /// Nests as deep as the input says, through a Vec.
    #[derive(Debug)]
    struct Nest(Vec<Nest>);
}

/// `levels` Vec<Nest> counts, each claiming every byte after it, then zeros up to `len` bytes:
/// every level reserves all it may before the innermost one fails.
fn nested_failing(levels: usize, len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    for level in 0..levels {
        let left = len - 8 * (level + 1);
        bytes.extend_from_slice(&(left as u64).to_le_bytes());
    }
    bytes.resize(len, 0xFF); // counts of u64::MAX: the first one read fails
    bytes
}

/// An outer count, then inner counts each claiming every byte after it: a
/// `Vec<Vec<Box<()>>>` whose inner elements take no bytes at all.
fn claim_all_left(len: usize) -> Vec<u8> {
    let mut bytes = ((len / 8 - 1) as u64).to_le_bytes().to_vec();
    while bytes.len() < len {
        let left = len - bytes.len() - 8;
        bytes.extend_from_slice(&(left as u64).to_le_bytes());
    }
    bytes
}

/// An outer count, then inner counts of [`MAX_ZERO_SIZED_LEN`] each: a `Vec<Vec<()>>`.
fn zero_sized_in_every_inner(len: usize) -> Vec<u8> {
    let mut bytes = ((len / 8 - 1) as u64).to_le_bytes().to_vec();
    while bytes.len() < len {
        bytes.extend_from_slice(&(MAX_ZERO_SIZED_LEN as u64).to_le_bytes());
    }
    bytes
}

aplex::wire_type! {
    /// Eight KiB inline per level: a deep value of it takes a lot of stack to decode.
    #[derive(Debug)]
    enum Heavy {
        End,
        More([u64; 1024], Box<Heavy>),
    }
}

/// `levels` `Heavy::More` tags and payloads, then `End`.
fn heavy(levels: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..levels {
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&[7; 8 * 1024]);
    }
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes
}

// ---- Regressions ---------------------------------------------------------------------------------

#[test]
fn nested_sequences_share_one_reservation_budget() {
    // Before the budget, each of the 128 levels reserved the whole input: 128 times its length.
    let len = 64 << 10;
    let (result, cost) = measure::<Nest>(&nested_failing(MAX_DEPTH + 1, len));
    assert_eq!(result.err(), Some(WireError::TooDeep));
    assert!(cost.peak <= 3 * len, "{len} bytes of input: {cost:?}");
}

#[test]
fn elements_that_take_no_bytes_share_one_budget() {
    // Before, every inner count could claim every byte left: 4 KiB decoded to 8 MB.
    let len = 4 << 10;
    let (result, cost) = measure::<Vec<Vec<Box<()>>>>(&claim_all_left(len));
    assert!(
        matches!(result, Err(WireError::LengthTooLarge { .. })),
        "{result:?}"
    );
    assert!(cost.peak <= allowed(len), "{len} bytes of input: {cost:?}");

    // Up to the budget, they decode. (A count of them is bounded by the bytes left as well, as
    // for any element type that is not zero-sized.)
    let lengths = |bytes: &[u8]| Vec::<Vec<Box<()>>>::from_bytes(bytes).map(|v| v.len());
    let mut fits = vec![Vec::<Box<()>>::new(); 2];
    fits.push(vec![Box::new(()); MAX_ZERO_SIZED_LEN]);
    let mut bytes = fits.to_bytes();
    bytes.resize(bytes.len() + MAX_ZERO_SIZED_LEN, 0); // a tail of empty inner Vecs
    let mut input = &bytes[..];
    assert_eq!(
        Vec::<Vec<Box<()>>>::decode(&mut input).map(|v| v.len()),
        Ok(3)
    );
    fits.push(vec![Box::new(())]);
    bytes = fits.to_bytes();
    bytes.resize(bytes.len() + MAX_ZERO_SIZED_LEN, 0);
    assert!(matches!(
        lengths(&bytes),
        Err(WireError::LengthTooLarge { .. })
    ));
}

#[test]
fn zero_sized_elements_share_one_budget() {
    // Before, each inner Vec<()> could hold MAX_ZERO_SIZED_LEN: 64 KiB decoded to 2^29 units,
    // for seconds. Now their sum is bounded, and the input is refused.
    let (result, _) = measure::<Vec<Vec<()>>>(&zero_sized_in_every_inner(64 << 10));
    assert_eq!(
        result.err(), // not the value: it would print 2^29 units
        Some(WireError::LengthTooLarge {
            length: MAX_ZERO_SIZED_LEN as u64,
            limit: 0
        })
    );

    let fits = vec![vec![(); MAX_ZERO_SIZED_LEN / 2]; 2];
    assert!(Vec::<Vec<()>>::from_bytes(&fits.to_bytes()).is_ok());
    // Arrays count too, and maps and sets.
    let arrays = vec![[(); 1024]; MAX_ZERO_SIZED_LEN / 1024 - 1];
    assert!(Vec::<[(); 1024]>::from_bytes(&arrays.to_bytes()).is_ok());
    let one_more = vec![[(); 1024]; MAX_ZERO_SIZED_LEN / 1024 + 1];
    assert!(matches!(
        Vec::<[(); 1024]>::from_bytes(&one_more.to_bytes()),
        Err(WireError::LengthTooLarge { .. })
    ));
    let sets = vec![std::collections::BTreeSet::from([()]); MAX_ZERO_SIZED_LEN + 1];
    assert!(matches!(
        Vec::<std::collections::BTreeSet<()>>::from_bytes(&sets.to_bytes()),
        Err(WireError::LengthTooLarge { .. })
    ));
}

#[test]
fn separate_decodes_have_separate_budgets() {
    // A budget spent by one decode, or by one that failed, is not carried into the next.
    let full = vec![(); MAX_ZERO_SIZED_LEN].to_bytes();
    for _ in 0..3 {
        assert!(Vec::<()>::from_bytes(&full).is_ok());
        let mut input = &full[..];
        assert!(Vec::<()>::decode(&mut input).is_ok());
        assert!(Vec::<Vec<()>>::from_bytes(&zero_sized_in_every_inner(64)).is_err());
    }
}

#[test]
fn valid_nested_values_are_reserved_exactly() {
    // The budget bounds room reserved ahead of the input, not room for elements that arrive.
    let value: Vec<Vec<Vec<u64>>> = (0..20)
        .map(|i| (0..i).map(|j| (0..j * 3).collect()).collect())
        .collect();
    let decoded = Vec::<Vec<Vec<u64>>>::from_bytes(&value.to_bytes()).unwrap();
    assert_eq!(decoded, value);
    assert_eq!(decoded.capacity(), decoded.len());
    for middle in &decoded {
        assert_eq!(middle.capacity(), middle.len());
        for inner in middle {
            assert_eq!(inner.capacity(), inner.len());
        }
    }
}

#[test]
fn a_recursive_type_with_large_levels_stops_before_the_stack_does() {
    // 8 KiB inline per level: before, a 2 MiB thread overflowed its stack (and the process
    // aborted) some 40 levels deep in a debug build, long before MAX_DEPTH.
    let levels = MAX_NESTED_BYTES / std::mem::size_of::<Heavy>();
    let (fits, forged) = (heavy(levels), heavy(MAX_DEPTH + 1));
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            assert!(Heavy::from_bytes(&fits).is_ok());
            assert_eq!(Heavy::from_bytes(&forged).err(), Some(WireError::TooDeep));
        })
        .unwrap()
        .join()
        .unwrap();
}

// ---- Figures, for reports ----------------------------------------------------------------------

/// Prints one line of [`figures`].
fn report<T>(name: &str, len: usize, (result, cost): (Result<T, WireError>, Cost)) {
    eprintln!(
        "{name}: input {len} B, peak {} B ({:.1}x), {:?}, {:?}",
        cost.peak,
        cost.peak as f64 / len as f64,
        cost.took,
        result.err()
    );
}

/// The known attacks at their full sizes: what each one allocates and how long it takes. Prints a
/// table; run with `cargo test --test wire_budget -- --ignored --nocapture`.
#[test]
#[ignore = "prints figures; takes seconds in a debug build without the budget"]
fn figures() {
    let len = 16 << 20;
    let nested = measure::<Nest>(&nested_failing(MAX_DEPTH + 1, len));
    report("Nest(Vec<Nest>), 129 levels, failing", len, nested);
    for len in [4 << 10, 16 << 10] {
        let claims = measure::<Vec<Vec<Box<()>>>>(&claim_all_left(len));
        report("Vec<Vec<Box<()>>>, every count claims all", len, claims);
    }
    let len = 64 << 10;
    let units = measure::<Vec<Vec<()>>>(&zero_sized_in_every_inner(len));
    report("Vec<Vec<()>>, every count at the cap", len, units);
}
