//! Lists of fixed-size numbers, held as one typed buffer.
//!
//! A `list<T>` for `T` one of s8, s16, u16, s32, u32, s64, u64, f32 or f64 is produced as
//! [`Value::Numbers`]: 1 to 8 bytes per item instead of a 32-byte [`Value`] each, copied to
//! and from guest memory in one pass, written to and read from records in one loop
//! ([`super::wire`]). It hashes and encodes exactly as the list of its items would
//! (`canonical`, postcard), so keys and record bytes do not depend on the form, and a
//! [`Value::List`] of the same items is read wherever a value is read, as the same list.
//! (`list<u8>` has its own form, [`Value::Bytes`]; bool and char lists stay item lists.)

use super::{Buf, Ty, Value};

/// Items at a time turned into little-endian bytes on the stack by [`Numbers::for_each_le_chunk`].
const CHUNK_ITEMS: usize = 2048;

macro_rules! numbers {
    ($($kind:ident($t:ty)),* $(,)?) => {
        /// The items of a list of one fixed-size number type, in order.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Numbers {
            $(
                #[allow(missing_docs)]
                $kind(Buf<$t>),
            )*
        }

        impl Numbers {
            /// How many items the list holds.
            pub fn len(&self) -> usize {
                match self {
                    $(Numbers::$kind(items) => items.len(),)*
                }
            }

            /// Whether the list is empty.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether the items are borrowed from guest memory (see [`Buf`]).
            pub fn is_borrowed(&self) -> bool {
                match self {
                    $(Numbers::$kind(items) => items.is_borrowed(),)*
                }
            }

            /// The type of the items.
            pub fn item_ty(&self) -> Ty {
                match self {
                    $(Numbers::$kind(_) => Ty::$kind,)*
                }
            }

            /// Item `index` as a [`Value`].
            pub fn get(&self, index: usize) -> Option<Value> {
                match self {
                    $(Numbers::$kind(items) => items.get(index).map(|x| Value::$kind(*x)),)*
                }
            }

            /// An empty list of `item`s, if `item` is a number type held this way.
            pub fn empty(item: &Ty) -> Option<Numbers> {
                Numbers::with_capacity(item, 0)
            }

            /// An empty list of `item`s with room for `capacity` of them.
            pub fn with_capacity(item: &Ty, capacity: usize) -> Option<Numbers> {
                match item {
                    $(Ty::$kind => Some(Numbers::$kind(Vec::with_capacity(capacity).into())),)*
                    _ => None,
                }
            }

            /// Appends `value` if it is an item of this list's type; false (and nothing
            /// appended) otherwise.
            pub fn push(&mut self, value: &Value) -> bool {
                match (self, value) {
                    $((Numbers::$kind(items), Value::$kind(x)) => items.to_mut().push(*x),)*
                    _ => return false,
                }
                true
            }

            /// Reads `bytes` as the little-endian items of a list of `item`s (the canonical
            /// ABI's layout of such a list in guest memory); `None` if `item` is not held
            /// this way or `bytes` is not a whole number of items.
            pub fn from_le_bytes(item: &Ty, bytes: &[u8]) -> Option<Numbers> {
                match item {
                    $(Ty::$kind => {
                        let chunks = bytes.chunks_exact(size_of::<$t>());
                        if !chunks.remainder().is_empty() {
                            return None;
                        }
                        Some(Numbers::$kind(
                            chunks.map(|c| <$t>::from_le_bytes(c.try_into().expect("chunk size"))).collect(),
                        ))
                    })*
                    _ => None,
                }
            }

            /// `bytes`, the little-endian items of a list of `item`s, borrowed in place
            /// (see [`Buf::borrowed`]): on a little-endian machine, when `bytes` is aligned
            /// for the items and a whole number of them. `None` otherwise.
            ///
            /// # Safety
            /// As for [`Buf::borrowed`].
            pub unsafe fn borrowed_le_bytes(item: &Ty, bytes: &[u8]) -> Option<Numbers> {
                if cfg!(target_endian = "big") {
                    return None;
                }
                match item {
                    $(Ty::$kind => {
                        const SIZE: usize = size_of::<$t>();
                        if !bytes.len().is_multiple_of(SIZE) || !bytes.as_ptr().cast::<$t>().is_aligned() {
                            return None;
                        }
                        // SAFETY: aligned, a whole number of items, and every bit pattern is
                        // a valid number; the caller keeps the memory valid (see above).
                        let items = unsafe {
                            std::slice::from_raw_parts(bytes.as_ptr().cast::<$t>(), bytes.len() / SIZE)
                        };
                        Some(Numbers::$kind(unsafe { Buf::borrowed(items) }))
                    })*
                    _ => None,
                }
            }

            /// Writes the items little-endian into `target`, which holds exactly
            /// [`Numbers::byte_len`] bytes.
            pub fn write_le_bytes(&self, target: &mut [u8]) {
                assert_eq!(target.len(), self.byte_len(), "the target fits the list exactly");
                match self {
                    $(Numbers::$kind(items) => {
                        for (x, chunk) in items.iter().zip(target.chunks_exact_mut(size_of::<$t>())) {
                            chunk.copy_from_slice(&x.to_le_bytes());
                        }
                    })*
                }
            }

            /// The size of one item in bytes.
            pub fn item_size(&self) -> usize {
                match self {
                    $(Numbers::$kind(_) => size_of::<$t>(),)*
                }
            }

            /// Calls `f` on successive slices of the items' little-endian bytes; with
            /// `canon_floats`, a float's NaNs and zeros in the one form the canonical
            /// encoding hashes (integers are as they are). Slices are at most
            /// [`CHUNK_ITEMS`] items long, built on the stack.
            pub fn for_each_le_chunk(&self, canon_floats: bool, mut f: impl FnMut(&[u8])) {
                let mut buf = [0u8; CHUNK_ITEMS * 8];
                match self {
                    $(Numbers::$kind(items) => {
                        const SIZE: usize = size_of::<$t>();
                        for part in items.chunks(CHUNK_ITEMS) {
                            let out = &mut buf[..part.len() * SIZE];
                            for (x, chunk) in part.iter().zip(out.chunks_exact_mut(SIZE)) {
                                let x = if canon_floats { Canonical::canonical(*x) } else { *x };
                                chunk.copy_from_slice(&x.to_le_bytes());
                            }
                            f(out);
                        }
                    })*
                }
            }
        }
    };
}

