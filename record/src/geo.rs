//! Points, distances and the cell keys that make "near a place" an index lookup.
//!
//! A [`Place`] is where a post says (or its source says) something happens. Searching "near"
//! a point is a disc: [`Near`]. The index cannot compute distances for every document, so each
//! place is also written as the keys of the cells that hold it in a quadtree over
//! longitude × latitude ([`cell_keys`]: one key per level, from 20°×10° cells down to
//! 1/1024 of that, about 1.5 km × 1.1 km in France), and a disc is answered by the keys of its
//! *covering* ([`Near::covering`]): the cells wholly inside the disc, at the coarsest level
//! that fits, and the cells on its edge at the finest level the covering can afford.
//!
//! **Guarantee.** Every place within the disc is in the covering (no miss); a place outside
//! the disc can be in it only if it lies in an edge cell, so it is at most one edge-cell
//! diagonal beyond the radius. The finest level is chosen so that a covering has at most
//! [`MAX_COVERING`] cells: for a 20 km disc in France the edge cells are about 1 km across
//! (near the poles, where the cells of a level crowd together, the covering stays coarser).

use serde::{Deserialize, Serialize};

/// Mean Earth radius in kilometres (IUGG), as the haversine formula uses it.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Levels of the quadtree: level 0 cells are 20° of longitude by 10° of latitude (18 × 18 of
/// them), each level halves both.
pub const LEVELS: u8 = 11;

/// Most cells a covering may use (one term each in the index query).
pub const MAX_COVERING: usize = 512;

/// A point on the Earth, in degrees (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    /// Latitude, -90 to 90.
    pub lat: f64,
    /// Longitude, -180 to 180.
    pub lon: f64,
}

impl GeoPoint {
    /// A point, or `None` when a coordinate is not finite or out of range.
    pub fn new(lat: f64, lon: f64) -> Option<Self> {
        let ok = lat.is_finite()
            && lon.is_finite()
            && (-90.0..=90.0).contains(&lat)
            && (-180.0..=180.0).contains(&lon);
        ok.then_some(GeoPoint { lat, lon })
    }

    /// Great-circle distance to `other` in kilometres (haversine).
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

/// How a place was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceFound {
    /// A name in the post's text, resolved with the gazetteer.
    Text,
    /// A hashtag of the post (`#Calgary`), resolved with the gazetteer.
    Hashtag,
    /// The coordinates the source gave the post; the name is the nearest gazetteer entry.
    SourceCoordinates,
}

/// A place a post is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// The place's name in the gazetteer (`Lac-Mégantic`).
    pub name: String,
    /// ISO 3166-1 alpha-2 country code (`CA`).
    pub country: String,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// How sure the resolution is, in [0, 1] (see the situation crate's rule).
    pub confidence: f32,
    /// How it was found.
    pub found: PlaceFound,
    /// The words of the post that named it, as written (absent for source coordinates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mention: Option<String>,
    /// The GeoNames id of the gazetteer entry, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geonames_id: Option<u32>,
}

impl Place {
    /// The place's point.
    pub fn point(&self) -> GeoPoint {
        GeoPoint {
            lat: self.lat,
            lon: self.lon,
        }
    }
}

/// A disc on the Earth: `near=lat,lon,radius_km`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Near {
    /// Its centre.
    pub centre: GeoPoint,
    /// Its radius in kilometres, above 0 and at most [`Near::MAX_RADIUS_KM`].
    pub radius_km: f64,
}

/// Why a `near` text is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NearError {
    /// Not three numbers separated by commas.
    #[error("near must be lat,lon,radius_km (three numbers), not {0:?}")]
    Shape(String),
    /// A coordinate out of range.
    #[error("near: latitude must be in [-90, 90] and longitude in [-180, 180]")]
    Point,
    /// A radius that is not above 0 and at most the bound.
    #[error("near: radius_km must be above 0 and at most {max}", max = Near::MAX_RADIUS_KM)]
    Radius,
}

impl std::str::FromStr for Near {
    type Err = NearError;

    fn from_str(s: &str) -> Result<Self, NearError> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let shape = || NearError::Shape(s.chars().take(64).collect());
        let [lat, lon, radius] = parts.as_slice() else {
            return Err(shape());
        };
        let num = |t: &str| t.parse::<f64>().map_err(|_| shape());
        let centre = GeoPoint::new(num(lat)?, num(lon)?).ok_or(NearError::Point)?;
        Near::new(centre, num(radius)?)
    }
}

