//! `transfer`: copying images between a real registry, OCI layouts and
//! oci-archives, cross-checked with skopeo.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use relbuild_core::progress::BlobKind;
use relbuild_core::registry::{Client, ClientOptions, RetryPolicy};
use relbuild_core::transfer::{
    BlobAction, CopyOptions, CopyOutcome, Error, ImageDestination, ImageLocation, ImageSource, copy_image,
};
use relbuild_core::{Digest, MediaType, NoReporter, Reference, Reporter};
use relbuild_testdata::fixture::{StreamSpec, stream_images};
use relbuild_testdata::generate::{BuiltImage, build_image, index_of, push_image, push_images};
use relbuild_testdata::registry::{TestRegistry, skopeo, skopeo_inspect_raw};

fn client() -> Client {
    ClientOptions::default().with_insecure(true).with_retry(RetryPolicy::none()).build().expect("client builds")
}

fn reference(reg: &TestRegistry, name: &str) -> Reference {
    format!("{}/{name}", reg.host()).parse().expect("valid reference")
}

/// The fixture stream with one operator, built by our own layer writer.
fn fixture_images() -> Vec<BuiltImage> {
    stream_images(&StreamSpec { operators: 1 }).iter().map(|i| build_image(i).expect("fixture builds")).collect()
}

fn image<'a>(images: &'a [BuiltImage], tag: &str) -> &'a BuiltImage {
    images.iter().find(|i| i.tag == tag).expect("fixture tag")
}

async fn copy(c: &Client, from: &str, to: &str, options: &CopyOptions, reporter: &dyn Reporter) -> CopyOutcome {
    let src = ImageSource::open(&from.parse().expect("source location"), c).await.expect("source opens");
    let dst = ImageDestination::open(&to.parse().expect("destination location"), c).expect("destination opens");
    copy_image(&src, &dst, options, reporter).await.unwrap_or_else(|e| panic!("copy {from} -> {to}: {e:#}"))
}

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

fn oci_archive(file: &Path, tag: &str) -> String {
    format!("oci-archive:{}:{tag}", file.display())
}

/// `skopeo inspect` JSON of a local location.
fn skopeo_inspect(location: &str) -> serde_json::Value {
    serde_json::from_str(&skopeo(&["inspect", location]).expect("skopeo inspect")).expect("skopeo JSON")
}

fn skopeo_raw(location: &str) -> Vec<u8> {
    skopeo(&["inspect", "--raw", location]).expect("skopeo inspect --raw").into_bytes()
}

/// Records which kind of transfer each blob started as.
#[derive(Default)]
struct Recorder(Mutex<Vec<BlobKind>>);

impl Reporter for Recorder {
    fn on_blob_start(&self, kind: BlobKind, _digest: &Digest, _size: Option<u64>) {
        self.0.lock().expect("not poisoned").push(kind);
    }
}

