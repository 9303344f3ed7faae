//! Place resolution: which places a post names, where they are, and how sure that is.
//!
//! ## Mentions
//! The text is cut into words. At each word, the longest run of one to four words whose folded
//! form ([`fold`]) is a gazetteer name is a *mention*, if it reads as a name: its first word is
//! capitalised or a hashtag (`#Calgary`, or `#LacMegantic` matched without spaces), it is not a
//! word of [`COMMON_WORDS`] (`Police`, `Nice day`... — unless a hashtag or after a preposition
//! of place), and it has three letters or more. Words in capitals are taken as names only when
//! the text is not shouting (most of its letters lower case).
//!
//! ## The ambiguity rule
//! A name can be many places (`Paris`: France, Texas, Kentucky...). Each candidate gets a weight
//!
//! ```text
//! w = ln(1 + population) + rank(feature) + 2 · [its country is the hint of the post's language]
//!   + 8 · [its country (or a state or province of it) is named in the post]
//!   + 3 · [it is not, but another place the post names is in that country]
//! ```
//!
//! (`rank`: 1.5 for a capital, 1 for the seat of a first-level division, 0.5 for a second).
//! The winner is the heaviest (ties: the smaller GeoNames id, so the rule is deterministic);
//! its share `p = e^w / Σ e^w'` says how clear the choice was. The *confidence* is `p` times how
//! surely the words are a place name at all: 0.95 after a preposition of place (`in`, `à`,
//! `near`, `près de`...) or for two words or more, 0.9 for a hashtag, 0.8 for a capitalised
//! word inside a sentence, 0.5 for a word that opens a sentence or is in capitals; a single word naming a place of
//! under 5,000 inhabitants, with no preposition before it, counts 0.6 of that. Places under
//! [`ResolverConfig::min_confidence`] are dropped; a post keeps its [`ResolverConfig::max_places`]
//! most confident, one per place.
//!
//! A post whose source gave coordinates gets that point first, with confidence 1, named after
//! the nearest gazetteer place.

use crate::gazetteer::{fold, squash, Entry, Gazetteer, COMMUNE_FEATURE};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use vigie_record::{Place, PlaceFound, Post};

