//! The bytes that are chained and signed, and the JSON lines that carry them.
//!
//! Everything an independent verifier needs is defined here; see the [module
//! documentation](super) for the rules in prose.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The `prev` of the first entry (seq 1): 32 zero bytes.
pub const GENESIS: Hash = [0; 32];

/// Which of Vigie's three signed logs a line belongs to. Each has its own domain string, which
/// prefixes every hashed and signed message, so that no entry, checkpoint or seal of one log
/// can be passed off as one of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogKind {
    /// The API's access log (`<data_dir>/access-log/`): domain `vigie-access-log/v1`, the
    /// domain every log used before the three were told apart.
    Access,
    /// The retention log (`<data_dir>/retention-log/`): domain `vigie-retention-log/v1`.
    Retention,
    /// The re-identification log (`<data_dir>/reidentify-log/`): domain
    /// `vigie-reidentify-log/v1`.
    Reidentify,
}

impl LogKind {
    /// The three kinds.
    pub const ALL: [LogKind; 3] = [LogKind::Access, LogKind::Retention, LogKind::Reidentify];

    /// The domain string: `vigie-access-log/v1`, `vigie-retention-log/v1` or
    /// `vigie-reidentify-log/v1`.
    pub fn domain(self) -> &'static str {
        match self {
            LogKind::Access => "vigie-access-log/v1",
            LogKind::Retention => "vigie-retention-log/v1",
            LogKind::Reidentify => "vigie-reidentify-log/v1",
        }
    }

    /// The short name: `access`, `retention` or `reidentify` (as in `--kind`).
    pub fn name(self) -> &'static str {
        match self {
            LogKind::Access => "access",
            LogKind::Retention => "retention",
            LogKind::Reidentify => "reidentify",
        }
    }

    /// The kind of a short name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The hash of entry `seq`:
    /// `SHA-256(domain || "\n" || seq as 8 bytes big-endian || prev || body_digest)`.
    pub fn entry_hash(self, seq: u64, prev: &Hash, body_digest: &Hash) -> Hash {
        let mut h = Sha256::new();
        h.update(self.domain().as_bytes());
        h.update(b"\n");
        h.update(seq.to_be_bytes());
        h.update(prev);
        h.update(body_digest);
        h.finalize().into()
    }
}

impl std::fmt::Display for LogKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// SHA-256 of an entry's body: the bytes of the `body` value exactly as they appear in its line.
pub fn body_digest(body: &str) -> Hash {
    Sha256::digest(body.as_bytes()).into()
}

/// Lower-case hex of a hash.
pub fn to_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

/// A hash from 64 hex digits.
pub fn from_hex(text: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// The time format of checkpoints and seals: RFC 3339, UTC, microseconds.
pub fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A signed statement that entry `seq` of the log has hash `hash`: since each entry hashes its
/// predecessor, it commits to every entry up to `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The last entry covered.
    pub seq: u64,
    /// That entry's hash (hex).
    pub hash: String,
    /// When the checkpoint was signed.
    pub time: String,
    /// The ed25519 public key that signed (hex), for the reader's information: verifiers use
    /// the key they were given, never this one.
    pub key: String,
    /// ed25519 signature (hex) of [`Checkpoint::message`].
    pub sig: String,
}

impl Checkpoint {
    /// The signed bytes: `<domain> checkpoint <seq> <hash hex> <time>` (ASCII), e.g.
    /// `vigie-access-log/v1 checkpoint 12 <hash hex> 2026-11-27T08:00:00.000000Z`.
    pub fn message(kind: LogKind, seq: u64, hash: &str, time: &str) -> String {
        format!("{} checkpoint {seq} {hash} {time}", kind.domain())
    }

    /// Signs entry `seq` of a log of `kind` with hash `hash`, now.
    pub fn sign(kind: LogKind, seq: u64, hash: &Hash, key: &SigningKey) -> Self {
        let (hash, time) = (to_hex(hash), now_text());
        let sig = key.sign(Self::message(kind, seq, &hash, &time).as_bytes());
        Checkpoint {
            seq,
            hash,
            time,
            key: hex::encode(key.verifying_key().as_bytes()),
            sig: hex::encode(sig.to_bytes()),
        }
    }

    /// Whether `key` made the signature, for a log of `kind`.
    pub fn verify(&self, kind: LogKind, key: &VerifyingKey) -> bool {
        verify_sig(
            key,
            Self::message(kind, self.seq, &self.hash, &self.time).as_bytes(),
            &self.sig,
        )
    }

    /// The kind of log whose domain the signature verifies under, if any.
    pub fn kind(&self, key: &VerifyingKey) -> Option<LogKind> {
        LogKind::ALL.into_iter().find(|k| self.verify(*k, key))
    }
}

/// A line of a heads file (see [`super::LogBuilder::heads_file`]): a signed checkpoint, published
/// outside the log, and the short name of the log it is of: `{"log":"access","checkpoint":{...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// [`LogKind::name`] of the log (for the reader: verifiers check the signature's domain).
    pub log: String,
    /// The checkpoint, exactly as the log holds it.
    pub checkpoint: Checkpoint,
}

