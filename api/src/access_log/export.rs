//! Exports for oversight: the entries selected, the chain around them, the checkpoints that
//! cover them, and a signed seal.
//!
//! An export starts with the last checkpoint **before** the first selected entry (its anchor;
//! none when the stretch starts at entry 1) and runs to the first checkpoint at or after the last
//! selected entry (or to the last durable entry when none is signed yet). Every entry of that
//! stretch is there, in full when the filter selects it and as an omitted entry (seq, prev and
//! body digest) otherwise, so the verifier can recompute the whole chain between two signatures.
//! The last line is a seal signing the range, the head hash, the number selected and the filter:
//! a cut or a narrower filter cannot pass for the export that was made.

use super::chain::{self, Hash, Line, Seal, GENESIS};
use super::{io_error, Access, AccessLog, LogError};
use chrono::{DateTime, Utc};
use std::io::Read;

/// Which entries an export shows in full.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries strictly before this time.
    pub to: Option<DateTime<Utc>>,
    /// Entries of this user only.
    pub user: Option<String>,
}

impl ExportFilter {
    fn selects(&self, access: &Access) -> bool {
        self.from.is_none_or(|from| access.time >= from)
            && self.to.is_none_or(|to| access.time < to)
            && self
                .user
                .as_ref()
                .is_none_or(|u| access.user.as_ref() == Some(u))
    }
}

/// An export: JSONL bytes, and how many entries it shows in full.
#[derive(Debug, Clone)]
pub struct Export {
    /// The lines, each ending in `\n`, the seal last.
    pub bytes: Vec<u8>,
    /// Entries selected by the filter.
    pub selected: u64,
}

fn time_text(t: &Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

impl AccessLog {
    /// Builds an export of the durable part of the log (blocking: reads the file).
    pub fn export(&self, filter: &ExportFilter) -> Result<Export, LogError> {
        let path = self.path();
        let len = self.durable_len();
        let mut bytes = Vec::with_capacity(len as usize);
        std::fs::File::open(path)
            .and_then(|f| f.take(len).read_to_end(&mut bytes))
            .map_err(io_error(path))?;
        let corrupt = |line: usize, reason: String| LogError::Corrupt {
            path: path.to_path_buf(),
            tamper: super::Tamper::Malformed { line, reason },
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(0, e.to_string()))?;
        let mut lines = Vec::new();
        for (i, l) in text.split_terminator('\n').enumerate() {
            let line = Line::parse(l).map_err(|e| corrupt(i + 1, e))?;
            let selected = match &line {
                Line::Entry { body, .. } => {
                    let access: Access =
                        serde_json::from_str(body).map_err(|e| corrupt(i + 1, e.to_string()))?;
                    filter.selects(&access)
                }
                _ => false,
            };
            lines.push((l, line, selected));
        }

        // The stretch: (anchor, end].
        let seq_of = |l: &Line| l.link().map(|(s, _, _)| s);
        let selected_seqs: Vec<u64> = lines
            .iter()
            .filter(|(_, _, sel)| *sel)
            .filter_map(|(_, l, _)| seq_of(l))
            .collect();
        let mut seal = Seal {
            first: 0,
            last: 0,
            hash: chain::to_hex(&GENESIS),
            selected: selected_seqs.len() as u64,
            from: time_text(&filter.from),
            to: time_text(&filter.to),
            user: filter.user.clone(),
            time: String::new(),
            key: String::new(),
            sig: String::new(),
        };
        let mut out = String::new();
        if let (Some(&first), Some(&last)) = (selected_seqs.first(), selected_seqs.last()) {
            let checkpoints: Vec<u64> = lines
                .iter()
                .filter_map(|(_, l, _)| match l {
                    Line::Checkpoint(cp) => Some(cp.seq),
                    _ => None,
                })
                .collect();
            let anchor = checkpoints
                .iter()
                .copied()
                .filter(|&c| c < first)
                .max()
                .unwrap_or(0);
            let head_seq = lines
                .iter()
                .filter_map(|(_, l, _)| seq_of(l))
                .max()
                .unwrap_or(0);
            let end = checkpoints
                .iter()
                .copied()
                .filter(|&c| c >= last)
                .min()
                .unwrap_or(head_seq);
            let mut end_hash: Hash = GENESIS;
            let mut anchored = anchor == 0;
            for (raw, line, selected) in &lines {
                match line {
                    Line::Checkpoint(cp) if cp.seq == anchor && !anchored => {
                        anchored = true;
                        out.push_str(raw);
                        out.push('\n');
                    }
                    Line::Checkpoint(cp) if cp.seq > anchor && cp.seq <= end => {
                        out.push_str(raw);
                        out.push('\n');
                    }
                    Line::Entry { seq, prev, body } if *seq > anchor && *seq <= end => {
                        if *selected {
                            out.push_str(raw);
                            out.push('\n');
                        } else {
                            out.push_str(&chain::omitted_line(
                                *seq,
                                prev,
                                &chain::body_digest(body),
                            ));
                        }
                        if *seq == end {
                            end_hash = line.link().map_or(GENESIS, |(_, _, h)| h);
                        }
                    }
                    _ => {}
                }
            }
            seal.first = anchor + 1;
            seal.last = end;
            seal.hash = chain::to_hex(&end_hash);
        }
        let seal = seal.sign(self.signing_key());
        out.push_str(&chain::seal_line(&seal));
        Ok(Export {
            bytes: out.into_bytes(),
            selected: seal.selected,
        })
    }
}
