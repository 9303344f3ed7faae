//! The polite HTTP client every web source shares.
//!
//! ## What it promises a server
//! - **A clear User-Agent** naming Vigie, its version and a contact ([`HttpConfig::user_agent`]).
//! - **A rate limit per host** (governor, [`HttpConfig::requests_per_minute`] with a small
//!   burst): sources that share a host share its budget, because they share this client.
//! - **`Retry-After` honoured** on 429 and 503 (seconds or HTTP date): the client waits as asked,
//!   up to [`HttpConfig::max_retry_after`]; a longer wait ends the fetch with
//!   [`FetchErrorKind::RateLimited`], which carries the wait so the caller sleeps that long.
//!   **Clamped**: a wait is never longer than [`HttpConfig::max_wait`] (1 h by default), so a
//!   `Retry-After: 18446744073709551615` or a date in the year 9999 neither overflows nor parks
//!   a source for centuries.
//! - **Exponential backoff with jitter** on connection failures, timeouts, truncated bodies and
//!   5xx answers: attempt `n` waits between `d/2` and `d`, where `d = min(base * 2^n, max)`.
//!   After [`HttpConfig::max_retries`] retries the error is returned.
//!
//! ## What it promises the caller
//! - **Bounded waits**: connect and read timeouts, and a timeout for the whole request.
//! - **Bounded memory**: a body larger than [`HttpConfig::max_body_bytes`] is refused (from its
//!   `Content-Length` when declared, else as soon as it grows past the cap).
//! - **Errors that say where**: every [`FetchError`] names the source and the URL, and says what
//!   was wrong: invalid UTF-8 (with the offset), an HTML page where JSON was expected, a body
//!   cut short (bytes received of bytes declared), a status, a timeout.
//! - **Waits are reported**: each rate-limit wait is returned in [`Fetched::waits`] as a
//!   coverage [`Gap`].

use crate::coverage::{Gap, GapKind};
use crate::IngestError;
use chrono::Utc;
use governor::{DefaultKeyedRateLimiter, Quota};
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the shared HTTP client (the `[http]` section of the sources file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The User-Agent sent with every request; put a contact in it (Reddit requires one).
    pub user_agent: String,
    /// How long to wait for a connection.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long to wait for each read of the response.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// How long a whole request may take, body included.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// The largest response body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Requests per minute to any one host (all sources together).
    pub requests_per_minute: u32,
    /// Requests that may go out back to back before the rate applies.
    pub burst: u32,
    /// Retries after a failure (timeout, connection error, 5xx, 429) before giving up.
    pub max_retries: u32,
    /// First backoff delay.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Longest backoff delay.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Longest `Retry-After` the client waits out itself; a longer one ends the fetch.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Longest `Retry-After` believed at all: a longer one (`18446744073709551615`, a date in
    /// the year 9999) is clamped to this, so no server can park a source for centuries.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            user_agent: format!(
                "Vigie/{} (public danger-signal monitor; set [http] user_agent with a contact)",
                crate::INGESTOR_VERSION
            ),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            max_body_bytes: 8 * 1024 * 1024,
            requests_per_minute: 30,
            burst: 2,
            max_retries: 4,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
            max_wait: Duration::from_secs(3600),
        }
    }
}

/// A fetch that failed: names the source and the URL, then says what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: GET {url}: {kind}")]
pub struct FetchError {
    /// The source configuration's name.
    pub source_name: String,
    /// The URL fetched.
    pub url: String,
    /// What went wrong.
    pub kind: FetchErrorKind,
}

impl FetchError {
    /// The error `kind` of source `source_name` fetching `url`.
    pub fn new(source_name: &str, url: &str, kind: FetchErrorKind) -> Self {
        FetchError {
            source_name: source_name.to_string(),
            url: url.to_string(),
            kind,
        }
    }

