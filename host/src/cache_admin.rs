//! Managing the result store for `cachehost cache`: selecting records, removing and pruning
//! them, and explaining why a call would hit or miss by comparing its key, part by part, with
//! the nearest record of its task (DESIGN §7).
//!
//! Everything here goes through [`ResultStore`], so every backend gets these commands;
//! [`explain_call`] computes the call's key through the loaded [`Session`], as a task run does.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::cache_stats::{self, Ranked};
use crate::key::{CacheKey, KeyPart};
use crate::log::{Level, Logger};
use crate::options;
use crate::run::ctx::{FlowRunCtx, TaskRunCtx};
use crate::run::task::{stored_type, Caller};
use crate::run::{Route, Session};
use crate::settings::{ConfigFile, Settings};
use crate::store::{
    object, record, split, KeyPartMeta, LocalStore, Lookup, RecordMeta, ResultStore, SplitStore, StoreError,
};
use crate::trust::{self, PublicKey};
use crate::units::short_key;
use crate::value::Value;

/// Why a cache management command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store could not be read or changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No record has the given key or key prefix.
    #[error("no record has the key {0:?} (nor a key starting with it); `cachehost cache ls` lists the keys")]
    NoSuchKey(String),
    /// Several records start with the given prefix.
    #[error("the key prefix {prefix:?} is ambiguous: {count} records start with it; give more of the key")]
    AmbiguousKey {
        /// The prefix given.
        prefix: String,
        /// How many keys start with it.
        count: usize,
    },
    /// Key storage and result storage are not of one kind.
    #[error(
        "--key-storage {} and --storage {} must both be folders or both be s3:// locations",
        keys.display(),
        results.display()
    )]
    MixedStorage {
        /// The key storage given.
        keys: PathBuf,
        /// The result storage.
        results: PathBuf,
    },
    /// A component file or folder could not be read.
    #[error("could not read {}: {source}", path.display())]
    Component {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Which records a command applies to; an empty filter selects every record.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// The task's function name (`add-one`) or full name (`example:math/tasks#add-one`).
    pub task: Option<String>,
    /// A lower-case hex prefix of the component digest (a whole digest for a component file).
    pub component: Option<String>,
    /// Only records created at least this long ago.
    pub older_than: Option<Duration>,
    /// Only records created less than this long ago.
    pub newer_than: Option<Duration>,
    /// Only expired records.
    pub expired: bool,
    /// Only records of this signer (`cache rm --signer`, to remove what a revoked key wrote).
    pub signer: Option<SignerFilter>,
}

/// Which signer a filter selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignerFilter {
    /// Records without a signature.
    Unsigned,
    /// Records whose signature names this key (whether or not it checks).
    Key(PublicKey),
}

impl SignerFilter {
    /// `unsigned`, or a key as `cachehost key show` prints it.
    pub fn parse(text: &str) -> Result<SignerFilter, String> {
        if text.trim() == "unsigned" {
            return Ok(SignerFilter::Unsigned);
        }
        PublicKey::parse(text).map(SignerFilter::Key)
    }

    fn matches(self, meta: &RecordMeta) -> bool {
        match self {
            SignerFilter::Unsigned => meta.signature.is_none(),
            SignerFilter::Key(key) => trust::signer(meta) == Some(key),
        }
    }
}

impl Filter {
    /// Whether the filter selects every record.
    pub fn is_empty(&self) -> bool {
        self.task.is_none()
            && self.component.is_none()
            && self.older_than.is_none()
            && self.newer_than.is_none()
            && !self.expired
            && self.signer.is_none()
    }

