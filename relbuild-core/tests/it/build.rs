//! `release::new_release` end to end against a real `docker-registry`,
//! with the fixture stream of `relbuild_testdata`, cross-checked with skopeo.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::Path;

use relbuild_core::Digest;
use relbuild_core::image::{ImageIndex, Manifest, MediaType, Platform, RawManifest, Reference};
use relbuild_core::registry::{Client, ClientOptions, RetryPolicy};
use relbuild_core::release::{
    LintMode, Mapping, NewContext, NewOptions, NewOutcome, OutputOptions, ReferenceMode, RewriteMode, Source,
    assemble_stream, new_release,
};
use relbuild_core::{Descriptor, NoReporter};
use relbuild_testdata::fixture::{FileKind, FixtureFile, FixtureImage, MTIME, Role, StreamSpec, stream_images};
use relbuild_testdata::generate::{BuiltImage, build_image, image_stream_yaml, push_image, push_images};
use relbuild_testdata::registry::{TestRegistry, skopeo, skopeo_inspect_raw};

const CREATED: &str = "2025-01-02T03:04:05Z";

fn client() -> Client {
    ClientOptions::default().with_insecure(true).with_retry(RetryPolicy::none()).build().expect("client builds")
}

struct Fx {
    reg: TestRegistry,
    client: Client,
    stream: Reference,
    digests: BTreeMap<String, Digest>,
    yaml: String,
}

impl Fx {
    async fn new() -> Self {
        let reg = TestRegistry::start().expect("registry starts");
        let client = client();
        let stream: Reference = format!("{}/ocp/stream", reg.host()).parse().expect("reference");
        let images: Vec<BuiltImage> =
            stream_images(&StreamSpec { operators: 2 }).iter().map(|i| build_image(i).expect("builds")).collect();
        let digests = push_images(&client, &stream, images, 8).await.expect("pushes");
        let yaml = image_stream_yaml("stream", &stream, &digests);
        Self { reg, client, stream, digests, yaml }
    }

    fn pullspec(&self, tag: &str) -> String {
        format!("{}@{}", self.stream.name(), self.digests[tag])
    }

    fn is_file(&self, mode: ReferenceMode) -> Source {
        Source::ImageStreamFile { bytes: self.yaml.clone().into_bytes(), file: "is.yaml".into(), mode }
    }

    fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.reg.host())
    }

    async fn push(&self, image: &FixtureImage) -> String {
        let built = build_image(image).expect("builds");
        let digest = push_image(&self.client, &self.stream, &built).await.expect("pushes");
        format!("{}@{digest}", self.stream.name())
    }

    async fn build(&self, ctx: &NewContext, options: &NewOptions) -> Result<NewOutcome, relbuild_core::Error> {
        new_release(&self.client, ctx, options, &NoReporter).await
    }

    /// `(status, body)` of a plain GET on the registry.
    fn get(&self, path: &str) -> (u16, String) {
        self.reg.get(path).expect("the registry answers")
    }
}

fn ctx(source: Source) -> NewContext {
    NewContext { source, mappings: Vec::new(), created: CREATED.parse().expect("time") }
}

fn named(name: &str) -> NewOptions {
    NewOptions { name: Some(name.into()), ..NewOptions::default() }
}

fn mapping(tag: &str, pullspec: &str) -> Mapping {
    Mapping { tag: tag.into(), pullspec: pullspec.into() }
}

fn files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                String::from_utf8(std::fs::read(e.path()).expect("read")).expect("utf8"),
            )
        })
        .collect()
}

/// The error and all its causes, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn file(path: &str, data: &str) -> FixtureFile {
    FixtureFile { path: path.into(), mode: 0o644, mtime: MTIME, kind: FileKind::File(data.as_bytes().to_vec()) }
}