impl std::fmt::Display for Near {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{},{},{}",
            self.centre.lat, self.centre.lon, self.radius_km
        )
    }
}

/// One cell of the quadtree: its level and its column and row at that level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    level: u8,
    x: u32,
    y: u32,
}

impl Cell {
    fn size(level: u8) -> (f64, f64) {
        let div = f64::from(1u32 << level);
        (20.0 / div, 10.0 / div)
    }

    fn of(p: &GeoPoint, level: u8) -> Cell {
        let (w, h) = Cell::size(level);
        let cols = 18u32 << level;
        let rows = 18u32 << level;
        let x = (((p.lon + 180.0) / w) as u32).min(cols - 1);
        let y = (((p.lat + 90.0) / h) as u32).min(rows - 1);
        Cell { level, x, y }
    }

    /// The cell's index key: level, column and row in one number.
    pub fn key(&self) -> u64 {
        (u64::from(self.level) << 56) | (u64::from(self.x) << 28) | u64::from(self.y)
    }

    fn bounds(&self) -> (f64, f64, f64, f64) {
        let (w, h) = Cell::size(self.level);
        let lon0 = -180.0 + f64::from(self.x) * w;
        let lat0 = -90.0 + f64::from(self.y) * h;
        (lat0, lat0 + h, lon0, lon0 + w)
    }

    fn children(&self) -> [Cell; 4] {
        let (l, x, y) = (self.level + 1, self.x * 2, self.y * 2);
        [
            Cell { level: l, x, y },
            Cell {
                level: l,
                x: x + 1,
                y,
            },
            Cell {
                level: l,
                x,
                y: y + 1,
            },
            Cell {
                level: l,
                x: x + 1,
                y: y + 1,
            },
        ]
    }
}

/// The keys of the cells holding `p`, one per level: what the index writes for a place.
pub fn cell_keys(p: &GeoPoint) -> impl Iterator<Item = u64> + '_ {
    (0..LEVELS).map(move |level| Cell::of(p, level).key())
}

impl Near {
    /// The largest radius a search may ask for (a continent).
    pub const MAX_RADIUS_KM: f64 = 5000.0;

    /// A disc, refused when the radius is not above 0 or over [`Near::MAX_RADIUS_KM`].
    pub fn new(centre: GeoPoint, radius_km: f64) -> Result<Self, NearError> {
        if !(radius_km > 0.0 && radius_km <= Near::MAX_RADIUS_KM) {
            return Err(NearError::Radius);
        }
        Ok(Near { centre, radius_km })
    }

    /// Whether `p` is in the disc.
    pub fn contains(&self, p: &GeoPoint) -> bool {
        self.centre.distance_km(p) <= self.radius_km
    }

    /// Bounds on the nearest and farthest distance from the centre to a point of `cell`, each
    /// widened by a tenth of the cell's diagonal, so that a cell is only called inside when it
    /// is, and only left out when it holds no point of the disc (the clamped point and the
    /// corners and edge midpoints are exact on a plane, not quite on a sphere).
    fn reach(&self, cell: &Cell) -> (f64, f64) {
        let (lat0, lat1, lon0, lon1) = cell.bounds();
        let c = self.centre;
        let lat = c.lat.clamp(lat0, lat1);
        let lon = if (lon0..=lon1).contains(&c.lon) {
            c.lon
        } else if lon_gap(c.lon, lon0) <= lon_gap(c.lon, lon1) {
            lon0
        } else {
            lon1
        };
        let slack = GeoPoint {
            lat: lat0,
            lon: lon0,
        }
        .distance_km(&GeoPoint {
            lat: lat1,
            lon: lon1,
        }) / 10.0;
        let near = c.distance_km(&GeoPoint { lat, lon }) - slack;
        let (latm, lonm) = ((lat0 + lat1) / 2.0, (lon0 + lon1) / 2.0);
        let far = [lat0, latm, lat1]
            .iter()
            .flat_map(|&lat| [lon0, lonm, lon1].map(|lon| GeoPoint { lat, lon }))
            .map(|q| c.distance_km(&q))
            .fold(0.0, f64::max)
            + slack;
        (near, far)
    }

