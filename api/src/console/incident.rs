//! `GET /console/incidents/{id}`: one incident — its title, category, place, first and last
//! post, its timeline per hour, a map of its posts' places, its posts with their scores — and
//! links to each post's page (analysts). The page view is logged with every post it shows, like
//! `GET /v1/incidents/{id}`.
//!
//! ## The map
//! Map tiles cannot be reached offline, so the map is drawn by the page itself: an SVG of the
//! places on the Web Mercator projection (the one tile servers use), framed on the box around
//! them (widened to at least 0.2° and by a tenth on each side), with a scale in kilometres.
//! A deployment that runs a tile server names it in `console_map_tiles` (a
//! `{z}/{x}/{y}` URL template, [`super::Console::map_tiles`]): the map then takes the largest
//! whole zoom that holds the box and draws that server's tiles under the places. The tile
//! server learns which area an analyst looks at: name one the deployment runs.

use super::i18n::t;
use super::pages::{html_response, page};
use super::Session;
use crate::guard::Outcome;
use crate::{AppState, Problem};
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use vigie_record::GeoPoint;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 360.0;
/// The side of a map tile, in pixels.
const TILE: f64 = 256.0;
/// The deepest zoom the map takes (tile servers go to 18 or 19).
const MAX_ZOOM: f64 = 18.0;

/// A point's Web Mercator pixel at zoom 0 (the world is 256 px wide; y grows southwards).
fn mercator(p: GeoPoint) -> (f64, f64) {
    let lat = p.lat.clamp(-85.0511, 85.0511).to_radians();
    let x = (p.lon + 180.0) / 360.0 * TILE;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * TILE;
    (x, y)
}

/// `template` with `{z}`, `{x}` and `{y}` filled in.
fn tile_url(template: &str, z: u32, x: i64, y: i64) -> String {
    template
        .replace("{z}", &z.to_string())
        .replace("{x}", &x.to_string())
        .replace("{y}", &y.to_string())
}

/// The SVG map of `points` (name, point), `None` when there is none; over the tiles of
/// `tiles` (a `{z}/{x}/{y}` URL template) when a deployment has a tile server.
pub(crate) fn map(
    lang: &str,
    points: &[(String, GeoPoint)],
    tiles: Option<&str>,
) -> Option<Markup> {
    let first = points.first()?;
    let (mut lat0, mut lat1, mut lon0, mut lon1) =
        (first.1.lat, first.1.lat, first.1.lon, first.1.lon);
    for (_, p) in points {
        lat0 = lat0.min(p.lat);
        lat1 = lat1.max(p.lat);
        lon0 = lon0.min(p.lon);
        lon1 = lon1.max(p.lon);
    }
    let widen = |lo: f64, hi: f64| {
        let span = (hi - lo).max(0.2);
        let mid = (lo + hi) / 2.0;
        (mid - span * 0.6, mid + span * 0.6)
    };
    let (lat0, lat1) = widen(lat0, lat1);
    let (lon0, lon1) = widen(lon0, lon1);
    // The box at zoom 0, then the zoom that fits it in the frame (a whole one under tiles).
    let (x0, y1) = mercator(GeoPoint {
        lat: lat0,
        lon: lon0,
    });
    let (x1, y0) = mercator(GeoPoint {
        lat: lat1,
        lon: lon1,
    });
    let fit = (WIDTH / (x1 - x0).max(1e-9))
        .min(HEIGHT / (y1 - y0).max(1e-9))
        .log2()
        .clamp(0.0, MAX_ZOOM);
    let zoom = if tiles.is_some() { fit.floor() } else { fit };
    let scale = zoom.exp2();
    // The frame's top-left corner, in pixels at that zoom: the box's centre in the middle.
    let ox = (x0 + x1) / 2.0 * scale - WIDTH / 2.0;
    let oy = (y0 + y1) / 2.0 * scale - HEIGHT / 2.0;
    let at = |p: GeoPoint| {
        let (x, y) = mercator(p);
        (x * scale - ox, y * scale - oy)
    };
    let mid_lat = ((lat0 + lat1) / 2.0).to_radians().cos();
    let km_per_px = 40_075.016_686 * mid_lat / (TILE * scale);
    let bar_km = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
        .into_iter()
        .find(|km| km / km_per_px >= 60.0)
        .unwrap_or(1000.0);
    let bar_px = bar_km / km_per_px;
    // The tiles the frame shows: (href, x, y) of each.
    let mut images = Vec::new();
    if let Some(template) = tiles {
        let z = zoom as u32;
        let n = 1i64 << z;
        let (tx0, ty0) = ((ox / TILE).floor() as i64, (oy / TILE).floor() as i64);
        let (tx1, ty1) = (
            ((ox + WIDTH) / TILE).floor() as i64,
            ((oy + HEIGHT) / TILE).floor() as i64,
        );
        for ty in ty0.max(0)..=ty1.min(n - 1) {
            for tx in tx0..=tx1 {
                let href = tile_url(template, z, tx.rem_euclid(n), ty);
                images.push((href, tx as f64 * TILE - ox, ty as f64 * TILE - oy));
            }
        }
    }
    let caption = if tiles.is_some() {
        "map_caption_tiles"
    } else {
        "map_caption"
    };
    Some(html! {
        figure.map {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
                role="img" aria-label=(t(lang, "map")) {
                rect x="0" y="0" width=(WIDTH) height=(HEIGHT) fill="#eef3f8" stroke="#999" {}
                @for (href, x, y) in &images {
                    image href=(href) x=(format!("{x:.1}")) y=(format!("{y:.1}"))
                        width=(TILE) height=(TILE) {}
                }
                @for (name, p) in points {
                    @let (x, y) = at(*p);
                    circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="7"
                        fill="#a30000" fill-opacity="0.6" stroke="#111" {
                        title { (name) }
                    }
                }
                @for (name, p) in dedup_names(points) {
                    @let (x, y) = at(p);
                    text x=(format!("{:.1}", x + 10.0)) y=(format!("{:.1}", y - 8.0))
                        font-size="14" fill="#111" { (name) }
                }
                line x1="20" y1=(HEIGHT - 20.0) x2=(format!("{:.1}", 20.0 + bar_px)) y2=(HEIGHT - 20.0)
                    stroke="#111" stroke-width="3" {}
                text x="20" y=(HEIGHT - 28.0) font-size="12" fill="#111" { (bar_km) " km" }
            }
            figcaption { (t(lang, caption)) }
        }
    })
}

