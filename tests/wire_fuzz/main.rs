//! Fuzzes every `Wire` impl of the crate as an attacker would: random bytes, and valid encodings
//! damaged (changed bytes, forged counts, cuts, splices), decoded as every type. Each decode must
//! give a value or a typed error, without a panic, holding at most 64 bytes per input byte and a
//! mebibyte, within ten seconds (a hang catcher only: a decode takes microseconds, but a busy
//! machine can stall one of thousands for a second); random values must round-trip exactly.
//!
//! Bounded to a few seconds by default; `APLEX_FUZZ_ITERS=N` runs N rounds over every type and
//! prints what it did.

#![allow(missing_docs)]
#![cfg(feature = "process")]

mod values;
#[path = "../wire_common/mod.rs"]
mod wire_common;

use aplex::wire::*;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use values::*;
use wire_common::{allowed, measure};

// ---- Damage -------------------------------------------------------------------------------------

/// Damages an encoding as an attacker would: changed bytes, forged counts (the bytes left, one
/// more, the zero-sized cap, the largest), cuts, insertions, and splices of other encodings.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, others: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(8) {
            0 | 1 if at < bytes.len() => bytes[at] = rng.next() as u8,
            2 | 3 => {
                let left = bytes.len().saturating_sub(at + 8) as u64;
                let counts = [
                    left,
                    left + 1,
                    left / 2,
                    MAX_ZERO_SIZED_LEN as u64,
                    u64::MAX,
                    rng.below(1 << 20) as u64,
                ];
                let count = counts[rng.below(counts.len())].to_le_bytes();
                let end = (at + 8).min(bytes.len());
                bytes[at..end].copy_from_slice(&count[..end - at]);
            }
            4 => bytes.truncate(at),
            5 => bytes.insert(at, rng.byte()),
            6 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {
                let other = &others[rng.below(others.len())];
                let from = rng.below(other.len() + 1);
                let to = from + rng.below(other.len() - from + 1);
                bytes.splice(at..at, other[from..to].iter().copied());
            }
        }
    }
}

/// Random bytes: uniform, mostly small, a forged count in front of a few of them, or counts all
/// the way, each claiming every byte after it (or the zero-sized cap): what multiplies a nested
/// decoder's work if anything does.
fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let longest = if rng.below(20) == 0 { 4096 } else { 64 };
    let len = rng.below(longest);
    match rng.below(4) {
        0 => (0..len).map(|_| rng.next() as u8).collect(),
        1 => (0..len).map(|_| rng.byte()).collect(),
        2 => {
            let mut bytes = (len as u64).to_le_bytes().to_vec();
            bytes.extend((0..len).map(|_| rng.byte()));
            bytes
        }
        _ => {
            let len = [256, 4096, 64 << 10][rng.below(3)];
            let claim = rng.below(3);
            let mut bytes = Vec::with_capacity(len);
            while bytes.len() + 8 <= len {
                let left = (len - bytes.len() - 8) as u64;
                let count = match claim {
                    0 => left,
                    1 => MAX_ZERO_SIZED_LEN as u64,
                    _ => rng.below(3) as u64,
                };
                bytes.extend_from_slice(&count.to_le_bytes());
            }
            bytes
        }
    }
}

// ---- The loop -----------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Tally {
    decodes: usize,
    values: usize,
    round_trips: usize,
}

/// An input as a failure shows it: its length and first bytes.
fn show(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(48)];
    format!("{} bytes {head:02x?}", bytes.len())
}

/// A value as a failure shows it: the start of its `Debug` text.
fn brief(value: &impl Debug) -> String {
    let text = format!("{value:?}");
    text.chars().take(200).collect()
}

/// Decodes `bytes` as a `T`, checking the promises; the value, if it was one.
fn decode<T: Fuzz>(bytes: &[u8], tally: &mut Tally) -> Option<T> {
    let name = std::any::type_name::<T>();
    let outcome = catch_unwind(AssertUnwindSafe(|| measure::<T>(bytes)));
    let Ok((result, cost)) = outcome else {
        panic!("decoding {name} panicked on {}", show(bytes));
    };
    tally.decodes += 1;
    let limit = allowed(bytes.len());
    assert!(
        cost.peak <= limit,
        "{name} held {} bytes (limit {limit}) from {}",
        cost.peak,
        show(bytes)
    );
    assert!(
        cost.took < Duration::from_secs(10),
        "{name} took {:?} from {}",
        cost.took,
        show(bytes)
    );
    match result {
        Ok(value) => {
            tally.values += 1;
            // What decoded encodes back: to the same bytes if there is one encoding only, and
            // to bytes that decode to the same value in any case.
            let again = value.to_bytes();
            if T::CANONICAL {
                assert!(
                    again == bytes,
                    "{name}: {} came from {}",
                    brief(&value),
                    show(bytes)
                );
            }
            let back = T::from_bytes(&again).expect("a decoded value decodes again");
            assert!(
                back.same(&value),
                "{name}: {} then {}",
                brief(&value),
                brief(&back)
            );
            Some(value)
        }
        Err(WireError::Custom(message)) => panic!("{name}: untyped error {message:?}"),
        Err(_) => None,
    }
}

