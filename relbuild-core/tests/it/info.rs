//! `relbuild info` against the oc-n3 golden outputs (byte-exact `oc adm release info`).

use std::path::{Path, PathBuf};

use relbuild_core::release::info::{self, DiffOptions, ImageColumns, ReleaseImageData, ReleaseInfo};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/golden/oc-n3");

fn case_dir(case: &str) -> PathBuf {
    Path::new(GOLDEN).join(case)
}

fn read(case: &str, file: &str) -> Vec<u8> {
    let path = case_dir(case).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn golden(case: &str, file: &str) -> String {
    String::from_utf8(read(case, file)).expect("golden files are UTF-8")
}

/// Loads a golden release the way the registry side would hand it over.
fn load(case: &str) -> ReleaseInfo {
    let digests = golden(case, "digests.txt");
    let digest = digests
        .lines()
        .find_map(|l| l.strip_prefix("release manifest digest: "))
        .expect("digests.txt names the manifest digest");
    let mut names: Vec<String> = std::fs::read_dir(case_dir(case).join("release-manifests"))
        .expect("release-manifests/")
        .map(|e| e.expect("dir entry").file_name().into_string().expect("UTF-8 name"))
        .collect();
    names.sort();
    let files = names.into_iter().map(|n| (n.clone(), read(case, &format!("release-manifests/{n}")))).collect();
    ReleaseInfo::read(ReleaseImageData {
        image: format!("127.0.0.1:5000/ocp/release@{digest}"),
        digest: digest.parse().expect("digest"),
        content_digest: None,
        list_digest: None,
        config: read(case, "config.json"),
        files,
        platforms: Vec::new(),
    })
    .expect("golden release reads")
}

fn render(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8(out).expect("UTF-8 output")
}

fn assert_lines(got: &str, want: &str, what: &str) {
    for (i, (g, w)) in got.split('\n').zip(want.split('\n')).enumerate() {
        assert_eq!(g, w, "{what}: line {}", i + 1);
    }
    assert_eq!(got, want, "{what}");
}

const CASES: [&str; 2] = ["outputs", "outputs-replace"];

#[test]
fn describe_matches_oc() {
    for case in CASES {
        let info = load(case);
        for (file, columns) in [
            ("info-plain.txt", ImageColumns::Digest),
            ("info-pullspecs.txt", ImageColumns::PullSpec),
            ("info-commits.txt", ImageColumns::Commits),
        ] {
            let got = render(|o| info::write_describe(o, &info, columns).expect("renders"));
            assert_lines(&got, &golden(case, file), &format!("{case}/{file}"));
        }
    }
}

#[test]
fn contents_matches_oc() {
    for case in CASES {
        let info = load(case);
        let got = render(|o| info::write_contents(o, &info).expect("renders"));
        assert_lines(&got, &golden(case, "info-contents.txt"), &format!("{case}/info-contents.txt"));
    }
}

#[test]
fn json_matches_oc() {
    for case in CASES {
        let info = load(case);
        let got = render(|o| info::write_json(o, &info).expect("renders"));
        assert_lines(&got, &golden(case, "info-json.txt"), &format!("{case}/info-json.txt"));
    }
}

fn now() -> jiff::Timestamp {
    "2026-06-01T00:00:00Z".parse().expect("timestamp")
}

#[test]
fn diff_matches_oc() {
    let (from, to) = (load("outputs"), load("outputs-replace"));
    let diff = info::diff(&from, &to);
    let got = render(|o| {
        info::write_diff(o, &diff, DiffOptions { commits: false, manifests: false, now: now() }).expect("renders")
    });
    assert_lines(&got, &golden("outputs-replace", "info-diff.txt"), "info-diff.txt");
}

#[test]
fn diff_with_manifests_and_commits() {
    let (from, to) = (load("outputs"), load("outputs-replace"));
    let diff = info::diff(&from, &to);
    let got = render(|o| {
        info::write_diff(o, &diff, DiffOptions { commits: true, manifests: true, now: now() }).expect("renders")
    });
    insta::assert_snapshot!("diff_commits_manifests", got);
    let same = render(|o| {
        info::write_diff(o, &info::diff(&from, &from), DiffOptions { commits: false, manifests: true, now: now() })
            .expect("renders")
    });
    assert_eq!(same, "Releases are identical\n");
}

#[test]
fn diff_json() {
    let (from, to) = (load("outputs"), load("outputs-replace"));
    let diff = info::diff(&from, &to);
    let got = render(|o| info::write_diff_json(o, &diff).expect("renders"));
    let value: serde_json::Value = serde_json::from_str(&got).expect("valid JSON");
    let keys: Vec<&str> = value.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "from",
            "to",
            "changedImages",
            "changedManifests",
            "addedImages",
            "removedImages",
            "addedManifests",
            "removedManifests",
            "modifiedManifests"
        ]
    );
    // `from`/`to` are exactly the `-o json` objects.
    let one: serde_json::Value = serde_json::from_str(&golden("outputs", "info-json.txt")).expect("golden JSON");
    assert_eq!(value["from"], one);
    let mut summary = value.clone();
    let obj = summary.as_object_mut().expect("object");
    obj.remove("from");
    obj.remove("to");
    insta::assert_json_snapshot!("diff_json_summary", summary, {
        ".changedManifests.*.from" => "[base64]",
        ".changedManifests.*.to" => "[base64]",
    });
}