    /// Whether `meta` is selected at `now_ms`.
    pub fn matches(&self, meta: &RecordMeta, now_ms: i64) -> bool {
        let age_ms = now_ms.saturating_sub(meta.created_ms);
        self.task.as_deref().is_none_or(|task| task_matches(&meta.task, task))
            && self.component.as_deref().is_none_or(|prefix| meta.component_digest.starts_with(prefix))
            && self.older_than.is_none_or(|d| age_ms >= millis(d))
            && self.newer_than.is_none_or(|d| age_ms < millis(d))
            && (!self.expired || is_expired(meta, now_ms))
            && self.signer.is_none_or(|signer| signer.matches(meta))
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Whether a task's full name is `wanted`, or its function name is.
pub fn task_matches(full_name: &str, wanted: &str) -> bool {
    full_name == wanted || full_name.rsplit_once('#').is_some_and(|(_, function)| function == wanted)
}

/// Whether the record has expired at `now_ms` (strictly, as lookups decide).
pub fn is_expired(meta: &RecordMeta, now_ms: i64) -> bool {
    meta.expiration_ms.is_some_and(|expiration| expiration <= now_ms)
}

/// The records a filter selected, and the entries that are not readable records.
#[derive(Debug, Default)]
pub struct Selection {
    /// Selected records, sorted by key.
    pub records: Vec<RecordMeta>,
    /// (key, reason) of entries that cannot be read; listed only by an empty filter, since
    /// nothing about them can be matched.
    pub unreadable: Vec<(String, String)>,
}

/// The records of `store` that `filter` selects at `now_ms`.
pub fn select(store: &dyn ResultStore, filter: &Filter, now_ms: i64) -> Result<Selection, AdminError> {
    let mut selection = Selection::default();
    for (key, meta) in store.list()? {
        match meta {
            Ok(meta) if filter.matches(&meta, now_ms) => selection.records.push(meta),
            Ok(_) => {}
            Err(e) if filter.is_empty() => selection.unreadable.push((key, e.to_string())),
            Err(_) => {}
        }
    }
    Ok(selection)
}

/// The key of the record named by `given`: the key itself, or the one key starting with it.
pub fn resolve_key(store: &dyn ResultStore, given: &str) -> Result<String, AdminError> {
    if store.read(given).ok().flatten().is_some() {
        return Ok(given.to_owned());
    }
    let matching: Vec<String> =
        store.list()?.into_iter().map(|(key, _)| key).filter(|key| key.starts_with(given)).collect();
    match matching.len() {
        0 => Err(AdminError::NoSuchKey(given.to_owned())),
        1 => Ok(matching.into_iter().next().expect("one key")),
        count => Err(AdminError::AmbiguousKey { prefix: given.to_owned(), count }),
    }
}

/// Removals from this many records up show a progress bar (on a terminal).
const PROGRESS_FROM: usize = 1000;

/// Removes the records under `keys`; returns how many there were.
pub fn remove(store: &dyn ResultStore, keys: &[String]) -> Result<usize, AdminError> {
    let mut removed = 0;
    let progress = crate::progress::Progress::bar(keys.len(), PROGRESS_FROM, "Removing records");
    let outcomes = crate::parallel::map_blocking(keys, |key| {
        let outcome = store.remove(key);
        progress.step();
        outcome
    });
    drop(progress);
    for outcome in outcomes {
        removed += usize::from(outcome?);
    }
    Ok(removed)
}

/// What `cache prune` removes, by reason.
#[derive(Debug, Default)]
pub struct PrunePlan {
    /// Records that have expired.
    pub expired: Vec<RecordMeta>,
    /// Unexpired records whose component is not among the present ones.
    pub missing_component: Vec<RecordMeta>,
    /// (key, reason) of unreadable entries, when asked for.
    pub unreadable: Vec<(String, String)>,
    /// Records removed to fit a size (`--max-size`, [`PrunePlan::fit`]), lowest ranked first.
    pub over_size: Vec<Ranked>,
    /// The readable records the plan keeps.
    pub kept: Vec<RecordMeta>,
}

impl PrunePlan {
    /// Every key to remove.
    pub fn keys(&self) -> Vec<String> {
        let records = self.expired.iter().chain(&self.missing_component).map(|m| m.key.clone());
        let records = records.chain(self.over_size.iter().map(|r| r.meta.key.clone()));
        records.chain(self.unreadable.iter().map(|(key, _)| key.clone())).collect()
    }

    /// Also removes kept records until the rest fit in `max_bytes`, those with the lowest
    /// cost × recent hits (`hits`, by key) per byte first ([`cache_stats::over_size`]).
    pub fn fit(&mut self, max_bytes: u64, hits: &HashMap<String, u64>) {
        let (over_size, kept) = cache_stats::over_size(std::mem::take(&mut self.kept), hits, max_bytes);
        self.over_size.extend(over_size);
        self.kept = kept;
    }
}

/// Decides what to prune at `now_ms`: expired records; with `present` (component digests),
/// records of other components; with `unreadable`, entries that are not readable records.
pub fn plan_prune(
    store: &dyn ResultStore,
    now_ms: i64,
    present: Option<&BTreeSet<String>>,
    unreadable: bool,
) -> Result<PrunePlan, AdminError> {
    let mut plan = PrunePlan::default();
    for (key, meta) in store.list()? {
        match meta {
            Ok(meta) if is_expired(&meta, now_ms) => plan.expired.push(meta),
            Ok(meta) if present.is_some_and(|present| !present.contains(&meta.component_digest)) => {
                plan.missing_component.push(meta)
            }
            Ok(meta) => plan.kept.push(meta),
            Err(e) if unreadable => plan.unreadable.push((key, e.to_string())),
            Err(_) => {}
        }
    }
    Ok(plan)
}

/// What replaying one record gave.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Replay {
    /// The replayed value has the recorded value's digest.
    Match,
    /// The replayed value differs from the recorded one: the task is not deterministic (it
    /// reads the clock, random numbers, or something else than its inputs), or the record
    /// is wrong.
    Differs {
        /// The recorded value's digest, hex.
        recorded_digest: String,
        /// The replayed value's digest, hex.
        replayed_digest: String,
        /// The recorded value as JSON, truncated.
        recorded: String,
        /// The replayed value as JSON, truncated.
        replayed: String,
    },
    /// The record could not be replayed.
    CannotReplay {
        /// Why, and what to do.
        reason: String,
    },
}

/// One replayed record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Replayed {
    /// The record's key.
    pub key: String,
    /// The task's full name.
    pub task: String,
    /// What the replay gave.
    #[serde(flatten)]
    pub outcome: Replay,
}

/// Which records `cache verify` replays.
#[derive(Clone, Debug, Default)]
pub struct VerifySelection {
    /// At most this many, picked at random; none replays every one.
    pub sample: Option<usize>,
    /// Only records of this task (function or full name).
    pub task: Option<String>,
}

/// What `cache verify` found: one entry per replayed record, and how many records of the
/// selection could not be replayed because their task was not `replayable` when written.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verification {
    /// The replayed records, by key.
    pub records: Vec<Replayed>,
    /// Selected records that keep no inputs.
    pub not_replayable: usize,
}

