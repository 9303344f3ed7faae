//! Near-duplicate groups: reposts and copies of one text collapse into one search hit.
//!
//! ## Signature
//! Each post's text is reduced, once, at index time, to its set of words (tantivy's simple
//! tokenizer, lower-cased, accents folded, words of one letter dropped) and a 64-value MinHash
//! of that set. The MinHash is cut into [`BANDS`] bands of two values; each band is indexed
//! (`dup_band`), so posts sharing a band are found by a term lookup (locality-sensitive
//! hashing). A candidate joins a group only if the exact Jaccard similarity of the two word sets
//! is at least [`SIMILARITY`], checked on the stored word sets.
//!
//! Why not SimHash: on `fixtures/sample-stream.jsonl` the reposts of the Gard/Hérault flood
//! warning are paraphrased ("RT @…", "Je relaie…", a sentence added or cut). Their 64-bit SimHash
//! distances (7 to 15 bits over words) overlap those of unrelated posts (from 4 bits), so no
//! SimHash threshold separates them; their word-set Jaccard (0.47 and more to their nearest
//! copy) is clear of every unrelated pair (0.36 at most).
//!
//! ## Groups
//! A post joins the group of its most similar earlier post (single link); a post like no
//! earlier one starts a group named by its own id. The group is fixed at index time (field
//! `group`) and kept when a post is upserted again (its old version is its most similar post).
//! The cost per post is bounded: at most [`MAX_CANDIDATES`] candidates are checked.

use std::collections::BTreeSet;
use tantivy::tokenizer::{AsciiFoldingFilter, LowerCaser, SimpleTokenizer, TextAnalyzer};

/// MinHash values per post.
pub const HASHES: usize = 64;
/// Bands of the MinHash indexed for candidate lookup (two values each).
pub const BANDS: usize = HASHES / 2;
/// Least Jaccard similarity of word sets for two posts to be copies.
pub const SIMILARITY: f64 = 0.4;
/// Most candidates checked per post.
pub const MAX_CANDIDATES: usize = 16;

/// FNV-1a, 64 bits: stable across builds and platforms.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The word set of `text`.
pub fn words(text: &str) -> BTreeSet<String> {
    let mut analyser = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build();
    let mut stream = analyser.token_stream(text);
    let mut set = BTreeSet::new();
    while let Some(token) = stream.next() {
        if token.text.chars().count() > 1 {
            set.insert(token.text.clone());
        }
    }
    set
}

/// The band keys of a word set (none for an empty one).
pub fn bands(words: &BTreeSet<String>) -> Vec<u64> {
    if words.is_empty() {
        return Vec::new();
    }
    let hashes: Vec<u64> = words.iter().map(|w| fnv1a(w.as_bytes())).collect();
    let signature: Vec<u64> = (0..HASHES as u64)
        .map(|i| {
            let seed = splitmix(i);
            hashes
                .iter()
                .map(|h| splitmix(h ^ seed))
                .min()
                .unwrap_or(u64::MAX)
        })
        .collect();
    signature
        .chunks(2)
        .enumerate()
        .map(|(band, pair)| splitmix(splitmix(band as u64 ^ pair[0]) ^ pair[1]))
        .collect()
}

/// Jaccard similarity of two word sets.
pub fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let shared = a.intersection(b).count();
    let union = a.len() + b.len() - shared;
    if union == 0 {
        0.0
    } else {
        shared as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_share_bands_and_unrelated_texts_do_not_match() {
        let a = words("VIGILANCE ROUGE pluie-inondation pour le Gard et l'Hérault. Ne prenez pas votre véhicule.");
        let b = words("RT @x : Vigilance rouge pluie-inondation pour le Gard et l'Herault. Ne prenez pas votre vehicule !");
        let c = words("Lovely sunset over the Saône tonight");
        assert!(jaccard(&a, &b) >= SIMILARITY, "{}", jaccard(&a, &b));
        assert!(jaccard(&a, &c) < 0.1);
        let (ba, bb, bc) = (bands(&a), bands(&b), bands(&c));
        assert_eq!(ba.len(), BANDS);
        assert!(ba.iter().any(|x| bb.contains(x)));
        assert!(!ba.iter().any(|x| bc.contains(x)));
        assert_eq!(bands(&a), ba, "deterministic");
        assert!(bands(&words("")).is_empty());
    }
}

