//! The subcommands, one file each, all of one shape: a clap `Args` (or `Subcommand`) type that
//! implements [`Cmd`].
//!
//! What several commands share is here: the scorer of the configuration ([`scorer`],
//! [`analyser`]), the API server's state (its access log, users and reviews: [`app_state`]) and
//! serving it ([`serve_index`]), the demo user of `vigie run` ([`demo_access`]), and the
//! progress bar (`vigie_analyse::experiment::progress_bar`).

// The pipeline.
pub mod analyse;
pub mod index;
pub mod run;
pub mod serve;
pub mod stats;
// Ingest: capture and replay of streams, and the sources' coverage.
pub mod capture;
pub mod replay;
pub mod sources;
// Accountable access.
pub mod audit;
pub mod keys;
pub mod reidentify;
pub mod retention;
pub mod users;
// Situations.
pub mod watch;
// The classifier and measurements.
pub mod bench;
pub mod embed;
pub mod eval;
pub mod experiment;
pub mod train;
// The configuration.
pub mod show_config;

use crate::config::{Config, Overrides};
use anyhow::{Context, Result};
use std::sync::Arc;
use vigie_analyse::{Analyser, Classifier, NoopScorer, PrototypeScorer, Scorer, Taxonomy};
use vigie_api::reviews::REVIEWS_FILE;
use vigie_api::users::{Role, USERS_FILE};
use vigie_api::{AppState, ReviewStore, UserStore};
use vigie_index::PostIndex;
use vigie_logs::access_log::{self, AccessLog, LogKind, LogOptions};
use vigie_situation::{Gazetteer, PlaceResolver};

/// One subcommand: the settings its flags override, and what it does.
pub trait Cmd {
    /// Writes the settings this command's flags override (none by default).
    fn overrides(&self, _overrides: &mut Overrides) {}
    /// Runs the command with the configuration in effect.
    fn run(&self, config: &Config) -> Result<()>;
}

/// Which scorer a stage runs (`--scorer`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ScorerChoice {
    /// The configured classifier (the encoder of `model_dir` and the heads of `heads`).
    #[default]
    Model,
    /// `danger` 0 for every post, without a model: for delivery tests and benchmarks.
    Noop,
}

/// The trained classifier of `config.heads`, or the prototype scorer when none is there.
pub fn scorer(config: &Config) -> Result<Box<dyn Scorer>> {
    let encoder = config.encoder_settings()?.load()?;
    if config.heads.join("heads.json").is_file() {
        let classifier = Classifier::load(encoder, &config.heads)
            .with_context(|| format!("loading the heads in {}", config.heads.display()))?;
        return Ok(Box::new(classifier));
    }
    tracing::warn!(
        "no trained heads in {}: scoring with the untrained prototype scorer",
        config.heads.display()
    );
    let taxonomy = Taxonomy::load(&config.taxonomy)?;
    Ok(Box::new(PrototypeScorer::new(encoder, &taxonomy)?))
}

/// The analyser of `config` around the scorer `choice`.
pub fn analyser(config: &Config, choice: ScorerChoice) -> Result<Analyser<Box<dyn Scorer>>> {
    let scorer: Box<dyn Scorer> = match choice {
        ScorerChoice::Model => scorer(config)?,
        ScorerChoice::Noop => Box::new(NoopScorer),
    };
    let analyser = Analyser::new(scorer, config.analyser_config());
    Ok(match place_resolver(config)? {
        Some(resolver) => analyser.with_places(resolver),
        None => analyser,
    })
}

/// The place resolver over the configured gazetteer; `None` (with a warning) when none is
/// configured, an error when the configured one cannot be read.
pub fn place_resolver(config: &Config) -> Result<Option<PlaceResolver>> {
    let Some(path) = &config.gazetteer else {
        tracing::warn!("no gazetteer configured (run `make setup`): places are not resolved");
        return Ok(None);
    };
    let mut gazetteer = Gazetteer::open(path).context("loading the gazetteer")?;
    tracing::info!(places = gazetteer.len(), path = %path.display(), "gazetteer loaded");
    match &config.communes {
        Some(file) => {
            let communes = vigie_situation::gazetteer::communes(file)
                .context("loading the French communes")?;
            let (with, added) = gazetteer.with_communes(communes);
            gazetteer = with;
            tracing::info!(added, path = %file.display(), "French communes added");
        }
        None => tracing::warn!(
            "no `communes` configured (run `make setup`): French communes under 1,000 \
             inhabitants are not resolved"
        ),
    }
    Ok(Some(PlaceResolver::new(
        Arc::new(gazetteer),
        Default::default(),
    )))
}

/// Serves `index` on `config.listen` until Ctrl-C or SIGTERM; with `retention`, also enforces
/// `retention_days` every hour (`vigie serve`; not `vigie run`, whose replayed demo posts may
/// be older than the period).
pub fn serve_index(config: &Config, index: PostIndex, retention: bool) -> Result<()> {
    let state = app_state(config, index, None)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = listen(config).await?;
        start_alerts(config, &state)?;
        tracing::info!(
            docs = state.index.num_docs(),
            "serving the API on http://{}",
            listener.local_addr()?
        );
        console_banner(config, listener.local_addr()?);
        if retention {
            tokio::spawn(retention::schedule(config.clone(), state.index.clone()));
        }
        vigie_api::serve(listener, state, crate::shutdown::signal())
            .await
            .context("API server")
    })
}

/// Prints where the console is (and, for the demo, where its token is) on stdout, after the
/// `listening on` line.
fn console_banner(config: &Config, addr: std::net::SocketAddr) {
    let token = config.data_dir.join(DEMO_TOKEN_FILE);
    println!("console: http://{addr}/console/");
    if let Ok(t) = std::fs::read_to_string(&token) {
        println!(
            "  sign in as `demo` with the token in {}: {}",
            token.display(),
            t.trim()
        );
    }
}

/// Starts the alert dispatcher of `state` (see `vigie_alerts::dispatch`): it scans the index's
/// changed incidents every `alerts_poll_ms` until the server starts to stop.
pub fn start_alerts(config: &Config, state: &AppState) -> Result<()> {
    let users = state.users.clone();
    let owners: vigie_alerts::Owners = std::sync::Arc::new(move |name: &str| {
        users
            .by_name(name)
            .filter(|c| c.role.allows(vigie_api::users::Permission::Watches))
            .map(|c| c.role.to_string())
    });
    let hub = state.alerts.hub.clone();
    let dispatcher = vigie_alerts::Dispatcher::new(
        hub.clone(),
        state.index.clone(),
        state.log.clone(),
        owners,
        &config.data_dir,
        vigie_alerts::DispatchConfig {
            poll: std::time::Duration::from_millis(config.alerts_poll_ms.max(10)),
            ..Default::default()
        },
    )?;
    tokio::spawn(dispatcher.run(hub.closed()));
    Ok(())
}

/// Listens on `config.listen` and prints `listening on http://ADDR` on stdout, for scripts and
/// tests that wait for the server.
pub async fn listen(config: &Config) -> Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    println!("listening on http://{}", listener.local_addr()?);
    Ok(listener)
}

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
        alerts: vigie_api::watches::Alerts::new(
            vigie_alerts::AlertHub::open(&config.data_dir)?,
            config.webhook_allow.clone(),
        ),
        console: vigie_api::console::Console {
            sessions: Default::default(),
            secure_cookie: config.console_secure_cookie,
            map_tiles: config.map_tiles()?,
        },
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
