//! `vigie users add|remove|list`: who may call the API, with which role.

use crate::config::Config;
use anyhow::Result;
use clap::Subcommand;
use vigie_api::users::{self, Role, USERS_FILE};

/// `vigie users ...`
#[derive(Subcommand)]
pub enum UsersCommand {
    /// Add a user; prints its bearer token once (only its SHA-256 is kept).
    Add {
        /// User name (letters, digits, `.`, `_`, `-`).
        name: String,
        /// What the user may do.
        #[arg(long, value_parser = ["analyst", "experimenter", "auditor", "admin"])]
        role: String,
    },
    /// Remove a user: its token stops working at once, even on a running server.
    Remove {
        /// User name.
        name: String,
    },
    /// List users and roles (never tokens).
    List,
}

impl super::Cmd for UsersCommand {
    fn run(&self, config: &Config) -> Result<()> {
        let command = self;
        let file = config.data_dir.join(USERS_FILE);
        match command {
            UsersCommand::Add { name, role } => {
                let role: Role = role.parse()?;
                let token = users::add_user(&file, name, role)?;
                eprintln!(
                    "added `{name}` ({role}) to {}; its token follows, shown this once:",
                    file.display()
                );
                println!("{token}");
            }
            UsersCommand::Remove { name } => {
                let user = users::remove_user(&file, name)?;
                println!("removed `{}` ({})", user.name, user.role);
            }
            UsersCommand::List => {
                let all = users::list_users(&file)?;
                if all.is_empty() {
                    eprintln!("no users in {}", file.display());
                }
                for u in all {
                    println!(
                        "{:<24} {:<13} added {}",
                        u.name,
                        u.role.as_str(),
                        u.created.format("%Y-%m-%d %H:%M UTC")
                    );
                }
            }
        }
        Ok(())
    }
}
