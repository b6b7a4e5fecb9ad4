//! `aplex::wire`: round trips of every supported type, the exact bytes of the format, malformed
//! and forged input, and a fuzz loop over pseudo-random bytes.
// Some user types below are `pub`, undocumented, to exercise the macro's visibility handling.
#![allow(missing_docs)]
#![cfg(feature = "process")]

use aplex::wire::*;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::hash::BuildHasherDefault;
use std::time::{Duration, Instant};

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

// ---- Round trips --------------------------------------------------------------------------------

#[test]
fn integers_round_trip_at_their_edges() {
    macro_rules! check {
        ($($int:ty),*) => {$(
            for value in [0, 1, <$int>::MIN, <$int>::MAX, <$int>::MAX / 3] {
                let bytes = round_trip(value);
                assert_eq!(bytes.len(), std::mem::size_of::<$int>());
            }
        )*};
    }
    check!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);
    for value in [-1i8, -128] {
        round_trip(value);
    }
    for value in [-1i128, i128::MIN + 1] {
        round_trip(value);
    }
}

#[test]
fn usize_and_isize_take_eight_bytes() {
    for value in [0, 1, usize::MAX] {
        assert_eq!(round_trip(value).len(), 8);
    }
    for value in [0, -1, isize::MIN, isize::MAX] {
        assert_eq!(round_trip(value).len(), 8);
    }
    assert_eq!(7usize.to_bytes(), 7u64.to_bytes());
    assert_eq!((-7isize).to_bytes(), (-7i64).to_bytes());
}

#[test]
fn floats_keep_their_exact_bits() {
    let doubles = [
        0.0,
        -0.0,
        1.5,
        f64::MIN,
        f64::MAX,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::from_bits(0x7FF8_0000_0000_1234), // a quiet NaN with a payload
        f64::from_bits(0xFFF8_0000_0000_0001), // a negative one
        f64::from_bits(1),                     // the smallest subnormal
    ];
    for value in doubles {
        let bytes = value.to_bytes();
        assert_eq!(bytes, value.to_bits().to_le_bytes());
        assert_eq!(
            f64::from_bytes(&bytes).map(f64::to_bits),
            Ok(value.to_bits())
        );
        assert_truncations_fail::<f64>(&bytes);
    }
    let singles = [
        0.0,
        -0.0,
        -2.25,
        f32::MAX,
        f32::MIN_POSITIVE,
        f32::INFINITY,
        f32::NAN,
        f32::from_bits(0x7FC0_0ABC),
        f32::from_bits(1),
    ];
    for value in singles {
        let bytes = value.to_bytes();
        assert_eq!(bytes, value.to_bits().to_le_bytes());
        assert_eq!(
            f32::from_bytes(&bytes).map(f32::to_bits),
            Ok(value.to_bits())
        );
        assert_truncations_fail::<f32>(&bytes);
    }
}

#[test]
fn bools_chars_and_unit_round_trip() {
    assert_eq!(round_trip(false), [0]);
    assert_eq!(round_trip(true), [1]);
    for c in ['\0', 'a', 'é', '€', '😀', '\u{D7FF}', '\u{E000}', char::MAX] {
        assert_eq!(round_trip(c), u32::from(c).to_le_bytes());
    }
    assert_eq!(round_trip(()), []);
}

#[test]
fn strings_round_trip() {
    assert_eq!(round_trip(String::new()), [0; 8]);
    round_trip(String::from("a"));
    round_trip(String::from("héllo wörld 😀 ∑ 中文"));
    round_trip(String::from("nul \0 inside"));
    round_trip("ab€".repeat(3000));
}

