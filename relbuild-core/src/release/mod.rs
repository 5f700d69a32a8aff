//! Release payload formats: the pure, synchronous half of
//! `oc adm release new`.
//!
//! | file | what |
//! |---|---|
//! | [`imagestream`] | the `image.openshift.io/v1` `ImageStream` model, parsing, tag resolution (`-f`) |
//! | [`names`] | annotation and label keys, payload paths, size limits: one home |
//! | [`metadata`] | `release-manifests/release-metadata` (Cincinnati) and the release name |
//! | [`rewrite`] | per-operator pullspec rewriting and `0.0.1-snapshot` substitution |
//! | [`naming`] | `0000_50_<tag>_<file>` names and collision renames |
//! | [`payload`] | the `release-manifests/` layer tar |
//! | [`config`] | the release image config derived from the base image config |
//! | [`source`] | the inputs of `release new`: image stream file, mappings, `--from-release`, `--from-dir` |
//! | [`inspect`] | reading the input images: manifests, configs, operator `/manifests` |
//! | [`output`] | the destinations: registry push, `--to-dir`, `--to-file`, OCI layout, signature |
//! | [`reproduce`] | canonical rebuilds: which rewriting rules reproduce an input, and what differs |
//! | [`build`] | [`new_release`], the `oc adm release new` pipeline |
//!
//! The format modules above touch no network; `source`, `inspect`, `output`
//! and `build` orchestrate them with the registry client.

pub mod build;
pub mod config;
pub mod extract;
mod heads;
pub mod imagestream;
pub mod include;
pub mod info;
pub mod inspect;
pub mod lint;
pub mod metadata;
pub mod names;
pub mod naming;
pub mod output;
pub mod payload;
pub mod read;
pub mod reproduce;
pub mod rewrite;
pub mod source;

pub use build::{NewContext, NewOptions, NewOutcome, OutputOptions, assemble_stream, new_release};
pub use config::{DockerImageConfig, ReleaseConfigEdit};
pub use imagestream::{ImageStream, ReferenceMode, ResolvedTag, TagReference};
pub use lint::LintMode;
pub use metadata::CincinnatiMetadata;
pub use naming::{Collision, PayloadNamer};
pub use output::{ReleaseImage, Written};
pub use payload::{
    ManifestFile, Operator, PayloadOptions, PayloadSummary, WrittenFiles, write_payload, write_payload_observed,
};
pub use rewrite::{ImageMapper, ImageReference, OperatorTransform, RewriteMode, VersionMapper, VersionRefError};
pub use source::{Mapping, Source, parse_mapping_file};

