//! A tiny bearer-token issuer for distribution's `auth.token` flow.
//!
//! It signs ES256 JWTs with a throw-away P-256 key whose self-signed
//! certificate is both the `x5c` header and the registry's
//! `rootcertbundle` (distribution verifies the `x5c` leaf against that bundle,
//! then the signature with the leaf's key, then `iss`, `aud`, `exp`/`nbf`).
//! Every request is recorded so tests can assert what a client asked for.
//!
//! ```no_run
//! # use relbuild_testdata::{registry::TestRegistry, token::{Grant, TokenIssuer, TokenPolicy}};
//! let issuer = TokenIssuer::start(
//!     TokenPolicy::default()
//!         .user("alice", "secret", vec![Grant::repo("*", &["pull", "push"])])
//!         .anonymous(vec![Grant::repo("*", &["pull"])]),
//! )?;
//! let reg = TestRegistry::start_with(issuer.registry_config())?;
//! // ... run the client against reg.host() with alice/secret, then:
//! assert!(issuer.requests().iter().any(|r| r.scopes.len() == 2));
//! # anyhow::Ok(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde::Serialize;

use crate::registry::{RegistryConfig, TestRegistry};
use crate::serve::{Reply, RespBody, Server, full};

/// The `service` the issuer and registry agree on (the token's `aud`).
pub const SERVICE: &str = "relbuild-test";
/// The token's `iss`.
pub const ISSUER: &str = "relbuild-test-issuer";

/// Actions on resources matching a name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Resource type, usually `repository` (or `registry` for `registry:catalog:*`).
    pub resource_type: String,
    /// `*` (any), `prefix/*` (anything under `prefix/`) or an exact name.
    pub name: String,
    /// Allowed actions (`pull`, `push`, `delete`, …); `*` allows all.
    pub actions: Vec<String>,
}

impl Grant {
    /// A grant on repositories matching `name`.
    pub fn repo(name: &str, actions: &[&str]) -> Self {
        Self {
            resource_type: "repository".to_owned(),
            name: name.to_owned(),
            actions: actions.iter().map(|&a| a.to_owned()).collect(),
        }
    }

    fn covers(&self, resource_type: &str, name: &str) -> bool {
        self.resource_type == resource_type
            && (self.name == "*"
                || self.name == name
                || self.name.strip_suffix('*').is_some_and(|p| p.ends_with('/') && name.starts_with(p)))
    }

    fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == "*" || a == action)
    }
}

/// A user the issuer knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    /// The Basic-auth user name (the token's `sub`).
    pub name: String,
    /// The password.
    pub password: String,
    /// What the user may do.
    pub grants: Vec<Grant>,
}

/// Who gets what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Known users.
    pub users: Vec<TokenUser>,
    /// Grants for requests without credentials; `None` answers them 401.
    pub anonymous: Option<Vec<Grant>>,
    /// The token lifetime in seconds (`expires_in`).
    pub expires_in: u64,
}

impl Default for TokenPolicy {
    /// No users, anonymous requests refused, 300 s tokens.
    fn default() -> Self {
        Self { users: Vec::new(), anonymous: None, expires_in: 300 }
    }
}

impl TokenPolicy {
    /// Adds a user.
    #[must_use]
    pub fn user(mut self, name: &str, password: &str, grants: Vec<Grant>) -> Self {
        self.users.push(TokenUser { name: name.to_owned(), password: password.to_owned(), grants });
        self
    }

    /// Lets requests without credentials have `grants` (an empty list issues tokens with no access).
    #[must_use]
    pub fn anonymous(mut self, grants: Vec<Grant>) -> Self {
        self.anonymous = Some(grants);
        self
    }

    /// Sets the token lifetime.
    #[must_use]
    pub fn expires_in(mut self, secs: u64) -> Self {
        self.expires_in = secs;
        self
    }
}

/// One entry of the token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    /// Resource type, e.g. `repository`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// Resource name, e.g. `a/b`.
    pub name: String,
    /// Granted actions.
    pub actions: Vec<String>,
}

