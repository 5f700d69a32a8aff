//! The `release-manifests/` layer (spec §3.1, oc `writePayload`).
//!
//! Entry order: the directory `release-manifests` (no trailing `/`, mode
//! 0777), `release-manifests/image-references`, `release-manifests/release-metadata`
//! (both 0444), then every operator sorted by tag name and, within it, every
//! file in source-name byte order (0444, each with its source mtime). The
//! directory and the two JSON files get `newest`: the largest mtime of any
//! top-level non-directory entry of any operator's extracted `manifests/`,
//! *including* the operator's own `image-references` (which is not copied).
//! Headers are written exactly as Go's `archive/tar` does ([`GoTarWriter`]).

use std::collections::BTreeMap;
use std::io::Write;

use super::names::{IMAGE_REFERENCES, PAYLOAD_DIR, RELEASE_METADATA};
use super::naming::{Collision, PayloadNamer};
use super::rewrite::{OperatorTransform, RewriteMode};
use super::{CincinnatiMetadata, Error, ImageStream};
use crate::layer::gotar::GoTarWriter;

/// One file of an operator's extracted `manifests/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Its bytes.
    pub data: Vec<u8>,
    /// Its mtime from the image layer, in Unix seconds.
    pub mtime: i64,
}

/// One operator image's extracted manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The release tag name.
    pub tag: String,
    /// Regular files directly under `manifests/`, by name, except
    /// `image-references` (subdirectories, symlinks and whiteouts excluded).
    pub files: BTreeMap<String, ManifestFile>,
    /// `manifests/image-references`, which drives rewriting and is not copied.
    pub image_references: Option<ManifestFile>,
    /// The tag is an override (positional `SRC=DST`) of an operator tag
    /// already in the input. oc then lists it twice and writes its files
    /// twice (the second copy with `_<n>` names); [`RewriteMode::Oc`]
    /// reproduces that, [`RewriteMode::Fixed`] writes them once. Leave false
    /// for an override that adds a new tag (oc lists those once).
    pub is_override: bool,
}

/// What [`write_payload`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadSummary {
    /// The mtime of the directory and the two JSON files.
    pub newest: i64,
    /// The operators written, in processing order (an override twice in oc mode).
    pub operators: Vec<String>,
    /// Destination-name collisions (oc renames silently).
    pub collisions: Vec<Collision>,
    /// Number of operator files written.
    pub files: usize,
}

/// Options of [`write_payload`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PayloadOptions {
    /// Rewriting rules and override handling.
    pub mode: RewriteMode,
    /// `--allow-missing-images`: skip image-references entries naming a tag
    /// the release lacks instead of failing.
    pub allow_missing_images: bool,
}

/// Files as written into the payload, handed to the observer of
/// [`write_payload_observed`]: the release files first, then each
/// operator's, in tar order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFiles {
    /// The operator tag; `None` for `image-references` and `release-metadata`.
    pub operator: Option<String>,
    /// Name under `release-manifests/` and final bytes (rewritten), in tar order.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Writes the uncompressed `release-manifests/` tar to `out` (the caller
/// stacks gzip and hashing on top). `release` is the final image stream
/// (pruned, tags sorted); operators may come in any order.
pub fn write_payload<W: Write>(
    out: W,
    release: &ImageStream,
    metadata: &CincinnatiMetadata,
    operators: &[Operator],
    options: PayloadOptions,
) -> Result<(PayloadSummary, W), Error> {
    write_payload_observed(out, release, metadata, operators, options, &mut |_| {})
}