#[test]
fn sequences_boxes_options_and_results_round_trip() {
    round_trip(Vec::<u8>::new());
    round_trip((0..=255u8).collect::<Vec<u8>>());
    round_trip(vec![String::new(), "x".to_string(), "ÿ😀".to_string()]);
    round_trip(vec![vec![1u16, 2], vec![], vec![u16::MAX]]);
    round_trip(vec![(), (), ()]);
    round_trip(vec![Marker, Marker]);
    round_trip(Box::new(5u64));
    round_trip(Box::new(Box::new(String::from("boxed twice"))));
    round_trip(None::<u8>);
    round_trip(Some(0u8));
    round_trip(Some(Some(None::<bool>)));
    round_trip(Ok::<u32, String>(9));
    round_trip(Err::<u32, String>("bad".into()));
    round_trip(Some(Ok::<Vec<Option<String>>, (u8, bool)>(vec![
        Some("a".into()),
        None,
        Some(String::new()),
    ])));
    round_trip(Some(Err::<Vec<Option<String>>, (u8, bool)>((7, true))));
    round_trip(None::<Result<Vec<Option<String>>, (u8, bool)>>);
}

#[test]
fn tuples_round_trip_up_to_eight() {
    round_trip((1u8,));
    round_trip((1u8, -2i16));
    round_trip((1u8, -2i16, 'x'));
    round_trip((1u8, -2i16, 'x', String::from("four")));
    round_trip((1u8, -2i16, 'x', String::from("four"), true));
    round_trip((1u8, -2i16, 'x', String::from("four"), true, ()));
    round_trip((1u8, -2i16, 'x', String::from("four"), true, (), vec![7u32]));
    let eight = (
        u128::MAX,
        i64::MIN,
        'é',
        String::from("eight"),
        false,
        Some(3u8),
        vec![(1u8, 2u8)],
        Duration::MAX,
    );
    let bytes = round_trip(eight);
    assert_eq!(bytes.len(), 16 + 8 + 4 + (8 + 5) + 1 + 2 + (8 + 2) + 12);
}

#[test]
fn arrays_round_trip_without_a_count() {
    assert_eq!(round_trip([0u8; 0]), []);
    assert_eq!(round_trip([1u16, 2, 3]), [1, 0, 2, 0, 3, 0]);
    round_trip([String::from("a"), String::from("bé")]);
    round_trip([[1u8, 2], [3, 4], [5, 6]]);
    round_trip([Some('a'), None, Some('😀'), None]);
    round_trip([(); 5]);
}

#[test]
fn maps_and_sets_round_trip() {
    let mut hash_map = HashMap::new();
    hash_map.insert(String::from("one"), vec![1u64]);
    hash_map.insert(String::from("none"), vec![]);
    hash_map.insert(String::from("mäny"), vec![u64::MAX, 0, 7]);
    round_trip(hash_map);
    round_trip(HashMap::<String, Vec<u64>>::new());

    let btree_map: BTreeMap<i32, String> =
        [(-1, "minus".into()), (0, String::new()), (9, "nine".into())]
            .into_iter()
            .collect();
    assert_eq!(round_trip(btree_map.clone()), btree_map.to_bytes());

    round_trip((0..40u8).collect::<HashSet<u8>>());
    round_trip(
        ["b", "a", "ç"]
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<String>>(),
    );
    round_trip(BTreeSet::<()>::new());
    round_trip([Marker].into_iter().collect::<BTreeSet<Marker>>());

    // Any hasher that can be built from scratch.
    let mut custom: HashMap<u8, u8, BuildHasherDefault<DefaultHasher>> = HashMap::default();
    custom.insert(1, 2);
    custom.insert(3, 4);
    round_trip(custom);
}

#[test]
fn durations_round_trip() {
    for duration in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_millis(1500),
        Duration::new(u64::MAX, 999_999_999),
        Duration::MAX,
    ] {
        assert_eq!(round_trip(duration).len(), 12);
    }
}

