//! `relbuild lint`: checks a release payload against what the CVO and
//! Cincinnati require (spec §5) before it is pushed.
//!
//! Each [`Finding`] has a stable kebab-case `code`. Errors are what makes the
//! CVO reject the payload (or Cincinnati drop the release); warnings are
//! what makes a manifest silently never apply, or run out of order.

use std::collections::BTreeSet;
use std::io::Write;

use serde::{Deserialize, Serialize};

use super::heads::{self, DocHead};
use super::imagestream::ImageStream;
use super::include::{self, FEATURE_GATE, FEATURE_SET, INCLUDE_PREFIX};
use super::info::is_manifest_name;
use super::metadata::CINCINNATI_KIND;
use super::names::{IMAGE_REFERENCES, RELEASE_METADATA};
use crate::store::{Cache, RecordKey};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The payload would be rejected, or the release dropped.
    Error,
    /// Something that is very likely a mistake.
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The file of `release-manifests/` concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Stable kebab-case identifier of the check.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Every check code, for documentation and `--deny`/`--allow` style use.
pub const CODES: &[&str] = &[
    "missing-release-metadata",
    "invalid-release-metadata",
    "metadata-kind",
    "metadata-version",
    "metadata-value-not-string",
    "missing-image-references",
    "invalid-image-references",
    "version-mismatch",
    "unpinned-image",
    "invalid-manifest",
    "missing-kind",
    "missing-name",
    "duplicate-object",
    "no-annotations",
    "no-profile",
    "feature-set-and-gate",
    "run-level-name",
    "base-without-manifests",
];

/// Lints a payload: `files` are the files of `release-manifests/` (name →
/// bytes); `base_has_manifests` says whether the base image has `/manifests`
/// (`None`: not known, not checked).
pub fn lint(files: &[(String, Vec<u8>)], base_has_manifests: Option<bool>) -> Vec<Finding> {
    let get = |name: &str| files.iter().find(|(n, _)| n == name).map(|(_, b)| b.as_slice());
    let mut out = lint_release(get(IMAGE_REFERENCES), get(RELEASE_METADATA), base_has_manifests);
    for (name, bytes) in files {
        out.extend(lint_manifest(name, bytes));
    }
    out
}

/// The release-level checks of [`lint`]: `image-references`,
/// `release-metadata` (`None`: missing) and the base image.
pub fn lint_release(
    image_references: Option<&[u8]>,
    release_metadata: Option<&[u8]>,
    base_has_manifests: Option<bool>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |severity, file: Option<&str>, code, message: String| {
        out.push(Finding { severity, file: file.map(str::to_owned), code, message });
    };
    use Severity::{Error as E, Warning as W};
    if base_has_manifests == Some(false) {
        push(
            E,
            None,
            "base-without-manifests",
            "the base image has no `/manifests` directory; the CVO requires it (use the cluster-version-operator image as base)".into(),
        );
    }
    let mut version = None;
    match release_metadata {
        None => push(E, None, "missing-release-metadata", "the payload has no `release-metadata`".into()),
        Some(bytes) => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Err(e) => push(E, Some(RELEASE_METADATA), "invalid-release-metadata", format!("not valid JSON: {e}")),
            Ok(v) => {
                let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
                if kind != CINCINNATI_KIND {
                    push(
                        E,
                        Some(RELEASE_METADATA),
                        "metadata-kind",
                        format!("`kind` is {kind:?}, the CVO requires {CINCINNATI_KIND:?}"),
                    );
                }
                let v_str = v.get("version").and_then(|k| k.as_str()).unwrap_or_default();
                if let Err(e) = semver::Version::parse(v_str) {
                    push(
                        E,
                        Some(RELEASE_METADATA),
                        "metadata-version",
                        format!("`version` {v_str:?} is not a semantic version: {e}"),
                    );
                } else {
                    version = Some(v_str.to_owned());
                }
                if let Some(md) = v.get("metadata").and_then(|m| m.as_object()) {
                    for (k, val) in md {
                        if !val.is_string() {
                            push(
                                E,
                                Some(RELEASE_METADATA),
                                "metadata-value-not-string",
                                format!(
                                    "`metadata.{k}` is not a string; Cincinnati only reads string values and drops the release"
                                ),
                            );
                        }
                    }
                }
            }
        },
    }

    match image_references {
        None => push(E, None, "missing-image-references", "the payload has no `image-references`".into()),
        Some(bytes) => match ImageStream::parse(bytes, IMAGE_REFERENCES) {
            Err(e) => push(E, Some(IMAGE_REFERENCES), "invalid-image-references", e.to_string()),
            Ok(is) => {
                if let Some(v) = &version
                    && &is.metadata.name != v
                {
                    push(
                        E,
                        Some(IMAGE_REFERENCES),
                        "version-mismatch",
                        format!(
                            "version from image-references ({}) differs from release-metadata ({v})",
                            is.metadata.name
                        ),
                    );
                }
                for tag in &is.spec.tags {
                    let Some(pullspec) = tag.docker_pullspec() else { continue };
                    if pullspec.split_once('@').is_none_or(|(_, d)| d.is_empty()) {
                        push(
                            W,
                            Some(IMAGE_REFERENCES),
                            "unpinned-image",
                            format!("tag `{}` is not pinned by digest: {pullspec}", tag.name),
                        );
                    }
                }
            }
        },
    }

    out
}

