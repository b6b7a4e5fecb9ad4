//! A fuzz loop: pseudo-random bytes and damaged encodings, decoded as many types, never panic.

use super::*;

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
