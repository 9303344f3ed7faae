//! Users, roles and their bearer tokens.
//!
//! Users live in `<data_dir>/users.json`, managed by `vigie users add|remove|list`. A token is
//! 32 random bytes shown once, when the user is added; the file keeps only its SHA-256, so a copy
//! of the file lets nobody in. The server re-reads the file when it changes: a removed user is
//! refused from the next request on.
//!
//! Roles decide what a caller may do ([`Role::allows`]):
//! - `analyst`: search posts, view them, review alerts;
//! - `experimenter`: eval and replay into its own index only (nothing of the analysts' API);
//! - `auditor`: export the access log and see counts, never post text;
//! - `admin`: users and retention.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// The users file, relative to the data dir.
pub const USERS_FILE: &str = "users.json";

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Searches, views and reviews posts.
    Analyst,
    /// Evaluates and replays into its own index.
    Experimenter,
    /// Exports and verifies the access log; sees counts, not post text.
    Auditor,
    /// Manages users and retention.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::Analyst,
        Role::Experimenter,
        Role::Auditor,
        Role::Admin,
    ];

    /// The role's name, as in the users file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Experimenter => "experimenter",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do `action`.
    pub fn allows(self, action: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Analyst => matches!(
                action,
                Search | ViewPost | Review | Alerts | Incidents | Watches | Console | Open
            ),
            Role::Experimenter => matches!(action, Open),
            Role::Auditor => matches!(action, AuditExport | Console | Open),
            Role::Admin => matches!(action, Open),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = UserError;
    fn from_str(s: &str) -> Result<Self, UserError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UserError::UnknownRole(s.to_string()))
    }
}

/// An action of the API, granted to roles by [`Role::allows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Search posts (their text).
    Search,
    /// View one post and its lineage.
    ViewPost,
    /// Review an alert.
    Review,
    /// List the alerts not yet reviewed.
    Alerts,
    /// Export the access log.
    AuditExport,
    /// List and view incidents, and review them.
    Incidents,
    /// Keep one's own watch zones and receive their alerts.
    Watches,
    /// Use the console (its pages show each role what that role may see).
    Console,
    /// Nothing: the console's sign-in page, which takes a token (still logged, as an
    /// anonymous request until it signs someone in).
    Open,
}

impl Permission {
    /// What the action is, for refusal messages.
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Search => "search posts",
            Permission::ViewPost => "view posts",
            Permission::Review => "review alerts",
            Permission::Alerts => "list alerts",
            Permission::AuditExport => "export the access log",
            Permission::Incidents => "view and review incidents",
            Permission::Watches => "keep watch zones and receive their alerts",
            Permission::Console => "use the console",
            Permission::Open => "sign in",
        }
    }

    /// The roles that may do it.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.allows(self)).collect()
    }
}

/// One user of the users file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Unique name (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// SHA-256 (hex) of the user's token.
    pub token_sha256: String,
    /// When the user was added.
    pub created: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<User>,
}

/// What can go wrong with users.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The users file could not be read or written.
    #[error("users file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The users file is not valid.
    #[error("users file {path} is not valid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No such role.
    #[error("unknown role `{0}`: the roles are analyst, experimenter, auditor and admin")]
    UnknownRole(String),
    /// The name is taken.
    #[error("a user `{0}` already exists (remove it first to issue a new token)")]
    Exists(String),
    /// No such user.
    #[error("no user `{0}`")]
    NotFound(String),
    /// The name has characters other than letters, digits, `.`, `_`, `-`, or is too long.
    #[error("invalid user name `{0}`: use 1 to 64 letters, digits, `.`, `_` or `-`")]
    BadName(String),
    /// No randomness for a token.
    #[error("no randomness for a token: {0}")]
    Random(String),
}

