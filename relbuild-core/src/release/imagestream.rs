//! The `image.openshift.io/v1` `ImageStream`: the model of
//! `release-manifests/image-references` and of each operator's
//! `manifests/image-references`.
//!
//! Field order is the Go struct order of openshift/api so that
//! `gojson::to_vec_indent(&is, "  ")` equals oc's `json.MarshalIndent(is, "", "  ")`
//! (spec §3.2): a tag's `annotations` is always emitted (`null` when nil), as
//! are `"generation": null`, `"importPolicy": {}`, `"referencePolicy": {"type": ""}`
//! and `status.dockerImageRepository`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Error;

/// The only `kind` accepted.
pub const KIND: &str = "ImageStream";
/// The only `apiVersion` accepted.
pub const API_VERSION: &str = "image.openshift.io/v1";

/// An OpenShift `ImageStream` (the subset a release payload uses).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageStream {
    /// `ImageStream`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// `image.openshift.io/v1`.
    #[serde(rename = "apiVersion", default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Object metadata; `name` is the release name.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The tags.
    #[serde(default)]
    pub spec: ImageStreamSpec,
    /// Status (import results).
    #[serde(default)]
    pub status: ImageStreamStatus,
}

/// Kubernetes `ObjectMeta`, in Go field order (omitempty fields skipped).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// UID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Resource version.
    #[serde(rename = "resourceVersion", default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Generation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: i64,
    /// RFC 3339 creation time; Go always emits it (`null` when zero).
    #[serde(rename = "creationTimestamp", default)]
    pub creation_timestamp: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// `ImageStreamSpec`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageStreamSpec {
    /// Always emitted.
    #[serde(rename = "lookupPolicy", default)]
    pub lookup_policy: LookupPolicy,
    /// Deprecated source repository.
    #[serde(rename = "dockerImageRepository", default, skip_serializing_if = "String::is_empty")]
    pub docker_image_repository: String,
    /// The tags, sorted by name in a release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<TagReference>,
}

/// `ImageLookupPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LookupPolicy {
    /// `local` (always emitted).
    #[serde(default)]
    pub local: bool,
}

/// `TagReference`: one component image of the release.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TagReference {
    /// Tag name (the component name).
    pub name: String,
    /// Annotations; `None` is emitted as `null`, as Go does for a nil map.
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ObjectReference>,
    /// `reference`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reference: bool,
    /// `generation`, emitted as `null` when unset.
    #[serde(default)]
    pub generation: Option<i64>,
    /// Always emitted (`{}` by default).
    #[serde(rename = "importPolicy", default)]
    pub import_policy: TagImportPolicy,
    /// Always emitted (`{"type": ""}` by default).
    #[serde(rename = "referencePolicy", default)]
    pub reference_policy: TagReferencePolicy,
}

impl TagReference {
    /// A `DockerImage` tag as oc creates them.
    pub fn docker_image(name: impl Into<String>, pullspec: impl Into<String>) -> Self {
        Self { name: name.into(), from: Some(ObjectReference::docker_image(pullspec)), ..Self::default() }
    }

    /// `from.name` when `from.kind` is `DockerImage`.
    pub fn docker_pullspec(&self) -> Option<&str> {
        self.from.as_ref().filter(|f| f.kind == "DockerImage").map(|f| f.name.as_str())
    }
}

/// `TagImportPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TagImportPolicy {
    /// `insecure`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// `scheduled`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scheduled: bool,
    /// `importMode`.
    #[serde(rename = "importMode", default, skip_serializing_if = "String::is_empty")]
    pub import_mode: String,
}

/// `TagReferencePolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TagReferencePolicy {
    /// `type` (always emitted, `""` by default).
    #[serde(rename = "type", default)]
    pub kind: String,
}

/// Core `ObjectReference`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ObjectReference {
    /// `DockerImage`, `ImageStreamTag`, ….
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The pullspec for `DockerImage`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl ObjectReference {
    /// `{kind: DockerImage, name: pullspec}`.
    pub fn docker_image(pullspec: impl Into<String>) -> Self {
        Self { kind: "DockerImage".into(), namespace: String::new(), name: pullspec.into() }
    }
}

/// `ImageStreamStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageStreamStatus {
    /// Always emitted.
    #[serde(rename = "dockerImageRepository", default)]
    pub docker_image_repository: String,
    /// Public repository, required by the default reference mode.
    #[serde(rename = "publicDockerImageRepository", default, skip_serializing_if = "String::is_empty")]
    pub public_docker_image_repository: String,
    /// Per-tag import history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<NamedTagEventList>,
}

/// `NamedTagEventList`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NamedTagEventList {
    /// Tag name.
    pub tag: String,
    /// Newest first.
    #[serde(default)]
    pub items: Option<Vec<TagEvent>>,
    /// Import conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<TagEventCondition>,
}

