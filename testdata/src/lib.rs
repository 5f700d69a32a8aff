//! Test harness and fixture generator for relbuild.
//!
//! - [`registry`]: a real `docker-registry` started on loopback for each test.
//! - [`fixture`]: the synthetic release stream (images and their files).

pub mod registry;
pub mod fixture;
