//! Criterion benches for vigil-tuning: written by issue #5.
fn main() {}