/// `TagEvent`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TagEvent {
    /// Creation time.
    #[serde(default)]
    pub created: Option<String>,
    /// The pullspec the image was imported from.
    #[serde(rename = "dockerImageReference", default)]
    pub docker_image_reference: String,
    /// The image ID (a digest).
    #[serde(default)]
    pub image: String,
    /// Spec generation that produced this event.
    #[serde(default)]
    pub generation: i64,
}

/// `TagEventCondition`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TagEventCondition {
    /// e.g. `ImportSuccess`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// `True`/`False`/`Unknown`.
    #[serde(default)]
    pub status: String,
    /// Transition time.
    #[serde(rename = "lastTransitionTime", default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Generation.
    #[serde(default)]
    pub generation: i64,
}

/// An input with nothing but blanks and `#` comments is an empty file, not a
/// document of unknown kind.
fn check_not_empty(bytes: &[u8], file: &str) -> Result<(), Error> {
    let blank = bytes.split(|b| *b == b'\n').all(|line| {
        let line = line.trim_ascii();
        line.is_empty() || line.starts_with(b"#")
    });
    if blank { Err(Error::EmptyFile { file: file.to_owned() }) } else { Ok(()) }
}

impl ImageStream {
    /// Parses a YAML or JSON document (oc reads both, through ghodss/yaml) and
    /// checks `kind: ImageStream` and `apiVersion: image.openshift.io/v1`.
    /// `file` names the input in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Self, Error> {
        check_not_empty(bytes, file)?;
        Self::parse_unchecked(bytes, file)?.checked(file)
    }

    /// Parses JSON only (`--from-dir`'s top-level `image-references` is read
    /// with `json.Unmarshal`), with the same checks as [`ImageStream::parse`].
    pub fn parse_json(bytes: &[u8], file: &str) -> Result<Self, Error> {
        check_not_empty(bytes, file)?;
        let is: Self = serde_json::from_slice(bytes).map_err(|e| json_error(e, file))?;
        is.checked(file)
    }

    /// Checks `kind` and `apiVersion`.
    fn checked(self, file: &str) -> Result<Self, Error> {
        if self.kind.is_empty() {
            return Err(Error::NoKind { file: file.to_owned() });
        }
        if self.kind != KIND {
            return Err(Error::UnknownKind { file: file.to_owned(), kind: self.kind });
        }
        if self.api_version != API_VERSION {
            return Err(Error::UnknownApiVersion { file: file.to_owned(), api_version: self.api_version });
        }
        Ok(self)
    }

    fn parse_unchecked(bytes: &[u8], file: &str) -> Result<Self, Error> {
        if super::looks_like_json(bytes) {
            return serde_json::from_slice(bytes).map_err(|e| json_error(e, file));
        }
        serde_saphyr::from_slice(bytes).map_err(|e| {
            let loc = e.location();
            Error::Parse {
                file: file.to_owned(),
                what: "ImageStream",
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                source: super::yaml_error(&e),
            }
        })
    }

    /// The release form: `json.MarshalIndent(is, "", "  ")`, no trailing newline.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        crate::image::gojson::to_vec_indent(self, "  ")
            .map_err(|source| Error::Serialize { what: "image-references", source })
    }

    /// The tag named `name`.
    pub fn tag(&self, name: &str) -> Option<&TagReference> {
        self.spec.tags.iter().find(|t| t.name == name)
    }

    /// Sorts the tags by name (byte order), as oc does before writing.
    pub fn sort_tags(&mut self) {
        self.spec.tags.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

fn json_error(e: serde_json::Error, file: &str) -> Error {
    Error::Parse {
        file: file.to_owned(),
        what: "ImageStream",
        line: Some(e.line() as u64),
        column: Some(e.column() as u64),
        source: Box::new(e),
    }
}

/// `--reference-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReferenceMode {
    /// `public` (the default, also `""`): `status.publicDockerImageRepository@<image>`.
    #[default]
    Public,
    /// `source`: the pullspec the image came from, unless it points at the
    /// internal registry (`status.dockerImageRepository` prefix).
    Source,
}

impl std::str::FromStr for ReferenceMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "" | "public" => Ok(Self::Public),
            "source" => Ok(Self::Source),
            other => Err(Error::UnknownReferenceMode(other.to_owned())),
        }
    }
}

/// One tag of the release as resolved from an input image stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTag {
    /// Tag name.
    pub name: String,
    /// The pullspec the release will use.
    pub pullspec: String,
    /// Annotations carried over from the spec tag (`None` for status-only tags).
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ResolvedTag {
    /// The release tag for it.
    pub fn to_tag_reference(&self) -> TagReference {
        TagReference { annotations: self.annotations.clone(), ..TagReference::docker_image(&self.name, &self.pullspec) }
    }
}

