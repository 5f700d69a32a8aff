//! The synthetic release stream: what images exist and what is in them.
//!
//! This module is pure data. [`stream_images`] describes a cluster-version
//! operator, `N` operator images labelled `io.openshift.release.operator=true`
//! (each with `/manifests` and two layers), one operand per operator carrying
//! the `io.openshift.build.*` labels (versions with display names set,
//! absent or empty: [`operand_display_names`]), and one image nothing
//! references. The
//! manifests carry every edge case of the spec (§2): references followed by a
//! comma, two references one space apart, `0.0.1-snapshot` and
//! `0.0.1-snapshot-kubernetes`, a file name over 100 characters, the same
//! file name in two operators, JSON and non-YAML files, a subdirectory, a
//! symlink, and a decoy in a lower layer. Everything is deterministic.

use std::collections::BTreeMap;

/// The label that marks operator images.
pub const OPERATOR_LABEL: &str = "io.openshift.release.operator";
/// The creation time of every fixture image.
pub const CREATED: &str = "2024-01-01T00:00:00Z";
/// The mtime of most fixture files (2024-03-09T16:00:00Z).
pub const MTIME: i64 = 1_710_000_000;
/// The Kubernetes version the operands declare.
pub const KUBE_VERSION: &str = "1.29.1";

/// One entry of a fixture layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureFile {
    /// Path inside the layer, without a leading `/`.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, unix seconds.
    pub mtime: i64,
    /// What the entry is.
    pub kind: FileKind,
}

/// The type and content of a [`FixtureFile`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File(Vec<u8>),
    /// A directory.
    Dir,
    /// A symbolic link to the target.
    Symlink(String),
}

/// What part an image plays in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The cluster-version-operator: base image of the release, and an operator.
    Cvo,
    /// An operator image with `/manifests`.
    Operator,
    /// An image operators reference.
    Operand,
    /// An image nobody references; pruned from releases.
    Unreferenced,
}

/// One fixture image.
#[derive(Clone, Debug)]
pub struct FixtureImage {
    /// The tag name in the image stream.
    pub tag: String,
    /// What it is.
    pub role: Role,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// Layers, lowest first.
    pub layers: Vec<Vec<FixtureFile>>,
}

/// What stream to generate.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    /// How many operators (each with one operand), besides the CVO.
    pub operators: usize,
}

impl Default for StreamSpec {
    fn default() -> Self {
        Self { operators: 3 }
    }
}

fn file(path: &str, mtime: i64, data: impl Into<Vec<u8>>) -> FixtureFile {
    FixtureFile { path: path.to_owned(), mode: 0o644, mtime, kind: FileKind::File(data.into()) }
}

fn dir(path: &str, mtime: i64) -> FixtureFile {
    FixtureFile { path: path.to_owned(), mode: 0o755, mtime, kind: FileKind::Dir }
}

/// The upstream repository an operator's manifests name for `tag`.
pub fn upstream_repo(tag: &str) -> String {
    format!("quay.io/openshift/origin-{tag}")
}

