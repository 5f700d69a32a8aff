//! The happy path: build a release from the fixture stream, push it, read it
//! back every way `info` can, compare two releases, write every local
//! output, extract, lint and prune the cache.

use std::collections::BTreeSet;

use relbuild_core::Digest;
use relbuild_testdata::fixture::changed_operator;
use relbuild_testdata::registry::skopeo_inspect_raw;

use crate::common::{CREATED, Fx, Ran, files, names, ok};

/// `<digest> <name> <created>`, oc's summary line, parsed.
fn summary(ran: &Ran) -> (String, String, String) {
    let fields: Vec<&str> = ran.stdout.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "one `<digest> <name> <created>` line: {:?}", ran.stdout);
    assert!(fields[0].starts_with("sha256:") && fields[0].len() == 71, "{}", fields[0]);
    (fields[0].to_owned(), fields[1].to_owned(), fields[2].to_owned())
}

/// Every warning is printed once, as `warning: …`, never as a log line.
fn warnings_once(stderr: &str) {
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    let unique: BTreeSet<&str> = warnings.iter().copied().collect();
    assert_eq!(unique.len(), warnings.len(), "a warning repeated:\n{stderr}");
    assert!(!stderr.contains(" WARN "), "warnings as log lines too:\n{stderr}");
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}):\n{s}"))
}

#[test]
fn build_push_and_inspect() {
    let fx = Fx::new();
    let to = fx.repo("ocp/release");
    let built = ok(&mut fx.new_cmd("4.99.0", &["--to-image", &to]));
    let (digest, name, created) = summary(&built);
    assert_eq!((name.as_str(), created.as_str()), ("4.99.0", CREATED));
    assert!(built.stderr.contains(&format!("info: Pushed to {to}:4.99.0\n")), "{}", built.stderr);
    assert!(built.stderr.contains("(pruned: unreferenced-thing)"), "{}", built.stderr);
    warnings_once(&built.stderr);

    // skopeo reads what we pushed, and its bytes are the digest we printed.
    let release = format!("{to}:4.99.0");
    let raw = skopeo_inspect_raw(&release).expect("skopeo reads the release");
    assert_eq!(Digest::sha256(&raw).to_string(), digest);

    let info = |args: &[&str]| ok(fx.relbuild().args(["info", "--insecure"]).args(args).arg(&release)).stdout;
    let human = info(&[]);
    assert!(human.starts_with("Name:           4.99.0\nDigest:         "), "{human}");
    assert!(human.contains(&format!("Digest:         {digest}\n")), "{human}");
    assert!(human.contains(&format!("Pull From: {to}@{digest}\n")), "{human}");
    let images = human.split_once("\nImages:\n").expect("an Images: section").1;
    let kept: Vec<&String> = fx.digests.keys().filter(|t| *t != "unreferenced-thing").collect();
    for tag in &kept {
        let line = images.lines().find(|l| l.split_whitespace().next() == Some(tag.as_str()));
        let line = line.unwrap_or_else(|| panic!("{tag} listed:\n{human}"));
        assert!(line.ends_with(&fx.digests[*tag].to_string()), "{line}");
    }
    assert!(!human.contains("unreferenced-thing"), "{human}");

    let j = json(&info(&["-o", "json"]));
    for key in [
        "image",
        "digest",
        "contentDigest",
        "listDigest",
        "config",
        "metadata",
        "references",
        "displayVersions",
        "versionsTags",
        "images",
        "warnings",
    ] {
        assert!(j.get(key).is_some(), "`{key}` in -o json");
    }
    assert_eq!(j["digest"], digest.as_str());
    let ref_tags: Vec<&str> =
        j["references"]["spec"]["tags"].as_array().expect("tags").iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(ref_tags, kept.iter().map(|t| t.as_str()).collect::<Vec<_>>());

    let lines = |s: String| s.lines().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(lines(info(&["-o", "name"])), kept.iter().map(|t| (*t).clone()).collect::<Vec<_>>());
    assert_eq!(lines(info(&["-o", "pullspec"])), kept.iter().map(|t| fx.pullspec(t)).collect::<Vec<_>>());
    assert_eq!(lines(info(&["-o", "digest"])), kept.iter().map(|t| fx.digests[*t].to_string()).collect::<Vec<_>>());
    let pullspecs = info(&["--pullspecs"]);
    assert!(pullspecs.contains(&format!("prometheus{}{}", " ".repeat(18), fx.pullspec("prometheus"))), "{pullspecs}");
    let commits = info(&["--commits"]);
    assert!(commits.contains("https://github.com/openshift/prometheus ") && commits.contains("def000"), "{commits}");
    let urls = info(&["--commit-urls"]);
    assert!(urls.contains("https://github.com/openshift/prometheus/commit/0000000000000000000000000000000000def000"));
    let contents = info(&["--contents"]);
    assert!(contents.starts_with("# image-references\n") && contents.contains("# release-metadata\n"), "{contents}");
    assert_eq!(info(&["--image-for=prometheus"]).trim(), fx.pullspec("prometheus"));
    assert_eq!(info(&["--verify"]).trim(), format!("{digest} {CREATED} 4.99.0"));
    // --size fetches every image: one row each, with its layer count, and
    // the bytes only it has never exceed its size.
    let size = info(&["--size"]);
    let table = size.split_once("\n\n").map_or(size.as_str(), |(t, _)| t);
    for tag in &kept {
        let row = table.lines().find(|l| l.split_whitespace().next() == Some(tag.as_str()));
        let cols: Vec<&str> = row.unwrap_or_else(|| panic!("{tag} in --size:\n{size}")).split_whitespace().collect();
        let layers: usize = cols[2].parse().expect("a layer count");
        assert!(layers >= 1, "{size}");
        let (total, unique): (f64, f64) = (cols[3].parse().expect("size"), cols[4].parse().expect("unique"));
        assert!(unique <= total, "{size}");
    }
    // The fixture images share no layer, so there is no shared-layer list.
    assert!(!size.contains("Shared layers:") && size.contains("\nTotal: "), "{size}");
    assert!(size.trim_end().ends_with(&format!("in {} images", kept.len())), "{size}");

    // The same release read by digest, and lint on it: only warnings.
    let by_digest = format!("{to}@{digest}");
    let lint = fx.relbuild().args(["lint", "--insecure", &by_digest]).output().expect("runs");
    assert_eq!(lint.status.code(), Some(0), "{}", String::from_utf8_lossy(&lint.stderr));
    let report = json(&ok(fx.relbuild().args(["lint", "--insecure", "-o", "json", &by_digest])).stdout);
    let findings = report.as_array().expect("an array of findings");
    assert!(findings.iter().all(|f| f["severity"] == "warning"), "{report:#}");
}

