//! Keyed pseudonyms for authors, and for the handles inside texts and URLs.
//!
//! A handle is replaced wherever it appears: in the author field, in mentions inside the text
//! (`@alice@mamot.fr`, `@bob`, `@carol.bsky.social`, `u/dave`) and in profile links
//! (`https://mamot.fr/@alice`, `https://bsky.app/profile/…`, `https://www.reddit.com/user/…`,
//! `https://twitter.com/…`). The same person gets the same pseudonym in all these places, as
//! long as the source tells us who a mention is (Mastodon's `mentions`, Bluesky's facets):
//! handles are first made canonical (`user@instance` on Mastodon, the DID on Bluesky, the
//! user name on Reddit), then pseudonymised in the namespace of their platform.
//!
//! A pseudonym cannot be reversed. A pseudonymiser made [`Pseudonymiser::recording`] notes each
//! pseudonym it makes, with its handle, in the identity file ([`crate::identities`]): the only
//! way back from a pseudonym to a person, for `vigie reidentify`.

use crate::identities::{IdentityError, IdentityRecorder};
use hmac::{Hmac, Mac};
use regex::{Captures, Regex};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Replaces handles by `ps:` + the first 128 bits of HMAC-SHA-256(key, source NUL handle).
///
/// The same handle on the same source always gets the same pseudonym, so an analyst can see
/// that posts share an author without seeing who it is; without the key, the pseudonym cannot
/// be reversed or recomputed. The key is never printed (`Debug` hides it).
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
    recorder: Option<IdentityRecorder>,
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
            recorder: None,
        }
    }

    /// This pseudonymiser, noting every pseudonym it makes in `recorder`'s identity file.
    pub fn recording(mut self, recorder: IdentityRecorder) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Returns once every pseudonym made so far is durably in the identity file (at once
    /// without a recorder); call it before the posts that carry them leave the ingestor.
    pub fn sync(&self) -> Result<(), IdentityError> {
        self.recorder.as_ref().map_or(Ok(()), |r| r.sync())
    }

    /// The pseudonym of `handle` on `source`. Handles are compared case-insensitively.
    pub fn pseudonym(&self, source: &str, handle: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(source.as_bytes());
        mac.update(&[0]);
        mac.update(handle.trim().to_lowercase().as_bytes());
        let pseudonym = format!("ps:{}", hex::encode(&mac.finalize().into_bytes()[..16]));
        if let Some(recorder) = &self.recorder {
            recorder.record(source, handle, &pseudonym);
        }
        pseudonym
    }

    /// Replaces the handles in profile links of `text` (any platform Vigie knows), keeping the
    /// rest of each URL.
    pub fn scrub_urls(&self, text: &str) -> String {
        let text = MASTODON_PROFILE.replace_all(text, |c: &Captures| {
            let host = &c[2];
            let domain = c.get(4).map_or(host, |m| m.as_str());
            let canonical = format!("{}@{}", &c[3], domain);
            format!(
                "{}{}/@{}",
                &c[1],
                host,
                self.pseudonym(Platform::Mastodon.namespace(), &canonical)
            )
        });
        let text = ACTIVITYPUB_USER.replace_all(&text, |c: &Captures| {
            let canonical = format!("{}@{}", &c[3], &c[2]);
            format!(
                "{}{}/users/{}",
                &c[1],
                &c[2],
                self.pseudonym(Platform::Mastodon.namespace(), &canonical)
            )
        });
        let text = BLUESKY_PROFILE.replace_all(&text, |c: &Captures| {
            format!(
                "{}{}",
                &c[1],
                self.pseudonym(Platform::Bluesky.namespace(), &c[2])
            )
        });
        let text = REDDIT_PROFILE.replace_all(&text, |c: &Captures| {
            format!(
                "{}{}",
                &c[1],
                self.pseudonym(Platform::Reddit.namespace(), &c[2])
            )
        });
        TWITTER_PROFILE
            .replace_all(&text, |c: &Captures| {
                if RESERVED_TWITTER_PATHS.contains(&c[2].to_lowercase().as_str()) {
                    return c[0].to_string();
                }
                format!(
                    "{}{}",
                    &c[1],
                    self.pseudonym(Platform::Twitter.namespace(), &c[2])
                )
            })
            .into_owned()
    }

    /// Replaces every handle in `text`: profile links ([`Self::scrub_urls`]), then mentions
    /// (`@user`, `@user@domain`, `@handle.example`, `u/user`), resolved with `ctx`.
    pub fn scrub(&self, text: &str, ctx: &HandleContext) -> String {
        let text = self.scrub_urls(text);
        let text = MENTION.replace_all(&text, |c: &Captures| {
            let local = &c[2];
            let canonical = match c.get(3) {
                Some(domain) => format!("{local}@{}", domain.as_str()),
                None => match ctx.known.get(&local.to_lowercase()) {
                    Some(known) => known.clone(),
                    None => match &ctx.default_domain {
                        Some(d) if !local.contains('.') => format!("{local}@{d}"),
                        _ => local.to_string(),
                    },
                },
            };
            format!("{}@{}", &c[1], self.pseudonym(&ctx.source, &canonical))
        });
        REDDIT_MENTION
            .replace_all(&text, |c: &Captures| {
                format!(
                    "{}{}{}",
                    &c[1],
                    &c[2],
                    self.pseudonym(Platform::Reddit.namespace(), &c[3])
                )
            })
            .into_owned()
    }
}

