//! Test harness and fixture generator for relbuild.
//!
//! - [`registry`]: a real `docker-registry` started on loopback for each test.

pub mod auth;
pub mod registry;
