//! Bad inputs: each fails with one clear `error:` line naming the input and
//! what is wrong, never panics, leaks no secret, and leaves nothing behind
//! (no output files, no temporary files, nothing pushed).

use relbuild_core::registry::ClientOptions;
use relbuild_testdata::auth::BasicAuthRegistry;
use relbuild_testdata::fixture::{
    duplicate_source_operator, operator_without_manifests, release_like, unknown_snapshot_operator,
};
use relbuild_testdata::generate::build_image;
use relbuild_testdata::hostile::{ESCAPING_ENTRY, hostile_operator};
use relbuild_testdata::proxy::{Action, Fault, Matcher};
use relbuild_testdata::registry::{TestRegistry, free_port};

use crate::common::{Fx, SlowOperator, fails, names, ok};

/// `new` with every local output and a push to `ocp/never`, plus `args`;
/// asserts it fails, that nothing was written or pushed, and returns the
/// error line.
fn new_fails(fx: &Fx, args: &[&str]) -> String {
    let before = names(fx.dir());
    let never = fx.repo("ocp/never");
    let mut outputs =
        vec!["--to-image", &never, "--to-dir", "out-dir", "--to-file", "out.tar.gz", "--to-oci-layout", "out-oci"];
    outputs.extend_from_slice(args);
    let e = fails(&mut fx.new_cmd("1.0.0", &outputs));
    assert_eq!(names(fx.dir()), before, "nothing written next to the outputs after: {e}");
    assert!(!fx.has_repo("ocp/never"), "nothing pushed after: {e}");
    e
}

#[test]
fn malformed_reference() {
    let fx = Fx::new();
    let e = fails(fx.relbuild().args(["info", "quay.io/A b"]));
    assert!(e.contains("`quay.io/A b`") && e.contains("' '"), "{e}");
    let e = fails(fx.relbuild().args(["new", "-f", "is.yaml", "--name", "1.0.0", "--to-image", "quay.io/A b"]));
    assert!(e.contains("`quay.io/A b`"), "{e}");
    let e = new_fails(&fx, &["prometheus=quay.io/A b"]);
    assert!(e.contains("`quay.io/A b`"), "{e}");
}

#[test]
fn auth_file_not_json() {
    let fx = Fx::new();
    std::fs::write(fx.path("bad.json"), "{ \"auths\": { nope").expect("writes");
    let release = fx.repo("ocp/release:1");
    let e = fails(fx.relbuild().args(["info", "--insecure", "-a", "bad.json", &release]));
    assert!(e.contains("`bad.json`") && e.contains("not valid") && e.contains("line 1"), "{e}");
    let e = fails(fx.relbuild().args(["info", "--insecure", "-a", "missing.json", &release]));
    assert!(e.contains("`missing.json`") && e.contains("does not exist"), "{e}");
    // Through the environment as well.
    let e = fails(fx.relbuild().env("REGISTRY_AUTH_FILE", fx.path("bad.json")).args(["info", "--insecure", &release]));
    assert!(e.contains("bad.json") && e.contains("not valid"), "{e}");
}

#[test]
fn wrong_credentials_name_registry_file_and_key_but_no_secret() {
    let password = "wrong-s3cret-Pa55";
    let auth = BasicAuthRegistry::start("relbuild", "the-right-password").expect("htpasswd registry");
    let host = auth.registry.host();
    let key = format!("{host}/ocp");
    let file = auth.write_auth_file("auth.json", &key, password).expect("auth file");
    let file_shown = file.display().to_string();
    let encoded = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("relbuild:{password}"))
    };
    let fx = Fx::new();
    for verbosity in [None, Some("-vvv")] {
        let mut cmd = fx.relbuild();
        cmd.args(["info", "--insecure", "-a", &file_shown, &format!("{host}/ocp/release:1")]);
        if let Some(v) = verbosity {
            cmd.arg(v);
        }
        let out = cmd.output().expect("runs");
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!all.contains(password) && !all.contains(&encoded), "the secret leaked with {verbosity:?}:\n{all}");
        assert!(!out.status.success());
        if verbosity.is_some() {
            continue; // the log lines of -vvv are not one error line
        }
        let e = fails(&mut cmd);
        assert!(e.contains(&format!("`{host}`")), "names the registry: {e}");
        assert!(e.contains(&file_shown), "names the auth file: {e}");
        assert!(e.contains(&format!("`{key}`")), "names the key: {e}");
    }
    // No credentials at all: a 401 that says so.
    let e = fails(fx.relbuild().args(["info", "--insecure", &format!("{host}/ocp/release:1")]));
    assert!(e.contains(&format!("`{host}`")) && e.contains("denied"), "{e}");
}

