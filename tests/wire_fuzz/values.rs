//! Random values of every type the fuzz decodes, and exact comparison of them.

use aplex::wire::Wire;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

// ---- Random values ------------------------------------------------------------------------------

/// splitmix64: a tiny deterministic generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Mostly small bytes, so that tags, counts and lengths are often plausible.
    pub fn byte(&mut self) -> u8 {
        match self.below(8) {
            0..=3 => 0,
            4..=6 => self.below(4) as u8,
            _ => self.next() as u8,
        }
    }

    /// A collection length: mostly small, sometimes larger; none below `depth` 0.
    fn len(&mut self, depth: usize) -> usize {
        match (depth, self.below(10)) {
            (0, _) | (_, 0) => 0,
            (_, 1..=7) => self.below(4),
            (_, 8) => self.below(16),
            _ => self.below(64),
        }
    }
}

/// A type the fuzz knows how to make random values of and compare exactly.
pub trait Fuzz: Wire + Debug + Sized {
    /// Whether a value has one encoding only. Maps and sets do not: a decoder takes their entries
    /// in any order.
    const CANONICAL: bool = true;

    /// A random value, nesting at most `depth` more levels.
    fn random(rng: &mut Rng, depth: usize) -> Self;

    /// Exact equality: the same bits for floats, the same entries for maps.
    fn same(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

macro_rules! fuzz_ints {
    ($($int:ty),*) => {$(
        impl Fuzz for $int {
            fn random(rng: &mut Rng, _: usize) -> Self {
                let edges = [<$int>::MIN, <$int>::MAX, 0 as $int, 1 as $int];
                match rng.below(3) {
                    0 => edges[rng.below(edges.len())],
                    _ => (u128::from(rng.next()) << 64 | u128::from(rng.next())) as $int,
                }
            }
        }
    )*};
}

fuzz_ints!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, usize, isize);

impl Fuzz for f32 {
    fn random(rng: &mut Rng, _: usize) -> Self {
        f32::from_bits(rng.next() as u32) // NaNs with payloads included
    }
}

impl Fuzz for f64 {
    fn random(rng: &mut Rng, _: usize) -> Self {
        f64::from_bits(rng.next())
    }
}

impl Fuzz for bool {
    fn random(rng: &mut Rng, _: usize) -> Self {
        rng.below(2) == 1
    }
}

impl Fuzz for char {
    fn random(rng: &mut Rng, _: usize) -> Self {
        let limit = [0x80, 0x800, 0x1_0000, 0x11_0000][rng.below(4)];
        char::from_u32(rng.below(limit) as u32).unwrap_or('\u{FFFD}')
    }
}

impl Fuzz for () {
    fn random(_: &mut Rng, _: usize) -> Self {}
}

impl Fuzz for String {
    fn random(rng: &mut Rng, depth: usize) -> Self {
        (0..rng.len(depth.max(1)))
            .map(|_| char::random(rng, 0))
            .collect()
    }
}

impl Fuzz for std::time::Duration {
    fn random(rng: &mut Rng, _: usize) -> Self {
        Duration::new(rng.next(), rng.below(1_000_000_000) as u32)
    }
}

impl<T: Fuzz> Fuzz for Vec<T> {
    const CANONICAL: bool = T::CANONICAL;

    fn random(rng: &mut Rng, depth: usize) -> Self {
        let len = rng.len(depth);
        let items: Vec<T> = (0..len).map(|_| T::random(rng, depth - 1)).collect();
        // Elements that are not zero-sized but write nothing (`Box<()>`) count against the
        // bytes after the count, which they do not have: such a Vec decodes only when empty.
        let writes_nothing = items.first().is_some_and(|item| item.to_bytes().is_empty());
        if writes_nothing && std::mem::size_of::<T>() != 0 {
            return Vec::new();
        }
        items
    }

    fn same(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a.same(b))
    }
}

