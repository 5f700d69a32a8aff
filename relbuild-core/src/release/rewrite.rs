//! Pullspec rewriting and `0.0.1-snapshot` substitution in operator
//! manifests (spec §2.3-2.5).
//!
//! oc builds one Go regexp per operator,
//! `([\W]|^)(REPO1|REPO2|…)(:[\w][\w.-]{0,127}|@<algo>:<hex>)?([\s"']|$)`,
//! and replaces each match with `prefix + target + terminator`. We do the
//! same with one Aho-Corasick automaton (leftmost-longest) over all source
//! pullspecs and a linear scan: a match must be preceded by a non-word ASCII
//! byte (any byte that is not `[0-9A-Za-z_]`) or the start of the text, may
//! be followed by a `:tag` or `@algo:hex` suffix (dropped, as oc does), and
//! must be followed by a terminator.
//!
//! [`RewriteMode::Oc`] reproduces oc exactly, including two bugs: the
//! terminators are only whitespace, `"`, `'` and end of text (so a ref
//! followed by `,` is left alone), and a terminator consumed by one match
//! cannot be the prefix of the next (so in `a:latest b:latest` only `a` is
//! replaced). [`RewriteMode::Fixed`] (the default) also accepts `,` `]` `}`
//! `)` `;` as terminators (flow sequences/maps in YAML, comma-separated flag
//! values, shell command lines) and lets one separator serve both neighbours.
//!
//! Where oc is nondeterministic (two sources where one is the other plus a
//! `:tag`, tried in Go map order), we deterministically prefer the longest
//! source that matches.

use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, MatchKind};

use super::{Error, ImageStream};

use super::names::ANNOTATION_BUILD_VERSIONS;

/// How pullspecs are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RewriteMode {
    /// Byte-for-byte what `oc adm release new` does, bugs included; also
    /// processes an override of an existing operator twice (see
    /// [`super::Operator::is_override`]).
    Oc,
    /// oc's rules with the terminator bugs fixed; overrides processed once.
    #[default]
    Fixed,
}

/// One entry of an operator's `image-references`: replace `source` with `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// The tag name in the operator's image-references.
    pub name: String,
    /// The literal pullspec searched for (`from.name`), may carry a tag.
    pub source: String,
    /// The release's pullspec for the tag of the same name.
    pub target: String,
}

/// Replaces source pullspecs by release pullspecs (`NewImageMapper`).
#[derive(Debug, Clone)]
pub struct ImageMapper {
    ac: Option<AhoCorasick>,
    targets: Vec<String>,
    /// For each pattern, the other patterns that are prefixes of it, longest
    /// first: the alternatives tried when the longest match fails.
    shorter: Vec<Vec<usize>>,
    lens: Vec<usize>,
    mode: RewriteMode,
}

impl ImageMapper {
    /// Builds the mapper. `operator` names the operator in errors. Fails
    /// when one source is given for two names (oc: "the source repository
    /// %q was defined more than once").
    pub fn new(operator: &str, references: &[ImageReference], mode: RewriteMode) -> Result<Self, Error> {
        let mut by_source: BTreeMap<&str, &str> = BTreeMap::new();
        for r in references {
            if r.source.is_empty() {
                return Err(Error::EmptyFromName { operator: operator.to_owned(), tag: r.name.clone() });
            }
            if let Some(first) = by_source.insert(&r.source, &r.name) {
                return Err(Error::DuplicateSource {
                    operator: operator.to_owned(),
                    source_repository: r.source.clone(),
                    first: first.to_owned(),
                    second: r.name.clone(),
                });
            }
        }
        if references.is_empty() {
            return Ok(Self { ac: None, targets: Vec::new(), shorter: Vec::new(), lens: Vec::new(), mode });
        }
        let sources: Vec<&str> = references.iter().map(|r| r.source.as_str()).collect();
        // A contiguous NFA: an operator names a handful of sources, and a DFA
        // costs more to build than it saves on a few KiB of manifests.
        let ac = AhoCorasick::builder()
            .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
            .match_kind(MatchKind::LeftmostLongest)
            .build(&sources)
            .expect("because a few hundred literal patterns always fit the automaton");
        let shorter = sources
            .iter()
            .map(|long| {
                let mut v: Vec<usize> = (0..sources.len())
                    .filter(|&j| sources[j].len() < long.len() && long.starts_with(sources[j]))
                    .collect();
                v.sort_by_key(|&j| std::cmp::Reverse(sources[j].len()));
                v
            })
            .collect();
        Ok(Self {
            ac: Some(ac),
            targets: references.iter().map(|r| r.target.clone()).collect(),
            shorter,
            lens: sources.iter().map(|s| s.len()).collect(),
            mode,
        })
    }