#[test]
fn location_parse_table() {
    let reg = |s: &str| ImageLocation::Registry(s.parse().expect("reference"));
    let layout = |p: &str, t: Option<&str>| ImageLocation::Layout { path: PathBuf::from(p), tag: t.map(Into::into) };
    let archive = |p: &str, t: Option<&str>| ImageLocation::Archive { path: PathBuf::from(p), tag: t.map(Into::into) };
    let by_digest = format!("127.0.0.1:5000/a@{}", Digest::sha256(b"x"));
    let ok = [
        (
            "quay.io/openshift/release:4.15",
            reg("quay.io/openshift/release:4.15"),
            "docker://quay.io/openshift/release:4.15",
        ),
        ("docker://localhost:5000/a/b", reg("localhost:5000/a/b"), "docker://localhost:5000/a/b"),
        (&by_digest, reg(&by_digest), &format!("docker://{by_digest}")),
        ("oci:/tmp/layout", layout("/tmp/layout", None), "oci:/tmp/layout"),
        ("oci:/tmp/layout:v1", layout("/tmp/layout", Some("v1")), "oci:/tmp/layout:v1"),
        // skopeo's rule: the path ends at the first `:`.
        ("oci:rel/dir:a:b", layout("rel/dir", Some("a:b")), "oci:rel/dir:a:b"),
        ("oci:dir:org/name:1.0", layout("dir", Some("org/name:1.0")), "oci:dir:org/name:1.0"),
        ("oci-archive:img.tar", archive("img.tar", None), "oci-archive:img.tar"),
        ("oci-archive:/x/img.tar:latest", archive("/x/img.tar", Some("latest")), "oci-archive:/x/img.tar:latest"),
    ];
    for (input, want, display) in ok {
        let got: ImageLocation = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(got, want, "{input}");
        assert_eq!(got.to_string(), display, "{input}");
        assert_eq!(display.parse::<ImageLocation>().expect("display parses"), got, "{input} round trip");
    }

    let bad = [
        ("oci:", "the path is empty"),
        ("oci::tag", "the path is empty"),
        ("oci:dir:", "the tag after `:` is empty"),
        ("oci-archive:", "the path is empty"),
        ("oci:dir:a b", "whitespace"),
        ("docker:quay.io/a", "`docker://REF`"),
        ("docker://", "invalid image location `docker://`"),
        ("dir:/tmp/x", "unsupported transport `dir`"),
        ("containers-storage:quay.io/a", "unsupported transport `containers-storage`"),
        ("Quay.io/UPPER/case", "invalid image location `Quay.io/UPPER/case`"),
        ("", "invalid image location ``"),
    ];
    for (input, want) in bad {
        let e = input.parse::<ImageLocation>().expect_err(input);
        assert!(e.is_invalid_input(), "{input}: {e}");
        assert!(e.to_string().contains(want), "{input}: {e}");
        assert!(e.to_string().contains(&format!("`{input}`")), "names the input: {e}");
    }
}

#[tokio::test]
async fn registry_layout_archive_registry_round_trip() {
    let reg = TestRegistry::start().expect("registry");
    let c = client();
    let mut images = fixture_images();
    let prometheus = image(&images, "prometheus").manifest.clone();
    let prometheus_oci = image(&images, "prometheus").to_oci().expect("OCI variant");
    images.push(prometheus_oci.clone());
    let stream = reference(&reg, "ns/stream");
    push_images(&c, &stream, images, 2).await.expect("fixtures pushed");
    let tmp = tempfile::tempdir().expect("tempdir");
    let (layout, archive) = (tmp.path().join("layout"), tmp.path().join("out/image.tar"));
    std::fs::create_dir_all(archive.parent().expect("parent")).expect("mkdir");

    for (tag, manifest) in [("prometheus", &prometheus), ("prometheus-oci", &prometheus_oci.manifest)] {
        // registry -> layout
        let out =
            copy(&c, &format!("docker://{stream}:{tag}"), &oci(&layout, tag), &CopyOptions::default(), &NoReporter)
                .await;
        assert_eq!(&out.digest, manifest.digest());
        // The OCI variant has the same blobs as the Docker one, copied before.
        let expected = if tag == "prometheus" { BlobAction::Copied } else { BlobAction::Existed };
        assert_eq!(out.count(expected), out.blobs.len());
        // Again: everything is there already.
        let again =
            copy(&c, &format!("{stream}:{tag}"), &oci(&layout, tag), &CopyOptions::default(), &NoReporter).await;
        assert_eq!(again.count(BlobAction::Existed), again.blobs.len());

        // layout -> archive
        let out = copy(&c, &oci(&layout, tag), &oci_archive(&archive, tag), &CopyOptions::default(), &NoReporter).await;
        assert_eq!(&out.digest, manifest.digest());
        let leftovers: Vec<_> = std::fs::read_dir(archive.parent().expect("parent")).expect("ls").collect();
        assert_eq!(leftovers.len(), 1, "only the archive, no staging directory: {leftovers:?}");

        // Both read back as the exact bytes.
        for loc in [oci(&layout, tag), oci_archive(&archive, tag)] {
            let src = ImageSource::open(&loc.parse().expect("loc"), &c).await.expect("opens");
            assert_eq!(src.manifest().await.expect("reads").bytes(), manifest.bytes(), "{loc}");
        }
        if tag.ends_with("-oci") {
            let inspected = skopeo_inspect(&oci(&layout, tag));
            assert_eq!(inspected["Digest"], manifest.digest().to_string(), "skopeo reads the layout");
            assert_eq!(skopeo_raw(&oci(&layout, tag)), manifest.bytes().to_vec());
            assert_eq!(skopeo_raw(&oci_archive(&archive, tag)), manifest.bytes().to_vec(), "skopeo reads the archive");
        }

        // archive -> registry (another repository, by tag)
        let back = reference(&reg, "ns/back");
        let out =
            copy(&c, &oci_archive(&archive, tag), &format!("{back}:{tag}"), &CopyOptions::default(), &NoReporter).await;
        assert_eq!(&out.digest, manifest.digest(), "the round trip preserves the digest");
        assert_eq!(out.count(BlobAction::Copied) + out.count(BlobAction::Existed), out.blobs.len());
        assert_eq!(skopeo_inspect_raw(&format!("{back}:{tag}")).expect("skopeo"), manifest.bytes().to_vec());
    }

    // A layout holding two images needs a tag.
    copy(
        &c,
        &format!("{stream}:cluster-monitoring-operator"),
        &oci(&layout, "cmo"),
        &CopyOptions::default(),
        &NoReporter,
    )
    .await;
    let src = ImageSource::open(&format!("oci:{}", layout.display()).parse().expect("loc"), &c).await.expect("opens");
    let e = src.manifest().await.expect_err("ambiguous");
    assert!(matches!(&e, Error::AmbiguousLayout { count: 3, .. }), "{e}");
    assert!(e.to_string().contains("cmo") && e.to_string().contains("prometheus-oci"), "{e}");
    let missing = ImageSource::open(&oci(&layout, "nope").parse().expect("loc"), &c).await.expect("opens");
    assert!(missing.manifest().await.expect_err("no such tag").is_not_found());
}