impl<T: Fuzz> Fuzz for Box<T> {
    const CANONICAL: bool = T::CANONICAL;

    fn random(rng: &mut Rng, depth: usize) -> Self {
        Box::new(T::random(rng, depth))
    }

    fn same(&self, other: &Self) -> bool {
        T::same(self, other)
    }
}

impl<T: Fuzz> Fuzz for Option<T> {
    const CANONICAL: bool = T::CANONICAL;

    fn random(rng: &mut Rng, depth: usize) -> Self {
        (rng.below(3) != 0).then(|| T::random(rng, depth))
    }

    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.same(b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl<T: Fuzz, E: Fuzz> Fuzz for Result<T, E> {
    const CANONICAL: bool = T::CANONICAL && E::CANONICAL;

    fn random(rng: &mut Rng, depth: usize) -> Self {
        match rng.below(2) {
            0 => Ok(T::random(rng, depth)),
            _ => Err(E::random(rng, depth)),
        }
    }

    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Ok(a), Ok(b)) => a.same(b),
            (Err(a), Err(b)) => a.same(b),
            _ => false,
        }
    }
}

macro_rules! fuzz_tuple {
    ($($ty:ident $i:tt),+) => {
        impl<$($ty: Fuzz),+> Fuzz for ($($ty,)+) {
            const CANONICAL: bool = $($ty::CANONICAL)&&+;

            fn random(rng: &mut Rng, depth: usize) -> Self {
                ($($ty::random(rng, depth),)+)
            }

            fn same(&self, other: &Self) -> bool {
                $(self.$i.same(&other.$i))&&+
            }
        }
    };
}

fuzz_tuple!(A 0);
fuzz_tuple!(A 0, B 1);
fuzz_tuple!(A 0, B 1, C 2);
fuzz_tuple!(A 0, B 1, C 2, D 3);
fuzz_tuple!(A 0, B 1, C 2, D 3, E 4);
fuzz_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
fuzz_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
fuzz_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

impl<T: Fuzz, const N: usize> Fuzz for [T; N] {
    const CANONICAL: bool = T::CANONICAL;

    fn random(rng: &mut Rng, depth: usize) -> Self {
        std::array::from_fn(|_| T::random(rng, depth))
    }

    fn same(&self, other: &Self) -> bool {
        self.iter().zip(other).all(|(a, b)| a.same(b))
    }
}

impl<K: Fuzz + Eq + Hash, V: Fuzz> Fuzz for HashMap<K, V> {
    const CANONICAL: bool = false;

    fn random(rng: &mut Rng, depth: usize) -> Self {
        let len = rng.len(depth);
        (0..len)
            .map(|_| (K::random(rng, depth - 1), V::random(rng, depth - 1)))
            .collect()
    }

    fn same(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|(k, v)| other.get(k).is_some_and(|w| v.same(w)))
    }
}

impl<K: Fuzz + Ord, V: Fuzz> Fuzz for BTreeMap<K, V> {
    const CANONICAL: bool = false;

    fn random(rng: &mut Rng, depth: usize) -> Self {
        let len = rng.len(depth);
        (0..len)
            .map(|_| (K::random(rng, depth - 1), V::random(rng, depth - 1)))
            .collect()
    }
}

impl<T: Fuzz + Eq + Hash> Fuzz for HashSet<T> {
    const CANONICAL: bool = false;

    fn random(rng: &mut Rng, depth: usize) -> Self {
        let len = rng.len(depth);
        (0..len).map(|_| T::random(rng, depth - 1)).collect()
    }

    fn same(&self, other: &Self) -> bool {
        self == other
    }
}

impl<T: Fuzz + Ord> Fuzz for BTreeSet<T> {
    const CANONICAL: bool = false;

    fn random(rng: &mut Rng, depth: usize) -> Self {
        let len = rng.len(depth);
        (0..len).map(|_| T::random(rng, depth - 1)).collect()
    }
}

