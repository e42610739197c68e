//! Criterion benches for vigil-metrics: written by issue #2.
fn main() {}
