//! The cost of signature checks on a cache hit (issue 15), beside today's unsigned hit:
//!
//! - `kept`: a hit on a record the local store keeps decoded (one `stat`), judged by a reader
//!   without trust (unsigned record) and by one with `trusted_keys` (signed record, already
//!   verified by this process: the verdict is kept with the record). Goal: no extra cost.
//! - `local_first`: a first-time local hit, the record file read and decoded, then judged:
//!   unsigned without trust, signed with trust (one ed25519 verification). Goal: ≤ 2×.
//! - `s3_first`: the same over a moto S3 server (`make test-servers`): one GET, decode, judge.
//!   Goal: ≤ 1.1× the unsigned GET.
//!
//! Run: `cargo bench -p cachehost --bench trust` (the S3 group starts `moto_server` from
//! `.tools/moto`, which `make test-servers` installs).

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use cachehost::store::object::{ObjectStore, OpenOptions, S3Settings};
use cachehost::store::record::{self, RecordMeta};
use cachehost::store::{LocalStore, Lookup, ResultStore};
use cachehost::trust::{self, Trust};
use cachehost::value::{Ty, Value};

/// A record of an `s64` result under `key`, signed with `signing` when given.
fn record_bytes(key: &str, signing: Option<&ed25519_dalek::SigningKey>) -> Vec<u8> {
    let value_bytes = record::encode_value(&Value::S64(42));
    let mut meta = RecordMeta::new(
        key.into(),
        "example:hostile/tasks#add-one".into(),
        "ab".repeat(32),
        vec![record::KeyPartMeta {
            name: "inputs".into(),
            key: "77".repeat(32),
            detail: vec![("x".into(), "41".into())],
        }],
        1_700_000_000_000,
        None,
        Ty::S64,
        &value_bytes,
    )
    .with_origin("INPUTS".into(), "hostile.wasm".into());
    if let Some(key_pair) = signing {
        record::sign(&mut meta, key_pair);
    }
    record::encode(&meta, &value_bytes)
}

/// A hit judged by `trust`; panics on anything else, so a benchmark never measures a miss.
fn judged(lookup: Lookup, trust: &Trust) -> Arc<record::Record> {
    match lookup {
        Lookup::Hit(record) => {
            assert_eq!(trust.judge(&record.meta), trust::Verdict::Trusted);
            record
        }
        other => panic!("expected a hit, got {other:?}"),
    }
}

fn signature_checks(c: &mut Criterion) {
    let key_pair = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let untrusting = Trust::default();
    let trusting = Trust::new(None, &[trust::public_key(&key_pair)], true);
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    store.write("unsigned", &record_bytes("unsigned", None)).unwrap();
    store.write("signed", &record_bytes("signed", Some(&key_pair))).unwrap();

    let mut kept = c.benchmark_group("trust_kept");
    kept.bench_function("unsigned", |b| b.iter(|| judged(store.lookup("unsigned", &Ty::S64, 0), &untrusting)));
    kept.bench_function("signed_verified", |b| b.iter(|| judged(store.lookup("signed", &Ty::S64, 0), &trusting)));
    kept.finish();

    let mut first = c.benchmark_group("trust_local_first");
    for (name, key, trust) in [("unsigned", "unsigned", &untrusting), ("signed", "signed", &trusting)] {
        let path = dir.path().join(key);
        first.bench_function(name, |b| {
            b.iter(|| {
                let bytes = std::fs::read(&path).unwrap();
                judged(Lookup::from_record_bytes(&bytes, key, &Ty::S64, 0), trust)
            })
        });
    }
    first.finish();

    let moto = cachehost_tests::servers::S3Server::start(dir.path());
    moto.create_bucket("bench");
    let s3 = ObjectStore::open(OpenOptions {
        results: Some("s3://bench/cache"),
        keys: None,
        settings: S3Settings {
            endpoint: Some(moto.endpoint()),
            allow_http: true,
            access_key_id: Some("testing".into()),
            secret_access_key: Some("testing".into()),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
            ..S3Settings::default()
        },
        value_cache: None,
        warn: Arc::new(|_: &str| {}),
    })
    .unwrap();
    s3.write("unsigned", &record_bytes("unsigned", None)).unwrap();
    s3.write("signed", &record_bytes("signed", Some(&key_pair))).unwrap();
    let mut group = c.benchmark_group("trust_s3_first");
    group.sample_size(30);
    for (name, key, trust) in [("unsigned", "unsigned", &untrusting), ("signed", "signed", &trusting)] {
        // `read` is one GET and skips the store's memory of earlier hits: a first-time hit.
        group.bench_function(name, |b| {
            b.iter(|| {
                let bytes = s3.read(key).unwrap().unwrap();
                judged(Lookup::from_record_bytes(&bytes, key, &Ty::S64, 0), trust)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, signature_checks);
criterion_main!(benches);
