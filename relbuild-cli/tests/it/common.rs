//! Shared set-up: a real registry with the fixture stream pushed into it, an
//! ImageStream file in a temporary directory, and a `relbuild` command with
//! a clean environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use relbuild_core::Digest;
use relbuild_core::image::Reference;
use relbuild_core::registry::{Client, ClientOptions, RetryPolicy};
use relbuild_testdata::fixture::{FixtureImage, StreamSpec, changed_operator, stream_images};
use relbuild_testdata::generate::{BuiltImage, build_image, image_stream_yaml, push_image, push_images};
use relbuild_testdata::proxy::{Action, Fault, FaultProxy, Matcher};
use relbuild_testdata::registry::TestRegistry;

/// The creation time every test build uses, so digests are reproducible.
pub(crate) const CREATED: &str = "2025-01-02T03:04:05Z";

/// Runs `fut` on a fresh runtime (the tests themselves are synchronous: the
/// code under test runs in the `relbuild` process).
pub(crate) fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(fut)
}

/// A plain-HTTP client for pushing fixtures.
pub(crate) fn client() -> Client {
    ClientOptions::default().with_insecure(true).with_retry(RetryPolicy::none()).build().expect("client builds")
}

/// A registry holding the fixture stream, and a work directory with `is.yaml`.
pub(crate) struct Fx {
    pub(crate) reg: TestRegistry,
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) stream: Reference,
    pub(crate) images: Vec<FixtureImage>,
    pub(crate) digests: BTreeMap<String, Digest>,
}

impl Fx {
    /// A registry with a 3-operator stream in `ocp/stream`.
    pub(crate) fn new() -> Self {
        Self::on(TestRegistry::start().expect("registry starts"), &client())
    }

    /// The same on a registry of the caller's, reached with `client`.
    pub(crate) fn on(reg: TestRegistry, client: &Client) -> Self {
        Self::with_operators(reg, client, 3)
    }

    /// A stream of `operators` operators on `reg`.
    pub(crate) fn with_operators(reg: TestRegistry, client: &Client, operators: usize) -> Self {
        let tmp = tempfile::Builder::new().prefix("relbuild-cli-it-").tempdir().expect("tempdir");
        let stream: Reference = format!("{}/ocp/stream", reg.host()).parse().expect("reference");
        let images = stream_images(&StreamSpec { operators });
        let built: Vec<BuiltImage> = images.iter().map(|i| build_image(i).expect("builds")).collect();
        let digests = block_on(push_images(client, &stream, built, 8)).expect("pushes");
        std::fs::write(tmp.path().join("is.yaml"), image_stream_yaml("4.99", &stream, &digests)).expect("is.yaml");
        std::fs::create_dir(tmp.path().join("home")).expect("home");
        Self { reg, tmp, stream, images, digests }
    }

    pub(crate) fn host(&self) -> String {
        self.reg.host()
    }

    /// The work directory (the commands' current directory).
    pub(crate) fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `HOST/ocp/stream@DIGEST` of a stream tag.
    pub(crate) fn pullspec(&self, tag: &str) -> String {
        format!("{}@{}", self.stream.name(), self.digests[tag])
    }

