//! Owned WIT values and types, independent of wasmtime's `Val`.
//!
//! Everything the host hashes, stores or prints goes through [`Value`], a positional
//! value that needs its [`Ty`] to be read back: a record is its fields in order, a
//! variant is its case index. `Val` is converted at the boundary and never hashed or
//! compared itself (its equality is documented as fuzzing-grade).
//!
//! A `list<u8>` is always [`Value::Bytes`], never a [`Value::List`] of [`Value::U8`]: every
//! function in this module produces Bytes for it and refuses a List, so a value has one
//! representation and a large byte buffer stays one allocation. A list of numbers of another
//! fixed-size type is produced as [`Value::Numbers`], one typed buffer (see [`numbers`]).

pub mod abi;
pub mod canonical;
pub mod convert;
pub mod json;
pub mod numbers;
#[cfg(test)]
pub(crate) mod samples;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use numbers::Numbers;

/// A WIT value type that can cross into a task's own Store.
///
/// Resources, streams and futures have no `Ty`: a task whose signature holds one is
/// refused when its component is loaded.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Ty {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Box<Ty>),
    /// Fields in declaration order: (name, type).
    Record(Vec<(String, Ty)>),
    /// Item types in order.
    Tuple(Vec<Ty>),
    /// Cases in declaration order: (name, payload type).
    Variant(Vec<(String, Option<Ty>)>),
    /// Case names in declaration order.
    Enum(Vec<String>),
    /// `option<T>`.
    Option(Box<Ty>),
    /// `result<ok, err>`; either side may have no payload.
    Result {
        /// The `ok` payload type, if any.
        ok: Option<Box<Ty>>,
        /// The `err` payload type, if any.
        err: Option<Box<Ty>>,
    },
    /// Flag names in declaration order.
    Flags(Vec<String>),
}

/// An owned WIT value; its shape is given by a [`Ty`] kept beside it.
///
/// It encodes (serde, so postcard) as the derived encoding of the variants before
/// [`Value::Numbers`] would, and `Numbers` as the `List` of its items: record bytes never
/// show which form a list of numbers was held in.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    S8(i8),
    U8(u8),
    S16(i16),
    U16(u16),
    S32(i32),
    U32(u32),
    S64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    Char(char),
    String(String),
    /// Items of a `list<T>` for any `T` but `u8` (and, as produced, but the number types
    /// that [`Value::Numbers`] holds).
    List(Vec<Value>),
    /// A `list<u8>`, its only representation.
    Bytes(Vec<u8>),
    /// Field values in declaration order.
    Record(Vec<Value>),
    /// Items in order.
    Tuple(Vec<Value>),
    /// The case index and its payload, if the case has one.
    Variant(u32, Option<Box<Value>>),
    /// The case index.
    Enum(u32),
    /// `None` or the payload.
    Option(Option<Box<Value>>),
    /// `Ok` or `Err`, each with its payload if the type has one.
    Result(Result<Option<Box<Value>>, Option<Box<Value>>>),
    /// Indices of the flags that are set, ascending.
    Flags(Vec<u32>),
    /// A `list<T>` for `T` a number type other than `u8`, as one typed buffer.
    Numbers(Numbers),
}

/// A value did not fit the type it was read against; `path` says where, e.g. `$.items[3]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ValueError {
    /// Where in the value the mismatch is, JSONPath-like: `$`, `$.name`, `$[2]`.
    pub path: String,
    /// What was expected and what was found.
    pub message: String,
}

impl ValueError {
    /// An error at `path` with `message`.
    pub(crate) fn at(path: &Path<'_>, message: impl Into<String>) -> ValueError {
        ValueError { path: path.to_string(), message: message.into() }
    }

    /// The value at `path` is of the wrong kind for `ty`.
    pub(crate) fn mismatch(path: &Path<'_>, ty: &Ty, value: &Value) -> ValueError {
        ValueError::at(path, format!("expected {}, found {}", json::type_name(ty), value.kind()))
    }
}

