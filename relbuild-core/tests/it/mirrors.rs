//! Digest mirrors (`--idms-file`): the client reads a reference by digest
//! from its mirrors first, falls through to the source, never contacts a
//! `NeverContactSource` source, and refuses corrupt content. Fault proxies
//! in front of the real registry stand for the source and the mirrors, so
//! what each was asked is counted.

use std::path::Path;

use relbuild_core::registry::{Client, ClientOptions, MirrorFileKind, MirrorRules, RetryPolicy};
use relbuild_core::transfer::{CopyOptions, CopyOutcome, ImageDestination, ImageSource, copy_image};
use relbuild_core::{Digest, NoReporter};
use relbuild_testdata::fixture::{StreamSpec, stream_images};
use relbuild_testdata::generate::{BuiltImage, build_image, push_image};
use relbuild_testdata::proxy::{Action, Fault, FaultProxy, Matcher};
use relbuild_testdata::registry::TestRegistry;

fn plain_client() -> Client {
    ClientOptions::default().with_insecure(true).with_retry(RetryPolicy::none()).build().expect("client builds")
}

/// A client that routes `source` to `mirrors` (`never`: NeverContactSource).
fn routed(source: &str, mirrors: &[String], never: bool) -> Client {
    let mut yaml = format!(
        "apiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata:\n  name: t\nspec:\n  imageDigestMirrors:\n  - source: {source}\n    mirrors:\n"
    );
    for m in mirrors {
        yaml.push_str(&format!("    - {m}\n"));
    }
    if never {
        yaml.push_str("    mirrorSourcePolicy: NeverContactSource\n");
    }
    let mut rules = MirrorRules::new();
    rules.add_yaml(MirrorFileKind::Idms, Path::new("idms.yaml"), &yaml).expect("valid IDMS");
    ClientOptions::default()
        .with_insecure(true)
        .with_retry(RetryPolicy::none())
        .with_mirrors(rules)
        .build()
        .expect("client builds")
}

/// The registry, with one operator image in `ocp/stream`.
struct Fx {
    reg: TestRegistry,
    image: BuiltImage,
    digest: Digest,
}

impl Fx {
    async fn new() -> Self {
        let reg = TestRegistry::start().expect("registry starts");
        let spec = stream_images(&StreamSpec { operators: 1 });
        let image =
            build_image(spec.iter().find(|i| i.tag.starts_with("operator")).unwrap_or(&spec[0])).expect("builds");
        let repo = format!("{}/ocp/stream", reg.host()).parse().expect("reference");
        let digest = push_image(&plain_client(), &repo, &image).await.expect("pushes");
        Self { reg, image, digest }
    }

    fn proxy(&self) -> FaultProxy {
        FaultProxy::start(&self.reg.host()).expect("proxy starts")
    }
}

async fn copy(client: &Client, from: &str, dir: &Path) -> Result<CopyOutcome, relbuild_core::transfer::Error> {
    let src = ImageSource::open(&format!("docker://{from}").parse().expect("location"), client).await?;
    let dst = ImageDestination::open(&format!("oci:{}:t", dir.display()).parse().expect("location"), client)?;
    copy_image(&src, &dst, &CopyOptions::default(), &NoReporter).await
}

/// Requests a proxy saw under `/v2/<repo>/`.
fn seen(proxy: &FaultProxy, repo: &str) -> Vec<String> {
    let prefix = format!("/v2/{repo}/");
    proxy.requests().into_iter().map(|r| format!("{} {}", r.method, r.path)).filter(|p| p.contains(&prefix)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_without_the_image_falls_through_to_the_source_once() {
    let fx = Fx::new().await;
    let (source, mirror) = (fx.proxy(), fx.proxy());
    let client = routed(&format!("{}/ocp", source.host()), &[format!("{}/nowhere", mirror.host())], false);
    let tmp = tempfile::tempdir().expect("tmp");
    let out = copy(&client, &format!("{}/ocp/stream@{}", source.host(), fx.digest), tmp.path()).await.expect("copies");
    assert_eq!(out.digest, fx.digest);
    // The mirror was asked for the manifest only; the source served it, so
    // the image's blobs went to the source first.
    let asked = seen(&mirror, "nowhere/stream");
    assert_eq!(asked, [format!("GET /v2/nowhere/stream/manifests/{}", fx.digest)], "{asked:?}");
    let served = seen(&source, "ocp/stream");
    assert!(served.len() > fx.image.layers.len(), "the manifest and every blob: {served:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_contact_source_reads_only_the_mirror() {
    let fx = Fx::new().await;
    let source = fx.proxy();
    let from = format!("{}/ocp/stream@{}", source.host(), fx.digest);
    let tmp = tempfile::tempdir().expect("tmp");

    let client = routed(&format!("{}/ocp", source.host()), &[format!("{}/ocp", fx.reg.host())], true);
    let out = copy(&client, &from, &tmp.path().join("a")).await.expect("copies from the mirror");
    assert_eq!(out.digest, fx.digest);

    let client = routed(&format!("{}/ocp", source.host()), &[format!("{}/nowhere", fx.reg.host())], true);
    let err = copy(&client, &from, &tmp.path().join("b")).await.expect_err("the mirror lacks the image");
    let msg = format!("{err:#}");
    let missing = format!("{}/nowhere/stream@{}", fx.reg.host(), fx.digest);
    assert!(msg.contains(&missing) && msg.contains("not found"), "{msg}");

    let by_tag = format!("{}/ocp/stream:any", source.host());
    let err = copy(&client, &by_tag, &tmp.path().join("c")).await.expect_err("a tag cannot be mirrored");
    assert!(format!("{err:#}").contains("NeverContactSource"), "{err:#}");
    assert_eq!(source.requests(), Vec::new(), "the source was never contacted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_content_from_a_mirror_is_refused() {
    let fx = Fx::new().await;
    let mirror = fx.proxy();
    let source = fx.reg.host();
    let from = format!("{source}/ocp/stream@{}", fx.digest);
    let tmp = tempfile::tempdir().expect("tmp");

    // A corrupt manifest: the next location, the source, serves it.
    mirror.add(Fault::new(Matcher::new("GET", "/manifests/"), Action::CorruptByte { offset: 10 }));
    let client = routed(&format!("{source}/ocp"), &[format!("{}/ocp", mirror.host())], false);
    let out = copy(&client, &from, &tmp.path().join("a")).await.expect("copies from the source");
    assert_eq!(out.digest, fx.digest);

    // A corrupt layer from the mirror that served the manifest: the copy
    // fails naming the digest, and the layout holds no such blob.
    mirror.clear_faults();
    let layer = fx.image.layers.last().expect("a layer").0.digest.clone();
    mirror.add(Fault::new(Matcher::new("GET", &format!("/blobs/{layer}")), Action::CorruptByte { offset: 3 }));
    let client = routed(&format!("{source}/ocp"), &[format!("{}/ocp", mirror.host())], false);
    let dir = tmp.path().join("b");
    let err = copy(&client, &from, &dir).await.expect_err("a corrupt blob is refused");
    assert!(format!("{err:#}").contains(layer.as_str()), "{err:#}");
    let hex = layer.as_str().trim_start_matches("sha256:");
    assert!(!dir.join("blobs/sha256").join(hex).exists(), "no bad blob is visible");
    assert!(!seen(&mirror, "ocp/stream").is_empty());
}