/// Words that are also place names somewhere but are, far more often, just words (English,
/// French, Spanish, Italian, Portuguese): a single one of them is not a mention unless it is a
/// hashtag or follows a preposition of place.
pub const COMMON_WORDS: &[&str] = &[
    // English
    "a",
    "about",
    "after",
    "all",
    "also",
    "and",
    "any",
    "are",
    "as",
    "at",
    "bad",
    "bar",
    "bath",
    "be",
    "bear",
    "best",
    "big",
    "black",
    "blue",
    "boom",
    "bright",
    "but",
    "by",
    "can",
    "central",
    "city",
    "date",
    "day",
    "deal",
    "did",
    "do",
    "down",
    "early",
    "earth",
    "east",
    "energy",
    "even",
    "every",
    "fair",
    "faith",
    "fire",
    "flood",
    "for",
    "free",
    "friend",
    "friends",
    "from",
    "good",
    "grace",
    "great",
    "green",
    "had",
    "happy",
    "has",
    "have",
    "he",
    "hell",
    "help",
    "her",
    "here",
    "his",
    "home",
    "hope",
    "how",
    "i",
    "if",
    "in",
    "is",
    "it",
    "just",
    "justice",
    "king",
    "lake",
    "last",
    "life",
    "like",
    "live",
    "long",
    "love",
    "made",
    "main",
    "man",
    "many",
    "march",
    "may",
    "media",
    "mobile",
    "more",
    "most",
    "much",
    "my",
    "new",
    "news",
    "nice",
    "no",
    "north",
    "not",
    "now",
    "of",
    "office",
    "ok",
    "old",
    "on",
    "one",
    "only",
    "or",
    "orange",
    "our",
    "out",
    "over",
    "park",
    "peace",
    "people",
    "police",
    "post",
    "power",
    "pray",
    "praying",
    "prayers",
    "queen",
    "rain",
    "reading",
    "red",
    "rescue",
    "river",
    "rock",
    "safe",
    "said",
    "saint",
    "save",
    "say",
    "see",
    "she",
    "so",
    "some",
    "south",
    "spring",
    "star",
    "still",
    "storm",
    "sun",
    "support",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "they",
    "this",
    "time",
    "to",
    "today",
    "too",
    "town",
    "truth",
    "union",
    "university",
    "up",
    "us",
    "victoria",
    "video",
    "via",
    "war",
    "was",
    "watch",
    "water",
    "way",
    "we",
    "well",
    "west",
    "what",
    "when",
    "where",
    "who",
    "why",
    "will",
    "with",
    "world",
    "you",
    "your",
    "breaking",
    "update",
    "urgent",
    "alert",
    "live",
    // French
    "alerte",
    "au",
    "aux",
    "avec",
    "bon",
    "bonne",
    "ce",
    "ces",
    "dans",
    "de",
    "des",
    "du",
    "elle",
    "en",
    "est",
    "et",
    "feu",
    "il",
    "ils",
    "la",
    "le",
    "les",
    "leur",
    "mais",
    "mer",
    "mon",
    "nous",
    "on",
    "ou",
    "par",
    "pas",
    "plus",
    "pour",
    "que",
    "qui",
    "sa",
    "sans",
    "se",
    "ses",
    "son",
    "sous",
    "sur",
    "ton",
    "tous",
    "tout",
    "tres",
    "un",
    "une",
    "vous",
    "ville",
    "paix",
    "police",
    "pompiers",
    "urgence",
    "incendie",
    "explosion",
    "attentat",
    "gare",
    "place",
    "pont",
    "port",
    "saint",
    "sainte",
    "vie",
    "mort",
    "morts",
    "blesses",
    "secours",
    // Spanish, Italian, Portuguese, Tagalog
    "al",
    "ano",
    "con",
    "da",
    "del",
    "di",
    "do",
    "el",
    "ella",
    "es",
    "esta",
    "hay",
    "lo",
    "los",
    "mas",
    "muy",
    "nao",
    "para",
    "pero",
    "por",
    "se",
    "sin",
    "su",
    "todo",
    "ya",
    "che",
    "il",
    "non",
    "per",
    "sono",
    "una",
    "uno",
    "nas",
    "nos",
    "ang",
    "mga",
    "sa",
    "ng",
    "naman",
    "dios",
    "fuerza",
    "fuego",
    "terremoto",
    "sismo",
    "agua",
    "casa",
    "santa",
    "san",
    "grazie",
];

/// Prepositions of place: the word after one is read as a place name more surely.
const PREPOSITIONS: &[&str] = &[
    "in", "at", "near", "from", "around", "outside", "across", "into", "a", "à", "en", "au", "aux",
    "près", "vers", "depuis", "sur", "dans", "de", "du", "di", "da", "em", "no", "na", "sa",
    "desde", "cerca",
];

/// The country each language hints at (French-first: a French post's `Saint-Denis` is in
/// France, not La Réunion, unless the post says otherwise).
const LANGUAGE_COUNTRY: &[(&str, &str)] = &[
    ("fr", "FR"),
    ("it", "IT"),
    ("de", "DE"),
    ("es", "ES"),
    ("pt", "BR"),
    ("tl", "PH"),
    ("nl", "NL"),
];

