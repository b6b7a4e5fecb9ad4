//! The tiny serialization spoken between a parent process and its worker processes.
//!
//! [`Wire`] turns a value into bytes and back. It is implemented for the integers, floats, `bool`,
//! `char`, `()`, `String`, `Vec`, `Box`, `Option`, `Result`, tuples up to 8, arrays, the std maps and
//! sets, and `Duration`; [`wire_type!`](crate::wire_type) implements it for your own structs and
//! enums. These are the bytes of one value; the format knows nothing of frames or processes.
//!
//! ```
//! use aplex::wire::Wire;
//!
//! aplex::wire_type! {
//!     #[derive(Debug, PartialEq)]
//!     pub struct Job { pub id: u64, pub args: Vec<String> }
//! }
//!
//! let job = Job { id: 7, args: vec!["-v".to_string()] };
//! let bytes = job.to_bytes();
//! assert_eq!(bytes.len(), 8 + 8 + 8 + 2); // id, count of args, length of "-v", its bytes
//! assert_eq!(Job::from_bytes(&bytes), Ok(job));
//! ```
//!
//! # Encoding
//!
//! Every value is self-delimiting: a decoder needs no outside length to know where it ends.
//!
//! | type | bytes |
//! |---|---|
//! | `u8` … `u128`, `i8` … `i128` | little-endian, fixed width |
//! | `usize`, `isize` | as `u64`, `i64`; a value the target cannot hold is an error |
//! | `f32`, `f64` | the IEEE bits (`to_bits`) as `u32`, `u64`, so NaN payloads survive |
//! | `bool` | one byte: `0` or `1` |
//! | `char` | its scalar value as `u32` |
//! | `()` | nothing |
//! | `String` | its length in bytes as `u64`, then the UTF-8 bytes |
//! | `Vec<T>`, `HashSet<T>`, `BTreeSet<T>` | the element count as `u64`, then each element |
//! | `HashMap<K, V>`, `BTreeMap<K, V>` | the entry count as `u64`, then key, value, key, value … |
//! | `[T; N]` | the `N` elements, no count (the type knows it) |
//! | tuples | the fields in order |
//! | `Box<T>` | the inner value |
//! | `Option<T>` | `0u8`; or `1u8`, then the value |
//! | `Result<T, E>` | `0u8`, then the `Ok` value; or `1u8`, then the `Err` value |
//! | `Duration` | whole seconds as `u64`, then the nanoseconds below a second as `u32` |
//! | [`wire_type!`](crate::wire_type) struct | the fields in declaration order |
//! | [`wire_type!`](crate::wire_type) enum | the variant's index in declaration order as `u32`, then its fields |
//!
//! Counts are fixed 8-byte integers rather than varints: a few bytes more per string, and nothing to
//! get wrong. Maps and sets are written in iteration order, so the bytes of a `HashMap` may differ
//! from run to run (those of a `BTreeMap` do not); they decode to equal maps either way.
//!
//! # Decoding untrusted bytes
//!
//! Decoding is total: any byte string gives a value or a [`WireError`], never a panic, in memory
//! and time proportional to its length. The bytes may come from another process on another
//! machine, so this holds whatever they are, forged ones included:
//!
//! - **Counts are checked before anything is reserved.** Every element of a type that is not
//!   zero-sized encodes to at least one byte, so a count larger than the bytes left is
//!   [`WireError::LengthTooLarge`] at once: a count of `u64::MAX` costs nothing.
//! - **Reservations are budgeted across the whole decode.** A sequence reserves room for its
//!   elements up front, but no more than the bytes left, and all the sequences of one decode
//!   together hold no more than twice the input's length reserved ahead of the elements that
//!   arrived. So nested sequences whose counts all claim the rest of the input cannot multiply it
//!   (room that is filled is the value's own memory, and is given back to the budget).
//! - **Elements that take no bytes are budgeted across the whole decode.** Zero-sized elements
//!   (`()`, unit structs, `[T; 0]`) and the few that are not zero-sized but write nothing
//!   (`Box<()>`) cannot be bounded by the input length; one decode may produce at most
//!   [`MAX_ZERO_SIZED_LEN`] of them, in all its sequences, maps, sets and arrays together.
//! - **Nesting is bounded.** A type such as `Option<Option<u8>>` or `Box<Box<u8>>` nests only as deep
//!   as the type says. A *recursive* type (`enum Tree { Leaf, Node(Box<Tree>, Box<Tree>) }`, or a
//!   struct holding a `Vec` of itself) nests as deep as the input says, which could overflow the
//!   stack; so `Box`es, sequences, maps and sets may nest at most [`MAX_DEPTH`] levels, and their
//!   elements, summed over the levels open at once, may take at most [`MAX_NESTED_BYTES`] in
//!   memory. Either is [`WireError::TooDeep`].
//! - **A repeated key** in a map or set is [`WireError::DuplicateKey`]: an encoder never writes one.
//!
//! "One decode" is one call of [`Wire::from_bytes`], or of [`Wire::decode`] on a `Box`, sequence,
//! map, set or array that no other decode encloses. (A struct or tuple decoded field by field with
//! `decode` gives each such field its own budget: prefer `from_bytes` for a whole message.)
//!
//! ## Limits
//!
//! - **The constant depends on the type.** Memory is proportional to the input with the factor
//!   of the in-memory size of an element over its encoded size: a `Vec<Option<[u64; 1000]>>` of
//!   `None`s takes 8008 bytes per input byte, because that is what the value is. The std types and
//!   the types [`wire_type!`](crate::wire_type) builds from them take no more than their size per
//!   byte; a fuzz test holds them to 64 bytes per input byte and a mebibyte, for the sizes that
//!   common types have.
//! - **Stack.** A decode holds about one element of each open level on its stack, a few times over
//!   (about 3 times in an optimised build, 6 times in a debug build), plus a few hundred bytes per
//!   level: at most some 6 × [`MAX_NESTED_BYTES`] + 128 KiB, well inside the 2 MiB of a spawned
//!   thread. A type whose values are large inline (a `[u8; 1 << 20]` field) needs that much stack,
//!   that many times over, at any depth: box such fields, or decode on a thread with a larger stack.
//! - **Valid values can be refused.** A value nested deeper than the limits above, or holding more
//!   than [`MAX_ZERO_SIZED_LEN`] elements that take no bytes, encodes but does not decode.
//! - **Hand-written impls** keep these guarantees only if they follow the same rules: check a count
//!   against the input before reserving for it, and decode through the `Wire` impls of std types.
//!   An impl for a type that is not zero-sized should write at least one byte, or a sequence of its
//!   values longer than the rest of the input will not decode.