/// The platforms whose profile links Vigie recognises; each is a namespace of pseudonyms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Mastodon and the fediverse: handles `user@instance`.
    Mastodon,
    /// Bluesky: DIDs (or handles when no DID is known).
    Bluesky,
    /// Reddit: user names.
    Reddit,
    /// Twitter / X: user names.
    Twitter,
}

impl Platform {
    /// The pseudonym namespace: the `source` of that platform's posts.
    pub fn namespace(self) -> &'static str {
        match self {
            Platform::Mastodon => "mastodon",
            Platform::Bluesky => "bluesky",
            Platform::Reddit => "reddit",
            Platform::Twitter => "twitter",
        }
    }
}

/// How to resolve the mentions of one post into canonical handles.
#[derive(Debug, Clone, Default)]
pub struct HandleContext {
    /// The namespace of the mentions' pseudonyms: the post's source (`mastodon`, `bluesky`...).
    pub source: String,
    /// The domain of a bare `@user` mention (a Mastodon post's instance), if any.
    pub default_domain: Option<String>,
    /// Mentions the source resolved: handle as written (lower case, no `@`) -> canonical handle.
    pub known: HashMap<String, String>,
}

impl HandleContext {
    /// A context with no resolved mentions, for posts of `source`.
    pub fn new(source: &str) -> Self {
        HandleContext {
            source: source.to_string(),
            ..Default::default()
        }
    }
}

/// Host names: labels of letters, digits and dashes, with a dot-separated TLD.
const HOST: &str = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}";

