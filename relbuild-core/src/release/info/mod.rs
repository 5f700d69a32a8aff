//! `relbuild info`: what a release image says about itself (spec §4.1), the
//! pure half of `oc adm release info`.
//!
//! [`ReleaseInfo::read`] takes what the registry side fetched (the pullspec
//! shown, the manifest/list digests, the config bytes and the files of the
//! last layer's `release-manifests/`) and classifies them as oc's
//! `LoadReleaseInfo` does. The renderers reproduce oc's output byte for
//! byte: the human description (`describeReleaseInfo`, laid out with a port
//! of Go's `text/tabwriter`), `--contents`, `-o json|name|pullspec|digest`,
//! `--image-for`, `--verify` and the two-release comparison
//! (`describeReleaseDiff`), to which relbuild adds the manifest files that
//! were added, removed or changed.
//!
//! `--size` and `--verify` need the component images too: [`image_sizes`]
//! and [`verify_images`] read them through the transfer engine
//! ([`ImageSource`](crate::transfer::ImageSource)), at most 16 at once.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the model: [`ReleaseInfo`], [`ReleaseImageData`], release metadata, component versions, [`Error`] |
//! | `describe.rs` | the human description, commit URLs, `--contents`, `--show-platforms`, `-o name\|pullspec\|digest`, `--image-for`, the `--verify` line |
//! | `json.rs` | `-o json` |
//! | `diff.rs` | the comparison of two releases ([`diff`]) and its text and JSON renderers |
//! | `size.rs` | `--size`: reading the images ([`image_sizes`]), [`size_report`], [`write_size`] |
//! | `verify.rs` | `--verify`: reading every image by its digest ([`verify_images`]) |
//! | `tabwriter.rs` | the port of Go's `text/tabwriter` |

mod describe;
mod diff;
mod json;
mod size;
mod tabwriter;
mod verify;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use self::describe::{
    ImageColumns, write_contents, write_describe, write_digests, write_image_for, write_names, write_platforms,
    write_pullspecs, write_verify_line,
};
pub use self::diff::{DiffOptions, ImageDiff, ManifestDiff, ReleaseDiff, diff, write_diff, write_diff_json};
pub use self::json::write_json;
pub use self::size::{ImageSize, SharedLayer, SizeReport, SizeRow, image_sizes, size_report, write_size};
pub use self::verify::{VerifyReport, verify_images};
use super::config::DockerImageConfig;
use super::imagestream::{ImageStream, TagReference};
use super::names::{ANNOTATION_BUILD_VERSIONS, ANNOTATION_VERSION_DISPLAY_NAMES, IMAGE_REFERENCES, RELEASE_METADATA};
use super::read;
use super::rewrite::{parse_component_versions, valid_version_key};
use crate::image::Digest;
use crate::transfer;

/// Components whose differing versions across images are expected (the
/// machine OS is versioned per image on purpose) and never warned about.
const VERSION_CONFLICT_EXEMPT: &[&str] = &["machine-os"];

