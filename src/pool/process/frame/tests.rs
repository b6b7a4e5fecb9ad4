//! The frame reader against whole, split, slow, oversized and forged streams, and a fuzz loop
//! that checks any stream, cut into reads of any sizes, reads as it would in one piece.

use super::*;
use std::time::{Duration, Instant};

/// A frame of `kind` for job `id` with `payload`.
fn frame(kind: u8, id: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let start = begin(&mut out, kind, id);
    out.extend_from_slice(payload);
    finish(&mut out, start, usize::MAX).unwrap();
    out
}

/// Hands out its bytes in reads of the sizes `split` gives, then end of file.
struct Pieces<'a, F> {
    bytes: &'a [u8],
    split: F,
}

impl<F: FnMut() -> usize> Read for Pieces<'_, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.split)().max(1).min(buf.len()).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        Ok(n)
    }
}

/// What a stream reads as: its whole frames, then the error that stops it, if any.
type Reading = (Vec<(u8, u64, Vec<u8>)>, Option<FrameError>);

/// Reads `bytes` with a reader of maximum `max`, in reads of the sizes `split` gives; after
/// every read, checks that the buffer grew only with what had arrived.
fn read_all(bytes: &[u8], max: usize, split: impl FnMut() -> usize) -> Reading {
    let mut reader = FrameReader::new(max);
    let mut input = Pieces { bytes, split };
    let mut frames = Vec::new();
    loop {
        let (before, arrived) = (reader.buf.len(), reader.end - reader.start);
        let n = reader.fill(&mut input).unwrap();
        let grown_to = arrived + arrived.clamp(READ_SIZE, GROW_AHEAD);
        assert!(
            reader.buf.len() <= before.max(grown_to),
            "{arrived} bytes in: a buffer of {} bytes",
            reader.buf.len()
        );
        loop {
            match reader.next() {
                Ok(Some(f)) => frames.push((f.kind, f.id, f.payload.to_vec())),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
        if n == 0 {
            return (frames, None);
        }
    }
}

/// The same stream parsed in one piece, without the reader: what `read_all` must give.
fn parse(mut bytes: &[u8], max: usize) -> Reading {
    let mut frames = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if len > max {
            return (frames, Some(FrameError::TooLong { len, max }));
        }
        if len < HEADER {
            return (frames, Some(FrameError::TooShort { len }));
        }
        let Some(body) = bytes.get(4..4 + len) else {
            break; // the rest has not arrived
        };
        let id = u64::from_le_bytes(body[1..HEADER].try_into().unwrap());
        frames.push((body[0], id, body[HEADER..].to_vec()));
        bytes = &bytes[4 + len..];
    }
    (frames, None)
}

#[test]
fn frames_round_trip_in_one_read() {
    let mut bytes = Vec::new();
    for id in 0..3u64 {
        let start = begin(&mut bytes, CALL, id);
        (id as u32).encode(&mut bytes);
        finish(&mut bytes, start, 1024).unwrap();
    }
    empty(&mut bytes, SHUTDOWN, 0);
    let mut reader = FrameReader::new(1024);
    assert_eq!(reader.fill(&mut &bytes[..]).unwrap(), bytes.len());
    for id in 0..3u64 {
        let f = reader.next().unwrap().unwrap();
        assert_eq!((f.kind, f.id), (CALL, id));
        assert_eq!(u32::from_bytes(f.payload), Ok(id as u32));
    }
    assert_eq!(reader.next().unwrap().unwrap().kind, SHUTDOWN);
    assert!(reader.next().unwrap().is_none());
}

#[test]
fn a_length_over_the_maximum_is_an_error_not_an_allocation() {
    let bytes = u32::MAX.to_le_bytes();
    let mut reader = FrameReader::new(1024);
    reader.fill(&mut &bytes[..]).unwrap();
    assert_eq!(
        reader.next().unwrap_err(),
        FrameError::TooLong {
            len: u32::MAX as usize,
            max: 1024
        }
    );
    assert_eq!(reader.buf.len(), READ_SIZE);
    let mut out = vec![1, 2];
    let start = begin(&mut out, CALL, 1);
    out.extend_from_slice(&[0; 100]);
    assert!(finish(&mut out, start, 50).is_err());
    assert_eq!(out, [1, 2]);
}

#[test]
fn the_largest_maximum_reads_frames_split_across_reads() {
    // A parent built with `.max_frame(usize::MAX)`, or a worker told so by a forged hello: the
    // reader used to compute `max + 4` and panic when a frame arrived in pieces.
    let mut bytes = frame(RESULT, 7, &[1, 2, 3]);
    bytes.extend(frame(CALL, 8, &[9; 300]));
    let whole = parse(&bytes, usize::MAX);
    assert_eq!(whole.0.len(), 2);
    for piece in [1, 2, 3, 5, 13] {
        assert_eq!(read_all(&bytes, usize::MAX, || piece), whole);
    }
    // The forged hello's maximum, as the worker takes it from a u64.
    let max = usize::try_from(u64::MAX).unwrap_or(usize::MAX);
    assert_eq!(read_all(&bytes, max, || 1), whole);
}

#[test]
fn impossible_lengths_are_typed_errors() {
    for len in 0..HEADER as u32 {
        let bytes = len.to_le_bytes();
        let expected = Some(FrameError::TooShort { len: len as usize });
        assert_eq!(read_all(&bytes, usize::MAX, || 1).1, expected);
    }
    for max in [0, 8, 9, 1000] {
        let bytes = u32::MAX.to_le_bytes();
        let len = u32::MAX as usize;
        let expected = Some(FrameError::TooLong { len, max });
        assert_eq!(read_all(&bytes, max, || 3).1, expected);
    }
    // The error names the frame, as the pool's messages show it.
    let text = String::from(FrameError::TooLong { len: 20, max: 10 });
    assert_eq!(text, "a frame of 20 bytes is over the maximum of 10 bytes");
}

#[test]
fn a_slow_large_frame_gets_a_buffer_of_what_arrived() {
    // 16 bytes of a declared 256 MiB frame used to get a 32 MiB buffer: the buffer grew 16 MiB
    // ahead of the data, then doubled again at the next read.
    let declared = 256 << 20;
    let mut bytes = (declared as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 12]);
    bytes.resize(2 * READ_SIZE, 0);
    let mut reader = FrameReader::new(declared);
    let mut slow = Pieces {
        bytes: &bytes,
        split: || 16,
    };
    let mut reads = 0;
    while reader.fill(&mut slow).unwrap() > 0 {
        reads += 1;
        assert!(reader.next().unwrap().is_none());
        let arrived = reader.end - reader.start;
        // What arrived, at most doubled, and one ordinary read.
        let bound = arrived + arrived.max(READ_SIZE);
        assert!(
            reader.buf.len() <= bound,
            "read {reads}: {arrived} bytes in"
        );
    }
    assert_eq!(reads, 2 * READ_SIZE / 16);
}

