//! Owned WIT values and types, independent of wasmtime's `Val`.
//!
//! Everything the host hashes, stores or prints goes through [`Value`], a positional
//! value that needs its [`Ty`] to be read back: a record is its fields in order, a
//! variant is its case index. `Val` is converted at the boundary and never hashed or
//! compared itself (its equality is documented as fuzzing-grade).

pub mod canonical;
pub mod convert;
pub mod json;

use serde::{Deserialize, Serialize};

/// A WIT value type that can cross into a task's own Store.
///
/// Resources, streams and futures have no `Ty`: a task whose signature holds one is
/// refused when its component is loaded.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    Tuple(Vec<Ty>),
    /// Cases in declaration order: (name, payload type).
    Variant(Vec<(String, Option<Ty>)>),
    Enum(Vec<String>),
    Option(Box<Ty>),
    Result {
        ok: Option<Box<Ty>>,
        err: Option<Box<Ty>>,
    },
    Flags(Vec<String>),
}

/// An owned WIT value; its shape is given by a [`Ty`] kept beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Items of a `list<T>`.
    List(Vec<Value>),
    /// Field values in declaration order.
    Record(Vec<Value>),
    Tuple(Vec<Value>),
    /// The case index and its payload, if the case has one.
    Variant(u32, Option<Box<Value>>),
    /// The case index.
    Enum(u32),
    Option(Option<Box<Value>>),
    /// `Ok` or `Err`, each with its payload if the type has one.
    Result(Result<Option<Box<Value>>, Option<Box<Value>>>),
    /// Indices of the flags that are set, ascending.
    Flags(Vec<u32>),
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
