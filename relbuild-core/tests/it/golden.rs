//! Byte-exact reproduction of the reference tool's outputs
//! (`testdata/golden/oc-n3`, see its README): the `release-manifests/` layer
//! tar (= the diffID), `image-references`, `release-metadata` and the
//! release image config, from the golden inputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use relbuild_core::Digest;
use relbuild_core::release::build::{prune_unreferenced, release_image};
use relbuild_core::release::config::ReleaseConfigEdit;
use relbuild_core::release::imagestream::ReferenceMode;
use relbuild_core::release::inspect::{ALLOWED_COMPONENTS, tag_annotations};
use relbuild_core::release::metadata::parse_metadata_flag;
use relbuild_core::release::source::{apply_mappings, stream_from_file};
use relbuild_core::release::{
    CincinnatiMetadata, DockerImageConfig, ImageStream, ManifestFile, Mapping, Operator, PayloadOptions, RewriteMode,
    write_payload,
};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/golden/oc-n3")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(golden().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

fn labels() -> BTreeMap<String, BTreeMap<String, String>> {
    serde_json::from_slice(&read("inputs/labels.json")).expect("labels.json")
}

/// An operator from `inputs/<dir>`: the regular files directly under
/// `manifests/` listed in files.tsv, with its mtimes (the last row wins for
/// the all-layers listing of an override).
fn operator(tag: &str, dir: &str, is_override: bool) -> Operator {
    let tsv = String::from_utf8(read(&format!("inputs/{dir}/files.tsv"))).expect("utf8");
    let mut files = BTreeMap::new();
    let mut image_references = None;
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (name, mtime, kind) = (cols[0], cols[2], cols[4]);
        let Some(file) = name.strip_prefix("manifests/") else { continue };
        if kind != "file" || file.contains('/') {
            continue;
        }
        let f = ManifestFile { data: read(&format!("inputs/{dir}/{name}")), mtime: mtime.parse().expect("mtime") };
        if file == "image-references" {
            image_references = Some(f);
        } else {
            files.insert(file.to_owned(), f);
        }
    }
    Operator { tag: tag.to_owned(), files, image_references, is_override }
}

const OPERATORS: [&str; 4] = ["bar-operator", "baz-operator", "cluster-version-operator", "foo-operator"];

/// What oc's extraction does to every tag: the library's label → annotation copy.
fn annotate(is: &mut ImageStream, labels: &BTreeMap<String, BTreeMap<String, String>>) {
    for tag in &mut is.spec.tags {
        let a = tag_annotations(&tag.name, &labels[&tag.name], &ALLOWED_COMPONENTS).expect("valid labels");
        tag.annotations.get_or_insert_with(BTreeMap::new).extend(a);
    }
}

/// The library's `pruneUnreferencedImageStreams` (the base tag always kept) + sort.
fn prune(is: &mut ImageStream, operators: &[Operator]) {
    prune_unreferenced(is, operators, &["cluster-version-operator".to_owned()], &[]).expect("prunes");
    is.sort_tags();
}

struct Case {
    is: ImageStream,
    metadata: CincinnatiMetadata,
    operators: Vec<Operator>,
}

fn case1() -> Case {
    case1_with(&labels())
}

/// Case 1 with the given image labels.
fn case1_with(labels: &BTreeMap<String, BTreeMap<String, String>>) -> Case {
    let mut is = stream_from_file(&read("inputs/is.yaml"), "is.yaml", ReferenceMode::Public, &[]).expect("is.yaml");
    is.metadata.name = "4.99.0".into();
    is.metadata.creation_timestamp = Some("2025-01-02T03:04:05Z".into());
    is.sort_tags();
    annotate(&mut is, labels);
    let operators: Vec<Operator> = OPERATORS.iter().map(|t| operator(t, t, false)).collect();
    prune(&mut is, &operators);
    let md = parse_metadata_flag(
        r#"{"description":"synthetic relbuild fixture","url":"https://example.com/errata/4.99.0"}"#,
    )
    .expect("metadata");
    let metadata = CincinnatiMetadata::new("4.99.0", &["4.98.0", "4.98.1"], &[] as &[&str], md).expect("metadata");
    Case { is, metadata, operators }
}

