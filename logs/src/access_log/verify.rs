//! Checking a log or an export: the chain, the checkpoints, the seal, the published heads;
//! naming the first break.
//!
//! [`verify_export`] is what `vigie audit verify` runs: it succeeds only when the export is
//! exactly what the server signed: its chain between two signatures, as many entries in full as
//! the seal says were selected, each of them selected by the seal's filter. [`verify_log`] checks
//! the log file itself (the server runs it at start-up): it accepts a torn last line, the trace
//! of a crash during a write, which was never acknowledged to anyone, and at most
//! [`MAX_UNSIGNED`] entries after the last checkpoint (one group commit), but not a log with
//! entries and no checkpoint, nor an empty one.
//!
//! Which log a file is of ([`LogKind`]) is read from the domain its signatures verify under
//! (the seal's for an export, the first checkpoint's for a log); [`Checks::kind`] insists on one.
//! With [`Checks::heads`] (checkpoints published to a heads file), every published head of that
//! log within the stretch checked must be in the chain, with the same hash; for a log, a head
//! beyond its last entry means it was truncated.
//!
//! When the chain breaks, the verifier tells apart the kinds of tampering by how the lines around
//! the break link to each other:
//! - **altered**: an entry's content no longer hashes to the `prev` its successor recorded (or
//!   to the hash a checkpoint or the seal signed);
//! - **removed**: the seq jumps forward and the line does not link to the entry before it;
//! - **reordered**: the expected entry is further down, and the displaced line links with
//!   another line of the file;
//! - **inserted**: the chain runs on without the line (its successor links to its predecessor),
//!   or it repeats an entry, or its seq goes backwards;
//! - **truncated**: the export ends without its signed seal.

use super::chain::{from_hex, Checkpoint, Hash, Head, Line, LogKind, Seal, GENESIS};
use super::{Access, ExportFilter};
use ed25519_dalek::VerifyingKey;
use std::collections::{HashMap, HashSet};

/// Most entries a log may hold after its last checkpoint: one group commit
/// ([`super::MAX_BATCH`]). The writer signs a checkpoint at the end of every group commit, in
/// the same write, so only a crash in the middle of that write leaves entries unsigned, and
/// never more than the batch being written.
pub const MAX_UNSIGNED: u64 = super::MAX_BATCH as u64;

/// What to check besides the chain and the signatures.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// The log the file must be of; `None` accepts any of the three and says which.
    pub kind: Option<LogKind>,
    /// Published heads (see [`parse_heads`]): each one of this log that falls within the
    /// stretch checked must be in its chain.
    pub heads: Option<Vec<Checkpoint>>,
}

/// The checkpoints of a heads file (JSONL of [`Head`]) signed by `key` for a log of `kind`,
/// in the file's order, and how many lines are of other logs or keys (they are not checked).
/// A line that is not a head is an error naming it.
pub fn parse_heads(
    text: &str,
    key: &VerifyingKey,
    kind: LogKind,
) -> Result<(Vec<Checkpoint>, u64), Tamper> {
    let mut heads = Vec::new();
    let mut others = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let head: Head = serde_json::from_str(line).map_err(|e| Tamper::MalformedHead {
            line: i + 1,
            reason: e.to_string(),
        })?;
        if head.checkpoint.verify(kind, key) {
            heads.push(head.checkpoint);
        } else {
            others += 1;
        }
    }
    Ok((heads, others))
}

