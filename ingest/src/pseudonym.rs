//! Keyed pseudonyms for authors, and for the handles inside texts and URLs.
//!
//! A handle is replaced wherever it appears: in the author field, in mentions inside the text
//! (`@alice@mamot.fr`, `@bob`, `@carol.bsky.social`, `＠erin`, `.@frank`, `cc:@gina`,
//! `u/dave`) and in URLs (`https://mamot.fr/@alice`, `…/@alice.rss`, `…/users/alice`,
//! `https://bsky.app/profile/…`, `at://did:…/…`, `https://www.reddit.com/user/…`, `/u/…`,
//! `/r/u_…`, `https://twitter.com/…`), whatever the case of the scheme and host, with or
//! without a port or a scheme. **No handle survives in a URL** Vigie shows: the post's text,
//! its URL and native id, and its provenance (`fetch_url`, `matched`: a feed may be a user's)
//! all go through [`Pseudonymiser::scrub_urls`]. Scrubbing is idempotent: a pseudonym
//! (`ps:` and 32 hex digits) is never pseudonymised again. The same person gets the same pseudonym in all these places, as
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
    #[allow(
        clippy::expect_used,
        reason = "HMAC takes keys of any length: new_from_slice cannot fail"
    )]
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

    /// Replaces the handles in profile links and other URLs of `text` (any platform Vigie
    /// knows), keeping the rest of each URL: `…/@alice`, `…/@alice@other.domain`,
    /// `…/@alice.rss`, `…/users/alice` (any host), `bsky.app/profile/…` and `at://…` (Bluesky
    /// handles and DIDs), `reddit.com/user/…`, `/u/…` and `/r/u_…`, `twitter.com/…` and
    /// `x.com/…`. Schemes and hosts match in any case, with or without a port; links without a
    /// scheme (`mamot.fr/@alice`) are recognised too. Pseudonyms already in `text` are left as
    /// they are, so scrubbing twice changes nothing more than scrubbing once.
    pub fn scrub_urls(&self, text: &str) -> String {
        let text = replace_handles(&MASTODON_PROFILE, text, "local", |c| {
            let host = &c["host"];
            let domain = c.name("domain").map_or(host, |m| m.as_str());
            let (local, suffix) = split_format_suffix(&c["local"]);
            let canonical = format!("{local}@{domain}");
            let pseudonym = self.pseudonym(Platform::Mastodon.namespace(), &canonical);
            format!(
                "{}{host}{}{}/@{pseudonym}{suffix}",
                &c["pre"],
                c.name("port").map_or("", |m| m.as_str()),
                c.name("path").map_or("", |m| m.as_str()),
            )
        });
        let text = replace_handles(&ACTIVITYPUB_USER, &text, "local", |c| {
            let (local, suffix) = split_format_suffix(&c["local"]);
            let canonical = format!("{local}@{}", &c["host"]);
            let pseudonym = self.pseudonym(Platform::Mastodon.namespace(), &canonical);
            format!(
                "{}{}{}/users/{pseudonym}{suffix}",
                &c["pre"],
                &c["host"],
                c.name("port").map_or("", |m| m.as_str()),
            )
        });
        let text = replace_handles(&BLUESKY_PROFILE, &text, "local", |c| {
            let pseudonym = self.pseudonym(Platform::Bluesky.namespace(), &c["local"]);
            format!("{}{pseudonym}", &c["pre"])
        });
        let text = replace_handles(&AT_URI, &text, "local", |c| {
            let pseudonym = self.pseudonym(Platform::Bluesky.namespace(), &c["local"]);
            format!("{}{pseudonym}", &c["pre"])
        });
        let text = replace_handles(&REDDIT_PROFILE, &text, "local", |c| {
            let pseudonym = self.pseudonym(Platform::Reddit.namespace(), &c["local"]);
            format!("{}{pseudonym}", &c["pre"])
        });
        replace_handles(&TWITTER_PROFILE, &text, "local", |c| {
            if RESERVED_TWITTER_PATHS.contains(&c["local"].to_lowercase().as_str()) {
                return c[0].to_string();
            }
            let pseudonym = self.pseudonym(Platform::Twitter.namespace(), &c["local"]);
            format!("{}{pseudonym}", &c["pre"])
        })
    }

    /// Replaces every handle in `text`: profile links ([`Self::scrub_urls`]), then mentions
    /// (`@user`, `@user@domain`, `@handle.example`, `＠user`, also right after `.`, `:` or
    /// `/`: `.@user`, `cc:@user`, a relative `/@user`; and `u/user`), resolved with `ctx`.
    pub fn scrub(&self, text: &str, ctx: &HandleContext) -> String {
        let text = self.scrub_urls(text);
        let text = replace_handles(&MENTION, &text, "local", |c| {
            let local = &c["local"];
            let canonical = match c.name("domain") {
                Some(domain) => format!("{local}@{}", domain.as_str()),
                None => match ctx.known.get(&local.to_lowercase()) {
                    Some(known) => known.clone(),
                    None => match &ctx.default_domain {
                        Some(d) if !local.contains('.') => format!("{local}@{d}"),
                        _ => local.to_string(),
                    },
                },
            };
            format!("{}@{}", &c["pre"], self.pseudonym(&ctx.source, &canonical))
        });
        replace_handles(&REDDIT_MENTION, &text, "local", |c| {
            format!(
                "{}{}{}",
                &c["pre"],
                &c["u"],
                self.pseudonym(Platform::Reddit.namespace(), &c["local"])
            )
        })
    }
}

