//! Round trips of every supported type, user types included, and the exact bytes of the format.

use super::*;

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
