//! Trust in a shared cache (DESIGN §9a): the key this host signs its records with, the
//! writers a reader accepts, and the verdict on each record it finds.
//!
//! A record may carry an ed25519 signature over everything a reader acts on
//! ([`record::signed_message`]). Without `trusted_keys` every readable record is a hit, as
//! before signatures existed. With them, only a record whose signature checks and whose
//! signer is trusted (or this host itself, when it signs) is a hit; any other is a miss with
//! one WARNING, and the task runs and overwrites it. `require_signed = false` lets unsigned
//! records through with a WARNING, for migrating a cache written before signing was on.
//!
//! Keys are written as `cachehost-ed25519:<base64 of the 32-byte public key>`; a private key
//! file holds `cachehost-ed25519-secret:<base64 of the 32-byte seed>` and must be readable by
//! its owner only.

use std::collections::HashSet;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::SigningKey;

use crate::settings::Settings;
use crate::store::record::{self, RecordMeta};

/// How a public key is written: this prefix, then its 32 bytes in standard base64.
pub const PUBLIC_PREFIX: &str = "cachehost-ed25519:";
/// How a private key file starts: this prefix, then the 32-byte seed in standard base64.
pub const SECRET_PREFIX: &str = "cachehost-ed25519-secret:";

/// An ed25519 public key: a writer of records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

impl PublicKey {
    /// Parses `cachehost-ed25519:<base64>`; the error says what is wrong with the text.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        let text = text.trim();
        let Some(encoded) = text.strip_prefix(PUBLIC_PREFIX) else {
            return Err(format!("{text:?} does not start with {PUBLIC_PREFIX:?}"));
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("{text:?} is not valid base64 after the prefix: {e}"))?;
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|b: Vec<u8>| format!("{text:?} holds {} bytes, not a 32-byte key", b.len()))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| format!("{text:?} is not a valid ed25519 public key"))?;
        Ok(PublicKey(bytes))
    }

    /// The short form for tables: the prefix and the first 8 base64 characters.
    pub fn short(&self) -> String {
        let text = self.to_string();
        text[..(PUBLIC_PREFIX.len() + 8).min(text.len())].to_owned()
    }
}

/// Why keys or trust settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A key file cannot be read or written.
    #[error("could not {action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "read the signing key".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A private key file that others may read.
    #[error(
        "the signing key {} can be read by its group or others (mode {mode:o}); make it private with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A private key file whose text is not a key.
    #[error("{} is not a cachehost signing key: {reason}; make one with `cachehost key generate`", path.display())]
    BadSecret {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A trusted key that cannot be parsed.
    #[error("{setting} holds a bad key: {reason}; keys look like the output of `cachehost key show`")]
    BadPublic {
        /// The setting (or file and line) it was found in.
        setting: String,
        /// What is wrong.
        reason: String,
    },
    /// The operating system gave no random bytes.
    #[error("could not get random bytes for a new key: {0}")]
    Random(String),
}

/// Makes a new key pair from 32 random bytes of the operating system.
pub fn generate() -> Result<SigningKey, TrustError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| TrustError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes `key` to a new file at `path`, readable and writable by its owner only; refuses
/// to replace an existing file (a lost key cannot be recovered).
pub fn write_key_file(path: &Path, key: &SigningKey) -> Result<(), TrustError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |action| move |source| TrustError::Io { action, path: path.to_owned(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io("create the folder of"))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io("create the signing key"))?;
    let text = format!("{SECRET_PREFIX}{}\n", base64::engine::general_purpose::STANDARD.encode(key.to_bytes()));
    file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io("write the signing key"))
}

/// Reads the private key at `path`, refusing a file its group or others may read.
pub fn read_key_file(path: &Path) -> Result<SigningKey, TrustError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |action| move |source| TrustError::Io { action, path: path.to_owned(), source };
    let mode = std::fs::metadata(path).map_err(io("read the signing key"))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(TrustError::Exposed { path: path.to_owned(), mode: mode & 0o7777 });
    }
    let text = std::fs::read_to_string(path).map_err(io("read the signing key"))?;
    let bad = |reason: &str| TrustError::BadSecret { path: path.to_owned(), reason: reason.to_owned() };
    let encoded = text.trim().strip_prefix(SECRET_PREFIX).ok_or_else(|| bad("it does not start with the prefix"))?;
    let seed = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| bad("it is not base64"))?;
    let seed: [u8; 32] = seed.try_into().map_err(|_| bad("it does not hold 32 bytes"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key of a signing key.
pub fn public_key(key: &SigningKey) -> PublicKey {
    PublicKey(key.verifying_key().to_bytes())
}

/// Who wrote a record, for listings: its signer, or none for an unsigned record.
pub fn signer(meta: &RecordMeta) -> Option<PublicKey> {
    meta.signature.as_ref().map(|s| PublicKey(s.signer))
}

/// A record's signer as text: the key, or `unsigned`.
pub fn signer_text(meta: &RecordMeta) -> String {
    signer(meta).map_or_else(|| "unsigned".to_owned(), |key| key.to_string())
}

/// What this host signs with and whom it trusts, from the settings.
#[derive(Clone, Default)]
pub struct Trust {
    signing: Option<SigningKey>,
    /// Empty: no trust configured, every readable record is a hit.
    trusted: HashSet<[u8; 32]>,
    require_signed: bool,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the private key.
        f.debug_struct("Trust")
            .field("signer", &self.signing.as_ref().map(public_key))
            .field("trusted", &self.trusted.len())
            .field("require_signed", &self.require_signed)
            .finish()
    }
}

/// The verdict on a record found under a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A hit.
    Trusted,
    /// An unsigned record let through by `require_signed = false`: a hit with a WARNING.
    UnsignedAllowed,
    /// A miss with a WARNING giving `reason` (which names the signer, or says "unsigned").
    Refused {
        /// One phrase: why the record is not trusted.
        reason: String,
    },
}