#[test]
fn other_outputs() {
    let info = load("outputs-replace");
    let mut got = String::new();
    got += "--- --commit-urls\n";
    got += &render(|o| info::write_describe(o, &info, ImageColumns::CommitUrls).expect("renders"));
    got += "--- -o name\n";
    got += &render(|o| info::write_names(o, &info).expect("renders"));
    got += "--- -o pullspec\n";
    got += &render(|o| info::write_pullspecs(o, &info).expect("renders"));
    got += "--- -o digest\n";
    got += &render(|o| {
        let problems = info::write_digests(o, &info).expect("renders");
        assert!(problems.is_empty(), "{problems:?}");
    });
    got += "--- --image-for=foo-operator\n";
    got += &render(|o| info::write_image_for(o, &info, "foo-operator").expect("renders"));
    got += "--- --verify\n";
    got += &render(|o| info::write_verify_line(o, &info).expect("renders"));
    insta::assert_snapshot!("other_outputs", got);

    let err = info.image_for("nope").expect_err("unknown tag");
    assert_eq!(
        err.to_string(),
        "no image tag \"nope\" exists in the release image 127.0.0.1:5000/ocp/release@sha256:8bb5989d7112bef760342cf0039758794f6744da67eccfb76d42a64fe7edc015"
    );
}

#[test]
fn read_errors() {
    let data = |files: Vec<(&str, &str)>| ReleaseImageData {
        image: "r/x:1".into(),
        digest: format!("sha256:{}", "0".repeat(64)).parse().expect("digest"),
        content_digest: None,
        list_digest: Some(format!("sha256:{}", "1".repeat(64)).parse().expect("digest")),
        config: Vec::new(),
        files: files.into_iter().map(|(n, c)| (n.to_owned(), c.as_bytes().to_vec())).collect(),
        platforms: Vec::new(),
    };
    let err = ReleaseInfo::read(data(vec![("a.yaml", "{}")])).expect_err("no image-references");
    assert_eq!(err.to_string(), "release image did not contain an image-references file");
    let is = r#"{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":"1.0.0"}}"#;
    let err = ReleaseInfo::read(data(vec![("image-references", is), ("release-metadata", "{")])).expect_err("bad md");
    assert!(err.to_string().contains("`release-manifests/release-metadata` is not valid"), "{err}");
    let err = ReleaseInfo::read(data(vec![("image-references", "kind: Foo")])).expect_err("bad is");
    assert!(err.to_string().contains("`release-manifests/image-references`"), "{err}");
    let info = ReleaseInfo::read(data(vec![("image-references", is)])).expect("minimal release");
    assert_eq!(info.platform(), "multi (unknown/unknown)");
    assert_eq!(info.pull_from, format!("r/x@sha256:{}", "1".repeat(64)));
    assert_eq!(info.preferred_name(), "1.0.0");
}

fn payload_files(case: &str) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(case_dir(case).join("release-manifests"))
        .expect("release-manifests/")
        .map(|e| e.expect("dir entry").file_name().into_string().expect("UTF-8 name"))
        .collect();
    names.sort();
    names.into_iter().map(|n| (n.clone(), read(case, &format!("release-manifests/{n}")))).collect()
}