#[test]
fn compare_two_releases_and_canonical_rebuild() {
    let fx = Fx::new();
    let to = fx.repo("ocp/release");
    let (first, ..) = summary(&ok(&mut fx.new_cmd("4.99.0", &["--to-image", &to])));
    let first_ref = format!("{to}:4.99.0");

    // Nothing changed: the same digest, byte for byte.
    let again = ok(fx.relbuild().args(["new", "--insecure", "--from-release", &first_ref, "--to-image"]).arg(&to));
    let (digest, name, created) = summary(&again);
    assert_eq!((digest.as_str(), name.as_str(), created.as_str()), (first.as_str(), "4.99.0", CREATED));

    // Replace an operand and an operator.
    let alt = changed_operator(&fx.images).expect("a changed operator");
    let alt_pullspec = fx.push_fixture(&alt);
    let other = fx.pullspec("component-001");
    let second = ok(fx
        .relbuild()
        .args(["new", "--insecure", "--from-release", &first_ref, "--name", "4.99.1", "--to-image", &to])
        .arg(format!("prometheus={other}"))
        .arg(format!("cluster-monitoring-operator={alt_pullspec}")));
    let (second_digest, name, _) = summary(&second);
    assert_eq!(name, "4.99.1");
    assert_ne!(second_digest, first);
    warnings_once(&second.stderr);
    let second_ref = format!("{to}:4.99.1");

    let table = ok(fx.relbuild().args(["info", "--insecure", &first_ref, &second_ref])).stdout;
    for want in ["4.99.0", "4.99.1", "prometheus", "cluster-monitoring-operator", "06_added_in_alt"] {
        assert!(table.contains(want), "{want} in:\n{table}");
    }
    let changed = table.lines().find(|l| l.trim_start().starts_with("prometheus")).expect("a prometheus row");
    let (from_digest, to_digest) = (fx.digests["prometheus"].to_string(), fx.digests["component-001"].to_string());
    assert!(changed.contains(&format!("{from_digest} {to_digest}")), "FROM then TO digest: {table}");
    assert!(table.contains("Images Changed:\n") && table.contains("06_added_in_alt"), "{table}");
    assert!(!table.lines().any(|l| l.trim_start().starts_with("component-002 ")), "unchanged images are not listed");
    let diff = serde_json::from_str::<serde_json::Value>(
        &ok(fx.relbuild().args(["info", "--insecure", "-o", "json", &first_ref, &second_ref])).stdout,
    )
    .expect("the pair as JSON");
    assert!(diff.to_string().contains("prometheus"), "{diff:#}");

    let to_tag = ok(fx.relbuild().args(["info", "--insecure", "--image-for=prometheus", &second_ref])).stdout;
    assert_eq!(to_tag.trim(), other);
}