    /// Rewrites `data`. Linear in `data.len()` (times the number of sources
    /// that are prefixes of one another, in practice 1).
    pub fn rewrite(&self, data: &[u8]) -> Vec<u8> {
        let Some(ac) = &self.ac else { return data.to_vec() };
        let mut out = Vec::with_capacity(data.len() + data.len() / 8);
        let mut copied = 0; // data[..copied] is in `out`
        let mut pos = 0; // where the next match (prefix included) may start
        let mut search = 0; // where the automaton resumes
        while search < data.len() {
            let input = aho_corasick::Input::new(data).span(search..data.len());
            let Some(m) = ac.find(input) else { break };
            let s = m.start();
            let prefix_ok = s == 0 || (!is_word(data[s - 1]) && (self.mode == RewriteMode::Fixed || s > pos));
            let found = if prefix_ok {
                std::iter::once(m.pattern().as_usize())
                    .chain(self.shorter[m.pattern().as_usize()].iter().copied())
                    .find_map(|p| self.terminator_at(data, s + self.lens[p]).map(|q| (p, q)))
            } else {
                None
            };
            let Some((p, q)) = found else {
                search = s + 1;
                continue;
            };
            out.extend_from_slice(&data[copied..s]);
            out.extend_from_slice(self.targets[p].as_bytes());
            copied = q;
            pos = match self.mode {
                // the terminator belongs to the match: it cannot prefix the next
                RewriteMode::Oc => (q + 1).min(data.len()),
                RewriteMode::Fixed => q,
            };
            search = q.max(s + 1);
        }
        out.extend_from_slice(&data[copied..]);
        out
    }

    /// After a source ending at `at`: skips an optional suffix and returns the
    /// terminator's position when one follows (`data.len()` for end of text).
    fn terminator_at(&self, data: &[u8], at: usize) -> Option<usize> {
        let q = suffix_end(data, at).unwrap_or(at);
        (q == data.len() || self.is_terminator(data[q])).then_some(q)
    }

    fn is_terminator(&self, b: u8) -> bool {
        // Go's `\s` is `[\t\n\f\r ]`.
        matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ' | b'"' | b'\'')
            || (self.mode == RewriteMode::Fixed && matches!(b, b',' | b']' | b'}' | b')' | b';'))
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The end of `:[\w][\w.-]{0,127}` or
/// `@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{2,}`
/// starting at `at`. Greedy: no terminator is in these classes, so Go's
/// backtracking never finds a shorter successful suffix.
fn suffix_end(data: &[u8], at: usize) -> Option<usize> {
    match data.get(at)? {
        b':' => {
            let first = *data.get(at + 1)?;
            if !is_word(first) {
                return None;
            }
            let mut i = at + 2;
            while i < data.len() && i < at + 2 + 127 && (is_word(data[i]) || data[i] == b'.' || data[i] == b'-') {
                i += 1;
            }
            Some(i)
        }
        b'@' => {
            let mut i = at + 1;
            let alpha = |i: usize| data.get(i).is_some_and(u8::is_ascii_alphabetic);
            if !alpha(i) {
                return None;
            }
            loop {
                i += 1;
                while data.get(i).is_some_and(u8::is_ascii_alphanumeric) {
                    i += 1;
                }
                if matches!(data.get(i), Some(b'-' | b'_' | b'+' | b'.')) && alpha(i + 1) {
                    i += 1;
                    continue;
                }
                break;
            }
            if data.get(i) != Some(&b':') {
                return None;
            }
            let start = i + 1;
            let mut j = start;
            while data.get(j).is_some_and(u8::is_ascii_hexdigit) {
                j += 1;
            }
            (j - start >= 2).then_some(j)
        }
        _ => None,
    }
}

/// Why `0.0.1-snapshot-<component>` references could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VersionRefError {
    /// `0.0.1-snapshot-` with nothing after the dash.
    #[error("empty version references are not allowed")]
    Empty,
    /// Components no referenced image declares.
    #[error("{}", unknown_message(.0))]
    Unknown(Vec<String>),
    /// A component declared by more than one referenced image.
    #[error("the version for {key:?} is inconsistent across the referenced images: {}", .tags.join(", "))]
    Inconsistent {
        /// The component.
        key: String,
        /// The tags declaring it, sorted.
        tags: Vec<String>,
    },
}

fn unknown_message(keys: &[String]) -> String {
    match keys {
        [one] => format!("unknown version reference {one:?}"),
        many => format!("unknown version references: {}", many.join(", ")),
    }
}

/// `NewComponentVersionsMapper`: regex `(\W|^)0\.0\.1-snapshot([a-z0-9\-]*)`.
///
/// `0.0.1-snapshot` becomes the release name without build metadata (left
/// as is when the name is not semver); `0.0.1-snapshot-<key>` becomes
/// `versions[key]`; an unknown key, an empty key, or a key declared by more
/// than one referenced tag is an error.
#[derive(Debug, Clone)]
pub struct VersionMapper {
    release: Option<String>,
    versions: BTreeMap<String, String>,
    tags_by_name: BTreeMap<String, Vec<String>>,
}

/// oc's `(\W|^)0\.0\.1-snapshot([a-z0-9\-]*)`, ASCII like Go's. Compiled
/// once: building it per operator cost more than rewriting all its files.
static SNAPSHOT_RE: std::sync::LazyLock<regex::bytes::Regex> = std::sync::LazyLock::new(|| {
    regex::bytes::Regex::new(r"(?-u:(\W|^)0\.0\.1-snapshot([a-z0-9\-]*))")
        .expect("because the pattern is a valid constant")
});

impl VersionMapper {
    /// A mapper for `release_name` with a version table.
    pub fn new(
        release_name: &str,
        versions: BTreeMap<String, String>,
        tags_by_name: BTreeMap<String, Vec<String>>,
    ) -> Self {
        Self { release: super::metadata::snapshot_version(release_name), versions, tags_by_name }
    }

