//! The indexer's checkpoint: partition -> position, published atomically with the index.
//!
//! The indexer reads `vigie.posts.scored` and writes tantivy. Its position in the topic — for
//! each partition, the offset of the next message to read — is its *checkpoint*. The checkpoint
//! is stored in the payload of each tantivy commit, in the same atomic write as the documents
//! read up to it (see `vigie_index`): the index and the position it was read up to can never
//! disagree. On start, the indexer reads the checkpoint back from the last commit
//! ([`Checkpoint::of`]) and seeks each partition there; the consumer group's committed offsets
//! play no part. A crash loses only uncommitted work, which is read again.
//!
//! ## It never moves backwards on its own
//! [`Checkpoint::advance`] moves a partition past one message, and refuses a message below the
//! position ([`Refused`]): that message is already in the index (or in the batch about to be
//! committed with this checkpoint), so applying it again could only undo newer work — a
//! redelivered old version of a post over its newer one. The indexer skips what is refused.
//! The only way back is [`Checkpoint::reset`], for a partition whose topic no longer holds the
//! position (see below); it is recorded as a [`Gap`] of kind `rewound`.
//!
//! ## Coverage gaps
//! A checkpoint position can fall out of the topic: the broker's retention deleted messages the
//! indexer had not read yet (it was down too long), or the topic was recreated. The indexer then
//! restarts from the earliest message the broker still has, never the latest. A message read
//! past the expected offset is a gap of kind `skipped` (messages lost to the index, from
//! `expected` to `got - 1`); a reset below it is `rewound` (what is read again is upserted by
//! Vigie id, so nothing is duplicated). The last [`MAX_GAPS`] gaps are kept in the checkpoint,
//! so `vigie stats` shows which stretch of which partition the index does not cover.

use crate::error::{Result, StageError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vigie_index::PostIndex;

/// Most coverage gaps a checkpoint keeps (the latest).
pub const MAX_GAPS: usize = 100;

/// The indexer's position, stored in the payload of every commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The topic read.
    pub topic: String,
    /// Partition -> offset of the next message to read.
    pub offsets: BTreeMap<i32, i64>,
    /// When the commit was made (RFC 3339).
    pub committed_at: Option<String>,
    /// Discontinuities met while reading, oldest first (see the module doc).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
}

/// A stretch of a partition the indexer did not read in order (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    /// The partition.
    pub partition: i32,
    /// The offset the checkpoint expected next.
    pub expected: i64,
    /// The offset read instead.
    pub got: i64,
    /// `skipped` (offsets `expected..got` were never indexed) or `rewound`.
    pub kind: GapKind,
    /// When it was seen (RFC 3339).
    pub seen_at: String,
}

/// Which way the position jumped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// Forward: messages were lost to the index.
    Skipped,
    /// Backward: messages are read again (only by [`Checkpoint::reset`]).
    Rewound,
}

/// A message below the checkpoint's position, refused by [`Checkpoint::advance`]: it is
/// already covered by the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("offset {got} of partition {partition} is below the checkpoint's position {position}")]
pub struct Refused {
    /// The partition.
    pub partition: i32,
    /// The checkpoint's position: the next offset it expects.
    pub position: i64,
    /// The offset refused.
    pub got: i64,
}

impl Checkpoint {
    /// An empty checkpoint of `topic`.
    pub fn new(topic: impl Into<String>) -> Self {
        Checkpoint {
            topic: topic.into(),
            ..Checkpoint::default()
        }
    }

    /// Moves `partition` past the message at `offset`. Refuses an offset below the position
    /// (the checkpoint is unchanged); returns the gap when `offset` is past the one expected (a
    /// partition not in the checkpoint yet expects nothing).
    pub fn advance(&mut self, partition: i32, offset: i64) -> Result<Option<Gap>, Refused> {
        let expected = self.offsets.get(&partition).copied();
        if let Some(position) = expected.filter(|&p| offset < p) {
            return Err(Refused {
                partition,
                position,
                got: offset,
            });
        }
        self.offsets.insert(partition, offset + 1);
        Ok(expected
            .filter(|&e| e != offset)
            .map(|expected| self.record(partition, expected, offset)))
    }

