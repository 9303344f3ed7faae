//! The command line: global flags, and one subcommand per file of [`crate::cmd`].

use crate::cmd::{self, Cmd};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Vigie: an OSINT stream analyser that helps analysts notice public posts reporting danger.
///
/// It suggests; people decide. Nothing in Vigie acts on a score by itself.
#[derive(Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    /// Configuration file (TOML); default: ./vigie.toml if present.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: indexes, users, keys, cursors, access log (default ./data).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Replay a stream through analyse and index in-process (no Kafka), then serve the API; with
    /// --brokers, run every stage in this process over Kafka.
    Run(cmd::run::Args),
    /// Score raw posts from Kafka into the scored topic, as one worker of a consumer group.
    Analyse(cmd::analyse::Args),
    /// Index scored posts from Kafka; the offsets read are kept in each index commit.
    Index(cmd::index::Args),
    /// Documents, offsets and last commit of an index.
    Stats(cmd::stats::Args),
    /// Serve the analyst API over an existing index.
    Serve(cmd::serve::Args),
    /// Print sentence embeddings of texts as JSON (to check the model).
    Embed(cmd::embed::Args),
    /// Show the configuration in effect (secrets hidden).
    Config(cmd::show_config::Args),
    /// Manage the users of the API and their roles.
    #[command(subcommand)]
    Users(cmd::users::UsersCommand),
    /// Watch zones: incidents starting or growing there are alerted to their analyst.
    #[command(subcommand)]
    Watch(cmd::watch::WatchCommand),
    /// Manage the access log's signing key.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Check the access log or an export of it, offline.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Admin: the handle behind a pseudonym, from the identity file; logged with its purpose
    /// (in <data-dir>/reidentify-log/) before anything is shown.
    Reidentify(cmd::reidentify::ReidentifyArgs),
    /// Retention: delete the posts older than `retention_days`, each batch logged first.
    #[command(subcommand)]
    Retention(cmd::retention::RetentionCommand),
    /// Capture what a configured source yields into a JSONL file (zstd when FILE ends in .zst).
    Capture(cmd::capture::CaptureArgs),
    /// Replay a capture, a CrisisLex CSV or a labelled JSONL file into the embedded pipeline.
    Replay(cmd::replay::ReplayArgs),
    /// The public sources: their cursors, counters and coverage gaps.
    #[command(subcommand)]
    Sources(cmd::sources::SourcesCommand),
    /// Train the classifier: one calibrated head per label of the taxonomy.
    Train(cmd::train::Args),
    /// Measure the classifier on a labelled JSONL file.
    Eval(cmd::eval::Args),
    /// Measure speed.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
    /// Reproducible experiments on the classifier.
    #[command(subcommand)]
    Experiment(cmd::experiment::ExperimentCommand),
}

impl Command {
    /// The command to run.
    pub fn into_cmd(self) -> Box<dyn Cmd> {
        match self {
            Command::Run(c) => Box::new(c),
            Command::Analyse(c) => Box::new(c),
            Command::Index(c) => Box::new(c),
            Command::Stats(c) => Box::new(c),
            Command::Serve(c) => Box::new(c),
            Command::Embed(c) => Box::new(c),
            Command::Config(c) => Box::new(c),
            Command::Users(c) => Box::new(c),
            Command::Watch(c) => Box::new(c),
            Command::Keys(c) => Box::new(c),
            Command::Audit(c) => Box::new(c),
            Command::Reidentify(c) => Box::new(c),
            Command::Retention(c) => Box::new(c),
            Command::Capture(c) => Box::new(c),
            Command::Replay(c) => Box::new(c),
            Command::Sources(c) => Box::new(c),
            Command::Train(c) => Box::new(c),
            Command::Eval(c) => Box::new(c),
            Command::Bench(c) => Box::new(c),
            Command::Experiment(c) => Box::new(c),
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap's own checks of the whole command line (unique names, valid defaults, groups).
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
