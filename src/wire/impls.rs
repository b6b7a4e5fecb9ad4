//! [`Wire`] for std types. The bytes of each are in the table of the module docs.

use super::budget::{self, Level, Scope};
use super::{
    decode_count, decode_element, encode_count, encode_slice, encode_str, take, take_array,
    too_large, Wire, WireError,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

macro_rules! impl_int {
    ($($int:ty),*) => {$(
        impl Wire for $int {
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            #[inline]
            fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
                take_array(input).map(<$int>::from_le_bytes)
            }
        }
    )*};
}

impl_int!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

impl Wire for usize {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        // usize is at most 64 bits wide on every target std supports, so this is lossless.
        (*self as u64).encode(out);
    }

    #[inline]
    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let value = u64::decode(input)?;
        usize::try_from(value).map_err(|_| WireError::OutOfRange { type_name: "usize" })
    }
}

impl Wire for isize {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        // isize is at most 64 bits wide on every target std supports, so this is lossless.
        (*self as i64).encode(out);
    }

    #[inline]
    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let value = i64::decode(input)?;
        isize::try_from(value).map_err(|_| WireError::OutOfRange { type_name: "isize" })
    }
}

impl Wire for f32 {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        self.to_bits().encode(out);
    }

    #[inline]
    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        u32::decode(input).map(f32::from_bits)
    }
}

impl Wire for f64 {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        self.to_bits().encode(out);
    }

    #[inline]
    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        u64::decode(input).map(f64::from_bits)
    }
}

impl Wire for bool {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }

    #[inline]
    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        match u8::decode(input)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(WireError::InvalidTag {
                type_name: "bool",
                tag: tag.into(),
            }),
        }
    }
}

impl Wire for char {
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        u32::from(*self).encode(out);
    }

    #[inline]
    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let value = u32::decode(input)?;
        char::from_u32(value).ok_or(WireError::InvalidChar(value))
    }
}

impl Wire for () {
    #[inline]
    fn encode(&self, _out: &mut Vec<u8>) {}

    #[inline]
    fn decode(_input: &mut &[u8]) -> Result<Self, WireError> {
        Ok(())
    }
}

impl Wire for String {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_str(self, out);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let len = decode_count::<u8>(input)?;
        let bytes = take(input, len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| WireError::InvalidUtf8)
    }
}

impl<T: Wire> Wire for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_slice(self, out);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let mut level = Level::enter::<T>(input.len())?;
        let count = decode_count::<T>(input)?;
        let mut items = Vec::with_capacity(level.reserve::<T>(count, input.len()));
        for index in 0..count {
            items.push(decode_element(input, index, count)?);
        }
        Ok(items)
    }
}

impl<T: Wire> Wire for Box<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        T::encode(self, out);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        // `Box` is how a type refers to itself, so it counts as a level of nesting.
        let _level = Level::enter::<T>(input.len())?;
        T::decode(input).map(Box::new)
    }
}

impl<T: Wire> Wire for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                value.encode(out);
            }
        }
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        match u8::decode(input)? {
            0 => Ok(None),
            1 => T::decode(input).map(Some),
            tag => Err(WireError::InvalidTag {
                type_name: "Option",
                tag: tag.into(),
            }),
        }
    }
}

impl<T: Wire, E: Wire> Wire for Result<T, E> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ok(value) => {
                out.push(0);
                value.encode(out);
            }
            Err(error) => {
                out.push(1);
                error.encode(out);
            }
        }
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        match u8::decode(input)? {
            0 => T::decode(input).map(Ok),
            1 => E::decode(input).map(Err),
            tag => Err(WireError::InvalidTag {
                type_name: "Result",
                tag: tag.into(),
            }),
        }
    }
}

macro_rules! impl_tuple {
    ($($ty:ident $field:ident),+) => {
        impl<$($ty: Wire),+> Wire for ($($ty,)+) {
            fn encode(&self, out: &mut Vec<u8>) {
                let ($($field,)+) = self;
                $($field.encode(out);)+
            }

            fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
                Ok(($($ty::decode(input)?,)+))
            }
        }
    };
}

