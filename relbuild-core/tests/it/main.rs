//! relbuild-core integration tests, against a real registry and the golden vectors.

mod build;
mod golden;
mod golden_registry;
mod info;
mod mirrors;
mod registry;
mod store;
mod transfer;
mod tree;
