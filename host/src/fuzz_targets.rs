//! Fuzz targets: the parsers that read untrusted bytes. Each takes arbitrary input and must
//! never panic, overflow the stack or loop; what it checks beyond that is said per target.
//!
//! Shared by the cargo-fuzz targets in `fuzz/` (nightly, libFuzzer: the long runs) and by
//! `host/tests/fuzz.rs`, which runs them on stable over seeds and random mutations in
//! `make test` (the short run).

use crate::policy::Policy;
use crate::store::{record, Lookup};
use crate::value::{Ty, Value};

/// The types inputs are read against: the first input byte picks one.
pub fn types() -> Vec<Ty> {
    let record = Ty::Record(vec![("name".into(), Ty::String), ("tags".into(), Ty::List(Box::new(Ty::String)))]);
    vec![
        Ty::Bool,
        Ty::S64,
        Ty::U8,
        Ty::F64,
        Ty::Char,
        Ty::String,
        Ty::List(Box::new(Ty::U8)),
        Ty::List(Box::new(Ty::S32)),
        Ty::Option(Box::new(Ty::Option(Box::new(Ty::U32)))),
        Ty::Result { ok: Some(Box::new(Ty::S64)), err: Some(Box::new(Ty::String)) },
        Ty::Result { ok: None, err: None },
        Ty::Tuple(vec![Ty::S8, Ty::F32, Ty::String]),
        record.clone(),
        Ty::List(Box::new(record)),
        Ty::Variant(vec![
            ("none".into(), None),
            ("some".into(), Some(Ty::U16)),
            ("deep".into(), Some(Ty::List(Box::new(Ty::Bool)))),
        ]),
        Ty::Enum(vec!["red".into(), "green".into()]),
        Ty::Flags(vec!["a".into(), "b".into(), "c".into()]),
    ]
}

fn pick(data: &[u8]) -> (Ty, &[u8]) {
    let types = types();
    match data.split_first() {
        Some((first, rest)) => (types[*first as usize % types.len()].clone(), rest),
        None => (Ty::Bool, data),
    }
}

/// The record decoder: any bytes decode to an error or to a record whose encoding decodes to
/// a record with the same encoding. Not necessarily the bytes read: postcard also reads
/// overlong varints (`80 00` for 0), so a crafted record can decode to one written otherwise.
pub fn record_decoder(data: &[u8]) {
    let (ty, bytes) = pick(data);
    let _ = record::decode_meta(bytes);
    if let Ok(decoded) = record::decode(bytes, &ty) {
        let value_bytes = record::encode_value(&decoded.value);
        let mut meta = decoded.meta.clone();
        meta.value_digest = *blake3::hash(&value_bytes).as_bytes();
        meta.value_len = value_bytes.len() as u64;
        let encoded = record::encode(&meta, &value_bytes);
        let again = record::decode(&encoded, &ty).expect("a decoded record's encoding decodes");
        let again_bytes = record::encode_value(&again.value);
        assert_eq!(record::encode(&again.meta, &again_bytes), encoded, "a record's encoding is a fixed point");
    }
    let _ = Lookup::from_record_bytes(bytes, "k", &ty, 0);
}

/// The policy-expression parser: any text parses or is an error whose column is inside the
/// text; a parsed policy prints as an expression that parses to the same policy.
pub fn policy_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Policy::parse_reporting(text) {
        Ok(parsed) => {
            let printed = parsed.policy.to_string();
            let again =
                Policy::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} (from {text:?}) does not parse: {e}"));
            assert_eq!(again, parsed.policy, "{text:?} printed as {printed:?}");
        }
        Err(error) => {
            let _ = error.caret(text);
        }
    }
}

/// JSON to value: any JSON either converts to a value of the picked type, which converts
/// back to JSON that converts to the same value and hashes, or is an error.
pub fn json_to_value(data: &[u8]) {
    let (ty, text) = pick(data);
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(text) else { return };
    if let Ok(value) = Value::from_json(&json, &ty) {
        let back = value.to_json(&ty).expect("a converted value converts back");
        let again = Value::from_json(&back, &ty).expect("JSON from a value converts again");
        assert_eq!(again, value);
        crate::value::canonical::digest(&value, &ty).expect("a converted value hashes");
    }
}
