//! `vigie keys init`: the access log's signing key.

use crate::config::Config;
use anyhow::Result;
use clap::Subcommand;
use vigie_logs::access_log;

/// `vigie keys ...`
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Make the access log's ed25519 signing key (<data-dir>/keys/access-log.key, 0600) and its
    /// public half (<data-dir>/access-log.pub). Refuses to replace an existing key.
    Init,
}

impl super::Cmd for KeysCommand {
    fn run(&self, config: &Config) -> Result<()> {
        let command = self;
        match command {
            KeysCommand::Init => {
                let public = access_log::init_keys(&config.data_dir)?;
                let (secret, public_path) = access_log::key_paths(&config.data_dir);
                println!("signing key: {}", secret.display());
                println!(
                    "public key:  {} ({})",
                    public_path.display(),
                    hex::encode(public.as_bytes())
                );
                Ok(())
            }
        }
    }
}
