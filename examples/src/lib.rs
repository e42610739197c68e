//! Shared plumbing for the reference-pipeline binaries in `src/bin/`.
//!
//! The binaries are thin: everything another user would also need lives in the
//! library crates (`vigil-features`, `vigil-forest`, `vigil-tuning`,
//! `vigil-metrics`, `vigil-tracking-client`). What stays here is glue only:
//!
//! - [`schedule`]: cron / interval schedules, retry back-off and the
//!   cross-process job lock the `scheduler` binary uses.
#![deny(missing_docs)]

pub mod schedule;
