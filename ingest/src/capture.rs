//! Capture files: what a source yielded, one JSON object a line, to replay later.
//!
//! ## Format
//! Each line is an [`Envelope`] exactly as the source yielded it (its JSON wire format), or,
//! for a post deleted at its source, `{"tombstone": {…}}` ([`Tombstone`]). Lines are in the
//! order the source yielded them. A file whose name ends in `.zst` is zstd-compressed.
//!
//! ## Durability
//! [`CaptureWriter::write`] appends a batch and flushes it to disk (`fsync`) before it returns,
//! so the driver commits a source's cursor only once its posts are in the file. A compressed
//! file is a sequence of zstd frames, one per batch (a valid zstd stream), so a capture cut
//! short by a crash still decodes up to its last complete batch, and a capture can be resumed
//! by appending to the same file.
//!
//! **A torn tail is repaired before appending.** A crash in the middle of a write leaves an
//! incomplete frame (or, uncompressed, a line without its line break) at the end of the file;
//! appending after it would make everything appended unreadable (a zstd decoder stops at the
//! torn frame). So [`CaptureWriter::open`] first cuts the file back to its last complete frame
//! (walking the frames by their headers, RFC 8878) or last line break, keeping every complete
//! batch, and logs what it cut.

use crate::driver::{BoxError, Sink};
use crate::source::{Item, Tombstone};
use crate::IngestError;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use vigie_record::Envelope;

/// The line of a deletion.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TombstoneLine {
    tombstone: Tombstone,
}

/// The JSON line of `item` (without the newline).
pub fn to_line(item: &Item) -> Vec<u8> {
    match item {
        Item::Post(envelope) => envelope.to_json(),
        Item::Delete(tombstone) => serde_json::to_vec(&TombstoneLine {
            tombstone: (**tombstone).clone(),
        })
        // A tombstone is strings and a timestamp: serialising cannot fail.
        .unwrap_or_default(),
    }
}

/// The item of one capture line; the error names the field at fault.
pub fn from_line(line: &str) -> Result<Item, String> {
    if line.trim_start().starts_with("{\"tombstone\"") {
        let t: TombstoneLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
        return Ok(Item::Delete(Box::new(t.tombstone)));
    }
    Envelope::from_json(line.as_bytes())
        .map(|e| Item::Post(Box::new(e)))
        .map_err(|e| e.to_string())
}

/// Whether `path` names a zstd-compressed capture.
pub fn is_compressed(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "zst")
}

/// Appends batches to a capture file, durably.
#[derive(Debug)]
pub struct CaptureWriter {
    path: PathBuf,
    file: std::fs::File,
    compressed: bool,
    /// Items written by this writer.
    pub written: u64,
}

impl CaptureWriter {
    /// Opens `path` for appending (creating it, and its directory, if missing).
    pub fn open(path: &Path) -> Result<Self, IngestError> {
        let io_err = |error| IngestError::Io {
            source_name: "capture".into(),
            location: path.display().to_string(),
            error,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(io_err)?;
        let compressed = is_compressed(path);
        repair_torn_tail(&file, compressed, path).map_err(io_err)?;
        Ok(CaptureWriter {
            path: path.to_path_buf(),
            file,
            compressed,
            written: 0,
        })
    }

    /// Appends `items` and flushes them to disk.
    pub fn write(&mut self, items: &[Item]) -> Result<(), IngestError> {
        let mut lines = Vec::new();
        for item in items {
            lines.extend_from_slice(&to_line(item));
            lines.push(b'\n');
        }
        let result = (|| -> std::io::Result<()> {
            if self.compressed {
                self.file
                    .write_all(&zstd::encode_all(lines.as_slice(), 3)?)?;
            } else {
                self.file.write_all(&lines)?;
            }
            self.file.sync_data()
        })();
        result.map_err(|error| IngestError::Io {
            source_name: "capture".into(),
            location: self.path.display().to_string(),
            error,
        })?;
        self.written += items.len() as u64;
        Ok(())
    }
}

/// Cuts what a crash left half-written at the end of a capture, so that what is appended next
/// is readable: after the last complete zstd frame of a compressed file, after the last line
/// break of a plain one. Returns the bytes cut.
fn repair_torn_tail(file: &std::fs::File, compressed: bool, path: &Path) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let keep = if compressed {
        complete_frames_len(file, len)?
    } else {
        last_line_end(file, len)?
    };
    if keep < len {
        tracing::warn!(
            "{}: cutting {} bytes of a torn {} at its end (offset {keep}) before appending",
            path.display(),
            len - keep,
            if compressed { "zstd frame" } else { "line" }
        );
        file.set_len(keep)?;
        file.sync_data()?;
    }
    Ok(len - keep)
}