/// Errors of `info`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The release has no `release-manifests/image-references`.
    #[error("release image did not contain an image-references file")]
    MissingImageReferences,
    /// `release-manifests/image-references` is not an `ImageStream`.
    #[error("release image could not be read: `release-manifests/image-references` is not a valid image stream")]
    ImageReferences {
        /// The parse error.
        #[source]
        source: Box<super::Error>,
    },
    /// `release-manifests/release-metadata` is not Cincinnati metadata JSON.
    #[error("release image could not be read: `release-manifests/release-metadata` is not valid release metadata")]
    ReleaseMetadata {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The release image config does not parse.
    #[error("release image could not be read: the image config is not valid")]
    Config {
        /// The parse error.
        #[source]
        source: Box<super::Error>,
    },
    /// `--image-for` with a tag the release does not have.
    #[error("no image tag {tag:?} exists in the release image {image}")]
    UnknownTag {
        /// The tag asked for.
        tag: String,
        /// The release pullspec.
        image: String,
    },
    /// Serialising our own output failed (a bug).
    #[error("could not serialise {what}")]
    Serialize {
        /// What was being serialised.
        what: &'static str,
        /// The serialiser error.
        #[source]
        source: serde_json::Error,
    },
    /// Writing the output failed.
    #[error("could not write the release information")]
    Write(#[from] std::io::Error),
    /// A component pullspec of `image-references` that is not an image reference.
    #[error("image `{tag}` has an invalid pullspec `{pullspec}`")]
    InvalidPullspec {
        /// The release tag.
        tag: String,
        /// Its pullspec.
        pullspec: String,
        /// The reference parser's error.
        #[source]
        source: crate::image::Error,
    },
    /// `--size`: a component image (its manifest, the platform's image of a
    /// manifest list, or its config) could not be read.
    #[error("reading image `{tag}`")]
    ReadImage {
        /// The release tag.
        tag: String,
        /// Its pullspec (the cause names it too).
        pullspec: String,
        /// What went wrong, e.g. [`read::Error::NoPlatform`] for a manifest
        /// list without the platform asked for.
        #[source]
        source: Box<read::Error>,
    },
    /// `--verify`: a component image named by tag, so there is no digest to
    /// check it against.
    #[error("image `{tag}` is not pinned by digest: `{pullspec}`")]
    NotPinned {
        /// The release tag.
        tag: String,
        /// Its pullspec.
        pullspec: String,
    },
    /// `--verify`: a component manifest that is missing, or whose content
    /// does not match the digest the release names.
    #[error("verifying image `{tag}`")]
    VerifyImage {
        /// The release tag.
        tag: String,
        /// Its pullspec (the cause names it, or the URL it was read from).
        pullspec: String,
        /// Why: not found, a digest mismatch, or the registry failed.
        #[source]
        source: Box<transfer::Error>,
    },
}

impl Error {
    /// The release tag and pullspec of the component image the error is
    /// about, if it is about one.
    pub fn image(&self) -> Option<(&str, &str)> {
        match self {
            Self::InvalidPullspec { tag, pullspec, .. }
            | Self::ReadImage { tag, pullspec, .. }
            | Self::NotPinned { tag, pullspec }
            | Self::VerifyImage { tag, pullspec, .. } => Some((tag, pullspec)),
            _ => None,
        }
    }

    /// True when a component image (or the platform's image of its manifest
    /// list) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::ReadImage { source, .. } => match &**source {
                read::Error::NoPlatform { .. } => true,
                read::Error::Source { source, .. } => source.is_not_found(),
                _ => false,
            },
            Self::VerifyImage { source, .. } => source.is_not_found(),
            _ => false,
        }
    }

    /// True when a component image's content does not match its digest.
    pub fn is_digest_mismatch(&self) -> bool {
        let transfer = match self {
            Self::ReadImage { source, .. } => match &**source {
                read::Error::Source { source, .. } => source,
                _ => return false,
            },
            Self::VerifyImage { source, .. } => source,
            _ => return false,
        };
        match transfer {
            transfer::Error::Registry(e) => e.is_digest_mismatch(),
            transfer::Error::Store(e) => e.is_corrupt(),
            _ => false,
        }
    }
}

/// How many component images `--size` and `--verify` read at once.
const CONCURRENT_IMAGES: usize = 16;

/// What the registry side hands over about one release image.
#[derive(Debug, Clone)]
pub struct ReleaseImageData {
    /// The pullspec as the user gave it (shown as `image` in JSON).
    pub image: String,
    /// The manifest digest of the (per-platform) release image.
    pub digest: Digest,
    /// The digest of the content as served, when it differs (schema1); else `digest`.
    pub content_digest: Option<Digest>,
    /// The manifest list digest when the pullspec named a list.
    pub list_digest: Option<Digest>,
    /// The image config bytes (empty when unknown).
    pub config: Vec<u8>,
    /// The files of `release-manifests/` in the last layer: name relative
    /// to `release-manifests/` → bytes, in tar order.
    pub files: Vec<(String, Vec<u8>)>,
    /// For a manifest-list release: every platform's image, in list order
    /// (empty for a single image).
    pub platforms: Vec<PlatformDigest>,
}

