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

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde::{Deserialize, Serialize};

use super::config::DockerImageConfig;
use super::imagestream::{ImageStream, TagReference};
use super::names::{
    ANNOTATION_BUILD_VERSIONS, ANNOTATION_COMMIT_ID, ANNOTATION_SOURCE_LOCATION, ANNOTATION_VERSION_DISPLAY_NAMES,
    IMAGE_REFERENCES, RELEASE_METADATA,
};
use super::rewrite::{parse_component_versions, valid_version_key};
use crate::image::Digest;

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
}

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

/// Which column the `Images:` table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ImageColumns {
    /// `NAME DIGEST` (the default).
    #[default]
    Digest,
    /// `NAME PULL SPEC` (`--pullspecs`).
    PullSpec,
    /// `NAME REPO COMMIT` (`--commits`).
    Commits,
    /// `NAME URL` (`--commit-urls`).
    CommitUrls,
}

/// The human description (`describeReleaseInfo`), identical to oc's.
pub fn write_describe(out: &mut impl Write, info: &ReleaseInfo, columns: ImageColumns) -> Result<(), Error> {
    let mut w = TabWriter::new(1);
    w.line(&format!("Name:\t{}", info.preferred_name()));
    w.line(&format!("Digest:\t{}", info.list_digest.as_ref().unwrap_or(&info.digest)));
    let created = info
        .created()
        .map_or_else(|| info.config.as_ref().map_or_else(|| ZERO_TIME.to_owned(), |c| c.created.clone()), rfc3339_utc);
    w.line(&format!("Created:\t{created}"));
    w.line(&format!("OS/Arch:\t{}", info.platform()));
    w.line(&format!("Manifests:\t{}", info.manifest_files.len()));
    if !info.unknown_files.is_empty() {
        w.line(&format!("Metadata files:\t{}", info.unknown_files.len()));
    }
    w.line("");
    w.line(&format!("Pull From:\t{}", info.pull_from));
    if let Some(m) = &info.metadata {
        w.line("");
        w.line("Release Metadata:");
        w.line(&format!("  Version:\t{}", m.version));
        match m.previous.as_deref() {
            Some(p) if !p.is_empty() => w.line(&format!("  Upgrades:\t{}", sort_semantic_versions(p).join(", "))),
            _ => w.line("  Upgrades:\t<none>"),
        }
        let mut section = TabWriter::new(1);
        section.line("  Metadata:");
        for (k, v) in &m.metadata {
            let empty = match v {
                serde_json::Value::String(s) => s.is_empty(),
                serde_json::Value::Array(a) => a.is_empty(),
                serde_json::Value::Object(o) => o.is_empty(),
                _ => false,
            };
            if !empty {
                section.line(&format!("    {k}:\t{}", go_fmt_v(v)));
            }
        }
        w.raw(&section.finish());
    }
    let versions = &info.component_versions.versions;
    if !versions.is_empty() {
        w.line("");
        w.line("Component Versions:");
        for (k, v) in versions {
            w.line(&format!("  {k}\t{}\t{}", v.version, v.display_name));
        }
    }
    let mut section = TabWriter::new(1);
    section.line("");
    section.line("Images:");
    match columns {
        ImageColumns::CommitUrls => {
            section.line("  NAME\tURL\t");
            for (tag, _) in info.image_tags() {
                let url =
                    commit_url(annotation(tag, ANNOTATION_SOURCE_LOCATION), annotation(tag, ANNOTATION_COMMIT_ID));
                section.line(&format!("  {}\t{url}", tag.name));
            }
        }
        ImageColumns::Commits => {
            section.line("  NAME\tREPO\tCOMMIT\t");
            for (tag, _) in info.image_tags() {
                section.line(&format!(
                    "  {}\t{}\t{}",
                    tag.name,
                    annotation(tag, ANNOTATION_SOURCE_LOCATION),
                    annotation(tag, ANNOTATION_COMMIT_ID)
                ));
            }
        }
        ImageColumns::PullSpec => {
            section.line("  NAME\tPULL SPEC");
            for (tag, pullspec) in info.image_tags() {
                section.line(&format!("  {}\t{pullspec}", tag.name));
            }
        }
        ImageColumns::Digest => {
            section.line("  NAME\tDIGEST");
            for (tag, pullspec) in info.image_tags() {
                section.line(&format!("  {}\t{}", tag.name, digest_or_ref(pullspec)));
            }
        }
    }
    w.raw(&section.finish());
    if !info.warnings.is_empty() {
        let mut section = TabWriter::new(1);
        section.line("");
        section.line("Warnings:");
        for warning in &info.warnings {
            section.line(&format!("* {warning}"));
        }
        w.raw(&section.finish());
    }
    w.line("");
    out.write_all(w.finish().as_bytes())?;
    Ok(())
}

