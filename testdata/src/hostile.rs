//! Images whose layers or configs no honest writer produces, for testing
//! that readers refuse them (or, where a reader can, carry on without them).
//!
//! relbuild-core's `LayerWriter` refuses `..` path components by design, so
//! these layers are written here with a raw USTAR writer that puts any bytes
//! into the name field.

use std::collections::BTreeMap;
use std::io::Write as _;

use anyhow::{Result, bail, ensure};
use bytes::Bytes;
use relbuild_core::image::{Descriptor, Digest, Manifest, MediaType, RawManifest};

use crate::fixture::{MTIME, OPERATOR_LABEL, Role};
use crate::generate::BuiltImage;

/// One entry of a raw tar: a directory (`None`) or a regular file, named
/// exactly as given.
#[derive(Debug, Clone, Copy)]
pub struct RawEntry<'a> {
    /// The name as written into the header, `..` and all (at most 100 bytes).
    pub name: &'a str,
    /// The content of a regular file; `None` for a directory.
    pub data: Option<&'a [u8]>,
}

/// A plain tar of `entries`, names written verbatim (no normalisation, no
/// checks), ending with the two zero blocks.
pub fn raw_tar(entries: &[RawEntry<'_>]) -> Result<Vec<u8>> {
    let mut tar = Vec::new();
    for e in entries {
        ensure!(e.name.len() <= 100, "raw tar names are at most 100 bytes: `{}`", e.name);
        let mut h = tar::Header::new_ustar();
        h.as_mut_bytes()[..e.name.len()].copy_from_slice(e.name.as_bytes());
        let data = e.data.unwrap_or_default();
        h.set_size(data.len() as u64);
        h.set_mtime(MTIME as u64);
        match e.data {
            Some(_) => {
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
            }
            None => {
                h.set_mode(0o755);
                h.set_entry_type(tar::EntryType::Directory);
            }
        }
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend_from_slice(data);
        tar.resize(tar.len().next_multiple_of(512), 0);
    }
    tar.resize(tar.len() + 1024, 0);
    Ok(tar)
}

/// An image of `tars` (each gzipped into one layer, lowest first) with these
/// config labels, as a Docker schema 2 manifest.
pub fn image_from_tars(
    tag: &str,
    role: Role,
    labels: &BTreeMap<String, String>,
    tars: &[Vec<u8>],
) -> Result<BuiltImage> {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in tars {
        diff_ids.push(Digest::sha256(tar));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(tar)?;
        let blob = Bytes::from(gz.finish()?);
        layers.push((Descriptor::new(MediaType::DockerLayerGzip, Digest::sha256(&blob), blob.len() as u64), blob));
    }
    crate::generate::assemble_image(tag, role, serde_json::json!({"Labels": labels}), None, layers, diff_ids)
}

/// The name of the escaping entry in [`hostile_operator`]'s top layer.
pub const ESCAPING_ENTRY: &str = "manifests/../../evil.yaml";

/// An operator image (tag `hostile-operator`) whose only layer has an
/// ordinary manifest and then [`ESCAPING_ENTRY`], which climbs out of the
/// layer root.
pub fn hostile_operator() -> Result<BuiltImage> {
    let manifest = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: innocent\n";
    let evil = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: evil\n";
    let tar = raw_tar(&[
        RawEntry { name: "manifests/", data: None },
        RawEntry { name: "manifests/a.yaml", data: Some(manifest) },
        RawEntry { name: ESCAPING_ENTRY, data: Some(evil) },
    ])?;
    let labels = BTreeMap::from([(OPERATOR_LABEL.to_owned(), "true".to_owned())]);
    image_from_tars("hostile-operator", Role::Operator, &labels, &[tar])
}

/// `image` with its config blob cut in half, so that it is no longer JSON,
/// and a manifest naming that blob (the layers are unchanged), tagged
/// `<tag>-bad-config`. Registries store any config blob; readers that need
/// the config must say so, and those that only want its creation time can
/// do without it.
pub fn truncated_config(image: &BuiltImage) -> Result<BuiltImage> {
    let Manifest::Image(mut manifest) = image.manifest.parse()? else {
        bail!("`{}` is not an image manifest", image.tag);
    };
    let bytes = image.config.1.slice(..image.config.1.len() / 2);
    ensure!(serde_json::from_slice::<serde_json::Value>(&bytes).is_err(), "half a config is still JSON");
    let desc = Descriptor::new(image.config.0.media_type.clone(), Digest::sha256(&bytes), bytes.len() as u64);
    manifest.config = desc.clone();
    Ok(BuiltImage {
        tag: format!("{}-bad-config", image.tag),
        manifest: RawManifest::from_manifest(&Manifest::Image(manifest))?,
        config: (desc, bytes),
        ..image.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_escaping_name_is_written_verbatim() {
        let image = hostile_operator().expect("builds");
        let (_, blob) = &image.layers[0];
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar).expect("gunzip");
        let mut archive = tar::Archive::new(&tar[..]);
        let names: Vec<Vec<u8>> =
            archive.entries().expect("entries").map(|e| e.expect("entry").path_bytes().into_owned()).collect();
        assert_eq!(names, [&b"manifests/"[..], b"manifests/a.yaml", ESCAPING_ENTRY.as_bytes()]);
    }

    #[test]
    fn a_truncated_config_is_named_by_its_manifest() {
        let image = hostile_operator().expect("builds");
        let bad = truncated_config(&image).expect("truncates");
        assert_eq!(bad.tag, "hostile-operator-bad-config");
        assert!(image.config.1.starts_with(&bad.config.1) && bad.config.1.len() < image.config.1.len());
        let Ok(Manifest::Image(m)) = bad.manifest.parse() else { panic!("an image manifest") };
        assert_eq!(m.config, bad.config.0);
        assert_eq!(m.config.digest, Digest::sha256(&bad.config.1));
        assert_eq!(bad.layers, image.layers);
    }
}
