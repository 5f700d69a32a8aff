//! The release image config (spec §3.4): the base (CVO) image config with
//! the edits oc's `ConfigurationCallback` and `append` make, serialised as Go
//! `json.Marshal` of openshift/library-go `DockerImageConfig` (compact, fixed
//! field order, always `"id":""` and `"container_config":{}`, no trailing
//! newline). Fields the Go struct lacks are dropped, as oc drops them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Error;
use super::names::{LABEL_BASE_IMAGE_DIGEST, LABEL_RELEASE};

/// The comment of the release history entry.
pub const HISTORY_COMMENT: &str = "Release image for OpenShift";

/// Go `DockerImageConfig`, in Go field order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DockerImageConfig {
    /// Always emitted (`""`).
    #[serde(default)]
    pub id: String,
    /// Parent image ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parent: String,
    /// Comment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub created: String,
    /// Container ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container: String,
    /// Always emitted (a Go struct ignores `omitempty`).
    #[serde(default)]
    pub container_config: DockerConfig,
    /// Docker version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_version: String,
    /// Author.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// The runtime config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<DockerConfig>,
    /// CPU architecture.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    /// Non-standard: sum of compressed layer sizes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: i64,
    /// Layer diff IDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<DockerConfigRootFs>,
    /// History.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<DockerConfigHistory>,
    /// OS.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os: String,
    /// OS version.
    #[serde(rename = "os.version", default, skip_serializing_if = "String::is_empty")]
    pub os_version: String,
    /// OS features.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// openshift/api `docker10.DockerConfig`, in Go field order (all `omitempty`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct DockerConfig {
    #[serde(rename = "Hostname", default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(rename = "Domainname", default, skip_serializing_if = "String::is_empty")]
    pub domainname: String,
    #[serde(rename = "User", default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(rename = "Memory", default, skip_serializing_if = "is_zero")]
    pub memory: i64,
    #[serde(rename = "MemorySwap", default, skip_serializing_if = "is_zero")]
    pub memory_swap: i64,
    #[serde(rename = "CpuShares", default, skip_serializing_if = "is_zero")]
    pub cpu_shares: i64,
    #[serde(rename = "Cpuset", default, skip_serializing_if = "String::is_empty")]
    pub cpuset: String,
    #[serde(rename = "AttachStdin", default, skip_serializing_if = "std::ops::Not::not")]
    pub attach_stdin: bool,
    #[serde(rename = "AttachStdout", default, skip_serializing_if = "std::ops::Not::not")]
    pub attach_stdout: bool,
    #[serde(rename = "AttachStderr", default, skip_serializing_if = "std::ops::Not::not")]
    pub attach_stderr: bool,
    #[serde(rename = "PortSpecs", default, skip_serializing_if = "Option::is_none")]
    pub port_specs: Option<Vec<String>>,
    #[serde(rename = "ExposedPorts", default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Map<String, serde_json::Value>>>,
    #[serde(rename = "Tty", default, skip_serializing_if = "std::ops::Not::not")]
    pub tty: bool,
    #[serde(rename = "OpenStdin", default, skip_serializing_if = "std::ops::Not::not")]
    pub open_stdin: bool,
    #[serde(rename = "StdinOnce", default, skip_serializing_if = "std::ops::Not::not")]
    pub stdin_once: bool,
    #[serde(rename = "Env", default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Dns", default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Vec<String>>,
    #[serde(rename = "Image", default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(rename = "Volumes", default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Map<String, serde_json::Value>>>,
    #[serde(rename = "VolumesFrom", default, skip_serializing_if = "String::is_empty")]
    pub volumes_from: String,
    #[serde(rename = "WorkingDir", default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(rename = "Entrypoint", default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "NetworkDisabled", default, skip_serializing_if = "std::ops::Not::not")]
    pub network_disabled: bool,
    #[serde(rename = "SecurityOpts", default, skip_serializing_if = "Option::is_none")]
    pub security_opts: Option<Vec<String>>,
    #[serde(rename = "OnBuild", default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(rename = "Labels", default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `DockerConfigRootFS`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DockerConfigRootFs {
    /// `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Uncompressed layer digests, lowest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diff_ids: Vec<String>,
}

/// `DockerConfigHistory`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DockerConfigHistory {
    /// RFC 3339 time.
    #[serde(default)]
    pub created: String,
    /// Author.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// Command.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// Comment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// No layer for this step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// What [`DockerImageConfig::into_release_config`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseConfigEdit {
    /// The release name (`io.openshift.release`).
    pub release_name: String,
    /// The base image's manifest digest (`io.openshift.release.base-image-digest`),
    /// the per-arch child for lists.
    pub base_image_digest: Option<String>,
    /// The release creation time (second precision, UTC).
    pub created: jiff::Timestamp,
    /// The payload layer's diff ID.
    pub layer_diff_id: String,
    /// Compressed sizes of every layer of the result, base layers first,
    /// the payload layer last.
    pub layer_sizes: Vec<i64>,
}

