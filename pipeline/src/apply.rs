//! Applying records to the index: the one step both the embedded pipeline and the Kafka
//! indexer take.
//!
//! A post is upserted by Vigie id (a post read twice keeps one document); a post deleted at its
//! source is refused (see `vigie_index::deletion`); a deletion removes its post and is recorded
//! in the same commit. Records are applied in the order given, so a deletion that follows its
//! post in a partition removes it, and a post that follows its deletion is refused. Nothing is
//! committed here: the caller commits, with its checkpoint when it has one.

use crate::error::Result;
use vigie_index::{IndexWriter, Upsert};
use vigie_record::{Envelope, Record, ScoreState};

/// What applying records did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Posts written.
    pub posts: u64,
    /// Posts written at or above the alert threshold.
    pub alerts: u64,
    /// Posts written marked "not scored".
    pub not_scored: u64,
    /// Deletions applied.
    pub deletions: u64,
    /// Posts refused: deleted at their source.
    pub refused: u64,
}

impl Applied {
    /// Applies one record to `writer`, counting it; `alert_threshold` is the `danger` at or
    /// above which a post counts as an alert.
    pub fn add(
        &mut self,
        writer: &mut IndexWriter,
        record: &Record,
        alert_threshold: f32,
    ) -> Result<()> {
        match record {
            Record::Post(envelope) => self.post(writer, envelope, alert_threshold)?,
            Record::Delete(deletion) => {
                writer.delete(deletion)?;
                self.deletions += 1;
            }
        }
        Ok(())
    }

    fn post(
        &mut self,
        writer: &mut IndexWriter,
        envelope: &Envelope,
        alert_threshold: f32,
    ) -> Result<()> {
        if writer.upsert(envelope)? == Upsert::Deleted {
            self.refused += 1;
            return Ok(());
        }
        self.posts += 1;
        match &envelope.scoring {
            Some(s) if s.state == ScoreState::NotScored => self.not_scored += 1,
            Some(s) if s.danger() >= alert_threshold => self.alerts += 1,
            _ => {}
        }
        Ok(())
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: Applied) {
        self.posts += other.posts;
        self.alerts += other.alerts;
        self.not_scored += other.not_scored;
        self.deletions += other.deletions;
        self.refused += other.refused;
    }
}

/// Applies `records` to `writer` in order (see the module doc); commits nothing.
pub fn apply_batch<'a>(
    writer: &mut IndexWriter,
    records: impl IntoIterator<Item = &'a Record>,
    alert_threshold: f32,
) -> Result<Applied> {
    let mut applied = Applied::default();
    for record in records {
        applied.add(writer, record, alert_threshold)?;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_record::fixtures::{envelope, tombstone};
    use vigie_record::Deletion;

    #[test]
    fn posts_are_upserted_deletions_applied_and_deleted_posts_refused_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let index = vigie_index::PostIndex::open(dir.path()).unwrap();
        let mut writer = index.writer().unwrap();
        let post = envelope("1", "a fire in the station");
        let deletion = Deletion::from(tombstone("1", "2026-11-27T09:00:00Z"));
        let other = envelope("2", "nothing to see");
        let records = [
            Record::Post(Box::new(post.clone())),
            Record::Post(Box::new(post.clone())),
            Record::Post(Box::new(other)),
            Record::Delete(Box::new(deletion)),
            // The same post after its deletion: refused.
            Record::Post(Box::new(post)),
        ];
        let applied = apply_batch(&mut writer, &records, 0.5).unwrap();
        assert_eq!(
            applied,
            Applied {
                posts: 3,
                deletions: 1,
                refused: 1,
                ..Applied::default()
            }
        );
        writer.commit(None).unwrap();
        index.refresh().unwrap();
        assert_eq!(index.num_docs(), 1);
    }
}