/// One request the issuer answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `GET`, or `POST` for the OAuth2 password grant.
    pub method: String,
    /// The user name presented, if any (even if the password was wrong).
    pub user: Option<String>,
    /// The `service` parameter.
    pub service: Option<String>,
    /// Every scope asked for, in order (repeated `scope=` and space-separated ones).
    pub scopes: Vec<String>,
    /// What the token granted (empty when refused).
    pub granted: Vec<Access>,
    /// The status answered: 200, 400 or 401.
    pub status: u16,
}

/// A running token issuer; dropping it stops it and deletes its files.
#[derive(Debug)]
pub struct TokenIssuer {
    server: Server,
    state: Arc<IssuerState>,
    dir: tempfile::TempDir,
    root_cert: PathBuf,
}

struct IssuerState {
    key: EcdsaKeyPair,
    x5c: String,
    rng: SystemRandom,
    policy: Mutex<TokenPolicy>,
    requests: Mutex<Vec<TokenRequest>>,
    jti: AtomicU64,
}

impl std::fmt::Debug for IssuerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerState").field("policy", &self.policy).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TokenIssuer {
    /// Generates a signing key and certificate and starts serving on 127.0.0.1.
    pub fn start(policy: TokenPolicy) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("relbuild-token-").tempdir()?;
        let key = rcgen::KeyPair::generate().context("generating the token signing key")?;
        let mut params = rcgen::CertificateParams::new(Vec::new())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "relbuild test token signer");
        params.key_usages.push(rcgen::KeyUsagePurpose::DigitalSignature);
        let cert = params.self_signed(&key).context("self-signing the token certificate")?;
        let root_cert = dir.path().join("token-root.pem");
        std::fs::write(&root_cert, cert.pem()).context("writing the token root certificate")?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.serialized_der(), &rng)
            .map_err(|e| anyhow::anyhow!("loading the signing key into ring: {e}"))?;
        let state = Arc::new(IssuerState {
            key,
            x5c: STANDARD.encode(cert.der()),
            rng,
            policy: Mutex::new(policy),
            requests: Mutex::new(Vec::new()),
            jti: AtomicU64::new(0),
        });
        let st = state.clone();
        let server = Server::start("relbuild-token-issuer", move |req| {
            let st = st.clone();
            async move { Reply::Respond(st.handle(req).await) }
        })?;
        Ok(Self { server, state, dir, root_cert })
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.server.addr().port())
    }

    /// `127.0.0.1:PORT` of the issuer (e.g. to put a [`crate::proxy::FaultProxy`] in front of it).
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.server.addr().port())
    }

    /// The PEM certificate the registry trusts (`rootcertbundle`).
    pub fn root_cert_path(&self) -> &Path {
        &self.root_cert
    }

    /// The issuer's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The YAML to put under the registry's `auth:` for this issuer.
    pub fn auth_yaml(&self) -> String {
        format!(
            "  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.realm(),
            self.root_cert.display()
        )
    }

    /// A plain-HTTP registry configuration that uses this issuer.
    pub fn registry_config(&self) -> RegistryConfig {
        RegistryConfig { auth_yaml: Some(self.auth_yaml()), ..RegistryConfig::default() }
    }

    /// Replaces the policy for subsequent requests.
    pub fn set_policy(&self, policy: TokenPolicy) {
        *lock(&self.state.policy) = policy;
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        lock(&self.state.requests).clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
    }

    /// Issues a token directly (no HTTP), e.g. to hand a client a pre-made or
    /// deliberately narrow token. `user` `None` is anonymous; the policy is not consulted.
    pub fn issue(&self, user: Option<&str>, access: &[Access]) -> Result<String> {
        let expires_in = lock(&self.state.policy).expires_in;
        self.state.sign(user, access, expires_in)
    }
}

impl TestRegistry {
    /// Starts a plain-HTTP registry that requires tokens from `issuer`.
    pub fn start_with_token(issuer: &TokenIssuer) -> Result<Self> {
        Self::start_with(issuer.registry_config())
    }
}

