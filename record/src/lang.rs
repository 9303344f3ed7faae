//! Post languages as ISO 639-1 codes: the source's own, normalised, or detected (whatlang).
//!
//! A language the source gives (`en`, `pt-BR`, `fr_FR`) is kept, reduced to its primary
//! subtag in lower case. When the source gives none, the text (links, mentions and pseudonyms
//! left out) is run through whatlang:
//! 1. a guess among all of whatlang's 69 languages is kept when whatlang deems it reliable;
//! 2. else, as short posts rarely reach that bar, a guess among the languages Vigie sees most
//!    ([`COMMON`]) is kept when its confidence is at least [`MIN_CONFIDENCE`];
//! 3. else the post has no language rather than a wrong one.

/// The languages a short post is most likely in, for the second guess.
pub const COMMON: &[whatlang::Lang] = &[
    whatlang::Lang::Eng,
    whatlang::Lang::Fra,
    whatlang::Lang::Deu,
    whatlang::Lang::Spa,
    whatlang::Lang::Ita,
    whatlang::Lang::Por,
    whatlang::Lang::Nld,
];

/// The confidence a guess among [`COMMON`] languages needs.
pub const MIN_CONFIDENCE: f64 = 0.5;

/// whatlang's ISO 639-3 codes and their ISO 639-1 equivalents.
const ISO_639_3_TO_1: &[(&str, &str)] = &[
    ("afr", "af"),
    ("aka", "ak"),
    ("amh", "am"),
    ("ara", "ar"),
    ("aze", "az"),
    ("bel", "be"),
    ("ben", "bn"),
    ("bul", "bg"),
    ("cat", "ca"),
    ("ces", "cs"),
    ("cmn", "zh"),
    ("cym", "cy"),
    ("dan", "da"),
    ("deu", "de"),
    ("ell", "el"),
    ("eng", "en"),
    ("epo", "eo"),
    ("est", "et"),
    ("fin", "fi"),
    ("fra", "fr"),
    ("guj", "gu"),
    ("heb", "he"),
    ("hin", "hi"),
    ("hrv", "hr"),
    ("hun", "hu"),
    ("hye", "hy"),
    ("ind", "id"),
    ("ita", "it"),
    ("jav", "jv"),
    ("jpn", "ja"),
    ("kan", "kn"),
    ("kat", "ka"),
    ("khm", "km"),
    ("kor", "ko"),
    ("lat", "la"),
    ("lav", "lv"),
    ("lit", "lt"),
    ("mal", "ml"),
    ("mar", "mr"),
    ("mkd", "mk"),
    ("mya", "my"),
    ("nep", "ne"),
    ("nld", "nl"),
    ("nob", "nb"),
    ("ori", "or"),
    ("pan", "pa"),
    ("pes", "fa"),
    ("pol", "pl"),
    ("por", "pt"),
    ("ron", "ro"),
    ("rus", "ru"),
    ("sin", "si"),
    ("slk", "sk"),
    ("slv", "sl"),
    ("sna", "sn"),
    ("spa", "es"),
    ("srp", "sr"),
    ("swe", "sv"),
    ("tam", "ta"),
    ("tel", "te"),
    ("tgl", "tl"),
    ("tha", "th"),
    ("tuk", "tk"),
    ("tur", "tr"),
    ("ukr", "uk"),
    ("urd", "ur"),
    ("uzb", "uz"),
    ("vie", "vi"),
    ("yid", "yi"),
    ("zul", "zu"),
];

/// A language tag from a source, reduced to its primary subtag (`pt-BR` -> `pt`), or `None`
/// when it is empty or not a language code.
pub fn normalise(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    let ok = (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_lowercase());
    ok.then_some(primary)
}

/// The language whatlang finds reliably in `text`, as ISO 639-1. Links, mentions and
/// pseudonyms are left out first: they are not words of any language.
pub fn detect(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| {
            !(w.contains("://")
                || w.starts_with('@')
                || w.starts_with("u/")
                || w.starts_with("/u/")
                || w.contains("ps:"))
        })
        .collect();
    let text = words.join(" ");
    let info = match whatlang::detect(&text) {
        Some(info) if info.is_reliable() => info,
        _ => whatlang::Detector::with_allowlist(COMMON.to_vec())
            .detect(&text)
            .filter(|info| info.confidence() >= MIN_CONFIDENCE)?,
    };
    let code = info.lang().code();
    ISO_639_3_TO_1
        .iter()
        .find(|(three, _)| *three == code)
        .map(|(_, two)| (*two).to_string())
}

/// The source's language when it gave one, else the detected one.
pub fn resolve(given: Option<&str>, text: &str) -> Option<String> {
    given.and_then(normalise).or_else(|| detect(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_languages_are_normalised() {
        assert_eq!(normalise("pt-BR").as_deref(), Some("pt"));
        assert_eq!(normalise("FR_fr").as_deref(), Some("fr"));
        assert_eq!(normalise(""), None);
        assert_eq!(normalise("english"), None);
        assert_eq!(
            resolve(Some("de"), "This text is English").as_deref(),
            Some("de")
        );
    }

    #[test]
    fn detects_when_the_source_gives_none() {
        assert_eq!(
            detect("Huge fire at the warehouse near the port, firefighters are evacuating the whole street right now").as_deref(),
            Some("en")
        );
        assert_eq!(
            detect("Un incendie ravage un entrepôt du port, les pompiers évacuent toute la rue et demandent de fermer les fenêtres").as_deref(),
            Some("fr")
        );
        assert_eq!(
            detect("Vu depuis Gerland, ça brûle fort. Merci u/ps:4f1c2a9e0b7d3c5a8e6f1b2c3d4e5f60 pour l'alerte https://www.reddit.com/r/lyon").as_deref(),
            Some("fr")
        );
        // A language outside the common ones, said plainly enough.
        assert_eq!(
            detect(
                "Pożar magazynu w porcie, strażacy ewakuują całą ulicę i proszą o zamknięcie okien"
            )
            .as_deref(),
            Some("pl")
        );
        // Too little text to tell: no language rather than a guess.
        assert_eq!(detect("ok"), None);
        assert_eq!(detect("Post 3: tram stopped at Perrache"), None);
    }

    #[test]
    fn every_whatlang_language_has_a_two_letter_code() {
        for lang in whatlang::Lang::all() {
            assert!(
                ISO_639_3_TO_1
                    .iter()
                    .any(|(three, _)| *three == lang.code()),
                "{}",
                lang.code()
            );
        }
    }
}
