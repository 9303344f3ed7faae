//! The console's words in French and English.
//!
//! [`t`] looks a key up in [`WORDS`]; a test checks that every key has both languages. French is
//! first: the users are French security forces.

/// The languages of the console.
pub const LANGS: [&str; 2] = ["fr", "en"];

/// Each key, in French then English.
pub const WORDS: &[(&str, &str, &str)] = &[
    ("sign_in", "Connexion", "Sign in"),
    ("sign_out", "Déconnexion", "Sign out"),
    ("token", "Jeton d'accès", "Access token"),
    ("purpose", "Finalité de la consultation", "Purpose of this session"),
    (
        "purpose_help",
        "Un numéro d'affaire ou un motif court : il est inscrit au journal des accès avec chaque page.",
        "A case number or a short reason: it is written to the access log with every page.",
    ),
    ("change", "Changer", "Change"),
    ("signed_in_as", "Connecté en tant que", "Signed in as"),
    ("alerts", "File d'alertes", "Alert queue"),
    ("incidents", "Incidents", "Incidents"),
    ("no_alerts", "Aucune alerte à examiner.", "No alert to review."),
    ("review", "Examiner", "Review"),
    ("confirmed", "Confirmé", "Confirmed"),
    ("false_alarm", "Fausse alerte", "False alarm"),
    ("unclear", "Incertain", "Unclear"),
    ("note", "Note", "Note"),
    ("send", "Enregistrer", "Save"),
    ("danger", "Danger", "Danger"),
    ("copies", "copies", "copies"),
    ("source", "Source", "Source"),
    ("language", "Langue", "Language"),
    ("place", "Lieu", "Place"),
    ("posted", "Publié", "Posted"),
    ("why", "Mots déterminants", "Words that drove the score"),
    (
        "machine_suggests",
        "La machine suggère ; une personne décide.",
        "The machine suggests; a person decides.",
    ),
    ("bad_token", "Jeton inconnu ou révoqué.", "Unknown or revoked token."),
    (
        "need_purpose",
        "Indiquez la finalité de la consultation.",
        "State the purpose of this session.",
    ),
    ("reviewed", "Examen enregistré.", "Review saved."),
    ("skip", "Aller au contenu", "Skip to content"),
    ("cannot_show", "Page non affichée", "This page cannot be shown"),
    ("back", "Retour à la file d'alertes", "Back to the alert queue"),
    ("other_lang", "English", "Français"),
    (
        "auditor_home",
        "Les auditeurs exportent et vérifient le journal des accès ; ils ne voient aucun message.",
        "Auditors export and verify the access log; they see no post.",
    ),
    ("posts", "messages", "posts"),
    ("last_seen", "Dernier message", "Last post"),
    ("lineage", "Lignée et accès", "Lineage and accesses"),
    ("post", "Message", "Post"),
    ("fetched", "Collecté", "Fetched"),
    ("scored", "Évalué", "Scored"),
    ("accesses", "Accès enregistrés", "Recorded accesses"),
    ("when", "Quand", "When"),
    ("who", "Qui", "Who"),
    ("how", "Par", "Through"),
    ("deleted", "Message supprimé à sa source", "Post deleted at its source"),
    ("duplicate", "Doublon", "Duplicate"),
    ("search", "Recherche", "Search"),
    ("query", "Mots (syntaxe de recherche)", "Words (search syntax)"),
    ("from", "Depuis (RFC 3339)", "From (RFC 3339)"),
    ("to", "Jusqu'à (RFC 3339)", "To (RFC 3339)"),
    ("category", "Catégorie", "Category"),
    ("min_score", "Score minimal", "Minimum score"),
    ("near", "Près de (lat,lon,km)", "Near (lat,lon,km)"),
    ("sort", "Ordre", "Order"),
    ("found", "messages trouvés", "posts found"),
    ("next", "Page suivante", "Next page"),
    ("per_hour", "Messages dangereux par heure", "Dangerous posts per hour"),
    ("any", "toutes", "any"),
    ("audit", "Audit du journal des accès", "Access-log audit"),
    ("user", "Utilisateur", "User"),
    ("export", "Exporter (JSONL signé)", "Export (signed JSONL)"),
    ("verify", "Vérifier", "Verify"),
    ("intact", "Intact : chaîne, signatures et sceau vérifiés.", "Intact: chain, signatures and seal verified."),
    ("tampered", "Altéré", "Tampered with"),
    ("entries", "Entrées", "Entries"),
    ("omitted", "Entrées hors filtre (empreinte seule)", "Entries outside the filter (digest only)"),
    ("checkpoints", "Points de contrôle signés", "Signed checkpoints"),
    ("seq_range", "Numéros", "Sequence numbers"),
    ("incident", "Incident", "Incident"),
    ("review_incident", "Examiner l'incident", "Review the incident"),
    ("duplicate_of", "Doublon de", "Duplicate of"),
    ("newest", "les plus récentes", "newest"),
    ("most_dangerous", "les plus dangereuses", "most dangerous"),
    ("first_seen", "Premier message", "First post"),
    ("status", "État", "Status"),
    ("timeline", "Messages par heure", "Posts per hour"),
    ("map", "Carte des lieux de l'incident", "Map of the incident's places"),
    (
        "map_caption",
        "Lieux cités par ses messages, en projection de Mercator (sans fond de carte hors ligne).",
        "Places its posts name, on the Mercator projection (no map tiles offline).",
    ),
    (
        "map_caption_tiles",
        "Lieux cités par ses messages, sur le fond de carte du serveur de tuiles configuré.",
        "Places its posts name, over the configured tile server's map.",
    ),
    ("too_many", "Trop d'entrées pour une vérification en ligne : réduisez la période, ou exportez et vérifiez avec `vigie audit verify`.", "Too many entries to verify here: narrow the period, or export and check with `vigie audit verify`."),
];

/// The words of `key` in `lang` (`fr` unless `en`); the key itself if it has none.
pub fn t(lang: &str, key: &'static str) -> &'static str {
    WORDS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, fr, en)| if lang == "en" { *en } else { *fr })
        .unwrap_or(key)
}

/// The language an `Accept-Language` header prefers of [`LANGS`] (`fr` when it names neither).
pub fn preferred(accept_language: Option<&str>) -> &'static str {
    let Some(header) = accept_language else {
        return "fr";
    };
    let mut best: Option<(&'static str, f32)> = None;
    for part in header.split(',') {
        let mut pieces = part.trim().split(';');
        let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let Some(lang) = LANGS
            .iter()
            .find(|l| tag == **l || tag.starts_with(&format!("{l}-")))
        else {
            continue;
        };
        if best.is_none_or(|(_, bq)| q > bq) {
            best = Some((lang, q));
        }
    }
    best.map_or("fr", |(l, _)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_both_languages_once() {
        let mut keys = std::collections::BTreeSet::new();
        for (k, fr, en) in WORDS {
            assert!(keys.insert(*k), "{k} twice");
            assert!(!fr.is_empty() && !en.is_empty(), "{k}");
        }
        assert_eq!(t("en", "sign_in"), "Sign in");
        assert_eq!(t("fr", "sign_in"), "Connexion");
    }

    #[test]
    fn the_browser_s_preference_chooses() {
        assert_eq!(preferred(None), "fr");
        assert_eq!(preferred(Some("en-GB,en;q=0.9")), "en");
        assert_eq!(preferred(Some("de-DE,en;q=0.5,fr;q=0.8")), "fr");
        assert_eq!(preferred(Some("de")), "fr");
        assert_eq!(preferred(Some("enx,en-US;q=0.2")), "en");
    }
}