/// Errors of the `release` module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A YAML or JSON document that does not parse as the expected type.
    #[error("`{file}`{}: not a valid {what}", location_suffix(*.line, *.column))]
    Parse {
        /// The file (or description of the input) that was read.
        file: String,
        /// What the document should have been.
        what: &'static str,
        /// 1-based line of the error, when known.
        line: Option<u64>,
        /// 1-based column of the error, when known.
        column: Option<u64>,
        /// The parser's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// An image stream file with nothing in it (blanks and comments only).
    #[error("`{file}` is empty, expected an `ImageStream`")]
    EmptyFile {
        /// The file.
        file: String,
    },
    /// An image stream file without `kind`.
    #[error("`{file}` has no `kind`, expected `kind: ImageStream`")]
    NoKind {
        /// The file.
        file: String,
    },
    /// An image stream file with the wrong `kind`.
    #[error("`{file}`: unknown kind `{kind}`, expected `ImageStream`")]
    UnknownKind {
        /// The file.
        file: String,
        /// The kind found.
        kind: String,
    },
    /// An image stream file with the wrong `apiVersion`.
    #[error("`{file}`: unknown apiVersion `{api_version}`, expected `image.openshift.io/v1`")]
    UnknownApiVersion {
        /// The file.
        file: String,
        /// The apiVersion found.
        api_version: String,
    },
    /// `--reference-mode` with a value other than `public`, `source` or empty.
    #[error("unknown reference mode `{0}`: supported reference modes are: \"public\" (default) and \"source\"")]
    UnknownReferenceMode(String),
    /// The default reference mode needs `status.publicDockerImageRepository`.
    #[error(
        "only image streams or releases with public image repositories can be the source for releases when using the default --reference-mode"
    )]
    NoPublicRepository,
    /// A tag whose import has not completed (or failed).
    #[error("the tag {tag:?} in the source input stream has not been imported yet")]
    TagNotImported {
        /// The tag.
        tag: String,
    },
    /// A spec tag whose newest status item has no image ID.
    #[error("the tag {tag:?} in the source input stream has no image id")]
    TagNoImageId {
        /// The tag.
        tag: String,
    },
    /// A pullspec that cannot be used as an image reference.
    #[error("the tag {tag:?} points to source {pullspec:?} which is not valid")]
    InvalidTagSource {
        /// The tag.
        tag: String,
        /// The pullspec.
        pullspec: String,
    },
    /// `--name` (or a `--previous`/`--next` value) that is not semver.
    #[error("`{value}` is not a valid semantic version for {what}")]
    InvalidVersion {
        /// What the value was for (`--name`, `--previous`, `--next`).
        what: &'static str,
        /// The value given.
        value: String,
        /// The semver error.
        #[source]
        source: semver::Error,
    },
    /// `--metadata` that is not JSON.
    #[error("--metadata is not valid JSON")]
    MetadataJson {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// `--metadata` that is not a JSON object.
    #[error("--metadata must be a JSON object")]
    MetadataNotObject,
    /// A `--metadata` value that is not a string (Cincinnati reads
    /// `metadata` as `map<string,string>` and drops the whole release otherwise).
    #[error("--metadata key `{key}` must have a string value (Cincinnati only reads strings), found {found}")]
    MetadataValueNotString {
        /// The key.
        key: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A tag of an operator's `image-references` without `from.name`.
    #[error("operator {operator:?} contained an invalid image-references file: no from.name for the tag {tag}")]
    EmptyFromName {
        /// The operator (tag name).
        operator: String,
        /// The tag in its image-references.
        tag: String,
    },
    /// A tag of an operator's `image-references` that the release does not have.
    #[error("operator {operator:?} contained an invalid image-references file: no input image tag named {tag:?}")]
    UnknownTag {
        /// The operator (tag name).
        operator: String,
        /// The missing tag.
        tag: String,
    },
    /// Two tags of one `image-references` with the same source pullspec.
    #[error(
        "operator {operator:?} contained an invalid image-references file: the source repository {source_repository:?} was defined more than once (for {first:?} and {second:?})"
    )]
    DuplicateSource {
        /// The operator (tag name).
        operator: String,
        /// The repeated source pullspec.
        source_repository: String,
        /// The first tag naming it.
        first: String,
        /// The second tag naming it.
        second: String,
    },
    /// An invalid `io.openshift.build.versions` annotation on a referenced tag.
    #[error("operator {operator:?}: input image stream has an invalid version annotation for tag {tag:?}: {value}")]
    InvalidVersionsAnnotation {
        /// The operator whose image-references names the tag.
        operator: String,
        /// The tag carrying the annotation.
        tag: String,
        /// The annotation value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Two referenced tags declaring different versions for one component.
    #[error(
        "operator {:?}: input image stream has multiple versions defined for version {}: {} defines {} but was already set to {} on {}",
        .0.operator, .0.key, .0.tag, .0.value, .0.existing, .0.tags.join(", ")
    )]
    ConflictingVersions(Box<VersionConflict>),
    /// A manifest whose `0.0.1-snapshot…` references cannot be substituted.
    #[error("operator {operator:?}, file `{file}`: cannot substitute versions")]
    Version {
        /// The operator.
        operator: String,
        /// The source file name.
        file: String,
        /// What is wrong.
        #[source]
        source: VersionRefError,
    },
    /// Serialising one of our types failed (a bug).
    #[error("could not serialise {what}")]
    Serialize {
        /// What was being serialised.
        what: &'static str,
        /// The serialiser error.
        #[source]
        source: serde_json::Error,
    },
    /// Writing the payload layer failed.
    #[error("could not write the release-manifests layer")]
    Write {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Neither a source nor mappings were given.
    #[error("must specify image mappings when no other source is defined")]
    NoSource,
    /// `-f URL` could not be fetched.
    #[error("could not read the image stream from `{url}`")]
    StreamUrl {
        /// The URL, credentials redacted.
        url: String,
        /// The client error.
        #[source]
        source: Box<crate::registry::Error>,
    },
    /// A positional or mapping-file entry that is not `NAME=PULLSPEC`.
    #[error("{}invalid mapping `{value}`: expected NAME=PULLSPEC with both sides non-empty", location_prefix(.file.as_deref(), *.line))]
    InvalidMapping {
        /// The entry.
        value: String,
        /// The mapping file, when it came from one.
        file: Option<String>,
        /// Its 1-based line in that file.
        line: Option<usize>,
    },
    /// A local input (mapping file, `--from-dir`) that cannot be read.
    #[error("could not read `{}`", .path.display())]
    ReadInput {
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A pullspec of the release that is not a valid image reference.
    #[error("tag {tag:?}: `{pullspec}` is not a valid image reference")]
    InvalidPullspec {
        /// The tag (or flag) naming it.
        tag: String,
        /// The pullspec.
        pullspec: String,
        /// What is wrong.
        #[source]
        source: crate::image::Error,
    },
    /// Reading one input image (manifest, config or layers) failed.
    #[error("tag {tag:?}: could not read image `{pullspec}`")]
    Inspect {
        /// The tag.
        tag: String,
        /// Its pullspec.
        pullspec: String,
        /// What failed (registry, layer or format error).
        #[source]
        source: Box<crate::Error>,
    },
    /// A manifest list without the platform asked for.
    #[error("`{reference}` is a manifest list without a `{platform}` image")]
    NoPlatform {
        /// The list.
        reference: String,
        /// `os/arch` asked for.
        platform: String,
    },
    /// A manifest that is neither an image nor a list (e.g. schema 1).
    #[error("`{reference}` is not an image manifest or manifest list (media type `{media_type}`)")]
    NotAnImage {
        /// The reference.
        reference: String,
        /// Its media type.
        media_type: String,
    },
    /// An `io.openshift.build.versions` label naming a component that is not allowed.
    #[error("tag {tag:?} references a component version {component:?} which is not in the allowed list")]
    ComponentNotAllowed {
        /// The tag.
        tag: String,
        /// The component.
        component: String,
    },
    /// An `io.openshift.build.versions` or `io.openshift.build.version-display-names` label that does not parse.
    #[error(
        "tag {tag:?} has an invalid `io.openshift.build.versions` or `io.openshift.build.version-display-names` \
         label (versions {value:?}): {reason}"
    )]
    InvalidVersionsLabel {
        /// The tag.
        tag: String,
        /// The label.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// An operator image (label `io.openshift.release.operator`) without `/manifests`.
    #[error("operator image `{pullspec}` (tag {tag:?}) has no `/manifests` directory in {}", if *.all_layers { "any layer" } else { "its top layer" })]
    NoManifests {
        /// The tag.
        tag: String,
        /// The image.
        pullspec: String,
        /// Whether all layers were searched (overrides) or only the top one.
        all_layers: bool,
    },
    /// A `.yaml/.yml/.json` operator manifest that does not parse.
    #[error("{operator}/{file}: invalid YAML/JSON")]
    ManifestSyntax {
        /// The operator (tag).
        operator: String,
        /// The file.
        file: String,
        /// The parser error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// An operator manifest whose first document lacks `kind` or `apiVersion`.
    #[error("{operator}/{file}: manifests must contain Kubernetes API objects with 'kind' and 'apiVersion' set")]
    ManifestNotObject {
        /// The operator (tag).
        operator: String,
        /// The file.
        file: String,
    },
    /// `--to-image-base-tag` names a tag the release does not have.
    #[error("the base image tag {tag:?} could not be found in the input, cannot build a release image")]
    MissingBaseTag {
        /// The tag.
        tag: String,
    },
    /// `--from-release`: no tag has the base image digest of the input release.
    #[error(
        "unable to find an image within the release that matches the base image manifest {digest:?}, please specify --to-image-base"
    )]
    BaseImageNotInRelease {
        /// The `io.openshift.release.base-image-digest` label.
        digest: String,
    },
    /// `--from-release` of an image without `release-manifests/image-references`.
    #[error("release image `{reference}` did not contain any image-references content")]
    NoImageReferences {
        /// The input release.
        reference: String,
    },
    /// `--from-release`: reading the input release failed.
    #[error("could not read release image `{reference}`")]
    FromRelease {
        /// The input release.
        reference: String,
        /// What failed.
        #[source]
        source: Box<crate::Error>,
    },
    /// Reading the base image failed.
    #[error("could not read the base image `{reference}`")]
    BaseImage {
        /// The base image.
        reference: String,
        /// What failed.
        #[source]
        source: Box<crate::Error>,
    },
    /// A canonical rebuild (`--from-release` with nothing changed) gave another digest.
    #[error(
        "the release could not be reproduced from its inputs: the input is {expected}, the rebuild is {found} \
         (tried {}); {}",
        tried.iter().map(ToString::to_string).collect::<Vec<_>>().join(", then "),
        not_reproduced_detail(differences, tried)
    )]
    NotReproduced {
        /// The input release digest.
        expected: crate::image::Digest,
        /// The digest built.
        found: crate::image::Digest,
        /// The rules tried, in order.
        tried: Vec<reproduce::Attempt>,
        /// The files whose bytes differ under the first rules tried.
        differences: Vec<reproduce::FileDifference>,
    },
    /// `--to-image` with a digest.
    #[error("--to-image `{reference}` must not contain a digest")]
    ToImageDigest {
        /// The value.
        reference: String,
    },
    /// `--lint=error` and the built payload has lint errors (nothing was
    /// written or pushed).
    #[error(
        "the payload has {} lint error{}; nothing was written or pushed:\n{}",
        .findings.len(),
        if .findings.len() == 1 { "" } else { "s" },
        .findings.join("\n")
    )]
    Lint {
        /// One `lint[code] file: message` line per error.
        findings: Vec<String>,
    },
    /// `--to-signature` without `--to-image`.
    #[error("--to-signature requires --to-image")]
    SignatureNeedsImage,
    /// Writing a local output failed.
    #[error("could not write `{}`", .path.display())]
    Output {
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the OCI layout output failed.
    #[error("could not write the release to the OCI layout `{}`", .path.display())]
    OciLayout {
        /// The layout directory.
        path: std::path::PathBuf,
        /// What failed.
        #[source]
        source: Box<crate::Error>,
    },
    /// Pushing the release failed.
    #[error("could not push the release to `{reference}`")]
    Push {
        /// The destination.
        reference: String,
        /// What failed.
        #[source]
        source: Box<crate::Error>,
    },
    /// The `--to-image` destination does not answer or refuses push. It is
    /// checked before the build reads anything.
    #[error("cannot push to `{reference}` (checked before building; nothing was fetched or written)")]
    Destination {
        /// The destination repository.
        reference: String,
        /// What the registry answered.
        #[source]
        source: Box<crate::Error>,
    },
    /// `--to-image REPO` without a tag: the tag defaulted to the release
    /// name, and it already holds another release. Refused unless
    /// [`OutputOptions::force`](build::OutputOptions::force); an explicit
    /// tag overwrites, as oc does.
    #[error(
        "`{reference}` already holds another release ({existing}); this build is {built}, and the tag `{tag}` was not given but defaulted to the release name"
    )]
    WouldOverwrite {
        /// The destination, with the defaulted tag.
        reference: String,
        /// The defaulted tag.
        tag: String,
        /// The digest the tag holds now.
        existing: crate::image::Digest,
        /// The digest built.
        built: crate::image::Digest,
    },
    /// Mappings that add a tag the input does not have and that nothing
    /// references, so it would be pruned: most likely a misspelt component.
    /// `--include NAME` keeps a tag that is meant to be new.
    #[error("{}", unknown_tags_message(.tags))]
    UnknownMappedTags {
        /// Each such mapping, with the closest names the input has.
        tags: Vec<UnknownTag>,
    },
    /// Extracting an operator's `/manifests` failed (hostile or corrupt layer).
    #[error("operator {operator:?}: could not extract `/manifests` from `{pullspec}`")]
    Extract {
        /// The operator (tag).
        operator: String,
        /// The image.
        pullspec: String,
        /// What failed.
        #[source]
        source: Box<crate::Error>,
    },
}

