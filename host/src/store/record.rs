//! The record format: one cached result and what the host knows about it.
//!
//! Layout of a record, as written to a store:
//!
//! ```text
//! b"CHREC"  format version (1 byte)  meta length (u32 LE)  postcard(RecordMeta)  postcard(Value)
//! ```
//!
//! With key storage (DESIGN §5) the key store holds a *key record*, the same framing without
//! the value, and the value is stored apart under its digest:
//!
//! ```text
//! b"CHKEY"  format version (1 byte)  meta length (u32 LE)  postcard(RecordMeta)
//! ```
//!
//! The value is checked against `meta.value_digest` (BLAKE3) and `meta.value_len` on every
//! read, and its type against the type the reading task expects, so a corrupt, truncated or
//! mistyped record is refused, never returned. The postcard encodings of [`RecordMeta`],
//! [`Ty`] and [`Value`] (variant order included) are part of the format: changing them means
//! bumping [`FORMAT_VERSION`].
//!
//! Since format version 3 a record may carry an ed25519 signature ([`RecordSignature`]) over
//! [`signed_message`]: everything a reader acts on (key, task, component digest, creation,
//! expiry, value type, value digest and length, and the digest of the kept inputs). A key
//! record carries the same signature: it holds the value's digest, so the value stored apart
//! needs none of its own. Whom to trust is the reader's decision ([`crate::trust`]); whether
//! a signature checks is worked out here, once per decoded record ([`signature_checks`]).
//!
//! Since format version 4 a record says what computing its value cost ([`Cost`]): the wall
//! time of the task body and, when fuel is metered, its fuel. `cache stats` and `cache prune
//! --max-size` read it; a version 3 or 2 record has none.

use std::sync::OnceLock;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::value::{wire, Ty, Value};

/// The first bytes of every record.
pub const MAGIC: &[u8; 5] = b"CHREC";

/// The first bytes of every key record (metadata only, see [`encode_key_record`]).
pub const KEY_MAGIC: &[u8; 5] = b"CHKEY";

/// The record format this build writes, for both kinds of record: the version covers the
/// postcard encodings of [`RecordMeta`] and [`Value`], which both kinds share. Version 2
/// added the policy expression and the component's file name to the metadata; version 3 the
/// kept inputs ([`StoredInputs`]) and the signature ([`RecordSignature`]); version 4 the cost
/// of the body ([`Cost`]).
pub const FORMAT_VERSION: u8 = 5;

/// The oldest format version this build still reads: a version 2 record decodes as an
/// unsigned record without kept inputs (a miss wherever signatures are required).
pub const OLDEST_READABLE_VERSION: u8 = 2;

/// Inputs up to this size are kept in the record itself; larger ones by digest in value
/// storage ([`StoredInputs::ByDigest`]).
pub const INLINE_INPUTS_MAX: usize = 1 << 20;

/// Magic, version byte, meta length.
const HEADER_LEN: usize = MAGIC.len() + 1 + 4;

/// What the host knows about a cached result, stored in front of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordMeta {
    /// The cache key the record was written under.
    pub key: String,
    /// The full name of the task that produced the value.
    pub task: String,
    /// Hex digest of the component that produced the value.
    pub component_digest: String,
    /// The policy parts that made up the key, in order.
    pub parts: Vec<KeyPartMeta>,
    /// When the record was written, unix milliseconds.
    pub created_ms: i64,
    /// When the record stops being a hit, unix milliseconds; `None` never expires.
    pub expiration_ms: Option<i64>,
    /// The task's result type; a reader expecting another type gets a miss.
    pub value_type: Ty,
    /// BLAKE3 of the postcard-encoded value.
    pub value_digest: [u8; 32],
    /// Length of the postcard-encoded value in bytes.
    pub value_len: u64,
    /// The cache policy expression the key was computed under, e.g. `INPUTS + TASK_SOURCE`;
    /// with `parts` it shows which policy parts gave no key (format version 2).
    pub policy: String,
    /// The file name of the component that produced the value, for people (format version 2).
    pub component_file: String,
    /// The call's encoded inputs, kept for `cache verify` when the task is `replayable`
    /// (format version 3).
    pub inputs: Option<StoredInputs>,
    /// Who wrote the record and their signature over [`signed_message`] (format version 3).
    pub signature: Option<RecordSignature>,
    /// What computing the value cost (format version 4); `None` in older records.
    pub cost: Option<Cost>,
    /// What the run that computed the value read through WASI, as (what, digest) pairs, e.g.
    /// (`file /data/input.csv`, its BLAKE3), (`wall clock`, `read`) (format version 5); empty
    /// when it read nothing, and in older records. For people: a READS key part keeps what a
    /// lookup checks.
    pub reads: Vec<(String, String)>,
    /// Whether `signature` checks, once worked out; not stored.
    #[serde(skip)]
    pub checked: SignatureCheck,
}

/// What running a task's body once cost, as measured by the host on the miss that wrote the
/// record (its attempt that succeeded; failed attempts before a retry are not counted): what
/// each later hit on it saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Wall time of the body in microseconds: its fresh instance, the call, and the task
    /// calls it made (a hit on it saves those too).
    pub wall_us: u64,
    /// Fuel the body's own instance consumed, when fuel is metered (a `fuel` limit is
    /// configured); nested task calls run in Stores of their own and are not counted.
    pub fuel: Option<u64>,
}

/// The metadata as format version 4 wrote it: version 3's, then the cost, without reads.
type RecordMetaV4 = (RecordMetaV2, Option<StoredInputs>, Option<RecordSignature>, Option<Cost>);

fn from_v4((v2, inputs, signature, cost): RecordMetaV4) -> RecordMeta {
    from_v3((v2, inputs, signature)).with_cost(cost)
}

/// The metadata as format version 3 wrote it: version 2's fields, then the kept inputs and
/// the signature, without the cost. Postcard writes a struct's fields one after another, as
/// it writes a tuple's, so the tuple reads the same bytes.
type RecordMetaV3 = (RecordMetaV2, Option<StoredInputs>, Option<RecordSignature>);

fn from_v3((v2, inputs, signature): RecordMetaV3) -> RecordMeta {
    let mut meta = RecordMeta::from(v2).with_inputs(inputs);
    meta.signature = signature;
    meta
}

/// The metadata as format version 2 wrote it: [`RecordMeta`] without inputs and signature.
#[derive(Deserialize)]
struct RecordMetaV2 {
    key: String,
    task: String,
    component_digest: String,
    parts: Vec<KeyPartMeta>,
    created_ms: i64,
    expiration_ms: Option<i64>,
    value_type: Ty,
    value_digest: [u8; 32],
    value_len: u64,
    policy: String,
    component_file: String,
}

impl From<RecordMetaV2> for RecordMeta {
    fn from(v2: RecordMetaV2) -> RecordMeta {
        RecordMeta::described(
            v2.key,
            v2.task,
            v2.component_digest,
            v2.parts,
            v2.created_ms,
            v2.expiration_ms,
            v2.value_type,
            v2.value_digest,
            v2.value_len,
        )
        .with_origin(v2.policy, v2.component_file)
    }
}

