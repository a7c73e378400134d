//! The bytes a [`Value`] is stored as in a record: postcard's encoding of it, written and
//! read here by hand.
//!
//! They are exactly the bytes serde and postcard give for `Value` (the tests hold the two
//! against each other), so record formats and digests do not change. Going by hand lets a
//! list of numbers be written and read in one tight loop (through serde, a 64 MiB
//! `list<u64>` took 0.4 s to encode and as long to decode, against a memcpy's 10 ms), lets
//! a large byte list go to its sink as one slice, and lets decoding follow the value's type:
//! a list of numbers comes back as [`Value::Numbers`], and bytes that do not fit the type
//! are refused where they stop fitting.
//!
//! The format: a value is its variant index as a varint (`Bool` 0 … `Flags` 21, in
//! declaration order; `Numbers` is written as `List`), then its content. Unsigned integers
//! and lengths are LEB128 varints, signed ones zigzagged first, `s8`/`u8` one byte, floats
//! 4 or 8 little-endian bytes, a char its UTF-8 as a string, a string or byte list its
//! length then its bytes, a sequence its length then its items, an option 0 or 1 then the
//! payload, a result's side 0 (ok) or 1 (err).

use super::{check_flags, Numbers, Path, Ty, Value};

const BOOL: u8 = 0;
const S8: u8 = 1;
const U8: u8 = 2;
const S16: u8 = 3;
const U16: u8 = 4;
const S32: u8 = 5;
const U32: u8 = 6;
const S64: u8 = 7;
const U64: u8 = 8;
const F32: u8 = 9;
const F64: u8 = 10;
const CHAR: u8 = 11;
const STRING: u8 = 12;
const LIST: u8 = 13;
const BYTES: u8 = 14;
const RECORD: u8 = 15;
const TUPLE: u8 = 16;
const VARIANT: u8 = 17;
const ENUM: u8 = 18;
const OPTION: u8 = 19;
const RESULT: u8 = 20;
const FLAGS: u8 = 21;

/// Where encoded bytes go: a buffer, a hasher, or a counter.
pub trait Sink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Value, out: &mut impl Sink) {
    let mut buf = Buf::default();
    write(value, &mut buf, out);
    buf.flush(out);
}

/// The length of `value`'s encoding, found without writing it.
pub fn encoded_len(value: &Value) -> u64 {
    let payload = |p: &Option<Box<Value>>| 1 + p.as_deref().map_or(0, encoded_len);
    let seq = |items: &[Value]| varint_len(items.len() as u64) + items.iter().map(encoded_len).sum::<u64>();
    1 + match value {
        Value::Bool(_) | Value::S8(_) | Value::U8(_) => 1,
        Value::S16(x) => varint_len(zigzag(i64::from(*x))),
        Value::U16(x) => varint_len(u64::from(*x)),
        Value::S32(x) => varint_len(zigzag(i64::from(*x))),
        Value::U32(x) | Value::Enum(x) => varint_len(u64::from(*x)),
        Value::S64(x) => varint_len(zigzag(*x)),
        Value::U64(x) => varint_len(*x),
        Value::F32(_) => 4,
        Value::F64(_) => 8,
        Value::Char(c) => 1 + c.len_utf8() as u64,
        Value::String(s) => varint_len(s.len() as u64) + s.len() as u64,
        Value::Bytes(b) => varint_len(b.len() as u64) + b.len() as u64,
        Value::List(items) | Value::Record(items) | Value::Tuple(items) => seq(items),
        Value::Numbers(numbers) => varint_len(numbers.len() as u64) + numbers_len(numbers),
        Value::Variant(index, p) => varint_len(u64::from(*index)) + payload(p),
        Value::Option(p) => payload(p),
        Value::Result(Ok(p) | Err(p)) => 1 + payload(p),
        Value::Flags(set) => varint_len(set.len() as u64) + set.iter().map(|i| varint_len(u64::from(*i))).sum::<u64>(),
    }
}

