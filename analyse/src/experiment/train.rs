//! `vigie train`: one calibrated head per label, `heads.json`, and the model card that says
//! what the heads were trained on and how well they did on held-out posts.

use super::{create_dir, encoder_info, load_datasets, metrics_table, write_file};
use super::{ExperimentError, Settings};
use crate::centring;
use crate::dataset::{Dataset, LabelledPost};
use crate::training::{self, Trained};
use crate::{EncoderInfo, ModelCard, Taxonomy, TrainingFile};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How many times each taxonomy example counts in training: a few hand-written posts per
/// category, in English and French, against thousands of English tweets.
pub const TAXONOMY_WEIGHT: usize = 10;

/// What [`run`] wrote: the card of the new model and where it is.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The model card written as `model-card.json`.
    pub card: ModelCard,
    /// How many heads were trained (labels without enough positives have none).
    pub heads: usize,
    /// The folder of `heads.json` and `model-card.json`.
    pub out: PathBuf,
}

impl TrainOutcome {
    /// What `vigie train` prints: a line naming the model, then the held-out metrics table.
    pub fn summary(&self) -> String {
        format!(
            "trained {} heads: model {} in {}\n{}",
            self.heads,
            self.card.id,
            self.out.display(),
            metrics_table(&self.card.metrics, &[])
        )
    }
}

/// Trains on the labelled files `data`, the files `weak` for their categories only (their
/// `danger` is ignored: a weaker notion than Vigie's, such as CrisisLexT6's "on-topic") and the
/// examples of the taxonomy at `taxonomy_path`, and writes `heads.json` and `model-card.json`
/// into `out`; with `center`, on embeddings centred per language ([`crate::centring`]).
pub fn run(
    settings: &Settings,
    data: &[PathBuf],
    weak: &[PathBuf],
    taxonomy_path: &Path,
    out: &Path,
    center: bool,
) -> Result<TrainOutcome, ExperimentError> {
    let taxonomy = Taxonomy::load(taxonomy_path)?;
    let mut datasets = load_datasets(data)?;
    let first_weak = datasets.len();
    for mut d in load_datasets(weak)? {
        for p in &mut d.posts {
            p.labels.remove(Taxonomy::DANGER);
        }
        datasets.push(d);
    }
    let examples = taxonomy_examples(&taxonomy);
    let posts: Vec<&LabelledPost> = datasets
        .iter()
        .flat_map(|d| &d.posts)
        .chain(&examples)
        .collect();
    let encoder = settings.encoder.load()?;
    let mut embeddings = settings.embed_datasets(&encoder, &datasets)?;
    let example_texts: Vec<&str> = examples.iter().map(|p| p.text.as_str()).collect();
    embeddings.extend(settings.embed(&encoder, &example_texts, "embedding")?);
    let info = encoder_info(&encoder);
    let languages: Option<Vec<String>> =
        center.then(|| posts.iter().map(|p| centring::language(&p.text)).collect());
    let started = Instant::now();
    let trained = training::train(
        &posts,
        &embeddings,
        &taxonomy.labels(),
        info.clone(),
        settings.alert_threshold,
        languages.as_deref(),
    );
    tracing::info!(seconds = started.elapsed().as_secs_f32(), "heads trained");
    create_dir(out)?;
    let heads_json = serde_json::to_vec_pretty(&trained.heads)?;
    write_file(&out.join("heads.json"), &heads_json)?;
    let taxonomy_bytes =
        std::fs::read(taxonomy_path).map_err(ExperimentError::io("read", taxonomy_path))?;
    let sources = Sources {
        datasets: &datasets,
        first_weak,
        taxonomy: file_entry(
            taxonomy_path,
            &crate::sha256_hex(&taxonomy_bytes),
            examples.len() / TAXONOMY_WEIGHT,
        ),
        max_pieces: encoder.max_seq_length(),
    };
    let trained_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let card = model_card(
        info,
        &trained,
        &crate::sha256_hex(&heads_json),
        &sources,
        trained_at,
    );
    write_file(
        &out.join("model-card.json"),
        serde_json::to_vec_pretty(&card)?,
    )?;
    Ok(TrainOutcome {
        card,
        heads: trained.heads.labels.len(),
        out: out.to_path_buf(),
    })
}

