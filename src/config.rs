//! Vigie's configuration: documented defaults, then a TOML file, then `VIGIE_*` environment
//! variables, then command-line flags, each overriding the one before.
//!
//! The file is `--config FILE`, else `vigie.toml` in the working directory if it exists (the
//! set-up writes it with the model directory it installed). Every key below can be set in the
//! environment as `VIGIE_<KEY>` in upper case, e.g. `VIGIE_LISTEN=127.0.0.1:9000`.

use anyhow::{Context, Result};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file read when no `--config` is given.
pub const DEFAULT_FILE: &str = "vigie.toml";

/// The keys that `VIGIE_<KEY>` variables may set (other `VIGIE_` variables belong to the
/// set-up scripts and are left alone).
const KEYS: &[&str] = &[
    "data_dir",
    "index_dir",
    "model_dir",
    "taxonomy",
    "listen",
    "alert_threshold",
    "batch_size",
    "threads",
    "heads",
    "pseudonym_key",
    "access_log_checkpoint_every",
    "retention_days",
];

/// Every setting, with its default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Holds indexes, users, keys, cursors and the access log.
    pub data_dir: PathBuf,
    /// The index directory; default `<data_dir>/index`.
    pub index_dir: Option<PathBuf>,
    /// The sentence-transformers model directory (all-MiniLM-L6-v2, with `model.safetensors`).
    pub model_dir: Option<PathBuf>,
    /// The taxonomy of labels (TOML).
    pub taxonomy: PathBuf,
    /// Address the API listens on.
    pub listen: String,
    /// `danger` score from which a post is an alert and is explained.
    pub alert_threshold: f32,
    /// Posts per call to the model.
    pub batch_size: usize,
    /// CPU threads for the model; 0 leaves libtorch's default (one per core).
    pub threads: usize,
    /// Directory of the trained classifier (`heads.json`, `model-card.json`). When it has no
    /// `heads.json`, Vigie falls back to the untrained prototype scorer and says so.
    pub heads: PathBuf,
    /// Key of the author pseudonyms (HMAC); default: a random key kept in
    /// `<data_dir>/keys/pseudonym.key`, made on first use. Never logged.
    pub pseudonym_key: Option<String>,
    /// The access log signs a checkpoint after this many entries (and at every start and
    /// shutdown).
    pub access_log_checkpoint_every: u64,
    /// Posts created more than this many days ago leave the index (`vigie retention enforce`,
    /// and hourly in `vigie serve`); 0 keeps them forever.
    pub retention_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            index_dir: None,
            model_dir: None,
            taxonomy: PathBuf::from("config/taxonomy.toml"),
            listen: "127.0.0.1:8080".into(),
            alert_threshold: 0.5,
            batch_size: 32,
            threads: 0,
            heads: PathBuf::from("models/danger"),
            pseudonym_key: None,
            access_log_checkpoint_every: 1000,
            retention_days: 30,
        }
    }
}

impl Config {
    /// Loads defaults < file < environment < `overrides` (the flags that were given).
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                anyhow::ensure!(f.is_file(), "config file {} not found", f.display());
                figment = figment.merge(Toml::file(f));
            }
            None => figment = figment.merge(Toml::file(DEFAULT_FILE)),
        }
        figment
            .merge(Env::prefixed("VIGIE_").only(KEYS))
            .merge(Serialized::defaults(overrides))
            .extract()
            .context("invalid configuration")
    }

    /// The index directory.
    pub fn index_dir(&self) -> PathBuf {
        self.index_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("index"))
    }

    /// The model directory, or an error that says how to get one.
    pub fn model_dir(&self) -> Result<&Path> {
        self.model_dir.as_deref().context(
            "no model directory configured: run `make setup` (it installs the model and writes \
             vigie.toml), or set model_dir / VIGIE_MODEL_DIR / --model-dir",
        )
    }

    /// The pseudonym key: configured, or read from (or first written to) the data dir.
    pub fn pseudonym_key(&self) -> Result<Vec<u8>> {
        if let Some(k) = &self.pseudonym_key {
            return Ok(k.as_bytes().to_vec());
        }
        let path = self.data_dir.join("keys").join("pseudonym.key");
        if let Ok(hex_key) = std::fs::read_to_string(&path) {
            return hex::decode(hex_key.trim())
                .with_context(|| format!("{} is not a hex key", path.display()));
        }
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).context("no randomness for a pseudonym key")?;
        std::fs::create_dir_all(path.parent().expect("keys dir"))
            .with_context(|| format!("cannot create {}", path.display()))?;
        write_private(&path, hex::encode(key).as_bytes())?;
        Ok(key.to_vec())
    }

    /// The configuration as TOML, secrets hidden.
    pub fn to_toml_redacted(&self) -> Result<String> {
        let mut shown = self.clone();
        if shown.pseudonym_key.is_some() {
            shown.pseudonym_key = Some("<hidden>".into());
        }
        Ok(toml::to_string_pretty(&shown)?)
    }
}

/// Writes `bytes` to a new file `path`, readable by its owner only.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Settings given as flags; `None` leaves the value from the file or environment.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

#[cfg(test)]
// figment::Jail's closures return figment's (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "listen = \"127.0.0.1:1\"\nbatch_size = 8\nalert_threshold = 0.7\n",
            )?;
            jail.set_env("VIGIE_BATCH_SIZE", "16");
            jail.set_env("VIGIE_LISTEN", "127.0.0.1:2");
            let flags = Overrides {
                listen: Some("127.0.0.1:3".into()),
                ..Default::default()
            };
            let c = Config::load(Some(Path::new("custom.toml")), &flags).unwrap();
            assert_eq!(c.alert_threshold, 0.7);
            assert_eq!(c.batch_size, 16);
            assert_eq!(c.listen, "127.0.0.1:3");
            assert_eq!(c.index_dir(), PathBuf::from("data/index"));
            Ok(())
        });
    }

    #[test]
    fn the_example_file_documents_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/vigie.example.toml");
        let example: Config = Figment::from(Toml::file(path)).extract().unwrap();
        assert_eq!(
            toml::to_string(&example).unwrap(),
            toml::to_string(&Config::default()).unwrap()
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "listn = \"x\"\n")?;
            let e = Config::load(Some(Path::new("bad.toml")), &Overrides::default()).unwrap_err();
            assert!(format!("{e:#}").contains("listn"), "{e:#}");
            Ok(())
        });
    }
}