/// The bytes of a list of numbers' items, each its tag and the number.
fn numbers_len(numbers: &Numbers) -> u64 {
    let n = numbers.len() as u64;
    let varints = |lens: &mut dyn Iterator<Item = u64>| n + lens.sum::<u64>();
    match numbers {
        Numbers::S8(_) => 2 * n,
        Numbers::F32(_) => 5 * n,
        Numbers::F64(_) => 9 * n,
        Numbers::S16(items) => varints(&mut items.iter().map(|x| varint_len(zigzag(i64::from(*x))))),
        Numbers::U16(items) => varints(&mut items.iter().map(|x| varint_len(u64::from(*x)))),
        Numbers::S32(items) => varints(&mut items.iter().map(|x| varint_len(zigzag(i64::from(*x))))),
        Numbers::U32(items) => varints(&mut items.iter().map(|x| varint_len(u64::from(*x)))),
        Numbers::S64(items) => varints(&mut items.iter().map(|x| varint_len(zigzag(*x)))),
        Numbers::U64(items) => varints(&mut items.iter().map(|x| varint_len(*x))),
    }
}

/// The bytes of `x` as a LEB128 varint: one per started 7 bits, one for zero.
#[inline]
fn varint_len(x: u64) -> u64 {
    u64::from((64 - (x | 1).leading_zeros()).div_ceil(7))
}

/// Small writes gather here before they go to the sink; a large slice goes through as is.
struct Buf {
    bytes: [u8; BUF],
    len: usize,
}

const BUF: usize = 64 * 1024;

impl Default for Buf {
    fn default() -> Buf {
        Buf { bytes: [0; BUF], len: 0 }
    }
}

impl Buf {
    #[inline]
    fn room(&mut self, n: usize, out: &mut impl Sink) -> &mut [u8] {
        if self.len + n > BUF {
            self.flush(out);
        }
        &mut self.bytes[self.len..self.len + n]
    }

    #[inline]
    fn byte(&mut self, b: u8, out: &mut impl Sink) {
        self.room(1, out)[0] = b;
        self.len += 1;
    }

    #[inline]
    fn varint(&mut self, mut x: u64, out: &mut impl Sink) {
        let room = self.room(10, out);
        let mut n = 0;
        while x >= 0x80 {
            room[n] = (x as u8) | 0x80;
            x >>= 7;
            n += 1;
        }
        room[n] = x as u8;
        self.len += n + 1;
    }