/// Country names a post may say, in English, French, Spanish and Italian (folded), and states,
/// provinces and adjectives that usually mean a country: context for the ambiguity rule. Such
/// a name is never itself taken for a town (`Costa Rica` is a country before it is a town of
/// Brazil), except `Québec`, a city as much as a province.
const COUNTRY_NAMES: &[(&str, &str)] = &[
    ("france", "FR"),
    ("usa", "US"),
    ("us", "US"),
    ("america", "US"),
    ("etats unis", "US"),
    ("texas", "US"),
    ("colorado", "US"),
    ("california", "US"),
    ("massachusetts", "US"),
    ("canada", "CA"),
    ("quebec", "CA"),
    ("alberta", "CA"),
    ("ontario", "CA"),
    ("australia", "AU"),
    ("australie", "AU"),
    ("queensland", "AU"),
    ("philippines", "PH"),
    ("pilipinas", "PH"),
    ("italy", "IT"),
    ("italie", "IT"),
    ("italia", "IT"),
    ("spain", "ES"),
    ("espagne", "ES"),
    ("espana", "ES"),
    ("germany", "DE"),
    ("allemagne", "DE"),
    ("uk", "GB"),
    ("england", "GB"),
    ("scotland", "GB"),
    ("ecosse", "GB"),
    ("britain", "GB"),
    ("royaume uni", "GB"),
    ("brazil", "BR"),
    ("bresil", "BR"),
    ("brasil", "BR"),
    ("venezuela", "VE"),
    ("guatemala", "GT"),
    ("costa rica", "CR"),
    ("bangladesh", "BD"),
    ("belgique", "BE"),
    ("belgium", "BE"),
    ("suisse", "CH"),
    ("switzerland", "CH"),
    ("mexico", "MX"),
    ("mexique", "MX"),
    ("panama", "PA"),
    ("colombia", "CO"),
    ("colombie", "CO"),
    ("peru", "PE"),
    ("perou", "PE"),
    ("chile", "CL"),
    ("chili", "CL"),
    ("ecuador", "EC"),
    ("honduras", "HN"),
    ("nicaragua", "NI"),
    ("el salvador", "SV"),
    ("argentina", "AR"),
    ("argentine", "AR"),
    ("cuba", "CU"),
    ("haiti", "HT"),
    ("singapore", "SG"),
    ("indonesia", "ID"),
    ("malaysia", "MY"),
    ("china", "CN"),
    ("chine", "CN"),
    ("russia", "RU"),
    ("russie", "RU"),
    ("ukraine", "UA"),
    ("turkey", "TR"),
    ("turquie", "TR"),
    ("portugal", "PT"),
    ("austria", "AT"),
    ("autriche", "AT"),
    ("autrichienne", "AT"),
    ("espagnole", "ES"),
    ("espagnols", "ES"),
    ("italienne", "IT"),
    ("belge", "BE"),
    ("suisse", "CH"),
    ("valais", "CH"),
    ("luzon", "PH"),
    ("mindanao", "PH"),
    ("bohol", "PH"),
    ("new south wales", "AU"),
    ("nsw", "AU"),
    ("japan", "JP"),
    ("japon", "JP"),
    ("india", "IN"),
    ("inde", "IN"),
    ("nigeria", "NG"),
    ("kenya", "KE"),
    ("maroc", "MA"),
    ("morocco", "MA"),
    ("algerie", "DZ"),
    ("algeria", "DZ"),
    ("tunisie", "TN"),
    ("tunisia", "TN"),
    ("senegal", "SN"),
    ("reunion", "RE"),
    ("guadeloupe", "GP"),
    ("martinique", "MQ"),
];

/// How the resolver reads posts.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// Places resolved with less confidence are dropped.
    pub min_confidence: f32,
    /// Most places kept per post.
    pub max_places: usize,
    /// Words of a post looked at (a huge post costs no more than this).
    pub max_words: usize,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            min_confidence: 0.4,
            max_places: 5,
            max_words: 400,
        }
    }
}

/// Resolves the places of posts with a [`Gazetteer`].
#[derive(Debug, Clone)]
pub struct PlaceResolver {
    gazetteer: Arc<Gazetteer>,
    config: ResolverConfig,
    common: BTreeSet<&'static str>,
    countries: HashMap<&'static str, &'static str>,
    /// The same names without spaces, as hashtags write them.
    countries_squashed: BTreeSet<String>,
}

/// A word of the text.
struct Word<'a> {
    /// As written.
    text: &'a str,
    /// Folded.
    folded: String,
    hashtag: bool,
    capitalised: bool,
    upper: bool,
    opens_sentence: bool,
}

/// A run of words that names gazetteer places.
struct Mention<'a> {
    words: &'a [Word<'a>],
    candidates: Vec<&'a Entry>,
    prior: f32,
    found: PlaceFound,
    single_unled: bool,
}

