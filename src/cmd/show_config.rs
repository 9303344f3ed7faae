//! `vigie config`: the configuration in effect, secrets hidden.

use crate::config::Config;
use anyhow::Result;

/// `vigie config` arguments (none).
#[derive(clap::Args)]
pub struct Args {}

impl super::Cmd for Args {
    fn run(&self, config: &Config) -> Result<()> {
        print!("{}", config.to_toml_redacted()?);
        Ok(())
    }
}