#[test]
fn user_structs_round_trip() {
    assert_eq!(
        round_trip(point(1, -1)),
        [1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]
    );
    round_trip(Meters(2.5, 9));
    assert_eq!(round_trip(Marker), []);
    assert_eq!(round_trip(NoFields {}), []);
    assert_eq!(round_trip(NoTupleFields()), []);
    round_trip(Names {
        out: 1,
        input: 2,
        tag: 3,
    });
    round_trip(Wide(
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0xBEEF,
    ));
    round_trip(Dir {
        name: "root".into(),
        children: vec![
            Dir {
                name: "a".into(),
                children: vec![],
            },
            Dir {
                name: "b".into(),
                children: vec![Dir {
                    name: "c".into(),
                    children: vec![],
                }],
            },
        ],
    });
    round_trip(Scene {
        name: "scène".into(),
        shapes: vec![Shape::Empty, Shape::Rect(point(0, 0), point(2, 2))],
        tags: [("m".to_string(), Meters(1.0, 0))].into_iter().collect(),
        origin: Some(point(5, 6)),
        markers: [Marker, Marker],
    });
}

#[test]
fn user_enums_round_trip_every_variant_kind() {
    let shapes = [
        Shape::Circle {
            center: point(1, 2),
            r: 0.5,
        },
        Shape::Rect(point(i32::MIN, 0), point(0, i32::MAX)),
        Shape::Polygon(vec![point(0, 0), point(1, 0), point(0, 1)]),
        Shape::Polygon(vec![]),
        Shape::Empty,
        Shape::EmptyTuple(),
        Shape::EmptyNamed {},
    ];
    for (index, shape) in shapes.into_iter().enumerate() {
        let bytes = round_trip(shape);
        // The tag is the variant's index in declaration order (Polygon appears twice).
        let expected = if index < 4 { index.min(2) } else { index - 1 } as u32;
        assert_eq!(bytes[..4], expected.to_le_bytes());
    }
    assert_eq!(round_trip(Only::One(7)), [0, 0, 0, 0, 7]);
    round_trip(NamesInVariants::Named {
        out: 1,
        input: 2,
        tag: 3,
        _0: 4,
    });
    round_trip(NamesInVariants::Tuple(5, 6));
    round_trip(Tree::Node(
        Box::new(Tree::Leaf(1)),
        Box::new(Tree::Node(Box::new(Tree::Leaf(2)), Box::new(Tree::Leaf(3)))),
    ));
}

#[test]
fn the_bytes_are_the_documented_ones() {
    assert_eq!(0x0102_0304u32.to_bytes(), [4, 3, 2, 1]);
    assert_eq!((-2i16).to_bytes(), [0xFE, 0xFF]);
    assert_eq!('A'.to_bytes(), [0x41, 0, 0, 0]);
    assert_eq!(
        String::from("hé").to_bytes(),
        [3, 0, 0, 0, 0, 0, 0, 0, b'h', 0xC3, 0xA9]
    );
    assert_eq!(vec![9u8].to_bytes(), [1, 0, 0, 0, 0, 0, 0, 0, 9]);
    assert_eq!(None::<u8>.to_bytes(), [0]);
    assert_eq!(Some(7u8).to_bytes(), [1, 7]);
    assert_eq!(Ok::<u8, u8>(5).to_bytes(), [0, 5]);
    assert_eq!(Err::<u8, u8>(5).to_bytes(), [1, 5]);
    assert_eq!((1u8, 2u16).to_bytes(), [1, 2, 0]);
    assert_eq!(Box::new(3u8).to_bytes(), [3]);
    let map: BTreeMap<u8, bool> = [(2, true), (1, false)].into_iter().collect();
    assert_eq!(map.to_bytes(), [2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 1]);
    let mut duration = 1u64.to_bytes();
    duration.extend_from_slice(&500_000_000u32.to_le_bytes());
    assert_eq!(Duration::from_millis(1500).to_bytes(), duration);
    let circle = Shape::Circle {
        center: point(1, 2),
        r: 0.5,
    }
    .to_bytes();
    assert_eq!(circle[..12], [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]);
    assert_eq!(circle[12..], 0.5f64.to_le_bytes());
}

