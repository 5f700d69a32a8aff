//! What `new` checks so that a mistake is not silent: a mapping that
//! replaces nothing, a tag overwritten by default, the digest of each
//! output, a build that writes nothing, a destination that refuses push
//! (found before the build), and an interrupted build's temporary files.

use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant, SystemTime};

use relbuild_core::Digest;
use relbuild_core::image::Reference;
use relbuild_testdata::auth::BasicAuthRegistry;
use relbuild_testdata::generate::image_stream_yaml;
use relbuild_testdata::proxy::FaultProxy;
use relbuild_testdata::registry::{TestRegistry, free_port, skopeo_inspect_raw};
use relbuild_testdata::token::{Grant, TokenIssuer, TokenPolicy};

use crate::common::{CREATED, Fx, Ran, SlowOperator, fails, names, ok};

/// The sha256 of the manifest `reference` holds, as skopeo reads it.
fn pushed_digest(reference: &str) -> String {
    Digest::sha256(&skopeo_inspect_raw(reference).expect("skopeo reads it")).to_string()
}

/// The digest `index.json` of the OCI layout at `dir` gives tag `tag`.
fn layout_digest(dir: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json")).expect("JSON");
    let entry = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag);
    entry.and_then(|m| m["digest"].as_str()).unwrap_or_else(|| panic!("tag {tag} in {index}")).to_owned()
}

/// The stdout lines, each split into fields.
fn lines(ran: &Ran) -> Vec<Vec<String>> {
    ran.stdout.lines().map(|l| l.split(' ').map(str::to_owned).collect()).collect()
}

