//! Console sessions: who signed in, with which purpose, until when.
//!
//! Signing in trades a bearer token for a session: a random 256-bit id, sent back as the cookie
//! [`COOKIE`] (`HttpOnly`, `SameSite=Strict`, `Secure` when the console is served over TLS), and
//! a random CSRF token that every form carries. The server keeps sessions in memory only, so a
//! restart signs everyone out; a session ends at sign-out, after [`IDLE`] without a request, after
//! [`LIFETIME`] in all, or as soon as its user is removed or loses the role (checked at each
//! request). The token itself is never stored in the session nor written anywhere.
//!
//! At most [`MAX_SESSIONS`] are held: past that, the oldest idle one is dropped, so a flood of
//! sign-ins cannot grow the server's memory.

use crate::users::Caller;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The session cookie's name.
pub const COOKIE: &str = "vigie_session";
/// A session with no request for this long ends.
pub const IDLE: Duration = Duration::hours(2);
/// A session ends this long after sign-in, whatever happens.
pub const LIFETIME: Duration = Duration::hours(12);
/// Most sessions held at once.
pub const MAX_SESSIONS: usize = 2048;

/// One signed-in person.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Its id (the cookie's value): 64 hex digits.
    pub id: String,
    /// Who.
    pub caller: Caller,
    /// The purpose they stated (asked at sign-in, changeable, shown on every page, logged with
    /// every request).
    pub purpose: String,
    /// The token every form and every unsafe request of the session carries.
    pub csrf: String,
    /// The language of the pages: `fr` or `en`.
    pub lang: String,
    /// When they signed in.
    pub created: DateTime<Utc>,
    /// Their last request.
    pub seen: DateTime<Utc>,
}

/// The sessions held.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Session>>>,
}

fn random_hex() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

/// Equal strings, compared in constant time (session ids and CSRF tokens).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// Opens a session for `caller` with `purpose`; `None` if no randomness could be had.
    pub fn open(&self, caller: Caller, purpose: String, lang: String) -> Option<Session> {
        let now = Utc::now();
        let session = Session {
            id: random_hex()?,
            caller,
            purpose,
            csrf: random_hex()?,
            lang,
            created: now,
            seen: now,
        };
        let mut all = self.inner.lock().ok()?;
        all.retain(|_, s| live(s, now));
        if all.len() >= MAX_SESSIONS {
            if let Some(oldest) = all.values().min_by_key(|s| s.seen).map(|s| s.id.clone()) {
                all.remove(&oldest);
            }
        }
        all.insert(session.id.clone(), session.clone());
        Some(session)
    }

    /// The live session of id `id`, its last request set to now.
    pub fn touch(&self, id: &str) -> Option<Session> {
        let now = Utc::now();
        let mut all = self.inner.lock().ok()?;
        // Looked up by the map, then the id compared in constant time (the map's own
        // comparison is not).
        let session = all.get_mut(id).filter(|s| same(&s.id, id))?;
        if !live(session, now) {
            all.remove(id);
            return None;
        }
        session.seen = now;
        Some(session.clone())
    }

    /// Changes the purpose or language of session `id`.
    pub fn update(
        &self,
        id: &str,
        purpose: Option<String>,
        lang: Option<String>,
    ) -> Option<Session> {
        let mut all = self.inner.lock().ok()?;
        let session = all.get_mut(id)?;
        if let Some(p) = purpose {
            session.purpose = p;
        }
        if let Some(l) = lang {
            session.lang = l;
        }
        Some(session.clone())
    }

    /// Ends session `id`.
    pub fn close(&self, id: &str) {
        if let Ok(mut all) = self.inner.lock() {
            all.remove(id);
        }
    }

    /// Ends every session of user `name` (removed, or their role changed).
    pub fn close_user(&self, name: &str) {
        if let Ok(mut all) = self.inner.lock() {
            all.retain(|_, s| s.caller.name != name);
        }
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn live(s: &Session, now: DateTime<Utc>) -> bool {
    now - s.seen < IDLE && now - s.created < LIFETIME
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v.trim())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::users::Role;

    fn ana() -> Caller {
        Caller {
            name: "ana".into(),
            role: Role::Analyst,
        }
    }

    #[test]
    fn sessions_open_touch_expire_and_close() {
        let sessions = Sessions::default();
        let s = sessions.open(ana(), "case 7".into(), "fr".into()).unwrap();
        assert_eq!(s.id.len(), 64);
        assert_ne!(s.id, s.csrf);
        assert_eq!(sessions.touch(&s.id).unwrap().caller, ana());
        assert_eq!(sessions.touch("nope"), None);
        // Idle too long: gone.
        sessions.inner.lock().unwrap().get_mut(&s.id).unwrap().seen = Utc::now() - IDLE;
        assert_eq!(sessions.touch(&s.id), None);
        assert!(sessions.is_empty());
        // Closed by user.
        let s = sessions.open(ana(), "case 7".into(), "en".into()).unwrap();
        sessions.close_user("ana");
        assert_eq!(sessions.touch(&s.id), None);
    }

    #[test]
    fn a_flood_of_sign_ins_keeps_at_most_the_cap() {
        let sessions = Sessions::default();
        let first = sessions.open(ana(), "p".into(), "fr".into()).unwrap();
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.open(ana(), "p".into(), "fr".into()).unwrap();
        }
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert_eq!(
            sessions.touch(&first.id),
            None,
            "the oldest idle one went first"
        );
    }

    #[test]
    fn cookies_are_read_by_name() {
        let h = "a=1; vigie_session=abc ; b=2";
        assert_eq!(cookie(h, COOKIE), Some("abc"));
        assert_eq!(cookie(h, "c"), None);
        assert_eq!(cookie("vigie_session_x=1", COOKIE), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