    /// How long the server asked us to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.kind {
            FetchErrorKind::RateLimited { retry_after, .. } => Some(*retry_after),
            FetchErrorKind::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// What went wrong with a fetch.
#[derive(Debug, thiserror::Error)]
pub enum FetchErrorKind {
    /// No connection could be made.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The server answered with an error status.
    #[error("HTTP {status}{}", retry_after.map(|d| format!(" (Retry-After {}s)", d.as_secs())).unwrap_or_default())]
    Status {
        /// The status code.
        status: u16,
        /// The `Retry-After` it sent, if any.
        retry_after: Option<Duration>,
    },
    /// The server asks for a longer wait than the client waits out itself.
    #[error("rate limited (HTTP {status}): asked to wait {}s, more than the {}s waited in place", retry_after.as_secs(), max.as_secs())]
    RateLimited {
        /// The status code (429 or 503).
        status: u16,
        /// The wait asked for.
        retry_after: Duration,
        /// [`HttpConfig::max_retry_after`].
        max: Duration,
    },
    /// The body is larger than allowed.
    #[error("response larger than the {limit} bytes allowed{}", declared.map(|d| format!(" (Content-Length {d})")).unwrap_or_default())]
    Oversized {
        /// [`HttpConfig::max_body_bytes`].
        limit: u64,
        /// The declared length, if any.
        declared: Option<u64>,
    },
    /// The connection closed before the body was complete.
    #[error("truncated body: received {received} bytes{}", expected.map(|e| format!(" of {e} declared")).unwrap_or_default())]
    Truncated {
        /// Bytes received.
        received: u64,
        /// Bytes declared by `Content-Length`, if any.
        expected: Option<u64>,
    },
    /// The body is not UTF-8.
    #[error("body is not valid UTF-8 (first invalid byte at offset {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// An HTML page (or something else) came where JSON was expected.
    #[error("expected JSON, got {content_type} starting {snippet:?}")]
    NotJson {
        /// The `Content-Type` received.
        content_type: String,
        /// The first characters of the body.
        snippet: String,
    },
    /// The JSON does not have the expected shape; the message names the field and position.
    #[error("unexpected JSON: {0}")]
    BadJson(String),
    /// The body is not an RSS, Atom or JSON feed.
    #[error("not a feed: {0}")]
    BadFeed(String),
    /// Any other failure of the request.
    #[error("request failed: {0}")]
    Other(String),
}

/// A successful response, its body read in full.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The source that fetched it.
    pub source_name: String,
    /// The URL fetched.
    pub url: String,
    /// The HTTP status (2xx, or 304 Not Modified).
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most [`HttpConfig::max_body_bytes`].
    pub body: Vec<u8>,
    /// The rate-limit waits it took, as coverage gaps.
    pub waits: Vec<Gap>,
}

impl Fetched {
    fn error(&self, kind: FetchErrorKind) -> FetchError {
        FetchError {
            source_name: self.source_name.clone(),
            url: self.url.clone(),
            kind,
        }
    }

    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, FetchError> {
        std::str::from_utf8(&self.body).map_err(|e| {
            self.error(FetchErrorKind::InvalidUtf8 {
                offset: e.valid_up_to(),
            })
        })
    }

    /// The body decoded as JSON of type `T`: refuses invalid UTF-8, HTML pages and bodies cut
    /// short with errors that say so.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, FetchError> {
        let text = self.text()?;
        let content_type = self
            .header(CONTENT_TYPE.as_str())
            .unwrap_or("no Content-Type");
        let starts_like_markup = text.trim_start().starts_with('<');
        if starts_like_markup || content_type.contains("html") {
            let snippet: String = text.trim_start().chars().take(60).collect();
            return Err(self.error(FetchErrorKind::NotJson {
                content_type: content_type.to_string(),
                snippet,
            }));
        }
        serde_json::from_str(text).map_err(|e| {
            if e.is_eof() {
                self.error(FetchErrorKind::Truncated {
                    received: self.body.len() as u64,
                    expected: None,
                })
            } else {
                self.error(FetchErrorKind::BadJson(e.to_string()))
            }
        })
    }
}

/// The delay before retry `attempt` (0-based): between `d/2` and `d`, `d = min(base * 2^n, max)`.
pub fn backoff_delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(30));
    let d = base.saturating_mul(factor).min(max);
    let half = d / 2;
    let jitter_ms = fastrand::u64(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter_ms)
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date (a past date means now),
/// clamped to `max`: a number too large for any integer type, or a date millennia away, is
/// `max`, never an overflow.
pub fn parse_retry_after(value: &str, max: Duration) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: seconds, however many (past u64::MAX they are just "very long").
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(max));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(max),
    )
}

/// The links of an HTTP `Link` header (RFC 8288), as `(url, rel)` pairs.
pub fn parse_link_header(value: &str) -> Vec<(String, String)> {
    let mut links = Vec::new();
    for part in value.split(',') {
        let mut pieces = part.split(';');
        let Some(target) = pieces.next() else {
            continue;
        };
        let target = target.trim();
        let Some(url) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>')) else {
            continue;
        };
        for param in pieces {
            if let Some((key, value)) = param.split_once('=') {
                if key.trim().eq_ignore_ascii_case("rel") {
                    for rel in value.trim().trim_matches('"').split_whitespace() {
                        links.push((url.to_string(), rel.to_string()));
                    }
                }
            }
        }
    }
    links
}