#[test]
fn a_large_frame_that_keeps_coming_grows_the_buffer_by_doubling() {
    let payload: Vec<u8> = (0..(24 << 20) as u32).map(|i| i as u8).collect();
    let bytes = frame(RESULT, 1, &payload);
    let mut reader = FrameReader::new(32 << 20);
    let mut input = Pieces {
        bytes: &bytes,
        split: || READ_SIZE,
    };
    let mut sizes = vec![reader.buf.len()];
    let payload_read = loop {
        assert!(reader.fill(&mut input).unwrap() > 0);
        if *sizes.last().unwrap() != reader.buf.len() {
            sizes.push(reader.buf.len());
        }
        if let Some(f) = reader.next().unwrap() {
            break f.payload.to_vec();
        }
    };
    assert!(payload_read == payload);
    // Doubling up to GROW_AHEAD, then steps of it: a few dozen growths, not one per read.
    assert!(sizes.len() < 16, "{sizes:?}");
    for pair in sizes.windows(2) {
        assert!(pair[1] <= pair[0] * 2 + READ_SIZE, "{sizes:?}");
    }
}

// ---- Fuzz ---------------------------------------------------------------------------------------

/// splitmix64: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// How many streams the fuzz loops run: a few seconds' worth by default, more with
/// `APLEX_FUZZ_ITERS`.
fn iterations(default: usize) -> usize {
    std::env::var("APLEX_FUZZ_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// A stream as one end of the protocol sends it: frames of the kinds that end sends, with
/// payloads of plausible shapes and sizes.
fn stream(rng: &mut Rng, kinds: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for _ in 0..rng.below(6) {
        let kind = kinds[rng.below(kinds.len())];
        let payload: Vec<u8> = match rng.below(8) {
            0 => Hello {
                magic: [PARENT_MAGIC, WORKER_MAGIC][rng.below(2)].to_string(),
                version: VERSION,
                pid: rng.next() as u32,
                host: "h".repeat(rng.below(3)),
                slot: Some(rng.next()).filter(|_| rng.below(2) == 0),
                names: vec!["double".to_string(); rng.below(3)],
                max_works: rng.next(),
                max_frame: rng.next(),
            }
            .to_bytes(),
            1 => vec![rng.next() as u8; rng.below(READ_SIZE * 3)], // across several reads
            _ => (0..rng.below(40)).map(|_| rng.next() as u8).collect(),
        };
        bytes.extend(frame(kind, rng.next() % 4, &payload));
    }
    bytes
}

/// Damages a stream: changed bytes, forged length fields, cuts, random tails.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..rng.below(4) {
        let at = rng.below(bytes.len());
        match rng.below(5) {
            _ if bytes.is_empty() => bytes.push(rng.next() as u8),
            0 => bytes[at] = rng.next() as u8,
            1 => {
                let len = [0, 8, 9, 10, u32::MAX, u32::MAX - 3, rng.next() as u32];
                let len = len[rng.below(len.len())].to_le_bytes();
                let end = (at + 4).min(bytes.len());
                bytes[at..end].copy_from_slice(&len[..end - at]);
            }
            2 => bytes.truncate(at),
            3 => bytes.extend((0..rng.below(32)).map(|_| rng.next() as u8)),
            _ => bytes.insert(at, rng.next() as u8),
        }
    }
}

