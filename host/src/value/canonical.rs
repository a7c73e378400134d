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

use super::numbers::{f32_bits, f64_bits};
use super::{check_flags, check_len, json::type_name, Path, Ty, Value, ValueError};

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
                crate::hash::update(&mut self.hasher, bytes);
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
        (Ty::List(item), Value::Numbers(numbers)) if numbers.item_ty() == **item => {
            put_len(out, numbers.len());
            match numbers.canonical_le_bytes() {
                Some(bytes) => out.put(bytes),
                None => numbers.for_each_le_chunk(true, |bytes| out.put(bytes)),
            }
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
                return Err(ValueError::at(path, format!("case index {index} is out of range for {}", type_name(ty))));
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
        (Some(ty), None) => Err(ValueError::at(path, format!("expected a {} payload, found none", type_name(ty)))),
    }
}

#[cfg(test)]
mod tests {
    //! Golden tests: these pin the exact bytes and digests. If one fails, the encoding
    //! changed, and every cache key with it: bump `FORMAT` and update the pins together.

    use super::*;
    use crate::value::samples::{b, bt};
    use crate::value::Numbers;

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

    /// (what, type, value, value encoding, digest) for representative values.
    fn golden() -> Vec<(&'static str, Ty, Value, &'static str, &'static str)> {
        let rec = Ty::Record(vec![("a".into(), Ty::U32), ("b".into(), Ty::String)]);
        let var = Ty::Variant(vec![("none".into(), None), ("num".into(), Some(Ty::S64))]);
        let res = Ty::Result { ok: bt(Ty::U32), err: bt(Ty::String) };
        let flags = Ty::Flags(vec!["x".into(), "y".into(), "z".into()]);
        vec![
            (
                "bool",
                Ty::Bool,
                Value::Bool(true),
                "01",
                "12056c7c1a2ba15ffa2b43d4574bd1766f17cef0aa88d6bbbb204d6774385a61",
            ),
            (
                "s64 -1",
                Ty::S64,
                Value::S64(-1),
                "ffffffffffffffff",
                "68b834cb506b18fe3dac73e8a70daa9b1ae7d5840d3428bfb2741f2138fcd680",
            ),
            (
                "f64 NaN",
                Ty::F64,
                Value::F64(f64::NAN),
                "000000000000f87f",
                "ece5c641bd6a4717ddd1a7ca22e32a493df5575d361adb704085afad00609b14",
            ),
            (
                "f64 0.0",
                Ty::F64,
                Value::F64(0.0),
                "0000000000000000",
                "1260e6111a5f4fbeb9cea5d1b7abb288203dac59b59111eb76cb236cb7a0cd23",
            ),
            // Every NaN, whatever its sign or payload, and -0.0 pin to the rows above.
            (
                "f64 -NaN",
                Ty::F64,
                Value::F64(-f64::NAN),
                "000000000000f87f",
                "ece5c641bd6a4717ddd1a7ca22e32a493df5575d361adb704085afad00609b14",
            ),
            (
                "f64 -0.0",
                Ty::F64,
                Value::F64(-0.0),
                "0000000000000000",
                "1260e6111a5f4fbeb9cea5d1b7abb288203dac59b59111eb76cb236cb7a0cd23",
            ),
            (
                "char",
                Ty::Char,
                Value::Char('é'),
                "e9000000",
                "d1775ba679c934c9d48fcef5fe8e4969e580e4243c402b1275adb13c1f48bb87",
            ),
            (
                "string",
                Ty::String,
                Value::String("héllo".into()),
                "060000000000000068c3a96c6c6f",
                "94c6dc5a91b2f119c70ffa4b2a9187be961b485b78d61a7b16a6b58054c8543c",
            ),
            (
                "list<u8>",
                Ty::List(Box::new(Ty::U8)),
                Value::Bytes(vec![1, 2, 3].into()),
                "0300000000000000010203",
                "aa1017de4092c8e6f8d36138f01fd6d226031e4b672eee74e947081de58b93e7",
            ),
            (
                "list<u32>",
                Ty::List(Box::new(Ty::U32)),
                Value::List(vec![Value::U32(1), Value::U32(2)]),
                "02000000000000000100000002000000",
                "43186d396b4cce6baa1bc8a01cdb48c8a862eeb752aa6a34d8da0f96092748c6",
            ),
            (
                "tuple<u32, u32>",
                Ty::Tuple(vec![Ty::U32, Ty::U32]),
                Value::Tuple(vec![Value::U32(1), Value::U32(2)]),
                "0100000002000000",
                "5bd5b73edc45858af6a1fe9b82637e41a670f3d6569153a7c0fe45aa1655cf27",
            ),
            (
                "record",
                rec,
                Value::Record(vec![Value::U32(7), Value::String("x".into())]),
                "07000000010000000000000078",
                "d8473a4677baa05381f50dd9bfb2c03b9efa264482eda334fda624db5a243cc3",
            ),
            (
                "variant",
                var,
                Value::Variant(1, b(Value::S64(2))),
                "010000000200000000000000",
                "00285c3fc9d5b67d85dab31eb9312019805fab494fd06e14d658d6299e131b88",
            ),
            (
                "option none",
                Ty::Option(Box::new(Ty::U8)),
                Value::Option(None),
                "00",
                "cfdd667c6c575162593d7ae08e8ccd81fc4daf6317a4ee31465c8d0762c13997",
            ),
            (
                "option some",
                Ty::Option(Box::new(Ty::U8)),
                Value::Option(b(Value::U8(9))),
                "0109",
                "403ec07900699f583c2c97dc9188663806f75d3bbaff9c4bb9b81af32f32d2fe",
            ),
            (
                "result ok",
                res.clone(),
                Value::Result(Ok(b(Value::U32(5)))),
                "0005000000",
                "340babe4c2bf550dda7c6ee9aeb074533bd548eeb833461a23c33b7e150022a6",
            ),
            (
                "result err",
                res,
                Value::Result(Err(b(Value::String("e".into())))),
                "01010000000000000065",
                "3f0f914cd8d46f2db9c898765eff58b4c08c5a35bdb4a57fe97f262e750d24ae",
            ),
            (
                "flags",
                flags,
                Value::Flags(vec![0, 2]),
                "02000000000000000000000002000000",
                "fb83cf344169a525771a976673b952321806989e2cbd8285a32861595002cec3",
            ),
        ]
    }