/// One round for `T`: a random value round-trips, then damaged and random bytes decode to a
/// value or a typed error.
fn round<T: Fuzz>(rng: &mut Rng, seeds: &mut Vec<Vec<u8>>, tally: &mut Tally) {
    let depth = 1 + rng.below(4);
    let value = T::random(rng, depth);
    let bytes = value.to_bytes();
    let back = decode::<T>(&bytes, tally);
    let name = std::any::type_name::<T>();
    assert!(
        back.as_ref().is_some_and(|back| back.same(&value)),
        "{name}: {} came back as {}",
        brief(&value),
        brief(&back)
    );
    tally.round_trips += 1;
    for _ in 0..4 {
        let mut damaged = bytes.clone();
        mutate(rng, &mut damaged, seeds);
        decode::<T>(&damaged, tally);
    }
    decode::<T>(&random_bytes(rng), tally);
    if seeds.len() < 256 && !bytes.is_empty() {
        seeds.push(bytes);
    } else if !bytes.is_empty() {
        let at = rng.below(seeds.len());
        seeds[at] = bytes;
    }
}

/// Runs [`round`] for every listed type.
macro_rules! rounds {
    ($rng:expr, $seeds:expr, $tally:expr; $($ty:ty),+ $(,)?) => {
        $( round::<$ty>($rng, $seeds, $tally); )+
    };
}

/// One round over every type: std types, nested ones, and the macro's.
fn every_type(rng: &mut Rng, seeds: &mut Vec<Vec<u8>>, tally: &mut Tally) {
    rounds!(rng, seeds, tally;
        u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, usize, isize, f32, f64, bool, char, (),
        String, Duration,
        Vec<u8>, Vec<String>, Vec<()>, Vec<Marker>, Vec<Box<()>>, Vec<f64>,
        Box<u64>, Box<()>, Box<Vec<Box<()>>>,
        Option<String>, Option<Option<u8>>, Option<()>, Result<u32, String>, Result<(), Vec<u8>>,
        (u8,), (u8, String), (bool, char, f64), (u8, u16, u32, u64), (i8, (), Option<u8>, u32, bool),
        (u8, u8, u8, u8, u8, Vec<u8>), (u8, u8, u8, u8, u8, u8, String),
        (u8, u16, u32, u64, i8, i16, i32, Duration),
        [u8; 0], [u16; 3], [Option<u8>; 4], [String; 2], [(); 5], [[u8; 2]; 3], [Box<()>; 3],
        HashMap<String, Vec<u64>>, HashMap<u8, f64>, HashMap<(), ()>, HashSet<u32>, HashSet<()>,
        BTreeMap<u8, Option<char>>, BTreeMap<String, BTreeSet<u16>>, BTreeMap<Vec<u8>, Vec<()>>,
        BTreeSet<String>, BTreeSet<Marker>,
        Vec<Vec<u16>>, Vec<Vec<()>>, Vec<Vec<Box<()>>>, Vec<Vec<Vec<u8>>>,
        Vec<Option<Box<(u8, String)>>>, Option<Vec<HashMap<u8, Vec<String>>>>,
        Vec<Result<Vec<()>, Box<()>>>, Vec<[Vec<u8>; 2]>, Box<Option<Box<Vec<Option<u8>>>>>,
        Vec<(String, BTreeMap<u8, Vec<()>>)>,
        Point, Meters, Marker, Shape, Tree, Dir, Nest, Scene, Vec<Shape>, Vec<Tree>, Option<Box<Dir>>,
        Vec<Marker>, Result<Tree, Shape>,
    );
}

#[test]
fn fuzz_every_type() {
    let iterations = std::env::var("APLEX_FUZZ_ITERS")
        .ok()
        .and_then(|n| n.parse().ok());
    let rounds = iterations.unwrap_or(120);
    let started = Instant::now();
    let mut rng = Rng(0xA91E_F022);
    let mut seeds = vec![vec![0; 8]];
    let mut tally = Tally::default();
    for _ in 0..rounds {
        every_type(&mut rng, &mut seeds, &mut tally);
    }
    // The damage reaches past the first bytes: many damaged inputs still decode.
    assert!(tally.values > tally.decodes / 10, "{tally:?}");
    if iterations.is_some() {
        eprintln!(
            "wire fuzz: {rounds} rounds, {} decodes ({} values), {} round trips in {:?}",
            tally.decodes,
            tally.values,
            tally.round_trips,
            started.elapsed()
        );
    }
}
