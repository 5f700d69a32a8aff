//! Registry authentication: `WWW-Authenticate` challenges, token scopes and
//! the token cache.
//!
//! The flow is the distribution token spec's: a request without credentials
//! gets `401` with a challenge; `Basic` means send the credentials with every
//! request from then on, `Bearer realm=…,service=…` means fetch a token from
//! the realm for all the scopes the operation needs (a cross-repository mount
//! needs `repository:dst:pull,push` *and* `repository:src:pull` in one token)
//! and send it as `Authorization: Bearer`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// HTTP basic auth.
    Basic,
    /// A bearer token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry asked for, if it said.
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value (`Bearer realm="…",service="…",scope="…"`).
/// Quoted values may contain commas and escaped quotes; names are
/// case-insensitive. Unknown schemes give `None`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
}

fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        if name.is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek() != Some(&'=') {
            continue;
        }
        chars.next();
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name, value));
    }
}

/// A sorted, de-duplicated set of token scopes such as `repository:a/b:pull,push`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Scopes(BTreeSet<String>);

impl Scopes {
    /// `repository:<repo>:pull`.
    pub(crate) fn pull(repo: &str) -> Self {
        Self::default().with(format!("repository:{repo}:pull"))
    }

    /// `repository:<repo>:pull,push`.
    pub(crate) fn push(repo: &str) -> Self {
        Self::default().with(format!("repository:{repo}:pull,push"))
    }

    /// Adds a scope.
    pub(crate) fn with(mut self, scope: String) -> Self {
        if !scope.is_empty() {
            self.0.insert(scope);
        }
        self
    }

    /// Adds every space-separated scope of a challenge's `scope`.
    pub(crate) fn with_challenge(mut self, scope: Option<&str>) -> Self {
        for s in scope.unwrap_or_default().split_whitespace() {
            self.0.insert(s.to_owned());
        }
        self
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// True when a token for `self` grants everything `other` asks for:
    /// each scope of `other` has one here with the same type and name and
    /// at least its actions.
    pub(crate) fn covers(&self, other: &Scopes) -> bool {
        other.iter().all(|want| {
            let Some((wt, wn, wa)) = split_scope(want) else { return self.0.contains(want) };
            self.iter().any(|have| {
                split_scope(have).is_some_and(|(ht, hn, ha)| {
                    ht == wt && hn == wn && wa.split(',').all(|a| ha.split(',').any(|h| h == a || h == "*"))
                })
            })
        })
    }
}

/// `type:name:actions`; the name may itself contain `:` (a registry port).
fn split_scope(s: &str) -> Option<(&str, &str, &str)> {
    let (ty, rest) = s.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((ty, name, actions))
}

/// Docker's rule: tokens are assumed valid for at least 60 s.
pub(crate) const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// The token lifetime to assume for `expires_in` (seconds), with a margin so a
/// token is not used in its last seconds.
pub(crate) fn token_lifetime(expires_in: Option<u64>) -> Duration {
    let secs = Duration::from_secs(expires_in.unwrap_or(0)).max(MIN_TOKEN_LIFETIME);
    secs - Duration::from_secs(5)
}

/// The token endpoint's answer.
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub(crate) token: Option<String>,
    #[serde(default)]
    pub(crate) access_token: Option<String>,
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
}

/// What we know about how a registry authenticates.
#[derive(Clone, Debug, Default)]
pub(crate) enum Scheme {
    /// Not yet challenged: send nothing.
    #[default]
    Unknown,
    /// Send basic credentials.
    Basic,
    /// Fetch bearer tokens.
    Bearer { realm: String, service: Option<String> },
}

/// Per-registry auth state and the token cache, shared by all requests.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    schemes: Mutex<HashMap<String, Scheme>>,
    tokens: Mutex<HashMap<(String, Scopes), (String, Instant)>>,
}

impl AuthState {
    pub(crate) fn scheme(&self, registry: &str) -> Scheme {
        self.schemes.lock().map(|m| m.get(registry).cloned().unwrap_or_default()).unwrap_or_default()
    }

    pub(crate) fn set_scheme(&self, registry: &str, scheme: Scheme) {
        if let Ok(mut m) = self.schemes.lock() {
            m.insert(registry.to_owned(), scheme);
        }
    }

