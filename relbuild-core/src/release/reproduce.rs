//! Canonical rebuilds: which rewriting rules reproduce an input release's
//! payload, and, when none does, what differs.
//!
//! A `--from-release` build that changes nothing must give the input's
//! digest. Without `--rewrite`, [`new_release`](super::new_release) tries
//! the [`attempts`] in order and keeps the first whose payload tar has the
//! input's diff ID: relbuild's fixed rules (what relbuild builds), then oc's
//! rules (what oc builds), then oc's rules with every overridden operator
//! written twice (what oc builds when a mapping replaced an existing
//! operator, spec §1.2). When none reproduces it, the error lists the files
//! whose bytes differ ([`differences`]), each with what differs.

use std::collections::BTreeMap;

use super::names::{IMAGE_REFERENCES, RELEASE_METADATA};
use super::rewrite::RewriteMode;

/// One way of writing the payload that a canonical rebuild tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The rewriting rules.
    pub mode: RewriteMode,
    /// Operators whose tag carries `io.openshift.release.override: "true"`
    /// are written twice, as oc did when the mapping replaced an existing
    /// operator (only with [`RewriteMode::Oc`]).
    pub overrides_twice: bool,
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.mode, self.overrides_twice) {
            (RewriteMode::Fixed, _) => f.write_str("relbuild's fixed rewriting"),
            (RewriteMode::Oc, false) => f.write_str("oc's rewriting"),
            (RewriteMode::Oc, true) => f.write_str("oc's rewriting with overridden operators written twice"),
        }
    }
}

/// The attempts of a canonical rebuild, in order: `chosen` alone when the
/// user chose the rules, else fixed, oc, and (when some tag is an override)
/// oc with overrides twice.
pub fn attempts(chosen: Option<RewriteMode>, has_overrides: bool) -> Vec<Attempt> {
    match chosen {
        Some(mode) => vec![Attempt { mode, overrides_twice: false }],
        None => {
            let mut out = vec![
                Attempt { mode: RewriteMode::Fixed, overrides_twice: false },
                Attempt { mode: RewriteMode::Oc, overrides_twice: false },
            ];
            if has_overrides {
                out.push(Attempt { mode: RewriteMode::Oc, overrides_twice: true });
            }
            out
        }
    }
}

/// What differs in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DifferenceKind {
    /// The input has the file; the rebuild does not.
    MissingFromRebuild,
    /// The rebuild has the file; the input does not.
    NotInInput,
    /// A pullspec was rewritten differently (or not at all).
    Reference,
    /// A `0.0.1-snapshot` version substitution differs.
    Version,
    /// An annotation of `image-references` differs.
    Annotation,
    /// Some other part of `image-references` or `release-metadata`.
    Metadata,
    /// Any other byte.
    Content,
}

impl std::fmt::Display for DifferenceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::MissingFromRebuild => "missing from the rebuild",
            Self::NotInInput => "not in the input",
            Self::Reference => "a rewritten reference",
            Self::Version => "a version substitution",
            Self::Annotation => "an annotation",
            Self::Metadata => "the release metadata",
            Self::Content => "content",
        })
    }
}

/// One file of `release-manifests/` whose bytes differ between the input
/// and the rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDifference {
    /// The name under `release-manifests/`.
    pub name: String,
    /// What differs.
    pub kind: DifferenceKind,
    /// The first differing line (1-based), when both have the file.
    pub line: Option<usize>,
    /// That line in the input, trimmed and cut to 120 characters.
    pub input: Option<String>,
    /// That line in the rebuild, likewise.
    pub rebuild: Option<String>,
}

