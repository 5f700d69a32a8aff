//! A throw-away CA and a server certificate for `127.0.0.1` and `localhost`,
//! for running the registry over HTTPS.
//!
//! ```no_run
//! # use relbuild_testdata::registry::TestRegistry;
//! let (reg, tls) = TestRegistry::start_tls()?;
//! // reg.url() is https://127.0.0.1:PORT; trust tls.ca_pem() (or tls.root_store()).
//! # anyhow::Ok(())
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::registry::{RegistryConfig, TestRegistry};

/// PEM files of a fresh CA and of a server certificate it signed, in a
/// temporary directory deleted on drop.
#[derive(Debug)]
pub struct TlsFixture {
    dir: tempfile::TempDir,
    /// The CA certificate, `DIR/ca.crt`; the directory is usable as a
    /// containers-image `--cert-dir` (see [`TlsFixture::cert_dir`]).
    pub ca_pem_path: PathBuf,
    /// The server certificate (SANs `127.0.0.1`, `localhost`), `DIR/server/server.pem`.
    pub cert_path: PathBuf,
    /// The server's PKCS#8 private key, `DIR/server/server-key.pem`.
    pub key_path: PathBuf,
    ca_pem: String,
    ca_der: Vec<u8>,
}

impl TlsFixture {
    /// Generates the CA and the server certificate and writes them out.
    pub fn generate() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("relbuild-tls-").tempdir()?;
        let ca_key = rcgen::KeyPair::generate().context("generating the CA key")?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::new())?;
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "relbuild test CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).context("self-signing the CA")?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let key = rcgen::KeyPair::generate().context("generating the server key")?;
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "127.0.0.1");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature, rcgen::KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &issuer).context("signing the server certificate")?;

        let ca_pem_path = dir.path().join("ca.crt");
        let server_dir = dir.path().join("server");
        std::fs::create_dir(&server_dir)?;
        let cert_path = server_dir.join("server.pem");
        let key_path = server_dir.join("server-key.pem");
        std::fs::write(&ca_pem_path, ca.pem()).context("writing ca.crt")?;
        std::fs::write(&cert_path, cert.pem()).context("writing server.pem")?;
        std::fs::write(&key_path, key.serialize_pem()).context("writing server-key.pem")?;
        Ok(Self { dir, ca_pem_path, cert_path, key_path, ca_pem: ca.pem(), ca_der: ca.der().to_vec() })
    }

    /// The CA certificate as PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate as DER.
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// A rustls root store trusting only the CA.
    pub fn root_store(&self) -> Result<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from(self.ca_der.clone())).context("adding the test CA")?;
        Ok(roots)
    }

    /// A directory holding only `ca.crt`: skopeo's `--cert-dir`.
    pub fn cert_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The YAML to put under the registry's `http:`.
    pub fn http_yaml(&self) -> String {
        format!("  tls:\n    certificate: {}\n    key: {}\n", self.cert_path.display(), self.key_path.display())
    }

    /// Adds this fixture's `tls:` to `cfg` (keeping its `auth_yaml`) and marks it TLS.
    pub fn apply(&self, mut cfg: RegistryConfig) -> RegistryConfig {
        let mut http = cfg.http_yaml.take().unwrap_or_default();
        if !http.is_empty() && !http.ends_with('\n') {
            http.push('\n');
        }
        http.push_str(&self.http_yaml());
        RegistryConfig { http_yaml: Some(http), tls: true, ..cfg }
    }
}

impl TestRegistry {
    /// Starts an anonymous HTTPS registry with a fresh CA; keep the fixture
    /// alive as long as the registry.
    pub fn start_tls() -> Result<(Self, TlsFixture)> {
        Self::start_tls_with(RegistryConfig::default())
    }

    /// Like [`TestRegistry::start_tls`], with extra configuration (e.g. a token issuer's).
    pub fn start_tls_with(cfg: RegistryConfig) -> Result<(Self, TlsFixture)> {
        let tls = TlsFixture::generate()?;
        let reg = Self::start_with(tls.apply(cfg))?;
        Ok((reg, tls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::curl;

    /// `GET /v2/` with the CA, retried briefly: the harness only waits for
    /// the TCP port, so the TLS listener may still be starting.
    fn first_answer(ca: &str, reg: &TestRegistry) -> crate::testutil::Curl {
        let get = || curl(&["--cacert", ca, &format!("{}/v2/", reg.url())], None);
        let mut r = get();
        for _ in 0..50 {
            if r.code == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            r = get();
        }
        r
    }

    #[test]
    fn https_registry_trusts_only_the_test_ca() {
        let (reg, tls) = TestRegistry::start_tls().expect("registry");
        assert!(reg.url().starts_with("https://127.0.0.1:"));
        let ca = tls.ca_pem_path.to_str().expect("utf-8 path");
        let r = first_answer(ca, &reg);
        assert_eq!((r.code, r.status()), (0, 200), "{}", reg.log());
        let r = curl(&["--cacert", ca, &format!("https://localhost:{}/v2/", reg.port())], None);
        assert_eq!((r.code, r.status()), (0, 200));
        let r = curl(&[&format!("{}/v2/", reg.url())], None);
        assert_eq!(r.code, 60, "curl: untrusted certificate");
        assert_eq!(tls.root_store().expect("roots").len(), 1);

        // containers-image trusts it through --cert-dir, and not without.
        let target = format!("docker://{}/no/such:tag", reg.host());
        let cert_dir = tls.cert_dir().to_str().expect("utf-8 path");
        let err =
            crate::registry::skopeo(&["inspect", "--raw", "--cert-dir", cert_dir, &target]).expect_err("no image");
        assert!(!err.to_string().contains("certificate"), "{err}");
        let err = crate::registry::skopeo(&["inspect", "--raw", &target]).expect_err("untrusted");
        assert!(err.to_string().contains("certificate"), "{err}");
    }

    #[test]
    fn combines_with_the_token_issuer() {
        use crate::token::{Grant, TokenIssuer, TokenPolicy};
        let issuer =
            TokenIssuer::start(TokenPolicy::default().anonymous(vec![Grant::repo("*", &["pull"])])).expect("issuer");
        let (reg, tls) = TestRegistry::start_tls_with(issuer.registry_config()).expect("registry");
        let ca = tls.ca_pem_path.to_str().expect("utf-8 path");
        let r = first_answer(ca, &reg);
        assert_eq!(r.status(), 401, "token auth is on");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains(&issuer.realm()), "{challenge}");
    }
}
