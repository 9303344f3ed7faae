//! The signed logs on disk: tampering of every kind caught, and the writer's bounds.
// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod log_bounds;
mod tamper;