#[tokio::test]
async fn same_registry_copies_mount() {
    let reg = TestRegistry::start().expect("registry");
    let c = client();
    let images = fixture_images();
    let cmo = image(&images, "cluster-monitoring-operator").clone();
    let stream = reference(&reg, "ns/stream");
    push_image(&c, &stream, &cmo).await.expect("pushed");

    let rec = Recorder::default();
    let other = reference(&reg, "other/repo");
    let out = copy(&c, &format!("{stream}:{}", cmo.tag), &format!("{other}:m"), &CopyOptions::default(), &rec).await;
    assert_eq!(&out.digest, cmo.manifest.digest());
    assert_eq!(out.blobs.len(), 1 + cmo.layers.len());
    assert_eq!(out.count(BlobAction::Mounted), out.blobs.len(), "{:?}", out.blobs);
    assert_eq!(out.bytes_copied(), 0);
    assert!(rec.0.lock().expect("lock").iter().all(|k| *k == BlobKind::Mount));
    assert_eq!(skopeo_inspect_raw(&format!("{other}:m")).expect("skopeo"), cmo.manifest.bytes().to_vec());

    let out = copy(&c, &format!("{stream}:{}", cmo.tag), &format!("{other}:m2"), &CopyOptions::default(), &rec).await;
    assert_eq!(out.count(BlobAction::Existed), out.blobs.len(), "second copy finds everything");
}