    /// `HOST/name`.
    pub(crate) fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.reg.host())
    }

    /// Pushes one more image into the stream repository; returns its pullspec.
    pub(crate) fn push_fixture(&self, image: &FixtureImage) -> String {
        self.push_built(&build_image(image).expect("builds"))
    }

    /// Pushes a built image into the stream repository; returns its pullspec.
    pub(crate) fn push_built(&self, image: &BuiltImage) -> String {
        let digest = block_on(push_image(&client(), &self.stream, image)).expect("pushes");
        format!("{}@{digest}", self.stream.name())
    }

    /// `relbuild` in the work directory, with a private HOME and cache and no
    /// ambient credentials or log settings.
    pub(crate) fn relbuild(&self) -> Command {
        Command::from_std(self.relbuild_std())
    }

    /// [`Fx::relbuild`] as a `std` command, for a process the test spawns
    /// and signals.
    pub(crate) fn relbuild_std(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_relbuild"));
        cmd.current_dir(self.dir())
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("home/.cache"))
            .env("NO_COLOR", "1")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("RUST_LOG")
            .env_remove("SOURCE_DATE_EPOCH");
        cmd
    }

    /// `relbuild new --insecure -f is.yaml --created CREATED --name NAME` plus `args`.
    pub(crate) fn new_cmd(&self, name: &str, args: &[&str]) -> Command {
        let mut cmd = self.relbuild();
        cmd.args(["new", "--insecure", "-f", "is.yaml", "--created", CREATED, "--name", name]).args(args);
        cmd
    }

    /// `(status, body)` of a plain GET on the registry.
    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        self.reg.get(path).expect("the registry answers")
    }

    /// Whether the registry has any tag in `repo`.
    pub(crate) fn has_repo(&self, repo: &str) -> bool {
        let (status, body) = self.get(&format!("/v2/{repo}/tags/list"));
        status == 200 && body.contains("\"tags\":[")
    }
}

/// An operator image (the fixture's changed operator) reached through a
/// fault proxy that sends its top layer one byte per second: a build that
/// maps it stays in its inspection phase for minutes.
pub(crate) struct SlowOperator {
    /// The proxy in front of the fixture registry.
    pub(crate) proxy: FaultProxy,
    /// The slow layer's `GET`.
    pub(crate) top: Matcher,
    /// `PROXY/ocp/stream@DIGEST` of the image.
    pub(crate) pullspec: String,
}

impl Fx {
    /// Pushes the changed operator and puts a slow proxy in front of it.
    pub(crate) fn slow_operator(&self) -> SlowOperator {
        let proxy = FaultProxy::start(&self.host()).expect("proxy");
        let built = build_image(&changed_operator(&self.images).expect("a changed operator")).expect("builds");
        self.push_built(&built);
        let top = Matcher::new("GET", &format!("/blobs/{}", built.layers.last().expect("layers").0.digest));
        proxy.add(Fault::new(top.clone(), Action::SlowBody { chunk: 1, delay: std::time::Duration::from_secs(1) }));
        let pullspec = format!("{}/ocp/stream@{}", proxy.host(), built.manifest.digest());
        SlowOperator { proxy, top, pullspec }
    }
}

/// What a successful run printed.
pub(crate) struct Ran {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `cmd`, which must succeed without panicking.
pub(crate) fn ok(cmd: &mut Command) -> Ran {
    let out = cmd.output().expect("relbuild runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    Ran { stdout, stderr }
}

/// Runs `cmd`, which must fail cleanly: a non-zero exit (not a signal), no
/// panic, exactly one `error: …` line on stderr, and no other line that is
/// not a hint, a warning, an info note or a log line (so no multi-line
/// error dumps). Returns the error line without its `error: ` prefix.
pub(crate) fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().expect("relbuild runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(matches!(out.status.code(), Some(c) if c != 0), "{cmd:?} should fail, got {}:\n{stderr}", out.status);
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line expected:\n{stderr}");
    for line in stderr.lines().filter(|l| !l.starts_with("error:")) {
        let log_line = line.contains(" WARN ") || line.contains(" INFO ");
        assert!(
            line.starts_with("hint:") || line.starts_with("warning:") || line.starts_with("info:") || log_line,
            "unexpected stderr line {line:?} in:\n{stderr}"
        );
    }
    errors[0].trim_start_matches("error:").trim().to_owned()
}

/// The names in `dir`, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Every file under `dir` (flat), name → bytes.
pub(crate) fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    names(dir).into_iter().map(|n| (n.clone(), std::fs::read(dir.join(&n)).expect("reads"))).collect()
}
