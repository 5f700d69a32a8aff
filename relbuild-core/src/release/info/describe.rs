//! The human renderings of one release: `describeReleaseInfo` (with its
//! `--pullspecs`, `--commits` and `--commit-urls` columns), `--contents`,
//! `--show-platforms`, `-o name|pullspec|digest`, `--image-for` and the
//! `--verify` line.

use std::collections::BTreeMap;
use std::io::Write;

use super::tabwriter::TabWriter;
use super::{Error, ReleaseInfo, ZERO_TIME, annotation, digest_or_ref, rfc3339_utc};
use crate::release::names::{ANNOTATION_COMMIT_ID, ANNOTATION_SOURCE_LOCATION};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_helpers() {
        assert_eq!(commit_url("https://github.com/o/r", "c"), "https://github.com/o/r/commit/c");
        assert_eq!(commit_url("git@github.com:o/r", "c"), "https://github.como/r/commit/c");
        assert_eq!(commit_url("https://gitlab.com/o/r", "c"), "https://gitlab.com/o/r c");
        assert_eq!(commit_url("", ""), " ");
        assert_eq!(go_fmt_v(&serde_json::json!([1, "a", {"b": true}])), "[1 a map[b:true]]");
        assert_eq!(
            sort_semantic_versions(&["4.10.0".into(), "4.9.0".into(), "4.10.0-rc.1".into()]),
            ["4.9.0", "4.10.0-rc.1", "4.10.0"]
        );
    }
}
