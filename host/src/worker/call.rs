//! What travels through the queue: a task call (a stream entry) and its outcome (an entry
//! of the flow run's reply stream). Both carry a format version; the values inside are the
//! record's wire encoding (`store::record::encode_inputs`, `encode_value`), never JSON.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::queue::Entry;
use crate::run::report::{LogLineReport, StateReport, TaskRunReport};
use crate::store::{ResultStore, Shared};

/// The largest inputs or value an entry carries itself; larger ones go through the store.
pub const INLINE_LIMIT: usize = 1 << 20;

/// Encoded inputs or an encoded value as an entry carries them: inline up to
/// [`INLINE_LIMIT`] bytes, else as a file of the call's result storage (which the flow and
/// the workers share already) under `.calls/`, with only its BLAKE3 digest in the entry, so
/// that large values never pass through Redis (nor are held there while the call waits).
#[derive(Clone, Debug)]
pub enum Payload {
    /// The bytes themselves.
    Inline(Vec<u8>),
    /// The digest of the bytes kept in the store's `.calls/`.
    Stored(blake3::Hash),
}

/// The name in a store's `.calls/` of a call's inputs.
pub fn inputs_name(call: &str) -> String {
    format!("{call}-inputs")
}

/// The name in a store's `.calls/` of a call's value.
pub fn value_name(call: &str) -> String {
    format!("{call}-value")
}

impl Payload {
    /// `bytes`, inline, or written to `store` as `name` of its `.calls/` when they are
    /// larger than [`INLINE_LIMIT`]. Names are per call ([`inputs_name`], [`value_name`]):
    /// two calls with the same inputs never share, so neither removes the other's.
    pub fn keep(store: &dyn ResultStore, name: &str, bytes: Vec<u8>) -> Result<Payload, String> {
        if bytes.len() <= INLINE_LIMIT {
            return Ok(Payload::Inline(bytes));
        }
        let digest = blake3::hash(&bytes);
        store
            .write_shared(Shared::CallData, name, &bytes)
            .map_err(|e| format!("cannot keep {} bytes in {} for the queue: {e}", bytes.len(), store.describe()))?;
        Ok(Payload::Stored(digest))
    }

    /// The bytes: inline, or read as `name` from `store` and checked against their digest.
    pub fn bytes(&self, store: &dyn ResultStore, name: &str) -> Result<Cow<'_, [u8]>, String> {
        let digest = match self {
            Payload::Inline(bytes) => return Ok(Cow::Borrowed(bytes)),
            Payload::Stored(digest) => digest,
        };
        let path = Shared::CallData.path(name);
        match store.read_shared(Shared::CallData, name) {
            Ok(Some(bytes)) if blake3::hash(&bytes) == *digest => Ok(Cow::Owned(bytes)),
            Ok(Some(bytes)) => Err(format!(
                "{path} in {} hashes to {}, not to {}; refusing it",
                store.describe(),
                blake3::hash(&bytes).to_hex(),
                digest.to_hex()
            )),
            Ok(None) => Err(format!("{path} (digest {}) is not in {}", digest.to_hex(), store.describe())),
            Err(e) => Err(format!("cannot read {path} from {}: {e}", store.describe())),
        }
    }

    /// Removes what [`Payload::keep`] wrote, once nobody needs it. A failure only leaves a
    /// file behind (`cache prune` removes it later); the error says which.
    pub fn release(&self, store: &dyn ResultStore, name: &str) -> Result<(), String> {
        match self {
            Payload::Inline(_) => Ok(()),
            Payload::Stored(_) => store
                .remove_shared(Shared::CallData, name)
                .map_err(|e| format!("cannot remove {} from {}: {e}", Shared::CallData.path(name), store.describe())),
        }
    }

    /// Its field: `name` inline, `name-digest` by digest.
    fn field(&self, name: &'static str, by_digest: &'static str) -> (&'static str, Vec<u8>) {
        match self {
            Payload::Inline(bytes) => (name, bytes.clone()),
            Payload::Stored(digest) => (by_digest, digest.to_hex().as_bytes().to_vec()),
        }
    }

    /// Reads it back from an entry's fields; an error for a digest that is not one.
    fn parse(entry: &Entry, name: &str, by_digest: &str) -> Result<Option<Payload>, String> {
        if let Some(bytes) = entry.field(name) {
            return Ok(Some(Payload::Inline(bytes.to_vec())));
        }
        match entry.text(by_digest) {
            Some(hex) => blake3::Hash::from_hex(hex)
                .map(|digest| Some(Payload::Stored(digest)))
                .map_err(|_| format!("its `{by_digest}` is not a BLAKE3 digest")),
            None => Ok(None),
        }
    }
}

/// The version of the call and outcome formats.
pub const FORMAT: &str = "1";

/// A component the call needs, by digest.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ComponentRef {
    /// BLAKE3 of its bytes, hex: its name in the shared store.
    pub digest: String,
    /// Its file name in the flow's process (grants in cachehost.toml name components so).
    pub file: String,
}

/// Where the call's components are kept: the task's result storage as the flow's process
/// resolved it (a shared folder, or `s3://…`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoreRef {
    /// The result storage.
    pub result_storage: String,
    /// The key storage, if any.
    pub key_storage: Option<String>,
}

/// The flow's `cachehost.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfigRef {
    /// Where it was read from (relative paths in it are relative to its folder).
    pub path: String,
    /// Its text.
    pub text: String,
}

/// The flow run a call belongs to: what its keys (RUN_ID, FLOW_PARAMETERS) and its
/// persist_result default depend on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FlowRunRef {
    /// The flow run's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Digests of its parameters (hex), for FLOW_PARAMETERS.
    pub parameter_digests: Vec<(String, String)>,
    /// Whether results persist by default in it.
    pub persist_result: bool,
    /// When it started, in Unix milliseconds.
    pub started_ms: i64,
}