/// The full stderr of a command that must fail.
fn stderr_of_failure(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn misspelt_component_fails_with_the_closest_names() {
    let fx = Fx::new();
    let release = fx.repo("ocp/release:4.99.0");
    ok(&mut fx.new_cmd("4.99.0", &["--to-image", &release]));
    let other = fx.pullspec("component-001");
    let from_release = |args: &[&str]| {
        let mut cmd = fx.relbuild();
        cmd.args(["new", "--insecure", "--from-release", &release, "--name", "4.99.1", "--to-dir", "out"]).args(args);
        cmd
    };
    let typo = format!("promethues={other}");
    let e = fails(&mut from_release(&[&typo]));
    assert!(e.contains(&format!("mapping `{typo}` names no tag of the input")), "{e}");
    assert!(e.contains("did you mean `prometheus`?") && e.contains("would be pruned"), "{e}");
    let stderr = stderr_of_failure(&mut from_release(&[&typo]));
    assert!(stderr.contains("hint: ") && stderr.contains("`--include promethues`"), "{stderr}");
    assert!(!fx.path("out").exists(), "nothing written");

    // A name far from every tag: no suggestion, the same refusal.
    let e = fails(&mut from_release(&[&format!("brand-new-thing={other}")]));
    assert!(e.contains("names no tag of the input, and nothing") && !e.contains("did you mean"), "{e}");

    // `--include` keeps a tag that is meant to be new.
    ok(&mut from_release(&[&typo, "--include", "promethues"]));
    let refs = std::fs::read_to_string(fx.path("out/image-references")).expect("image-references");
    assert!(refs.contains("\"promethues\""), "{refs}");
    // The correct spelling replaces the component.
    std::fs::remove_dir_all(fx.path("out")).expect("rm");
    ok(&mut from_release(&[&format!("prometheus={other}")]));
}

#[test]
fn a_defaulted_tag_does_not_overwrite_another_release() {
    let fx = Fx::new();
    let repo = fx.repo("ocp/release");
    let release = format!("{repo}:4.99.8");
    let first = ok(&mut fx.new_cmd("4.99.8", &["--to-image", &repo]));
    let old = pushed_digest(&release);
    assert_eq!(lines(&first)[0][0], old);
    let replace = format!("prometheus={}", fx.pullspec("component-001"));
    let rebuild = |to: &str, extra: &[&str]| {
        let mut cmd = fx.relbuild();
        cmd.args(["new", "--insecure", "--from-release", &release, "--to-image", to]).args(extra);
        cmd
    };

    // No tag: it defaults to the carried-over name, 4.99.8, which holds another release.
    let e = fails(&mut rebuild(&repo, &[&replace]));
    assert!(e.contains(&format!("`{release}` already holds another release ({old})")), "{e}");
    assert!(e.contains("this build is sha256:") && e.contains("`4.99.8` was not given"), "{e}");
    let stderr = stderr_of_failure(&mut rebuild(&repo, &[&replace]));
    assert!(stderr.contains("hint: ") && stderr.contains("`--force`"), "{stderr}");
    assert_eq!(pushed_digest(&release), old, "the tag is untouched");

    // The same release again is a no-op, not an overwrite.
    let same = ok(&mut rebuild(&repo, &[]));
    assert_eq!(lines(&same)[0][0], old);
    assert!(!same.stderr.contains("held another release"), "{}", same.stderr);

    // `--force`, or an explicit tag (oc's behaviour), overwrite and say so.
    // A different creation time each round, so each overwrites the last.
    let rounds: [(&String, &[&str]); 2] = [
        (&repo, &["--force", "--created", "2025-02-02T00:00:00Z"]),
        (&release, &["--created", "2025-03-03T00:00:00Z"]),
    ];
    for (to, extra) in rounds {
        let before = pushed_digest(&release);
        let ran = ok(rebuild(to, extra).arg(&replace));
        let new = pushed_digest(&release);
        assert_ne!(new, before);
        assert_eq!(lines(&ran)[0][0], new);
        assert!(
            ran.stderr.contains(&format!("warning: `{release}` held another release, {before}; it now holds {new}")),
            "{}",
            ran.stderr
        );
    }
}

#[test]
fn each_output_prints_the_digest_it_holds() {
    let fx = Fx::new();
    let repo = fx.repo("ocp/release");
    let release = format!("{repo}:4.99.0");

    // One OCI layout: oc's three fields, with the layout's (OCI-typed) digest.
    let alone = ok(&mut fx.new_cmd("4.99.0", &["--to-oci-layout", "alone"]));
    let oci = layout_digest(&fx.path("alone"), "4.99.0");
    assert_eq!(lines(&alone), [vec![oci.clone(), "4.99.0".to_owned(), CREATED.to_owned()]]);

    // The registry alone: byte for byte oc's line.
    let pushed = ok(&mut fx.new_cmd("4.99.0", &["--to-image", &repo]));
    let docker = pushed_digest(&release);
    assert_ne!(docker, oci, "the layout holds the OCI conversion");
    assert_eq!(pushed.stdout, format!("{docker} 4.99.0 {CREATED}\n"));

    // Both: one line each, the registry first, the location as a fourth field.
    let both = ok(&mut fx.new_cmd("4.99.0", &["--to-oci-layout", "both", "--to-image", &repo, "--to-dir", "dir"]));
    assert_eq!(
        lines(&both),
        [
            vec![docker.clone(), "4.99.0".into(), CREATED.into(), release.clone()],
            vec![oci.clone(), "4.99.0".into(), CREATED.into(), "oci:both:4.99.0".into()],
        ]
    );

    // `-o json` with outputs builds and describes each of them.
    let ran = ok(&mut fx.new_cmd(
        "4.99.0",
        &["-o", "json", "--to-image", &repo, "--to-oci-layout", "json-layout", "--to-file", "layer.tar.gz"],
    ));
    let j: serde_json::Value = serde_json::from_str(&ran.stdout).expect("JSON");
    assert_eq!(j["name"], "4.99.0");
    assert_eq!(j["digest"], docker.as_str());
    let outputs = j["outputs"].as_array().expect("outputs");
    let kinds: Vec<&str> = outputs.iter().map(|o| o["kind"].as_str().expect("kind")).collect();
    assert_eq!(kinds, ["image", "oci-layout", "file"]);
    assert_eq!(outputs[0]["digest"], docker.as_str());
    assert_eq!(outputs[0]["location"], release.as_str());
    assert_eq!(outputs[1]["digest"], layout_digest(&fx.path("json-layout"), "4.99.0").as_str());
    let layer = Digest::sha256(&std::fs::read(fx.path("layer.tar.gz")).expect("layer")).to_string();
    assert_eq!(outputs[2]["digest"], layer.as_str());
}

#[test]
fn no_output_says_it_was_a_dry_run() {
    let fx = Fx::new();
    let before = names(fx.dir());
    let ran = ok(&mut fx.new_cmd("4.99.0", &[]));
    assert_eq!(lines(&ran).len(), 1, "the digest as it would be pushed: {}", ran.stdout);
    assert!(
        ran.stderr.contains("info: dry run: no output was given, so nothing was written or pushed"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("hint: ") && ran.stderr.contains("`--to-image REPO[:TAG]`"), "{}", ran.stderr);
    assert!(ran.stderr.contains("`--to-oci-layout DIR`") && ran.stderr.contains("`--to-dir DIR`"), "{}", ran.stderr);
    assert_eq!(names(fx.dir()), before);
    // An output given: no such note.
    let written = ok(&mut fx.new_cmd("4.99.0", &["--to-dir", "out"]));
    assert!(!written.stderr.contains("dry run"), "{}", written.stderr);
}

/// A destination that does not answer or refuses push fails before any
/// source image is fetched: the sources sit behind a proxy that sees no
/// request at all.
#[test]
fn a_wrong_destination_fails_before_the_build() {
    let fx = Fx::new();
    let proxy = FaultProxy::start(&fx.host()).expect("proxy");
    let via_proxy: Reference = format!("{}/ocp/stream", proxy.host()).parse().expect("reference");
    std::fs::write(fx.path("via-proxy.yaml"), image_stream_yaml("4.99", &via_proxy, &fx.digests)).expect("writes");
    let new_to = |to: &str| {
        let mut cmd = fx.relbuild();
        cmd.args(["new", "--insecure", "-f", "via-proxy.yaml", "--name", "4.99.0", "--created", CREATED]).args([
            "--to-image",
            to,
            "--to-dir",
            "out",
        ]);
        cmd
    };

    let closed = format!("127.0.0.1:{}/ocp/release", free_port().expect("port"));
    let basic = BasicAuthRegistry::start("u", "p").expect("htpasswd registry");
    let basic_dest = format!("{}/ocp/release", basic.registry.host());
    let issuer =
        TokenIssuer::start(TokenPolicy::default().anonymous(vec![Grant::repo("*", &["pull"])])).expect("token issuer");
    let token_reg = TestRegistry::start_with_token(&issuer).expect("token registry");
    let token_dest = format!("{}/ocp/release", token_reg.host());
    for (dest, why) in [(&closed, "cannot connect"), (&basic_dest, "denied"), (&token_dest, "denied")] {
        let e = fails(&mut new_to(dest));
        assert!(e.starts_with(&format!("cannot push to `{dest}` (checked before building")), "{e}");
        assert!(e.contains(why), "{e}");
        assert_eq!(proxy.requests().len(), 0, "no source request before the check of {dest}");
        assert!(!fx.path("out").exists());
    }
    // A destination that grants push: the build runs through the proxy.
    ok(&mut new_to(&fx.repo("ocp/release")));
    assert!(!proxy.requests().is_empty());
}

/// Polls `done` until it holds; panics with `what` after a minute (a guard
/// against a hang, not a timing assertion).
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let mut status = None;
    wait_for("relbuild to exit", || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    status.expect("exited")
}

/// Sets a file's modification time `by` into the past.
fn age(path: &Path, by: Duration) {
    let f = std::fs::File::options().write(true).open(path).expect("opens");
    f.set_modified(SystemTime::now() - by).expect("sets mtime");
}

/// Every file under `dir` whose name marks it as a temporary.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for e in entries {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().expect("type").is_dir() {
            found.extend(temporaries(&e.path()));
        } else if name.starts_with(".pack-") || name.starts_with(".idx-") || name.contains("relbuild-") {
            found.push(e.path().display().to_string());
        }
    }
    found
}