    #[inline]
    fn fixed(&mut self, bytes: &[u8], out: &mut impl Sink) {
        self.room(bytes.len(), out).copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn slice(&mut self, bytes: &[u8], out: &mut impl Sink) {
        if bytes.len() <= 1024 {
            self.fixed(bytes, out);
        } else {
            self.flush(out);
            out.put(bytes);
        }
    }

    fn flush(&mut self, out: &mut impl Sink) {
        if self.len > 0 {
            out.put(&self.bytes[..self.len]);
            self.len = 0;
        }
    }
}

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn unzigzag(x: u64) -> i64 {
    ((x >> 1) as i64) ^ -((x & 1) as i64)
}

fn write(value: &Value, buf: &mut Buf, out: &mut impl Sink) {
    match value {
        Value::Bool(x) => {
            buf.byte(BOOL, out);
            buf.byte(u8::from(*x), out);
        }
        Value::S8(x) => {
            buf.byte(S8, out);
            buf.byte(*x as u8, out);
        }
        Value::U8(x) => {
            buf.byte(U8, out);
            buf.byte(*x, out);
        }
        Value::S16(x) => write_number(S16, zigzag(i64::from(*x)), buf, out),
        Value::U16(x) => write_number(U16, u64::from(*x), buf, out),
        Value::S32(x) => write_number(S32, zigzag(i64::from(*x)), buf, out),
        Value::U32(x) => write_number(U32, u64::from(*x), buf, out),
        Value::S64(x) => write_number(S64, zigzag(*x), buf, out),
        Value::U64(x) => write_number(U64, *x, buf, out),
        Value::F32(x) => {
            buf.byte(F32, out);
            buf.fixed(&x.to_bits().to_le_bytes(), out);
        }
        Value::F64(x) => {
            buf.byte(F64, out);
            buf.fixed(&x.to_bits().to_le_bytes(), out);
        }
        Value::Char(c) => {
            buf.byte(CHAR, out);
            let mut utf8 = [0; 4];
            let s = c.encode_utf8(&mut utf8);
            buf.varint(s.len() as u64, out);
            buf.fixed(s.as_bytes(), out);
        }
        Value::String(s) => {
            buf.byte(STRING, out);
            buf.varint(s.len() as u64, out);
            buf.slice(s.as_bytes(), out);
        }
        Value::List(items) => write_seq(LIST, items, buf, out),
        Value::Numbers(numbers) => write_numbers(numbers, buf, out),
        Value::Bytes(bytes) => {
            buf.byte(BYTES, out);
            buf.varint(bytes.len() as u64, out);
            buf.slice(bytes, out);
        }
        Value::Record(items) => write_seq(RECORD, items, buf, out),
        Value::Tuple(items) => write_seq(TUPLE, items, buf, out),
        Value::Variant(index, payload) => {
            buf.byte(VARIANT, out);
            buf.varint(u64::from(*index), out);
            write_payload(payload.as_deref(), buf, out);
        }
        Value::Enum(index) => write_number(ENUM, u64::from(*index), buf, out),
        Value::Option(payload) => {
            buf.byte(OPTION, out);
            write_payload(payload.as_deref(), buf, out);
        }
        Value::Result(result) => {
            buf.byte(RESULT, out);
            let (side, payload) = match result {
                Ok(payload) => (0, payload),
                Err(payload) => (1, payload),
            };
            buf.byte(side, out);
            write_payload(payload.as_deref(), buf, out);
        }
        Value::Flags(set) => {
            buf.byte(FLAGS, out);
            buf.varint(set.len() as u64, out);
            for i in set {
                buf.varint(u64::from(*i), out);
            }
        }
    }
}

fn write_number(tag: u8, x: u64, buf: &mut Buf, out: &mut impl Sink) {
    buf.byte(tag, out);
    buf.varint(x, out);
}

fn write_seq(tag: u8, items: &[Value], buf: &mut Buf, out: &mut impl Sink) {
    buf.byte(tag, out);
    buf.varint(items.len() as u64, out);
    for item in items {
        write(item, buf, out);
    }
}

fn write_payload(payload: Option<&Value>, buf: &mut Buf, out: &mut impl Sink) {
    match payload {
        None => buf.byte(0, out),
        Some(value) => {
            buf.byte(1, out);
            write(value, buf, out);
        }
    }
}

/// A list of numbers as the `List` of its items: each item's tag, then the item.
fn write_numbers(numbers: &Numbers, buf: &mut Buf, out: &mut impl Sink) {
    buf.byte(LIST, out);
    buf.varint(numbers.len() as u64, out);
    match numbers {
        Numbers::S8(items) => items.iter().for_each(|x| buf.fixed(&[S8, *x as u8], out)),
        Numbers::S16(items) => items.iter().for_each(|x| write_number(S16, zigzag(i64::from(*x)), buf, out)),
        Numbers::U16(items) => items.iter().for_each(|x| write_number(U16, u64::from(*x), buf, out)),
        Numbers::S32(items) => items.iter().for_each(|x| write_number(S32, zigzag(i64::from(*x)), buf, out)),
        Numbers::U32(items) => items.iter().for_each(|x| write_number(U32, u64::from(*x), buf, out)),
        Numbers::S64(items) => items.iter().for_each(|x| write_number(S64, zigzag(*x), buf, out)),
        Numbers::U64(items) => items.iter().for_each(|x| write_number(U64, *x, buf, out)),
        Numbers::F32(items) => items.iter().for_each(|x| {
            let [a, b, c, d] = x.to_bits().to_le_bytes();
            buf.fixed(&[F32, a, b, c, d], out);
        }),
        Numbers::F64(items) => items.iter().for_each(|x| {
            let mut item = [F64; 9];
            item[1..].copy_from_slice(&x.to_bits().to_le_bytes());
            buf.fixed(&item, out);
        }),
    }
}

// ---- decoding ----

/// Why bytes are not a value of the expected type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct WireError {
    /// Where in the value the bytes stopped fitting, as in `$.items[3]`.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

type Decoded<T> = Result<T, WireError>;

/// Reads a value of type `ty` from the front of `bytes`; returns it and the bytes after it.
pub fn decode<'a>(bytes: &'a [u8], ty: &Ty) -> Decoded<(Value, &'a [u8])> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value(ty, &Path::Root)?;
    Ok((value, &bytes[reader.at..]))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn fail<T>(path: &Path<'_>, message: impl Into<String>) -> Decoded<T> {
    Err(WireError { path: path.to_string(), message: message.into() })
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, path: &Path<'_>) -> Decoded<&'a [u8]> {
        match self.bytes.get(self.at..).and_then(|rest| rest.get(..n)) {
            Some(taken) => {
                self.at += n;
                Ok(taken)
            }
            None => fail(path, format!("{n} bytes needed, {} left", self.bytes.len() - self.at)),
        }
    }

    fn byte(&mut self, path: &Path<'_>) -> Decoded<u8> {
        Ok(self.take(1, path)?[0])
    }

    /// A varint of at most `bits` bits, refused as postcard refuses it when longer or larger.
    #[inline]
    fn varint(&mut self, bits: u32, path: &Path<'_>) -> Decoded<u64> {
        let max_len = bits.div_ceil(7) as usize;
        let mut out = 0u64;
        for i in 0..max_len {
            let Some(&b) = self.bytes.get(self.at) else {
                return fail(path, "the data ends inside a number");
            };
            self.at += 1;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                let last_bits = bits - 7 * (max_len as u32 - 1);
                if i == max_len - 1 && u32::from(b) >= 1 << last_bits {
                    break;
                }
                return Ok(out);
            }
        }
        fail(path, format!("not a {bits}-bit varint"))
    }

    fn len(&mut self, path: &Path<'_>) -> Decoded<usize> {
        let n = self.varint(64, path)?;
        // Every item takes a byte at least: a length past the end is refused before any
        // room is reserved for it.
        if n > (self.bytes.len() - self.at) as u64 {
            return fail(path, format!("a length of {n} runs past the end of the data"));
        }
        Ok(n as usize)
    }

    fn tag(&mut self, expected: u8, ty: &Ty, path: &Path<'_>) -> Decoded<()> {
        let tag = self.varint(32, path)?;
        if tag != u64::from(expected) {
            return fail(
                path,
                format!("expected {}, found the tag of another kind ({tag})", super::json::type_name(ty)),
            );
        }
        Ok(())
    }

    fn value(&mut self, ty: &Ty, path: &Path<'_>) -> Decoded<Value> {
        macro_rules! int {
            ($tag:expr, $variant:ident, $t:ty, $bits:expr, signed) => {{
                self.tag($tag, ty, path)?;
                let x = unzigzag(self.varint($bits, path)?);
                Value::$variant(x as $t)
            }};
            ($tag:expr, $variant:ident, $t:ty, $bits:expr) => {{
                self.tag($tag, ty, path)?;
                Value::$variant(self.varint($bits, path)? as $t)
            }};
        }
        Ok(match ty {
            Ty::Bool => {
                self.tag(BOOL, ty, path)?;
                match self.byte(path)? {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => return fail(path, format!("{b} is not a bool")),
                }
            }
            Ty::S8 => {
                self.tag(S8, ty, path)?;
                Value::S8(self.byte(path)? as i8)
            }
            Ty::U8 => {
                self.tag(U8, ty, path)?;
                Value::U8(self.byte(path)?)
            }
            Ty::S16 => int!(S16, S16, i16, 16, signed),
            Ty::U16 => int!(U16, U16, u16, 16),
            Ty::S32 => int!(S32, S32, i32, 32, signed),
            Ty::U32 => int!(U32, U32, u32, 32),
            Ty::S64 => int!(S64, S64, i64, 64, signed),
            Ty::U64 => int!(U64, U64, u64, 64),
            Ty::F32 => {
                self.tag(F32, ty, path)?;
                Value::F32(f32::from_bits(u32::from_le_bytes(self.take(4, path)?.try_into().expect("4 bytes"))))
            }
            Ty::F64 => {
                self.tag(F64, ty, path)?;
                Value::F64(f64::from_bits(u64::from_le_bytes(self.take(8, path)?.try_into().expect("8 bytes"))))
            }
            Ty::Char => {
                self.tag(CHAR, ty, path)?;
                let n = self.len(path)?;
                let s = std::str::from_utf8(self.take(n, path)?).ok();
                let mut chars = s.map(str::chars).into_iter().flatten();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Value::Char(c),
                    _ => return fail(path, "not one char"),
                }
            }
            Ty::String => {
                self.tag(STRING, ty, path)?;
                let n = self.len(path)?;
                match std::str::from_utf8(self.take(n, path)?) {
                    Ok(s) => Value::String(s.to_owned()),
                    Err(e) => return fail(path, format!("not UTF-8: {e}")),
                }
            }
            Ty::List(item) if **item == Ty::U8 => {
                self.tag(BYTES, ty, path)?;
                let n = self.len(path)?;
                Value::Bytes(crate::buffers::copy_of(self.take(n, path)?).into())
            }
            Ty::List(item) => {
                self.tag(LIST, ty, path)?;
                let n = self.len(path)?;
                match Numbers::with_capacity(item, n) {
                    Some(numbers) => Value::Numbers(self.numbers(numbers, n, path)?),
                    None => {
                        let mut items = Vec::with_capacity(n);
                        for i in 0..n {
                            items.push(self.value(item, &path.index(i))?);
                        }
                        Value::List(items)
                    }
                }
            }
            Ty::Record(fields) => {
                self.tag(RECORD, ty, path)?;
                self.count(fields.len(), "fields", path)?;
                let mut values = Vec::with_capacity(fields.len());
                for (name, ty) in fields {
                    values.push(self.value(ty, &path.field(name))?);
                }
                Value::Record(values)
            }
            Ty::Tuple(types) => {
                self.tag(TUPLE, ty, path)?;
                self.count(types.len(), "items", path)?;
                let mut values = Vec::with_capacity(types.len());
                for (i, ty) in types.iter().enumerate() {
                    values.push(self.value(ty, &path.index(i))?);
                }
                Value::Tuple(values)
            }
            Ty::Variant(cases) => {
                self.tag(VARIANT, ty, path)?;
                let index = self.varint(32, path)? as u32;
                let Some((name, case)) = cases.get(index as usize) else {
                    return fail(path, format!("case index {index} is out of range for {} cases", cases.len()));
                };
                Value::Variant(index, self.payload(case.as_ref(), &path.field(name))?)
            }
            Ty::Enum(names) => {
                self.tag(ENUM, ty, path)?;
                let index = self.varint(32, path)? as u32;
                if index as usize >= names.len() {
                    return fail(path, format!("case index {index} is out of range for {} cases", names.len()));
                }
                Value::Enum(index)
            }
            Ty::Option(item) => {
                self.tag(OPTION, ty, path)?;
                match self.byte(path)? {
                    0 => Value::Option(None),
                    1 => Value::Option(Some(Box::new(self.value(item, path)?))),
                    b => return fail(path, format!("{b} is neither 0 (none) nor 1 (some)")),
                }
            }
            Ty::Result { ok, err } => {
                self.tag(RESULT, ty, path)?;
                match self.varint(32, path)? {
                    0 => Value::Result(Ok(self.payload(ok.as_deref(), &path.field("ok"))?)),
                    1 => Value::Result(Err(self.payload(err.as_deref(), &path.field("err"))?)),
                    side => return fail(path, format!("result side {side} is neither ok (0) nor err (1)")),
                }
            }
            Ty::Flags(names) => {
                self.tag(FLAGS, ty, path)?;
                let n = self.len(path)?;
                let mut set = Vec::with_capacity(n);
                for _ in 0..n {
                    set.push(self.varint(32, path)? as u32);
                }
                if let Err(e) = check_flags(path, names, &set) {
                    return fail(path, e.message);
                }
                Value::Flags(set)
            }
        })
    }

    fn count(&mut self, expected: usize, what: &str, path: &Path<'_>) -> Decoded<()> {
        let n = self.varint(64, path)?;
        if n != expected as u64 {
            return fail(path, format!("expected {expected} {what}, found {n}"));
        }
        Ok(())
    }

    fn payload(&mut self, ty: Option<&Ty>, path: &Path<'_>) -> Decoded<Option<Box<Value>>> {
        match (self.byte(path)?, ty) {
            (0, None) => Ok(None),
            (1, Some(ty)) => Ok(Some(Box::new(self.value(ty, path)?))),
            (0, Some(_)) => fail(path, "a payload is missing"),
            (1, None) => fail(path, "a payload where the case has none"),
            (b, _) => fail(path, format!("{b} is neither 0 (none) nor 1 (some)")),
        }
    }

    /// `n` items of a list of numbers, each its tag then the number, in one loop.
    fn numbers(&mut self, mut numbers: Numbers, n: usize, path: &Path<'_>) -> Decoded<Numbers> {
        macro_rules! items {
            ($items:expr, $tag:expr, |$r:ident, $at:ident| $read:expr) => {{
                let items = $items.to_mut();
                for i in 0..n {
                    let $at = path.index(i);
                    let $r = &mut *self;
                    let tag = $r.byte(&$at)?;
                    if tag != $tag {
                        return fail(&$at, format!("expected the tag {} of the list's items, found {tag}", $tag));
                    }
                    items.push($read);
                }
            }};
        }
        match &mut numbers {
            Numbers::S8(items) => items!(items, S8, |r, at| r.byte(&at)? as i8),
            Numbers::S16(items) => items!(items, S16, |r, at| unzigzag(r.varint(16, &at)?) as i16),
            Numbers::U16(items) => items!(items, U16, |r, at| r.varint(16, &at)? as u16),
            Numbers::S32(items) => items!(items, S32, |r, at| unzigzag(r.varint(32, &at)?) as i32),
            Numbers::U32(items) => items!(items, U32, |r, at| r.varint(32, &at)? as u32),
            Numbers::S64(items) => items!(items, S64, |r, at| unzigzag(r.varint(64, &at)?)),
            Numbers::U64(items) => items!(items, U64, |r, at| r.varint(64, &at)?),
            Numbers::F32(items) => items!(items, F32, |r, at| f32::from_bits(u32::from_le_bytes(
                r.take(4, &at)?.try_into().expect("4 bytes")
            ))),
            Numbers::F64(items) => items!(items, F64, |r, at| f64::from_bits(u64::from_le_bytes(
                r.take(8, &at)?.try_into().expect("8 bytes")
            ))),
        }
        Ok(numbers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::samples::samples;

    fn serde_bytes(value: &Value) -> Vec<u8> {
        postcard::to_allocvec(value).unwrap()
    }

    fn wire_bytes(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode(value, &mut out);
        out
    }

    #[test]
    fn every_sample_encodes_as_postcard_does_and_decodes_back() {
        for (ty, value) in samples() {
            let bytes = wire_bytes(&value);
            assert_eq!(bytes, serde_bytes(&value), "{ty:?}");
            assert_eq!(encoded_len(&value), bytes.len() as u64);
            let (back, rest) = decode(&bytes, &ty).unwrap();
            assert!(rest.is_empty());
            assert_eq!(wire_bytes(&back), bytes, "{ty:?}");
        }
    }

    #[test]
    fn numbers_of_every_kind_and_size_encode_as_their_items_would() {
        let values = [
            Value::Numbers(Numbers::S16((-300..300).collect())),
            Value::Numbers(Numbers::U32((0..70_000u32).map(|i| i.wrapping_mul(2_654_435_761)).collect())),
            Value::Numbers(Numbers::S64(vec![i64::MIN, -1, 0, 1, i64::MAX].into())),
            Value::Numbers(Numbers::U64(vec![u64::MAX, 1 << 63, 127, 128].into())),
            Value::Numbers(Numbers::F64(vec![f64::NAN, -0.0, 1e300].into())),
            Value::Numbers(Numbers::F32(vec![f32::from_bits(0x7fc0_0001), 2.5].into())),
            Value::Numbers(Numbers::S8(vec![-128, 127].into())),
        ];
        for value in values {
            let Value::Numbers(numbers) = &value else { unreachable!() };
            let ty = Ty::List(Box::new(numbers.item_ty()));
            let bytes = wire_bytes(&value);
            assert_eq!(bytes, serde_bytes(&Value::List(numbers.iter().collect())), "{ty:?}");
            let (back, _) = decode(&bytes, &ty).unwrap();
            let Value::Numbers(back) = back else { panic!("not Numbers: {back:?}") };
            let (mut a, mut b) = (vec![0; back.byte_len()], vec![0; numbers.byte_len()]);
            back.write_le_bytes(&mut a);
            numbers.write_le_bytes(&mut b);
            assert_eq!(a, b, "bit-exact");
        }
    }

    #[test]
    fn an_empty_list_of_numbers_decodes_as_numbers() {
        let ty = Ty::List(Box::new(Ty::F32));
        let (back, _) = decode(&wire_bytes(&Value::List(vec![])), &ty).unwrap();
        assert_eq!(back, Value::Numbers(Numbers::F32(vec![].into())));
    }

    #[test]
    fn bytes_that_do_not_fit_the_type_are_refused_with_the_place() {
        let ty = Ty::Record(vec![("xs".into(), Ty::List(Box::new(Ty::U32)))]);
        let bad = Value::Record(vec![Value::List(vec![Value::U32(1), Value::S64(2)])]);
        let err = decode(&wire_bytes(&bad), &ty).unwrap_err();
        assert_eq!(err.path, "$.xs[1]");
        let err = decode(&wire_bytes(&Value::String("x".into())), &Ty::U32).unwrap_err();
        assert!(err.message.contains("expected u32"), "{err}");
        // A length past the end is refused before anything is reserved for it.
        let mut huge = vec![LIST];
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        let err = decode(&huge, &Ty::List(Box::new(Ty::U64))).unwrap_err();
        assert!(err.message.contains("runs past the end"), "{err}");
        // Every truncation of a valid encoding is an error, never a panic.
        let (ty, value) = samples().into_iter().last().unwrap();
        let bytes = wire_bytes(&value);
        for end in 0..bytes.len() {
            assert!(decode(&bytes[..end], &ty).is_err(), "{end}");
        }
    }

    #[test]
    fn varint_lengths_are_those_written() {
        for x in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), 1 << 62, u64::MAX] {
            let mut buf = Buf::default();
            let mut out = Vec::new();
            buf.varint(x, &mut out);
            buf.flush(&mut out);
            assert_eq!(varint_len(x), out.len() as u64, "{x}");
        }
    }

    #[test]
    fn varints_are_refused_where_postcard_refuses_them() {
        let u16_max = postcard::to_allocvec(&Value::U16(u16::MAX)).unwrap();
        assert_eq!(decode(&u16_max, &Ty::U16).unwrap().0, Value::U16(u16::MAX));
        // 2^16 in three varint bytes: too large for a u16.
        assert!(decode(&[U16, 0x80, 0x80, 0x04], &Ty::U16).is_err());
        assert!(postcard::from_bytes::<u16>(&[0x80, 0x80, 0x04]).is_err());
        // Four bytes for a u16: too long.
        assert!(decode(&[U16, 0x81, 0x80, 0x80, 0x00], &Ty::U16).is_err());
    }
}