#[test]
fn lint_golden_releases() {
    use relbuild_core::release::lint;
    for case in CASES {
        let findings = lint::lint(&payload_files(case), Some(true));
        // The synthetic operators' manifests carry no profile annotations, so
        // the golden payloads have warnings but no error.
        assert_eq!(lint::exit_code(&findings), 0, "{case}: {findings:#?}");
        let mut human = Vec::new();
        lint::write_human(&mut human, &findings).expect("writes");
        insta::assert_snapshot!(format!("lint_human_{case}"), String::from_utf8(human).expect("UTF-8"));
    }
    let findings = lint::lint(&payload_files("outputs"), Some(false));
    assert_eq!(lint::exit_code(&findings), 1);
    let mut json = Vec::new();
    lint::write_json(&mut json, &findings[..3]).expect("writes");
    insta::assert_snapshot!("lint_json", String::from_utf8(json).expect("UTF-8"));
}

// `--size` and `--verify` against a real registry: a release built from the
// fixture stream, read back as `relbuild info` reads it.

mod registry {
    use std::collections::BTreeMap;

    use relbuild_core::image::{MediaType, Reference};
    use relbuild_core::registry::{Client, ClientOptions, RetryPolicy};
    use relbuild_core::release::info::{self, Error, ReleaseInfo};
    use relbuild_core::release::read::{self, ReadOptions, read_release};
    use relbuild_core::release::{NewContext, NewOptions, OutputOptions, ReferenceMode, Source, TagReference};
    use relbuild_core::transfer::ImageSource;
    use relbuild_core::{Digest, NoReporter};
    use relbuild_testdata::fixture::{self, StreamSpec, stream_images};
    use relbuild_testdata::generate::{BuiltImage, build_image, image_stream_yaml, index_of, push_image, push_images};
    use relbuild_testdata::hostile::truncated_config;
    use relbuild_testdata::registry::TestRegistry;

    /// A registry holding the fixture stream (`ocp/stream`) and a release
    /// built from it (`ocp/release:4.99.0`).
    struct Pushed {
        reg: TestRegistry,
        client: Client,
        stream: Reference,
        /// The pushed images, by stream tag.
        images: BTreeMap<String, BuiltImage>,
        /// The release, as `info` reads it.
        info: ReleaseInfo,
    }

    impl Pushed {
        async fn new() -> Self {
            let reg = TestRegistry::start().expect("registry starts");
            let client = ClientOptions::default()
                .with_insecure(true)
                .with_retry(RetryPolicy::none())
                .build()
                .expect("client builds");
            let stream: Reference = format!("{}/ocp/stream", reg.host()).parse().expect("reference");
            let built: Vec<BuiltImage> =
                stream_images(&StreamSpec { operators: 2 }).iter().map(|i| build_image(i).expect("builds")).collect();
            let digests = push_images(&client, &stream, built.clone(), 8).await.expect("pushes");
            let release = format!("{}/ocp/release", reg.host());
            let ctx = NewContext {
                source: Source::ImageStreamFile {
                    bytes: image_stream_yaml("stream", &stream, &digests).into_bytes(),
                    file: "is.yaml".into(),
                    mode: ReferenceMode::Public,
                },
                mappings: Vec::new(),
                created: "2025-01-02T03:04:05Z".parse().expect("time"),
            };
            let options = NewOptions {
                name: Some("4.99.0".into()),
                output: OutputOptions { to_image: Some(release.clone()), ..OutputOptions::default() },
                ..NewOptions::default()
            };
            relbuild_core::release::new_release(&client, &ctx, &options, &NoReporter).await.expect("builds");
            let spec = format!("{release}:4.99.0");
            let source = ImageSource::open(&spec.parse().expect("location"), &client).await.expect("opens");
            let loaded = read_release(&source, &spec, &ReadOptions::default()).await.expect("reads");
            let info = ReleaseInfo::read(loaded.data).expect("a release");
            let images = built.into_iter().map(|b| (b.tag.clone(), b)).collect();
            Self { reg, client, stream, images, info }
        }

        /// `HOST/ocp/stream@DIGEST` of a pushed manifest.
        fn pullspec(&self, digest: &Digest) -> String {
            format!("{}@{digest}", self.stream.name())
        }