    /// `NewSimpleVersionsMapper`, for operators without image-references:
    /// an empty version table, so any `0.0.1-snapshot-<x>` is an error.
    pub fn simple(release_name: &str) -> Self {
        Self::new(release_name, BTreeMap::new(), BTreeMap::new())
    }

    /// Substitutes versions in `data`.
    pub fn apply(&self, data: &[u8]) -> Result<Vec<u8>, VersionRefError> {
        let mut out = Vec::with_capacity(data.len());
        let mut last = 0;
        let mut missing = Vec::new();
        let mut conflicts = Vec::new();
        for caps in SNAPSHOT_RE.captures_iter(data) {
            let (Some(all), Some(prefix), Some(key)) = (caps.get(0), caps.get(1), caps.get(2)) else {
                continue;
            };
            let key = key.as_bytes();
            let replacement = match (key, &self.release) {
                ([], Some(release)) => Some(release.as_str()),
                ([b'-', rest @ ..], _) => {
                    let k = String::from_utf8_lossy(rest).into_owned();
                    match self.versions.get(&k) {
                        None => {
                            missing.push(k);
                            None
                        }
                        Some(_) if self.tags_by_name.get(&k).is_some_and(|t| t.len() > 1) => {
                            conflicts.push(k);
                            None
                        }
                        Some(v) => Some(v.as_str()),
                    }
                }
                _ => None,
            };
            if let Some(r) = replacement {
                out.extend_from_slice(&data[last..prefix.end()]);
                out.extend_from_slice(r.as_bytes());
                last = all.end();
            }
        }
        out.extend_from_slice(&data[last..]);
        match missing.as_slice() {
            [] => {}
            [one] if one.is_empty() => return Err(VersionRefError::Empty),
            _ => return Err(VersionRefError::Unknown(missing)),
        }
        if let Some(key) = conflicts.into_iter().next() {
            let mut tags = self.tags_by_name.get(&key).cloned().unwrap_or_default();
            tags.sort();
            return Err(VersionRefError::Inconsistent { key, tags });
        }
        Ok(out)
    }
}

/// oc's `reAllowedVersionKey`: `^[a-z0-9]+[\-a-z0-9]*[a-z0-9]+$`.
pub(crate) fn valid_version_key(k: &[u8]) -> bool {
    k.len() >= 2
        && k.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && k[0] != b'-'
        && k[k.len() - 1] != b'-'
}

/// Parses `io.openshift.build.versions` (`parseComponentVersionsLabel`):
/// comma-separated `name=semver`, names `^[a-z0-9]+[\-a-z0-9]*[a-z0-9]+$`,
/// build metadata stripped.
pub fn parse_component_versions(label: &str) -> Result<BTreeMap<String, String>, String> {
    let label = label.trim();
    let mut out = BTreeMap::new();
    if label.is_empty() {
        return Ok(out);
    }
    for pair in label.split(',') {
        let pair = pair.trim();
        let Some((k, v)) = pair.split_once('=') else {
            return Err(format!("the version pair {pair:?} must be NAME=VERSION"));
        };
        // info.go's wording for a short key (image_mapper.go's regex alone
        // rejects it with the next message).
        if k.len() < 2 {
            return Err(format!("the version name {k:?} must be at least 2 characters"));
        }
        if !valid_version_key(k.as_bytes()) {
            return Err(format!("the version name {k:?} must only be ASCII alphanumerics and internal hyphens"));
        }
        let mut ver = semver::Version::parse(v)
            .map_err(|e| format!("the version pair {pair:?} must have a valid semantic version: {e}"))?;
        ver.build = semver::BuildMetadata::EMPTY;
        out.insert(k.to_owned(), ver.to_string());
    }
    Ok(out)
}

/// The transform oc applies to every file of one operator.
#[derive(Debug, Clone)]
pub struct OperatorTransform {
    images: Option<ImageMapper>,
    versions: VersionMapper,
}

impl OperatorTransform {
    /// For an operator without `image-references`: version substitution only.
    pub fn simple(release_name: &str) -> Self {
        Self { images: None, versions: VersionMapper::simple(release_name) }
    }