/// What a model was trained on: the labelled files and the taxonomy (whose `posts` counts
/// its example posts once each).
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    /// The labelled files: those of `--data`, then those of `--weak`.
    pub datasets: &'a [Dataset],
    /// The index in `datasets` of the first `--weak` file (whose `danger` was ignored).
    pub first_weak: usize,
    /// The taxonomy file.
    pub taxonomy: TrainingFile,
    /// Pieces the encoder reads of a post.
    pub max_pieces: usize,
}

/// The model card of `trained`, whose `heads.json` hashes to `heads_sha256`: its id, the
/// encoder, the files with their hashes, how labels and splits were made, and the held-out
/// metrics.
pub fn model_card(
    encoder: EncoderInfo,
    trained: &Trained,
    heads_sha256: &str,
    sources: &Sources<'_>,
    trained_at: String,
) -> ModelCard {
    let mut notes = vec![
        "Labelled files: `danger` and categories as given; a label absent from a post is \
         unknown and the post does not count for it. Files marked with ignored_labels were \
         trained without that label (`vigie train --weak`)."
            .to_string(),
        "CrisisLexT26 files (fixtures/crisislex-t26, 13 crises, made by \
         scripts/crisislex_labelled.py): danger = related and informative with an information \
         type that reports the situation (affected individuals, infrastructure and utilities, \
         caution and advice, other useful information), as the dataset's README advises; the \
         event type gives the categories."
            .to_string(),
        "CrisisLexT6 files (fixtures/crisislex, 6 crises): their danger (= on-topic, which also \
         counts sympathy and donations) is ignored, as measured: with it, leave-one-crisis-out \
         average precision on the CrisisLexT26 crises fell from 0.887 to 0.838 \
         (docs/classifier.md); their category labels (floods, hurricane, tornado -> \
         natural_hazard; bombings, explosion -> explosion; off-topic 0) are kept."
            .to_string(),
        "fixtures/handwritten: 400 posts written for Vigie in English and French (armed \
         violence, accidents, crowd unrest, threats, urban fires, explosions, other hazards, and \
         hard negatives)."
            .to_string(),
        format!(
            "The taxonomy's {} example posts (English and French) count {TAXONOMY_WEIGHT} times \
             each: category examples are positives for `danger` and their category, negative \
             examples are 0 for every label.",
            sources.taxonomy.posts
        ),
        "Split by a hash of the post id: 70% fit (classes balanced), 15% Platt calibration, \
         15% held out for the metrics below."
            .to_string(),
    ];
    notes.extend(trained.notes.iter().cloned());
    ModelCard {
        id: ModelCard::id_for(heads_sha256),
        encoder,
        heads_version: trained.heads.version,
        heads_sha256: heads_sha256.to_string(),
        trained_at,
        training_files: sources
            .datasets
            .iter()
            .enumerate()
            .map(|(i, d)| TrainingFile {
                ignored_labels: if i >= sources.first_weak {
                    vec![Taxonomy::DANGER.to_string()]
                } else {
                    Vec::new()
                },
                ..file_entry(&d.path, &d.sha256, d.posts.len())
            })
            .collect(),
        taxonomy: sources.taxonomy.clone(),
        notes,
        truncation: format!(
            "The encoder reads the first {} pieces of a post (its prompt included); the rest \
             does not count. Explanations look at the first 64 words.",
            sources.max_pieces
        ),
        metrics: trained.metrics.clone(),
        reliability: trained.reliability.clone(),
    }
}

fn file_entry(path: &Path, sha256: &str, posts: usize) -> TrainingFile {
    TrainingFile {
        path: path.display().to_string(),
        sha256: sha256.to_string(),
        posts,
        ignored_labels: Vec::new(),
    }
}

