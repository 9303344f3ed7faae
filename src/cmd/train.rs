//! `vigie train`: fits and calibrates one head per label of the taxonomy, and writes the model
//! card that says on what (see `vigie_analyse`).

use crate::config::Config;
use anyhow::Result;
use std::path::PathBuf;

/// `vigie train` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Labelled JSONL files (repeat the flag for several).
    #[arg(long = "data", value_name = "FILE", required = true)]
    data: Vec<PathBuf>,
    /// Labelled files that train the categories only: their `danger` is a weaker notion than
    /// Vigie's (CrisisLexT6's on-topic) and is ignored (repeat the flag for several).
    #[arg(long = "weak", value_name = "FILE")]
    weak: Vec<PathBuf>,
    /// The taxonomy (labels and example posts).
    #[arg(long, value_name = "FILE", default_value = "config/taxonomy.toml")]
    taxonomy: PathBuf,
    /// Train on the embeddings as they are, not centred on their language's mean.
    #[arg(long)]
    no_center_languages: bool,
    /// Where to write heads.json and model-card.json.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

impl super::Cmd for Args {
    fn run(&self, config: &Config) -> Result<()> {
        let trained = vigie_analyse::experiment::train::run(
            &config.experiment_settings()?,
            &self.data,
            &self.weak,
            &self.taxonomy,
            &self.out,
            !self.no_center_languages,
        )?;
        print!("{}", trained.summary());
        Ok(())
    }
}
