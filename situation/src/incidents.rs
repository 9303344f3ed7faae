//! Incidents: the alert posts that tell of one situation, grouped as the stream goes.
//!
//! ## The rule
//! Only posts whose `danger` reaches [`IncidentConfig::threshold`] take part. A post's
//! *family* is that of its strongest category ([`family`]: a fire and an explosion are one
//! family, a shooting, a threat and a riot another...). It joins the open incident of its family
//! that fits it best, where an incident *fits* when
//! - it was active recently: the post is at most [`IncidentConfig::window`] after the
//!   incident's last post (or before its first), and
//! - their places agree: when both have one, they are at most [`IncidentConfig::radius_km`]
//!   apart (places farther apart never join), and
//! - they are about the same thing: their places agree as above, or the post's words are
//!   similar enough to the incident's ([`similarity`] at least
//!   [`IncidentConfig::min_similarity`]).
//!
//! Best is the highest `[places agree] + similarity`; ties go to the older incident. A post
//! that fits none opens a new incident. A post that fits two incidents by place *and* by words
//! merges them: the younger goes into the older, and is kept as a `merged_into` record so that
//! its id still leads somewhere. An incident whose last post is more than
//! [`IncidentConfig::quiet`] before the newest post seen is closed: it takes no more posts.
//!
//! Time is the posts' own (`created_at`), never the clock: the same posts in the same order
//! give the same incidents, ids included (an incident is named after its first post), so a
//! replay gives what the live stream gave.
//!
//! ## Why words, and not embeddings
//! The sentence embeddings stay in the analyse stage (384 numbers a post would triple the
//! size of a scored envelope); the words are in every envelope. The detection bench (`vigie bench
//! detection`) measures the rule with and without the word similarity, and the word profile
//! ([`similarity`]) against the plain Jaccard similarity of word sets that the index's MinHash
//! signatures estimate ([`jaccard`], `--similarity jaccard`).

use crate::gazetteer::fold;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use vigie_record::{Envelope, GeoPoint, Place};

/// The settings of the rule (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IncidentConfig {
    /// `danger` from which a post takes part.
    pub threshold: f32,
    /// Longest gap between an incident's posts.
    pub window: Duration,
    /// An incident this long without a post is closed.
    pub quiet: Duration,
    /// Places farther apart than this are not one incident.
    pub radius_km: f64,
    /// Word similarity from which two texts are about the same thing.
    pub min_similarity: f64,
    /// How a post's words are compared with an incident's.
    pub text: TextSimilarity,
}

/// How a post's words are compared with an incident's (measured against each other by `vigie
/// bench detection --similarity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextSimilarity {
    /// [`similarity`]: how much of the post's words the incident's posts use, weighted by how
    /// many of them do.
    #[default]
    Profile,
    /// [`jaccard`]: the Jaccard similarity of the post's words and the incident's word set,
    /// what the index's MinHash signatures estimate for near-duplicates.
    Jaccard,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            threshold: 0.5,
            window: Duration::hours(6),
            quiet: Duration::hours(12),
            radius_km: 50.0,
            min_similarity: 0.2,
            text: TextSimilarity::Profile,
        }
    }
}

/// Open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Takes new posts.
    Open,
    /// Quiet for longer than [`IncidentConfig::quiet`], or merged into another.
    Closed,
}

impl Status {
    /// `open` or `closed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Closed => "closed",
        }
    }
}

/// A post of an incident, as the incident keeps it (no text: the index has it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Vigie id of the post.
    pub id: String,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// Its `danger` score.
    pub danger: f32,
    /// Its strongest category.
    pub category: String,
    /// Its source kind.
    pub source: String,
    /// Its most confident place, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
}

/// The box around an incident's places.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundingBox {
    /// Southern edge.
    pub min_lat: f64,
    /// Western edge.
    pub min_lon: f64,
    /// Northern edge.
    pub max_lat: f64,
    /// Eastern edge.
    pub max_lon: f64,
}

