//! Vigil metrics: classification metrics, curves, reports and plots.
//!
//! This crate is being built; see its issue in the tracker. It exports nothing yet.
#![deny(missing_docs)]