/// `regex.replace_all(text, replace)`, except for the matches whose `group` (the handle)
/// starts a pseudonym already: those are kept as they are.
fn replace_handles(
    regex: &Regex,
    text: &str,
    group: &str,
    mut replace: impl FnMut(&Captures) -> String,
) -> String {
    regex
        .replace_all(text, |c: &Captures| match c.name(group) {
            Some(m) if is_pseudonym_prefix(&text[m.start()..]) => c[0].to_string(),
            _ => replace(c),
        })
        .into_owned()
}

/// Whether `s` starts with a pseudonym (`ps:` and 32 lower-case hex digits).
fn is_pseudonym_prefix(s: &str) -> bool {
    let Some(hex) = s.strip_prefix("ps:") else {
        return false;
    };
    hex.len() >= 32
        && hex.as_bytes()[..32]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// The format suffixes Mastodon serves after a profile path (`/@alice.rss`, `/users/alice.json`).
const FORMAT_SUFFIXES: &[&str] = &[".rss", ".atom", ".json", ".xml", ".html", ".htm"];

/// A handle of a profile path and its format suffix: `alice.rss` -> (`alice`, `.rss`).
fn split_format_suffix(local: &str) -> (&str, &str) {
    for suffix in FORMAT_SUFFIXES {
        if local.len() > suffix.len() {
            let (head, tail) = local.split_at(local.len() - suffix.len());
            if tail.eq_ignore_ascii_case(suffix) {
                return (head, tail);
            }
        }
    }
    (local, "")
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

/// Host names: labels of letters, digits and dashes with a dot-separated TLD, `localhost`, or
/// an IPv4 address.
const HOST: &str =
    r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}|(?i:localhost)|\d{1,3}(?:\.\d{1,3}){3})";
/// What comes before a host: a scheme (any, in any case: `https://`, `HTTPS://`, `wss://`), or
/// for a link written without one, the start of the text or a character that cannot be part of
/// a host name.
const PRE: &str = r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://|^|[^\w.@%-])";
/// An optional port.
const PORT: &str = r"(?P<port>:\d{1,5})?";
/// The user name of a fediverse profile path (dots and dashes inside, as some servers allow).
const LOCAL: &str = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?";
/// A Bluesky DID (`did:plc:…`, `did:web:…`) or handle (`alice.bsky.social`).
const BSKY_ID: &str =
    r"(?:did:[a-z0-9]+:[A-Za-z0-9._%:-]*[A-Za-z0-9]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)";

/// Compiles one of the constant patterns below. They are fixed in the source, and a test
/// compiles every one of them (`every_pattern_compiles`): a pattern that did not compile would
/// fail the tests, never a run.
#[allow(
    clippy::expect_used,
    reason = "constant patterns, each compiled by a test"
)]
fn pattern(re: &str) -> Regex {
    Regex::new(re).expect("valid regex")
}

/// `…host/@user`, `…host/@user@domain`, `…host/web/@user`, `…host/%40user` (any host).
static MASTODON_PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    pattern(&format!(
        r"{PRE}(?P<host>{HOST}){PORT}(?P<path>(?:/[\w.~!$&'()*+,;=:-]+)*?)/(?:@|%40)(?P<local>{LOCAL})(?:@(?P<domain>{HOST}))?"
    ))
});
/// `…host/users/user` (ActivityPub actor URLs, any host).
static ACTIVITYPUB_USER: LazyLock<Regex> = LazyLock::new(|| {
    pattern(&format!(
        r"{PRE}(?P<host>{HOST}){PORT}/users/(?P<local>{LOCAL})"
    ))
});
/// `bsky.app/profile/HANDLE-OR-DID`.
static BLUESKY_PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    pattern(&format!(
        r"(?P<pre>{PRE_BARE}(?i:(?:[a-z0-9-]+\.)?bsky\.app){PORT_BARE}/profile/)(?P<local>{BSKY_ID})"
    ))
});
/// `at://HANDLE-OR-DID/…` (AT Protocol URIs: Bluesky posts' native ids).
static AT_URI: LazyLock<Regex> =
    LazyLock::new(|| pattern(&format!(r"(?P<pre>(?i:at)://)(?P<local>{BSKY_ID})")));
