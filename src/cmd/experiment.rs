//! `vigie experiment`: reproducible experiments on the classifier (see
//! `vigie_analyse::experiment`).

use crate::config::Config;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// `vigie experiment ...`
#[derive(clap::Subcommand)]
pub enum ExperimentCommand {
    /// Leave-one-crisis-out on CrisisLexT6 and CrisisLexT26's training events: Vigie against
    /// the lexicon and TF-IDF baselines, per crisis and per language.
    Loco {
        /// Directories of labelled files, one per crisis (a crisis in two directories, its
        /// file names equal up to case, is held out from both at once).
        #[arg(
            long,
            value_name = "DIR",
            num_args = 1..,
            default_values = ["fixtures/crisislex", "fixtures/crisislex-t26"]
        )]
        data: Vec<PathBuf>,
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
        /// Train and read Vigie's heads on the embeddings as they are, not centred on their
        /// language's mean (as `vigie train --no-center-languages`).
        #[arg(long)]
        no_center_languages: bool,
    },
    /// Leave-one-crisis-out, the encoder's top layers fine-tuned with the `danger` head against
    /// the logistic head on frozen embeddings, on the same rotations.
    Finetune {
        /// Directories of labelled files, one per crisis.
        #[arg(
            long,
            value_name = "DIR",
            num_args = 1..,
            default_values = ["fixtures/crisislex-t26"]
        )]
        data: Vec<PathBuf>,
        /// The CrisisLex lexicon, one term a line.
        #[arg(
            long,
            value_name = "FILE",
            default_value = "fixtures/crisislex/CrisisLexRec.txt"
        )]
        lexicon: PathBuf,
        /// How many of the encoder's last layers to train.
        #[arg(long, default_value_t = 1)]
        layers: usize,
        /// Passes over the training posts.
        #[arg(long, default_value_t = 2)]
        epochs: usize,
        /// Adam's learning rate for the layers.
        #[arg(long, default_value_t = 2e-5)]
        lr: f64,
        /// Adam's learning rate for the head.
        #[arg(long, default_value_t = 1e-3)]
        head_lr: f64,
        /// Centre both methods' embeddings on their language's mean, as the shipped heads do.
        #[arg(long)]
        center_languages: bool,
        /// Print JSON instead of Markdown tables.
        #[arg(long)]
        json: bool,
    },
    /// Precision and recall of place resolution on hand-labelled samples, per language (the
    /// configured gazetteer).
    Places {
        /// Labelled JSONL files (`text`, `lang`, `places`; see fixtures/places/README.md).
        #[arg(
            long,
            value_name = "FILE",
            num_args = 1..,
            default_values = [
                "fixtures/places/crisislex-t26-places.jsonl",
                "fixtures/places/handwritten-fr-en.jsonl"
            ]
        )]
        data: Vec<PathBuf>,
        /// Also print the wrong and missed places.
        #[arg(long)]
        errors: bool,
        /// Print JSON instead of Markdown tables.
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
                no_center_languages,
            } => {
                let loco = vigie_analyse::experiment::loco::run(
                    &config.experiment_settings()?,
                    data,
                    lexicon,
                    !*no_center_languages,
                )?;
                if *json {
                    println!("{}", loco.to_json()?);
                } else {
                    print!("{}", loco.markdown());
                }
                Ok(())
            }
            ExperimentCommand::Finetune {
                data,
                lexicon,
                layers,
                epochs,
                lr,
                head_lr,
                center_languages,
                json,
            } => {
                let options = vigie_analyse::experiment::finetune::Options {
                    layers: *layers,
                    epochs: *epochs,
                    lr: *lr,
                    head_lr: *head_lr,
                    center: *center_languages,
                    ..Default::default()
                };
                let comparison = vigie_analyse::experiment::finetune::run(
                    &config.experiment_settings()?,
                    data,
                    lexicon,
                    &options,
                )?;
                if *json {
                    println!("{}", comparison.to_json()?);
                } else {
                    print!("{}", comparison.markdown());
                }
                Ok(())
            }
            ExperimentCommand::Places { data, errors, json } => {
                let resolver = super::place_resolver(config)?
                    .context("no gazetteer configured: run `make setup`, or set `gazetteer`")?;
                for file in data {
                    let ev = vigie_situation::evaluate::evaluate(&resolver, file)?;
                    if *json {
                        println!("{}", serde_json::to_string(&ev)?);
                    } else {
                        println!("{}", ev.markdown());
                        if *errors {
                            for e in &ev.errors {
                                println!("- {e}");
                            }
                            println!();
                        }
                    }
                }
                Ok(())
            }
        }
    }
}