    /// The keys of a covering of the disc (see the module doc): every place inside is in one
    /// of these cells; at most [`MAX_COVERING`] keys.
    pub fn covering(&self) -> Vec<u64> {
        // Refine level by level; stop before the edge would need more cells than allowed.
        let mut inside: Vec<Cell> = Vec::new();
        let mut edge: Vec<Cell> = (0..18)
            .flat_map(|x| (0..18).map(move |y| Cell { level: 0, x, y }))
            .filter(|c| self.reach(c).0 <= self.radius_km)
            .collect();
        for _ in 1..LEVELS {
            let mut next_inside = Vec::new();
            let mut next_edge = Vec::new();
            for cell in &edge {
                for child in cell.children() {
                    let (near, far) = self.reach(&child);
                    if far <= self.radius_km {
                        next_inside.push(child);
                    } else if near <= self.radius_km {
                        next_edge.push(child);
                    }
                }
            }
            if inside.len() + next_inside.len() + next_edge.len() > MAX_COVERING {
                break;
            }
            inside.extend(next_inside);
            edge = next_edge;
        }
        let mut keys: Vec<u64> = inside.iter().chain(&edge).map(Cell::key).collect();
        keys.sort_unstable();
        keys
    }
}

/// The distance in degrees between two longitudes, the short way round.
fn lon_gap(a: f64, b: f64) -> f64 {
    let d = (a - b).abs() % 360.0;
    d.min(360.0 - d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint::new(lat, lon).unwrap()
    }

    #[test]
    fn haversine_paris_lyon_is_392_km() {
        let d = p(48.8534, 2.3488).distance_km(&p(45.7485, 4.8467));
        assert!((d - 392.0).abs() < 2.0, "{d}");
    }

    #[test]
    fn near_parses_and_refuses_by_reason() {
        let n: Near = "48.85, 2.35, 10".parse().unwrap();
        assert_eq!(n.radius_km, 10.0);
        assert!(matches!(
            "48.85,2.35".parse::<Near>(),
            Err(NearError::Shape(_))
        ));
        assert!(matches!(
            "x,2.35,3".parse::<Near>(),
            Err(NearError::Shape(_))
        ));
        assert_eq!("91,2,3".parse::<Near>(), Err(NearError::Point));
        assert_eq!("NaN,2,3".parse::<Near>(), Err(NearError::Point));
        assert_eq!("45,2,0".parse::<Near>(), Err(NearError::Radius));
        assert_eq!("45,2,-1".parse::<Near>(), Err(NearError::Radius));
        assert_eq!("45,2,inf".parse::<Near>(), Err(NearError::Radius));
        assert_eq!("45,2,99999".parse::<Near>(), Err(NearError::Radius));
    }

    /// The covering's guarantee, checked on a grid of points around several discs, the
    /// antimeridian and a pole among them: every point inside is covered, and a covered point
    /// outside is within one finest edge cell of the radius.
    #[test]
    fn every_point_inside_is_covered_and_the_excess_is_bounded() {
        for (lat, lon, r) in [
            (48.8534, 2.3488, 20.0),
            (45.58, -70.88, 5.0),
            (-27.47, 153.03, 300.0),
            (0.0, 179.9, 50.0),
            (89.5, 10.0, 100.0),
            (43.70, 7.27, 2000.0),
        ] {
            let near = Near::new(p(lat, lon), r).unwrap();
            let keys: std::collections::HashSet<u64> = near.covering().into_iter().collect();
            assert!(
                !keys.is_empty() && keys.len() <= MAX_COVERING,
                "{}",
                keys.len()
            );
            let mut worst_excess: f64 = 0.0;
            let span = r / 111.0 * 1.6 + 0.01;
            for i in 0..=60 {
                for j in 0..=60 {
                    let la = (lat - span + 2.0 * span * f64::from(i) / 60.0).clamp(-90.0, 90.0);
                    let mut lo = lon - span * 2.0 + 4.0 * span * f64::from(j) / 60.0;
                    if lo > 180.0 {
                        lo -= 360.0;
                    }
                    if lo < -180.0 {
                        lo += 360.0;
                    }
                    let q = p(la, lo);
                    let covered = cell_keys(&q).any(|k| keys.contains(&k));
                    let d = near.centre.distance_km(&q);
                    if d <= r {
                        assert!(covered, "{q:?} at {d} km of a {r} km disc is not covered");
                    } else if covered {
                        worst_excess = worst_excess.max(d - r);
                    }
                }
            }
            // Near a pole the cells of a level crowd together: the covering stays coarse there
            // (it still misses nothing).
            assert!(
                lat.abs() > 80.0 || worst_excess <= r * 0.25 + 2.0,
                "a covered point lies {worst_excess} km beyond a {r} km disc"
            );
        }
    }
}
