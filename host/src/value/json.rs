//! JSON for values given on the command line and results printed by it, and WIT type names.
//!
//! Mapping, by WIT type:
//!
//! - integers: JSON numbers, range-checked; a fraction is refused.
//! - `f32`, `f64`: numbers, or the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
//! - `char`: a one-character string; `string`: a string.
//! - `list<T>`: an array (`list<u8>` too: an array of numbers).
//! - record: an object keyed by field name. Unknown fields are refused; a missing field is
//!   refused unless its type is an option (then it is none).
//! - tuple: an array of exactly its length.
//! - variant: `{"case": payload}`, or the string `"case"` for a case without payload
//!   (`{"case": null}` is accepted for it too).
//! - enum: the case name.
//! - `option<T>`: `null` for none, the value for some. When `T` is itself an option,
//!   `null` would be ambiguous, so some is written `{"some": v}`: for
//!   `option<option<u32>>`, none is `null`, some(none) is `{"some": null}` and some(some(5))
//!   is `{"some": 5}`.
//! - `result<T, E>`: `{"ok": v}` or `{"err": v}`; a side without payload is `{"ok": null}`.
//! - flags: an array of the names of the set flags (printed in declaration order).
//!
//! Errors name the place in JSONPath form: `$.items[3]: expected u32, found string "x"`.

use serde_json::{Map, Number, Value as Json};

use super::{Numbers, Path, Ty, Value, ValueError};

/// Renders `ty` in WIT syntax: `list<u32>`, `record { a: u32, b: string }`,
/// `result<u32, string>`, `option<string>`.
pub fn type_name(ty: &Ty) -> String {
    let mut out = String::new();
    write_type_name(ty, &mut out);
    out
}

fn write_type_name(ty: &Ty, out: &mut String) {
    let simple = match ty {
        Ty::Bool => "bool",
        Ty::S8 => "s8",
        Ty::U8 => "u8",
        Ty::S16 => "s16",
        Ty::U16 => "u16",
        Ty::S32 => "s32",
        Ty::U32 => "u32",
        Ty::S64 => "s64",
        Ty::U64 => "u64",
        Ty::F32 => "f32",
        Ty::F64 => "f64",
        Ty::Char => "char",
        Ty::String => "string",
        _ => "",
    };
    if !simple.is_empty() {
        out.push_str(simple);
        return;
    }
    // Joins items with ", " between `open` and `close`.
    fn list<T>(out: &mut String, open: &str, items: &[T], close: &str, mut item: impl FnMut(&T, &mut String)) {
        out.push_str(open);
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            item(x, out);
        }
        out.push_str(close);
    }
    match ty {
        Ty::List(item) => {
            out.push_str("list<");
            write_type_name(item, out);
            out.push('>');
        }
        Ty::Record(fields) => list(out, "record { ", fields, " }", |(name, ty), out| {
            out.push_str(name);
            out.push_str(": ");
            write_type_name(ty, out);
        }),
        Ty::Tuple(items) => list(out, "tuple<", items, ">", write_type_name),
        Ty::Variant(cases) => list(out, "variant { ", cases, " }", |(name, ty), out| {
            out.push_str(name);
            if let Some(ty) = ty {
                out.push('(');
                write_type_name(ty, out);
                out.push(')');
            }
        }),
        Ty::Enum(names) => list(out, "enum { ", names, " }", |name, out| out.push_str(name)),
        Ty::Flags(names) => list(out, "flags { ", names, " }", |name, out| out.push_str(name)),
        Ty::Option(item) => {
            out.push_str("option<");
            write_type_name(item, out);
            out.push('>');
        }
        Ty::Result { ok: None, err: None } => out.push_str("result"),
        Ty::Result { ok, err } => {
            out.push_str("result<");
            match ok {
                Some(ok) => write_type_name(ok, out),
                None => out.push('_'),
            }
            if let Some(err) = err {
                out.push_str(", ");
                write_type_name(err, out);
            }
            out.push('>');
        }
        _ => unreachable!("simple types are handled above"),
    }
}

impl Value {
    /// Reads a value of type `ty` from JSON (see the module docs for the mapping).
    pub fn from_json(json: &Json, ty: &Ty) -> Result<Value, ValueError> {
        from_json(json, ty, &Path::Root)
    }

