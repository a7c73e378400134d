//! The canonical binary encoding of typed values, hashed into cache keys (DESIGN §3).
//!
//! The encoding follows the WIT type, not the value alone, so a tuple and a list of the
//! same items, or a `u32` and an `s32` of the same number, never share a key. It is
//! versioned by [`FORMAT`] and pinned by golden tests: any change to the bytes produced
//! here must bump `FORMAT`.
//!
//! Layout (all integers little-endian, fixed width):
//!
//! - A length or count is a `u64`. A string is its UTF-8 length then its bytes.
//! - Types: one tag byte (see [`encode_type`]), then for compound types their parts:
//!   record = field count, then (name, type) per field; tuple = count, then types;
//!   variant = case count, then (name, 0 | 1 type) per case; enum and flags = count, then
//!   names; list and option = the item type; result = (0 | 1 type) for ok, then for err.
//! - Values: bool = one byte 0/1; integers at their own width; `f32`/`f64` as their IEEE
//!   bits after mapping every NaN to the quiet NaN `0x7fc00000` / `0x7ff8000000000000`
//!   and -0.0 to +0.0; char = its scalar value as `u32`; list = count then items;
//!   `list<u8>` = length then the raw bytes (the same bytes a list of `u8` items would
//!   give); record and tuple = items in order (the type fixes their number); variant =
//!   `u32` case index then the payload; enum = `u32` case index; option = byte 0, or byte
//!   1 then the payload; result = byte 0 then the ok payload, or byte 1 then the err
//!   payload; flags = count then the `u32` indices of the set flags, ascending.

use super::{json::type_name, Path, Ty, Value, ValueError};

/// Version of this encoding, hashed first by [`digest`]. Bump it whenever the bytes
/// that any type or value encodes to change.
pub const FORMAT: u8 = 1;

/// Where encoded bytes go: a buffer, or straight into a hasher.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Feeds a BLAKE3 hasher through a small buffer, so the many few-byte writes of a
/// large list cost a memcpy each, while a large byte slice goes to the hasher as is.
struct HashSink {
    hasher: blake3::Hasher,
    buf: Vec<u8>,
}

const HASH_BUF: usize = 16 * 1024;

impl HashSink {
    fn flush(&mut self) {
        self.hasher.update(&self.buf);
        self.buf.clear();
    }
}

impl Sink for HashSink {
    fn put(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > HASH_BUF {
            self.flush();
            if bytes.len() >= HASH_BUF {
                self.hasher.update(bytes);
                return;
            }
        }
        self.buf.extend_from_slice(bytes);
    }
}

fn put_len(out: &mut impl Sink, len: usize) {
    out.put(&(len as u64).to_le_bytes());
}

fn put_str(out: &mut impl Sink, s: &str) {
    put_len(out, s.len());
    out.put(s.as_bytes());
}

/// Appends the canonical encoding of `ty` to `out`.
///
/// Tags: bool 0, s8 1, u8 2, s16 3, u16 4, s32 5, u32 6, s64 7, u64 8, f32 9, f64 10,
/// char 11, string 12, list 13, record 14, tuple 15, variant 16, enum 17, option 18,
/// result 19, flags 20.
pub fn encode_type(ty: &Ty, out: &mut Vec<u8>) {
    write_type(ty, out);
}

