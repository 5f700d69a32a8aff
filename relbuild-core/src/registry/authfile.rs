//! Credential files: docker's `config.json`, podman's `auth.json`, and
//! OpenShift pull secrets, which all share one shape:
//!
//! ```json
//! {"auths": {"quay.io/ns": {"auth": "base64(user:password)"}}}
//! ```
//!
//! Entries may also carry `username`/`password` fields, or an `identitytoken`
//! (an OAuth2 refresh token). Keys may be `host`, `host:port` or
//! `host/namespace/repo`, optionally with an `https://` scheme and a
//! `/v1/`/`/v2/` suffix (old docker logins); the longest key that is a
//! prefix of `registry/repository` (on a `/` boundary) wins. `docker.io`,
//! `index.docker.io` and `registry-1.docker.io` are one registry.
//!
//! Which file to read is the CLI's business (`--registry-config`,
//! `REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `~/.docker/config.json`); core takes the resulting candidate list in
//! [`AuthFile::discover`] and reads no environment variables.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::error::{CredentialSource, Error};
use crate::image::DOCKER_HUB;

/// A credential from an auth file. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// A user name and password, sent as HTTP basic auth or to a token endpoint.
    Basic {
        /// The user name.
        username: String,
        /// The password (secret).
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token endpoint.
    IdentityToken {
        /// The user name, if the file gave one.
        username: Option<String>,
        /// The refresh token (secret).
        token: String,
    },
}

impl Credential {
    /// A basic credential.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Basic { username: username.into(), password: password.into() }
    }

    /// The user name, if any.
    pub fn username(&self) -> Option<&str> {
        match self {
            Self::Basic { username, .. } => Some(username),
            Self::IdentityToken { username, .. } => username.as_deref(),
        }
    }

    /// The `Authorization: Basic …` value, for basic credentials.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Self::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            Self::IdentityToken { .. } => None,
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"****").finish()
            }
            Self::IdentityToken { username, .. } => {
                f.debug_struct("IdentityToken").field("username", username).field("token", &"****").finish()
            }
        }
    }
}

/// One usable entry of an auth file.
#[derive(Clone, Debug)]
struct Entry {
    /// The normalised key (`host[/path]`, docker.io aliases folded).
    normalized: String,
    /// The key as written.
    key: String,
    credential: Credential,
}

/// A parsed credential file.
#[derive(Clone, Debug, Default)]
pub struct AuthFile {
    path: PathBuf,
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct FileJson {
    #[serde(default)]
    auths: BTreeMap<String, EntryJson>,
}

#[derive(Deserialize)]
struct EntryJson {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthFile {
    /// An auth file with no entries (anonymous access everywhere).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Reads and parses `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::ReadFile { path: path.to_owned(), source })?;
        Self::parse(path, &bytes)
    }

    /// Loads the first of `candidates` that exists; `Ok(None)` when none does.
    /// The caller computes the list (e.g. `--registry-config`, then
    /// `REGISTRY_AUTH_FILE`, then `$XDG_RUNTIME_DIR/containers/auth.json`, then
    /// `~/.docker/config.json`). A candidate that exists but cannot be read or
    /// parsed is an error, not skipped: silently falling through to other
    /// credentials would be surprising.
    pub fn discover(candidates: &[PathBuf]) -> Result<Option<Self>, Error> {
        for path in candidates {
            match std::fs::read(path) {
                Ok(bytes) => return Self::parse(path, &bytes).map(Some),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(Error::ReadFile { path: path.clone(), source }),
            }
        }
        Ok(None)
    }

    /// Parses the contents of an auth file; `path` is used in messages.
    pub fn parse(path: impl AsRef<Path>, bytes: &[u8]) -> Result<Self, Error> {
        let path = path.as_ref().to_owned();
        let json: FileJson = serde_json::from_slice(bytes).map_err(|source| Error::AuthFile {
            path: path.clone(),
            line: source.line(),
            column: source.column(),
            source,
        })?;
        let mut entries = Vec::new();
        for (key, e) in json.auths {
            let bad = |reason| Error::AuthFileEntry { path: path.clone(), key: key.clone(), reason };
            let credential = if let Some(token) = e.identitytoken.filter(|t| !t.is_empty()) {
                Credential::IdentityToken { username: e.username.filter(|u| !u.is_empty()), token }
            } else if let Some(auth) = e.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| bad("`auth` is not valid base64"))?;
                let decoded = String::from_utf8(decoded).map_err(|_| bad("`auth` does not decode to UTF-8"))?;
                let (u, p) = decoded.split_once(':').ok_or_else(|| bad("`auth` does not decode to `user:password`"))?;
                Credential::basic(u, p)
            } else if let (Some(u), Some(p)) = (e.username, e.password) {
                Credential::basic(u, p)
            } else {
                // Entries kept only for credential helpers carry no secret.
                continue;
            };
            entries.push(Entry { normalized: normalize_key(&key), key, credential });
        }
        Ok(Self { path, entries })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of usable entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no usable entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The credential for `repository` on `registry` (as in a [`Reference`]:
    /// `quay.io`, `127.0.0.1:5000`, `docker.io`), with where it came from. The
    /// longest matching key wins.
    ///
    /// [`Reference`]: crate::image::Reference
    pub fn lookup(&self, registry: &str, repository: &str) -> Option<(&Credential, CredentialSource)> {
        let target = format!("{}/{}", normalize_host(registry), repository);
        self.entries
            .iter()
            .filter(|e| target == e.normalized || target.starts_with(&format!("{}/", e.normalized)))
            .max_by_key(|e| e.normalized.len())
            .map(|e| (&e.credential, CredentialSource { file: self.path.clone(), key: e.key.clone() }))
    }
}

fn normalize_host(host: &str) -> String {
    let lower = host.to_ascii_lowercase();
    match lower.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB.to_owned(),
        _ => lower,
    }
}