/// One image of a manifest-list release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformDigest {
    /// `os/architecture[/variant]`.
    pub platform: String,
    /// The per-platform manifest digest.
    pub digest: Digest,
}

/// `release-manifests/release-metadata` as read back (oc's info-side
/// `CincinnatiMetadata`: `metadata` is free-form JSON there).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReleaseMetadata {
    /// `cincinnati-metadata-v0`.
    #[serde(default)]
    pub kind: String,
    /// The release version.
    #[serde(default)]
    pub version: String,
    /// Versions that may upgrade to this one (`null` when absent, as Go's nil slice).
    #[serde(default)]
    pub previous: Option<Vec<String>>,
    /// Versions this one may upgrade to.
    #[serde(default, skip_serializing_if = "option_vec_is_empty")]
    pub next: Option<Vec<String>>,
    /// Free-form metadata; keys sorted as Go re-encodes a map.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "sorted_map")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

fn option_vec_is_empty(v: &Option<Vec<String>>) -> bool {
    v.as_ref().is_none_or(Vec::is_empty)
}

fn sorted_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, serde_json::Value>, D::Error> {
    let map: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(d)?;
    Ok(map.unwrap_or_default().into_iter().map(|(k, v)| (k, sort_value(v))).collect())
}

/// Sorts object keys recursively, as Go's `map[string]interface{}` re-encodes.
fn sort_value(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k, sort_value(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sort_value).collect()),
        other => other,
    }
}

/// One component version (`displayVersions` entry). The JSON keys are
/// capitalised because the Go struct has no json tags.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ComponentVersion {
    /// Semantic version without build metadata.
    #[serde(rename = "Version")]
    pub version: String,
    /// Human name, may be empty.
    #[serde(rename = "DisplayName")]
    pub display_name: String,
}

/// The merged component versions of a release.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComponentVersions {
    /// Component → version and display name.
    pub versions: BTreeMap<String, ComponentVersion>,
    /// Component → the (last, in tag order) tag that declared it.
    pub tags: BTreeMap<String, String>,
    /// Invalid annotations and conflicting declarations.
    pub warnings: Vec<String>,
}

/// `readComponentVersions`: merges every tag's `io.openshift.build.versions`
/// and `io.openshift.build.version-display-names`.
///
/// When tags disagree the lexically smallest version (and display name) wins
/// and a warning names the component, except for `machine-os`. `kubectl` is
/// only taken from the `cli` and `cli-artifacts` images. An invalid
/// annotation is a warning and contributes nothing.
pub fn component_versions(is: &ImageStream) -> ComponentVersions {
    let mut warnings = Vec::new();
    let mut combined: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut display: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut tags = BTreeMap::new();
    for tag in &is.spec.tags {
        let Some(annotations) = tag.annotations.as_ref() else { continue };
        let Some(label) = annotations.get(ANNOTATION_BUILD_VERSIONS) else { continue };
        let names = annotations.get(ANNOTATION_VERSION_DISPLAY_NAMES).map_or("", String::as_str);
        let all = match parse_component_versions_label(label, names) {
            Ok(all) => all,
            Err(e) => {
                warnings.push(format!("the referenced image {} had an invalid version annotation: {e}", tag.name));
                continue;
            }
        };
        for (k, v) in all {
            if k == "kubectl" && tag.name != "cli" && tag.name != "cli-artifacts" {
                continue;
            }
            combined.entry(k.clone()).or_default().insert(v.version);
            display.entry(k.clone()).or_default().insert(v.display_name);
            tags.insert(k, tag.name.clone());
        }
    }
    let mut multiples = BTreeSet::new();
    let mut versions = BTreeMap::new();
    for (k, set) in &combined {
        if set.len() > 1 {
            multiples.insert(k.as_str());
        }
        let version = set.first().cloned().unwrap_or_default();
        let names = &display[k];
        if names.len() > 1 {
            multiples.insert(k.as_str());
        }
        let display_name = names.first().cloned().unwrap_or_default();
        versions.insert(k.clone(), ComponentVersion { version, display_name });
    }
    multiples.retain(|k| !VERSION_CONFLICT_EXEMPT.contains(k));
    if !multiples.is_empty() {
        let list: Vec<&str> = multiples.into_iter().collect();
        warnings.push(format!(
            "multiple versions or display names reported for the following component(s): {}",
            list.join(",  ")
        ));
    }
    ComponentVersions { versions, tags, warnings }
}