    /// Restarts `partition` at `start` instead of the position `expected` (the topic no longer
    /// holds it: retention deleted it, or the topic was recreated); the move is a gap.
    pub fn reset(&mut self, partition: i32, expected: i64, start: i64) -> Gap {
        self.offsets.insert(partition, start);
        self.record(partition, expected, start)
    }

    /// Keeps the gap between `expected` and `got` (the last [`MAX_GAPS`]).
    fn record(&mut self, partition: i32, expected: i64, got: i64) -> Gap {
        let gap = Gap {
            partition,
            expected,
            got,
            kind: if got > expected {
                GapKind::Skipped
            } else {
                GapKind::Rewound
            },
            seen_at: chrono::Utc::now().to_rfc3339(),
        };
        self.gaps.push(gap.clone());
        if self.gaps.len() > MAX_GAPS {
            self.gaps.remove(0);
        }
        gap
    }

    /// The checkpoint of the index's last commit, if it has one.
    pub fn of(index: &PostIndex) -> Result<Option<Checkpoint>> {
        index
            .commit_payload()?
            .map(|p| serde_json::from_str(&p).map_err(StageError::Checkpoint))
            .transpose()
    }

    /// The commit payload: this checkpoint in JSON, stamped with the time of the commit.
    pub fn to_payload(&mut self) -> Result<String> {
        self.committed_at = Some(chrono::Utc::now().to_rfc3339());
        serde_json::to_string(self).map_err(StageError::Checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_jump_is_a_coverage_gap_not_a_silent_skip() {
        let mut c = Checkpoint::new("t");
        // The first message of a partition the checkpoint does not know: no gap.
        assert_eq!(c.advance(0, 5), Ok(None));
        assert_eq!(c.advance(0, 6), Ok(None));
        // Messages 7..=9 were deleted from the topic before the indexer read them.
        let gap = c.advance(0, 10).unwrap().unwrap();
        assert_eq!((gap.expected, gap.got, gap.kind), (7, 10, GapKind::Skipped));
        assert_eq!(c.offsets[&0], 11);
        assert_eq!(c.gaps.len(), 1);
        for n in 0..(MAX_GAPS as i64 + 10) {
            c.advance(1, n * 2).unwrap();
        }
        assert_eq!(c.gaps.len(), MAX_GAPS);
    }

    #[test]
    fn it_refuses_to_move_backwards_and_only_a_reset_rewinds() {
        let mut c = Checkpoint::new("t");
        c.advance(0, 0).unwrap();
        c.advance(0, 1).unwrap();
        let before = c.clone();
        // A redelivered message below the position: refused, nothing changes.
        assert_eq!(
            c.advance(0, 0),
            Err(Refused {
                partition: 0,
                position: 2,
                got: 0
            })
        );
        assert_eq!(c, before);
        // The message at the position is fine, and other partitions are independent.
        assert_eq!(c.advance(0, 2), Ok(None));
        assert_eq!(c.advance(3, 0), Ok(None));
        // The topic was recreated: an explicit reset rewinds, and says so.
        let gap = c.reset(0, 3, 0);
        assert_eq!((gap.expected, gap.got, gap.kind), (3, 0, GapKind::Rewound));
        assert_eq!(c.offsets[&0], 0);
        assert_eq!(c.advance(0, 0), Ok(None));
    }

    #[test]
    fn it_round_trips_through_the_commit_payload_and_reads_older_ones() {
        let mut c = Checkpoint::new("t");
        c.advance(0, 4).unwrap();
        c.advance(0, 9).unwrap();
        let payload = c.to_payload().unwrap();
        assert!(c.committed_at.is_some());
        assert_eq!(serde_json::from_str::<Checkpoint>(&payload).unwrap(), c);
        // A checkpoint written before gaps were kept.
        let old: Checkpoint =
            serde_json::from_str(r#"{"topic":"t","offsets":{"0":3},"committed_at":null}"#).unwrap();
        assert!(old.gaps.is_empty());
        assert_eq!(old.offsets[&0], 3);
    }
}
