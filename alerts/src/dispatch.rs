//! The dispatcher: reads the incidents that changed, matches them against the watches, and
//! makes and delivers the alerts.
//!
//! ## The change feed and its cursor
//! The index writer stamps each incident it writes with its commit's time
//! ([`PostIndex::incidents_changed_since`]). Every [`DispatchConfig::poll`] the dispatcher asks
//! for the incidents written since its cursor minus [`DispatchConfig::overlap`] (a commit is
//! visible a little after the time it records), skips the (incident, revision) pairs it already
//! looked at, then reads the watches — after the feed, so that a watch made before a change is
//! always known when that change is matched. The cursor is saved to `alerts.cursor`, so after a
//! restart the changes made while the server was down are matched too; at the first start it
//! is the oldest watch's creation. A watch only considers incidents that changed after it was
//! made.
//!
//! ## One alert, in this order
//! For a (watch, incident) pair that matches and has no alert yet:
//! 1. when the watch has a webhook, the access log gets an entry of it — the watch's owner and
//!    purpose, the watch, the incident, and the posts the alert shows — and if that fails the
//!    pair waits for the next scan: nothing leaves unlogged;
//! 2. the ledger records the alert ([`crate::ledger`]): from now on the pair is never alerted
//!    again;
//! 3. it is published to the connected event streams (each logs its own delivery) and its
//!    webhook is sent in the background ([`crate::webhook`]).
//!
//! Webhooks still owed when the server stopped are resumed when it starts.

use crate::ledger::{Alert, AlertIncident, AlertWatch, Reason};
use crate::watch::Watch;
use crate::webhook::{self, Backoff};
use crate::{matcher, AlertError, AlertHub};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use vigie_index::{ChangedIncident, PostIndex};
use vigie_logs::{Access, AccessLog};
use vigie_situation::incidents::Incident;

/// The cursor file, relative to the data dir.
pub const CURSOR_FILE: &str = "alerts.cursor";

/// Most changed incidents read per scan (the rest at the next one).
pub const SCAN_BATCH: usize = 10_000;

/// Who may receive alerts: the role of a watch's owner when they still may (a removed user, or
/// one whose role lost the right, gets none).
pub type Owners = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How the dispatcher works.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchConfig {
    /// Time between scans.
    pub poll: Duration,
    /// How far before its cursor a scan reads again.
    pub overlap: Duration,
    /// How webhooks are retried.
    pub backoff: Backoff,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            poll: Duration::from_secs(1),
            overlap: Duration::from_secs(300),
            backoff: Backoff::default(),
        }
    }
}

/// Reads the changed incidents and delivers the alerts (see the module doc).
pub struct Dispatcher {
    hub: AlertHub,
    index: PostIndex,
    log: AccessLog,
    owners: Owners,
    config: DispatchConfig,
    client: reqwest::Client,
    cursor_path: PathBuf,
    cursor: DateTime<Utc>,
    /// Revision looked at, by incident, and when it changed (to forget it past the overlap).
    seen: HashMap<String, (u64, DateTime<Utc>)>,
    webhooks: JoinSet<()>,
}

fn origin(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "?".into())
}

impl Dispatcher {
    /// A dispatcher over `index` for the watches and ledger of `hub`, logging to `log`; its
    /// cursor is read from `<data_dir>/alerts.cursor` (none: from the oldest watch, or now).
    pub fn new(
        hub: AlertHub,
        index: PostIndex,
        log: AccessLog,
        owners: Owners,
        data_dir: &std::path::Path,
        config: DispatchConfig,
    ) -> Result<Self, AlertError> {
        let client = webhook::client(&config.backoff)
            .map_err(|e| AlertError::Webhook(format!("HTTP client: {e}")))?;
        let cursor_path = data_dir.join(CURSOR_FILE);
        let cursor = match std::fs::read_to_string(&cursor_path) {
            Ok(text) => text
                .trim()
                .parse::<DateTime<Utc>>()
                .map_err(|e| AlertError::Cursor(format!("{}: {e}", cursor_path.display())))?,
            // First start: from the oldest watch (a watch considers only the incidents that
            // changed after it was made), so an index filled before the server started — `vigie
            // run` replays, then serves — is matched whole.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => hub
                .watches()
                .list()?
                .iter()
                .map(|w| w.created)
                .min()
                .unwrap_or_else(Utc::now),
            Err(e) => {
                return Err(AlertError::Cursor(format!(
                    "{}: {e}",
                    cursor_path.display()
                )))
            }
        };
        Ok(Dispatcher {
            hub,
            index,
            log,
            owners,
            config,
            client,
            cursor_path,
            cursor,
            seen: HashMap::new(),
            webhooks: JoinSet::new(),
        })
    }