    /// Writes this value, read as a `ty`, as JSON (see the module docs for the mapping).
    pub fn to_json(&self, ty: &Ty) -> Result<Json, ValueError> {
        to_json(self, ty, &Path::Root)
    }
}

/// Describes a JSON value for an error message: `string "x"`, `number 1.5`, `object`.
fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("bool {b}"),
        Json::Number(n) => format!("number {n}"),
        Json::String(s) if s.chars().count() > 40 => {
            format!("string {:?}...", s.chars().take(40).collect::<String>())
        }
        Json::String(s) => format!("string {s:?}"),
        Json::Array(items) => format!("array of {} items", items.len()),
        Json::Object(_) => "object".into(),
    }
}

fn expected(path: &Path<'_>, what: &str, json: &Json) -> ValueError {
    ValueError::at(path, format!("expected {what}, found {}", describe(json)))
}

fn expected_ty(path: &Path<'_>, ty: &Ty, json: &Json) -> ValueError {
    expected(path, &type_name(ty), json)
}

/// Reads an integer of type `ty`, range-checked through `i128` so every WIT integer fits.
fn integer<T: TryFrom<i128>>(json: &Json, ty: &Ty, path: &Path<'_>) -> Result<T, ValueError> {
    let Json::Number(n) = json else {
        return Err(expected_ty(path, ty, json));
    };
    let wide = match (n.as_i64(), n.as_u64()) {
        (Some(i), _) => i128::from(i),
        (None, Some(u)) => i128::from(u),
        (None, None) => {
            return Err(ValueError::at(path, format!("{n} is not an integer, expected {}", type_name(ty))));
        }
    };
    T::try_from(wide).map_err(|_| ValueError::at(path, format!("{n} is out of range for {}", type_name(ty))))
}

fn float(json: &Json, ty: &Ty, path: &Path<'_>) -> Result<f64, ValueError> {
    match json {
        Json::Number(n) => {
            n.as_f64().ok_or_else(|| ValueError::at(path, format!("{n} is out of range for {}", type_name(ty))))
        }
        Json::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(expected(
                path,
                &format!("{} (a number, \"NaN\", \"Infinity\" or \"-Infinity\")", type_name(ty)),
                json,
            )),
        },
        _ => Err(expected_ty(path, ty, json)),
    }
}

fn f32_from_json(json: &Json, ty: &Ty, path: &Path<'_>) -> Result<f32, ValueError> {
    let x = float(json, ty, path)?;
    if let Json::Number(n) = json {
        // From the decimal text, not from the f64, so that rounding happens once.
        let x32: f32 = n.to_string().parse().unwrap_or(x as f32);
        if x32.is_infinite() {
            return Err(ValueError::at(path, format!("{n} is out of range for f32")));
        }
        return Ok(x32);
    }
    Ok(x as f32)
}

fn float_to_json(x: f64, text: impl FnOnce() -> String) -> Json {
    if x.is_nan() {
        Json::String("NaN".into())
    } else if x == f64::INFINITY {
        Json::String("Infinity".into())
    } else if x == f64::NEG_INFINITY {
        Json::String("-Infinity".into())
    } else {
        // `text` is the shortest decimal of the original float (for f32: of the f32, not
        // of its widened f64, so 0.1f32 prints as 0.1).
        let parsed: f64 = text().parse().expect("Rust float Display output parses");
        Json::Number(Number::from_f64(parsed).expect("finite"))
    }
}

/// Whether `ty` is an option whose payload is an option, so some must be `{"some": v}`.
fn nested_option(item: &Ty) -> bool {
    matches!(item, Ty::Option(_))
}

/// The single `(key, value)` of a one-entry object.
fn single_entry<'j>(
    map: &'j Map<String, Json>,
    path: &Path<'_>,
    what: &str,
) -> Result<(&'j String, &'j Json), ValueError> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Ok(entry),
        _ => Err(ValueError::at(path, format!("expected {what}, found an object with {} keys", map.len()))),
    }
}

