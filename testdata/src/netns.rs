//! One test in a private network namespace of its own.
//!
//! The golden vector's bytes name `127.0.0.1:5000`, so its registry must
//! listen on exactly that address, and a machine that already runs a
//! registry there (the usual port) would make the test fail. [`isolate`]
//! runs the test again in a child process inside a new user and network
//! namespace (`unshare --user --map-root-user --net`, loopback brought up
//! with `ip`), where port 5000 is always free. Where the kernel or the
//! machine does not allow that, the test runs here as before, and the
//! registry harness's own message explains a busy port.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Set in the child's environment: it is the isolated run.
const CHILD_ENV: &str = "RELBUILD_TEST_IN_NETNS";

/// Where a test should run.
#[derive(Debug)]
pub enum Isolation {
    /// This process is the isolated child: run the test body here.
    Inside,
    /// The child ran the test; its exit status and output.
    Ran(Output),
    /// No private namespace can be had here (why): run the test body here.
    Unavailable(String),
}

/// Runs the test `name` (its full path, as `cargo test` lists it) of this
/// test binary in a private network namespace, or says why it cannot.
pub fn isolate(name: &str) -> Isolation {
    #[allow(clippy::disallowed_methods, reason = "the test harness marks its own child process")]
    if std::env::var_os(CHILD_ENV).is_some() {
        return Isolation::Inside;
    }
    if let Err(why) = available() {
        return Isolation::Unavailable(why);
    }
    let exe: PathBuf = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return Isolation::Unavailable(format!("the test binary's path is unknown: {e}")),
    };
    let run = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .output();
    match run {
        Ok(out) => Isolation::Ran(out),
        Err(e) => Isolation::Unavailable(format!("running `unshare`: {e}")),
    }
}

/// Whether `unshare` may make the namespaces and `ip` can bring up loopback there.
fn available() -> Result<(), String> {
    let probe = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--", "ip", "link", "set", "lo", "up"])
        .stdin(Stdio::null())
        .output();
    match probe {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`unshare --user --map-root-user --net ip link set lo up` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("`unshare` cannot run: {e}")),
    }
}

/// Asserts that the isolated child passed, showing its output when it did not.
pub fn assert_passed(out: &Output) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "the isolated test failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    // The child must really have run the test, not filtered it away.
    assert!(text(&out.stdout).contains("1 passed"), "the isolated run ran no test:\n{}", text(&out.stdout));
}