/// `--commit-urls`: a GitHub commit URL, else `<repo> <commit>`.
fn commit_url(location: &str, commit: &str) -> String {
    match source_location_host_path(location) {
        Some((host, path)) if host == "github.com" => format!("https://github.com{path}/commit/{commit}"),
        _ => format!("{location} {commit}"),
    }
}

/// `sourceLocationAsURL`: `user@host:path` (scp-like) or a URL → (host, path).
fn source_location_host_path(location: &str) -> Option<(String, String)> {
    if let Some((user, rest)) = location.split_once('@')
        && !user.is_empty()
        && user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && let Some((host, path)) = rest.split_once(':')
        && !host.is_empty()
        && !path.is_empty()
    {
        return Some((host.to_owned(), path.to_owned()));
    }
    let url = url::Url::parse(location).ok()?;
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str()?),
        None => url.host_str()?.to_owned(),
    };
    Some((host, url.path().to_owned()))
}

/// Go's `%v` for a decoded JSON value.
fn go_fmt_v(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "<nil>".to_owned(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            Some(f) => f.to_string(),
            None => n.to_string(),
        },
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => format!("[{}]", a.iter().map(go_fmt_v).collect::<Vec<_>>().join(" ")),
        serde_json::Value::Object(o) => {
            let sorted: BTreeMap<&String, &serde_json::Value> = o.iter().collect();
            let items: Vec<String> = sorted.into_iter().map(|(k, v)| format!("{k}:{}", go_fmt_v(v))).collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// `sortSemanticVersions`: semver order when all parse, else unchanged.
fn sort_semantic_versions(versions: &[String]) -> Vec<String> {
    let parsed: Result<Vec<semver::Version>, _> = versions.iter().map(|v| semver::Version::parse(v)).collect();
    match parsed {
        Ok(mut v) => {
            v.sort_by(|a, b| a.cmp_precedence(b));
            v.iter().map(ToString::to_string).collect()
        }
        Err(_) => versions.to_vec(),
    }
}

/// `--contents`: `image-references` and `release-metadata`, then the
/// manifests, each sorted by name under a `# <name>` header. Files that are
/// neither (READMEs) are not shown.
pub fn write_contents(out: &mut impl Write, info: &ReleaseInfo) -> Result<(), Error> {
    for (name, content) in info.raw_metadata.iter().chain(info.manifest_files.iter()) {
        writeln!(out, "# {name}")?;
        out.write_all(content)?;
        if !content.is_empty() && !content.ends_with(b"\n") {
            out.write_all(b"\n")?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct InfoJson<'a> {
    image: &'a str,
    digest: String,
    #[serde(rename = "contentDigest")]
    content_digest: String,
    #[serde(rename = "listDigest")]
    list_digest: String,
    config: Option<&'a DockerImageConfig>,
    metadata: Option<&'a ReleaseMetadata>,
    references: &'a ImageStream,
    versions: Option<()>,
    #[serde(rename = "displayVersions")]
    display_versions: Option<&'a BTreeMap<String, ComponentVersion>>,
    #[serde(rename = "versionsTags")]
    versions_tags: Option<&'a BTreeMap<String, String>>,
    images: Option<&'a BTreeMap<String, serde_json::Value>>,
    warnings: Option<&'a [String]>,
    /// Our addition (oc has no such key): a manifest-list release's
    /// per-platform digests; absent for a single image.
    #[serde(skip_serializing_if = "<[PlatformDigest]>::is_empty")]
    platforms: &'a [PlatformDigest],
}

fn non_empty<K, V>(m: &BTreeMap<K, V>) -> Option<&BTreeMap<K, V>> {
    (!m.is_empty()).then_some(m)
}

impl<'a> From<&'a ReleaseInfo> for InfoJson<'a> {
    fn from(info: &'a ReleaseInfo) -> Self {
        Self {
            image: &info.image,
            digest: info.digest.to_string(),
            content_digest: info.content_digest.to_string(),
            list_digest: info.list_digest.as_ref().map(ToString::to_string).unwrap_or_default(),
            config: info.config.as_ref(),
            metadata: info.metadata.as_ref(),
            references: &info.references,
            versions: None,
            display_versions: non_empty(&info.component_versions.versions),
            versions_tags: non_empty(&info.component_versions.tags),
            images: info.images.as_ref(),
            warnings: (!info.warnings.is_empty()).then_some(info.warnings.as_slice()),
            platforms: &info.platforms,
        }
    }
}

/// `--show-platforms` (our addition): one `<os/arch> <digest>` line per
/// image of a manifest-list release, in list order; for a single image, its
/// platform (from the config) and its manifest digest.
pub fn write_platforms(out: &mut impl Write, info: &ReleaseInfo) -> Result<(), Error> {
    if info.platforms.is_empty() {
        let (os, arch) = info.config.as_ref().map_or(("", ""), |c| (c.os.as_str(), c.architecture.as_str()));
        let os = if os.is_empty() { "unknown" } else { os };
        let arch = if arch.is_empty() { "unknown" } else { arch };
        writeln!(out, "{os}/{arch} {}", info.digest)?;
    }
    for p in &info.platforms {
        writeln!(out, "{} {}", p.platform, p.digest)?;
    }
    Ok(())
}

/// `-o json`: `json.MarshalIndent(info, "", "  ")` and a newline. For a
/// manifest-list release a `platforms` array (`[{"platform": "linux/amd64",
/// "digest": "sha256:…"}, …]`, our addition) follows oc's keys.
pub fn write_json(out: &mut impl Write, info: &ReleaseInfo) -> Result<(), Error> {
    let data = crate::image::gojson::to_vec_indent(&InfoJson::from(info), "  ")
        .map_err(|source| Error::Serialize { what: "release info", source })?;
    out.write_all(&data)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// `-o name`: one tag name a line, every tag.
pub fn write_names(out: &mut impl Write, info: &ReleaseInfo) -> Result<(), Error> {
    for tag in &info.references.spec.tags {
        writeln!(out, "{}", tag.name)?;
    }
    Ok(())
}

/// `-o pullspec`: one pullspec a line.
pub fn write_pullspecs(out: &mut impl Write, info: &ReleaseInfo) -> Result<(), Error> {
    for (_, pullspec) in info.image_tags() {
        writeln!(out, "{pullspec}")?;
    }
    Ok(())
}

/// `-o digest`: one digest a line. Tags that are not pinned by digest are
/// skipped and returned as messages (oc prints them as `error: …` on stderr
/// and carries on).
pub fn write_digests(out: &mut impl Write, info: &ReleaseInfo) -> Result<Vec<String>, Error> {
    let mut problems = Vec::new();
    for (tag, pullspec) in info.image_tags() {
        match pullspec.split_once('@') {
            Some((_, id)) if !id.is_empty() => writeln!(out, "{id}")?,
            _ => problems.push(format!("{} does not point to a digest", tag.name)),
        }
    }
    Ok(problems)
}

/// `--image-for=TAG`: the pullspec and a newline.
pub fn write_image_for(out: &mut impl Write, info: &ReleaseInfo, tag: &str) -> Result<(), Error> {
    writeln!(out, "{}", info.image_for(tag)?)?;
    Ok(())
}

/// `--verify`: `<digest> <image-references creationTimestamp> <name>` for a
/// release whose content verified.
pub fn write_verify_line(out: &mut impl Write, info: &ReleaseInfo) -> Result<(), Error> {
    let created = info
        .references
        .metadata
        .creation_timestamp
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or_else(|| ZERO_TIME.to_owned(), rfc3339_utc);
    writeln!(out, "{} {created} {}", info.digest, info.preferred_name())?;
    Ok(())
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

/// One component whose pullspec differs between two releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageDiff<'a> {
    /// The tag.
    pub name: &'a str,
    /// The tag in the older release (`None`: added).
    pub from: Option<&'a TagReference>,
    /// The tag in the newer release (`None`: removed).
    pub to: Option<&'a TagReference>,
}

/// One manifest file whose bytes differ between two releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestDiff<'a> {
    /// The file name.
    pub filename: &'a str,
    /// The bytes in the older release (`None`: added).
    pub from: Option<&'a [u8]>,
    /// The bytes in the newer release (`None`: removed).
    pub to: Option<&'a [u8]>,
}

/// `calculateDiff`: the images and manifests that differ.
#[derive(Debug, Clone)]
pub struct ReleaseDiff<'a> {
    /// The older release.
    pub from: &'a ReleaseInfo,
    /// The newer release.
    pub to: &'a ReleaseInfo,
    /// Tags added, removed, or whose pullspec changed, by name.
    pub changed_images: BTreeMap<&'a str, ImageDiff<'a>>,
    /// Manifests added, removed or changed, by name.
    pub changed_manifests: BTreeMap<&'a str, ManifestDiff<'a>>,
}

/// Compares two releases.
pub fn diff<'a>(from: &'a ReleaseInfo, to: &'a ReleaseInfo) -> ReleaseDiff<'a> {
    let mut changed_images: BTreeMap<&str, ImageDiff<'_>> = BTreeMap::new();
    for (tag, _) in from.image_tags() {
        changed_images.insert(&tag.name, ImageDiff { name: &tag.name, from: Some(tag), to: None });
    }
    for (tag, _) in to.image_tags() {
        changed_images.entry(&tag.name).or_insert(ImageDiff { name: &tag.name, from: None, to: None }).to = Some(tag);
    }
    changed_images.retain(|_, d| {
        match (d.from.and_then(|t| t.docker_pullspec()), d.to.and_then(|t| t.docker_pullspec())) {
            (Some(a), Some(b)) => a != b,
            _ => true,
        }
    });
    let mut changed_manifests: BTreeMap<&str, ManifestDiff<'_>> = BTreeMap::new();
    for (name, bytes) in &from.manifest_files {
        changed_manifests.insert(name, ManifestDiff { filename: name, from: Some(bytes), to: None });
    }
    for (name, bytes) in &to.manifest_files {
        changed_manifests.entry(name).or_insert(ManifestDiff { filename: name, from: None, to: None }).to = Some(bytes);
    }
    changed_manifests.retain(|_, d| d.from != d.to);
    ReleaseDiff { from, to, changed_images, changed_manifests }
}

impl ReleaseDiff<'_> {
    /// Manifest files only in the newer release.
    pub fn added_manifests(&self) -> Vec<&str> {
        self.changed_manifests.values().filter(|d| d.from.is_none()).map(|d| d.filename).collect()
    }

    /// Manifest files only in the older release.
    pub fn removed_manifests(&self) -> Vec<&str> {
        self.changed_manifests.values().filter(|d| d.to.is_none()).map(|d| d.filename).collect()
    }

    /// Manifest files in both releases with different bytes.
    pub fn modified_manifests(&self) -> Vec<&str> {
        self.changed_manifests.values().filter(|d| d.from.is_some() && d.to.is_some()).map(|d| d.filename).collect()
    }

    /// Tags only in the newer release.
    pub fn added_images(&self) -> Vec<&str> {
        self.changed_images.values().filter(|d| d.from.is_none()).map(|d| d.name).collect()
    }

    /// Tags only in the older release.
    pub fn removed_images(&self) -> Vec<&str> {
        self.changed_images.values().filter(|d| d.to.is_none()).map(|d| d.name).collect()
    }
}

/// Settings of [`write_diff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffOptions {
    /// `--commits`: show source changes instead of digests.
    pub commits: bool,
    /// Also list added, removed and changed manifest files (not in oc).
    pub manifests: bool,
    /// "Now", for the `Created:` ages.
    pub now: jiff::Timestamp,
}