#[test]
fn encode_str_and_encode_slice_match_the_owned_types() {
    for s in ["", "abc", "ünïcödé 😀"] {
        let mut out = Vec::new();
        encode_str(s, &mut out);
        assert_eq!(out, s.to_string().to_bytes());
        assert_eq!(String::from_bytes(&out).as_deref(), Ok(s));
    }
    let points = [point(1, 2), point(3, 4)];
    let mut out = Vec::new();
    encode_slice(&points, &mut out);
    assert_eq!(out, points.to_vec().to_bytes());
    assert_eq!(Vec::<Point>::from_bytes(&out), Ok(points.to_vec()));
    let mut out = Vec::new();
    encode_slice::<u8>(&[], &mut out);
    assert_eq!(out, [0; 8]);
}

// ---- Malformed and forged input -----------------------------------------------------------------

#[test]
fn truncated_input_is_an_error_at_every_cut() {
    let scene = Scene {
        name: "a scène".into(),
        shapes: vec![
            Shape::Circle {
                center: point(1, 1),
                r: 2.0,
            },
            Shape::Polygon(vec![point(1, 2)]),
            Shape::EmptyNamed {},
        ],
        tags: [("k".to_string(), Meters(0.1, 2))].into_iter().collect(),
        origin: None,
        markers: [Marker, Marker],
    };
    assert_truncations_fail::<Scene>(&scene.to_bytes());
    let nested = Some(Ok::<_, ()>(vec![(1u8, "é".to_string(), [2u16; 3])]));
    assert_truncations_fail::<Option<Result<Vec<(u8, String, [u16; 3])>, ()>>>(&nested.to_bytes());
    let mut input: &[u8] = &[1, 2];
    assert_eq!(
        u32::decode(&mut input),
        Err(WireError::UnexpectedEnd {
            needed: 4,
            remaining: 2
        })
    );
}

