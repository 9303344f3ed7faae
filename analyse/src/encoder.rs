//! The sentence encoder: a sentence-transformers BERT model through rust-bert, from local files.
//!
//! Two models are known to work, and any sentence-transformers directory of a BERT model with
//! mean pooling does too:
//! - **multilingual-e5-small** (the default): about 100 languages, XLM-R SentencePiece pieces
//!   read from the Hugging Face `tokenizer.json`, 512 pieces, and the prompt `query: ` before
//!   every text, as the model was trained. `scripts/convert_e5.py` writes its directory.
//! - **all-MiniLM-L6-v2**: English, WordPiece (`vocab.txt`), 256 pieces, no prompt.
//!
//! What the directory says is what Vigie does, as Python sentence-transformers reads the same
//! files: the tokenizer (`tokenizer.json` when there is one, else `vocab.txt`), the truncation
//! length (`sentence_bert_config.json`), the default prompt
//! (`config_sentence_transformers.json`), pooling and normalisation (`modules.json`).
//!
//! Guarantee: a text longer than the model's window is cut at `max_seq_length` pieces, never
//! passed whole (a BERT model has no positions beyond its window). rust-bert cuts WordPiece
//! input itself but hands a Hugging Face tokenizer's output through as the tokenizer file
//! configures it, so [`ModelFiles::in_dir`] refuses a `tokenizer.json` that does not truncate at
//! that length.

use crate::bert::{Bert, Runtime};
use crate::classifier::read_json;
use crate::AnalyseError;
use rust_bert::pipelines::common::{ModelType, TokenizerOption};
use rust_bert::pipelines::sentence_embeddings::{
    SentenceEmbeddingsConfig, SentenceEmbeddingsModel, SentenceEmbeddingsSentenceBertConfig,
    SentenceEmbeddingsTokenizerConfig,
};
use rust_bert::resources::LocalResource;
use rust_bert::Config as _;
use rust_tokenizers::tokenizer::TruncationStrategy;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// The tokenizer files of a model directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerFiles {
    /// BERT WordPiece: `vocab.txt` and `tokenizer_config.json` (all-MiniLM-L6-v2).
    WordPiece,
    /// A Hugging Face `tokenizer.json` and its `special_tokens_map.json` (multilingual-e5-small's
    /// XLM-R SentencePiece).
    HuggingFace,
}

/// A sentence-transformers model directory, read and checked: its files and what they say.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The model directory.
    pub dir: PathBuf,
    /// The model's name, as model cards record it: `_name_or_path` of `config.json`, else the
    /// directory's name.
    pub name: String,
    /// Which tokenizer the directory ships.
    pub tokenizer: TokenizerFiles,
    /// The text put before every input (`query: ` for e5; empty for MiniLM).
    pub prompt: String,
    /// Pieces read from a text; the rest is cut off.
    pub max_seq_length: usize,
    /// Whether `modules.json` ends the pipeline with a `Normalize` module (unit vectors).
    pub normalize: bool,
}

