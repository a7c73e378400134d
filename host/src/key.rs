//! Cache keys computed from a [`Policy`] (DESIGN §3).
//!
//! Each part of the policy gives an optional key; None parts are dropped and no parts left
//! means no key at all (no lookup, no lock, no write). One part's key is used as it is;
//! several are combined by hashing their keys **sorted**, so `A + B` and `B + A` give one key
//! (Prefect keeps policy order; cachehost differs on purpose). Hashed keys are lower-case hex
//! BLAKE3 digests of a versioned, length-prefixed encoding pinned by the golden tests below.

use thiserror::Error;

use crate::policy::{Part, Policy};

/// Version of the byte layouts hashed below. Changing any layout must change this byte.
const FORMAT: u8 = 1;

/// What a hash stands for, so keys of different parts over the same bytes never coincide.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Domain {
    Inputs = b'I',
    TaskSource = b'S',
    FlowParameters = b'F',
    Compound = b'C',
    Reads = b'R',
}

/// Everything a key can be computed from, for one task call.
pub struct KeyInputs<'a> {
    /// Each argument's name and the digest of its canonically encoded typed value.
    pub args: &'a [(String, blake3::Hash)],
    /// BLAKE3 of the providing component's bytes.
    pub component_digest: &'a blake3::Hash,
    /// The task's full name, e.g. `example:math/tasks#add-one`.
    pub task_name: &'a str,
    /// The flow run's parameters as (name, digest); None outside a flow.
    pub flow_parameters: Option<&'a [(String, blake3::Hash)]>,
    /// The flow run id, or the task run id of a standalone task run.
    pub run_id: &'a str,
    /// Calls the component's key function; called only when the policy has `KEY_FN`.
    pub key_fn: &'a mut dyn FnMut() -> Result<Option<String>, String>,
}

/// A computed cache key and the part keys it was made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKey {
    /// The key, or None when every part gave none (the call is not cached).
    pub key: Option<String>,
    /// The parts that gave a key, in the policy's order.
    pub parts: Vec<KeyPart>,
}

/// One part's contribution to a cache key, kept so `cachehost cache explain` can diff them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPart {
    /// The policy name: `INPUTS`, `TASK_SOURCE`, `FLOW_PARAMETERS`, `RUN_ID` or `KEY_FN`.
    pub name: String,
    /// This part's key.
    pub key: String,
    /// What went into it: for `INPUTS` each included argument and its digest in hex.
    pub detail: Vec<(String, String)>,
}

/// Why no key could be computed; the host logs it at ERROR and runs the task uncached.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The component's key function failed (reference 13.2).
    #[error("the key function failed: {0}")]
    KeyFnFailed(String),
    /// The computed key cannot name a storage entry.
    #[error(transparent)]
    Refused(#[from] RefusedKey),
}

/// A key that cannot be used as a storage name; the task runs uncached.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RefusedKey {
    /// The key is the empty string.
    #[error("cache key is refused: it is empty")]
    Empty,
    /// The key starts with `/`.
    #[error("cache key {0:?} is refused: it is an absolute path")]
    Absolute(String),
    /// The key has an empty, `.` or `..` segment between slashes.
    #[error("cache key {key:?} is refused: its segment {segment:?} would leave or alias a folder")]
    BadSegment {
        /// The whole key.
        key: String,
        /// The offending segment: empty, `.` or `..`.
        segment: String,
    },
    /// The key contains a NUL character.
    #[error("cache key {0:?} is refused: it contains a NUL character")]
    Nul(String),
    /// The key contains a backslash, a path separator on Windows.
    #[error("cache key {0:?} is refused: it contains a backslash")]
    Backslash(String),
}