impl DockerImageConfig {
    /// Parses a config blob.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Parse {
            file: "base image config".to_owned(),
            what: "image config",
            line: Some(e.line() as u64),
            column: Some(e.column() as u64),
            source: Box::new(e),
        })
    }

    /// Compact Go `json.Marshal`, no trailing newline.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        crate::image::gojson::to_vec(self).map_err(|source| Error::Serialize { what: "release image config", source })
    }

    /// The release config oc derives from the base config: `os`/`architecture`
    /// default to `linux`/`amd64`; `container`, `parent` and `container_config`
    /// cleared; `created` = now; labels replaced by exactly
    /// `io.openshift.release` and `io.openshift.release.base-image-digest`;
    /// history reset to one `Release image for OpenShift` entry then padded
    /// with `{created}` to one per layer; the diff ID appended; `size` = sum
    /// of the compressed layer sizes. `Env`, `Entrypoint`, `User`, … are kept.
    pub fn into_release_config(mut self, edit: &ReleaseConfigEdit) -> Self {
        let created = edit.created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        if self.os.is_empty() {
            self.os = "linux".into();
        }
        if self.architecture.is_empty() {
            self.architecture = "amd64".into();
        }
        self.container.clear();
        self.parent.clear();
        self.created.clone_from(&created);
        self.container_config = DockerConfig::default();
        let config = self.config.get_or_insert_with(DockerConfig::default);
        let mut labels = BTreeMap::from([(LABEL_RELEASE.to_owned(), edit.release_name.clone())]);
        if let Some(d) = &edit.base_image_digest {
            labels.insert(LABEL_BASE_IMAGE_DIGEST.to_owned(), d.clone());
        }
        config.labels = Some(labels);
        self.history = vec![DockerConfigHistory {
            created: created.clone(),
            comment: HISTORY_COMMENT.into(),
            ..Default::default()
        }];
        while self.history.len() < edit.layer_sizes.len() {
            self.history.push(DockerConfigHistory { created: created.clone(), ..Default::default() });
        }
        let rootfs =
            self.rootfs.get_or_insert_with(|| DockerConfigRootFs { kind: "layers".into(), diff_ids: Vec::new() });
        rootfs.diff_ids.push(edit.layer_diff_id.clone());
        self.size = edit.layer_sizes.iter().sum();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probed_serialisation() {
        let base = r#"{"created":"2024-01-01T00:00:00Z","container":"abc","config":{"Env":["PATH=/usr/bin"],"Entrypoint":["/usr/bin/cluster-version-operator"],"Labels":{"x":"y"}},"rootfs":{"type":"layers","diff_ids":["sha256:11","sha256:22"]}}"#;
        let edit = ReleaseConfigEdit {
            release_name: "4.99.0".into(),
            base_image_digest: Some("sha256:basebase".into()),
            created: "2025-05-06T07:08:09Z".parse().expect("time"),
            layer_diff_id: "sha256:33".into(),
            layer_sizes: vec![10, 20, 30],
        };
        let cfg = DockerImageConfig::parse(base.as_bytes()).expect("parses").into_release_config(&edit);
        let want = r#"{"id":"","created":"2025-05-06T07:08:09Z","container_config":{},"config":{"Env":["PATH=/usr/bin"],"Entrypoint":["/usr/bin/cluster-version-operator"],"Labels":{"io.openshift.release":"4.99.0","io.openshift.release.base-image-digest":"sha256:basebase"}},"architecture":"amd64","size":60,"rootfs":{"type":"layers","diff_ids":["sha256:11","sha256:22","sha256:33"]},"history":[{"created":"2025-05-06T07:08:09Z","comment":"Release image for OpenShift"},{"created":"2025-05-06T07:08:09Z"},{"created":"2025-05-06T07:08:09Z"}],"os":"linux"}"#;
        assert_eq!(String::from_utf8(cfg.to_json().expect("json")).expect("utf8"), want);
    }

    /// What oc's `ConfigurationCallback` does with each field the base
    /// config may lack, have empty, or set.
    #[test]
    fn base_config_absent_empty_and_set() {
        let edit = |digest: Option<&str>| ReleaseConfigEdit {
            release_name: "4.99.0".into(),
            base_image_digest: digest.map(str::to_owned),
            created: "2025-05-06T07:08:09Z".parse().expect("time"),
            layer_diff_id: "sha256:33".into(),
            layer_sizes: vec![5],
        };
        let release = |base: &str, digest: Option<&str>| {
            let cfg = DockerImageConfig::parse(base.as_bytes()).expect("parses").into_release_config(&edit(digest));
            serde_json::from_slice::<serde_json::Value>(&cfg.to_json().expect("json")).expect("json")
        };
        // os / architecture: absent and empty default to linux/amd64, set ones are kept.
        for (base, os, arch) in [
            ("{}", "linux", "amd64"),
            (r#"{"os":"","architecture":""}"#, "linux", "amd64"),
            (r#"{"os":"windows","architecture":"arm64"}"#, "windows", "arm64"),
        ] {
            let v = release(base, Some("sha256:b"));
            assert_eq!((v["os"].as_str(), v["architecture"].as_str()), (Some(os), Some(arch)), "{base}");
        }
        // Labels: whatever the base had (none, no config at all, empty, some)
        // is replaced by exactly the release's.
        let want =
            serde_json::json!({"io.openshift.release": "4.99.0", "io.openshift.release.base-image-digest": "sha256:b"});
        for base in [
            "{}",
            r#"{"config":{}}"#,
            r#"{"config":{"Labels":{}}}"#,
            r#"{"config":{"Labels":{"vendor":"x","io.openshift.release":"old"}}}"#,
        ] {
            assert_eq!(release(base, Some("sha256:b"))["config"]["Labels"], want, "{base}");
        }
        // No base digest: no base-image-digest label (oc writes it only when known).
        assert_eq!(release("{}", None)["config"]["Labels"], serde_json::json!({"io.openshift.release": "4.99.0"}));
        // container, parent and container_config are cleared whatever they held.
        let v = release(r#"{"container":"c","parent":"p","container_config":{"Cmd":["x"]}}"#, None);
        assert_eq!((v.get("container"), v.get("parent"), &v["container_config"]), (None, None, &serde_json::json!({})));
    }
}