// ---- User types, from the crate's macro ---------------------------------------------------------

aplex::wire_type! {
    #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Point { x: i32, y: i32 }
}

aplex::wire_type! {
    #[derive(Debug)]
    pub struct Meters(f64, u8);
}

aplex::wire_type! {
    #[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct Marker;
}

aplex::wire_type! {
    #[derive(Debug)]
    pub enum Shape {
        Circle { center: Point, r: f64 },
        Polygon(Vec<Point>),
        Empty,
        Tagged(String, Option<Box<Shape>>),
    }
}

aplex::wire_type! {
    /// Recursive through Boxes: the input decides the depth.
    #[derive(Debug)]
    pub enum Tree { Leaf(u32), Node(Box<Tree>, Box<Tree>) }
}

aplex::wire_type! {
    /// Recursive through a Vec.
    #[derive(Debug)]
    pub struct Dir { name: String, children: Vec<Dir> }
}

aplex::wire_type! {
    /// Recursive through a Vec and nothing else: every level is one count.
    #[derive(Debug)]
    pub struct Nest(Vec<Nest>);
}

aplex::wire_type! {
    #[derive(Debug)]
    pub struct Scene {
        name: String,
        shapes: Vec<Shape>,
        tags: BTreeMap<String, Meters>,
        origin: Option<Point>,
        markers: [Marker; 2],
        seen: HashSet<Point>,
    }
}

impl Fuzz for Point {
    fn random(rng: &mut Rng, depth: usize) -> Self {
        Point {
            x: i32::random(rng, depth),
            y: i32::random(rng, depth),
        }
    }
}

impl Fuzz for Meters {
    fn random(rng: &mut Rng, depth: usize) -> Self {
        Meters(f64::random(rng, depth), u8::random(rng, depth))
    }
}

impl Fuzz for Marker {
    fn random(_: &mut Rng, _: usize) -> Self {
        Marker
    }
}

impl Fuzz for Shape {
    fn random(rng: &mut Rng, depth: usize) -> Self {
        match rng.below(if depth == 0 { 3 } else { 4 }) {
            0 => Shape::Circle {
                center: Point::random(rng, depth),
                r: f64::random(rng, depth),
            },
            1 => Shape::Polygon(Vec::random(rng, depth)),
            2 => Shape::Empty,
            _ => Shape::Tagged(String::random(rng, depth), Fuzz::random(rng, depth - 1)),
        }
    }
}

impl Fuzz for Tree {
    fn random(rng: &mut Rng, depth: usize) -> Self {
        match rng.below(if depth == 0 { 1 } else { 3 }) {
            0 => Tree::Leaf(rng.next() as u32),
            _ => Tree::Node(
                Box::new(Tree::random(rng, depth - 1)),
                Box::new(Tree::random(rng, depth - 1)),
            ),
        }
    }
}

impl Fuzz for Dir {
    fn random(rng: &mut Rng, depth: usize) -> Self {
        Dir {
            name: String::random(rng, depth),
            children: Vec::random(rng, depth),
        }
    }
}

impl Fuzz for Nest {
    fn random(rng: &mut Rng, depth: usize) -> Self {
        Nest(Vec::random(rng, depth))
    }
}

impl Fuzz for Scene {
    const CANONICAL: bool = false;

    fn random(rng: &mut Rng, depth: usize) -> Self {
        Scene {
            name: String::random(rng, depth),
            shapes: Vec::random(rng, depth),
            tags: BTreeMap::random(rng, depth),
            origin: Option::random(rng, depth),
            markers: [Marker, Marker],
            seen: HashSet::random(rng, depth),
        }
    }

    fn same(&self, other: &Self) -> bool {
        // The set's bytes follow its hasher's order; the rest encodes canonically.
        self.seen == other.seen
            && self.name == other.name
            && self.shapes.same(&other.shapes)
            && self.tags.same(&other.tags)
            && self.origin == other.origin
    }
}
