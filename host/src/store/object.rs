//! S3-compatible result storage (DESIGN §5): `result_storage = "s3://bucket/prefix"` shares
//! one cache between machines, through the `object_store` crate.
//!
//! Layout, for results at `s3://B/R` and, with key storage, keys at `s3://B2/K`:
//!
//! ```text
//! R/<key>                       whole record (without key storage), as in a local folder
//! K/<key>                       key record: header + metadata (with key storage)
//! R/.values/<h[0..2]>/<h>       postcard(Value), h = hex BLAKE3 of these bytes (key storage)
//! ```
//!
//! An object PUT is atomic: a reader sees the old object or the new one, never a part, so a
//! record needs no temporary object. With key storage the value goes first and the key record
//! last, so a key record is never visible without its value. The records are judged by the
//! same code as local ones ([`Lookup::from_record_bytes`], [`super::split`]).
//!
//! Round trips are what costs here, so a lookup is one GET, and a hit is never followed by a
//! HEAD. Two local shortcuts save more: records this process read or wrote are kept in memory
//! (expiry is still checked at each lookup), and values of key storage, named by their digest,
//! are kept in `$CACHEHOST_HOME/s3-values` and checked against it, so a hit on a value seen
//! before costs one GET for its key record. [`requests`] counts every HTTP request, retries
//! included, for the run report.
//!
//! Outages: every operation ends within the configured `timeout` (retries included). A failed
//! lookup is a miss, announced by one WARNING per outage; a failed write is an error (the
//! task's result is not cached). After a failure the store is not asked again for a few
//! seconds, so a run during an outage does not wait a timeout per task.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService, ReqwestConnector,
};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore as _, ObjectStoreExt as _, PutPayload, RetryConfig};

use super::{record, split, Listing, Lookup, ResultStore, Shared, StoreError, VALUES_FOLDER};
use crate::files::{self, Durability, TEMP_PREFIX};
use crate::settings::S3Table;
use crate::value::Ty;

/// How long connecting to the server may take, unless configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one operation may take, retries included, unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failure, how long operations fail at once instead of asking the server again.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Records kept in memory per store, in bytes; beyond it the memory is cleared.
const MEMO_BYTES: usize = 64 << 20;
/// How many records `list` reads at once.
const LIST_READS_AT_ONCE: usize = 16;

/// Whether a `result_storage` or `key_storage` value names object storage.
pub fn is_object_storage(spec: &str) -> bool {
    spec.starts_with("s3://")
}

/// How to reach S3-compatible storage: the AWS environment variables, else the `[s3]` table
/// of `cachehost.toml`, else the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// The server's URL (`AWS_ENDPOINT_URL`); none means AWS itself.
    pub endpoint: Option<String>,
    /// The region (`AWS_REGION`, else `AWS_DEFAULT_REGION`); default `us-east-1`.
    pub region: Option<String>,
    /// Whether `http://` endpoints may be used (`AWS_ALLOW_HTTP`).
    pub allow_http: bool,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN` (environment only).
    pub session_token: Option<String>,
    /// How long connecting may take (`CACHEHOST_S3_CONNECT_TIMEOUT`).
    pub connect_timeout: Duration,
    /// How long one operation may take, retries included (`CACHEHOST_S3_TIMEOUT`).
    pub timeout: Duration,
}

impl S3Settings {
    /// Resolves the settings from `env` (an environment lookup) over `table`.
    pub fn resolve(env: impl Fn(&str) -> Option<String>, table: &S3Table) -> Result<S3Settings, StoreError> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let text = |names: &[&str], file: &Option<String>| names.iter().find_map(|n| env(n)).or_else(|| file.clone());
        let invalid = |name: &str, value: &str, what: &str| StoreError::Unsupported {
            storage: "s3://".into(),
            reason: format!("{name} = {value:?} is not {what}"),
        };
        let allow_http = match env("AWS_ALLOW_HTTP") {
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(invalid("AWS_ALLOW_HTTP", &value, "true or false")),
            },
            None => table.allow_http.unwrap_or(false),
        };
        let duration = |name: &str, file: &Option<String>, default: Duration| -> Result<Duration, StoreError> {
            let (from, value) = match (env(name), file) {
                (Some(value), _) => (name.to_owned(), value),
                (None, Some(value)) => {
                    (format!("[s3] {}", name.trim_start_matches("CACHEHOST_S3_").to_ascii_lowercase()), value.clone())
                }
                (None, None) => return Ok(default),
            };
            match crate::units::parse_duration(&value) {
                Some(d) if !d.is_zero() => Ok(d),
                _ => Err(invalid(&from, &value, "a duration such as 500ms, 2s or 1m")),
            }
        };
        Ok(S3Settings {
            endpoint: text(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"], &table.endpoint),
            region: text(&["AWS_REGION", "AWS_DEFAULT_REGION"], &table.region),
            allow_http,
            access_key_id: text(&["AWS_ACCESS_KEY_ID"], &table.access_key_id),
            secret_access_key: text(&["AWS_SECRET_ACCESS_KEY"], &table.secret_access_key),
            session_token: env("AWS_SESSION_TOKEN"),
            connect_timeout: duration("CACHEHOST_S3_CONNECT_TIMEOUT", &table.connect_timeout, DEFAULT_CONNECT_TIMEOUT)?,
            timeout: duration("CACHEHOST_S3_TIMEOUT", &table.timeout, DEFAULT_TIMEOUT)?,
        })
    }

    /// Where requests go, for messages: the endpoint, or AWS S3 in the region.
    pub fn address(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("AWS S3 ({})", self.region.as_deref().unwrap_or("us-east-1")),
        }
    }
}

/// A bucket and a prefix in it, from `s3://bucket/prefix`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectLocation {
    /// The bucket.
    pub bucket: String,
    /// The prefix inside the bucket, without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl ObjectLocation {
    /// Parses `s3://bucket` or `s3://bucket/prefix`.
    pub fn parse(spec: &str) -> Result<ObjectLocation, StoreError> {
        let bad = |reason: &str| StoreError::Unsupported { storage: spec.to_owned(), reason: reason.to_owned() };
        let rest = spec.strip_prefix("s3://").ok_or_else(|| bad("object storage is written s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the bucket name is missing; write s3://bucket/prefix"));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() && ObjectPath::parse(prefix).is_err() {
            return Err(bad("the prefix has an empty, `.` or `..` segment or a control character"));
        }
        Ok(ObjectLocation { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
    }

    /// The object `name` (a `/`-separated relative path) in this location.
    fn path(&self, name: &str) -> ObjectPath {
        let full = if self.prefix.is_empty() { name.to_owned() } else { format!("{}/{name}", self.prefix) };
        ObjectPath::parse(full).expect("names are checked before they are joined")
    }

    /// The prefix as an object path, for listing.
    fn root(&self) -> Option<ObjectPath> {
        (!self.prefix.is_empty()).then(|| ObjectPath::parse(&self.prefix).expect("checked by parse"))
    }
}

impl fmt::Display for ObjectLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// HTTP requests made to object storage by this process, retries included.
pub fn requests() -> u64 {
    REQUESTS.load(Ordering::Relaxed)
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The reqwest client of object_store, counting each request it sends, for the process and
/// for its store.
#[derive(Debug)]
struct CountingConnector(Arc<AtomicU64>);

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(Counting(ReqwestConnector::default().connect(options)?, self.0.clone())))
    }
}

