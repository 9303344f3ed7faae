//! The tantivy schema of a post document, and the text analysers it names.
//!
//! The post text is analysed by language: a post whose `lang` is French (`fr`, `fr-CA`...) is
//! indexed in `text_fr` (lower-cased, French Snowball stemming, then accents folded), every other
//! post in `text_en` (the same with English stemming). Queries are parsed against both fields,
//! each with its own analyser, so `incendies` finds a French post saying `incendie` and `fires`
//! an English one saying `fire`.

use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, Schema, TextFieldIndexing,
    TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    TextAnalyzer,
};
use tantivy::Index;

/// Name of the English analyser.
pub(crate) const EN: &str = "vigie_en";
/// Name of the French analyser.
pub(crate) const FR: &str = "vigie_fr";

/// A category is recorded in the `category` field when its score reaches this.
pub const CATEGORY_THRESHOLD: f32 = 0.5;

/// Handles of the schema's fields.
#[derive(Clone, Copy)]
pub(crate) struct Fields {
    /// Vigie id (exact term), for upserts and lookups.
    pub id: Field,
    /// Post text of posts not in French, English analyser.
    pub text_en: Field,
    /// Post text of posts in French, French analyser.
    pub text_fr: Field,
    /// Source kind, exact term.
    pub source: Field,
    /// Language code, exact term.
    pub lang: Field,
    /// Creation time, for range filters, sorting, histograms and retention.
    pub created_at: Field,
    /// When Vigie collected the post (its provenance's `fetched_at`): what retention counts from.
    pub fetched_at: Field,
    /// The `danger` score, for sorting and thresholds.
    pub danger: Field,
    /// Every label's score, a JSON object of fast numbers (`scores.fire`), for `min_score`.
    pub scores: Field,
    /// The categories (labels other than `danger`) scoring at least [`CATEGORY_THRESHOLD`].
    pub category: Field,
    /// The whole envelope as JSON (stored only).
    pub envelope: Field,
    /// The near-duplicate group: the id of its first post (see [`crate::near_dup`]).
    pub group: Field,
    /// A 64-bit hash of `group`, to collapse hits without reading strings.
    pub group_key: Field,
    /// The MinHash band keys of the text, for finding copies.
    pub dup_band: Field,
    /// The text's word set, space-separated (stored only), to check candidate copies.
    pub dup_words: Field,
    /// [`DELETION`] on the deletion record of a deleted post (see [`crate::deletion`]), absent
    /// on posts: searches exclude it.
    pub kind: Field,
    /// The Vigie id of the deleted post, on its deletion record (exact term).
    pub deleted_id: Field,
    /// The deletion record as JSON (stored only).
    pub deletion: Field,
    /// The quadtree cell keys of the post's places (`vigie_record::geo::cell_keys`), for
    /// `near` filters (on an incident: those of its posts' places).
    pub geo_cell: Field,
    /// An incident's id, on its document (see [`crate::incidents`]).
    pub incident_id: Field,
    /// The Vigie ids of an incident's posts (exact terms).
    pub incident_member: Field,
    /// An incident's status, category and family (exact terms: `open`, `fire`,
    /// `fire_explosion`).
    pub incident_tag: Field,
    /// When an incident's last post was made, for order and `since`.
    pub incident_last: Field,
    /// The incident as JSON (stored only).
    pub incident: Field,
    /// When the writer last wrote an incident (its commit's time): what alert dispatchers
    /// read to find the incidents that changed.
    pub incident_changed: Field,
}

/// The `kind` of an incident document.
pub(crate) const INCIDENT: &str = "incident";

/// The `kind` of a deletion record.
pub(crate) const DELETION: &str = "deletion";

fn analysed(tokenizer: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

pub(crate) fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let date = DateOptions::from(INDEXED)
        .set_stored()
        .set_fast()
        .set_precision(DateTimePrecision::Seconds);
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED | FAST),
        text_en: b.add_text_field("text_en", analysed(EN)),
        text_fr: b.add_text_field("text_fr", analysed(FR)),
        source: b.add_text_field("source", STRING | FAST),
        lang: b.add_text_field("lang", STRING | FAST),
        created_at: b.add_date_field("created_at", date.clone()),
        danger: b.add_f64_field("danger", INDEXED | FAST),
        scores: b.add_json_field("scores", FAST),
        category: b.add_text_field("category", STRING | FAST),
        envelope: b.add_text_field("envelope", STORED),
        group: b.add_text_field("group", STRING | STORED | FAST),
        group_key: b.add_u64_field("group_key", FAST),
        dup_band: b.add_u64_field("dup_band", INDEXED),
        dup_words: b.add_text_field("dup_words", STORED),
        kind: b.add_text_field("kind", STRING),
        deleted_id: b.add_text_field("deleted_id", STRING | STORED),
        deletion: b.add_text_field("deletion", STORED),
        fetched_at: b.add_date_field("fetched_at", date),
        geo_cell: b.add_u64_field("geo_cell", INDEXED),
        incident_id: b.add_text_field("incident_id", STRING),
        incident_member: b.add_text_field("incident_member", STRING),
        incident_tag: b.add_text_field("incident_tag", STRING),
        incident_last: b.add_date_field(
            "incident_last",
            DateOptions::from(INDEXED)
                .set_fast()
                .set_precision(DateTimePrecision::Seconds),
        ),
        incident: b.add_text_field("incident", STORED),
        incident_changed: b.add_date_field(
            "incident_changed",
            DateOptions::from(INDEXED)
                .set_fast()
                .set_stored()
                .set_precision(DateTimePrecision::Microseconds),
        ),
    };
    (b.build(), fields)
}

fn analyser(language: Language) -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(language))
        .filter(AsciiFoldingFilter)
        .build()
}

/// Registers the analysers the schema names on `index` (needed at every open).
pub(crate) fn register_analysers(index: &Index) {
    index.tokenizers().register(EN, analyser(Language::English));
    index.tokenizers().register(FR, analyser(Language::French));
}

/// Whether a post in `lang` is indexed with the French analyser.
pub(crate) fn is_french(lang: Option<&str>) -> bool {
    lang.is_some_and(|l| {
        let l = l.to_ascii_lowercase();
        l == "fr" || l.starts_with("fr-") || l.starts_with("fr_")
    })
}
