//! Conversion between wasmtime's component `Type`/`Val` and the owned [`Ty`]/[`Value`].
//!
//! This is the only place `Val` is read or built. Types that cannot cross into a task's
//! own Store (resources, streams, futures, error contexts) are refused with an
//! [`UnsupportedType`]. wasmtime 48's `map<K, V>` and fixed-length `list<T, N>` are
//! refused too: both are behind unstable component-model features no guest toolchain we
//! support emits, and supporting them later means a new [`Ty`] case and a new `FORMAT`.

use wasmtime::component::{Type, Val};

use super::json::type_name;
use super::{check_flags, check_len, Numbers, Path, Ty, Value, ValueError};

/// A component type that has no [`Ty`]; the loader says which task and parameter held it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedType {
    /// An owned resource handle.
    #[error("resource `own<T>`")]
    Own,
    /// A borrowed resource handle.
    #[error("resource `borrow<T>`")]
    Borrow,
    /// A `stream<T>`.
    #[error("stream")]
    Stream,
    /// A `future<T>`.
    #[error("future")]
    Future,
    /// An `error-context`.
    #[error("error-context")]
    ErrorContext,
    /// A `map<K, V>` (unstable in the component model, not supported).
    #[error("map `map<K, V>` (not supported)")]
    Map,
    /// A fixed-length `list<T, N>` (unstable in the component model, not supported).
    #[error("fixed-length list `list<T, {0}>` (not supported)")]
    FixedLengthList(u32),
}

impl Ty {
    /// The owned type of a component value type, or which unsupported type it holds.
    pub fn from_component_type(ty: &Type) -> Result<Ty, UnsupportedType> {
        let boxed = |ty: &Type| Ty::from_component_type(ty).map(Box::new);
        Ok(match ty {
            Type::Bool => Ty::Bool,
            Type::S8 => Ty::S8,
            Type::U8 => Ty::U8,
            Type::S16 => Ty::S16,
            Type::U16 => Ty::U16,
            Type::S32 => Ty::S32,
            Type::U32 => Ty::U32,
            Type::S64 => Ty::S64,
            Type::U64 => Ty::U64,
            Type::Float32 => Ty::F32,
            Type::Float64 => Ty::F64,
            Type::Char => Ty::Char,
            Type::String => Ty::String,
            Type::List(list) => Ty::List(boxed(&list.ty())?),
            Type::Record(record) => Ty::Record(
                record
                    .fields()
                    .map(|f| Ok((f.name.to_string(), Ty::from_component_type(&f.ty)?)))
                    .collect::<Result<_, _>>()?,
            ),
            Type::Tuple(tuple) => {
                Ty::Tuple(tuple.types().map(|t| Ty::from_component_type(&t)).collect::<Result<_, _>>()?)
            }
            Type::Variant(variant) => Ty::Variant(
                variant
                    .cases()
                    .map(|c| Ok((c.name.to_string(), c.ty.as_ref().map(Ty::from_component_type).transpose()?)))
                    .collect::<Result<_, _>>()?,
            ),
            Type::Enum(e) => Ty::Enum(e.names().map(str::to_string).collect()),
            Type::Option(option) => Ty::Option(boxed(&option.ty())?),
            Type::Result(result) => Ty::Result {
                ok: result.ok().as_ref().map(boxed).transpose()?,
                err: result.err().as_ref().map(boxed).transpose()?,
            },
            Type::Flags(flags) => Ty::Flags(flags.names().map(str::to_string).collect()),
            Type::Own(_) => return Err(UnsupportedType::Own),
            Type::Borrow(_) => return Err(UnsupportedType::Borrow),
            Type::Future(_) => return Err(UnsupportedType::Future),
            Type::Stream(_) => return Err(UnsupportedType::Stream),
            Type::ErrorContext => return Err(UnsupportedType::ErrorContext),
            Type::Map(_) => return Err(UnsupportedType::Map),
            Type::FixedLengthList(list) => return Err(UnsupportedType::FixedLengthList(list.len())),
        })
    }
}

