//! `relbuild verify` on a distribution tree (written by the transfer
//! engine) and an OCI layout (written by `relbuild new`): exit 0 when
//! clean, 1 with one line per problem when damaged, 2 when it cannot run.

use relbuild_core::NoReporter;
use relbuild_core::transfer::{CopyOptions, ImageDestination, ImageSource, copy_image};

use crate::common::{Fx, block_on, client, fails, ok};

fn verify(fx: &Fx, args: &[&str]) -> assert_cmd::assert::Assert {
    fx.relbuild().arg("verify").args(args).assert()
}

#[test]
fn verify_trees_and_layouts() {
    let fx = Fx::new();
    let release = fx.repo("ocp/release");
    ok(&mut fx.new_cmd("4.99.0", &["--to-image", &release, "--to-oci-layout", "layout"]));

    // A tree holding the release, written by the engine.
    let tree = fx.path("tree");
    block_on(async {
        let c = client();
        let src = ImageSource::open(&format!("{release}:4.99.0").parse().expect("location"), &c).await.expect("src");
        let to = format!("dist:{}//openshift/release:4.99.0", tree.display());
        let dst = ImageDestination::open(&to.parse().expect("location"), &c).expect("dst");
        copy_image(&src, &dst, &CopyOptions::default(), &NoReporter).await.expect("copies");
    });

    // Clean: exit 0, a summary line only.
    let out = ok(fx.relbuild().args(["verify", "tree"]));
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(
        out.stdout.starts_with("`tree`: distribution storage tree, ") && out.stdout.trim_end().ends_with(": ok"),
        "{}",
        out.stdout
    );
    let out = ok(fx.relbuild().args(["verify", "layout"]));
    assert!(out.stdout.contains("OCI image layout") && out.stdout.trim_end().ends_with(": ok"), "{}", out.stdout);

    // A link with a newline: exit 1, the problem named with its path.
    let links = tree.join("docker/registry/v2/repositories/openshift/release/_layers/sha256");
    let first = std::fs::read_dir(&links).expect("links").next().expect("a link").expect("entry").path().join("link");
    let good = std::fs::read(&first).expect("link");
    std::fs::write(&first, [good.as_slice(), b"\n"].concat()).expect("damage");
    let assert = verify(&fx, &["tree"]).code(1);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let named = first.strip_prefix(fx.dir()).expect("under the work directory").display().to_string();
    assert!(stdout.contains("malformed link (72 bytes") && stdout.contains(&named), "{stdout}");
    // The layer is then also unlinked from the manifest that names it.
    assert!(stdout.contains("not linked"), "{stdout}");
    assert!(stdout.trim_end().ends_with(": 2 problems"), "{stdout}");
    let assert = verify(&fx, &["-o", "json", "tree"]).code(1);
    let json: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).expect("JSON");
    assert_eq!(json["ok"], false);
    assert_eq!(json["kind"], "tree");
    assert_eq!(json["problems"].as_array().map(Vec::len), Some(2), "{json}");

    // A changed byte in the layout: exit 1, naming the digest.
    let blobs = fx.path("layout/blobs/sha256");
    let mut biggest = std::fs::read_dir(&blobs).expect("blobs").map(|e| e.expect("entry").path()).collect::<Vec<_>>();
    biggest.sort_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0));
    let victim = biggest.last().expect("a blob").clone();
    let mut bytes = std::fs::read(&victim).expect("blob");
    bytes[0] ^= 0xff;
    std::fs::write(&victim, bytes).expect("damage");
    let assert = verify(&fx, &["layout"]).code(1);
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let hex = victim.file_name().expect("name").to_string_lossy().into_owned();
    assert!(stdout.contains("corrupt blob") && stdout.contains(&hex), "{stdout}");

    // Neither a tree nor a layout, or a bad option: exit 2.
    std::fs::create_dir(fx.path("empty")).expect("mkdir");
    let err = fails(fx.relbuild().args(["verify", "empty"]));
    assert!(err.contains("is neither a distribution storage tree"), "{err}");
    verify(&fx, &["empty"]).code(2);
    verify(&fx, &["-o", "yaml", "tree"]).code(2);
}