mod budget;
mod impls;
mod macros;

use std::fmt;
use std::mem::size_of;

/// The most elements that take no bytes one decode may produce, in all its sequences, maps, sets
/// and arrays together.
///
/// Zero-sized elements (`()`, unit structs) and elements that write nothing (`Box<()>`) take no
/// bytes on the wire, so the input length cannot bound their count; this constant does, for the
/// whole value rather than per sequence, so that forged counts cannot keep a decoder spinning.
///
/// ```
/// use aplex::wire::{Wire, WireError, MAX_ZERO_SIZED_LEN};
///
/// let units = vec![(); MAX_ZERO_SIZED_LEN];
/// assert_eq!(Vec::<()>::from_bytes(&units.to_bytes()), Ok(units));
///
/// let forged = u64::MAX.to_bytes(); // a count with no elements behind it
/// assert!(matches!(Vec::<()>::from_bytes(&forged), Err(WireError::LengthTooLarge { .. })));
///
/// // Two sequences of one value share the budget.
/// let halves = vec![vec![(); MAX_ZERO_SIZED_LEN / 2 + 1]; 2];
/// assert!(matches!(
///     Vec::<Vec<()>>::from_bytes(&halves.to_bytes()),
///     Err(WireError::LengthTooLarge { .. })
/// ));
/// ```
pub const MAX_ZERO_SIZED_LEN: usize = 1 << 16;

