//! `vigie`: the command line that wires Vigie's crates together.
//!
//! Arguments and wiring only: each subcommand is one file of [`cmd`] that maps its flags and the
//! [`config`] onto the crates — `vigie-ingest` reads posts, `vigie-analyse` scores them,
//! `vigie-pipeline` moves them through Kafka or in-process, `vigie-index` stores them,
//! `vigie-logs` keeps the signed logs, `vigie-api` serves them.

mod cli;
mod cmd;
mod config;
mod shutdown;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = cli::Cli::parse();
    let command = cli.command.into_cmd();
    let mut overrides = config::Overrides {
        data_dir: cli.data_dir,
        ..Default::default()
    };
    command.overrides(&mut overrides);
    let config = config::Config::load(cli.config.as_deref(), &overrides)?;
    command.run(&config)
}