    /// `NewTransformFromImageStreamFile`: from the operator's
    /// `image-references` (YAML or JSON `ImageStream`) and the release
    /// image stream. With `allow_missing_images`, entries naming a tag the
    /// release lacks are skipped instead of failing.
    pub fn from_image_references(
        operator: &str,
        image_references: &[u8],
        release: &ImageStream,
        allow_missing_images: bool,
        mode: RewriteMode,
    ) -> Result<Self, Error> {
        let file = format!("{operator}/manifests/image-references");
        let is = ImageStream::parse(image_references, &file)?;
        // oc keys by tag name: a repeated name replaces the earlier entry.
        let mut refs: Vec<ImageReference> = Vec::new();
        for tag in &is.spec.tags {
            let Some(from) = tag.from.as_ref().filter(|f| f.kind == "DockerImage") else { continue };
            if from.name.is_empty() {
                return Err(Error::EmptyFromName { operator: operator.to_owned(), tag: tag.name.clone() });
            }
            let target =
                release.tag(&tag.name).and_then(|t| t.from.as_ref()).map(|f| f.name.clone()).unwrap_or_default();
            if target.is_empty() {
                if allow_missing_images {
                    continue;
                }
                return Err(Error::UnknownTag { operator: operator.to_owned(), tag: tag.name.clone() });
            }
            let r = ImageReference { name: tag.name.clone(), source: from.name.clone(), target };
            match refs.iter_mut().find(|e| e.name == r.name) {
                Some(e) => *e = r,
                None => refs.push(r),
            }
        }
        let images = ImageMapper::new(operator, &refs, mode)?;
        let (versions, tags_by_name) = version_table(operator, release, &refs)?;
        Ok(Self { images: Some(images), versions: VersionMapper::new(&release.metadata.name, versions, tags_by_name) })
    }

