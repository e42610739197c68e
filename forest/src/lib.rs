//! Vigil forest: decision trees, Random Forest and Isolation Forest.
//!
//! This crate is being built; see its issue in the tracker. It exports nothing yet.
#![deny(missing_docs)]
