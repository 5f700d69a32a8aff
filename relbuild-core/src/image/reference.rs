//! Image references: `[host[:port]/]path[:tag][@digest]`.
//!
//! The grammar is distribution's `reference` package: a first path component
//! that contains `.` or `:`, or is `localhost`, names the registry host;
//! otherwise the registry is Docker Hub and a one-component path gets the
//! `library/` namespace.

use std::fmt;
use std::str::FromStr;

use super::{Digest, Error};

/// The registry name Docker Hub references normalise to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's API is actually served from.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
///
/// `Display` prints the normalised form (`docker.io/library/busybox:latest`
/// for `busybox`). A reference without tag or digest prints without either;
/// [`Reference::tag_or_latest`] supplies the implicit `latest` where a caller
/// needs one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

const MAX_NAME: usize = 255;

fn reject(input: &str, reason: impl Into<String>) -> Error {
    Error::InvalidReference { input: input.to_owned(), reason: reason.into() }
}

fn valid_domain_component(c: &str) -> bool {
    // [a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    !c.is_empty()
        && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !c.starts_with('-')
        && !c.ends_with('-')
}

fn valid_host(host: &str) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal
        let Some(end) = rest.find(']') else { return false };
        let (addr, tail) = (&rest[..end], &rest[end + 1..]);
        return !addr.is_empty()
            && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
            && (tail.is_empty() || tail.strip_prefix(':').is_some_and(valid_port));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    name.split('.').all(valid_domain_component) && port.is_none_or(valid_port)
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
}