/// One situation: its posts and what they say together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// `inc-` and the Vigie id of its first post (stable across replays).
    pub id: String,
    /// Its category family (see [`family`]).
    pub family: String,
    /// The category most of its posts are in.
    pub category: String,
    /// Open or closed.
    pub status: Status,
    /// The incident it was merged into, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// The text of its best post (highest `danger`, then earliest), cut to 140 characters.
    pub title: String,
    /// The Vigie id of that post.
    pub best: String,
    /// The Vigie id of its first post.
    pub first_post: String,
    /// When its first post was made.
    pub first_seen: DateTime<Utc>,
    /// When its last post was made.
    pub last_seen: DateTime<Utc>,
    /// Its place: the one its posts name with the most confidence in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    /// The box around every place its posts name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<BoundingBox>,
    /// The source kinds of its posts.
    pub sources: BTreeSet<String>,
    /// The highest `danger` of its posts.
    pub peak_danger: f32,
    /// Its posts, in the order they joined.
    pub members: Vec<Member>,
    /// Its words and how many of its posts use each (at most [`PROFILE_TERMS`]).
    pub terms: BTreeMap<String, u32>,
    /// Bumped at each change, so that readers can tell what moved since they last looked.
    pub revision: u64,
}

/// Most words an incident's profile keeps.
pub const PROFILE_TERMS: usize = 256;

/// What [`Incidents::observe`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A new incident, with its first post.
    Opened(String),
    /// A post joined an incident.
    Grew(String),
    /// The first incident was merged into the second.
    Merged(String, String),
    /// An incident was closed (quiet).
    Closed(String),
}

/// The danger categories of the taxonomy (`config/taxonomy.toml`), each in one [`family`].
pub const CATEGORIES: [&str; 7] = [
    "fire",
    "explosion",
    "armed_violence",
    "threat",
    "crowd_unrest",
    "natural_hazard",
    "accident",
];

/// The category families.
pub const FAMILIES: [&str; 4] = ["fire_explosion", "violence", "natural_hazard", "accident"];

/// The category family of a category: what can be one situation.
pub fn family(category: &str) -> &str {
    match category {
        "fire" | "explosion" => "fire_explosion",
        "armed_violence" | "threat" | "crowd_unrest" => "violence",
        "natural_hazard" => "natural_hazard",
        "accident" => "accident",
        other => other,
    }
}