#[test]
fn fuzz_streams_read_the_same_in_any_pieces() {
    const PARENT_SENDS: [u8; 5] = [HELLO_PARENT, CALL, CHUNK, CANCEL, SHUTDOWN];
    const WORKER_SENDS: [u8; 2] = [HELLO_WORKER, RESULT];
    let started = Instant::now();
    let mut rng = Rng(0x5EED_F4A3);
    let rounds = iterations(2_000);
    let (mut frames, mut errors) = (0, 0);
    for round in 0..rounds {
        let kinds: &[u8] = if round % 2 == 0 {
            &PARENT_SENDS
        } else {
            &WORKER_SENDS
        };
        let mut bytes = stream(&mut rng, kinds);
        if round % 3 != 0 {
            mutate(&mut rng, &mut bytes);
        }
        if round % 7 == 0 {
            bytes = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        }
        let max = [HEADER, 1024, 256 << 20, usize::MAX][rng.below(4)];
        let whole = parse(&bytes, max);
        let one_stream = Instant::now();
        let mut split_rng = Rng(rng.next());
        let biggest = [1, 7, 100, READ_SIZE, 1 << 20][rng.below(5)];
        let pieces = read_all(&bytes, max, || 1 + split_rng.below(biggest));
        assert!(
            one_stream.elapsed() < Duration::from_secs(1),
            "round {round}"
        );
        assert_eq!(
            pieces,
            whole,
            "round {round}: {} bytes, max {max}",
            bytes.len()
        );
        // Each end decodes the other's hello from any payload without panicking.
        for (kind, _, payload) in &pieces.0 {
            if let Ok(hello) = Hello::from_bytes(payload) {
                let magic = [PARENT_MAGIC, WORKER_MAGIC][usize::from(*kind) % 2];
                let _ = hello.check(magic, &["double"]);
            }
        }
        frames += pieces.0.len();
        errors += usize::from(pieces.1.is_some());
    }
    // The generator reaches both whole frames and broken ones.
    assert!(frames > rounds && errors > rounds / 10, "{frames} {errors}");
    assert!(started.elapsed() < Duration::from_secs(60 + rounds as u64 / 100));
}
