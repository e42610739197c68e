//! Vigil tuning: define-by-run hyper-parameter tuning with TPE, random search and median pruning.
//!
//! This crate is being built; see its issue in the tracker. It exports nothing yet.
#![deny(missing_docs)]