/// The first problem found, naming the entry (by seq) and the line (from 1) where it shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tamper {
    /// An entry's content (or its seq or prev) was changed.
    #[error("entry {seq} (line {line}) was altered: its content no longer matches the hash that the chain recorded for it")]
    Altered {
        /// The entry.
        seq: u64,
        /// Its line.
        line: usize,
    },
    /// Entries are missing.
    #[error("entries {first} to {last} were removed: line {line} follows entry {before}", before = first - 1)]
    Removed {
        /// First missing entry.
        first: u64,
        /// Last missing entry.
        last: u64,
        /// The line where the gap shows.
        line: usize,
    },
    /// An entry is not where the chain puts it.
    #[error(
        "entry {seq} is out of order: the chain expects it at line {line}, it is at line {found}"
    )]
    Reordered {
        /// The entry.
        seq: u64,
        /// Where it belongs.
        line: usize,
        /// Where it is.
        found: usize,
    },
    /// A line that is not part of the chain.
    #[error("line {line} was inserted: it claims to be entry {claims}, but the chain does not run through it")]
    Inserted {
        /// The line.
        line: usize,
        /// The seq it claims.
        claims: u64,
    },
    /// The export was cut: no seal after its last entry.
    #[error("truncated: the export ends after entry {after} without its signed seal; what followed was cut")]
    Truncated {
        /// The last complete entry (0 if none).
        after: u64,
    },
    /// A checkpoint's signature does not verify with the given key.
    #[error("the checkpoint of entry {seq} (line {line}) has an invalid signature for this key")]
    BadCheckpoint {
        /// The seq it signs.
        seq: u64,
        /// Its line.
        line: usize,
    },
    /// A checkpoint that does not follow the entry it signs.
    #[error(
        "the checkpoint of entry {seq} (line {line}) is out of place: it follows entry {after}"
    )]
    MisplacedCheckpoint {
        /// The seq it signs.
        seq: u64,
        /// Its line.
        line: usize,
        /// The entry it follows.
        after: u64,
    },
    /// The seal's signature does not verify with the given key.
    #[error("the export's seal (line {line}) has an invalid signature for this key")]
    BadSeal {
        /// Its line.
        line: usize,
    },
    /// The signed checkpoint the export starts from is not there.
    #[error("the export's first line must be the signed checkpoint of entry {seq}; it is missing, so the head of the export was cut")]
    MissingAnchor {
        /// The seq it signs.
        seq: u64,
    },
    /// A line that is not one of the formats.
    #[error("line {line} is not a valid access-log line: {reason}")]
    Malformed {
        /// The line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The seal says more (or fewer) entries were selected than are shown in full: a selected
    /// entry was replaced by its digest (or the reverse).
    #[error("the export's seal says {sealed} entries were selected, but {shown} are shown in full: a selected entry was hidden behind its digest (or an omitted one revealed)")]
    SelectedMismatch {
        /// The seal's count.
        sealed: u64,
        /// Entries shown in full.
        shown: u64,
    },
    /// An entry shown in full that the seal's filter does not select.
    #[error(
        "entry {seq} (line {line}) is shown in full, but the export's filter does not select it"
    )]
    NotSelected {
        /// The entry.
        seq: u64,
        /// Its line.
        line: usize,
    },
    /// A log with entries but no checkpoint: nothing in it is signed.
    #[error("the log has {entries} entries and no signed checkpoint: it was written or rewritten without the key")]
    Unsigned {
        /// Its entries.
        entries: u64,
    },
    /// More entries after the last checkpoint than one group commit can leave.
    #[error("entries {first} to {last} are not signed by any checkpoint: more than one group commit ({bound} entries) can leave after a crash, so they were added without the key")]
    UnsignedTail {
        /// First unsigned entry.
        first: u64,
        /// Last entry.
        last: u64,
        /// The bound, [`MAX_UNSIGNED`].
        bound: u64,
    },
    /// A log file without any line: a log starts with its signed creation checkpoint.
    #[error(
        "the log is empty: a log starts with its signed creation checkpoint, so it was emptied"
    )]
    Empty,
    /// Signed for another of the three logs.
    #[error("this is the {found} log, not the {expected} log (its signatures are of domain {domain})", domain = found.domain())]
    WrongKind {
        /// The log asked for.
        expected: LogKind,
        /// The log its signatures are of.
        found: LogKind,
    },
    /// A published head beyond the last entry: the log was truncated after it was signed.
    #[error("truncated: the head published for entry {seq} (signed at {time}) is not in the log, which ends at entry {last}")]
    HeadMissing {
        /// The published head's seq.
        seq: u64,
        /// When it was signed.
        time: String,
        /// The last entry of the log.
        last: u64,
    },
    /// A published head whose hash differs from the chain's: the log was rewritten.
    #[error("rewritten: entry {seq} (line {line}) does not have the hash of the head published for it at {time}")]
    HeadMismatch {
        /// The entry.
        seq: u64,
        /// Its line (0: before the first line).
        line: usize,
        /// When the head was signed.
        time: String,
    },
    /// A line of a heads file that is not a head.
    #[error("line {line} of the heads file is not a signed head: {reason}")]
    MalformedHead {
        /// The line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// What an intact log or export holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Entries shown in full.
    pub entries: u64,
    /// Entries left out by the export's filter (digest only).
    pub omitted: u64,
    /// First entry's seq (0 if none).
    pub first: u64,
    /// Last entry's seq (0 if none).
    pub last: u64,
    /// Hash of the last entry ([`GENESIS`] if none).
    pub head: Hash,
    /// Valid checkpoints seen.
    pub checkpoints: u64,
    /// The last entry a checkpoint covers (0 if none).
    pub covered: u64,
    /// A log only: its last line was incomplete and was left out.
    pub torn_tail: bool,
    /// A log only: bytes of its complete lines, up to which it is intact.
    pub complete_len: u64,
    /// The log its signatures are of (`None` for a log or export without any signature).
    pub kind: Option<LogKind>,
    /// An export only: its verified seal, which states the filter (`from`, `to`, `user`), the
    /// number selected and when it was made (`time`).
    pub seal: Option<Seal>,
    /// When the last checkpoint seen was signed.
    pub last_signed: Option<String>,
    /// Published heads found in the chain, with the same hash.
    pub heads_checked: u64,
    /// Published heads outside the stretch checked (before an export's first entry, or after
    /// its last): not checked.
    pub heads_outside: u64,
}

