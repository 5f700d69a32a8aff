//! CPU-path benchmarks of relbuild-core (no network).
//!
//! - `sha256`: digest throughput of [`HashingWriter`], the hash every blob
//!   passes through on push, pull and layer write.
//!
//! Run: `cargo bench -p relbuild-benches --bench core`. Results and how to
//! read them: `benches/README.md`.

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relbuild_core::digest::HashingWriter;

mod common;

/// Phase measured: hashing blob bytes while they stream (push/pull/write).
fn sha256(c: &mut Criterion) {
    let data = common::noise(16 << 20, 0);
    let mut g = c.benchmark_group("sha256");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("hashing_writer_16MiB", |b| {
        b.iter(|| {
            let mut w = HashingWriter::new(std::io::sink());
            for chunk in data.chunks(64 << 10) {
                w.write_all(chunk).expect("sink never fails");
            }
            black_box(w.finish().1)
        })
    });
    g.finish();
}

criterion_group!(benches, sha256);
criterion_main!(benches);