/// The per-file checks of [`lint`] for one file of `release-manifests/`
/// (nothing for `image-references`, `release-metadata` and non-manifests).
/// A function of the name and bytes only, so its result can be cached.
pub fn lint_manifest(name: &str, bytes: &[u8]) -> Vec<Finding> {
    static RUN_LEVEL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^0000_(\d+)_([a-zA-Z0-9]+(-[a-zA-Z0-9]+)*?)_").expect("because the pattern is valid")
    });
    let mut out = Vec::new();
    let mut push = |severity, file: Option<&str>, code, message: String| {
        out.push(Finding { severity, file: file.map(str::to_owned), code, message });
    };
    use Severity::{Error as E, Warning as W};
    if name == IMAGE_REFERENCES || name == RELEASE_METADATA || !is_manifest_name(name) {
        return out;
    }
    {
        let file = Some(name);
        if !RUN_LEVEL.is_match(name) {
            push(
                W,
                file,
                "run-level-name",
                "the name does not match `0000_<runlevel>_<component>_`; the CVO will not order or parallelise it"
                    .into(),
            );
        }
        // The event-level fast path where it applies, else serde-saphyr.
        let fast = if super::looks_like_json(bytes) { None } else { heads::document_heads(bytes) };
        let parsed = match fast {
            Some(heads) => Ok(heads),
            None => include::parse_manifests(bytes, name).map(|ms| ms.iter().map(DocHead::of).collect()),
        };
        let docs: Vec<DocHead> = match parsed {
            Ok(docs) => docs,
            Err(e) => {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    message = format!("{message}: {s}");
                    source = s.source();
                }
                push(E, file, "invalid-manifest", message);
                return out;
            }
        };
        let mut seen = BTreeSet::new();
        for (index, m) in docs.iter().enumerate() {
            let what = format!("document {index}");
            if m.kind.is_empty() {
                push(E, file, "missing-kind", format!("{what} has no `kind`"));
            }
            if m.name.is_empty() {
                push(E, file, "missing-name", format!("{what} has no `metadata.name`"));
            }
            let key = (m.group().to_owned(), m.kind.clone(), m.namespace.clone(), m.name.clone());
            if !m.kind.is_empty() && !m.name.is_empty() && !seen.insert(key) {
                let ns = if m.namespace.is_empty() { String::new() } else { format!("{}/", m.namespace) };
                push(
                    E,
                    file,
                    "duplicate-object",
                    format!("{what}: {} {ns}{} is defined more than once in this file", m.kind, m.name),
                );
            }
            let Some(annotations) = &m.annotation_keys else {
                push(
                    W,
                    file,
                    "no-annotations",
                    format!("{what} ({} {}) has no annotations; the CVO never applies it", m.kind, m.name),
                );
                continue;
            };
            if !annotations.iter().any(|k| k.starts_with(INCLUDE_PREFIX)) {
                push(
                    W,
                    file,
                    "no-profile",
                    format!(
                        "{what} ({} {}) has no `{INCLUDE_PREFIX}<profile>` annotation; no cluster profile applies it",
                        m.kind, m.name
                    ),
                );
            }
            let has = |key: &str| annotations.iter().any(|k| k == key);
            if has(FEATURE_SET) && has(FEATURE_GATE) {
                push(
                    E,
                    file,
                    "feature-set-and-gate",
                    format!(
                        "{what} ({} {}) has both `{FEATURE_SET}` and `{FEATURE_GATE}`; the CVO excludes it",
                        m.kind, m.name
                    ),
                );
            }
        }
    }
    out
}

