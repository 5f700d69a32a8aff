//! Basic-auth registries and auth files for tests.
//!
//! distribution 2.8's `htpasswd` backend accepts bcrypt hashes only; they are
//! made with the `bcrypt` crate, so CI needs no `apache2-utils`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine as _;

use crate::registry::{RegistryConfig, TestRegistry};

/// A `user:bcrypt-hash` line for an htpasswd file (cost 4: tests need speed,
/// not strength).
pub fn htpasswd_line(user: &str, password: &str) -> Result<String> {
    let hash = bcrypt::hash_with_result(password, 4).context("bcrypt")?.format_for_version(bcrypt::Version::TwoY);
    Ok(format!("{user}:{hash}\n"))
}

/// A registry that requires HTTP basic auth (htpasswd) for every request.
#[derive(Debug)]
pub struct BasicAuthRegistry {
    /// The running registry (plain HTTP).
    pub registry: TestRegistry,
    /// The accepted user name.
    pub username: String,
    /// The accepted password.
    pub password: String,
    dir: tempfile::TempDir,
}

impl BasicAuthRegistry {
    /// Starts a registry accepting only `username`/`password`.
    pub fn start(username: &str, password: &str) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("relbuild-htpasswd-").tempdir()?;
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, htpasswd_line(username, password)?)?;
        let auth_yaml = format!("  htpasswd:\n    realm: relbuild-test\n    path: {}\n", file.display());
        let registry = TestRegistry::start_with(RegistryConfig { auth_yaml: Some(auth_yaml), ..Default::default() })?;
        Ok(Self { registry, username: username.to_owned(), password: password.to_owned(), dir })
    }

    /// A temporary directory that lives as long as the handle.
    pub fn dir_path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes an auth file with `key` → `username:password` into the
    /// handle's temporary directory and returns its path.
    pub fn write_auth_file(&self, name: &str, key: &str, password: &str) -> Result<PathBuf> {
        let path = self.dir.path().join(name);
        write_auth_file(&path, &[(key, &self.username, password)])?;
        Ok(path)
    }
}

/// Writes a docker/podman auth file with one `auth` entry per `(key, user, password)`.
pub fn write_auth_file(path: &Path, entries: &[(&str, &str, &str)]) -> Result<()> {
    let mut auths = serde_json::Map::new();
    for (key, user, password) in entries {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        auths.insert((*key).to_owned(), serde_json::json!({ "auth": auth }));
    }
    let json = serde_json::json!({ "auths": auths });
    std::fs::write(path, serde_json::to_vec_pretty(&json)?).with_context(|| format!("writing {}", path.display()))
}
