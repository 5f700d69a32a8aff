//! Offline checks of stored images: [`verify`] tells a distribution storage
//! tree from an OCI layout and checks either, reporting every problem the
//! same way ([`Problem`]).
//!
//! A tree's check ([`DistTree::verify`]) is stricter than
//! `docker-registry garbage-collect --dry-run`, which neither re-hashes
//! blobs nor checks per-repository links; a layout's is [`OciDir::fsck`].

use std::fmt;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::tree::{DistTree, children, parse_link};
use super::{Error, FsckReport, OciDir, Result};
use crate::image::{Digest, Manifest, RawManifest};

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A blob's data does not hash to the digest its path names.
    CorruptBlob {
        /// What it hashes to.
        found: Digest,
    },
    /// A link names a digest whose data is not there.
    MissingBlob,
    /// A link file that is not exactly `sha256:<64 hex>` (a trailing
    /// newline, say, which makes the registry answer 500).
    MalformedLink {
        /// Its length in bytes (a good one has 71).
        len: usize,
    },
    /// A link whose content names another digest than its directory.
    WrongLink {
        /// The digest in the file.
        found: Digest,
    },
    /// A manifest that does not parse.
    InvalidManifest,
    /// A manifest names a config or layer with no `_layers` link in its repository.
    UnlinkedBlob {
        /// The manifest.
        manifest: Digest,
    },
    /// An index names a child with no revision link in its repository.
    UnlinkedChild {
        /// The index.
        index: Digest,
    },
    /// A tag names a digest with no revision link.
    DanglingTag,
    /// A blob stored with another size than a descriptor names (layouts).
    WrongSize {
        /// The descriptor's size.
        expected: u64,
        /// The stored size.
        found: u64,
    },
    /// A file left by an interrupted write (harmless: readers never look
    /// there, and a rerun replaces it; not counted as damage).
    Leftover,
}

/// One problem of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// The digest concerned, when there is one.
    pub digest: Option<Digest>,
    /// The file concerned.
    pub path: PathBuf,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ProblemKind::CorruptBlob { found } => write!(f, "corrupt blob (its content is {found})")?,
            ProblemKind::MissingBlob => f.write_str("missing blob")?,
            ProblemKind::MalformedLink { len } => write!(f, "malformed link ({len} bytes, not `sha256:<hex>`)")?,
            ProblemKind::WrongLink { found } => write!(f, "link names {found}")?,
            ProblemKind::InvalidManifest => f.write_str("invalid manifest")?,
            ProblemKind::UnlinkedBlob { manifest } => write!(f, "blob of manifest {manifest} not linked")?,
            ProblemKind::UnlinkedChild { index } => write!(f, "child of index {index} not linked")?,
            ProblemKind::DanglingTag => f.write_str("tag names an unlinked manifest")?,
            ProblemKind::WrongSize { expected, found } => write!(f, "wrong size ({found} bytes, expected {expected})")?,
            ProblemKind::Leftover => f.write_str("leftover of an interrupted write")?,
        }
        if let Some(d) = &self.digest {
            write!(f, ": {d}")?;
        }
        write!(f, " (`{}`)", self.path.display())
    }
}

/// What [`DistTree::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeReport {
    /// Blobs re-hashed.
    pub blobs: usize,
    /// Link files read.
    pub links: usize,
    /// Manifests parsed.
    pub manifests: usize,
    /// Tags resolved.
    pub tags: usize,
    /// Every problem, in path order.
    pub problems: Vec<Problem>,
}

impl TreeReport {
    /// True when nothing is damaged (leftovers of interrupted writes aside).
    pub fn is_ok(&self) -> bool {
        self.problems.iter().all(|p| p.kind == ProblemKind::Leftover)
    }
}

/// Which kind of store [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreKind {
    /// A distribution storage tree (`docker/registry/v2/`).
    Tree,
    /// An OCI image layout (`oci-layout`).
    Layout,
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tree => "distribution storage tree",
            Self::Layout => "OCI image layout",
        })
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verification {
    /// What the path holds.
    pub kind: StoreKind,
    /// The counts and problems (for a layout, links and tags stay 0 and
    /// `manifests` counts none: [`OciDir::fsck`] walks them without counting).
    pub report: TreeReport,
}

