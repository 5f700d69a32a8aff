//! Reading payload manifests and deciding which ones a cluster applies
//! (spec §4.2 `extract` filters, §5 "Which files load" and "Inclusion filter").
//!
//! [`parse_manifests`] splits a file into documents as library-go's
//! `ParseManifests` does (a JSON stream when the file starts with `{`, else a
//! multi-document YAML stream; empty and `null` documents skipped).
//! [`InclusionFilter::check`] is `Manifest.Include`: the rules apply in the
//! order of the spec and the first that fails is the [`Exclusion`] reason.
//! [`is_credentials_request`] / [`Cloud`] implement `extract
//! --credentials-requests [--cloud]` and [`normalize_manifest`] is
//! `extract`'s re-serialised output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// `exclude.release.openshift.io/<identifier>`.
pub const EXCLUDE_PREFIX: &str = "exclude.release.openshift.io/";
/// `include.release.openshift.io/<profile>`.
pub const INCLUDE_PREFIX: &str = "include.release.openshift.io/";
pub use super::names::{FEATURE_GATE, FEATURE_SET, MAJOR_VERSION};
/// `+`-separated capabilities a manifest belongs to.
pub const CAPABILITY: &str = "capability.openshift.io/name";
/// The default cluster profile.
pub const DEFAULT_PROFILE: &str = "self-managed-high-availability";

/// Errors of manifest parsing and normalisation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file that is not a YAML or JSON document stream.
    #[error("`{file}`: not a valid YAML or JSON manifest stream")]
    Parse {
        /// The file.
        file: String,
        /// The parser error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A document that is not an object.
    #[error("`{file}`: document {index} is not an object")]
    NotAnObject {
        /// The file.
        file: String,
        /// 0-based document index.
        index: usize,
    },
    /// Emitting YAML failed.
    #[error("`{file}`: could not write the normalised YAML")]
    Emit {
        /// The file.
        file: String,
        /// The serialiser error.
        #[source]
        source: serde_saphyr::SerializeError,
    },
}

/// One document of a manifest file, with the fields the filters read.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// 0-based index among the file's non-empty documents.
    pub index: usize,
    /// `apiVersion` (empty when missing).
    pub api_version: String,
    /// `kind` (empty when missing).
    pub kind: String,
    /// `metadata.name` (empty when missing).
    pub name: String,
    /// `metadata.namespace` (empty when missing).
    pub namespace: String,
    /// `metadata.annotations`; `None` when the object has none (a non-string
    /// value is kept in its JSON text form).
    pub annotations: Option<BTreeMap<String, String>>,
    /// The whole document.
    pub value: Value,
}

impl Manifest {
    fn from_value(index: usize, value: Value) -> Option<Self> {
        let obj = value.as_object()?;
        let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let meta = obj.get("metadata").and_then(Value::as_object);
        let annotations = meta.and_then(|m| m.get("annotations")).and_then(Value::as_object).map(|a| {
            a.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect()
        });
        Some(Self {
            index,
            api_version: s(obj.get("apiVersion")),
            kind: s(obj.get("kind")),
            name: s(meta.and_then(|m| m.get("name"))),
            namespace: s(meta.and_then(|m| m.get("namespace"))),
            annotations,
            value,
        })
    }

    /// The API group (`apiVersion` before the `/`; empty for core `v1`).
    pub fn group(&self) -> &str {
        self.api_version.split_once('/').map_or("", |(g, _)| g)
    }

    /// One annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// Splits a manifest file into its documents (`ParseManifests`): a JSON
/// stream when the first non-blank byte is `{`, else multi-document YAML.
/// Empty and `null` documents are skipped; any other non-object is an error.
pub fn parse_manifests(bytes: &[u8], file: &str) -> Result<Vec<Manifest>, Error> {
    let parse_err = |source: Box<dyn std::error::Error + Send + Sync>| Error::Parse { file: file.to_owned(), source };
    let values: Vec<Value> = if super::looks_like_json(bytes) {
        serde_json::Deserializer::from_slice(bytes)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .map_err(|e| parse_err(Box::new(e)))?
    } else {
        serde_saphyr::from_slice_multiple::<Value>(bytes).map_err(|e| parse_err(super::yaml_error(&e)))?
    };
    let mut out = Vec::with_capacity(values.len());
    for value in values.into_iter().filter(|v| !v.is_null()) {
        let index = out.len();
        let m =
            Manifest::from_value(index, value).ok_or_else(|| Error::NotAnObject { file: file.to_owned(), index })?;
        out.push(m);
    }
    Ok(out)
}

/// Known and enabled cluster capabilities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Every capability the release knows.
    pub known: BTreeSet<String>,
    /// The enabled ones.
    pub enabled: BTreeSet<String>,
}

