//! A disk cache of embeddings.
//!
//! Training, evaluation and the leave-one-crisis-out experiment embed the same files many
//! times; the encoder is by far the slowest step. The cache key is the SHA-256 of the encoder's
//! weights hash, its prompt and every text in order, so a changed model or a changed file never reads a
//! stale entry. Entries are written to a temporary file and renamed: a crash leaves no partial
//! entry behind.

use crate::{AnalyseError, Encoder};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Embeds `texts` with `encoder`, reading and writing `dir` when given.
pub fn embed(
    encoder: &Encoder,
    texts: &[&str],
    dir: Option<&Path>,
    progress: impl FnMut(usize),
) -> Result<Vec<Vec<f32>>, AnalyseError> {
    let Some(dir) = dir else {
        return encoder.encode_with_progress(texts, progress);
    };
    let path = entry(dir, encoder, texts);
    if let Some(hit) = read(&path, texts.len()) {
        return Ok(hit);
    }
    let vectors = encoder.encode_with_progress(texts, progress)?;
    write(&path, &vectors).map_err(|source| AnalyseError::ModelFile {
        path: path.clone(),
        source,
    })?;
    Ok(vectors)
}

fn entry(dir: &Path, encoder: &Encoder, texts: &[&str]) -> PathBuf {
    let mut h = Sha256::new();
    h.update(encoder.weights_sha256());
    // The prompt changes every vector (empty for MiniLM: its keys are as they were).
    h.update(encoder.prompt());
    // Vigie's own runtimes give other vectors (rust-bert's keys are as they were).
    if encoder.runtime() != crate::Runtime::RustBert {
        h.update(encoder.runtime().cache_tag());
    }
    for t in texts {
        h.update([0]);
        h.update(t.as_bytes());
    }
    dir.join(format!(
        "embeddings-{}.f32",
        &hex::encode(h.finalize())[..24]
    ))
}

/// Reads an entry: u32 count, u32 dimension, then count x dimension little-endian f32.
fn read(path: &Path, expected: usize) -> Option<Vec<Vec<f32>>> {
    let bytes = std::fs::read(path).ok()?;
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?))
    };
    let (n, dim) = (word(0)? as usize, word(4)? as usize);
    if n != expected || bytes.len() != 8 + 4 * n * dim {
        return None;
    }
    let floats: Vec<f32> = bytes[8..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some(floats.chunks(dim.max(1)).map(<[f32]>::to_vec).collect())
}

fn write(path: &Path, vectors: &[Vec<f32>]) -> std::io::Result<()> {
    let dim = vectors.first().map_or(0, Vec::len);
    let mut bytes = Vec::with_capacity(8 + 4 * vectors.len() * dim);
    bytes.extend((vectors.len() as u32).to_le_bytes());
    bytes.extend((dim as u32).to_le_bytes());
    for v in vectors {
        for x in v {
            bytes.extend(x.to_le_bytes());
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_a_wrong_size_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.f32");
        let v = vec![vec![1.0, -2.5], vec![0.25, 3.0]];
        write(&path, &v).unwrap();
        assert_eq!(read(&path, 2), Some(v));
        assert_eq!(read(&path, 3), None);
        std::fs::write(&path, [1, 0, 0, 0, 2, 0, 0, 0, 9]).unwrap();
        assert_eq!(read(&path, 1), None, "truncated entry is a miss");
    }
}
