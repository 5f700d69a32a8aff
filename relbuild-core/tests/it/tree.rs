//! Distribution storage trees (`dist:DIR//REPO[:TAG]`): what the engine
//! writes is byte for byte what a real `docker-registry` writes when skopeo
//! pushes the same images, a stock registry serves it read-only as an
//! unprivileged user, its garbage collector finds nothing to delete, and
//! `DistTree::verify` names each kind of damage.

use std::path::Path;

use std::process::Command;

use relbuild_core::progress::{BlobKind, CopyProgress};
use relbuild_core::registry::{Client, ClientOptions, RetryPolicy};
use relbuild_core::store::{DistTree, ProblemKind};
use relbuild_core::transfer::{
    BlobAction, CopyOptions, CopyOutcome, ImageDestination, ImageSource, copy_image, copy_images,
};
use relbuild_core::{Digest, MediaType, NoReporter, RawManifest, Reference, Reporter};
use relbuild_testdata::fixture::{StreamSpec, stream_images};
use relbuild_testdata::generate::{BuiltImage, build_image, index_of, large_image, push_image};
use relbuild_testdata::proxy::{Action, Fault, FaultProxy, Matcher};
use relbuild_testdata::registry::{NOBODY, RegistryConfig, TestRegistry, skopeo};

/// Records every blob fetch that starts.
#[derive(Default)]
struct Pulls(std::sync::Mutex<Vec<Digest>>, std::sync::Mutex<Vec<CopyProgress>>);

impl Reporter for Pulls {
    fn on_blob_start(&self, kind: BlobKind, digest: &Digest, _size: Option<u64>) {
        if kind == BlobKind::Pull {
            self.0.lock().expect("lock").push(digest.clone());
        }
    }

    fn on_copy_progress(&self, progress: &CopyProgress) {
        self.1.lock().expect("lock").push(*progress);
    }
}

fn client() -> Client {
    ClientOptions::default().with_insecure(true).with_retry(RetryPolicy::none()).build().expect("client builds")
}

async fn copy(c: &Client, from: &str, to: &str) -> CopyOutcome {
    let src = ImageSource::open(&from.parse().expect("source location"), c).await.expect("source opens");
    let dst = ImageDestination::open(&to.parse().expect("destination location"), c).expect("destination opens");
    copy_image(&src, &dst, &CopyOptions::default(), &NoReporter)
        .await
        .unwrap_or_else(|e| panic!("{from} -> {to}: {e:#}"))
}

/// The three shapes of image a tree must hold: a Docker schema 2 image, an
/// OCI image, and an OCI index of two children sharing every layer.
struct Images {
    docker: BuiltImage,
    oci: BuiltImage,
    arm: BuiltImage,
    index: RawManifest,
}

fn images() -> Images {
    let all: Vec<BuiltImage> =
        stream_images(&StreamSpec { operators: 1 }).iter().map(|i| build_image(i).expect("fixture builds")).collect();
    let docker = all.iter().find(|i| i.tag == "prometheus").expect("prometheus").clone();
    let oci = all.iter().find(|i| i.tag == "cluster-monitoring-operator").expect("cmo").to_oci().expect("oci");
    let arm = oci.with_arch("arm64").expect("arm64");
    let index = index_of(MediaType::OciIndex, &[(&oci, "amd64"), (&arm, "arm64")]).expect("index");
    Images { docker, oci, arm, index }
}

/// Pushes the images to `repo`: `docker`, `oci`, and `multi` (the index).
async fn push_all(c: &Client, repo: &Reference, im: &Images) {
    push_image(c, repo, &BuiltImage { tag: "docker".into(), ..im.docker.clone() }).await.expect("docker image");
    push_image(c, repo, &BuiltImage { tag: "oci".into(), ..im.oci.clone() }).await.expect("oci image");
    push_image(c, repo, &im.arm).await.expect("arm64 child");
    c.push_manifest(&repo.with_tag("multi").expect("tag"), &im.index).await.expect("index");
}