/// A call's header: everything but its inputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CallHead {
    /// The task run's id (a UUID): the worker runs it under this id, so its name is the
    /// one the flow's process would have given it.
    pub call: String,
    /// The task's full name.
    pub task: String,
    /// The providing component and the task's index in it.
    pub route: (usize, usize),
    /// Every component of the flow's session, the flow first, so routes mean the same.
    pub components: Vec<ComponentRef>,
    /// Where they are kept.
    pub store: StoreRef,
    /// The flow's configuration, if it has one.
    pub config: Option<ConfigRef>,
    /// The flow process's settings that decide what a task run does (`CACHEHOST_…`).
    pub settings: BTreeMap<String, String>,
    /// The flow run.
    pub flow_run: FlowRunRef,
    /// The stream the outcome goes to.
    pub reply: String,
}

/// A call read from the stream.
#[derive(Clone, Debug)]
pub struct Call {
    /// Its entry id.
    pub entry: String,
    /// Its header.
    pub head: CallHead,
    /// Its inputs, encoded.
    pub inputs: Payload,
}

/// The fields of a call's stream entry.
pub fn call_fields(head: &CallHead, inputs: &Payload) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("v", FORMAT.as_bytes().to_vec()),
        ("head", serde_json::to_vec(head).expect("a call head is JSON")),
        inputs.field("inputs", "inputs-digest"),
    ]
}

/// Reads a call entry; the error says what is wrong with it.
pub fn parse_call(entry: &Entry) -> Result<Call, String> {
    match entry.text("v") {
        Some(FORMAT) => {}
        Some(other) => return Err(format!("its format is {other:?}; this worker reads format {FORMAT}")),
        None => return Err("it has no format field `v`".to_owned()),
    }
    let head = entry.field("head").ok_or("it has no field `head`")?;
    let head: CallHead = serde_json::from_slice(head).map_err(|e| format!("its `head` is not a call: {e}"))?;
    let inputs = Payload::parse(entry, "inputs", "inputs-digest")?.ok_or("it has no field `inputs`")?;
    Ok(Call { entry: entry.id.clone(), head, inputs })
}

/// What a worker sends back for one call.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    /// The task run id of the call.
    pub call: String,
    /// The worker that ran it.
    pub worker: String,
    /// The call's final state.
    pub state: StateReport,
    /// The cache key it used.
    pub cache_key: Option<String>,
    /// Set when the caller must trap.
    pub trap: Option<String>,
    /// The task runs of the call: its own, then nested ones.
    pub task_runs: Vec<TaskRunReport>,
    /// Its log lines.
    pub logs: Vec<LogLineReport>,
}

/// The fields of an outcome's reply entry.
pub fn outcome_fields(outcome: &Outcome, value: Option<&Payload>) -> Vec<(&'static str, Vec<u8>)> {
    let mut fields = vec![
        ("v", FORMAT.as_bytes().to_vec()),
        ("call", outcome.call.as_bytes().to_vec()),
        ("outcome", serde_json::to_vec(outcome).expect("an outcome is JSON")),
    ];
    if let Some(value) = value {
        fields.push(value.field("value", "value-digest"));
    }
    fields
}

/// Reads an outcome entry: the outcome and its encoded value, if any.
pub fn parse_outcome(entry: &Entry) -> Result<(Outcome, Option<Payload>), String> {
    if entry.text("v") != Some(FORMAT) {
        return Err(format!("reply {} is not of format {FORMAT}", entry.id));
    }
    let outcome = entry.field("outcome").ok_or_else(|| format!("reply {} has no outcome", entry.id))?;
    let outcome: Outcome =
        serde_json::from_slice(outcome).map_err(|e| format!("reply {} is not an outcome: {e}", entry.id))?;
    let value = Payload::parse(entry, "value", "value-digest").map_err(|e| format!("reply {}: {e}", entry.id))?;
    Ok((outcome, value))
}

/// Adds the fields to a command (XADD's field-value pairs).
pub fn add_fields(command: &mut redis::Cmd, fields: &[(&str, Vec<u8>)]) {
    for (name, value) in fields {
        command.arg(*name).arg(value.as_slice());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::LocalStore;
    use crate::store::CALLS_FOLDER as CALLS;

    #[test]
    fn small_bytes_go_inline_and_large_ones_by_name_checked_against_their_digest_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let small = vec![7u8; INLINE_LIMIT];
        let kept = Payload::keep(&store, "c-inputs", small.clone()).unwrap();
        assert!(matches!(kept, Payload::Inline(ref b) if *b == small));
        assert!(!dir.path().join(CALLS).exists());

        let large: Vec<u8> = (0..INLINE_LIMIT + 1).map(|i| i as u8).collect();
        let kept = Payload::keep(&store, "c-inputs", large.clone()).unwrap();
        let Payload::Stored(digest) = kept else { panic!("{kept:?} is inline") };
        assert_eq!(digest, blake3::hash(&large));
        assert_eq!(kept.bytes(&store, "c-inputs").unwrap().as_ref(), large.as_slice());

        // Changed in the store: refused, naming the digest, never returned.
        let file = dir.path().join(CALLS).join("c-inputs");
        let mut changed = large.clone();
        changed[10] ^= 1;
        std::fs::write(&file, &changed).unwrap();
        let error = kept.bytes(&store, "c-inputs").unwrap_err();
        assert!(error.contains(digest.to_hex().as_str()) && error.contains("refusing it"), "{error}");
        kept.release(&store, "c-inputs").unwrap();
        assert!(!file.exists());
        assert!(kept.bytes(&store, "c-inputs").unwrap_err().contains("is not in"));
    }
}