/// A ClusterVersion `spec.overrides` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComponentOverride {
    /// Kind.
    pub kind: String,
    /// API group.
    pub group: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `unmanaged: true` excludes the object.
    pub unmanaged: bool,
}

/// What a cluster (or `--install-config`) is, for [`InclusionFilter::check`].
/// `None` fields are not checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InclusionFilter {
    /// `exclude.release.openshift.io/<id>: "true"` excludes (e.g. `internal-openshift-hosted`).
    pub exclude: Option<String>,
    /// The required feature set (`""` means `Default`).
    pub feature_set: Option<String>,
    /// The enabled feature gates; every other gate counts as disabled.
    pub enabled_feature_gates: Option<BTreeSet<String>>,
    /// The cluster's major version.
    pub major_version: Option<u64>,
    /// The cluster profile (`self-managed-high-availability`, …).
    pub profile: Option<String>,
    /// Capabilities; with `enabled` empty only "known" is checked when
    /// `known_only` is set.
    pub capabilities: Option<Capabilities>,
    /// At load time only "known" is checked for capabilities.
    pub known_only: bool,
    /// ClusterVersion overrides.
    pub overrides: Vec<ComponentOverride>,
}

/// Why a manifest is not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exclusion {
    /// Rule 1: no `metadata.annotations`.
    NoAnnotations,
    /// Rule 2: `exclude.release.openshift.io/<id>: "true"`.
    Excluded {
        /// The annotation.
        annotation: String,
    },
    /// Rule 3: both `feature-set` and `feature-gate` annotations.
    FeatureSetAndGate,
    /// Rule 4: the required feature set is not listed.
    FeatureSet {
        /// The required set (`Default` for `""`).
        required: String,
        /// The annotation value.
        value: String,
    },
    /// Rule 5: a listed gate is not enabled.
    FeatureGateNotEnabled {
        /// The gate.
        gate: String,
    },
    /// Rule 5: a `-`-listed gate is enabled.
    FeatureGateEnabled {
        /// The gate.
        gate: String,
    },
    /// Rule 6: `major-version` on a kind that may not carry it.
    MajorVersionNotAllowed {
        /// The kind.
        kind: String,
    },
    /// Rule 6: the cluster's major version is excluded or not listed.
    MajorVersion {
        /// The cluster's major version.
        required: u64,
        /// The annotation value.
        value: String,
    },
    /// Rule 7: no `include.release.openshift.io/<profile>`.
    ProfileUnset {
        /// The annotation.
        annotation: String,
    },
    /// Rule 7: the profile annotation is not `"true"`.
    ProfileValue {
        /// The annotation.
        annotation: String,
        /// Its value.
        value: String,
    },
    /// Rule 8: capabilities the release does not know.
    UnknownCapabilities {
        /// The names.
        names: Vec<String>,
    },
    /// Rule 8: capabilities that are not enabled.
    DisabledCapabilities {
        /// The names.
        names: Vec<String>,
    },
    /// Rule 9: an `unmanaged` ClusterVersion override.
    Overridden,
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAnnotations => f.write_str("no annotations"),
            Self::Excluded { annotation } => write!(f, "{annotation}=true"),
            Self::FeatureSetAndGate => write!(f, "both {FEATURE_SET} and {FEATURE_GATE} are set"),
            Self::FeatureSet { required, value } => write!(f, "{required:?} is required, and {FEATURE_SET}={value}"),
            Self::FeatureGateNotEnabled { gate } => write!(f, "feature gate {gate} is required but not enabled"),
            Self::FeatureGateEnabled { gate } => write!(f, "feature gate {gate} is enabled but required disabled"),
            Self::MajorVersionNotAllowed { kind } => {
                write!(f, "{MAJOR_VERSION} is only allowed on FeatureGate and CustomResourceDefinition, not {kind}")
            }
            Self::MajorVersion { required, value } => {
                write!(f, "major version {required} is excluded by {MAJOR_VERSION}={value}")
            }
            Self::ProfileUnset { annotation } => write!(f, "{annotation} unset"),
            Self::ProfileValue { annotation, value } => write!(f, "unrecognized value {annotation}={value}"),
            Self::UnknownCapabilities { names } => write!(f, "unrecognized capability names: {}", names.join(", ")),
            Self::DisabledCapabilities { names } => write!(f, "disabled capabilities: {}", names.join(", ")),
            Self::Overridden => f.write_str("overridden"),
        }
    }
}