/// `reddit.com/user/NAME`, `reddit.com/u/NAME`, `reddit.com/r/u_NAME` (any subdomain).
static REDDIT_PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    pattern(&format!(
        r"(?P<pre>{PRE_BARE}(?i:(?:[a-z0-9-]+\.)*reddit\.com){PORT_BARE}/(?:(?i:u|user)/|r/u_))(?P<local>[A-Za-z0-9_-]+)"
    ))
});
/// `twitter.com/NAME`, `x.com/NAME`.
static TWITTER_PROFILE: LazyLock<Regex> = LazyLock::new(|| {
    pattern(&format!(
        r"(?P<pre>{PRE_BARE}(?i:(?:www\.|mobile\.)?(?:twitter|x)\.com){PORT_BARE}/)(?P<local>[A-Za-z0-9_]{{1,15}})\b"
    ))
});
/// [`PRE`] without its group name, to nest in a larger `pre` group.
const PRE_BARE: &str = r"(?:[A-Za-z][A-Za-z0-9+.-]*://|^|[^\w.@%-])";
/// [`PORT`] without its group name.
const PORT_BARE: &str = r"(?::\d{1,5})?";
/// Twitter paths that are not user names.
const RESERVED_TWITTER_PATHS: &[&str] = &["i", "home", "search", "hashtag", "intent", "share"];
/// `@local` or `@local@domain` (`@` or the full-width `＠`), not inside a word or an e-mail
/// address; `.@user`, `cc:@user` and `/@user` are mentions too.
static MENTION: LazyLock<Regex> = LazyLock::new(|| {
    pattern(&format!(
        r"(?P<pre>^|[^\w@＠+-])[@＠](?P<local>{LOCAL})(?:[@＠](?P<domain>{HOST}))?"
    ))
});
/// Reddit's `u/name` and `/u/name`.
static REDDIT_MENTION: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(?P<pre>^|[^\w/])(?P<u>/?u/)(?P<local>[A-Za-z0-9_-]{3,20})\b"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for re in [
            &MASTODON_PROFILE,
            &ACTIVITYPUB_USER,
            &BLUESKY_PROFILE,
            &AT_URI,
            &REDDIT_PROFILE,
            &TWITTER_PROFILE,
            &MENTION,
            &REDDIT_MENTION,
        ] {
            LazyLock::force(re);
        }
    }

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
    fn a_mention_after_a_dot_a_colon_a_slash_or_in_full_width_is_pseudonymised() {
        let p = Pseudonymiser::new(b"k");
        let mut ctx = HandleContext::new("mastodon");
        ctx.default_domain = Some("mamot.fr".into());
        let alice = p.pseudonym("mastodon", "alice@mamot.fr");
        let bob = p.pseudonym("mastodon", "bob@piaille.fr");
        let out = p.scrub(
            ".@alice lisez ça, cc:@alice, ＠alice, ＠bob＠piaille.fr, voir /@alice",
            &ctx,
        );
        assert_eq!(
            out,
            format!(".@{alice} lisez ça, cc:@{alice}, @{alice}, @{bob}, voir /@{alice}")
        );
        // E-mail addresses are still not mentions.
        let mail = "écrire à first.last@mamot.fr ou a+b@x.org";
        assert_eq!(p.scrub(mail, &ctx), mail);
    }

    #[test]
    fn an_upper_case_scheme_or_host_does_not_hide_a_profile_link() {
        let p = Pseudonymiser::new(b"k");
        let alice = p.pseudonym("mastodon", "alice@mamot.fr");
        let dana = p.pseudonym("bluesky", "dana.bsky.social");
        let carol = p.pseudonym("reddit", "carol");
        let out = p.scrub_urls(
            "HTTPS://MAMOT.FR/@alice/1 Https://Bsky.App/profile/dana.bsky.social/post/3 \
             HTTP://WWW.REDDIT.COM/U/carol",
        );
        assert_eq!(
            out,
            format!(
                "HTTPS://MAMOT.FR/@{alice}/1 Https://Bsky.App/profile/{dana}/post/3 \
                 HTTP://WWW.REDDIT.COM/U/{carol}"
            )
        );
    }

    #[test]
    fn a_handle_in_a_feed_or_profile_url_path_gets_the_authors_pseudonym() {
        let p = Pseudonymiser::new(b"k");
        let alice = p.pseudonym("mastodon", "alice@mastodon.social");
        let local = p.pseudonym("mastodon", "alice@127.0.0.1");
        let dave = p.pseudonym("reddit", "dave");
        let did = p.pseudonym("bluesky", "did:plc:3ypijopijnzoc7kia4u7oncu");
        let dana = p.pseudonym("bluesky", "dana.bsky.social");
        for (url, want) in [
            (
                "https://mastodon.social/@alice.rss",
                format!("https://mastodon.social/@{alice}.rss"),
            ),
            (
                "https://mastodon.social/users/alice.json",
                format!("https://mastodon.social/users/{alice}.json"),
            ),
            (
                "https://mastodon.social/%40alice",
                format!("https://mastodon.social/@{alice}"),
            ),
            (
                "https://mastodon.social/web/@alice/1",
                format!("https://mastodon.social/web/@{alice}/1"),
            ),
            (
                "wss://mastodon.social:8443/@alice",
                format!("wss://mastodon.social:8443/@{alice}"),
            ),
            (
                "http://127.0.0.1:8080/@alice.rss",
                format!("http://127.0.0.1:8080/@{local}.rss"),
            ),
            (
                "(mastodon.social/@alice)",
                format!("(mastodon.social/@{alice})"),
            ),
            (
                "https://old.reddit.com/user/dave/.rss",
                format!("https://old.reddit.com/user/{dave}/.rss"),
            ),
            (
                "https://www.reddit.com/r/u_dave/new.json",
                format!("https://www.reddit.com/r/u_{dave}/new.json"),
            ),
            (
                "https://bsky.app/profile/dana.bsky.social/rss",
                format!("https://bsky.app/profile/{dana}/rss"),
            ),
            (
                "at://did:plc:3ypijopijnzoc7kia4u7oncu/app.bsky.feed.post/3n3a",
                format!("at://{did}/app.bsky.feed.post/3n3a"),
            ),
        ] {
            assert_eq!(p.scrub_urls(url), want, "{url}");
        }
        // URLs without handles are untouched.
        for url in [
            "https://mamot.fr/api/v1/timelines/tag/feu?limit=40",
            "https://www.reddit.com/r/Cooking/new.json?limit=100",
            "https://example.org/news/feed.xml",
        ] {
            assert_eq!(p.scrub_urls(url), url);
        }
    }

    #[test]
    fn pseudonyms_already_in_a_text_are_not_pseudonymised_again() {
        let p = Pseudonymiser::new(b"k");
        let mut ctx = HandleContext::new("mastodon");
        ctx.default_domain = Some("mamot.fr".into());
        let text = "@alice https://mamot.fr/@bob https://mamot.fr/users/bob \
                    https://bsky.app/profile/dana.bsky.social at://did:plc:x1/app.bsky.feed.post/1 \
                    https://reddit.com/u/carol u/carol https://twitter.com/jo";
        let once = p.scrub(text, &ctx);
        assert_eq!(p.scrub(&once, &ctx), once);
        assert_eq!(p.scrub_urls(&once), once);
        assert!(!once.contains("alice") && !once.contains("bob") && !once.contains("dana"));
    }

    /// Texts made of the pieces handles, URLs and pseudonyms are made of.
    fn handle_soup() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let pieces = prop::sample::select(vec![
            "@",
            "＠",
            ".",
            ":",
            "/",
            " ",
            "-",
            "_",
            "alice",
            "Bob",
            "x",
            "https://",
            "HTTPS://",
            "wss://",
            "mamot.fr",
            "127.0.0.1",
            ":8080",
            "/@",
            "/users/",
            "bsky.app/profile/",
            "at://",
            "did:plc:abc",
            "reddit.com/u/",
            "/r/u_",
            "u/",
            "twitter.com/",
            ".rss",
            "ps:",
            "%40",
            "é",
            "\n",
        ]);
        prop::collection::vec(pieces, 0..24).prop_map(|p| p.concat())
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        #[test]
        fn fuzzed_texts_never_panic_and_scrubbing_twice_is_scrubbing_once(
            text in proptest::prop_oneof![handle_soup(), ".{0,200}"]
        ) {
            let p = Pseudonymiser::new(b"k");
            let mut ctx = HandleContext::new("mastodon");
            ctx.default_domain = Some("mamot.fr".into());
            let once = p.scrub(&text, &ctx);
            proptest::prop_assert_eq!(p.scrub(&once, &ctx), once.clone(), "from {:?}", text);
            proptest::prop_assert_eq!(p.scrub_urls(&once), once);
            crate::text::html_to_text(&text);
        }
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
