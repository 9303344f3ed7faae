//! Keyed pseudonyms for authors.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Replaces handles by `ps:` + the first 128 bits of HMAC-SHA-256(key, source NUL handle).
///
/// The same handle on the same source always gets the same pseudonym, so an analyst can see
/// that posts share an author without seeing who it is; without the key, the pseudonym cannot
/// be reversed or recomputed. The key is never printed (`Debug` hides it).
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser { key: <hidden> }")
    }
}

impl Pseudonymiser {
    /// A pseudonymiser keyed with `key` (any length; HMAC hashes long keys).
    pub fn new(key: &[u8]) -> Self {
        Pseudonymiser {
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    /// The pseudonym of `handle` on `source`. Handles are compared case-insensitively.
    pub fn pseudonym(&self, source: &str, handle: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(source.as_bytes());
        mac.update(&[0]);
        mac.update(handle.trim().to_lowercase().as_bytes());
        format!("ps:{}", hex::encode(&mac.finalize().into_bytes()[..16]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_hide_the_key() {
        let p = Pseudonymiser::new(b"secret-key");
        let a = p.pseudonym("mastodon", "@alice@example.social");
        assert_eq!(a, p.pseudonym("mastodon", "@Alice@example.social"));
        assert_ne!(a, p.pseudonym("reddit", "@alice@example.social"));
        assert_ne!(
            a,
            Pseudonymiser::new(b"other-key").pseudonym("mastodon", "@alice@example.social")
        );
        assert!(a.starts_with("ps:") && a.len() == 35, "{a}");
        assert!(!a.contains("alice"));
        assert!(!format!("{p:?}").contains("secret"));
    }
}