    /// Applies the transform to one file (`versionMapper(imageMapper(data))`).
    pub fn apply(&self, data: &[u8]) -> Result<Vec<u8>, VersionRefError> {
        match &self.images {
            Some(m) => self.versions.apply(&m.rewrite(data)),
            None => self.versions.apply(data),
        }
    }
}

type VersionTable = (BTreeMap<String, String>, BTreeMap<String, Vec<String>>);

/// The version table of one operator: the `io.openshift.build.versions`
/// annotations of the release tags its image-references names, in release
/// tag order. `kubectl` counts only from `cli`/`cli-artifacts`;
/// `machine-os` may have several values; any other key with two values is
/// an error. IS-level annotation values fill in missing keys.
fn version_table(operator: &str, release: &ImageStream, refs: &[ImageReference]) -> Result<VersionTable, Error> {
    let mut versions: BTreeMap<String, String> = BTreeMap::new();
    let mut tags_by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for tag in &release.spec.tags {
        if !refs.iter().any(|r| r.name == tag.name) {
            continue;
        }
        let Some(value) = tag.annotations.as_ref().and_then(|a| a.get(ANNOTATION_BUILD_VERSIONS)) else {
            continue;
        };
        let items = parse_component_versions(value).map_err(|reason| Error::InvalidVersionsAnnotation {
            operator: operator.to_owned(),
            tag: tag.name.clone(),
            value: value.clone(),
            reason,
        })?;
        for (k, v) in items {
            if k == "kubectl" && tag.name != "cli" && tag.name != "cli-artifacts" {
                continue;
            }
            match versions.get(&k) {
                Some(existing) if *existing != v && k != "machine-os" && k != "kubectl" => {
                    return Err(Error::ConflictingVersions(Box::new(super::VersionConflict {
                        operator: operator.to_owned(),
                        key: k.clone(),
                        tag: tag.name.clone(),
                        value: v,
                        existing: existing.clone(),
                        tags: tags_by_name.get(&k).cloned().unwrap_or_default(),
                    })));
                }
                Some(_) => {}
                None => {
                    versions.insert(k.clone(), v);
                }
            }
            tags_by_name.entry(k).or_default().push(tag.name.clone());
        }
    }
    if let Some(defaults) = release.metadata.annotations.get(ANNOTATION_BUILD_VERSIONS) {
        let defaults = parse_component_versions(defaults).map_err(|reason| Error::InvalidVersionsAnnotation {
            operator: operator.to_owned(),
            tag: String::new(),
            value: defaults.clone(),
            reason,
        })?;
        for (k, v) in defaults {
            versions.entry(k).or_insert(v);
        }
    }
    Ok((versions, tags_by_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper(mode: RewriteMode) -> ImageMapper {
        let refs = [
            ImageReference { name: "a".into(), source: "quay.io/x/a".into(), target: "reg/r@sha256:1".into() },
            ImageReference { name: "b".into(), source: "quay.io/x/b".into(), target: "reg/r@sha256:2".into() },
        ];
        ImageMapper::new("op", &refs, mode).expect("valid")
    }

    /// The probed table of spec §2.4 plus the golden edge cases:
    /// (input, oc output, fixed output).
    const TABLE: &[(&str, &str, &str)] = &[
        ("image: quay.io/x/a:latest\n", "image: reg/r@sha256:1\n", "image: reg/r@sha256:1\n"),
        ("x: \"quay.io/x/a:v1\"", "x: \"reg/r@sha256:1\"", "x: \"reg/r@sha256:1\""),
        ("x: quay.io/x/a:v1,", "x: quay.io/x/a:v1,", "x: reg/r@sha256:1,"),
        (
            "--img=quay.io/x/a@sha256:abcd,quay.io/x/b\n",
            "--img=quay.io/x/a@sha256:abcd,reg/r@sha256:2\n",
            "--img=reg/r@sha256:1,reg/r@sha256:2\n",
        ),
        ("quay.io/x/a:latest quay.io/x/b:latest", "reg/r@sha256:1 quay.io/x/b:latest", "reg/r@sha256:1 reg/r@sha256:2"),
        ("quay.io/x/a:latest  quay.io/x/b:latest", "reg/r@sha256:1  reg/r@sha256:2", "reg/r@sha256:1  reg/r@sha256:2"),
        ("x: quay.io/x/ab\n", "x: quay.io/x/ab\n", "x: quay.io/x/ab\n"),
        ("x: xquay.io/x/a\n", "x: xquay.io/x/a\n", "x: xquay.io/x/a\n"),
        ("u: https://quay.io/x/a/foo\n", "u: https://quay.io/x/a/foo\n", "u: https://quay.io/x/a/foo\n"),
        ("quay.io/x/a", "reg/r@sha256:1", "reg/r@sha256:1"),
        ("x: 'quay.io/x/a'", "x: 'reg/r@sha256:1'", "x: 'reg/r@sha256:1'"),
        ("[quay.io/x/a]", "[quay.io/x/a]", "[reg/r@sha256:1]"),
        ("x: quay.io/x/a@sha256:0", "x: quay.io/x/a@sha256:0", "x: quay.io/x/a@sha256:0"),
        ("x: quay.io/x/a:-bad\n", "x: quay.io/x/a:-bad\n", "x: quay.io/x/a:-bad\n"),
        ("é quay.io/x/a\n", "é reg/r@sha256:1\n", "é reg/r@sha256:1\n"),
    ];

    #[test]
    fn probed_table_both_modes() {
        let oc = mapper(RewriteMode::Oc);
        let fixed = mapper(RewriteMode::Fixed);
        for (input, want_oc, want_fixed) in TABLE {
            let got = String::from_utf8(oc.rewrite(input.as_bytes())).expect("utf8");
            assert_eq!(&got, want_oc, "oc: {input:?}");
            let got = String::from_utf8(fixed.rewrite(input.as_bytes())).expect("utf8");
            assert_eq!(&got, want_fixed, "fixed: {input:?}");
        }
    }

    #[test]
    fn shorter_source_when_longest_fails() {
        let refs = [
            ImageReference { name: "short".into(), source: "r/x".into(), target: "S".into() },
            ImageReference { name: "long".into(), source: "r/x:v1".into(), target: "L".into() },
        ];
        let m = ImageMapper::new("op", &refs, RewriteMode::Oc).expect("valid");
        assert_eq!(m.rewrite(b"a r/x:v1.2 b r/x:v1 c r/x"), b"a S b L c S");
    }

    #[test]
    fn mapper_errors() {
        let r = |n: &str, s: &str| ImageReference { name: n.into(), source: s.into(), target: "t".into() };
        let err = ImageMapper::new("op", &[r("a", "q/x"), r("b", "q/x")], RewriteMode::Oc).expect_err("dup");
        assert_eq!(
            err.to_string(),
            "operator \"op\" contained an invalid image-references file: the source repository \"q/x\" was defined more than once (for \"a\" and \"b\")"
        );
        assert!(ImageMapper::new("op", &[r("a", "")], RewriteMode::Oc).is_err());
    }

    #[test]
    fn version_table_probed() {
        let versions = BTreeMap::from([("kubernetes".to_owned(), "1.29.3".to_owned())]);
        let m = VersionMapper::new("4.99.0-rc.1+abc", versions.clone(), BTreeMap::new());
        let ok: &[(&str, &str)] = &[
            ("0.0.1-snapshot", "4.99.0-rc.1"),
            ("v: 0.0.1-snapshot-kubernetes\n", "v: 1.29.3\n"),
            ("0.0.1-snapshotx", "0.0.1-snapshotx"),
            ("v0.0.1-snapshot", "v0.0.1-snapshot"),
            ("x0.0.1-snapshot", "x0.0.1-snapshot"),
            ("\"0.0.1-snapshot\"", "\"4.99.0-rc.1\""),
        ];
        for (input, want) in ok {
            let got = m.apply(input.as_bytes()).expect(input);
            assert_eq!(String::from_utf8(got).expect("utf8"), *want, "{input}");
        }
        let err = |m: &VersionMapper, input: &str| m.apply(input.as_bytes()).expect_err(input).to_string();
        assert_eq!(err(&m, "0.0.1-snapshot-nope"), "unknown version reference \"nope\"");
        assert_eq!(err(&m, "0.0.1-snapshot-a 0.0.1-snapshot-b"), "unknown version references: a, b");
        assert_eq!(err(&m, "0.0.1-snapshot-"), "empty version references are not allowed");
        let tags = BTreeMap::from([("kubernetes".to_owned(), vec!["b".to_owned(), "a".to_owned()])]);
        let m2 = VersionMapper::new("4.99.0", versions, tags);
        assert_eq!(
            err(&m2, "0.0.1-snapshot-kubernetes"),
            "the version for \"kubernetes\" is inconsistent across the referenced images: a, b"
        );
        let not_semver = VersionMapper::simple("nope");
        assert_eq!(not_semver.apply(b"0.0.1-snapshot").expect("ok"), b"0.0.1-snapshot");
        assert!(VersionMapper::simple("1.0.0").apply(b" 0.0.1-snapshot-kubernetes").is_err());
    }

    #[test]
    fn component_versions_label() {
        let v = parse_component_versions(" kubernetes=1.29.1+build, machine-os=417.94.0 ").expect("valid");
        assert_eq!(v["kubernetes"], "1.29.1");
        assert_eq!(v["machine-os"], "417.94.0");
        assert!(parse_component_versions("k=1.0.0").is_err());
        assert!(parse_component_versions("kube").is_err());
        assert!(parse_component_versions("kube=1").is_err());
    }
}