fn comma_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl InclusionFilter {
    /// `Manifest.Include`: `Ok(())` when applied, else the first failing rule.
    pub fn check(&self, m: &Manifest) -> Result<(), Exclusion> {
        let Some(annotations) = m.annotations.as_ref() else {
            return Err(Exclusion::NoAnnotations);
        };
        let get = |k: &str| annotations.get(k).map(String::as_str);
        if let Some(id) = &self.exclude {
            let annotation = format!("{EXCLUDE_PREFIX}{id}");
            if get(&annotation) == Some("true") {
                return Err(Exclusion::Excluded { annotation });
            }
        }
        let (set, gate) = (get(FEATURE_SET), get(FEATURE_GATE));
        if set.is_some() && gate.is_some() {
            return Err(Exclusion::FeatureSetAndGate);
        }
        if let (Some(required), Some(value)) = (&self.feature_set, set) {
            let required = if required.is_empty() { "Default" } else { required.as_str() };
            if !value.split(',').any(|s| s == required) {
                return Err(Exclusion::FeatureSet { required: required.to_owned(), value: value.to_owned() });
            }
        }
        if let (Some(enabled), Some(value)) = (&self.enabled_feature_gates, gate) {
            for g in comma_list(value) {
                match g.strip_prefix('-') {
                    Some(g) if enabled.contains(g) => return Err(Exclusion::FeatureGateEnabled { gate: g.to_owned() }),
                    Some(_) => {}
                    None if !enabled.contains(g) => {
                        return Err(Exclusion::FeatureGateNotEnabled { gate: g.to_owned() });
                    }
                    None => {}
                }
            }
        }
        if let Some(value) = get(MAJOR_VERSION) {
            let allowed = (m.kind == "FeatureGate" && m.group() == "config.openshift.io")
                || (m.kind == "CustomResourceDefinition" && m.group() == "apiextensions.k8s.io");
            if !allowed {
                return Err(Exclusion::MajorVersionNotAllowed { kind: m.kind.clone() });
            }
            if let Some(major) = self.major_version {
                let mut included = None;
                for v in comma_list(value) {
                    match v.strip_prefix('-') {
                        Some(n) if n.parse() == Ok(major) => included = Some(false),
                        Some(_) => {}
                        None if v.parse() == Ok(major) => included = included.or(Some(true)),
                        None => {}
                    }
                }
                let has_positive = comma_list(value).any(|v| !v.starts_with('-'));
                let ok = match included {
                    Some(ok) => ok,
                    None => !has_positive,
                };
                if !ok {
                    return Err(Exclusion::MajorVersion { required: major, value: value.to_owned() });
                }
            }
        }
        if let Some(profile) = &self.profile {
            let annotation = format!("{INCLUDE_PREFIX}{profile}");
            match get(&annotation) {
                None => return Err(Exclusion::ProfileUnset { annotation }),
                Some("true") => {}
                Some(value) => return Err(Exclusion::ProfileValue { annotation, value: value.to_owned() }),
            }
        }
        if let (Some(caps), Some(value)) = (&self.capabilities, get(CAPABILITY)) {
            let names: Vec<&str> = value.split('+').map(str::trim).filter(|s| !s.is_empty()).collect();
            let unknown: Vec<String> =
                names.iter().filter(|n| !caps.known.contains(**n)).map(|n| (*n).to_owned()).collect();
            if !unknown.is_empty() {
                return Err(Exclusion::UnknownCapabilities { names: unknown });
            }
            if !self.known_only {
                let disabled: Vec<String> =
                    names.iter().filter(|n| !caps.enabled.contains(**n)).map(|n| (*n).to_owned()).collect();
                if !disabled.is_empty() {
                    return Err(Exclusion::DisabledCapabilities { names: disabled });
                }
            }
        }
        let overridden = self.overrides.iter().any(|o| {
            o.unmanaged && o.kind == m.kind && o.group == m.group() && o.namespace == m.namespace && o.name == m.name
        });
        if overridden {
            return Err(Exclusion::Overridden);
        }
        Ok(())
    }
}

