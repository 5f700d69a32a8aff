//! Digest mirrors: ImageDigestMirrorSet and ImageContentSourcePolicy files,
//! as `oc --idms-file`/`--icsp-file` read them.
//!
//! A rule maps a source (a registry, `*.registry` for any of its
//! subdomains, or a repository prefix) to the mirrors that hold its images
//! by digest. A reference matches the rule with the longest source that is
//! a prefix of `registry/repository` ending at a `/` boundary (or the
//! whole name), as containers/image does; rules with the same source are
//! merged, mirrors in file order. A reference by digest is read from the
//! mirrors in order, then from the source unless a rule says
//! `mirrorSourcePolicy: NeverContactSource`. A reference by tag is read
//! from its source only (digest mirrors hold no tags), and is refused when
//! the source may not be contacted.
//!
//! The [`Client`](super::Client) routes through these rules: manifests by
//! digest and every blob (blobs are named by digest), remembering per
//! source repository which location served it, so the rest of an image's
//! reads go there first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::error::Error;
use crate::image::Reference;

/// Which kind of file a rule came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MirrorFileKind {
    /// `config.openshift.io/v1` `ImageDigestMirrorSet` (`spec.imageDigestMirrors`).
    Idms,
    /// `operator.openshift.io/v1alpha1` `ImageContentSourcePolicy` (`spec.repositoryDigestMirrors`).
    Icsp,
}

impl MirrorFileKind {
    fn kind(self) -> &'static str {
        match self {
            Self::Idms => "ImageDigestMirrorSet",
            Self::Icsp => "ImageContentSourcePolicy",
        }
    }
}

/// One source and its mirrors, merged over every document that names the source.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    source: String,
    mirrors: Vec<String>,
    never_contact_source: bool,
    /// The file the rule (its first document) came from, for messages.
    file: PathBuf,
}

/// Digest mirror rules read from IDMS and ICSP files. Empty by default: every
/// reference is read from its source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MirrorRules {
    rules: Vec<Rule>,
}

/// Where a reference is read from: the repositories to try, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routes {
    /// Repositories (no tag or digest) to try, in order; the source's own
    /// repository is last unless the source may not be contacted.
    pub repositories: Vec<Reference>,
    /// The rule's file when the source is excluded by `NeverContactSource`.
    pub source_blocked_by: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    items: Vec<Doc>,
    #[serde(default)]
    spec: Spec,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    image_digest_mirrors: Vec<Entry>,
    #[serde(default)]
    repository_digest_mirrors: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    source: String,
    #[serde(default)]
    mirrors: Vec<String>,
    #[serde(default)]
    mirror_source_policy: Option<String>,
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::MirrorFile { path: path.to_owned(), reason: reason.into() }
}

/// Checks a source or mirror: `host[:port][/path]`, or `*.domain` for a source.
fn check_location(path: &Path, what: &str, value: &str, wildcard_ok: bool) -> Result<(), Error> {
    let bare = match value.strip_prefix("*.") {
        Some(rest) if wildcard_ok => {
            if rest.contains('/') {
                return Err(invalid(path, format!("{what} `{value}`: a wildcard source names a domain only")));
            }
            rest
        }
        _ => value,
    };
    let (host, repo) = bare.split_once('/').unwrap_or((bare, ""));
    let well_formed = !host.is_empty()
        && !bare.ends_with('/')
        && !value.contains(['@', ' '])
        && !repo.contains(':')
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !well_formed {
        return Err(invalid(path, format!("{what} `{value}` is not `host[:port][/repository]`")));
    }
    if !repo.is_empty() && format!("{bare}:x").parse::<Reference>().is_err() {
        return Err(invalid(path, format!("{what} `{value}` is not a valid repository")));
    }
    Ok(())
}