/// How deep `Box`es, sequences, maps and sets may nest inside one another while decoding.
///
/// Only recursive types can reach this limit; it keeps a forged input from overflowing the stack.
///
/// ```
/// use aplex::wire::{Wire, WireError, MAX_DEPTH};
///
/// aplex::wire_type! {
///     #[derive(Debug, PartialEq)]
///     enum List { Nil, Cons(u8, Box<List>) }
/// }
///
/// let mut list = List::Nil;
/// for i in 0..MAX_DEPTH + 1 {
///     list = List::Cons(i as u8, Box::new(list));
/// }
/// assert_eq!(List::from_bytes(&list.to_bytes()), Err(WireError::TooDeep));
/// ```
pub const MAX_DEPTH: usize = 128;

/// How many bytes the elements of the `Box`es, sequences, maps and sets open at once while
/// decoding may take in memory, summed over the levels: `size_of::<T>()` for a `Box<T>` or
/// `Vec<T>`, `size_of::<(K, V)>()` for a map.
///
/// A decode holds an element of each open level on its stack, so this bounds the stack a
/// recursive type with large values can take: one of 8 KiB per level stops at 16 levels,
/// not at [`MAX_DEPTH`], which would need more stack than a thread has. Types whose nested
/// values are small never reach it.
///
/// ```
/// use aplex::wire::{Wire, WireError, MAX_NESTED_BYTES};
///
/// aplex::wire_type! {
///     #[derive(Debug, PartialEq)]
///     enum Heavy { End, More([u64; 1024], Box<Heavy>) }
/// }
///
/// let levels = MAX_NESTED_BYTES / std::mem::size_of::<Heavy>();
/// let mut heavy = Heavy::End;
/// for _ in 0..levels {
///     heavy = Heavy::More([7; 1024], Box::new(heavy));
/// }
/// let bytes = heavy.to_bytes();
/// assert_eq!(Heavy::from_bytes(&bytes), Ok(heavy));
///
/// let deeper = Heavy::More([7; 1024], Box::new(Heavy::from_bytes(&bytes).unwrap()));
/// assert_eq!(Heavy::from_bytes(&deeper.to_bytes()), Err(WireError::TooDeep));
/// ```
pub const MAX_NESTED_BYTES: usize = 128 << 10;

/// A value that can be written to bytes and read back.
///
/// Implement it with [`wire_type!`](crate::wire_type) for plain structs and enums, or by hand by
/// encoding the fields in order and decoding them in the same order:
///
/// ```
/// use aplex::wire::{Wire, WireError};
///
/// /// A percentage; the decoder rejects values above 100.
/// #[derive(Debug, PartialEq)]
/// struct Percent(u8);
///
/// impl Wire for Percent {
///     fn encode(&self, out: &mut Vec<u8>) {
///         self.0.encode(out);
///     }
///
///     fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
///         match u8::decode(input)? {
///             p @ 0..=100 => Ok(Percent(p)),
///             p => Err(WireError::Custom(format!("{p} is not a percentage"))),
///         }
///     }
/// }
///
/// assert_eq!(Percent(42).to_bytes(), [42]);
/// assert_eq!(Percent::from_bytes(&[42]), Ok(Percent(42)));
/// assert!(Percent::from_bytes(&[200]).is_err());
/// ```
pub trait Wire: Sized {
    /// Appends the encoding of `self` to `out`.
    ///
    /// ```
    /// use aplex::wire::Wire;
    ///
    /// let mut out = Vec::new();
    /// 0x0102u16.encode(&mut out);
    /// Some(true).encode(&mut out);
    /// assert_eq!(out, [0x02, 0x01, 1, 1]);
    /// ```
    fn encode(&self, out: &mut Vec<u8>);

    /// Reads one value from the front of `input` and advances `input` past it.
    ///
    /// # Errors
    ///
    /// A [`WireError`] when the bytes are not the encoding of a `Self`: the input ends too soon,
    /// a tag, count, string or char is invalid, or nesting is too deep. On error, how far `input`
    /// has advanced is unspecified.
    ///
    /// ```
    /// use aplex::wire::Wire;
    ///
    /// let bytes = [5, 0, 0, 0, 9];
    /// let mut input = &bytes[..];
    /// assert_eq!(u32::decode(&mut input), Ok(5));
    /// assert_eq!(input, [9]);
    /// assert!(u32::decode(&mut input).is_err()); // one byte left, four needed
    /// ```
    fn decode(input: &mut &[u8]) -> Result<Self, WireError>;