/// The human comparison (`describeReleaseDiff`), identical to oc's when
/// `options.manifests` is false.
pub fn write_diff(out: &mut impl Write, diff: &ReleaseDiff<'_>, options: DiffOptions) -> Result<(), Error> {
    let (from, to) = (diff.from, diff.to);
    if from.digest == to.digest {
        out.write_all(b"Releases are identical\n")?;
        return Ok(());
    }
    let mut w = TabWriter::new(2);
    let age = |info: &ReleaseInfo| {
        let created = info.created().unwrap_or(jiff::Timestamp::MIN);
        short_human_duration(created, options.now)
    };
    w.line("\tFROM\tTO");
    w.line(&format!("Name:\t{}\t{}", from.preferred_name(), to.preferred_name()));
    w.line(&format!("Created:\t{}\t{}", age(from), age(to)));
    let (from_platform, to_platform) = (from.platform(), to.platform());
    if from_platform != to_platform {
        w.line(&format!("OS/Arch:\t{from_platform}\t{to_platform}"));
    }
    match (&from.metadata, &to.metadata) {
        (Some(f), Some(t)) => {
            w.line("");
            w.line(&format!("Version:\t{}\t{}", f.version, t.version));
            let upgrade = t.previous.as_deref().unwrap_or_default().contains(&f.version);
            w.line(&format!("Upgrade From:\t\t{}", if upgrade { "Yes" } else { "No" }));
        }
        (Some(_), None) => w.line("Has Release Metadata:\tYes\t"),
        (None, Some(_)) => w.line("Has Release Metadata:\t\tYes"),
        (None, None) => {}
    }
    if !diff.changed_images.is_empty() {
        let max = diff.changed_images.keys().map(|k| k.len()).max().unwrap_or(0);
        let justify = |s: &str| format!("{s}{}", " ".repeat(max.saturating_sub(s.len())));
        let both: Vec<(&TagReference, &TagReference)> =
            diff.changed_images.values().filter_map(|d| Some((d.from?, d.to?))).collect();
        let change_line = |f: &TagReference, t: &TagReference| {
            let (old, new) = (
                digest_or_ref(f.docker_pullspec().unwrap_or_default()),
                digest_or_ref(t.docker_pullspec().unwrap_or_default()),
            );
            if old == new {
                None
            } else if options.commits {
                Some(format!("  {}\t{}", justify(&t.name), git_diff_or_commit(f, t)))
            } else {
                Some(format!("  {}\t{old}\t{new}", justify(&t.name)))
            }
        };
        let mut section = TabWriter::new(1);
        let mut rebuilt = Vec::new();
        let mut count = 0;
        for &(f, t) in &both {
            if !code_changed(f, t) {
                rebuilt.push((f, t));
                continue;
            }
            if count == 0 {
                section.line("");
                section.line("Images Changed:");
            }
            count += 1;
            if let Some(line) = change_line(f, t) {
                section.line(&line);
            }
        }
        w.raw(&section.finish());
        if !rebuilt.is_empty() {
            let mut section = TabWriter::new(1);
            section.line("");
            section.line("Images Rebuilt:");
            for (f, t) in rebuilt {
                if let Some(line) = change_line(f, t) {
                    section.line(&line);
                }
            }
            w.raw(&section.finish());
        }
        let mut section = TabWriter::new(1);
        for (i, d) in diff.changed_images.values().filter(|d| d.from.is_none()).enumerate() {
            let Some(t) = d.to else { continue };
            if i == 0 {
                section.line("");
                section.line("Images Added:");
            }
            let what = if options.commits {
                repo_and_commit(t)
            } else {
                digest_or_ref(t.docker_pullspec().unwrap_or_default()).to_owned()
            };
            section.line(&format!("  {}\t{what}", justify(d.name)));
        }
        w.raw(&section.finish());
        let mut section = TabWriter::new(1);
        for (i, d) in diff.changed_images.values().filter(|d| d.to.is_none()).enumerate() {
            if i == 0 {
                section.line("");
                section.line("Images Removed:");
            }
            section.line(&format!("  {}", justify(d.name)));
        }
        w.raw(&section.finish());
    }
    if options.manifests {
        for (title, names) in [
            ("Manifests Added:", diff.added_manifests()),
            ("Manifests Removed:", diff.removed_manifests()),
            ("Manifests Changed:", diff.modified_manifests()),
        ] {
            if names.is_empty() {
                continue;
            }
            w.line("");
            w.line(title);
            for name in names {
                w.line(&format!("  {name}"));
            }
        }
    }
    w.line("");
    out.write_all(w.finish().as_bytes())?;
    Ok(())
}

