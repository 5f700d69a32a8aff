//! Messages say what is wrong in one wording: an empty stream file, an
//! image that is not a release, what a build reads from, lint's summary.

use crate::common::{Fx, fails, ok};

#[test]
fn an_empty_stream_file_says_so() {
    let fx = Fx::new();
    std::fs::write(fx.path("empty.yaml"), "").expect("writes");
    std::fs::write(fx.path("comments.yaml"), "# nothing yet\n\n").expect("writes");
    for file in ["empty.yaml", "comments.yaml"] {
        let e = fails(fx.relbuild().args(["new", "-f", file]));
        assert_eq!(e, format!("`{file}` is empty, expected an `ImageStream`"));
    }
    let e = fails(fx.relbuild().args(["new", "-f", "-"]).write_stdin(""));
    assert_eq!(e, "`<stdin>` is empty, expected an `ImageStream`");
}

#[test]
fn not_a_release_is_worded_one_way() {
    let fx = Fx::new();
    let operand = fx.pullspec("prometheus");
    let want = format!("`{operand}` is not a release image: no `release-manifests/` found in any of its 1 layers");
    let e = fails(fx.relbuild().args(["info", "--insecure", &operand]));
    assert!(e.contains(&want), "{e}");
    let e = fails(fx.relbuild().args(["new", "--insecure", "--from-release", &operand]));
    assert!(e.contains(&want), "{e}");
}

#[test]
fn debug_logs_name_the_source() {
    let fx = Fx::new();
    let built = ok(&mut fx.new_cmd("4.99.0", &["-vv", "--to-image", &fx.repo("ocp/release")]));
    assert!(built.stderr.contains("new_release{source=image-stream-file}"), "{}", built.stderr);
    let release = fx.repo("ocp/release:4.99.0");
    let rebuilt = ok(fx.relbuild().args(["new", "-vv", "--insecure", "--from-release", &release]));
    assert!(rebuilt.stderr.contains("new_release{source=release}"), "{}", rebuilt.stderr);
    assert!(!rebuilt.stderr.contains("Discriminant"), "{}", rebuilt.stderr);
}

#[test]
fn lint_ends_with_a_count() {
    let fx = Fx::new();
    ok(&mut fx.new_cmd("4.99.0", &["--to-dir", "payload"]));
    let files = std::fs::read_dir(fx.path("payload")).expect("a payload").count();
    let out = ok(fx.relbuild().args(["lint", "payload"])).stdout;
    let findings = out.lines().filter(|l| l.starts_with("warning[")).count();
    assert!(findings > 0, "the fixture has lint warnings:\n{out}");
    let s = if findings == 1 { "" } else { "s" };
    let last = out.lines().last().unwrap_or_default();
    assert_eq!(last, format!("0 errors, {findings} warning{s} in {files} files"), "{out}");
    // `-o json` stays JSON only.
    let json = ok(fx.relbuild().args(["lint", "-o", "json", "payload"])).stdout;
    assert!(json.trim_end().ends_with(']'), "{json}");
}

/// `info --verify` and `info --size` on a release one of whose images is
/// gone: `--verify` names it (tag and pullspec) and exits 1, then says how
/// many failed; `--size` fails naming it.
#[test]
fn info_names_the_image_that_is_gone() {
    let fx = Fx::new();
    let to = fx.repo("ocp/release");
    ok(&mut fx.new_cmd("4.99.0", &["--to-image", &to]));
    let release = format!("{to}:4.99.0");
    let link = fx.reg.dir().join(format!(
        "storage/docker/registry/v2/repositories/ocp/stream/_manifests/revisions/sha256/{}/link",
        fx.digests["prometheus"].encoded()
    ));
    std::fs::remove_file(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display()));
    let pullspec = fx.pullspec("prometheus");

    let out = fx.relbuild().args(["info", "--insecure", "--verify", &release]).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no verify line for a damaged release");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(errors[0].starts_with(&format!("error: verifying image `prometheus`: `{pullspec}` not found")), "{stderr}");
    assert_eq!(errors[1], "error: 1 of the release's images failed verification");

    let e = fails(fx.relbuild().args(["info", "--insecure", "--size", &release]));
    assert!(e.starts_with(&format!("reading image `prometheus`: reading `{pullspec}`: ")), "{e}");
    assert!(e.contains("not found"), "{e}");
}