    #[test]
    fn golden_encodings_and_digests() {
        let mut failures = Vec::new();
        for (what, ty, value, encoding, digest) in golden() {
            let (got_enc, got_dig) = (enc(&value, &ty), dig(&value, &ty));
            if got_enc != encoding || got_dig != digest {
                failures.push(format!("{what}: encoding {got_enc}, digest {got_dig}"));
            }
        }
        assert!(failures.is_empty(), "the canonical format changed (bump FORMAT):\n{}", failures.join("\n"));
    }

    #[test]
    fn golden_type_encoding() {
        let ty = Ty::Record(vec![
            ("id".into(), Ty::S32),
            ("tags".into(), Ty::List(Box::new(Ty::String))),
            ("kind".into(), Ty::Variant(vec![("a".into(), None), ("b".into(), Some(Ty::F32))])),
            ("e".into(), Ty::Enum(vec!["p".into()])),
            ("o".into(), Ty::Option(Box::new(Ty::Char))),
            ("r".into(), Ty::Result { ok: None, err: bt(Ty::U64) }),
            ("f".into(), Ty::Flags(vec!["x".into()])),
            ("t".into(), Ty::Tuple(vec![Ty::Bool, Ty::U8, Ty::S8, Ty::U16, Ty::S16, Ty::F64])),
        ]);
        assert_eq!(
            ty_enc(&ty),
            "0e080000000000000002000000000000006964050400000000000000746167730d0c04000000000000006b696e64\
             10020000000000000001000000000000006100010000000000000062010901000000000000006511010000000000\
             000001000000000000007001000000000000006f120b010000000000000072130001080100000000000000661401\
             000000000000000100000000000000780100000000000000740f060000000000000000020104030a"
        );
    }

    #[test]
    fn nan_payloads_and_signs_hash_alike() {
        let negative_nan = f64::from_bits(0xfff8_0000_0000_0001);
        assert!(negative_nan.is_nan());
        assert_eq!(dig(&Value::F64(negative_nan), &Ty::F64), dig(&Value::F64(f64::NAN), &Ty::F64));
        let odd_nan32 = f32::from_bits(0xff80_0001);
        assert!(odd_nan32.is_nan());
        assert_eq!(enc(&Value::F32(odd_nan32), &Ty::F32), "0000c07f");
    }

    #[test]
    fn negative_zero_hashes_as_zero() {
        assert_eq!(dig(&Value::F64(-0.0), &Ty::F64), dig(&Value::F64(0.0), &Ty::F64));
        assert_eq!(enc(&Value::F32(-0.0), &Ty::F32), "00000000");
    }

