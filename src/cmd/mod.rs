//! Subcommands that live in their own files.
//!
//! Accountable access: `vigie users`, `vigie keys`, `vigie audit`, and the set-up the API server
//! needs (its access log, users and reviews: [`app_state`]; the demo user of `vigie run`:
//! [`demo_access`]).

pub mod audit;
pub mod bench_pipeline;
pub mod bench_search;
pub mod keys;
pub mod reidentify;
pub mod retention;
pub mod run_kafka;
pub mod users;
// Ingest: capture and replay of streams, and the sources' coverage (issue 5).
pub mod capture;
pub mod replay;
pub mod sources;

use crate::config::Config;
use anyhow::Result;
use vigie_api::access_log::{self, AccessLog, LogKind, LogOptions};
use vigie_api::reviews::REVIEWS_FILE;
use vigie_api::users::{Role, USERS_FILE};
use vigie_api::{AppState, ReviewStore, UserStore};
use vigie_index::PostIndex;

/// The access-log directory of the data dir.
pub const ACCESS_LOG_DIR: &str = "access-log";

/// The token file of the demo user that `vigie run` makes.
pub const DEMO_TOKEN_FILE: &str = "demo.token";

/// The API state over `index`: the access log of the data dir (checked whole before anything is
/// added to it) and its users file.
/// With `heads`, every signed head of the access log is also handed to it (`vigie run --brokers`:
/// the topic `vigie.audit.heads`).
pub fn app_state(
    config: &Config,
    index: PostIndex,
    heads: Option<access_log::HeadSink>,
) -> Result<AppState> {
    let key = access_log::load_signing_key(&config.data_dir)?;
    let log = AccessLog::builder(LogKind::Access, &config.data_dir.join(ACCESS_LOG_DIR), key)
        .options(LogOptions {
            checkpoint_every: config.access_log_checkpoint_every,
        })
        .heads_file(config.access_log_heads_file.clone())
        .head_sink(heads)
        .open()?;
    let users_file = config.data_dir.join(USERS_FILE);
    let users = UserStore::open(&users_file)?;
    if vigie_api::users::list_users(&users_file)?.is_empty() {
        tracing::warn!(
            "no users in {}: every request will be refused (add one with `vigie users add NAME \
             --role analyst`)",
            users_file.display()
        );
    }
    let reviews = ReviewStore::open(&config.data_dir.join(REVIEWS_FILE))?;
    Ok(AppState {
        index,
        log,
        users,
        reviews,
        alert_threshold: config.alert_threshold,
        work: vigie_api::IndexWork::default(),
    })
}

/// For the embedded demo (`vigie run`): makes the access-log signing key if there is none, and,
/// when no user exists yet, an analyst `demo` whose token goes to `<data_dir>/demo.token` (0600).
pub fn demo_access(config: &Config) -> Result<()> {
    let (secret, _) = access_log::key_paths(&config.data_dir);
    if !secret.exists() {
        access_log::init_keys(&config.data_dir)?;
        tracing::info!("made the access-log signing key {}", secret.display());
    }
    let users_file = config.data_dir.join(USERS_FILE);
    if vigie_api::users::list_users(&users_file)?.is_empty() {
        let token = vigie_api::users::add_user(&users_file, "demo", Role::Analyst)?;
        let path = config.data_dir.join(DEMO_TOKEN_FILE);
        write_private(&path, format!("{token}\n").as_bytes())?;
        tracing::info!(
            "made the analyst `demo`; its token is in {} (send it as `Authorization: Bearer ...`)",
            path.display()
        );
    }
    Ok(())
}

/// Writes `bytes` to `path` (replacing it), readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let _ = std::fs::remove_file(path);
    crate::config::write_private(path, bytes)
}