/// SHA-256 (hex) of a token.
pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn read_file(path: &Path) -> Result<UsersFile, UserError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| UserError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UsersFile::default()),
        Err(source) => Err(UserError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_file(path: &Path, file: &UsersFile) -> Result<(), UserError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| UserError::Io {
        path: path.to_path_buf(),
        source,
    };
    // A temporary name of this process and moment: two writers never share one.
    let tmp = path.with_extension(format!(
        "json.{}.{}.tmp",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    let mut bytes = serde_json::to_vec_pretty(file).map_err(|e| UserError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    if let Err(e) = f.write_all(&bytes).and_then(|_| f.sync_all()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    // The rename is durable only once the directory is.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// Runs `change` on the users file at `path` and writes the result, holding an exclusive lock
/// (`<path>.lock`) from the read to the write, so two `vigie users` commands at once never lose
/// each other's change.
fn update<T>(
    path: &Path,
    change: impl FnOnce(&mut UsersFile) -> Result<T, UserError>,
) -> Result<T, UserError> {
    use fs4::fs_std::FileExt;
    let io = |source| UserError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path.with_extension("json.lock"))
        .map_err(io)?;
    lock.lock_exclusive().map_err(io)?;
    let mut file = read_file(path)?;
    let out = change(&mut file)?;
    write_file(path, &file)?;
    Ok(out)
}

/// Adds user `name` with `role` to the users file at `path`; returns the token, which is
/// nowhere else.
pub fn add_user(path: &Path, name: &str, role: Role) -> Result<String, UserError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Err(UserError::BadName(name.to_string()));
    }
    update(path, |file| {
        if file.users.iter().any(|u| u.name == name) {
            return Err(UserError::Exists(name.to_string()));
        }
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(|e| UserError::Random(e.to_string()))?;
        let token = format!("vigie_{}", hex::encode(secret));
        file.users.push(User {
            name: name.to_string(),
            role,
            token_sha256: token_sha256(&token),
            created: chrono::Utc::now(),
        });
        Ok(token)
    })
}

/// Removes user `name`; their token stops working.
pub fn remove_user(path: &Path, name: &str) -> Result<User, UserError> {
    update(path, |file| {
        let at = file
            .users
            .iter()
            .position(|u| u.name == name)
            .ok_or_else(|| UserError::NotFound(name.to_string()))?;
        Ok(file.users.remove(at))
    })
}

/// The users of the file at `path` (none when it does not exist).
pub fn list_users(path: &Path) -> Result<Vec<User>, UserError> {
    Ok(read_file(path)?.users)
}

/// A caller identified by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User name.
    pub name: String,
    /// Role.
    pub role: Role,
}

/// The users file as the server sees it: re-read when it changes on disk.
#[derive(Clone)]
pub struct UserStore {
    path: PathBuf,
    cache: Arc<RwLock<Cache>>,
}

#[derive(Default)]
struct Cache {
    stamp: Option<(SystemTime, u64, u64)>,
    by_token: HashMap<String, Caller>,
}

impl UserStore {
    /// The users of the file at `path` (which may not exist yet: then nobody gets in).
    pub fn open(path: &Path) -> Result<Self, UserError> {
        let store = UserStore {
            path: path.to_path_buf(),
            cache: Arc::default(),
        };
        store.reload_if_changed()?;
        Ok(store)
    }

    /// What tells a changed file: modification time, length and inode (a rewrite renames a
    /// new file into place).
    fn stamp(&self) -> Option<(SystemTime, u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&self.path).ok()?;
        Some((meta.modified().ok()?, meta.len(), meta.ino()))
    }

    fn reload_if_changed(&self) -> Result<(), UserError> {
        let stamp = self.stamp();
        if self.cache.read().map(|c| c.stamp == stamp).unwrap_or(false) && stamp.is_some() {
            return Ok(());
        }
        let by_token = read_file(&self.path)?
            .users
            .into_iter()
            .map(|u| {
                (
                    u.token_sha256,
                    Caller {
                        name: u.name,
                        role: u.role,
                    },
                )
            })
            .collect();
        if let Ok(mut cache) = self.cache.write() {
            *cache = Cache { stamp, by_token };
        }
        Ok(())
    }

    /// The user named `name`, if there is one now (the file is read again if it changed).
    pub fn by_name(&self, name: &str) -> Option<Caller> {
        if let Err(e) = self.reload_if_changed() {
            tracing::error!("{e}");
            return None;
        }
        self.cache
            .read()
            .ok()?
            .by_token
            .values()
            .find(|c| c.name == name)
            .cloned()
    }

    /// The user whose token is `token`, if any. A users file that became unreadable refuses
    /// everyone (and says why in the server log).
    pub fn authenticate(&self, token: &str) -> Option<Caller> {
        if let Err(e) = self.reload_if_changed() {
            tracing::error!("{e}; refusing every token until it is fixed");
            if let Ok(mut cache) = self.cache.write() {
                *cache = Cache::default();
            }
            return None;
        }
        let hash = token_sha256(token);
        self.cache.read().ok()?.by_token.get(&hash).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn tokens_are_shown_once_stored_hashed_and_revoked_on_removal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(USERS_FILE);
        let store = UserStore::open(&path).unwrap();
        assert_eq!(store.authenticate("anything"), None);

        let token = add_user(&path, "ana", Role::Analyst).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token), "the token itself is not stored");
        assert!(text.contains(&token_sha256(&token)));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            store.authenticate(&token),
            Some(Caller {
                name: "ana".into(),
                role: Role::Analyst
            })
        );
        assert_eq!(store.authenticate(&format!("{token}x")), None);
        assert!(matches!(
            add_user(&path, "ana", Role::Admin),
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            add_user(&path, "a b", Role::Admin),
            Err(UserError::BadName(_))
        ));
        let audit = add_user(&path, "oversight", Role::Auditor).unwrap();
        assert_ne!(audit, token);
        let names: Vec<_> = list_users(&path)
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["ana", "oversight"]);

        remove_user(&path, "ana").unwrap();
        assert_eq!(
            store.authenticate(&token),
            None,
            "removal takes effect at once"
        );
        assert_eq!(store.authenticate(&audit).unwrap().role, Role::Auditor);
        assert!(matches!(
            remove_user(&path, "ana"),
            Err(UserError::NotFound(_))
        ));
    }

    #[test]
    fn roles_parse_and_grant_only_their_actions() {
        assert_eq!("auditor".parse::<Role>().unwrap(), Role::Auditor);
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Analyst.allows(Permission::Search));
        assert!(!Role::Analyst.allows(Permission::AuditExport));
        assert!(Role::Auditor.allows(Permission::AuditExport));
        assert!(
            !Role::Auditor.allows(Permission::Search),
            "auditors see no post text"
        );
        assert!(!Role::Experimenter.allows(Permission::Search));
        assert!(!Role::Admin.allows(Permission::Search));
    }

    #[test]
    fn users_added_at_the_same_time_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(USERS_FILE);
        let threads: Vec<_> = (0..12)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for n in 0..4 {
                        add_user(&path, &format!("u{t}-{n}"), Role::Analyst).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(list_users(&path).unwrap().len(), 48);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
