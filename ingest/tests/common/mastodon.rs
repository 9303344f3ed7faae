//! Mastodon statuses as the REST timelines and the streaming API carry them, shared by the
//! Mastodon tests.

use chrono::{DateTime, Utc};

/// Status ids are snowflakes: milliseconds since the epoch, shifted left 16 bits.
pub const FIRST_MS: u64 = 1_795_766_400_000; // 2026-11-27T08:00:00Z

pub fn status_id(n: u64) -> u64 {
    (FIRST_MS + n * 60_000) << 16
}

pub fn created(n: u64) -> String {
    DateTime::<Utc>::from_timestamp_millis((FIRST_MS + n * 60_000) as i64)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Status `n` by `acct` (`user`, on mamot.fr, or `user@domain`) with the HTML `content`, as
/// `GET /api/v1/timelines/*` and the streaming API's `update` payload carry it (fields as in
/// the API documentation).
pub fn status(
    n: u64,
    acct: &str,
    content: &str,
    language: Option<&str>,
    visibility: &str,
) -> serde_json::Value {
    let id = status_id(n);
    let (username, domain) = acct.split_once('@').unwrap_or((acct, "mamot.fr"));
    serde_json::json!({
        "id": id.to_string(),
        "created_at": created(n),
        "in_reply_to_id": null,
        "in_reply_to_account_id": null,
        "sensitive": false,
        "spoiler_text": "",
        "visibility": visibility,
        "language": language,
        "uri": format!("https://{domain}/users/{username}/statuses/{id}"),
        "url": format!("https://{domain}/@{username}/{id}"),
        "replies_count": 0,
        "reblogs_count": 2,
        "favourites_count": 5,
        "edited_at": null,
        "favourited": false,
        "reblogged": false,
        "content": content,
        "reblog": null,
        "application": {"name": "Web", "website": null},
        "account": {
            "id": "109348012345678901",
            "username": username,
            "acct": acct,
            "display_name": "Someone",
            "locked": false,
            "bot": false,
            "discoverable": true,
            "group": false,
            "created_at": "2022-11-14T00:00:00.000Z",
            "note": "<p>Lyonnaise</p>",
            "url": format!("https://{domain}/@{username}"),
            "avatar": "https://mamot.fr/avatars/original/missing.png",
            "header": "https://mamot.fr/headers/original/missing.png",
            "followers_count": 120,
            "following_count": 80,
            "statuses_count": 900,
            "last_status_at": "2026-11-27",
            "emojis": [],
            "fields": []
        },
        "media_attachments": [],
        "mentions": [],
        "tags": [],
        "emojis": [],
        "card": null,
        "poll": null
    })
}