#[tokio::test]
async fn manifest_list_whole_and_filtered() {
    let reg = TestRegistry::start().expect("registry");
    let c = client();
    let images = fixture_images();
    let (amd, arm) = (image(&images, "prometheus"), image(&images, "cluster-monitoring-operator"));
    let multi = reference(&reg, "ns/multi");
    push_image(&c, &multi, amd).await.expect("amd64 pushed");
    push_image(&c, &multi, arm).await.expect("arm64 pushed");
    let list = index_of(MediaType::DockerManifestList, &[(amd, "amd64"), (arm, "arm64")]).expect("list");
    c.push_manifest(&multi.with_tag("list").expect("tag"), &list).await.expect("list pushed");
    let src = format!("{multi}:list");

    // Whole list, within the registry: blobs mounted, children by digest, list last.
    let mirror = reference(&reg, "ns/mirror");
    let out = copy(&c, &src, &format!("{mirror}:list"), &CopyOptions::default(), &NoReporter).await;
    assert_eq!(&out.digest, list.digest());
    assert_eq!(out.media_type, MediaType::DockerManifestList);
    let digests: Vec<&Digest> = out.manifests.iter().map(|d| &d.digest).collect();
    assert_eq!(digests, [amd.manifest.digest(), arm.manifest.digest(), list.digest()]);
    assert_eq!(out.count(BlobAction::Mounted), out.blobs.len());
    assert_eq!(skopeo_inspect_raw(&format!("{mirror}:list")).expect("skopeo"), list.bytes().to_vec());
    for child in [amd, arm] {
        let raw = skopeo_inspect_raw(&format!("{mirror}@{}", child.manifest.digest())).expect("child by digest");
        assert_eq!(raw, child.manifest.bytes().to_vec());
    }

    // Filtered: only the arm64 image, which becomes the top manifest.
    let arm_only = reference(&reg, "ns/arm-only");
    let options = CopyOptions::default().filter_by_os("linux/arm64");
    let out = copy(&c, &src, &format!("{arm_only}:latest"), &options, &NoReporter).await;
    assert_eq!(&out.digest, arm.manifest.digest());
    assert_eq!(out.manifests.len(), 1);
    assert_eq!(out.blobs.len(), 1 + arm.layers.len());
    assert_eq!(skopeo_inspect_raw(&format!("{arm_only}:latest")).expect("skopeo"), arm.manifest.bytes().to_vec());
    let e = c.pull_manifest_raw(&arm_only.with_digest(amd.manifest.digest().clone())).await.expect_err("amd64 absent");
    assert!(e.is_not_found(), "{e}");

    let src_loc = ImageSource::open(&src.parse().expect("loc"), &c).await.expect("opens");
    let dst = ImageDestination::open(&format!("{arm_only}:x").parse().expect("loc"), &c).expect("opens");
    let e = copy_image(&src_loc, &dst, &CopyOptions::default().filter_by_os("linux/s390x"), &NoReporter)
        .await
        .expect_err("no such platform");
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().contains("linux/amd64, linux/arm64"), "{e}");

    // Whole list into a layout and an archive, then back to another registry.
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = tmp.path().join("multi");
    let out = copy(&c, &src, &oci(&layout, "list"), &CopyOptions::default(), &NoReporter).await;
    assert_eq!(&out.digest, list.digest());
    let file = tmp.path().join("multi.tar");
    copy(&c, &oci(&layout, "list"), &oci_archive(&file, "list"), &CopyOptions::default(), &NoReporter).await;
    for loc in [oci(&layout, "list"), oci_archive(&file, "list")] {
        let src = ImageSource::open(&loc.parse().expect("loc"), &c).await.expect("opens");
        assert_eq!(src.manifest().await.expect("reads").bytes(), list.bytes(), "{loc}");
        let child = src.manifest_for(&arm.manifest.descriptor()).await.expect("child");
        assert_eq!(child.bytes(), arm.manifest.bytes());
    }

    let other = TestRegistry::start().expect("second registry");
    let far = reference(&other, "far/multi");
    let rec = Recorder::default();
    let out = copy(&c, &oci_archive(&file, "list"), &format!("{far}:list"), &CopyOptions::default(), &rec).await;
    assert_eq!(&out.digest, list.digest());
    assert_eq!(out.count(BlobAction::Copied), out.blobs.len());
    assert_eq!(skopeo_inspect_raw(&format!("{far}:list")).expect("skopeo"), list.bytes().to_vec());
    // Registry to registry across registries streams (no mount possible).
    let far2 = reference(&other, "far/direct");
    let out = copy(&c, &src, &format!("{far2}:list"), &CopyOptions::default(), &rec).await;
    assert_eq!(out.count(BlobAction::Existed) + out.count(BlobAction::Copied), out.blobs.len());
    assert_eq!(out.count(BlobAction::Mounted), 0);
    assert_eq!(skopeo_inspect_raw(&format!("{far2}:list")).expect("skopeo"), list.bytes().to_vec());
}