/// The cache namespace of [`lint_manifests_cached`] records. Bump it (or the
/// crate version) whenever a per-file check changes.
const LINT_RECORD: &str = "lint-manifests/1";

/// [`lint_manifest`] over a group of files (one operator's), memoised in
/// `cache` under a key over the group's names and bytes, so a warm build
/// lints only what changed.
pub fn lint_manifests_cached(files: &[(String, Vec<u8>)], cache: Option<&Cache>) -> Vec<Finding> {
    let Some(cache) = cache else {
        return files.iter().flat_map(|(n, b)| lint_manifest(n, b)).collect();
    };
    let key = RecordKey::of_files(LINT_RECORD, files.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    if let Some(found) = cache.get_record(&key).and_then(|r| findings_from_json(&r)) {
        return found;
    }
    let found: Vec<Finding> = files.iter().flat_map(|(n, b)| lint_manifest(n, b)).collect();
    match serde_json::to_vec(&found) {
        Ok(json) => {
            if let Err(e) = cache.put_record(&key, &json) {
                tracing::debug!(error = %e, "lint result not cached");
            }
        }
        Err(e) => tracing::debug!(error = %e, "lint result not cached"),
    }
    found
}

/// Findings back from their JSON form; `None` when a code is unknown (a
/// record from another version), which makes the record a miss.
fn findings_from_json(bytes: &[u8]) -> Option<Vec<Finding>> {
    #[derive(Deserialize)]
    struct Stored {
        severity: Severity,
        file: Option<String>,
        code: String,
        message: String,
    }
    let stored: Vec<Stored> = serde_json::from_slice(bytes).ok()?;
    stored
        .into_iter()
        .map(|f| {
            let code = CODES.iter().find(|c| **c == f.code)?;
            Some(Finding { severity: f.severity, file: f.file, code, message: f.message })
        })
        .collect()
}

/// One line per finding: `error[code]: file: message`.
pub fn write_human(out: &mut impl Write, findings: &[Finding]) -> std::io::Result<()> {
    for f in findings {
        match &f.file {
            Some(file) => writeln!(out, "{}[{}]: {file}: {}", f.severity.as_str(), f.code, f.message)?,
            None => writeln!(out, "{}[{}]: {}", f.severity.as_str(), f.code, f.message)?,
        }
    }
    Ok(())
}

/// `-o json`: an indented array of findings and a newline.
pub fn write_json(out: &mut impl Write, findings: &[Finding]) -> std::io::Result<()> {
    let data = crate::image::gojson::to_vec_indent(findings, "  ").map_err(std::io::Error::other)?;
    out.write_all(&data)?;
    out.write_all(b"\n")
}

/// What `relbuild new --lint` does with the findings on the payload it
/// built, before anything is written or pushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LintMode {
    /// Do not lint.
    Off,
    /// Report every finding as a warning, and build anyway (the default).
    #[default]
    Warn,
    /// Refuse the build (nothing written or pushed) when an error is found;
    /// warnings are reported.
    Error,
}

/// `lint[code] file: message` (or `lint[code]: message` without a file).
pub fn finding_line(f: &Finding) -> String {
    match &f.file {
        Some(file) => format!("lint[{}] {file}: {}", f.code, f.message),
        None => format!("lint[{}]: {}", f.code, f.message),
    }
}