impl Verification {
    /// How many replays matched, differed, and could not run.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |f: fn(&Replay) -> bool| self.records.iter().filter(|r| f(&r.outcome)).count();
        (
            count(|o| matches!(o, Replay::Match)),
            count(|o| matches!(o, Replay::Differs { .. })),
            count(|o| matches!(o, Replay::CannotReplay { .. })),
        )
    }
}

/// The longest value text a mismatch shows, in characters.
pub const SHOWN_VALUE_CHARS: usize = 200;

/// Replays the selected records of `store` whose task kept its inputs (`replayable = true`):
/// each task body runs again in the sandbox of a session of its component (found by digest
/// among `components`, opened by `open_session`) and the value's digest is compared with the
/// recorded one.
pub fn verify(
    store: &dyn ResultStore,
    selection: &VerifySelection,
    components: &[PathBuf],
    open_session: &dyn Fn(&Path) -> Result<Arc<Session>, String>,
) -> Result<Verification, AdminError> {
    let mut verification = Verification::default();
    let mut replayable = Vec::new();
    for (_, meta) in store.list()? {
        let Ok(meta) = meta else { continue };
        if selection.task.as_deref().is_some_and(|task| !task_matches(&meta.task, task)) {
            continue;
        }
        if meta.inputs.is_some() {
            replayable.push(meta);
        } else {
            verification.not_replayable += 1;
        }
    }
    if let Some(n) = selection.sample.filter(|&n| n < replayable.len()) {
        // A fresh random order each time, so repeated samples cover the store.
        let seed = uuid::Uuid::new_v4();
        replayable.sort_by_cached_key(|meta| blake3::hash(format!("{seed}{}", meta.key).as_bytes()).to_hex());
        replayable.truncate(n);
        replayable.sort_by(|a, b| a.key.cmp(&b.key));
    }
    let files = components_by_digest(components)?;
    let mut sessions: std::collections::HashMap<String, Result<Arc<Session>, String>> = Default::default();
    for meta in replayable {
        let outcome = match files.get(&meta.component_digest) {
            None => Replay::CannotReplay {
                reason: format!(
                    "its component {} (digest {}) is not among the components given; pass its folder with                      --components",
                    if meta.component_file.is_empty() { "(unknown)" } else { &meta.component_file },
                    short_key(&meta.component_digest)
                ),
            },
            Some(path) => {
                let session = sessions.entry(meta.component_digest.clone()).or_insert_with(|| open_session(path));
                match session {
                    Ok(session) => replay_one(store, session, &meta),
                    Err(reason) => Replay::CannotReplay { reason: format!("its component cannot be loaded: {reason}") },
                }
            }
        };
        verification.records.push(Replayed { key: meta.key.clone(), task: meta.task.clone(), outcome });
    }
    Ok(verification)
}

/// Replays one record in `session`, which holds its component.
fn replay_one(store: &dyn ResultStore, session: &Arc<Session>, meta: &RecordMeta) -> Replay {
    let cannot = |reason: String| Replay::CannotReplay { reason };
    let route = match session.find_task(&meta.task) {
        Ok(route) => route,
        Err(reason) => return cannot(reason),
    };
    let def = &session.components[route.component].tasks[route.task];
    let params: Vec<_> = def.signature.params.iter().map(|(_, ty)| ty.clone()).collect();
    let inputs = match &meta.inputs {
        Some(record::StoredInputs::Inline(bytes)) => bytes.clone(),
        Some(record::StoredInputs::ByDigest { digest, .. }) => match store.read_value(digest) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return cannot("its inputs, kept apart by digest, are missing from value storage".into()),
            Err(e) => return cannot(format!("its inputs cannot be read: {e}")),
        },
        None => return cannot("it keeps no inputs".into()),
    };
    let args = match record::decode_inputs(&inputs, &params) {
        Ok(args) => args,
        Err(e) => return cannot(format!("its inputs do not fit the task's parameters: {e}")),
    };
    let replayed = match session.replay(route, &args) {
        Ok(value) => value,
        Err(reason) => return cannot(format!("the task failed: {reason}")),
    };
    let digest = record::value_digest(&replayed);
    if *digest.as_bytes() == meta.value_digest {
        return Replay::Match;
    }
    let recorded = match store.read(&meta.key).map(|bytes| bytes.map(|b| record::decode(&b, &meta.value_type))) {
        Ok(Some(Ok(record))) => shown(&record.value, &meta.value_type),
        Ok(Some(Err(e))) => format!("(unreadable: {e})"),
        Ok(None) => "(removed meanwhile)".to_owned(),
        Err(e) => format!("(unreadable: {e})"),
    };
    Replay::Differs {
        recorded_digest: blake3::Hash::from_bytes(meta.value_digest).to_hex().to_string(),
        replayed_digest: digest.to_hex().to_string(),
        recorded,
        replayed: shown(&replayed, &meta.value_type),
    }
}

/// A value as JSON, cut at [`SHOWN_VALUE_CHARS`] characters.
fn shown(value: &Value, ty: &crate::value::Ty) -> String {
    let text = value.to_json(ty).map(|json| json.to_string()).unwrap_or_else(|e| format!("(not JSON: {e})"));
    match text.char_indices().nth(SHOWN_VALUE_CHARS) {
        Some((cut, _)) => format!("{}… ({} characters)", &text[..cut], text.chars().count()),
        None => text,
    }
}