fn dedup_names(points: &[(String, GeoPoint)]) -> Vec<(String, GeoPoint)> {
    let mut out: Vec<(String, GeoPoint)> = Vec::new();
    for (name, p) in points {
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.clone(), *p));
        }
    }
    out
}

/// `GET /console/incidents/{id}` (analysts).
pub(crate) async fn get_incident(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<(Extension<Outcome>, Response), Problem> {
    let lang = session.lang.clone();
    let lang = lang.as_str();
    let (outcome, view) =
        crate::incidents::incident_view(&state, id, session.purpose.clone(), 3600).await?;
    let i = &view.incident;
    let points: Vec<(String, GeoPoint)> = view
        .members
        .iter()
        .filter_map(|m| m.place.as_ref().map(|p| (p.name.clone(), p.point())))
        .collect();
    let peak = view
        .timeline
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap_or(1)
        .max(1);
    let body = html! {
        h1 { (t(lang, "incident")) " — " (i.category) }
        p.text { strong { (i.title) } }
        dl.meta {
            @if let Some(p) = &i.place { dt { (t(lang, "place")) } dd { (p.name) " (" (p.country) ")" } }
            dt { (t(lang, "first_seen")) } dd { (i.first_seen.format("%Y-%m-%d %H:%M UTC")) }
            dt { (t(lang, "last_seen")) } dd { (i.last_seen.format("%Y-%m-%d %H:%M UTC")) }
            dt { (t(lang, "posts")) } dd { (i.post_count) }
            dt { (t(lang, "danger")) } dd { (format!("{:.2}", i.peak_danger)) }
            dt { (t(lang, "status")) } dd { (i.status.as_str()) }
        }
        @if let Some(m) = map(lang, &points, state.console.map_tiles.as_deref()) { (m) }
        h2 { (t(lang, "timeline")) }
        div.histogram role="img" aria-label=(t(lang, "timeline")) {
            @for b in &view.timeline {
                span style={ "height:" (b.count * 100 / peak) "%" } title={ (b.start.format("%Y-%m-%d %H:00")) " : " (b.count) } {}
            }
        }
        @if let Some(r) = &i.review {
            p.reviewed { (t(lang, "review")) " : " (r.user) " — " (super::pages::verdict_word(lang, r.verdict)) }
        }
        form.review method="post" action={ "/console/incidents/" (i.id) "/review" } {
            input type="hidden" name="csrf" value=(session.csrf);
            fieldset {
                legend { (t(lang, "review_incident")) }
                @for (value, key) in [("confirmed", "confirmed"), ("false_alarm", "false_alarm"), ("duplicate_of", "duplicate")] {
                    label { input type="radio" name="verdict" value=(value) required; " " (t(lang, key)) }
                }
                label { (t(lang, "duplicate_of")) " " input type="text" name="duplicate_of" placeholder="inc-…"; }
                label { (t(lang, "note")) " " input type="text" name="note" maxlength="2000"; }
                button type="submit" { (t(lang, "send")) }
            }
        }
        h2 { (t(lang, "posts")) }
        table.accesses {
            thead { tr {
                th scope="col" { (t(lang, "posted")) }
                th scope="col" { (t(lang, "category")) }
                th scope="col" { (t(lang, "danger")) }
                th scope="col" { (t(lang, "place")) }
                th scope="col" { (t(lang, "source")) }
            } }
            tbody {
                @for m in &view.members {
                    tr {
                        td { a href={ "/console/posts/" (m.id) } { (m.created_at.format("%Y-%m-%d %H:%M UTC")) } }
                        td { (m.category) }
                        td { (format!("{:.2}", m.danger)) }
                        td { (m.place.as_ref().map(|p| p.name.as_str()).unwrap_or("—")) }
                        td { (m.source) }
                    }
                }
            }
        }
    };
    let page = page(lang, t(lang, "incident"), Some(&session), body);
    Ok((Extension(outcome), html_response(StatusCode::OK, page)))
}

/// An incident review from its page.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncidentReviewForm {
    #[allow(dead_code)]
    csrf: String,
    verdict: crate::incidents::IncidentVerdict,
    #[serde(default)]
    duplicate_of: Option<String>,
    #[serde(default)]
    note: String,
}