impl_tuple!(A a);
impl_tuple!(A a, B b);
impl_tuple!(A a, B b, C c);
impl_tuple!(A a, B b, C c, D d);
impl_tuple!(A a, B b, C c, D d, E e);
impl_tuple!(A a, B b, C c, D d, E e, F f);
impl_tuple!(A a, B b, C c, D d, E e, F f, G g);
impl_tuple!(A a, B b, C c, D d, E e, F f, G g, H h);

impl<T: Wire, const N: usize> Wire for [T; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        for item in self {
            item.encode(out);
        }
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        // The type fixes N, but the bytes behind it come from the sender: budget as for a Vec.
        let mut decode = Scope::begin(input.len());
        if std::mem::size_of::<T>() == 0 {
            budget::take_empty(N).map_err(|left| too_large(N, left))?;
        }
        let mut items = Vec::with_capacity(decode.reserve::<T>(N, input.len()));
        for index in 0..N {
            items.push(decode_element(input, index, N)?);
        }
        // Exactly N items were pushed, so the conversion cannot fail; still, no panic here.
        items
            .try_into()
            .map_err(|_| WireError::Custom(format!("array of {N} elements came out short")))
    }
}

/// Decodes the count and entries of a map or set, handing each entry to `insert`, which
/// returns `false` for a key it already holds. Maps and sets reserve nothing up front: they grow
/// with the entries that actually decode.
fn decode_entries<E: Wire>(
    input: &mut &[u8],
    mut insert: impl FnMut(E) -> bool,
) -> Result<(), WireError> {
    let _level = Level::enter::<E>(input.len())?;
    let count = decode_count::<E>(input)?;
    for index in 0..count {
        if !insert(decode_element(input, index, count)?) {
            return Err(WireError::DuplicateKey);
        }
    }
    Ok(())
}

impl<K, V, S> Wire for HashMap<K, V, S>
where
    K: Wire + Eq + Hash,
    V: Wire,
    S: BuildHasher + Default,
{
    fn encode(&self, out: &mut Vec<u8>) {
        encode_count(self.len(), out);
        for (key, value) in self {
            key.encode(out);
            value.encode(out);
        }
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let mut map = HashMap::with_hasher(S::default());
        decode_entries(input, |(key, value): (K, V)| {
            map.insert(key, value).is_none()
        })?;
        Ok(map)
    }
}

impl<K: Wire + Ord, V: Wire> Wire for BTreeMap<K, V> {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_count(self.len(), out);
        for (key, value) in self {
            key.encode(out);
            value.encode(out);
        }
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let mut map = BTreeMap::new();
        decode_entries(input, |(key, value): (K, V)| {
            map.insert(key, value).is_none()
        })?;
        Ok(map)
    }
}

impl<T, S> Wire for HashSet<T, S>
where
    T: Wire + Eq + Hash,
    S: BuildHasher + Default,
{
    fn encode(&self, out: &mut Vec<u8>) {
        encode_count(self.len(), out);
        for item in self {
            item.encode(out);
        }
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let mut set = HashSet::with_hasher(S::default());
        decode_entries(input, |item: T| set.insert(item))?;
        Ok(set)
    }
}

impl<T: Wire + Ord> Wire for BTreeSet<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_count(self.len(), out);
        for item in self {
            item.encode(out);
        }
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let mut set = BTreeSet::new();
        decode_entries(input, |item: T| set.insert(item))?;
        Ok(set)
    }
}

impl Wire for Duration {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_secs().encode(out);
        self.subsec_nanos().encode(out);
    }

    fn decode(input: &mut &[u8]) -> Result<Self, WireError> {
        let secs = u64::decode(input)?;
        let nanos = u32::decode(input)?;
        if nanos >= 1_000_000_000 {
            // `Duration::new` would carry them into the seconds, and panic if that overflowed.
            return Err(WireError::OutOfRange {
                type_name: "Duration",
            });
        }
        Ok(Duration::new(secs, nanos))
    }
}
