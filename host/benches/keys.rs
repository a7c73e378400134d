//! The INPUTS key of a 256 MiB `list<u8>` argument: the canonical encoding hashed with
//! BLAKE3, without materialising the encoding (hashing alone, reported in bytes per second).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use cachehost::value::{canonical, Ty, Value};

fn inputs_key_256mib(c: &mut Criterion) {
    const SIZE: usize = 256 << 20;
    let value = Value::Bytes((0..SIZE).map(|i| (i * 31 % 251) as u8).collect());
    let ty = Ty::List(Box::new(Ty::U8));
    let mut group = c.benchmark_group("inputs_key");
    group.sample_size(10).throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("list_u8_256MiB", |b| b.iter(|| canonical::digest(&value, &ty).unwrap()));
    group.finish();
}

criterion_group!(benches, inputs_key_256mib);
criterion_main!(benches);