    /// Resumes the webhooks still owed (from an earlier run).
    pub fn resume(&mut self) -> Result<usize, AlertError> {
        let owed = self.hub.ledger().owed();
        let n = owed.len();
        for (alert, done) in owed {
            match self.hub.watches().get(&alert.watch.id)? {
                Some(w) => self.send(&w, alert, done),
                None => tracing::info!(alert = %alert.id, "webhook of a removed watch: dropped"),
            }
        }
        Ok(n)
    }

    fn send(&mut self, watch: &Watch, alert: Alert, done: u32) {
        let (Some(url), Some(secret)) = (watch.spec.webhook.clone(), watch.secret.clone()) else {
            return;
        };
        let client = self.client.clone();
        let ledger = self.hub.ledger().clone();
        let backoff = self.config.backoff.clone();
        self.webhooks.spawn(async move {
            webhook::deliver(&client, &ledger, &backoff, &alert, &url, &secret, done).await;
        });
    }

    /// One scan: the alerts it made (their webhooks are on their way; see [`Self::settle`]).
    pub async fn scan(&mut self) -> Result<Vec<Alert>, AlertError> {
        let overlap = chrono::Duration::from_std(self.config.overlap).unwrap_or_default();
        let started = Utc::now();
        let feed = self
            .index
            .incidents_changed_since(self.cursor - overlap, SCAN_BATCH)?;
        // The watches after the feed (see the module doc).
        let watches = self.hub.watches().list()?;
        let full = feed.len() >= SCAN_BATCH;
        let mut made = Vec::new();
        let mut last = None;
        for change in feed {
            last = Some(change.changed);
            let ChangedIncident { incident, changed } = change;
            if self
                .seen
                .get(&incident.id)
                .is_some_and(|(rev, _)| *rev >= incident.revision)
            {
                continue;
            }
            let mut done = true;
            for watch in watches.iter().filter(|w| changed >= w.created) {
                match self.consider(watch, &incident).await {
                    Ok(Some(alert)) => made.push(alert),
                    Ok(None) => {}
                    Err(e) => {
                        // Looked at again at the next scan.
                        tracing::warn!(watch = %watch.id, incident = %incident.id, "alert: {e}");
                        done = false;
                    }
                }
            }
            if done {
                self.seen
                    .insert(incident.id.clone(), (incident.revision, changed));
            }
        }
        // A full batch: go on from its last change; otherwise everything up to the scan's start
        // was read.
        let next = if full {
            last.unwrap_or(self.cursor)
        } else {
            started
        };
        if next > self.cursor {
            self.cursor = next;
            self.save_cursor();
        }
        let forget = self.cursor - overlap - overlap;
        self.seen.retain(|_, (_, changed)| *changed >= forget);
        Ok(made)
    }

    fn save_cursor(&self) {
        let tmp = self.cursor_path.with_extension("cursor.tmp");
        let written = std::fs::write(&tmp, self.cursor.to_rfc3339())
            .and_then(|_| std::fs::rename(&tmp, &self.cursor_path));
        if let Err(e) = written {
            tracing::warn!("alert cursor {}: {e}", self.cursor_path.display());
        }
    }

