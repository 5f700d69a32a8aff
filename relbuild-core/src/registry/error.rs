//! Errors of the registry client.
//!
//! Every variant carries data (the URL with credentials redacted, the
//! registry, the parsed distribution error envelope) rather than a string,
//! and the predicates [`Error::is_retryable`], [`Error::is_not_found`] and
//! [`Error::is_unauthorized`] spare callers from matching variants.

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::Deserialize;

use crate::image::{self, Digest};

/// Which entry of which credential file supplied the credentials that were used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSource {
    /// The auth file.
    pub file: PathBuf,
    /// The key of its `auths` object, as written in the file.
    pub key: String,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key `{}` of `{}`", self.key, self.file.display())
    }
}

/// The distribution-spec error envelope: `{"errors":[{"code","message","detail"}]}`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Envelope {
    /// The errors the registry reported.
    #[serde(default)]
    pub errors: Vec<EnvelopeError>,
}

/// One entry of an [`Envelope`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EnvelopeError {
    /// An error code such as `BLOB_UNKNOWN` or `MANIFEST_UNKNOWN`.
    #[serde(default)]
    pub code: String,
    /// A human-readable message.
    #[serde(default)]
    pub message: String,
    /// Unstructured detail, if any.
    #[serde(default)]
    pub detail: Option<serde_json::Value>,
}

impl Envelope {
    /// Parses an error body; `None` when it is not an envelope.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(body).ok().filter(|e| !e.errors.is_empty())
    }

    /// True when any entry has `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.errors.iter().any(|e| e.code == code)
    }
}

impl fmt::Display for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.code, e.message)?;
        }
        Ok(())
    }
}

/// Formats `: <envelope>` when there is one, for error messages.
struct Suffix<'a>(&'a Option<Envelope>);

impl fmt::Display for Suffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(e) => write!(f, " ({e})"),
            None => Ok(()),
        }
    }
}

struct UsedCredential<'a>(&'a Option<CredentialSource>);

impl fmt::Display for UsedCredential<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, "the credentials from {c} were rejected"),
            None => f.write_str("no credentials were found for it"),
        }
    }
}

/// Formats the locations a routed read tried, each with why it failed.
struct Attempts<'a>(&'a [(String, Error)]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (at, e)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "`{at}` ({e})")?;
        }
        Ok(())
    }
}