impl Value {
    /// The kind of this value in WIT terms, for error messages: `u32`, `list`, `record`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::S8(_) => "s8",
            Value::U8(_) => "u8",
            Value::S16(_) => "s16",
            Value::U16(_) => "u16",
            Value::S32(_) => "s32",
            Value::U32(_) => "u32",
            Value::S64(_) => "s64",
            Value::U64(_) => "u64",
            Value::F32(_) => "f32",
            Value::F64(_) => "f64",
            Value::Char(_) => "char",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Bytes(_) => "list<u8>",
            Value::Record(_) => "record",
            Value::Tuple(_) => "tuple",
            Value::Variant(..) => "variant",
            Value::Enum(_) => "enum",
            Value::Option(_) => "option",
            Value::Result(_) => "result",
            Value::Flags(_) => "flags",
            Value::Numbers(_) => "list",
        }
    }
}

impl Ty {
    /// Whether this is `list<u8>`, whose values are [`Value::Bytes`].
    pub fn is_bytes(&self) -> bool {
        matches!(self, Ty::List(item) if **item == Ty::U8)
    }

    /// Whether a value of this type may hold a [`Value::Numbers`] anywhere inside.
    pub fn holds_numbers(&self) -> bool {
        match self {
            Ty::List(item) => Numbers::empty(item).is_some() || item.holds_numbers(),
            Ty::Record(fields) => fields.iter().any(|(_, ty)| ty.holds_numbers()),
            Ty::Tuple(types) => types.iter().any(Ty::holds_numbers),
            Ty::Variant(cases) => cases.iter().any(|(_, ty)| ty.as_ref().is_some_and(Ty::holds_numbers)),
            Ty::Option(item) => item.holds_numbers(),
            Ty::Result { ok, err } => [ok, err].into_iter().flatten().any(|ty| ty.holds_numbers()),
            _ => false,
        }
    }
}

/// Where a walk over a value is, built on the stack as the walk descends and rendered
/// (`$.items[3]`) only when an error needs it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Path<'a> {
    /// The value itself: `$`.
    Root,
    /// A named member of the parent: record field, variant case, `ok`/`err`.
    Field(&'a Path<'a>, &'a str),
    /// An item of a list or tuple.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The member `name` of this place.
    pub(crate) fn field(&'a self, name: &'a str) -> Path<'a> {
        Path::Field(self, name)
    }

    /// The item `index` of this place.
    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("$"),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// How deep a decoded [`Ty`] or [`Value`] may nest. Decoding recurses once per level, so
/// without a bound a small crafted record (two bytes per level) would overflow the stack;
/// real WIT types are nowhere near this deep.
pub const MAX_DECODE_DEPTH: u32 = 128;

mod decode_depth {
    use std::cell::Cell;

    thread_local! {
        static DEPTH: Cell<u32> = const { Cell::new(0) };
    }

    /// One level of nesting being decoded; dropping it leaves the level.
    pub struct Level(());

    impl Level {
        pub fn enter<E: serde::de::Error>() -> Result<Level, E> {
            DEPTH.with(|depth| {
                if depth.get() >= super::MAX_DECODE_DEPTH {
                    return Err(E::custom(format!(
                        "the data is nested deeper than {} levels",
                        super::MAX_DECODE_DEPTH
                    )));
                }
                depth.set(depth.get() + 1);
                Ok(Level(()))
            })
        }
    }

    impl Drop for Level {
        fn drop(&mut self) {
            DEPTH.with(|depth| depth.set(depth.get() - 1));
        }
    }
}

// `Ty` decodes through this mirror (serde's `remote`) and `Value` through `ValueIn` below,
// which read exactly the derived format; the manual impls count the nesting on the way in.

#[derive(Deserialize)]
#[serde(remote = "Ty")]
#[allow(dead_code)]
enum TyDef {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Box<Ty>),
    Record(Vec<(String, Ty)>),
    Tuple(Vec<Ty>),
    Variant(Vec<(String, Option<Ty>)>),
    Enum(Vec<String>),
    Option(Box<Ty>),
    Result { ok: Option<Box<Ty>>, err: Option<Box<Ty>> },
    Flags(Vec<String>),
}

