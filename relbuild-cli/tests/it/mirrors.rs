//! `--idms-file` and `--icsp-file`: a release whose pullspecs name a
//! registry that cannot be reached is built, inspected, extracted and used
//! as `--from-release` through the mirror an ImageDigestMirrorSet names.

use relbuild_testdata::generate::image_stream_yaml;

use super::common::{Fx, fails, files, ok};

/// Nothing listens on port 1: every read of this host must go to a mirror.
const UNREACHABLE: &str = "127.0.0.1:1";

fn idms(source: &str, mirror: &str) -> String {
    format!(
        "apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
  name: test
spec:
  imageDigestMirrors:
  - mirrors:
    - {mirror}
    source: {source}
    mirrorSourcePolicy: NeverContactSource
"
    )
}

fn icsp(source: &str, mirror: &str) -> String {
    format!(
        "apiVersion: operator.openshift.io/v1alpha1
kind: ImageContentSourcePolicy
metadata:
  name: test
spec:
  repositoryDigestMirrors:
  - mirrors:
    - {mirror}
    source: {source}
"
    )
}

#[test]
fn new_info_extract_and_from_release_read_through_a_digest_mirror() {
    let fx = Fx::new();
    let source_stream = format!("{UNREACHABLE}/ocp/stream").parse().expect("reference");
    std::fs::write(fx.path("is-source.yaml"), image_stream_yaml("4.99", &source_stream, &fx.digests)).expect("write");
    std::fs::write(fx.path("idms.yaml"), idms(&format!("{UNREACHABLE}/ocp"), &fx.repo("ocp"))).expect("write");
    std::fs::write(fx.path("icsp.yaml"), icsp(&format!("{UNREACHABLE}/ocp"), &fx.repo("ocp"))).expect("write");

    // Every operator image is read from the mirror; the payload names the source.
    let built = ok(fx.relbuild().args([
        "new",
        "--insecure",
        "--idms-file",
        "idms.yaml",
        "-f",
        "is-source.yaml",
        "--name",
        "4.99.0",
        "--to-image",
        &fx.repo("ocp/release:4.99.0"),
    ]));
    let digest = built.stdout.split_whitespace().next().expect("a digest").to_owned();
    let release = format!("{UNREACHABLE}/ocp/release@{digest}");

    for flag in ["--idms-file=idms.yaml", "--icsp-file=icsp.yaml"] {
        let pullspecs = ok(fx.relbuild().args(["info", "--insecure", flag, "-o", "pullspec", &release])).stdout;
        assert!(pullspecs.contains(&format!("{source_stream}@")), "{flag}: {pullspecs}");
        assert!(!pullspecs.contains(&fx.host()), "the payload names the source, not the mirror: {pullspecs}");
    }

    ok(fx.relbuild().args(["extract", "--insecure", "--idms-file", "idms.yaml", &release, "--to", "extracted"]));
    ok(fx.relbuild().args(["extract", "--insecure", &fx.repo(&format!("ocp/release@{digest}")), "--to", "direct"]));
    assert_eq!(files(&fx.path("extracted")), files(&fx.path("direct")));

    let rebuilt = ok(fx.relbuild().args([
        "new",
        "--insecure",
        "--idms-file",
        "idms.yaml",
        "--from-release",
        &release,
        "--dry-run",
        "--to-image",
        &fx.repo("ocp/again"),
    ]));
    assert_eq!(
        rebuilt.stdout.split_whitespace().next(),
        Some(digest.as_str()),
        "a canonical rebuild through the mirror"
    );

    // By tag, a NeverContactSource source is refused: mirrors hold digests only.
    let err = fails(fx.relbuild().args([
        "info",
        "--insecure",
        "--idms-file",
        "idms.yaml",
        &format!("{UNREACHABLE}/ocp/release:4.99.0"),
    ]));
    assert!(err.contains("is by tag") && err.contains("idms.yaml") && err.contains("NeverContactSource"), "{err}");
}

#[test]
fn bad_mirror_files_name_the_file_and_the_problem() {
    let fx = Fx::new();
    std::fs::write(fx.path("idms.yaml"), idms("quay.io/a", "m.local/a")).expect("write");
    std::fs::write(fx.path("empty.yaml"), "kind: ImageDigestMirrorSet\n").expect("write");
    let release = fx.repo("ocp/release:any");
    let cases: [(&str, &str, &[&str]); 3] = [
        ("--idms-file", "missing.yaml", &["cannot read `missing.yaml`"]),
        ("--icsp-file", "idms.yaml", &["mirror file `idms.yaml`", "not `ImageContentSourcePolicy`", "--idms-file"]),
        ("--idms-file", "empty.yaml", &["mirror file `empty.yaml`", "spec.imageDigestMirrors"]),
    ];
    for cmd in ["info", "extract", "lint"] {
        for (flag, file, want) in cases {
            let mut run = fx.relbuild();
            run.args([cmd, "--insecure", flag, file, &release]);
            if cmd == "extract" {
                run.args(["--to", "out"]);
            }
            let err = fails(&mut run);
            for w in want {
                assert!(err.contains(w), "{cmd} {flag} {file}: {err}");
            }
        }
    }
}