impl Error {
    /// True when the cause is a registry answering "not found".
    pub fn is_not_found(&self) -> bool {
        self.registry_error().is_some_and(crate::registry::Error::is_not_found)
    }

    /// True when the cause is a registry refusing the credentials.
    pub fn is_unauthorized(&self) -> bool {
        self.registry_error().is_some_and(crate::registry::Error::is_unauthorized)
    }

    fn registry_error(&self) -> Option<&crate::registry::Error> {
        let inner = match self {
            Self::Inspect { source, .. }
            | Self::FromRelease { source, .. }
            | Self::BaseImage { source, .. }
            | Self::Push { source, .. }
            | Self::Destination { source, .. }
            | Self::Extract { source, .. } => source.as_ref(),
            _ => return None,
        };
        match inner {
            crate::Error::Registry(e) => Some(e.as_ref()),
            crate::Error::Transfer(e) => match e.as_ref() {
                crate::transfer::Error::Registry(e) => Some(e),
                _ => None,
            },
            crate::Error::Read(e) => match e.as_ref() {
                read::Error::Source { source: crate::transfer::Error::Registry(e), .. } => Some(e),
                _ => None,
            },
            crate::Error::Release(e) => e.registry_error(),
            _ => None,
        }
    }
}

/// The data of [`Error::ConflictingVersions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionConflict {
    /// The operator whose image-references names both tags.
    pub operator: String,
    /// The component.
    pub key: String,
    /// The tag declaring the new value.
    pub tag: String,
    /// The new value.
    pub value: String,
    /// The value already recorded.
    pub existing: String,
    /// The tags that declared the existing value.
    pub tags: Vec<String>,
}