fn valid_path_component(c: &str) -> bool {
    // [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    // [\w][\w.-]{0,127}
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

impl Reference {
    /// Builds a reference from parts, validating each.
    pub fn new(registry: &str, repository: &str, tag: Option<&str>, digest: Option<Digest>) -> Result<Self, Error> {
        let mut s = format!("{registry}/{repository}");
        if let Some(t) = tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s.parse()
    }

    /// The registry as written (or `docker.io`), e.g. `quay.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host to talk to: `registry-1.docker.io` for Docker Hub, else [`Self::registry`].
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB { DOCKER_HUB_API } else { &self.registry }
    }

    /// The repository path, e.g. `openshift/release` or `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if one was written.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if one was written.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the registry for: the digest if present, else the tag, else `latest`.
    pub fn tag_or_digest(&self) -> &str {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.as_str(),
            (None, Some(t)) => t,
            (None, None) => "latest",
        }
    }

    /// The tag, or `latest` when neither tag nor digest was given.
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository pinned to `digest` (the tag is dropped).
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self { registry: self.registry.clone(), repository: self.repository.clone(), tag: None, digest: Some(digest) }
    }

    /// The same repository with `tag` (any digest is dropped).
    pub fn with_tag(&self, tag: &str) -> Result<Self, Error> {
        if !valid_tag(tag) {
            return Err(reject(tag, "a tag must match `[\\w][\\w.-]{0,127}`"));
        }
        Ok(Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// Another repository on the same registry.
    pub fn with_repository(&self, repository: &str) -> Result<Self, Error> {
        Self::new(&self.registry, repository, self.tag.as_deref(), self.digest.clone())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        if input.is_empty() {
            return Err(reject(input, "the reference is empty"));
        }
        if input.contains("://") {
            return Err(reject(input, "a reference has no URL scheme; write `host/path:tag`"));
        }
        if let Some(c) = input.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(reject(input, format!("it contains the character {c:?}")));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => {
                let digest = d.parse::<Digest>().map_err(|e| match e {
                    Error::InvalidDigest { reason, .. } => reject(input, format!("bad digest `{d}`: {reason}")),
                    other => other,
                })?;
                (r, Some(digest))
            }
            None => (input, None),
        };
        // A tag is what follows the last `:` after the last `/`.
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if last_slash.is_none_or(|s| colon > s) => (&rest[..colon], Some(&rest[colon + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(reject(input, format!("bad tag `{t}`: a tag must match `[\\w][\\w.-]{{0,127}}`")));
        }
        if name.is_empty() {
            return Err(reject(input, "the repository name is empty"));
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                if !valid_host(first) {
                    return Err(reject(input, format!("bad registry host `{first}`")));
                }
                (first.to_owned(), path.to_owned())
            }
            Some(_) => (DOCKER_HUB.to_owned(), name.to_owned()),
            None => (DOCKER_HUB.to_owned(), format!("library/{name}")),
        };
        let path = if registry == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path };
        if path.is_empty() {
            return Err(reject(input, "the repository path is empty"));
        }
        if let Some(bad) = path.split('/').find(|c| !valid_path_component(c)) {
            let reason = if bad.bytes().any(|b| b.is_ascii_uppercase()) {
                format!("repository component `{bad}` must be lower case")
            } else if bad.is_empty() {
                "the repository path has an empty component (`//` or a trailing `/`)".to_owned()
            } else {
                format!(
                    "bad repository component `{bad}`: use lower-case letters, digits and single `.`, `_`, `__` or `-` separators"
                )
            };
            return Err(reject(input, reason));
        }
        if registry.len() + 1 + path.len() > MAX_NAME {
            return Err(reject(input, format!("the repository name is longer than {MAX_NAME} characters")));
        }
        Ok(Self { registry, repository: path, tag: tag.map(str::to_owned), digest })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// input, registry, repository, tag, has a digest, printed form
    type Case<'a> = (String, &'a str, &'a str, Option<&'a str>, bool, String);

    #[test]
    fn parse_and_print() {
        let d = format!("sha256:{}", "0".repeat(64));
        let cases: Vec<Case<'_>> = vec![
            ("busybox".into(), "docker.io", "library/busybox", None, false, "docker.io/library/busybox".into()),
            (
                "busybox:1.36".into(),
                "docker.io",
                "library/busybox",
                Some("1.36"),
                false,
                "docker.io/library/busybox:1.36".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io",
                "library/busybox",
                None,
                false,
                "docker.io/library/busybox".into(),
            ),
            (
                "openshift/origin".into(),
                "docker.io",
                "openshift/origin",
                None,
                false,
                "docker.io/openshift/origin".into(),
            ),
            (
                "quay.io/openshift-release-dev/ocp-release:4.15.3-x86_64".into(),
                "quay.io",
                "openshift-release-dev/ocp-release",
                Some("4.15.3-x86_64"),
                false,
                "quay.io/openshift-release-dev/ocp-release:4.15.3-x86_64".into(),
            ),
            (
                "127.0.0.1:5000/ocp/release".into(),
                "127.0.0.1:5000",
                "ocp/release",
                None,
                false,
                "127.0.0.1:5000/ocp/release".into(),
            ),
            ("localhost/a".into(), "localhost", "a", None, false, "localhost/a".into()),
            ("localhost:5000/a/b:t".into(), "localhost:5000", "a/b", Some("t"), false, "localhost:5000/a/b:t".into()),
            (format!("reg.io/a@{d}"), "reg.io", "a", None, true, format!("reg.io/a@{d}")),
            (format!("reg.io/a:v1@{d}"), "reg.io", "a", Some("v1"), true, format!("reg.io/a:v1@{d}")),
            ("[::1]:5000/x".into(), "[::1]:5000", "x", None, false, "[::1]:5000/x".into()),
            ("reg.io/a__b/c-d--e.f".into(), "reg.io", "a__b/c-d--e.f", None, false, "reg.io/a__b/c-d--e.f".into()),
        ];
        for (input, reg, repo, tag, has_digest, shown) in cases {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), reg, "{input}");
            assert_eq!(r.repository(), repo, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest().is_some(), has_digest, "{input}");
            assert_eq!(r.to_string(), shown, "{input}");
            assert_eq!(r.to_string().parse::<Reference>().ok(), Some(r), "{input} round trip");
        }
    }

    #[test]
    fn rejects_with_reason() {
        let cases = [
            ("", "empty"),
            ("quay.io/Abc", "must be lower case"),
            ("quay.io/A/b", "must be lower case"),
            ("quay.io/a:", "bad tag"),
            ("quay.io/a:-x", "bad tag"),
            ("quay.io/a@sha256:abc", "bad digest"),
            ("quay.io//a", "empty component"),
            ("quay.io/a/", "empty component"),
            ("https://quay.io/a", "URL scheme"),
            ("quay.io/a b", "character"),
            ("quay.io/a..b", "bad repository component"),
            ("-bad.io/a", "bad registry host"),
        ];
        for (input, want) in cases {
            let e = input.parse::<Reference>().expect_err(input).to_string();
            assert!(e.contains(want), "{input}: {e}");
            assert!(e.contains(&format!("`{input}`")), "error names the input: {e}");
        }
        let long = format!("reg.io/{}", "a".repeat(300));
        assert!(long.parse::<Reference>().is_err());
    }

    #[test]
    fn api_host_and_defaults() {
        let r: Reference = "busybox".parse().expect("valid");
        assert_eq!(r.api_host(), DOCKER_HUB_API);
        assert_eq!(r.tag_or_digest(), "latest");
        assert_eq!(r.tag_or_latest(), Some("latest"));
    }
}