fn code_changed(from: &TagReference, to: &TagReference) -> bool {
    let (old, new) = (annotation(from, ANNOTATION_COMMIT_ID), annotation(to, ANNOTATION_COMMIT_ID));
    !old.is_empty() && !new.is_empty() && old != new
}

const GITHUB_PREFIX: &str = "https://github.com/";

fn url_for_repo_and_commit(repo: &str, commit: &str) -> String {
    if repo.starts_with(GITHUB_PREFIX) {
        return format!("{}/commit/{commit}", repo.trim_end_matches('/'));
    }
    format!("{repo} {commit}")
}

fn url_for_repo_and_commit_range(repo: &str, from: &str, to: &str) -> String {
    if repo.starts_with(GITHUB_PREFIX) {
        return format!("{}/compare/{from}...{to}", repo.trim_end_matches('/'));
    }
    format!("{repo} {from} {to}")
}

fn repo_and_commit(tag: &TagReference) -> String {
    let (repo, commit) = (annotation(tag, ANNOTATION_SOURCE_LOCATION), annotation(tag, ANNOTATION_COMMIT_ID));
    if repo.is_empty() || commit.is_empty() {
        return "<unknown>".to_owned();
    }
    url_for_repo_and_commit(repo, commit)
}

fn git_diff_or_commit(from: &TagReference, to: &TagReference) -> String {
    let (old_repo, new_repo) =
        (annotation(from, ANNOTATION_SOURCE_LOCATION), annotation(to, ANNOTATION_SOURCE_LOCATION));
    let (old_commit, new_commit) = (annotation(from, ANNOTATION_COMMIT_ID), annotation(to, ANNOTATION_COMMIT_ID));
    if new_repo.is_empty() || new_commit.is_empty() {
        return "<unknown>".to_owned();
    }
    if old_repo == new_repo {
        if old_commit == new_commit {
            return url_for_repo_and_commit(new_repo, new_commit);
        }
        return url_for_repo_and_commit_range(new_repo, old_commit, new_commit);
    }
    if old_commit.is_empty() {
        return format!("{old_repo} <unknown> -> {}", url_for_repo_and_commit(new_repo, new_commit));
    }
    if old_commit == new_commit {
        return format!("{old_repo} -> {}", url_for_repo_and_commit(new_repo, new_commit));
    }
    format!("{} -> {}", url_for_repo_and_commit(old_repo, old_commit), url_for_repo_and_commit(new_repo, new_commit))
}

