//! Benchmarks for the Vigil workspace.
//!
//! Criterion benches live in `benches/benches/`, comparison scripts against the
//! Python stack in `benches/compare/`, and the numbers in `benches/RESULTS.md`.
#![deny(missing_docs)]

pub mod drift_verdicts;
