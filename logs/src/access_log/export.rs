//! Exports for oversight: the entries selected, the chain around them, the checkpoints that
//! cover them, and a signed seal.
//!
//! An export starts with the last checkpoint **before** the first selected entry (its anchor;
//! none when the stretch starts at entry 1) and runs to the first checkpoint at or after the last
//! selected entry (or to the last durable entry when none is signed yet). Every entry of that
//! stretch is there, in full when the filter selects it and as an omitted entry (seq, prev and
//! body digest) otherwise, so the verifier can recompute the whole chain between two signatures.
//! The last line is a seal signing the range, the head hash, the number selected and the filter:
//! a cut, a narrower filter or a selected entry shown as a digest cannot pass for the export that
//! was made.
//!
//! An export is streamed: [`AccessLog::plan_export`] reads the durable part of the log once to
//! find the stretch and count the entries selected, [`ExportPlan::write_to`] reads it again and
//! writes each line as it goes. Neither holds more than one line of the log in memory, however
//! long the log.

use super::chain::{self, Hash, Line, Seal, GENESIS};
use super::{io_error, Access, AccessLog, LogError};
use chrono::{DateTime, Utc};
use std::io::{BufRead, BufReader, Read, Write};

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
    /// Whether the filter selects `access`.
    pub fn selects(&self, access: &Access) -> bool {
        self.from.is_none_or(|from| access.time >= from)
            && self.to.is_none_or(|to| access.time < to)
            && self
                .user
                .as_ref()
                .is_none_or(|u| access.user.as_ref() == Some(u))
    }

    /// The filter a seal states; the error says which of its times is not RFC 3339.
    pub fn of_seal(seal: &Seal) -> Result<Self, String> {
        let time = |name: &str, t: &Option<String>| {
            t.as_deref()
                .map(|t| {
                    DateTime::parse_from_rfc3339(t)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| format!("the seal's `{name}` is not an RFC 3339 time: {e}"))
                })
                .transpose()
        };
        Ok(ExportFilter {
            from: time("from", &seal.from)?,
            to: time("to", &seal.to)?,
            user: seal.user.clone(),
        })
    }
}

/// An export held in memory: JSONL bytes, and how many entries it shows in full.
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

/// The stretch of an export, found by [`AccessLog::plan_export`]; [`ExportPlan::write_to`]
/// writes it.
#[derive(Clone)]
pub struct ExportPlan {
    log: AccessLog,
    filter: ExportFilter,
    /// The durable prefix read, in bytes: the same for both passes.
    len: u64,
    selected: u64,
    /// (anchor, end, hash of end) when anything is selected.
    stretch: Option<(u64, u64, Hash)>,
}

/// Calls `each` with every complete line of the first `len` bytes of the log (without its
/// `\n`), reading one line at a time.
fn each_line(
    log: &AccessLog,
    len: u64,
    mut each: impl FnMut(usize, &str) -> Result<(), LogError>,
) -> Result<(), LogError> {
    let path = log.path();
    let file = std::fs::File::open(path).map_err(io_error(path))?;
    let mut reader = BufReader::new(file.take(len));
    let mut buf = Vec::new();
    for n in 1.. {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io_error(path))? == 0 {
            break;
        }
        if buf.pop() != Some(b'\n') {
            break; // not durable yet: past `len`
        }
        let text = std::str::from_utf8(&buf).map_err(|e| corrupt(log, n, e.to_string()))?;
        each(n, text)?;
    }
    Ok(())
}

fn corrupt(log: &AccessLog, line: usize, reason: String) -> LogError {
    LogError::Corrupt {
        path: log.path().to_path_buf(),
        tamper: super::Tamper::Malformed { line, reason },
    }
}

/// Whether line `n` is an entry that `filter` selects.
fn selected(
    log: &AccessLog,
    n: usize,
    line: &Line,
    filter: &ExportFilter,
) -> Result<bool, LogError> {
    match line {
        Line::Entry { body, .. } => {
            let access: Access =
                serde_json::from_str(body).map_err(|e| corrupt(log, n, e.to_string()))?;
            Ok(filter.selects(&access))
        }
        _ => Ok(false),
    }
}

