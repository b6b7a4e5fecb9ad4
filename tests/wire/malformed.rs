//! Malformed and forged input: truncations, huge counts, bad tags, bad UTF-8, out-of-range
//! numbers, trailing bytes, duplicate keys and deep nesting are typed errors, never a panic or
//! an allocation the input did not pay for.

use super::*;

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
    // A hang catcher: a decode that walked the forged counts would never end.
    assert!(started.elapsed() < Duration::from_secs(30));
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