    /// A live token for exactly `scopes`, else one whose scopes cover them.
    pub(crate) fn cached_token(&self, registry: &str, scopes: &Scopes) -> Option<String> {
        let m = self.tokens.lock().ok()?;
        let now = Instant::now();
        if let Some((token, expiry)) = m.get(&(registry.to_owned(), scopes.clone()))
            && now < *expiry
        {
            return Some(token.clone());
        }
        m.iter()
            .find(|((r, s), (_, expiry))| r == registry && now < *expiry && s.covers(scopes))
            .map(|(_, (token, _))| token.clone())
    }

    pub(crate) fn store_token(&self, registry: &str, scopes: &Scopes, token: String, lifetime: Duration) {
        if let Ok(mut m) = self.tokens.lock() {
            m.insert((registry.to_owned(), scopes.clone()), (token, Instant::now() + lifetime));
        }
    }

    pub(crate) fn forget_token(&self, registry: &str, scopes: &Scopes) {
        if let Ok(mut m) = self.tokens.lock() {
            m.remove(&(registry.to_owned(), scopes.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Option<Challenge> {
        Some(Challenge::Bearer { realm: realm.into(), service: service.map(Into::into), scope: scope.map(Into::into) })
    }

    #[test]
    fn challenge_table() {
        let cases = [
            (r#"Basic realm="Registry Realm""#, Some(Challenge::Basic)),
            ("basic", Some(Challenge::Basic)),
            (
                r#"Bearer realm="https://auth.io/token",service="registry.io",scope="repository:a/b:pull,push""#,
                bearer("https://auth.io/token", Some("registry.io"), Some("repository:a/b:pull,push")),
            ),
            (
                r#"Bearer realm="https://auth.io/token", service="r", scope="repository:a:pull repository:b:pull""#,
                bearer("https://auth.io/token", Some("r"), Some("repository:a:pull repository:b:pull")),
            ),
            (r#"BEARER Realm="https://x/t""#, bearer("https://x/t", None, None)),
            (r#"Bearer realm=https://x/t,service=reg"#, bearer("https://x/t", Some("reg"), None)),
            (
                r#"Bearer realm="https://x/t?a=1,b=2",error="insufficient_scope",scope="repository:a:push""#,
                bearer("https://x/t?a=1,b=2", None, Some("repository:a:push")),
            ),
            (r#"Bearer realm="a\"b""#, bearer("a\"b", None, None)),
            ("Bearer service=\"x\"", None),
            ("Negotiate abc", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_challenge(input), want, "{input}");
        }
    }

    #[test]
    fn scopes_are_a_set() {
        let s = Scopes::push("dst").with("repository:src:pull".into()).with_challenge(Some("repository:dst:pull,push"));
        assert_eq!(s.iter().collect::<Vec<_>>(), ["repository:dst:pull,push", "repository:src:pull"]);
        assert_eq!(Scopes::pull("a"), Scopes::default().with_challenge(Some("repository:a:pull")));
        let cases = [
            (Scopes::push("a"), Scopes::pull("a"), true),
            (Scopes::pull("a"), Scopes::push("a"), false),
            (Scopes::push("a"), Scopes::pull("b"), false),
            (s.clone(), Scopes::pull("src"), true),
            (s.clone(), Scopes::push("dst"), true),
            (s.clone(), Scopes::push("src"), false),
            (Scopes::default().with("repository:a:*".into()), Scopes::push("a"), true),
            (Scopes::pull("h:5000/a"), Scopes::pull("h:5000/a"), true),
        ];
        for (have, want, covers) in cases {
            assert_eq!(have.covers(&want), covers, "{have:?} covers {want:?}");
        }
    }

    #[test]
    fn token_cache_expires() {
        let st = AuthState::default();
        let s = Scopes::pull("a");
        st.store_token("r", &s, "t".into(), Duration::from_secs(60));
        assert_eq!(st.cached_token("r", &s).as_deref(), Some("t"));
        assert_eq!(st.cached_token("r", &Scopes::push("a")), None);
        st.store_token("r", &s, "t".into(), Duration::ZERO);
        assert_eq!(st.cached_token("r", &s), None);
        assert_eq!(token_lifetime(None), Duration::from_secs(55));
        assert_eq!(token_lifetime(Some(300)), Duration::from_secs(295));
    }
}