/// The line of a published head, with its `\n`.
pub fn head_line(kind: LogKind, cp: &Checkpoint) -> String {
    let mut s = serde_json::json!({ "log": kind.name(), "checkpoint": cp }).to_string();
    s.push('\n');
    s
}

/// The last line of an export: a signed statement of what the export holds, so that a cut tail
/// or a cut head cannot pass for a shorter export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    /// Seq of the first entry of the export (0 when it holds none).
    pub first: u64,
    /// Seq of the last entry of the export (0 when it holds none).
    pub last: u64,
    /// Hash of entry `last` (hex; zeros when the export holds none).
    pub hash: String,
    /// How many entries matched the filter and are shown in full.
    pub selected: u64,
    /// The `from` filter (RFC 3339), if any.
    pub from: Option<String>,
    /// The `to` filter (RFC 3339), if any.
    pub to: Option<String>,
    /// The `user` filter, if any.
    pub user: Option<String>,
    /// When the export was made.
    pub time: String,
    /// The signing public key (hex), for information.
    pub key: String,
    /// ed25519 signature (hex) of [`Seal::message`].
    pub sig: String,
}

impl Seal {
    /// The signed bytes: `<domain> export <first> <last> <hash hex> <selected> <from> <to>
    /// <user> <time>`, where from, to and user are JSON (a string or `null`).
    pub fn message(&self, kind: LogKind) -> String {
        let json = |v: &Option<String>| serde_json::to_string(v).unwrap_or_default();
        format!(
            "{} export {} {} {} {} {} {} {} {}",
            kind.domain(),
            self.first,
            self.last,
            self.hash,
            self.selected,
            json(&self.from),
            json(&self.to),
            json(&self.user),
            self.time
        )
    }

    /// Fills in `time`, `key` and `sig`, for an export of a log of `kind`.
    pub fn sign(mut self, kind: LogKind, key: &SigningKey) -> Self {
        self.time = now_text();
        self.key = hex::encode(key.verifying_key().as_bytes());
        self.sig = hex::encode(key.sign(self.message(kind).as_bytes()).to_bytes());
        self
    }

    /// Whether `key` made the signature, for a log of `kind`.
    pub fn verify(&self, kind: LogKind, key: &VerifyingKey) -> bool {
        verify_sig(key, self.message(kind).as_bytes(), &self.sig)
    }

    /// The kind of log whose domain the signature verifies under, if any.
    pub fn kind(&self, key: &VerifyingKey) -> Option<LogKind> {
        LogKind::ALL.into_iter().find(|k| self.verify(*k, key))
    }
}

fn verify_sig(key: &VerifyingKey, message: &[u8], sig_hex: &str) -> bool {
    let mut bytes = [0u8; 64];
    if hex::decode_to_slice(sig_hex, &mut bytes).is_err() {
        return false;
    }
    key.verify(message, &Signature::from_bytes(&bytes)).is_ok()
}

/// One line of the log or of an export.
#[derive(Debug, Clone, PartialEq)]
pub enum Line<'a> {
    /// An entry in full: `{"seq":N,"prev":"<hex>","body":{...}}`.
    Entry {
        /// Position in the log, from 1.
        seq: u64,
        /// Hash of entry `seq - 1` ([`GENESIS`] for seq 1).
        prev: Hash,
        /// The body, exactly as written.
        body: &'a str,
    },
    /// An entry of an export that the filter left out: `{"seq":N,"prev":"<hex>",
    /// "omitted":"<body digest hex>"}`. It keeps the chain checkable and reveals nothing else.
    Omitted {
        /// Position in the log.
        seq: u64,
        /// Hash of entry `seq - 1`.
        prev: Hash,
        /// SHA-256 of the left-out body.
        digest: Hash,
    },
    /// `{"checkpoint":{...}}`.
    Checkpoint(Checkpoint),
    /// `{"seal":{...}}` (exports only, last line).
    Seal(Seal),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine<'a> {
    seq: Option<u64>,
    prev: Option<String>,
    #[serde(borrow)]
    body: Option<&'a RawValue>,
    omitted: Option<String>,
    checkpoint: Option<Checkpoint>,
    seal: Option<Seal>,
}