/// Checks the tree or layout at `path`: every blob re-hashed, every
/// reference followed. Errors when the path is neither, or cannot be read.
pub fn verify(path: &Path) -> Result<Verification> {
    if path.join("docker/registry/v2").is_dir() {
        return Ok(Verification { kind: StoreKind::Tree, report: DistTree::open(path)?.verify()? });
    }
    if path.join("oci-layout").is_file() {
        let dir = OciDir::open(path)?;
        return Ok(Verification { kind: StoreKind::Layout, report: layout_report(&dir, &dir.fsck()?) });
    }
    Err(Error::NotAStore { path: path.to_path_buf() })
}

/// A layout's fsck in the tree report's terms.
fn layout_report(dir: &OciDir, fsck: &FsckReport) -> TreeReport {
    let path = |d: &Digest| dir.blob_path(d).unwrap_or_else(|_| dir.path().to_path_buf());
    let mut problems = Vec::new();
    for c in &fsck.corrupt {
        problems.push(Problem {
            kind: ProblemKind::CorruptBlob { found: c.found.clone() },
            digest: Some(c.expected.clone()),
            path: c.path.clone(),
        });
    }
    for m in &fsck.missing {
        problems.push(Problem {
            kind: ProblemKind::MissingBlob,
            digest: Some(m.digest.clone()),
            path: path(&m.digest),
        });
    }
    for w in &fsck.wrong_size {
        problems.push(Problem {
            kind: ProblemKind::WrongSize { expected: w.expected, found: w.found },
            digest: Some(w.digest.clone()),
            path: path(&w.digest),
        });
    }
    for d in &fsck.invalid_manifests {
        problems.push(Problem { kind: ProblemKind::InvalidManifest, digest: Some(d.clone()), path: path(d) });
    }
    for l in &fsck.leftovers {
        problems.push(Problem { kind: ProblemKind::Leftover, digest: None, path: l.clone() });
    }
    problems.sort_by(|a, b| a.path.cmp(&b.path));
    TreeReport { blobs: fsck.blobs_checked as usize, problems, ..TreeReport::default() }
}

pub(super) fn verify_tree(tree: &DistTree) -> Result<TreeReport> {
    let mut report = TreeReport::default();
    let v2 = tree.v2_path();
    let blobs = blob_files(&v2.join("blobs/sha256"))?;
    report.blobs = blobs.len();
    report.problems.extend(hash_all(&blobs));
    let scratch = tree.scratch_path();
    if scratch.is_dir() {
        for e in fs::read_dir(&scratch).map_err(Error::io(&scratch))?.flatten() {
            report.problems.push(Problem { kind: ProblemKind::Leftover, digest: None, path: e.path() });
        }
    }
    for repo in tree.repositories()? {
        check_repository(tree, &repo, &mut report)?;
    }
    report.problems.sort_by(|a, b| a.path.cmp(&b.path));
    report.problems.dedup();
    Ok(report)
}

