//! The recorded accesses to one post, for its lineage.

use super::chain::Line;
use super::{io_error, Access, AccessLog, LogError};
use std::io::Read;

impl AccessLog {
    /// The durable entries whose answer returned post `id`, oldest first, with their seq
    /// (blocking: reads the log; lines that cannot name the id are skipped before parsing).
    pub fn accesses_to(&self, id: &str) -> Result<Vec<(u64, Access)>, LogError> {
        let path = self.path();
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(self.durable_len()).read_to_end(&mut bytes))
            .map_err(io_error(path))?;
        let text = String::from_utf8_lossy(&bytes);
        let quoted = format!("\"{id}\"");
        let mut found = Vec::new();
        for line in text.split_terminator('\n').filter(|l| l.contains(&quoted)) {
            if let Ok(Line::Entry { seq, body, .. }) = Line::parse(line) {
                if let Ok(access) = serde_json::from_str::<Access>(body) {
                    if access.posts.iter().any(|p| p == id) {
                        found.push((seq, access));
                    }
                }
            }
        }
        Ok(found)
    }
}