/// A call's inputs as a replayable task's record keeps them: the postcard encoding of the
/// argument values in parameter order ([`encode_inputs`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredInputs {
    /// Up to [`INLINE_INPUTS_MAX`] bytes, in the record.
    Inline(Vec<u8>),
    /// Larger inputs, stored apart in value storage under their BLAKE3 digest.
    ByDigest {
        /// BLAKE3 of the encoded inputs.
        digest: [u8; 32],
        /// Their length in bytes.
        len: u64,
    },
}

impl StoredInputs {
    /// BLAKE3 of the encoded inputs, wherever they are kept.
    pub fn digest(&self) -> [u8; 32] {
        match self {
            StoredInputs::Inline(bytes) => *crate::hash::blake3(bytes).as_bytes(),
            StoredInputs::ByDigest { digest, .. } => *digest,
        }
    }
}

/// An ed25519 signature of a record by the host that wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSignature {
    /// The writer's public key.
    pub signer: [u8; 32],
    /// The signature over [`signed_message`], 64 bytes (a `Vec`: serde has no 64-byte arrays).
    pub signature: Vec<u8>,
}

/// Whether a record's signature checks, worked out at most once per decoded record, so a
/// record kept in memory and hit again costs no second verification.
#[derive(Clone, Debug, Default)]
pub struct SignatureCheck(OnceLock<bool>);

impl PartialEq for SignatureCheck {
    /// A cache of a function of the other fields, so never a difference of its own.
    fn eq(&self, _: &SignatureCheck) -> bool {
        true
    }
}

/// One policy part of a cache key, kept so `cache explain` can say which part changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPartMeta {
    /// The policy's name, e.g. `inputs` or `task_source`.
    pub name: String,
    /// The part's own key.
    pub key: String,
    /// What went into the part, as (label, text) pairs, e.g. `("x", "1")`.
    pub detail: Vec<(String, String)>,
}

/// A decoded, checked record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The record's metadata.
    pub meta: RecordMeta,
    /// The cached value, of type `meta.value_type`.
    pub value: Value,
}

/// Why bytes read from a store are not a usable record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes end before the record does.
    #[error("the record is truncated: {needed} bytes needed, {found} found")]
    Truncated {
        /// How many bytes the record needs up to the point that was read.
        needed: u64,
        /// How many bytes there are.
        found: u64,
    },
    /// The value is followed by bytes that belong to no part of the record.
    #[error("the record has {0} bytes after its value")]
    TrailingBytes(u64),
    /// The bytes do not start with `CHREC` (or `CHKEY` for a key record).
    #[error("not a cachehost record (bad magic bytes)")]
    BadMagic,
    /// A key record has bytes after its metadata.
    #[error("the key record has {0} bytes after its metadata")]
    TrailingMetaBytes(u64),
    /// The record was written in a format this build does not read.
    #[error(
        "record format version {0} is not supported (this build reads versions {OLDEST_READABLE_VERSION} to \
        {FORMAT_VERSION})"
    )]
    UnsupportedVersion(u8),
    /// The metadata cannot be decoded.
    #[error("the record's metadata cannot be decoded: {0}")]
    MetaUndecodable(String),
    /// The value's BLAKE3 digest differs from the one in the metadata.
    #[error("the record's value does not match its digest (the file is corrupt)")]
    DigestMismatch,
    /// The record holds a value of another type than the task returns.
    #[error("the record holds a value of type {stored}, the task returns {expected}")]
    TypeMismatch {
        /// The stored value's type, debug-printed.
        stored: String,
        /// The type the reader expected, debug-printed.
        expected: String,
    },
    /// The value bytes match their digest but are not a postcard-encoded value.
    #[error("the record's value cannot be decoded: {0}")]
    ValueUndecodable(String),
}

impl RecordMeta {
    /// Metadata for `value_bytes` (from [`encode_value`]), filling in its digest and length.
    #[allow(clippy::too_many_arguments)] // one argument per field the caller decides
    pub fn new(
        key: String,
        task: String,
        component_digest: String,
        parts: Vec<KeyPartMeta>,
        created_ms: i64,
        expiration_ms: Option<i64>,
        value_type: Ty,
        value_bytes: &[u8],
    ) -> RecordMeta {
        let digest = *crate::hash::blake3(value_bytes).as_bytes();
        let len = value_bytes.len() as u64;
        RecordMeta::described(key, task, component_digest, parts, created_ms, expiration_ms, value_type, digest, len)
    }

    /// [`RecordMeta::new`] for `value` before it is encoded: its digest and length are those
    /// of [`encode_value`]'s bytes, computed as the encoding streams by, never held.
    #[allow(clippy::too_many_arguments)] // as `new`
    pub fn for_value(
        key: String,
        task: String,
        component_digest: String,
        parts: Vec<KeyPartMeta>,
        created_ms: i64,
        expiration_ms: Option<i64>,
        value_type: Ty,
        value: &Value,
    ) -> RecordMeta {
        let digest = *value_digest(value).as_bytes();
        let len = value_len(value);
        RecordMeta::described(key, task, component_digest, parts, created_ms, expiration_ms, value_type, digest, len)
    }

    #[allow(clippy::too_many_arguments)]
    fn described(
        key: String,
        task: String,
        component_digest: String,
        parts: Vec<KeyPartMeta>,
        created_ms: i64,
        expiration_ms: Option<i64>,
        value_type: Ty,
        value_digest: [u8; 32],
        value_len: u64,
    ) -> RecordMeta {
        RecordMeta {
            key,
            task,
            component_digest,
            parts,
            created_ms,
            expiration_ms,
            value_type,
            value_digest,
            value_len,
            policy: String::new(),
            component_file: String::new(),
            inputs: None,
            signature: None,
            cost: None,
            reads: Vec::new(),
            checked: SignatureCheck::default(),
        }
    }

    /// Sets what the run that computed the value read.
    pub fn with_reads(mut self, reads: Vec<(String, String)>) -> RecordMeta {
        self.reads = reads;
        self
    }

    /// Sets what computing the value cost.
    pub fn with_cost(mut self, cost: Option<Cost>) -> RecordMeta {
        self.cost = cost;
        self
    }

    /// Keeps the call's encoded inputs (see [`StoredInputs`]).
    pub fn with_inputs(mut self, inputs: Option<StoredInputs>) -> RecordMeta {
        self.inputs = inputs;
        self
    }

    /// Sets the policy expression and the component's file name.
    pub fn with_origin(mut self, policy: String, component_file: String) -> RecordMeta {
        self.policy = policy;
        self.component_file = component_file;
        self
    }
}

/// What a record's signature covers: a domain tag, then the postcard encoding of every field
/// a reader acts on. The policy, the key parts and the component's file name are for people
/// and are not covered. Neither is the cost (format version 4): no reader acts on it to
/// return a value (it only ranks records for `cache prune --max-size` and sums what hits
/// saved), and leaving it out keeps this message, and so every version 3 signature, as it
/// was.
pub fn signed_message(meta: &RecordMeta) -> Vec<u8> {
    let covered = (
        &meta.key,
        &meta.task,
        &meta.component_digest,
        meta.created_ms,
        meta.expiration_ms,
        &meta.value_type,
        &meta.value_digest,
        meta.value_len,
        meta.inputs.as_ref().map(StoredInputs::digest),
    );
    let message =
        postcard::to_extend(&covered, b"cachehost record v3\0".to_vec()).expect("postcard encodes the covered fields");
    // A READS record is a hit only while the read set in its READS part holds, so a reader
    // acts on that read set too; a record without READS signs what records always signed.
    match meta.parts.iter().find(|part| part.name == crate::policy::Part::Reads.name()) {
        Some(reads) => postcard::to_extend(&reads.detail, message).expect("postcard encodes the read set"),
        None => message,
    }
}

