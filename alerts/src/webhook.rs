//! Webhooks: an alert POSTed as JSON, signed, retried with backoff.
//!
//! ## The request
//! `POST <url>` with `Content-Type: application/json`, the alert as body, and:
//! - `Vigie-Alert-Id: al-17`: the same on every try of one alert (a receiver keeps the ids it
//!   accepted and ignores a repeat);
//! - `Vigie-Watch: w-…`: the watch's id;
//! - `Vigie-Signature: t=<unix seconds>,v1=<hex>`: HMAC-SHA256, keyed with the watch's secret,
//!   of `<t>.<body>` (see [`sign`] and [`verify`]). The time is that of the try, so a receiver
//!   can refuse an old signature replayed.
//!
//! Redirects are not followed (a webhook URL is checked when the watch is made, not where it
//! would lead), and each try has a time limit.
//!
//! ## Retries
//! A 2xx answer delivers it. No answer, a 5xx, a 408 or a 429 is tried again after
//! [`Backoff::initial`], then twice as long each time up to [`Backoff::max`], for
//! [`Backoff::attempts`] tries in all; another 4xx is given up at once (the receiver refuses it;
//! trying again would not change its mind). Every try is a line of the ledger.

use crate::ledger::{Alert, Delivery, Ledger, Outcome};
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "vigie-signature";
/// The alert id header.
pub const ALERT_ID_HEADER: &str = "vigie-alert-id";
/// The watch id header.
pub const WATCH_HEADER: &str = "vigie-watch";

/// How a webhook is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Wait before the second try.
    pub initial: Duration,
    /// Longest wait between two tries.
    pub max: Duration,
    /// Tries in all.
    pub attempts: u32,
    /// Time limit of one try.
    pub timeout: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            attempts: 10,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The wait after try `attempt` (1-based) failed.
    pub fn wait(&self, attempt: u32) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        doubled.min(self.max)
    }
}

/// `t=<time>,v1=<hex HMAC-SHA256 of "<time>.<body>">`.
pub fn sign(secret: &[u8], time: i64, body: &[u8]) -> String {
    format!("t={time},v1={}", hex::encode(mac(secret, time, body)))
}

fn mac(secret: &[u8], time: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(time.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Whether `header` is a valid signature of `body` with `secret`, made at most `max_age`
/// before `now` (what a receiver checks; the comparison is constant-time).
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: i64, max_age: i64) -> bool {
    let mut time = None;
    let mut sig = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => time = t.parse::<i64>().ok(),
            Some(("v1", s)) => sig = hex::decode(s).ok(),
            _ => {}
        }
    }
    let (Some(time), Some(sig)) = (time, sig) else {
        return false;
    };
    if (now - time).abs() > max_age {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(time.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The HTTP client of webhooks: no redirects, no proxy from the environment.
pub fn client(backoff: &Backoff) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(backoff.timeout)
        .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Tries to deliver `alert` to `url`, signed with `secret` (hex), from try `done + 1` on, until
/// it is delivered or given up, writing each try to `ledger`. Returns the last outcome.
pub async fn deliver(
    client: &reqwest::Client,
    ledger: &Ledger,
    backoff: &Backoff,
    alert: &Alert,
    url: &str,
    secret: &str,
    done: u32,
) -> Outcome {
    let body = match serde_json::to_vec(alert) {
        Ok(b) => b,
        Err(e) => {
            record(
                ledger,
                alert.seq,
                done + 1,
                Outcome::GaveUp,
                None,
                Some(e.to_string()),
            );
            return Outcome::GaveUp;
        }
    };
    let key = hex::decode(secret).unwrap_or_else(|_| secret.as_bytes().to_vec());
    let mut attempt = done;
    loop {
        attempt += 1;
        let now = Utc::now().timestamp();
        let sent = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ALERT_ID_HEADER, &alert.id)
            .header(WATCH_HEADER, &alert.watch.id)
            .header(SIGNATURE_HEADER, sign(&key, now, &body))
            .body(body.clone())
            .send()
            .await;
        let (mut outcome, status, error) = match sent {
            Ok(r) if r.status().is_success() => (Outcome::Delivered, Some(r.status()), None),
            Ok(r) => {
                let s = r.status();
                let again = s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429;
                let outcome = if again {
                    Outcome::Retry
                } else {
                    Outcome::GaveUp
                };
                (outcome, Some(s), None)
            }
            Err(e) => (Outcome::Retry, None, Some(e.to_string())),
        };
        if outcome == Outcome::Retry && attempt >= backoff.attempts {
            outcome = Outcome::GaveUp;
        }
        record(
            ledger,
            alert.seq,
            attempt,
            outcome,
            status.map(|s| s.as_u16()),
            error.clone(),
        );
        match outcome {
            Outcome::Delivered => {
                tracing::info!(alert = %alert.id, watch = %alert.watch.id, attempt, "webhook delivered");
                return outcome;
            }
            Outcome::GaveUp => {
                tracing::warn!(
                    alert = %alert.id, watch = %alert.watch.id, attempt, ?status, ?error,
                    "webhook given up"
                );
                return outcome;
            }
            Outcome::Retry => {
                let wait = backoff.wait(attempt);
                tracing::debug!(alert = %alert.id, attempt, ?status, ?error, ?wait, "webhook retry");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

fn record(
    ledger: &Ledger,
    seq: u64,
    attempt: u32,
    outcome: Outcome,
    status: Option<u16>,
    error: Option<String>,
) {
    if let Err(e) = ledger.delivery(Delivery {
        seq,
        attempt,
        time: Utc::now(),
        outcome,
        status,
        error,
    }) {
        tracing::error!("alert ledger: {e}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_key_body_and_time() {
        let key = b"secret";
        let header = sign(key, 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify(key, &header, b"{\"a\":1}", 1_700_000_010, 300));
        assert!(!verify(b"other", &header, b"{\"a\":1}", 1_700_000_010, 300));
        assert!(!verify(key, &header, b"{\"a\":2}", 1_700_000_010, 300));
        // Too old: a replay.
        assert!(!verify(key, &header, b"{\"a\":1}", 1_700_001_000, 300));
        // A moved time breaks the MAC.
        let moved = header.replace("t=1700000000", "t=1700000999");
        assert!(!verify(key, &moved, b"{\"a\":1}", 1_700_001_000, 300));
        for junk in ["", "t=1", "v1=00", "t=x,v1=zz"] {
            assert!(!verify(key, junk, b"", 1, 300));
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5),
            ..Backoff::default()
        };
        let waits: Vec<u64> = (1..=5).map(|a| b.wait(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        assert_eq!(b.wait(u32::MAX), Duration::from_secs(5));
    }
}
