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
pub mod buf;
pub mod canonical;
pub mod convert;
pub mod json;
pub mod numbers;
#[cfg(test)]
pub(crate) mod samples;
pub mod wire;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use buf::Buf;
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
/// show which form a list of numbers was held in. Records are written and read by
/// [`wire`], which gives the same bytes; this serde form is the reference it is tested
/// against.
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
    Bytes(Buf<u8>),
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

/// How deep a decoded [`Ty`] may nest (and so a [`Value`], which [`wire`] reads by its
/// type). Decoding recurses once per level, so without a bound a small crafted record (two
/// bytes per level) would overflow the stack; real WIT types are nowhere near this deep.
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

// `Ty` decodes through this mirror (serde's `remote`), which reads exactly the derived
// format; the manual impl counts the nesting on the way in. A `Value` is read by `wire`,
// which follows its type.

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

/// Serializes a byte slice with `serialize_bytes`, so postcard copies it as one slice
/// instead of visiting every byte as a sequence item.
mod bytes_serde {
    use serde::Serializer;

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
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
            Value::Bytes(vec![0, 1, 2, 255].into()),
            Value::Numbers(Numbers::F64(vec![-0.5, f64::INFINITY].into())),
            Value::List(vec![Value::String("a".into()), Value::String(String::new())]),
            Value::Variant(2, Some(Box::new(Value::String("héllo".into())))),
            Value::Result(Err(None)),
            Value::Option(Some(Box::new(Value::Flags(vec![0, 3])))),
            Value::Char('\u{1F600}'),
            Value::S64(i64::MIN),
        ]);
        let ty = Ty::Record(vec![
            ("a".into(), Ty::List(Box::new(Ty::U8))),
            ("b".into(), Ty::List(Box::new(Ty::F64))),
            ("c".into(), Ty::List(Box::new(Ty::String))),
            ("d".into(), Ty::Variant(vec![("x".into(), None), ("y".into(), None), ("z".into(), Some(Ty::String))])),
            ("e".into(), Ty::Result { ok: None, err: None }),
            ("f".into(), Ty::Option(Box::new(Ty::Flags(vec!["p".into(), "q".into(), "r".into(), "s".into()])))),
            ("g".into(), Ty::Char),
            ("h".into(), Ty::S64),
        ]);
        let bytes = postcard::to_allocvec(&value).unwrap();
        let (back, rest) = wire::decode(&bytes, &ty).unwrap();
        assert!(rest.is_empty());
        assert_eq!(back, value);
    }

    #[test]
    fn bytes_are_stored_as_one_slice_by_postcard() {
        let bytes = postcard::to_allocvec(&Value::Bytes(vec![7; 300].into())).unwrap();
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