fn valid_display_name(v: &str) -> bool {
    // `^[a-zA-Z0-9\-\:\s\(\)]+$`
    !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || "-:()".contains(c))
}

/// `parseComponentVersionsLabel(label, displayNames)`: `name=semver,…`
/// ([`parse_component_versions`]) plus optional `name=Display Name,…`.
pub fn parse_component_versions_label(
    label: &str,
    display_names: &str,
) -> Result<BTreeMap<String, ComponentVersion>, String> {
    let label = label.trim();
    let mut out = BTreeMap::new();
    if label.is_empty() {
        return Ok(out);
    }
    let mut names = BTreeMap::new();
    if !display_names.is_empty() {
        for pair in display_names.split(',') {
            let pair = pair.trim();
            let Some((k, v)) = pair.split_once('=') else {
                return Err(format!("the display name pair {pair:?} must be NAME=DISPLAYNAME"));
            };
            if k.len() < 2 {
                return Err(format!("the version name {k:?} must be at least 2 characters"));
            }
            if !valid_version_key(k.as_bytes()) {
                return Err(format!("the version name {k:?} must only be ASCII alphanumerics and internal hyphens"));
            }
            if !valid_display_name(v) {
                return Err(format!(
                    "the display name {v:?} must only be alphanumerics, spaces, and symbols in [():-]"
                ));
            }
            names.insert(k, v);
        }
    }
    for (k, version) in parse_component_versions(label)? {
        let display_name = names.get(k.as_str()).map(|s| (*s).to_owned()).unwrap_or_default();
        out.insert(k, ComponentVersion { version, display_name });
    }
    Ok(out)
}

/// A release image as `oc adm release info` sees it.
#[derive(Debug, Clone)]
pub struct ReleaseInfo {
    /// The pullspec as given.
    pub image: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Content digest (usually equal to `digest`).
    pub content_digest: Digest,
    /// Manifest list digest, when the pullspec named a list.
    pub list_digest: Option<Digest>,
    /// The image config (`None` when none was given).
    pub config: Option<DockerImageConfig>,
    /// `release-metadata`, when present.
    pub metadata: Option<ReleaseMetadata>,
    /// `image-references`.
    pub references: ImageStream,
    /// Component versions merged from the tags.
    pub component_versions: ComponentVersions,
    /// Per-image details fetched by the registry side (`--include-images`),
    /// serialised as given under `images`.
    pub images: Option<BTreeMap<String, serde_json::Value>>,
    /// `image-references` and `release-metadata` bytes, by name.
    pub raw_metadata: BTreeMap<String, Vec<u8>>,
    /// `*.yaml`, `*.yml` and `*.json` files, by name.
    pub manifest_files: BTreeMap<String, Vec<u8>>,
    /// Every other file name, in tar order.
    pub unknown_files: Vec<String>,
    /// Warnings (sorted), shown under `Warnings:` and in JSON.
    pub warnings: Vec<String>,
    /// The `Pull From:` line: `<repository>@<digest or list digest>` by
    /// default; a mirror or local serve may replace it.
    pub pull_from: String,
    /// For a manifest-list release, every platform's image (see
    /// [`write_platforms`]); empty for a single image.
    pub platforms: Vec<PlatformDigest>,
}

