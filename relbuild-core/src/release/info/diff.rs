//! Comparing two releases (`calculateDiff`) and rendering the comparison
//! as oc's `describeReleaseDiff` or as JSON.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::json::InfoJson;
use super::tabwriter::TabWriter;
use super::{Error, ReleaseInfo, annotation, digest_or_ref, short_human_duration};
use crate::release::imagestream::TagReference;
use crate::release::names::{ANNOTATION_COMMIT_ID, ANNOTATION_SOURCE_LOCATION};

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
