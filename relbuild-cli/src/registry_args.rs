//! Registry flags shared by every subcommand that talks to a registry, with
//! oc's names so scripts can switch.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use relbuild_core::Reporter;
use relbuild_core::registry::{AuthFile, Client, ClientOptions, MirrorFileKind, MirrorRules};

/// How to reach registries.
#[derive(Debug, Clone, Args)]
pub(crate) struct RegistryArgs {
    /// Registry credentials file (docker `config.json`, podman `auth.json` or
    /// a pull secret). Default: `$REGISTRY_AUTH_FILE`, then
    /// `$XDG_RUNTIME_DIR/containers/auth.json`, then `~/.docker/config.json`.
    #[arg(short = 'a', long = "registry-config", value_name = "FILE")]
    pub(crate) registry_config: Option<PathBuf>,
    /// Allow plain HTTP and skip TLS verification.
    #[arg(long)]
    pub(crate) insecure: bool,
    /// Trust this CA certificate (PEM) for registry TLS; may be repeated.
    #[arg(long = "certificate-authority", value_name = "FILE")]
    pub(crate) certificate_authority: Vec<PathBuf>,
    /// At most this many requests in flight to one registry (oc's default is 4).
    #[arg(long, default_value_t = relbuild_core::registry::DEFAULT_MAX_PER_REGISTRY, value_name = "N")]
    pub(crate) max_per_registry: usize,
    /// Read images referenced by digest from the mirrors this
    /// ImageDigestMirrorSet file names for their repositories first, then
    /// from the source (unless `mirrorSourcePolicy: NeverContactSource`);
    /// may be repeated.
    #[arg(long = "idms-file", value_name = "FILE")]
    pub(crate) idms_file: Vec<PathBuf>,
    /// As `--idms-file`, from an ImageContentSourcePolicy file (deprecated
    /// by OpenShift in favour of IDMS); may be repeated.
    #[arg(long = "icsp-file", value_name = "FILE")]
    pub(crate) icsp_file: Vec<PathBuf>,
}

/// The auth files to try, in order. An explicit `--registry-config` is the
/// only candidate, and must exist.
#[allow(clippy::disallowed_methods)] // the CLI is where the environment is read
fn auth_candidates(explicit: Option<&PathBuf>) -> Vec<PathBuf> {
    if let Some(p) = explicit {
        return vec![p.clone()];
    }
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        v.push(PathBuf::from(p));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        v.push(PathBuf::from(d).join("containers/auth.json"));
    }
    if let Some(h) = std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        v.push(PathBuf::from(h).join(".docker/config.json"));
    }
    v
}

impl RegistryArgs {
    /// The client these flags describe.
    pub(crate) fn client(&self, reporter: Arc<dyn Reporter>) -> Result<Client> {
        if let Some(p) = &self.registry_config
            && !p.exists()
        {
            anyhow::bail!("registry config `{}` does not exist", p.display());
        }
        let auth = AuthFile::discover(&auth_candidates(self.registry_config.as_ref()))?.unwrap_or_else(AuthFile::empty);
        let mut mirrors = MirrorRules::new();
        for (kind, files) in [(MirrorFileKind::Idms, &self.idms_file), (MirrorFileKind::Icsp, &self.icsp_file)] {
            for f in files {
                mirrors.add_file(kind, f)?;
            }
        }
        let mut opts = ClientOptions::default()
            .with_auth(auth)
            .with_mirrors(mirrors)
            .with_insecure(self.insecure)
            .with_max_per_registry(self.max_per_registry.max(1))
            .with_reporter(reporter);
        for ca in &self.certificate_authority {
            opts = opts.with_certificate_authority(ca);
        }
        opts.build().context("setting up the registry client")
    }
}
