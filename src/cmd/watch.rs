//! `vigie watch add|list|remove`: watch zones, kept in `<data_dir>/watches.jsonl` (see
//! `vigie_alerts::watch`). A running server sees a change at its next scan.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use vigie_alerts::{WatchSpec, WatchStore, WATCHES_FILE};
use vigie_api::users::{self, Permission, USERS_FILE};
use vigie_record::Near;

/// `vigie watch ...`
#[derive(Subcommand)]
pub enum WatchCommand {
    /// Watch a zone for an analyst: each incident that starts or grows in it is one alert, to the
    /// webhook (signed; its secret is printed once) and on the analyst's `/v1/alerts/stream`.
    Add {
        /// A name, unique among the analyst's watches (`Gare de Lyon`).
        name: String,
        /// The zone: `LAT,LON,RADIUS_KM`.
        #[arg(long, value_name = "LAT,LON,KM", allow_hyphen_values = true)]
        near: Near,
        /// The analyst who owns it (an analyst of the users file).
        #[arg(long, value_name = "USER")]
        user: String,
        /// Why the place is watched (in the access-log entry of every alert).
        #[arg(long)]
        purpose: String,
        /// Only incidents of this category or family.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(vigie_alerts::watch::categories()))]
        category: Option<String>,
        /// Only incidents one of whose posts in the zone these words match (search syntax).
        #[arg(long)]
        q: Option<String>,
        /// Only posts whose `danger` is at least this (0 to 1).
        #[arg(long)]
        min_score: Option<f32>,
        /// Where to POST each alert (JSON, `Vigie-Signature` HMAC-SHA256).
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
    },
    /// List the watches (never their secrets).
    List {
        /// Only this analyst's.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
    },
    /// Remove a watch: it alerts no more.
    Remove {
        /// Its id (`w-...`).
        id: String,
    },
}

fn who() -> String {
    format!(
        "command line ({})",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

impl super::Cmd for WatchCommand {
    fn run(&self, config: &Config) -> Result<()> {
        let file = config.data_dir.join(WATCHES_FILE);
        let store = WatchStore::open(&file)?;
        match self {
            WatchCommand::Add {
                name,
                near,
                user,
                purpose,
                category,
                q,
                min_score,
                webhook,
            } => {
                let users_file = config.data_dir.join(USERS_FILE);
                let Some(owner) = users::list_users(&users_file)?
                    .into_iter()
                    .find(|u| &u.name == user)
                else {
                    bail!(
                        "no user `{user}` in {} (add one with `vigie users add {user} --role \
                         analyst`)",
                        users_file.display()
                    );
                };
                if !owner.role.allows(Permission::Watches) {
                    bail!(
                        "`{user}` has role `{}`; only analysts keep watches",
                        owner.role
                    );
                }
                if let Some(q) = q {
                    // The words are checked against the index's query syntax when there is one.
                    let dir = config.index_dir();
                    if dir.join("meta.json").is_file() {
                        vigie_index::PostIndex::open(&dir)?
                            .posts_matching(&[], q)
                            .with_context(|| format!("--q {q:?}"))?;
                    }
                }
                let watch = store.add(
                    user,
                    WatchSpec {
                        name: name.clone(),
                        purpose: purpose.clone(),
                        near: *near,
                        category: category.clone(),
                        q: q.clone(),
                        min_score: *min_score,
                        webhook: webhook.clone(),
                    },
                )?;
                eprintln!(
                    "watch `{}` of {user} added to {}",
                    watch.spec.name,
                    file.display()
                );
                println!("{}", watch.id);
                if let Some(secret) = &watch.secret {
                    eprintln!("the webhook's signing secret follows, shown this once:");
                    println!("{secret}");
                }
            }
            WatchCommand::List { user } => {
                let all = store.list()?;
                let shown: Vec<_> = all
                    .iter()
                    .filter(|w| user.as_ref().is_none_or(|u| *u == w.owner))
                    .collect();
                if shown.is_empty() {
                    eprintln!("no watches in {}", file.display());
                }
                for w in shown {
                    println!(
                        "{}  {:<12} {:<24} near {}{}{}{}{}",
                        w.id,
                        w.owner,
                        w.spec.name,
                        w.spec.near,
                        w.spec
                            .category
                            .as_ref()
                            .map(|c| format!("  category {c}"))
                            .unwrap_or_default(),
                        w.spec
                            .q
                            .as_ref()
                            .map(|q| format!("  q {q:?}"))
                            .unwrap_or_default(),
                        w.spec
                            .min_score
                            .map(|s| format!("  min-score {s}"))
                            .unwrap_or_default(),
                        w.spec
                            .webhook
                            .as_ref()
                            .map(|u| format!("  webhook {u}"))
                            .unwrap_or_default(),
                    );
                }
            }
            WatchCommand::Remove { id } => {
                if !store.remove(id, None, &who())? {
                    bail!("no watch `{id}` in {}", file.display());
                }
                println!("removed {id}");
            }
        }
        Ok(())
    }
}