/// The `.wasm` files at `paths` (files, and every `.wasm` file under each folder), by their
/// hex digest.
pub fn components_by_digest(paths: &[PathBuf]) -> Result<std::collections::HashMap<String, PathBuf>, AdminError> {
    let mut files = std::collections::HashMap::new();
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(&path).map_err(|source| AdminError::Component { path: path.clone(), source })?;
            for entry in entries {
                let entry = entry.map_err(|source| AdminError::Component { path: path.clone(), source })?;
                let child = entry.path();
                if child.is_dir() || child.extension().is_some_and(|ext| ext == "wasm") {
                    pending.push(child);
                }
            }
        } else {
            files.insert(file_digest(&path)?, path);
        }
    }
    Ok(files)
}

/// BLAKE3 of a component file, in hex, as records store it.
pub fn file_digest(path: &Path) -> Result<String, AdminError> {
    let bytes = std::fs::read(path).map_err(|source| AdminError::Component { path: path.to_owned(), source })?;
    Ok(blake3::hash(&bytes).to_hex().to_string())
}

/// The digests of the components at `paths`: `.wasm` files, and every `.wasm` file under
/// each folder.
pub fn component_digests(paths: &[PathBuf]) -> Result<BTreeSet<String>, AdminError> {
    Ok(components_by_digest(paths)?.into_keys().collect())
}

/// Why a call would or would not be served from the cache.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verdict {
    /// A usable record is under the key.
    Hit,
    /// No record is under the key.
    Miss,
    /// The record under the key expired at `expiration_ms`.
    Expired {
        /// When it expired, unix milliseconds.
        expiration_ms: i64,
    },
    /// The record under the key cannot be used.
    Unreadable {
        /// Why.
        reason: String,
    },
    /// The call has no key, so it is never cached.
    NoKey {
        /// Why.
        reason: String,
    },
    /// `refresh_cache` is set: the task always runs and overwrites the record.
    Refresh,
}

/// How one part of the call's key compares with the nearest record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartStatus {
    /// The record has the same part key.
    Same,
    /// The record has this part with another key.
    Differs,
    /// The record's key had no such part.
    New,
    /// The record's key had this part; the call's key has not.
    Gone,
    /// There is no record of the task to compare with.
    NoRecord,
}

/// One part of the key, compared.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartExplanation {
    /// The policy part: `INPUTS`, `TASK_SOURCE`, `RUN_ID`, `FLOW_PARAMETERS` or `KEY_FN`.
    pub part: String,
    /// This call's part key (none for a part only the record has).
    pub key: Option<String>,
    /// How it compares.
    pub status: PartStatus,
    /// What differs, one phrase per difference.
    pub reasons: Vec<String>,
}

/// The record of the task closest to the call: the one sharing the most part keys.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NearestRecord {
    /// Its key.
    pub key: String,
    /// When it was written, unix milliseconds.
    pub created_ms: i64,
    /// When it expires, unix milliseconds.
    pub expiration_ms: Option<i64>,
    /// The policy it was written under.
    pub policy: String,
}

/// Everything `cache explain` says about one call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Explanation {
    /// The task's full name.
    pub task: String,
    /// The task's policy now.
    pub policy: String,
    /// The key the call would use.
    pub key: Option<String>,
    /// Hit, miss and why.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The key's parts compared with the nearest record.
    pub parts: Vec<PartExplanation>,
    /// The nearest record of the task, when the call misses or has none to compare with.
    pub nearest: Option<NearestRecord>,
    /// Every difference, in part order, e.g. `INPUTS.x differs`.
    pub reasons: Vec<String>,
    /// What else matters for the verdict (runs outside a flow, policies without a key).
    pub notes: Vec<String>,
}

/// What [`explain`] compares.
pub struct ExplainInput<'a> {
    /// The task's full name.
    pub task: &'a str,
    /// The task's policy expression.
    pub policy: &'a str,
    /// The computed key, as [`crate::run::Session::compute_key`] gave it.
    pub cache_key: &'a Result<Option<CacheKey>, String>,
    /// The store's answer for the key (none when there is no key or refresh skips the lookup).
    pub lookup: Option<Lookup>,
    /// Whether `refresh_cache` applies, so the lookup is skipped.
    pub refresh: bool,
    /// The flow run the call is explained in, if any (`--flow-run-id`).
    pub flow_run_id: Option<&'a str>,
    /// Every readable record of the store (the task's are picked here).
    pub records: &'a [RecordMeta],
    /// Each argument's value as JSON text, to say what it is now.
    pub args_json: &'a [(String, String)],
}