static MASTODON_PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(https?://)({HOST})/@([A-Za-z0-9_]+)(?:@({HOST}))?"
    ))
    .expect("valid regex")
});
static ACTIVITYPUB_USER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(https?://)({HOST})/users/([A-Za-z0-9_]+)")).expect("valid regex")
});
static BLUESKY_PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(https?://(?:www\.)?bsky\.app/profile/)([^/\s?#]+)").expect("valid regex")
});
static REDDIT_PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(https?://(?:[a-z]+\.)?reddit\.com/(?:u|user)/)([A-Za-z0-9_-]+)")
        .expect("valid regex")
});
static TWITTER_PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/)([A-Za-z0-9_]{1,15})\b")
        .expect("valid regex")
});
/// Twitter paths that are not user names.
const RESERVED_TWITTER_PATHS: &[&str] = &["i", "home", "search", "hashtag", "intent", "share"];
/// `@local` or `@local@domain`, not inside a word, an e-mail address or a URL path.
static MENTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(^|[^\w@/.:+-])@([A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)(?:@({HOST}))?"
    ))
    .expect("valid regex")
});
/// Reddit's `u/name` and `/u/name`.
static REDDIT_MENTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[^\w/])(/?u/)([A-Za-z0-9_-]{3,20})\b").expect("valid regex"));

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

    #[test]
    fn handles_in_text_and_urls_get_the_authors_pseudonyms() {
        let p = Pseudonymiser::new(b"k");
        let alice = p.pseudonym("mastodon", "alice@mamot.fr");
        let bob = p.pseudonym("mastodon", "bob@piaille.fr");
        let mut ctx = HandleContext::new("mastodon");
        ctx.default_domain = Some("mamot.fr".into());
        ctx.known.insert("bob".into(), "bob@piaille.fr".into());
        let text = "Feu rue Garibaldi @alice @bob, voir https://mamot.fr/@alice/113 et \
                    https://piaille.fr/@bob@piaille.fr — écrire à alice@mamot.fr";
        let out = p.scrub(text, &ctx);
        assert_eq!(
            out,
            format!(
                "Feu rue Garibaldi @{alice} @{bob}, voir https://mamot.fr/@{alice}/113 et \
                 https://piaille.fr/@{bob} — écrire à alice@mamot.fr"
            )
        );
        assert!(!out.contains("@alice") && !out.contains("@bob"), "{out}");

        let did = "did:plc:3ypijopijnzoc7kia4u7oncu";
        let mut bsky = HandleContext::new("bluesky");
        bsky.known.insert("dana.bsky.social".into(), did.into());
        let out = p.scrub(
            "cc @dana.bsky.social. https://bsky.app/profile/did:plc:3ypijopijnzoc7kia4u7oncu/post/3n3a",
            &bsky,
        );
        let dana = p.pseudonym("bluesky", did);
        assert_eq!(
            out,
            format!("cc @{dana}. https://bsky.app/profile/{dana}/post/3n3a")
        );

        let out = p.scrub(
            "thanks u/brinebrother and /u/Other_One, see https://www.reddit.com/user/brinebrother/",
            &HandleContext::new("reddit"),
        );
        let brine = p.pseudonym("reddit", "brinebrother");
        assert_eq!(
            out,
            format!(
                "thanks u/{brine} and /u/{}, see https://www.reddit.com/user/{brine}/",
                p.pseudonym("reddit", "other_one")
            )
        );

        let out = p.scrub(
            "RT @J_Adams91: explosion http://twitter.com/J_Adams91/status/1 https://twitter.com/search?q=x",
            &HandleContext::new("twitter"),
        );
        let j = p.pseudonym("twitter", "j_adams91");
        assert_eq!(
            out,
            format!(
                "RT @{j}: explosion http://twitter.com/{j}/status/1 https://twitter.com/search?q=x"
            )
        );
        // Text without handles is untouched.
        let calm = "Fire at 3 rue de Sèze, 14:05; mail x@y.fr; https://example.org/a/b";
        assert_eq!(p.scrub(calm, &HandleContext::new("rss")), calm);
    }

    #[test]
    fn a_recording_pseudonymiser_notes_authors_and_mentions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::identities::IDENTITIES_FILE);
        let recorder = IdentityRecorder::open(&path).unwrap();
        let p = Pseudonymiser::new(b"k").recording(recorder);
        let alice = p.pseudonym("mastodon", "Alice@mamot.fr");
        let mut ctx = HandleContext::new("mastodon");
        ctx.default_domain = Some("mamot.fr".into());
        let text = p.scrub("cc @bob and https://reddit.com/u/carol", &ctx);
        p.sync().unwrap();
        // The same pseudonyms as without a recorder.
        assert_eq!(
            alice,
            Pseudonymiser::new(b"k").pseudonym("mastodon", "alice@mamot.fr")
        );
        let bob = p.pseudonym("mastodon", "bob@mamot.fr");
        let carol = p.pseudonym("reddit", "carol");
        assert!(text.contains(&bob) && text.contains(&carol), "{text}");
        for (pseudonym, source, handle) in [
            (&alice, "mastodon", "Alice@mamot.fr"),
            (&bob, "mastodon", "bob@mamot.fr"),
            (&carol, "reddit", "carol"),
        ] {
            let found = crate::identities::lookup(&path, pseudonym).unwrap();
            assert_eq!(found.len(), 1, "{pseudonym}");
            assert_eq!(
                (found[0].source.as_str(), found[0].handle.as_str()),
                (source, handle)
            );
        }
    }
}