#[test]
fn huge_counts_are_rejected_before_allocating() {
    let started = Instant::now();
    let tail = [0u8; 5];
    let forged = counted(u64::MAX, &tail);
    let too_large = Some(WireError::LengthTooLarge {
        length: u64::MAX,
        limit: 5,
    });
    assert_eq!(Vec::<u8>::from_bytes(&forged).err(), too_large);
    assert_eq!(Vec::<u64>::from_bytes(&forged).err(), too_large);
    assert_eq!(Vec::<String>::from_bytes(&forged).err(), too_large);
    assert_eq!(Vec::<Vec<u8>>::from_bytes(&forged).err(), too_large);
    assert_eq!(String::from_bytes(&forged).err(), too_large);
    assert_eq!(HashMap::<u8, u8>::from_bytes(&forged).err(), too_large);
    assert_eq!(BTreeSet::<String>::from_bytes(&forged).err(), too_large);
    assert_eq!(
        Vec::<()>::from_bytes(&forged),
        Err(WireError::LengthTooLarge {
            length: u64::MAX,
            limit: MAX_ZERO_SIZED_LEN as u64
        })
    );
    assert_eq!(
        HashSet::<Marker>::from_bytes(&forged),
        Err(WireError::LengthTooLarge {
            length: u64::MAX,
            limit: MAX_ZERO_SIZED_LEN as u64
        })
    );

    // 2^40 u64s would be 8 TiB: reserving them up front would abort the test.
    let forged = counted(1 << 40, &[0; 16]);
    assert!(matches!(
        Vec::<u64>::from_bytes(&forged),
        Err(WireError::LengthTooLarge { .. })
    ));

    // A count one above what the input holds is refused; the count it holds is fine.
    assert!(matches!(
        Vec::<u8>::from_bytes(&counted(4, &[1, 2, 3])),
        Err(WireError::LengthTooLarge {
            length: 4,
            limit: 3
        })
    ));
    assert_eq!(
        Vec::<u8>::from_bytes(&counted(3, &[1, 2, 3])),
        Ok(vec![1, 2, 3])
    );
    // A plausible count with too few elements behind it runs out of input.
    assert!(matches!(
        Vec::<u32>::from_bytes(&counted(2, &[1, 0, 0, 0, 1])),
        Err(WireError::UnexpectedEnd { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn zero_sized_elements_are_capped() {
    let at_cap = counted(MAX_ZERO_SIZED_LEN as u64, &[]);
    assert_eq!(
        Vec::<()>::from_bytes(&at_cap).map(|v| v.len()),
        Ok(MAX_ZERO_SIZED_LEN)
    );
    assert_eq!(
        Vec::<Marker>::from_bytes(&at_cap).map(|v| v.len()),
        Ok(MAX_ZERO_SIZED_LEN)
    );
    let over = counted(MAX_ZERO_SIZED_LEN as u64 + 1, &[]);
    assert!(matches!(
        Vec::<()>::from_bytes(&over),
        Err(WireError::LengthTooLarge { .. })
    ));
    assert!(matches!(
        Vec::<[u64; 0]>::from_bytes(&over),
        Err(WireError::LengthTooLarge { .. })
    ));
}

#[test]
fn invalid_tags_are_errors() {
    for tag in [2u8, 3, 0x80, 0xFF] {
        let invalid = |type_name| {
            Some(WireError::InvalidTag {
                type_name,
                tag: tag.into(),
            })
        };
        assert_eq!(bool::from_bytes(&[tag]).err(), invalid("bool"));
        assert_eq!(Option::<u8>::from_bytes(&[tag, 0]).err(), invalid("Option"));
        assert_eq!(
            Result::<u8, u8>::from_bytes(&[tag, 0]).err(),
            invalid("Result")
        );
    }
    for tag in [6u32, 7, u32::MAX] {
        assert_eq!(
            Shape::from_bytes(&tag.to_le_bytes()),
            Err(WireError::InvalidTag {
                type_name: "Shape",
                tag
            })
        );
    }
    assert_eq!(
        Only::from_bytes(&[1, 0, 0, 0, 7]),
        Err(WireError::InvalidTag {
            type_name: "Only",
            tag: 1
        })
    );
}

#[test]
fn invalid_utf8_is_an_error() {
    let cases: [&[u8]; 5] = [
        &[0xC3, 0x28],       // a lead byte followed by a non-continuation
        &[0x80],             // a lone continuation byte
        &[0xC0, 0xAF],       // an overlong '/'
        &[0xED, 0xA0, 0x80], // a surrogate
        &[b'o', b'k', 0xFF], // a byte that never appears in UTF-8
    ];
    for bytes in cases {
        let input = counted(bytes.len() as u64, bytes);
        assert_eq!(String::from_bytes(&input), Err(WireError::InvalidUtf8));
    }
}

#[test]
fn invalid_chars_are_errors() {
    for value in [0xD800u32, 0xDFFF, 0x11_0000, u32::MAX] {
        assert_eq!(
            char::from_bytes(&value.to_le_bytes()),
            Err(WireError::InvalidChar(value))
        );
    }
}

#[test]
fn out_of_range_numbers_are_errors() {
    let mut bytes = 0u64.to_bytes();
    bytes.extend_from_slice(&1_000_000_000u32.to_le_bytes());
    assert_eq!(
        Duration::from_bytes(&bytes),
        Err(WireError::OutOfRange {
            type_name: "Duration"
        })
    );
    let mut bytes = u64::MAX.to_bytes();
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Duration::from_bytes(&bytes).is_err());
    #[cfg(target_pointer_width = "32")]
    assert_eq!(
        usize::from_bytes(&u64::MAX.to_bytes()),
        Err(WireError::OutOfRange { type_name: "usize" })
    );
}

#[test]
fn trailing_bytes_are_an_error_in_from_bytes_only() {
    assert_eq!(
        u16::from_bytes(&[1, 0, 0]),
        Err(WireError::TrailingBytes(1))
    );
    let mut bytes = vec![1u8, 2].to_bytes();
    bytes.extend_from_slice(&[9, 9, 9]);
    assert_eq!(
        Vec::<u8>::from_bytes(&bytes),
        Err(WireError::TrailingBytes(3))
    );
    let mut input = &bytes[..];
    assert_eq!(Vec::<u8>::decode(&mut input), Ok(vec![1, 2]));
    assert_eq!(input, [9, 9, 9]);
    assert_eq!(<()>::from_bytes(&[0]), Err(WireError::TrailingBytes(1)));
}

#[test]
fn duplicate_keys_are_an_error() {
    let twice = counted(2, &[1, 10, 1, 20]);
    assert_eq!(
        BTreeMap::<u8, u8>::from_bytes(&twice),
        Err(WireError::DuplicateKey)
    );
    assert_eq!(
        HashMap::<u8, u8>::from_bytes(&twice),
        Err(WireError::DuplicateKey)
    );
    let twice = counted(2, &[5, 5]);
    assert_eq!(
        BTreeSet::<u8>::from_bytes(&twice),
        Err(WireError::DuplicateKey)
    );
    assert_eq!(
        HashSet::<u8>::from_bytes(&twice),
        Err(WireError::DuplicateKey)
    );
    assert_eq!(
        HashSet::<Marker>::from_bytes(&counted(2, &[])),
        Err(WireError::DuplicateKey)
    );
}

/// A left-leaning tree `levels` boxes deep.
fn deep_tree(levels: usize) -> Tree {
    let mut tree = Tree::Leaf(0);
    for i in 0..levels {
        tree = Tree::Node(Box::new(tree), Box::new(Tree::Leaf(i as u32)));
    }
    tree
}

#[test]
fn nesting_is_bounded_by_max_depth() {
    // Each Node adds one Box level above its left child.
    let deepest = deep_tree(MAX_DEPTH - 1);
    assert_eq!(Tree::from_bytes(&deepest.to_bytes()), Ok(deepest));
    assert_eq!(
        Tree::from_bytes(&deep_tree(MAX_DEPTH + 1).to_bytes()),
        Err(WireError::TooDeep)
    );

    // Forged: a million Node tags, and nothing else.
    let forged = 1u32.to_le_bytes().repeat(1_000_000);
    assert_eq!(Tree::from_bytes(&forged), Err(WireError::TooDeep));

    // Through Vec: each directory holds one more.
    let mut forged = Vec::new();
    for _ in 0..10_000 {
        forged.extend_from_slice(&counted(0, &counted(1, &[])));
    }
    assert_eq!(Dir::from_bytes(&forged), Err(WireError::TooDeep));

    // A type that always recurses stops too, whatever the input.
    for bytes in [&[][..], &[0; 64][..]] {
        assert!(matches!(
            Endless::from_bytes(bytes),
            Err(WireError::TooDeep)
        ));
    }

    // The levels were released on the error paths: decoding still works, at full depth.
    let deepest = deep_tree(MAX_DEPTH - 1);
    assert_eq!(Tree::from_bytes(&deepest.to_bytes()), Ok(deepest));
}

#[test]
fn max_depth_fits_a_small_thread_stack() {
    let bytes = deep_tree(MAX_DEPTH - 1).to_bytes();
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            assert!(Tree::from_bytes(&bytes).is_ok());
            assert_eq!(
                Tree::from_bytes(&1u32.to_le_bytes().repeat(1000)),
                Err(WireError::TooDeep)
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn errors_display_in_lowercase_and_are_errors() {
    fn is_error<E: std::error::Error + Send + Sync + Clone + PartialEq + 'static>(_: &E) {}
    let errors = [
        WireError::UnexpectedEnd {
            needed: 4,
            remaining: 1,
        },
        WireError::LengthTooLarge {
            length: 9,
            limit: 3,
        },
        WireError::InvalidTag {
            type_name: "Shape",
            tag: 7,
        },
        WireError::InvalidUtf8,
        WireError::InvalidChar(0xD800),
        WireError::OutOfRange {
            type_name: "Duration",
        },
        WireError::DuplicateKey,
        WireError::TooDeep,
        WireError::TrailingBytes(2),
    ];
    for error in &errors {
        is_error(error);
        let text = error.to_string();
        let first = text.chars().next().unwrap();
        assert!(first.is_lowercase() || first.is_ascii_digit(), "{text:?}");
        assert!(!text.ends_with('.'), "{text:?}");
    }
    assert_eq!(errors[4].to_string(), "invalid char value 0xd800");
    assert_eq!(
        WireError::Custom("Kept as is".into()).to_string(),
        "Kept as is"
    );
}

// ---- Fuzz ---------------------------------------------------------------------------------------

/// xorshift64: a tiny deterministic generator, enough to shake the decoders.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Bytes that are mostly small, so that counts, tags and lengths are often plausible.
    fn byte(&mut self) -> u8 {
        match self.below(8) {
            0..=3 => 0,
            4..=6 => self.below(4) as u8,
            _ => self.next() as u8,
        }
    }
}

/// Decodes `bytes` as `T`; on success, the value must re-encode to the bytes it came from
/// when `canonical` (no maps whose order could differ).
fn shake<T: Wire + Debug>(bytes: &[u8], canonical: bool) -> bool {
    let mut input = bytes;
    match T::decode(&mut input) {
        Ok(value) => {
            if canonical {
                let used = &bytes[..bytes.len() - input.len()];
                assert_eq!(value.to_bytes(), used, "{value:?}");
            }
            true
        }
        Err(_) => false,
    }
}

#[test]
fn fuzz_decoders_never_panic() {
    let started = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds: Vec<Vec<u8>> = vec![
        vec!["one".to_string(), "twö".to_string()].to_bytes(),
        Some((7u32, vec![1u8, 2, 3])).to_bytes(),
        [("k".to_string(), vec![1u64, 2])]
            .into_iter()
            .collect::<HashMap<_, _>>()
            .to_bytes(),
        Shape::Polygon(vec![point(1, 2)]).to_bytes(),
        Shape::Circle {
            center: point(3, 4),
            r: 1.0,
        }
        .to_bytes(),
        deep_tree(3).to_bytes(),
    ];
    let mut decoded = 0;
    let mut bytes = Vec::new();
    for round in 0..100_000 {
        bytes.clear();
        match round % 4 {
            // Uniformly random bytes.
            0 => (0..rng.below(48)).for_each(|_| bytes.push(rng.next() as u8)),
            // Mostly small bytes.
            1 | 2 => (0..rng.below(64)).for_each(|_| bytes.push(rng.byte())),
            // A valid encoding, damaged: a byte changed, then maybe cut short.
            _ => {
                bytes.extend_from_slice(&seeds[rng.below(seeds.len() as u64) as usize]);
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] = rng.byte() ^ rng.next() as u8;
                if rng.below(2) == 0 {
                    bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize);
                }
            }
        }
        let results = [
            shake::<Vec<String>>(&bytes, true),
            shake::<Option<(u32, Vec<u8>)>>(&bytes, true),
            shake::<HashMap<String, Vec<u64>>>(&bytes, false),
            shake::<BTreeMap<u8, Option<char>>>(&bytes, false),
            shake::<Shape>(&bytes, true),
            shake::<Tree>(&bytes, true),
            shake::<Vec<()>>(&bytes, true),
            shake::<(Duration, bool, Result<i8, f32>)>(&bytes, true),
            shake::<[Option<u16>; 3]>(&bytes, true),
            shake::<HashSet<Marker>>(&bytes, false),
        ];
        decoded += results.iter().filter(|ok| **ok).count();
    }
    // The generator reaches past the first byte of most decoders.
    assert!(decoded > 50_000, "only {decoded} successful decodes");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