impl PlaceResolver {
    /// A resolver over `gazetteer`.
    pub fn new(gazetteer: Arc<Gazetteer>, config: ResolverConfig) -> Self {
        PlaceResolver {
            gazetteer,
            config,
            common: COMMON_WORDS.iter().copied().collect(),
            countries: COUNTRY_NAMES.iter().copied().collect(),
            countries_squashed: COUNTRY_NAMES
                .iter()
                .filter(|(name, _)| *name != "quebec")
                .map(|(name, _)| squash(name))
                .collect(),
        }
    }

    /// The gazetteer it reads.
    pub fn gazetteer(&self) -> &Gazetteer {
        &self.gazetteer
    }

    /// The places of `post`: its source coordinates, then the places its text names, most
    /// confident first.
    pub fn resolve(&self, post: &Post) -> Vec<Place> {
        let mut places = Vec::new();
        if let Some(p) = post.coordinates {
            if let Some(e) = self.gazetteer.nearest(&p) {
                places.push(Place {
                    name: e.name.clone(),
                    country: e.country.clone(),
                    lat: p.lat,
                    lon: p.lon,
                    confidence: 1.0,
                    found: PlaceFound::SourceCoordinates,
                    mention: None,
                    geonames_id: geonames_id(e),
                });
            }
        }
        places.extend(self.resolve_text(&post.text, post.lang.as_deref()));
        let mut seen = BTreeSet::new();
        places.retain(|p| seen.insert(same_place(p)));
        places.truncate(self.config.max_places);
        places
    }