/// [`write_payload`], handing every group of files written to `observe`
/// (to lint them while the layer is being compressed, say) without copying.
pub fn write_payload_observed<W: Write>(
    out: W,
    release: &ImageStream,
    metadata: &CincinnatiMetadata,
    operators: &[Operator],
    options: PayloadOptions,
    observe: &mut dyn FnMut(WrittenFiles),
) -> Result<(PayloadSummary, W), Error> {
    let mut ordered: Vec<&Operator> = Vec::with_capacity(operators.len() + 1);
    for op in operators {
        ordered.push(op);
        if op.is_override && options.mode == RewriteMode::Oc {
            ordered.push(op);
        }
    }
    ordered.sort_by(|a, b| a.tag.cmp(&b.tag));
    ordered.retain(|op| !op.files.is_empty() || op.image_references.is_some());

    let newest = ordered
        .iter()
        .flat_map(|op| op.files.values().chain(op.image_references.as_ref()))
        .map(|f| f.mtime)
        .max()
        .unwrap_or(0);

    let io = |source| Error::Write { source };
    let mut tar = GoTarWriter::new(out);
    tar.append_dir(PAYLOAD_DIR, 0o777, newest).map_err(io)?;
    let release_files =
        vec![(IMAGE_REFERENCES.to_owned(), release.to_json()?), (RELEASE_METADATA.to_owned(), metadata.to_json()?)];
    for (name, data) in &release_files {
        tar.append_file(&format!("{PAYLOAD_DIR}/{name}"), 0o444, newest, data).map_err(io)?;
    }
    observe(WrittenFiles { operator: None, files: release_files });

    let mut namer = PayloadNamer::new();
    let mut names = Vec::with_capacity(ordered.len());
    let mut count = 0;
    // Rewriting runs one operator ahead on its own thread while this one
    // writes the tar; both keep operator order, so errors come in order too.
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Vec<u8>>, Error>>(8);
        let ops = &ordered;
        scope.spawn(move || {
            for op in ops {
                let rewritten = rewrite_operator(op, release, options);
                let failed = rewritten.is_err();
                if tx.send(rewritten).is_err() || failed {
                    break;
                }
            }
        });
        for op in ops {
            let rewritten =
                rx.recv().map_err(|_| Error::Write { source: std::io::Error::other("rewriting stopped") })??;
            let mut written = Vec::with_capacity(op.files.len());
            for ((file, content), data) in op.files.iter().zip(rewritten) {
                let dst = namer.name(&op.tag, file);
                tar.append_file(&format!("{PAYLOAD_DIR}/{dst}"), 0o444, content.mtime, &data).map_err(io)?;
                written.push((dst, data));
                count += 1;
            }
            observe(WrittenFiles { operator: Some(op.tag.clone()), files: written });
            names.push(op.tag.clone());
        }
        Ok::<_, Error>(())
    })?;
    let out = tar.finish().map_err(io)?;
    Ok((PayloadSummary { newest, operators: names, collisions: namer.into_collisions(), files: count }, out))
}

/// The transform of one operator's files against `release`: its
/// `image-references` mapping (if any) and the version substitution.
pub fn operator_transform(
    op: &Operator,
    release: &ImageStream,
    options: PayloadOptions,
) -> Result<OperatorTransform, Error> {
    match &op.image_references {
        Some(ir) => OperatorTransform::from_image_references(
            &op.tag,
            &ir.data,
            release,
            options.allow_missing_images,
            options.mode,
        ),
        None => Ok(OperatorTransform::simple(&release.metadata.name)),
    }
}

/// One operator's files rewritten, in file-name order.
fn rewrite_operator(op: &Operator, release: &ImageStream, options: PayloadOptions) -> Result<Vec<Vec<u8>>, Error> {
    let transform = operator_transform(op, release, options)?;
    op.files
        .iter()
        .map(|(file, content)| {
            transform.apply(&content.data).map_err(|source| Error::Version {
                operator: op.tag.clone(),
                file: file.clone(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::TagReference;

    fn release() -> ImageStream {
        let mut is = ImageStream::default();
        is.metadata.name = "1.0.0".into();
        is.spec.tags.push(TagReference::docker_image("op", "reg/r@sha256:1"));
        is
    }

    fn op(files: &[(&str, &str)], ir: Option<&str>) -> Operator {
        Operator {
            tag: "op".into(),
            files: files
                .iter()
                .map(|(n, d)| ((*n).to_owned(), ManifestFile { data: d.as_bytes().to_vec(), mtime: 5 }))
                .collect(),
            image_references: ir.map(|d| ManifestFile { data: d.as_bytes().to_vec(), mtime: 9 }),
            is_override: false,
        }
    }

    fn run(ops: &[Operator]) -> Result<PayloadSummary, Error> {
        let md = CincinnatiMetadata::new("1.0.0", &[] as &[&str], &[] as &[&str], BTreeMap::new())?;
        write_payload(Vec::new(), &release(), &md, ops, PayloadOptions::default()).map(|(s, _)| s)
    }

    #[test]
    fn errors_name_operator_and_file() {
        let ir = "kind: ImageStream\napiVersion: image.openshift.io/v1\nspec:\n  tags:\n  - name: missing\n    from: {kind: DockerImage, name: q/x}\n";
        let err = run(&[op(&[("a.yaml", "x")], Some(ir))]).expect_err("unknown tag").to_string();
        assert_eq!(
            err,
            "operator \"op\" contained an invalid image-references file: no input image tag named \"missing\""
        );
        let err = run(&[op(&[("a.yaml", " 0.0.1-snapshot-nope")], None)]).expect_err("unknown version");
        assert_eq!(err.to_string(), "operator \"op\", file `a.yaml`: cannot substitute versions");
        let src = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(src.as_deref(), Some("unknown version reference \"nope\""));
    }

    #[test]
    fn newest_includes_image_references() {
        let ir = "kind: ImageStream\napiVersion: image.openshift.io/v1\n";
        let s = run(&[op(&[("a.yaml", "x")], Some(ir))]).expect("writes");
        assert_eq!((s.newest, s.files), (9, 1));
        assert_eq!(run(&[]).expect("writes").newest, 0);
    }
}
