//! The pseudonym key: 32 random bytes, kept hex-encoded in `<data_dir>/keys/pseudonym.key`.
//!
//! Whoever has the key can recompute every pseudonym of a handle they guess, so the key is
//! treated like the identity file next to it:
//! - **Exactly 32 bytes.** A key file that is empty, short, long or not hex is refused with
//!   an error that says which; a truncated key would silently give every author new pseudonyms.
//! - **Private.** The `keys/` directory is made mode 0700 (narrowed to it when it is wider)
//!   and the key file 0600; an existing key file that its group or others may read or write is
//!   refused, with the `chmod` that fixes it.
//! - **Created atomically.** A new key is written to a temporary file (mode 0600 from its
//!   creation), fsynced, then linked into place, which fails if another process made the key
//!   first (then that key is used: two processes never end up with two keys), and the
//!   directory is fsynced. A crash leaves either no key or the whole key, never a torn one.
//!
//! [`load_or_create_key`] does all of this; `vigie` calls it with
//! `<data_dir>/keys/pseudonym.key` and hands the key to [`Pseudonymiser::new`].
//!
//! [`Pseudonymiser::new`]: crate::Pseudonymiser::new

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The length of a pseudonym key, in bytes.
pub const KEY_LEN: usize = 32;

/// The name of the key file in the `keys/` directory.
pub const KEY_FILE: &str = "pseudonym.key";

/// Why the pseudonym key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file or its directory could not be read or written.
    #[error("pseudonym key {path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The key file exists but does not hold a key of the right length.
    #[error(
        "pseudonym key {path}: {found}, not {KEY_LEN} bytes ({} hex digits); restore the key \
         from a backup (a new key gives every author new pseudonyms)",
        KEY_LEN * 2
    )]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What it holds instead: `empty`, `20 bytes`, `not hex: ...`.
        found: String,
    },
    /// The key file may be read or written by its group or others.
    #[error(
        "pseudonym key {path}: mode {mode:04o} lets its group or others reach it; \
         `chmod 600 {path}` (and check who read it)"
    )]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |error| KeyError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The key in `path`, or, when there is none yet, a new random key written there (see the
/// module documentation for the checks and the atomic creation). The directory of `path` is
/// made (or narrowed to) mode 0700.
pub fn load_or_create_key(path: &Path) -> Result<[u8; KEY_LEN], KeyError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    private_dir(dir)?;
    match load_key(path) {
        Err(KeyError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut key = [0u8; KEY_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut r| r.read_exact(&mut key))
        .map_err(io(Path::new("/dev/urandom")))?;
    // Unique to this call (process and counter): concurrent creators never share a file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{KEY_FILE}.{}.{n}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(hex::encode(key).as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(error));
    }
    // Link, not rename: it fails when the key exists, so a key another process made meanwhile
    // is never replaced (its pseudonyms may already be out).
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load_key(path),
        Err(error) => return Err(io(path)(error)),
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(key)
}

/// The key in `path`: refused when the file is reachable by its group or others, or does not
/// hold exactly [`KEY_LEN`] hex-encoded bytes.
pub fn load_key(path: &Path) -> Result<[u8; KEY_LEN], KeyError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mode = file.metadata().map_err(io(path))?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    // A key file is 65 bytes; read a little more than that, never a whole large file.
    let mut text = String::new();
    (&mut file)
        .take(1024)
        .read_to_string(&mut text)
        .map_err(|e| KeyError::Malformed {
            path: path.to_path_buf(),
            found: format!("not text: {e}"),
        })?;
    let malformed = |found: String| KeyError::Malformed {
        path: path.to_path_buf(),
        found,
    };
    let hex_key = text.trim();
    if hex_key.is_empty() {
        return Err(malformed("empty".into()));
    }
    let bytes = hex::decode(hex_key).map_err(|e| malformed(format!("not hex: {e}")))?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice())
        .map_err(|_| malformed(format!("{} bytes", bytes.len())))
}

/// Makes `dir` (and its parents) if missing, and narrows it to mode 0700 (the keys directory
/// of the data dir: the pseudonym key and the identity file).
pub fn private_dir(dir: &Path) -> Result<(), KeyError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let mode = std::fs::metadata(dir)
        .map_err(io(dir))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_key_is_32_random_bytes_private_and_stable() {
        let data = tempfile::tempdir().unwrap();
        let path = data.path().join("keys").join(KEY_FILE);
        let key = load_or_create_key(&path).unwrap();
        assert_eq!(load_or_create_key(&path).unwrap(), key, "made once");
        assert_ne!(key, [0u8; KEY_LEN]);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            load_or_create_key(&other.path().join(KEY_FILE)).unwrap(),
            key,
            "random"
        );
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim().len(),
            KEY_LEN * 2
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(KEY_FILE)]);
    }

    #[test]
    fn an_empty_or_short_key_file_is_refused_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        for (content, says) in [
            ("", "empty"),
            ("\n", "empty"),
            ("00112233", "4 bytes"),
            (&"ab".repeat(33), "33 bytes"),
            ("not a key at all", "not hex"),
        ] {
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let e = load_or_create_key(&path).unwrap_err();
            assert!(matches!(e, KeyError::Malformed { .. }), "{content:?}: {e}");
            let e = e.to_string();
            assert!(e.contains(says) && e.contains("32 bytes"), "{e}");
            // The bad file is left for the operator, not replaced by a new key.
            assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        }
    }

    #[test]
    fn a_key_file_readable_by_group_or_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join(KEY_FILE);
        load_or_create_key(&path).unwrap();
        for bad in [0o640, 0o604, 0o660, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).unwrap();
            let e = load_or_create_key(&path).unwrap_err();
            assert!(
                matches!(e, KeyError::Exposed { mode, .. } if mode == bad),
                "{e}"
            );
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        load_or_create_key(&path).unwrap();
    }

    #[test]
    fn a_wide_keys_directory_is_narrowed_to_0700() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
        load_or_create_key(&keys.join(KEY_FILE)).unwrap();
        assert_eq!(mode(&keys), 0o700);
    }

    #[test]
    fn two_processes_creating_the_key_at_once_end_up_with_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join(KEY_FILE);
        let keys: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_key(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]), "one key for all");
        assert_eq!(load_key(&path).unwrap(), keys[0]);
    }
}
