//! Whether an incident matches a watch, and by which posts.
//!
//! An incident matches a watch when at least one of its posts is, all at once: **in the zone**
//! (its most confident place is in the watch's disc), **of the category** (its strongest
//! category, or that category's family, is the watch's), **dangerous enough** (its `danger` is at
//! least the watch's `min_score`) and **said in the watch's words** (the search query `q`
//! matches it). Those posts are the alert's `matched_posts`. An incident merged into another is
//! never alerted itself: the one it joined is.

use crate::watch::Watch;
use std::collections::BTreeSet;
use vigie_index::{IndexError, PostIndex};
use vigie_situation::incidents::{family, Incident};

/// The posts of `incident` that match `watch`, in the order they joined (empty: no match).
pub fn matched_posts(
    index: &PostIndex,
    watch: &Watch,
    incident: &Incident,
) -> Result<Vec<String>, IndexError> {
    if incident.merged_into.is_some() {
        return Ok(Vec::new());
    }
    let spec = &watch.spec;
    let candidates: Vec<String> = incident
        .members
        .iter()
        .filter(|m| {
            m.place
                .as_ref()
                .is_some_and(|p| spec.near.contains(&p.point()))
        })
        .filter(|m| {
            spec.category
                .as_deref()
                .is_none_or(|c| m.category == c || family(&m.category) == c)
        })
        .filter(|m| spec.min_score.is_none_or(|s| m.danger >= s))
        .map(|m| m.id.clone())
        .collect();
    match (&spec.q, candidates.is_empty()) {
        (_, true) | (None, _) => Ok(candidates),
        (Some(q), false) => {
            let said: BTreeSet<String> = index.posts_matching(&candidates, q)?;
            Ok(candidates
                .into_iter()
                .filter(|c| said.contains(c))
                .collect())
        }
    }
}
