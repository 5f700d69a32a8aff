//! One home for the names a payload is made of: the annotation and label
//! keys oc reads and writes (spec §2.1, §3.2, §3.4), the payload paths, and
//! the size limits of what we read.
//!
//! Which keys oc copies from an image config onto its release tag, and how
//! an absent label differs from an empty one, is [`crate::release::inspect::tag_annotations`].

/// Label that makes an image an operator (any non-empty value, even `false`).
pub const LABEL_OPERATOR: &str = "io.openshift.release.operator";
/// Label of the release image config: the release name.
pub const LABEL_RELEASE: &str = "io.openshift.release";
/// Label of the release image config: the digest of the base image it was built on.
pub const LABEL_BASE_IMAGE_DIGEST: &str = "io.openshift.release.base-image-digest";

/// Label and tag annotation: the source commit of a component image.
pub const ANNOTATION_COMMIT_ID: &str = "io.openshift.build.commit.id";
/// Label and tag annotation: the source branch or tag.
pub const ANNOTATION_COMMIT_REF: &str = "io.openshift.build.commit.ref";
/// Label and tag annotation: the source repository URL.
pub const ANNOTATION_SOURCE_LOCATION: &str = "io.openshift.build.source-location";
/// Label and tag annotation: `name=semver,…` component versions.
pub const ANNOTATION_BUILD_VERSIONS: &str = "io.openshift.build.versions";
/// Label and tag annotation: `name=Display Name,…` for the component versions.
/// oc writes it (possibly empty) on every tag that has versions.
pub const ANNOTATION_VERSION_DISPLAY_NAMES: &str = "io.openshift.build.version-display-names";
/// Tag annotation on every tag replaced or added by a mapping.
pub const ANNOTATION_OVERRIDE: &str = "io.openshift.release.override";
/// Image stream annotation naming the input release of a modified `--from-release` build.
pub const ANNOTATION_FROM_RELEASE: &str = "release.openshift.io/from-release";

/// The top-level directory of the payload layer.
pub const PAYLOAD_DIR: &str = "release-manifests";
/// The file of `release-manifests/` holding the component images.
pub const IMAGE_REFERENCES: &str = "image-references";
/// The file of `release-manifests/` holding the Cincinnati metadata.
pub const RELEASE_METADATA: &str = "release-metadata";

/// The largest image config read.
pub const CONFIG_LIMIT: u64 = 16 << 20;

/// Comma list of the feature sets a manifest belongs to.
pub const FEATURE_SET: &str = "release.openshift.io/feature-set";
/// Comma list of feature gates (`G` enabled, `-G` disabled) a manifest needs.
pub const FEATURE_GATE: &str = "release.openshift.io/feature-gate";
/// Comma list of major versions (`4`, `-5`) a manifest is for.
pub const MAJOR_VERSION: &str = "release.openshift.io/major-version";
