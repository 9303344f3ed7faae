//! `vigie embed`: the sentence embeddings of texts, as JSON (to check the model).

use crate::config::{Config, Overrides};
use anyhow::Result;
use std::path::PathBuf;
use vigie_analyse::{Encoder, ModelFiles};

/// `vigie embed` arguments.
#[derive(clap::Args)]
pub struct Args {
    /// Texts to embed.
    #[arg(required = true)]
    texts: Vec<String>,
    /// Model directory (overrides the config).
    #[arg(long, value_name = "DIR")]
    model_dir: Option<PathBuf>,
}

impl super::Cmd for Args {
    fn overrides(&self, o: &mut Overrides) {
        o.model_dir = self.model_dir.clone();
    }

    fn run(&self, config: &Config) -> Result<()> {
        let encoder = Encoder::load_with(
            &ModelFiles::in_dir(config.model_dir()?)?,
            config.encoder_runtime,
        )?;
        println!("{}", serde_json::to_string(&encoder.encode(&self.texts)?)?);
        Ok(())
    }
}
