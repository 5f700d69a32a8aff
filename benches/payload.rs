//! The `release-manifests/` layer phase of a build.
//!
//! - `payload/write_tar`: [`write_payload`] of the 200-operator release (201
//!   operators with the CVO, every manifest file) into a sink: per-operator
//!   transforms built from `image-references`, every file rewritten, the
//!   top-level `image-references` and `release-metadata` serialised, Go-style
//!   tar headers.
//! - `payload/write_tar_gzip`: the same tar through sha256 (diff_id), gzip
//!   level 6 and sha256 (digest), the stack [`LayerWriter`] uses: the whole
//!   layer phase.
//!
//! Throughput is in uncompressed tar bytes.
//!
//! [`LayerWriter`]: relbuild_core::layer::LayerWriter
//!
//! Run: `cargo bench -p relbuild-benches --bench payload`.

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flate2::GzBuilder;
use relbuild_core::digest::HashingWriter;
use relbuild_core::release::{PayloadOptions, RewriteMode, write_payload};

/// Phase measured: building the release image's `release-manifests/` layer
/// once every operator's `manifests/` has been extracted.
fn payload(c: &mut Criterion) {
    let images = common::images(200);
    let release = common::release_stream(&images);
    let metadata = common::metadata();
    let ops = common::operators(&images);
    let mut g = c.benchmark_group("payload");
    g.sample_size(20);
    for (name, mode) in [("fixed", RewriteMode::Fixed), ("oc", RewriteMode::Oc)] {
        let options = PayloadOptions { mode, allow_missing_images: false };
        let (_, tar) = write_payload(Vec::new(), &release, &metadata, &ops, options).expect("fixture payload");
        g.throughput(Throughput::Bytes(tar.len() as u64));
        g.bench_function(BenchmarkId::new("write_tar", name), |b| {
            b.iter(|| black_box(write_payload(std::io::sink(), &release, &metadata, &ops, options).expect("payload").0))
        });
        if mode == RewriteMode::Fixed {
            g.bench_function(BenchmarkId::new("write_tar_gzip6", name), |b| {
                b.iter(|| {
                    let blob = HashingWriter::new(std::io::sink());
                    let gz = GzBuilder::new().mtime(0).write(blob, flate2::Compression::new(6));
                    let (_, diff) =
                        write_payload(HashingWriter::new(gz), &release, &metadata, &ops, options).expect("payload");
                    let (gz, diff_id, _) = diff.finish();
                    let (_, digest, size) = gz.finish().expect("sink").finish();
                    black_box((diff_id, digest, size))
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, payload);
criterion_main!(benches);
