//! The dispatcher against a real index, a real access log and a real local HTTP receiver.
#![allow(clippy::unwrap_used, missing_docs)]

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Duration as Span, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vigie_alerts::webhook::{self, Backoff};
use vigie_alerts::{AlertHub, DispatchConfig, Dispatcher, Owners, WatchSpec};
use vigie_index::PostIndex;
use vigie_logs::access_log::{self, LogOptions};
use vigie_logs::AccessLog;
use vigie_record::fixtures::scored;
use vigie_record::{Envelope, Place, PlaceFound};

/// What the receiver got: (alert id header, signature header, body).
type Received = Arc<Mutex<Vec<(String, String, Bytes)>>>;

/// A webhook receiver on 127.0.0.1 that answers `fail_first` requests with 503, then 200.
async fn receiver(fail_first: usize) -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    receiver_on(listener, fail_first)
}

/// The same on `listener`.
fn receiver_on(listener: tokio::net::TcpListener, fail_first: usize) -> (String, Received) {
    let got: Received = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                let header = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let mut seen = seen.lock().unwrap();
                seen.push((
                    header(webhook::ALERT_ID_HEADER),
                    header(webhook::SIGNATURE_HEADER),
                    body,
                ));
                if seen.len() <= fail_first {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

fn at(minutes: i64) -> DateTime<Utc> {
    "2026-11-27T08:00:00Z".parse::<DateTime<Utc>>().unwrap() + Span::minutes(minutes)
}

fn placed(id: &str, minutes: i64, text: &str, (name, lat, lon): (&str, f64, f64)) -> Envelope {
    let mut e = scored(id, text, 0.9);
    e.post.created_at = at(minutes);
    e.scoring
        .as_mut()
        .unwrap()
        .scores
        .insert("fire".into(), 0.9);
    e.places = Some(vec![Place {
        name: name.into(),
        country: "FR".into(),
        lat,
        lon,
        confidence: 0.9,
        found: PlaceFound::Text,
        mention: Some(name.into()),
        geonames_id: None,
    }]);
    e
}

const LYON: (&str, f64, f64) = ("Lyon", 45.748, 4.847);
const VILLEURBANNE: (&str, f64, f64) = ("Villeurbanne", 45.766, 4.879);
const MARSEILLE: (&str, f64, f64) = ("Marseille", 43.297, 5.381);

struct World {
    dir: tempfile::TempDir,
    index: PostIndex,
    log: AccessLog,
    hub: AlertHub,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let index = PostIndex::open(&dir.path().join("index")).unwrap();
        access_log::init_keys(dir.path()).unwrap();
        let key = access_log::load_signing_key(dir.path()).unwrap();
        let log = AccessLog::open(
            &dir.path().join("access-log"),
            key,
            LogOptions {
                checkpoint_every: 100,
            },
        )
        .unwrap();
        let hub = AlertHub::open(dir.path()).unwrap();
        World {
            dir,
            index,
            log,
            hub,
        }
    }

    fn dispatcher(&self) -> Dispatcher {
        let owners: Owners = Arc::new(|name: &str| (name == "ana").then(|| "analyst".into()));
        Dispatcher::new(
            self.hub.clone(),
            self.index.clone(),
            self.log.clone(),
            owners,
            self.dir.path(),
            DispatchConfig {
                poll: Duration::from_millis(50),
                overlap: Duration::from_secs(60),
                backoff: Backoff {
                    initial: Duration::from_millis(20),
                    max: Duration::from_millis(100),
                    attempts: 5,
                    timeout: Duration::from_secs(5),
                },
            },
        )
        .unwrap()
    }

    fn index(&self, posts: &[Envelope]) {
        let mut w = self.index.writer().unwrap();
        for p in posts {
            w.upsert(p).unwrap();
        }
        w.commit(None).unwrap();
    }

    fn watch(
        &self,
        owner: &str,
        name: &str,
        near: &str,
        webhook: Option<&str>,
    ) -> vigie_alerts::Watch {
        self.hub
            .watches()
            .add(
                owner,
                WatchSpec {
                    name: name.into(),
                    purpose: "protection of the Part-Dieu station".into(),
                    near: near.parse().unwrap(),
                    category: None,
                    q: None,
                    min_score: None,
                    webhook: webhook.map(String::from),
                },
            )
            .unwrap()
    }

    fn entries(&self) -> Vec<access_log::Access> {
        access_log::entries(&std::fs::read_to_string(self.log.path()).unwrap())
    }
}

#[tokio::test]
async fn an_incident_in_the_zone_fires_one_signed_webhook_retried_until_accepted() {
    let world = World::new();
    let (url, got) = receiver(2).await;
    let watch = world.watch("ana", "Part-Dieu", "45.76,4.86,10", Some(&url));
    let far = world.watch("ana", "Vieux-Port", "43.29,5.37,5", Some(&url));
    let mut d = world.dispatcher();
    let first = placed("1", 0, "Incendie entrepôt à Lyon", LYON);
    let first_id = first.post.id.to_string();
    world.index(&[first]);
    let made = d.scan().await.unwrap();
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].watch.id, watch.id);
    d.settle().await;
    // Two 503s, then accepted: three tries of one alert, each signed with the watch's secret.
    let tries = got.lock().unwrap().clone();
    assert_eq!(tries.len(), 3);
    let secret = hex::decode(watch.secret.as_ref().unwrap()).unwrap();
    for (id, signature, body) in &tries {
        assert_eq!(id, &made[0].id);
        assert!(webhook::verify(
            &secret,
            signature,
            body,
            Utc::now().timestamp(),
            300
        ));
        let alert: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(alert["watch"]["name"], "Part-Dieu");
        assert_eq!(alert["incident"]["place"]["name"], "Lyon");
        assert_eq!(alert["matched_posts"], serde_json::json!([first_id]));
    }
    assert!(world.hub.ledger().owed().is_empty());

    // The incident grows (a second post, in the zone): no second alert; nor at a later scan.
    world.index(&[placed(
        "2",
        10,
        "Incendie entrepôt Villeurbanne fumée",
        VILLEURBANNE,
    )]);
    assert!(d.scan().await.unwrap().is_empty());
    assert!(d.scan().await.unwrap().is_empty());
    // Nor after a restart (a new dispatcher, from the saved cursor).
    let mut again = world.dispatcher();
    assert!(again.scan().await.unwrap().is_empty());
    again.settle().await;
    assert_eq!(got.lock().unwrap().len(), 3);

    // A fire in Marseille, 280 km away, is another incident, in the other watch's zone.
    let third = placed("3", 20, "Incendie entrepôt Marseille", MARSEILLE);
    let third_id = third.post.id.to_string();
    world.index(&[third]);
    let made_far = again.scan().await.unwrap();
    assert_eq!(made_far.len(), 1);
    assert_eq!(made_far[0].watch.id, far.id);
    assert_eq!(made_far[0].matched_posts, [third_id]);
    again.settle().await;

    // The access log names the watch and the incident for each webhook, before it was sent.
    let entries: Vec<_> = world
        .entries()
        .into_iter()
        .filter(|e| e.endpoint.starts_with("webhook "))
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].user.as_deref(), Some("ana"));
    assert_eq!(
        entries[0].purpose.as_deref(),
        Some("protection of the Part-Dieu station")
    );
    assert_eq!(entries[0].params["watch"], watch.id.as_str());
    assert_eq!(entries[0].params["watch_name"], "Part-Dieu");
    assert_eq!(entries[0].params["incident"], made[0].incident.id.as_str());
    assert_eq!(entries[0].posts, [first_id]);
    // Only the origin of the URL is logged.
    assert!(!entries[0].endpoint.contains("/hook"));
}

