//! Stable identifiers and content hashes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Vigie's id of a post: the first 128 bits of SHA-256(`source` NUL `native_id`), in hex.
///
/// It depends on nothing but the source name and the id the source gave the post, so every
/// stage, on every replay, computes the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VigieId(String);

impl VigieId {
    /// Derives the id of the post `native_id` of `source`.
    pub fn derive(source: &str, native_id: &str) -> Self {
        let mut h = Sha256::new();
        h.update(source.as_bytes());
        h.update([0u8]);
        h.update(native_id.as_bytes());
        VigieId(hex::encode(&h.finalize()[..16]))
    }

    /// The id as a hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VigieId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 of `bytes`, in hex: the content hash recorded in provenance.
pub fn content_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_depends_on_source_and_native_id_only() {
        let a = VigieId::derive("mastodon", "113");
        assert_eq!(a, VigieId::derive("mastodon", "113"));
        assert_ne!(a, VigieId::derive("reddit", "113"));
        assert_ne!(a, VigieId::derive("mastodon", "114"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(VigieId::derive("ab", "c"), VigieId::derive("a", "bc"));
        assert_eq!(a.as_str().len(), 32);
    }

    #[test]
    fn content_hash_is_sha256() {
        assert_eq!(
            content_sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