/// The process exit code: 1 when any error was found, else 0 (warnings alone pass).
pub fn exit_code(findings: &[Finding]) -> i32 {
    i32::from(findings.iter().any(|f| f.severity == Severity::Error))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MD: &str = r#"{"kind":"cincinnati-metadata-v0","version":"1.0.0","previous":[]}"#;
    const IS: &str = r#"{"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":"1.0.0"},"spec":{"tags":[{"name":"a","from":{"kind":"DockerImage","name":"r/a@sha256:00"}}]}}"#;
    const GOOD: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    include.release.openshift.io/self-managed-high-availability: \"true\"\n";

    fn files(extra: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        let mut base: Vec<(&str, &str)> =
            vec![("image-references", IS), ("release-metadata", MD), ("0000_50_x_01_good.yaml", GOOD)];
        for (n, c) in extra {
            match base.iter_mut().find(|(bn, _)| bn == n) {
                Some(slot) => slot.1 = c,
                None => base.push((n, c)),
            }
        }
        base.into_iter().filter(|(_, c)| !c.is_empty()).map(|(n, c)| (n.to_owned(), c.as_bytes().to_vec())).collect()
    }

    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code).collect()
    }

    #[test]
    fn each_check() {
        assert_eq!(codes(&lint(&files(&[]), Some(true))), Vec::<&str>::new());
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<bool>, &'a [&'a str]);
        let cases: &[Case<'_>] = &[
            (&[], Some(false), &["base-without-manifests"]),
            (&[("release-metadata", "")], None, &["missing-release-metadata"]),
            (&[("release-metadata", "{")], None, &["invalid-release-metadata"]),
            (&[("release-metadata", r#"{"kind":"x","version":"1.0.0"}"#)], None, &["metadata-kind"]),
            (&[("release-metadata", r#"{"kind":"cincinnati-metadata-v0","version":"1.0"}"#)], None, &["metadata-version"]),
            (
                &[("release-metadata", r#"{"kind":"cincinnati-metadata-v0","version":"1.0.0","metadata":{"a":1,"b":"x"}}"#)],
                None,
                &["metadata-value-not-string"],
            ),
            (&[("image-references", "")], None, &["missing-image-references"]),
            (&[("image-references", "kind: Foo")], None, &["invalid-image-references"]),
            (&[("release-metadata", r#"{"kind":"cincinnati-metadata-v0","version":"1.0.1"}"#)], None, &["version-mismatch"]),
            (
                &[("image-references", &IS.replace("r/a@sha256:00", "r/a:latest"))],
                None,
                &["unpinned-image"],
            ),
            (&[("0000_50_x_02.yaml", "a: [\n")], None, &["invalid-manifest"]),
            (&[("0000_50_x_02.yaml", "metadata:\n  name: a\n  annotations: {include.release.openshift.io/p: 'true'}\n")], None, &["missing-kind"]),
            (&[("0000_50_x_02.yaml", "kind: A\nmetadata:\n  annotations: {include.release.openshift.io/p: 'true'}\n")], None, &["missing-name"]),
            (&[("0000_50_x_02.yaml", &format!("{GOOD}---\n{GOOD}"))], None, &["duplicate-object"]),
            (&[("0000_50_x_02.yaml", "kind: A\nmetadata:\n  name: a\n")], None, &["no-annotations"]),
            (&[("0000_50_x_02.yaml", "kind: A\nmetadata:\n  name: a\n  annotations: {x: y}\n")], None, &["no-profile"]),
            (
                &[(
                    "0000_50_x_02.yaml",
                    &GOOD.replace("\"true\"\n", "\"true\"\n    release.openshift.io/feature-set: Default\n    release.openshift.io/feature-gate: A\n"),
                )],
                None,
                &["feature-set-and-gate"],
            ),
            (&[("02_config.yaml", GOOD)], None, &["run-level-name"]),
            // not manifests: neither parsed nor name-checked
            (&[("README.md", "a: [")], None, &[]),
        ];
        for (extra, base, want) in cases {
            let got = lint(&files(extra), *base);
            assert_eq!(codes(&got), *want, "{extra:?}");
            for code in codes(&got) {
                assert!(CODES.contains(&code), "{code} is listed");
            }
        }
    }

    #[test]
    fn exit_codes() {
        let w = Finding { severity: Severity::Warning, file: None, code: "no-profile", message: String::new() };
        let e = Finding { severity: Severity::Error, ..w.clone() };
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(std::slice::from_ref(&w)), 0);
        assert_eq!(exit_code(&[w, e]), 1);
    }
}
