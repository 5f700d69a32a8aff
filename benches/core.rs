//! criterion benches.
fn main() {}
