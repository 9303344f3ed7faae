//! The experimenters' commands: `vigie train`, `vigie eval`, `vigie bench classify` and
//! `vigie experiment loco`. The work is [`vigie_analyse::experiment`]'s; here the
//! configuration becomes its [`Settings`] and the results are printed.

use crate::config::Config;
use anyhow::Result;
use std::path::{Path, PathBuf};
use vigie_analyse::experiment::{self, EncoderSettings, Settings};
use vigie_analyse::Encoder;

/// The encoder settings of `config`.
fn encoder_settings(config: &Config) -> Result<EncoderSettings> {
    Ok(EncoderSettings {
        model_dir: config.model_dir()?.to_path_buf(),
        batch_size: config.batch_size,
        threads: config.threads,
    })
}

/// The experiments' settings of `config`: embeddings cached in `<data_dir>/cache`, progress
/// bars on.
fn settings(config: &Config) -> Result<Settings> {
    Ok(Settings {
        encoder: encoder_settings(config)?,
        heads_dir: config.heads.clone(),
        cache_dir: Some(config.data_dir.join("cache")),
        alert_threshold: config.alert_threshold,
        progress: true,
    })
}

/// Loads the encoder with the configured batch size and threads.
pub fn encoder(config: &Config) -> Result<Encoder> {
    Ok(encoder_settings(config)?.load()?)
}

/// `vigie train`: fits and calibrates one head per label, writes `heads.json` and
/// `model-card.json` into `out`.
pub fn train(config: &Config, data: &[PathBuf], taxonomy_path: &Path, out: &Path) -> Result<()> {
    let trained = experiment::train::run(&settings(config)?, data, taxonomy_path, out)?;
    print!("{}", trained.summary());
    Ok(())
}

/// `vigie eval`: metrics per label of the configured classifier on a labelled file.
pub fn eval(
    config: &Config,
    data: &Path,
    label: Option<&str>,
    json: bool,
    report: Option<&Path>,
) -> Result<()> {
    let ev = experiment::eval::run(&settings(config)?, data, label)?;
    if json {
        println!("{}", ev.to_json()?);
    } else {
        print!("{}", ev.text());
    }
    if let Some(dir) = report {
        let index = ev.write_report(dir)?;
        if !json {
            println!("report: {}", index.display());
        }
    }
    Ok(())
}

/// `vigie bench classify`: posts/s of the encoder and heads on real tweets, with batches
/// formed by length (Vigie's way) and in arrival order, for comparison; with `python`, also
/// the Python sentence-transformers encoder, alternating with Vigie's for `rounds` rounds.
pub fn bench_classify(
    config: &Config,
    n: usize,
    data_dir: &Path,
    python: Option<&Path>,
    rounds: usize,
) -> Result<()> {
    let bench = experiment::bench::classify(&settings(config)?, n, data_dir, python, rounds)?;
    print!("{}", bench.text());
    Ok(())
}

/// `vigie experiment loco`: train on five crises, evaluate `danger` on the sixth, for each
/// crisis; Vigie's heads against the CrisisLex lexicon and TF-IDF + logistic regression.
pub fn loco(config: &Config, dir: &Path, lexicon: &Path, json: bool) -> Result<()> {
    let loco = experiment::loco::run(&settings(config)?, dir, lexicon)?;
    if json {
        println!("{}", loco.to_json()?);
    } else {
        print!("{}", loco.markdown());
    }
    Ok(())
}