    /// The places `text` names, most confident first (see the module doc).
    pub fn resolve_text(&self, text: &str, lang: Option<&str>) -> Vec<Place> {
        let words = words(text, self.config.max_words);
        let mentions = self.mentions(&words);
        if mentions.is_empty() {
            return Vec::new();
        }
        // Context: countries the post names, and the language's.
        let named: BTreeSet<&str> = words
            .iter()
            .map(|w| w.folded.as_str())
            .chain(words.windows(2).filter_map(|p| {
                let two = format!("{} {}", p[0].folded, p[1].folded);
                self.countries.get_key_value(two.as_str()).map(|(k, _)| *k)
            }))
            .filter_map(|w| self.countries.get(w).copied())
            .collect();
        let hint = lang.and_then(|l| {
            let l = l.get(..2).unwrap_or(l).to_ascii_lowercase();
            LANGUAGE_COUNTRY
                .iter()
                .find(|(code, _)| *code == l)
                .map(|(_, cc)| *cc)
        });
        // First pass: each mention's candidates weighed without the other mentions.
        let base = |e: &Entry| -> f64 {
            let rank = match e.feature.as_str() {
                "PPLC" => 1.5,
                "PPLA" => 1.0,
                "PPLA2" => 0.5,
                _ => 0.0,
            };
            (1.0 + f64::from(e.population)).ln()
                + rank
                + if hint == Some(e.country.as_str()) {
                    2.0
                } else {
                    0.0
                }
                + if named.contains(e.country.as_str()) {
                    8.0
                } else {
                    0.0
                }
        };
        let first: Vec<&str> = mentions
            .iter()
            .map(|m| best(&m.candidates, base).0.country.as_str())
            .collect();
        let mut places = Vec::new();
        for (i, m) in mentions.iter().enumerate() {
            // Second pass: a country another mention's first choice is in counts as named.
            let others: BTreeSet<&str> = first
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, c)| *c)
                .collect();
            let weight = |e: &Entry| {
                base(e)
                    + if others.contains(e.country.as_str()) && !named.contains(e.country.as_str())
                    {
                        3.0
                    } else {
                        0.0
                    }
            };
            let (winner, share) = best(&m.candidates, weight);
            let mut confidence = share as f32 * m.prior;
            if m.single_unled && winner.population < 5000 {
                confidence *= 0.6;
            }
            if confidence < self.config.min_confidence {
                continue;
            }
            let mention = m.words.iter().map(|w| w.text).collect::<Vec<_>>().join(" ");
            places.push(Place {
                name: winner.name.clone(),
                country: winner.country.clone(),
                lat: winner.lat,
                lon: winner.lon,
                confidence: (confidence * 1000.0).round() / 1000.0,
                found: m.found,
                mention: Some(mention),
                geonames_id: geonames_id(winner),
            });
        }
        // Most confident first; equal ones in text order (the sort is stable); one per place.
        places.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        let mut seen = BTreeSet::new();
        places.retain(|p| seen.insert(same_place(p)));
        places
    }

    fn mentions<'a>(&'a self, words: &'a [Word<'a>]) -> Vec<Mention<'a>> {
        let shouting = {
            let (upper, lower) = words
                .iter()
                .flat_map(|w| w.text.chars())
                .filter(|c| c.is_alphabetic())
                .fold((0, 0), |(u, l), c| {
                    (
                        u + usize::from(c.is_uppercase()),
                        l + usize::from(c.is_lowercase()),
                    )
                });
            upper > lower
        };
        let mut out = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            let led = i > 0 && PREPOSITIONS.contains(&words[i - 1].folded.as_str());
            let name_like = w.hashtag || (w.capitalised && !(w.upper && shouting));
            if !name_like {
                i += 1;
                continue;
            }
            if w.hashtag {
                let squashed = squash(&w.folded);
                // A small commune (no population counted) is too weak a reading of a hashtag.
                let found: Vec<&Entry> = self
                    .gazetteer
                    .squashed(&squashed)
                    .into_iter()
                    .filter(|e| e.feature != COMMUNE_FEATURE)
                    .collect();
                if !found.is_empty()
                    && w.folded.chars().count() >= 3
                    && !self.countries_squashed.contains(&squashed)
                {
                    out.push(Mention {
                        words: &words[i..=i],
                        candidates: found,
                        prior: 0.9,
                        found: PlaceFound::Hashtag,
                        single_unled: false,
                    });
                }
                i += 1;
                continue;
            }
            let mut matched = None;
            for n in (1..=4.min(words.len() - i)).rev() {
                let run = &words[i..i + n];
                if run[1..].iter().any(|w| w.hashtag || w.opens_sentence) {
                    continue;
                }
                let key = run
                    .iter()
                    .map(|w| w.folded.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                if key.chars().filter(|c| c.is_alphabetic()).count() < 3 {
                    continue;
                }
                if n == 1 && self.common.contains(key.as_str()) && !led {
                    continue;
                }
                if key != "quebec" && self.countries.contains_key(key.as_str()) {
                    // A country's name, whole: none of its words is a town (`Costa Rica`).
                    if n > 1 {
                        matched = Some((n, Vec::new()));
                        break;
                    }
                    continue;
                }
                if n > 1 && !run.last().is_some_and(|w| w.capitalised) {
                    continue;
                }
                // A small commune is read only from a name of several parts
                // (`Breil-sur-Roya`) or one after a preposition of place (`à Mouthe`): one
                // plain word (`Loire`, `Alex`, `Costa`) is more often something else.
                let distinctive = led || key.contains(' ');
                let candidates: Vec<&Entry> = self
                    .gazetteer
                    .named(&key)
                    .into_iter()
                    .filter(|e| distinctive || e.feature != COMMUNE_FEATURE)
                    .collect();
                if !candidates.is_empty() {
                    matched = Some((n, candidates));
                    break;
                }
            }
            match matched {
                Some((n, candidates)) if candidates.is_empty() => i += n,
                Some((n, candidates)) => {
                    let prior = if led || n > 1 {
                        0.95
                    } else if w.opens_sentence || w.upper {
                        0.5
                    } else {
                        0.8
                    };
                    out.push(Mention {
                        words: &words[i..i + n],
                        candidates,
                        prior,
                        found: PlaceFound::Text,
                        // A name of several parts (`Breil-sur-Roya`) is no lone word.
                        single_unled: n == 1 && !led && !w.folded.contains(' '),
                    });
                    i += n;
                }
                None => i += 1,
            }
        }
        out
    }
}

