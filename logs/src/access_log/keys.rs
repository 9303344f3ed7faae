//! The access log's signing key, made once by `vigie keys init`.
//!
//! The secret key (an ed25519 seed, hex) lives in `<data_dir>/keys/access-log.key`, readable by
//! its owner only; the public key (hex) in `<data_dir>/access-log.pub`, to hand to whoever
//! verifies exports. A key is never overwritten: replacing it would orphan every checkpoint
//! signed with it.

use super::LogError;
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};
use vigie_ingest::key::KeyError;

/// The secret key, relative to the data dir.
pub const SIGNING_KEY_FILE: &str = "keys/access-log.key";
/// The public key, relative to the data dir.
pub const PUBLIC_KEY_FILE: &str = "access-log.pub";

fn key_error(path: &Path, reason: impl Into<String>) -> LogError {
    LogError::Key {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Makes a new key pair in `data_dir`; refuses if a signing key is already there.
pub fn init_keys(data_dir: &Path) -> Result<VerifyingKey, LogError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let secret_path = data_dir.join(SIGNING_KEY_FILE);
    if secret_path.exists() {
        return Err(key_error(
            &secret_path,
            "a signing key is already there; it is never replaced (its checkpoints would no \
             longer verify)",
        ));
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| key_error(&secret_path, e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    let dir = secret_path.parent().unwrap_or(data_dir);
    private_dir(dir).map_err(|e| key_error(dir, e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret_path)
        .map_err(|e| key_error(&secret_path, e.to_string()))?;
    f.write_all(format!("{}\n", hex::encode(seed)).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| key_error(&secret_path, e.to_string()))?;
    let public = key.verifying_key();
    let public_path = data_dir.join(PUBLIC_KEY_FILE);
    write_public(&public_path, &public)?;
    Ok(public)
}

/// Makes `dir` (and its parents) and narrows it to its owner (0700), through
/// `vigie_ingest::key::private_dir`; its error is the I/O error it wraps.
pub(super) fn private_dir(dir: &Path) -> std::io::Result<()> {
    vigie_ingest::key::private_dir(dir).map_err(|e| match e {
        KeyError::Io { error, .. } => error,
        other => std::io::Error::other(other.to_string()),
    })
}

fn write_public(path: &Path, key: &VerifyingKey) -> Result<(), LogError> {
    let tmp = path.with_extension("pub.tmp");
    std::fs::write(&tmp, format!("{}\n", hex::encode(key.as_bytes())))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| key_error(path, e.to_string()))
}

/// Reads the signing key of `data_dir` (and rewrites `access-log.pub` if it went missing). A key
/// file that its group or others may read or write is refused: whoever reads it can sign a
/// rewritten log.
pub fn load_signing_key(data_dir: &Path) -> Result<SigningKey, LogError> {
    use std::os::unix::fs::PermissionsExt;
    let path = data_dir.join(SIGNING_KEY_FILE);
    if let Ok(meta) = std::fs::metadata(&path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(key_error(
                &path,
                format!(
                    "its mode is {mode:o}: others than its owner may read it; `chmod 600` it \
                     (and consider the log's checkpoints since then suspect)"
                ),
            ));
        }
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            key_error(&path, "no signing key: run `vigie keys init` first")
        } else {
            key_error(&path, e.to_string())
        }
    })?;
    let seed = decode32(text.trim()).ok_or_else(|| key_error(&path, "not 64 hex digits"))?;
    let key = SigningKey::from_bytes(&seed);
    let public_path = data_dir.join(PUBLIC_KEY_FILE);
    if !public_path.exists() {
        write_public(&public_path, &key.verifying_key())?;
    }
    Ok(key)
}

/// Reads a public key file (64 hex digits).
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, LogError> {
    let text = std::fs::read_to_string(path).map_err(|e| key_error(path, e.to_string()))?;
    let bytes = decode32(text.trim()).ok_or_else(|| key_error(path, "not 64 hex digits"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| key_error(path, e.to_string()))
}

fn decode32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Where the keys of `data_dir` are: (secret, public).
pub fn key_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    (
        data_dir.join(SIGNING_KEY_FILE),
        data_dir.join(PUBLIC_KEY_FILE),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_writes_a_private_key_and_its_public_half_once() {
        let dir = tempfile::tempdir().unwrap();
        let public = init_keys(dir.path()).unwrap();
        let (secret, public_path) = key_paths(dir.path());
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(read_public_key(&public_path).unwrap(), public);
        assert_eq!(
            load_signing_key(dir.path()).unwrap().verifying_key(),
            public
        );
        let again = init_keys(dir.path()).unwrap_err();
        assert!(again.to_string().contains("never replaced"), "{again}");
        assert_eq!(
            load_signing_key(dir.path()).unwrap().verifying_key(),
            public
        );
    }

    #[test]
    fn a_signing_key_readable_by_others_is_refused_and_keys_is_private() {
        let dir = tempfile::tempdir().unwrap();
        init_keys(dir.path()).unwrap();
        let (secret, _) = key_paths(dir.path());
        let keys = secret.parent().unwrap();
        let mode = std::fs::metadata(keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        for wide in [0o644, 0o640, 0o606] {
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(wide)).unwrap();
            let e = load_signing_key(dir.path()).unwrap_err();
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_signing_key(dir.path()).is_ok());
    }
}