#[test]
fn tls_needs_the_ca_then_works() {
    let (reg, tls) = TestRegistry::start_tls().expect("TLS registry");
    let client = ClientOptions::default().with_certificate_authority(&tls.ca_pem_path).build().expect("client");
    let fx = Fx::on(reg, &client);
    let to = fx.repo("ocp/release");
    let mut new = fx.relbuild();
    new.args(["new", "-f", "is.yaml", "--name", "1.0.0", "--created", crate::common::CREATED, "--to-image", &to]);
    let e = fails(&mut new);
    assert!(e.contains(&format!("TLS handshake with registry `{}` failed", fx.host())), "{e}");
    assert!(e.contains("--certificate-authority"), "hints at the fix: {e}");
    let e = fails(fx.relbuild().args(["info", &format!("{to}:1.0.0")]));
    assert!(e.contains("TLS handshake"), "{e}");

    let ca = tls.ca_pem_path.display().to_string();
    let built = ok(new.args(["--certificate-authority", &ca]));
    let digest = built.stdout.split_whitespace().next().expect("a digest").to_owned();
    let info = ok(fx.relbuild().args(["info", "--certificate-authority", &ca, &format!("{to}:1.0.0")]));
    assert!(info.stdout.contains(&format!("Digest:         {digest}")), "{}", info.stdout);
}

#[test]
fn layer_escaping_the_root() {
    let fx = Fx::new();
    let pullspec = fx.push_built(&hostile_operator().expect("builds"));
    let e = new_fails(&fx, &[&format!("hostile-operator={pullspec}")]);
    assert!(e.contains(ESCAPING_ENTRY) && e.contains("escapes the layer root"), "{e}");
    assert!(e.contains(&pullspec) || e.contains("hostile-operator"), "names the image: {e}");
    assert!(!fx.dir().join("../evil.yaml").exists() && !fx.dir().join("evil.yaml").exists());
}