#[test]
fn local_outputs_extract_lint_and_cache() {
    let fx = Fx::new();
    let to = fx.repo("ocp/release");
    let built = ok(&mut fx.new_cmd(
        "4.99.0",
        &[
            "--to-image",
            &to,
            "--to-dir",
            "payload",
            "--to-file",
            "payload.tar.gz",
            "--to-oci-layout",
            "layout",
            "--to-signature",
            "release.sig",
            "--cache-dir",
            "cache",
        ],
    ));
    // Two image outputs: one line each, the pushed one first.
    let lines: Vec<&str> = built.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", built.stdout);
    assert!(lines[1].ends_with(" oci:layout:4.99.0"), "{}", built.stdout);
    let digest = lines[0].split(' ').next().expect("a digest").to_owned();
    let release = format!("{to}:4.99.0");
    assert_eq!(lines[0], format!("{digest} 4.99.0 {CREATED} {release}"));
    let outputs = ["cache", "home", "is.yaml", "layout", "payload", "payload.tar.gz", "release.sig"];
    assert_eq!(names(fx.dir()), outputs, "exactly the outputs, no temporary leftovers");

    // --to-file is the pushed top layer.
    let manifest = serde_json::from_slice::<serde_json::Value>(&skopeo_inspect_raw(&release).expect("skopeo"))
        .expect("manifest JSON");
    let top = manifest["layers"].as_array().and_then(|l| l.last()).expect("layers");
    let gz = std::fs::read(fx.path("payload.tar.gz")).expect("payload.tar.gz");
    assert_eq!(Digest::sha256(&gz).to_string(), top["digest"].as_str().expect("digest"));

    let sig = json(&std::fs::read_to_string(fx.path("release.sig")).expect("signature"));
    assert_eq!(sig["critical"]["image"]["docker-manifest-digest"], digest.as_str());
    assert_eq!(sig["critical"]["type"], "atomic container signature");

    // The OCI layout holds the same release.
    let from_layout = ok(fx.relbuild().args(["info", "oci:layout:4.99.0"])).stdout;
    assert!(from_layout.starts_with("Name:           4.99.0\n") && from_layout.contains("prometheus"), "{from_layout}");
    let pullspecs = ok(fx.relbuild().args(["info", "-o", "pullspec", "oci:layout:4.99.0"])).stdout;
    assert!(pullspecs.contains(&fx.pullspec("prometheus")), "{pullspecs}");

    // extract writes what --to-dir wrote, byte for byte.
    let payload = files(&fx.path("payload"));
    assert!(payload.contains_key("image-references") && payload.contains_key("release-metadata"));
    let extracted = ok(fx.relbuild().args(["extract", "--insecure", &release, "--to", "extracted"]));
    assert!(extracted.stderr.contains(&format!("{} files to extracted", payload.len())), "{}", extracted.stderr);
    assert_eq!(files(&fx.path("extracted")), payload);
    let one = fx.relbuild().args(["extract", "--insecure", &release, "--file", "image-references"]).output();
    assert_eq!(one.expect("runs").stdout, payload["image-references"]);

    // Filters keep the metadata files and the manifests that pass; the
    // fixture's deployments and config maps carry the
    // self-managed-high-availability profile, its long-name ConfigMap none.
    let filtered = |name: &str, args: &[&str]| {
        ok(fx.relbuild().args(["extract", "--insecure", &release, "--to", name]).args(args));
        files(&fx.path(name))
    };
    let included = filtered("included", &["--included"]);
    assert!(included.contains_key("image-references") && included.contains_key("release-metadata"));
    assert!(included.keys().any(|n| n.ends_with("_01_deployment.yaml")), "{:?}", included.keys());
    assert!(!included.keys().any(|n| n.contains("_05_yyy") || n.ends_with("README.md")), "{:?}", included.keys());
    assert!(included.len() < payload.len());
    for (name, data) in &included {
        assert_eq!(&payload[name], data, "{name} is still verbatim");
    }
    let other_profile = filtered("sno", &["--included", "--profile", "single-node-developer"]);
    assert_eq!(other_profile.keys().collect::<Vec<_>>(), ["image-references", "release-metadata"]);
    let creds = filtered("creds", &["--credentials-requests", "--cloud", "aws"]);
    assert_eq!(creds.keys().collect::<Vec<_>>(), ["image-references", "release-metadata"], "the fixture has none");
    let normalized = filtered("normalized", &["--normalize"]);
    assert_eq!(normalized.keys().collect::<Vec<_>>(), payload.keys().collect::<Vec<_>>());
    let (name, data) = normalized.iter().find(|(n, _)| n.ends_with("_01_deployment.yaml")).expect("a deployment");
    assert!(data.starts_with(b"---\n") && data != &payload[name], "{}", String::from_utf8_lossy(data));
    assert_eq!(normalized["image-references"], payload["image-references"], "metadata files stay verbatim");

    // lint on the directory: warnings only, exit 0.
    let lint = fx.relbuild().args(["lint", "payload"]).output().expect("runs");
    assert_eq!(lint.status.code(), Some(0), "{}", String::from_utf8_lossy(&lint.stdout));
    let report = String::from_utf8_lossy(&lint.stdout);
    let (findings, count) = report.trim_end().rsplit_once('\n').expect("findings, then a count");
    assert!(findings.lines().all(|l| l.starts_with("warning[")), "{report}");
    assert!(count.starts_with("0 errors, "), "{report}");

    // --dry-run computes the same digest and pushes nothing; -o json prints the stream.
    let dry = ok(&mut fx.new_cmd("4.99.0", &["--dry-run", "--to-image", &fx.repo("ocp/dry")]));
    assert_eq!(summary(&dry).0, digest);
    assert!(!fx.has_repo("ocp/dry"), "a dry run pushes nothing");
    let stream = json(&ok(&mut fx.new_cmd("4.99.0", &["-o", "json"])).stdout);
    assert_eq!(stream["kind"], "ImageStream");
    assert_eq!(stream["metadata"]["name"], "4.99.0");
    assert!(stream["spec"]["tags"].as_array().expect("tags").iter().any(|t| t["name"] == "prometheus"));

    // The cache: a warm rebuild gives the same digest; prune empties it.
    let warm = ok(&mut fx.new_cmd("4.99.0", &["--dry-run", "--to-image", &to, "--cache-dir", "cache"]));
    assert_eq!(summary(&warm).0, digest);
    let pruned = ok(fx.relbuild().args(["cache", "prune", "--cache-dir", "cache", "--older-than-days", "0"]));
    let removed: u64 = pruned
        .stderr
        .strip_prefix("info: removed ")
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("info: removed N entries: {}", pruned.stderr));
    assert!(removed > 0, "{}", pruned.stderr);
    let again = ok(fx.relbuild().args(["cache", "prune", "--cache-dir", "cache", "--older-than-days", "0"]));
    assert!(again.stderr.starts_with("info: removed 0 entries (0 bytes)"), "{}", again.stderr);
}

