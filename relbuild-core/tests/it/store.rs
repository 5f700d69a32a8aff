//! The OCI layout store and oci-archives, cross-checked with skopeo both ways.

use std::fs;
use std::io::Write;
use std::path::Path;

use relbuild_core::image::{Descriptor, Digest, MediaType};
use relbuild_core::store::{self, OciDir, StoredImage};
use relbuild_testdata::registry::skopeo;

/// A one-file gzip layer, byte-for-byte the same on every run: fixed header
/// fields in the tar, and flate2's gzip header has mtime 0.
fn tiny_layer(content: &[u8]) -> (Vec<u8>, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(content.len() as u64);
    tar.append_data(&mut h, "hello.txt", content).expect("tar entry");
    let plain = tar.into_inner().expect("tar");
    let diff_id = Digest::sha256(&plain);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).expect("gzip");
    (gz.finish().expect("gzip"), diff_id)
}

/// Stores a small, valid OCI image in `dir` through the streaming blob writer.
fn write_tiny_image(dir: &OciDir, content: &[u8], tag: &str) -> StoredImage {
    let (layer, diff_id) = tiny_layer(content);
    let mut w = dir.blob_writer().expect("blob writer");
    w.write_all(&layer).expect("write layer");
    let desc = Descriptor::new(MediaType::OciLayerGzip, Digest::sha256(&layer), layer.len() as u64);
    w.complete_verified_as(&desc).expect("layer stored");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"io.openshift.release":"4.0.0-test"}}}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
    );
    dir.write_image(config.as_bytes(), vec![desc], Some(tag)).expect("image stored")
}

fn skopeo_digest(transport_ref: &str) -> String {
    let out = skopeo(&["--insecure-policy", "inspect", transport_ref]).expect("skopeo inspect");
    let v: serde_json::Value = serde_json::from_str(&out).expect("skopeo prints JSON");
    v["Digest"].as_str().expect("a Digest field").to_owned()
}

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

#[test]
fn skopeo_reads_the_layout_we_write() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = OciDir::create(tmp.path().join("layout")).expect("layout");
    let img = write_tiny_image(&dir, b"hello\n", "v1");
    write_tiny_image(&dir, b"other\n", "v2");

    assert_eq!(skopeo_digest(&oci(dir.path(), "v1")), img.manifest.digest().as_str());
    let raw = skopeo(&["inspect", "--raw", &oci(dir.path(), "v1")]).expect("inspect --raw");
    assert_eq!(raw.as_bytes(), &img.manifest.bytes()[..], "skopeo sees our exact manifest bytes");
    let config = skopeo(&["inspect", "--config", "--raw", &oci(dir.path(), "v1")]).expect("inspect --config");
    assert_eq!(config.as_bytes(), &img.config[..]);

    // skopeo can copy out of it (reading every blob), and what it writes we read back.
    let copy = tmp.path().join("copy");
    skopeo(&["--insecure-policy", "copy", "--quiet", &oci(dir.path(), "v1"), &oci(&copy, "copied")]).expect("copy");
    let copied = OciDir::open(&copy).expect("skopeo's layout opens");
    assert_eq!(copied.list_tags().expect("tags"), ["copied"]);
    let back = copied.read_image("copied").expect("image");
    assert_eq!(back.manifest, img.manifest);
    assert_eq!(back.config, img.config);
    let report = copied.fsck().expect("fsck");
    assert!(report.is_ok() && report.leftovers.is_empty(), "{report:?}");
}

#[test]
fn oci_archives_cross_read() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = OciDir::create(tmp.path().join("layout")).expect("layout");
    let img = write_tiny_image(&dir, b"hello\n", "v1");

    // skopeo writes an archive; we read it.
    let theirs = tmp.path().join("theirs.tar");
    let theirs_ref = format!("oci-archive:{}:v1", theirs.display());
    skopeo(&["--insecure-policy", "copy", "--quiet", &oci(dir.path(), "v1"), &theirs_ref]).expect("copy");
    let archive = store::read_archive(&theirs).expect("skopeo's archive unpacks");
    assert_eq!(archive.resolve("v1").expect("tag").digest(), img.manifest.digest());
    assert_eq!(archive.read_image("v1").expect("image").config, img.config);
    assert!(archive.fsck().expect("fsck").is_ok());

    // We write an archive; skopeo reads it.
    let ours = tmp.path().join("ours.tar");
    store::write_archive_to_path(&dir, &ours).expect("archive written");
    assert_eq!(skopeo_digest(&format!("oci-archive:{}:v1", ours.display())), img.manifest.digest().as_str());
    let out = tmp.path().join("from-ours");
    let ours_ref = format!("oci-archive:{}:v1", ours.display());
    skopeo(&["--insecure-policy", "copy", "--quiet", &ours_ref, &oci(&out, "v1")]).expect("skopeo copies it out");
    assert_eq!(OciDir::open(&out).expect("opens").resolve("v1").expect("tag").digest(), img.manifest.digest());

    // Two layouts skopeo wrote for the same image archive to the same bytes: only content counts.
    let mut again = Vec::new();
    store::write_archive(&archive, &mut again).expect("re-archived");
    let mut direct = Vec::new();
    store::write_archive(&OciDir::open(&out).expect("opens"), &mut direct).expect("archived");
    assert_eq!(again, direct, "archives depend only on the layout's content");
}

#[test]
fn failures_on_skopeo_written_layouts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = OciDir::create(tmp.path().join("layout")).expect("layout");
    let img = write_tiny_image(&dir, b"hello\n", "v1");
    let copy = tmp.path().join("copy");
    skopeo(&["--insecure-policy", "copy", "--quiet", &oci(dir.path(), "v1"), &oci(&copy, "v1")]).expect("copy");
    let copied = OciDir::open(&copy).expect("opens");

    let e = copied.resolve("v9").expect_err("unknown tag");
    assert!(e.is_not_found());
    assert!(e.to_string().contains("`v9`"), "{e}");

    // Flip one byte of the layer: fsck names it, reading it fails, skopeo agrees.
    let layer = &img.layers()[0];
    let path = copied.blob_path(&layer.digest).expect("path");
    let mut bytes = fs::read(&path).expect("layer");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, &bytes).expect("corrupt");
    let report = copied.fsck().expect("fsck");
    assert_eq!(report.corrupt.len(), 1, "{report:?}");
    assert_eq!(report.corrupt[0].expected, layer.digest);
    assert!(copied.read_blob_verified(&layer.digest, Some(layer.size)).expect_err("corrupt").is_corrupt());
    let sink = tmp.path().join("sink");
    assert!(
        skopeo(&["--insecure-policy", "copy", "--quiet", &oci(&copy, "v1"), &oci(&sink, "v1")]).is_err(),
        "skopeo also refuses the corrupt blob"
    );

    // An archive with a `..` entry is refused, and nothing escapes.
    let evil = tmp.path().join("evil.tar");
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..7].copy_from_slice(b"../pwn!");
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    h.set_cksum();
    tar.append(&h, &b"x"[..]).expect("entry");
    fs::write(&evil, tar.into_inner().expect("tar")).expect("write");
    let unpack = tmp.path().join("unpack");
    fs::create_dir(&unpack).expect("mkdir");
    let e = store::read_archive_with(&evil, &store::ArchiveOptions::default().temp_dir(&unpack)).expect_err("refused");
    assert!(matches!(e, store::Error::UnsafeArchiveEntry { .. }), "{e:?}");
    assert!(!tmp.path().join("pwn!").exists());
}