impl<'de> Deserialize<'de> for Ty {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Ty, D::Error> {
        let _level = decode_depth::Level::enter::<D::Error>()?;
        TyDef::deserialize(deserializer)
    }
}

/// The encoded form of [`Value`]: the variants in their order, `Numbers` written as the
/// `List` of its items.
#[derive(Serialize)]
#[serde(rename = "Value")]
enum ValueOut<'a> {
    Bool(bool),
    S8(i8),
    U8(u8),
    S16(i16),
    U16(u16),
    S32(i32),
    U32(u32),
    S64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    Char(char),
    String(&'a str),
    List(ListOut<'a>),
    Bytes(#[serde(with = "bytes_serde")] &'a [u8]),
    Record(&'a [Value]),
    Tuple(&'a [Value]),
    Variant(u32, &'a Option<Box<Value>>),
    Enum(u32),
    Option(&'a Option<Box<Value>>),
    Result(&'a Result<Option<Box<Value>>, Option<Box<Value>>>),
    Flags(&'a [u32]),
}

/// The items of a list, in either form, written as a sequence of values.
enum ListOut<'a> {
    Values(&'a [Value]),
    Numbers(&'a Numbers),
}

impl Serialize for ListOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ListOut::Values(items) => serializer.collect_seq(items.iter()),
            ListOut::Numbers(numbers) => serializer.collect_seq(numbers.iter()),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let out = match self {
            Value::Bool(x) => ValueOut::Bool(*x),
            Value::S8(x) => ValueOut::S8(*x),
            Value::U8(x) => ValueOut::U8(*x),
            Value::S16(x) => ValueOut::S16(*x),
            Value::U16(x) => ValueOut::U16(*x),
            Value::S32(x) => ValueOut::S32(*x),
            Value::U32(x) => ValueOut::U32(*x),
            Value::S64(x) => ValueOut::S64(*x),
            Value::U64(x) => ValueOut::U64(*x),
            Value::F32(x) => ValueOut::F32(*x),
            Value::F64(x) => ValueOut::F64(*x),
            Value::Char(x) => ValueOut::Char(*x),
            Value::String(x) => ValueOut::String(x),
            Value::List(items) => ValueOut::List(ListOut::Values(items)),
            Value::Numbers(numbers) => ValueOut::List(ListOut::Numbers(numbers)),
            Value::Bytes(bytes) => ValueOut::Bytes(bytes),
            Value::Record(items) => ValueOut::Record(items),
            Value::Tuple(items) => ValueOut::Tuple(items),
            Value::Variant(index, payload) => ValueOut::Variant(*index, payload),
            Value::Enum(index) => ValueOut::Enum(*index),
            Value::Option(payload) => ValueOut::Option(payload),
            Value::Result(result) => ValueOut::Result(result),
            Value::Flags(set) => ValueOut::Flags(set),
        };
        out.serialize(serializer)
    }
}

/// The decoded form of [`Value`], variant for variant the encoded one; a list whose items
/// are all numbers of one held type comes out as [`Value::Numbers`] (see [`ListIn`]).
#[derive(Deserialize)]
#[serde(rename = "Value")]
enum ValueIn {
    Bool(bool),
    S8(i8),
    U8(u8),
    S16(i16),
    U16(u16),
    S32(i32),
    U32(u32),
    S64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    Char(char),
    String(String),
    List(ListIn),
    Bytes(#[serde(with = "bytes_serde")] Vec<u8>),
    Record(Vec<Value>),
    Tuple(Vec<Value>),
    Variant(u32, Option<Box<Value>>),
    Enum(u32),
    Option(Option<Box<Value>>),
    Result(Result<Option<Box<Value>>, Option<Box<Value>>>),
    Flags(Vec<u32>),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        let _level = decode_depth::Level::enter::<D::Error>()?;
        Ok(match ValueIn::deserialize(deserializer)? {
            ValueIn::Bool(x) => Value::Bool(x),
            ValueIn::S8(x) => Value::S8(x),
            ValueIn::U8(x) => Value::U8(x),
            ValueIn::S16(x) => Value::S16(x),
            ValueIn::U16(x) => Value::U16(x),
            ValueIn::S32(x) => Value::S32(x),
            ValueIn::U32(x) => Value::U32(x),
            ValueIn::S64(x) => Value::S64(x),
            ValueIn::U64(x) => Value::U64(x),
            ValueIn::F32(x) => Value::F32(x),
            ValueIn::F64(x) => Value::F64(x),
            ValueIn::Char(x) => Value::Char(x),
            ValueIn::String(x) => Value::String(x),
            ValueIn::List(ListIn(list)) => list,
            ValueIn::Bytes(x) => Value::Bytes(x),
            ValueIn::Record(x) => Value::Record(x),
            ValueIn::Tuple(x) => Value::Tuple(x),
            ValueIn::Variant(index, payload) => Value::Variant(index, payload),
            ValueIn::Enum(index) => Value::Enum(index),
            ValueIn::Option(payload) => Value::Option(payload),
            ValueIn::Result(result) => Value::Result(result),
            ValueIn::Flags(set) => Value::Flags(set),
        })
    }
}

/// A decoded list: [`Value::Numbers`] when its first item is a number of a held type and
/// every other item one of the same type, [`Value::List`] otherwise. The untyped decoder
/// cannot tell what an empty list held; [`settle_numbers`] gives it its form from the type.
struct ListIn(Value);

impl<'de> Deserialize<'de> for ListIn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ListIn, D::Error> {
        deserializer.deserialize_seq(ListVisitor).map(ListIn)
    }
}

struct ListVisitor;

/// Items decoded into a list before the first one is known to fit: a bound on what a
/// crafted length can make the decoder reserve.
const MAX_RESERVED_ITEMS: usize = 1 << 16;

impl<'de> serde::de::Visitor<'de> for ListVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of values")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let hint = seq.size_hint().unwrap_or(0);
        let Some(first) = seq.next_element::<Value>()? else {
            return Ok(Value::List(Vec::new()));
        };
        let held = |first: &Value| match first {
            Value::Numbers(_) => None,
            scalar => Numbers::with_capacity(&scalar_ty(scalar)?, hint.min(MAX_RESERVED_ITEMS)),
        };
        let mut items = match held(&first) {
            Some(mut numbers) => {
                numbers.push(&first);
                loop {
                    let Some(item) = seq.next_element::<Value>()? else {
                        return Ok(Value::Numbers(numbers));
                    };
                    if !numbers.push(&item) {
                        let mut items: Vec<Value> = numbers.iter().collect();
                        items.push(item);
                        break items;
                    }
                }
            }
            None => vec![first],
        };
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }
}

/// The type of a scalar value that may be a list item of [`Value::Numbers`].
fn scalar_ty(value: &Value) -> Option<Ty> {
    Some(match value {
        Value::S8(_) => Ty::S8,
        Value::S16(_) => Ty::S16,
        Value::U16(_) => Ty::U16,
        Value::S32(_) => Ty::S32,
        Value::U32(_) => Ty::U32,
        Value::S64(_) => Ty::S64,
        Value::U64(_) => Ty::U64,
        Value::F32(_) => Ty::F32,
        Value::F64(_) => Ty::F64,
        _ => return None,
    })
}

/// Gives every list of numbers in `value`, read as a `ty`, the form producers give it
/// ([`Value::Numbers`]): after an untyped decode, which leaves an empty one a
/// [`Value::List`]. Anything that does not fit `ty` is left as it is, for the reader's
/// type check to report.
pub fn settle_numbers(value: &mut Value, ty: &Ty) {
    if !ty.holds_numbers() {
        return;
    }
    match (ty, value) {
        (Ty::List(item), value @ Value::List(_)) if Numbers::empty(item).is_some() => {
            let Value::List(items) = std::mem::replace(value, Value::List(Vec::new())) else { unreachable!() };
            *value = Numbers::list_of(item, items);
        }
        (Ty::List(item), Value::List(items)) => items.iter_mut().for_each(|v| settle_numbers(v, item)),
        (Ty::Record(fields), Value::Record(values)) => {
            fields.iter().zip(values).for_each(|((_, ty), v)| settle_numbers(v, ty));
        }
        (Ty::Tuple(types), Value::Tuple(values)) => types.iter().zip(values).for_each(|(ty, v)| settle_numbers(v, ty)),
        (Ty::Variant(cases), Value::Variant(index, Some(payload))) => {
            if let Some((_, Some(case))) = cases.get(*index as usize) {
                settle_numbers(payload, case);
            }
        }
        (Ty::Option(item), Value::Option(Some(payload))) => settle_numbers(payload, item),
        (Ty::Result { ok: Some(ok), .. }, Value::Result(Ok(Some(payload)))) => settle_numbers(payload, ok),
        (Ty::Result { err: Some(err), .. }, Value::Result(Err(Some(payload)))) => settle_numbers(payload, err),
        _ => {}
    }
}

/// Serializes `Vec<u8>` with `serialize_bytes`, so postcard copies it as one slice
/// instead of visiting every byte as a sequence item.
mod bytes_serde {
    use std::fmt;

    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte array")
        }

        fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(crate::buffers::copy_of(v))
        }

        fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        // Self-describing formats (JSON) hand bytes over as a sequence of numbers.
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

/// Checks that a record or tuple value has as many items as its type.
pub(crate) fn check_len(path: &Path<'_>, what: &str, expected: usize, found: usize) -> Result<(), ValueError> {
    if expected == found {
        Ok(())
    } else {
        Err(ValueError::at(path, format!("expected {expected} {what}, found {found}")))
    }
}

/// Checks that flag indices are in range, ascending and without repeats.
pub(crate) fn check_flags(path: &Path<'_>, names: &[String], set: &[u32]) -> Result<(), ValueError> {
    for (n, &i) in set.iter().enumerate() {
        if i as usize >= names.len() {
            return Err(ValueError::at(path, format!("flag index {i} is out of range for {} flags", names.len())));
        }
        if n > 0 && set[n - 1] >= i {
            return Err(ValueError::at(path, "flag indices must be ascending and unique"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_round_trips_through_postcard() {
        let value = Value::Record(vec![
            Value::Bytes(vec![0, 1, 2, 255]),
            Value::Numbers(Numbers::F64(vec![-0.5, f64::INFINITY])),
            Value::List(vec![Value::String("a".into()), Value::String(String::new())]),
            Value::Variant(2, Some(Box::new(Value::String("héllo".into())))),
            Value::Result(Err(None)),
            Value::Option(Some(Box::new(Value::Flags(vec![0, 3])))),
            Value::Char('\u{1F600}'),
            Value::S64(i64::MIN),
        ]);
        let bytes = postcard::to_allocvec(&value).unwrap();
        let back: Value = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn bytes_are_stored_as_one_slice_by_postcard() {
        let bytes = postcard::to_allocvec(&Value::Bytes(vec![7; 300])).unwrap();
        // variant tag, LEB128 length 300 (two bytes), then the raw bytes.
        assert_eq!(bytes.len(), 1 + 2 + 300);
        assert!(bytes[3..].iter().all(|&b| b == 7));
    }

    #[test]
    fn ty_round_trips_through_postcard() {
        let ty = Ty::Record(vec![
            ("a".into(), Ty::List(Box::new(Ty::U8))),
            ("b".into(), Ty::Result { ok: None, err: Some(Box::new(Ty::String)) }),
        ]);
        let back: Ty = postcard::from_bytes(&postcard::to_allocvec(&ty).unwrap()).unwrap();
        assert_eq!(back, ty);
    }

    #[test]
    fn path_renders_as_jsonpath() {
        let root = Path::Root;
        let items = root.field("items");
        let third = items.index(3);
        assert_eq!(third.to_string(), "$.items[3]");
        assert_eq!(root.index(0).to_string(), "$[0]");
    }
}