/// The client every web source shares: one connection pool, one rate limiter per host.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    /// The same, without a whole-request timeout: for streams that stay open (read timeout only).
    stream_client: reqwest::Client,
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    config: Arc<HttpConfig>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with `config`.
    pub fn new(config: HttpConfig) -> Result<Self, IngestError> {
        let bad = |message: String| IngestError::Config {
            location: "[http]".into(),
            message,
        };
        let per_minute = NonZeroU32::new(config.requests_per_minute)
            .ok_or_else(|| bad("requests_per_minute must be at least 1".into()))?;
        let burst = NonZeroU32::new(config.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?;
        let stream_client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .build()
            .map_err(|e| bad(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient {
            client,
            stream_client,
            limiter: Arc::new(DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(per_minute).allow_burst(burst),
            )),
            config: Arc::new(config),
        })
    }

    /// The client's settings.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// GETs `url` for source `source_name` with extra `headers`, politely (see the module
    /// documentation): rate-limited, retried with backoff, `Retry-After` honoured, body capped.
    /// Returns 2xx and 304 answers; other statuses are errors.
    pub async fn get(
        &self,
        source_name: &str,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Fetched, FetchError> {
        let error = |kind| FetchError::new(source_name, url, kind);
        let (parsed, host) = target(source_name, url)?;
        let mut waits = Vec::new();
        let mut attempt = 0u32;
        loop {
            self.limiter.until_key_ready(&host).await;
            let failure = match self.once(parsed.clone(), headers).await {
                Ok((status, headers, body)) => {
                    return Ok(Fetched {
                        source_name: source_name.to_string(),
                        url: url.to_string(),
                        status,
                        headers,
                        body,
                        waits,
                    })
                }
                Err(kind) => kind,
            };
            let retryable = match &failure {
                FetchErrorKind::Connect(_)
                | FetchErrorKind::Timeout(_)
                | FetchErrorKind::Truncated { .. } => true,
                FetchErrorKind::Status { status, .. } => *status == 429 || *status >= 500,
                _ => false,
            };
            if !retryable {
                return Err(error(failure));
            }
            let retry_after = match &failure {
                FetchErrorKind::Status {
                    status: 429 | 503,
                    retry_after,
                } => *retry_after,
                _ => None,
            };
            if let (Some(wait), FetchErrorKind::Status { status, .. }) = (retry_after, &failure) {
                if wait > self.config.max_retry_after {
                    return Err(error(FetchErrorKind::RateLimited {
                        status: *status,
                        retry_after: wait,
                        max: self.config.max_retry_after,
                    }));
                }
            }
            if attempt >= self.config.max_retries {
                return Err(error(failure));
            }
            let wait = retry_after.unwrap_or_else(|| {
                backoff_delay(attempt, self.config.backoff_base, self.config.backoff_max)
            });
            tracing::warn!(
                source = source_name,
                url,
                attempt = attempt + 1,
                wait_ms = wait.as_millis() as u64,
                "{failure}; retrying"
            );
            if let (Some(_), FetchErrorKind::Status { status, .. }) = (retry_after, &failure) {
                let from = Utc::now();
                waits.push(Gap {
                    kind: GapKind::RateLimited,
                    from,
                    to: Some(from + chrono::Duration::from_std(wait).unwrap_or_default()),
                    detail: format!("HTTP {status} Retry-After {}s on {url}", wait.as_secs()),
                });
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Opens a long-lived GET (a server-sent event stream) for source `source_name`: the same
    /// User-Agent, connect timeout and per-host rate limit as [`HttpClient::get`], and the read
    /// timeout between chunks, but no whole-request timeout and no retry (the caller reconnects
    /// with its own backoff). A non-2xx answer is an error carrying its `Retry-After`.
    pub async fn open_stream(
        &self,
        source_name: &str,
        url: &str,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<reqwest::Response, FetchError> {
        let error = |kind| FetchError::new(source_name, url, kind);
        let (parsed, host) = target(source_name, url)?;
        self.limiter.until_key_ready(&host).await;
        let mut request = self.stream_client.get(parsed);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| error(classify(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, self.config.max_wait));
            return Err(error(FetchErrorKind::Status {
                status: status.as_u16(),
                retry_after,
            }));
        }
        Ok(response)
    }

    async fn once(
        &self,
        url: reqwest::Url,
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<(u16, HeaderMap, Vec<u8>), FetchErrorKind> {
        let mut request = self.client.get(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let mut response = request.send().await.map_err(|e| classify(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        if !(status.is_success() || status == StatusCode::NOT_MODIFIED) {
            let retry_after = headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, self.config.max_wait));
            return Err(FetchErrorKind::Status {
                status: status.as_u16(),
                retry_after,
            });
        }
        let limit = self.config.max_body_bytes;
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|d| d > limit) {
            return Err(FetchErrorKind::Oversized { limit, declared });
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit) as usize);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > limit {
                        return Err(FetchErrorKind::Oversized { limit, declared });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(FetchErrorKind::Timeout(e.to_string())),
                Err(_) => {
                    return Err(FetchErrorKind::Truncated {
                        received: body.len() as u64,
                        expected: declared,
                    })
                }
            }
        }
        if declared.is_some_and(|d| d > body.len() as u64) {
            return Err(FetchErrorKind::Truncated {
                received: body.len() as u64,
                expected: declared,
            });
        }
        Ok((status.as_u16(), headers, body))
    }
}

fn classify(e: &reqwest::Error) -> FetchErrorKind {
    // reqwest's Display stops at the outermost error; the chain says why (refused, reset...).
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    if e.is_timeout() {
        FetchErrorKind::Timeout(message)
    } else if e.is_connect() {
        FetchErrorKind::Connect(message)
    } else {
        FetchErrorKind::Other(message)
    }
}

/// The key of `url`'s host in the per-host rate limiter: `host:port`.
/// `url` parsed, and its rate-limit key ([`rate_key`]); the error names the source and URL.
fn target(source_name: &str, url: &str) -> Result<(reqwest::Url, String), FetchError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| FetchError::new(source_name, url, FetchErrorKind::Other(e.to_string())))?;
    let host = rate_key(&parsed);
    Ok((parsed, host))
}

fn rate_key(url: &reqwest::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for attempt in 0..10 {
            let d = backoff_delay(attempt, base, max);
            let full = (base * 2u32.pow(attempt)).min(max);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        let draws: std::collections::HashSet<_> =
            (0..50).map(|_| backoff_delay(3, base, max)).collect();
        assert!(draws.len() > 5, "no jitter: {draws:?}");
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let max = Duration::from_secs(3600);
        assert_eq!(parse_retry_after(" 7 ", max), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(later), max).unwrap();
        assert!(
            d > Duration::from_secs(110) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", max),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", max), None);
        assert_eq!(parse_retry_after("-1", max), None);
    }

    #[test]
    fn retry_after_beyond_any_integer_or_in_the_year_9999_is_clamped_to_max_wait() {
        let max = Duration::from_secs(3600);
        for huge in [
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(parse_retry_after(huge, max), Some(max), "{huge}");
        }
    }

    #[test]
    fn link_headers_are_parsed() {
        let links = parse_link_header(
            r#"<https://mamot.fr/api/v1/timelines/tag/feu?limit=2&max_id=113>; rel="next", <https://mamot.fr/api/v1/timelines/tag/feu?limit=2&min_id=115>; rel="prev""#,
        );
        assert_eq!(
            links,
            vec![
                (
                    "https://mamot.fr/api/v1/timelines/tag/feu?limit=2&max_id=113".to_string(),
                    "next".to_string()
                ),
                (
                    "https://mamot.fr/api/v1/timelines/tag/feu?limit=2&min_id=115".to_string(),
                    "prev".to_string()
                ),
            ]
        );
        assert!(parse_link_header("garbage").is_empty());
    }

    fn fetched(content_type: &str, body: &[u8]) -> Fetched {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        Fetched {
            source_name: "mamot".into(),
            url: "https://mamot.fr/api/v1/timelines/public".into(),
            status: 200,
            headers,
            body: body.to_vec(),
            waits: Vec::new(),
        }
    }

    #[test]
    fn body_errors_name_source_url_and_fault() {
        let e = fetched("application/json", b"[1, 2, \xff]")
            .json::<Vec<u8>>()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("mamot: GET https://mamot.fr/api/v1/timelines/public: ")
                && e.contains("not valid UTF-8")
                && e.contains("offset 7"),
            "{e}"
        );
        let e = fetched(
            "text/html; charset=utf-8",
            b"<!DOCTYPE html><html>Maintenance",
        )
        .json::<Vec<u8>>()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("expected JSON, got text/html") && e.contains("<!DOCTYPE"),
            "{e}"
        );
        let e = fetched("application/json", b"[{\"id\": \"1\"}, {\"id\"")
            .json::<Vec<serde_json::Value>>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated body"), "{e}");
        let e = fetched("application/json", b"{\"id\": 1}")
            .json::<Vec<u8>>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("unexpected JSON"), "{e}");
        assert_eq!(
            fetched("application/json", b"[1,2]")
                .json::<Vec<u8>>()
                .unwrap(),
            vec![1, 2]
        );
    }
}