impl std::fmt::Display for FileDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` ({}", self.name, self.kind)?;
        if let (Some(line), Some(input), Some(rebuild)) = (self.line, &self.input, &self.rebuild) {
            write!(f, ", line {line}: input `{input}`, rebuild `{rebuild}`")?;
        }
        f.write_str(")")
    }
}

/// The files whose bytes differ, by name.
pub fn differences(input: &BTreeMap<String, Vec<u8>>, rebuild: &BTreeMap<String, Vec<u8>>) -> Vec<FileDifference> {
    let mut out = Vec::new();
    for (name, data) in input {
        match rebuild.get(name) {
            None => out.push(FileDifference {
                name: name.clone(),
                kind: DifferenceKind::MissingFromRebuild,
                line: None,
                input: None,
                rebuild: None,
            }),
            Some(ours) if ours != data => out.push(compare(name, data, ours)),
            Some(_) => {}
        }
    }
    for name in rebuild.keys().filter(|n| !input.contains_key(*n)) {
        out.push(FileDifference {
            name: name.clone(),
            kind: DifferenceKind::NotInInput,
            line: None,
            input: None,
            rebuild: None,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The first differing line of two versions of a file, classified.
fn compare(name: &str, input: &[u8], rebuild: &[u8]) -> FileDifference {
    let at = input.iter().zip(rebuild).position(|(a, b)| a != b).unwrap_or(input.len().min(rebuild.len()));
    let line_no = input[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let line_of = |data: &[u8]| {
        let start = data[..at.min(data.len())].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let end = data[start..].iter().position(|&b| b == b'\n').map_or(data.len(), |p| start + p);
        String::from_utf8_lossy(&data[start..end]).trim().to_owned()
    };
    let (a, b) = (line_of(input), line_of(rebuild));
    let kind = classify(name, &a, &b);
    let cut = |s: String| if s.chars().count() > 120 { s.chars().take(117).collect::<String>() + "…" } else { s };
    FileDifference { name: name.to_owned(), kind, line: Some(line_no), input: Some(cut(a)), rebuild: Some(cut(b)) }
}

fn classify(name: &str, input: &str, rebuild: &str) -> DifferenceKind {
    let either = |f: &dyn Fn(&str) -> bool| f(input) || f(rebuild);
    if name == IMAGE_REFERENCES {
        // An annotation line is `"key": "value"` with a dotted key.
        let annotation = |l: &str| l.starts_with("\"io.openshift.") || l.starts_with("\"release.openshift.io/");
        return if either(&annotation) { DifferenceKind::Annotation } else { DifferenceKind::Metadata };
    }
    if name == RELEASE_METADATA {
        return DifferenceKind::Metadata;
    }
    if either(&|l: &str| l.contains("0.0.1-snapshot")) {
        return DifferenceKind::Version;
    }
    let pullspec = |l: &str| l.contains("@sha256:") || l.split_whitespace().any(looks_like_pullspec);
    if either(&pullspec) { DifferenceKind::Reference } else { DifferenceKind::Content }
}

/// `host/path[:tag]` with a dotted or ported host: what a rewritten
/// reference looks like in a manifest line.
fn looks_like_pullspec(word: &str) -> bool {
    let word = word.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | '[' | ']' | '{' | '}' | '(' | ')' | ';'));
    let word = word.rsplit_once('=').map_or(word, |(_, v)| v);
    match word.split_once('/') {
        Some((host, rest)) => (host.contains('.') || host.contains(':')) && !rest.is_empty() && !rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs.iter().map(|(n, d)| ((*n).to_owned(), d.as_bytes().to_vec())).collect()
    }

    #[test]
    fn attempts_in_order() {
        let fixed = Attempt { mode: RewriteMode::Fixed, overrides_twice: false };
        let oc = Attempt { mode: RewriteMode::Oc, overrides_twice: false };
        let twice = Attempt { mode: RewriteMode::Oc, overrides_twice: true };
        assert_eq!(attempts(None, false), [fixed, oc]);
        assert_eq!(attempts(None, true), [fixed, oc, twice]);
        assert_eq!(attempts(Some(RewriteMode::Oc), true), [oc]);
        assert_eq!(attempts(Some(RewriteMode::Fixed), false), [fixed]);
    }

    #[test]
    fn differences_are_classified() {
        let input = files(&[
            ("image-references", "{\n  \"io.openshift.build.version-display-names\": \"\",\n  \"x\": 1\n}"),
            ("release-metadata", "{\"version\": \"1\"}"),
            ("0000_50_a_refs.yaml", "a: 1\nimage: quay.io/x/a:v1,\n"),
            ("0000_50_a_ver.yaml", "v: 0.0.1-snapshot-kubernetes\n"),
            ("0000_50_a_text.md", "hello\nworld\n"),
            ("0000_50_a_same.yaml", "same\n"),
            ("0000_50_a_gone.yaml", "x\n"),
        ]);
        let rebuild = files(&[
            ("image-references", "{\n  \"x\": 1\n}"),
            ("release-metadata", "{\"version\": \"2\"}"),
            ("0000_50_a_refs.yaml", "a: 1\nimage: reg.example:5000/r@sha256:00,\n"),
            ("0000_50_a_ver.yaml", "v: 1.29.1\n"),
            ("0000_50_a_text.md", "hello\nWorld\n"),
            ("0000_50_a_same.yaml", "same\n"),
            ("0000_50_a_new.yaml", "y\n"),
        ]);
        let got: Vec<(String, DifferenceKind, Option<usize>)> =
            differences(&input, &rebuild).into_iter().map(|d| (d.name, d.kind, d.line)).collect();
        let want = [
            ("0000_50_a_gone.yaml", DifferenceKind::MissingFromRebuild, None),
            ("0000_50_a_new.yaml", DifferenceKind::NotInInput, None),
            ("0000_50_a_refs.yaml", DifferenceKind::Reference, Some(2)),
            ("0000_50_a_text.md", DifferenceKind::Content, Some(2)),
            ("0000_50_a_ver.yaml", DifferenceKind::Version, Some(1)),
            ("image-references", DifferenceKind::Annotation, Some(2)),
            ("release-metadata", DifferenceKind::Metadata, Some(1)),
        ];
        let want: Vec<(String, DifferenceKind, Option<usize>)> =
            want.into_iter().map(|(n, k, l)| (n.to_owned(), k, l)).collect();
        assert_eq!(got, want);
        let d = differences(&input, &rebuild);
        let refs = d.iter().find(|d| d.name == "0000_50_a_refs.yaml").expect("refs");
        assert_eq!(
            refs.to_string(),
            "`0000_50_a_refs.yaml` (a rewritten reference, line 2: input `image: quay.io/x/a:v1,`, rebuild \
             `image: reg.example:5000/r@sha256:00,`)"
        );
        assert!(differences(&input, &input).is_empty());
    }

    #[test]
    fn pullspec_words() {
        for (w, want) in [
            ("quay.io/x/a:v1,", true),
            ("--img=quay.io/x/a", true),
            ("127.0.0.1:5000/ocp/x", true),
            ("https://quay.io/x", false),
            ("a/b", false),
            ("plain", false),
        ] {
            assert_eq!(looks_like_pullspec(w), want, "{w}");
        }
    }
}
