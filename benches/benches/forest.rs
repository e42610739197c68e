//! Criterion benches for vigil-forest: written by issue #4.
fn main() {}