const OVERRIDE: &str =
    "127.0.0.1:5000/ocp/foo-operator@sha256:53a64dea3d0b615a6c86143e211251b5112498c3f8a33b84b8fc742d9d9aaaf4";

/// `--from-release <case 1> --name=4.99.1 foo-operator=<alt>`.
fn case2() -> Case {
    let mut is = ImageStream::parse(&read("outputs/image-references"), "case 1 image-references").expect("case 1");
    is.metadata.name = "4.99.1".into();
    is.metadata.creation_timestamp = Some("2025-02-03T04:05:06Z".into());
    is.metadata.annotations.insert(
        "release.openshift.io/from-release".into(),
        "127.0.0.1:5000/ocp/release@sha256:098895afb3fe9deef58971a95195b0d94c4190064e004160a1636cd7fb8ba75d".into(),
    );
    let mapped = apply_mappings(&mut is, &[Mapping { tag: "foo-operator".into(), pullspec: OVERRIDE.into() }], &[]);
    assert!(mapped.replaced.contains("foo-operator"));
    let mut labels = labels();
    labels.insert(
        "foo-operator".into(),
        serde_json::from_slice(&read("inputs/foo-operator-alt/labels.json")).expect("alt labels"),
    );
    annotate(&mut is, &labels);
    let operators = vec![
        operator("bar-operator", "bar-operator", false),
        operator("baz-operator", "baz-operator", false),
        operator("cluster-version-operator", "cluster-version-operator", false),
        operator("foo-operator", "foo-operator-alt", true),
    ];
    prune(&mut is, &operators);
    let previous: CincinnatiMetadata = serde_json::from_slice::<serde_json::Value>(&read("outputs/release-metadata"))
        .map(|v| {
            let prev: Vec<String> = serde_json::from_value(v["previous"].clone()).expect("previous");
            let md: BTreeMap<String, String> = serde_json::from_value(v["metadata"].clone()).expect("metadata");
            CincinnatiMetadata::new("4.99.1", &prev, &[] as &[&str], md).expect("metadata")
        })
        .expect("release-metadata");
    Case { is, metadata: previous, operators }
}

fn build(case: &Case, mode: RewriteMode) -> Vec<u8> {
    let (_, tar) = write_payload(
        Vec::new(),
        &case.is,
        &case.metadata,
        &case.operators,
        PayloadOptions { mode, allow_missing_images: false },
    )
    .expect("payload");
    tar
}

fn diff_id(out: &str) -> String {
    let digests = String::from_utf8(read(&format!("{out}/digests.txt"))).expect("utf8");
    digests
        .lines()
        .find_map(|l| l.strip_prefix("release layer diff_id (sha256 of release-layer.tar): "))
        .expect("diff_id line")
        .to_owned()
}

#[test]
fn golden_case1_json_files() {
    let case = case1();
    assert_eq!(
        String::from_utf8(case.is.to_json().expect("json")).expect("utf8"),
        String::from_utf8(read("outputs/image-references")).expect("utf8")
    );
    assert_eq!(case.metadata.to_json().expect("json"), read("outputs/release-metadata"));
}

#[test]
fn golden_case2_json_files() {
    let case = case2();
    assert_eq!(
        String::from_utf8(case.is.to_json().expect("json")).expect("utf8"),
        String::from_utf8(read("outputs-replace/image-references")).expect("utf8")
    );
    assert_eq!(case.metadata.to_json().expect("json"), read("outputs-replace/release-metadata"));
}

fn assert_tar_eq(got: &[u8], out: &str) {
    let want = read(&format!("{out}/release-layer.tar"));
    if got != want.as_slice() {
        let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!(
            "{out}: tar differs at byte {at} (block {}, offset {}); got {} bytes, want {}:\n{}",
            at / 512,
            at % 512,
            got.len(),
            want.len(),
            listing(got).join("\n")
        );
    }
    assert_eq!(Digest::sha256(got).to_string(), diff_id(out));
}

#[test]
fn golden_case1_payload_tar_oc_mode() {
    assert_tar_eq(&build(&case1(), RewriteMode::Oc), "outputs");
}

#[test]
fn golden_case2_payload_tar_oc_mode() {
    assert_tar_eq(&build(&case2(), RewriteMode::Oc), "outputs-replace");
}

