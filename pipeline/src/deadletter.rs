//! Dead letters: what a stage could not process, kept for a person to look at.
//!
//! A message that a stage cannot use (not JSON, not an envelope, over a size limit) is published
//! to the dead-letter topic (`vigie.deadletter`) and the stage goes on with the messages around
//! it. The letter's key is the original key (its first [`MAX_KEY_BYTES`] bytes), its value the
//! original bytes, and its headers say why and where from:
//!
//! | header | value |
//! |---|---|
//! | `vigie-reason` | why the message was refused, e.g. the size and the limit |
//! | `vigie-source-topic`, `vigie-source-partition`, `vigie-source-offset` | where it sat |
//! | `vigie-original-length` | the original value's length in bytes |
//! | `vigie-original-sha256` | SHA-256 (hex) of the original value |
//! | `vigie-kept-bytes` | how many bytes of the original the letter's value holds |
//!
//! ## Size policy
//! A poison message may be larger than what the broker accepts (Kafka's default
//! `message.max.bytes` is 1 MB; a 10 MB post can reach the raw topic only through a producer and
//! topic configured for it). So a letter keeps at most [`MAX_VALUE_BYTES`] (512 KiB) of the
//! original — its start — and the length and SHA-256 of the whole, enough to recognise it in
//! the source. If the broker still refuses the letter for its size (a topic with a lower limit),
//! it is published again with an empty value and the same headers (`vigie-kept-bytes: 0`): the
//! stage never stalls on a message it cannot republish. Any other error is returned, and the
//! stage stops before committing past the message, which is then read again: a dead letter is
//! published before the commit that moves past its message, so after a crash it may be
//! published twice, never lost.

use crate::error::Result;
use vigie_record::bus::{Delivery, Publisher};

/// Most bytes of the original value a dead letter keeps.
pub const MAX_VALUE_BYTES: usize = 512 * 1024;

/// Most bytes of the original key a dead letter keeps.
pub const MAX_KEY_BYTES: usize = 1024;

/// Publishes `d` to the dead-letter topic with `reason`, its source coordinates and the length
/// and SHA-256 of its value as headers, its value capped at [`MAX_VALUE_BYTES`].
pub async fn dead_letter(dead: &Publisher, d: &Delivery, reason: &str) -> Result<()> {
    tracing::warn!(coords = ?d.coords, bytes = d.payload.len(), "dead letter: {reason}");
    let kept = &d.payload[..d.payload.len().min(MAX_VALUE_BYTES)];
    match send(dead, d, reason, kept).await {
        Err(e) if e.is_too_large() => {
            tracing::warn!(coords = ?d.coords, "dead letter refused for its size ({e}); sent without its value");
            send(dead, d, reason, &[]).await?;
        }
        sent => {
            sent?;
        }
    }
    Ok(())
}

/// Publishes the letter of `d` with `value` (a prefix of the original value).
async fn send(
    dead: &Publisher,
    d: &Delivery,
    reason: &str,
    value: &[u8],
) -> Result<(), vigie_record::bus::BusError> {
    let (partition, offset) = (d.coords.partition.to_string(), d.coords.offset.to_string());
    let key = d.key.as_deref().unwrap_or_default();
    let key = String::from_utf8_lossy(&key[..key.len().min(MAX_KEY_BYTES)]);
    let length = d.payload.len().to_string();
    let sha256 = vigie_record::content_sha256(&d.payload);
    let kept = value.len().to_string();
    dead.send_with_headers(
        &key,
        value,
        &[
            ("vigie-reason", reason),
            ("vigie-source-topic", &d.coords.topic),
            ("vigie-source-partition", &partition),
            ("vigie-source-offset", &offset),
            ("vigie-original-length", &length),
            ("vigie-original-sha256", &sha256),
            ("vigie-kept-bytes", &kept),
        ],
    )
    .await?;
    Ok(())
}