/// A one-layer operator image with these top-layer files.
fn operator_image(tag: &str, files: Vec<FixtureFile>) -> FixtureImage {
    FixtureImage {
        tag: tag.into(),
        role: Role::Operator,
        labels: BTreeMap::from([("io.openshift.release.operator".into(), "true".into())]),
        layers: vec![files],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_stream_file_to_every_output() {
    let fx = Fx::new().await;
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = fx.repo("ocp/release");
    let options = NewOptions {
        previous: Some(vec!["4.98.0".into()]),
        metadata: Some(r#"{"url":"https://example.com/errata"}"#.into()),
        output: OutputOptions {
            to_image: Some(repo.clone()),
            to_dir: Some(tmp.path().join("dir")),
            to_file: Some(tmp.path().join("layer.tar.gz")),
            to_oci_layout: Some(tmp.path().join("oci")),
            to_signature: Some(tmp.path().join("release.signature")),
            dry_run: false,
            force: false,
        },
        ..named("4.99.0")
    };
    let out = fx.build(&ctx(fx.is_file(ReferenceMode::Public)), &options).await.expect("builds");
    let digest = out.digest.clone().expect("an image was built");
    assert_eq!(out.summary_line().expect("line"), format!("{digest} 4.99.0 {CREATED}"));
    assert_eq!(out.pushed.as_ref().map(ToString::to_string), Some(format!("{repo}:4.99.0")));

    // skopeo reads exactly what we built.
    let manifest = out.manifest().expect("manifest");
    assert_eq!(skopeo_inspect_raw(&format!("{repo}:4.99.0")).expect("skopeo"), manifest.bytes().to_vec());
    let config = skopeo(&["inspect", "--config", "--tls-verify=false", &format!("docker://{repo}@{digest}")])
        .expect("skopeo --config");
    let config: serde_json::Value = serde_json::from_str(&config).expect("json");
    assert_eq!(config["config"]["Labels"]["io.openshift.release"], "4.99.0");
    assert_eq!(
        out.images[0].config,
        bytes::Bytes::from(
            skopeo(&["inspect", "--raw", "--config", "--tls-verify=false", &format!("docker://{repo}@{digest}")])
                .expect("raw config")
                .into_bytes(),
        )
    );
    let Manifest::Image(m) = manifest.parse().expect("parses") else { panic!("an image manifest") };
    assert_eq!(manifest.media_type(), &MediaType::DockerManifest);
    assert!(m.layers.iter().all(|l| l.media_type == MediaType::DockerLayerGzip));
    assert_eq!(m.layers.last().map(|l| &l.digest), Some(&out.layer.digest), "the payload is the top layer");
    assert_eq!(m.layers.len(), 3, "the CVO's two layers and the payload");

    // Selection and pruning.
    assert_eq!(out.pruned, ["unreferenced-thing"]);
    assert_eq!(out.operators, ["cluster-monitoring-operator", "cluster-version-operator", "component-001-operator"]);
    let prom = out.release.tag("prometheus").expect("prometheus kept");
    let a = prom.annotations.as_ref().expect("annotations");
    assert_eq!(a["io.openshift.build.versions"], "kubernetes=1.29.1");
    assert_eq!(a["io.openshift.build.commit.ref"], "");
    assert_eq!(a["io.openshift.build.version-display-names"], "kubernetes=Kubernetes");
    assert_eq!(prom.docker_pullspec(), Some(fx.pullspec("prometheus").as_str()));
    // An operand with versions and no display-names label gets the
    // annotation empty, as oc writes it.
    let c1 = out.release.tag("component-001").and_then(|t| t.annotations.as_ref()).expect("component-001 kept");
    assert_eq!(relbuild_testdata::fixture::operand_display_names(1), None);
    assert_eq!(c1["io.openshift.build.versions"], "kubernetes=1.29.1");
    assert_eq!(c1["io.openshift.build.version-display-names"], "");

    // Payload content (to-dir).
    let dir = files(&tmp.path().join("dir"));
    assert_eq!(dir["release-metadata"], String::from_utf8(out.metadata.to_json().expect("json")).expect("utf8"));
    assert!(dir["release-metadata"].contains("\"4.98.0\""));
    assert_eq!(dir["image-references"], String::from_utf8(out.release.to_json().expect("json")).expect("utf8"));
    let edges = &dir["0000_50_cluster-monitoring-operator_03_edge_cases.yaml"];
    let prom_ps = fx.pullspec("prometheus");
    let cmo_ps = fx.pullspec("cluster-monitoring-operator");
    assert!(edges.contains(&format!("commaSeparated: {prom_ps},{cmo_ps}\n")), "{edges}");
    assert!(edges.contains(&format!("twoSpaceSeparated: \"{cmo_ps} {prom_ps}\"")), "{edges}");
    assert!(edges.contains("snapshotKube: 1.29.1\n"), "{edges}");
    assert!(edges.contains("suffixed: quay.io/openshift/origin-prometheus-suffix\n"), "{edges}");
    let deployment = &dir["0000_50_cluster-monitoring-operator_01_deployment.yaml"];
    assert!(deployment.contains("release.openshift.io/version: 4.99.0\n"), "{deployment}");
    assert!(!dir.keys().any(|k| k.contains("from-lower-layer")), "only the top layer is read");
    assert!(!dir.keys().any(|k| k.contains("ignored") || k.contains("link")), "{:?}", dir.keys());
    assert!(dir.contains_key("0000_90_shared_prometheusrule_2.yaml"));
    assert!(dir.contains_key("0000_50_cluster-monitoring-operator_README.md"));

    // Warnings: collisions naming both sources, skipped entries.
    assert!(
        out.warnings.iter().any(|w| w.contains("`cluster-monitoring-operator/0000_90_shared_prometheusrule.yaml` and `component-001-operator/0000_90_shared_prometheusrule.yaml`")),
        "{:#?}",
        out.warnings
    );
    assert!(out.warnings.iter().any(|w| w.contains("`manifests/link.yaml`: a symlink")), "{:#?}", out.warnings);
    assert!(out.warnings.iter().any(|w| w.contains("subdir")), "{:#?}", out.warnings);

    // to-file: the blob as pushed.
    let gz = std::fs::read(tmp.path().join("layer.tar.gz")).expect("to-file");
    assert_eq!(Digest::sha256(&gz), out.layer.digest);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar).expect("gunzip");
    assert_eq!(Digest::sha256(&tar), out.layer.diff_id);

    // to-signature.
    let sig: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("release.signature")).expect("sig")).expect("json");
    assert_eq!(sig["critical"]["identity"]["docker-reference"], format!("{repo}@{digest}"));
    assert_eq!(sig["critical"]["image"]["docker-manifest-digest"], digest.to_string());
    assert!(sig["optional"]["creator"].as_str().is_some_and(|c| c.starts_with("relbuild/")));
    assert_eq!(sig["optional"]["timestamp"], 1_735_787_045);

    // to-oci-layout: skopeo reads the whole image.
    let oci = format!("oci:{}:4.99.0", tmp.path().join("oci").display());
    let raw: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--raw", &oci]).expect("skopeo oci")).expect("json");
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(raw["config"]["digest"], out.images[0].config_descriptor.digest.to_string());
    assert_eq!(raw["layers"][2]["digest"], out.layer.digest.to_string());
    let inspected: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", &oci]).expect("skopeo reads the config")).expect("json");
    assert_eq!(inspected["Labels"]["io.openshift.release"], "4.99.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterministic_dry_run_and_json() {
    let fx = Fx::new().await;
    let repo = fx.repo("ocp/dry");
    let options = NewOptions {
        output: OutputOptions { to_image: Some(repo.clone()), dry_run: true, ..OutputOptions::default() },
        ..named("4.99.0")
    };
    let a = fx.build(&ctx(fx.is_file(ReferenceMode::Public)), &options).await.expect("builds");
    let b = fx.build(&ctx(fx.is_file(ReferenceMode::Source)), &options).await.expect("builds");
    assert!(a.digest.is_some());
    assert_eq!(a.digest, b.digest, "same inputs, same digest");
    assert_eq!(a.pushed, None);
    let (status, body) = fx.get("/v2/ocp/dry/tags/list");
    assert_eq!(status, 404, "a dry run pushes nothing: {body}");
    let (_, catalog) = fx.get("/v2/_catalog");
    assert!(!catalog.contains("ocp/dry"), "{catalog}");

    // Without a name the default comes from the creation time.
    let c = fx.build(&ctx(fx.is_file(ReferenceMode::Public)), &NewOptions::default()).await.expect("builds");
    assert_eq!(c.name, "0.0.1-2025-01-02-030405");

    // -o json: after mappings and sorting, before inspection and pruning.
    let mut c = ctx(fx.is_file(ReferenceMode::Public));
    c.mappings.push(mapping("aaa-new", &fx.pullspec("prometheus")));
    let is = assemble_stream(&fx.client, &c, &named("4.99.0")).await.expect("assembles");
    let names: Vec<&str> = is.spec.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names[0], "aaa-new");
    assert!(names.contains(&"unreferenced-thing"));
    assert_eq!(is.metadata.name, "4.99.0");
    assert_eq!(is.metadata.creation_timestamp.as_deref(), Some(CREATED));
    assert_eq!(
        is.tag("aaa-new").and_then(|t| t.annotations.as_ref()).map(|a| a["io.openshift.release.override"].as_str()),
        Some("true")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mappings_alone_and_on_top() {
    let fx = Fx::new().await;
    let tmp = tempfile::tempdir().expect("tmp");
    // Mappings alone: overrides are read from all layers.
    let mut c = ctx(Source::None);
    for t in ["cluster-version-operator", "cluster-monitoring-operator", "prometheus"] {
        c.mappings.push(mapping(t, &fx.pullspec(t)));
    }
    let options = NewOptions {
        output: OutputOptions { to_dir: Some(tmp.path().join("alone")), ..OutputOptions::default() },
        ..named("4.99.0")
    };
    let out = fx.build(&c, &options).await.expect("builds");
    assert_eq!(out.digest, None, "only files were asked for");
    assert_eq!(out.release.spec.tags.len(), 3);
    for t in &out.release.spec.tags {
        assert_eq!(t.annotations.as_ref().expect("annotated")["io.openshift.release.override"], "true");
    }
    let dir = files(&tmp.path().join("alone"));
    assert!(dir.contains_key("0000_50_cluster-monitoring-operator_99_from-lower-layer.yaml"), "{:?}", dir.keys());

    // On top of the stream, replacing an existing operator: processed once
    // in fixed mode, twice (oc's quirk) in oc mode.
    let mut c = ctx(fx.is_file(ReferenceMode::Public));
    let by_tag = format!("{}:cluster-monitoring-operator", fx.stream.name());
    c.mappings.push(mapping("cluster-monitoring-operator", &by_tag));
    for (mode, sub) in [(RewriteMode::Fixed, "fixed"), (RewriteMode::Oc, "oc")] {
        let options = NewOptions {
            rewrite_mode: Some(mode),
            output: OutputOptions { to_dir: Some(tmp.path().join(sub)), ..OutputOptions::default() },
            ..named("4.99.0")
        };
        let out = fx.build(&c, &options).await.expect("builds");
        let t = out.release.tag("cluster-monitoring-operator").expect("tag");
        assert_eq!(t.docker_pullspec(), Some(by_tag.as_str()));
        let dir = files(&tmp.path().join(sub));
        let deployment = &dir["0000_50_cluster-monitoring-operator_01_deployment.yaml"];
        assert!(deployment.contains(&format!("image: {by_tag}\n")), "{deployment}");
        let twice = dir.contains_key("0000_50_cluster-monitoring-operator_01_deployment_2.yaml");
        assert_eq!(twice, mode == RewriteMode::Oc, "{sub}: {:?}", dir.keys());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_release_replacement_and_canonical_rebuild() {
    let fx = Fx::new().await;
    let repo = fx.repo("ocp/release");
    let options = NewOptions {
        previous: Some(vec!["4.98.0".into()]),
        output: OutputOptions { to_image: Some(repo.clone()), ..OutputOptions::default() },
        ..named("4.99.0")
    };
    let first = fx.build(&ctx(fx.is_file(ReferenceMode::Public)), &options).await.expect("builds");
    let input = format!("{repo}@{}", first.digest.clone().expect("digest"));

    // Canonical rebuild: nothing changed, the digest is reproduced; pushing
    // it elsewhere gives the same bytes.
    let copy = fx.repo("ocp/copy");
    let options = NewOptions {
        output: OutputOptions { to_image: Some(copy.clone()), ..OutputOptions::default() },
        ..NewOptions::default()
    };
    let again = fx.build(&ctx(Source::Release(input.clone())), &options).await.expect("reproduces");
    assert_eq!(again.digest, first.digest);
    assert_eq!(again.rewrite_mode, RewriteMode::Fixed, "relbuild's own release rebuilds with its rules");
    assert!(!again.warnings.iter().any(|w| w.contains("was built with")), "{:#?}", again.warnings);
    assert!(again.layer_reused);
    assert_eq!(again.created, CREATED);
    assert!(again.release.metadata.annotations.is_empty());
    assert_eq!(
        skopeo_inspect_raw(&format!("{copy}:4.99.0")).expect("skopeo"),
        first.manifest().expect("manifest").bytes().to_vec()
    );

    // Replace prometheus with a new build.
    let mut prom = stream_images(&StreamSpec { operators: 2 })
        .into_iter()
        .find(|i| i.tag == "prometheus")
        .expect("prometheus fixture");
    prom.tag = "prometheus-new".into();
    prom.labels.insert("io.openshift.build.commit.id".into(), "f".repeat(40));
    let new_prom = fx.push(&prom).await;
    let mut c = ctx(Source::Release(input.clone()));
    c.created = "2025-02-03T04:05:06Z".parse().expect("time");
    c.mappings.push(mapping("prometheus", &new_prom));
    let tmp = tempfile::tempdir().expect("tmp");
    let options = NewOptions {
        output: OutputOptions {
            to_image: Some(repo.clone()),
            to_dir: Some(tmp.path().to_path_buf()),
            ..OutputOptions::default()
        },
        ..named("4.99.1")
    };
    let out = fx.build(&c, &options).await.expect("builds");
    assert_ne!(out.digest, first.digest);
    assert_eq!(out.release.metadata.annotations["release.openshift.io/from-release"], input);
    let t = out.release.tag("prometheus").expect("prometheus");
    let a = t.annotations.as_ref().expect("annotations");
    assert_eq!(a["io.openshift.release.override"], "true");
    assert_eq!(a["io.openshift.build.commit.id"], "f".repeat(40));
    assert_eq!(out.metadata.previous, ["4.98.0"], "carried over from the input");
    assert_eq!(out.metadata.version, "4.99.1");
    let dir = files(tmp.path());
    let config = &dir["0000_50_cluster-monitoring-operator_02_config.yaml"];
    assert!(config.contains(&format!("operandImage: {new_prom}\n")), "{config}");
    assert_eq!(
        skopeo_inspect_raw(&format!("{repo}:4.99.1")).expect("skopeo"),
        out.manifest().expect("manifest").bytes().to_vec()
    );

    // An overridden operator is read from all its layers (the fixture's has
    // a manifest in a lower layer), and so is it when that release is
    // rebuilt: the override annotation says to, as in oc.
    let alt = relbuild_testdata::fixture::changed_operator(&stream_images(&StreamSpec { operators: 2 }))
        .expect("a changed operator");
    let alt = fx.push(&alt).await;
    let mut c = ctx(Source::Release(input.clone()));
    c.mappings.push(mapping("cluster-monitoring-operator", &alt));
    let options = NewOptions {
        output: OutputOptions { to_image: Some(repo.clone()), ..OutputOptions::default() },
        ..named("4.99.2")
    };
    let overridden = fx.build(&c, &options).await.expect("builds");
    assert!(overridden.release.spec.tags.iter().any(|t| t.name == "cluster-monitoring-operator"
        && t.annotations.as_ref().is_some_and(|a| a["io.openshift.release.override"] == "true")));
    let out_dir = tempfile::tempdir().expect("tmp");
    let listed = fx
        .build(
            &ctx(Source::Release(format!("{repo}:4.99.2"))),
            &NewOptions {
                output: OutputOptions { to_dir: Some(out_dir.path().to_path_buf()), ..OutputOptions::default() },
                ..NewOptions::default()
            },
        )
        .await
        .expect("rebuilds the overridden release");
    assert_eq!(listed.digest, overridden.digest, "the rebuild reproduces it");
    assert!(
        files(out_dir.path()).keys().any(|k| k.contains("from-lower-layer")),
        "the overridden operator's lower layer is read on rebuild too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_dir() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("in");
    let op = root.join("op-a");
    std::fs::create_dir_all(op.join("nested")).expect("mkdir");
    std::fs::write(op.join("deployment.yaml"), "apiVersion: v1\nkind: Pod\nspec:\n  image: quay.io/x/a:latest\n")
        .expect("write");
    std::fs::write(op.join("0000_10_crd.yaml"), "apiVersion: v1\nkind: ConfigMap\n").expect("write");
    std::fs::write(
        op.join("image-references"),
        r#"{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","spec":{"tags":[{"name":"a","from":{"kind":"DockerImage","name":"quay.io/x/a"}}]}}"#,
    )
    .expect("write");
    std::fs::write(
        root.join("image-references"),
        r#"{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","spec":{"tags":[{"name":"a","from":{"kind":"DockerImage","name":"registry.example/x/a@sha256:1111"}}]}}"#,
    )
    .expect("write");
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(op.join("deployment.yaml"))
        .expect("open")
        .set_modified(mtime)
        .expect("mtime");
    let options = NewOptions {
        output: OutputOptions { to_dir: Some(tmp.path().join("out")), ..OutputOptions::default() },
        ..named("1.2.3")
    };
    let out = new_release(&client(), &ctx(Source::Dir(root)), &options, &NoReporter).await.expect("builds");
    assert_eq!(out.operators, ["op-a"]);
    assert!(out.warnings.iter().any(|w| w.contains("nested")), "{:?}", out.warnings);
    let dir = files(&tmp.path().join("out"));
    assert_eq!(
        dir["0000_50_op-a_deployment.yaml"],
        "apiVersion: v1\nkind: Pod\nspec:\n  image: registry.example/x/a@sha256:1111\n"
    );
    assert!(dir.contains_key("0000_10_crd.yaml"));
    let meta = std::fs::metadata(tmp.path().join("out/0000_50_op-a_deployment.yaml")).expect("meta");
    assert_eq!(meta.modified().expect("mtime"), mtime);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_and_exclude() {
    let fx = Fx::new().await;
    let options = NewOptions {
        include: vec!["unreferenced-thing".into()],
        exclude: vec!["component-001-operator".into(), "component-001".into()],
        ..named("4.99.0")
    };
    let out = fx.build(&ctx(fx.is_file(ReferenceMode::Public)), &options).await.expect("builds");
    let names: Vec<&str> = out.release.spec.tags.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["cluster-monitoring-operator", "cluster-version-operator", "prometheus", "unreferenced-thing"]);
    assert!(out.pruned.is_empty());
    assert!(out.digest.is_some());
}

/// `--lint=error` refuses a payload with a lint error and pushes nothing;
/// `--lint=warn` (the default) pushes it and reports the findings;
/// `--lint=off` reports none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lint_modes() {
    let fx = Fx::new().await;
    // Has kind and apiVersion (so the manifest check passes) but no metadata.name.
    let bad = operator_image(
        "bad-operator",
        vec![file(
            "manifests/01_cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  annotations:\n    include.release.openshift.io/self-managed-high-availability: \"true\"\n",
        )],
    );
    let bad = fx.push(&bad).await;
    let mut c = ctx(fx.is_file(ReferenceMode::Public));
    c.mappings.push(mapping("bad-operator", &bad));
    let repo = fx.repo("ocp/release-lint");
    let tmp = tempfile::tempdir().expect("tmp");
    let options = |lint| NewOptions {
        lint,
        output: OutputOptions {
            to_image: Some(repo.clone()),
            to_dir: Some(tmp.path().join("dir")),
            ..OutputOptions::default()
        },
        ..named("4.99.0")
    };
    let want = "lint[missing-name] 0000_50_bad-operator_01_cm.yaml: document 0 has no `metadata.name`";

    let err = fx.build(&c, &options(LintMode::Error)).await.expect_err("refused");
    let msg = chain(&err);
    assert!(msg.starts_with("the payload has 1 lint error; nothing was written or pushed:\n"), "{msg}");
    assert!(msg.contains(want), "{msg}");
    let (status, _) = fx.get("/v2/ocp/release-lint/manifests/4.99.0");
    assert_eq!(status, 404, "nothing pushed");
    assert!(!tmp.path().join("dir").exists(), "nothing written");

    let out = fx.build(&c, &options(LintMode::Warn)).await.expect("warns and builds");
    assert!(out.warnings.iter().any(|w| w == want), "{:#?}", out.warnings);
    assert!(out.pushed.is_some());
    let (status, _) = fx.get("/v2/ocp/release-lint/manifests/4.99.0");
    assert_eq!(status, 200, "pushed");
    assert_eq!(NewOptions::default().lint, LintMode::Warn);

    let out = fx.build(&c, &NewOptions { to_image_base: None, ..options(LintMode::Off) }).await.expect("builds");
    assert!(!out.warnings.iter().any(|w| w.starts_with("lint[")), "{:#?}", out.warnings);

    // Without the bad operator, --lint=error builds (warnings only).
    let options = NewOptions { lint: LintMode::Error, ..named("4.99.0") };
    let out = fx.build(&ctx(fx.is_file(ReferenceMode::Public)), &options).await.expect("no lint errors");
    assert!(out.digest.is_some());
}

/// The CVO fixture image with its config's architecture changed.
fn with_arch(image: &BuiltImage, arch: &str) -> BuiltImage {
    BuiltImage { tag: image.tag.clone(), ..image.with_arch(arch).expect("another architecture") }
}

/// Pushes the CVO fixture image for amd64 and arm64 as a Docker manifest
/// list `ocp/cvo-multi:latest`; returns it and the two images.
async fn push_two_arch_cvo(fx: &Fx) -> (Reference, BuiltImage, BuiltImage) {
    let cvo = stream_images(&StreamSpec { operators: 0 })
        .into_iter()
        .find(|i| i.tag == "cluster-version-operator")
        .expect("cvo");
    let amd = build_image(&cvo).expect("builds");
    let arm = with_arch(&amd, "arm64");
    let base: Reference = fx.repo("ocp/cvo-multi").parse().expect("reference");
    let mut entries = Vec::new();
    for (img, arch) in [(&amd, "amd64"), (&arm, "arm64")] {
        for (d, b) in img.blobs() {
            fx.client.push_blob(&base, d, b).await.expect("blob");
        }
        fx.client.push_manifest(&base.with_digest(img.manifest.digest().clone()), &img.manifest).await.expect("child");
        let platform = Platform::new("linux", arch);
        entries.push(Descriptor { platform: Some(platform), ..img.manifest.descriptor() });
    }
    let list = ImageIndex {
        schema_version: 2,
        media_type: Some(MediaType::DockerManifestList),
        manifests: entries,
        annotations: None,
    };
    let list = RawManifest::from_manifest(&Manifest::Index(list)).expect("list");
    let base = base.with_tag("latest").expect("tag");
    fx.client.push_manifest(&base, &list).await.expect("list");
    (base, amd, arm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_base() {
    let fx = Fx::new().await;
    let (base, _, arm) = push_two_arch_cvo(&fx).await;

    let repo = fx.repo("ocp/release-multi");
    let options = NewOptions {
        to_image_base: Some(base.to_string()),
        output: OutputOptions { to_image: Some(repo.clone()), ..OutputOptions::default() },
        ..named("4.99.0")
    };
    let out = fx.build(&ctx(fx.is_file(ReferenceMode::Public)), &options).await.expect("builds");
    let list = out.list.as_ref().expect("a list");
    assert_eq!(list.media_type(), &MediaType::DockerManifestList);
    assert_eq!(skopeo_inspect_raw(&format!("{repo}:4.99.0")).expect("skopeo"), list.bytes().to_vec());
    assert_eq!(out.images.len(), 2);
    for (image, arch) in out.images.iter().zip(["amd64", "arm64"]) {
        let Manifest::Image(m) = image.manifest.parse().expect("parses") else { panic!("image") };
        assert_eq!(m.layers.last().map(|l| &l.digest), Some(&out.layer.digest));
        let config: serde_json::Value = serde_json::from_slice(&image.config).expect("config");
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["config"]["Labels"]["io.openshift.release.base-image-digest"], image.base_digest.to_string());
        let raw = skopeo_inspect_raw(&format!("{repo}@{}", image.manifest.digest())).expect("child pushed");
        assert_eq!(raw, image.manifest.bytes().to_vec());
    }

    // --filter-by-os builds one architecture.
    let options = NewOptions {
        to_image_base: Some(base.to_string()),
        filter_by_os: Some("linux/arm64".into()),
        ..named("4.99.0")
    };
    let out = fx.build(&ctx(fx.is_file(ReferenceMode::Public)), &options).await.expect("builds");
    assert!(out.list.is_none());
    assert_eq!(out.images.len(), 1);
    assert_eq!(&out.images[0].base_digest, arm.manifest.digest());
}

/// `info` of a multi-arch release: `multi (<os/arch>)`, the list digest,
/// and the per-platform digests (`--show-platforms`, JSON `platforms`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_of_multi_arch_release() {
    use relbuild_core::release::info::{self, ImageColumns, PlatformDigest, ReleaseInfo};
    use relbuild_core::release::read::{ReadOptions, read_release};
    use relbuild_core::transfer::{ImageLocation, ImageSource};

    let fx = Fx::new().await;
    let (base, _, _) = push_two_arch_cvo(&fx).await;
    let repo = fx.repo("ocp/release-multi");
    let options = NewOptions {
        to_image_base: Some(base.to_string()),
        output: OutputOptions { to_image: Some(repo.clone()), ..OutputOptions::default() },
        ..named("4.99.0")
    };
    let out = fx.build(&ctx(fx.is_file(ReferenceMode::Public)), &options).await.expect("builds");
    let list_digest = out.digest.clone().expect("digest");
    let children: Vec<&Digest> = out.images.iter().map(|i| i.manifest.digest()).collect();

    let load = |platform: &str| {
        let spec = format!("{repo}:4.99.0");
        let client = fx.client.clone();
        let platform = platform.to_owned();
        async move {
            let location: ImageLocation = spec.parse().expect("location");
            let source = ImageSource::open(&location, &client).await.expect("opens");
            let mut options = ReadOptions::default();
            options.platform = platform;
            let loaded = read_release(&source, &spec, &options).await.expect("reads");
            ReleaseInfo::read(loaded.data).expect("a release")
        }
    };
    let render = |f: &dyn Fn(&mut Vec<u8>) -> Result<(), info::Error>| {
        let mut out = Vec::new();
        f(&mut out).expect("renders");
        String::from_utf8(out).expect("utf8")
    };

    let amd = load("linux/amd64").await;
    assert_eq!(amd.digest, *children[0]);
    assert_eq!(amd.list_digest.as_ref(), Some(&list_digest));
    assert_eq!(
        amd.platforms,
        [
            PlatformDigest { platform: "linux/amd64".into(), digest: children[0].clone() },
            PlatformDigest { platform: "linux/arm64".into(), digest: children[1].clone() },
        ]
    );
    let text = render(&|o| info::write_describe(o, &amd, ImageColumns::Digest));
    assert!(text.starts_with(&format!("Name:           4.99.0\nDigest:         {list_digest}\n")), "{text}");
    assert!(text.contains("\nOS/Arch:        multi (linux/amd64)\n"), "{text}");
    assert!(text.contains(&format!("\nPull From: {}@{list_digest}\n", fx.repo("ocp/release-multi"))), "{text}");
    assert_eq!(
        render(&|o| info::write_platforms(o, &amd)),
        format!("linux/amd64 {}\nlinux/arm64 {}\n", children[0], children[1])
    );
    let json: serde_json::Value = serde_json::from_str(&render(&|o| info::write_json(o, &amd))).expect("JSON");
    assert_eq!(json["listDigest"], list_digest.to_string());
    assert_eq!(json["digest"], children[0].to_string());
    assert_eq!(
        json["platforms"],
        serde_json::json!([
            {"platform": "linux/amd64", "digest": children[0].to_string()},
            {"platform": "linux/arm64", "digest": children[1].to_string()},
        ])
    );

    let arm = load("linux/arm64").await;
    assert_eq!(arm.digest, *children[1]);
    assert_eq!(arm.platform(), "multi (linux/arm64)");

    // A single-arch release: its own platform and digest; no `platforms` key.
    let spec = format!("{repo}@{}", children[0]);
    let source = ImageSource::open(&spec.parse::<ImageLocation>().expect("location"), &fx.client).await.expect("opens");
    let single = ReleaseInfo::read(read_release(&source, &spec, &ReadOptions::default()).await.expect("reads").data)
        .expect("a release");
    assert_eq!(single.platform(), "linux/amd64");
    assert_eq!(render(&|o| info::write_platforms(o, &single)), format!("linux/amd64 {}\n", children[0]));
    let json: serde_json::Value = serde_json::from_str(&render(&|o| info::write_json(o, &single))).expect("JSON");
    assert!(json.get("platforms").is_none(), "{json}");
}

/// A gzip layer whose one entry climbs out of the root.
fn hostile_layer() -> (Vec<u8>, Digest) {
    let mut tar = Vec::new();
    let mut h = tar::Header::new_ustar();
    let name = b"manifests/../../escape.yaml";
    h.as_mut_bytes()[..name.len()].copy_from_slice(name);
    h.set_size(4);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    tar.extend_from_slice(b"abc\n");
    tar.resize(1024, 0);
    tar.resize(2048, 0);
    let diff = Digest::sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).expect("gzip");
    (gz.finish().expect("gzip"), diff)
}

async fn push_hostile(fx: &Fx) -> String {
    let (layer, diff) = hostile_layer();
    let layer = bytes::Bytes::from(layer);
    let layer_desc = Descriptor::new(MediaType::DockerLayerGzip, Digest::sha256(&layer), layer.len() as u64);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"io.openshift.release.operator": "true"}},
        "rootfs": {"type": "layers", "diff_ids": [diff.to_string()]},
    });
    let config = bytes::Bytes::from(serde_json::to_vec(&config).expect("json"));
    let config_desc = Descriptor::new(MediaType::DockerConfig, Digest::sha256(&config), config.len() as u64);
    fx.client.push_blob(&fx.stream, &layer_desc, &layer).await.expect("layer");
    fx.client.push_blob(&fx.stream, &config_desc, &config).await.expect("config");
    let m = relbuild_core::image::ImageManifest {
        schema_version: 2,
        media_type: Some(MediaType::DockerManifest),
        artifact_type: None,
        config: config_desc,
        layers: vec![layer_desc],
        subject: None,
        annotations: None,
    };
    let raw = RawManifest::from_manifest(&Manifest::Image(m)).expect("manifest");
    fx.client.push_manifest(&fx.stream.with_tag("hostile").expect("tag"), &raw).await.expect("manifest");
    format!("{}@{}", fx.stream.name(), raw.digest())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs() {
    let fx = Fx::new().await;
    let is_ctx = || ctx(fx.is_file(ReferenceMode::Public));
    let err = |r: Result<NewOutcome, relbuild_core::Error>| chain(&r.expect_err("fails"));
    let bad_file = |bytes: &str| {
        ctx(Source::ImageStreamFile {
            bytes: bytes.as_bytes().to_vec(),
            file: "bad.yaml".into(),
            mode: ReferenceMode::Public,
        })
    };

    let e = err(fx.build(&bad_file("kind: ImageStream\nspec: [\n"), &named("1.0.0")).await);
    assert!(e.starts_with("`bad.yaml` line "), "{e}");
    let e = err(fx.build(&bad_file("kind: Pod\napiVersion: v1\n"), &named("1.0.0")).await);
    assert!(e.contains("`bad.yaml`: unknown kind `Pod`"), "{e}");
    let e = err(fx.build(&ctx(Source::None), &named("1.0.0")).await);
    assert_eq!(e, "must specify image mappings when no other source is defined");

    let options = NewOptions { to_image_base_tag: "nope".into(), ..named("1.0.0") };
    let e = err(fx.build(&is_ctx(), &options).await);
    assert_eq!(e, "the base image tag \"nope\" could not be found in the input, cannot build a release image");
    let e = err(fx.build(&is_ctx(), &named("4.99")).await);
    assert!(e.starts_with("`4.99` is not a valid semantic version for --name"), "{e}");
    let options = NewOptions { metadata: Some(r#"{"url": 1}"#.into()), ..named("1.0.0") };
    let e = err(fx.build(&is_ctx(), &options).await);
    assert!(e.contains("--metadata key `url` must have a string value"), "{e}");
    let options = NewOptions {
        output: OutputOptions {
            to_image: Some(format!("{}@{}", fx.repo("x/y"), fx.digests["prometheus"])),
            ..OutputOptions::default()
        },
        ..named("1.0.0")
    };
    let e = err(fx.build(&is_ctx(), &options).await);
    assert!(e.contains("must not contain a digest"), "{e}");

    // Operators with broken content, mapped on top of the stream; the build
    // must fail before anything is pushed.
    let refs = r#"{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","spec":{"tags":[
        {"name":"prometheus","from":{"kind":"DockerImage","name":"quay.io/openshift/origin-prometheus"}},
        {"name":"component-001","from":{"kind":"DockerImage","name":"quay.io/openshift/origin-prometheus"}}]}}"#;
    let dup = operator_image(
        "dup-operator",
        vec![file("manifests/a.yaml", "apiVersion: v1\nkind: ConfigMap\n"), file("manifests/image-references", refs)],
    );
    let snapshot = operator_image(
        "snap-operator",
        vec![file("manifests/a.yaml", "apiVersion: v1\nkind: ConfigMap\ndata:\n  v: 0.0.1-snapshot-nope\n")],
    );
    let invalid = operator_image("invalid-operator", vec![file("manifests/a.yaml", "data: {}\n")]);
    let empty = operator_image("empty-operator", vec![file("usr/bin/x", "binary")]);
    let cases = [
        (
            fx.push(&dup).await,
            "operator \"zz-bad\" contained an invalid image-references file: the source repository \"quay.io/openshift/origin-prometheus\" was defined more than once",
        ),
        (
            fx.push(&snapshot).await,
            "operator \"zz-bad\", file `a.yaml`: cannot substitute versions: unknown version reference \"nope\"",
        ),
        (
            fx.push(&invalid).await,
            "zz-bad/a.yaml: manifests must contain Kubernetes API objects with 'kind' and 'apiVersion' set",
        ),
        (fx.push(&empty).await, "has no `/manifests` directory in any layer"),
        (push_hostile(&fx).await, "escapes the layer root"),
    ];
    for (pullspec, want) in cases {
        let mut c = is_ctx();
        c.mappings.push(mapping("zz-bad", &pullspec));
        let options = NewOptions {
            output: OutputOptions { to_image: Some(fx.repo("ocp/never")), ..OutputOptions::default() },
            ..named("1.0.0")
        };
        let e = err(fx.build(&c, &options).await);
        assert!(e.contains(want), "{want}\n  in: {e}");
        if want.contains("`/manifests`") {
            assert!(e.starts_with(&format!("operator image `{pullspec}` (tag \"zz-bad\")")), "{e}");
        }
        let (status, body) = fx.get("/v2/ocp/never/tags/list");
        assert_eq!(status, 404, "nothing pushed: {body}");
    }

    // A file over the extraction cap.
    let options =
        NewOptions { extract: relbuild_core::layer::ExtractOptions::default().max_file_size(64), ..named("1.0.0") };
    let e = err(fx.build(&is_ctx(), &options).await);
    assert!(e.contains("could not extract `/manifests`") && e.contains("over the limit of 64 bytes"), "{e}");

    // Registry failures: not found, unreachable, unauthorized.
    let mut c = is_ctx();
    let missing = format!("{}@sha256:{}", fx.stream.name(), "0".repeat(64));
    c.mappings.push(mapping("zz-missing", &missing));
    let r = fx.build(&c, &named("1.0.0")).await;
    let e = r.expect_err("not found");
    assert!(matches!(&e, relbuild_core::Error::Release(r) if r.is_not_found()), "{}", chain(&e));
    assert!(chain(&e).starts_with(&format!("tag \"zz-missing\": could not read image `{missing}`")), "{}", chain(&e));

    let port = relbuild_testdata::registry::free_port().expect("port");
    let mut c = is_ctx();
    let unreachable = format!("127.0.0.1:{port}/x/y:latest");
    c.mappings.push(mapping("zz-unreachable", &unreachable));
    let e = err(fx.build(&c, &named("1.0.0")).await);
    assert!(e.starts_with(&format!("tag \"zz-unreachable\": could not read image `{unreachable}`")), "{e}");
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");

    let auth = relbuild_testdata::auth::BasicAuthRegistry::start("u", "p").expect("auth registry");
    let mut c = is_ctx();
    c.mappings.push(mapping("zz-auth", &format!("{}/x/y:latest", auth.registry.host())));
    let e = fx.build(&c, &named("1.0.0")).await.expect_err("401");
    assert!(matches!(&e, relbuild_core::Error::Release(r) if r.is_unauthorized()), "{}", chain(&e));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_cache_fetches_only_the_replaced_image() {
    let fx = Fx::new().await;
    let proxy = relbuild_testdata::proxy::FaultProxy::start(&fx.reg.host()).expect("proxy");
    let via: Reference = format!("{}/ocp/stream", proxy.host()).parse().expect("reference");
    let yaml = image_stream_yaml("stream", &via, &fx.digests);
    let source = || Source::ImageStreamFile {
        bytes: yaml.clone().into_bytes(),
        file: "is.yaml".into(),
        mode: ReferenceMode::Public,
    };
    let cache_dir = tempfile::tempdir().expect("tmp");
    let cache = relbuild_core::store::Cache::open(cache_dir.path()).expect("cache");
    let options = NewOptions { cache: Some(cache), ..named("4.99.0") };
    let cold = fx.build(&ctx(source()), &options).await.expect("cold build");
    assert!(proxy.requests().len() > 10);

    // Same inputs, warm: nothing but (at most) the API ping.
    proxy.clear_requests();
    let warm = fx.build(&ctx(source()), &options).await.expect("warm build");
    assert_eq!(warm.digest, cold.digest);
    let paths: Vec<String> = proxy.requests().into_iter().map(|r| r.path).filter(|p| p != "/v2/").collect();
    assert!(paths.is_empty(), "{paths:#?}");

    // One operator replaced: only its image is fetched.
    let mut cmo = stream_images(&StreamSpec { operators: 2 })
        .into_iter()
        .find(|i| i.tag == "cluster-monitoring-operator")
        .expect("fixture");
    cmo.tag = "cmo-new".into();
    cmo.labels.insert("io.openshift.build.commit.id".into(), "e".repeat(40));
    let built = build_image(&cmo).expect("builds");
    push_image(&fx.client, &fx.stream, &built).await.expect("pushes");
    let allowed: Vec<String> = std::iter::once(built.manifest.digest().to_string())
        .chain(built.blobs().map(|(d, _)| d.digest.to_string()))
        .collect();
    proxy.clear_requests();
    let mut c = ctx(source());
    c.mappings.push(mapping("cluster-monitoring-operator", &format!("{}@{}", via.name(), built.manifest.digest())));
    let replaced = fx.build(&c, &options).await.expect("warm rebuild");
    assert_ne!(replaced.digest, cold.digest);
    let paths: Vec<String> = proxy.requests().into_iter().map(|r| r.path).filter(|p| p != "/v2/").collect();
    assert!(!paths.is_empty());
    assert!(paths.iter().all(|p| allowed.iter().any(|d| p.contains(d))), "{paths:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_from_release_reads_the_input_payload_from_the_cache() {
    let fx = Fx::new().await;
    let repo = fx.repo("ocp/release");
    let options = NewOptions {
        output: OutputOptions { to_image: Some(repo.clone()), ..OutputOptions::default() },
        ..named("4.99.0")
    };
    let first = fx.build(&ctx(fx.is_file(ReferenceMode::Public)), &options).await.expect("builds");
    let payload = first.layer.digest.to_string();
    let proxy = relbuild_testdata::proxy::FaultProxy::start(&fx.reg.host()).expect("proxy");
    let input = format!("{}/ocp/release@{}", proxy.host(), first.digest.clone().expect("digest"));

    let cache_dir = tempfile::tempdir().expect("tmp");
    let cache = relbuild_core::store::Cache::open(cache_dir.path()).expect("cache");
    let options = NewOptions { cache: Some(cache), ..named("4.99.1") };
    let blob_reads = |proxy: &relbuild_testdata::proxy::FaultProxy| {
        proxy.requests().into_iter().map(|r| r.path).filter(|p| p.contains(&payload)).count()
    };
    let cold = fx.build(&ctx(Source::Release(input.clone())), &options).await.expect("cold build");
    assert_eq!(blob_reads(&proxy), 1, "the cold build reads the input's payload once");
    proxy.clear_requests();
    let warm = fx.build(&ctx(Source::Release(input)), &options).await.expect("warm build");
    assert_eq!(warm.digest, cold.digest);
    assert_eq!(blob_reads(&proxy), 0, "{:#?}", proxy.requests());
}