numbers!(S8(i8), S16(i16), U16(u16), S32(i32), U32(u32), S64(i64), U64(u64), F32(f32), F64(f64));

impl Numbers {
    /// The items' size in bytes when laid out one after another.
    pub fn byte_len(&self) -> usize {
        self.len() * self.item_size()
    }

    /// The items' little-endian bytes as they lie in memory, without a copy, when those are
    /// also their canonical bytes: on a little-endian machine, for integers, and for floats
    /// holding no NaN and no zero (-0.0 and +0.0 hash alike). `None` otherwise.
    pub fn canonical_le_bytes(&self) -> Option<&[u8]> {
        if cfg!(target_endian = "big") {
            return None;
        }
        let canonical = match self {
            Numbers::F32(items) => items.iter().all(|x| !x.is_nan() && *x != 0.0),
            Numbers::F64(items) => items.iter().all(|x| !x.is_nan() && *x != 0.0),
            _ => true,
        };
        canonical.then(|| self.raw_bytes())
    }

    /// The items' bytes in memory order.
    fn raw_bytes(&self) -> &[u8] {
        macro_rules! raw {
            ($items:expr) => {
                // SAFETY: the items are plain numbers (no padding, every bit pattern a valid
                // u8), the slice covers exactly their memory, and u8 needs no alignment.
                unsafe { std::slice::from_raw_parts($items.as_ptr().cast::<u8>(), std::mem::size_of_val(&$items[..])) }
            };
        }
        match self {
            Numbers::S8(items) => raw!(items),
            Numbers::S16(items) => raw!(items),
            Numbers::U16(items) => raw!(items),
            Numbers::S32(items) => raw!(items),
            Numbers::U32(items) => raw!(items),
            Numbers::S64(items) => raw!(items),
            Numbers::U64(items) => raw!(items),
            Numbers::F32(items) => raw!(items),
            Numbers::F64(items) => raw!(items),
        }
    }

    /// The items as [`Value`]s, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Value> + '_ {
        (0..self.len()).map(|i| self.get(i).expect("index below len"))
    }

    /// The list `items` of `item`s in the form every producer gives it: [`Value::Numbers`]
    /// for a number type held this way, [`Value::List`] otherwise (or if an item does not
    /// fit `item`, so that whoever reads the value against its type reports where).
    pub fn list_of(item: &Ty, items: Vec<Value>) -> Value {
        if let Some(mut numbers) = Numbers::with_capacity(item, items.len()) {
            if items.iter().all(|v| numbers.push(v)) {
                return Value::Numbers(numbers);
            }
        }
        Value::List(items)
    }
}

/// A number in the one form the canonical encoding hashes: every NaN one bit pattern, and
/// -0.0 as +0.0, for floats; integers as they are.
trait Canonical: Copy {
    fn canonical(self) -> Self;
}

macro_rules! integers_are_canonical {
    ($($t:ty),*) => {
        $(impl Canonical for $t {
            fn canonical(self) -> Self {
                self
            }
        })*
    };
}

integers_are_canonical!(i8, i16, u16, i32, u32, i64, u64);

impl Canonical for f32 {
    fn canonical(self) -> Self {
        f32::from_bits(f32_bits(self))
    }
}

impl Canonical for f64 {
    fn canonical(self) -> Self {
        f64::from_bits(f64_bits(self))
    }
}