/// A mapping of [`Error::UnknownMappedTags`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownTag {
    /// The tag the mapping names.
    pub tag: String,
    /// The mapping's image.
    pub pullspec: String,
    /// The input's tag names closest to `tag`, closest first (at most three).
    pub suggestions: Vec<String>,
}

fn unknown_tags_message(tags: &[UnknownTag]) -> String {
    let one = |t: &UnknownTag| {
        let mut s = format!("mapping `{}={}` names no tag of the input", t.tag, t.pullspec);
        if !t.suggestions.is_empty() {
            let names: Vec<String> = t.suggestions.iter().map(|n| format!("`{n}`")).collect();
            s.push_str(&format!(" (did you mean {}?)", names.join(" or ")));
        }
        s
    };
    let (list, it) = match tags {
        [t] => (one(t), "it"),
        _ => (tags.iter().map(one).collect::<Vec<_>>().join("; "), "them"),
    };
    format!("{list}, and nothing references {it}, so {it} would be pruned")
}

fn location_prefix(file: Option<&str>, line: Option<usize>) -> String {
    match (file, line) {
        (Some(f), Some(l)) => format!("`{f}` line {l}: "),
        (Some(f), None) => format!("`{f}`: "),
        _ => String::new(),
    }
}

/// The files of a failed canonical rebuild that differ, at most five.
fn not_reproduced_detail(differences: &[reproduce::FileDifference], tried: &[reproduce::Attempt]) -> String {
    const SHOWN: usize = 5;
    let mut s = match differences.len() {
        0 => "every payload file is identical: their tar headers (mtimes, order), the image config or the base \
              image differ"
            .to_owned(),
        n => {
            let mut s = format!("{n} payload file{} differ: ", if n == 1 { "" } else { "s" });
            s.push_str(&differences.iter().take(SHOWN).map(ToString::to_string).collect::<Vec<_>>().join("; "));
            if n > SHOWN {
                s.push_str(&format!("; and {} more", n - SHOWN));
            }
            s
        }
    };
    if tried.len() == 1 {
        s.push_str("; without `--rewrite` the other rewriting rules are tried too");
    }
    s
}

fn location_suffix(line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" line {l}, column {c}"),
        (Some(l), None) => format!(" line {l}"),
        _ => String::new(),
    }
}

/// Whether `bytes` is read as JSON rather than YAML: its first non-blank
/// byte is `{`, the rule of oc's YAML-or-JSON decoding.
pub(crate) fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// A YAML parse error as one line: serde-saphyr's `Display` appends a
/// multi-line source snippet, which would break the CLI's one-line `error:`.
pub(crate) fn yaml_error(e: &serde_saphyr::Error) -> Box<dyn std::error::Error + Send + Sync> {
    let message = e.without_snippet().to_string();
    message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_errors_are_one_line() {
        let e = ImageStream::parse(b"kind: ImageStream\nspec: [\n", "bad.yaml").expect_err("invalid");
        let mut chain = e.to_string();
        let mut cur = std::error::Error::source(&e);
        while let Some(c) = cur {
            chain = format!("{chain}: {c}");
            cur = c.source();
        }
        assert!(chain.starts_with("`bad.yaml` line 2, column 7: not a valid ImageStream: "), "{chain}");
        assert!(!chain.contains('\n'), "one line, no source snippet: {chain}");
    }
}