/// Computes the cache key of one task call under `policy`.
///
/// The result has passed [`check_key`], so it can name a storage entry.
pub fn compute(policy: &Policy, inputs: KeyInputs<'_>) -> Result<CacheKey, KeyError> {
    let mut parts = Vec::new();
    for part in &policy.parts {
        let keyed = match part {
            Part::Inputs { exclude } => inputs_part(inputs.args, |name| exclude.contains(name)),
            Part::TaskSource => Some(task_source_part(inputs.component_digest, inputs.task_name)),
            Part::FlowParameters => inputs.flow_parameters.and_then(flow_parameters_part),
            Part::RunId => Some(KeyPart { name: "RUN_ID".into(), key: inputs.run_id.to_string(), detail: Vec::new() }),
            Part::KeyFn => (inputs.key_fn)().map_err(KeyError::KeyFnFailed)?.map(|key| KeyPart {
                name: "KEY_FN".into(),
                key,
                detail: Vec::new(),
            }),
            // One key for every call: it keeps a READS record apart from one without it, and
            // what the run read is checked at lookup against the record's read set, which
            // the record keeps in this part's detail.
            Part::Reads => Some(KeyPart { name: "READS".into(), key: hex(&start(Domain::Reads)), detail: Vec::new() }),
        };
        parts.extend(keyed);
    }
    let key = match parts.as_slice() {
        [] => None,
        [single] => Some(single.key.clone()),
        several => {
            let mut keys: Vec<&str> = several.iter().map(|part| part.key.as_str()).collect();
            keys.sort_unstable();
            let mut hasher = start(Domain::Compound);
            for key in keys {
                put_bytes(&mut hasher, key.as_bytes());
            }
            Some(hex(&hasher))
        }
    };
    if let Some(key) = &key {
        check_key(key)?;
    }
    Ok(CacheKey { key, parts })
}

/// `INPUTS`: None for a task without parameters (Prefect 3.1), else the included arguments.
fn inputs_part(args: &[(String, blake3::Hash)], excluded: impl Fn(&str) -> bool) -> Option<KeyPart> {
    if args.is_empty() {
        return None;
    }
    let included: Vec<&(String, blake3::Hash)> = args.iter().filter(|(name, _)| !excluded(name)).collect();
    Some(named_digests_part("INPUTS", Domain::Inputs, included))
}

/// `FLOW_PARAMETERS`: None outside a flow or for a flow without parameters.
fn flow_parameters_part(params: &[(String, blake3::Hash)]) -> Option<KeyPart> {
    if params.is_empty() {
        return None;
    }
    Some(named_digests_part("FLOW_PARAMETERS", Domain::FlowParameters, params.iter().collect()))
}

/// Hashes (name, digest) pairs sorted by name: each name length-prefixed, then its 32 bytes.
fn named_digests_part(name: &str, domain: Domain, mut pairs: Vec<&(String, blake3::Hash)>) -> KeyPart {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = start(domain);
    for (arg, digest) in &pairs {
        put_bytes(&mut hasher, arg.as_bytes());
        hasher.update(digest.as_bytes());
    }
    KeyPart {
        name: name.into(),
        key: hex(&hasher),
        detail: pairs.iter().map(|(arg, digest)| (arg.clone(), digest.to_hex().to_string())).collect(),
    }
}

/// `TASK_SOURCE`: the component's digest and the task's name, so sibling tasks never share it.
fn task_source_part(component_digest: &blake3::Hash, task_name: &str) -> KeyPart {
    let mut hasher = start(Domain::TaskSource);
    hasher.update(component_digest.as_bytes());
    put_bytes(&mut hasher, task_name.as_bytes());
    KeyPart {
        name: "TASK_SOURCE".into(),
        key: hex(&hasher),
        detail: vec![
            ("component".into(), component_digest.to_hex().to_string()),
            ("task".into(), task_name.to_string()),
        ],
    }
}

fn start(domain: Domain) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[FORMAT, domain as u8]);
    hasher
}