fn write_type(ty: &Ty, out: &mut impl Sink) {
    fn payload(ty: Option<&Ty>, out: &mut impl Sink) {
        match ty {
            None => out.put(&[0]),
            Some(ty) => {
                out.put(&[1]);
                write_type(ty, out);
            }
        }
    }
    match ty {
        Ty::Bool => out.put(&[0]),
        Ty::S8 => out.put(&[1]),
        Ty::U8 => out.put(&[2]),
        Ty::S16 => out.put(&[3]),
        Ty::U16 => out.put(&[4]),
        Ty::S32 => out.put(&[5]),
        Ty::U32 => out.put(&[6]),
        Ty::S64 => out.put(&[7]),
        Ty::U64 => out.put(&[8]),
        Ty::F32 => out.put(&[9]),
        Ty::F64 => out.put(&[10]),
        Ty::Char => out.put(&[11]),
        Ty::String => out.put(&[12]),
        Ty::List(item) => {
            out.put(&[13]);
            write_type(item, out);
        }
        Ty::Record(fields) => {
            out.put(&[14]);
            put_len(out, fields.len());
            for (name, ty) in fields {
                put_str(out, name);
                write_type(ty, out);
            }
        }
        Ty::Tuple(items) => {
            out.put(&[15]);
            put_len(out, items.len());
            for ty in items {
                write_type(ty, out);
            }
        }
        Ty::Variant(cases) => {
            out.put(&[16]);
            put_len(out, cases.len());
            for (name, ty) in cases {
                put_str(out, name);
                payload(ty.as_ref(), out);
            }
        }
        Ty::Enum(names) => {
            out.put(&[17]);
            put_len(out, names.len());
            for name in names {
                put_str(out, name);
            }
        }
        Ty::Option(item) => {
            out.put(&[18]);
            write_type(item, out);
        }
        Ty::Result { ok, err } => {
            out.put(&[19]);
            payload(ok.as_deref(), out);
            payload(err.as_deref(), out);
        }
        Ty::Flags(names) => {
            out.put(&[20]);
            put_len(out, names.len());
            for name in names {
                put_str(out, name);
            }
        }
    }
}

/// Appends the canonical encoding of `value`, read as a `ty`, to `out`.
///
/// Fails, naming the place, if the value does not fit the type (including a
/// [`Value::List`] given for `list<u8>`, which must be [`Value::Bytes`]). `out` may then
/// hold a partial encoding.
pub fn encode_value(value: &Value, ty: &Ty, out: &mut Vec<u8>) -> Result<(), ValueError> {
    write_value(value, ty, &Path::Root, out)
}

/// BLAKE3 of [`FORMAT`], the encoding of `ty`, then the encoding of `value`, computed
/// without materialising the encoding: a 256 MiB `list<u8>` is hashed in place.
pub fn digest(value: &Value, ty: &Ty) -> Result<blake3::Hash, ValueError> {
    let mut sink = HashSink { hasher: blake3::Hasher::new(), buf: Vec::with_capacity(HASH_BUF) };
    sink.put(&[FORMAT]);
    write_type(ty, &mut sink);
    write_value(value, ty, &Path::Root, &mut sink)?;
    sink.flush();
    Ok(sink.hasher.finalize())
}

/// The one bit pattern every `f32` NaN encodes as.
const F32_NAN: u32 = 0x7fc0_0000;
/// The one bit pattern every `f64` NaN encodes as.
const F64_NAN: u64 = 0x7ff8_0000_0000_0000;

fn f32_bits(x: f32) -> u32 {
    if x.is_nan() {
        F32_NAN
    } else if x == 0.0 {
        0 // -0.0 == 0.0, so both become +0.0
    } else {
        x.to_bits()
    }
}