/// The words of a text that can tell two situations apart: folded, four letters or more,
/// no URLs, no @mentions, no hashtag marks.
pub fn terms(text: &str) -> BTreeSet<String> {
    text.split_whitespace()
        .filter(|w| !w.starts_with('@') && !w.contains("://"))
        .flat_map(|w| fold(w).split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter(|w| w.chars().count() >= 4 && !w.chars().all(|c| c.is_ascii_digit()))
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

/// Frequent words of no help in telling situations apart.
const STOP: &[&str] = &[
    "this", "that", "with", "from", "have", "just", "they", "there", "their", "what", "about",
    "been", "were", "will", "your", "more", "when", "into", "after", "people", "dans", "pour",
    "avec", "plus", "sont", "nous", "vous", "cette", "mais", "tout", "comme", "breaking", "news",
    "update", "urgent", "alerte", "para", "como", "esta", "todo", "sono", "della", "anche",
];

/// How much of a post's words the incident uses: the mean, over the post's terms, of the
/// square root of the share of the incident's posts that use the term (0: no word in common;
/// 1: every word of the post is in every post of the incident; against a one-post incident,
/// the share of the post's words the other used).
pub fn similarity(terms: &BTreeSet<String>, incident: &Incident) -> f64 {
    if terms.is_empty() || incident.members.is_empty() {
        return 0.0;
    }
    let posts = incident.members.len() as f64;
    let sum: f64 = terms
        .iter()
        .filter_map(|t| incident.terms.get(t))
        .map(|&n| (f64::from(n) / posts).min(1.0).sqrt())
        .sum();
    sum / terms.len() as f64
}

/// The Jaccard similarity of a post's `terms` and the set of the incident's words (0 when
/// either is empty).
pub fn jaccard(terms: &BTreeSet<String>, incident: &Incident) -> f64 {
    if terms.is_empty() || incident.terms.is_empty() {
        return 0.0;
    }
    let shared = terms
        .iter()
        .filter(|t| incident.terms.contains_key(*t))
        .count();
    shared as f64 / (terms.len() + incident.terms.len() - shared) as f64
}

/// The incidents being built, and the rule's settings.
#[derive(Debug, Clone)]
pub struct Incidents {
    config: IncidentConfig,
    open: BTreeMap<String, Incident>,
    /// Post id -> the open incident it is in.
    member_of: BTreeMap<String, String>,
    /// The newest post time seen (the stream's clock).
    now: Option<DateTime<Utc>>,
    /// Incidents changed since [`Incidents::take_changed`], to be written.
    changed: BTreeMap<String, Incident>,
}

impl Incidents {
    /// No incident yet.
    pub fn new(config: IncidentConfig) -> Self {
        Incidents {
            config,
            open: BTreeMap::new(),
            member_of: BTreeMap::new(),
            now: None,
            changed: BTreeMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &IncidentConfig {
        &self.config
    }

    /// Resumes with the open incidents stored by an earlier run.
    pub fn resume(config: IncidentConfig, open: impl IntoIterator<Item = Incident>) -> Self {
        let mut incidents = Incidents::new(config);
        for i in open {
            if i.status != Status::Open {
                continue;
            }
            for m in &i.members {
                incidents.member_of.insert(m.id.clone(), i.id.clone());
            }
            incidents.now = incidents.now.max(Some(i.last_seen));
            incidents.open.insert(i.id.clone(), i);
        }
        incidents
    }

    /// The open incidents.
    pub fn open(&self) -> impl Iterator<Item = &Incident> {
        self.open.values()
    }

    /// The open incident post `id` is in.
    pub fn incident_of(&self, id: &str) -> Option<&Incident> {
        self.member_of.get(id).and_then(|i| self.open.get(i))
    }

    /// The incidents changed since the last call (to be stored), in id order.
    pub fn take_changed(&mut self) -> Vec<Incident> {
        std::mem::take(&mut self.changed).into_values().collect()
    }

    fn touch(&mut self, id: &str) {
        if let Some(i) = self.open.get_mut(id) {
            i.revision += 1;
            self.changed.insert(id.to_string(), i.clone());
        }
    }

    /// Takes one scored envelope (see the module doc) and says what changed.
    pub fn observe(&mut self, envelope: &Envelope) -> Vec<Change> {
        let post = &envelope.post;
        let id = post.id.as_str();
        let mut changes = Vec::new();
        let t = post.created_at;
        if self.now.is_none_or(|now| t > now) {
            self.now = Some(t);
            changes.extend(self.close_quiet());
        }
        let Some(scoring) = envelope.scoring.as_ref() else {
            return changes;
        };
        let danger = scoring.danger();
        if self.member_of.contains_key(id) {
            // The same post again (redelivered, or rescored): it stays where it is, or leaves
            // when it no longer reaches the threshold.
            if danger < self.config.threshold {
                changes.extend(self.remove_post(id));
            }
            return changes;
        }
        if danger < self.config.threshold {
            return changes;
        }
        let category = scoring
            .scores
            .iter()
            .filter(|(label, _)| label.as_str() != "danger")
            .max_by(|a, b| a.1.total_cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map_or("danger", |(label, _)| label.as_str())
            .to_string();
        let fam = family(&category).to_string();
        let place = envelope.places.as_ref().and_then(|p| p.first()).cloned();
        let words = terms(&post.text);
        let member = Member {
            id: id.to_string(),
            created_at: t,
            danger,
            category,
            source: post.source.clone(),
            place,
        };
        // Every open incident that fits, best first.
        let mut fits: Vec<(f64, bool, &str)> = Vec::new();
        for (iid, inc) in &self.open {
            if inc.family != fam
                || t > inc.last_seen + self.config.window
                || t < inc.first_seen - self.config.window
            {
                continue;
            }
            let places_agree = match (&member.place, &inc.place) {
                (Some(a), Some(b)) => {
                    if a.point().distance_km(&b.point()) > self.config.radius_km {
                        continue;
                    }
                    true
                }
                _ => false,
            };
            let sim = match self.config.text {
                TextSimilarity::Profile => similarity(&words, inc),
                TextSimilarity::Jaccard => jaccard(&words, inc),
            };
            if places_agree || sim >= self.config.min_similarity {
                fits.push((f64::from(u8::from(places_agree)) + sim, places_agree, iid));
            }
        }
        // Best score; ties: the older incident (its first post earlier, then its id).
        fits.sort_by(|a, b| {
            b.0.total_cmp(&a.0).then_with(|| {
                let (x, y) = (&self.open[a.2], &self.open[b.2]);
                (x.first_seen, &x.id).cmp(&(y.first_seen, &y.id))
            })
        });
        let target = match fits.first() {
            None => {
                let inc = Incident::opened(&member, &fam, &post.text, &words);
                let iid = inc.id.clone();
                self.member_of.insert(id.to_string(), iid.clone());
                self.open.insert(iid.clone(), inc);
                self.touch(&iid);
                changes.push(Change::Opened(iid));
                return changes;
            }
            Some(&(_, _, best)) => best.to_string(),
        };
        let bridged: Vec<String> = fits[1..]
            .iter()
            .filter(|(score, agree, _)| *agree && *score - 1.0 >= self.config.min_similarity)
            .filter(|_| fits[0].1 && fits[0].0 - 1.0 >= self.config.min_similarity)
            .map(|(_, _, iid)| iid.to_string())
            .collect();
        // Merge into the oldest of those the post bridges.
        let mut group: Vec<String> = std::iter::once(target).chain(bridged).collect();
        group.sort_by(|a, b| {
            let (x, y) = (&self.open[a], &self.open[b]);
            (x.first_seen, &x.id).cmp(&(y.first_seen, &y.id))
        });
        let into = group[0].clone();
        for from in &group[1..] {
            if let Some(mut gone) = self.open.remove(from) {
                for m in &gone.members {
                    self.member_of.insert(m.id.clone(), into.clone());
                }
                if let Some(keep) = self.open.get_mut(&into) {
                    keep.absorb(&gone);
                }
                // What is left of it: a pointer to where its posts went.
                gone.members.clear();
                gone.merged_into = Some(into.clone());
                gone.close();
                self.changed.insert(gone.id.clone(), gone);
                changes.push(Change::Merged(from.clone(), into.clone()));
            }
        }
        if let Some(inc) = self.open.get_mut(&into) {
            inc.add(member, &post.text, &words);
        }
        self.member_of.insert(id.to_string(), into.clone());
        self.touch(&into);
        changes.push(Change::Grew(into));
        changes
    }

    /// Closes the incidents quiet for longer than the rule allows at the stream's time.
    fn close_quiet(&mut self) -> Vec<Change> {
        let Some(now) = self.now else {
            return Vec::new();
        };
        let quiet: Vec<String> = self
            .open
            .values()
            .filter(|i| now - i.last_seen > self.config.quiet)
            .map(|i| i.id.clone())
            .collect();
        let mut changes = Vec::new();
        for iid in quiet {
            if let Some(mut inc) = self.open.remove(&iid) {
                for m in &inc.members {
                    self.member_of.remove(&m.id);
                }
                inc.close();
                self.changed.insert(iid.clone(), inc);
                changes.push(Change::Closed(iid));
            }
        }
        changes
    }

    /// Takes post `id` out of its open incident (deleted at its source, past retention, or no
    /// longer an alert); an incident left with no post is closed.
    pub fn remove_post(&mut self, id: &str) -> Vec<Change> {
        let Some(iid) = self.member_of.remove(id) else {
            return Vec::new();
        };
        let Some(inc) = self.open.get_mut(&iid) else {
            return Vec::new();
        };
        inc.remove_post(id);
        if !inc.members.is_empty() {
            self.touch(&iid);
            return Vec::new();
        }
        match self.open.remove(&iid) {
            Some(mut inc) => {
                inc.close();
                self.changed.insert(iid.clone(), inc);
                vec![Change::Closed(iid)]
            }
            None => Vec::new(),
        }
    }
}

impl Incident {
    fn opened(member: &Member, fam: &str, text: &str, words: &BTreeSet<String>) -> Self {
        let mut inc = Incident {
            id: format!("inc-{}", member.id),
            family: fam.to_string(),
            category: member.category.clone(),
            status: Status::Open,
            merged_into: None,
            title: String::new(),
            best: member.id.clone(),
            first_post: member.id.clone(),
            first_seen: member.created_at,
            last_seen: member.created_at,
            place: None,
            bbox: None,
            sources: BTreeSet::new(),
            peak_danger: 0.0,
            members: Vec::new(),
            terms: BTreeMap::new(),
            revision: 0,
        };
        inc.add(member.clone(), text, words);
        inc
    }

    fn add(&mut self, member: Member, text: &str, words: &BTreeSet<String>) {
        let better = member.danger > self.peak_danger
            || (member.danger == self.peak_danger && member.created_at < self.first_seen);
        if better || self.title.is_empty() {
            self.title = text.chars().take(140).collect();
            self.best = member.id.clone();
        }
        for w in words {
            *self.terms.entry(w.clone()).or_default() += 1;
        }
        if self.terms.len() > PROFILE_TERMS {
            // Keep the most used words (ties: alphabetical), so the profile stays bounded.
            let mut all: Vec<(String, u32)> = std::mem::take(&mut self.terms).into_iter().collect();
            all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            all.truncate(PROFILE_TERMS);
            self.terms = all.into_iter().collect();
        }
        self.members.push(member);
        self.summarise();
    }

    fn absorb(&mut self, other: &Incident) {
        for (w, n) in &other.terms {
            *self.terms.entry(w.clone()).or_default() += n;
        }
        if other.peak_danger > self.peak_danger {
            self.title = other.title.clone();
            self.best = other.best.clone();
        }
        self.members.extend(other.members.iter().cloned());
        self.members
            .sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        self.summarise();
    }

    /// Closes it: it takes no more posts, and forgets its word profile (only open incidents
    /// need one; a closed incident keeps no word of posts that may later be deleted).
    fn close(&mut self) {
        self.status = Status::Closed;
        self.terms.clear();
        self.revision += 1;
    }

    /// Takes post `id` out (deleted at its source, or past retention): its text leaves the
    /// title with it.
    pub fn remove_post(&mut self, id: &str) {
        self.revision += 1;
        self.members.retain(|m| m.id != id);
        if self.best == id {
            // The title goes with the post; the next best post's text is not kept here, so the
            // title says so until the next post joins.
            self.title = String::from("(best post removed)");
            self.best = self
                .members
                .iter()
                .max_by(|a, b| a.danger.total_cmp(&b.danger))
                .map(|m| m.id.clone())
                .unwrap_or_default();
            self.peak_danger = 0.0;
        }
        self.summarise();
    }

    /// Recomputes what is derived from the members: times, first post, sources, peak, category,
    /// place and box.
    fn summarise(&mut self) {
        let Some(first) = self
            .members
            .iter()
            .min_by_key(|m| (m.created_at, m.id.clone()))
        else {
            return;
        };
        self.first_post = first.id.clone();
        self.first_seen = first.created_at;
        self.last_seen = self
            .members
            .iter()
            .map(|m| m.created_at)
            .max()
            .unwrap_or(self.first_seen);
        self.sources = self.members.iter().map(|m| m.source.clone()).collect();
        self.peak_danger = self.members.iter().map(|m| m.danger).fold(0.0, f32::max);
        let mut categories: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &self.members {
            *categories.entry(m.category.as_str()).or_default() += 1;
        }
        if let Some((c, _)) = categories
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        {
            self.category = c.to_string();
        }
        // The place named with the most confidence in all (ties: the earliest named).
        let mut weight: BTreeMap<String, (f32, usize, &Place)> = BTreeMap::new();
        for (i, m) in self.members.iter().enumerate() {
            if let Some(p) = &m.place {
                let key = p
                    .geonames_id
                    .map_or_else(|| format!("{:.2},{:.2}", p.lat, p.lon), |g| g.to_string());
                let e = weight.entry(key).or_insert((0.0, i, p));
                e.0 += p.confidence;
            }
        }
        self.place = weight
            .values()
            .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
            .map(|(_, _, p)| (*p).clone());
        let points: Vec<GeoPoint> = self
            .members
            .iter()
            .filter_map(|m| m.place.as_ref().map(Place::point))
            .collect();
        self.bbox = points.split_first().map(|(p0, rest)| {
            rest.iter().fold(
                BoundingBox {
                    min_lat: p0.lat,
                    min_lon: p0.lon,
                    max_lat: p0.lat,
                    max_lon: p0.lon,
                },
                |b, p| BoundingBox {
                    min_lat: b.min_lat.min(p.lat),
                    min_lon: b.min_lon.min(p.lon),
                    max_lat: b.max_lat.max(p.lat),
                    max_lon: b.max_lon.max(p.lon),
                },
            )
        });
    }

    /// Its members per interval of `secs` seconds from its first post: `(start, count)`, with
    /// the empty intervals between.
    pub fn timeline(&self, secs: i64) -> Vec<(DateTime<Utc>, usize)> {
        let secs = secs.max(60);
        let start = self.first_seen.timestamp().div_euclid(secs) * secs;
        let end = self.last_seen.timestamp().div_euclid(secs) * secs;
        let n = usize::try_from((end - start) / secs + 1)
            .unwrap_or(1)
            .min(10_000);
        let mut counts = vec![0usize; n];
        for m in &self.members {
            let i = usize::try_from((m.created_at.timestamp() - start).div_euclid(secs))
                .unwrap_or(0)
                .min(n - 1);
            counts[i] += 1;
        }
        counts
            .into_iter()
            .enumerate()
            .filter_map(|(i, c)| {
                DateTime::from_timestamp(start + i as i64 * secs, 0).map(|t| (t, c))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_record::fixtures::scored;

    fn at(minutes: i64) -> DateTime<Utc> {
        "2026-11-27T08:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(minutes)
    }

    fn post(
        n: u32,
        minutes: i64,
        text: &str,
        cat: &str,
        place: Option<(&str, f64, f64)>,
    ) -> Envelope {
        let mut e = scored(&n.to_string(), text, 0.9);
        e.post.created_at = at(minutes);
        let s = e.scoring.as_mut().unwrap();
        s.scores.insert(cat.into(), 0.8);
        s.scores.insert(
            "accident".into(),
            if cat == "accident" { 0.8 } else { 0.05 },
        );
        e.places = Some(
            place
                .into_iter()
                .map(|(name, lat, lon)| vigie_record::fixtures::place(name, lat, lon))
                .collect(),
        );
        e
    }

    const LYON: (&str, f64, f64) = ("Lyon", 45.748, 4.847);
    const VILLEURBANNE: (&str, f64, f64) = ("Villeurbanne", 45.766, 4.879);
    const MARSEILLE: (&str, f64, f64) = ("Marseille", 43.297, 5.381);

    fn run(posts: &[Envelope]) -> (Incidents, Vec<Change>) {
        let mut inc = Incidents::new(IncidentConfig::default());
        let changes = posts.iter().flat_map(|p| inc.observe(p)).collect();
        (inc, changes)
    }

    #[test]
    fn every_category_is_in_one_of_the_families() {
        for c in CATEGORIES {
            assert!(FAMILIES.contains(&family(c)), "{c}");
        }
        for f in FAMILIES {
            assert!(CATEGORIES.iter().any(|c| family(c) == f), "{f} is empty");
        }
    }

    #[test]
    fn jaccard_and_profile_compare_a_post_with_an_incident_s_words() {
        let (inc, _) = run(&[
            post(1, 0, "Incendie entrepôt Lyon fumée", "fire", None),
            post(2, 5, "Incendie entrepôt Lyon pompiers", "fire", None),
        ]);
        let incident = inc.open().next().unwrap().clone();
        let same = terms("incendie entrepot lyon");
        let other = terms("inondation rivière crue");
        // Words: incendie, entrepot, lyon, fumee, pompiers (5); the post shares 3 of them.
        assert!((jaccard(&same, &incident) - 3.0 / 5.0).abs() < 1e-9);
        assert_eq!(jaccard(&other, &incident), 0.0);
        assert_eq!(jaccard(&BTreeSet::new(), &incident), 0.0);
        // The profile: each shared word is in both posts.
        assert!((similarity(&same, &incident) - 1.0).abs() < 1e-9);
        // The rule with Jaccard joins the same posts on this easy case.
        let mut j = Incidents::new(IncidentConfig {
            text: TextSimilarity::Jaccard,
            ..IncidentConfig::default()
        });
        for p in [
            post(1, 0, "Incendie entrepôt Lyon fumée", "fire", None),
            post(2, 5, "Incendie entrepôt Lyon pompiers", "fire", None),
        ] {
            j.observe(&p);
        }
        assert_eq!(j.open().count(), 1);
    }

    #[test]
    fn posts_of_one_fire_make_one_incident_another_city_another() {
        let posts = [
            post(
                1,
                0,
                "Incendie dans un entrepôt à Lyon, fumée noire",
                "fire",
                Some(LYON),
            ),
            post(
                2,
                10,
                "Gros incendie entrepôt Villeurbanne, fumée partout",
                "fire",
                Some(VILLEURBANNE),
            ),
            post(
                3,
                20,
                "Incendie entrepôt: les pompiers luttent contre le feu",
                "fire",
                None,
            ),
            post(
                4,
                25,
                "Incendie d'un immeuble à Marseille",
                "fire",
                Some(MARSEILLE),
            ),
            post(
                5,
                30,
                "Explosion dans l'entrepôt en feu à Lyon",
                "explosion",
                Some(LYON),
            ),
            post(
                6,
                31,
                "Accident de la route à Lyon, deux voitures",
                "accident",
                Some(LYON),
            ),
        ];
        let (inc, changes) = run(&posts);
        let open: Vec<&Incident> = inc.open().collect();
        assert_eq!(open.len(), 3, "{open:#?}");
        let lyon = inc.incident_of(&posts[0].post.id.to_string()).unwrap();
        let ids: Vec<&str> = lyon.members.iter().map(|m| m.id.as_str()).collect();
        let want: Vec<String> = [0, 1, 2, 4]
            .iter()
            .map(|&i| posts[i].post.id.to_string())
            .collect();
        assert_eq!(ids, want);
        assert_eq!(lyon.place.as_ref().unwrap().name, "Lyon");
        assert_eq!(lyon.category, "fire");
        assert_eq!(lyon.first_post, posts[0].post.id.to_string());
        let b = lyon.bbox.unwrap();
        assert!(b.min_lat < b.max_lat && b.min_lon < b.max_lon);
        assert_eq!(
            changes
                .iter()
                .filter(|c| matches!(c, Change::Opened(_)))
                .count(),
            3
        );
    }

    #[test]
    fn a_replay_gives_the_same_incidents_with_the_same_ids() {
        let posts: Vec<Envelope> = (0..40)
            .map(|n| {
                let (text, place) = match n % 3 {
                    0 => ("Incendie entrepôt Lyon fumée", Some(LYON)),
                    1 => ("Incendie immeuble Marseille flammes", Some(MARSEILLE)),
                    _ => ("Incendie en cours, fumée visible", None),
                };
                post(n, i64::from(n) * 7, text, "fire", place)
            })
            .collect();
        let (a, ca) = run(&posts);
        let (b, cb) = run(&posts);
        assert_eq!(ca, cb);
        assert_eq!(a.open().collect::<Vec<_>>(), b.open().collect::<Vec<_>>());
    }

    #[test]
    fn quiet_incidents_close_and_a_later_post_opens_a_new_one() {
        let posts = [
            post(1, 0, "Incendie entrepôt Lyon", "fire", Some(LYON)),
            post(
                2,
                13 * 60,
                "Incendie entrepôt Lyon, ça recommence",
                "fire",
                Some(LYON),
            ),
        ];
        let (inc, changes) = run(&posts);
        let first = format!("inc-{}", posts[0].post.id);
        assert!(
            changes.contains(&Change::Closed(first.clone())),
            "{changes:?}"
        );
        assert_eq!(inc.open().count(), 1);
        assert_ne!(inc.open().next().unwrap().id, first);
    }

    #[test]
    fn a_post_that_bridges_two_incidents_merges_them_into_the_older() {
        let posts = [
            post(
                1,
                0,
                "Incendie entrepôt rue Garibaldi fumée noire",
                "fire",
                Some(LYON),
            ),
            post(2, 5, "Flammes immenses quartier Part-Dieu", "fire", None),
            // Names Villeurbanne (near Lyon) and repeats both incidents' words.
            post(
                3,
                9,
                "Incendie entrepôt rue Garibaldi, flammes immenses quartier Part-Dieu, fumée noire",
                "fire",
                Some(VILLEURBANNE),
            ),
        ];
        let mut inc = Incidents::new(IncidentConfig::default());
        inc.observe(&posts[0]);
        // The second has no place and other words: its own incident.
        assert_eq!(
            inc.observe(&posts[1]),
            [Change::Opened(format!("inc-{}", posts[1].post.id))]
        );
        // Give the second a place so that the third agrees with both by place and words.
        let mut second = inc
            .open
            .get(&format!("inc-{}", posts[1].post.id))
            .unwrap()
            .clone();
        second.place = posts[0].places.as_ref().unwrap().first().cloned();
        inc.open.insert(second.id.clone(), second);
        let changes = inc.observe(&posts[2]);
        let (older, younger) = (
            format!("inc-{}", posts[0].post.id),
            format!("inc-{}", posts[1].post.id),
        );
        assert!(
            changes.contains(&Change::Merged(younger.clone(), older.clone())),
            "{changes:?}"
        );
        assert_eq!(inc.open().count(), 1);
        assert_eq!(inc.open().next().unwrap().members.len(), 3);
        let written = inc.take_changed();
        let gone = written.iter().find(|i| i.id == younger).unwrap();
        assert_eq!(
            (gone.status, gone.merged_into.as_deref()),
            (Status::Closed, Some(older.as_str()))
        );
    }

    #[test]
    fn removed_posts_leave_and_an_empty_incident_closes() {
        let posts = [
            post(1, 0, "Incendie entrepôt Lyon", "fire", Some(LYON)),
            post(2, 3, "Incendie entrepôt Lyon énorme", "fire", Some(LYON)),
        ];
        let (mut inc, _) = run(&posts);
        let iid = format!("inc-{}", posts[0].post.id);
        inc.take_changed();
        assert!(inc.remove_post(&posts[0].post.id.to_string()).is_empty());
        let left = inc.open().next().unwrap();
        assert_eq!(left.members.len(), 1);
        assert_eq!(left.first_post, posts[1].post.id.to_string());
        assert_eq!(
            inc.remove_post(&posts[1].post.id.to_string()),
            [Change::Closed(iid)]
        );
        assert_eq!(inc.open().count(), 0);
        // Rescored under the threshold: the same.
        let (mut inc, _) = run(&posts[..1]);
        let mut low = posts[0].clone();
        low.scoring
            .as_mut()
            .unwrap()
            .scores
            .insert("danger".into(), 0.1);
        inc.observe(&low);
        assert_eq!(inc.open().count(), 0);
    }

    #[test]
    fn resumed_incidents_take_the_next_posts() {
        let posts = [
            post(1, 0, "Incendie entrepôt Lyon", "fire", Some(LYON)),
            post(2, 3, "Incendie entrepôt Lyon énorme", "fire", Some(LYON)),
        ];
        let (mut first, _) = run(&posts[..1]);
        let stored = first.take_changed();
        let mut resumed = Incidents::resume(IncidentConfig::default(), stored);
        assert_eq!(
            resumed.observe(&posts[1]),
            [Change::Grew(format!("inc-{}", posts[0].post.id))]
        );
        let (whole, _) = run(&posts);
        assert_eq!(
            resumed.open().next().unwrap().members,
            whole.open().next().unwrap().members
        );
    }

    #[test]
    fn the_timeline_counts_members_per_interval() {
        let posts = [
            post(1, 0, "Incendie entrepôt Lyon", "fire", Some(LYON)),
            post(2, 3, "Incendie entrepôt Lyon énorme", "fire", Some(LYON)),
            post(
                3,
                130,
                "Incendie entrepôt Lyon toujours",
                "fire",
                Some(LYON),
            ),
        ];
        let (inc, _) = run(&posts);
        let t = inc.open().next().unwrap().timeline(3600);
        assert_eq!(t.iter().map(|(_, c)| *c).collect::<Vec<_>>(), [2, 0, 1]);
    }
}