#[derive(Serialize)]
struct ImageDiffJson<'a> {
    name: &'a str,
    from: Option<&'a TagReference>,
    to: Option<&'a TagReference>,
}

#[derive(Serialize)]
struct ManifestDiffJson<'a> {
    filename: &'a str,
    /// Go encodes `[]byte` as base64, `nil` as `null`.
    from: Option<String>,
    to: Option<String>,
}

#[derive(Serialize)]
struct DiffJson<'a> {
    from: InfoJson<'a>,
    to: InfoJson<'a>,
    #[serde(rename = "changedImages")]
    changed_images: BTreeMap<&'a str, ImageDiffJson<'a>>,
    #[serde(rename = "changedManifests")]
    changed_manifests: BTreeMap<&'a str, ManifestDiffJson<'a>>,
    #[serde(rename = "addedImages")]
    added_images: Vec<&'a str>,
    #[serde(rename = "removedImages")]
    removed_images: Vec<&'a str>,
    #[serde(rename = "addedManifests")]
    added_manifests: Vec<&'a str>,
    #[serde(rename = "removedManifests")]
    removed_manifests: Vec<&'a str>,
    #[serde(rename = "modifiedManifests")]
    modified_manifests: Vec<&'a str>,
}

/// `-o json` of a comparison: oc's `ReleaseDiff` (`from`, `to`,
/// `changedImages`, `changedManifests` with base64 bytes) followed by
/// relbuild's `addedImages`, `removedImages`, `addedManifests`,
/// `removedManifests` and `modifiedManifests` name lists.
pub fn write_diff_json(out: &mut impl Write, diff: &ReleaseDiff<'_>) -> Result<(), Error> {
    use base64::Engine as _;
    let b64 = |b: Option<&[u8]>| b.map(|b| base64::engine::general_purpose::STANDARD.encode(b));
    let json = DiffJson {
        from: diff.from.into(),
        to: diff.to.into(),
        changed_images: diff
            .changed_images
            .iter()
            .map(|(k, d)| (*k, ImageDiffJson { name: d.name, from: d.from, to: d.to }))
            .collect(),
        changed_manifests: diff
            .changed_manifests
            .iter()
            .map(|(k, d)| (*k, ManifestDiffJson { filename: d.filename, from: b64(d.from), to: b64(d.to) }))
            .collect(),
        added_images: diff.added_images(),
        removed_images: diff.removed_images(),
        added_manifests: diff.added_manifests(),
        removed_manifests: diff.removed_manifests(),
        modified_manifests: diff.modified_manifests(),
    };
    let data = crate::image::gojson::to_vec_indent(&json, "  ")
        .map_err(|source| Error::Serialize { what: "release diff", source })?;
    out.write_all(&data)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// A port of Go's `text/tabwriter` as oc configures it
/// (`NewWriter(out, 0, 4, padding, ' ', 0)`): cells are tab-terminated,
/// a column block is a run of consecutive lines that have a cell in that
/// column, each cell is padded with spaces to the widest cell of its block
/// plus `padding`, and the last cell of a line is not part of any column.
/// Widths count runes, as Go does.
#[derive(Debug)]
struct TabWriter {
    padding: usize,
    text: String,
}

impl TabWriter {
    fn new(padding: usize) -> Self {
        Self { padding, text: String::new() }
    }

    /// Adds one line (a newline is appended).
    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    /// Adds already formatted text (from a nested writer).
    fn raw(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn finish(self) -> String {
        let lines: Vec<Vec<&str>> =
            self.text.split('\n').map(|l| if l.is_empty() { Vec::new() } else { l.split('\t').collect() }).collect();
        let mut out = String::with_capacity(self.text.len() * 2);
        let mut widths = Vec::new();
        self.format(&lines, &mut out, &mut widths, 0, lines.len());
        out
    }

    fn format(&self, lines: &[Vec<&str>], out: &mut String, widths: &mut Vec<usize>, line0: usize, line1: usize) {
        let column = widths.len();
        let mut line0 = line0;
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(lines, out, widths, line0, this);
            line0 = this;
            let mut width = 0;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].chars().count() + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(lines, out, widths, line0, this);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, out, widths, line0, line1);
    }

    fn write_lines(&self, lines: &[Vec<&str>], out: &mut String, widths: &[usize], line0: usize, line1: usize) {
        for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if let Some(&w) = widths.get(j) {
                    let n = w.saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', n));
                }
            }
            if i + 1 < lines.len() {
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwriter_like_go() {
        let mut w = TabWriter::new(1);
        w.line("Name:\t4.99.0");
        w.line("Metadata files:\t3");
        w.line("");
        w.line("  NAME\tREPO\tCOMMIT\t");
        w.line("  a\thttps://x\tc1");
        assert_eq!(
            w.finish(),
            "Name:           4.99.0\nMetadata files: 3\n\n  NAME REPO      COMMIT \n  a    https://x c1\n"
        );
        let mut w = TabWriter::new(2);
        w.line("\tFROM\tTO");
        w.line("Created:\t1y\t1y");
        assert_eq!(w.finish(), "          FROM  TO\nCreated:  1y    1y\n");
    }

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
    fn misc_helpers() {
        assert_eq!(pullspec_repository("h:5000/a/b:tag"), "h:5000/a/b");
        assert_eq!(pullspec_repository("h:5000/a/b@sha256:1"), "h:5000/a/b");
        assert_eq!(pullspec_repository("h:5000/a/b"), "h:5000/a/b");
        assert_eq!(commit_url("https://github.com/o/r", "c"), "https://github.com/o/r/commit/c");
        assert_eq!(commit_url("git@github.com:o/r", "c"), "https://github.como/r/commit/c");
        assert_eq!(commit_url("https://gitlab.com/o/r", "c"), "https://gitlab.com/o/r c");
        assert_eq!(commit_url("", ""), " ");
        assert_eq!(go_fmt_v(&serde_json::json!([1, "a", {"b": true}])), "[1 a map[b:true]]");
        assert_eq!(
            sort_semantic_versions(&["4.10.0".into(), "4.9.0".into(), "4.10.0-rc.1".into()]),
            ["4.9.0", "4.10.0-rc.1", "4.10.0"]
        );
        assert!(is_manifest_name("a.yaml") && is_manifest_name("b.yml") && is_manifest_name("c.json"));
        assert!(!is_manifest_name("README.md") && !is_manifest_name("yaml"));
    }
}

/// One image of a release as `--size` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSize {
    /// The release tag.
    pub tag: String,
    /// The image config's creation time, if it has one.
    pub created: Option<jiff::Timestamp>,
    /// The image's layers (digest and compressed size), base first.
    pub layers: Vec<(Digest, u64)>,
}

