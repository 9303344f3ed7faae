//! The analyse stage: turns a post into danger scores that say why.
//!
//! - [`Encoder`] wraps rust-bert's sentence-embedding pipeline over a sentence-transformers BERT
//!   model — multilingual-e5-small by default, all-MiniLM-L6-v2 by configuration — loaded from
//!   local files only (made at set-up from registry packages): Vigie never fetches weights from
//!   a hub, and the crate is built without rust-bert's `remote` feature. Its [`Runtime`] says
//!   what runs the model: rust-bert (the reference), or Vigie's own forward pass ([`bert`]) in
//!   f32 or with int8 linear layers.
//! - [`Taxonomy`] is the data file of labels: `danger` and its categories, each with a
//!   description and example posts in English and French.
//! - [`Classifier`] is the default scorer: one logistic-regression head per label over the
//!   sentence embedding, calibrated by Platt scaling, trained by `vigie train`
//!   ([`training`]) and described by a [`ModelCard`]. The heads read each embedding centred
//!   on its language's mean ([`centring`]), so that a language's place in the encoder's space
//!   does not read as evidence.
//! - [`PrototypeScorer`] is the fallback when no trained heads are configured: a post's score for
//!   a category grows with its cosine similarity to that category's examples.
//! - [`Analyser`] applies a scorer to envelopes and records, for every post, either its scores and
//!   explanation or an explicit "not scored" state with the reason.
//! - [`NoopScorer`] and [`SlowScorer`] are test doubles of [`Scorer`] for delivery tests and
//!   benchmarks that must not depend on the model.
//! - [`experiment`] is the experimenters' work behind `vigie train`, `vigie eval` (and its
//!   report's charts), `vigie bench classify` and `vigie experiment loco`
//!   (leave-one-crisis-out against the [`baseline`]s), as functions that return their results;
//!   [`dataset`] reads labelled files, [`cache`] keeps their embeddings, [`metrics`] measures.
//!
//! A model card records what a score can be traced to: the encoder and the SHA-256 of its
//! weights, the SHA-256 of the heads (whose prefix is the model id every score names), each
//! training file and the taxonomy with their SHA-256, how labels and splits were made, and the
//! metrics and reliability of the heads on held-out posts.
//!
//! Guarantees: every scored post names the model card that scored it; every post above the
//! alert threshold carries the words that moved its `danger` score most (occlusion); a post
//! that cannot be scored is marked so, never dropped and never a crash.
//!
//! Truncation: the encoder reads the first `max_seq_length` pieces of a post (512 for e5, 256
//! for MiniLM, prompt included); the rest of a longer post does not count towards its score.

mod analyser;
pub mod baseline;
pub mod bert;
pub mod cache;
pub mod cascade;
pub mod centring;
mod classifier;
pub mod dataset;
mod encoder;
pub mod experiment;
pub mod logistic;
pub mod metrics;
mod scorer;
mod taxonomy;
pub mod training;

pub use analyser::{Analyser, AnalyserConfig};
pub use bert::Runtime;
pub use classifier::{Classifier, EncoderInfo, Head, Heads, ModelCard, TrainingFile};
pub use encoder::{Encoder, ModelFiles, TokenizerFiles, KNOWN_WEIGHTS};
pub use scorer::{NoopScorer, PrototypeScorer, Scorer, Scores, SlowScorer};
pub use taxonomy::{Category, Negatives, Taxonomy};

/// Sets how many CPU threads the model may use (libtorch's intra-op pool).
pub fn set_threads(threads: usize) {
    tch::set_num_threads(threads.max(1) as i32);
}

/// How many CPU threads the model uses.
pub fn threads() -> usize {
    tch::get_num_threads().max(1) as usize
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// What can go wrong while loading a model or scoring.
#[derive(Debug, thiserror::Error)]
pub enum AnalyseError {
    /// A model file is missing or unreadable.
    #[error("model file {path}: {source}")]
    ModelFile {
        /// The file Vigie looked for.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A model directory that Vigie cannot use as it is.
    #[error("model directory {dir}: {message}")]
    Model {
        /// The model directory.
        dir: std::path::PathBuf,
        /// What is wrong, and how to fix it.
        message: String,
    },
    /// rust-bert failed to load the model or to encode.
    #[error("sentence encoder: {0}")]
    Encoder(#[from] rust_bert::RustBertError),
    /// A data file (labelled posts, trained heads, cache) is malformed.
    #[error("{location}: {message}")]
    Data {
        /// The file, and line where it applies.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The taxonomy file is unreadable or invalid.
    #[error("taxonomy {path}: {message}")]
    Taxonomy {
        /// The taxonomy file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
}