    /// Makes and sends the alert of `watch` for `incident` if they match and it has none yet.
    async fn consider(
        &mut self,
        watch: &Watch,
        incident: &Incident,
    ) -> Result<Option<Alert>, AlertError> {
        let ledger = self.hub.ledger().clone();
        if ledger.alerted(&watch.id, &incident.id) {
            return Ok(None);
        }
        let Some(role) = (self.owners)(&watch.owner) else {
            return Ok(None);
        };
        let matched = matcher::matched_posts(&self.index, watch, incident)?;
        if matched.is_empty() {
            return Ok(None);
        }
        let reason = if incident.first_seen >= watch.created || incident.members.len() == 1 {
            Reason::Opened
        } else {
            Reason::Grew
        };
        let alert = Alert {
            seq: 0,
            id: String::new(),
            time: Utc::now(),
            reason,
            watch: AlertWatch {
                id: watch.id.clone(),
                name: watch.spec.name.clone(),
                owner: watch.owner.clone(),
            },
            incident: AlertIncident {
                id: incident.id.clone(),
                url: format!("/v1/incidents/{}", incident.id),
                title: incident.title.clone(),
                best: incident.best.clone(),
                category: incident.category.clone(),
                family: incident.family.clone(),
                place: incident.place.clone(),
                first_seen: incident.first_seen,
                last_seen: incident.last_seen,
                post_count: incident.members.len(),
                peak_danger: incident.peak_danger,
            },
            matched_posts: matched,
            webhook: watch.spec.webhook.is_some() && watch.secret.is_some(),
        };
        if let Some(url) = &watch.spec.webhook {
            let access = delivery_access(
                &alert,
                &role,
                &watch.spec.purpose,
                "POST",
                &format!("webhook {}", origin(url)),
            );
            self.log.append(access).await?;
        }
        let Some(alert) = ledger.record(alert)? else {
            return Ok(None);
        };
        tracing::info!(alert = %alert.id, watch = %watch.id, incident = %incident.id, "alert");
        self.hub.publish(&alert);
        self.send(watch, alert.clone(), 0);
        Ok(Some(alert))
    }

    /// Waits until every webhook in flight is delivered or given up (for tests and tools).
    pub async fn settle(&mut self) {
        while self.webhooks.join_next().await.is_some() {}
    }

    /// Resumes owed webhooks, then scans every [`DispatchConfig::poll`] until `shutdown`
    /// resolves; webhooks in flight then stop (they stay owed, and resume at the next start).
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        match self.resume() {
            Ok(0) => {}
            Ok(n) => tracing::info!("resuming {n} webhook(s) owed"),
            Err(e) => tracing::error!("alerts: {e}"),
        }
        let mut shutdown = std::pin::pin!(shutdown);
        let mut tick = tokio::time::interval(self.config.poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = &mut shutdown => break,
            }
            if let Err(e) = self.scan().await {
                tracing::error!("alerts: {e}");
            }
            // Reap the finished webhook tasks.
            while self.webhooks.try_join_next().is_some() {}
        }
        self.webhooks.abort_all();
    }
}

/// The access-log entry of one delivery of `alert` (to a webhook, or on an event stream).
pub fn delivery_access(
    alert: &Alert,
    role: &str,
    purpose: &str,
    method: &str,
    endpoint: &str,
) -> Access {
    let mut params = serde_json::Map::new();
    params.insert("watch".into(), alert.watch.id.clone().into());
    params.insert("watch_name".into(), alert.watch.name.clone().into());
    params.insert("incident".into(), alert.incident.id.clone().into());
    if !alert.id.is_empty() {
        params.insert("alert".into(), alert.id.clone().into());
    }
    let posts = alert.shown_posts();
    Access {
        time: Utc::now(),
        user: Some(alert.watch.owner.clone()),
        role: Some(role.to_string()),
        purpose: Some(purpose.to_string()),
        method: method.to_string(),
        endpoint: endpoint.to_string(),
        params,
        status: 200,
        count: posts.len() as u64,
        posts,
    }
}
