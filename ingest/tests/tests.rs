//! The sources against local servers that speak their real APIs (Mastodon, Reddit, RSS/Atom,
//! Bluesky Jetstream), the HTTP client's politeness, and the CrisisLex reader. (`mastodon_stream`
//! is a binary of its own: one of its tests sets an environment variable.)
// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod common;

mod crisislex;
mod http_client;
mod jetstream;
mod mastodon;
mod reddit;
mod rss;
