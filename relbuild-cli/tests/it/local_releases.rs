//! A release read from local locations: an OCI layout and a distribution
//! storage tree serve `info`, `extract` and `new --from-release` as the
//! registry does.

use relbuild_core::NoReporter;
use relbuild_core::transfer::{CopyOptions, ImageDestination, ImageSource, copy_image};

use super::common::{Fx, block_on, client, files, ok};

/// The digest of `relbuild new`'s one summary line.
fn digest_of(stdout: &str) -> String {
    let digest = stdout.split_whitespace().next().unwrap_or_default();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{stdout}");
    digest.to_owned()
}

#[test]
fn info_extract_and_from_release_read_layouts_and_trees() {
    let fx = Fx::new();
    let repo = fx.repo("ocp/release");
    let built = ok(&mut fx.new_cmd("4.99.0", &["--to-image", &repo, "--to-oci-layout", "layout"]));
    let digest = digest_of(&built.stdout);
    let registry = format!("{repo}:4.99.0");
    let layout = format!("oci:{}:4.99.0", fx.path("layout").display());
    let tree = format!("dist:{}//openshift/release:4.99.0", fx.path("tree").display());
    block_on(async {
        let c = client();
        let src = ImageSource::open(&format!("docker://{registry}").parse().expect("location"), &c).await.expect("src");
        let dst = ImageDestination::open(&tree.parse().expect("location"), &c).expect("dst");
        copy_image(&src, &dst, &CopyOptions::default(), &NoReporter).await.expect("copies into the tree");
    });

    // The same release, three places: the same components and the same files.
    let pullspecs = |r: &str| ok(fx.relbuild().args(["info", "--insecure", "-o", "pullspec", r])).stdout;
    let expected = pullspecs(&registry);
    assert!(expected.lines().count() > 3, "{expected}");
    for r in [&layout, &tree] {
        assert_eq!(pullspecs(r), expected, "{r}");
    }
    ok(fx.relbuild().args(["extract", "--insecure", &registry, "--to", "from-registry"]));
    let want = files(&fx.path("from-registry"));
    assert!(want.contains_key("image-references"), "{:?}", want.keys());
    for (r, dir) in [(&layout, "from-layout"), (&tree, "from-tree")] {
        ok(fx.relbuild().args(["extract", "--insecure", r, "--to", dir]));
        assert_eq!(files(&fx.path(dir)), want, "{r}");
    }

    // A canonical rebuild from the tree reproduces the pushed digest.
    let from_tree = ok(fx.relbuild().args([
        "new",
        "--insecure",
        "--from-release",
        &tree,
        "--dry-run",
        "--to-image",
        &fx.repo("ocp/again"),
    ]));
    assert_eq!(digest_of(&from_tree.stdout), digest, "reproduced from the tree");

    // A new version from the layout gives the payload a new version from
    // the registry gives, but for the input it names.
    let next = |from: &str, dir: &str| {
        ok(fx.relbuild().args(["new", "--insecure", "--from-release", from, "--name", "4.99.1", "--to-dir", dir]));
        let mut f = files(&fx.path(dir));
        let refs = f.remove("image-references").expect("image-references");
        let from_release = format!("\"{from}\"");
        let refs = String::from_utf8(refs).expect("utf-8");
        assert!(refs.contains(&from_release), "names its input {from}: {refs}");
        (f, refs.replace(&from_release, "\"INPUT\""))
    };
    assert_eq!(next(&layout, "next-layout"), next(&registry, "next-registry"));
}