impl Value {
    /// Reads a wasmtime `Val` of type `ty`. A `list<u8>` becomes [`Value::Bytes`].
    pub fn from_val(val: &Val, ty: &Ty) -> Result<Value, ValueError> {
        from_val(val, ty, &Path::Root)
    }

    /// Builds the wasmtime `Val` of this value read as a `ty`; names of record fields,
    /// cases and flags come from `ty`.
    pub fn to_val(&self, ty: &Ty) -> Result<Val, ValueError> {
        to_val(self, ty, &Path::Root)
    }
}

/// The short name of a `Val`'s kind, for error messages.
fn val_kind(val: &Val) -> &'static str {
    match val {
        Val::Bool(_) => "bool",
        Val::S8(_) => "s8",
        Val::U8(_) => "u8",
        Val::S16(_) => "s16",
        Val::U16(_) => "u16",
        Val::S32(_) => "s32",
        Val::U32(_) => "u32",
        Val::S64(_) => "s64",
        Val::U64(_) => "u64",
        Val::Float32(_) => "f32",
        Val::Float64(_) => "f64",
        Val::Char(_) => "char",
        Val::String(_) => "string",
        Val::List(_) => "list",
        Val::Map(_) => "map",
        Val::Record(_) => "record",
        Val::Tuple(_) => "tuple",
        Val::Variant(..) => "variant",
        Val::Enum(_) => "enum",
        Val::Option(_) => "option",
        Val::Result(_) => "result",
        Val::Flags(_) => "flags",
        Val::Resource(_) => "resource",
        Val::Future(_) => "future",
        Val::Stream(_) => "stream",
        Val::ErrorContext(_) => "error-context",
        Val::FixedLengthList(_) => "fixed-length list",
    }
}

fn val_mismatch(path: &Path<'_>, ty: &Ty, val: &Val) -> ValueError {
    ValueError::at(path, format!("expected {}, found {}", type_name(ty), val_kind(val)))
}

fn position(
    path: &Path<'_>,
    what: &str,
    names: impl Iterator<Item = impl AsRef<str>>,
    name: &str,
) -> Result<u32, ValueError> {
    names
        .into_iter()
        .position(|n| n.as_ref() == name)
        .map(|i| i as u32)
        .ok_or_else(|| ValueError::at(path, format!("unknown {what} `{name}`")))
}