impl ModelFiles {
    /// Reads the directory `dir` and checks that it holds a model Vigie can load.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Result<Self, AnalyseError> {
        let dir = dir.into();
        let require = |name: &str| {
            let path = dir.join(name);
            std::fs::metadata(&path)
                .map(drop)
                .map_err(|source| AnalyseError::ModelFile { path, source })
        };
        for name in Self::REQUIRED {
            require(name)?;
        }
        let config: TransformerConfig = read_json(&dir.join("config.json"))?;
        let sbert: SentenceBertConfig = read_json(&dir.join("sentence_bert_config.json"))?;
        let max_seq_length = sbert.max_seq_length.min(config.max_position_embeddings);
        let tokenizer = if dir.join("tokenizer.json").exists() {
            require("special_tokens_map.json")?;
            let file: HfTokenizerFile = read_json(&dir.join("tokenizer.json"))?;
            match file.truncation {
                Some(t) if t.max_length <= max_seq_length => {}
                found => {
                    return Err(AnalyseError::Model {
                        dir,
                        message: format!(
                            "tokenizer.json truncates at {}, not at the model's {max_seq_length} \
                             pieces: rust-bert would pass longer texts whole (set its \
                             \"truncation\" to {{\"max_length\": {max_seq_length}, ...}}, as \
                             scripts/convert_e5.py does)",
                            found.map_or("no length".to_string(), |t| t.max_length.to_string())
                        ),
                    })
                }
            }
            TokenizerFiles::HuggingFace
        } else {
            for name in ["vocab.txt", "tokenizer_config.json"] {
                require(name)?;
            }
            TokenizerFiles::WordPiece
        };
        let prompt = match dir.join("config_sentence_transformers.json") {
            p if p.exists() => {
                let st: SentenceTransformersConfig = read_json(&p)?;
                st.default_prompt_name
                    .and_then(|name| st.prompts.get(&name).cloned())
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        let name = config
            .name_or_path
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| {
                dir.file_name().map_or_else(
                    || dir.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            });
        let pooling: PoolingConfig = read_json(&dir.join("1_Pooling/config.json"))?;
        if !pooling.pooling_mode_mean_tokens {
            return Err(AnalyseError::Model {
                dir,
                message: "1_Pooling/config.json: Vigie pools by the mean of the pieces \
                          (pooling_mode_mean_tokens)"
                    .into(),
            });
        }
        let modules: Vec<ModuleEntry> = read_json(&dir.join("modules.json"))?;
        let normalize = modules.iter().any(|m| m.kind.ends_with(".Normalize"));
        Ok(ModelFiles {
            dir,
            name,
            tokenizer,
            prompt,
            max_seq_length,
            normalize,
        })
    }

    const REQUIRED: [&'static str; 5] = [
        "modules.json",
        "config.json",
        "model.safetensors",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
    ];

    fn resource(&self, name: &str) -> Box<LocalResource> {
        Box::new(LocalResource::from(self.dir.join(name)))
    }

    /// The weights file; its path ends in `.safetensors`, so rust-bert reads it as safetensors.
    pub fn weights(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// rust-bert's configuration of the pipeline over these files.
    fn config(&self) -> SentenceEmbeddingsConfig {
        let wordpiece = self.tokenizer == TokenizerFiles::WordPiece;
        SentenceEmbeddingsConfig {
            modules_config_resource: self.resource("modules.json"),
            transformer_type: ModelType::Bert,
            transformer_config_resource: self.resource("config.json"),
            transformer_weights_resource: self.resource("model.safetensors"),
            pooling_config_resource: self.resource("1_Pooling/config.json"),
            dense_config_resource: None,
            dense_weights_resource: None,
            sentence_bert_config_resource: self.resource("sentence_bert_config.json"),
            tokenizer_config_resource: self.resource(if wordpiece {
                "tokenizer_config.json"
            } else {
                "special_tokens_map.json"
            }),
            tokenizer_vocab_resource: self.resource(if wordpiece {
                "vocab.txt"
            } else {
                "tokenizer.json"
            }),
            tokenizer_merges_resource: None,
            device: Device::Cpu,
            kind: None,
        }
    }
}

/// The models Vigie's set-up installs, by the SHA-256 of their `model.safetensors`, and the
/// names model cards give them (`config.json` names MiniLM's base model, not the
/// sentence-transformers model; the converted e5 has no name of its own).
pub const KNOWN_WEIGHTS: [(&str, &str); 2] = [
    (
        "5912fd9f0f1c5251d5c905e19967cccfb19c0136c3797cd73a853d11f3ac8d51",
        "intfloat/multilingual-e5-small",
    ),
    (
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "sentence-transformers/all-MiniLM-L6-v2",
    ),
];

/// The fields of `config.json` that Vigie reads.
#[derive(Deserialize)]
struct TransformerConfig {
    #[serde(rename = "_name_or_path")]
    name_or_path: Option<String>,
    max_position_embeddings: usize,
}

/// The field of `1_Pooling/config.json` that Vigie reads.
#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

/// An entry of `modules.json`: its sentence-transformers class.
#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(rename = "type")]
    kind: String,
}

/// The fields of `sentence_bert_config.json` that Vigie reads.
#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

/// The fields of `config_sentence_transformers.json` that Vigie reads.
#[derive(Deserialize)]
struct SentenceTransformersConfig {
    #[serde(default)]
    prompts: std::collections::BTreeMap<String, String>,
    default_prompt_name: Option<String>,
}

/// The truncation of a Hugging Face `tokenizer.json` (the rest of the file is skipped).
#[derive(Deserialize)]
struct HfTokenizerFile {
    truncation: Option<HfTruncation>,
}

/// `"truncation"` of a `tokenizer.json`.
#[derive(Deserialize)]
struct HfTruncation {
    max_length: usize,
}

/// What runs the model: rust-bert's pipeline, or Vigie's forward pass ([`crate::bert`]) with
/// the tokenizer rust-bert would build from the same files.
enum Transformer {
    RustBert(Box<SentenceEmbeddingsModel>),
    Native(Box<Native>),
}

/// Vigie's forward pass and what it needs around it.
struct Native {
    bert: Bert,
    tokenizer: TokenizerOption,
    /// The padding piece.
    pad: i64,
    /// Whether vectors are made unit length (`modules.json`'s `Normalize`).
    normalize: bool,
}

/// Sentence embeddings (unit length: 384 floats for both known models) of texts.
///
/// Batching is dynamic: the texts of one call are sorted by length and cut into batches of
/// [`Encoder::batch_size`], so each batch pads to a similar length; vectors come back in the
/// caller's order. The model's prompt is put before every text. The [`Runtime`] says what runs
/// the model.
pub struct Encoder {
    model: Transformer,
    runtime: Runtime,
    name: String,
    prompt: String,
    max_seq_length: usize,
    weights_sha256: String,
    batch_size: usize,
}

impl Encoder {
    /// Loads the model on the CPU from `files`, run by rust-bert (the reference).
    pub fn load(files: &ModelFiles) -> Result<Self, AnalyseError> {
        Self::load_with(files, Runtime::RustBert)
    }