/// The taxonomy's examples as labelled posts, each repeated [`TAXONOMY_WEIGHT`] times under
/// one id (so all copies fall in the same split): category examples are positive for `danger`
/// and their category; negatives are 0 for every label.
pub fn taxonomy_examples(taxonomy: &Taxonomy) -> Vec<LabelledPost> {
    let positives = taxonomy.categories.iter().flat_map(|c| {
        c.examples().enumerate().map(move |(i, text)| LabelledPost {
            id: format!("taxonomy:{}:{i}", c.name),
            text: text.to_string(),
            labels: [(Taxonomy::DANGER.to_string(), 1), (c.name.clone(), 1)].into(),
            crisis: None,
            event: None,
        })
    });
    let labels = taxonomy.labels();
    let negatives = taxonomy
        .negatives
        .examples()
        .enumerate()
        .map(|(i, text)| LabelledPost {
            id: format!("taxonomy:negative:{i}"),
            text: text.to_string(),
            labels: labels.iter().map(|l| (l.clone(), 0)).collect(),
            crisis: None,
            event: None,
        });
    positives
        .chain(negatives)
        .flat_map(|p| std::iter::repeat_n(p, TAXONOMY_WEIGHT))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::tests::metrics;
    use crate::{Category, Heads, Negatives};
    use std::collections::BTreeMap;

    fn taxonomy() -> Taxonomy {
        Taxonomy {
            categories: vec![Category {
                name: "fire".into(),
                description: "Fire.".into(),
                examples_en: vec!["the house is on fire".into()],
                examples_fr: vec!["la maison brûle".into()],
            }],
            negatives: Negatives {
                examples_en: vec!["a quiet day".into()],
                examples_fr: vec![],
            },
        }
    }

    #[test]
    fn taxonomy_examples_count_ten_times_under_one_id() {
        let posts = taxonomy_examples(&taxonomy());
        assert_eq!(posts.len(), 3 * TAXONOMY_WEIGHT);
        let fr = posts.iter().filter(|p| p.id == "taxonomy:fire:1").count();
        assert_eq!(fr, TAXONOMY_WEIGHT);
        let fire = &posts[0];
        assert_eq!(fire.text, "the house is on fire");
        assert_eq!(
            fire.labels,
            BTreeMap::from([("danger".into(), 1), ("fire".into(), 1)])
        );
        let calm = posts.last().unwrap();
        assert_eq!(calm.id, "taxonomy:negative:0");
        assert_eq!(
            calm.labels,
            BTreeMap::from([("danger".into(), 0), ("fire".into(), 0)])
        );
    }

    #[test]
    fn the_model_card_records_the_heads_hash_the_files_and_the_held_out_metrics() {
        let info = EncoderInfo {
            name: "sentence-transformers/all-MiniLM-L6-v2".into(),
            weights_sha256: "ab".repeat(32),
        };
        let trained = Trained {
            heads: Heads {
                version: Heads::VERSION,
                encoder: info.clone(),
                labels: BTreeMap::new(),
                cascade: None,
                centring: None,
            },
            metrics: BTreeMap::from([("danger".to_string(), metrics(40, 0.8))]),
            reliability: Vec::new(),
            notes: vec!["`fire`: not trained".into()],
        };
        let dataset = |path: &str| Dataset {
            path: PathBuf::from(path),
            sha256: "cd".repeat(32),
            posts: Vec::new(),
        };
        let datasets = [dataset("fixtures/a.jsonl"), dataset("fixtures/weak.jsonl")];
        let sources = Sources {
            datasets: &datasets,
            first_weak: 1,
            taxonomy: file_entry(Path::new("config/taxonomy.toml"), "ef", 3),
            max_pieces: 512,
        };
        let heads_sha = "0123456789abcdef".repeat(4);
        let card = model_card(info.clone(), &trained, &heads_sha, &sources, "now".into());
        assert_eq!(card.id, "heads-0123456789ab");
        assert_eq!(card.heads_sha256, heads_sha);
        assert_eq!(card.encoder, info);
        assert_eq!(card.heads_version, Heads::VERSION);
        assert_eq!(card.trained_at, "now");
        let sha = "cd".repeat(32);
        assert_eq!(
            card.training_files,
            [
                file_entry(Path::new("fixtures/a.jsonl"), &sha, 0),
                TrainingFile {
                    ignored_labels: vec!["danger".into()],
                    ..file_entry(Path::new("fixtures/weak.jsonl"), &sha, 0)
                }
            ]
        );
        assert_eq!(card.taxonomy.posts, 3);
        assert!(card.notes[4].starts_with("The taxonomy's 3 example posts"));
        assert!(card
            .truncation
            .starts_with("The encoder reads the first 512 pieces"));
        assert_eq!(card.notes.last().unwrap(), "`fire`: not trained");
        assert_eq!(card.metrics, trained.metrics);

        let outcome = TrainOutcome {
            card,
            heads: 1,
            out: PathBuf::from("models/x"),
        };
        let summary = outcome.summary();
        assert!(summary.starts_with("trained 1 heads: model heads-0123456789ab in models/x\n"));
        assert!(summary.lines().nth(2).unwrap().starts_with("danger "));
    }
}