/// Explains whether the call would hit, and what differs from the nearest record.
pub fn explain(input: ExplainInput<'_>) -> Explanation {
    let mut notes = Vec::new();
    let parts: &[KeyPart] = match input.cache_key {
        Ok(Some(cache_key)) => &cache_key.parts,
        _ => &[],
    };
    let key = match input.cache_key {
        Ok(Some(cache_key)) => cache_key.key.clone(),
        _ => None,
    };
    let verdict = match (input.cache_key, &key) {
        (Err(reason), _) => {
            Verdict::NoKey { reason: format!("no key can be computed ({reason}), so the task runs uncached") }
        }
        (Ok(None), _) => {
            Verdict::NoKey { reason: format!("the policy {} gives no key, so the task is never cached", input.policy) }
        }
        (Ok(Some(_)), None) => Verdict::NoKey {
            reason: "every part of the policy gave no key (INPUTS of a task without parameters, FLOW_PARAMETERS \
                outside a flow run, or KEY_FN returning none), so the task runs uncached"
                .into(),
        },
        (Ok(Some(_)), Some(_)) if input.refresh => Verdict::Refresh,
        (Ok(Some(_)), Some(_)) => match &input.lookup {
            Some(Lookup::Hit(_)) => Verdict::Hit,
            Some(Lookup::Expired { expiration_ms }) => Verdict::Expired { expiration_ms: *expiration_ms },
            Some(Lookup::Unreadable { reason }) => Verdict::Unreadable { reason: reason.clone() },
            Some(Lookup::Miss) | None => Verdict::Miss,
        },
    };
    if parts.iter().any(|p| p.name == "RUN_ID") && input.flow_run_id.is_none() {
        notes.push(
            "explain runs outside a flow run, where RUN_ID is a new id every time: a policy with RUN_ID (DEFAULT has \
                it) only hits within one flow run (--flow-run-id ID explains the call as if inside that run)"
                .into(),
        );
    }
    let nearest = nearest_record(input.task, key.as_deref(), parts, input.records);
    if nearest.is_none() && matches!(verdict, Verdict::Miss) && key.is_some() {
        notes.push("the store has no record of this task".into());
    }
    let mut explained = Vec::new();
    let mut reasons = Vec::new();
    for part in parts {
        let (status, why) = match nearest {
            None => (PartStatus::NoRecord, Vec::new()),
            Some(record) => match record.parts.iter().find(|p| p.name == part.name) {
                Some(old) if old.key == part.key => (PartStatus::Same, Vec::new()),
                Some(old) => (PartStatus::Differs, part_differences(part, old, &input)),
                None => (
                    PartStatus::New,
                    vec![format!(
                        "{} is not part of the record's key (it was written under the policy {})",
                        part.name,
                        policy_or_unknown(record)
                    )],
                ),
            },
        };
        reasons.extend(why.iter().cloned());
        explained.push(PartExplanation { part: part.name.clone(), key: Some(part.key.clone()), status, reasons: why });
    }
    if let Some(record) = nearest {
        for old in record.parts.iter().filter(|old| !parts.iter().any(|p| p.name == old.name)) {
            let why = vec![format!(
                "{} was part of the record's key but gives none for this call (the policy is now {})",
                old.name, input.policy
            )];
            reasons.extend(why.iter().cloned());
            explained.push(PartExplanation {
                part: old.name.clone(),
                key: None,
                status: PartStatus::Gone,
                reasons: why,
            });
        }
    }
    Explanation {
        task: input.task.to_owned(),
        policy: input.policy.to_owned(),
        key,
        verdict,
        parts: explained,
        nearest: nearest.map(|record| NearestRecord {
            key: record.key.clone(),
            created_ms: record.created_ms,
            expiration_ms: record.expiration_ms,
            policy: record.policy.clone(),
        }),
        reasons,
        notes,
    }
}

fn policy_or_unknown(record: &RecordMeta) -> &str {
    if record.policy.is_empty() {
        "(not recorded)"
    } else {
        &record.policy
    }
}

/// The task's record under `key` if there is one, else the one sharing the most part keys,
/// the newest on a tie.
fn nearest_record<'r>(
    task: &str,
    key: Option<&str>,
    parts: &[KeyPart],
    records: &'r [RecordMeta],
) -> Option<&'r RecordMeta> {
    let of_task = records.iter().filter(|r| r.task == task);
    if let Some(exact) = records.iter().find(|r| r.task == task && Some(r.key.as_str()) == key) {
        return Some(exact);
    }
    of_task.max_by_key(|record| {
        let shared =
            parts.iter().filter(|p| record.parts.iter().any(|old| old.name == p.name && old.key == p.key)).count();
        let shared_detail = parts
            .iter()
            .flat_map(|p| p.detail.iter().map(move |d| (&p.name, d)))
            .filter(|(name, d)| record.parts.iter().any(|old| &old.name == *name && old.detail.contains(d)))
            .count();
        (shared, shared_detail, record.created_ms)
    })
}

/// What differs in one part, as phrases naming the argument, component or run.
fn part_differences(part: &KeyPart, old: &KeyPartMeta, input: &ExplainInput<'_>) -> Vec<String> {
    let detail_of =
        |name: &str, detail: &[(String, String)]| detail.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    match part.name.as_str() {
        "INPUTS" | "FLOW_PARAMETERS" => {
            let mut out = Vec::new();
            for (name, digest) in &part.detail {
                let now = if part.name == "INPUTS" {
                    input
                        .args_json
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, json)| format!(" (now {json})"))
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                match detail_of(name, &old.detail) {
                    Some(old_digest) if &old_digest == digest => {}
                    Some(_) => out.push(format!("{}.{name} differs{now}", part.name)),
                    None => out.push(format!("{}.{name} is not in the record's key{now}", part.name)),
                }
            }
            for (name, _) in &old.detail {
                if detail_of(name, &part.detail).is_none() {
                    out.push(format!("{}.{name} is in the record's key, not in this call's", part.name));
                }
            }
            if out.is_empty() {
                out.push(format!("{} differs", part.name));
            }
            out
        }
        "TASK_SOURCE" => {
            let now = detail_of("component", &part.detail).unwrap_or_default();
            let then = detail_of("component", &old.detail).unwrap_or_default();
            if now != then {
                vec![format!(
                    "TASK_SOURCE differs: component rebuilt (the record is from component {}, this one is {})",
                    short_key(&then),
                    short_key(&now)
                )]
            } else {
                vec!["TASK_SOURCE differs".into()]
            }
        }
        "RUN_ID" => match input.flow_run_id {
            Some(run) => {
                vec![format!("RUN_ID differs: the record is from flow run {}, this is flow run {run}", old.key)]
            }
            None => vec![format!(
                "RUN_ID differs: outside a flow run RUN_ID is a new id; the record is from flow run {} (pass \
                    --flow-run-id {} to explain as if inside it)",
                old.key, old.key
            )],
        },
        "KEY_FN" => {
            vec![format!("KEY_FN differs: the key function returned {:?}, the record's was {:?}", part.key, old.key)]
        }
        other => vec![format!("{other} differs")],
    }
}