    /// Loads the model on the CPU from `files`, run by `runtime`.
    pub fn load_with(files: &ModelFiles, runtime: Runtime) -> Result<Self, AnalyseError> {
        keep_activations_off_mmap();
        let tokenizer = || -> Result<TokenizerOption, AnalyseError> {
            Ok(match files.tokenizer {
                TokenizerFiles::WordPiece => {
                    // As rust-bert's pipeline reads them.
                    let t = SentenceEmbeddingsTokenizerConfig::from_file(
                        files.dir.join("tokenizer_config.json"),
                    );
                    let s = SentenceEmbeddingsSentenceBertConfig::from_file(
                        files.dir.join("sentence_bert_config.json"),
                    );
                    TokenizerOption::from_file(
                        ModelType::Bert,
                        &files.dir.join("vocab.txt").to_string_lossy(),
                        None,
                        t.do_lower_case.unwrap_or(s.do_lower_case),
                        t.strip_accents,
                        t.add_prefix_space,
                    )?
                }
                TokenizerFiles::HuggingFace => TokenizerOption::from_hf_tokenizer_file(
                    files.dir.join("tokenizer.json"),
                    files.dir.join("special_tokens_map.json"),
                )?,
            })
        };
        let model = match runtime {
            Runtime::RustBert => Transformer::RustBert(Box::new(match files.tokenizer {
                TokenizerFiles::WordPiece => SentenceEmbeddingsModel::new(files.config())?,
                TokenizerFiles::HuggingFace => {
                    SentenceEmbeddingsModel::new_with_tokenizer(files.config(), tokenizer()?)?
                }
            })),
            Runtime::F32 | Runtime::F16 | Runtime::Int8 => {
                let tokenizer = tokenizer()?;
                Transformer::Native(Box::new(Native {
                    bert: Bert::load(&files.dir, runtime)?,
                    pad: tokenizer.get_pad_id().unwrap_or(0),
                    tokenizer,
                    normalize: files.normalize,
                }))
            }
        };
        let weights = files.weights();
        let bytes = std::fs::read(&weights).map_err(|source| AnalyseError::ModelFile {
            path: weights.clone(),
            source,
        })?;
        let weights_sha256 = hex::encode(Sha256::digest(&bytes));
        let name = KNOWN_WEIGHTS
            .iter()
            .find(|(sha, _)| *sha == weights_sha256)
            .map_or_else(|| files.name.clone(), |(_, name)| name.to_string());
        Ok(Encoder {
            model,
            runtime,
            name,
            prompt: files.prompt.clone(),
            max_seq_length: files.max_seq_length,
            weights_sha256,
            batch_size: 32,
        })
    }

    /// The length of the vectors it gives.
    pub fn dim(&self) -> usize {
        match &self.model {
            Transformer::RustBert(model) => model.get_embedding_dim().unwrap_or(0) as usize,
            Transformer::Native(native) => native.bert.width(),
        }
    }

    /// What runs the model.
    pub fn runtime(&self) -> Runtime {
        self.runtime
    }