/// The tag names of operator `i` and its operand. Operator 0 is the
/// monitoring operator with operand `prometheus`, so examples read naturally.
pub fn operator_names(i: usize) -> (String, String) {
    if i == 0 {
        ("cluster-monitoring-operator".to_owned(), "prometheus".to_owned())
    } else {
        (format!("component-{i:03}-operator"), format!("component-{i:03}"))
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn image_references(pairs: &[(&str, String)]) -> Vec<u8> {
    let tags: Vec<serde_json::Value> = pairs
        .iter()
        .map(|(name, from)| serde_json::json!({"name": name, "from": {"kind": "DockerImage", "name": from}}))
        .collect();
    let is = serde_json::json!({"kind": "ImageStream", "apiVersion": "image.openshift.io/v1", "spec": {"tags": tags}});
    serde_json::to_vec_pretty(&is).expect("a json! value always serialises")
}

fn binary_layer(path: &str, seed: usize) -> Vec<FixtureFile> {
    // A little incompressible-ish content so layers are not all identical.
    let data: Vec<u8> =
        (0..2048u32).map(|j| (j.wrapping_mul(2_654_435_761).wrapping_add(seed as u32) >> 13) as u8).collect();
    vec![dir("usr", MTIME), dir("usr/bin", MTIME), FixtureFile { mode: 0o755, ..file(path, MTIME, data) }]
}

fn cvo() -> FixtureImage {
    let t = "cluster-version-operator";
    let upstream = format!("{}:latest", upstream_repo(t));
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: openshift-cluster-version\n  annotations:\n    include.release.openshift.io/self-managed-high-availability: \"true\"\n";
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cluster-version-operator\n  namespace: openshift-cluster-version\n  annotations:\n    include.release.openshift.io/self-managed-high-availability: \"true\"\nspec:\n  template:\n    spec:\n      containers:\n      - name: cluster-version-operator\n        image: {upstream}\n        args: [\"start\", \"--release-image={{{{.ReleaseImage}}}}\"]\n"
    );
    let top = vec![
        dir("manifests", MTIME),
        file("manifests/0000_00_cluster-version-operator_00_namespace.yaml", MTIME, namespace),
        file("manifests/0000_00_cluster-version-operator_03_deployment.yaml", MTIME + 60, deployment),
        file("manifests/image-references", MTIME, image_references(&[(t, upstream)])),
    ];
    FixtureImage {
        tag: t.to_owned(),
        role: Role::Cvo,
        labels: labels(&[
            (OPERATOR_LABEL, "true"),
            ("io.openshift.build.commit.id", "c0ffee0000000000000000000000000000000001"),
            ("io.openshift.build.commit.ref", "main"),
            ("io.openshift.build.source-location", "https://github.com/openshift/cluster-version-operator"),
            ("vendor", "Synthetic"),
        ]),
        layers: vec![binary_layer("usr/bin/cluster-version-operator", 0), top],
    }
}

fn operator(i: usize) -> FixtureImage {
    let (op, operand) = operator_names(i);
    let mtime = MTIME + (i as i64 % 50);
    let op_src = format!("{}:latest", upstream_repo(&op));
    // The operand is referenced without a tag, as real operators often do.
    let operand_src = upstream_repo(&operand);
    let ns = format!("openshift-{op}");
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {op}\n  namespace: {ns}\n  annotations:\n    release.openshift.io/version: 0.0.1-snapshot\n    include.release.openshift.io/self-managed-high-availability: \"true\"\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: operator\n        image: {op_src}\n        env:\n        - name: RELEASE_VERSION\n          value: \"0.0.1-snapshot\"\n        - name: OPERAND_IMAGE\n          value: {operand_src}:latest\n        - name: KUBE_VERSION\n          value: \"0.0.1-snapshot-kubernetes\"\n"
    );
    let config = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {op}-config\n  namespace: {ns}\n  annotations:\n    include.release.openshift.io/self-managed-high-availability: \"true\"\ndata:\n  operandImage: {operand_src}:latest\n  operandDigestForm: {operand_src}@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n  notAnImage: {operand_src}-suffix\n  version: 0.0.1-snapshot\n"
    );
    let edges = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {op}-edges\n  namespace: {ns}\n  annotations:\n    include.release.openshift.io/self-managed-high-availability: \"true\"\ndata:\n  bare: {operand_src}\n  tagged: {operand_src}:v4.0\n  quoted: \"{operand_src}:latest\"\n  singlequoted: '{operand_src}'\n  twoSpaceSeparated: \"{op_src} {operand_src}\"\n  commaSeparated: {operand_src},{op_src}\n  flagList: --images={operand_src}:latest,{op_src}\n  suffixed: {operand_src}-suffix\n  prefixed: x{operand_src}\n  inUrl: https://{operand_src}/path\n  snapshotNoDash: 0.0.1-snapshotx\n  snapshotInWord: v0.0.1-snapshot\n  snapshotKube: 0.0.1-snapshot-kubernetes\n  endOfFile: {operand_src}"
    );
    let role = format!(
        "{{\"apiVersion\": \"rbac.authorization.k8s.io/v1\", \"kind\": \"Role\", \"metadata\": {{\"name\": \"{op}\", \"namespace\": \"{ns}\", \"annotations\": {{\"include.release.openshift.io/self-managed-high-availability\": \"true\", \"image\": \"{op_src}\"}}}}, \"rules\": []}}"
    );
    let shared = "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: shared\n  namespace: openshift-monitoring\n  annotations:\n    include.release.openshift.io/self-managed-high-availability: \"true\"\nspec: {}\n";
    let long_name = format!("manifests/05_{}.yaml", "y".repeat(110));
    let top = vec![
        dir("manifests", mtime),
        file(&format!("manifests/0000_50_{op}_01_deployment.yaml"), mtime, deployment),
        file("manifests/02_config.yaml", mtime, config),
        file("manifests/03_edge_cases.yaml", mtime, edges),
        FixtureFile { mode: 0o755, ..file("manifests/04_role.json", mtime, role) },
        file(&long_name, mtime, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: long-name\n"),
        file("manifests/0000_90_shared_prometheusrule.yaml", mtime, shared),
        file("manifests/README.md", mtime, format!("# {op}\n\nNot a manifest.\n")),
        dir("manifests/subdir", mtime),
        file("manifests/subdir/ignored.yaml", mtime, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ignored\n"),
        FixtureFile {
            path: "manifests/link.yaml".into(),
            mode: 0o777,
            mtime,
            kind: FileKind::Symlink("02_config.yaml".into()),
        },
        file("manifests/image-references", mtime, image_references(&[(&op, op_src.clone()), (&operand, operand_src)])),
    ];
    let mut lower = binary_layer(&format!("usr/bin/{op}"), i + 1);
    lower.push(dir("manifests", MTIME - 10_000_000));
    lower.push(file(
        &format!("manifests/0000_50_{op}_99_from-lower-layer.yaml"),
        MTIME - 10_000_000,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: decoy-from-a-lower-layer\n",
    ));
    FixtureImage {
        tag: op.clone(),
        role: Role::Operator,
        labels: labels(&[
            (OPERATOR_LABEL, "true"),
            ("io.openshift.build.commit.id", &format!("{:040x}", 0xabc000 + i)),
            ("io.openshift.build.commit.ref", "main"),
            ("io.openshift.build.source-location", &format!("https://github.com/openshift/{op}")),
        ]),
        layers: vec![lower, top],
    }
}

/// The display-names label of operand `i`: every operand declares
/// `io.openshift.build.versions`, and the display names cycle through the
/// three cases oc tells apart (it writes the annotation, empty, for the
/// last two): set, absent, and empty.
pub fn operand_display_names(i: usize) -> Option<&'static str> {
    match i % 3 {
        0 => Some("kubernetes=Kubernetes"),
        1 => None,
        _ => Some(""),
    }
}