/// A parsed `type:name:actions` scope.
fn parse_scope(s: &str) -> Option<(&str, &str, Vec<&str>)> {
    let (ty, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((ty, name, actions.split(',').filter(|a| !a.is_empty()).collect()))
}

/// Decodes `application/x-www-form-urlencoded` pairs.
fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match b.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(user, password)` from `Authorization: Basic …`.
fn basic_credentials(v: &HeaderValue) -> Option<(String, String)> {
    let v = v.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(STANDARD.decode(b64.trim()).ok()?).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<RespBody> {
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

impl IssuerState {
    async fn handle(&self, req: Request<Incoming>) -> Response<RespBody> {
        let method = req.method().clone();
        let query = req.uri().query().unwrap_or("").to_owned();
        let header_creds = req.headers().get(header::AUTHORIZATION).and_then(basic_credentials);
        let mut params = form_pairs(&query);
        if method == Method::POST {
            match req.into_body().collect().await {
                Ok(b) => params.extend(form_pairs(&String::from_utf8_lossy(&b.to_bytes()))),
                Err(e) => {
                    return json_response(StatusCode::BAD_REQUEST, &serde_json::json!({ "error": e.to_string() }));
                }
            }
        }
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let service = get("service");
        let scopes: Vec<String> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>())
            .collect();
        let mut record =
            TokenRequest { method: method.to_string(), user: None, service, scopes, granted: Vec::new(), status: 0 };
        let resp = self.decide(&method, header_creds, &get, &mut record);
        record.status = resp.status().as_u16();
        lock(&self.requests).push(record);
        resp
    }

    fn decide(
        &self,
        method: &Method,
        header_creds: Option<(String, String)>,
        get: &dyn Fn(&str) -> Option<String>,
        record: &mut TokenRequest,
    ) -> Response<RespBody> {
        let creds = if *method == Method::GET {
            header_creds
        } else if *method == Method::POST {
            if get("grant_type").as_deref() != Some("password") {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &serde_json::json!({ "error": "unsupported_grant_type" }),
                );
            }
            get("username").map(|u| (u, get("password").unwrap_or_default()))
        } else {
            return json_response(
                StatusCode::METHOD_NOT_ALLOWED,
                &serde_json::json!({ "error": "method not allowed" }),
            );
        };
        if record.service.as_deref().is_some_and(|s| s != SERVICE) {
            return json_response(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({ "errors": [{ "code": "DENIED", "message": "unknown service" }] }),
            );
        }
        let policy = lock(&self.policy).clone();
        let grants = match &creds {
            Some((u, p)) => {
                record.user = Some(u.clone());
                match policy.users.iter().find(|x| &x.name == u && &x.password == p) {
                    Some(user) => user.grants.clone(),
                    None => return unauthorized(),
                }
            }
            None => match &policy.anonymous {
                Some(g) => g.clone(),
                None => return unauthorized(),
            },
        };
        record.granted = record
            .scopes
            .iter()
            .filter_map(|s| {
                let (ty, name, actions) = parse_scope(s)?;
                let ok: Vec<String> = actions
                    .into_iter()
                    .filter(|a| grants.iter().any(|g| g.covers(ty, name) && g.allows(a)))
                    .map(str::to_owned)
                    .collect();
                (!ok.is_empty()).then(|| Access { resource_type: ty.to_owned(), name: name.to_owned(), actions: ok })
            })
            .collect();
        match self.sign(record.user.as_deref(), &record.granted, policy.expires_in) {
            Ok(token) => json_response(
                StatusCode::OK,
                &serde_json::json!({
                    "token": token,
                    "access_token": token,
                    "expires_in": policy.expires_in,
                    "issued_at": jiff::Timestamp::now().to_string(),
                }),
            ),
            Err(e) => json_response(StatusCode::INTERNAL_SERVER_ERROR, &serde_json::json!({ "error": e.to_string() })),
        }
    }

    fn sign(&self, user: Option<&str>, access: &[Access], expires_in: u64) -> Result<String> {
        let now = jiff::Timestamp::now().as_second();
        let exp = now.saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX / 2));
        let header = serde_json::json!({ "typ": "JWT", "alg": "ES256", "x5c": [self.x5c] });
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": user.unwrap_or(""),
            "aud": SERVICE,
            "exp": exp,
            "nbf": now - 1,
            "iat": now,
            "jti": format!("relbuild-{}", self.jti.fetch_add(1, Ordering::Relaxed)),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?)
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|e| anyhow::anyhow!("signing the token: {e}"))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }
}

fn unauthorized() -> Response<RespBody> {
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        &serde_json::json!({ "errors": [{ "code": "UNAUTHORIZED", "message": "authentication required" }] }),
    );
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"relbuild-test\""));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{blob, curl, push_blob_with};

    fn policy() -> TokenPolicy {
        TokenPolicy::default().user("alice", "secret", vec![Grant::repo("*", &["pull", "push"])]).user(
            "bob",
            "pw",
            vec![Grant::repo("team/*", &["pull"]), Grant::repo("c", &["*"])],
        )
    }

    /// Fetches a token as `user:pass` (if any) for `scopes`; returns (status, token).
    fn fetch(issuer: &TokenIssuer, creds: Option<&str>, scopes: &[&str]) -> (u16, String) {
        let mut url = format!("{}?service={SERVICE}", issuer.realm());
        for s in scopes {
            url.push_str(&format!("&scope={}", s.replace(':', "%3A").replace(',', "%2C")));
        }
        let mut args = vec![url.as_str()];
        if let Some(c) = creds {
            args.extend(["-u", c]);
        }
        let r = curl(&args, None);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        if r.status() == 200 {
            assert_eq!(v["token"], v["access_token"]);
            assert!(v["expires_in"].as_u64().is_some() && v["issued_at"].is_string(), "{v}");
        }
        (r.status(), v["token"].as_str().unwrap_or_default().to_owned())
    }

    #[test]
    fn scopes_and_names() {
        assert_eq!(parse_scope("repository:a/b:pull,push"), Some(("repository", "a/b", vec!["pull", "push"])));
        assert_eq!(
            parse_scope("repository:localhost:5000/x:pull"),
            Some(("repository", "localhost:5000/x", vec!["pull"]))
        );
        assert_eq!(parse_scope("registry:catalog:*"), Some(("registry", "catalog", vec!["*"])));
        assert_eq!(parse_scope("nonsense"), None);
        assert_eq!(percent_decode("repository%3Aa%2Fb%3Apull+x%zz%"), "repository:a/b:pull x%zz%");
        let g = Grant::repo("team/*", &["pull"]);
        assert!(
            g.covers("repository", "team/x") && !g.covers("repository", "teamx") && !g.covers("registry", "team/x")
        );
    }

    #[test]
    fn registry_accepts_issued_tokens_per_scope() {
        let issuer = TokenIssuer::start(policy()).expect("issuer");
        let reg = TestRegistry::start_with_token(&issuer).expect("registry");
        let base = reg.url();

        // The registry challenges with our realm, service and the scope it needs.
        let r = curl(&[&format!("{base}/v2/")], None);
        assert_eq!(r.status(), 401);
        let ch = r.header("www-authenticate").expect("challenge");
        assert!(ch.starts_with("Bearer ") && ch.contains(&issuer.realm()) && ch.contains(SERVICE), "{ch}");
        let r = curl(&["-X", "POST", &format!("{base}/v2/a/b/blobs/uploads/")], None);
        let ch = r.header("www-authenticate").expect("challenge");
        // distribution lists the actions in Go map order: either order may come.
        assert!(
            ch.contains("scope=\"repository:a/b:pull,push\"") || ch.contains("scope=\"repository:a/b:push,pull\""),
            "{ch}"
        );

        // Wrong password and anonymous (denied by default) are refused by the issuer.
        assert_eq!(fetch(&issuer, Some("alice:nope"), &["repository:a/b:pull"]).0, 401);
        assert_eq!(fetch(&issuer, None, &["repository:a/b:pull"]).0, 401);

        // A multi-scope token works for /v2/, push and pull.
        let (st, tok) = fetch(&issuer, Some("alice:secret"), &["repository:a/b:pull,push", "repository:c:pull"]);
        assert_eq!(st, 200);
        let bearer = format!("Authorization: Bearer {tok}");
        assert_eq!(curl(&["-H", &bearer, &format!("{base}/v2/")], None).status(), 200);
        let data = blob(5000);
        let d = push_blob_with(&base, "a/b", &data, &["-H", &bearer]);
        let r = curl(&["-H", &bearer, &format!("{base}/v2/a/b/blobs/{d}")], None);
        assert_eq!((r.status(), r.body.len()), (200, data.len()));

        let last = issuer.requests().pop().expect("recorded");
        assert_eq!(last.user.as_deref(), Some("alice"));
        assert_eq!(last.service.as_deref(), Some(SERVICE));
        assert_eq!(last.scopes, ["repository:a/b:pull,push", "repository:c:pull"]);
        assert_eq!(last.granted.len(), 2);

        // bob may only pull team/*: the token lacks push, so the registry refuses the upload.
        let (st, tok) = fetch(&issuer, Some("bob:pw"), &["repository:team/x:pull,push"]);
        assert_eq!(st, 200);
        let rec = issuer.requests().pop().expect("recorded");
        assert_eq!(
            rec.granted,
            [Access { resource_type: "repository".into(), name: "team/x".into(), actions: vec!["pull".into()] }]
        );
        let bearer = format!("Authorization: Bearer {tok}");
        let r = curl(&["-H", &bearer, "-X", "POST", &format!("{base}/v2/team/x/blobs/uploads/")], None);
        assert!(matches!(r.status(), 401 | 403), "{}", r.headers);
        // A token for another repository does not work either.
        let r = curl(&["-H", &bearer, &format!("{base}/v2/a/b/blobs/{d}")], None);
        assert_eq!(r.status(), 401);
        // But a token with nothing granted still authenticates /v2/.
        let (_, tok) = fetch(&issuer, Some("bob:pw"), &["repository:a/b:pull"]);
        assert_eq!(curl(&["-H", &format!("Authorization: Bearer {tok}"), &format!("{base}/v2/")], None).status(), 200);
    }

    #[test]
    fn anonymous_pull_and_oauth2_password_grant() {
        let issuer = TokenIssuer::start(policy().anonymous(vec![Grant::repo("*", &["pull"])])).expect("issuer");
        let reg = TestRegistry::start_with_token(&issuer).expect("registry");
        let base = reg.url();
        let (_, tok) = fetch(&issuer, Some("alice:secret"), &["repository:p/q:push,pull"]);
        let d = push_blob_with(&base, "p/q", b"hello", &["-H", &format!("Authorization: Bearer {tok}")]);

        let (st, anon) = fetch(&issuer, None, &["repository:p/q:pull,push"]);
        assert_eq!(st, 200);
        let rec = issuer.requests().pop().expect("recorded");
        assert_eq!((rec.user, rec.granted[0].actions.clone()), (None, vec!["pull".to_owned()]));
        let r = curl(&["-H", &format!("Authorization: Bearer {anon}"), &format!("{base}/v2/p/q/blobs/{d}")], None);
        assert_eq!(r.body, b"hello");

        let form = format!(
            "grant_type=password&username=alice&password=secret&service={SERVICE}&scope=repository%3Ap%2Fq%3Apull+repository%3Ax%3Apull&client_id=t"
        );
        let r = curl(&["-X", "POST", &issuer.realm()], Some(form.as_bytes()));
        assert_eq!(r.status(), 200);
        let rec = issuer.requests().pop().expect("recorded");
        assert_eq!((rec.method.as_str(), rec.scopes.len(), rec.user.as_deref()), ("POST", 2, Some("alice")));
        let r = curl(&["-X", "POST", &issuer.realm()], Some(b"grant_type=refresh_token&refresh_token=x"));
        assert_eq!(r.status(), 400);

        // A real client (skopeo / containers-image) goes through the same flow.
        issuer.clear_requests();
        let out = crate::registry::skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "alice:secret",
            &format!("docker://{}/p/q:nope", reg.host()),
        ]);
        assert!(out.is_err(), "no such manifest");
        let seen = issuer.requests();
        assert!(
            seen.iter()
                .any(|r| r.user.as_deref() == Some("alice") && r.scopes == ["repository:p/q:pull"] && r.status == 200),
            "{seen:?}"
        );

        // A directly issued token works too.
        let tok = issuer.issue(Some("alice"), &[]).expect("issue");
        assert_eq!(curl(&["-H", &format!("Authorization: Bearer {tok}"), &format!("{base}/v2/")], None).status(), 200);
    }
}