/// The heaviest candidate (ties: the smaller GeoNames id) and its share of `e^w`.
fn best<'a>(candidates: &[&'a Entry], weight: impl Fn(&Entry) -> f64) -> (&'a Entry, f64) {
    let weights: Vec<f64> = candidates.iter().map(|e| weight(e)).collect();
    let mut top = 0;
    for i in 1..candidates.len() {
        let better = weights[i] > weights[top]
            || (weights[i] == weights[top]
                && candidates[i].geonames_id < candidates[top].geonames_id);
        if better {
            top = i;
        }
    }
    let max = weights[top];
    let sum: f64 = weights.iter().map(|w| (w - max).exp()).sum();
    (candidates[top], 1.0 / sum)
}

/// The words of `text` (at most `max`): runs of letters, digits, inner hyphens and apostrophes,
/// a `#` before one making it a hashtag.
fn words(text: &str, max: usize) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut opens_sentence = true;
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if out.len() >= max {
            break;
        }
        if !(c.is_alphanumeric() || c == '#') {
            if matches!(c, '.' | '!' | '?' | '\n' | '¡' | '¿' | ':' | '|' | '•') {
                opens_sentence = true;
            }
            continue;
        }
        let hashtag = c == '#';
        let begin = if hashtag { start + c.len_utf8() } else { start };
        let mut end = if hashtag { begin } else { start + c.len_utf8() };
        while let Some(&(i, c)) = chars.peek() {
            let inner = matches!(c, '-' | '\'' | '’')
                && text[i + c.len_utf8()..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphanumeric);
            if c.is_alphanumeric() || inner {
                end = i + c.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        let mut word = &text[begin..end];
        // An English possessive is not part of the name (`Manila's`, `#Calgary's`).
        for suffix in ["'s", "’s"] {
            if let Some(stem) = word.strip_suffix(suffix) {
                word = stem;
            }
        }
        if word.is_empty() {
            continue;
        }
        // A URL or an @mention is not prose: skip it whole.
        if let Some(&(_, next)) = chars.peek() {
            if (next == ':' && text[end..].starts_with("://")) || next == '@' {
                while chars.peek().is_some_and(|&(_, c)| !c.is_whitespace()) {
                    chars.next();
                }
                continue;
            }
        }
        if start > 0 && text[..start].ends_with('@') {
            continue;
        }
        // A French elided preposition is a word of its own (`près d'Arras`: `de`, `Arras`);
        // an elided article stays in the name (`L'Isle-d'Abeau`).
        if !hashtag {
            for (elided, preposition) in [
                ("d'", "de"),
                ("d’", "de"),
                ("D'", "de"),
                ("D’", "de"),
                ("qu'", "que"),
                ("qu’", "que"),
            ] {
                if let Some(rest) = word.strip_prefix(elided) {
                    if rest.chars().next().is_some_and(char::is_uppercase) {
                        out.push(Word {
                            text: &word[..elided.len()],
                            folded: preposition.to_string(),
                            hashtag: false,
                            capitalised: false,
                            upper: false,
                            opens_sentence,
                        });
                        opens_sentence = false;
                        word = rest;
                    }
                    break;
                }
            }
        }
        let first = word.chars().next().unwrap_or(' ');
        let letters = word.chars().filter(|c| c.is_alphabetic());
        let upper = word.chars().count() > 1 && letters.clone().all(char::is_uppercase);
        out.push(Word {
            text: word,
            folded: fold(word),
            hashtag,
            capitalised: first.is_uppercase(),
            upper,
            opens_sentence,
        });
        opens_sentence = false;
    }
    out
}

/// The GeoNames id of an entry, if it has one (an added commune has none: see
/// [`crate::gazetteer::COMMUNE_ID_BASE`]).
fn geonames_id(e: &Entry) -> Option<u32> {
    (e.geonames_id < crate::gazetteer::COMMUNE_ID_BASE).then_some(e.geonames_id)
}

