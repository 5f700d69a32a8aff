//! A real registry for tests: Debian's `docker-registry`
//! (distribution/distribution) on 127.0.0.1, on a free port, with a temporary
//! storage directory. Dropping the handle stops it and deletes the storage.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The registry binary; `RELBUILD_TEST_REGISTRY_BIN` overrides it.
#[allow(clippy::disallowed_methods, reason = "the test harness, not library code, picks the registry binary")]
fn registry_bin() -> PathBuf {
    std::env::var_os("RELBUILD_TEST_REGISTRY_BIN").map_or_else(|| PathBuf::from("docker-registry"), PathBuf::from)
}

/// Extra configuration appended to the registry's `config.yml`.
#[derive(Debug, Default, Clone)]
pub struct RegistryConfig {
    /// YAML placed under `auth:` (already indented by two spaces), if any.
    pub auth_yaml: Option<String>,
    /// YAML placed under `http:` (already indented by two spaces), if any, e.g. `tls:`.
    pub http_yaml: Option<String>,
    /// Whether the server speaks TLS (decides how readiness is probed and the URL scheme).
    pub tls: bool,
    /// Serve this existing `rootdirectory` instead of a new, empty one.
    pub storage: Option<PathBuf>,
    /// `storage.maintenance.readonly` on: pushes are refused (405).
    pub readonly: bool,
    /// Run the registry as this user and group id (with `setpriv`), e.g.
    /// [`NOBODY`], so that it can only read what others may read.
    pub user: Option<u32>,
}

/// The user and group id of `nobody`/`nogroup` on Debian.
pub const NOBODY: u32 = 65534;

/// A running `docker-registry`.
#[derive(Debug)]
pub struct TestRegistry {
    child: Child,
    port: u16,
    tls: bool,
    dir: tempfile::TempDir,
    /// For [`TestRegistry::start_on_port`]: the exclusive lock on the port,
    /// released (after the registry is stopped) when the handle drops.
    _port_lock: Option<std::fs::File>,
}

/// How long [`TestRegistry::start_on_port`] waits for a fixed port that is
/// still in use once the lock is held (a registry of another process shutting down).
const PORT_BUSY_WAIT: Duration = Duration::from_secs(10);

/// Reserves a free loopback port by binding and releasing it.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(l.local_addr()?.port())
}

impl TestRegistry {
    /// Starts an anonymous, plain-HTTP registry.
    pub fn start() -> Result<Self> {
        Self::start_with(RegistryConfig::default())
    }

