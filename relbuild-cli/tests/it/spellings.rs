//! Spellings users bring from oc: `--from` on `info` and `extract`,
//! `--replace NAME=PULLSPEC` on `new`; and clap's tips for unknown flags
//! name only flags close to what was typed.

use crate::common::{Fx, fails, files, ok};

#[test]
fn info_and_extract_take_the_release_as_argument_or_from() {
    let fx = Fx::new();
    ok(&mut fx.new_cmd("4.99.0", &["--to-image", &fx.repo("ocp/release")]));
    let release = fx.repo("ocp/release:4.99.0");

    let positional = ok(fx.relbuild().args(["info", "--insecure", &release])).stdout;
    let from = ok(fx.relbuild().args(["info", "--insecure", "--from", &release])).stdout;
    assert_eq!(from, positional);
    assert!(from.starts_with("Name:           4.99.0\n"), "{from}");

    ok(fx.relbuild().args(["extract", "--insecure", &release, "--to", "a"]));
    ok(fx.relbuild().args(["extract", "--insecure", "--from", &release, "--to", "b"]));
    assert_eq!(files(&fx.path("b")), files(&fx.path("a")));
    assert!(files(&fx.path("b")).contains_key("image-references"));

    // Both at once is refused, in oc's words, and nothing is written.
    for cmd in [&["info"][..], &["extract", "--to", "c"]] {
        let e = fails(fx.relbuild().args(cmd).args(["--insecure", &release, "--from", &release]));
        assert_eq!(e, "you may not specify an argument and `--from`");
    }
    assert!(!fx.path("c").exists());
    // Neither: clap names both ways.
    let out = fx.relbuild().args(["extract", "--to", "c"]).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("<RELEASE>") && stderr.contains("--from <RELEASE>"), "{stderr}");
}

#[test]
fn replace_is_a_mapping() {
    let fx = Fx::new();
    let other = fx.pullspec("component-001");
    let mapping = format!("prometheus={other}");
    let positional = ok(&mut fx.new_cmd("4.99.0", &[&mapping])).stdout;
    let replace = ok(&mut fx.new_cmd("4.99.0", &["--replace", &mapping])).stdout;
    let unchanged = ok(&mut fx.new_cmd("4.99.0", &[])).stdout;
    assert_eq!(replace, positional);
    assert_ne!(replace, unchanged, "the mapping changed the release");

    // Repeatable, and mixed with arguments.
    let two = format!("component-002={}", fx.pullspec("component-001"));
    let mixed = ok(&mut fx.new_cmd("4.99.0", &[&mapping, &two])).stdout;
    let repeated = ok(&mut fx.new_cmd("4.99.0", &["--replace", &mapping, "--replace", &two])).stdout;
    assert_eq!(repeated, mixed);
    assert_ne!(repeated, positional);

    let e = fails(&mut fx.new_cmd("4.99.0", &["--replace", "prometheus"]));
    assert!(e.contains("prometheus"), "{e}");
}

#[test]
fn unknown_flags_get_tips_only_for_close_names() {
    let fx = Fx::new();
    let stderr = |args: &[&str]| {
        let out = fx.relbuild().args(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // clap would suggest these (Jaro similarity over 0.7), unrelated as they are.
    for (flag, unrelated) in [("--keep-manifest-list", "--skip-manifest-check"), ("--override", "--rewrite")] {
        let e = stderr(&["new", flag]);
        assert!(e.contains(&format!("unexpected argument '{flag}'")), "{e}");
        assert!(!e.contains(unrelated) && !e.contains("similar"), "{flag}: {e}");
        assert!(e.contains("Usage: relbuild new"), "{e}");
    }
    // A slip of the keyboard still gets its tip.
    let e = stderr(&["new", "--previus", "4.1.0"]);
    assert!(e.contains("a similar argument exists: '--previous'"), "{e}");
    let e = stderr(&["extract", "--form", "x"]);
    assert!(e.contains("a similar argument exists: '--from'"), "{e}");
}
