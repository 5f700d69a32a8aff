//! Manifest and config (de)serialisation benchmarks.
//!
//! - `manifest/new`: [`RawManifest::new`] (sha256 + media-type probe) of a
//!   Docker schema 2 manifest and a Docker manifest list, with and without a
//!   `Content-Type` header.
//! - `manifest/parse`: [`RawManifest::parse`] to the typed view.
//! - `manifest/from_manifest`: [`RawManifest::from_manifest`] (Go-compatible
//!   indented JSON + sha256), what every push of a manifest does.
//! - `config/parse`: [`ImageConfig::from_slice`] of an operator image config.
//!
//! Run: `cargo bench -p relbuild-benches --bench manifest`.

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use relbuild_core::image::{Descriptor, ImageConfig, ImageIndex, Manifest, MediaType, Platform, RawManifest};

struct Inputs {
    /// An operator image's Docker schema 2 manifest (two layers).
    image: RawManifest,
    /// A four-architecture Docker manifest list.
    list: RawManifest,
    /// The operator image's config (labels, env, history).
    config: Vec<u8>,
}

fn inputs() -> Inputs {
    let images = common::images(1);
    let img = images.iter().find(|i| i.tag == "cluster-monitoring-operator").expect("operator 0");
    let built = relbuild_testdata::generate::build_image(img).expect("fixture image builds");
    let platform = |architecture: &str| Platform::new("linux", architecture);
    let manifests = ["amd64", "arm64", "ppc64le", "s390x"]
        .iter()
        .map(|arch| {
            let mut d = built.manifest.descriptor();
            d.digest = common::fake_digest(arch);
            d.platform = Some(platform(arch));
            d
        })
        .collect::<Vec<Descriptor>>();
    let list =
        ImageIndex { schema_version: 2, media_type: Some(MediaType::DockerManifestList), manifests, annotations: None };
    let list = RawManifest::from_manifest(&Manifest::Index(list)).expect("serialises");
    Inputs { image: built.manifest, list, config: built.config.1.to_vec() }
}

/// Phase measured: reading manifests (every image the build inspects: one
/// manifest GET, possibly a list first, then the parse).
fn manifest(c: &mut Criterion) {
    let inputs = inputs();
    let mut g = c.benchmark_group("manifest");
    for (name, raw) in [("docker_v2s2", &inputs.image), ("docker_list_4arch", &inputs.list)] {
        let bytes = raw.bytes().clone();
        let content_type = raw.media_type().as_str().to_owned();
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_function(BenchmarkId::new("new_probe", name), |b| {
            b.iter(|| black_box(RawManifest::new(bytes.clone(), None).expect("valid")))
        });
        g.bench_function(BenchmarkId::new("new_content_type", name), |b| {
            b.iter(|| black_box(RawManifest::new(bytes.clone(), Some(&content_type)).expect("valid")))
        });
        g.bench_function(BenchmarkId::new("parse", name), |b| b.iter(|| black_box(raw.parse().expect("valid"))));
        let typed = raw.parse().expect("valid");
        g.bench_function(BenchmarkId::new("from_manifest", name), |b| {
            b.iter(|| black_box(RawManifest::from_manifest(&typed).expect("serialises")))
        });
    }
    g.finish();
}

/// Phase measured: reading image configs (labels of every image, and the
/// base image config the release config is derived from).
fn config(c: &mut Criterion) {
    let inputs = inputs();
    let mut g = c.benchmark_group("config");
    g.throughput(Throughput::Bytes(inputs.config.len() as u64));
    g.bench_function("parse/operator", |b| {
        b.iter(|| black_box(ImageConfig::from_slice(&inputs.config).expect("valid")))
    });
    g.finish();
}

criterion_group!(benches, manifest, config);
criterion_main!(benches);