#[tokio::test]
async fn old_incidents_removed_watches_and_removed_owners_alert_nobody() {
    let world = World::new();
    let (url, got) = receiver(0).await;
    // An incident from before the watch was made.
    world.index(&[placed("1", 0, "Incendie entrepôt à Lyon", LYON)]);
    std::thread::sleep(Duration::from_millis(5));
    let watch = world.watch("ana", "Part-Dieu", "45.76,4.86,10", Some(&url));
    let bob = world.watch("bob", "Part-Dieu", "45.76,4.86,10", Some(&url));
    let mut d = world.dispatcher();
    assert!(d.scan().await.unwrap().is_empty());
    // It grows after: ana's watch is told (reason `grew`); bob is not a user any more.
    world.index(&[placed("2", 10, "Incendie entrepôt Lyon, fumée", LYON)]);
    let made = d.scan().await.unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].watch.id, watch.id);
    assert_eq!(made[0].reason, vigie_alerts::ledger::Reason::Grew);
    assert_ne!(made[0].watch.id, bob.id);
    // A removed watch is told nothing.
    assert!(world
        .hub
        .watches()
        .remove(&watch.id, Some("ana"), "ana")
        .unwrap());
    world.index(&[placed("3", 0, "Explosion usine Villeurbanne", VILLEURBANNE)]);
    assert!(d.scan().await.unwrap().is_empty());
    d.settle().await;
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_webhook_owed_at_shutdown_is_resumed_with_the_same_id() {
    let world = World::new();
    // Nobody listens yet: a closed port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{closed}/hook");
    let watch = world.watch("ana", "Part-Dieu", "45.76,4.86,10", Some(&url));
    let mut d = world.dispatcher();
    world.index(&[placed("1", 0, "Incendie entrepôt à Lyon", LYON)]);
    let made = d.scan().await.unwrap();
    assert_eq!(made.len(), 1);
    // Stopped while still trying.
    tokio::time::sleep(Duration::from_millis(60)).await;
    drop(d);
    let owed = world.hub.ledger().owed();
    assert_eq!(owed.len(), 1);
    assert!(owed[0].1 >= 1, "at least one try was recorded");
    // The receiver comes up on that port; a restarted dispatcher resumes the webhook.
    let (_, got) = receiver_on(tokio::net::TcpListener::bind(closed).await.unwrap(), 0);
    let mut d = world.dispatcher();
    assert_eq!(d.resume().unwrap(), 1);
    d.settle().await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, made[0].id);
    assert!(world.hub.ledger().owed().is_empty());
    assert_eq!(watch.id, made[0].watch.id);
}