impl<'a> Line<'a> {
    /// Parses one line (without its `\n`); the error says what is wrong with it.
    pub fn parse(text: &'a str) -> Result<Self, String> {
        let raw: RawLine<'a> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let hash = |field: &str, v: Option<String>| {
            v.as_deref()
                .and_then(from_hex)
                .ok_or_else(|| format!("`{field}` is not 64 hex digits"))
        };
        match raw {
            RawLine {
                seq: Some(seq),
                prev,
                body: Some(body),
                omitted: None,
                checkpoint: None,
                seal: None,
            } => Ok(Line::Entry {
                seq,
                prev: hash("prev", prev)?,
                body: body.get(),
            }),
            RawLine {
                seq: Some(seq),
                prev,
                body: None,
                omitted: Some(digest),
                checkpoint: None,
                seal: None,
            } => Ok(Line::Omitted {
                seq,
                prev: hash("prev", prev)?,
                digest: hash("omitted", Some(digest))?,
            }),
            RawLine {
                seq: None,
                prev: None,
                body: None,
                omitted: None,
                checkpoint: Some(cp),
                seal: None,
            } => Ok(Line::Checkpoint(cp)),
            RawLine {
                seq: None,
                prev: None,
                body: None,
                omitted: None,
                checkpoint: None,
                seal: Some(seal),
            } => Ok(Line::Seal(seal)),
            _ => Err("not an entry, an omitted entry, a checkpoint or a seal".into()),
        }
    }

    /// For entries (full or omitted) of a log of `kind`: `(seq, prev, own hash)`.
    pub fn link(&self, kind: LogKind) -> Option<(u64, Hash, Hash)> {
        match self {
            Line::Entry { seq, prev, body } => {
                Some((*seq, *prev, kind.entry_hash(*seq, prev, &body_digest(body))))
            }
            Line::Omitted { seq, prev, digest } => {
                Some((*seq, *prev, kind.entry_hash(*seq, prev, digest)))
            }
            _ => None,
        }
    }

    /// For entries (full or omitted): their seq.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Line::Entry { seq, .. } | Line::Omitted { seq, .. } => Some(*seq),
            _ => None,
        }
    }
}

/// The line of an entry, with its `\n`.
pub fn entry_line(seq: u64, prev: &Hash, body: &str) -> String {
    format!(
        "{{\"seq\":{seq},\"prev\":\"{}\",\"body\":{body}}}\n",
        to_hex(prev)
    )
}

/// The line of an omitted entry, with its `\n`.
pub fn omitted_line(seq: u64, prev: &Hash, digest: &Hash) -> String {
    format!(
        "{{\"seq\":{seq},\"prev\":\"{}\",\"omitted\":\"{}\"}}\n",
        to_hex(prev),
        to_hex(digest)
    )
}

/// The line of a checkpoint, with its `\n`.
pub fn checkpoint_line(cp: &Checkpoint) -> String {
    let mut s = serde_json::json!({ "checkpoint": cp }).to_string();
    s.push('\n');
    s
}

/// The line of a seal, with its `\n`.
pub fn seal_line(seal: &Seal) -> String {
    let mut s = serde_json::json!({ "seal": seal }).to_string();
    s.push('\n');
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_the_body_is_hashed_as_written() {
        let body = r#"{"user":"ana","note":"caf\u00e9"}"#;
        let line = entry_line(3, &GENESIS, body);
        let parsed = Line::parse(line.trim_end()).unwrap();
        assert_eq!(
            parsed,
            Line::Entry {
                seq: 3,
                prev: GENESIS,
                body
            }
        );
        let (seq, prev, hash) = parsed.link(LogKind::Access).unwrap();
        assert_eq!((seq, prev), (3, GENESIS));
        assert_eq!(
            hash,
            LogKind::Access.entry_hash(3, &GENESIS, &body_digest(body))
        );
        // Another log's domain gives another hash.
        assert_ne!(parsed.link(LogKind::Retention).unwrap().2, hash);
        // The same JSON value written differently is a different body.
        let other = r#"{"user":"ana","note":"café"}"#;
        assert_ne!(body_digest(body), body_digest(other));

        let omitted = omitted_line(3, &GENESIS, &body_digest(body));
        assert_eq!(
            Line::parse(omitted.trim_end())
                .unwrap()
                .link(LogKind::Access)
                .unwrap()
                .2,
            hash
        );
        assert!(Line::parse(r#"{"seq":1,"prev":"00"}"#).is_err());
    }

    #[test]
    fn checkpoints_and_seals_verify_only_with_their_key_and_content() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let cp = Checkpoint::sign(LogKind::Retention, 5, &[1; 32], &key);
        assert!(cp.verify(LogKind::Retention, &key.verifying_key()));
        assert!(!cp.verify(LogKind::Access, &key.verifying_key()));
        assert_eq!(cp.kind(&key.verifying_key()), Some(LogKind::Retention));
        assert!(!cp.verify(LogKind::Retention, &other.verifying_key()));
        let mut moved = cp.clone();
        moved.seq = 6;
        assert!(!moved.verify(LogKind::Retention, &key.verifying_key()));

        let seal = Seal {
            first: 1,
            last: 5,
            hash: to_hex(&[1; 32]),
            selected: 2,
            from: None,
            to: None,
            user: Some("ana".into()),
            time: String::new(),
            key: String::new(),
            sig: String::new(),
        }
        .sign(LogKind::Access, &key);
        assert!(seal.verify(LogKind::Access, &key.verifying_key()));
        assert!(!seal.verify(LogKind::Reidentify, &key.verifying_key()));
        let mut widened = seal.clone();
        widened.user = None;
        assert!(!widened.verify(LogKind::Access, &key.verifying_key()));
        let text = seal_line(&seal);
        let parsed = Line::parse(text.trim_end()).unwrap();
        assert_eq!(parsed, Line::Seal(seal));
    }
}