/// Whether a file name is loaded as a manifest (`hasManifestExtension`).
pub fn is_manifest_name(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    match base.rfind('.') {
        Some(i) => matches!(&base[i..], ".yaml" | ".yml" | ".json"),
        None => false,
    }
}

impl ReleaseInfo {
    /// Classifies the files of `release-manifests/` as oc's
    /// `LoadReleaseInfo` does.
    pub fn read(data: ReleaseImageData) -> Result<Self, Error> {
        let mut raw_metadata = BTreeMap::new();
        let mut manifest_files = BTreeMap::new();
        let mut unknown_files = Vec::new();
        let mut references = None;
        let mut metadata = None;
        for (name, bytes) in data.files {
            match name.as_str() {
                IMAGE_REFERENCES => {
                    let is = ImageStream::parse(&bytes, "release-manifests/image-references")
                        .map_err(|e| Error::ImageReferences { source: Box::new(e) })?;
                    references = Some(is);
                    raw_metadata.insert(name, bytes);
                }
                RELEASE_METADATA => {
                    let m: ReleaseMetadata =
                        serde_json::from_slice(&bytes).map_err(|source| Error::ReleaseMetadata { source })?;
                    metadata = Some(m);
                    raw_metadata.insert(name, bytes);
                }
                _ if is_manifest_name(&name) => {
                    manifest_files.insert(name, bytes);
                }
                _ => unknown_files.push(name),
            }
        }
        let references = references.ok_or(Error::MissingImageReferences)?;
        let config = if data.config.is_empty() {
            None
        } else {
            Some(DockerImageConfig::parse(&data.config).map_err(|e| Error::Config { source: Box::new(e) })?)
        };
        let component_versions = component_versions(&references);
        let mut warnings = component_versions.warnings.clone();
        warnings.sort();
        let shown = data.list_digest.as_ref().unwrap_or(&data.digest);
        let pull_from = format!("{}@{shown}", pullspec_repository(&data.image));
        Ok(Self {
            content_digest: data.content_digest.unwrap_or_else(|| data.digest.clone()),
            image: data.image,
            digest: data.digest,
            list_digest: data.list_digest,
            config,
            metadata,
            references,
            component_versions,
            images: None,
            raw_metadata,
            manifest_files,
            unknown_files,
            warnings,
            pull_from,
            platforms: data.platforms,
        })
    }

    /// `PreferredName`: the metadata version, else the image stream name.
    pub fn preferred_name(&self) -> &str {
        match &self.metadata {
            Some(m) => &m.version,
            None => &self.references.metadata.name,
        }
    }

    /// `linux/amd64`, or `multi (linux/amd64)` when read through a manifest list.
    pub fn platform(&self) -> String {
        let (os, arch) = self.config.as_ref().map_or(("", ""), |c| (c.os.as_str(), c.architecture.as_str()));
        let os = if os.is_empty() { "unknown" } else { os };
        let arch = if arch.is_empty() { "unknown" } else { arch };
        if self.list_digest.is_none() { format!("{os}/{arch}") } else { format!("multi ({os}/{arch})") }
    }

    /// The tags of `image-references` that point at a `DockerImage`, in order.
    pub fn image_tags(&self) -> impl Iterator<Item = (&TagReference, &str)> {
        self.references.spec.tags.iter().filter_map(|t| t.docker_pullspec().map(|p| (t, p)))
    }

    /// `--image-for=TAG`: the pullspec of one component.
    pub fn image_for(&self, tag: &str) -> Result<&str, Error> {
        self.references
            .spec
            .tags
            .iter()
            .filter(|t| t.name == tag)
            .find_map(|t| t.docker_pullspec().filter(|p| !p.is_empty()))
            .ok_or_else(|| Error::UnknownTag { tag: tag.to_owned(), image: self.image.clone() })
    }

