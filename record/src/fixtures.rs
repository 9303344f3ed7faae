//! Ready-made envelopes for tests (feature `fixtures`).

use crate::{content_sha256, Envelope, Ingestor, Post, Provenance, Tombstone, VigieId};

/// An unscored envelope of a Mastodon post `native_id` saying `text`, with full provenance.
pub fn envelope(native_id: &str, text: &str) -> Envelope {
    Envelope {
        post: Post {
            id: VigieId::derive("mastodon", native_id),
            source: "mastodon".into(),
            native_id: native_id.into(),
            author: "ps:00aa".into(),
            text: text.into(),
            lang: Some("en".into()),
            created_at: "2026-11-27T08:00:00Z".parse().expect("valid time"),
            url: Some(format!("https://mamot.fr/@someone/{native_id}")),
            coordinates: None,
        },
        provenance: Provenance {
            fetched_at: "2026-11-27T08:00:03Z".parse().expect("valid time"),
            fetch_url: "https://mamot.fr/api/v1/timelines/public?local=true".into(),
            http_status: Some(200),
            ingestor: Ingestor {
                name: "mastodon".into(),
                version: "0.1.0".into(),
            },
            content_sha256: content_sha256(text.as_bytes()),
            matched: Some("timeline:public".into()),
        },
        kafka: None,
        scoring: None,
        places: None,
    }
}

/// The same, scored `danger` by model `model`.
pub fn scored(native_id: &str, text: &str, danger: f32) -> Envelope {
    let mut e = envelope(native_id, text);
    e.scoring = Some(crate::Scoring {
        model: "test-model".into(),
        runtime: None,
        scored_at: "2026-11-27T08:00:04Z".parse().expect("valid time"),
        state: crate::ScoreState::Scored,
        reason: None,
        scores: [("danger".to_string(), danger)].into(),
        explanation: Vec::new(),
    });
    e
}

/// The deletion of Mastodon post `native_id`, reported at `deleted_at` (RFC 3339).
pub fn tombstone(native_id: &str, deleted_at: &str) -> Tombstone {
    let event = format!("{{\"event\":\"delete\",\"payload\":\"{native_id}\"}}");
    Tombstone {
        id: VigieId::derive("mastodon", native_id),
        source: "mastodon".into(),
        native_id: native_id.into(),
        deleted_at: deleted_at.parse().expect("valid time"),
        provenance: Provenance {
            fetched_at: deleted_at.parse().expect("valid time"),
            fetch_url: "wss://mamot.fr/api/v1/streaming?stream=public".into(),
            http_status: None,
            ingestor: Ingestor {
                name: "mastodon".into(),
                version: "0.1.0".into(),
            },
            content_sha256: content_sha256(event.as_bytes()),
            matched: Some("timeline:public".into()),
        },
    }
}

/// Cases a fuzz test (proptest) runs: `VIGIE_FUZZ_CASES` when it is set to a number (`make
/// check`, the fast lane, runs fewer), else `default` (`make test`).
pub fn fuzz_cases(default: u32) -> u32 {
    std::env::var("VIGIE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A place in France named `name` at `lat`, `lon`, found in the text with confidence 0.9.
pub fn place(name: &str, lat: f64, lon: f64) -> crate::Place {
    crate::Place {
        name: name.into(),
        country: "FR".into(),
        lat,
        lon,
        confidence: 0.9,
        found: crate::PlaceFound::Text,
        mention: Some(name.into()),
        geonames_id: None,
    }
}
