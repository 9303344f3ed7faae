//! The HTTP API over real sockets: access control and its log, hostile callers, lineage, search.
//! (The two tests that lower the process's file-size limit are binaries of their own:
//! `log_write_failure`, `review_log_failure`.)
// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

mod console_browser;
mod console_http;

mod access_http;
mod hostile;
mod incidents_http;
mod lineage;
mod search_http;
mod watches_http;
