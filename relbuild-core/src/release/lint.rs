//! `relbuild lint`.