/// A layer that several images of the release share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLayer {
    /// `A`, `B`, … in order of first appearance (by tag, then layer order).
    pub label: String,
    /// The layer.
    pub digest: Digest,
    /// Its compressed size.
    pub size: u64,
    /// How many images use it.
    pub users: usize,
}

/// What `--size` reports: per image, its layers, size and the bytes only it
/// has; and the layers that images share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeReport {
    /// One row per image, sorted by tag.
    pub rows: Vec<SizeRow>,
    /// Shared layers, labelled.
    pub shared: Vec<SharedLayer>,
    /// The bytes a registry holds for the whole release (each layer once).
    pub total: u64,
}

/// One image row of a [`SizeReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeRow {
    /// The release tag.
    pub tag: String,
    /// The image creation time.
    pub created: Option<jiff::Timestamp>,
    /// Layer count.
    pub layers: usize,
    /// Sum of the compressed layer sizes.
    pub size: u64,
    /// Sum of the sizes of the layers no other image of the release has.
    pub unique: u64,
    /// Labels of its shared layers, in layer order.
    pub shared: Vec<String>,
}

fn layer_label(mut n: usize) -> String {
    // A … Z, then AA, AB …, like spreadsheet columns.
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("because the bytes are ASCII letters")
}

/// Computes the `--size` table. A layer counts once per image even if an
/// image lists it twice.
pub fn size_report(images: &[ImageSize]) -> SizeReport {
    let mut images: Vec<&ImageSize> = images.iter().collect();
    images.sort_by(|a, b| a.tag.cmp(&b.tag));
    let mut users: BTreeMap<&Digest, (usize, u64)> = BTreeMap::new();
    for img in &images {
        let mut seen = std::collections::BTreeSet::new();
        for (d, size) in &img.layers {
            if seen.insert(d) {
                users.entry(d).or_insert((0, *size)).0 += 1;
            }
        }
    }
    let mut labels: BTreeMap<&Digest, String> = BTreeMap::new();
    let mut shared = Vec::new();
    for img in &images {
        for (d, size) in &img.layers {
            let n = users.get(d).map_or(0, |u| u.0);
            if n > 1 && !labels.contains_key(d) {
                let label = layer_label(labels.len());
                labels.insert(d, label.clone());
                shared.push(SharedLayer { label, digest: d.clone(), size: *size, users: n });
            }
        }
    }
    let rows = images
        .iter()
        .map(|img| {
            let mut seen = std::collections::BTreeSet::new();
            let unique_layers: Vec<&(Digest, u64)> = img.layers.iter().filter(|(d, _)| seen.insert(d)).collect();
            SizeRow {
                tag: img.tag.clone(),
                created: img.created,
                layers: img.layers.len(),
                size: unique_layers.iter().map(|(_, s)| s).sum(),
                unique: unique_layers
                    .iter()
                    .filter(|(d, _)| users.get(d).is_some_and(|u| u.0 == 1))
                    .map(|(_, s)| s)
                    .sum(),
                shared: unique_layers.iter().filter_map(|(d, _)| labels.get(d).cloned()).collect(),
            }
        })
        .collect();
    SizeReport { rows, shared, total: users.values().map(|(_, s)| s).sum() }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_000_000.0)
}