impl AccessLog {
    /// Finds the stretch of an export of the durable part of the log and counts the entries
    /// `filter` selects (blocking: reads the file once, a line at a time).
    pub fn plan_export(&self, filter: &ExportFilter) -> Result<ExportPlan, LogError> {
        let len = self.durable_len();
        let kind = self.kind();
        let mut count = 0u64;
        let mut anchor = 0u64;
        let mut last_cp = 0u64;
        let mut end: Option<(u64, Hash)> = None;
        let mut pending = false;
        let mut latest: (u64, Hash) = (0, GENESIS);
        each_line(self, len, |n, text| {
            let line = Line::parse(text).map_err(|e| corrupt(self, n, e))?;
            match &line {
                Line::Checkpoint(cp) => {
                    last_cp = cp.seq;
                    if pending && cp.seq >= latest.0 {
                        end = Some((cp.seq, latest.1));
                        pending = false;
                    }
                }
                Line::Entry { .. } => {
                    if let Some((seq, _, hash)) = line.link(kind) {
                        latest = (seq, hash);
                    }
                    if selected(self, n, &line, filter)? {
                        if count == 0 {
                            anchor = last_cp;
                        }
                        count += 1;
                        pending = true;
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        if pending {
            end = Some(latest);
        }
        Ok(ExportPlan {
            log: self.clone(),
            filter: filter.clone(),
            len,
            selected: count,
            stretch: end.map(|(end, hash)| (anchor, end, hash)),
        })
    }

    /// Writes an export of the durable part of the log to `out`, a line at a time; returns how
    /// many entries it shows in full (blocking: reads the file twice).
    pub fn export_to(&self, filter: &ExportFilter, out: &mut dyn Write) -> Result<u64, LogError> {
        let plan = self.plan_export(filter)?;
        let selected = plan.selected();
        plan.write_to(out)?;
        Ok(selected)
    }

    /// An export of the durable part of the log, in memory (blocking). For small logs and
    /// tests; the API streams with [`AccessLog::plan_export`].
    pub fn export(&self, filter: &ExportFilter) -> Result<Export, LogError> {
        let mut bytes = Vec::new();
        let selected = self.export_to(filter, &mut bytes)?;
        Ok(Export { bytes, selected })
    }
}

impl ExportPlan {
    /// How many entries the export shows in full.
    pub fn selected(&self) -> u64 {
        self.selected
    }

    /// Writes the export to `out`, a line at a time, the seal last (blocking: reads the log).
    pub fn write_to(self, out: &mut dyn Write) -> Result<(), LogError> {
        let log = &self.log;
        let kind = log.kind();
        let mut seal = Seal {
            first: 0,
            last: 0,
            hash: chain::to_hex(&GENESIS),
            selected: self.selected,
            from: time_text(&self.filter.from),
            to: time_text(&self.filter.to),
            user: self.filter.user.clone(),
            time: String::new(),
            key: String::new(),
            sig: String::new(),
        };
        let write =
            |out: &mut dyn Write, bytes: &[u8]| out.write_all(bytes).map_err(LogError::Output);
        if let Some((anchor, end, end_hash)) = self.stretch {
            let mut anchored = anchor == 0;
            each_line(log, self.len, |n, raw| {
                let line = Line::parse(raw).map_err(|e| corrupt(log, n, e))?;
                match &line {
                    Line::Checkpoint(cp) if cp.seq == anchor && !anchored => {
                        anchored = true;
                        write(out, raw.as_bytes())?;
                        write(out, b"\n")?;
                    }
                    Line::Checkpoint(cp) if cp.seq > anchor && cp.seq <= end => {
                        write(out, raw.as_bytes())?;
                        write(out, b"\n")?;
                    }
                    Line::Entry { seq, prev, body } if *seq > anchor && *seq <= end => {
                        if selected(log, n, &line, &self.filter)? {
                            write(out, raw.as_bytes())?;
                            write(out, b"\n")?;
                        } else {
                            let omitted =
                                chain::omitted_line(*seq, prev, &chain::body_digest(body));
                            write(out, omitted.as_bytes())?;
                        }
                    }
                    _ => {}
                }
                Ok(())
            })?;
            seal.first = anchor + 1;
            seal.last = end;
            seal.hash = chain::to_hex(&end_hash);
        }
        let seal = seal.sign(kind, log.signing_key());
        write(out, chain::seal_line(&seal).as_bytes())?;
        out.flush().map_err(LogError::Output)
    }
}
