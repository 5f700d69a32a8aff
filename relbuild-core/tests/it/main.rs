//! relbuild-core integration tests, against a real registry.
mod info;
