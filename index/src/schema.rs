//! The tantivy schema of a post document.

use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, Schema, FAST, INDEXED, STORED, STRING, TEXT,
};

/// Handles of the schema's fields.
#[derive(Clone, Copy)]
pub(crate) struct Fields {
    /// Vigie id (exact term), for upserts and lookups.
    pub id: Field,
    /// Post text, tokenised for full-text search.
    pub text: Field,
    /// Source kind, exact term.
    pub source: Field,
    /// Language code, exact term.
    pub lang: Field,
    /// Creation time, for range filters and sorting.
    pub created_at: Field,
    /// The `danger` score, for sorting and thresholds.
    pub danger: Field,
    /// The whole envelope as JSON (stored only).
    pub envelope: Field,
}

pub(crate) fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let date = DateOptions::from(INDEXED)
        .set_stored()
        .set_fast()
        .set_precision(DateTimePrecision::Seconds);
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED),
        text: b.add_text_field("text", TEXT),
        source: b.add_text_field("source", STRING | FAST),
        lang: b.add_text_field("lang", STRING | FAST),
        created_at: b.add_date_field("created_at", date),
        danger: b.add_f64_field("danger", INDEXED | FAST),
        envelope: b.add_text_field("envelope", STORED),
    };
    (b.build(), fields)
}