/// `extract --cloud`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cloud {
    /// `aws`.
    Aws,
    /// `azure`.
    Azure,
    /// `gcp`.
    Gcp,
    /// `ibmcloud`.
    IbmCloud,
    /// `nutanix`.
    Nutanix,
    /// `openstack`.
    OpenStack,
    /// `ovirt`.
    Ovirt,
    /// `powervs`.
    PowerVs,
    /// `vsphere`.
    VSphere,
    /// `alibabacloud`.
    AlibabaCloud,
}

impl Cloud {
    /// Every cloud, in `--help` order.
    pub const ALL: [Cloud; 10] = [
        Self::Aws,
        Self::Azure,
        Self::Gcp,
        Self::IbmCloud,
        Self::Nutanix,
        Self::OpenStack,
        Self::Ovirt,
        Self::PowerVs,
        Self::VSphere,
        Self::AlibabaCloud,
    ];

    /// The `--cloud` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Azure => "azure",
            Self::Gcp => "gcp",
            Self::IbmCloud => "ibmcloud",
            Self::Nutanix => "nutanix",
            Self::OpenStack => "openstack",
            Self::Ovirt => "ovirt",
            Self::PowerVs => "powervs",
            Self::VSphere => "vsphere",
            Self::AlibabaCloud => "alibabacloud",
        }
    }

    /// The `spec.providerSpec.kind` of its CredentialsRequests.
    pub fn provider_spec_kind(self) -> &'static str {
        match self {
            Self::Aws => "AWSProviderSpec",
            Self::Azure => "AzureProviderSpec",
            Self::Gcp => "GCPProviderSpec",
            Self::IbmCloud => "IBMCloudProviderSpec",
            Self::Nutanix => "NutanixProviderSpec",
            Self::OpenStack => "OpenStackProviderSpec",
            Self::Ovirt => "OvirtProviderSpec",
            Self::PowerVs => "IBMCloudPowerVSProviderSpec",
            Self::VSphere => "VSphereProviderSpec",
            Self::AlibabaCloud => "AlibabaCloudProviderSpec",
        }
    }
}

/// `--cloud` with an unknown value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown cloud `{0}`: expected one of aws, azure, gcp, ibmcloud, nutanix, openstack, ovirt, powervs, vsphere, alibabacloud"
)]
pub struct UnknownCloud(pub String);

impl FromStr for Cloud {
    type Err = UnknownCloud;
    fn from_str(s: &str) -> Result<Self, UnknownCloud> {
        Self::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| UnknownCloud(s.to_owned()))
    }
}

/// `cloudcredential.openshift.io/v1` `CredentialsRequest`, and for `cloud`
/// one whose `spec.providerSpec.kind` is that cloud's.
pub fn is_credentials_request(m: &Manifest, cloud: Option<Cloud>) -> bool {
    if m.api_version != "cloudcredential.openshift.io/v1" || m.kind != "CredentialsRequest" {
        return false;
    }
    let Some(cloud) = cloud else { return true };
    m.value.pointer("/spec/providerSpec/kind").and_then(Value::as_str) == Some(cloud.provider_spec_kind())
}