/// Checks an export (as made by `GET /v1/audit/export`) with the signing public key.
pub fn verify_export(bytes: &[u8], key: &VerifyingKey) -> Result<Report, Tamper> {
    verify_export_with(bytes, key, &Checks::default())
}

/// [`verify_export`], with the [`Checks`] given.
pub fn verify_export_with(
    bytes: &[u8],
    key: &VerifyingKey,
    checks: &Checks,
) -> Result<Report, Tamper> {
    let split = split(bytes)?;
    let mut lines = parse(&split.lines)?;
    let seal_at = lines.iter().rposition(|(_, l)| matches!(l, Line::Seal(_)));
    let (seal, seal_line) = match seal_at {
        Some(i) if i + 1 == lines.len() => match lines.pop() {
            Some((n, Line::Seal(_))) if split.torn => {
                return Err(Tamper::Malformed {
                    line: n + 1,
                    reason: "an incomplete line after the seal".into(),
                })
            }
            Some((n, Line::Seal(s))) => (Some(s), n),
            _ => (None, 0),
        },
        Some(i) if i + 1 < lines.len() => {
            let (line, l) = &lines[i + 1];
            return Err(Tamper::Inserted {
                line: *line,
                claims: l.seq().unwrap_or(0),
            });
        }
        _ => (None, 0),
    };
    let Some(seal) = seal else {
        // Cut: check what is there, then report the cut.
        let kind = kind_of(&lines, None, key, checks.kind)?.unwrap_or(LogKind::Access);
        let start = match lines.first() {
            Some((_, Line::Checkpoint(cp))) => {
                (cp.seq + 1, from_hex(&cp.hash).unwrap_or(GENESIS), 1)
            }
            _ => (1, GENESIS, 0),
        };
        let report = Walk::new(&lines[start.2..], key, kind, start.0, start.1, None).run()?;
        return Err(Tamper::Truncated { after: report.last });
    };
    let kind = match kind_of(&lines, Some(&seal), key, checks.kind)? {
        Some(kind) => kind,
        None => return Err(Tamper::BadSeal { line: seal_line }),
    };
    let seal_hash = from_hex(&seal.hash).ok_or(Tamper::BadSeal { line: seal_line })?;
    let filter = ExportFilter::of_seal(&seal).map_err(|reason| Tamper::Malformed {
        line: seal_line,
        reason,
    })?;
    if seal.first == 0 {
        if let Some((line, l)) = lines.iter().find(|(_, l)| l.seq().is_some()) {
            return Err(Tamper::Inserted {
                line: *line,
                claims: l.seq().unwrap_or(0),
            });
        }
        if seal.selected != 0 {
            return Err(Tamper::SelectedMismatch {
                sealed: seal.selected,
                shown: 0,
            });
        }
        return Ok(Report {
            kind: Some(kind),
            seal: Some(seal),
            ..Report::default()
        });
    }
    let (head, body) = if seal.first == 1 {
        (GENESIS, &lines[..])
    } else {
        match lines.first() {
            Some((line, Line::Checkpoint(cp))) if cp.seq + 1 == seal.first => {
                if !cp.verify(kind, key) {
                    return Err(Tamper::BadCheckpoint {
                        seq: cp.seq,
                        line: *line,
                    });
                }
                let hash = from_hex(&cp.hash).ok_or(Tamper::BadCheckpoint {
                    seq: cp.seq,
                    line: *line,
                })?;
                (hash, &lines[1..])
            }
            _ => {
                return Err(Tamper::MissingAnchor {
                    seq: seal.first - 1,
                })
            }
        }
    };
    let mut walk = Walk::new(
        body,
        key,
        kind,
        seal.first,
        head,
        Some((seal.last, seal_hash)),
    );
    walk.heads = sorted_heads(checks);
    walk.start_heads()?;
    let mut report = walk.run()?;
    let last = walk.expected - 1;
    if last < seal.last {
        return Err(Tamper::Removed {
            first: last + 1,
            last: seal.last,
            line: seal_line,
        });
    }
    if last > seal.last {
        return Err(Tamper::Inserted {
            line: walk.accepted_line[&(seal.last + 1)],
            claims: seal.last + 1,
        });
    }
    if walk.head != seal_hash {
        return Err(Tamper::Altered {
            seq: last,
            line: walk.last_line.unwrap_or(0),
        });
    }
    // The chain is what was signed; every entry in full must be one the filter selects.
    for (line, l) in body {
        if let Line::Entry { seq, body, .. } = l {
            let access: Access = serde_json::from_str(body).map_err(|e| Tamper::Malformed {
                line: *line,
                reason: format!("not an access entry: {e}"),
            })?;
            if !filter.selects(&access) {
                return Err(Tamper::NotSelected {
                    seq: *seq,
                    line: *line,
                });
            }
        }
    }
    if report.entries != seal.selected {
        return Err(Tamper::SelectedMismatch {
            sealed: seal.selected,
            shown: report.entries,
        });
    }
    report.heads_outside += (walk.heads.len() - walk.next_head) as u64;
    report.kind = Some(kind);
    report.seal = Some(seal);
    Ok(report)
}