impl MirrorRules {
    /// No rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Reads an `ImageDigestMirrorSet` (`--idms-file`) or
    /// `ImageContentSourcePolicy` (`--icsp-file`) file and adds its rules.
    /// The file may hold several documents, or a `kind: List` of them.
    pub fn add_file(&mut self, kind: MirrorFileKind, path: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile { path: path.to_owned(), source })?;
        self.add_yaml(kind, path, &text)
    }

    /// [`MirrorRules::add_file`] of text already read; `path` names it in errors.
    pub fn add_yaml(&mut self, kind: MirrorFileKind, path: &Path, text: &str) -> Result<(), Error> {
        let docs: Vec<Doc> = serde_saphyr::from_multiple(text).map_err(|e| invalid(path, e.to_string()))?;
        let mut found = 0;
        for doc in docs.iter().flat_map(|d| if d.kind == "List" { d.items.iter().collect() } else { vec![d] }) {
            if doc.kind != kind.kind() {
                let other = if kind == MirrorFileKind::Idms { "--icsp-file" } else { "--idms-file" };
                return Err(invalid(
                    path,
                    format!(
                        "a document has kind `{}`, not `{}`{}",
                        doc.kind,
                        kind.kind(),
                        if doc.kind == MirrorFileKind::Idms.kind() || doc.kind == MirrorFileKind::Icsp.kind() {
                            format!(" (pass it with `{other}`)")
                        } else {
                            String::new()
                        }
                    ),
                ));
            }
            let entries = match kind {
                MirrorFileKind::Idms => &doc.spec.image_digest_mirrors,
                MirrorFileKind::Icsp => &doc.spec.repository_digest_mirrors,
            };
            for e in entries {
                self.add_entry(kind, path, e)?;
                found += 1;
            }
        }
        if found == 0 {
            let field = match kind {
                MirrorFileKind::Idms => "spec.imageDigestMirrors",
                MirrorFileKind::Icsp => "spec.repositoryDigestMirrors",
            };
            return Err(invalid(path, format!("no `{}` with entries in `{field}`", kind.kind())));
        }
        Ok(())
    }

    fn add_entry(&mut self, kind: MirrorFileKind, path: &Path, e: &Entry) -> Result<(), Error> {
        check_location(path, "source", &e.source, kind == MirrorFileKind::Idms)?;
        for m in &e.mirrors {
            check_location(path, &format!("mirror of `{}`", e.source), m, false)?;
        }
        let never = match (kind, e.mirror_source_policy.as_deref()) {
            (_, None | Some("")) => false,
            (MirrorFileKind::Idms, Some("AllowContactingSource")) => false,
            (MirrorFileKind::Idms, Some("NeverContactSource")) => true,
            (_, Some(other)) => {
                return Err(invalid(
                    path,
                    format!(
                        "mirrorSourcePolicy `{other}` of `{}`: use `AllowContactingSource` or `NeverContactSource` (ImageDigestMirrorSet only)",
                        e.source
                    ),
                ));
            }
        };
        if never && e.mirrors.is_empty() {
            return Err(invalid(path, format!("`{}` has NeverContactSource and no mirrors", e.source)));
        }
        match self.rules.iter_mut().find(|r| r.source == e.source) {
            Some(r) => {
                for m in &e.mirrors {
                    if !r.mirrors.contains(m) {
                        r.mirrors.push(m.clone());
                    }
                }
                r.never_contact_source |= never;
            }
            None => self.rules.push(Rule {
                source: e.source.clone(),
                mirrors: e.mirrors.clone(),
                never_contact_source: never,
                file: path.to_owned(),
            }),
        }
        Ok(())
    }

    /// The rule for `name` (`registry/repository`): the longest matching source.
    fn rule_for(&self, name: &str) -> Option<&Rule> {
        let (host, _) = name.split_once('/').unwrap_or((name, ""));
        self.rules
            .iter()
            .filter(|r| match r.source.strip_prefix("*.") {
                Some(domain) => {
                    host.len() > domain.len() + 1
                        && host.ends_with(domain)
                        && host[..host.len() - domain.len()].ends_with('.')
                }
                None => {
                    name.strip_prefix(r.source.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                }
            })
            .max_by_key(|r| if r.source.starts_with("*.") { 0 } else { r.source.len() })
    }

    /// The repositories to read content of `repo` by digest from, in order.
    pub fn routes(&self, repo: &Reference) -> Routes {
        let source = Reference::new(repo.registry(), repo.repository(), None, None).unwrap_or_else(|_| repo.clone());
        let name = source.name();
        let Some(rule) = self.rule_for(&name) else {
            return Routes { repositories: vec![source], source_blocked_by: None };
        };
        // The part of the name after the source: all of it for a wildcard
        // (whose mirror stands for the host), else the rest of the path.
        let rest = match rule.source.strip_prefix("*.") {
            Some(_) => name.split_once('/').map_or("", |(_, r)| r).to_owned(),
            None => name[rule.source.len()..].trim_start_matches('/').to_owned(),
        };
        let mut repositories: Vec<Reference> = rule
            .mirrors
            .iter()
            .filter_map(|m| {
                let full = if rest.is_empty() { m.clone() } else { format!("{m}/{rest}") };
                full.parse::<Reference>().ok().filter(|r| r.tag().is_none() && r.digest().is_none())
            })
            .filter(|m| *m != source)
            .collect();
        let source_blocked_by = if rule.never_contact_source {
            Some(rule.file.clone())
        } else {
            repositories.push(source);
            None
        };
        Routes { repositories, source_blocked_by }
    }
}

