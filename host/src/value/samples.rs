//! Test fixtures shared by the value modules' tests: one value of every plain type.

use super::{Ty, Value};

/// `Some(Box::new(v))`.
pub fn b(v: Value) -> Option<Box<Value>> {
    Some(Box::new(v))
}

/// `Some(Box::new(t))`.
pub fn bt(t: Ty) -> Option<Box<Ty>> {
    Some(Box::new(t))
}

/// Owned names.
pub fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Every plain type with a value of it.
pub fn samples() -> Vec<(Ty, Value)> {
    let rec = Ty::Record(vec![("a".into(), Ty::U32), ("b-c".into(), Ty::String)]);
    let var = Ty::Variant(vec![("none".into(), None), ("num".into(), Some(Ty::S64))]);
    vec![
        (Ty::Bool, Value::Bool(true)),
        (Ty::S8, Value::S8(-128)),
        (Ty::U8, Value::U8(255)),
        (Ty::S16, Value::S16(-300)),
        (Ty::U16, Value::U16(65535)),
        (Ty::S32, Value::S32(i32::MIN)),
        (Ty::U32, Value::U32(u32::MAX)),
        (Ty::S64, Value::S64(-1)),
        (Ty::U64, Value::U64(u64::MAX)),
        (Ty::F32, Value::F32(0.1)),
        (Ty::F64, Value::F64(-2.5e300)),
        (Ty::Char, Value::Char('é')),
        (Ty::String, Value::String("héllo".into())),
        (Ty::List(Box::new(Ty::U8)), Value::Bytes(vec![0, 1, 254, 255].into())),
        (Ty::List(Box::new(Ty::U8)), Value::Bytes(vec![].into())),
        (
            Ty::List(Box::new(Ty::List(Box::new(Ty::U8)))),
            Value::List(vec![Value::Bytes(vec![1].into()), Value::Bytes(vec![2, 3].into())]),
        ),
        (Ty::List(Box::new(Ty::S16)), Value::Numbers(super::Numbers::S16(vec![1, -1].into()))),
        (rec.clone(), Value::Record(vec![Value::U32(7), Value::String("x".into())])),
        (Ty::Tuple(vec![Ty::U32, Ty::String]), Value::Tuple(vec![Value::U32(1), Value::String("a".into())])),
        (var.clone(), Value::Variant(0, None)),
        (var.clone(), Value::Variant(1, b(Value::S64(-9)))),
        (Ty::Enum(names(&["red", "green"])), Value::Enum(1)),
        (Ty::Option(Box::new(Ty::S64)), Value::Option(None)),
        (Ty::Option(Box::new(Ty::S64)), Value::Option(b(Value::S64(3)))),
        (Ty::Option(Box::new(Ty::Option(Box::new(Ty::U32)))), Value::Option(b(Value::Option(None)))),
        (Ty::Option(Box::new(Ty::Option(Box::new(Ty::U32)))), Value::Option(b(Value::Option(b(Value::U32(5)))))),
        (Ty::Result { ok: bt(Ty::U32), err: bt(Ty::String) }, Value::Result(Ok(b(Value::U32(1))))),
        (Ty::Result { ok: bt(Ty::U32), err: bt(Ty::String) }, Value::Result(Err(b(Value::String("e".into()))))),
        (Ty::Result { ok: None, err: None }, Value::Result(Ok(None))),
        (Ty::Result { ok: None, err: None }, Value::Result(Err(None))),
        (Ty::Flags(names(&["x", "y", "z"])), Value::Flags(vec![0, 2])),
        (Ty::Flags(names(&["x", "y", "z"])), Value::Flags(vec![])),
        (
            Ty::List(Box::new(rec.clone())),
            Value::List(vec![Value::Record(vec![Value::U32(0), Value::String(String::new())])]),
        ),
    ]
}