fn operand(i: usize) -> FixtureImage {
    let (_, name) = operator_names(i);
    let mut labels = labels(&[
        ("io.openshift.build.commit.id", &format!("{:040x}", 0xdef000 + i)),
        ("io.openshift.build.source-location", &format!("https://github.com/openshift/{name}")),
        ("io.openshift.build.versions", &format!("kubernetes={KUBE_VERSION}")),
    ]);
    if let Some(names) = operand_display_names(i) {
        labels.insert("io.openshift.build.version-display-names".to_owned(), names.to_owned());
    }
    FixtureImage {
        tag: name.clone(),
        role: Role::Operand,
        labels,
        layers: vec![binary_layer(&format!("usr/bin/{name}"), 10_000 + i)],
    }
}

fn unreferenced() -> FixtureImage {
    FixtureImage {
        tag: "unreferenced-thing".to_owned(),
        role: Role::Unreferenced,
        labels: labels(&[("io.openshift.build.commit.id", "0000000000000000000000000000000000000bad")]),
        layers: vec![binary_layer("usr/bin/unreferenced", 99_999)],
    }
}

/// Every image of the stream, sorted by tag.
pub fn stream_images(spec: &StreamSpec) -> Vec<FixtureImage> {
    let mut images = vec![cvo(), unreferenced()];
    for i in 0..spec.operators {
        images.push(operator(i));
        images.push(operand(i));
    }
    images.sort_by(|a, b| a.tag.cmp(&b.tag));
    images
}

