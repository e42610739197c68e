//! Criterion benches for vigil-tracking-client: written by issue #6.
fn main() {}