/// `POST /console/incidents/{id}/review`: the verdict reaches the incident and each of its
/// posts, logged before it is stored; back to the incident's page.
pub(crate) async fn post_review(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<IncidentReviewForm>,
) -> Result<(Extension<Outcome>, Response), Problem> {
    let body = crate::incidents::IncidentReviewRequest {
        verdict: form.verdict,
        duplicate_of: form.duplicate_of.filter(|d| !d.trim().is_empty()),
        note: form.note,
    };
    let (outcome, _) = crate::incidents::review_incident(
        &state,
        &session.caller,
        id.clone(),
        body,
        Some(session.purpose.clone()),
    )
    .await?;
    let back = axum::response::IntoResponse::into_response((
        StatusCode::SEE_OTHER,
        [(
            axum::http::header::LOCATION,
            format!("/console/incidents/{id}"),
        )],
    ));
    Ok((Extension(outcome), back))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tile (x, y) holding `p` at whole zoom `z`.
    fn tile_of(p: GeoPoint, z: u32) -> (i64, i64) {
        let (x, y) = mercator(p);
        let n = f64::from(1u32 << z);
        ((x * n / TILE).floor() as i64, (y * n / TILE).floor() as i64)
    }

    #[test]
    fn the_map_places_points_inside_its_frame_with_a_scale() {
        let points = vec![
            (
                "Lyon".to_string(),
                GeoPoint {
                    lat: 45.748,
                    lon: 4.847,
                },
            ),
            (
                "Villeurbanne".to_string(),
                GeoPoint {
                    lat: 45.766,
                    lon: 4.879,
                },
            ),
            (
                "Lyon".to_string(),
                GeoPoint {
                    lat: 45.75,
                    lon: 4.85,
                },
            ),
        ];
        let svg = map("fr", &points, None).unwrap().into_string();
        assert_eq!(svg.matches("<circle").count(), 3);
        // Each name once.
        assert_eq!(svg.matches(">Lyon</text>").count(), 1);
        assert!(svg.contains(" km</text>"));
        for cx in svg.split("cx=\"").skip(1) {
            let v: f64 = cx.split('"').next().unwrap().parse().unwrap();
            assert!((0.0..=WIDTH).contains(&v), "{v}");
        }
        assert!(map("fr", &[], None).is_none());
        // A name cannot break out of the SVG.
        let hostile = vec![(
            "</svg><script>x</script>".to_string(),
            GeoPoint { lat: 0.0, lon: 0.0 },
        )];
        assert!(!map("en", &hostile, None)
            .unwrap()
            .into_string()
            .contains("<script>"));
    }

    #[test]
    fn tiles_are_the_ones_under_the_places_at_a_whole_zoom() {
        // Paris is tile (518, 352) at zoom 10, as every slippy-map server numbers it.
        let paris = GeoPoint {
            lat: 48.8566,
            lon: 2.3522,
        };
        assert_eq!(tile_of(paris, 10), (518, 352));
        assert_eq!(
            tile_url("http://t/{z}/{x}/{y}.png", 10, 518, 352),
            "http://t/10/518/352.png"
        );
        let points = vec![("Paris".to_string(), paris)];
        let svg = map("en", &points, Some("http://t/{z}/{x}/{y}.png"))
            .unwrap()
            .into_string();
        let hrefs: Vec<&str> = svg
            .split("href=\"")
            .skip(1)
            .map(|h| h.split('"').next().unwrap())
            .collect();
        assert!(!hrefs.is_empty());
        // One zoom for all, and the tile under Paris among them.
        let z: Vec<&str> = hrefs.iter().map(|h| h.split('/').nth(3).unwrap()).collect();
        assert!(z.iter().all(|x| *x == z[0]), "{hrefs:?}");
        let zoom: u32 = z[0].parse().unwrap();
        let (x, y) = tile_of(paris, zoom);
        assert!(
            hrefs.contains(&format!("http://t/{zoom}/{x}/{y}.png").as_str()),
            "{hrefs:?}"
        );
        // The frame is covered: 640 x 360 px needs at least 3 x 2 tiles.
        assert!(hrefs.len() >= 6, "{hrefs:?}");
        // Paris is drawn in the frame, on its tile.
        let cx: f64 = svg
            .split("cx=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=WIDTH).contains(&cx));
        // Without a server, no tile.
        assert!(!map("en", &points, None)
            .unwrap()
            .into_string()
            .contains("<image"));
    }
}