/// Signs `meta` with `key`, replacing any signature it had.
pub fn sign(meta: &mut RecordMeta, key: &SigningKey) {
    let signature = key.sign(&signed_message(meta));
    meta.signature =
        Some(RecordSignature { signer: key.verifying_key().to_bytes(), signature: signature.to_bytes().to_vec() });
    meta.checked = SignatureCheck::default();
}

/// Whether `meta` carries a signature that checks against its own signer (`false` for an
/// unsigned record); whether that signer is trusted is the reader's decision. Verified once
/// per decoded record: later calls on the same metadata cost an atomic load.
pub fn signature_checks(meta: &RecordMeta) -> bool {
    *meta.checked.0.get_or_init(|| {
        let Some(signed) = &meta.signature else { return false };
        let (Ok(signer), Ok(bytes)) =
            (VerifyingKey::from_bytes(&signed.signer), <[u8; 64]>::try_from(signed.signature.as_slice()))
        else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        signer.verify_strict(&signed_message(meta), &signature).is_ok()
    })
}

/// A call's arguments, in parameter order, as a replayable task's record keeps them: their
/// count (a postcard varint), then each value's encoding ([`encode_value`]).
pub fn encode_inputs(args: &[Value]) -> Vec<u8> {
    let mut out = postcard::to_stdvec(&(args.len() as u64)).expect("a u64 encodes");
    for arg in args {
        wire::encode(arg, &mut out);
    }
    out
}

/// Decodes [`encode_inputs`]'s bytes as arguments of the types `params`.
pub fn decode_inputs(bytes: &[u8], params: &[Ty]) -> Result<Vec<Value>, RecordError> {
    let undecodable = |reason: String| RecordError::ValueUndecodable(reason);
    let (count, mut rest) = postcard::take_from_bytes::<u64>(bytes).map_err(|e| undecodable(e.to_string()))?;
    if count != params.len() as u64 {
        return Err(undecodable(format!("{count} inputs kept, the task takes {}", params.len())));
    }
    let mut args = Vec::with_capacity(params.len());
    for ty in params {
        let (value, after) = wire::decode(rest, ty).map_err(|e| undecodable(e.to_string()))?;
        args.push(value);
        rest = after;
    }
    if !rest.is_empty() {
        return Err(undecodable(format!("{} bytes left after the inputs", rest.len())));
    }
    Ok(args)
}

/// The postcard encoding of a value, as stored in a record and hashed into its digest
/// ([`crate::value::wire`]).
pub fn encode_value(value: &Value) -> Vec<u8> {
    let mut out = crate::buffers::with_capacity(value_len(value) as usize);
    wire::encode(value, &mut out);
    out
}

/// The length of [`encode_value`]'s bytes, found without encoding (a large byte list is
/// not visited).
pub fn value_len(value: &Value) -> u64 {
    wire::encoded_len(value)
}

/// BLAKE3 of [`encode_value`]'s bytes, hashed as they are produced: a large byte list is
/// hashed in place, in parallel.
pub fn value_digest(value: &Value) -> blake3::Hash {
    struct Hashing(blake3::Hasher);
    impl wire::Sink for Hashing {
        fn put(&mut self, bytes: &[u8]) {
            crate::hash::update(&mut self.0, bytes);
        }
    }
    let mut hashing = Hashing(blake3::Hasher::new());
    wire::encode(value, &mut hashing);
    hashing.0.finalize()
}

/// A whole record: header, metadata, then `value_bytes` as given (see [`encode_value`]).
pub fn encode(meta: &RecordMeta, value_bytes: &[u8]) -> Vec<u8> {
    debug_assert_eq!(meta.value_len, value_bytes.len() as u64, "meta describes another value");
    let meta_bytes = postcard::to_stdvec(meta).expect("postcard encodes every RecordMeta");
    let mut out = Vec::with_capacity(HEADER_LEN + meta_bytes.len() + value_bytes.len());
    push_header(&mut out, MAGIC, &meta_bytes);
    out.extend_from_slice(value_bytes);
    out
}

/// The buffer [`NewRecord::write_to`] gathers small writes in (wire's own is as large).
const WRITE_BUFFER: usize = 64 * 1024;

/// A record about to be written: its header and metadata encoded, its value as it is, so
/// that a large value goes to its file from where it lies, not through a record-sized
/// buffer. Its bytes are those of [`encode`] of the value's encoding.
#[derive(Clone, Debug)]
pub struct NewRecord {
    /// The record's metadata (from [`RecordMeta::for_value`], so it describes `value`).
    pub meta: RecordMeta,
    /// The header and the encoded metadata: every byte before the value's.
    head: Vec<u8>,
    /// The value; cloning it shares large buffers (see [`crate::value::Buf`]).
    pub value: Value,
}

impl NewRecord {
    /// The record of `value` described by `meta`.
    pub fn new(meta: RecordMeta, value: Value) -> NewRecord {
        debug_assert_eq!(meta.value_len, value_len(&value), "meta describes the value");
        NewRecord { head: head_of(&meta, 0), meta, value }
    }

    /// The length of the whole record in bytes.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.meta.value_len
    }

    /// Whether the record has no bytes (never: it always has a header).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the whole record to `out`, small pieces gathered in a buffer, a large byte
    /// list in one write from its own buffer.
    pub fn write_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, out);
        std::io::Write::write_all(&mut out, &self.head)?;
        self.encode_value_into(&mut out)?;
        std::io::Write::flush(&mut out)
    }

    /// Writes the value's encoding alone ([`encode_value`]'s bytes) to `out`, as
    /// [`NewRecord::write_to`] does.
    pub fn write_value_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, out);
        self.encode_value_into(&mut out)?;
        std::io::Write::flush(&mut out)
    }

    fn encode_value_into(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        struct Writing<'a, W> {
            out: &'a mut W,
            error: Option<std::io::Error>,
        }
        impl<W: std::io::Write> wire::Sink for Writing<'_, W> {
            fn put(&mut self, bytes: &[u8]) {
                if self.error.is_none() {
                    self.error = self.out.write_all(bytes).err();
                }
            }
        }
        let mut writing = Writing { out, error: None };
        wire::encode(&self.value, &mut writing);
        writing.error.map_or(Ok(()), Err)
    }

    /// The whole record in one buffer, for stores that send it in one piece.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = crate::buffers::with_capacity(self.len() as usize);
        out.extend_from_slice(&self.head);
        wire::encode(&self.value, &mut out);
        out
    }
}

/// The bytes of [`NewRecord`] of `value` described by `meta`, built in one buffer of their
/// size, for a value small enough that sharing it would cost more than copying it.
pub fn encode_with_value(meta: &RecordMeta, value: &Value) -> Vec<u8> {
    let mut out = head_of(meta, meta.value_len as usize);
    wire::encode(value, &mut out);
    out
}

/// The header and encoded `meta` of a record, in a buffer with room for `value_len` more.
fn head_of(meta: &RecordMeta, value_len: usize) -> Vec<u8> {
    let meta_bytes = postcard::to_stdvec(meta).expect("postcard encodes every RecordMeta");
    let mut head = crate::buffers::with_capacity(HEADER_LEN + meta_bytes.len() + value_len);
    push_header(&mut head, MAGIC, &meta_bytes);
    head
}