fn from_val(val: &Val, ty: &Ty, path: &Path<'_>) -> Result<Value, ValueError> {
    Ok(match (ty, val) {
        (Ty::Bool, Val::Bool(x)) => Value::Bool(*x),
        (Ty::S8, Val::S8(x)) => Value::S8(*x),
        (Ty::U8, Val::U8(x)) => Value::U8(*x),
        (Ty::S16, Val::S16(x)) => Value::S16(*x),
        (Ty::U16, Val::U16(x)) => Value::U16(*x),
        (Ty::S32, Val::S32(x)) => Value::S32(*x),
        (Ty::U32, Val::U32(x)) => Value::U32(*x),
        (Ty::S64, Val::S64(x)) => Value::S64(*x),
        (Ty::U64, Val::U64(x)) => Value::U64(*x),
        (Ty::F32, Val::Float32(x)) => Value::F32(*x),
        (Ty::F64, Val::Float64(x)) => Value::F64(*x),
        (Ty::Char, Val::Char(x)) => Value::Char(*x),
        (Ty::String, Val::String(x)) => Value::String(x.clone()),
        (Ty::List(item), Val::List(items)) if **item == Ty::U8 => Value::Bytes(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Val::U8(b) => Ok(*b),
                    other => Err(val_mismatch(&path.index(i), item, other)),
                })
                .collect::<Result<_, _>>()?,
        ),
        (Ty::List(item), Val::List(items)) => Numbers::list_of(
            item,
            items.iter().enumerate().map(|(i, v)| from_val(v, item, &path.index(i))).collect::<Result<_, _>>()?,
        ),
        (Ty::Record(fields), Val::Record(values)) => {
            check_len(path, "fields", fields.len(), values.len())?;
            Value::Record(
                fields
                    .iter()
                    .zip(values)
                    .map(|((name, ty), (vname, v))| {
                        let at = path.field(name);
                        if name != vname {
                            return Err(ValueError::at(&at, format!("expected field `{name}`, found `{vname}`")));
                        }
                        from_val(v, ty, &at)
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        (Ty::Tuple(types), Val::Tuple(values)) => {
            check_len(path, "items", types.len(), values.len())?;
            Value::Tuple(
                types
                    .iter()
                    .zip(values)
                    .enumerate()
                    .map(|(i, (ty, v))| from_val(v, ty, &path.index(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        (Ty::Variant(cases), Val::Variant(name, payload)) => {
            let index = position(path, "case", cases.iter().map(|(n, _)| n), name)?;
            let case_ty = cases[index as usize].1.as_ref();
            Value::Variant(index, payload_from_val(payload.as_deref(), case_ty, &path.field(name))?)
        }
        (Ty::Enum(names), Val::Enum(name)) => Value::Enum(position(path, "case", names.iter(), name)?),
        (Ty::Option(item), Val::Option(v)) => Value::Option(match v {
            None => None,
            Some(v) => Some(Box::new(from_val(v, item, path)?)),
        }),
        (Ty::Result { ok, err }, Val::Result(r)) => Value::Result(match r {
            Ok(v) => Ok(payload_from_val(v.as_deref(), ok.as_deref(), &path.field("ok"))?),
            Err(v) => Err(payload_from_val(v.as_deref(), err.as_deref(), &path.field("err"))?),
        }),
        (Ty::Flags(names), Val::Flags(set)) => {
            let mut indices =
                set.iter().map(|name| position(path, "flag", names.iter(), name)).collect::<Result<Vec<_>, _>>()?;
            indices.sort_unstable();
            indices.dedup();
            Value::Flags(indices)
        }
        _ => return Err(val_mismatch(path, ty, val)),
    })
}

fn payload_from_val(val: Option<&Val>, ty: Option<&Ty>, path: &Path<'_>) -> Result<Option<Box<Value>>, ValueError> {
    match (ty, val) {
        (None, None) => Ok(None),
        (Some(ty), Some(v)) => Ok(Some(Box::new(from_val(v, ty, path)?))),
        (None, Some(v)) => Err(ValueError::at(path, format!("expected no payload, found {}", val_kind(v)))),
        (Some(ty), None) => Err(ValueError::at(path, format!("expected a {} payload, found none", type_name(ty)))),
    }
}

fn to_val(value: &Value, ty: &Ty, path: &Path<'_>) -> Result<Val, ValueError> {
    Ok(match (ty, value) {
        (Ty::Bool, Value::Bool(x)) => Val::Bool(*x),
        (Ty::S8, Value::S8(x)) => Val::S8(*x),
        (Ty::U8, Value::U8(x)) => Val::U8(*x),
        (Ty::S16, Value::S16(x)) => Val::S16(*x),
        (Ty::U16, Value::U16(x)) => Val::U16(*x),
        (Ty::S32, Value::S32(x)) => Val::S32(*x),
        (Ty::U32, Value::U32(x)) => Val::U32(*x),
        (Ty::S64, Value::S64(x)) => Val::S64(*x),
        (Ty::U64, Value::U64(x)) => Val::U64(*x),
        (Ty::F32, Value::F32(x)) => Val::Float32(*x),
        (Ty::F64, Value::F64(x)) => Val::Float64(*x),
        (Ty::Char, Value::Char(x)) => Val::Char(*x),
        (Ty::String, Value::String(x)) => Val::String(x.clone()),
        (Ty::List(item), Value::Bytes(bytes)) if **item == Ty::U8 => {
            Val::List(bytes.iter().map(|b| Val::U8(*b)).collect())
        }
        (Ty::List(item), Value::List(items)) if **item != Ty::U8 => {
            Val::List(items.iter().enumerate().map(|(i, v)| to_val(v, item, &path.index(i))).collect::<Result<_, _>>()?)
        }
        (Ty::List(item), Value::Numbers(numbers)) if numbers.item_ty() == **item => {
            Val::List(numbers.iter().map(|v| to_val(&v, item, path)).collect::<Result<_, _>>()?)
        }
        (Ty::Record(fields), Value::Record(values)) => {
            check_len(path, "fields", fields.len(), values.len())?;
            Val::Record(
                fields
                    .iter()
                    .zip(values)
                    .map(|((name, ty), v)| Ok((name.clone(), to_val(v, ty, &path.field(name))?)))
                    .collect::<Result<_, _>>()?,
            )
        }
        (Ty::Tuple(types), Value::Tuple(values)) => {
            check_len(path, "items", types.len(), values.len())?;
            Val::Tuple(
                types
                    .iter()
                    .zip(values)
                    .enumerate()
                    .map(|(i, (ty, v))| to_val(v, ty, &path.index(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        (Ty::Variant(cases), Value::Variant(index, payload)) => {
            let (name, case_ty) = cases.get(*index as usize).ok_or_else(|| {
                ValueError::at(path, format!("case index {index} is out of range for {}", type_name(ty)))
            })?;
            Val::Variant(name.clone(), payload_to_val(payload.as_deref(), case_ty.as_ref(), &path.field(name))?)
        }
        (Ty::Enum(names), Value::Enum(index)) => Val::Enum(
            names
                .get(*index as usize)
                .ok_or_else(|| {
                    ValueError::at(path, format!("case index {index} is out of range for {}", type_name(ty)))
                })?
                .clone(),
        ),
        (Ty::Option(item), Value::Option(v)) => Val::Option(match v {
            None => None,
            Some(v) => Some(Box::new(to_val(v, item, path)?)),
        }),
        (Ty::Result { ok, err }, Value::Result(r)) => Val::Result(match r {
            Ok(v) => Ok(payload_to_val(v.as_deref(), ok.as_deref(), &path.field("ok"))?),
            Err(v) => Err(payload_to_val(v.as_deref(), err.as_deref(), &path.field("err"))?),
        }),
        (Ty::Flags(names), Value::Flags(set)) => {
            check_flags(path, names, set)?;
            Val::Flags(set.iter().map(|&i| names[i as usize].clone()).collect())
        }
        _ => return Err(ValueError::mismatch(path, ty, value)),
    })
}

fn payload_to_val(value: Option<&Value>, ty: Option<&Ty>, path: &Path<'_>) -> Result<Option<Box<Val>>, ValueError> {
    match (ty, value) {
        (None, None) => Ok(None),
        (Some(ty), Some(v)) => Ok(Some(Box::new(to_val(v, ty, path)?))),
        (None, Some(v)) => Err(ValueError::at(path, format!("expected no payload, found {}", v.kind()))),
        (Some(ty), None) => Err(ValueError::at(path, format!("expected a {} payload, found none", type_name(ty)))),
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::Component;
    use wasmtime::{Config, Engine};

    use super::*;
    use crate::value::samples::{bt, names, samples};

    /// The parameters of the function `func` imported by the component `wat`, as owned types.
    fn import_params(wat: &str, func: &str) -> Vec<(String, Result<Ty, UnsupportedType>)> {
        let mut config = Config::new();
        config
            .wasm_component_model_async(true)
            .wasm_component_model_error_context(true)
            .wasm_component_model_map(true)
            .wasm_component_model_fixed_length_lists(true);
        let engine = Engine::new(&config).unwrap();
        let component = Component::new(&engine, wat).unwrap();
        let Some(ComponentItem::ComponentFunc(f)) = component.component_type().get_import(&engine, func).map(|e| e.ty)
        else {
            panic!("no function import `{func}`");
        };
        f.params().map(|(name, ty)| (name.to_string(), Ty::from_component_type(&ty))).collect()
    }

    #[test]
    fn from_component_type_reads_every_plain_type() {
        let wat = r#"(component
            (type $rec' (record (field "a" u32) (field "b-c" string)))
            (import "rec" (type $rec (eq $rec')))
            (type $var' (variant (case "none") (case "num" s64) (case "txt" string)))
            (import "var" (type $var (eq $var')))
            (type $en' (enum "red" "green"))
            (import "en" (type $en (eq $en')))
            (type $fl' (flags "x" "y" "z"))
            (import "fl" (type $fl (eq $fl')))
            (import "f" (func
                (param "p-bool" bool) (param "p-s8" s8) (param "p-u8" u8) (param "p-s16" s16)
                (param "p-u16" u16) (param "p-s32" s32) (param "p-u32" u32) (param "p-s64" s64)
                (param "p-u64" u64) (param "p-f32" f32) (param "p-f64" f64) (param "p-char" char)
                (param "p-string" string) (param "p-bytes" (list u8)) (param "p-list" (list (list string)))
                (param "p-rec" $rec) (param "p-tuple" (tuple u32 string)) (param "p-var" $var)
                (param "p-en" $en) (param "p-opt" (option s64)) (param "p-res" (result u32 (error string)))
                (param "p-res-empty" (result)) (param "p-res-err" (result (error string))) (param "p-fl" $fl)))
        )"#;
        let got: Vec<(String, Ty)> = import_params(wat, "f").into_iter().map(|(n, t)| (n, t.unwrap())).collect();
        let expected = vec![
            ("p-bool", Ty::Bool),
            ("p-s8", Ty::S8),
            ("p-u8", Ty::U8),
            ("p-s16", Ty::S16),
            ("p-u16", Ty::U16),
            ("p-s32", Ty::S32),
            ("p-u32", Ty::U32),
            ("p-s64", Ty::S64),
            ("p-u64", Ty::U64),
            ("p-f32", Ty::F32),
            ("p-f64", Ty::F64),
            ("p-char", Ty::Char),
            ("p-string", Ty::String),
            ("p-bytes", Ty::List(Box::new(Ty::U8))),
            ("p-list", Ty::List(Box::new(Ty::List(Box::new(Ty::String))))),
            ("p-rec", Ty::Record(vec![("a".into(), Ty::U32), ("b-c".into(), Ty::String)])),
            ("p-tuple", Ty::Tuple(vec![Ty::U32, Ty::String])),
            (
                "p-var",
                Ty::Variant(vec![
                    ("none".into(), None),
                    ("num".into(), Some(Ty::S64)),
                    ("txt".into(), Some(Ty::String)),
                ]),
            ),
            ("p-en", Ty::Enum(names(&["red", "green"]))),
            ("p-opt", Ty::Option(Box::new(Ty::S64))),
            ("p-res", Ty::Result { ok: bt(Ty::U32), err: bt(Ty::String) }),
            ("p-res-empty", Ty::Result { ok: None, err: None }),
            ("p-res-err", Ty::Result { ok: None, err: bt(Ty::String) }),
            ("p-fl", Ty::Flags(names(&["x", "y", "z"]))),
        ];
        let expected: Vec<(String, Ty)> = expected.into_iter().map(|(n, t)| (n.to_string(), t)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn from_component_type_refuses_resources_streams_futures() {
        let wat = r#"(component
            (import "res" (type $res (sub resource)))
            (import "f" (func
                (param "own" (own $res)) (param "borrowed" (borrow $res))
                (param "nested" (list (option (own $res))))
                (param "s" (stream u8)) (param "fu" (future string)) (param "e" error-context)
                (param "m" (map string u32)) (param "fixed" (list u8 4))))
        )"#;
        let got = import_params(wat, "f");
        let errors: Vec<(String, String)> =
            got.into_iter().map(|(n, t)| (n, t.expect_err("must be refused").to_string())).collect();
        assert_eq!(
            errors,
            vec![
                ("own".to_string(), "resource `own<T>`".to_string()),
                ("borrowed".to_string(), "resource `borrow<T>`".to_string()),
                ("nested".to_string(), "resource `own<T>`".to_string()),
                ("s".to_string(), "stream".to_string()),
                ("fu".to_string(), "future".to_string()),
                ("e".to_string(), "error-context".to_string()),
                ("m".to_string(), "map `map<K, V>` (not supported)".to_string()),
                ("fixed".to_string(), "fixed-length list `list<T, 4>` (not supported)".to_string()),
            ]
        );
    }

    #[test]
    fn every_type_round_trips_through_val() {
        for (ty, value) in samples() {
            let val = value.to_val(&ty).unwrap_or_else(|e| panic!("to_val {ty:?}: {e}"));
            assert_eq!(Value::from_val(&val, &ty), Ok(value), "{ty:?}");
        }
    }

    #[test]
    fn to_val_names_fields_cases_and_flags() {
        let rec = Ty::Record(vec![("a".into(), Ty::U32), ("b".into(), Ty::Enum(names(&["p", "q"])))]);
        let val = Value::Record(vec![Value::U32(1), Value::Enum(1)]).to_val(&rec).unwrap();
        assert!(matches!(&val, Val::Record(f) if f[0].0 == "a" && f[1] == ("b".to_string(), Val::Enum("q".into()))));
        let flags = Ty::Flags(names(&["x", "y", "z"]));
        assert_eq!(Value::Flags(vec![1, 2]).to_val(&flags).unwrap(), Val::Flags(names(&["y", "z"])));
    }

    #[test]
    fn list_u8_val_becomes_bytes() {
        let ty = Ty::List(Box::new(Ty::U8));
        let val = Val::List(vec![Val::U8(1), Val::U8(2)]);
        assert_eq!(Value::from_val(&val, &ty), Ok(Value::Bytes(vec![1, 2].into())));
    }

    #[test]
    fn list_value_for_list_u8_is_refused() {
        let ty = Ty::List(Box::new(Ty::U8));
        let err = Value::List(vec![Value::U8(1)]).to_val(&ty).unwrap_err();
        assert_eq!(err.to_string(), "$: expected list<u8>, found list");
        let err = Value::Bytes(vec![1].into()).to_val(&Ty::List(Box::new(Ty::U32))).unwrap_err();
        assert_eq!(err.to_string(), "$: expected list<u32>, found list<u8>");
    }

    #[test]
    fn from_val_flags_are_sorted_indices() {
        let ty = Ty::Flags(names(&["x", "y", "z"]));
        assert_eq!(Value::from_val(&Val::Flags(names(&["z", "x"])), &ty), Ok(Value::Flags(vec![0, 2])));
    }

    #[test]
    fn from_val_mismatch_names_the_path() {
        let ty = Ty::Record(vec![("items".into(), Ty::List(Box::new(Ty::U32)))]);
        let val = Val::Record(vec![(
            "items".into(),
            Val::List(vec![Val::U32(1), Val::U32(2), Val::U32(3), Val::String("x".into())]),
        )]);
        assert_eq!(Value::from_val(&val, &ty).unwrap_err().to_string(), "$.items[3]: expected u32, found string");
        let bytes = Val::List(vec![Val::U8(1), Val::S8(2)]);
        assert_eq!(
            Value::from_val(&bytes, &Ty::List(Box::new(Ty::U8))).unwrap_err().to_string(),
            "$[1]: expected u8, found s8"
        );
    }

    #[test]
    fn from_val_refuses_unknown_names() {
        let ty = Ty::Enum(names(&["red"]));
        assert_eq!(Value::from_val(&Val::Enum("blue".into()), &ty).unwrap_err().to_string(), "$: unknown case `blue`");
        let ty = Ty::Record(vec![("a".into(), Ty::U32)]);
        let val = Val::Record(vec![("b".into(), Val::U32(1))]);
        assert_eq!(Value::from_val(&val, &ty).unwrap_err().to_string(), "$.a: expected field `a`, found `b`");
    }

    #[test]
    fn to_val_checks_shape() {
        let var = Ty::Variant(vec![("none".into(), None), ("num".into(), Some(Ty::S64))]);
        assert_eq!(
            Value::Variant(1, None).to_val(&var).unwrap_err().to_string(),
            "$.num: expected a s64 payload, found none"
        );
        assert_eq!(
            Value::Variant(2, None).to_val(&var).unwrap_err().to_string(),
            "$: case index 2 is out of range for variant { none, num(s64) }"
        );
        let tuple = Ty::Tuple(vec![Ty::U32, Ty::U32]);
        assert_eq!(
            Value::Tuple(vec![Value::U32(1)]).to_val(&tuple).unwrap_err().to_string(),
            "$: expected 2 items, found 1"
        );
        let flags = Ty::Flags(names(&["x", "y"]));
        assert!(Value::Flags(vec![1, 0]).to_val(&flags).is_err());
        assert!(Value::Flags(vec![2]).to_val(&flags).is_err());
    }
}