/// Errors of the `registry` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The registry could not be reached (DNS, refused, reset, timeout).
    #[error("cannot connect to registry `{registry}` ({url})")]
    Connect {
        /// The registry host.
        registry: String,
        /// The URL requested, credentials redacted.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The TLS handshake failed (unknown CA, bad certificate, plain HTTP server).
    #[error(
        "TLS handshake with registry `{registry}` failed (hint: pass its CA with `--certificate-authority`, or use `--insecure` for a plain-HTTP or self-signed registry)"
    )]
    Tls {
        /// The registry host.
        registry: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The connection dropped or timed out while a response body was read.
    #[error("reading the response from {url} failed")]
    Body {
        /// The URL requested, credentials redacted.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry refused our credentials, or wants some and we have none.
    #[error("registry `{registry}` denied access: {}{}", UsedCredential(credential), Suffix(envelope))]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// Where the credentials that were sent came from (never the secret).
        credential: Option<CredentialSource>,
        /// The registry's error envelope, if it sent one.
        envelope: Option<Envelope>,
    },
    /// The manifest, tag or blob does not exist.
    #[error("`{reference}` not found{}", Suffix(envelope))]
    NotFound {
        /// What was asked for (`registry/repo:tag`, `registry/repo@digest`).
        reference: String,
        /// The registry's error envelope, if it sent one.
        envelope: Option<Envelope>,
    },
    /// Content whose digest is not the one asked for or announced.
    #[error("digest mismatch for {url}: expected {expected}, found {found}")]
    DigestMismatch {
        /// The URL the content came from (or went to), credentials redacted.
        url: String,
        /// The digest asked for or announced.
        expected: Digest,
        /// The digest of the bytes.
        found: Digest,
    },
    /// Content whose size is not the one asked for.
    #[error("size mismatch for {digest} at {url}: expected {expected} bytes, found {found}")]
    SizeMismatch {
        /// The URL, credentials redacted.
        url: String,
        /// The digest of the content.
        digest: Digest,
        /// The expected size.
        expected: u64,
        /// The size found (so far, when it was too large).
        found: u64,
    },
    /// A body larger than the caller allowed.
    #[error("response from {url} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The URL, credentials redacted.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// Any other unexpected HTTP status.
    #[error("{method} {url} returned HTTP {status}{}", Suffix(envelope))]
    Http {
        /// The HTTP method.
        method: String,
        /// The URL, credentials redacted.
        url: String,
        /// The status code.
        status: u16,
        /// The registry's error envelope, if it sent one.
        envelope: Option<Envelope>,
    },
    /// The token endpoint did not give a usable token.
    #[error("token request to {realm} for registry `{registry}` failed: {reason}")]
    Token {
        /// The registry host.
        registry: String,
        /// The token endpoint, credentials redacted.
        realm: String,
        /// What went wrong.
        reason: String,
    },
    /// A response the distribution spec does not allow (e.g. no `Location`).
    #[error("invalid response from {url}: {reason}")]
    InvalidResponse {
        /// The URL, credentials redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A manifest that does not parse.
    #[error("invalid manifest from {url}")]
    Manifest {
        /// The URL, credentials redacted.
        url: String,
        /// The parse error.
        #[source]
        source: image::Error,
    },
    /// An auth file that is not valid JSON of the expected shape.
    #[error("auth file `{}` is not valid (line {line}, column {column})", path.display())]
    AuthFile {
        /// The file.
        path: PathBuf,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// An entry of an auth file that cannot be used (never shows the secret).
    #[error("entry `{key}` of auth file `{}` is invalid: {reason}", path.display())]
    AuthFileEntry {
        /// The file.
        path: PathBuf,
        /// The key of the entry.
        key: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An auth file or CA file that cannot be read.
    #[error("cannot read `{}`", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A CA file without usable certificates.
    #[error("certificate authority file `{}` is invalid: {reason}", path.display())]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading the upload source failed.
    #[error("reading the content of {digest} for upload failed")]
    Source {
        /// The blob being uploaded.
        digest: Digest,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing a downloaded blob to the caller's writer failed.
    #[error("writing blob {digest} failed")]
    Write {
        /// The blob being downloaded.
        digest: Digest,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Build {
        /// The builder error.
        #[source]
        source: reqwest::Error,
    },
    /// The TLS configuration could not be built.
    #[error("cannot build the TLS configuration")]
    TlsConfig {
        /// The rustls error.
        #[source]
        source: rustls::Error,
    },
    /// A URL that does not parse (a bad `Location` or realm).
    #[error("invalid URL `{url}`")]
    Url {
        /// The URL, credentials redacted.
        url: String,
        /// The parse error.
        #[source]
        source: url::ParseError,
    },
    /// An `--idms-file` or `--icsp-file` that cannot be used.
    #[error("mirror file `{}` is invalid: {reason}", path.display())]
    MirrorFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A reference by tag whose source a `NeverContactSource` rule forbids
    /// contacting (digest mirrors hold no tags).
    #[error(
        "`{reference}` is by tag, and `{}` forbids contacting its source (NeverContactSource); digest mirrors serve only references by digest",
        file.display()
    )]
    SourceBlocked {
        /// The reference.
        reference: String,
        /// The mirror file whose rule blocks the source.
        file: PathBuf,
    },
    /// Every mirror (and the source, when allowed) failed for a reference
    /// routed by mirror rules.
    #[error("`{reference}` could not be read from {}", Attempts(attempts))]
    Mirrors {
        /// The reference, as asked for.
        reference: String,
        /// Each location tried, in order, with its error.
        attempts: Vec<(String, Error)>,
    },
    /// A URL given as input that is not an `http://` or `https://` URL.
    #[error("`{url}` is not an http:// or https:// URL")]
    InvalidUrl {
        /// The URL, credentials redacted.
        url: String,
    },
}

impl Error {
    /// True for errors that may go away on retry: connection failures, dropped
    /// bodies, 5xx, 429, and a digest or size mismatch of a download (a
    /// corrupted transfer).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Body { .. } => true,
            Self::Http { status, .. } => *status == 429 || (500..600).contains(status),
            _ => false,
        }
    }

    /// True when the registry said the thing does not exist.
    pub fn is_not_found(&self) -> bool {
        if let Self::Mirrors { attempts, .. } = self {
            return attempts.iter().all(|(_, e)| e.is_not_found());
        }
        matches!(self, Self::NotFound { .. }) || matches!(self, Self::Http { status: 404, .. })
    }

    /// True when access was denied (401, or 403).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Unauthorized { .. }) || matches!(self, Self::Http { status: 403, .. })
    }

    /// True when content did not match its digest or size.
    pub fn is_digest_mismatch(&self) -> bool {
        matches!(self, Self::DigestMismatch { .. } | Self::SizeMismatch { .. })
    }
}