/// A store opened for a cache command, as `--storage` and `--key-storage` name it.
pub struct AdminStore {
    store: Arc<dyn ResultStore>,
    /// The folder of a plain local store: key stores elsewhere may keep their values in it.
    local_root: Option<PathBuf>,
}

impl AdminStore {
    /// The store.
    pub fn store(&self) -> &dyn ResultStore {
        self.store.as_ref()
    }

    /// Deletes stored values that no record references any more and returns how many
    /// (`cache prune`): those of key storage, including the values other key stores keep in
    /// a plain local result folder.
    pub fn collect_garbage(&self) -> Result<usize, StoreError> {
        match &self.local_root {
            Some(root) => match SplitStore::existing(root) {
                Some(values) => values.collect_garbage_older_than(split::GARBAGE_GRACE),
                None => Ok(0),
            },
            None => self.store.collect_garbage(),
        }
    }
}

/// The store a cache command works on: `storage` (a folder or `s3://…`; default: the local
/// storage path of `settings`), with key records in `key_storage` when it is given (both
/// folders, or both `s3://…`). `config`'s `[s3]` table says how to reach object storage.
pub fn open_store(
    storage: Option<&Path>,
    key_storage: Option<&Path>,
    settings: &Settings,
    config: Option<&ConfigFile>,
) -> Result<AdminStore, AdminError> {
    let root = storage.unwrap_or(&settings.local_storage_path);
    let is_object = |path: &Path| path.to_str().is_some_and(object::is_object_storage);
    let Some(keys) = key_storage else {
        let local_root = (!is_object(root)).then(|| root.to_owned());
        return Ok(AdminStore { store: open_storage(root, settings, config)?, local_root });
    };
    let store: Arc<dyn ResultStore> = match (is_object(keys), is_object(root)) {
        (true, true) => {
            let logger = Arc::new(Logger::stderr(Level::Warning));
            crate::run::object_store(config, settings, &logger, root.to_str(), keys.to_str())?
        }
        (false, false) => Arc::new(SplitStore::open(keys, root)?),
        _ => return Err(AdminError::MixedStorage { keys: keys.to_owned(), results: root.to_owned() }),
    };
    Ok(AdminStore { store, local_root: None })
}

/// The store at `root`: `s3://…` or a folder.
pub fn open_storage(
    root: &Path,
    settings: &Settings,
    config: Option<&ConfigFile>,
) -> Result<Arc<dyn ResultStore>, StoreError> {
    if let Some(spec) = root.to_str().filter(|spec| object::is_object_storage(spec)) {
        let logger = Arc::new(Logger::stderr(Level::Warning));
        return Ok(crate::run::object_store(config, settings, &logger, Some(spec), None)?);
    }
    Ok(Arc::new(LocalStore::open(root)?))
}

/// One call for [`explain_call`]: a task of the session and its typed arguments.
pub struct Call<'a> {
    /// The task.
    pub route: Route,
    /// Its arguments, in parameter order.
    pub args: &'a [Value],
    /// The flow run to explain the call in (`--flow-run-id`); none for a standalone call.
    pub flow_run_id: Option<&'a str>,
    /// The store to look in instead of the one the task's options name (`--storage`).
    pub storage: Option<&'a Path>,
}

