//! ImageStream benchmarks.
//!
//! - `imagestream/parse_yaml`: [`ImageStream::parse`] of the input stream
//!   file (`-f`) describing the 200-operator fixture stream (402 tags by
//!   digest, spec and status), as `relbuild-testdata` writes it.
//! - `imagestream/parse_json`: the same stream as JSON (oc accepts both).
//! - `imagestream/to_json`: [`ImageStream::to_json`] of the release's
//!   `image-references` (401 annotated tags, Go `MarshalIndent` format).
//!
//! Run: `cargo bench -p relbuild-benches --bench imagestream`.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use relbuild_core::image::Reference;
use relbuild_core::release::ImageStream;
use relbuild_testdata::generate::image_stream_yaml;

/// Phase measured: reading the input stream (start of every build) and
/// writing `release-manifests/image-references` (payload layer).
fn imagestream(c: &mut Criterion) {
    let images = common::images(200);
    let repo: Reference = "registry.example.com/ocp/stream".parse().expect("valid reference");
    let yaml = image_stream_yaml("4.99.0", &repo, &common::digests(&images)).into_bytes();
    let input = ImageStream::parse(&yaml, "is.yaml").expect("generated stream parses");
    let json = input.to_json().expect("serialises");
    let release = common::release_stream(&images);
    let out = release.to_json().expect("serialises");

    let mut g = c.benchmark_group("imagestream");
    g.throughput(Throughput::Bytes(yaml.len() as u64));
    g.bench_function("parse_yaml/stream200", |b| {
        b.iter(|| black_box(ImageStream::parse(&yaml, "is.yaml").expect("valid")))
    });
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("parse_json/stream200", |b| {
        b.iter(|| black_box(ImageStream::parse(&json, "is.json").expect("valid")))
    });
    g.throughput(Throughput::Bytes(out.len() as u64));
    g.bench_function("to_json/release200", |b| b.iter(|| black_box(release.to_json().expect("serialises"))));
    g.finish();
}

criterion_group!(benches, imagestream);
criterion_main!(benches);