/// A changed build of the first operator in `images`: the same files plus
/// one more manifest, tagged `<operator>-alt`. Replacing an operator with it
/// is the smallest real change to a release.
pub fn changed_operator(images: &[FixtureImage]) -> Result<FixtureImage, String> {
    let op = images.iter().find(|i| i.role == Role::Operator).ok_or("the stream has no operator")?;
    let mut alt = op.clone();
    alt.tag = format!("{}-alt", op.tag);
    let top = alt.layers.last_mut().ok_or("an operator has layers")?;
    top.push(file(
        "manifests/06_added_in_alt.yaml",
        MTIME + 3600,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: added-in-alt\n  annotations:\n    include.release.openshift.io/self-managed-high-availability: \"true\"\n",
    ));
    alt.labels.insert("io.openshift.build.commit.id".into(), "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1".into());
    Ok(alt)
}

/// A one-layer operator image (labelled, no build labels) with these files.
fn bad_operator(tag: &str, files: Vec<FixtureFile>) -> FixtureImage {
    FixtureImage {
        tag: tag.to_owned(),
        role: Role::Operator,
        labels: labels(&[(OPERATOR_LABEL, "true")]),
        layers: vec![files],
    }
}

const BAD_CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n";

/// An operator whose `image-references` names one source repository for two
/// tags (`prometheus` and `component-001`): a release build must refuse it.
pub fn duplicate_source_operator() -> FixtureImage {
    let src = upstream_repo("prometheus");
    bad_operator(
        "dup-source-operator",
        vec![
            dir("manifests", MTIME),
            file("manifests/a.yaml", MTIME, BAD_CONFIGMAP),
            file(
                "manifests/image-references",
                MTIME,
                image_references(&[("prometheus", src.clone()), ("component-001", src)]),
            ),
        ],
    )
}

/// An operator whose manifest asks for `0.0.1-snapshot-<component>` of a
/// component no operand declares.
pub fn unknown_snapshot_operator(component: &str) -> FixtureImage {
    bad_operator(
        "unknown-snapshot-operator",
        vec![
            dir("manifests", MTIME),
            file("manifests/a.yaml", MTIME, format!("{BAD_CONFIGMAP}data:\n  v: 0.0.1-snapshot-{component}\n")),
        ],
    )
}

/// An image labelled as an operator that has no `/manifests` at all.
pub fn operator_without_manifests() -> FixtureImage {
    bad_operator("no-manifests-operator", vec![file("usr/bin/no-manifests", MTIME, "binary")])
}

/// An image shaped like a release payload (`release-manifests/` in its one
/// layer) whose files are given: for releases with broken metadata.
pub fn release_like(tag: &str, files: &[(&str, &str)]) -> FixtureImage {
    let mut layer = vec![dir("release-manifests", MTIME)];
    layer.extend(files.iter().map(|(name, data)| file(&format!("release-manifests/{name}"), MTIME, *data)));
    FixtureImage { tag: tag.to_owned(), role: Role::Unreferenced, labels: BTreeMap::new(), layers: vec![layer] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_shape() {
        let images = stream_images(&StreamSpec { operators: 200 });
        assert_eq!(images.len(), 2 + 2 * 200);
        let operators = images.iter().filter(|i| i.labels.contains_key(OPERATOR_LABEL)).count();
        assert_eq!(operators, 201, "200 operators plus the CVO");
        for img in images.iter().filter(|i| i.role == Role::Operator) {
            assert_eq!(img.layers.len(), 2, "{}", img.tag);
            let top: Vec<&str> = img.layers[1].iter().map(|f| f.path.as_str()).collect();
            assert!(top.contains(&"manifests/image-references"));
            assert!(top.iter().any(|p| p.len() > 100 + "manifests/".len()), "a name over 100 characters");
            assert!(top.contains(&"manifests/0000_90_shared_prometheusrule.yaml"));
        }
        let mut tags: Vec<&str> = images.iter().map(|i| i.tag.as_str()).collect();
        tags.dedup();
        assert_eq!(tags.len(), images.len(), "tags are unique");
        assert!(tags.contains(&"prometheus"));
    }
}