/// Explains whether `call` would hit: its key as a task run would compute it, the lookup in
/// the store its task writes to, and what differs from the nearest record of the task.
/// Returns the explanation and the store's description.
pub fn explain_call(session: &Arc<Session>, call: Call<'_>) -> Result<(Explanation, String), AdminError> {
    let def = &session.components[call.route.component].tasks[call.route.task];
    let args_json: Vec<(String, String)> = call
        .args
        .iter()
        .zip(&def.signature.params)
        .map(|(value, (name, ty))| (name.clone(), value.to_json(ty).map(|j| j.to_string()).unwrap_or_default()))
        .collect();
    let resolved = session.task_options(call.route);
    let caller = Caller {
        flow_run: call.flow_run_id.map(|id| {
            Arc::new(FlowRunCtx {
                id: id.to_owned(),
                name: "explain".into(),
                parameter_digests: Vec::new(),
                persist_result: false,
                started: std::time::Instant::now(),
            })
        }),
        task_run: None,
        depth: 0,
        txn: None,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let task_run = TaskRunCtx {
        name: format!("{}-{}", def.function, &id[..3]),
        id,
        task: def.function.clone(),
        persist_result: false,
    };
    let cache_key = session.compute_key(call.route, &task_run, &caller, call.args);
    let store = match call.storage {
        Some(dir) => open_storage(dir, &session.settings, session.config.as_ref())?,
        None => session.result_store(resolved.result_storage.as_deref(), resolved.key_storage.as_deref())?,
    };
    let refresh = options::overwrite(resolved.refresh_cache, &session.settings);
    let mut reads_change = None;
    let lookup = match &cache_key {
        Ok(Some(k)) if !refresh => k.key.as_ref().map(|key| {
            let (found, change) =
                session.lookup_checking_reads(call.route, store.as_ref(), key, &stored_type(&def.signature.result));
            reads_change = change;
            found
        }),
        _ => None,
    };
    // A record this host would not trust is a miss for it, as a task run would find.
    let lookup = match lookup {
        Some(Lookup::Hit(record)) => match session.trust.judge(&record.meta) {
            trust::Verdict::Refused { reason } => {
                Some(Lookup::Unreadable { reason: format!("it is not trusted: {reason}") })
            }
            _ => Some(Lookup::Hit(record)),
        },
        other => other,
    };
    let records: Vec<RecordMeta> = store.list()?.into_iter().filter_map(|(_, meta)| meta.ok()).collect();
    let policy = resolved.policy.to_string();
    let mut explanation = explain(ExplainInput {
        task: &def.full_name,
        policy: &policy,
        cache_key: &cache_key,
        lookup,
        refresh,
        flow_run_id: call.flow_run_id,
        records: &records,
        args_json: &args_json,
    });
    // The READS part's key is the same for every call: what differs is what the record's
    // read set names (see `run::reads`).
    if let Some(change) = reads_change {
        let reason = format!("READS: {change}");
        explanation.reasons.push(reason.clone());
        if let Some(part) = explanation.parts.iter_mut().find(|p| p.part == crate::policy::Part::Reads.name()) {
            part.status = PartStatus::Differs;
            part.reasons.push(reason);
        }
    }
    Ok((explanation, store.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;
    use crate::store::{record, KeyPartMeta};
    use crate::value::{Ty, Value};

    const NOW: i64 = 1_700_000_000_000;

    fn meta(
        key: &str,
        task: &str,
        component: &str,
        created_ms: i64,
        expiration_ms: Option<i64>,
        parts: Vec<KeyPartMeta>,
    ) -> RecordMeta {
        let value_bytes = record::encode_value(&Value::S64(2));
        RecordMeta::new(
            key.into(),
            task.into(),
            component.into(),
            parts,
            created_ms,
            expiration_ms,
            Ty::S64,
            &value_bytes,
        )
        .with_origin("INPUTS + TASK_SOURCE".into(), "c.wasm".into())
    }

    fn part(name: &str, key: &str, detail: &[(&str, &str)]) -> KeyPartMeta {
        KeyPartMeta {
            name: name.into(),
            key: key.into(),
            detail: detail.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        }
    }

    fn key_part(name: &str, key: &str, detail: &[(&str, &str)]) -> KeyPart {
        let p = part(name, key, detail);
        KeyPart { name: p.name, key: p.key, detail: p.detail }
    }

    fn store_with(records: &[RecordMeta]) -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        for meta in records {
            let value_bytes = record::encode_value(&Value::S64(2));
            store.write(&meta.key, &record::encode(meta, &value_bytes)).unwrap();
        }
        (dir, store)
    }

    #[test]
    fn filters_by_task_component_age_and_expiry() {
        let a = meta("a", "p:q/tasks#add-one", "aabb", NOW - 10_000, None, vec![]);
        let b = meta("b", "p:q/tasks#double", "ccdd", NOW - 100, Some(NOW), vec![]);
        let pick = |filter: Filter| -> Vec<&str> {
            [&a, &b].into_iter().filter(|m| filter.matches(m, NOW)).map(|m| m.key.as_str()).collect()
        };
        assert_eq!(pick(Filter::default()), ["a", "b"]);
        assert_eq!(pick(Filter { task: Some("add-one".into()), ..Filter::default() }), ["a"]);
        assert_eq!(pick(Filter { task: Some("p:q/tasks#double".into()), ..Filter::default() }), ["b"]);
        assert_eq!(pick(Filter { task: Some("tasks#double".into()), ..Filter::default() }), Vec::<&str>::new());
        assert_eq!(pick(Filter { component: Some("cc".into()), ..Filter::default() }), ["b"]);
        assert_eq!(pick(Filter { older_than: Some(Duration::from_secs(1)), ..Filter::default() }), ["a"]);
        assert_eq!(pick(Filter { newer_than: Some(Duration::from_secs(1)), ..Filter::default() }), ["b"]);
        assert_eq!(pick(Filter { expired: true, ..Filter::default() }), ["b"]);
    }

    #[test]
    fn keys_resolve_exactly_or_by_a_unique_prefix() {
        let (_dir, store) = store_with(&[
            meta("abc1", "t", "d", NOW, None, vec![]),
            meta("abc2", "t", "d", NOW, None, vec![]),
            meta("abc", "t", "d", NOW, None, vec![]),
        ]);
        assert_eq!(resolve_key(&store, "abc").unwrap(), "abc");
        assert_eq!(resolve_key(&store, "abc1").unwrap(), "abc1");
        assert!(matches!(resolve_key(&store, "ab"), Err(AdminError::AmbiguousKey { count: 3, .. })));
        assert!(matches!(resolve_key(&store, "x"), Err(AdminError::NoSuchKey(_))));
    }

    #[test]
    fn prune_takes_expired_and_missing_component_records() {
        let (_dir, store) = store_with(&[
            meta("expired", "t", "gone", NOW - 5, Some(NOW - 1), vec![]),
            meta("fresh", "t", "here", NOW - 5, Some(NOW + 1), vec![]),
            meta("orphan", "t", "gone", NOW - 5, None, vec![]),
        ]);
        std::fs::write(store.root().join("junk"), b"junk").unwrap();
        let plan = plan_prune(&store, NOW, None, false).unwrap();
        assert_eq!(plan.keys(), ["expired"]);
        let present = BTreeSet::from(["here".to_string()]);
        let plan = plan_prune(&store, NOW, Some(&present), true).unwrap();
        assert_eq!(plan.keys(), ["expired", "orphan", "junk"]);
        assert_eq!(remove(&store, &plan.keys()).unwrap(), 3);
        assert_eq!(store.list().unwrap().len(), 1);
    }

    fn explain_against(records: &[RecordMeta], parts: Vec<KeyPart>, flow_run_id: Option<&str>) -> Explanation {
        let cache_key = Ok(Some(CacheKey { key: Some("new".into()), parts }));
        explain(ExplainInput {
            task: "p:q/tasks#add-one",
            policy: "DEFAULT",
            cache_key: &cache_key,
            lookup: Some(Lookup::Miss),
            refresh: false,
            flow_run_id,
            records,
            args_json: &[("x".into(), "5".into())],
        })
    }

    #[test]
    fn explain_names_the_argument_and_component_that_changed() {
        let old = meta(
            "old",
            "p:q/tasks#add-one",
            "aaaa",
            NOW,
            None,
            vec![
                part("INPUTS", "i1", &[("x", "d1"), ("y", "d2")]),
                part("TASK_SOURCE", "s1", &[("component", "aaaa")]),
            ],
        );
        let other_task = meta("other", "p:q/tasks#double", "aaaa", NOW, None, old.parts.clone());
        let e = explain_against(
            &[old, other_task],
            vec![
                key_part("INPUTS", "i2", &[("x", "d9"), ("y", "d2")]),
                key_part("TASK_SOURCE", "s2", &[("component", "bbbb")]),
            ],
            None,
        );
        assert_eq!(e.verdict, Verdict::Miss);
        assert_eq!(e.nearest.as_ref().unwrap().key, "old");
        assert_eq!(
            e.reasons,
            [
                "INPUTS.x differs (now 5)",
                "TASK_SOURCE differs: component rebuilt (the record is from component aaaa, this one is bbbb)"
            ]
        );
    }

    #[test]
    fn explain_picks_the_record_sharing_most_parts() {
        let far = meta(
            "far",
            "p:q/tasks#add-one",
            "a",
            NOW + 5,
            None,
            vec![part("INPUTS", "i9", &[]), part("TASK_SOURCE", "s9", &[])],
        );
        let near = meta(
            "near",
            "p:q/tasks#add-one",
            "a",
            NOW,
            None,
            vec![part("INPUTS", "i1", &[]), part("TASK_SOURCE", "s9", &[])],
        );
        let e = explain_against(
            &[far, near],
            vec![key_part("INPUTS", "i1", &[]), key_part("TASK_SOURCE", "s1", &[])],
            None,
        );
        assert_eq!(e.nearest.unwrap().key, "near");
        assert_eq!(e.parts[0].status, PartStatus::Same);
        assert_eq!(e.parts[1].status, PartStatus::Differs);
    }

    #[test]
    fn explain_outside_a_flow_run_says_run_id_only_hits_within_one() {
        let old = meta("old", "p:q/tasks#add-one", "a", NOW, None, vec![part("RUN_ID", "run-1", &[])]);
        let e = explain_against(std::slice::from_ref(&old), vec![key_part("RUN_ID", "fresh", &[])], None);
        assert!(e.reasons[0].starts_with("RUN_ID differs: outside a flow run"), "{:?}", e.reasons);
        assert!(e.reasons[0].contains("--flow-run-id run-1"), "{:?}", e.reasons);
        assert!(e.notes[0].contains("only hits within one flow run"), "{:?}", e.notes);
        let inside = explain_against(&[old], vec![key_part("RUN_ID", "run-2", &[])], Some("run-2"));
        assert_eq!(inside.reasons, ["RUN_ID differs: the record is from flow run run-1, this is flow run run-2"]);
        assert!(inside.notes.is_empty());
    }

    #[test]
    fn explain_reports_parts_added_or_dropped_by_a_policy_change() {
        let old =
            meta("old", "p:q/tasks#add-one", "a", NOW, None, vec![part("INPUTS", "i1", &[]), part("RUN_ID", "r", &[])]);
        let e =
            explain_against(&[old], vec![key_part("INPUTS", "i1", &[]), key_part("TASK_SOURCE", "s", &[])], Some("r"));
        let statuses: Vec<_> = e.parts.iter().map(|p| (p.part.as_str(), p.status.clone())).collect();
        assert_eq!(
            statuses,
            [("INPUTS", PartStatus::Same), ("TASK_SOURCE", PartStatus::New), ("RUN_ID", PartStatus::Gone)]
        );
    }

    #[test]
    fn explain_without_a_key_or_with_refresh() {
        let none: Result<Option<CacheKey>, String> = Ok(None);
        let input = |cache_key, refresh| ExplainInput {
            task: "t",
            policy: "NONE",
            cache_key,
            lookup: None,
            refresh,
            flow_run_id: None,
            records: &[],
            args_json: &[],
        };
        assert!(matches!(explain(input(&none, false)).verdict, Verdict::NoKey { .. }));
        let failed: Result<Option<CacheKey>, String> = Err("boom".into());
        match explain(input(&failed, false)).verdict {
            Verdict::NoKey { reason } => assert!(reason.contains("boom"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let keyed = Ok(Some(CacheKey { key: Some("k".into()), parts: vec![] }));
        assert_eq!(explain(input(&keyed, true)).verdict, Verdict::Refresh);
    }
}
