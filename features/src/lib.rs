//! Vigil features: telemetry loading, the machine simulator and rolling-window feature engineering.
//!
//! This crate is being built; see its issue in the tracker. It exports nothing yet.
#![deny(missing_docs)]