/// `diff -r` of two trees, ignoring what is not content (upload sessions,
/// our scratch directory).
fn diff(a: &Path, b: &Path) -> String {
    let out = Command::new("diff")
        .args(["-r", "-x", "_uploads", "-x", ".relbuild-scratch"])
        .args([a, b])
        .output()
        .expect("diff runs");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn chmod_r(path: &Path) {
    let status = Command::new("chmod").args(["-R", "a+rX"]).arg(path).status().expect("chmod runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_equals_the_registrys_own_and_is_served_read_only() {
    let c = client();
    let source = TestRegistry::start().expect("source registry");
    let src: Reference = format!("{}/ocp/src", source.host()).parse().expect("reference");
    let im = images();
    push_all(&c, &src, &im).await;

    // The oracle: a fresh registry, written by skopeo.
    let oracle = TestRegistry::start().expect("oracle registry");
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("tree");
    for tag in ["docker", "oci", "multi"] {
        skopeo(&[
            "copy",
            "--all",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{src}:{tag}"),
            &format!("docker://{}/openshift/release:{tag}", oracle.host()),
        ])
        .expect("skopeo copy into the oracle");
        let out =
            copy(&c, &format!("docker://{src}:{tag}"), &format!("dist:{}//openshift/release:{tag}", root.display()))
                .await;
        assert_eq!(out.blobs.len(), out.count(BlobAction::Copied) + out.count(BlobAction::Existed));
    }
    assert_eq!(diff(&oracle.dir().join("storage"), &root), "", "the tree is the registry's own, byte for byte");

    // The same three images as one run: each distinct blob is fetched once
    // (the OCI image, the index's children and the Docker image share
    // layers), and the tree is the same.
    let one_run = tmp.path().join("one-run");
    let tags = ["docker", "oci", "multi"];
    let mut sources = Vec::new();
    let mut dests = Vec::new();
    for tag in tags {
        sources.push(ImageSource::open(&format!("docker://{src}:{tag}").parse().expect("loc"), &c).await.expect("src"));
        let to = format!("dist:{}//openshift/release:{tag}", one_run.display());
        dests.push(ImageDestination::open(&to.parse().expect("loc"), &c).expect("dst"));
    }
    let jobs: Vec<(&ImageSource, &ImageDestination)> = sources.iter().zip(&dests).collect();
    let pulls = Pulls::default();
    let outcomes = copy_images(&jobs, &CopyOptions::default(), &pulls).await.expect("one run");
    let distinct: std::collections::BTreeSet<&Digest> =
        outcomes.iter().flat_map(|o| o.blobs.iter().map(|b| &b.descriptor.digest)).collect();
    let fetched = pulls.0.lock().expect("lock").clone();
    assert_eq!(fetched.len(), distinct.len(), "every blob fetched once: {fetched:?}");
    assert!(distinct.len() < outcomes.iter().map(|o| o.blobs.len()).sum::<usize>(), "the images share blobs");
    assert_eq!(diff(&oracle.dir().join("storage"), &one_run), "");
    // Progress: one event per distinct blob and per image, never going back,
    // ending with every byte moved once.
    let progress = pulls.1.lock().expect("lock").clone();
    assert_eq!(progress.len(), distinct.len() + tags.len());
    assert!(progress.windows(2).all(|w| w[0].blobs_done <= w[1].blobs_done && w[0].images_done <= w[1].images_done));
    let last = progress.last().expect("progress was reported");
    let sizes: std::collections::BTreeMap<&Digest, u64> =
        outcomes.iter().flat_map(|o| o.blobs.iter().map(|b| (&b.descriptor.digest, b.descriptor.size))).collect();
    assert_eq!(
        (last.blobs_done, last.bytes_copied, last.bytes_reused, last.images_done),
        (distinct.len() as u64, sizes.values().sum::<u64>(), 0, tags.len() as u64)
    );
    assert_eq!((last.blobs_total, last.bytes_total, last.images_total), (last.blobs_done, last.bytes_copied, 3));
    // Again into the same tree: every byte is reused.
    let pulls = Pulls::default();
    copy_images(&jobs, &CopyOptions::default(), &pulls).await.expect("the rerun");
    let last = *pulls.1.lock().expect("lock").last().expect("progress was reported");
    assert_eq!((last.bytes_copied, last.bytes_reused), (0, sizes.values().sum::<u64>()));
    assert!(pulls.0.lock().expect("lock").is_empty(), "nothing fetched");

    // A second run copies nothing, and the tree is unchanged.
    let again =
        copy(&c, &format!("docker://{src}:multi"), &format!("dist:{}//openshift/release:multi", root.display())).await;
    assert_eq!(again.count(BlobAction::Existed), again.blobs.len());
    assert_eq!(diff(&oracle.dir().join("storage"), &root), "");

    let tree = DistTree::open(&root).expect("opens");
    let report = tree.verify().expect("verifies");
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert_eq!(report.tags, 3);
    assert_eq!(report.manifests, 4, "docker, oci, the index and its arm64 child");

    // Served as it is: read-only, by an unprivileged registry.
    chmod_r(tmp.path());
    let served = TestRegistry::start_with(RegistryConfig {
        storage: Some(root.clone()),
        readonly: true,
        user: Some(NOBODY),
        ..RegistryConfig::default()
    })
    .expect("a read-only registry on the tree");
    let (blobs, manifests, text) = served.garbage_collect_dry_run().expect("garbage-collect runs");
    assert_eq!((blobs, manifests), (0, 0), "nothing to delete:\n{text}");
    let at = |tail: &str| format!("docker://{}/openshift/release{tail}", served.host());
    for (tail, digest) in [
        (":docker".to_owned(), im.docker.manifest.digest()),
        (":oci".to_owned(), im.oci.manifest.digest()),
        (":multi".to_owned(), im.index.digest()),
        (format!("@{}", im.arm.manifest.digest()), im.arm.manifest.digest()),
        (format!("@{}", im.docker.manifest.digest()), im.docker.manifest.digest()),
    ] {
        let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &at(&tail)]).expect("skopeo inspect");
        assert_eq!(&Digest::sha256(raw.as_bytes()), digest, "{tail}");
    }
    let copied = tmp.path().join("copied");
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        &at(":multi"),
        &format!("oci:{}:multi", copied.display()),
    ])
    .expect("skopeo copies every image out of the served tree");
    let back = copy(
        &c,
        &format!("oci:{}:multi", copied.display()),
        &format!("dist:{}//again:multi", tmp.path().join("t2").display()),
    )
    .await;
    assert_eq!(&back.digest, im.index.digest());
    let e = c
        .push_manifest(&format!("{}/openshift/release:new", served.host()).parse().expect("ref"), &im.docker.manifest)
        .await
        .expect_err("read-only");
    assert!(e.to_string().contains("405") || e.to_string().to_lowercase().contains("method"), "{e}");

    // Tree -> registry and tree -> layout keep every digest.
    let dest = TestRegistry::start().expect("destination registry");
    for (tag, digest) in [("docker", im.docker.manifest.digest()), ("multi", im.index.digest())] {
        let from = format!("dist:{}//openshift/release:{tag}", root.display());
        let out = copy(&c, &from, &format!("docker://{}/mirror:{tag}", dest.host())).await;
        assert_eq!(&out.digest, digest);
        let out = copy(&c, &from, &format!("oci:{}:{tag}", tmp.path().join("layout").display())).await;
        assert_eq!(&out.digest, digest);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_each_kind_of_damage() {
    let c = client();
    let source = TestRegistry::start().expect("source registry");
    let src: Reference = format!("{}/ocp/src", source.host()).parse().expect("reference");
    let im = images();
    push_all(&c, &src, &im).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let make = |name: &str| tmp.path().join(name);
    let v2 = |root: &Path| root.join("docker/registry/v2");
    let hex = |d: &Digest| d.encoded().to_owned();
    let data = |root: &Path, d: &Digest| v2(root).join(format!("blobs/sha256/{}/{}/data", &hex(d)[..2], hex(d)));
    let layer = im.docker.layers[0].0.digest.clone();
    let repo_link = |root: &Path, d: &Digest| {
        v2(root).join(format!("repositories/openshift/release/_layers/sha256/{}/link", hex(d)))
    };

    // One clean tree per kind of damage.
    type Damage<'a> = (&'a str, Box<dyn Fn(&Path) + 'a>, &'a dyn Fn(&ProblemKind) -> bool);
    let kinds: Vec<Damage<'_>> = vec![
        (
            "a changed byte",
            Box::new(|root: &Path| {
                let p = data(root, &layer);
                let mut b = std::fs::read(&p).expect("read");
                b[10] ^= 1;
                std::fs::write(&p, b).expect("write");
            }),
            &|k| matches!(k, ProblemKind::CorruptBlob { .. }),
        ),
        ("a missing blob", Box::new(|root: &Path| std::fs::remove_file(data(root, &layer)).expect("rm")), &|k| {
            matches!(k, ProblemKind::MissingBlob)
        }),
        ("a missing link", Box::new(|root: &Path| std::fs::remove_file(repo_link(root, &layer)).expect("rm")), &|k| {
            matches!(k, ProblemKind::UnlinkedBlob { .. })
        }),
        (
            "a link with a newline",
            Box::new(|root: &Path| std::fs::write(repo_link(root, &layer), format!("{layer}\n")).expect("write")),
            &|k| matches!(k, ProblemKind::MalformedLink { len: 72 }),
        ),
    ];
    for (i, (what, damage, expected)) in kinds.into_iter().enumerate() {
        let root = make(&format!("t{i}"));
        copy(&c, &format!("docker://{src}:docker"), &format!("dist:{}//openshift/release:docker", root.display()))
            .await;
        let clean = DistTree::open(&root).expect("opens").verify().expect("verifies");
        assert!(clean.is_ok(), "{what}: clean before: {:#?}", clean.problems);
        damage(&root);
        let report = DistTree::open(&root).expect("opens").verify().expect("verifies");
        assert!(report.problems.iter().any(|p| expected(&p.kind)), "{what}: {:#?}", report.problems);
        let line = report.problems.iter().find(|p| expected(&p.kind)).expect("found").to_string();
        assert!(line.contains(&hex(&layer)), "{what}: the problem names the digest or its path: {line}");
    }
}