/// `-f URL`: the stream file served over HTTP (here by the registry itself,
/// as a blob) builds the same release as the local file; a URL that does not
/// answer 200 is a clear error naming it.
#[test]
fn stream_file_from_a_url() {
    let fx = Fx::new();
    // Pushed from the file on disk (a path is a blob source).
    let file = fx.path("is.yaml");
    let yaml = std::fs::read(&file).expect("is.yaml");
    let desc = relbuild_core::Descriptor::new(
        relbuild_core::MediaType::DockerLayerGzip,
        relbuild_core::Digest::sha256(&yaml),
        yaml.len() as u64,
    );
    let files: relbuild_core::image::Reference = fx.repo("ocp/files").parse().expect("reference");
    crate::common::block_on(crate::common::client().push_blob(&files, &desc, &file)).expect("pushes the file");
    let url = format!("http://{}/v2/ocp/files/blobs/{}", fx.host(), desc.digest);
    let to = fx.repo("ocp/release:url");

    let local = ok(&mut fx.new_cmd("4.99.0", &["--dry-run", "--to-image", &to]));
    let mut cmd = fx.relbuild();
    cmd.args(["new", "--insecure", "-f", &url, "--created", crate::common::CREATED, "--name", "4.99.0"]);
    let remote = ok(cmd.args(["--dry-run", "--to-image", &to]));
    assert_eq!(summary(&remote), summary(&local));

    let missing = format!("http://{}/v2/ocp/files/blobs/sha256:{}", fx.host(), "0".repeat(64));
    let mut cmd = fx.relbuild();
    cmd.args(["new", "--insecure", "-f", &missing, "--name", "4.99.0", "--dry-run", "--to-image", &to]);
    let e = crate::common::fails(&mut cmd);
    assert!(e.contains(&format!("`{missing}`")) && e.contains("404"), "{e}");
}