/// The length of the plain file's prefix that ends with a line break (0 if none).
fn last_line_end(file: &std::fs::File, len: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut end = len;
    let mut buf = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The zstd frame magic number, and the range of skippable frames' ones (RFC 8878).
const ZSTD_MAGIC: u32 = 0xFD2F_B528;
const SKIPPABLE_MAGIC: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;

/// The length of the file's prefix made of complete zstd frames: the frames are walked by
/// their headers and block headers (RFC 8878), reading a few bytes each, and the first frame
/// that does not start right (garbage, zeros) or does not end within the file is where the
/// complete prefix ends.
fn complete_frames_len(file: &std::fs::File, len: u64) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    // `n` bytes at `at`, or None when the file ends first.
    let read = |at: u64, n: usize| -> std::io::Result<Option<Vec<u8>>> {
        if at.checked_add(n as u64).is_none_or(|end| end > len) {
            return Ok(None);
        }
        let mut buf = vec![0u8; n];
        file.read_exact_at(&mut buf, at)?;
        Ok(Some(buf))
    };
    let le = |b: &[u8]| {
        b.iter()
            .rev()
            .fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
    };
    let mut complete = 0u64;
    loop {
        let Some(magic) = read(complete, 4)? else {
            return Ok(complete);
        };
        let magic = le(&magic) as u32;
        let mut at = complete + 4;
        if SKIPPABLE_MAGIC.contains(&magic) {
            let Some(size) = read(at, 4)? else {
                return Ok(complete);
            };
            at += 4 + le(&size);
        } else if magic == ZSTD_MAGIC {
            let Some(descriptor) = read(at, 1)? else {
                return Ok(complete);
            };
            let d = descriptor[0];
            if d & 0x08 != 0 {
                // The reserved bit is set: not a frame.
                return Ok(complete);
            }
            let single_segment = d & 0x20 != 0;
            let fcs = match d >> 6 {
                0 => u64::from(single_segment),
                1 => 2,
                2 => 4,
                _ => 8,
            };
            let dict = [0, 1, 2, 4][usize::from(d & 0x03)];
            at += 1 + u64::from(!single_segment) + dict + fcs;
            loop {
                let Some(block) = read(at, 3)? else {
                    return Ok(complete);
                };
                let header = le(&block);
                let size = match (header >> 1) & 0x03 {
                    0 | 2 => header >> 3,
                    1 => 1,
                    _ => return Ok(complete),
                };
                at += 3 + size;
                if header & 1 == 1 {
                    break;
                }
            }
            if d & 0x04 != 0 {
                at += 4;
            }
        } else {
            return Ok(complete);
        }
        if at > len {
            return Ok(complete);
        }
        complete = at;
    }
}

#[async_trait::async_trait]
impl Sink for CaptureWriter {
    async fn accept(&mut self, _source: &str, items: &[Item]) -> Result<(), BoxError> {
        // Small appends: done in place; the fsync is what the cursor waits for.
        Ok(self.write(items)?)
    }
}