#[derive(Debug)]
struct Counting(HttpClient, Arc<AtomicU64>);

#[async_trait::async_trait]
impl HttpService for Counting {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        REQUESTS.fetch_add(1, Ordering::Relaxed);
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0.execute(request).await
    }
}

/// The process's tokio runtime for object storage calls. The host is synchronous: each call
/// blocks its thread on a future; two worker threads drive the connections.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cachehost-object-store")
            .enable_all()
            .build()
            .expect("the OS refused to start the object storage runtime's threads")
    })
}

/// Why an object storage call did not give a result: the server could not be used; the
/// message names the store and the address.
struct Failure(String);

/// Whether the server failed lately, and whether that was announced.
#[derive(Default)]
struct Health {
    down: Option<(Instant, String)>,
    warned: bool,
}

/// Where a store keeps what.
#[derive(Clone, Debug)]
enum Layout {
    /// Whole records under the location.
    Records(ObjectLocation),
    /// Key records under `keys`, values by digest under `values/.values`.
    Split { keys: ObjectLocation, values: ObjectLocation },
}

/// Records in S3-compatible object storage: a [`ResultStore`] shared between machines.
pub struct ObjectStore {
    layout: Layout,
    clients: HashMap<String, Arc<AmazonS3>>,
    settings: S3Settings,
    health: Mutex<Health>,
    memo: Mutex<(HashMap<String, Vec<u8>>, usize)>,
    value_cache: Option<PathBuf>,
    warn: Arc<dyn Fn(&str) + Send + Sync>,
    requests: Arc<AtomicU64>,
}

/// Opening a store: the places, the settings, and what the store may use locally.
pub struct OpenOptions<'a> {
    /// `result_storage`: `s3://…`; none is refused, as values then would have nowhere to go.
    pub results: Option<&'a str>,
    /// `key_storage`: `s3://…`, or none for whole records.
    pub keys: Option<&'a str>,
    /// How to reach the server.
    pub settings: S3Settings,
    /// Where values of key storage are kept locally by digest; none keeps none.
    pub value_cache: Option<PathBuf>,
    /// Logs a WARNING: lookups that fail because of an outage are announced through it.
    pub warn: Arc<dyn Fn(&str) + Send + Sync>,
}

impl ObjectStore {
    /// Opens the store the options name. Nothing is sent to the server yet.
    pub fn open(options: OpenOptions<'_>) -> Result<ObjectStore, StoreError> {
        let results = match options.results {
            Some(spec) if is_object_storage(spec) => ObjectLocation::parse(spec)?,
            other => {
                return Err(StoreError::Unsupported {
                    storage: options.keys.unwrap_or_default().to_owned(),
                    reason: format!(
                        "key storage on S3 needs its result storage on S3 too, not {}",
                        other.map_or("the local storage folder".to_owned(), |s| format!("{s:?}"))
                    ),
                })
            }
        };
        let layout = match options.keys {
            None => Layout::Records(results),
            Some(spec) if is_object_storage(spec) => {
                Layout::Split { keys: ObjectLocation::parse(spec)?, values: results }
            }
            Some(spec) => {
                return Err(StoreError::Unsupported {
                    storage: spec.to_owned(),
                    reason: "results on S3 need their key storage on S3 too (or none)".into(),
                })
            }
        };
        let requests = Arc::new(AtomicU64::new(0));
        let mut clients = HashMap::new();
        let buckets = match &layout {
            Layout::Records(l) => vec![l.bucket.clone()],
            Layout::Split { keys, values } => vec![keys.bucket.clone(), values.bucket.clone()],
        };
        for bucket in buckets {
            if let std::collections::hash_map::Entry::Vacant(entry) = clients.entry(bucket) {
                let client =
                    client(entry.key(), &options.settings, requests.clone()).map_err(|e| StoreError::Unsupported {
                        storage: format!("s3://{}", entry.key()),
                        reason: format!("the S3 client cannot be set up: {}", chain(&e)),
                    })?;
                entry.insert(Arc::new(client));
            }
        }
        Ok(ObjectStore {
            layout,
            clients,
            settings: options.settings,
            health: Mutex::new(Health::default()),
            memo: Mutex::new((HashMap::new(), 0)),
            value_cache: options.value_cache,
            warn: options.warn,
            requests,
        })
    }

