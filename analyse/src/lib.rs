//! The analyse stage: turns a post into danger scores that say why.
//!
//! - [`Encoder`] wraps rust-bert's sentence-embedding pipeline over all-MiniLM-L6-v2, loaded from
//!   local files only (the `.safetensors` weights a Python package ships): Vigie never fetches
//!   weights from a hub, and the crate is built without rust-bert's `remote` feature.
//! - [`Taxonomy`] is the data file of labels: `danger` and its categories, each with a
//!   description and example posts in English and French.
//! - [`PrototypeScorer`] is the first scorer: a post's score for a category grows with its cosine
//!   similarity to that category's examples; `danger` is the highest category score.
//! - [`Analyser`] applies a scorer to envelopes and records, for every post, either its scores and
//!   explanation or an explicit "not scored" state with the reason.
//!
//! Guarantees: every scored post names the model card that scored it; every post above the
//! alert threshold carries the words that moved its `danger` score most (occlusion); a post
//! that cannot be scored is marked so, never dropped and never a crash.
//!
//! Truncation: the encoder reads the first 256 word pieces of a post (the model's
//! `max_seq_length`); the rest of a longer post does not count towards its score.

mod analyser;
mod encoder;
mod scorer;
mod taxonomy;

pub use analyser::{Analyser, AnalyserConfig};
pub use encoder::{Encoder, ModelFiles};
pub use scorer::{PrototypeScorer, Scorer};
pub use taxonomy::{Category, Taxonomy};

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
    /// rust-bert failed to load the model or to encode.
    #[error("sentence encoder: {0}")]
    Encoder(#[from] rust_bert::RustBertError),
    /// The taxonomy file is unreadable or invalid.
    #[error("taxonomy {path}: {message}")]
    Taxonomy {
        /// The taxonomy file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
}
