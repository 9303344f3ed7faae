//! A real server on 127.0.0.1 over a small index, with users of every role.
#![allow(dead_code)]

pub mod browser;

use std::collections::HashMap;
use std::path::PathBuf;
use vigie_api::users::{self, Role};
use vigie_api::{AppState, UserStore};
use vigie_index::PostIndex;
use vigie_logs::access_log::{self, AccessLog, LogOptions};
use vigie_record::fixtures::scored;

/// A running server; stops (and signs its final checkpoint) on [`Server::stop`].
pub struct Server {
    pub base: String,
    pub data: tempfile::TempDir,
    pub tokens: HashMap<&'static str, String>,
    pub log_path: PathBuf,
    /// The server's access log (for a dispatcher of the test's, which must log to it).
    pub log: AccessLog,
    /// The server's watches, ledger and live alerts.
    pub hub: vigie_alerts::AlertHub,
    /// The server's index handle.
    pub index: PostIndex,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub async fn start(checkpoint_every: u64) -> Server {
    start_with(
        &[
            scored("1", "Warehouse fire in Vénissieux, thick smoke", 0.92),
            scored("2", "Fire drill at the school this morning", 0.2),
        ],
        checkpoint_every,
    )
    .await
}

/// A server over an index of `posts`.
pub async fn start_with(posts: &[vigie_record::Envelope], checkpoint_every: u64) -> Server {
    start_limited(posts, checkpoint_every, vigie_api::ServeLimits::default()).await
}

/// A server over an index of `posts`, serving within `limits`.
pub async fn start_limited(
    posts: &[vigie_record::Envelope],
    checkpoint_every: u64,
    limits: vigie_api::ServeLimits,
) -> Server {
    start_configured(posts, checkpoint_every, limits, Default::default()).await
}

/// A server over an index of `posts`, serving within `limits`, its console set up as `console`.
pub async fn start_configured(
    posts: &[vigie_record::Envelope],
    checkpoint_every: u64,
    limits: vigie_api::ServeLimits,
    console: vigie_api::console::Console,
) -> Server {
    let data = tempfile::tempdir().unwrap();
    let index = PostIndex::open(&data.path().join("index")).unwrap();
    let mut w = index.writer().unwrap();
    for post in posts {
        w.upsert(post).unwrap();
    }
    w.commit(None).unwrap();
    drop(w);
    access_log::init_keys(data.path()).unwrap();
    let key = access_log::load_signing_key(data.path()).unwrap();
    let log = AccessLog::open(
        &data.path().join("access-log"),
        key,
        LogOptions { checkpoint_every },
    )
    .unwrap();
    let users_file = data.path().join(users::USERS_FILE);
    let mut tokens = HashMap::new();
    for (name, role) in [
        ("ana", Role::Analyst),
        ("bea", Role::Analyst),
        ("olga", Role::Auditor),
        ("eve", Role::Experimenter),
        ("adam", Role::Admin),
    ] {
        tokens.insert(name, users::add_user(&users_file, name, role).unwrap());
    }
    let hub = vigie_alerts::AlertHub::open(data.path()).unwrap();
    let state = AppState {
        index: index.clone(),
        log: log.clone(),
        users: UserStore::open(&users_file).unwrap(),
        reviews: vigie_api::ReviewStore::open(&data.path().join("reviews.jsonl")).unwrap(),
        alert_threshold: 0.5,
        work: vigie_api::IndexWork::default(),
        alerts: vigie_api::watches::Alerts::new(hub.clone(), vec!["http://127.0.0.1:".into()]),
        console,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        vigie_api::serve_with(listener, state, &limits, async {
            let _ = stopped.await;
        })
        .await
    });
    Server {
        base,
        log_path: log.path().to_path_buf(),
        log,
        hub,
        index,
        data,
        tokens,
        stop: Some(stop),
        task: Some(task),
    }
}

impl Server {
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub fn public_key(&self) -> ed25519_dalek::VerifyingKey {
        access_log::read_public_key(&self.data.path().join(access_log::PUBLIC_KEY_FILE)).unwrap()
    }

    /// The bodies of the log's entries, in order.
    pub fn entries(&self) -> Vec<access_log::Access> {
        access_log::entries(&std::fs::read_to_string(&self.log_path).unwrap())
    }
}

/// Lowers (or raises) the file-size limit of this whole process, so that the kernel refuses a
/// write past `bytes` (EFBIG, SIGXFSZ ignored): a real write failure. A test binary that uses it
/// holds one test, since the limit applies to all its threads.
pub fn set_file_size_limit(bytes: libc::rlim_t) {
    // SAFETY: plain libc calls on this process's own limits and signal disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = bytes.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

/// A fire post `n`, `minutes` after 2026-11-27 08:00 UTC, in French, in `city` (name, lat,
/// lon), scored `danger`.
pub fn fire(
    n: u32,
    minutes: i64,
    text: &str,
    city: (&str, f64, f64),
    danger: f32,
) -> vigie_record::Envelope {
    let mut e = scored(&n.to_string(), text, danger);
    e.post.created_at = "2026-11-27T08:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        + chrono::Duration::minutes(minutes);
    e.post.lang = Some("fr".into());
    e.scoring
        .as_mut()
        .unwrap()
        .scores
        .insert("fire".into(), 0.9);
    e.places = Some(vec![vigie_record::fixtures::place(city.0, city.1, city.2)]);
    e
}