fn from_json(json: &Json, ty: &Ty, path: &Path<'_>) -> Result<Value, ValueError> {
    Ok(match ty {
        Ty::Bool => match json {
            Json::Bool(b) => Value::Bool(*b),
            _ => return Err(expected_ty(path, ty, json)),
        },
        Ty::S8 => Value::S8(integer(json, ty, path)?),
        Ty::U8 => Value::U8(integer(json, ty, path)?),
        Ty::S16 => Value::S16(integer(json, ty, path)?),
        Ty::U16 => Value::U16(integer(json, ty, path)?),
        Ty::S32 => Value::S32(integer(json, ty, path)?),
        Ty::U32 => Value::U32(integer(json, ty, path)?),
        Ty::S64 => Value::S64(integer(json, ty, path)?),
        Ty::U64 => Value::U64(integer(json, ty, path)?),
        Ty::F32 => Value::F32(f32_from_json(json, ty, path)?),
        Ty::F64 => Value::F64(float(json, ty, path)?),
        Ty::Char => match json {
            Json::String(s) => {
                let mut chars = s.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Value::Char(c),
                    _ => return Err(expected(path, "char (a one-character string)", json)),
                }
            }
            _ => return Err(expected_ty(path, ty, json)),
        },
        Ty::String => match json {
            Json::String(s) => Value::String(s.clone()),
            _ => return Err(expected_ty(path, ty, json)),
        },
        Ty::List(item) => {
            let Json::Array(items) = json else {
                return Err(expected_ty(path, ty, json));
            };
            if **item == Ty::U8 {
                Value::Bytes(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| integer(v, item, &path.index(i)))
                        .collect::<Result<_, _>>()?,
                )
            } else {
                Numbers::list_of(
                    item,
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| from_json(v, item, &path.index(i)))
                        .collect::<Result<_, _>>()?,
                )
            }
        }
        Ty::Record(fields) => {
            let Json::Object(map) = json else {
                return Err(expected_ty(path, ty, json));
            };
            if let Some(unknown) = map.keys().find(|k| !fields.iter().any(|(name, _)| name == *k)) {
                return Err(ValueError::at(path, format!("unknown field `{unknown}` for {}", type_name(ty))));
            }
            Value::Record(
                fields
                    .iter()
                    .map(|(name, fty)| match (map.get(name), fty) {
                        (Some(v), _) => from_json(v, fty, &path.field(name)),
                        (None, Ty::Option(_)) => Ok(Value::Option(None)),
                        (None, _) => Err(ValueError::at(path, format!("missing field `{name}`"))),
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Ty::Tuple(types) => {
            let Json::Array(items) = json else {
                return Err(expected_ty(path, ty, json));
            };
            if items.len() != types.len() {
                return Err(expected(path, &format!("{} (an array of {} items)", type_name(ty), types.len()), json));
            }
            Value::Tuple(
                types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, v))| from_json(v, t, &path.index(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        Ty::Variant(cases) => {
            let (name, payload) = match json {
                Json::String(name) => (name, None),
                Json::Object(map) => {
                    let (name, payload) = single_entry(map, path, "an object with one case name as key")?;
                    (name, Some(payload))
                }
                _ => return Err(expected_ty(path, ty, json)),
            };
            let index = cases
                .iter()
                .position(|(n, _)| n == name)
                .ok_or_else(|| ValueError::at(path, format!("unknown case `{name}` for {}", type_name(ty))))?;
            let at = path.field(name);
            let payload = match (&cases[index].1, payload) {
                (None, None | Some(Json::Null)) => None,
                (None, Some(v)) => return Err(expected(&at, "no payload (null)", v)),
                (Some(pty), Some(v)) => Some(Box::new(from_json(v, pty, &at)?)),
                (Some(pty), None) => {
                    return Err(ValueError::at(
                        path,
                        format!("case `{name}` needs a {} payload: write {{\"{name}\": ...}}", type_name(pty)),
                    ))
                }
            };
            Value::Variant(index as u32, payload)
        }
        Ty::Enum(names) => match json {
            Json::String(name) => Value::Enum(
                names
                    .iter()
                    .position(|n| n == name)
                    .ok_or_else(|| ValueError::at(path, format!("unknown case `{name}` for {}", type_name(ty))))?
                    as u32,
            ),
            _ => return Err(expected_ty(path, ty, json)),
        },
        Ty::Option(item) => match json {
            Json::Null => Value::Option(None),
            _ if nested_option(item) => match json {
                Json::Object(map) if map.len() == 1 && map.contains_key("some") => {
                    Value::Option(Some(Box::new(from_json(&map["some"], item, &path.field("some"))?)))
                }
                _ => return Err(expected(path, &format!("{} (null or {{\"some\": ...}})", type_name(ty)), json)),
            },
            _ => Value::Option(Some(Box::new(from_json(json, item, path)?))),
        },
        Ty::Result { ok, err } => {
            let Json::Object(map) = json else {
                return Err(expected(path, &format!("{} ({{\"ok\": ...}} or {{\"err\": ...}})", type_name(ty)), json));
            };
            let (key, v) = single_entry(map, path, "{\"ok\": ...} or {\"err\": ...}")?;
            let (side, pty) = match key.as_str() {
                "ok" => (true, ok),
                "err" => (false, err),
                _ => return Err(ValueError::at(path, format!("expected key `ok` or `err`, found `{key}`"))),
            };
            let at = path.field(key);
            let payload = match (pty, v) {
                (None, Json::Null) => None,
                (None, v) => return Err(expected(&at, "no payload (null)", v)),
                (Some(pty), v) => Some(Box::new(from_json(v, pty, &at)?)),
            };
            Value::Result(if side { Ok(payload) } else { Err(payload) })
        }
        Ty::Flags(names) => {
            let Json::Array(items) = json else {
                return Err(expected(path, &format!("{} (an array of flag names)", type_name(ty)), json));
            };
            let mut set = items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Json::String(name) => names.iter().position(|n| n == name).map(|i| i as u32).ok_or_else(|| {
                        ValueError::at(&path.index(i), format!("unknown flag `{name}` for {}", type_name(ty)))
                    }),
                    _ => Err(expected(&path.index(i), "a flag name", v)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            set.sort_unstable();
            set.dedup();
            Value::Flags(set)
        }
    })
}

fn to_json(value: &Value, ty: &Ty, path: &Path<'_>) -> Result<Json, ValueError> {
    Ok(match (ty, value) {
        (Ty::Bool, Value::Bool(b)) => Json::Bool(*b),
        (Ty::S8, Value::S8(x)) => Json::from(*x),
        (Ty::U8, Value::U8(x)) => Json::from(*x),
        (Ty::S16, Value::S16(x)) => Json::from(*x),
        (Ty::U16, Value::U16(x)) => Json::from(*x),
        (Ty::S32, Value::S32(x)) => Json::from(*x),
        (Ty::U32, Value::U32(x)) => Json::from(*x),
        (Ty::S64, Value::S64(x)) => Json::from(*x),
        (Ty::U64, Value::U64(x)) => Json::from(*x),
        (Ty::F32, Value::F32(x)) => float_to_json(f64::from(*x), || x.to_string()),
        (Ty::F64, Value::F64(x)) => float_to_json(*x, || x.to_string()),
        (Ty::Char, Value::Char(c)) => Json::String(c.to_string()),
        (Ty::String, Value::String(s)) => Json::String(s.clone()),
        (Ty::List(item), Value::Bytes(bytes)) if **item == Ty::U8 => {
            Json::Array(bytes.iter().map(|b| Json::from(*b)).collect())
        }
        (Ty::List(item), Value::List(items)) if **item != Ty::U8 => Json::Array(
            items.iter().enumerate().map(|(i, v)| to_json(v, item, &path.index(i))).collect::<Result<_, _>>()?,
        ),
        (Ty::List(item), Value::Numbers(numbers)) if numbers.item_ty() == **item => {
            Json::Array(numbers.iter().map(|v| to_json(&v, item, path)).collect::<Result<_, _>>()?)
        }
        (Ty::Record(fields), Value::Record(values)) => {
            super::check_len(path, "fields", fields.len(), values.len())?;
            let mut map = Map::new();
            for ((name, fty), v) in fields.iter().zip(values) {
                map.insert(name.clone(), to_json(v, fty, &path.field(name))?);
            }
            Json::Object(map)
        }
        (Ty::Tuple(types), Value::Tuple(values)) => {
            super::check_len(path, "items", types.len(), values.len())?;
            Json::Array(
                types
                    .iter()
                    .zip(values)
                    .enumerate()
                    .map(|(i, (t, v))| to_json(v, t, &path.index(i)))
                    .collect::<Result<_, _>>()?,
            )
        }
        (Ty::Variant(cases), Value::Variant(index, payload)) => {
            let (name, pty) = cases.get(*index as usize).ok_or_else(|| {
                ValueError::at(path, format!("case index {index} is out of range for {}", type_name(ty)))
            })?;
            match (pty, payload) {
                (None, None) => Json::String(name.clone()),
                (Some(pty), Some(v)) => {
                    let mut map = Map::new();
                    map.insert(name.clone(), to_json(v, pty, &path.field(name))?);
                    Json::Object(map)
                }
                (None, Some(v)) => {
                    return Err(ValueError::at(&path.field(name), format!("expected no payload, found {}", v.kind())))
                }
                (Some(pty), None) => {
                    return Err(ValueError::at(
                        &path.field(name),
                        format!("expected a {} payload, found none", type_name(pty)),
                    ))
                }
            }
        }
        (Ty::Enum(names), Value::Enum(index)) => Json::String(
            names
                .get(*index as usize)
                .ok_or_else(|| {
                    ValueError::at(path, format!("case index {index} is out of range for {}", type_name(ty)))
                })?
                .clone(),
        ),
        (Ty::Option(_), Value::Option(None)) => Json::Null,
        (Ty::Option(item), Value::Option(Some(v))) => {
            if nested_option(item) {
                let mut map = Map::new();
                map.insert("some".into(), to_json(v, item, &path.field("some"))?);
                Json::Object(map)
            } else {
                to_json(v, item, path)?
            }
        }
        (Ty::Result { ok, err }, Value::Result(r)) => {
            let (key, pty, payload) = match r {
                Ok(v) => ("ok", ok, v),
                Err(v) => ("err", err, v),
            };
            let at = path.field(key);
            let inner = match (pty, payload) {
                (None, None) => Json::Null,
                (Some(pty), Some(v)) => to_json(v, pty, &at)?,
                (None, Some(v)) => return Err(ValueError::at(&at, format!("expected no payload, found {}", v.kind()))),
                (Some(pty), None) => {
                    return Err(ValueError::at(&at, format!("expected a {} payload, found none", type_name(pty))))
                }
            };
            let mut map = Map::new();
            map.insert(key.into(), inner);
            Json::Object(map)
        }
        (Ty::Flags(names), Value::Flags(set)) => {
            super::check_flags(path, names, set)?;
            Json::Array(set.iter().map(|&i| Json::String(names[i as usize].clone())).collect())
        }
        _ => return Err(ValueError::mismatch(path, ty, value)),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::value::samples::{b, bt, names, samples};

    fn err(json: Json, ty: &Ty) -> String {
        Value::from_json(&json, ty).unwrap_err().to_string()
    }

    #[test]
    fn every_sample_round_trips_through_json() {
        for (ty, value) in samples() {
            let json = value.to_json(&ty).unwrap_or_else(|e| panic!("to_json {ty:?}: {e}"));
            assert_eq!(Value::from_json(&json, &ty), Ok(value), "{ty:?} as {json}");
        }
    }

    #[test]
    fn json_shapes_follow_the_documented_mapping() {
        let rec = Ty::Record(vec![("a".into(), Ty::U32), ("b-c".into(), Ty::Option(Box::new(Ty::String)))]);
        let var = Ty::Variant(vec![("none".into(), None), ("num".into(), Some(Ty::S64))]);
        let oo = Ty::Option(Box::new(Ty::Option(Box::new(Ty::U32))));
        let res = Ty::Result { ok: None, err: bt(Ty::String) };
        let cases: Vec<(Ty, Value, Json)> = vec![
            (Ty::List(Box::new(Ty::U8)), Value::Bytes(vec![1, 255].into()), json!([1, 255])),
            (rec.clone(), Value::Record(vec![Value::U32(1), Value::Option(None)]), json!({"a": 1, "b-c": null})),
            (
                Ty::Tuple(vec![Ty::Bool, Ty::Char]),
                Value::Tuple(vec![Value::Bool(false), Value::Char('x')]),
                json!([false, "x"]),
            ),
            (var.clone(), Value::Variant(0, None), json!("none")),
            (var.clone(), Value::Variant(1, b(Value::S64(-3))), json!({"num": -3})),
            (Ty::Enum(names(&["red", "green"])), Value::Enum(1), json!("green")),
            (Ty::Option(Box::new(Ty::U32)), Value::Option(b(Value::U32(4))), json!(4)),
            (oo.clone(), Value::Option(None), json!(null)),
            (oo.clone(), Value::Option(b(Value::Option(None))), json!({"some": null})),
            (oo.clone(), Value::Option(b(Value::Option(b(Value::U32(5))))), json!({"some": 5})),
            (res.clone(), Value::Result(Ok(None)), json!({"ok": null})),
            (res.clone(), Value::Result(Err(b(Value::String("bad".into())))), json!({"err": "bad"})),
            (Ty::Flags(names(&["x", "y", "z"])), Value::Flags(vec![0, 2]), json!(["x", "z"])),
            (Ty::F64, Value::F64(f64::INFINITY), json!("Infinity")),
            (Ty::F64, Value::F64(f64::NEG_INFINITY), json!("-Infinity")),
            (Ty::F32, Value::F32(0.1), json!(0.1)),
            (Ty::U64, Value::U64(u64::MAX), json!(u64::MAX)),
            (Ty::S64, Value::S64(i64::MIN), json!(i64::MIN)),
        ];
        for (ty, value, expected) in cases {
            assert_eq!(value.to_json(&ty).unwrap(), expected, "{ty:?}");
            assert_eq!(Value::from_json(&expected, &ty).unwrap(), value, "{ty:?}");
        }
    }

    #[test]
    fn record_fields_print_in_declaration_order() {
        let rec = Ty::Record(vec![("z".into(), Ty::U8), ("a".into(), Ty::U8)]);
        let json = Value::Record(vec![Value::U8(1), Value::U8(2)]).to_json(&rec).unwrap();
        assert_eq!(json.to_string(), r#"{"z":1,"a":2}"#);
    }

    #[test]
    fn nan_round_trips_as_a_string() {
        let json = Value::F64(f64::NAN).to_json(&Ty::F64).unwrap();
        assert_eq!(json, json!("NaN"));
        assert!(matches!(Value::from_json(&json, &Ty::F64), Ok(Value::F64(x)) if x.is_nan()));
        assert!(matches!(Value::from_json(&json, &Ty::F32), Ok(Value::F32(x)) if x.is_nan()));
    }

    #[test]
    fn integers_are_range_checked() {
        assert_eq!(err(json!(300), &Ty::U8), "$: 300 is out of range for u8");
        assert_eq!(err(json!(-1), &Ty::U64), "$: -1 is out of range for u64");
        assert_eq!(err(json!(1.5), &Ty::S32), "$: 1.5 is not an integer, expected s32");
        assert_eq!(err(json!(1e40), &Ty::F32), "$: 1e+40 is out of range for f32");
        assert_eq!(err(json!([1, 256]), &Ty::List(Box::new(Ty::U8))), "$[1]: 256 is out of range for u8");
    }

    #[test]
    fn nested_bad_fields_name_their_path() {
        let item = Ty::Record(vec![("id".into(), Ty::U32), ("tags".into(), Ty::List(Box::new(Ty::String)))]);
        let ty =
            Ty::Record(vec![("items".into(), Ty::List(Box::new(Ty::U32))), ("more".into(), Ty::List(Box::new(item)))]);
        assert_eq!(
            err(json!({"items": [1, 2, 3, "x"], "more": []}), &ty),
            r#"$.items[3]: expected u32, found string "x""#
        );
        assert_eq!(
            err(json!({"items": [], "more": [{"id": 1, "tags": []}, {"id": 2, "tags": ["a", 7]}]}), &ty),
            "$.more[1].tags[1]: expected string, found number 7"
        );
        assert_eq!(err(json!({"items": [], "more": [{"id": 1}]}), &ty), "$.more[0]: missing field `tags`");
        assert_eq!(
            err(json!({"items": [], "more": [], "extra": 1}), &ty),
            "$: unknown field `extra` for record { items: list<u32>, more: list<record { id: u32, tags: list<string> \
                }> }"
        );
    }

    #[test]
    fn option_fields_may_be_omitted() {
        let ty = Ty::Record(vec![("a".into(), Ty::U32), ("b".into(), Ty::Option(Box::new(Ty::U32)))]);
        assert_eq!(
            Value::from_json(&json!({"a": 1}), &ty),
            Ok(Value::Record(vec![Value::U32(1), Value::Option(None)]))
        );
    }

    #[test]
    fn variants_results_and_options_check_their_shape() {
        let var = Ty::Variant(vec![("none".into(), None), ("num".into(), Some(Ty::S64))]);
        assert_eq!(err(json!("nope"), &var), "$: unknown case `nope` for variant { none, num(s64) }");
        assert_eq!(err(json!({"num": "x"}), &var), r#"$.num: expected s64, found string "x""#);
        assert_eq!(err(json!("num"), &var), r#"$: case `num` needs a s64 payload: write {"num": ...}"#);
        assert_eq!(err(json!({"none": 1}), &var), "$.none: expected no payload (null), found number 1");
        assert_eq!(
            err(json!({"none": null, "num": 1}), &var),
            "$: expected an object with one case name as key, found an object with 2 keys"
        );
        let res = Ty::Result { ok: bt(Ty::U32), err: None };
        assert_eq!(err(json!({"ok": -1}), &res), "$.ok: -1 is out of range for u32");
        assert_eq!(err(json!({"err": 3}), &res), "$.err: expected no payload (null), found number 3");
        assert_eq!(err(json!({"fine": 3}), &res), "$: expected key `ok` or `err`, found `fine`");
        let oo = Ty::Option(Box::new(Ty::Option(Box::new(Ty::U32))));
        assert_eq!(err(json!(5), &oo), r#"$: expected option<option<u32>> (null or {"some": ...}), found number 5"#);
        assert_eq!(err(json!({"some": "x"}), &oo), r#"$.some: expected u32, found string "x""#);
        assert_eq!(err(json!("blue"), &Ty::Enum(names(&["red"]))), "$: unknown case `blue` for enum { red }");
        assert_eq!(err(json!(["x", "w"]), &Ty::Flags(names(&["x"]))), "$[1]: unknown flag `w` for flags { x }");
    }

    #[test]
    fn scalars_check_their_shape() {
        assert_eq!(err(json!("ab"), &Ty::Char), r#"$: expected char (a one-character string), found string "ab""#);
        assert_eq!(err(json!(1), &Ty::Bool), "$: expected bool, found number 1");
        assert_eq!(err(json!(null), &Ty::String), "$: expected string, found null");
        assert_eq!(
            err(json!([1]), &Ty::Tuple(vec![Ty::U8, Ty::U8])),
            "$: expected tuple<u8, u8> (an array of 2 items), found array of 1 items"
        );
        assert_eq!(
            err(json!("inf"), &Ty::F64),
            r#"$: expected f64 (a number, "NaN", "Infinity" or "-Infinity"), found string "inf""#
        );
    }

    #[test]
    fn to_json_refuses_values_of_another_type() {
        let ty = Ty::Record(vec![("xs".into(), Ty::List(Box::new(Ty::U8)))]);
        let value = Value::Record(vec![Value::List(vec![Value::U8(1)])]);
        assert_eq!(value.to_json(&ty).unwrap_err().to_string(), "$.xs: expected list<u8>, found list");
    }

    #[test]
    fn type_names_are_wit_syntax() {
        let cases = vec![
            (Ty::List(Box::new(Ty::U32)), "list<u32>"),
            (Ty::Record(vec![("a".into(), Ty::U32), ("b".into(), Ty::String)]), "record { a: u32, b: string }"),
            (Ty::Option(Box::new(Ty::String)), "option<string>"),
            (Ty::Result { ok: bt(Ty::U32), err: bt(Ty::String) }, "result<u32, string>"),
            (Ty::Result { ok: bt(Ty::U32), err: None }, "result<u32>"),
            (Ty::Result { ok: None, err: bt(Ty::String) }, "result<_, string>"),
            (Ty::Result { ok: None, err: None }, "result"),
            (Ty::Tuple(vec![Ty::S8, Ty::F64]), "tuple<s8, f64>"),
            (Ty::Variant(vec![("a".into(), None), ("b".into(), Some(Ty::Char))]), "variant { a, b(char) }"),
            (Ty::Enum(names(&["x", "y"])), "enum { x, y }"),
            (Ty::Flags(names(&["r", "w"])), "flags { r, w }"),
        ];
        for (ty, name) in cases {
            assert_eq!(type_name(&ty), name);
        }
    }
}