    /// Starts a registry with extra configuration.
    pub fn start_with(cfg: RegistryConfig) -> Result<Self> {
        let mut last = None;
        for _ in 0..5 {
            match Self::try_start(&cfg, None) {
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried at least once"))
    }

    /// Starts an anonymous, plain-HTTP registry on `127.0.0.1:port`, for
    /// data whose pullspecs name a fixed address (the golden vector's
    /// `127.0.0.1:5000`).
    ///
    /// Tests wanting the same port serialise on an exclusive lock on the
    /// file `relbuild-registry-port-<port>.lock` in the system temporary
    /// directory, held until the handle drops, so concurrent test binaries
    /// (and threads) take turns. If the port is still taken by something
    /// else after the lock is held, this waits a few seconds and then fails
    /// saying so.
    pub fn start_on_port(port: u16) -> Result<Self> {
        Self::start_on_port_within(port, PORT_BUSY_WAIT)
    }

    fn start_on_port_within(port: u16, wait: Duration) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("relbuild-registry-port-{port}.lock"));
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening the port lock file `{}`", path.display()))?;
        lock.lock().with_context(|| format!("locking `{}`", path.display()))?;
        let deadline = Instant::now() + wait;
        while let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
            if Instant::now() >= deadline {
                bail!(
                    "127.0.0.1:{port} is in use by another process ({e}); a test needs a registry on exactly \
                     that address because its data names it: stop whatever listens there and run again"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Self::try_start(&RegistryConfig::default(), Some((port, lock)))
    }

    fn try_start(cfg: &RegistryConfig, fixed: Option<(u16, std::fs::File)>) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("relbuild-registry-").tempdir()?;
        let (port, port_lock) = match fixed {
            Some((p, lock)) => (p, Some(lock)),
            None => (free_port()?, None),
        };
        let storage = match &cfg.storage {
            Some(s) => s.clone(),
            None => dir.path().join("storage"),
        };
        std::fs::create_dir_all(&storage)?;
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: relbuild-test-secret\n",
            storage.display(),
            cfg.readonly
        );
        if let Some(h) = &cfg.http_yaml {
            yaml.push_str(h);
            if !h.ends_with('\n') {
                yaml.push('\n');
            }
        }
        if let Some(a) = &cfg.auth_yaml {
            yaml.push_str("auth:\n");
            yaml.push_str(a);
            if !a.ends_with('\n') {
                yaml.push('\n');
            }
        }
        let config = dir.path().join("config.yml");
        std::fs::write(&config, yaml)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let mut command = match &cfg.user {
            Some(user) => {
                // The unprivileged registry reads its config from here.
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
                std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644))?;
                let mut c = Command::new("setpriv");
                let id = user.to_string();
                c.args(["--reuid", &id, "--regid", &id, "--clear-groups", "--"]).arg(registry_bin());
                c
            }
            None => Command::new(registry_bin()),
        };
        let child = command
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!("starting `{}` (install Debian's docker-registry package)", registry_bin().display())
            })?;
        let mut reg = Self { child, port, tls: cfg.tls, dir, _port_lock: port_lock };
        reg.wait_ready()?;
        Ok(reg)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("docker-registry exited with {status}: {}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                if self.tls {
                    return Ok(());
                }
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("docker-registry did not become ready on port {}: {}", self.port, self.log())
    }

    /// `127.0.0.1:PORT`: the registry part of a pullspec.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (or `https://`).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.tls { "https" } else { "http" }, self.port)
    }

    /// The temporary directory holding config, storage and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// `docker-registry garbage-collect --dry-run` on this registry's
    /// storage: `(blobs eligible for deletion, manifests eligible)` and the
    /// whole output.
    pub fn garbage_collect_dry_run(&self) -> Result<(u64, u64, String)> {
        let out = Command::new(registry_bin())
            .args(["garbage-collect", "--dry-run"])
            .arg(self.config_path())
            .output()
            .context("running docker-registry garbage-collect")?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("garbage-collect failed ({}): {text}", out.status);
        }
        // `N blobs marked, M blobs and K manifests eligible for deletion`
        let line = text
            .lines()
            .find(|l| l.contains("eligible for deletion") && l.contains("marked"))
            .with_context(|| format!("no summary line in: {text}"))?;
        let nums: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
        match nums.as_slice() {
            [_, blobs, manifests, ..] => Ok((*blobs, *manifests, text)),
            _ => bail!("unexpected summary line `{line}`"),
        }
    }

    /// `(status, body)` of a plain HTTP/1.0 `GET path`: for tests that look
    /// at the registry without the client under test.
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).context("connecting to the registry")?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        let status = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        Ok((status, body))
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `skopeo` with `args` and returns its stdout; errors carry its stderr.
pub fn skopeo(args: &[&str]) -> Result<String> {
    let out = Command::new("skopeo")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running skopeo (install Debian's skopeo package)")?;
    if !out.status.success() {
        bail!("skopeo {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `skopeo inspect --raw` of `docker://REF` on a plain-HTTP registry.
pub fn skopeo_inspect_raw(reference: &str) -> Result<Vec<u8>> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{reference}")])
        .stdin(Stdio::null())
        .output()
        .context("running skopeo")?;
    if !out.status.success() {
        bail!("skopeo inspect --raw {reference} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_port_is_exclusive() {
        let port = free_port().expect("port");
        let reg = TestRegistry::start_on_port(port).expect("starts");
        assert_eq!(reg.host(), format!("127.0.0.1:{port}"));
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let second = TestRegistry::start_on_port(port);
            tx.send(()).expect("sends");
            second.map(|r| r.port())
        });
        assert!(rx.recv_timeout(Duration::from_millis(500)).is_err(), "the second waits for the lock");
        drop(reg);
        assert_eq!(waiter.join().expect("joins").expect("starts after the first stopped"), port);

        // A port held by something else: a clear error, after waiting.
        let other = TcpListener::bind("127.0.0.1:0").expect("binds");
        let busy = other.local_addr().expect("addr").port();
        let err = TestRegistry::start_on_port_within(busy, Duration::from_millis(300)).expect_err("busy").to_string();
        assert!(err.contains(&format!("127.0.0.1:{busy} is in use by another process")), "{err}");
    }

    #[test]
    fn starts_answers_and_stops() {
        let reg = TestRegistry::start().expect("registry starts");
        let mut s = TcpStream::connect(("127.0.0.1", reg.port())).expect("connects");
        s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").expect("writes");
        let mut resp = String::new();
        s.read_to_string(&mut resp).expect("reads");
        assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
        let port = reg.port();
        drop(reg);
        std::thread::sleep(Duration::from_millis(100));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "registry stopped");
    }
}