/// Renders a [`SizeReport`]: an `Images:` table (`NAME AGE LAYERS SIZE MB
/// UNIQUE MB SHARED`), then the shared layers and the release total.
///
/// oc's `--size` prints the same quantities; relbuild has no golden output
/// of it, so column layout may differ from oc's in detail (here: aligned
/// like the other tables, sizes in decimal MB with one decimal, shared
/// layers labelled `A`, `B`, … and listed below the table).
pub fn write_size(out: &mut impl Write, report: &SizeReport, now: jiff::Timestamp) -> Result<(), Error> {
    let mut tw = TabWriter::new(2);
    tw.line("Images:");
    tw.line("  NAME\tAGE\tLAYERS\tSIZE MB\tUNIQUE MB\tSHARED");
    for r in &report.rows {
        let age = r.created.map_or_else(|| "<unknown>".to_owned(), |c| short_human_duration(c, now));
        tw.line(&format!(
            "  {}\t{}\t{}\t{}\t{}\t{}",
            r.tag,
            age,
            r.layers,
            megabytes(r.size),
            megabytes(r.unique),
            r.shared.join("+")
        ));
    }
    let mut text = tw.finish();
    if !report.shared.is_empty() {
        let mut tw = TabWriter::new(2);
        tw.line("Shared layers:");
        for s in &report.shared {
            tw.line(&format!("  {}\t{}\t{} MB\tused by {} images", s.label, s.digest, megabytes(s.size), s.users));
        }
        text.push('\n');
        text.push_str(&tw.finish());
    }
    text.push_str(&format!("\nTotal: {} MB in {} images\n", megabytes(report.total), report.rows.len()));
    out.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod size_tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::sha256(&[n])
    }

    #[test]
    fn shared_and_unique_accounting() {
        let base = (d(1), 100);
        let images = vec![
            ImageSize { tag: "b".into(), created: None, layers: vec![base.clone(), (d(2), 10)] },
            ImageSize { tag: "a".into(), created: None, layers: vec![base.clone(), (d(3), 20), (d(4), 5)] },
            ImageSize { tag: "c".into(), created: None, layers: vec![base.clone(), (d(4), 5), (d(4), 5)] },
        ];
        let r = size_report(&images);
        let tags: Vec<&str> = r.rows.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(tags, ["a", "b", "c"], "sorted by tag");
        let a = &r.rows[0];
        assert_eq!((a.layers, a.size, a.unique), (3, 125, 20));
        assert_eq!(a.shared, ["A", "B"], "base first, then the layer a shares with c");
        let b = &r.rows[1];
        assert_eq!((b.size, b.unique, b.shared.clone()), (110, 10, vec!["A".to_owned()]));
        let c = &r.rows[2];
        assert_eq!((c.layers, c.size, c.unique), (3, 105, 0), "a repeated layer counts once");
        assert_eq!(r.shared.iter().map(|s| (s.label.as_str(), s.users)).collect::<Vec<_>>(), [("A", 3), ("B", 2)]);
        assert_eq!(r.total, 100 + 10 + 20 + 5);
        for row in &r.rows {
            assert!(row.unique <= row.size);
        }
    }

    #[test]
    fn labels_go_past_z() {
        let got: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702].into_iter().map(layer_label).collect();
        assert_eq!(got, ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]);
    }

    #[test]
    fn renders_rows_and_total() {
        let now: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().expect("valid");
        let images = vec![
            ImageSize {
                tag: "x".into(),
                created: Some("2024-12-31T00:00:00Z".parse().expect("valid")),
                layers: vec![(d(1), 2_500_000)],
            },
            ImageSize { tag: "y".into(), created: None, layers: vec![(d(1), 2_500_000), (d(2), 1_000_000)] },
        ];
        let mut out = Vec::new();
        write_size(&mut out, &size_report(&images), now).expect("writes");
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            "Images:\n  NAME  AGE        LAYERS  SIZE MB  UNIQUE MB  SHARED\n  x     1d         1       2.5      0.0        A\n  y     <unknown>  2       3.5      1.0        A\n\nShared layers:\n  A  sha256:4bf5122f344554c53bde2ebb8cd2b7e3d1600ad631c385a5d7cce23c7785459a  2.5 MB  used by 2 images\n\nTotal: 3.5 MB in 2 images\n"
        );
    }
}