    /// Encodes `self` into a new vector.
    ///
    /// ```
    /// use aplex::wire::Wire;
    ///
    /// assert_eq!(String::from("hé").to_bytes(), [3, 0, 0, 0, 0, 0, 0, 0, b'h', 0xC3, 0xA9]);
    /// ```
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a value that must take up all of `bytes`.
    ///
    /// # Errors
    ///
    /// Those of [`decode`](Wire::decode), and [`WireError::TrailingBytes`] when bytes remain
    /// after the value.
    ///
    /// ```
    /// use aplex::wire::{Wire, WireError};
    ///
    /// assert_eq!(u16::from_bytes(&[1, 0]), Ok(1));
    /// assert_eq!(u16::from_bytes(&[1, 0, 0]), Err(WireError::TrailingBytes(1)));
    /// ```
    fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        // The whole of `bytes` is one decode: its levels share one budget.
        let _decode = budget::Scope::begin(bytes.len());
        let mut input = bytes;
        let value = Self::decode(&mut input)?;
        if input.is_empty() {
            Ok(value)
        } else {
            Err(WireError::TrailingBytes(input.len()))
        }
    }
}

/// Why bytes could not be decoded.
///
/// ```
/// use aplex::wire::{Wire, WireError};
///
/// let err = bool::from_bytes(&[7]).unwrap_err();
/// assert_eq!(err, WireError::InvalidTag { type_name: "bool", tag: 7 });
/// assert_eq!(err.to_string(), "invalid tag 7 for bool");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The input ended inside a value.
    UnexpectedEnd {
        /// How many bytes the next read needed.
        needed: usize,
        /// How many bytes were left.
        remaining: usize,
    },
    /// A count or length is larger than the input can hold (or, for elements that take no bytes,
    /// than what is left of [`MAX_ZERO_SIZED_LEN`]).
    LengthTooLarge {
        /// The count read from the input.
        length: u64,
        /// The largest count that was acceptable there.
        limit: u64,
    },
    /// A `bool`, `Option` or `Result` tag byte, or an enum variant index, that the type does not have.
    InvalidTag {
        /// The type being decoded.
        type_name: &'static str,
        /// The tag read from the input.
        tag: u32,
    },
    /// A string's bytes are not UTF-8.
    InvalidUtf8,
    /// A `u32` that is not a Unicode scalar value was read as a `char`.
    InvalidChar(u32),
    /// A number does not fit the type being decoded: a `usize` or `isize` beyond the target's
    /// range, or a `Duration` with a billion nanoseconds or more.
    OutOfRange {
        /// The type being decoded.
        type_name: &'static str,
    },
    /// A map or set holds the same key twice.
    DuplicateKey,
    /// Boxes, sequences, maps and sets nest deeper than [`MAX_DEPTH`], or their elements take
    /// more than [`MAX_NESTED_BYTES`] summed over the levels.
    TooDeep,
    /// [`Wire::from_bytes`] decoded a value and this many bytes were left over.
    TrailingBytes(usize),
    /// An error from a hand-written [`Wire`] impl.
    Custom(String),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::UnexpectedEnd { needed, remaining } => write!(
                f,
                "unexpected end of input: needed {needed} bytes, {remaining} left"
            ),
            WireError::LengthTooLarge { length, limit } => {
                write!(f, "length {length} is over the limit of {limit}")
            }
            WireError::InvalidTag { type_name, tag } => {
                write!(f, "invalid tag {tag} for {type_name}")
            }
            WireError::InvalidUtf8 => f.write_str("string is not valid utf-8"),
            WireError::InvalidChar(value) => write!(f, "invalid char value {value:#x}"),
            WireError::OutOfRange { type_name } => write!(f, "value out of range for {type_name}"),
            WireError::DuplicateKey => f.write_str("duplicate key in a map or set"),
            WireError::TooDeep => write!(
                f,
                "nesting deeper than {MAX_DEPTH} levels or {MAX_NESTED_BYTES} bytes"
            ),
            WireError::TrailingBytes(count) => write!(f, "{count} trailing bytes after the value"),
            WireError::Custom(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for WireError {}

/// Encodes a `&str` exactly as the equal `String` would be encoded, without allocating one.
///
/// ```
/// use aplex::wire::{encode_str, Wire};
///
/// let mut out = Vec::new();
/// encode_str("héllo", &mut out);
/// assert_eq!(out, String::from("héllo").to_bytes());
/// assert_eq!(String::from_bytes(&out).unwrap(), "héllo");
/// ```
pub fn encode_str(s: &str, out: &mut Vec<u8>) {
    encode_count(s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

/// Encodes a slice exactly as the equal `Vec<T>` would be encoded, without allocating one.
///
/// ```
/// use aplex::wire::{encode_slice, Wire};
///
/// let mut out = Vec::new();
/// encode_slice(&[1u16, 2, 3][..2], &mut out);
/// assert_eq!(out, vec![1u16, 2].to_bytes());
/// assert_eq!(Vec::<u16>::from_bytes(&out), Ok(vec![1, 2]));
/// ```
pub fn encode_slice<T: Wire>(items: &[T], out: &mut Vec<u8>) {
    encode_count(items.len(), out);
    for item in items {
        item.encode(out);
    }
}

// ---- Helpers shared by the impls ------------------------------------------------------------

/// Splits `n` bytes off the front of `input`.
#[inline]
fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], WireError> {
    if input.len() < n {
        return Err(unexpected_end(n, input.len()));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

/// [`WireError::UnexpectedEnd`], out of line: the hot paths only test for it.
#[cold]
fn unexpected_end(needed: usize, remaining: usize) -> WireError {
    WireError::UnexpectedEnd { needed, remaining }
}

/// Splits `N` bytes off the front of `input`, as an array.
#[inline]
fn take_array<const N: usize>(input: &mut &[u8]) -> Result<[u8; N], WireError> {
    let mut bytes = [0; N];
    bytes.copy_from_slice(take(input, N)?); // `take` returned exactly N bytes
    Ok(bytes)
}

/// Writes a count or length as a `u64`.
#[inline]
fn encode_count(count: usize, out: &mut Vec<u8>) {
    // usize is at most 64 bits wide on every target std supports, so this is lossless.
    (count as u64).encode(out);
}

/// Reads the count of a sequence of `T`s and checks it against what the input can hold: the bytes
/// left, or, when `T` is zero-sized, what the decode may still produce of elements that take no
/// bytes (see the module docs), which the count then uses up.
fn decode_count<T>(input: &mut &[u8]) -> Result<usize, WireError> {
    let count = u64::decode(input)?;
    let zero_sized = size_of::<T>() == 0;
    let limit = if zero_sized {
        budget::empty_left()
    } else {
        input.len()
    };
    match usize::try_from(count) {
        Ok(count) if count <= limit => {
            if zero_sized {
                // Within what was left a moment ago, on this thread: cannot fail.
                budget::take_empty(count).map_err(|left| too_large(count, left))?;
            }
            Ok(count)
        }
        _ => Err(WireError::LengthTooLarge {
            length: count,
            limit: limit as u64, // lossless, as in `encode_count`
        }),
    }
}

/// Decodes element `index` of `count` in a sequence, map, set or array of `T`s. An element that
/// is not zero-sized but took no bytes (`Box<()>`) counts against the decode's budget of such
/// elements: the input length cannot bound how many of them there are. (Zero-sized elements were
/// counted with their count, by [`decode_count`] or the array.)
#[inline]
fn decode_element<T: Wire>(input: &mut &[u8], index: usize, count: usize) -> Result<T, WireError> {
    let before = input.len();
    let element = T::decode(input)?;
    if size_of::<T>() != 0 && input.len() == before {
        took_no_bytes(index, count)?;
    }
    Ok(element)
}

/// Counts element `index` of `count`, which took no bytes, against the decode's budget.
#[cold]
fn took_no_bytes(index: usize, count: usize) -> Result<(), WireError> {
    // The elements before this one are the most the budget allowed here.
    budget::take_empty(1).map_err(|_| too_large(count, index))
}

/// [`WireError::LengthTooLarge`] for a count of `length` where `limit` was the most allowed.
fn too_large(length: usize, limit: usize) -> WireError {
    // usize is at most 64 bits wide on every target std supports, so this is lossless.
    WireError::LengthTooLarge {
        length: length as u64,
        limit: limit as u64,
    }
}