/// Checks a log file from its first entry: the chain and every checkpoint. A torn last line
/// (no `\n`) is left out and reported in [`Report::torn_tail`]; the entries after the last
/// checkpoint are intact as a chain but not yet signed ([`Report::covered`] says up to where),
/// and there may be at most [`MAX_UNSIGNED`] of them. A log with entries and no checkpoint, or
/// without any line, is refused.
pub fn verify_log(bytes: &[u8], key: &VerifyingKey) -> Result<Report, Tamper> {
    verify_log_with(bytes, key, &Checks::default())
}

/// [`verify_log`], with the [`Checks`] given.
pub fn verify_log_with(
    bytes: &[u8],
    key: &VerifyingKey,
    checks: &Checks,
) -> Result<Report, Tamper> {
    let split = split(bytes)?;
    let lines = parse(&split.lines)?;
    if let Some((line, _)) = lines.iter().find(|(_, l)| matches!(l, Line::Seal(_))) {
        return Err(Tamper::Malformed {
            line: *line,
            reason: "a seal belongs to exports, not to the log".into(),
        });
    }
    if lines.is_empty() {
        return Err(Tamper::Empty);
    }
    let Some(kind) = kind_of(&lines, None, key, checks.kind)? else {
        return Err(Tamper::Unsigned {
            entries: lines.iter().filter(|(_, l)| l.seq().is_some()).count() as u64,
        });
    };
    let mut walk = Walk::new(&lines, key, kind, 1, GENESIS, None);
    walk.heads = sorted_heads(checks);
    walk.start_heads()?;
    let mut report = walk.run()?;
    if let Some(h) = walk.heads.get(walk.next_head) {
        return Err(Tamper::HeadMissing {
            seq: h.seq,
            time: h.time.clone(),
            last: report.last,
        });
    }
    if report.checkpoints == 0 {
        return Err(Tamper::Unsigned {
            entries: report.last,
        });
    }
    if report.last - report.covered > MAX_UNSIGNED {
        return Err(Tamper::UnsignedTail {
            first: report.covered + 1,
            last: report.last,
            bound: MAX_UNSIGNED,
        });
    }
    report.torn_tail = split.torn;
    report.complete_len = split.complete_len as u64;
    report.kind = Some(kind);
    Ok(report)
}