#[test]
fn bad_stream_files_and_options() {
    let fx = Fx::new();
    std::fs::write(fx.path("bad.yaml"), "kind: ImageStream\nspec: [\n").expect("writes");
    std::fs::write(fx.path("pod.yaml"), "kind: Pod\napiVersion: v1\n").expect("writes");
    let new_from = |file: &str, extra: &[&str]| {
        let mut cmd = fx.relbuild();
        cmd.args(["new", "--insecure", "-f", file, "--name", "1.0.0", "--to-dir", "out-dir"]).args(extra);
        cmd
    };
    let e = fails(&mut new_from("bad.yaml", &[]));
    assert!(e.starts_with("`bad.yaml` line 2, column 7"), "{e}");
    let e = fails(&mut new_from("pod.yaml", &[]));
    assert_eq!(e, "`pod.yaml`: unknown kind `Pod`, expected `ImageStream`");
    let e = fails(&mut new_from("missing.yaml", &[]));
    assert!(e.contains("`missing.yaml`") && e.contains("No such file"), "{e}");

    let e = new_fails(&fx, &["--to-image-base-tag", "nope"]);
    assert!(e.contains("\"nope\"") && e.contains("could not be found"), "{e}");
    let e = fails(&mut fx.new_cmd("4.99", &["--to-dir", "out-dir"]));
    assert!(e.starts_with("`4.99` is not a valid semantic version for --name"), "{e}");
    let e = new_fails(&fx, &["--metadata", r#"{"a":1}"#]);
    assert!(e.contains("--metadata key `a` must have a string value"), "{e}");
    let e = new_fails(&fx, &["--metadata", "[1]"]);
    assert!(e.contains("--metadata"), "{e}");
    let e = fails(&mut fx.new_cmd("1.0.0", &["--to-signature", "sig.json", "--to-dir", "out-dir"]));
    assert_eq!(e, "--to-signature requires --to-image");
    let e = fails(&mut fx.new_cmd("1.0.0", &["-o", "yaml"]));
    assert!(e.contains("`-o yaml`"), "{e}");
    assert!(!fx.path("out-dir").exists() && !fx.path("sig.json").exists());
}

#[test]
fn bad_operator_images() {
    let fx = Fx::new();
    let dup = fx.push_fixture(&duplicate_source_operator());
    let e = new_fails(&fx, &[&format!("dup-source-operator={dup}")]);
    assert!(e.contains("\"dup-source-operator\"") && e.contains("was defined more than once"), "{e}");
    assert!(e.contains("quay.io/openshift/origin-prometheus"), "names the repository: {e}");

    let snap = fx.push_fixture(&unknown_snapshot_operator("unknown"));
    let e = new_fails(&fx, &[&format!("unknown-snapshot-operator={snap}")]);
    assert!(e.contains("\"unknown-snapshot-operator\"") && e.contains("`a.yaml`"), "{e}");
    assert!(e.contains("unknown version reference \"unknown\""), "{e}");

    let empty = fx.push_fixture(&operator_without_manifests());
    let e = new_fails(&fx, &[&format!("no-manifests-operator={empty}")]);
    assert!(e.contains(&empty) && e.contains("has no `/manifests`"), "{e}");
}

/// When one image fails while another's layer is still arriving, the build
/// stops that read and exits with the failure: it neither waits for the
/// slow layer nor panics while the runtime shuts down under the read.
#[test]
fn a_failure_stops_the_other_reads() {
    let fx = Fx::new();
    // This operator's top layer arrives one byte per second, through the proxy.
    let SlowOperator { proxy, top, pullspec: via_proxy } = fx.slow_operator();
    // The image that fails is held back a little, so the slow read has
    // begun when it fails (asserted below).
    let empty_image = build_image(&operator_without_manifests()).expect("builds");
    fx.push_built(&empty_image);
    let empty = format!("{}/ocp/stream@{}", proxy.host(), empty_image.manifest.digest());
    let held = Matcher::new("GET", &format!("/manifests/{}", empty_image.manifest.digest()));
    proxy.add(Fault::new(held, Action::Delay(std::time::Duration::from_secs(3))));

    let out = fx
        .new_cmd(
            "4.99.0",
            &["--to-dir", "out", &format!("slow-operator={via_proxy}"), &format!("no-manifests-operator={empty}")],
        )
        // Far longer than the build takes; the slow layer alone would take minutes.
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exits with the failure, not killed by the timeout: {stderr}");
    assert!(stderr.contains(&empty) && stderr.contains("has no `/manifests`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(proxy.hits(&top), 1, "the slow layer was being read when the build failed");
    assert!(!fx.path("out").exists());
}

#[test]
fn registry_failures() {
    let fx = Fx::new();
    let port = free_port().expect("port");
    let unreachable = format!("127.0.0.1:{port}/x/y:latest");
    let e = new_fails(&fx, &[&format!("zz={unreachable}")]);
    assert!(e.contains(&format!("`{unreachable}`")) && e.contains("cannot connect"), "{e}");

    let auth = BasicAuthRegistry::start("u", "p").expect("htpasswd registry");
    let locked = format!("{}/x/y:latest", auth.registry.host());
    let e = new_fails(&fx, &[&format!("zz={locked}")]);
    assert!(e.contains(&format!("`{}`", auth.registry.host())) && e.contains("denied"), "{e}");

    let missing = format!("{}@sha256:{}", fx.stream.name(), "0".repeat(64));
    let e = new_fails(&fx, &[&format!("zz={missing}")]);
    assert!(e.contains(&format!("`{missing}`")) && e.contains("not found"), "{e}");

    let e = fails(fx.relbuild().args(["info", "--insecure", &fx.repo("ocp/release:nope")]));
    assert!(e.contains(&format!("`{}`", fx.repo("ocp/release:nope"))) && e.contains("not found"), "{e}");
}

const REFS: &str =
    r#"{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":"1.0.0"},"spec":{"tags":[]}}"#;
const META: &str = r#"{"kind":"cincinnati-metadata-v0","version":"1.0.0"}"#;

#[test]
fn not_a_release_and_broken_releases() {
    let fx = Fx::new();
    let operand = fx.pullspec("prometheus");
    for cmd in [&["info"][..], &["extract", "--to", "x"], &["lint"]] {
        let e = fails(fx.relbuild().args(cmd).args(["--insecure", &operand]));
        assert!(e.contains(&format!("`{operand}` is not a release image: no `release-manifests/` found")), "{e}");
    }
    assert!(!fx.path("x").exists());

    let no_refs = fx.push_fixture(&release_like("no-refs", &[("release-metadata", META)]));
    let e = fails(fx.relbuild().args(["info", "--insecure", &no_refs]));
    assert!(e.contains(&no_refs) && e.contains("image-references"), "{e}");

    let bad_meta =
        fx.push_fixture(&release_like("bad-meta", &[("image-references", REFS), ("release-metadata", "{\"kind\": ")]));
    let e = fails(fx.relbuild().args(["info", "--insecure", &bad_meta]));
    assert!(e.contains(&bad_meta) && e.contains("release-metadata"), "{e}");
}

#[test]
fn extract_and_lint_bad_arguments() {
    let fx = Fx::new();
    let release = fx.repo("ocp/release:1.0.0");
    ok(&mut fx.new_cmd("1.0.0", &["--to-image", &fx.repo("ocp/release")]));
    let e = fails(fx.relbuild().args(["extract", "--insecure", &release, "--file", "nope"]));
    assert!(e.contains("no file `nope`") && e.contains("release-metadata") && e.contains("image-references"), "{e}");

    // `lint` that cannot run exits 2, not 1 (1 means "found errors").
    let out = fx.relbuild().args(["lint", "--insecure", &fx.repo("ocp/release:nope")]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let e = fails(fx.relbuild().args(["lint", "--insecure", &fx.repo("ocp/release:nope")]));
    assert!(e.contains("not found"), "{e}");
    let e = fails(fx.relbuild().args(["info", "--insecure", "-o", "yaml", &release]));
    assert!(e.contains("`-o yaml`"), "{e}");
}