/// Sorts object keys recursively.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let s: BTreeMap<&String, Value> = map.iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(s.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `extract`'s re-serialised form of a manifest file: each document becomes
/// `---\n` + YAML with sorted keys (`yaml.JSONToYAML`).
///
/// Best effort against go-yaml v2: block style, 2-space indent, sequences
/// not indented under their key, strings YAML 1.1 would read as another type
/// (`yes`, `on`, `1.0`, `null`, …) quoted, multi-line strings as literal
/// blocks. Known differences: go-yaml quotes with `"…"` where serde-saphyr
/// may choose `'…'`, folds long plain scalars at 80 columns, and reads
/// unquoted `yes`/`on` in the input as booleans (we keep them strings).
pub fn normalize_manifest(bytes: &[u8], file: &str) -> Result<Vec<u8>, Error> {
    let mut out = String::new();
    let mut options = serde_saphyr::SerializerOptions::default();
    options.folded_wrap_chars = usize::MAX / 2;
    for m in parse_manifests(bytes, file)? {
        out.push_str("---\n");
        let yaml = serde_saphyr::to_string_with_options(&sorted(&m.value), options.clone())
            .map_err(|source| Error::Emit { file: file.to_owned(), source })?;
        out.push_str(&yaml);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(kind: &str, annotations: &[(&str, &str)]) -> Manifest {
        let mut meta = serde_json::json!({"name": "n", "namespace": "ns"});
        if !annotations.is_empty() || kind.ends_with("EmptyAnnotations") {
            meta["annotations"] = annotations.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
        }
        let api = match kind {
            "FeatureGate" => "config.openshift.io/v1",
            "CustomResourceDefinition" => "apiextensions.k8s.io/v1",
            _ => "v1",
        };
        let v = serde_json::json!({"apiVersion": api, "kind": kind, "metadata": meta});
        Manifest::from_value(0, v).expect("object")
    }

    fn cluster() -> InclusionFilter {
        InclusionFilter {
            exclude: Some("internal-openshift-hosted".into()),
            feature_set: Some(String::new()),
            enabled_feature_gates: Some(["A".to_owned()].into()),
            major_version: Some(4),
            profile: Some(DEFAULT_PROFILE.into()),
            capabilities: Some(Capabilities {
                known: ["Console".to_owned(), "Insights".to_owned()].into(),
                enabled: ["Console".to_owned()].into(),
            }),
            known_only: false,
            overrides: vec![ComponentOverride {
                kind: "ConfigMap".into(),
                group: String::new(),
                namespace: "ns".into(),
                name: "n".into(),
                unmanaged: true,
            }],
        }
    }

    const P: (&str, &str) = ("include.release.openshift.io/self-managed-high-availability", "true");

    #[test]
    fn rules_in_order() {
        use Exclusion as E;
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Result<(), Exclusion>);
        let cases: Vec<Case<'_>> = vec![
            ("Secret", vec![], Err(E::NoAnnotations)),
            // no annotations wins over everything (rule 1)
            ("ConfigMap", vec![], Err(E::NoAnnotations)),
            ("Secret", vec![P], Ok(())),
            (
                "Secret",
                vec![P, ("exclude.release.openshift.io/internal-openshift-hosted", "true")],
                Err(E::Excluded { annotation: "exclude.release.openshift.io/internal-openshift-hosted".into() }),
            ),
            ("Secret", vec![P, ("exclude.release.openshift.io/internal-openshift-hosted", "false")], Ok(())),
            // rule 2 before rule 3
            (
                "Secret",
                vec![
                    ("exclude.release.openshift.io/internal-openshift-hosted", "true"),
                    (FEATURE_SET, "Default"),
                    (FEATURE_GATE, "A"),
                ],
                Err(E::Excluded { annotation: "exclude.release.openshift.io/internal-openshift-hosted".into() }),
            ),
            ("Secret", vec![P, (FEATURE_SET, "Default"), (FEATURE_GATE, "A")], Err(E::FeatureSetAndGate)),
            ("Secret", vec![P, (FEATURE_SET, "Default,TechPreviewNoUpgrade")], Ok(())),
            (
                "Secret",
                vec![(FEATURE_SET, "TechPreviewNoUpgrade")],
                Err(E::FeatureSet { required: "Default".into(), value: "TechPreviewNoUpgrade".into() }),
            ),
            ("Secret", vec![P, (FEATURE_GATE, "A,-B")], Ok(())),
            ("Secret", vec![(FEATURE_GATE, "A,B")], Err(E::FeatureGateNotEnabled { gate: "B".into() })),
            ("Secret", vec![(FEATURE_GATE, "-A")], Err(E::FeatureGateEnabled { gate: "A".into() })),
            ("Secret", vec![(MAJOR_VERSION, "4")], Err(E::MajorVersionNotAllowed { kind: "Secret".into() })),
            ("FeatureGate", vec![P, (MAJOR_VERSION, "4")], Ok(())),
            ("CustomResourceDefinition", vec![P, (MAJOR_VERSION, "-5")], Ok(())),
            ("FeatureGate", vec![(MAJOR_VERSION, "-4")], Err(E::MajorVersion { required: 4, value: "-4".into() })),
            ("FeatureGate", vec![(MAJOR_VERSION, "5")], Err(E::MajorVersion { required: 4, value: "5".into() })),
            (
                "Secret",
                vec![("capability.openshift.io/name", "Console")],
                Err(E::ProfileUnset { annotation: P.0.into() }),
            ),
            (
                "Secret",
                vec![(P.0, "false-except-for-the-config-operator")],
                Err(E::ProfileValue { annotation: P.0.into(), value: "false-except-for-the-config-operator".into() }),
            ),
            ("Secret", vec![P, (CAPABILITY, "Console")], Ok(())),
            (
                "Secret",
                vec![P, (CAPABILITY, "Console+Nope")],
                Err(E::UnknownCapabilities { names: vec!["Nope".into()] }),
            ),
            (
                "Secret",
                vec![P, (CAPABILITY, "Console+Insights")],
                Err(E::DisabledCapabilities { names: vec!["Insights".into()] }),
            ),
            ("ConfigMap", vec![P], Err(E::Overridden)),
        ];
        let filter = cluster();
        for (i, (kind, annotations, want)) in cases.into_iter().enumerate() {
            assert_eq!(filter.check(&manifest(kind, &annotations)), want, "case {i}: {kind} {annotations:?}");
        }
        // nothing configured: only "no annotations" applies
        let open = InclusionFilter::default();
        assert_eq!(open.check(&manifest("Secret", &[(FEATURE_GATE, "X")])), Ok(()));
        assert_eq!(open.check(&manifest("Secret", &[])), Err(E::NoAnnotations));
        // load time: only "known" capabilities
        let load = InclusionFilter { known_only: true, ..cluster() };
        assert_eq!(load.check(&manifest("Secret", &[P, (CAPABILITY, "Insights")])), Ok(()));
        assert_eq!(
            Exclusion::ProfileUnset { annotation: P.0.into() }.to_string(),
            "include.release.openshift.io/self-managed-high-availability unset"
        );
    }

    #[test]
    fn parse_streams() {
        let yaml = b"---\n---\nnull\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    x: \"1\"\n---\nkind: Secret\n";
        let docs = parse_manifests(yaml, "f.yaml").expect("parses");
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].kind.as_str(), docs[0].name.as_str(), docs[0].index), ("ConfigMap", "a", 0));
        assert_eq!(docs[0].annotation("x"), Some("1"));
        assert_eq!((docs[1].kind.as_str(), docs[1].name.as_str(), docs[1].annotations.as_ref()), ("Secret", "", None));
        let json = br#" {"kind":"A","metadata":{"name":"a"}} {"kind":"B","apiVersion":"g/v1"}"#;
        let docs = parse_manifests(json, "f.json").expect("parses");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].group(), "g");
        assert!(parse_manifests(b"- 1\n", "f.yaml").is_err());
        assert!(parse_manifests(b"a: [\n", "f.yaml").expect_err("bad yaml").to_string().contains("`f.yaml`"));
        assert!(parse_manifests(b"", "f.yaml").expect("empty").is_empty());
    }

    #[test]
    fn credentials_requests() {
        let doc = |api: &str, kind: &str, spec: &str| {
            let v = serde_json::json!({"apiVersion": api, "kind": kind, "metadata": {"name": "x"},
                "spec": {"providerSpec": {"kind": spec}}});
            Manifest::from_value(0, v).expect("object")
        };
        let aws = doc("cloudcredential.openshift.io/v1", "CredentialsRequest", "AWSProviderSpec");
        assert!(is_credentials_request(&aws, None));
        assert!(is_credentials_request(&aws, Some(Cloud::Aws)));
        assert!(!is_credentials_request(&aws, Some(Cloud::Gcp)));
        assert!(!is_credentials_request(&doc("v1", "CredentialsRequest", "AWSProviderSpec"), None));
        let powervs = doc("cloudcredential.openshift.io/v1", "CredentialsRequest", "IBMCloudPowerVSProviderSpec");
        assert!(is_credentials_request(&powervs, Some("powervs".parse().expect("cloud"))));
        for c in Cloud::ALL {
            assert_eq!(c.as_str().parse::<Cloud>(), Ok(c));
        }
        assert!("azurestack".parse::<Cloud>().is_err());
    }

    #[test]
    fn normalize() {
        let input = b"# comment\nkind: ConfigMap\napiVersion: v1\nmetadata:\n  name: a\ndata:\n  b: \"yes\"\n  a: 'on'\n  list:\n    - x\n---\n{\"z\": 1, \"a\": []}\n";
        let got = String::from_utf8(normalize_manifest(input, "f.yaml").expect("normalises")).expect("utf8");
        assert_eq!(
            got,
            "---\napiVersion: v1\ndata:\n  a: \"on\"\n  b: \"yes\"\n  list:\n  - x\nkind: ConfigMap\nmetadata:\n  name: a\n---\na: []\nz: 1\n"
        );
    }
}