/// Decodes and checks a record whose value must be of type `expected`.
///
/// Checks, in order: magic, version, lengths, metadata, the value's digest, its type; the value
/// is decoded once, last.
pub fn decode(bytes: &[u8], expected: &Ty) -> Result<Record, RecordError> {
    let (meta, value_bytes) = split(bytes)?;
    let value = decode_value(&meta, value_bytes, expected)?;
    Ok(Record { meta, value })
}

/// [`decode`] of a record read into `bytes`, which it may reuse: a record whose value is a
/// `list<u8>` gets the record's own buffer, the header moved off its front, instead of a
/// fresh copy of the bytes (a fresh large buffer costs a page fault per page on first write).
pub fn decode_owned(mut bytes: Vec<u8>, expected: &Ty) -> Result<Record, RecordError> {
    let (meta, value_bytes) = split(&bytes)?;
    if !expected.is_bytes() {
        let value = decode_value(&meta, value_bytes, expected)?;
        return Ok(Record { meta, value });
    }
    if *crate::hash::blake3(value_bytes).as_bytes() != meta.value_digest {
        return Err(RecordError::DigestMismatch);
    }
    check_type(&meta, expected)?;
    // postcard writes a Value::Bytes as its variant tag, the length as a varint, the bytes.
    let start = bytes.len() - value_bytes.len();
    let tag = encode_value(&Value::Bytes(Vec::new().into()));
    let tag = &tag[..tag.len() - 1];
    // The length's varint takes 1 to 10 bytes: the one that frames the rest is the length.
    let header = (1..=10).find_map(|varint_len: usize| {
        let data_len = value_bytes.len().checked_sub(tag.len() + varint_len)?;
        let varint = postcard::to_stdvec(&(data_len as u64)).expect("a u64 encodes");
        let prefix = value_bytes.get(..tag.len() + varint_len)?;
        (varint.len() == varint_len && prefix.starts_with(tag) && prefix[tag.len()..] == varint[..])
            .then_some(prefix.len())
    });
    let Some(header) = header else {
        // Not framed as one byte list: decode it the general way, which says what is wrong.
        let value = decode_value_bytes(value_bytes, expected)?;
        return Ok(Record { meta, value });
    };
    bytes.drain(..start + header);
    Ok(Record { meta, value: Value::Bytes(bytes.into()) })
}

/// Checks `value_bytes` against `meta` (digest, then type) and decodes them as a value of type
/// `expected`.
pub fn decode_value(meta: &RecordMeta, value_bytes: &[u8], expected: &Ty) -> Result<Value, RecordError> {
    if *crate::hash::blake3(value_bytes).as_bytes() != meta.value_digest {
        return Err(RecordError::DigestMismatch);
    }
    check_type(meta, expected)?;
    decode_value_bytes(value_bytes, expected)
}

/// Decodes value bytes from [`encode_value`], as a value of type `ty`, without checking them
/// against a digest: for bytes that never left this process (a store keeping what it has
/// just written).
pub fn decode_value_bytes(value_bytes: &[u8], ty: &Ty) -> Result<Value, RecordError> {
    match wire::decode(value_bytes, ty) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(RecordError::ValueUndecodable(format!("{} bytes left after the value", rest.len()))),
        Err(e) => Err(RecordError::ValueUndecodable(e.to_string())),
    }
}

/// Refuses metadata describing a value of another type than `expected`.
pub fn check_type(meta: &RecordMeta, expected: &Ty) -> Result<(), RecordError> {
    if meta.value_type != *expected {
        return Err(RecordError::TypeMismatch {
            stored: format!("{:?}", meta.value_type),
            expected: format!("{expected:?}"),
        });
    }
    Ok(())
}

/// Decodes only the metadata of a record or a key record (for listings): checks the header
/// and lengths, not the value's digest or type.
pub fn decode_meta(bytes: &[u8]) -> Result<RecordMeta, RecordError> {
    if bytes.starts_with(KEY_MAGIC) {
        return decode_key_record(bytes);
    }
    split(bytes).map(|(meta, _)| meta)
}

/// A key record: header and metadata, no value (the value is stored apart by its digest).
pub fn encode_key_record(meta: &RecordMeta) -> Vec<u8> {
    let meta_bytes = postcard::to_stdvec(meta).expect("postcard encodes every RecordMeta");
    let mut out = Vec::with_capacity(HEADER_LEN + meta_bytes.len());
    push_header(&mut out, KEY_MAGIC, &meta_bytes);
    out
}

/// Decodes a key record (from [`encode_key_record`]).
pub fn decode_key_record(bytes: &[u8]) -> Result<RecordMeta, RecordError> {
    let (meta, rest) = header_and_meta(bytes, KEY_MAGIC)?;
    if !rest.is_empty() {
        return Err(RecordError::TrailingMetaBytes(rest.len() as u64));
    }
    Ok(meta)
}

/// A whole record's metadata and value bytes, with the header and all lengths checked but
/// not the value's digest.
pub fn split(bytes: &[u8]) -> Result<(RecordMeta, &[u8]), RecordError> {
    let found = bytes.len() as u64;
    let (meta, value_bytes) = header_and_meta(bytes, MAGIC)?;
    let value_found = value_bytes.len() as u64;
    if value_found < meta.value_len {
        return Err(RecordError::Truncated { needed: found - value_found + meta.value_len, found });
    }
    if value_found > meta.value_len {
        return Err(RecordError::TrailingBytes(value_found - meta.value_len));
    }
    Ok((meta, value_bytes))
}

fn push_header(out: &mut Vec<u8>, magic: &[u8; 5], meta_bytes: &[u8]) {
    let meta_len = u32::try_from(meta_bytes.len()).expect("record metadata under 4 GiB");
    out.extend_from_slice(magic);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&meta_len.to_le_bytes());
    out.extend_from_slice(meta_bytes);
}

