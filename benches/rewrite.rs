//! Pullspec rewriting benchmarks (spec §2.3: one Aho-Corasick automaton per
//! operator over all its source pullspecs, one pass per file).
//!
//! - `rewrite/stream200`: every manifest file of the 200-operator fixture
//!   stream (201 operators with the CVO) through its operator's
//!   [`ImageMapper`], in [`RewriteMode::Fixed`] and [`RewriteMode::Oc`]; and
//!   the full per-file [`OperatorTransform`] (pullspecs, then
//!   `0.0.1-snapshot` versions). Throughput in manifest bytes.
//! - `rewrite_setup`: building those 201 transforms (and the mappers alone)
//!   from the operators' `image-references`. Throughput in operators.
//! - `rewrite_scaling/repos`: one 256 KiB file with the same bytes and the
//!   same number of references, against 1, 10, 100 and 1000 source
//!   repositories. Time must not depend on the number of repositories.
//! - `rewrite_scaling/bytes`: 100 repositories, files of 16 KiB to 1 MiB.
//!   Time must be linear in bytes (constant throughput).
//!
//! Run: `cargo bench -p relbuild-benches --bench rewrite`.

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use relbuild_core::release::{ImageMapper, ImageReference, OperatorTransform, RewriteMode};

/// Phase measured: rewriting the operators' manifests while the
/// `release-manifests/` layer is written (the CPU-bound part of a build).
fn stream200(c: &mut Criterion) {
    let images = common::images(200);
    let release = common::release_stream(&images);
    let ops = common::operators(&images);
    let bytes = common::manifest_bytes(&ops);
    let mut g = c.benchmark_group("rewrite");
    g.throughput(Throughput::Bytes(bytes));
    for (name, mode) in [("fixed", RewriteMode::Fixed), ("oc", RewriteMode::Oc)] {
        let work: Vec<(ImageMapper, Vec<&[u8]>)> = ops
            .iter()
            .map(|op| {
                let m = ImageMapper::new(&op.tag, &common::references(op, &release), mode).expect("unique sources");
                (m, op.files.values().map(|f| f.data.as_slice()).collect())
            })
            .collect();
        g.bench_function(BenchmarkId::new("stream200_image_mapper", name), |b| {
            b.iter(|| {
                for (mapper, files) in &work {
                    for data in files {
                        black_box(mapper.rewrite(data));
                    }
                }
            })
        });
    }
    let work: Vec<(OperatorTransform, Vec<&[u8]>)> = ops
        .iter()
        .map(|op| {
            let ir = &op.image_references.as_ref().expect("fixture operators have image-references").data;
            let t = OperatorTransform::from_image_references(&op.tag, ir, &release, false, RewriteMode::Fixed)
                .expect("fixture image-references resolve");
            (t, op.files.values().map(|f| f.data.as_slice()).collect())
        })
        .collect();
    g.bench_function(BenchmarkId::new("stream200_operator_transform", "fixed"), |b| {
        b.iter(|| {
            for (t, files) in &work {
                for data in files {
                    black_box(t.apply(data).expect("known versions"));
                }
            }
        })
    });
    g.finish();

    // The per-operator setup the payload phase pays before rewriting:
    // parse `image-references`, resolve targets, build the automaton and
    // the version table.
    let mut g = c.benchmark_group("rewrite_setup");
    g.throughput(Throughput::Elements(ops.len() as u64));
    let irs: Vec<(&str, &[u8])> = ops
        .iter()
        .map(|op| (op.tag.as_str(), op.image_references.as_ref().expect("image-references").data.as_slice()))
        .collect();
    g.bench_function(BenchmarkId::new("stream200_operator_transforms", "fixed"), |b| {
        b.iter(|| {
            for (tag, ir) in &irs {
                black_box(
                    OperatorTransform::from_image_references(tag, ir, &release, false, RewriteMode::Fixed)
                        .expect("fixture image-references resolve"),
                );
            }
        })
    });
    let refs: Vec<(&str, Vec<ImageReference>)> =
        ops.iter().map(|op| (op.tag.as_str(), common::references(op, &release))).collect();
    g.bench_function(BenchmarkId::new("stream200_image_mappers", "fixed"), |b| {
        b.iter(|| {
            for (tag, refs) in &refs {
                black_box(ImageMapper::new(tag, refs, RewriteMode::Fixed).expect("unique sources"));
            }
        })
    });
    g.finish();
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `repos` source repositories, all of the same length.
fn references(repos: usize) -> Vec<ImageReference> {
    (0..repos)
        .map(|i| ImageReference {
            name: format!("component-{i:04}"),
            source: format!("quay.io/openshift/origin-component-{i:04}"),
            target: format!("{}@{DIGEST}", common::RELEASE_REPO),
        })
        .collect()
}

/// A YAML file of about `len` bytes: a pullspec every other line, cycling
/// over the `repos` sources, so that for a given `len` the bytes and the
/// number of matches are the same whatever `repos` is.
fn file(len: usize, repos: usize) -> Vec<u8> {
    let mut out = String::with_capacity(len + 128);
    let mut j = 0;
    while out.len() < len {
        out.push_str(&format!(
            "      - name: container-{j}\n        image: quay.io/openshift/origin-component-{:04}:latest\n",
            j % repos
        ));
        out.push_str("        args: [\"--v=2\", \"--config=/etc/config.yaml\"]  # not an image\n");
        j += 1;
    }
    out.into_bytes()
}

/// Phase measured: the same per-file rewrite, isolating its complexity:
/// linear in file bytes, independent of how many sources the operator has.
fn scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("rewrite_scaling");
    for repos in [1usize, 10, 100, 1000] {
        let mapper = ImageMapper::new("op", &references(repos), RewriteMode::Fixed).expect("unique sources");
        let data = file(256 << 10, repos);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(BenchmarkId::new("repos", repos), |b| b.iter(|| black_box(mapper.rewrite(&data))));
    }
    let mapper = ImageMapper::new("op", &references(100), RewriteMode::Fixed).expect("unique sources");
    for kib in [16usize, 64, 256, 1024] {
        let data = file(kib << 10, 100);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_function(BenchmarkId::new("bytes_KiB", kib), |b| b.iter(|| black_box(mapper.rewrite(&data))));
    }
    g.finish();
}

criterion_group!(benches, stream200, scaling);
criterion_main!(benches);
