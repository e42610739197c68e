//! Criterion benches for vigil-features: written by issue #3.
fn main() {}
