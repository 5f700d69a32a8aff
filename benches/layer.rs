//! Layer I/O benchmarks (CPU only: everything in memory).
//!
//! - `layer_write`: tar + compress + double sha256 (diff_id and digest) of a
//!   ~16 MiB mixed file set with [`LayerWriter`]; gzip level 6 (the default,
//!   as Go), zstd level 3, and uncompressed for the tar + hash share.
//! - `layer_read`: gunzip + tar walk + extract `manifests/` with
//!   [`Extractor`] from an operator top layer.
//!
//! Run: `cargo bench -p relbuild-benches --bench layer`.

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use relbuild_core::image::Compression;
use relbuild_core::layer::{ExtractOptions, Extractor, LayerEntry, LayerWriter, WriteOptions, open_layer};

/// ~16 MiB as a release's layers hold it: half binaries (8 x 1 MiB of
/// incompressible bytes), half YAML/JSON manifests (the fixture stream's
/// operator files, ~3 KiB each, repeated under distinct names).
fn mixed_files() -> Vec<LayerEntry> {
    let mut entries = vec![LayerEntry::dir("usr", 0o755, 0), LayerEntry::dir("usr/bin", 0o755, 0)];
    for i in 0..8u64 {
        entries.push(LayerEntry::file(format!("usr/bin/tool-{i}"), 0o755, 0, common::noise(1 << 20, i)));
    }
    let ops = common::operators(&common::images(200));
    let texts: Vec<(&str, &[u8])> =
        ops.iter().flat_map(|o| o.files.iter().map(|(n, f)| (n.as_str(), f.data.as_slice()))).collect();
    entries.push(LayerEntry::dir("manifests", 0o755, 0));
    let (mut text_bytes, mut i) = (0usize, 0usize);
    while text_bytes < 8 << 20 {
        let (name, data) = texts[i % texts.len()];
        // Names differ per copy; long names exercise GNU long-name headers.
        entries.push(LayerEntry::file(format!("manifests/{i:05}_{name}"), 0o644, 0, data));
        text_bytes += data.len();
        i += 1;
    }
    entries
}

/// Phase measured: writing a layer (the release image's `release-manifests/`
/// layer, and every layer the fixture generator builds): tar headers,
/// compression, and sha256 of both the tar (diff_id) and the blob (digest).
fn layer_write(c: &mut Criterion) {
    let entries = mixed_files();
    let input: u64 = entries
        .iter()
        .map(|e| match &e.content {
            relbuild_core::layer::EntryContent::File(d) => d.len() as u64,
            _ => 0,
        })
        .sum();
    let mut g = c.benchmark_group("layer_write");
    g.throughput(Throughput::Bytes(input));
    g.sample_size(10);
    for (name, options) in [
        ("gzip6", WriteOptions::default()),
        ("zstd3", WriteOptions::default().compression(Compression::Zstd)),
        ("none", WriteOptions::default().compression(Compression::None)),
    ] {
        g.bench_function(BenchmarkId::new(name, "16MiB"), |b| {
            b.iter(|| {
                let mut w = LayerWriter::new(std::io::sink(), &options).expect("sink");
                w.append_all(&entries).expect("valid entries");
                black_box(w.finish().expect("sink").0)
            })
        });
    }
    g.finish();
}

/// A realistic operator top layer: the operator binary (2 MiB, incompressible)
/// and `manifests/` with ~24 files, ~400 KiB in all (the reference corpus
/// averages 22 files and ~410 KiB per operator), built from the fixture
/// operator files.
fn operator_top_layer() -> (Vec<u8>, u64) {
    let ops = common::operators(&common::images(200));
    let mut entries = vec![
        LayerEntry::dir("usr", 0o755, 0),
        LayerEntry::dir("usr/bin", 0o755, 0),
        LayerEntry::file("usr/bin/operator", 0o755, 0, common::noise(2 << 20, 7)),
        LayerEntry::dir("manifests", 0o755, 0),
    ];
    // One file per 16 KiB, concatenating fixture documents with `---`.
    let docs: Vec<&[u8]> = ops.iter().flat_map(|o| o.files.values().map(|f| f.data.as_slice())).collect();
    let mut docs = docs.into_iter().cycle();
    for i in 0..24 {
        let mut data = Vec::new();
        while data.len() < 16 << 10 {
            data.extend_from_slice(docs.next().expect("cycle"));
            data.extend_from_slice(b"\n---\n");
        }
        entries.push(LayerEntry::file(format!("manifests/0000_50_operator_{i:02}.yaml"), 0o644, 0, data));
    }
    let ir = ops[0].image_references.as_ref().expect("fixture operators have image-references");
    entries.push(LayerEntry::file("manifests/image-references", 0o644, 0, ir.data.clone()));
    let mut w = LayerWriter::new(Vec::new(), &WriteOptions::default()).expect("vec");
    w.append_all(&entries).expect("valid entries");
    let (info, blob) = w.finish().expect("vec");
    (blob, info.uncompressed_size)
}

/// The fixture generator's own operator top layer (small: ~12 entries, ~3 KiB).
fn fixture_top_layer() -> (Vec<u8>, u64) {
    let images = common::images(1);
    let img = images.iter().find(|i| i.tag == "cluster-monitoring-operator").expect("operator 0");
    let built = relbuild_testdata::generate::build_image(img).expect("fixture image builds");
    let (_, blob) = built.layers.last().expect("two layers");
    // The tar size: decompress once.
    let mut tar = Vec::new();
    std::io::copy(&mut open_layer(&blob[..], Compression::Gzip).expect("gzip"), &mut tar).expect("valid gzip");
    (blob.to_vec(), tar.len() as u64)
}

/// Phase measured: reading an operator image's top layer from a blob and
/// keeping `manifests/` (done once per operator per cold build; the tar is
/// walked to its end).
fn layer_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("layer_read");
    for (name, (blob, tar_len)) in
        [("operator_top_2MiB_bin_400KiB_yaml", operator_top_layer()), ("fixture_operator_top", fixture_top_layer())]
    {
        g.throughput(Throughput::Bytes(tar_len));
        g.bench_function(BenchmarkId::new("gunzip_extract_manifests", name), |b| {
            b.iter(|| {
                let mut ex = Extractor::new("manifests/", ExtractOptions::default().top_level_only(true));
                ex.add_layer(open_layer(&blob[..], Compression::Gzip).expect("gzip")).expect("valid layer");
                black_box(ex.finish())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, layer_write, layer_read);
criterion_main!(benches);