#[cfg(test)]
mod fixture_tests {
    use crate::{PostIndex, SearchRequest, Sort};
    use std::collections::BTreeSet;
    use vigie_record::fixtures::envelope;
    use vigie_record::{Envelope, VigieId};

    /// The posts of `fixtures/sample-stream.jsonl`, in stream order.
    fn sample() -> Vec<Envelope> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/sample-stream.jsonl"
        );
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                let mut e = envelope(&s("id"), &s("text"));
                e.post.source = s("source");
                e.post.id = VigieId::derive(&s("source"), &s("id"));
                e.post.lang = Some(s("lang"));
                e.post.created_at = s("created_at").parse().unwrap();
                e
            })
            .collect()
    }

    #[test]
    fn the_reposted_flood_warning_collapses_into_one_hit_and_paging_shows_each_group_once() {
        let posts = sample();
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(dir.path()).unwrap();
        let mut w = index.writer().unwrap();
        // Half committed before the rest, so copies are found both in the index and pending.
        for (i, p) in posts.iter().enumerate() {
            w.upsert(p).unwrap();
            if i == posts.len() / 2 {
                w.commit(None).unwrap();
            }
        }
        w.commit(None).unwrap();
        let id = |source: &str, native: &str| VigieId::derive(source, native).to_string();
        let warning = id("rss", "agh-20261127-573009");
        let copies: BTreeSet<String> = [
            warning.clone(),
            id("mastodon", "117686913268563952"),
            id("mastodon", "117687008140145057"),
            id("reddit", "t3_1p4lykt"),
        ]
        .into();
        let group = index
            .group_of(&id("mastodon", "117686913268563952"))
            .unwrap()
            .unwrap();
        assert_eq!(group.id, warning, "named by its first post");
        let members: BTreeSet<String> = group.members.iter().map(|m| m.id.clone()).collect();
        assert!(members.is_superset(&copies), "{members:?}");
        // The six French copies (rss, the RT, bluesky, reddit, "Je relaie", the radio); the
        // English translation is not a copy of the text.
        assert_eq!(members.len(), 6, "{members:?}");
        assert_eq!(group.members[0].id, warning, "earliest first");

        let all = |collapse| {
            let mut request = SearchRequest {
                query: "*".into(),
                limit: 7,
                sort: Sort::Time,
                collapse,
                ..SearchRequest::default()
            };
            let mut hits = Vec::new();
            loop {
                let page = index.search_page(&request).unwrap();
                hits.extend(page.hits);
                match page.next {
                    Some(c) => request.cursor = Some(c),
                    None => return hits,
                }
            }
        };
        let every = all(false);
        assert_eq!(every.len(), posts.len());
        let collapsed = all(true);
        let groups: Vec<&str> = collapsed.iter().map(|h| h.group.as_str()).collect();
        let unique: BTreeSet<&str> = groups.iter().copied().collect();
        assert_eq!(groups.len(), unique.len(), "each group once");
        let expected: BTreeSet<&str> = every.iter().map(|h| h.group.as_str()).collect();
        assert_eq!(unique, expected, "every group");
        let hit = collapsed.iter().find(|h| h.group == warning).unwrap();
        assert_eq!(hit.copies, members.len() as u64);
        assert_eq!(hit.first_seen, group.members[0].created_at);
        assert_eq!(hit.sources, ["bluesky", "mastodon", "reddit", "rss"]);
        // Newest first: the group is shown by its latest copy.
        assert_eq!(hit.id, group.members.last().unwrap().id);
    }
}
