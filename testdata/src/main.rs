//! Fixture generator.
fn main() {}
