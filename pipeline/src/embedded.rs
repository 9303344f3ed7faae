//! The embedded pipeline: replay -> analyse -> index in one process, no Kafka.
//!
//! `vigie run` (without `--brokers`) and `vigie replay` play a file through it. Each batch of
//! the replay is analysed (posts only: a deletion is not scored, and a post already deleted is
//! not worth the model's time), applied to the index in replay order ([`crate::apply`]), and
//! committed before the next batch is read: a crash loses at most the batch in flight, and
//! replaying again indexes each post once (upsert by Vigie id).

use crate::apply::Applied;
use crate::error::Result;
use vigie_analyse::{Analyser, Scorer};
use vigie_index::PostIndex;
use vigie_ingest::replay::{self, Speed};
use vigie_ingest::Item;
use vigie_record::{Deletion, Record};
use vigie_situation::IncidentConfig;

/// Plays `items` (in replay order, at `speed`) through `analyser` into `index`, `batch_size`
/// at a time, committing after each batch; `on_batch` is told how many items each batch held
/// (for a progress bar). Posts at or above `alert_threshold` count as alerts.
pub fn replay_into_index<S: Scorer>(
    items: Vec<Item>,
    speed: Speed,
    batch_size: usize,
    analyser: &Analyser<S>,
    alert_threshold: f32,
    index: &PostIndex,
    on_batch: impl FnMut(usize),
) -> Result<Applied> {
    let incidents = IncidentConfig {
        threshold: alert_threshold,
        ..Default::default()
    };
    replay_into_index_with(
        items, speed, batch_size, analyser, incidents, index, on_batch,
    )
}

/// The same, grouping alerts into incidents by `incidents` (whose threshold is the alert
/// threshold).
pub fn replay_into_index_with<S: Scorer>(
    items: Vec<Item>,
    speed: Speed,
    batch_size: usize,
    analyser: &Analyser<S>,
    incidents: IncidentConfig,
    index: &PostIndex,
    mut on_batch: impl FnMut(usize),
) -> Result<Applied> {
    let alert_threshold = incidents.threshold;
    let mut writer = index.writer_with(incidents)?;
    let mut applied = Applied::default();
    replay::play_now(items, speed, batch_size, |batch: Vec<Item>| -> Result<()> {
        let n = batch.len();
        // Posts are analysed together, then every item is applied in replay order.
        let mut envelopes = Vec::with_capacity(n);
        let mut deletions: Vec<(usize, Deletion)> = Vec::new();
        for item in batch {
            match item {
                // Deleted in an earlier commit: refused without scoring.
                Item::Post(e) if writer.is_deleted(e.post.id.as_str())? => applied.refused += 1,
                Item::Post(e) => envelopes.push(*e),
                Item::Delete(t) => deletions.push((envelopes.len(), Deletion::from(*t))),
            }
        }
        analyser.analyse(&mut envelopes)?;
        let records = in_order(envelopes, deletions);
        applied.merge(crate::apply::apply_batch(
            &mut writer,
            &records,
            alert_threshold,
        )?);
        writer.commit(None)?;
        on_batch(n);
        Ok(())
    })?;
    Ok(applied)
}

/// The records of a batch in replay order: each deletion after the first `n` posts it was
/// read after.
fn in_order(
    envelopes: Vec<vigie_record::Envelope>,
    deletions: Vec<(usize, Deletion)>,
) -> Vec<Record> {
    let mut records = Vec::with_capacity(envelopes.len() + deletions.len());
    let mut deletions = deletions.into_iter().peekable();
    for (i, e) in envelopes.into_iter().enumerate() {
        while let Some((_, d)) = deletions.next_if(|(at, _)| *at == i) {
            records.push(Record::Delete(Box::new(d)));
        }
        records.push(Record::Post(Box::new(e)));
    }
    records.extend(deletions.map(|(_, d)| Record::Delete(Box::new(d))));
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_record::fixtures::{envelope, tombstone};

    #[test]
    fn deletions_keep_their_place_among_the_posts() {
        let posts = vec![envelope("1", "a"), envelope("2", "b")];
        let d = |id: &str| Deletion::from(tombstone(id, "2026-11-27T09:00:00Z"));
        let records = in_order(posts, vec![(0, d("0")), (1, d("1")), (2, d("2"))]);
        let shape: Vec<String> = records
            .iter()
            .map(|r| match r {
                Record::Post(e) => format!("post {}", e.post.native_id),
                Record::Delete(d) => format!("delete {}", d.tombstone.native_id),
            })
            .collect();
        assert_eq!(
            shape,
            ["delete 0", "post 1", "delete 1", "post 2", "delete 2"]
        );
    }
}
