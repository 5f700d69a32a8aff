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
