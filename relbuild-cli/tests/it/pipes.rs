//! A closed stdout or stderr (`relbuild … | head -1`, `2>/dev/full`) never
//! makes `relbuild` panic or abort: a closed stdout ends the command as a
//! success, a closed stderr is dropped and the command carries on.

use std::process::{Output, Stdio};

use crate::common::{CREATED, Fx, ok};

/// The write end of a pipe whose read end is already closed: every write
/// to it fails with `EPIPE`, deterministically.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer.into()
}

/// Which stream is closed.
#[derive(Clone, Copy, Debug)]
enum Closed {
    Stdout,
    Stderr,
    /// stderr to `/dev/full`: every write fails with `ENOSPC`.
    StderrFull,
}

fn run(fx: &Fx, args: &[&str], closed: Closed) -> Output {
    let mut cmd = fx.relbuild_std();
    cmd.args(args).stdin(Stdio::null());
    match closed {
        Closed::Stdout => cmd.stdout(closed_pipe()).stderr(Stdio::piped()),
        Closed::Stderr => cmd.stdout(Stdio::piped()).stderr(closed_pipe()),
        Closed::StderrFull => {
            let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
            cmd.stdout(Stdio::piped()).stderr(full)
        }
    };
    cmd.output().expect("relbuild runs")
}

/// No abort (134), no panic (101), no death by a signal, no panic message.
fn no_crash(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{what}: a panic:\n{stderr}");
    assert!(matches!(out.status.code(), Some(c) if c != 101 && c != 134), "{what}: {}:\n{stderr}", out.status);
}

#[test]
fn closed_stdout_or_stderr_never_crashes_any_command() {
    let fx = Fx::new();
    // A release to read, on the registry so that `-vv` logs its requests.
    ok(&mut fx.new_cmd("4.99.0", &["--to-image", &fx.repo("ocp/release")]));
    let release = fx.repo("ocp/release:4.99.0");
    let cache = fx.path("home/.cache/relbuild");
    let cache = cache.to_str().expect("UTF-8");

    // Each command writes to both streams: data on stdout, and with `-vv`
    // logs on stderr (the builds also warn: the fixture skips symlinks).
    let new = |name: &str| {
        ["new", "-vv", "--insecure", "-f", "is.yaml", "--created", CREATED, "--name", name].map(str::to_owned).to_vec()
    };
    let commands: Vec<(&str, Vec<String>)> = vec![
        ("new", new("4.99.1")),
        ("info", ["info", "-vv", "--insecure", &release].map(str::to_owned).to_vec()),
        ("info --contents", ["info", "-vv", "--insecure", "--contents", &release].map(str::to_owned).to_vec()),
        (
            "extract --file",
            ["extract", "-vv", "--insecure", &release, "--file", "image-references"].map(str::to_owned).to_vec(),
        ),
        ("lint", ["lint", "-vv", "--insecure", &release].map(str::to_owned).to_vec()),
        ("cache prune", ["cache", "prune", "-vv", "--cache-dir", cache].map(str::to_owned).to_vec()),
        ("version", vec!["version".to_owned()]),
        ("help", vec!["--help".to_owned()]),
        // A failing command writes its error to the closed stderr.
        ("info of nothing", ["info", "--insecure", &fx.repo("ocp/none:1")].map(str::to_owned).to_vec()),
    ];
    for (what, args) in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let failing = *what == "info of nothing";
        let fine = if failing { String::new() } else { ok(fx.relbuild().args(&args)).stdout };

        let out = run(&fx, &args, Closed::Stdout);
        no_crash(&out, &format!("{what} with stdout closed"));
        if !failing {
            // The reader went away: that ends the command, quietly.
            assert_eq!(out.status.code(), Some(0), "{what}: {}", String::from_utf8_lossy(&out.stderr));
            assert!(!String::from_utf8_lossy(&out.stderr).contains("error:"), "{what}");
        }

        for closed in [Closed::Stderr, Closed::StderrFull] {
            let out = run(&fx, &args, closed);
            no_crash(&out, &format!("{what} with {closed:?}"));
            if failing {
                assert_eq!(out.status.code(), Some(1), "{what} with {closed:?}");
            } else {
                // Nobody reads stderr: the command does its work all the same.
                assert_eq!(out.status.code(), Some(0), "{what} with {closed:?}");
                let stdout = String::from_utf8_lossy(&out.stdout);
                if *what == "new" {
                    assert_eq!(stdout.split_whitespace().nth(1), Some("4.99.1"), "{what} with {closed:?}: {stdout}");
                } else {
                    assert_eq!(stdout, fine, "{what} with {closed:?}");
                }
            }
        }
    }
}