    /// HTTP requests this store sent, retries included.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn client(&self, location: &ObjectLocation) -> &AmazonS3 {
        &self.clients[&location.bucket]
    }

    /// Runs one operation within the timeout; `Ok(None)` when there is no such object.
    fn call<T>(&self, operation: impl Future<Output = object_store::Result<T>>) -> Result<Option<T>, Failure> {
        if let Some(message) = self.paused() {
            return Err(Failure(message));
        }
        // The client's own timeouts end a request first, with their reason; this deadline only
        // guarantees that nothing outlives them.
        let timeout = self.settings.timeout + self.settings.connect_timeout;
        let result = runtime().block_on(async { tokio::time::timeout(timeout, operation).await });
        let failure = match result {
            Ok(Ok(value)) => {
                self.recovered();
                return Ok(Some(value));
            }
            Ok(Err(object_store::Error::NotFound { .. })) => {
                self.recovered();
                return Ok(None);
            }
            Ok(Err(e)) => chain(&e),
            Err(_) => format!("no answer within {timeout:?}"),
        };
        self.health().down = Some((Instant::now(), failure.clone()));
        Err(Failure(format!("The S3 object store {} cannot be used: {failure}", self.describe())))
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the store is not asked, while the pause after a failure lasts.
    fn paused(&self) -> Option<String> {
        match &self.health().down {
            Some((at, cause)) if at.elapsed() < PAUSE_AFTER_FAILURE => Some(format!(
                "The S3 object store {} cannot be used: it failed {:.1?} ago and is not asked again for \
                    {PAUSE_AFTER_FAILURE:?} after a failure ({cause})",
                self.describe(),
                at.elapsed()
            )),
            _ => None,
        }
    }

    fn recovered(&self) {
        let mut health = self.health();
        if health.down.take().is_some() && health.warned {
            health.warned = false;
            drop(health);
            (self.warn)(&format!("The S3 object store {} answers again", self.describe()));
        }
    }

    /// A miss for a lookup that failed: announced once per outage.
    fn outage_miss(&self, message: String) -> Lookup {
        let mut health = self.health();
        if !health.warned {
            health.warned = true;
            drop(health);
            (self.warn)(&format!("{message}. Cache lookups are misses and tasks run until it answers again."));
        }
        Lookup::Miss
    }

    fn get(&self, location: &ObjectLocation, name: &str) -> Result<Option<Vec<u8>>, Failure> {
        let client = self.client(location);
        let path = location.path(name);
        self.call(async move { client.get(&path).await?.bytes().await.map(|b| b.to_vec()) })
    }

    fn put(&self, location: &ObjectLocation, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let client = self.client(location);
        let path = location.path(name);
        let payload = PutPayload::from(bytes.to_vec());
        match self.call(async move { client.put(&path, payload).await }) {
            Ok(_) => Ok(()),
            Err(failure) => Err(self.store_error(failure)),
        }
    }

    fn store_error(&self, failure: Failure) -> StoreError {
        StoreError::Unavailable { message: failure.0 }
    }

    /// Where values (and components) go: the result storage.
    fn value_location(&self) -> &ObjectLocation {
        match &self.layout {
            Layout::Records(location) => location,
            Layout::Split { values, .. } => values,
        }
    }

    /// The object name of the value with digest `digest`.
    fn value_name(digest: &[u8; 32]) -> String {
        let hex = blake3::Hash::from_bytes(*digest).to_hex();
        format!("{VALUES_FOLDER}/{}/{hex}", &hex[..2])
    }

    fn cached_value_path(&self, digest: &[u8; 32]) -> Option<PathBuf> {
        let hex = blake3::Hash::from_bytes(*digest).to_hex();
        Some(self.value_cache.as_ref()?.join(&hex[..2]).join(hex.as_str()))
    }

    /// The value with `digest` from the local copy, if one is there and intact.
    fn cached_value(&self, digest: &[u8; 32]) -> Option<Vec<u8>> {
        let bytes = std::fs::read(self.cached_value_path(digest)?).ok()?;
        (blake3::hash(&bytes).as_bytes() == digest).then_some(bytes)
    }

    fn cache_value(&self, digest: &[u8; 32], bytes: &[u8]) {
        if let Some(path) = self.cached_value_path(digest) {
            // A local copy only saves a request; failing to keep one changes nothing.
            let _ = files::write_atomically(&path, bytes, Durability::Lazy);
        }
    }

    fn memo_get(&self, key: &str) -> Option<Vec<u8>> {
        self.memo.lock().unwrap_or_else(|e| e.into_inner()).0.get(key).cloned()
    }

    fn memo_put(&self, key: &str, bytes: Option<&[u8]>) {
        let mut memo = self.memo.lock().unwrap_or_else(|e| e.into_inner());
        let (map, size) = &mut *memo;
        if let Some(old) = map.remove(key) {
            *size -= old.len();
        }
        if let Some(bytes) = bytes {
            if *size + bytes.len() > MEMO_BYTES {
                map.clear();
                *size = 0;
            }
            *size += bytes.len();
            map.insert(key.to_owned(), bytes.to_vec());
        }
    }

    /// The whole record under `key` with key storage: its key record joined with its value.
    fn lookup_split(
        &self,
        keys: &ObjectLocation,
        values: &ObjectLocation,
        key: &str,
        expected: &Ty,
        now_ms: i64,
    ) -> Lookup {
        let key_record = match self.get(keys, key) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Lookup::Miss,
            Err(Failure(message)) => return self.outage_miss(message),
        };
        let meta = match split::judge_key_record(&key_record, key, expected, now_ms) {
            Ok(meta) => meta,
            Err(lookup) => return *lookup,
        };
        let name = Self::value_name(&meta.value_digest);
        let value_bytes = match self.cached_value(&meta.value_digest) {
            Some(bytes) => bytes,
            None => match self.get(values, &name) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => {
                    return Lookup::Unreadable { reason: format!("the record's value {}/{name} is missing", values) }
                }
                Err(Failure(message)) => return self.outage_miss(message),
            },
        };
        let lookup = split::judge_value(meta, &value_bytes, expected, &format!("{values}/{name}"));
        if let Lookup::Hit(record) = &lookup {
            self.cache_value(&record.meta.value_digest, &value_bytes);
            self.memo_put(key, Some(&record::encode(&record.meta, &value_bytes)));
        }
        lookup
    }

    /// Every object name under `location`, relative to it, except values and temporary files.
    fn list_names(&self, location: &ObjectLocation) -> Result<Vec<String>, StoreError> {
        let client = self.client(location);
        let root = location.root();
        let listed = self.call(async move { client.list(root.as_ref()).try_collect::<Vec<_>>().await });
        let objects = match listed {
            Ok(objects) => objects.unwrap_or_default(),
            Err(failure) => return Err(self.store_error(failure)),
        };
        let strip = if location.prefix.is_empty() { String::new() } else { format!("{}/", location.prefix) };
        let mut names: Vec<String> = objects
            .into_iter()
            .filter_map(|meta| meta.location.as_ref().strip_prefix(&strip).map(str::to_owned))
            .filter(|name| {
                !name.split('/').any(|s| s == VALUES_FOLDER || Shared::is_folder(s) || s.starts_with(TEMP_PREFIX))
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

/// The S3 client of one bucket.
fn client(bucket: &str, settings: &S3Settings, requests: Arc<AtomicU64>) -> object_store::Result<AmazonS3> {
    // reqwest is built without a default TLS crypto provider (aws-lc takes minutes to build);
    // ring is the one. Installing fails only when one is installed already.
    static CRYPTO: std::sync::Once = std::sync::Once::new();
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    let options = ClientOptions::new()
        .with_allow_http(settings.allow_http)
        .with_connect_timeout(settings.connect_timeout)
        .with_timeout(settings.timeout);
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: settings.timeout,
    };
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(settings.region.as_deref().unwrap_or("us-east-1"))
        .with_allow_http(settings.allow_http)
        .with_client_options(options)
        .with_retry(retry)
        .with_http_connector(CountingConnector(requests));
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(id) = &settings.access_key_id {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(token) = &settings.session_token {
        builder = builder.with_token(token);
    }
    builder.build()
}

/// An error and its causes, one after the other.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl ResultStore for ObjectStore {
    fn lookup(&self, key: &str, expected: &Ty, now_ms: i64) -> Lookup {
        if let Err(e) = super::check_key(key) {
            return Lookup::Unreadable { reason: e.to_string() };
        }
        if let Some(bytes) = self.memo_get(key) {
            return Lookup::from_record_bytes(&bytes, key, expected, now_ms);
        }
        match &self.layout {
            Layout::Records(location) => match self.get(location, key) {
                Ok(Some(bytes)) => {
                    let lookup = Lookup::from_record_bytes(&bytes, key, expected, now_ms);
                    if matches!(lookup, Lookup::Hit(_)) {
                        self.memo_put(key, Some(&bytes));
                    }
                    lookup
                }
                Ok(None) => Lookup::Miss,
                Err(Failure(message)) => self.outage_miss(message),
            },
            Layout::Split { keys, values } => self.lookup_split(keys, values, key, expected, now_ms),
        }
    }

    fn write(&self, key: &str, record_bytes: &[u8]) -> Result<(), StoreError> {
        super::check_key(key)?;
        // Whatever happens next, this process must not serve the record it replaces.
        self.memo_put(key, None);
        match &self.layout {
            Layout::Records(location) => self.put(location, key, record_bytes)?,
            Layout::Split { keys, values } => {
                let (meta, value_bytes) = record::split(record_bytes)?;
                if blake3::hash(value_bytes).as_bytes() != &meta.value_digest {
                    return Err(record::RecordError::DigestMismatch.into());
                }
                // The value first: a key record is never visible without its value.
                self.put(values, &Self::value_name(&meta.value_digest), value_bytes)?;
                self.put(keys, key, &record::encode_key_record(&meta))?;
                self.cache_value(&meta.value_digest, value_bytes);
            }
        }
        self.memo_put(key, Some(record_bytes));
        Ok(())
    }

    fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        super::check_key(key)?;
        match &self.layout {
            Layout::Records(location) => self.get(location, key).map_err(|f| self.store_error(f)),
            Layout::Split { keys, values } => {
                let Some(key_record) = self.get(keys, key).map_err(|f| self.store_error(f))? else { return Ok(None) };
                let meta = record::decode_key_record(&key_record)?;
                let name = Self::value_name(&meta.value_digest);
                let value_bytes = match self.cached_value(&meta.value_digest) {
                    Some(bytes) => bytes,
                    None => self.get(values, &name).map_err(|f| self.store_error(f))?.ok_or_else(|| {
                        StoreError::Unavailable {
                            message: format!("The value {values}/{name} of the record {key:?} is missing"),
                        }
                    })?,
                };
                Ok(Some(record::encode(&meta, &value_bytes)))
            }
        }
    }

    /// Values go under `.values/` of the result storage, beside the values of key storage.
    fn write_value(&self, digest: &[u8; 32], bytes: &[u8]) -> Result<(), StoreError> {
        let values = self.value_location();
        self.put(values, &Self::value_name(digest), bytes)
    }

    fn read_value(&self, digest: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        let values = self.value_location();
        let bytes = self.get(values, &Self::value_name(digest)).map_err(|f| self.store_error(f))?;
        Ok(bytes.filter(|bytes| blake3::hash(bytes).as_bytes() == digest))
    }

    fn write_shared(&self, kind: Shared, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put(self.value_location(), &kind.path(name), bytes)
    }

    fn read_shared(&self, kind: Shared, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(self.value_location(), &kind.path(name)).map_err(|f| self.store_error(f))
    }

    fn shared_len(&self, kind: Shared, name: &str) -> Result<Option<u64>, StoreError> {
        let location = self.value_location();
        let client = self.client(location);
        let path = location.path(&kind.path(name));
        let head = self.call(async move { client.head(&path).await }).map_err(|f| self.store_error(f))?;
        Ok(head.map(|meta| meta.size))
    }

    fn remove_shared(&self, kind: Shared, name: &str) -> Result<(), StoreError> {
        let location = self.value_location();
        let client = self.client(location);
        let path = location.path(&kind.path(name));
        self.call(async move { client.delete(&path).await }).map(|_| ()).map_err(|f| self.store_error(f))
    }

    fn remove_shared_older_than(&self, kind: Shared, age: std::time::Duration) -> Result<usize, StoreError> {
        let location = self.value_location();
        let client = self.client(location);
        let folder = location.path(kind.folder());
        let listed = self
            .call(async move { client.list(Some(&folder)).try_collect::<Vec<_>>().await })
            .map_err(|f| self.store_error(f))?
            .unwrap_or_default();
        let before_ms = crate::clock::now_ms() - age.as_millis() as i64;
        let mut removed = 0;
        for meta in listed.into_iter().filter(|meta| meta.last_modified.timestamp_millis() < before_ms) {
            let client = self.client(location);
            self.call(async move { client.delete(&meta.location).await }).map_err(|f| self.store_error(f))?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Removes the record (with key storage, its key record; values may be shared).
    fn remove(&self, key: &str) -> Result<bool, StoreError> {
        super::check_key(key)?;
        self.memo_put(key, None);
        let location = match &self.layout {
            Layout::Records(location) => location,
            Layout::Split { keys, .. } => keys,
        };
        let client = self.client(location);
        let path = location.path(key);
        // S3 deletes answer alike whether or not the object was there: ask first.
        let existed = self.call(async { client.head(&path).await }).map_err(|f| self.store_error(f))?.is_some();
        if existed {
            self.call(async { client.delete(&path).await }).map_err(|f| self.store_error(f))?;
        }
        Ok(existed)
    }

    fn list(&self) -> Result<Listing, StoreError> {
        let location = match &self.layout {
            Layout::Records(location) => location,
            Layout::Split { keys, .. } => keys,
        };
        let names = self.list_names(location)?;
        let client = self.client(location);
        let timeout = self.settings.timeout;
        // One GET per record, several at once: the metadata is inside each object.
        let reads = futures::stream::iter(names.into_iter().map(|name| {
            let path = location.path(&name);
            async move {
                let read = tokio::time::timeout(timeout, async { client.get(&path).await?.bytes().await }).await;
                (name, read)
            }
        }))
        .buffer_unordered(LIST_READS_AT_ONCE)
        .collect::<Vec<_>>();
        let mut listing: Listing = runtime()
            .block_on(reads)
            .into_iter()
            .map(|(name, read)| {
                let meta = match read {
                    Ok(Ok(bytes)) => record::decode_meta(&bytes).map_err(StoreError::from),
                    Ok(Err(e)) => Err(StoreError::Unavailable {
                        message: format!("The S3 object store {} cannot be used: {}", self.describe(), chain(&e)),
                    }),
                    Err(_) => Err(StoreError::Unavailable {
                        message: format!(
                            "The S3 object store {} cannot be used: no answer within {timeout:?}",
                            self.describe()
                        ),
                    }),
                };
                (name, meta)
            })
            .collect();
        listing.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(listing)
    }

    fn describe(&self) -> String {
        match &self.layout {
            Layout::Records(location) => format!("{location} at {}", self.settings.address()),
            Layout::Split { keys, values } => {
                format!("{keys} (keys), {values} (values) at {}", self.settings.address())
            }
        }
    }
}

/// The store for `results` and `keys`, shared by the whole process: one client and one
/// connection pool per store, however many tasks use it.
pub fn shared(options: OpenOptions<'_>) -> Result<Arc<ObjectStore>, StoreError> {
    type Stores = Mutex<HashMap<(Option<String>, Option<String>), Arc<ObjectStore>>>;
    static STORES: OnceLock<Stores> = OnceLock::new();
    let id = (options.results.map(str::to_owned), options.keys.map(str::to_owned));
    let mut stores = STORES.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(store) = stores.get(&id) {
        return Ok(store.clone());
    }
    let store = Arc::new(ObjectStore::open(options)?);
    stores.insert(id, store.clone());
    Ok(store)
}

/// Where values of key storage on S3 are kept locally: `<home>/s3-values`.
pub fn value_cache_folder(home: &Path) -> PathBuf {
    home.join("s3-values")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn locations_parse_bucket_and_prefix() {
        assert_eq!(
            ObjectLocation::parse("s3://b/team/cache/").unwrap(),
            ObjectLocation { bucket: "b".into(), prefix: "team/cache".into() }
        );
        let bare = ObjectLocation::parse("s3://b").unwrap();
        assert_eq!(bare.prefix, "");
        assert_eq!(bare.to_string(), "s3://b");
        assert_eq!(bare.path("k/x").as_ref(), "k/x");
        let nested = ObjectLocation::parse("s3://b/p").unwrap();
        assert_eq!(nested.path("k").as_ref(), "p/k");
        for bad in ["s3://", "s3:///p", "s3://b/a//c", "s3://b/../c", "file:/x"] {
            let err = ObjectLocation::parse(bad).unwrap_err();
            assert!(matches!(err, StoreError::Unsupported { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn the_environment_wins_over_the_s3_table() {
        let table = S3Table {
            endpoint: Some("http://file:1".into()),
            region: Some("eu-west-3".into()),
            allow_http: Some(true),
            access_key_id: Some("file-id".into()),
            secret_access_key: Some("file-secret".into()),
            connect_timeout: Some("300ms".into()),
            timeout: Some("1s".into()),
        };
        let from_file = S3Settings::resolve(env(&[]), &table).unwrap();
        assert_eq!(from_file.endpoint.as_deref(), Some("http://file:1"));
        assert_eq!(from_file.region.as_deref(), Some("eu-west-3"));
        assert!(from_file.allow_http);
        assert_eq!(from_file.connect_timeout, Duration::from_millis(300));
        assert_eq!(from_file.timeout, Duration::from_secs(1));
        let from_env = S3Settings::resolve(
            env(&[
                ("AWS_ENDPOINT_URL", "http://env:2"),
                ("AWS_DEFAULT_REGION", "us-west-2"),
                ("AWS_ALLOW_HTTP", "false"),
                ("AWS_ACCESS_KEY_ID", "env-id"),
                ("AWS_SECRET_ACCESS_KEY", "env-secret"),
                ("CACHEHOST_S3_TIMEOUT", "3s"),
            ]),
            &table,
        )
        .unwrap();
        assert_eq!(from_env.endpoint.as_deref(), Some("http://env:2"));
        assert_eq!(from_env.region.as_deref(), Some("us-west-2"));
        assert!(!from_env.allow_http);
        assert_eq!(from_env.access_key_id.as_deref(), Some("env-id"));
        assert_eq!(from_env.secret_access_key.as_deref(), Some("env-secret"));
        assert_eq!(from_env.timeout, Duration::from_secs(3));
        assert_eq!(from_env.connect_timeout, Duration::from_millis(300));
        // AWS_REGION comes before AWS_DEFAULT_REGION.
        let both = S3Settings::resolve(env(&[("AWS_REGION", "a"), ("AWS_DEFAULT_REGION", "b")]), &table).unwrap();
        assert_eq!(both.region.as_deref(), Some("a"));
    }

    #[test]
    fn defaults_and_bad_values() {
        let s = S3Settings::resolve(env(&[]), &S3Table::default()).unwrap();
        assert_eq!((s.connect_timeout, s.timeout, s.allow_http), (DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, false));
        assert_eq!(s.address(), "AWS S3 (us-east-1)");
        let err = S3Settings::resolve(env(&[("AWS_ALLOW_HTTP", "perhaps")]), &S3Table::default()).unwrap_err();
        assert!(err.to_string().contains("AWS_ALLOW_HTTP = \"perhaps\" is not true or false"), "{err}");
        let table = S3Table { timeout: Some("soon".into()), ..S3Table::default() };
        let err = S3Settings::resolve(env(&[]), &table).unwrap_err();
        assert!(err.to_string().contains("[s3] timeout = \"soon\" is not a duration"), "{err}");
    }

    #[test]
    fn keys_follow_the_rules_of_local_folders() {
        for good in ["ab12", "team/a/k", "k.json", "a b"] {
            crate::store::check_key(good).unwrap();
        }
        for bad in ["", "/k", "a//b", "a/", "../k", "a/./k", ".tmp-1", "a/.values/k", "k\0", "k\n"] {
            assert!(matches!(crate::store::check_key(bad), Err(StoreError::BadKey { .. })), "{bad:?}");
        }
    }

    #[test]
    fn mixed_local_and_object_storage_is_refused() {
        let warn: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|_: &str| {});
        let open = |results: Option<&'static str>, keys: Option<&'static str>| {
            ObjectStore::open(OpenOptions {
                results,
                keys,
                settings: S3Settings::default(),
                value_cache: None,
                warn: warn.clone(),
            })
        };
        let err = open(None, Some("s3://b/keys")).err().unwrap();
        assert!(err.to_string().contains("key storage on S3 needs its result storage on S3 too"), "{err}");
        let err = open(Some("s3://b/r"), Some("/local/keys")).err().unwrap();
        assert!(err.to_string().contains("need their key storage on S3 too"), "{err}");
        let store = open(Some("s3://b/r"), Some("s3://c/k")).unwrap();
        assert_eq!(store.describe(), "s3://c/k (keys), s3://b/r (values) at AWS S3 (us-east-1)");
    }

    /// Nothing listens on the address: every operation fails at once with one message naming
    /// the store and the address; a lookup is a miss announced once.
    #[test]
    fn an_unreachable_server_gives_misses_with_one_warning_and_failed_writes() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let warnings = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = warnings.clone();
        let settings = S3Settings {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            allow_http: true,
            access_key_id: Some("x".into()),
            secret_access_key: Some("y".into()),
            connect_timeout: Duration::from_millis(500),
            timeout: Duration::from_secs(2),
            ..S3Settings::default()
        };
        let store = ObjectStore::open(OpenOptions {
            results: Some("s3://bucket/p"),
            keys: None,
            settings,
            value_cache: None,
            warn: Arc::new(move |m: &str| sink.lock().unwrap().push(m.to_owned())),
        })
        .unwrap();
        assert_eq!(store.lookup("k1", &Ty::S32, 0), Lookup::Miss);
        assert_eq!(store.lookup("k2", &Ty::S32, 0), Lookup::Miss);
        let warnings = warnings.lock().unwrap().clone();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let address = format!("s3://bucket/p at http://127.0.0.1:{port}");
        assert!(warnings[0].starts_with(&format!("The S3 object store {address} cannot be used: ")), "{}", warnings[0]);
        let err = store.write("k1", b"bytes").unwrap_err();
        assert!(matches!(err, StoreError::Unavailable { .. }));
        assert!(err.to_string().contains(&address), "{err}");
    }

    mod on_moto {
        use super::*;
        use crate::store::record::{encode, encode_value, KeyPartMeta, RecordMeta};
        use crate::value::Value;
        use cachehost_tests::servers::S3Server;

        const NOW: i64 = 1_700_000_000_000;

        /// A moto server of one test, with the folder its request log goes to.
        fn moto() -> (S3Server, tempfile::TempDir) {
            let log = tempfile::tempdir().unwrap();
            (S3Server::start(log.path()), log)
        }

        fn settings(server: &S3Server) -> S3Settings {
            S3Settings {
                endpoint: Some(server.endpoint()),
                allow_http: true,
                access_key_id: Some("testing".into()),
                secret_access_key: Some("testing".into()),
                connect_timeout: Duration::from_secs(1),
                timeout: Duration::from_secs(2),
                ..S3Settings::default()
            }
        }

        fn open(server: &S3Server, results: &str, keys: Option<&str>, value_cache: Option<&Path>) -> ObjectStore {
            ObjectStore::open(OpenOptions {
                results: Some(results),
                keys,
                settings: settings(server),
                value_cache: value_cache.map(Path::to_path_buf),
                warn: Arc::new(|_: &str| {}),
            })
            .unwrap()
        }

        fn meta_and_bytes(key: &str, text: &str, expiration_ms: Option<i64>) -> (RecordMeta, Vec<u8>) {
            let value_bytes = encode_value(&Value::String(text.into()));
            let meta = RecordMeta::new(
                key.into(),
                "example:math/ops.shout".into(),
                "ab".repeat(32),
                vec![KeyPartMeta { name: "inputs".into(), key: "12".into(), detail: vec![] }],
                NOW - 5,
                expiration_ms,
                Ty::String,
                &value_bytes,
            );
            let bytes = encode(&meta, &value_bytes);
            (meta, bytes)
        }

        /// Requests `f` made on `store`.
        fn requests_of<T>(store: &ObjectStore, f: impl FnOnce() -> T) -> (T, u64) {
            let before = store.requests();
            let result = f();
            (result, store.requests() - before)
        }

        #[test]
        fn records_round_trip_and_a_hit_costs_one_get() {
            let (server, _log) = moto();
            server.create_bucket("bkt");
            let writer = open(&server, "s3://bkt/cache", None, None);
            let (meta, bytes) = meta_and_bytes("team/k1", "hello", None);
            let ((), puts) = requests_of(&writer, || writer.write("team/k1", &bytes).unwrap());
            assert_eq!(puts, 1);

            // Another process: nothing in memory.
            let reader = open(&server, "s3://bkt/cache", None, None);
            let (lookup, gets) = requests_of(&reader, || reader.lookup("team/k1", &Ty::String, NOW));
            match lookup {
                Lookup::Hit(record) => {
                    assert_eq!(record.meta, meta);
                    assert_eq!(record.value, Value::String("hello".into()));
                }
                other => panic!("expected a hit, got {other:?}"),
            }
            assert_eq!(gets, 1, "a hit is one GET, no HEAD");
            let (again, none) = requests_of(&reader, || reader.lookup("team/k1", &Ty::String, NOW));
            assert!(matches!(again, Lookup::Hit(_)));
            assert_eq!(none, 0, "a record read once is served from memory");
            // Expiry and type are still judged for a record in memory.
            assert!(matches!(reader.lookup("team/k1", &Ty::S32, NOW), Lookup::Unreadable { .. }));

            let (miss, gets) = requests_of(&reader, || reader.lookup("other", &Ty::String, NOW));
            assert_eq!((miss, gets), (Lookup::Miss, 1));

            assert_eq!(reader.read("team/k1").unwrap(), Some(bytes.clone()));
            assert_eq!(reader.read("nothing").unwrap(), None);
            let listed = reader.list().unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].0, "team/k1");
            assert_eq!(listed[0].1.as_ref().unwrap(), &meta);

            assert!(reader.remove("team/k1").unwrap());
            assert!(!reader.remove("team/k1").unwrap());
            assert_eq!(reader.lookup("team/k1", &Ty::String, NOW), Lookup::Miss);
            assert_eq!(open(&server, "s3://bkt/cache", None, None).lookup("team/k1", &Ty::String, NOW), Lookup::Miss);
        }

        #[test]
        fn corrupt_expired_and_misplaced_records_are_judged_like_local_ones() {
            let (server, _log) = moto();
            server.create_bucket("bkt");
            let store = open(&server, "s3://bkt", None, None);
            let (_, bytes) = meta_and_bytes("k", "v", Some(NOW));
            store.write("k", &bytes).unwrap();
            let fresh = || open(&server, "s3://bkt", None, None);
            assert_eq!(fresh().lookup("k", &Ty::String, NOW), Lookup::Expired { expiration_ms: NOW });
            store.write("k", &bytes[..bytes.len() - 1]).unwrap();
            let Lookup::Unreadable { reason } = fresh().lookup("k", &Ty::String, NOW - 1) else { panic!("truncated") };
            assert!(reason.contains("truncated") || reason.contains("digest"), "{reason}");
            store.write("other", &bytes).unwrap();
            let Lookup::Unreadable { reason } = fresh().lookup("other", &Ty::String, NOW - 1) else {
                panic!("misplaced")
            };
            assert!(reason.contains("written for key \"k\""), "{reason}");
            // The next write repairs it.
            store.write("k", &meta_and_bytes("k", "v", None).1).unwrap();
            assert!(matches!(fresh().lookup("k", &Ty::String, NOW), Lookup::Hit(_)));
        }

        #[test]
        fn key_storage_keeps_values_by_digest_and_a_local_copy_saves_the_second_get() {
            let (server, _log) = moto();
            server.create_bucket("bkt");
            server.create_bucket("kst");
            let dir = tempfile::tempdir().unwrap();
            let writer = open(&server, "s3://bkt/results", Some("s3://kst/keys"), Some(&dir.path().join("writer")));
            let (meta, bytes) = meta_and_bytes("a", "same", None);
            writer.write("a", &bytes).unwrap();
            writer.write("c/d", &meta_and_bytes("c/d", "same", None).1).unwrap();
            writer.write("e", &meta_and_bytes("e", "other", None).1).unwrap();
            let Layout::Split { keys, values } = &writer.layout else { unreachable!() };
            assert_eq!(writer.list_names(keys).unwrap(), ["a", "c/d", "e"]);
            let client = writer.client(values);
            let objects = runtime()
                .block_on(client.list(Some(&ObjectPath::parse("results/.values").unwrap())).try_collect::<Vec<_>>())
                .unwrap();
            assert_eq!(objects.len(), 2, "equal values are stored once");

            let cache = dir.path().join("reader");
            let reader = open(&server, "s3://bkt/results", Some("s3://kst/keys"), Some(&cache));
            let (lookup, gets) = requests_of(&reader, || reader.lookup("a", &Ty::String, NOW));
            let Lookup::Hit(record) = lookup else { panic!("{lookup:?}") };
            assert_eq!(record.meta, meta);
            assert_eq!(gets, 2, "the key record, then the value");
            // Another process on this machine: the value is on disk, the key record is one GET.
            let again = open(&server, "s3://bkt/results", Some("s3://kst/keys"), Some(&cache));
            let (lookup, gets) = requests_of(&again, || again.lookup("c/d", &Ty::String, NOW));
            assert!(matches!(lookup, Lookup::Hit(_)), "{lookup:?}");
            assert_eq!(gets, 1);
            assert_eq!(again.read("a").unwrap(), Some(bytes));
            let keys: Vec<String> = again.list().unwrap().into_iter().map(|(k, _)| k).collect();
            assert_eq!(keys, ["a", "c/d", "e"]);

            // A value that is gone is a miss with a warning naming it, never a wrong value.
            let value = ObjectStore::value_name(&meta.value_digest);
            runtime().block_on(client.delete(&values.path(&value))).unwrap();
            std::fs::remove_dir_all(&cache).unwrap();
            let lonely = open(&server, "s3://bkt/results", Some("s3://kst/keys"), Some(&cache));
            let Lookup::Unreadable { reason } = lonely.lookup("a", &Ty::String, NOW) else { panic!("missing value") };
            assert!(reason.contains("is missing") && reason.contains(&value), "{reason}");
        }

        /// A server that stops answering (SIGSTOP): each call ends after the timeout, with
        /// one warning for lookups, and later calls fail at once without asking again.
        #[test]
        fn a_frozen_server_gives_a_miss_after_the_timeout_and_nothing_written_is_lost() {
            let (server, _log) = moto();
            server.create_bucket("bkt");
            let warnings = Arc::new(Mutex::new(Vec::<String>::new()));
            let sink = warnings.clone();
            let store = ObjectStore::open(OpenOptions {
                results: Some("s3://bkt/p"),
                keys: None,
                settings: settings(&server),
                value_cache: None,
                warn: Arc::new(move |m: &str| sink.lock().unwrap().push(m.to_owned())),
            })
            .unwrap();
            store.write("kept", &meta_and_bytes("kept", "v", None).1).unwrap();
            server.pause();
            assert_eq!(store.lookup("x", &Ty::String, NOW), Lookup::Miss);
            let err = store.write("y", &meta_and_bytes("y", "v", None).1).unwrap_err();
            assert_eq!(store.lookup("z", &Ty::String, NOW), Lookup::Miss);
            server.resume();
            assert!(err.to_string().contains("is not asked again for 5s after a failure"), "{err}");
            let warnings = warnings.lock().unwrap().clone();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            // The client's timeout ended the first request, not a refusal: the server was frozen.
            assert!(warnings[0].contains("operation timed out"), "{}", warnings[0]);
            assert!(
                warnings[0].contains(&format!("s3://bkt/p at http://127.0.0.1:{}", server.port)),
                "{}",
                warnings[0]
            );
            assert!(warnings[0].contains("timed out"), "{}", warnings[0]);
            let after = open(&server, "s3://bkt/p", None, None);
            assert!(matches!(after.lookup("kept", &Ty::String, NOW), Lookup::Hit(_)));
            assert_eq!(after.lookup("y", &Ty::String, NOW), Lookup::Miss);
        }
    }
}