impl Trust {
    /// The trust the settings configure: `signing_key`, `trusted_keys`, `trusted_keys_file`
    /// and `require_signed`. This host's own key is trusted whenever any key is.
    pub fn load(settings: &Settings) -> Result<Trust, TrustError> {
        let signing = settings.signing_key.as_deref().map(read_key_file).transpose()?;
        let mut trusted = HashSet::new();
        for text in &settings.trusted_keys {
            let key = PublicKey::parse(text)
                .map_err(|reason| TrustError::BadPublic { setting: "trusted_keys".into(), reason })?;
            trusted.insert(key.0);
        }
        if let Some(path) = &settings.trusted_keys_file {
            let text = std::fs::read_to_string(path).map_err(|source| TrustError::Io {
                action: "read the trusted keys file",
                path: path.clone(),
                source,
            })?;
            for (number, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                let key = PublicKey::parse(line).map_err(|reason| TrustError::BadPublic {
                    setting: format!("{} line {}", path.display(), number + 1),
                    reason,
                })?;
                trusted.insert(key.0);
            }
        }
        if let (Some(key), false) = (&signing, trusted.is_empty()) {
            trusted.insert(key.verifying_key().to_bytes());
        }
        Ok(Trust { signing, trusted, require_signed: settings.require_signed })
    }

    /// Trust with the given parts (tests and benchmarks).
    pub fn new(signing: Option<SigningKey>, trusted: &[PublicKey], require_signed: bool) -> Trust {
        Trust { signing, trusted: trusted.iter().map(|k| k.0).collect(), require_signed }
    }

    /// Whether any writer is named, so records are judged at all.
    pub fn is_configured(&self) -> bool {
        !self.trusted.is_empty()
    }

    /// The key this host signs with, if any.
    pub fn signing_key(&self) -> Option<PublicKey> {
        self.signing.as_ref().map(public_key)
    }

    /// Signs `meta` when this host has a signing key.
    pub fn sign(&self, meta: &mut RecordMeta) {
        if let Some(key) = &self.signing {
            record::sign(meta, key);
        }
    }

    /// Judges a record found under a key. Costs a hash-set probe, plus one signature check
    /// the first time a decoded record is judged.
    pub fn judge(&self, meta: &RecordMeta) -> Verdict {
        if self.trusted.is_empty() {
            return Verdict::Trusted;
        }
        let Some(signature) = &meta.signature else {
            return if self.require_signed {
                Verdict::Refused { reason: "it is unsigned and require_signed is on".into() }
            } else {
                Verdict::UnsignedAllowed
            };
        };
        let signer = PublicKey(signature.signer);
        if !record::signature_checks(meta) {
            return Verdict::Refused { reason: format!("its signature by {signer} does not check") };
        }
        if !self.trusted.contains(&signature.signer) {
            return Verdict::Refused { reason: format!("it is signed by {signer}, which is not in trusted_keys") };
        }
        Verdict::Trusted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::{encode_key_record, encode_value};
    use crate::value::{Ty, Value};

    fn meta() -> RecordMeta {
        let value_bytes = encode_value(&Value::S32(1));
        RecordMeta::new("k".into(), "t".into(), "d".into(), vec![], 0, None, Ty::S32, &value_bytes)
    }

    /// `meta` as a reader decodes it from a key record.
    fn reread(meta: &RecordMeta) -> RecordMeta {
        record::decode_key_record(&encode_key_record(meta)).unwrap()
    }

    #[test]
    fn public_keys_print_and_parse() {
        let key = public_key(&SigningKey::from_bytes(&[1; 32]));
        let text = key.to_string();
        assert!(text.starts_with("cachehost-ed25519:") && text.len() == 18 + 44, "{text}");
        assert_eq!(PublicKey::parse(&format!("  {text}\n")).unwrap(), key);
        assert!(PublicKey::parse("ed25519:AAAA").unwrap_err().contains("does not start with"));
        assert!(PublicKey::parse("cachehost-ed25519:!!").unwrap_err().contains("not valid base64"));
        assert!(PublicKey::parse("cachehost-ed25519:AAAA").unwrap_err().contains("holds 3 bytes"));
    }

    #[test]
    fn a_key_file_is_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.key");
        let key = generate().unwrap();
        write_key_file(&path, &key).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read_key_file(&path).unwrap().to_bytes(), key.to_bytes());
        let again = write_key_file(&path, &key).unwrap_err();
        assert!(again.to_string().starts_with("could not create the signing key"), "{again}");
        for mode in [0o640, 0o604] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let error = read_key_file(&path).unwrap_err();
            assert!(matches!(error, TrustError::Exposed { mode: m, .. } if m == mode), "{error}");
            assert!(error.to_string().contains("chmod 600"), "{error}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "not a key").unwrap();
        assert!(matches!(read_key_file(&path), Err(TrustError::BadSecret { .. })));
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(generate().unwrap().to_bytes(), generate().unwrap().to_bytes());
    }