    #[test]
    fn same_items_under_different_types_differ() {
        let tuple = Ty::Tuple(vec![Ty::U32, Ty::U32]);
        let list = Ty::List(Box::new(Ty::U32));
        let items = vec![Value::U32(1), Value::U32(2)];
        assert_ne!(dig(&Value::Tuple(items.clone()), &tuple), dig(&Value::List(items), &list));
        assert_ne!(dig(&Value::U32(5), &Ty::U32), dig(&Value::S32(5), &Ty::S32));
        let r1 = Ty::Record(vec![("a".into(), Ty::U32)]);
        let r2 = Ty::Record(vec![("b".into(), Ty::U32)]);
        let v = Value::Record(vec![Value::U32(1)]);
        assert_ne!(dig(&v, &r1), dig(&v, &r2));
        let e1 = Ty::Enum(vec!["x".into(), "y".into()]);
        let e2 = Ty::Enum(vec!["x".into(), "z".into()]);
        assert_ne!(dig(&Value::Enum(0), &e1), dig(&Value::Enum(0), &e2));
    }

    #[test]
    fn digest_is_blake3_of_format_type_and_value() {
        // Big enough to cross the hash buffer both by many small writes and one large slice.
        let cases = vec![
            (Ty::List(Box::new(Ty::U8)), Value::Bytes((0..100_000u32).map(|i| i as u8).collect())),
            (Ty::List(Box::new(Ty::U32)), Value::List((0..20_000).map(Value::U32).collect())),
            (
                Ty::Tuple(vec![Ty::String, Ty::List(Box::new(Ty::U8)), Ty::String]),
                Value::Tuple(vec![
                    Value::String("a".repeat(10_000)),
                    Value::Bytes(vec![9; 20_000].into()),
                    Value::String("b".into()),
                ]),
            ),
        ];
        for (ty, value) in cases {
            let mut all = vec![FORMAT];
            encode_type(&ty, &mut all);
            encode_value(&value, &ty, &mut all).unwrap();
            assert_eq!(digest(&value, &ty).unwrap(), blake3::hash(&all));
        }
    }

    #[test]
    fn numbers_hash_as_the_list_of_their_items() {
        for numbers in crate::value::numbers::tests::every_kind() {
            let ty = Ty::List(Box::new(numbers.item_ty()));
            let items = Value::List(numbers.iter().collect());
            let held = Value::Numbers(numbers);
            assert_eq!(enc(&held, &ty), enc(&items, &ty), "{ty:?}");
            assert_eq!(dig(&held, &ty), dig(&items, &ty), "{ty:?}");
        }
        // Past one chunk of the hasher's buffer, and of the stack buffer the items go through.
        let long = Numbers::F64((0..5000).map(|i| if i % 7 == 0 { -0.0 } else { i as f64 }).collect());
        let ty = Ty::List(Box::new(Ty::F64));
        assert_eq!(dig(&Value::List(long.iter().collect()), &ty), dig(&Value::Numbers(long), &ty));
    }

    #[test]
    fn list_u8_bytes_encode_as_a_list_of_u8_items_would() {
        // count as u64, then one byte per item: exactly what the generic list rule gives.
        let mut out = Vec::new();
        encode_value(&Value::Bytes(vec![0xab, 0xcd].into()), &Ty::List(Box::new(Ty::U8)), &mut out).unwrap();
        let mut generic = 2u64.to_le_bytes().to_vec();
        for item in [0xabu8, 0xcd] {
            encode_value(&Value::U8(item), &Ty::U8, &mut generic).unwrap();
        }
        assert_eq!(out, generic);
    }

    #[test]
    fn list_value_for_list_u8_is_refused() {
        let err = digest(&Value::List(vec![Value::U8(1)]), &Ty::List(Box::new(Ty::U8))).unwrap_err();
        assert_eq!(err.to_string(), "$: expected list<u8>, found list");
    }

    #[test]
    fn mismatch_names_the_path() {
        let ty = Ty::Record(vec![("items".into(), Ty::List(Box::new(Ty::U32)))]);
        let value = Value::Record(vec![Value::List(vec![
            Value::U32(0),
            Value::U32(1),
            Value::U32(2),
            Value::String("x".into()),
        ])]);
        assert_eq!(digest(&value, &ty).unwrap_err().to_string(), "$.items[3]: expected u32, found string");
        let res = Ty::Result { ok: None, err: bt(Ty::String) };
        assert_eq!(
            digest(&Value::Result(Err(b(Value::U8(1)))), &res).unwrap_err().to_string(),
            "$.err: expected string, found u8"
        );
        let flags = Ty::Flags(vec!["x".into(), "y".into()]);
        assert!(digest(&Value::Flags(vec![1, 1]), &flags).is_err());
        assert!(digest(&Value::Enum(2), &Ty::Enum(vec!["x".into(), "y".into()])).is_err());
    }

    #[test]
    fn format_is_one() {
        assert_eq!(FORMAT, 1);
    }
}