fn retrying_client() -> Client {
    let retry = RetryPolicy {
        max_attempts: 5,
        initial_delay: std::time::Duration::from_millis(10),
        max_delay: std::time::Duration::from_millis(100),
        total: std::time::Duration::from_secs(30),
    };
    ClientOptions::default().with_insecure(true).with_retry(retry).build().expect("client builds")
}

/// Copies `docker`, `oci` and `multi` from `src` into the tree at `root`, as one run.
async fn copy_all(c: &Client, src: &str, root: &Path) -> Result<Vec<CopyOutcome>, relbuild_core::transfer::Error> {
    let mut sources = Vec::new();
    let mut dests = Vec::new();
    for tag in ["docker", "oci", "multi"] {
        sources.push(ImageSource::open(&format!("docker://{src}:{tag}").parse().expect("loc"), c).await?);
        let to = format!("dist:{}//openshift/release:{tag}", root.display());
        dests.push(ImageDestination::open(&to.parse().expect("loc"), c)?);
    }
    let jobs: Vec<(&ImageSource, &ImageDestination)> = sources.iter().zip(&dests).collect();
    copy_images(&jobs, &CopyOptions::default(), &NoReporter).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_end_in_the_same_tree_or_a_named_failure() {
    let c = retrying_client();
    let source = TestRegistry::start().expect("source registry");
    let src: Reference = format!("{}/ocp/src", source.host()).parse().expect("reference");
    let im = images();
    push_all(&c, &src, &im).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let clean = tmp.path().join("clean");
    copy_all(&c, &src.to_string(), &clean).await.expect("a clean copy");

    // Passing faults: a body dropped half-way, a 500, a 429, a closed
    // connection. The run retries (a dropped body resumes) and ends with the
    // same tree.
    let proxy = FaultProxy::start(&source.host()).expect("proxy");
    let through = format!("{}/ocp/src", proxy.host());
    let layer = im.docker.layers.last().expect("a layer").0.clone();
    let blob_path = format!("/blobs/{}", layer.digest);
    proxy
        .add(Fault::new(Matcher::new("GET", &blob_path), Action::DropMidBody { after_bytes: layer.size / 2 }).times(1));
    proxy.add(Fault::new(Matcher::new("GET", "/manifests/"), Action::status(500)).times(1));
    proxy.add(Fault::new(Matcher::new("GET", "/blobs/"), Action::too_many_requests(0)).times(1));
    proxy.add(Fault::new(Matcher::new("GET", "/blobs/"), Action::CloseConnection).times(1));
    let faulty = tmp.path().join("faulty");
    copy_all(&c, &through, &faulty).await.expect("the faults pass");
    let applied = proxy.requests().iter().filter(|r| r.fault.is_some()).count();
    assert_eq!(applied, 4, "every fault was met");
    assert_eq!(diff(&clean, &faulty), "", "the same tree as a clean run");
    assert!(DistTree::open(&faulty).expect("opens").verify().expect("verifies").is_ok());

    // A corrupted byte every time: the run fails naming the digest, and no
    // bad blob is visible where readers look.
    proxy.clear_faults();
    proxy.add(Fault::new(Matcher::new("GET", &blob_path), Action::CorruptByte { offset: 3 }));
    let bad = tmp.path().join("bad");
    let e = copy_all(&c, &through, &bad).await.expect_err("a corrupt blob never verifies");
    assert!(format!("{e:#}").contains(layer.digest.as_str()), "names the digest: {e:#}");
    let tree = DistTree::open(&bad).expect("opens");
    assert!(!tree.blob_path(&layer.digest).expect("path").exists(), "no bad blob is visible");
    assert!(tree.verify().expect("verifies").is_ok(), "what is there is sound");
    assert!(
        tree.repositories().expect("repos").iter().all(|r| tree.tags(r).expect("tags").is_empty()),
        "nothing is tagged"
    );

    // Rerun without the fault: the same tree, and only what was missing is fetched.
    let all: std::collections::BTreeSet<(Digest, u64)> = [&im.docker, &im.oci, &im.arm]
        .iter()
        .flat_map(|i| i.blobs().map(|(d, _)| (d.digest.clone(), d.size)))
        .collect();
    let present: Vec<&Digest> = all.iter().filter(|(d, size)| tree.has_blob(d, *size)).map(|(d, _)| d).collect();
    proxy.clear_faults();
    proxy.clear_requests();
    copy_all(&c, &through, &bad).await.expect("the rerun");
    assert_eq!(diff(&clean, &bad), "");
    let fetched: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/"))
        .map(|r| r.path)
        .collect();
    assert!(fetched.iter().any(|p| p.contains(layer.digest.as_str())), "the failed blob is fetched: {fetched:?}");
    for d in present {
        assert!(!fetched.iter().any(|p| p.contains(d.as_str())), "{d} was in the tree, yet fetched again");
    }
    assert!(fetched.len() <= all.len(), "each missing blob once: {fetched:?}");
}

/// The child of [`killed_copies_leave_a_sound_tree`]: one copy run of
/// `RELBUILD_TREE_CHILD_SRC` into the tree `RELBUILD_TREE_CHILD_ROOT`.
#[test]
#[ignore = "run by killed_copies_leave_a_sound_tree in a child process"]
#[allow(clippy::disallowed_methods)]
fn tree_copy_child() {
    let (Some(src), Some(root)) =
        (std::env::var_os("RELBUILD_TREE_CHILD_SRC"), std::env::var_os("RELBUILD_TREE_CHILD_ROOT"))
    else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let src = src.to_string_lossy().into_owned();
        copy_all(&retrying_client(), &src, Path::new(&root)).await.expect("the child's copy");
    });
}