    /// The config `created` time, if it parses.
    pub fn created(&self) -> Option<jiff::Timestamp> {
        self.config.as_ref().and_then(|c| c.created.parse().ok())
    }
}

/// The repository part of a pullspec (no tag, no digest).
fn pullspec_repository(pullspec: &str) -> &str {
    let name = pullspec.split_once('@').map_or(pullspec, |(n, _)| n);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

/// The `@digest` part of a pullspec, else the whole pullspec (`digestOrRef`).
fn digest_or_ref(pullspec: &str) -> &str {
    match pullspec.split_once('@') {
        Some((_, id)) if !id.is_empty() => id,
        _ => pullspec,
    }
}

fn annotation<'a>(tag: &'a TagReference, key: &str) -> &'a str {
    tag.annotations.as_ref().and_then(|a| a.get(key)).map_or("", String::as_str)
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn rfc3339_utc(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Go's `duration.ShortHumanDuration`: `5s`, `3m`, `4h`, `2d`, `1y`.
pub fn short_human_duration(from: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let nanos = now.as_nanosecond() - from.as_nanosecond();
    let seconds = nanos / 1_000_000_000;
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 24 {
        return format!("{hours}h");
    }
    if hours < 24 * 365 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_age() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().expect("timestamp");
        let base = t("2025-01-01T00:00:00Z");
        let cases = [
            ("2024-12-31T23:59:58Z", "<invalid>"),
            ("2024-12-31T23:59:59Z", "0s"),
            ("2025-01-01T00:00:00Z", "0s"),
            ("2025-01-01T00:00:59Z", "59s"),
            ("2025-01-01T00:01:00Z", "1m"),
            ("2025-01-01T00:59:59Z", "59m"),
            ("2025-01-01T01:00:00Z", "1h"),
            ("2025-01-01T23:59:59Z", "23h"),
            ("2025-01-02T00:00:00Z", "1d"),
            ("2025-12-31T23:59:59Z", "364d"),
            ("2026-01-01T00:00:00Z", "1y"),
            ("2027-01-01T00:00:00Z", "2y"),
        ];
        for (now, want) in cases {
            assert_eq!(short_human_duration(base, t(now)), want, "{now}");
        }
    }

    fn tag(name: &str, versions: Option<&str>, display: Option<&str>) -> TagReference {
        let mut a = BTreeMap::new();
        if let Some(v) = versions {
            a.insert(ANNOTATION_BUILD_VERSIONS.to_owned(), v.to_owned());
        }
        if let Some(d) = display {
            a.insert(ANNOTATION_VERSION_DISPLAY_NAMES.to_owned(), d.to_owned());
        }
        TagReference { annotations: Some(a), ..TagReference::docker_image(name, format!("r/{name}@sha256:00")) }
    }

    #[test]
    fn merging_component_versions() {
        struct Case {
            tags: Vec<TagReference>,
            versions: &'static [(&'static str, &'static str, &'static str)],
            tags_of: &'static [(&'static str, &'static str)],
            warnings: &'static [&'static str],
        }
        let cases = [
            Case {
                tags: vec![
                    tag("bar", Some("kubernetes=1.29.1"), Some("kubernetes=Kubernetes")),
                    tag("foo", Some("kubernetes=1.29.1+abc"), None),
                    tag("none", None, None),
                ],
                // as oc: a tag without display names contributes "", which
                // sorts first and counts as a conflict
                versions: &[("kubernetes", "1.29.1", "")],
                tags_of: &[("kubernetes", "foo")],
                warnings: &["multiple versions or display names reported for the following component(s): kubernetes"],
            },
            // An empty display-names annotation (what oc writes for an image
            // without the label) reads exactly as an absent one.
            Case {
                tags: vec![
                    tag("bar", Some("kubernetes=1.29.1"), Some("kubernetes=Kubernetes")),
                    tag("foo", Some("kubernetes=1.29.1+abc"), Some("")),
                    tag("none", None, Some("")),
                ],
                versions: &[("kubernetes", "1.29.1", "")],
                tags_of: &[("kubernetes", "foo")],
                warnings: &["multiple versions or display names reported for the following component(s): kubernetes"],
            },
            Case {
                tags: vec![tag("only", Some("kubernetes=1.29.1"), Some(""))],
                versions: &[("kubernetes", "1.29.1", "")],
                tags_of: &[("kubernetes", "only")],
                warnings: &[],
            },
            Case {
                tags: vec![
                    tag("bar", Some("kubernetes=1.29.1"), Some("kubernetes=Kubernetes")),
                    tag("foo", Some("kubernetes=1.29.1+abc"), Some("kubernetes=Kubernetes")),
                ],
                versions: &[("kubernetes", "1.29.1", "Kubernetes")],
                tags_of: &[("kubernetes", "foo")],
                warnings: &[],
            },
            Case {
                tags: vec![tag("a", Some("kubernetes=1.30.0"), None), tag("b", Some("kubernetes=1.29.1"), None)],
                versions: &[("kubernetes", "1.29.1", "")],
                tags_of: &[("kubernetes", "b")],
                warnings: &["multiple versions or display names reported for the following component(s): kubernetes"],
            },
            Case {
                tags: vec![
                    tag("a", Some("machine-os=1.0.0,kubernetes=1.0.0"), Some("kubernetes=K")),
                    tag("b", Some("machine-os=2.0.0,kubernetes=1.0.0"), Some("kubernetes=L")),
                ],
                versions: &[("kubernetes", "1.0.0", "K"), ("machine-os", "1.0.0", "")],
                tags_of: &[("kubernetes", "b"), ("machine-os", "b")],
                warnings: &["multiple versions or display names reported for the following component(s): kubernetes"],
            },
            Case {
                tags: vec![tag("x", Some("kubectl=1.0.0"), None), tag("cli", Some("kubectl=1.2.0"), None)],
                versions: &[("kubectl", "1.2.0", "")],
                tags_of: &[("kubectl", "cli")],
                warnings: &[],
            },
            Case {
                tags: vec![tag("bad", Some("k=1.0.0"), None), tag("worse", Some("kube=x"), None)],
                versions: &[],
                tags_of: &[],
                warnings: &[
                    "the referenced image bad had an invalid version annotation: the version name \"k\" must be at least 2 characters",
                    "the referenced image worse had an invalid version annotation: the version pair \"kube=x\" must have a valid semantic version: unexpected character 'x' while parsing major version number",
                ],
            },
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let mut is = ImageStream::default();
            is.spec.tags = case.tags;
            let got = component_versions(&is);
            let versions: Vec<(&str, &str, &str)> =
                got.versions.iter().map(|(k, v)| (k.as_str(), v.version.as_str(), v.display_name.as_str())).collect();
            assert_eq!(versions, case.versions, "case {i}");
            let tags: Vec<(&str, &str)> = got.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(tags, case.tags_of, "case {i}");
            assert_eq!(got.warnings, case.warnings, "case {i}");
        }
    }

    #[test]
    fn pullspec_helpers() {
        assert_eq!(pullspec_repository("h:5000/a/b:tag"), "h:5000/a/b");
        assert_eq!(pullspec_repository("h:5000/a/b@sha256:1"), "h:5000/a/b");
        assert_eq!(pullspec_repository("h:5000/a/b"), "h:5000/a/b");
        assert!(is_manifest_name("a.yaml") && is_manifest_name("b.yml") && is_manifest_name("c.json"));
        assert!(!is_manifest_name("README.md") && !is_manifest_name("yaml"));
    }
}