/// The rules of a client with the location that last served each source
/// repository, so later reads go there first.
#[derive(Debug, Default)]
pub(crate) struct Router {
    rules: MirrorRules,
    served: Mutex<HashMap<String, Reference>>,
}

impl Router {
    pub(crate) fn new(rules: MirrorRules) -> Arc<Self> {
        Arc::new(Self { rules, served: Mutex::new(HashMap::new()) })
    }

    /// True when there are rules to route by.
    pub(crate) fn is_active(&self) -> bool {
        !self.rules.is_empty()
    }

    /// [`MirrorRules::routes`], with the location that served `repo` last first.
    pub(crate) fn routes(&self, repo: &Reference) -> Routes {
        let mut routes = self.rules.routes(repo);
        let served = self.served.lock().expect("because no holder panics").get(&repo.name()).cloned();
        if let Some(s) = served
            && let Some(i) = routes.repositories.iter().position(|r| *r == s)
        {
            let first = routes.repositories.remove(i);
            routes.repositories.insert(0, first);
        }
        routes
    }

    /// Remembers that `served_by` served content of `repo`.
    pub(crate) fn remember(&self, repo: &Reference, served_by: &Reference) {
        if self.is_active() {
            self.served.lock().expect("because no holder panics").insert(repo.name(), served_by.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(kind: MirrorFileKind, yaml: &str) -> MirrorRules {
        let mut r = MirrorRules::new();
        r.add_yaml(kind, Path::new("m.yaml"), yaml).expect("valid");
        r
    }

    fn names(r: &Routes) -> Vec<String> {
        r.repositories.iter().map(Reference::to_string).collect()
    }

    const IDMS: &str = "apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
  name: a
spec:
  imageDigestMirrors:
  - mirrors:
    - mirror.local:5000/ocp/release
    - backup.local/ocp/release
    source: quay.io/openshift-release-dev/ocp-release
  - mirrors:
    - mirror.local:5000/ocp/v4
    source: quay.io/openshift-release-dev
  - mirrors:
    - mirror.local:5000/rh
    source: '*.redhat.io'
    mirrorSourcePolicy: NeverContactSource
---
apiVersion: config.openshift.io/v1
kind: ImageDigestMirrorSet
metadata:
  name: b
spec:
  imageDigestMirrors:
  - mirrors:
    - third.local/release
    source: quay.io/openshift-release-dev/ocp-release
";

    #[test]
    fn longest_source_at_a_path_boundary_wins_and_documents_merge() {
        let r = rules(MirrorFileKind::Idms, IDMS);
        let routes = r.routes(&"quay.io/openshift-release-dev/ocp-release:4.15".parse().expect("valid"));
        assert_eq!(
            names(&routes),
            [
                "mirror.local:5000/ocp/release",
                "backup.local/ocp/release",
                "third.local/release",
                "quay.io/openshift-release-dev/ocp-release"
            ]
        );
        assert_eq!(routes.source_blocked_by, None);
        let routes = r.routes(&"quay.io/openshift-release-dev/ocp-v4.0-art-dev".parse().expect("valid"));
        assert_eq!(
            names(&routes),
            ["mirror.local:5000/ocp/v4/ocp-v4.0-art-dev", "quay.io/openshift-release-dev/ocp-v4.0-art-dev"]
        );
        // `ocp-release-nightly` starts with the source's text but not at a `/`.
        let routes = r.routes(&"quay.io/openshift-release-dev/ocp-release-nightly".parse().expect("valid"));
        assert_eq!(names(&routes)[0], "mirror.local:5000/ocp/v4/ocp-release-nightly");
        let routes = r.routes(&"quay.io/other/x".parse().expect("valid"));
        assert_eq!(names(&routes), ["quay.io/other/x"]);
    }

    #[test]
    fn a_wildcard_source_maps_subdomains_and_never_contact_drops_the_source() {
        let r = rules(MirrorFileKind::Idms, IDMS);
        let routes = r.routes(&"registry.redhat.io/ubi9/ubi".parse().expect("valid"));
        assert_eq!(names(&routes), ["mirror.local:5000/rh/ubi9/ubi"]);
        assert_eq!(routes.source_blocked_by.as_deref(), Some(Path::new("m.yaml")));
        assert_eq!(names(&r.routes(&"redhat.io/x".parse().expect("valid"))), ["redhat.io/x"]);
        assert_eq!(names(&r.routes(&"evilredhat.io/x".parse().expect("valid"))), ["evilredhat.io/x"]);
    }

    #[test]
    fn icsp_and_lists_are_read() {
        let yaml = "apiVersion: v1
kind: List
items:
- apiVersion: operator.openshift.io/v1alpha1
  kind: ImageContentSourcePolicy
  metadata:
    name: example
  spec:
    repositoryDigestMirrors:
    - mirrors:
      - m.local/release
      source: quay.io/openshift-release-dev/ocp-release
";
        let r = rules(MirrorFileKind::Icsp, yaml);
        let routes = r.routes(&"quay.io/openshift-release-dev/ocp-release".parse().expect("valid"));
        assert_eq!(names(&routes), ["m.local/release", "quay.io/openshift-release-dev/ocp-release"]);
    }

    #[test]
    fn bad_files_name_what_is_wrong() {
        let cases = [
            (
                MirrorFileKind::Icsp,
                IDMS,
                "kind `ImageDigestMirrorSet`, not `ImageContentSourcePolicy` (pass it with `--idms-file`)",
            ),
            (
                MirrorFileKind::Idms,
                "kind: ImageDigestMirrorSet\nspec: {}\n",
                "no `ImageDigestMirrorSet` with entries in `spec.imageDigestMirrors`",
            ),
            (
                MirrorFileKind::Idms,
                "kind: ImageDigestMirrorSet\nspec:\n  imageDigestMirrors:\n  - source: quay.io/a\n    mirrors: ['http://m/x']\n",
                "mirror of `quay.io/a` `http://m/x` is not",
            ),
            (
                MirrorFileKind::Idms,
                "kind: ImageDigestMirrorSet\nspec:\n  imageDigestMirrors:\n  - source: quay.io/a\n    mirrors: [m/x]\n    mirrorSourcePolicy: Sometimes\n",
                "mirrorSourcePolicy `Sometimes`",
            ),
            (
                MirrorFileKind::Idms,
                "kind: ImageDigestMirrorSet\nspec:\n  imageDigestMirrors:\n  - source: quay.io/a\n    mirrorSourcePolicy: NeverContactSource\n",
                "NeverContactSource and no mirrors",
            ),
            (MirrorFileKind::Idms, "kind: ImageDigestMirrorSet\nspec: [\n", "m.yaml"),
        ];
        for (kind, yaml, want) in cases {
            let err = MirrorRules::new().add_yaml(kind, Path::new("m.yaml"), yaml).expect_err(yaml).to_string();
            assert!(err.contains("`m.yaml`") && err.contains(want), "{yaml}: {err}");
        }
    }

    #[test]
    fn the_router_tries_what_served_last_first() {
        let router = Router::new(rules(MirrorFileKind::Idms, IDMS));
        let repo: Reference = "quay.io/openshift-release-dev/ocp-release".parse().expect("valid");
        let backup: Reference = "backup.local/ocp/release".parse().expect("valid");
        router.remember(&repo, &backup);
        let routes = router.routes(&repo);
        assert_eq!(names(&routes)[..2], ["backup.local/ocp/release", "mirror.local:5000/ocp/release"]);
        assert_eq!(routes.repositories.len(), 4);
    }
}
