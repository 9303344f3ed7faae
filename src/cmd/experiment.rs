//! `vigie experiment`: reproducible experiments on the classifier (see
//! `vigie_analyse::experiment`).

use crate::config::Config;
use anyhow::Result;
use std::path::PathBuf;

/// `vigie experiment ...`
#[derive(clap::Subcommand)]
pub enum ExperimentCommand {
    /// Leave-one-crisis-out on CrisisLexT6: Vigie against the lexicon and TF-IDF baselines.
    Loco {
        /// Directory of labelled CrisisLex files, one per crisis.
        #[arg(long, value_name = "DIR", default_value = "fixtures/crisislex")]
        data: PathBuf,
        /// The CrisisLex lexicon, one term a line.
        #[arg(
            long,
            value_name = "FILE",
            default_value = "fixtures/crisislex/CrisisLexRec.txt"
        )]
        lexicon: PathBuf,
        /// Print JSON instead of a Markdown table.
        #[arg(long)]
        json: bool,
    },
}

impl super::Cmd for ExperimentCommand {
    fn run(&self, config: &Config) -> Result<()> {
        match self {
            ExperimentCommand::Loco {
                data,
                lexicon,
                json,
            } => {
                let loco = vigie_analyse::experiment::loco::run(
                    &config.experiment_settings()?,
                    data,
                    lexicon,
                )?;
                if *json {
                    println!("{}", loco.to_json()?);
                } else {
                    print!("{}", loco.markdown());
                }
                Ok(())
            }
        }
    }
}
