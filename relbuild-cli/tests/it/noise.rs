//! What a build prints on stderr stays short: many warnings of one kind are
//! grouped, `-q` prints errors only, and an unreachable registry gets one
//! line while its requests are retried, then the error.

use relbuild_testdata::registry::{TestRegistry, free_port};

use crate::common::{Fx, client, fails, ok};

/// The warnings printed one by one of each grouped kind.
const SHOWN_PER_KIND: usize = 3;

fn count(stderr: &str, prefix: &str) -> usize {
    stderr.lines().filter(|l| l.starts_with(prefix)).count()
}

/// The `N` of the `warning: <name>: N more of this kind` line, if any.
fn more(stderr: &str, name: &str) -> Option<usize> {
    let prefix = format!("warning: {name}: ");
    let line = stderr.lines().find(|l| l.starts_with(&prefix))?;
    let rest = line.strip_prefix(&prefix)?;
    assert!(rest.ends_with(" more of this kind (`-v` shows them all)"), "{line}");
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn many_warnings_of_a_kind_are_grouped() {
    // Every operator ships a symlink and a subdirectory (skipped) and the
    // same shared file name (a collision with the previous operator).
    let operators = 9;
    let fx = Fx::with_operators(TestRegistry::start().expect("registry starts"), &client(), operators);
    let skipped = "warning: operator `";
    let collision = "warning: file name collision: ";

    let all = ok(&mut fx.new_cmd("4.99.0", &["-v"])).stderr;
    let (all_skipped, all_collisions) = (count(&all, skipped), count(&all, collision));
    assert_eq!(all_collisions, operators - 1, "{all}");
    assert!(all_skipped >= 2 * operators, "{all}");
    assert!(!all.contains("more of this kind"), "{all}");

    let grouped = ok(&mut fx.new_cmd("4.99.0", &[])).stderr;
    assert_eq!(count(&grouped, skipped), SHOWN_PER_KIND, "{grouped}");
    assert_eq!(count(&grouped, collision), SHOWN_PER_KIND, "{grouped}");
    assert_eq!(more(&grouped, "skipped `manifests/` entries"), Some(all_skipped - SHOWN_PER_KIND), "{grouped}");
    assert_eq!(more(&grouped, "file name collisions"), Some(all_collisions - SHOWN_PER_KIND), "{grouped}");
    // Whatever else is said, no kind of warning runs on.
    let warnings = count(&grouped, "warning:");
    assert!(warnings < count(&all, "warning:"), "{grouped}");

    // `-q`: errors only, and this build has none.
    let quiet = ok(&mut fx.new_cmd("4.99.0", &["-q"]));
    assert_eq!(quiet.stderr, "", "-q prints errors only");
    assert!(quiet.stdout.starts_with("sha256:"), "{}", quiet.stdout);
}

#[test]
fn an_unreachable_registry_gets_one_line_then_the_error() {
    let fx = Fx::new();
    let port = free_port().expect("port");
    let host = format!("127.0.0.1:{port}");
    let image = format!("{host}/x/y:latest");
    let mut cmds = [fx.new_cmd("4.99.0", &[&format!("zz={image}")]), fx.relbuild()];
    cmds[1].args(["info", "--insecure", &image]);
    for cmd in &mut cmds {
        let out = cmd.output().expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_ne!(out.status.code(), Some(0), "{stderr}");
        let retry_lines: Vec<&str> = stderr.lines().filter(|l| l.contains("retrying")).collect();
        assert_eq!(retry_lines.len(), 1, "one line while retrying:\n{stderr}");
        assert!(retry_lines[0].starts_with(&format!("warning: retrying requests to `{host}`: ")), "{stderr}");
        assert!(!stderr.contains(" WARN "), "no retry logs:\n{stderr}");
        // The error comes last, and it is the clear one.
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: ") && last.contains("cannot connect"), "{stderr}");
        let e = fails(cmd);
        assert!(e.contains(&format!("`{image}`")), "{e}");
    }
}
