//! Test harness and fixture generator for relbuild.
//!
//! - [`registry`]: a real `docker-registry` started on loopback for each test.
//! - [`proxy`]: a fault-injecting reverse proxy in front of that registry.

pub mod proxy;
pub mod registry;
mod serve;