/// The one bit pattern every `f32` NaN encodes as.
const F32_NAN: u32 = 0x7fc0_0000;
/// The one bit pattern every `f64` NaN encodes as.
const F64_NAN: u64 = 0x7ff8_0000_0000_0000;

pub(crate) fn f32_bits(x: f32) -> u32 {
    if x.is_nan() {
        F32_NAN
    } else if x == 0.0 {
        0 // -0.0 == 0.0, so both become +0.0
    } else {
        x.to_bits()
    }
}

pub(crate) fn f64_bits(x: f64) -> u64 {
    if x.is_nan() {
        F64_NAN
    } else if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn list_of_gives_numbers_for_number_items_only() {
        let numbers = Numbers::list_of(&Ty::U32, vec![Value::U32(1), Value::U32(2)]);
        assert_eq!(numbers, Value::Numbers(Numbers::U32(vec![1, 2].into())));
        assert_eq!(Numbers::list_of(&Ty::F64, vec![]), Value::Numbers(Numbers::F64(vec![].into())));
        let strings = vec![Value::String("a".into())];
        assert_eq!(Numbers::list_of(&Ty::String, strings.clone()), Value::List(strings));
        // An item of another type keeps the item list, for the type check to name it.
        let mixed = vec![Value::U32(1), Value::S64(2)];
        assert_eq!(Numbers::list_of(&Ty::U32, mixed.clone()), Value::List(mixed));
        assert_eq!(Numbers::empty(&Ty::Bool), None);
        assert_eq!(Numbers::empty(&Ty::U8), None);
    }

    /// A list of each kind, with each kind's edge values.
    pub(crate) fn every_kind() -> Vec<Numbers> {
        vec![
            Numbers::S8(vec![-128, 0, 127].into()),
            Numbers::S16(vec![i16::MIN, -1, 300].into()),
            Numbers::U16(vec![0, 65535].into()),
            Numbers::S32(vec![i32::MIN, 7].into()),
            Numbers::U32(vec![u32::MAX, 0, 1 << 20].into()),
            Numbers::S64(vec![i64::MIN, -3].into()),
            Numbers::U64(vec![u64::MAX].into()),
            Numbers::F32(vec![-0.0, 1.5, f32::INFINITY, f32::NAN].into()),
            Numbers::F64(vec![f64::MIN_POSITIVE, -2.25, -f64::NAN, -0.0].into()),
        ]
    }

    fn items(numbers: &Numbers) -> Value {
        Value::List(numbers.iter().collect())
    }

    #[test]
    fn numbers_encode_as_the_list_of_their_items() {
        for numbers in every_kind() {
            let held = Value::Numbers(numbers.clone());
            assert_eq!(postcard::to_allocvec(&held).unwrap(), postcard::to_allocvec(&items(&numbers)).unwrap());
        }
    }

    #[test]
    fn le_bytes_round_trip_for_every_kind() {
        for list in every_kind() {
            let mut bytes = vec![0; list.byte_len()];
            list.write_le_bytes(&mut bytes);
            let back = Numbers::from_le_bytes(&list.item_ty(), &bytes).unwrap();
            let mut again = vec![0; back.byte_len()];
            back.write_le_bytes(&mut again);
            assert_eq!(again, bytes);
            assert_eq!(list.iter().count(), list.len());
        }
        assert_eq!(Numbers::from_le_bytes(&Ty::U32, &[1, 2, 3]), None, "not a whole number of items");
    }

    #[test]
    fn canonical_bytes_are_borrowed_only_when_they_are_the_canonical_ones() {
        for list in every_kind() {
            let mut chunked = Vec::new();
            list.for_each_le_chunk(true, |bytes| chunked.extend_from_slice(bytes));
            if let Some(bytes) = list.canonical_le_bytes() {
                assert_eq!(bytes, &chunked[..], "{list:?}");
            }
        }
        assert!(Numbers::U64(vec![1, 2].into()).canonical_le_bytes().is_some());
        assert!(Numbers::F64(vec![1.0, 2.5].into()).canonical_le_bytes().is_some());
        assert!(Numbers::F64(vec![1.0, -0.0].into()).canonical_le_bytes().is_none());
        assert!(Numbers::F32(vec![f32::NAN].into()).canonical_le_bytes().is_none());
    }

    #[test]
    fn le_chunks_cover_every_item_in_order() {
        let list = Numbers::U32((0..5000).collect());
        let mut seen = Vec::new();
        list.for_each_le_chunk(false, |bytes| seen.extend_from_slice(bytes));
        let mut expected = vec![0; list.byte_len()];
        list.write_le_bytes(&mut expected);
        assert_eq!(seen, expected);
        let floats = Numbers::F64(vec![f64::NAN, -0.0].into());
        let mut canon = Vec::new();
        floats.for_each_le_chunk(true, |bytes| canon.extend_from_slice(bytes));
        assert_eq!(&canon[..8], &0x7ff8_0000_0000_0000u64.to_le_bytes());
        assert_eq!(&canon[8..], &0u64.to_le_bytes());
    }
}
