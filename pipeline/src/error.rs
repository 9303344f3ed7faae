//! What can stop a stage.

use vigie_analyse::AnalyseError;
use vigie_index::IndexError;
use vigie_record::bus::BusError;

/// Why a stage stopped, or could not start. A malformed message never is one of these: it is
/// dead-lettered and the stage goes on (see [`crate::deadletter`]).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The broker refused or failed an operation that cannot be waited out.
    #[error("kafka: {0}")]
    Bus(#[from] BusError),
    /// The index could not be read or written (its writer is held elsewhere, a disk error...).
    #[error("index: {0}")]
    Index(#[from] IndexError),
    /// The scorer failed on a whole batch.
    #[error("analyse: {0}")]
    Analyse(#[from] AnalyseError),
    /// A file to replay could not be read.
    #[error("replay: {0}")]
    Ingest(#[from] vigie_ingest::IngestError),
    /// The last commit of the index carries a payload that is not a [`Checkpoint`](crate::Checkpoint).
    #[error("the index's commit payload is not a checkpoint: {0}")]
    Checkpoint(serde_json::Error),
    /// The index was fed from another topic than the one the indexer is asked to read.
    #[error("this index was fed from topic {fed}, not {asked}")]
    ForeignTopic {
        /// The topic of the index's checkpoint.
        fed: String,
        /// The topic the indexer was given.
        asked: String,
    },
    /// A listener (`/metrics`) could not be opened, or another I/O failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A task of the stage panicked or was cancelled.
    #[error("stage task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A benchmark could not run as asked (its arguments, a stalled pipeline).
    #[error("bench: {0}")]
    Bench(String),
}

/// The result of a stage's operation.
pub type Result<T, E = StageError> = std::result::Result<T, E>;
