//! Labelled posts: the JSONL format of `vigie train` and `vigie eval`.
//!
//! One JSON object a line: `id` and `text` required; `created_at` (RFC 3339), `lang`,
//! `source`, `crisis` and `event` (the crisis's type, e.g. `earthquake`) optional; `labels`, an
//! object of label name -> 0 or 1. A label absent from `labels` is unknown, not negative: a post
//! counts for a label only where that label is given. Other fields are ignored.

use crate::AnalyseError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One labelled post.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledPost {
    /// The post's id in its dataset.
    pub id: String,
    /// The text.
    pub text: String,
    /// Label name -> known value.
    #[serde(default)]
    pub labels: BTreeMap<String, u8>,
    /// The crisis it was collected for, if any.
    #[serde(default)]
    pub crisis: Option<String>,
    /// The type of that crisis (`earthquake`, `floods`...), if known.
    #[serde(default)]
    pub event: Option<String>,
}

/// A labelled file, read whole, with its SHA-256 (for model cards).
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Where it was read from.
    pub path: PathBuf,
    /// SHA-256 (hex) of the file's bytes.
    pub sha256: String,
    /// The posts, in file order.
    pub posts: Vec<LabelledPost>,
}

impl Dataset {
    /// Reads `path`; a malformed line or a label value other than 0 or 1 is an error that
    /// names the file and line.
    pub fn load(path: &Path) -> Result<Self, AnalyseError> {
        let bytes = std::fs::read(path).map_err(|source| AnalyseError::ModelFile {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |line: usize, message: String| AnalyseError::Data {
            location: format!("{}:{line}", path.display()),
            message,
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| bad(0, e.to_string()))?;
        let mut posts = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let post: LabelledPost =
                serde_json::from_str(line).map_err(|e| bad(n + 1, e.to_string()))?;
            if let Some((label, v)) = post.labels.iter().find(|(_, v)| **v > 1) {
                return Err(bad(n + 1, format!("label `{label}` is {v}, not 0 or 1")));
            }
            posts.push(post);
        }
        Ok(Dataset {
            path: path.to_path_buf(),
            sha256: crate::sha256_hex(&bytes),
            posts,
        })
    }

    /// The texts, in order.
    pub fn texts(&self) -> Vec<&str> {
        self.posts.iter().map(|p| p.text.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn labels_may_be_missing_but_not_out_of_range() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            r#"{{"id":"1","text":"a","labels":{{"danger":1}},"extra":true}}"#
        )
        .unwrap();
        writeln!(f, r#"{{"id":"2","text":"b"}}"#).unwrap();
        let d = Dataset::load(f.path()).unwrap();
        assert_eq!(d.posts.len(), 2);
        assert_eq!(d.posts[0].labels["danger"], 1);
        assert!(d.posts[1].labels.is_empty());
        assert_eq!(d.sha256.len(), 64);

        writeln!(f, r#"{{"id":"3","text":"c","labels":{{"fire":2}}}}"#).unwrap();
        let e = Dataset::load(f.path()).unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("`fire` is 2"), "{e}");
    }
}