/// `https://index.docker.io/v1/` → `docker.io`; `quay.io/ns/` → `quay.io/ns`.
fn normalize_key(key: &str) -> String {
    let k = key.trim();
    let k = k.strip_prefix("https://").or_else(|| k.strip_prefix("http://")).unwrap_or(k);
    let mut k = k.trim_end_matches('/');
    for suffix in ["/v1", "/v2"] {
        if let Some(s) = k.strip_suffix(suffix) {
            k = s;
        }
    }
    let (host, path) = match k.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (k, None),
    };
    match path {
        Some(p) => format!("{}/{}", normalize_host(host), p),
        None => normalize_host(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn key_matching_table() {
        let json = serde_json::json!({"auths": {
            "quay.io": {"auth": b64("q:root")},
            "quay.io/ns": {"auth": b64("q:ns")},
            "quay.io/ns/repo": {"auth": b64("q:repo")},
            "https://index.docker.io/v1/": {"auth": b64("d:hub")},
            "http://127.0.0.1:5000/v2/": {"username": "l", "password": "port"},
            "127.0.0.1": {"auth": b64("l:noport")},
            "registry.example.com/": {"identitytoken": "refresh"},
            "helper.io": {},
        }});
        let f = AuthFile::parse("/x/auth.json", json.to_string().as_bytes()).expect("parses");
        type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);
        let cases: &[Case] = &[
            ("quay.io", "other/x", Some(("quay.io", "root"))),
            ("quay.io", "ns/x", Some(("quay.io/ns", "ns"))),
            ("quay.io", "ns/repo", Some(("quay.io/ns/repo", "repo"))),
            ("quay.io", "ns/repo2", Some(("quay.io/ns", "ns"))),
            ("quay.io", "nsx/a", Some(("quay.io", "root"))),
            ("docker.io", "library/busybox", Some(("https://index.docker.io/v1/", "hub"))),
            ("registry-1.docker.io", "library/busybox", Some(("https://index.docker.io/v1/", "hub"))),
            ("127.0.0.1:5000", "a", Some(("http://127.0.0.1:5000/v2/", "port"))),
            ("127.0.0.1", "a", Some(("127.0.0.1", "noport"))),
            ("127.0.0.1:5001", "a", None),
            ("quay.io.evil.com", "a", None),
            ("helper.io", "a", None),
        ];
        for (reg, repo, want) in cases {
            let got = f.lookup(reg, repo).map(|(c, src)| {
                let pw = match c {
                    Credential::Basic { password, .. } => password.clone(),
                    Credential::IdentityToken { token, .. } => token.clone(),
                };
                (src.key, pw)
            });
            assert_eq!(got, want.map(|(k, p)| (k.to_owned(), p.to_owned())), "{reg}/{repo}");
        }
        let (c, _) = f.lookup("registry.example.com", "a/b").expect("identity token");
        assert!(matches!(c, Credential::IdentityToken { .. }));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let json = serde_json::json!({"auths": {"quay.io": {"auth": b64("user:hunter2")}, "x.io": {"identitytoken": "tok3n"}}});
        let f = AuthFile::parse("/x/auth.json", json.to_string().as_bytes()).expect("parses");
        let dbg = format!("{f:?}");
        assert!(dbg.contains("user"), "{dbg}");
        for secret in ["hunter2", "tok3n", &b64("user:hunter2")] {
            assert!(!dbg.contains(secret), "{dbg}");
        }
    }

    #[test]
    fn errors_name_the_file() {
        let e = AuthFile::parse("/x/auth.json", b"{\n  \"auths\": nope").expect_err("not JSON");
        let msg = e.to_string();
        assert!(msg.contains("/x/auth.json") && msg.contains("line 2"), "{msg}");
        let json = serde_json::json!({"auths": {"quay.io": {"auth": "!!!secret"}}});
        let msg = AuthFile::parse("/x/a.json", json.to_string().as_bytes()).expect_err("bad base64").to_string();
        assert!(msg.contains("quay.io") && !msg.contains("secret"), "{msg}");
    }

    #[test]
    fn discover_takes_the_first_existing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(&b, r#"{"auths":{"quay.io":{"username":"u","password":"p"}}}"#).expect("write");
        let f = AuthFile::discover(&[a.clone(), b.clone()]).expect("ok").expect("found");
        assert_eq!(f.path(), b);
        assert!(AuthFile::discover(std::slice::from_ref(&a)).expect("ok").is_none());
    }
}