fn f64_bits(x: f64) -> u64 {
    if x.is_nan() {
        F64_NAN
    } else if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

fn write_value(value: &Value, ty: &Ty, path: &Path<'_>, out: &mut impl Sink) -> Result<(), ValueError> {
    match (ty, value) {
        (Ty::Bool, Value::Bool(b)) => out.put(&[*b as u8]),
        (Ty::S8, Value::S8(x)) => out.put(&x.to_le_bytes()),
        (Ty::U8, Value::U8(x)) => out.put(&[*x]),
        (Ty::S16, Value::S16(x)) => out.put(&x.to_le_bytes()),
        (Ty::U16, Value::U16(x)) => out.put(&x.to_le_bytes()),
        (Ty::S32, Value::S32(x)) => out.put(&x.to_le_bytes()),
        (Ty::U32, Value::U32(x)) => out.put(&x.to_le_bytes()),
        (Ty::S64, Value::S64(x)) => out.put(&x.to_le_bytes()),
        (Ty::U64, Value::U64(x)) => out.put(&x.to_le_bytes()),
        (Ty::F32, Value::F32(x)) => out.put(&f32_bits(*x).to_le_bytes()),
        (Ty::F64, Value::F64(x)) => out.put(&f64_bits(*x).to_le_bytes()),
        (Ty::Char, Value::Char(c)) => out.put(&(*c as u32).to_le_bytes()),
        (Ty::String, Value::String(s)) => put_str(out, s),
        (Ty::List(item), Value::Bytes(bytes)) if **item == Ty::U8 => {
            put_len(out, bytes.len());
            out.put(bytes);
        }
        (Ty::List(item), Value::List(items)) if **item != Ty::U8 => {
            put_len(out, items.len());
            for (i, v) in items.iter().enumerate() {
                write_value(v, item, &path.index(i), out)?;
            }
        }
        (Ty::Record(fields), Value::Record(values)) => {
            check_len(path, "fields", fields.len(), values.len())?;
            for ((name, ty), v) in fields.iter().zip(values) {
                write_value(v, ty, &path.field(name), out)?;
            }
        }
        (Ty::Tuple(types), Value::Tuple(values)) => {
            check_len(path, "items", types.len(), values.len())?;
            for (i, (ty, v)) in types.iter().zip(values).enumerate() {
                write_value(v, ty, &path.index(i), out)?;
            }
        }
        (Ty::Variant(cases), Value::Variant(index, payload)) => {
            let (name, case_ty) = cases.get(*index as usize).ok_or_else(|| {
                ValueError::at(path, format!("case index {index} is out of range for {}", type_name(ty)))
            })?;
            out.put(&index.to_le_bytes());
            write_payload(payload.as_deref(), case_ty.as_ref(), &path.field(name), out)?;
        }
        (Ty::Enum(names), Value::Enum(index)) => {
            if *index as usize >= names.len() {
                return Err(ValueError::at(
                    path,
                    format!("case index {index} is out of range for {}", type_name(ty)),
                ));
            }
            out.put(&index.to_le_bytes());
        }
        (Ty::Option(item), Value::Option(v)) => match v {
            None => out.put(&[0]),
            Some(v) => {
                out.put(&[1]);
                write_value(v, item, path, out)?;
            }
        },
        (Ty::Result { ok, err }, Value::Result(r)) => match r {
            Ok(v) => {
                out.put(&[0]);
                write_payload(v.as_deref(), ok.as_deref(), &path.field("ok"), out)?;
            }
            Err(v) => {
                out.put(&[1]);
                write_payload(v.as_deref(), err.as_deref(), &path.field("err"), out)?;
            }
        },
        (Ty::Flags(names), Value::Flags(set)) => {
            check_flags(path, names, set)?;
            put_len(out, set.len());
            for i in set {
                out.put(&i.to_le_bytes());
            }
        }
        _ => return Err(ValueError::mismatch(path, ty, value)),
    }
    Ok(())
}

fn write_payload(
    value: Option<&Value>,
    ty: Option<&Ty>,
    path: &Path<'_>,
    out: &mut impl Sink,
) -> Result<(), ValueError> {
    match (ty, value) {
        (None, None) => Ok(()),
        (Some(ty), Some(v)) => write_value(v, ty, path, out),
        (None, Some(v)) => Err(ValueError::at(path, format!("expected no payload, found {}", v.kind()))),
        (Some(ty), None) => {
            Err(ValueError::at(path, format!("expected a {} payload, found none", type_name(ty))))
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
    //! Golden tests: these pin the exact bytes and digests. If one fails, the encoding
    //! changed, and every cache key with it: bump `FORMAT` and update the pins together.

    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn enc(value: &Value, ty: &Ty) -> String {
        let mut out = Vec::new();
        encode_value(value, ty, &mut out).unwrap();
        hex(&out)
    }

    fn ty_enc(ty: &Ty) -> String {
        let mut out = Vec::new();
        encode_type(ty, &mut out);
        hex(&out)
    }

    fn dig(value: &Value, ty: &Ty) -> String {
        digest(value, ty).unwrap().to_hex().to_string()
    }

    fn b(v: Value) -> Option<Box<Value>> {
        Some(Box::new(v))
    }

    fn bt(t: Ty) -> Option<Box<Ty>> {
        Some(Box::new(t))
    }

    #[test]
    fn format_is_one() {
        assert_eq!(FORMAT, 1);
    }
}