/// A URL fit for messages: userinfo is replaced by `****`, and the values of
/// query parameters named like secrets (`access_token`, `token`, `password`,
/// …) are masked.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        // Not a URL: strip anything that looks like `user:pass@`.
        return match (url.find("://"), url.find('@')) {
            (Some(s), Some(at)) if at > s => format!("{}://****@{}", &url[..s], &url[at + 1..]),
            _ => url.to_owned(),
        };
    };
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("****");
        let _ = u.set_password(None);
    }
    const SECRET: [&str; 5] = ["access_token", "token", "password", "refresh_token", "secret"];
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if SECRET.contains(&k.as_ref()) { "****".to_owned() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_table() {
        let cases = [
            ("https://user:secret@quay.io/v2/", "https://****@quay.io/v2/"),
            ("https://quay.io/v2/a/manifests/t", "https://quay.io/v2/a/manifests/t"),
            ("https://auth.io/token?service=x&access_token=abc", "https://auth.io/token?service=x&access_token=****"),
            ("http://u@h:5000/x", "http://****@h:5000/x"),
            ("not a url user:pw@host", "not a url user:pw@host"),
            ("weird://u:p@[bad", "weird://****@[bad"),
        ];
        for (input, want) in cases {
            let got = redact_url(input);
            assert_eq!(got, want, "{input}");
            assert!(!got.contains("secret") && !got.contains("abc"), "{got}");
        }
    }

    #[test]
    fn envelope_and_messages() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        let env = Envelope::parse(body).expect("an envelope");
        assert!(env.has_code("MANIFEST_UNKNOWN"));
        let e = Error::NotFound { reference: "r/a:x".into(), envelope: Some(env) };
        assert_eq!(e.to_string(), "`r/a:x` not found (MANIFEST_UNKNOWN: manifest unknown)");
        assert!(e.is_not_found() && !e.is_retryable());
        assert!(Envelope::parse(b"<html>").is_none());
        let e = Error::Unauthorized {
            registry: "quay.io".into(),
            credential: Some(CredentialSource { file: "/a/auth.json".into(), key: "quay.io/ns".into() }),
            envelope: None,
        };
        assert_eq!(
            e.to_string(),
            "registry `quay.io` denied access: the credentials from key `quay.io/ns` of `/a/auth.json` were rejected"
        );
        assert!(e.is_unauthorized());
        let e = Error::Http { method: "GET".into(), url: "u".into(), status: 503, envelope: None };
        assert!(e.is_retryable());
        assert!(std::mem::size_of::<Error>() <= 128, "{}", std::mem::size_of::<Error>());
    }
}