fn copy_in_child(src: &str, root: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["tree::tree_copy_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("RELBUILD_TREE_CHILD_SRC", src)
        .env("RELBUILD_TREE_CHILD_ROOT", root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("child starts")
}

/// SIGKILL at many points of a copy into a tree: after each kill the tree
/// is sound (every blob verified, every tag complete; only scratch
/// leftovers), and the run continued across kills ends with the tree of an
/// uninterrupted run, fetching only blobs that were not there yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_copies_leave_a_sound_tree() {
    let c = retrying_client();
    let source = TestRegistry::start().expect("source registry");
    let src: Reference = format!("{}/ocp/src", source.host()).parse().expect("reference");
    let im = images();
    push_all(&c, &src, &im).await;
    // Slow bodies, so that a copy takes long enough to be killed in the middle.
    let proxy = FaultProxy::start(&source.host()).expect("proxy");
    proxy.add(Fault::new(
        Matcher::new("GET", "/blobs/"),
        Action::SlowBody { chunk: 2048, delay: std::time::Duration::from_millis(4) },
    ));
    let through = format!("{}/ocp/src", proxy.host());
    let tmp = tempfile::tempdir().expect("tmp");

    // An uninterrupted run, to know how long one takes (to spread the kills).
    let clean = tmp.path().join("clean");
    let started = std::time::Instant::now();
    let status = copy_in_child(&through, &clean).wait().expect("child runs");
    assert!(status.success(), "the uninterrupted child copy failed: {status}");
    let whole = started.elapsed();

    let root = tmp.path().join("killed");
    let kills = 12u32;
    for i in 1..=kills {
        let mut child = copy_in_child(&through, &root);
        std::thread::sleep(whole * i / (kills + 1));
        let _ = child.kill(); // SIGKILL; the child may already have finished
        let _ = child.wait();
        let Ok(tree) = DistTree::open(&root) else { continue }; // killed before it made the tree
        let report = tree.verify().expect("verifies");
        assert!(report.is_ok(), "after kill {i}: {:#?}", report.problems);
    }

    let tree = DistTree::create(&root).expect("tree");
    let all: std::collections::BTreeSet<(Digest, u64)> = [&im.docker, &im.oci, &im.arm]
        .iter()
        .flat_map(|i| i.blobs().map(|(d, _)| (d.digest.clone(), d.size)))
        .collect();
    let present: Vec<&Digest> = all.iter().filter(|(d, size)| tree.has_blob(d, *size)).map(|(d, _)| d).collect();
    proxy.clear_requests();
    let status = copy_in_child(&through, &root).wait().expect("child runs");
    assert!(status.success(), "the final run failed: {status}");
    assert_eq!(diff(&clean, &root), "", "the tree of an uninterrupted run");
    let fetched: Vec<String> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/"))
        .map(|r| r.path)
        .collect();
    for d in &present {
        assert!(!fetched.iter().any(|p| p.contains(d.as_str())), "{d} was in the tree, yet fetched again");
    }
    assert_eq!(fetched.len(), all.len() - present.len(), "each missing blob once: {fetched:?}");
}

/// An image with one layer of 2 MiB that does not compress, so that its
/// body arrives in many chunks.
fn big_image() -> BuiltImage {
    large_image("big", 2).expect("builds")
}

/// A copy that fails with a body dropped half-way leaves the part it
/// received in scratch; the next run (a new client, as after a restart)
/// asks only for the rest with `Range`, and ends with the clean run's tree.
/// A partial file with bad content is not trusted: the blob is fetched whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_blob_resumes_with_range_in_the_next_run() {
    let source = TestRegistry::start().expect("source registry");
    let big = big_image();
    push_image(&client(), &format!("{}/ocp/src", source.host()).parse().expect("reference"), &big)
        .await
        .expect("pushes");
    let layer = big.layers.last().expect("a layer").0.clone();
    assert!(layer.size > 1 << 20, "{}", layer.size);
    let tmp = tempfile::tempdir().expect("tmp");
    let tree_of = |name: &str| format!("dist:{}//openshift/release:big", tmp.path().join(name).display());
    let from = format!("docker://{}/ocp/src:{}", source.host(), big.tag);
    copy(&client(), &from, &tree_of("clean")).await;

    let proxy = FaultProxy::start(&source.host()).expect("proxy");
    let through = format!("docker://{}/ocp/src:{}", proxy.host(), big.tag);
    let try_copy = async |to: &str| {
        let c = client();
        let src = ImageSource::open(&through.parse().expect("location"), &c).await.expect("source");
        let dst = ImageDestination::open(&to.parse().expect("location"), &c).expect("destination");
        copy_image(&src, &dst, &CopyOptions::default(), &NoReporter).await
    };
    let blob_path = format!("/blobs/{}", layer.digest);
    let dropped_at = layer.size / 2;
    let ranges = |proxy: &FaultProxy| -> Vec<Option<String>> {
        proxy.requests().into_iter().filter(|r| r.path.ends_with(&blob_path)).map(|r| r.range).collect()
    };
    proxy.add(Fault::new(Matcher::new("GET", &blob_path), Action::DropMidBody { after_bytes: dropped_at }));
    try_copy(&tree_of("resumed")).await.expect_err("without retries the dropped body fails the run");
    let tree = DistTree::open(tmp.path().join("resumed")).expect("opens");
    assert!(!tree.blob_path(&layer.digest).expect("path").exists(), "the part is not where readers look");

    proxy.clear_faults();
    proxy.clear_requests();
    try_copy(&tree_of("resumed")).await.expect("the rerun");
    assert_eq!(diff(&tmp.path().join("clean"), &tmp.path().join("resumed")), "", "the clean run's tree");
    let seen = ranges(&proxy);
    let [Some(range)] = seen.as_slice() else { panic!("one ranged request for the blob: {seen:?}") };
    let from: u64 =
        range.strip_prefix("bytes=").and_then(|r| r.strip_suffix('-')).and_then(|n| n.parse().ok()).expect("bytes=N-");
    assert!(from > 0 && from <= dropped_at, "resumed from {from} of {dropped_at} delivered");

    // Bad bytes in a partial file: found out at the end, and fetched whole.
    proxy.add(Fault::new(Matcher::new("GET", &blob_path), Action::DropMidBody { after_bytes: dropped_at }));
    try_copy(&tree_of("bad-partial")).await.expect_err("the dropped body fails the run");
    let scratch = tmp.path().join("bad-partial/.relbuild-scratch");
    let partial = std::fs::read_dir(&scratch)
        .expect("scratch")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains(layer.digest.encoded()))
        .expect("the partial file is kept");
    let mut bytes = std::fs::read(&partial).expect("partial");
    bytes[0] ^= 0xff;
    std::fs::write(&partial, &bytes).expect("spoil the partial");
    proxy.clear_faults();
    proxy.clear_requests();
    try_copy(&tree_of("bad-partial")).await.expect("the rerun recovers");
    assert_eq!(diff(&tmp.path().join("clean"), &tmp.path().join("bad-partial")), "");
    let seen = ranges(&proxy);
    assert_eq!(seen.len(), 2, "a ranged try, then the whole blob: {seen:?}");
    assert!(seen[0].is_some() && seen[1].is_none(), "{seen:?}");
    assert!(!partial.exists(), "the bad partial file is gone");
}