/// What tells two resolved places apart: their name and country (a post that names a place
/// and was sent from it lists it once, from its coordinates).
fn same_place(p: &Place) -> (String, String) {
    (p.name.clone(), p.country.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gazetteer::tests::entry;

    fn resolver() -> PlaceResolver {
        let mut capital = entry(2988507, "Paris", "FR", 2138551, 48.85341, 2.3488);
        capital.feature = "PPLC".into();
        let g = Gazetteer::from_entries(vec![
            capital,
            entry(4717560, "Paris", "US", 24782, 33.66094, -95.55551),
            entry(6032673, "Lac-Mégantic", "CA", 4658, 45.58338, -70.88234),
            entry(2990440, "Nice", "FR", 338620, 43.70313, 7.26608),
            entry(2980916, "Saint-Denis", "FR", 96128, 48.93564, 2.35387),
            entry(935264, "Saint-Denis", "RE", 137195, -20.88231, 55.4504),
            entry(4930956, "Boston", "US", 667137, 42.35843, -71.05977),
            entry(2655138, "Boston", "GB", 41340, 52.97633, -0.02664),
            entry(5913490, "Calgary", "CA", 1019942, 51.05011, -114.08529),
            entry(4688, "West", "US", 2807, 31.80, -97.09),
            entry(3000, "Police", "PL", 1500, 53.55, 14.57),
            entry(3001, "Richmond", "GB", 20000, 51.46, -0.30),
            entry(3002, "Richmond", "CA", 10000, 49.17, -123.13),
        ]);
        PlaceResolver::new(Arc::new(g), ResolverConfig::default())
    }

    #[test]
    fn small_communes_need_a_preposition_or_a_name_of_several_parts() {
        let commune = |i: u32, name: &str, lat: f64, lon: f64| {
            let mut e = entry(
                crate::gazetteer::COMMUNE_ID_BASE + i,
                name,
                "FR",
                0,
                lat,
                lon,
            );
            e.feature = COMMUNE_FEATURE.into();
            e
        };
        let arras = entry(3036784, "Arras", "FR", 41322, 50.29, 2.78);
        let g = Gazetteer::from_entries(vec![
            arras,
            commune(1, "Loire", 45.5, 4.0),
            commune(2, "Costa", 42.6, 9.0),
            commune(3, "Mouthe", 46.71, 6.19),
            commune(4, "Breil-sur-Roya", 43.94, 7.51),
        ]);
        let r = PlaceResolver::new(Arc::new(g), ResolverConfig::default());
        // One plain word: not a small commune.
        assert!(names(&r, "Crue de la Loire cette nuit", "fr").is_empty());
        // A country's name, whole, is never read word by word.
        assert!(names(&r, "Séisme au Costa Rica, alerte tsunami", "fr").is_empty());
        // After a preposition of place, or a name of several parts: read.
        assert_eq!(
            names(&r, "Il fait -30 à Mouthe ce matin", "fr"),
            [("Mouthe".to_string(), "FR".to_string())]
        );
        assert_eq!(
            names(&r, "Crue : Breil-sur-Roya isolée", "fr"),
            [("Breil-sur-Roya".to_string(), "FR".to_string())]
        );
        // An elided preposition is one: `près d'Arras`.
        assert_eq!(
            names(&r, "Tornade près d'Arras cette nuit", "fr"),
            [("Arras".to_string(), "FR".to_string())]
        );
        // Added communes have no GeoNames id.
        let p = r.resolve_text("Il fait -30 à Mouthe", Some("fr"));
        assert_eq!(p[0].geonames_id, None);
    }

    fn names(r: &PlaceResolver, text: &str, lang: &str) -> Vec<(String, String)> {
        r.resolve_text(text, Some(lang))
            .into_iter()
            .map(|p| (p.name, p.country))
            .collect()
    }

    #[test]
    fn population_decides_unless_the_post_says_otherwise() {
        let r = resolver();
        assert_eq!(
            names(&r, "Huge fire reported in Paris tonight", "en"),
            [("Paris".into(), "FR".into())]
        );
        assert_eq!(
            names(&r, "Tornado warning for Paris, Texas right now", "en"),
            [("Paris".into(), "US".into())]
        );
        // French first: Saint-Denis (93) over Saint-Denis de La Réunion, which is larger...
        assert_eq!(
            names(&r, "Explosion à Saint-Denis ce matin", "fr"),
            [("Saint-Denis".into(), "FR".into())]
        );
        // ... unless the post names La Réunion.
        assert_eq!(
            names(&r, "Cyclone : inondations à Saint-Denis, La Réunion", "fr"),
            [("Saint-Denis".into(), "RE".into())]
        );
    }

    #[test]
    fn other_places_of_the_post_settle_a_small_name() {
        let r = resolver();
        // Alone, the larger Richmond (England); beside Calgary, the Canadian one.
        assert_eq!(
            names(&r, "Flooding in Richmond", "en"),
            [("Richmond".into(), "GB".into())]
        );
        let got = names(&r, "Flooding from Calgary to Richmond tonight", "en");
        assert!(got.contains(&("Richmond".into(), "CA".into())), "{got:?}");
    }

    #[test]
    fn words_that_are_only_words_are_not_places() {
        let r = resolver();
        assert!(names(&r, "Police say a nice day ahead", "en").is_empty());
        assert!(names(&r, "paris sportifs en ligne", "fr").is_empty());
        assert!(names(&r, "Nice weather today", "en").is_empty());
        assert!(names(&r, "Visit https://Paris.example/Boston and @Boston", "en").is_empty());
        // A word in capitals in a shouting post is not a name.
        assert!(names(&r, "FIRE FIRE GET OUT OF THE BUILDING NOW", "en").is_empty());
    }

    #[test]
    fn hashtags_and_accents_and_hyphens_match() {
        let r = resolver();
        let got = r.resolve_text("Prayers for #LacMegantic tonight", Some("en"));
        assert_eq!(got[0].name, "Lac-Mégantic");
        assert_eq!(got[0].found, PlaceFound::Hashtag);
        let got = r.resolve_text("Train derailment in Lac Megantic", Some("en"));
        assert_eq!(got[0].mention.as_deref(), Some("Lac Megantic"));
        assert!(got[0].confidence > 0.9, "{got:?}");
        let got = names(&r, "Paris's metro is flooded", "en");
        assert_eq!(got, [("Paris".into(), "FR".into())]);
        let got = names(&r, "Explosion à Nice et à Paris", "fr");
        assert_eq!(got.len(), 2, "{got:?}");
    }

    #[test]
    fn a_small_place_alone_is_less_sure_than_after_a_preposition() {
        let r = resolver();
        let led = r.resolve_text("Explosion at West this evening", Some("en"));
        let alone = r.resolve_text("Big news: the West Fertilizer story", Some("en"));
        assert_eq!(led[0].name, "West");
        assert!(
            alone.iter().all(|p| p.confidence < led[0].confidence),
            "{alone:?}"
        );
    }

    #[test]
    fn source_coordinates_come_first_named_after_the_nearest_place() {
        let r = resolver();
        let mut post = vigie_record::fixtures::envelope("1", "Smoke over Boston").post;
        post.coordinates = vigie_record::GeoPoint::new(48.86, 2.34);
        let got = r.resolve(&post);
        assert_eq!(got[0].found, PlaceFound::SourceCoordinates);
        assert_eq!(got[0].name, "Paris");
        assert_eq!(got[0].confidence, 1.0);
        assert_eq!(got[1].name, "Boston");
    }

    #[test]
    fn hostile_texts_resolve_without_panic_and_within_bounds() {
        let r = resolver();
        let long = "Paris ".repeat(100_000);
        let got = r.resolve_text(&long, Some("en"));
        assert_eq!(got.len(), 1);
        for text in [
            "",
            "#",
            "##",
            "#-",
            "é",
            "Paris-",
            "-Paris",
            "'Paris'",
            "\u{0301}Paris",
            "a\u{200b}b",
            "🔥#Paris🔥",
            "@",
            "http://",
            "Saint-",
        ] {
            let _ = r.resolve_text(text, None);
            let _ = r.resolve_text(text, Some("x"));
        }
    }
}