/// Reads a capture file: one item (or the error of that line) per non-blank line, in order.
pub fn read(path: &Path) -> Result<Vec<Result<Item, IngestError>>, IngestError> {
    let io_err = |error| IngestError::Io {
        source_name: "capture".into(),
        location: path.display().to_string(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let reader: Box<dyn Read> = if is_compressed(path) {
        Box::new(zstd::stream::read::Decoder::new(file).map_err(io_err)?)
    } else {
        Box::new(file)
    };
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(reader).lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            // A compressed capture cut short by a crash: keep what decoded.
            Err(e) if is_compressed(path) && !out.is_empty() => {
                tracing::warn!("{}: stops at line {}: {e}", path.display(), n + 1);
                break;
            }
            Err(e) => return Err(io_err(e)),
        };
        if line.trim().is_empty() {
            continue;
        }
        out.push(from_line(&line).map_err(|message| IngestError::Malformed {
            source_name: "capture".into(),
            location: format!("{}:{}", path.display(), n + 1),
            message,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_record::VigieId;

    fn items() -> Vec<Item> {
        let post = vigie_record::Envelope {
            post: vigie_record::Post {
                id: VigieId::derive("mastodon", "1"),
                source: "mastodon".into(),
                native_id: "1".into(),
                author: "ps:00".into(),
                text: "Incendie « rue » 🔥".into(),
                lang: Some("fr".into()),
                created_at: "2026-11-27T08:00:00Z".parse().unwrap(),
                url: None,
                coordinates: None,
            },
            provenance: vigie_record::Provenance {
                fetched_at: "2026-11-27T08:00:03Z".parse().unwrap(),
                fetch_url: "https://mamot.fr/api/v1/timelines/public".into(),
                http_status: Some(200),
                ingestor: vigie_record::Ingestor {
                    name: "mastodon".into(),
                    version: "0".into(),
                },
                content_sha256: "00".into(),
                matched: Some("m: public".into()),
            },
            kafka: None,
            scoring: None,
            places: None,
        };
        let tombstone = Tombstone {
            id: VigieId::derive("mastodon", "1"),
            source: "mastodon".into(),
            native_id: "1".into(),
            deleted_at: "2026-11-27T09:00:00Z".parse().unwrap(),
            provenance: post.provenance.clone(),
        };
        vec![
            Item::Post(Box::new(post)),
            Item::Delete(Box::new(tombstone)),
        ]
    }

    /// Every item of the capture at `path`, each read without error.
    fn read_all(path: &Path) -> Vec<Item> {
        read(path)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn plain_and_zstd_captures_round_trip_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["c.jsonl", "c.jsonl.zst"] {
            let path = dir.path().join("sub").join(name);
            let mut w = CaptureWriter::open(&path).unwrap();
            w.write(&items()).unwrap();
            drop(w);
            // Resumed capture: appended as a second batch (a second zstd frame).
            CaptureWriter::open(&path)
                .unwrap()
                .write(&items()[..1])
                .unwrap();
            let back: Vec<Item> = read_all(&path);
            let mut want = items();
            want.push(items()[0].clone());
            assert_eq!(back, want, "{name}");
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
                name.ends_with(".zst"),
                "{name}: zstd magic"
            );
        }
    }

    #[test]
    fn a_bad_line_is_named_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let mut text = String::from_utf8(to_line(&items()[0])).unwrap();
        text.push_str("\n{\"post\": {}}\n\n");
        text.push_str(&String::from_utf8(to_line(&items()[1])).unwrap());
        std::fs::write(&path, text).unwrap();
        let got = read(&path).unwrap();
        assert_eq!(got.len(), 3);
        let e = got[1].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("c.jsonl:2") && e.contains("missing field"),
            "{e}"
        );
        assert!(matches!(got[2], Ok(Item::Delete(_))));
    }

    #[test]
    fn a_torn_zstd_frame_at_the_end_is_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        // Torn by a few bytes, torn just after the magic, and followed by zeros (a crash that
        // left the file's new length but not its data).
        for (n, tear) in [
            |b: &mut Vec<u8>, _| b.truncate(b.len() - 3),
            |b: &mut Vec<u8>, first| b.truncate(first + 5),
            |b: &mut Vec<u8>, _| b.extend_from_slice(&[0u8; 100]),
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.path().join(format!("c{n}.jsonl.zst"));
            let mut w = CaptureWriter::open(&path).unwrap();
            w.write(&items()).unwrap();
            let first = std::fs::metadata(&path).unwrap().len() as usize;
            w.write(&items()[..1]).unwrap();
            drop(w);
            let mut bytes = std::fs::read(&path).unwrap();
            tear(&mut bytes, first);
            std::fs::write(&path, &bytes).unwrap();

            CaptureWriter::open(&path)
                .unwrap()
                .write(&items()[1..])
                .unwrap();
            let back: Vec<Item> = read_all(&path);
            let mut want = items();
            if n == 2 {
                // The zeros came after a complete second batch: it is kept.
                want.push(items()[0].clone());
            }
            want.push(items()[1].clone());
            assert_eq!(back, want, "tear {n}");
        }
    }

    #[test]
    fn a_torn_line_at_the_end_of_a_plain_capture_is_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        CaptureWriter::open(&path).unwrap().write(&items()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 10);
        std::fs::write(&path, &bytes).unwrap();
        CaptureWriter::open(&path)
            .unwrap()
            .write(&items()[..1])
            .unwrap();
        let back: Vec<Item> = read_all(&path);
        assert_eq!(back, vec![items()[0].clone(), items()[0].clone()]);
    }

    #[test]
    fn a_truncated_zstd_capture_keeps_its_complete_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl.zst");
        let mut w = CaptureWriter::open(&path).unwrap();
        w.write(&items()[..1]).unwrap();
        let first = std::fs::metadata(&path).unwrap().len();
        w.write(&items()[1..]).unwrap();
        drop(w);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..(first as usize + 5)]).unwrap();
        let got = read(&path).unwrap();
        assert_eq!(got.len(), 1);
        assert!(matches!(got[0], Ok(Item::Post(_))));
    }
}
