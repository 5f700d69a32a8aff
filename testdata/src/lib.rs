//! Test harness and fixture generator for relbuild.
//!
//! - [`registry`]: a real `docker-registry` started on loopback for each test.
//! - [`proxy`]: a fault-injecting reverse proxy in front of that registry.
//! - [`token`]: a bearer-token issuer for the registry's `auth.token` flow.
//! - [`tls`]: a throw-away CA and server certificate for an HTTPS registry.
//! - [`auth`]: an htpasswd (basic auth) registry and auth-file writing.
//! - [`fixture`]: the synthetic release stream (images and their files).
//! - [`generate`]: builds those images and pushes them; writes the ImageStream.
//! - [`golden`]: the golden vector `golden/oc-n3` loaded into a registry.
//! - [`hostile`]: images whose layers no honest writer produces (`..` entries).
//! - [`netns`]: one test in a private network namespace (the golden vector's fixed port).

pub mod auth;
pub mod fixture;
pub mod generate;
pub mod golden;
pub mod hostile;
pub mod netns;
pub mod proxy;
pub mod registry;
mod serve;
#[cfg(test)]
mod testutil;
pub mod tls;
pub mod token;