fn put_bytes(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn hex(hasher: &blake3::Hasher) -> String {
    hasher.finalize().to_hex().to_string()
}

/// Refuses a key that cannot safely name a storage entry; `/` inside a key makes sub-folders.
pub fn check_key(key: &str) -> Result<(), RefusedKey> {
    if key.is_empty() {
        return Err(RefusedKey::Empty);
    }
    if key.contains('\0') {
        return Err(RefusedKey::Nul(key.to_string()));
    }
    if key.contains('\\') {
        return Err(RefusedKey::Backslash(key.to_string()));
    }
    if key.starts_with('/') {
        return Err(RefusedKey::Absolute(key.to_string()));
    }
    if let Some(segment) = key.split('/').find(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(RefusedKey::BadSegment { key: key.to_string(), segment: segment.to_string() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(text: &str) -> blake3::Hash {
        blake3::hash(text.as_bytes())
    }

    fn args(pairs: &[(&str, &str)]) -> Vec<(String, blake3::Hash)> {
        pairs.iter().map(|(name, value)| (name.to_string(), digest(value))).collect()
    }

    /// Fixed inputs for the golden tests; `key_fn` returns `key_fn_result`.
    struct Fixture {
        args: Vec<(String, blake3::Hash)>,
        component: blake3::Hash,
        task: String,
        flow_parameters: Option<Vec<(String, blake3::Hash)>>,
        run_id: String,
        key_fn_result: Result<Option<String>, String>,
        key_fn_calls: usize,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                args: args(&[("x", "1"), ("debug", "true")]),
                component: digest("component bytes"),
                task: "example:math/tasks#add-one".into(),
                flow_parameters: Some(args(&[("p", "1")])),
                run_id: "0190f3c4-7d2a-7a1b-9c3e-5f6a7b8c9d0e".into(),
                key_fn_result: Ok(Some("user/key-1".into())),
                key_fn_calls: 0,
            }
        }

        fn compute(&mut self, policy: &str) -> Result<CacheKey, KeyError> {
            let policy = Policy::parse(policy).unwrap();
            let result = self.key_fn_result.clone();
            let calls = &mut self.key_fn_calls;
            let mut key_fn = || {
                *calls += 1;
                result.clone()
            };
            compute(
                &policy,
                KeyInputs {
                    args: &self.args,
                    component_digest: &self.component,
                    task_name: &self.task,
                    flow_parameters: self.flow_parameters.as_deref(),
                    run_id: &self.run_id,
                    key_fn: &mut key_fn,
                },
            )
        }

        fn key(&mut self, policy: &str) -> Option<String> {
            self.compute(policy).unwrap().key
        }
    }

    #[test]
    fn golden_keys() {
        // These pin the key format: a change here orphans every stored record.
        let mut f = Fixture::new();
        let golden = [
            ("INPUTS", "230097e23891cad0705f73b823c48773966b0c7f6ed6db90b652cdba1b1d9139"),
            ("INPUTS - 'debug'", "9fe4b900c6100e0a164a445bd560697520755ec21bf966e68681aa2caf62eabb"),
            ("INPUTS - 'debug' - 'x'", "00af18c79f93b3bdec652a6444d78541b509ed0a79143e4ed7b60c0bc1b5a4de"),
            ("TASK_SOURCE", "245c1b8937b64dcfdc2e1e36e32c9fdb26d04155a3fd97601f37b0177b571e7a"),
            ("FLOW_PARAMETERS", "d753c1fc4ce4f5d7760df5dc4e8d6882ed671f5e805ba71797bf0323f3ba047d"),
            ("DEFAULT", "1d3ce6cf22c034f91d3f4ef65efc7aecfc1c7f2f44ea6737cbfe3ab8218be6fc"),
            ("KEY_FN + RUN_ID", "d4560dc10fc78e2a6441146d95398b09ec678e9eb38ce7b3e7d98553a8613ade"),
        ];
        let mut wrong = Vec::new();
        for (policy, expected) in golden {
            let actual = f.key(policy).unwrap();
            if actual != expected {
                wrong.push(format!("(\"{policy}\", \"{actual}\"),"));
            }
        }
        assert!(wrong.is_empty(), "keys changed:\n{}", wrong.join("\n"));
    }

    #[test]
    fn key_layouts_match_their_description() {
        // The byte layouts written out by hand, independent of the helpers above.
        let mut f = Fixture::new();
        let mut inputs = vec![1u8, b'I'];
        for (name, value) in [("debug", "true"), ("x", "1")] {
            inputs.extend((name.len() as u64).to_le_bytes());
            inputs.extend(name.as_bytes());
            inputs.extend(digest(value).as_bytes());
        }
        let inputs_key = blake3::hash(&inputs).to_hex().to_string();
        assert_eq!(f.key("INPUTS").unwrap(), inputs_key);

        let mut source = vec![1u8, b'S'];
        source.extend(digest("component bytes").as_bytes());
        source.extend(26u64.to_le_bytes());
        source.extend(b"example:math/tasks#add-one");
        let source_key = blake3::hash(&source).to_hex().to_string();
        assert_eq!(f.key("TASK_SOURCE").unwrap(), source_key);

        let mut sorted = [inputs_key, source_key, f.run_id.clone()];
        sorted.sort();
        let mut compound = vec![1u8, b'C'];
        for key in &sorted {
            compound.extend((key.len() as u64).to_le_bytes());
            compound.extend(key.as_bytes());
        }
        assert_eq!(f.key("DEFAULT").unwrap(), blake3::hash(&compound).to_hex().to_string());
    }

    #[test]
    fn run_id_and_key_fn_keys_are_used_unhashed() {
        let mut f = Fixture::new();
        assert_eq!(f.key("RUN_ID").unwrap(), f.run_id);
        assert_eq!(f.key("KEY_FN").as_deref(), Some("user/key-1"));
    }

    #[test]
    fn compound_keys_ignore_part_order() {
        let mut f = Fixture::new();
        let a = f.key("TASK_SOURCE + RUN_ID");
        assert_eq!(a, f.key("RUN_ID + TASK_SOURCE"));
        // Sorting is of the part *keys*, not of the policy: the same two keys in any parts
        // combine to one key, and a compound differs from each of its parts.
        assert_ne!(a, f.key("TASK_SOURCE"));
        assert_ne!(a, f.key("RUN_ID"));
        let ts = f.compute("TASK_SOURCE").unwrap().parts.remove(0).key;
        let mut keys = [ts.as_str(), f.run_id.as_str()];
        keys.sort();
        let mut hasher = start(Domain::Compound);
        keys.iter().for_each(|k| put_bytes(&mut hasher, k.as_bytes()));
        assert_eq!(a, Some(hex(&hasher)));
    }

    #[test]
    fn inputs_ignore_argument_order_but_not_names() {
        let mut f = Fixture::new();
        let before = f.key("INPUTS");
        f.args.reverse();
        assert_eq!(f.key("INPUTS"), before);
        f.args = args(&[("y", "1"), ("debug", "true")]);
        assert_ne!(f.key("INPUTS"), before);
    }

    #[test]
    fn exclusions_leave_arguments_out() {
        let mut f = Fixture::new();
        let without_debug = f.key("INPUTS - 'debug'");
        f.args = args(&[("x", "1"), ("debug", "false")]);
        assert_eq!(f.key("INPUTS - 'debug'"), without_debug);
        assert_ne!(f.key("INPUTS"), without_debug);
        f.args = args(&[("x", "1")]);
        assert_eq!(f.key("INPUTS"), without_debug);

        let explained = f.compute("INPUTS - 'debug'").unwrap();
        assert_eq!(explained.parts[0].detail, vec![("x".to_string(), digest("1").to_hex().to_string())]);
    }

    #[test]
    fn all_arguments_excluded_give_one_constant_key() {
        let mut f = Fixture::new();
        let all_out = f.key("INPUTS - 'x' - 'debug'").unwrap();
        f.args = args(&[("x", "2"), ("debug", "false")]);
        assert_eq!(f.key("INPUTS - 'x' - 'debug'").unwrap(), all_out);
        let empty = start(Domain::Inputs);
        assert_eq!(all_out, hex(&empty));
    }

    #[test]
    fn inputs_of_a_task_without_parameters_is_no_key() {
        let mut f = Fixture::new();
        f.args.clear();
        let key = f.compute("INPUTS").unwrap();
        assert_eq!(key, CacheKey { key: None, parts: vec![] });
        // In a compound the None part is dropped and the remaining single key is used as is.
        assert_eq!(f.key("INPUTS + TASK_SOURCE"), f.key("TASK_SOURCE"));
    }

    #[test]
    fn flow_parameters_outside_a_flow_or_empty_is_no_key() {
        let mut f = Fixture::new();
        f.flow_parameters = None;
        assert_eq!(f.key("FLOW_PARAMETERS"), None);
        f.flow_parameters = Some(Vec::new());
        assert_eq!(f.key("FLOW_PARAMETERS"), None);
        f.flow_parameters = Some(args(&[("p", "2")]));
        assert!(f.key("FLOW_PARAMETERS").is_some());
    }

    #[test]
    fn none_and_a_none_key_fn_give_no_key() {
        let mut f = Fixture::new();
        assert_eq!(f.key("NONE"), None);
        f.key_fn_result = Ok(None);
        assert_eq!(f.key("KEY_FN"), None);
        assert_eq!(f.key("KEY_FN + RUN_ID").unwrap(), f.run_id);
    }

    #[test]
    fn key_fn_is_called_only_when_the_policy_has_it() {
        let mut f = Fixture::new();
        f.key("DEFAULT");
        assert_eq!(f.key_fn_calls, 0);
        f.key("KEY_FN + INPUTS");
        assert_eq!(f.key_fn_calls, 1);
    }

    #[test]
    fn a_failing_key_fn_is_an_error() {
        let mut f = Fixture::new();
        f.key_fn_result = Err("boom".into());
        let err = f.compute("KEY_FN").unwrap_err();
        assert_eq!(err, KeyError::KeyFnFailed("boom".into()));
        assert_eq!(err.to_string(), "the key function failed: boom");
    }

    #[test]
    fn a_refused_key_fn_result_is_an_error() {
        let mut f = Fixture::new();
        f.key_fn_result = Ok(Some("../escape".into()));
        assert!(matches!(f.compute("KEY_FN"), Err(KeyError::Refused(RefusedKey::BadSegment { .. }))));
        // Hashed into a compound it is only a string, so nothing is refused.
        assert!(f.compute("KEY_FN + TASK_SOURCE").is_ok());
    }

    #[test]
    fn task_source_depends_on_component_and_task() {
        let mut f = Fixture::new();
        let before = f.key("TASK_SOURCE");
        f.task = "example:math/tasks#add-two".into();
        assert_ne!(f.key("TASK_SOURCE"), before);
        f.task = "example:math/tasks#add-one".into();
        f.component = digest("other component bytes");
        assert_ne!(f.key("TASK_SOURCE"), before);
    }

    #[test]
    fn inputs_and_flow_parameters_of_equal_values_differ() {
        let mut f = Fixture::new();
        f.args = args(&[("p", "1")]);
        assert_ne!(f.key("INPUTS"), f.key("FLOW_PARAMETERS"));
    }

    #[test]
    fn keys_are_lower_case_hex() {
        let mut f = Fixture::new();
        for policy in ["INPUTS", "TASK_SOURCE", "FLOW_PARAMETERS", "DEFAULT"] {
            let key = f.key(policy).unwrap();
            assert_eq!(key.len(), 64);
            assert!(key.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{key}");
        }
    }

    #[test]
    fn check_key_refusals() {
        assert_eq!(check_key(""), Err(RefusedKey::Empty));
        assert_eq!(check_key("/etc/passwd"), Err(RefusedKey::Absolute("/etc/passwd".into())));
        for (key, segment) in [("..", ".."), ("a/../b", ".."), ("a/./b", "."), (".", "."), ("a//b", ""), ("a/", "")] {
            assert_eq!(
                check_key(key),
                Err(RefusedKey::BadSegment { key: key.into(), segment: segment.into() }),
                "{key}"
            );
        }
        assert_eq!(check_key("a\0b"), Err(RefusedKey::Nul("a\0b".into())));
        assert_eq!(check_key("a\\..\\b"), Err(RefusedKey::Backslash("a\\..\\b".into())));
        assert_eq!(
            check_key("a/../b").unwrap_err().to_string(),
            "cache key \"a/../b\" is refused: its segment \"..\" would leave or alias a folder"
        );
    }

    #[test]
    fn check_key_accepts_sub_folders_and_dots_inside_names() {
        for key in ["abc", "team/project/key-1", "v1.2", "..hidden", "a.b/c..d"] {
            assert_eq!(check_key(key), Ok(()), "{key}");
        }
    }
}