        /// The release's tags, in `image-references` order.
        fn tags(&self) -> Vec<String> {
            self.info.image_tags().map(|(t, _)| t.name.clone()).collect()
        }

        /// Adds a tag to the release's `image-references`.
        fn add_tag(&mut self, tag: &str, pullspec: &str) {
            self.info.references.spec.tags.push(TagReference::docker_image(tag, pullspec));
        }

        /// The registry's storage (`docker/registry/v2`).
        fn storage(&self) -> std::path::PathBuf {
            self.reg.dir().join("storage/docker/registry/v2")
        }
    }

    /// The error and all its causes, `: `-separated (what the CLI prints).
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

    fn layers_of(image: &BuiltImage) -> Vec<(Digest, u64)> {
        image.layers.iter().map(|(d, blob)| (d.digest.clone(), blob.len() as u64)).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sizes_match_the_pushed_layers() {
        let p = Pushed::new().await;
        let sizes = info::image_sizes(&p.client, &p.info, "linux/amd64").await.expect("sizes");
        let tags: Vec<&str> = sizes.iter().map(|s| s.tag.as_str()).collect();
        assert_eq!(tags, p.tags(), "one per image, in image-references order");
        assert!(tags.len() >= 5, "{tags:?}");
        let created: jiff::Timestamp = fixture::CREATED.parse().expect("time");
        let mut distinct = BTreeMap::new();
        for s in &sizes {
            let pushed = layers_of(&p.images[&s.tag]);
            assert_eq!(s.layers, pushed, "{}: the layers pushed, with the bytes pushed", s.tag);
            assert_eq!(s.created, Some(created), "{}", s.tag);
            distinct.extend(pushed);
        }
        let report = info::size_report(&sizes);
        assert_eq!(report.total, distinct.values().sum::<u64>(), "each layer counted once");
        for row in &report.rows {
            let pushed = layers_of(&p.images[&row.tag]);
            assert_eq!(row.layers, pushed.len(), "{}", row.tag);
            assert_eq!(row.size, pushed.iter().map(|(_, n)| n).sum::<u64>(), "{}", row.tag);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn size_of_a_list_without_the_platform_names_what_it_has() {
        let mut p = Pushed::new().await;
        let amd = p.images["prometheus"].clone();
        let arm = amd.with_arch("arm64").expect("an arm64 image");
        push_image(&p.client, &p.stream, &arm).await.expect("pushes arm64");
        let list = index_of(MediaType::DockerManifestList, &[(&amd, "amd64"), (&arm, "arm64")]).expect("a list");
        let target = p.stream.with_tag("multi").expect("tag");
        p.client.push_manifest(&target, &list).await.expect("pushes the list");
        let pullspec = p.pullspec(list.digest());
        p.add_tag("multi", &pullspec);

        let e = info::image_sizes(&p.client, &p.info, "linux/s390x").await.expect_err("no s390x image");
        assert_eq!(e.image(), Some(("multi", pullspec.as_str())));
        assert!(e.is_not_found(), "{e:?}");
        assert!(
            matches!(&e, Error::ReadImage { source, .. } if matches!(&**source,
                read::Error::NoPlatform { platform, available, .. }
                    if platform == "linux/s390x" && available == "linux/amd64, linux/arm64")),
            "{e:?}"
        );
        assert_eq!(
            chain(&e),
            format!(
                "reading image `multi`: `{pullspec}` is a manifest list with no `linux/s390x` image (it has: linux/amd64, linux/arm64)"
            )
        );

        // The platform's image of the list is the one measured.
        let sizes = info::image_sizes(&p.client, &p.info, "linux/arm64").await.expect("sizes");
        let multi = sizes.iter().find(|s| s.tag == "multi").expect("a multi row");
        assert_eq!(multi.layers, layers_of(&arm));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn size_with_an_unparsable_config_has_an_unknown_age() {
        let mut p = Pushed::new().await;
        let bad = truncated_config(&p.images["prometheus"]).expect("a broken config");
        let digest = push_image(&p.client, &p.stream, &bad).await.expect("pushes");
        let pullspec = p.pullspec(&digest);
        p.add_tag(&bad.tag, &pullspec);

        let sizes = info::image_sizes(&p.client, &p.info, "linux/amd64").await.expect("a bad config is no failure");
        let row = sizes.iter().find(|s| s.tag == bad.tag).expect("its row");
        assert_eq!(row.created, None);
        assert_eq!(row.layers, layers_of(&bad), "its layers are still counted");

        let now = "2026-06-01T00:00:00Z".parse().expect("time");
        let mut out = Vec::new();
        info::write_size(&mut out, &info::size_report(&sizes), now).expect("renders");
        let text = String::from_utf8(out).expect("UTF-8");
        let columns = |tag: &str| -> Vec<String> {
            let line = text.lines().find(|l| l.split_whitespace().next() == Some(tag));
            line.unwrap_or_else(|| panic!("{tag} in:\n{text}")).split_whitespace().map(str::to_owned).collect()
        };
        let (bad_row, good_row) = (columns("prometheus-bad-config"), columns("prometheus"));
        assert_eq!(bad_row[1], "<unknown>", "{text}");
        assert_eq!(good_row[1], "2y", "{text}");
        // Same layers: the same count and size, and no byte of its own.
        assert_eq!(bad_row[2..4], good_row[2..4], "{text}");
        assert_eq!((bad_row[4].as_str(), good_row[4].as_str()), ("0.0", "0.0"), "{text}");
        assert!(text.ends_with(&format!(" MB in {} images\n", sizes.len())), "{text}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_passes_then_names_the_damaged_images() {
        let mut p = Pushed::new().await;
        let report = info::verify_images(&p.client, &p.info).await;
        assert!(report.is_ok(), "{:?}", report.failures);
        assert_eq!(report.verified, p.tags());
        assert_eq!(report.unpinned().count(), 0);

        // Damage: `prometheus`'s manifest is gone from the repository, and
        // the registry serves `component-001-operator`'s manifest bytes as
        // `component-001`'s.
        let (missing, swapped) = (p.images["prometheus"].manifest.clone(), p.images["component-001"].manifest.clone());
        let hex = |d: &Digest| d.encoded().to_owned();
        let link = p
            .storage()
            .join(format!("repositories/ocp/stream/_manifests/revisions/sha256/{}/link", hex(missing.digest())));
        std::fs::remove_file(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
        let h = hex(swapped.digest());
        let data = p.storage().join(format!("blobs/sha256/{}/{h}/data", &h[..2]));
        std::fs::write(&data, p.images["component-001-operator"].manifest.bytes()).expect("overwrites");
        let by_tag = format!("{}:prometheus", p.stream.name());
        p.add_tag("by-tag", &by_tag);

        let report = info::verify_images(&p.client, &p.info).await;
        assert!(!report.is_ok());
        let bad = ["prometheus", "component-001", "by-tag"];
        let good: Vec<String> = p.tags().into_iter().filter(|t| !bad.contains(&t.as_str())).collect();
        assert_eq!(report.verified, good);
        let (missing_spec, swapped_spec) = (p.pullspec(missing.digest()), p.pullspec(swapped.digest()));
        let mut want: Vec<(&str, &str)> =
            vec![("prometheus", &missing_spec), ("component-001", &swapped_spec), ("by-tag", &by_tag)];
        let order = p.tags();
        want.sort_by_key(|(t, _)| order.iter().position(|o| o == t));
        let got: Vec<(&str, &str)> = report.failures.iter().filter_map(Error::image).collect();
        assert_eq!(got, want, "each failing image named, in image-references order");
        assert_eq!(report.unpinned().collect::<Vec<_>>(), [("by-tag", by_tag.as_str())]);
        for e in &report.failures {
            let text = chain(e);
            match e.image().expect("an image").0 {
                "prometheus" => {
                    assert!(e.is_not_found() && !e.is_digest_mismatch(), "{text}");
                    assert!(text.starts_with("verifying image `prometheus`: "), "{text}");
                    assert!(text.contains(&format!("`{missing_spec}` not found")), "{text}");
                }
                "component-001" => {
                    assert!(e.is_digest_mismatch() && !e.is_not_found(), "{text}");
                    assert!(text.starts_with("verifying image `component-001`: "), "{text}");
                    // The URL read names the repository and the digest asked for.
                    let url = format!("/v2/ocp/stream/manifests/{}: expected {}", swapped.digest(), swapped.digest());
                    assert!(text.contains(&url), "{text}");
                }
                _ => assert_eq!(text, format!("image `by-tag` is not pinned by digest: `{by_tag}`")),
            }
        }
    }
}
