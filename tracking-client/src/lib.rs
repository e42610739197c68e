//! Vigil tracking client: MLflow tracking and model registry, with a local file store.
//!
//! This crate is being built; see its issue in the tracker. It exports nothing yet.
#![deny(missing_docs)]