/// `(expected digest, data path)` of every blob.
fn blob_files(dir: &Path) -> Result<Vec<(Digest, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for prefix in fs::read_dir(dir).map_err(Error::io(dir))?.flatten() {
        for blob in fs::read_dir(prefix.path()).map_err(Error::io(prefix.path()))?.flatten() {
            let name = blob.file_name().to_string_lossy().into_owned();
            if let Ok(d) = format!("sha256:{name}").parse::<Digest>() {
                out.push((d, blob.path().join("data")));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Re-hashes every blob, split over the cores.
fn hash_all(blobs: &[(Digest, PathBuf)]) -> Vec<Problem> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let chunk = blobs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = blobs
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().filter_map(hash_one).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

fn hash_one((digest, path): &(Digest, PathBuf)) -> Option<Problem> {
    let problem = |kind| Some(Problem { kind, digest: Some(digest.clone()), path: path.clone() });
    let Ok(mut file) = fs::File::open(path) else { return problem(ProblemKind::MissingBlob) };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(_) => return problem(ProblemKind::MissingBlob),
        }
    }
    let found: Digest = format!("sha256:{}", hex::encode(hasher.finalize())).parse().expect("a sha256 digest");
    (&found != digest).then(|| Problem {
        kind: ProblemKind::CorruptBlob { found },
        digest: Some(digest.clone()),
        path: path.clone(),
    })
}

/// The digests linked under `<dir>/sha256/*/link`, checking each link.
fn links(tree: &DistTree, dir: &Path, report: &mut TreeReport) -> Result<Vec<Digest>> {
    let mut out = Vec::new();
    let base = dir.join("sha256");
    if !base.is_dir() {
        return Ok(out);
    }
    for e in fs::read_dir(&base).map_err(Error::io(&base))?.flatten() {
        let path = e.path().join("link");
        let Some(named) = format!("sha256:{}", e.file_name().to_string_lossy()).parse::<Digest>().ok() else {
            continue;
        };
        if let Some(d) = check_link(tree, &path, report) {
            if d != named {
                report.problems.push(Problem { kind: ProblemKind::WrongLink { found: d }, digest: Some(named), path });
                continue;
            }
            out.push(d);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads one link file: well-formed, and naming data that is there.
fn check_link(tree: &DistTree, path: &Path, report: &mut TreeReport) -> Option<Digest> {
    report.links += 1;
    let Ok(bytes) = fs::read(path) else {
        report.problems.push(Problem {
            kind: ProblemKind::MalformedLink { len: 0 },
            digest: None,
            path: path.to_path_buf(),
        });
        return None;
    };
    let Some(d) = parse_link(&bytes) else {
        report.problems.push(Problem {
            kind: ProblemKind::MalformedLink { len: bytes.len() },
            digest: None,
            path: path.to_path_buf(),
        });
        return None;
    };
    if !tree.blob_path(&d).is_ok_and(|p| p.is_file()) {
        report.problems.push(Problem { kind: ProblemKind::MissingBlob, digest: Some(d), path: path.to_path_buf() });
        return None;
    }
    Some(d)
}

fn check_repository(tree: &DistTree, repo: &str, report: &mut TreeReport) -> Result<()> {
    let dir = tree.v2_path().join("repositories").join(repo);
    let layers = links(tree, &dir.join("_layers"), report)?;
    let revisions = links(tree, &dir.join("_manifests/revisions"), report)?;
    for digest in &revisions {
        let path = tree.blob_path(digest)?;
        let parsed = fs::read(&path).ok().and_then(|b| RawManifest::new(b, None).ok()).filter(|m| m.parse().is_ok());
        let Some(raw) = parsed else {
            report.problems.push(Problem { kind: ProblemKind::InvalidManifest, digest: Some(digest.clone()), path });
            continue;
        };
        report.manifests += 1;
        if let Ok(Manifest::Image(m)) = raw.parse() {
            for d in std::iter::once(&m.config).chain(&m.layers) {
                if layers.binary_search(&d.digest).is_err() {
                    report.problems.push(Problem {
                        kind: ProblemKind::UnlinkedBlob { manifest: digest.clone() },
                        digest: Some(d.digest.clone()),
                        path: dir.join("_layers/sha256").join(d.digest.encoded()).join("link"),
                    });
                }
            }
        }
        for child in children(&raw) {
            if revisions.binary_search(&child.digest).is_err() {
                report.problems.push(Problem {
                    kind: ProblemKind::UnlinkedChild { index: digest.clone() },
                    digest: Some(child.digest.clone()),
                    path: dir.join("_manifests/revisions/sha256").join(child.digest.encoded()).join("link"),
                });
            }
        }
    }
    for tag in tree.tags(repo)? {
        let tag_dir = dir.join("_manifests/tags").join(&tag);
        let current = tag_dir.join("current/link");
        report.tags += 1;
        if let Some(d) = check_link(tree, &current, report)
            && revisions.binary_search(&d).is_err()
        {
            report.problems.push(Problem { kind: ProblemKind::DanglingTag, digest: Some(d), path: current });
        }
        links(tree, &tag_dir.join("index"), report)?;
    }
    Ok(())
}