#[test]
fn deterministic() {
    assert_eq!(build(&case2(), RewriteMode::Fixed), build(&case2(), RewriteMode::Fixed));
}

fn entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut a = tar::Archive::new(tar);
    a.entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("data");
            (name, data)
        })
        .collect()
}

/// Every header field Go's writer sets, and the content, of each entry.
fn headers(tar: &[u8]) -> Vec<(String, u32, u64, u8, u64, Vec<u8>)> {
    use std::io::Read;
    let mut a = tar::Archive::new(tar);
    a.entries()
        .expect("entries")
        .map(|e| {
            let mut e = e.expect("entry");
            let h = e.header().clone();
            let name = e.path().expect("path").to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("data");
            let (mode, mtime, size) = (h.mode().expect("mode"), h.mtime().expect("mtime"), h.size().expect("size"));
            (name, mode, mtime, h.entry_type().as_byte(), size, data)
        })
        .collect()
}

/// oc writes `io.openshift.build.version-display-names: ""` on every tag
/// whose image has versions but no display-names label (or an empty one).
/// The vector's operand `bar` has both labels; without the display names,
/// oc's output differs from the vector in exactly that value, so the
/// expected bytes are the vector's with `bar`'s display names emptied.
#[test]
fn golden_case1_versions_without_display_names() {
    const DISPLAY: &str = "io.openshift.build.version-display-names";
    let golden_refs = String::from_utf8(read("outputs/image-references")).expect("utf8");
    let bar_at = golden_refs.find("\"name\": \"bar\"").expect("bar tag");
    let line = format!("\"{DISPLAY}\": \"kubernetes=Kubernetes\"");
    let value_at = bar_at + golden_refs[bar_at..].find(&line).expect("bar's display names");
    let mut want = golden_refs.clone();
    want.replace_range(value_at..value_at + line.len(), &format!("\"{DISPLAY}\": \"\""));
    let golden_tar = headers(&read("outputs/release-layer.tar"));

    for (what, edit) in [("absent", None), ("empty", Some(""))] {
        let mut labels = labels();
        let bar = labels.get_mut("bar").expect("bar labels");
        match edit {
            None => bar.remove(DISPLAY),
            Some(v) => bar.insert(DISPLAY.to_owned(), v.to_owned()),
        };
        let case = case1_with(&labels);
        let got = String::from_utf8(case.is.to_json().expect("json")).expect("utf8");
        assert_eq!(got, want, "display names {what}");
        // The payload tar: oc's, entry for entry and header for header, with
        // that image-references.
        let tar = headers(&build(&case, RewriteMode::Oc));
        assert_eq!(tar.len(), golden_tar.len());
        for (g, w) in tar.iter().zip(&golden_tar) {
            if g.0 == "release-manifests/image-references" {
                assert_eq!((&g.0, g.1, g.2, g.3), (&w.0, w.1, w.2, w.3));
                assert_eq!(g.5, want.as_bytes(), "display names {what}");
                assert_eq!(g.4, want.len() as u64);
            } else {
                assert_eq!(g, w, "display names {what}");
            }
        }
    }
}

fn listing(tar: &[u8]) -> Vec<String> {
    entries(tar).into_iter().map(|(n, d)| format!("{n} {}", d.len())).collect()
}

