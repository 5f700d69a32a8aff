//! The `relbuild` command.
fn main() {}