/// SIGINT and SIGTERM mid-build remove the build's temporary files; while
/// the build runs, `cache prune` removes a dead build's temp file and keeps
/// the live build's.
#[test]
fn an_interrupted_build_leaves_no_temporaries() {
    let fx = Fx::new();
    // The build stays in its inspection phase until it is stopped.
    let SlowOperator { proxy, top, pullspec } = fx.slow_operator();
    let slow = format!("slow-operator={pullspec}");
    std::fs::create_dir(fx.path("tmp")).expect("tmp");

    for (signal, code, hits) in [("INT", 130, 1), ("TERM", 143, 2)] {
        let cache = fx.path(&format!("cache-{signal}"));
        let cache_tmp = cache.join("tmp");
        let mut child = fx
            .relbuild_std()
            .env("TMPDIR", fx.path("tmp"))
            .args(["new", "--insecure", "-f", "is.yaml", "--name", "4.99.0", "--created", CREATED])
            .args(["--to-dir", "out", "--to-file", "out.tar.gz", "--cache-dir"])
            .arg(&cache)
            .arg(&slow)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawns");
        wait_for("the slow layer to be read", || proxy.hits(&top) >= hits);
        wait_for("the cache pack being written", || !names(&cache_tmp).is_empty());
        let live = cache_tmp.join(&names(&cache_tmp)[0]);

        if signal == "INT" {
            // A dead build's temp, a few minutes old; the live one, older still.
            let dead = cache_tmp.join(".pack-of-a-killed-build");
            std::fs::write(&dead, vec![0u8; 4096]).expect("plants");
            age(&dead, Duration::from_secs(180));
            age(&live, Duration::from_secs(7200));
            let pruned = ok(fx.relbuild().args(["cache", "prune", "--cache-dir"]).arg(&cache));
            assert!(!dead.exists(), "the dead build's temp is removed: {}", pruned.stderr);
            assert!(live.exists(), "the live build's temp is kept");
        }

        let kill = std::process::Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
        assert!(kill.expect("kill runs").success());
        let status = wait_exit(&mut child);
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr).expect("reads");
        assert_eq!(status.code(), Some(code), "exits with 128 + SIG{signal}, not killed by it: {stderr}");
        assert!(stderr.contains(&format!("error: interrupted by SIG{signal}")), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(temporaries(fx.dir()), Vec::<String>::new(), "no temporaries left after SIG{signal}");
        assert!(!fx.path("out").exists() && !fx.path("out.tar.gz").exists());
    }
}