/// Fixed mode differs from oc only where documented: the comma- and
/// single-space-separated refs of `*_03_edge_cases.yaml` are rewritten, and
/// the override is written once (no `_2` copies).
#[test]
fn golden_fixed_mode_differences() {
    for (case, out) in [(case1(), "outputs"), (case2(), "outputs-replace")] {
        let oc = entries(&read(&format!("{out}/release-layer.tar")));
        let fixed = entries(&build(&case, RewriteMode::Fixed));
        let oc_map: BTreeMap<_, _> = oc.iter().cloned().collect();
        for (name, data) in &fixed {
            let want = oc_map.get(name).unwrap_or_else(|| panic!("{out}: unexpected entry {name}"));
            if name.ends_with("_03_edge_cases.yaml") {
                let text = String::from_utf8(data.clone()).expect("utf8");
                let left: Vec<&str> = text.lines().filter(|l| l.contains("quay.io/openshift/origin-")).collect();
                assert_eq!(left.len(), 3, "{out}/{name}: only suffixed/prefixed/inUrl stay:\n{text}");
                assert_ne!(data, want, "{name}");
            } else {
                assert_eq!(data, want, "{out}: {name}");
            }
        }
        let missing: Vec<&String> = oc.iter().map(|(n, _)| n).filter(|n| !fixed.iter().any(|(f, _)| f == *n)).collect();
        if out == "outputs" {
            assert!(missing.is_empty(), "{missing:?}");
        } else {
            // the second pass over the override: every foo-operator file again,
            // plus the 4th copy of the shared rule
            assert_eq!(missing.len(), 10, "{missing:?}");
            assert!(missing.iter().all(|n| n.contains("foo-operator") || n.ends_with("prometheusrule_4.yaml")));
        }
    }
}

#[test]
fn golden_release_config() {
    let base = read("inputs/cluster-version-operator/config.json");
    for (out, name, created, payload_size) in [
        ("outputs", "4.99.0", "2025-01-02T03:04:05Z", 2884),
        ("outputs-replace", "4.99.1", "2025-02-03T04:05:06Z", 3387),
    ] {
        let edit = ReleaseConfigEdit {
            release_name: name.into(),
            base_image_digest: Some("sha256:ab8014824379bed54bfd6dd88142bd111459bf30448903d476225e2f8ccbe59f".into()),
            created: created.parse().expect("time"),
            layer_diff_id: diff_id(out),
            layer_sizes: vec![185, 686, payload_size],
        };
        let cfg = DockerImageConfig::parse(&base).expect("base config").into_release_config(&edit);
        assert_eq!(
            String::from_utf8(cfg.to_json().expect("json")).expect("utf8"),
            String::from_utf8(read(&format!("{out}/config.json"))).expect("utf8"),
            "{out}"
        );
    }
}

fn digest_line(out: &str, prefix: &str) -> String {
    let digests = String::from_utf8(read(&format!("{out}/digests.txt"))).expect("utf8");
    digests.lines().find_map(|l| l.strip_prefix(prefix)).expect("digest line").to_owned()
}

/// The library's image assembly (config edit + Docker schema 2 manifest)
/// from the golden base and payload layer gives oc's manifest and config.
#[test]
fn golden_release_manifest() {
    let base_raw =
        relbuild_core::RawManifest::new(read("inputs/cluster-version-operator/manifest.json"), None).expect("base");
    let relbuild_core::Manifest::Image(base) = base_raw.parse().expect("parses") else { panic!("an image") };
    let base_ref: relbuild_core::Reference = "127.0.0.1:5000/ocp/stream".parse().expect("reference");
    let base_digest: Digest =
        "sha256:ab8014824379bed54bfd6dd88142bd111459bf30448903d476225e2f8ccbe59f".parse().expect("digest");
    assert_eq!(base_raw.digest(), &base_digest);
    for (out, name, created) in
        [("outputs", "4.99.0", "2025-01-02T03:04:05Z"), ("outputs-replace", "4.99.1", "2025-02-03T04:05:06Z")]
    {
        let layer: Digest = digest_line(out, "release layer digest (sha256 of release-layer.tar.gz, Go gzip): ")
            .parse()
            .expect("digest");
        let size: u64 = digest_line(out, "release layer compressed size: ").parse().expect("size");
        let diff: Digest = diff_id(out).parse().expect("diff id");
        let (image, warning) = release_image(
            &base_ref,
            &base_digest,
            &base,
            &read("inputs/cluster-version-operator/config.json"),
            (&layer, size),
            &diff,
            name,
            created.parse().expect("time"),
        )
        .expect("assembles");
        assert_eq!(warning, None);
        assert_eq!(
            String::from_utf8(image.config.to_vec()).expect("utf8"),
            String::from_utf8(read(&format!("{out}/config.json"))).expect("utf8"),
            "{out}"
        );
        assert_eq!(
            String::from_utf8(image.manifest.bytes().to_vec()).expect("utf8"),
            String::from_utf8(read(&format!("{out}/manifest.json"))).expect("utf8"),
            "{out}"
        );
    }
}
