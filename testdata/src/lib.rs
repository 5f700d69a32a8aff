//! Test harness and fixture generator for relbuild.