/// The digest part (`ID`) of a pullspec, if it has one.
fn pullspec_id(pullspec: &str) -> Option<&str> {
    pullspec.split_once('@').map(|(_, id)| id).filter(|id| !id.is_empty())
}

/// Whether the pullspec has a `:tag` (after the last `/`, before any `@`).
fn pullspec_has_tag(pullspec: &str) -> bool {
    let name = pullspec.split_once('@').map_or(pullspec, |(n, _)| n);
    let last = name.rsplit('/').next().unwrap_or(name);
    // A `:` in the first component is a registry port, not a tag.
    name.contains('/') && last.contains(':') || !name.contains('/') && name.contains(':')
}

/// The repository part of a pullspec (no tag, no digest).
fn pullspec_repository(pullspec: &str) -> &str {
    let name = pullspec.split_once('@').map_or(pullspec, |(n, _)| n);
    match name.rfind(':') {
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

/// `resolveImageStreamTagsToReferenceMode` (spec §1.1): the tags of the
/// release built from `input` with `--from-image-stream[-file]`, in order:
/// spec tags first (input order), then status tags not covered by a spec tag.
///
/// - public mode requires `status.publicDockerImageRepository` and uses
///   `<public>@<image id>`; source mode uses the originating pullspec unless it
///   starts with `status.dockerImageRepository` (the internal registry);
/// - a spec tag by digest is used directly; a spec tag by tag is resolved via
///   `status.tags[].items[0]`, and fails with "has not been imported yet" when
///   its `generation` differs from the item's (or import failed);
/// - tags with no items are skipped; `exclude` drops tags by name.
pub fn resolve_tags(input: &ImageStream, mode: ReferenceMode, exclude: &[&str]) -> Result<Vec<ResolvedTag>, Error> {
    let force_external = mode == ReferenceMode::Public;
    let internal = input.status.docker_image_repository.as_str();
    let external = input.status.public_docker_image_repository.as_str();
    if force_external && external.is_empty() {
        return Err(Error::NoPublicRepository);
    }
    let external_fn = |source: &str, image: &str| -> String {
        let source =
            if !source.is_empty() && !internal.is_empty() && source.starts_with(internal) { "" } else { source };
        if (force_external || source.is_empty()) && !external.is_empty() {
            format!("{external}@{image}")
        } else {
            source.to_owned()
        }
    };
    let find_status = |name: &str| input.status.tags.iter().find(|t| t.tag == name);
    let not_imported =
        |list: &NamedTagEventList| list.conditions.iter().any(|c| c.kind == "ImportSuccess" && c.status != "Success");

    let mut out = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for tag in &input.spec.tags {
        if exclude.contains(&tag.name.as_str()) {
            continue;
        }
        let Some(from) = tag.docker_pullspec() else { continue };
        if let Some(id) = pullspec_id(from) {
            let source = external_fn(from, id);
            if source.is_empty() {
                continue;
            }
            out.push(ResolvedTag { name: tag.name.clone(), pullspec: source, annotations: tag.annotations.clone() });
            covered.insert(tag.name.as_str());
        } else if pullspec_has_tag(from) {
            let Some(list) = find_status(&tag.name) else { continue };
            let Some(item) = list.items.as_deref().and_then(|i| i.first()) else {
                if not_imported(list) {
                    return Err(Error::TagNotImported { tag: list.tag.clone() });
                }
                continue;
            };
            if tag.generation.is_some_and(|g| g != item.generation) {
                return Err(Error::TagNotImported { tag: list.tag.clone() });
            }
            if item.image.is_empty() {
                return Err(Error::TagNoImageId { tag: list.tag.clone() });
            }
            out.push(ResolvedTag {
                name: tag.name.clone(),
                pullspec: external_fn(&item.docker_image_reference, &item.image),
                annotations: tag.annotations.clone(),
            });
            covered.insert(tag.name.as_str());
        }
    }
    for list in &input.status.tags {
        if covered.contains(list.tag.as_str()) || exclude.contains(&list.tag.as_str()) {
            continue;
        }
        let Some(item) = list.items.as_deref().and_then(|i| i.first()) else {
            if not_imported(list) {
                return Err(Error::TagNotImported { tag: list.tag.clone() });
            }
            continue;
        };
        if item.image.is_empty() {
            continue;
        }
        let source = external_fn(&item.docker_image_reference, &item.image);
        if source.is_empty() {
            continue;
        }
        let repo = pullspec_repository(&source);
        if repo.is_empty() {
            return Err(Error::InvalidTagSource { tag: list.tag.clone(), pullspec: source });
        }
        out.push(ResolvedTag { name: list.tag.clone(), pullspec: format!("{repo}@{}", item.image), annotations: None });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IS: &str = r#"kind: ImageStream
apiVersion: image.openshift.io/v1
metadata: {name: "4.99"}
spec:
  tags:
  - name: a
    from: {kind: DockerImage, name: "src.io/ns/a@sha256:aaaa"}
  - name: b
    generation: 2
    from: {kind: DockerImage, name: "src.io/ns/b:latest"}
  - name: skipped
    from: {kind: DockerImage, name: "src.io/ns/s:latest"}
status:
  dockerImageRepository: internal:5000/ns/stream
  publicDockerImageRepository: pub.io/ns/stream
  tags:
  - tag: b
    items: [{dockerImageReference: "src.io/ns/b@sha256:bbbb", image: "sha256:bbbb", generation: 2}]
  - tag: c
    items: [{dockerImageReference: "internal:5000/ns/stream@sha256:cccc", image: "sha256:cccc", generation: 1}]
  - tag: d
    items: []
"#;

    #[test]
    fn resolve_both_modes() {
        let is = ImageStream::parse(IS.as_bytes(), "is.yaml").expect("parses");
        let got = |mode| -> Vec<(String, String)> {
            resolve_tags(&is, mode, &[]).expect("resolves").into_iter().map(|t| (t.name, t.pullspec)).collect()
        };
        let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            got(ReferenceMode::Public),
            [
                s("a", "pub.io/ns/stream@sha256:aaaa"),
                s("b", "pub.io/ns/stream@sha256:bbbb"),
                s("c", "pub.io/ns/stream@sha256:cccc")
            ]
        );
        assert_eq!(
            got(ReferenceMode::Source),
            [
                s("a", "src.io/ns/a@sha256:aaaa"),
                s("b", "src.io/ns/b@sha256:bbbb"),
                s("c", "pub.io/ns/stream@sha256:cccc")
            ]
        );
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("kind: Foo\napiVersion: v1\n", "unknown kind `Foo`"),
            ("", "`f.yaml` is empty, expected an `ImageStream`"),
            ("\n  \n# only a comment\n", "`f.yaml` is empty"),
            ("apiVersion: v1\n", "`f.yaml` has no `kind`, expected `kind: ImageStream`"),
            ("{}", "`f.yaml` has no `kind`"),
            ("kind: ImageStream\napiVersion: v1\n", "unknown apiVersion `v1`"),
            ("kind: ImageStream\nspec: [\n", "`f.yaml` line"),
            ("{\"kind\": 3}", "`f.yaml` line 1, column"),
        ];
        for (input, want) in cases {
            let err = ImageStream::parse(input.as_bytes(), "f.yaml").expect_err(input).to_string();
            assert!(err.contains(want), "{input:?}: {err}");
            assert!(!err.contains("kind ``"), "{input:?}: {err}");
        }
        let err = ImageStream::parse_json(b" \n", "f.json").expect_err("empty").to_string();
        assert_eq!(err, "`f.json` is empty, expected an `ImageStream`");
        let mut is = ImageStream::parse(IS.as_bytes(), "is.yaml").expect("parses");
        is.spec.tags[1].generation = Some(3);
        let err = resolve_tags(&is, ReferenceMode::Public, &[]).expect_err("generation");
        assert_eq!(err.to_string(), "the tag \"b\" in the source input stream has not been imported yet");
        is.status.public_docker_image_repository.clear();
        assert!(matches!(resolve_tags(&is, ReferenceMode::Public, &[]), Err(Error::NoPublicRepository)));
        assert!("bogus".parse::<ReferenceMode>().is_err());
    }

    #[test]
    fn serialises_like_go() {
        let mut is = ImageStream { kind: KIND.into(), api_version: API_VERSION.into(), ..Default::default() };
        is.metadata.name = "4.99.0".into();
        is.spec.tags.push(TagReference::docker_image("a", "r@sha256:1"));
        let got = String::from_utf8(is.to_json().expect("serialises")).expect("utf8");
        let want = "{\n  \"kind\": \"ImageStream\",\n  \"apiVersion\": \"image.openshift.io/v1\",\n  \"metadata\": {\n    \"name\": \"4.99.0\",\n    \"creationTimestamp\": null\n  },\n  \"spec\": {\n    \"lookupPolicy\": {\n      \"local\": false\n    },\n    \"tags\": [\n      {\n        \"name\": \"a\",\n        \"annotations\": null,\n        \"from\": {\n          \"kind\": \"DockerImage\",\n          \"name\": \"r@sha256:1\"\n        },\n        \"generation\": null,\n        \"importPolicy\": {},\n        \"referencePolicy\": {\n          \"type\": \"\"\n        }\n      }\n    ]\n  },\n  \"status\": {\n    \"dockerImageRepository\": \"\"\n  }\n}";
        assert_eq!(got, want);
    }
}
