//! `aplex::wire`: round trips of every supported type, the exact bytes of the format, malformed
//! and forged input, and a fuzz loop over pseudo-random bytes. This file holds the user types
//! and the helpers; the tests are in the modules under `wire/`, by purpose.
// Some user types below are `pub`, undocumented, to exercise the macro's visibility handling.
#![allow(missing_docs)]
#![cfg(feature = "process")]

use aplex::wire::*;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::hash::BuildHasherDefault;
use std::time::{Duration, Instant};

#[path = "wire/fuzz.rs"]
mod fuzz;
#[path = "wire/malformed.rs"]
mod malformed;
#[path = "wire/round_trips.rs"]
mod round_trips;

// ---- User types ---------------------------------------------------------------------------------

aplex::wire_type! {
    /// A point, with docs and attributes on the item and its fields.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Point {
        /// Across.
        pub x: i32,
        #[allow(dead_code)]
        pub(crate) y: i32,
    }
}

aplex::wire_type! {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Shape {
        /// A named variant.
        Circle { center: Point, r: f64 },
        #[allow(dead_code)]
        Rect(Point, Point,),
        Polygon(Vec<Point>),
        Empty,
        EmptyTuple(),
        EmptyNamed {},
    }
}

aplex::wire_type! {
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Meters(pub f64, u8);
}

aplex::wire_type! {
    #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
    struct Marker;
}

aplex::wire_type! {
    #[derive(Debug, PartialEq)]
    struct NoFields {}
}

aplex::wire_type! {
    #[derive(Debug, PartialEq)]
    struct NoTupleFields();
}

aplex::wire_type! {
    /// One variant only: its patterns are irrefutable, which must not warn.
    #[derive(Debug, PartialEq)]
    enum Only {
        One(u8),
    }
}

aplex::wire_type! {
    /// Fields named like the generated code's own variables.
    #[derive(Debug, PartialEq)]
    struct Names { out: u8, input: u16, tag: u32 }
}

aplex::wire_type! {
    #[derive(Debug, PartialEq)]
    enum NamesInVariants {
        Named { out: u8, input: u16, tag: u32, _0: u8 },
        Tuple(u8, u16),
    }
}

aplex::wire_type! {
    /// Sixteen tuple fields: the most the macro binds.
    #[derive(Debug, PartialEq)]
    struct Wide(u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u16);
}

aplex::wire_type! {
    /// A recursive type: the input decides how deep it nests.
    #[derive(Debug, Clone, PartialEq)]
    enum Tree {
        Leaf(u32),
        Node(Box<Tree>, Box<Tree>),
    }
}

aplex::wire_type! {
    /// Recursive through a Vec rather than a Box.
    #[derive(Debug, PartialEq)]
    struct Dir { name: String, children: Vec<Dir> }
}

aplex::wire_type! {
    /// A type with no finite value: any input must still decode to an error, not a stack overflow.
    #[derive(Debug)]
    struct Endless(Box<Endless>);
}

aplex::wire_type! {
    /// User types inside user types and std containers.
    #[derive(Debug, PartialEq)]
    pub struct Scene {
        pub name: String,
        pub shapes: Vec<Shape>,
        pub tags: BTreeMap<String, Meters>,
        pub origin: Option<Point>,
        pub markers: [Marker; 2],
    }
}

// ---- Helpers ------------------------------------------------------------------------------------

/// Encodes `value`, checks that it decodes back (alone and followed by more bytes), and that every
/// proper prefix of its bytes fails to decode. Returns the bytes.
fn round_trip<T: Wire + PartialEq + Debug>(value: T) -> Vec<u8> {
    let bytes = value.to_bytes();
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0xAB, 0xCD]);
    let mut input = &longer[..];
    assert_eq!(T::decode(&mut input).as_ref(), Ok(&value));
    assert_eq!(
        input,
        [0xAB, 0xCD],
        "decode of {value:?} consumed the wrong bytes"
    );
    assert_eq!(T::from_bytes(&bytes), Ok(value));
    assert_truncations_fail::<T>(&bytes);
    bytes
}

/// Every proper prefix of an encoding is an error (the format is self-delimiting), not a panic.
fn assert_truncations_fail<T: Wire + Debug>(bytes: &[u8]) {
    for cut in 0..bytes.len() {
        let mut input = &bytes[..cut];
        let result = T::decode(&mut input);
        assert!(
            result.is_err(),
            "decoded {result:?} from {cut} of {} bytes",
            bytes.len()
        );
    }
}

/// `count` as an 8-byte little-endian count, followed by `rest`.
fn counted(count: u64, rest: &[u8]) -> Vec<u8> {
    let mut bytes = count.to_le_bytes().to_vec();
    bytes.extend_from_slice(rest);
    bytes
}

fn point(x: i32, y: i32) -> Point {
    Point { x, y }
}

/// A left-leaning tree `levels` boxes deep.
fn deep_tree(levels: usize) -> Tree {
    let mut tree = Tree::Leaf(0);
    for i in 0..levels {
        tree = Tree::Node(Box::new(tree), Box::new(Tree::Leaf(i as u32)));
    }
    tree
}