    #[test]
    fn without_trusted_keys_every_record_is_trusted() {
        let trust = Trust::new(None, &[], true);
        assert!(!trust.is_configured());
        assert_eq!(trust.judge(&meta()), Verdict::Trusted);
        let mut forged = meta();
        record::sign(&mut forged, &SigningKey::from_bytes(&[2; 32]));
        forged.signature.as_mut().unwrap().signature[0] ^= 1;
        assert_eq!(trust.judge(&reread(&forged)), Verdict::Trusted, "nobody asked for signatures");
    }

    #[test]
    fn with_trusted_keys_only_good_signatures_of_trusted_writers_are_trusted() {
        let ours = SigningKey::from_bytes(&[1; 32]);
        let theirs = SigningKey::from_bytes(&[2; 32]);
        let trust = Trust::new(None, &[public_key(&ours)], true);
        let mut signed = meta();
        record::sign(&mut signed, &ours);
        assert_eq!(trust.judge(&reread(&signed)), Verdict::Trusted);

        let mut other = meta();
        record::sign(&mut other, &theirs);
        let Verdict::Refused { reason } = trust.judge(&reread(&other)) else { panic!("an untrusted signer") };
        assert!(
            reason.contains(&public_key(&theirs).to_string()) && reason.contains("not in trusted_keys"),
            "{reason}"
        );

        let mut flipped = signed.clone();
        flipped.signature.as_mut().unwrap().signature[63] ^= 0x80;
        let Verdict::Refused { reason } = trust.judge(&reread(&flipped)) else { panic!("a flipped byte") };
        assert!(reason.contains("does not check"), "{reason}");

        let mut moved = signed.clone();
        moved.expiration_ms = Some(i64::MAX);
        assert!(matches!(trust.judge(&reread(&moved)), Verdict::Refused { .. }), "an extended expiry");

        let Verdict::Refused { reason } = trust.judge(&meta()) else { panic!("unsigned") };
        assert!(reason.contains("unsigned"), "{reason}");
        let migrating = Trust::new(None, &[public_key(&ours)], false);
        assert_eq!(migrating.judge(&meta()), Verdict::UnsignedAllowed);
        assert!(matches!(migrating.judge(&reread(&other)), Verdict::Refused { .. }), "only unsigned ones pass");
    }

    #[test]
    fn settings_load_keys_from_the_list_and_the_file_and_trust_the_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let ours = generate().unwrap();
        let key_path = dir.path().join("signing.key");
        write_key_file(&key_path, &ours).unwrap();
        let a = public_key(&SigningKey::from_bytes(&[3; 32]));
        let b = public_key(&SigningKey::from_bytes(&[4; 32]));
        let file = dir.path().join("trusted");
        std::fs::write(&file, format!("# the build farm\n{b}  # farm-1\n\n")).unwrap();
        let env = |name: &str| match name {
            "HOME" => Some("/h".to_owned()),
            "CACHEHOST_SIGNING_KEY" => Some(key_path.display().to_string()),
            "CACHEHOST_TRUSTED_KEYS" => Some(a.to_string()),
            "CACHEHOST_TRUSTED_KEYS_FILE" => Some(file.display().to_string()),
            _ => None,
        };
        let trust = Trust::load(&Settings::load(env, None).unwrap()).unwrap();
        assert_eq!(trust.signing_key(), Some(public_key(&ours)));
        for key in [a, b, public_key(&ours)] {
            assert!(trust.trusted.contains(&key.0), "{key}");
        }
        assert_eq!(trust.trusted.len(), 3);
        assert!(trust.require_signed, "the default");

        std::fs::write(&file, "cachehost-ed25519:AAAA\n").unwrap();
        let error = Trust::load(&Settings::load(env, None).unwrap()).unwrap_err();
        assert!(error.to_string().contains("trusted line 1 holds a bad key"), "{error}");
    }

    #[test]
    fn signing_alone_configures_no_trust() {
        let trust = Trust::new(Some(SigningKey::from_bytes(&[5; 32])), &[], true);
        let mut meta = meta();
        trust.sign(&mut meta);
        assert_eq!(signer(&meta), trust.signing_key());
        assert!(record::signature_checks(&meta));
        assert!(!trust.is_configured());
    }
}