/// The kind the signatures of `lines` (the seal's if given, else the first checkpoint's) verify
/// under; `None` when there is no signature. A signature that verifies under no domain is
/// reported as such; one of another kind than `want` too.
fn kind_of(
    lines: &[(usize, Line<'_>)],
    seal: Option<&Seal>,
    key: &VerifyingKey,
    want: Option<LogKind>,
) -> Result<Option<LogKind>, Tamper> {
    let found = match seal {
        Some(seal) => match seal.kind(key) {
            Some(kind) => kind,
            None => return Ok(None),
        },
        None => {
            let Some((line, cp)) = lines.iter().find_map(|(n, l)| match l {
                Line::Checkpoint(cp) => Some((*n, cp)),
                _ => None,
            }) else {
                return Ok(None);
            };
            cp.kind(key)
                .ok_or(Tamper::BadCheckpoint { seq: cp.seq, line })?
        }
    };
    match want {
        Some(expected) if expected != found => Err(Tamper::WrongKind { expected, found }),
        _ => Ok(Some(found)),
    }
}

/// The published heads of `checks`, by seq.
fn sorted_heads(checks: &Checks) -> Vec<Checkpoint> {
    let mut heads = checks.heads.clone().unwrap_or_default();
    heads.sort_by_key(|h| h.seq);
    heads
}

struct Split<'a> {
    lines: Vec<(usize, &'a str)>,
    torn: bool,
    complete_len: usize,
}

fn split(bytes: &[u8]) -> Result<Split<'_>, Tamper> {
    let complete_len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = std::str::from_utf8(&bytes[..complete_len]).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Tamper::Malformed {
            line,
            reason: "not UTF-8".into(),
        }
    })?;
    let lines = text
        .split_terminator('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .collect();
    Ok(Split {
        lines,
        torn: complete_len < bytes.len(),
        complete_len,
    })
}

fn parse<'a>(lines: &[(usize, &'a str)]) -> Result<Vec<(usize, Line<'a>)>, Tamper> {
    lines
        .iter()
        .map(|&(line, text)| {
            Line::parse(text)
                .map(|l| (line, l))
                .map_err(|reason| Tamper::Malformed { line, reason })
        })
        .collect()
}

/// Walks chain lines and checkpoints from a known start, stopping at the first break.
struct Walk<'l, 'a> {
    lines: &'l [(usize, Line<'a>)],
    links: Vec<Option<(u64, Hash, Hash)>>,
    key: &'l VerifyingKey,
    kind: LogKind,
    /// Published heads, by seq, and the next one to meet.
    heads: Vec<Checkpoint>,
    next_head: usize,
    /// The seal's last entry and its hash, if the walk must end there.
    end: Option<(u64, Hash)>,
    expected: u64,
    head: Hash,
    /// The `prev` the last accepted entry was checked against.
    checked_prev: Option<Hash>,
    last_line: Option<usize>,
    accepted: HashSet<Hash>,
    accepted_line: HashMap<u64, usize>,
    hashes: HashSet<Hash>,
    prevs: HashSet<Hash>,
    report: Report,
}

