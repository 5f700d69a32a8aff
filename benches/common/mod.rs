//! Shared, deterministic bench inputs built from the fixture stream of
//! `relbuild-testdata` (`fixture::stream_images`): the release ImageStream
//! with fake digests and every operator's extracted `manifests/`.
//!
//! Each bench binary uses a subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;

use relbuild_core::image::Digest;
use relbuild_core::release::inspect::{ALLOWED_COMPONENTS, tag_annotations};
use relbuild_core::release::{CincinnatiMetadata, ImageReference, ImageStream, ManifestFile, Operator, TagReference};
use relbuild_testdata::fixture::{FileKind, FixtureImage, OPERATOR_LABEL, Role, StreamSpec, stream_images};

/// The release name used everywhere (semver, as `release-metadata` requires).
pub(crate) const RELEASE: &str = "4.99.0";
/// The repository every fake release pullspec points at.
pub(crate) const RELEASE_REPO: &str = "registry.example.com/ocp/release";

/// The fixture stream with `operators` operators (plus CVO, operands and one
/// unreferenced image).
pub(crate) fn images(operators: usize) -> Vec<FixtureImage> {
    stream_images(&StreamSpec { operators })
}

/// A fake but well-formed manifest digest for `tag`.
pub(crate) fn fake_digest(tag: &str) -> Digest {
    Digest::sha256(tag.as_bytes())
}

/// Tag name to fake digest, for every image of the stream.
pub(crate) fn digests(images: &[FixtureImage]) -> BTreeMap<String, Digest> {
    images.iter().map(|i| (i.tag.clone(), fake_digest(&i.tag))).collect()
}

/// The release image stream as a build has it just before writing the
/// payload: every tag by digest, annotated from its image's labels as oc's
/// extraction does, the unreferenced image pruned, tags sorted, named
/// [`RELEASE`].
pub(crate) fn release_stream(images: &[FixtureImage]) -> ImageStream {
    let mut is = ImageStream {
        kind: "ImageStream".to_owned(),
        api_version: "image.openshift.io/v1".to_owned(),
        ..ImageStream::default()
    };
    is.metadata.name = RELEASE.to_owned();
    for img in images.iter().filter(|i| i.role != Role::Unreferenced) {
        let mut tag = TagReference::docker_image(&img.tag, format!("{RELEASE_REPO}@{}", fake_digest(&img.tag)));
        // The annotations a build copies from the labels, by the build's own rule.
        let a = tag_annotations(&img.tag, &img.labels, &ALLOWED_COMPONENTS).expect("fixture labels are valid");
        tag.annotations.get_or_insert_with(BTreeMap::new).extend(a);
        is.spec.tags.push(tag);
    }
    is.sort_tags();
    is
}

/// The `release-metadata` of [`RELEASE`].
pub(crate) fn metadata() -> CincinnatiMetadata {
    CincinnatiMetadata::new(RELEASE, &["4.98.0"], &[] as &[&str], BTreeMap::new()).expect("4.99.0 is semver")
}

/// What extracting `manifests/` from an operator image gives: regular files
/// directly under `manifests/`, upper layers winning, with
/// `image-references` set apart.
pub(crate) fn operator(img: &FixtureImage) -> Operator {
    let mut files = BTreeMap::new();
    for layer in &img.layers {
        for f in layer {
            let (Some(name), FileKind::File(data)) = (f.path.strip_prefix("manifests/"), &f.kind) else { continue };
            if name.contains('/') {
                continue;
            }
            files.insert(name.to_owned(), ManifestFile { data: data.clone(), mtime: f.mtime });
        }
    }
    let image_references = files.remove("image-references");
    Operator { tag: img.tag.clone(), files, image_references, is_override: false }
}

/// Every operator image (CVO included) of the stream, extracted.
pub(crate) fn operators(images: &[FixtureImage]) -> Vec<Operator> {
    images.iter().filter(|i| i.labels.contains_key(OPERATOR_LABEL)).map(operator).collect()
}

/// The source-to-release mapping an operator's `image-references` defines
/// (what `OperatorTransform::from_image_references` builds its mapper from).
pub(crate) fn references(op: &Operator, release: &ImageStream) -> Vec<ImageReference> {
    let ir = op.image_references.as_ref().expect("every fixture operator has image-references");
    let is = ImageStream::parse(&ir.data, "image-references").expect("fixture image-references parse");
    is.spec
        .tags
        .iter()
        .filter_map(|t| {
            let source = t.from.as_ref()?.name.clone();
            let target = release.tag(&t.name)?.from.as_ref()?.name.clone();
            Some(ImageReference { name: t.name.clone(), source, target })
        })
        .collect()
}

/// Sum of the operators' manifest bytes (`image-references` excluded).
pub(crate) fn manifest_bytes(ops: &[Operator]) -> u64 {
    ops.iter().flat_map(|o| o.files.values()).map(|f| f.data.len() as u64).sum()
}

/// Deterministic, not trivially compressible bytes (xorshift).
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