/// The metadata after a `magic` header, and the bytes after it.
fn header_and_meta<'a>(bytes: &'a [u8], magic: &[u8; 5]) -> Result<(RecordMeta, &'a [u8]), RecordError> {
    let found = bytes.len() as u64;
    let truncated = |needed: usize| RecordError::Truncated { needed: needed as u64, found };

    let magic_seen = &bytes[..bytes.len().min(magic.len())];
    if magic_seen != &magic[..magic_seen.len()] {
        return Err(RecordError::BadMagic);
    }
    if bytes.len() <= magic.len() {
        return Err(truncated(HEADER_LEN));
    }
    let version = bytes[magic.len()];
    if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(RecordError::UnsupportedVersion(version));
    }
    if bytes.len() < HEADER_LEN {
        return Err(truncated(HEADER_LEN));
    }
    let len_bytes: [u8; 4] = bytes[magic.len() + 1..HEADER_LEN].try_into().expect("4 bytes");
    let meta_end = HEADER_LEN.saturating_add(u32::from_le_bytes(len_bytes) as usize);
    if bytes.len() < meta_end {
        return Err(truncated(meta_end));
    }
    let meta_bytes = &bytes[HEADER_LEN..meta_end];
    let decoded = match version {
        2 => postcard::take_from_bytes::<RecordMetaV2>(meta_bytes).map(|(meta, rest)| (RecordMeta::from(meta), rest)),
        3 => postcard::take_from_bytes::<RecordMetaV3>(meta_bytes).map(|(meta, rest)| (from_v3(meta), rest)),
        4 => postcard::take_from_bytes::<RecordMetaV4>(meta_bytes).map(|(meta, rest)| (from_v4(meta), rest)),
        _ => postcard::take_from_bytes::<RecordMeta>(meta_bytes),
    };
    match decoded {
        Ok((meta, [])) => Ok((meta, &bytes[meta_end..])),
        Ok((_, rest)) => Err(RecordError::MetaUndecodable(format!("{} bytes left after the metadata", rest.len()))),
        Err(e) => Err(RecordError::MetaUndecodable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Numbers;

    fn sample_type() -> Ty {
        Ty::Record(vec![
            ("name".into(), Ty::String),
            ("scores".into(), Ty::List(Box::new(Ty::U32))),
            ("best".into(), Ty::Option(Box::new(Ty::F64))),
        ])
    }

    fn sample_value() -> Value {
        Value::Record(vec![
            Value::String("ada".into()),
            Value::Numbers(Numbers::U32(vec![3, 70_000].into())),
            Value::Option(Some(Box::new(Value::F64(2.5)))),
        ])
    }

    fn sample_meta(value_bytes: &[u8]) -> RecordMeta {
        RecordMeta::new(
            "3f1c0a9e".into(),
            "example:math/ops.score".into(),
            "ab".repeat(32),
            vec![KeyPartMeta { name: "inputs".into(), key: "77aa".into(), detail: vec![("x".into(), "1".into())] }],
            1_700_000_000_000,
            Some(1_700_000_060_000),
            sample_type(),
            value_bytes,
        )
        .with_origin("INPUTS".into(), "ops.wasm".into())
    }

    fn sample_record() -> (RecordMeta, Vec<u8>) {
        let value_bytes = encode_value(&sample_value());
        let meta = sample_meta(&value_bytes);
        let bytes = encode(&meta, &value_bytes);
        (meta, bytes)
    }

    #[test]
    fn decode_owned_decodes_as_decode_does() {
        let bytes_ty = Ty::List(Box::new(Ty::U8));
        let cases = [
            (Value::Bytes(Vec::new().into()), bytes_ty.clone()),
            (Value::Bytes(vec![1].into()), bytes_ty.clone()),
            (Value::Bytes(vec![9; 127].into()), bytes_ty.clone()),
            (Value::Bytes(vec![9; 128].into()), bytes_ty.clone()),
            (Value::Bytes((0..70_000u32).map(|i| i as u8).collect()), bytes_ty.clone()),
            (Value::S32(-1), Ty::S32),
            (Value::String("x".into()), Ty::String),
        ];
        for (value, ty) in cases {
            let value_bytes = encode_value(&value);
            let meta =
                RecordMeta::new("k".into(), "t".into(), "d".into(), Vec::new(), 1, None, ty.clone(), &value_bytes);
            let record = encode(&meta, &value_bytes);
            let input = record.clone();
            let buffer = input.as_ptr();
            let owned = decode_owned(input, &ty).unwrap();
            assert_eq!(owned, decode(&record, &ty).unwrap());
            if let Value::Bytes(data) = &owned.value {
                // The record's own buffer was reused, not a copy made.
                assert_eq!(data.as_ptr(), buffer, "{} bytes were copied", data.len());
            }
            let mut corrupt = record.clone();
            *corrupt.last_mut().unwrap() ^= 1;
            assert!(matches!(decode_owned(corrupt, &ty), Err(RecordError::DigestMismatch)));
        }
    }

    #[test]
    fn a_record_built_from_its_value_has_the_bytes_of_encode() {
        let values = [
            Value::Bytes(vec![7; 100_000].into()),
            Value::Bytes((0..300_000u32).map(|i| (i % 251) as u8).collect()),
            Value::S32(-1),
            Value::String(String::new()),
            sample_value(),
        ];
        for value in values {
            let value_bytes = encode_value(&value);
            assert_eq!(value_len(&value), value_bytes.len() as u64);
            assert_eq!(value_digest(&value), crate::hash::blake3(&value_bytes));
            let meta = sample_meta(&value_bytes);
            let streamed = RecordMeta::for_value(
                meta.key.clone(),
                meta.task.clone(),
                meta.component_digest.clone(),
                meta.parts.clone(),
                meta.created_ms,
                meta.expiration_ms,
                meta.value_type.clone(),
                &value,
            )
            .with_origin(meta.policy.clone(), meta.component_file.clone());
            assert_eq!(streamed, meta);
            let expected = encode(&meta, &value_bytes);
            assert_eq!(encode_with_value(&streamed, &value), expected);
            let record = NewRecord::new(streamed, value.clone());
            assert_eq!(record.to_bytes(), expected);
            assert_eq!(record.len(), expected.len() as u64);
            let mut written = Vec::new();
            record.write_to(&mut written).unwrap();
            assert_eq!(written, expected, "written in pieces, the same bytes");
            let mut value_only = Vec::new();
            record.write_value_to(&mut value_only).unwrap();
            assert_eq!(value_only, value_bytes);
        }
    }

    #[test]
    fn round_trip_returns_the_same_meta_and_value() {
        let (meta, bytes) = sample_record();
        // The list of numbers, held as Numbers, has the bytes of the list of its items.
        let Value::Record(mut fields) = sample_value() else { unreachable!() };
        fields[1] = Value::List(vec![Value::U32(3), Value::U32(70_000)]);
        assert_eq!(encode_value(&Value::Record(fields)), encode_value(&sample_value()));
        let record = decode(&bytes, &sample_type()).unwrap();
        assert_eq!(record.meta, meta);
        assert_eq!(record.value, sample_value());
        assert_eq!(decode_meta(&bytes).unwrap(), meta);
    }

    #[test]
    fn new_fills_digest_and_length_of_the_value_bytes() {
        let value_bytes = encode_value(&sample_value());
        let meta = sample_meta(&value_bytes);
        assert_eq!(meta.value_len, value_bytes.len() as u64);
        assert_eq!(meta.value_digest, *blake3::hash(&value_bytes).as_bytes());
    }

    /// The metadata bytes of format version 2 for [`golden_meta`] (no expiry).
    fn golden_meta_bytes_v2() -> Vec<u8> {
        let mut meta_bytes = vec![1, b'k', 1, b't', 1, b'd', 1, 1, b'n', 1, b'p', 0];
        meta_bytes.extend_from_slice(&[2, 0, 0]); // created 1 (zigzag varint), no expiry, Ty::Bool
        meta_bytes.extend_from_slice(blake3::hash(&[0, 1]).as_bytes());
        meta_bytes.push(2); // value_len
        meta_bytes.extend_from_slice(&[1, b'P', 1, b'c']); // policy, component_file
        meta_bytes
    }

    fn golden_meta() -> RecordMeta {
        let value_bytes = encode_value(&Value::Bool(true));
        RecordMeta::new(
            "k".into(),
            "t".into(),
            "d".into(),
            vec![KeyPartMeta { name: "n".into(), key: "p".into(), detail: vec![] }],
            1,
            None,
            Ty::Bool,
            &value_bytes,
        )
        .with_origin("P".into(), "c".into())
    }

    fn framed(magic: &[u8], version: u8, meta_bytes: &[u8], value_bytes: &[u8]) -> Vec<u8> {
        let mut bytes = magic.to_vec();
        bytes.push(version);
        bytes.extend_from_slice(&(meta_bytes.len() as u32).to_le_bytes());
        bytes.extend_from_slice(meta_bytes);
        bytes.extend_from_slice(value_bytes);
        bytes
    }

    /// Pins the byte layout of format version 2, which this build still reads: a change here
    /// makes every stored version 2 record unreadable.
    #[test]
    fn format_version_2_is_still_read() {
        let bytes = framed(MAGIC, 2, &golden_meta_bytes_v2(), &[0, 1]);
        let record = decode(&bytes, &Ty::Bool).unwrap();
        assert_eq!(record.meta, golden_meta());
        assert_eq!(record.meta.signature, None);
        assert_eq!(record.meta.inputs, None);
        assert_eq!(record.value, Value::Bool(true));
        assert!(!signature_checks(&record.meta), "a version 2 record is unsigned");
    }

    /// Pins the byte layout of format version 3, unsigned and without inputs, which this
    /// build still reads: the version 2 metadata, then no inputs and no signature. It has no
    /// cost.
    #[test]
    fn format_version_3_is_still_read() {
        let mut meta_bytes = golden_meta_bytes_v2();
        meta_bytes.extend_from_slice(&[0, 0]); // inputs None, signature None
        let record = decode(&framed(MAGIC, 3, &meta_bytes, &[0, 1]), &Ty::Bool).unwrap();
        assert_eq!(record.meta, golden_meta());
        assert_eq!(record.meta.cost, None);
    }

    /// Format version 4 (the version 3 metadata, then the cost) is still read.
    #[test]
    fn format_version_4_is_still_read() {
        let mut meta_bytes = golden_meta_bytes_v2();
        meta_bytes.extend_from_slice(&[0, 0]); // inputs None, signature None
        meta_bytes.extend_from_slice(&[1, 0xac, 0x02, 1, 7]); // Some(cost): 300 µs (varint), Some(7) fuel
        let meta = golden_meta().with_cost(Some(Cost { wall_us: 300, fuel: Some(7) }));
        assert_eq!(decode(&framed(MAGIC, 4, &meta_bytes, &[0, 1]), &Ty::Bool).unwrap().meta, meta);
    }

    /// Pins the byte layout of format version 5: the version 4 metadata, then the reads. A
    /// change here makes every stored record unreadable.
    #[test]
    fn format_version_5_is_stable() {
        let mut meta_bytes = golden_meta_bytes_v2();
        meta_bytes.extend_from_slice(&[0, 0]); // inputs None, signature None
        meta_bytes.extend_from_slice(&[1, 0xac, 0x02, 1, 7]); // Some(cost): 300 µs (varint), Some(7) fuel
        meta_bytes.extend_from_slice(&[1, 6, b'f', b'i', b'l', b'e', b' ', b'x', 1, b'd']); // one read
        let meta = golden_meta()
            .with_cost(Some(Cost { wall_us: 300, fuel: Some(7) }))
            .with_reads(vec![("file x".into(), "d".into())]);
        let bytes = encode(&meta, &[0, 1]);
        assert_eq!(bytes, framed(MAGIC, 5, &meta_bytes, &[0, 1]));
        assert_eq!(decode(&bytes, &Ty::Bool).unwrap().meta, meta);

        let mut nothing = golden_meta_bytes_v2();
        nothing.extend_from_slice(&[0, 0, 0, 0]); // no inputs, signature, cost or reads
        assert_eq!(encode(&golden_meta(), &[0, 1]), framed(MAGIC, 5, &nothing, &[0, 1]));
    }

    /// The key pair of the signing tests, from a fixed seed.
    fn test_key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    /// Pins what a signature covers and the layout of a signed version 3 record, still read:
    /// a change here invalidates every stored signature.
    #[test]
    fn format_version_3_signed_is_stable() {
        let mut meta = golden_meta().with_inputs(Some(StoredInputs::Inline(vec![9])));
        let mut message = b"cachehost record v3\0".to_vec();
        message.extend_from_slice(&[1, b'k', 1, b't', 1, b'd', 2, 0, 0]); // key, task, component, created, expiry, type
        message.extend_from_slice(blake3::hash(&[0, 1]).as_bytes());
        message.push(2); // value_len
        message.push(1); // inputs digest present
        message.extend_from_slice(blake3::hash(&[9]).as_bytes());
        assert_eq!(signed_message(&meta), message);

        sign(&mut meta, &test_key());
        let signature = test_key().sign(&message).to_bytes();
        let mut meta_bytes = golden_meta_bytes_v2();
        meta_bytes.extend_from_slice(&[1, 0, 1, 9]); // Some(Inline([9]))
        meta_bytes.push(1); // Some(signature)
        meta_bytes.extend_from_slice(&test_key().verifying_key().to_bytes());
        meta_bytes.push(64);
        meta_bytes.extend_from_slice(&signature);
        let decoded = decode(&framed(MAGIC, 3, &meta_bytes, &[0, 1]), &Ty::Bool).unwrap();
        assert_eq!(decoded.meta, meta);
        assert!(signature_checks(&decoded.meta));
        assert_eq!(decoded.meta.signature.as_ref().unwrap().signer, test_key().verifying_key().to_bytes());

        // Format versions 4 and 5 sign the same message: the cost and the reads are not
        // covered (a READS lookup checks its key part's detail, which is not signed either).
        let mut with_cost =
            meta.with_cost(Some(Cost { wall_us: 1, fuel: None })).with_reads(vec![("random".into(), "read".into())]);
        sign(&mut with_cost, &test_key());
        assert_eq!(with_cost.signature.as_ref().unwrap().signature, signature.to_vec());
        meta_bytes.extend_from_slice(&[1, 1, 0]); // Some(cost): 1 µs, no fuel
        meta_bytes.extend_from_slice(&[1, 6, b'r', b'a', b'n', b'd', b'o', b'm', 4, b'r', b'e', b'a', b'd']);
        let bytes = encode(&with_cost, &[0, 1]);
        assert_eq!(bytes, framed(MAGIC, 5, &meta_bytes, &[0, 1]));
        assert!(signature_checks(&decode(&bytes, &Ty::Bool).unwrap().meta));
    }

    /// Regression (issue 16): a READS record's read set decides whether it is a hit, so a
    /// signed one whose read set was changed after signing must not check.
    #[test]
    fn a_signature_covers_the_read_set_of_a_reads_record() {
        let reads = KeyPartMeta {
            name: crate::policy::Part::Reads.name().into(),
            key: "r".into(),
            detail: vec![("file /data/x".into(), "aa".into())],
        };
        let mut signed = golden_meta();
        signed.parts.push(reads);
        sign(&mut signed, &test_key());
        assert!(signature_checks(&signed));
        let mut forged = signed.clone();
        forged.parts.last_mut().unwrap().detail[0].1 = "bb".into();
        forged.checked = SignatureCheck::default();
        assert!(!signature_checks(&forged), "a changed read set breaks the signature");
    }

    #[test]
    fn a_signature_covers_what_a_reader_acts_on_and_nothing_else_breaks_it() {
        let mut signed = golden_meta().with_inputs(Some(StoredInputs::Inline(vec![1, 2])));
        sign(&mut signed, &test_key());
        assert!(signature_checks(&signed));
        type Change = fn(&mut RecordMeta);
        let changes: [(&str, Change); 10] = [
            ("key", |m| m.key.push('x')),
            ("task", |m| m.task.push('x')),
            ("component digest", |m| m.component_digest.push('0')),
            ("created", |m| m.created_ms += 1),
            ("expiry", |m| m.expiration_ms = Some(i64::MAX)),
            ("type", |m| m.value_type = Ty::U8),
            ("value digest", |m| m.value_digest[0] ^= 1),
            ("value length", |m| m.value_len += 1),
            ("inputs", |m| m.inputs = Some(StoredInputs::Inline(vec![1, 3]))),
            ("signature byte", |m| m.signature.as_mut().unwrap().signature[10] ^= 1),
        ];
        for (what, change) in changes {
            // Through the bytes, as a reader gets it: a fresh decode checks afresh.
            let mut meta = signed.clone();
            change(&mut meta);
            let bytes = encode_key_record(&meta);
            assert!(!signature_checks(&decode_key_record(&bytes).unwrap()), "a changed {what} still checks");
        }
        let mut meta = signed.clone();
        meta.policy = "NONE".into();
        meta.component_file = "other.wasm".into();
        meta.cost = Some(Cost { wall_us: 9, fuel: Some(9) });
        assert!(signature_checks(&decode_key_record(&encode_key_record(&meta)).unwrap()), "display fields and cost");
        assert!(!signature_checks(&golden_meta()), "unsigned");
        let mut short = signed.clone();
        short.signature.as_mut().unwrap().signature.pop();
        assert!(!signature_checks(&decode_key_record(&encode_key_record(&short)).unwrap()), "63 bytes");
    }

    #[test]
    fn a_signature_is_checked_once_per_decoded_record() {
        let mut meta = golden_meta();
        sign(&mut meta, &test_key());
        let decoded = decode_key_record(&encode_key_record(&meta)).unwrap();
        assert!(signature_checks(&decoded));
        // Forged after the check: the kept verdict is served, not worked out again. (Records
        // are immutable once decoded; this only shows the check is not repeated.)
        let mut forged = decoded.clone();
        forged.signature.as_mut().unwrap().signature[0] ^= 1;
        assert!(signature_checks(&forged), "the verdict was kept");
        assert!(!signature_checks(&decode_key_record(&encode_key_record(&forged)).unwrap()), "a new decode checks");
    }

    #[test]
    fn inputs_round_trip_by_their_types() {
        let args =
            [Value::S64(-3), Value::Numbers(crate::value::Numbers::U32(vec![1, 2].into())), Value::String("x".into())];
        let params = [Ty::S64, Ty::List(Box::new(Ty::U32)), Ty::String];
        let bytes = encode_inputs(&args);
        assert_eq!(decode_inputs(&bytes, &params).unwrap(), args);
        assert!(decode_inputs(&bytes, &params[..2]).is_err(), "another arity");
        assert!(decode_inputs(&bytes[..bytes.len() - 1], &params).is_err(), "truncated");
    }

    #[test]
    fn every_truncation_is_an_error() {
        let (_, bytes) = sample_record();
        for len in 0..bytes.len() {
            let err = decode(&bytes[..len], &sample_type()).unwrap_err();
            assert!(matches!(err, RecordError::Truncated { found, .. } if found == len as u64), "length {len}: {err}");
        }
    }

    #[test]
    fn flipped_bit_in_the_value_is_a_digest_mismatch() {
        let (_, mut bytes) = sample_record();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        assert_eq!(decode(&bytes, &sample_type()), Err(RecordError::DigestMismatch));
    }

    #[test]
    fn flipped_bit_anywhere_never_panics() {
        let (_, bytes) = sample_record();
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            let _ = decode(&bad, &sample_type());
            let _ = decode_meta(&bad);
        }
    }

    #[test]
    fn zeroed_bytes_are_bad_magic() {
        let (_, bytes) = sample_record();
        let zeroed = vec![0; bytes.len()];
        assert_eq!(decode(&zeroed, &sample_type()), Err(RecordError::BadMagic));
    }

    #[test]
    fn wrong_magic_is_refused() {
        let (_, mut bytes) = sample_record();
        bytes[0] = b'X';
        assert_eq!(decode(&bytes, &sample_type()), Err(RecordError::BadMagic));
        assert_eq!(decode_meta(b"{\"metadata\":{}}"), Err(RecordError::BadMagic));
    }

    #[test]
    fn bumped_version_is_unsupported() {
        let (_, mut bytes) = sample_record();
        bytes[MAGIC.len()] = FORMAT_VERSION + 1;
        assert_eq!(decode(&bytes, &sample_type()), Err(RecordError::UnsupportedVersion(FORMAT_VERSION + 1)));
    }

    #[test]
    fn other_expected_type_is_a_type_mismatch() {
        let (_, bytes) = sample_record();
        let err = decode(&bytes, &Ty::String).unwrap_err();
        assert!(matches!(err, RecordError::TypeMismatch { .. }), "{err}");
        assert!(err.to_string().contains("the task returns String"), "{err}");
        // Listings read the metadata of any type.
        assert!(decode_meta(&bytes).is_ok());
    }

    #[test]
    fn bytes_after_the_value_are_refused() {
        let (_, mut bytes) = sample_record();
        bytes.push(0);
        assert_eq!(decode(&bytes, &sample_type()), Err(RecordError::TrailingBytes(1)));
    }

    #[test]
    fn meta_length_past_the_end_is_truncated() {
        let (_, mut bytes) = sample_record();
        bytes[MAGIC.len() + 1..HEADER_LEN].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode(&bytes, &sample_type()).unwrap_err();
        assert!(matches!(err, RecordError::Truncated { .. }), "{err}");
    }

    #[test]
    fn undecodable_meta_is_reported() {
        let (_, mut bytes) = sample_record();
        // A meta length of 1 leaves a single byte for the metadata.
        bytes[MAGIC.len() + 1..HEADER_LEN].copy_from_slice(&1u32.to_le_bytes());
        let err = decode(&bytes, &sample_type()).unwrap_err();
        assert!(matches!(err, RecordError::MetaUndecodable(_)), "{err}");
    }

    /// Regression: a crafted record nesting a value or type a million levels deep (two bytes a
    /// level) overflowed the stack while decoding and killed the process; it is now refused at
    /// 128 levels (postcard reports it as a generic deserialization error).
    #[test]
    fn deeply_nested_value_or_type_is_refused_not_a_stack_overflow() {
        // Value::Option (variant 19) Some (1), a million times, around Bool(false).
        let mut value_bytes = [19u8, 1].repeat(1_000_000);
        value_bytes.extend_from_slice(&[0, 0]);
        let meta = RecordMeta::new("k".into(), "t".into(), "d".into(), vec![], 0, None, Ty::Bool, &value_bytes);
        let err = decode(&encode(&meta, &value_bytes), &Ty::Bool).unwrap_err();
        assert!(matches!(err, RecordError::ValueUndecodable(_)), "{err}");

        // A value type of Ty::Option (variant 18) a million times deep, in the metadata.
        let value_bytes = encode_value(&Value::Bool(true));
        let meta = RecordMeta::new("k".into(), "t".into(), "d".into(), vec![], 0, None, Ty::Bool, &value_bytes);
        let mut bytes = encode(&meta, &value_bytes);
        // From the end: the value, then (format 5) no reads, (format 4) no cost, (format 3) no
        // inputs and no signature, (format 2) empty policy and component file, the value
        // length, the value digest, and the type.
        let ty_at = bytes.len() - value_bytes.len() - 1 - 1 - 2 - 1 - 1 - 1 - 32 - 1;
        assert_eq!(bytes[ty_at], 0, "Ty::Bool is where the test expects it");
        let mut deep_ty = vec![18u8; 1_000_000];
        deep_ty.push(0);
        bytes.splice(ty_at..ty_at + 1, deep_ty);
        let meta_len = (bytes.len() - value_bytes.len() - HEADER_LEN) as u32;
        bytes[MAGIC.len() + 1..HEADER_LEN].copy_from_slice(&meta_len.to_le_bytes());
        let err = decode(&bytes, &Ty::Bool).unwrap_err();
        assert!(matches!(err, RecordError::MetaUndecodable(_)), "{err}");
    }

    #[test]
    fn nesting_up_to_the_limit_decodes() {
        let mut ty = Ty::Bool;
        let mut value = Value::Bool(true);
        for _ in 0..100 {
            ty = Ty::Option(Box::new(ty));
            value = Value::Option(Some(Box::new(value)));
        }
        let value_bytes = encode_value(&value);
        let meta = RecordMeta::new("k".into(), "t".into(), "d".into(), vec![], 0, None, ty.clone(), &value_bytes);
        assert_eq!(decode(&encode(&meta, &value_bytes), &ty).unwrap().value, value);
    }

    #[test]
    fn value_that_matches_its_digest_but_not_postcard_is_undecodable() {
        let garbage = [0xff_u8; 3];
        let meta = RecordMeta::new("k".into(), "t".into(), "d".into(), vec![], 0, None, Ty::U32, &garbage);
        let err = decode(&encode(&meta, &garbage), &Ty::U32).unwrap_err();
        assert!(matches!(err, RecordError::ValueUndecodable(_)), "{err}");
    }

    /// The metadata bytes of a key record's golden metadata, format version 2.
    fn golden_key_meta_bytes_v2() -> Vec<u8> {
        let mut meta_bytes = vec![1, b'k', 1, b't', 1, b'd', 0];
        // created 1, expiration Some(3) (zigzag varints), Ty::Bool
        meta_bytes.extend_from_slice(&[2, 1, 6, 0]);
        meta_bytes.extend_from_slice(blake3::hash(&[0, 1]).as_bytes());
        meta_bytes.push(2); // value_len
        meta_bytes.extend_from_slice(&[0, 0]); // no policy, no component file (version 2)
        meta_bytes
    }

    fn golden_key_meta() -> RecordMeta {
        let value_bytes = encode_value(&Value::Bool(true));
        RecordMeta::new("k".into(), "t".into(), "d".into(), vec![], 1, Some(3), Ty::Bool, &value_bytes)
    }

    /// Pins the byte layout of key records of format version 2, which this build still reads.
    #[test]
    fn key_record_format_version_2_is_still_read() {
        let bytes = framed(KEY_MAGIC, 2, &golden_key_meta_bytes_v2(), &[]);
        assert_eq!(decode_key_record(&bytes).unwrap(), golden_key_meta());
    }

    /// Pins the byte layout of key records of format version 3, which this build still reads.
    #[test]
    fn key_record_format_version_3_is_still_read() {
        let mut meta_bytes = golden_key_meta_bytes_v2();
        meta_bytes.extend_from_slice(&[0, 0]); // no inputs, no signature
        assert_eq!(decode_key_record(&framed(KEY_MAGIC, 3, &meta_bytes, &[])).unwrap(), golden_key_meta());
    }

    /// Pins the byte layout of key records, format version 4: a change here breaks every
    /// stored key record.
    #[test]
    fn key_record_format_version_5_is_stable_and_4_still_read() {
        let mut v4 = golden_key_meta_bytes_v2();
        v4.extend_from_slice(&[0, 0, 1, 5, 0]); // no inputs, no signature, cost 5 µs without fuel
        let meta = golden_key_meta().with_cost(Some(Cost { wall_us: 5, fuel: None }));
        assert_eq!(decode_key_record(&framed(KEY_MAGIC, 4, &v4, &[])).unwrap(), meta);
        let mut v5 = v4.clone();
        v5.push(0); // no reads
        assert_eq!(encode_key_record(&meta), framed(KEY_MAGIC, 5, &v5, &[]));
        assert_eq!(decode_key_record(&framed(KEY_MAGIC, 5, &v5, &[])).unwrap(), meta);
    }

    #[test]
    fn older_and_newer_versions_are_unsupported() {
        let (meta, mut bytes) = sample_record();
        for version in [1, 0, FORMAT_VERSION + 1] {
            bytes[MAGIC.len()] = version;
            assert_eq!(decode(&bytes, &sample_type()), Err(RecordError::UnsupportedVersion(version)));
            let mut key_bytes = encode_key_record(&meta);
            key_bytes[KEY_MAGIC.len()] = version;
            assert_eq!(decode_key_record(&key_bytes), Err(RecordError::UnsupportedVersion(version)));
        }
    }

    #[test]
    fn key_record_round_trips_and_lists() {
        let (meta, _) = sample_record();
        let bytes = encode_key_record(&meta);
        assert_eq!(decode_key_record(&bytes).unwrap(), meta);
        assert_eq!(decode_meta(&bytes).unwrap(), meta);
    }

    #[test]
    fn key_record_every_truncation_is_an_error() {
        let (meta, _) = sample_record();
        let bytes = encode_key_record(&meta);
        for len in 0..bytes.len() {
            let err = decode_key_record(&bytes[..len]).unwrap_err();
            assert!(matches!(err, RecordError::Truncated { found, .. } if found == len as u64), "length {len}: {err}");
        }
    }

    #[test]
    fn key_record_with_bytes_after_the_metadata_is_refused() {
        let (meta, _) = sample_record();
        let mut bytes = encode_key_record(&meta);
        bytes.extend_from_slice(&[0, 1]);
        assert_eq!(decode_key_record(&bytes), Err(RecordError::TrailingMetaBytes(2)));
    }

    #[test]
    fn record_kinds_are_not_confused() {
        let (meta, full) = sample_record();
        assert_eq!(decode_key_record(&full), Err(RecordError::BadMagic));
        assert_eq!(decode(&encode_key_record(&meta), &sample_type()), Err(RecordError::BadMagic));
    }

    #[test]
    fn key_record_bumped_version_is_unsupported() {
        let (meta, _) = sample_record();
        let mut bytes = encode_key_record(&meta);
        bytes[KEY_MAGIC.len()] = FORMAT_VERSION + 1;
        assert_eq!(decode_key_record(&bytes), Err(RecordError::UnsupportedVersion(FORMAT_VERSION + 1)));
    }

    #[test]
    fn decode_value_checks_digest_then_type() {
        let (meta, bytes) = sample_record();
        let (_, value_bytes) = split(&bytes).unwrap();
        assert_eq!(decode_value(&meta, value_bytes, &sample_type()).unwrap(), sample_value());
        assert_eq!(decode_value(&meta, &value_bytes[1..], &Ty::String), Err(RecordError::DigestMismatch));
        assert!(matches!(decode_value(&meta, value_bytes, &Ty::String), Err(RecordError::TypeMismatch { .. })));
    }
}