impl<'l, 'a> Walk<'l, 'a> {
    fn new(
        lines: &'l [(usize, Line<'a>)],
        key: &'l VerifyingKey,
        kind: LogKind,
        expected: u64,
        head: Hash,
        end: Option<(u64, Hash)>,
    ) -> Self {
        let links: Vec<_> = lines.iter().map(|(_, l)| l.link(kind)).collect();
        let hashes = links.iter().flatten().map(|l| l.2).collect();
        let prevs = links.iter().flatten().map(|l| l.1).collect();
        Walk {
            lines,
            links,
            key,
            kind,
            heads: Vec::new(),
            next_head: 0,
            end,
            expected,
            head,
            checked_prev: None,
            last_line: None,
            accepted: HashSet::new(),
            accepted_line: HashMap::new(),
            hashes,
            prevs,
            report: Report {
                head,
                ..Report::default()
            },
        }
    }

    fn run(&mut self) -> Result<Report, Tamper> {
        for i in 0..self.lines.len() {
            let line = self.lines[i].0;
            match (&self.lines[i].1, self.links[i]) {
                (Line::Checkpoint(cp), _) => self.checkpoint(line, cp)?,
                (_, Some((seq, prev, hash))) => {
                    if seq == self.expected && prev == self.head {
                        let omitted = matches!(self.lines[i].1, Line::Omitted { .. });
                        self.accept(line, seq, prev, hash, omitted);
                        self.meet_heads(seq, hash, line)?;
                    } else {
                        return Err(self.classify(i, seq, prev, hash));
                    }
                }
                _ => {
                    return Err(Tamper::Malformed {
                        line,
                        reason: "a seal inside the chain".into(),
                    })
                }
            }
        }
        Ok(self.report.clone())
    }

    fn accept(&mut self, line: usize, seq: u64, prev: Hash, hash: Hash, omitted: bool) {
        self.checked_prev = Some(prev);
        self.head = hash;
        self.expected = seq + 1;
        self.last_line = Some(line);
        self.accepted.insert(hash);
        self.accepted_line.insert(seq, line);
        let r = &mut self.report;
        if r.first == 0 {
            r.first = seq;
        }
        r.last = seq;
        r.head = hash;
        if omitted {
            r.omitted += 1;
        } else {
            r.entries += 1;
        }
    }

    /// Checks the heads published for the walk's starting point (the anchor, or seq 0).
    fn start_heads(&mut self) -> Result<(), Tamper> {
        self.meet_heads(self.expected - 1, self.head, 0)
    }

    /// Checks the published heads up to entry `seq`, whose hash is `hash`: those before the
    /// stretch are counted as outside it, one for `seq` must have its hash.
    fn meet_heads(&mut self, seq: u64, hash: Hash, line: usize) -> Result<(), Tamper> {
        while let Some(h) = self.heads.get(self.next_head) {
            if h.seq > seq {
                break;
            }
            if h.seq < seq {
                self.report.heads_outside += 1;
            } else if from_hex(&h.hash) != Some(hash) {
                return Err(Tamper::HeadMismatch {
                    seq,
                    line,
                    time: h.time.clone(),
                });
            } else {
                self.report.heads_checked += 1;
            }
            self.next_head += 1;
        }
        Ok(())
    }

    fn checkpoint(&mut self, line: usize, cp: &Checkpoint) -> Result<(), Tamper> {
        if !cp.verify(self.kind, self.key) {
            return Err(Tamper::BadCheckpoint { seq: cp.seq, line });
        }
        let last = self.expected - 1;
        if cp.seq > last {
            return Err(Tamper::Removed {
                first: self.expected,
                last: cp.seq,
                line,
            });
        }
        if cp.seq < last {
            return Err(Tamper::MisplacedCheckpoint {
                seq: cp.seq,
                line,
                after: last,
            });
        }
        if from_hex(&cp.hash) != Some(self.head) {
            return Err(Tamper::Altered {
                seq: last,
                line: self.last_line.unwrap_or(line),
            });
        }
        self.report.checkpoints += 1;
        self.report.covered = cp.seq;
        self.report.last_signed = Some(cp.time.clone());
        Ok(())
    }

    /// Names the break at line index `i`, which claims `seq` after `prev` and hashes to `hash`.
    fn classify(&self, i: usize, seq: u64, prev: Hash, hash: Hash) -> Tamper {
        let line = self.lines[i].0;
        let expected = self.expected;
        // The line before was accepted but this one links to the same predecessor with the same
        // seq, and the chain continues through this one: the line before was inserted.
        if let (Some(checked), Some(last_line)) = (self.checked_prev, self.last_line) {
            if prev == checked && seq + 1 == expected && self.next_links_to(i + 1, seq, hash) {
                return Tamper::Inserted {
                    line: last_line,
                    claims: seq,
                };
            }
        }
        if self.accepted.contains(&hash) {
            return Tamper::Inserted { line, claims: seq };
        }
        if seq != expected && (self.hashes.contains(&prev) || self.prevs.contains(&hash)) {
            let later = (i + 1..self.lines.len())
                .find(|&j| self.links[j].is_some_and(|(s, _, _)| s == expected));
            if let Some(j) = later {
                return Tamper::Reordered {
                    seq: expected,
                    line,
                    found: self.lines[j].0,
                };
            }
        }
        if self.continues_without(i + 1) {
            return Tamper::Inserted { line, claims: seq };
        }
        if seq == expected {
            return match self.last_line {
                Some(last_line) if self.next_links_to(i + 1, seq, hash) => Tamper::Altered {
                    seq: expected - 1,
                    line: last_line,
                },
                _ => Tamper::Altered { seq, line },
            };
        }
        if seq > expected {
            if prev == self.head {
                return Tamper::Altered {
                    seq: expected,
                    line,
                };
            }
            return Tamper::Removed {
                first: expected,
                last: seq - 1,
                line,
            };
        }
        Tamper::Inserted { line, claims: seq }
    }

    /// Whether what comes at index `j` follows the last accepted entry directly.
    fn continues_without(&self, j: usize) -> bool {
        let last = self.expected - 1;
        match self.lines.get(j).map(|(_, l)| l) {
            Some(Line::Checkpoint(cp)) => cp.seq == last && from_hex(&cp.hash) == Some(self.head),
            Some(_) => self.links[j].is_some_and(|(s, p, _)| s == self.expected && p == self.head),
            None => self.end == Some((last, self.head)),
        }
    }

    /// Whether what comes at index `j` follows entry `seq` with hash `hash`.
    fn next_links_to(&self, j: usize, seq: u64, hash: Hash) -> bool {
        match self.lines.get(j).map(|(_, l)| l) {
            Some(Line::Checkpoint(cp)) => cp.seq == seq && from_hex(&cp.hash) == Some(hash),
            Some(_) => self.links[j].is_some_and(|(s, p, _)| s == seq + 1 && p == hash),
            None => self.end == Some((seq, hash)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::access_log::chain::head_line;
    use ed25519_dalek::SigningKey;

    #[test]
    fn a_heads_file_with_junk_fails_and_heads_of_another_key_or_log_are_not_counted() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let ours = Checkpoint::sign(LogKind::Access, 3, &[1; 32], &key);
        let forged = Checkpoint::sign(LogKind::Access, 9, &[2; 32], &other);
        let retention = Checkpoint::sign(LogKind::Retention, 4, &[3; 32], &key);
        let text = [
            head_line(LogKind::Access, &ours),
            head_line(LogKind::Access, &forged),
            head_line(LogKind::Retention, &retention),
        ]
        .concat();
        let (heads, others) = parse_heads(&text, &key.verifying_key(), LogKind::Access).unwrap();
        assert_eq!((heads, others), (vec![ours], 2));
        // A line that is not a head (someone who can write the topic or the file): refused,
        // never skipped, so verification fails closed.
        for junk in ["not json", "{\"log\":\"access\"}", "{\"checkpoint\":1}"] {
            let e = parse_heads(
                &format!("{text}{junk}\n"),
                &key.verifying_key(),
                LogKind::Access,
            )
            .unwrap_err();
            assert!(matches!(e, Tamper::MalformedHead { line: 4, .. }), "{e}");
        }
    }
}