#[tokio::test]
async fn category_words_and_score_narrow_what_a_watch_is_told() {
    let world = World::new();
    let spec = |name: &str, category: Option<&str>, q: Option<&str>, min: Option<f32>| WatchSpec {
        name: name.into(),
        purpose: "station".into(),
        near: "45.76,4.86,10".parse().unwrap(),
        category: category.map(String::from),
        q: q.map(String::from),
        min_score: min,
        webhook: None,
    };
    let add = |s: WatchSpec| world.hub.watches().add("ana", s).unwrap().id;
    let family = add(spec("family", Some("fire_explosion"), None, None));
    let violence = add(spec("violence", Some("violence"), None, None));
    let words = add(spec("words", None, Some("entrepôt AND fumée"), None));
    let other_words = add(spec("other words", None, Some("inondation"), None));
    let high = add(spec("high", None, None, Some(0.95)));
    let mut d = world.dispatcher();
    world.index(&[
        placed("1", 0, "Incendie entrepôt à Lyon", LYON),
        placed("2", 5, "Incendie entrepôt Lyon, fumée noire", LYON),
    ]);
    let mut told: Vec<String> = d
        .scan()
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            if a.watch.id == words {
                assert_eq!(a.matched_posts.len(), 1, "only the post with both words");
            }
            a.watch.id
        })
        .collect();
    told.sort();
    let mut expected = vec![family, words];
    expected.sort();
    assert_eq!(told, expected);
    assert!(!told.contains(&violence) && !told.contains(&other_words) && !told.contains(&high));
}