    /// The model's name, for the model card: the known name of its weights (see
    /// [`KNOWN_WEIGHTS`]), else [`ModelFiles::name`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Pieces the model reads of a text (prompt and special tokens included).
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// The text put before every input (`query: ` for e5).
    pub fn prompt(&self) -> &str {
        &self.prompt
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

    /// The number of pieces the model reads of each text: prompt and special tokens included,
    /// at most [`ModelFiles::max_seq_length`].
    pub fn pieces<S: AsRef<str>>(&self, texts: &[S]) -> Vec<usize> {
        let prompted: Vec<String> = texts.iter().map(|t| self.prompted(t.as_ref())).collect();
        let (_, masks) = self.tokenize(&prompted);
        masks
            .iter()
            .map(|mask| mask.iter().filter(|&&m| m == 1).count())
            .collect()
    }

    /// Vigie's forward pass, when it runs the model (any runtime but rust-bert).
    pub fn bert(&self) -> Option<&Bert> {
        match &self.model {
            Transformer::Native(native) => Some(&native.bert),
            Transformer::RustBert(_) => None,
        }
    }

    /// The pieces of `texts`, prompt included, as `(batch, length)` tensors of ids and mask.
    pub fn piece_tensors(&self, texts: &[&str]) -> (Tensor, Tensor) {
        let prompted: Vec<String> = texts.iter().map(|t| self.prompted(t)).collect();
        self.tensors(&prompted)
    }

    /// [`Encoder::tokenize`]'s ids and masks of prompted texts as `(batch, length)` tensors.
    fn tensors(&self, prompted: &[String]) -> (Tensor, Tensor) {
        let (ids, masks) = self.tokenize(prompted);
        let width = ids.first().map_or(0, Vec::len) as i64;
        let flat = |rows: Vec<Vec<i64>>| {
            Tensor::from_slice(&rows.concat()).view([prompted.len() as i64, width])
        };
        (flat(ids), flat(masks))
    }

    /// The pieces of `texts` padded to the longest, and their masks (1: a piece; 0: padding).
    fn tokenize(&self, texts: &[String]) -> (Vec<Vec<i64>>, Vec<Vec<i64>>) {
        match &self.model {
            Transformer::RustBert(model) => {
                let out = model.tokenize(texts);
                let ids = out
                    .tokens_ids
                    .iter()
                    .map(|t| Vec::<i64>::try_from(t).unwrap_or_default());
                let masks = out
                    .tokens_masks
                    .iter()
                    .map(|t| Vec::<i64>::try_from(t.to_kind(Kind::Int64)).unwrap_or_default());
                (ids.collect(), masks.collect())
            }
            Transformer::Native(native) => {
                let (tokenizer, pad) = (&native.tokenizer, &native.pad);
                let encoded = tokenizer.encode_list(
                    texts,
                    self.max_seq_length,
                    &TruncationStrategy::LongestFirst,
                    0,
                );
                let longest = encoded.iter().map(|e| e.token_ids.len()).max().unwrap_or(0);
                let mut ids = Vec::with_capacity(encoded.len());
                let mut masks = Vec::with_capacity(encoded.len());
                for e in encoded {
                    let mut row = e.token_ids;
                    row.resize(longest, *pad);
                    // As rust-bert: a padding piece is one the tokenizer's own padding (a
                    // `tokenizer.json` may pad to a fixed length) or this one put there.
                    masks.push(row.iter().map(|&id| i64::from(id != *pad)).collect());
                    ids.push(row);
                }
                // Padding only at the end: no column past the longest text's pieces.
                let used = masks
                    .iter()
                    .map(|m: &Vec<i64>| m.iter().rposition(|&k| k == 1).map_or(0, |p| p + 1))
                    .max()
                    .unwrap_or(0);
                for row in ids.iter_mut().chain(masks.iter_mut()) {
                    row.truncate(used);
                }
                (ids, masks)
            }
        }
    }

    /// The vectors of one batch of prompted texts, in order.
    fn encode_batch(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, AnalyseError> {
        let (bert, normalize) = match &self.model {
            Transformer::RustBert(model) => return Ok(model.encode(batch)?),
            Transformer::Native(native) => (&native.bert, native.normalize),
        };
        let (ids, masks) = self.tensors(batch);
        let mut vectors = bert.embed(&ids, &masks);
        if normalize {
            let norm = vectors.norm_scalaropt_dim(2, [1], true).clamp_min(1e-12);
            vectors /= norm;
        }
        crate::bert::rows(&vectors).map_err(|e| AnalyseError::Model {
            dir: PathBuf::new(),
            message: format!("embeddings: {e}"),
        })
    }

    /// `text` with the model's prompt before it.
    fn prompted(&self, text: &str) -> String {
        format!("{}{text}", self.prompt)
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
            let batch: Vec<String> = chunk
                .iter()
                .map(|&i| self.prompted(texts[i].as_ref()))
                .collect();
            for (&i, v) in chunk.iter().zip(self.encode_batch(&batch)?) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A model directory with the files [`ModelFiles::in_dir`] reads (no real weights: it does
    /// not load them).
    fn model_dir(tokenizer_json: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "modules.json",
            r#"[{"type": "sentence_transformers.models.Transformer"},
                {"type": "sentence_transformers.models.Pooling"},
                {"type": "sentence_transformers.models.Normalize"}]"#,
        );
        write(
            "config.json",
            r#"{"_name_or_path": "org/model", "max_position_embeddings": 512}"#,
        );
        write("model.safetensors", "");
        write(
            "1_Pooling/config.json",
            r#"{"pooling_mode_mean_tokens": true}"#,
        );
        write("sentence_bert_config.json", r#"{"max_seq_length": 512}"#);
        match tokenizer_json {
            Some(json) => {
                write("tokenizer.json", json);
                write("special_tokens_map.json", "{}");
            }
            None => {
                write("vocab.txt", "[PAD]\n");
                write("tokenizer_config.json", "{}");
            }
        }
        dir
    }

    #[test]
    fn a_hugging_face_tokenizer_that_does_not_truncate_is_refused() {
        let dir = model_dir(Some(r#"{"version": "1.0", "truncation": null}"#));
        let err = ModelFiles::in_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("truncates at no length"), "{err}");
        assert!(err.contains("512"), "{err}");

        let dir = model_dir(Some(r#"{"truncation": {"max_length": 1024}}"#));
        let err = ModelFiles::in_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("truncates at 1024"), "{err}");
    }

    #[test]
    fn a_truncating_hugging_face_tokenizer_and_its_prompt_are_read() {
        let dir = model_dir(Some(r#"{"truncation": {"max_length": 512, "stride": 0}}"#));
        std::fs::write(
            dir.path().join("config_sentence_transformers.json"),
            r#"{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": "query"}"#,
        )
        .unwrap();
        let files = ModelFiles::in_dir(dir.path()).unwrap();
        assert_eq!(files.tokenizer, TokenizerFiles::HuggingFace);
        assert_eq!(files.prompt, "query: ");
        assert_eq!(files.max_seq_length, 512);
        assert_eq!(files.name, "org/model");
        assert!(files.normalize);
    }

    #[test]
    fn pooling_other_than_the_mean_is_refused_and_normalisation_is_read() {
        let dir = model_dir(None);
        std::fs::write(
            dir.path().join("modules.json"),
            r#"[{"type": "sentence_transformers.models.Transformer"},
                {"type": "sentence_transformers.models.Pooling"}]"#,
        )
        .unwrap();
        assert!(!ModelFiles::in_dir(dir.path()).unwrap().normalize);
        std::fs::write(
            dir.path().join("1_Pooling/config.json"),
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
        )
        .unwrap();
        let err = ModelFiles::in_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("pooling_mode_mean_tokens"), "{err}");
    }

    #[test]
    fn a_wordpiece_model_has_no_prompt_and_the_window_is_the_smaller_limit() {
        let dir = model_dir(None);
        std::fs::write(
            dir.path().join("sentence_bert_config.json"),
            r#"{"max_seq_length": 4096}"#,
        )
        .unwrap();
        let files = ModelFiles::in_dir(dir.path()).unwrap();
        assert_eq!(files.tokenizer, TokenizerFiles::WordPiece);
        assert_eq!(files.prompt, "");
        // No position beyond the model's 512, whatever sentence_bert_config says.
        assert_eq!(files.max_seq_length, 512);
        std::fs::remove_file(dir.path().join("vocab.txt")).unwrap();
        let err = ModelFiles::in_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("vocab.txt"), "{err}");
    }

    #[test]
    fn a_malformed_config_is_an_error_that_names_the_file() {
        let dir = model_dir(None);
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let err = ModelFiles::in_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
    }
}
