//! The experimenters' commands: `vigie train`, `vigie eval`, `vigie bench classify` and
//! `vigie experiment loco`.

use crate::config::Config;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use vigie_analyse::baseline::{Lexicon, TfIdf};
use vigie_analyse::dataset::{Dataset, LabelledPost};
use vigie_analyse::metrics::{self, LabelMetrics};
use vigie_analyse::{
    cache, training, Classifier, Encoder, EncoderInfo, ModelCard, ModelFiles, Taxonomy,
    TrainingFile, ENCODER_NAME,
};

/// A progress bar for `len` posts.
pub fn progress(len: usize, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} posts, {per_sec}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// Loads the encoder with the configured batch size and threads.
pub fn encoder(config: &Config) -> Result<Encoder> {
    if config.threads > 0 {
        vigie_analyse::set_threads(config.threads);
    }
    let mut encoder = Encoder::load(&ModelFiles::in_dir(config.model_dir()?)?)?;
    encoder.set_batch_size(config.batch_size);
    Ok(encoder)
}

/// Embeds `texts` through the cache in `<data_dir>/cache`, with a progress bar.
fn embed(
    config: &Config,
    encoder: &Encoder,
    texts: &[&str],
    what: &'static str,
) -> Result<Vec<Vec<f32>>> {
    let bar = progress(texts.len(), what);
    let dir = config.data_dir.join("cache");
    let v = cache::embed(encoder, texts, Some(&dir), |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    Ok(v)
}

/// Embeds each dataset on its own (so each file has its own cache entry, shared by train,
/// eval and the experiments), in order.
fn embed_datasets(
    config: &Config,
    encoder: &Encoder,
    datasets: &[Dataset],
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::new();
    for d in datasets {
        out.extend(embed(config, encoder, &d.texts(), "embedding")?);
    }
    Ok(out)
}

fn file_entry(path: &Path, sha256: &str, posts: usize) -> TrainingFile {
    TrainingFile {
        path: path.display().to_string(),
        sha256: sha256.to_string(),
        posts,
    }
}

/// `vigie train`: fits and calibrates one head per label, writes `heads.json` and
/// `model-card.json` into `out`.
pub fn train(config: &Config, data: &[PathBuf], taxonomy_path: &Path, out: &Path) -> Result<()> {
    let taxonomy = Taxonomy::load(taxonomy_path)?;
    let datasets: Vec<Dataset> = data
        .iter()
        .map(|p| Dataset::load(p))
        .collect::<Result<_, _>>()?;
    let examples = taxonomy_examples(&taxonomy);
    let posts: Vec<&LabelledPost> = datasets
        .iter()
        .flat_map(|d| &d.posts)
        .chain(&examples)
        .collect();
    let encoder = encoder(config)?;
    let mut embeddings = embed_datasets(config, &encoder, &datasets)?;
    let example_texts: Vec<&str> = examples.iter().map(|p| p.text.as_str()).collect();
    embeddings.extend(embed(config, &encoder, &example_texts, "embedding")?);
    let info = EncoderInfo {
        name: ENCODER_NAME.into(),
        weights_sha256: encoder.weights_sha256().into(),
    };
    let started = Instant::now();
    let trained = training::train(
        &posts,
        &embeddings,
        &taxonomy.labels(),
        info.clone(),
        config.alert_threshold,
    );
    tracing::info!(seconds = started.elapsed().as_secs_f32(), "heads trained");
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let heads_json = serde_json::to_vec_pretty(&trained.heads)?;
    std::fs::write(out.join("heads.json"), &heads_json)?;
    let heads_sha256 = vigie_analyse::sha256_hex(&heads_json);
    let taxonomy_bytes = std::fs::read(taxonomy_path)?;
    let mut notes = vec![
        "Labelled files: `danger` and categories as given; a label absent from a post is \
         unknown and the post does not count for it."
            .to_string(),
        "CrisisLexT6 files (fixtures/crisislex, made by scripts/crisislex_labelled.py): \
         danger = on-topic (a weak label: on-topic includes sympathy and donations); the \
         crisis type gives the category (floods, hurricane, tornado -> natural_hazard; \
         bombings, fertiliser-plant explosion -> explosion); off-topic posts are 0 for every \
         label."
            .to_string(),
        format!(
            "The taxonomy's {} example posts (English and French) count {TAXONOMY_WEIGHT} times \
             each: category examples are positives for `danger` and their category, negative \
             examples are 0 for every label.",
            examples.len() / TAXONOMY_WEIGHT
        ),
        "Split by a hash of the post id: 70% fit (classes balanced), 15% Platt calibration, \
         15% held out for the metrics below."
            .to_string(),
        "Categories other than natural_hazard and explosion have only the taxonomy's examples \
         as positives: their heads are weak and their held-out metrics rest on a handful of \
         posts."
            .to_string(),
    ];
    notes.extend(trained.notes.iter().cloned());
    let card = ModelCard {
        id: ModelCard::id_for(&heads_sha256),
        encoder: info,
        heads_version: trained.heads.version,
        heads_sha256,
        trained_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        training_files: datasets
            .iter()
            .map(|d| file_entry(&d.path, &d.sha256, d.posts.len()))
            .collect(),
        taxonomy: file_entry(
            taxonomy_path,
            &vigie_analyse::sha256_hex(&taxonomy_bytes),
            examples.len() / TAXONOMY_WEIGHT,
        ),
        notes,
        truncation: "The encoder reads the first 256 word pieces of a post; the rest does not \
                     count. Explanations look at the first 64 words."
            .into(),
        metrics: trained.metrics.clone(),
        reliability: trained.reliability.clone(),
    };
    std::fs::write(
        out.join("model-card.json"),
        serde_json::to_vec_pretty(&card)?,
    )?;
    println!(
        "trained {} heads: model {} in {}",
        trained.heads.labels.len(),
        card.id,
        out.display()
    );
    print_table(&trained.metrics, &[]);
    Ok(())
}

/// How many times each taxonomy example counts in training: a few hand-written posts per
/// category, in English and French, against thousands of English tweets.
const TAXONOMY_WEIGHT: usize = 10;

/// The taxonomy's examples as labelled posts, each repeated [`TAXONOMY_WEIGHT`] times under
/// one id (so all copies fall in the same split): category examples are positive for `danger`
/// and their category; negatives are 0 for every label.
fn taxonomy_examples(taxonomy: &Taxonomy) -> Vec<LabelledPost> {
    let positives = taxonomy.categories.iter().flat_map(|c| {
        c.examples().enumerate().map(move |(i, text)| LabelledPost {
            id: format!("taxonomy:{}:{i}", c.name),
            text: text.to_string(),
            labels: [(Taxonomy::DANGER.to_string(), 1), (c.name.clone(), 1)].into(),
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
        });
    positives
        .chain(negatives)
        .flat_map(|p| std::iter::repeat_n(p, TAXONOMY_WEIGHT))
        .collect()
}

fn print_table(metrics: &BTreeMap<String, LabelMetrics>, skipped: &[String]) {
    println!(
        "{:<16} {:>6} {:>9} {:>9} {:>7} {:>7} {:>7}",
        "label", "n", "precision", "recall", "f1", "AP", "ECE"
    );
    for (label, m) in metrics {
        println!(
            "{:<16} {:>6} {:>9.3} {:>9.3} {:>7.3} {:>7.3} {:>7.3}",
            label, m.n, m.precision, m.recall, m.f1, m.average_precision, m.ece
        );
    }
    for label in skipped {
        println!("{label:<16} skipped: the model has no head for it");
    }
}

/// Scores and known truth of each label of a dataset.
struct Evaluation {
    metrics: BTreeMap<String, LabelMetrics>,
    skipped: Vec<String>,
    /// label -> (scores, truth) of posts with a known value.
    columns: BTreeMap<String, (Vec<f32>, Vec<bool>)>,
}

fn evaluate_dataset(
    classifier: &Classifier,
    dataset: &Dataset,
    scores: &[vigie_analyse::Scores],
    only: Option<&str>,
    threshold: f32,
) -> Evaluation {
    let mut known: Vec<String> = dataset
        .posts
        .iter()
        .flat_map(|p| p.labels.keys().cloned())
        .collect();
    known.sort();
    known.dedup();
    known.retain(|l| only.is_none_or(|o| o == l));
    let heads: Vec<&str> = classifier.labels().collect();
    let mut out = Evaluation {
        metrics: BTreeMap::new(),
        skipped: Vec::new(),
        columns: BTreeMap::new(),
    };
    for label in known {
        if !heads.contains(&label.as_str()) {
            out.skipped.push(label);
            continue;
        }
        let (s, t): (Vec<f32>, Vec<bool>) = dataset
            .posts
            .iter()
            .zip(scores)
            .filter_map(|(p, s)| Some((s[&label], *p.labels.get(&label)? == 1)))
            .unzip();
        out.metrics
            .insert(label.clone(), metrics::evaluate(&s, &t, threshold));
        out.columns.insert(label, (s, t));
    }
    out
}

/// The JSON of `vigie eval --json`.
#[derive(Serialize)]
struct EvalJson<'a> {
    model: &'a str,
    labels: &'a BTreeMap<String, LabelMetrics>,
    skipped: &'a [String],
}

/// `vigie eval`: metrics per label of the configured classifier on a labelled file.
pub fn eval(
    config: &Config,
    data: &Path,
    label: Option<&str>,
    json: bool,
    report: Option<&Path>,
) -> Result<()> {
    let dataset = Dataset::load(data)?;
    let classifier = Classifier::load(encoder(config)?, &config.heads)
        .with_context(|| format!("loading the heads in {}", config.heads.display()))?;
    let texts = dataset.texts();
    let embeddings = embed(config, classifier.encoder(), &texts, "scoring")?;
    let mut scores = classifier.score_embeddings(&embeddings);
    let without = evaluate_dataset(
        &classifier,
        &dataset,
        &scores,
        label,
        config.alert_threshold,
    );
    let stopped = classifier.apply_cascade(&texts, &mut scores);
    let ev = evaluate_dataset(
        &classifier,
        &dataset,
        &scores,
        label,
        config.alert_threshold,
    );
    if stopped > 0 && !json {
        let recall = |e: &Evaluation| e.metrics.get(Taxonomy::DANGER).map_or(0.0, |m| m.recall);
        println!(
            "cascade: stopped {stopped} of {} posts before the transformer; danger recall {:.3} \
             with it, {:.3} without",
            texts.len(),
            recall(&ev),
            recall(&without)
        );
    }
    let model = vigie_analyse::Scorer::model_id(&classifier);
    if json {
        println!(
            "{}",
            serde_json::to_string(&EvalJson {
                model,
                labels: &ev.metrics,
                skipped: &ev.skipped,
            })?
        );
    } else {
        println!(
            "model {model} on {} ({} posts)",
            data.display(),
            dataset.posts.len()
        );
        print_table(&ev.metrics, &ev.skipped);
    }
    if let Some(dir) = report {
        crate::report::write(dir, model, data, &ev.metrics, &ev.columns)?;
        if !json {
            println!("report: {}", dir.join("index.html").display());
        }
    }
    Ok(())
}

/// `vigie bench classify`: posts/s of the encoder and heads on real tweets, with batches
/// formed by length (Vigie's way) and in arrival order, for comparison; with `python`, also
/// the Python sentence-transformers encoder, alternating with Vigie's for `rounds` rounds.
pub fn bench_classify(
    config: &Config,
    n: usize,
    data_dir: &Path,
    python: Option<&Path>,
    rounds: usize,
) -> Result<()> {
    let owned = crisislex_texts(data_dir, n)?;
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let encoder = encoder(config)?;
    let threads = vigie_analyse::threads();
    let warm: Vec<&str> = texts.iter().take(8).copied().collect();
    encoder.encode(&warm)?;
    if let Some(python) = python {
        compare_with_python(&encoder, &texts, data_dir, python, rounds.max(1), threads)?;
    }
    let bar = progress(texts.len(), "length-sorted batches");
    let started = Instant::now();
    encoder.encode_with_progress(&texts, |d| bar.set_position(d as u64))?;
    let sorted = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let bar = progress(texts.len(), "arrival-order batches");
    let started = Instant::now();
    for chunk in texts.chunks(encoder.batch_size()) {
        // One call per batch: the encoder sorts within a call only.
        encoder.encode(chunk)?;
        bar.inc(chunk.len() as u64);
    }
    let arrival = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mean_chars = texts.iter().map(|t| t.len()).sum::<usize>() as f64 / texts.len() as f64;
    let mut classifier = Classifier::load(encoder, &config.heads)
        .with_context(|| format!("loading the heads in {}", config.heads.display()))?;
    let mut timed = |cascade: bool| -> Result<f64> {
        classifier.set_cascade(cascade);
        let bar = progress(
            texts.len(),
            if cascade { "cascade on" } else { "cascade off" },
        );
        let started = Instant::now();
        for chunk in texts.chunks(256) {
            vigie_analyse::Scorer::score(&classifier, chunk)?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(texts.len() as f64 / started.elapsed().as_secs_f64())
    };
    let full = timed(false)?;
    let cascaded = timed(true)?;
    let batch_size = classifier.encoder().batch_size();
    println!(
        "classify: {} posts (mean {:.0} chars), batch {}, {} threads",
        texts.len(),
        mean_chars,
        batch_size,
        threads
    );
    println!(
        "  length-sorted batches: {:>7.1} posts/s",
        texts.len() as f64 / sorted
    );
    println!(
        "  arrival-order batches: {:>7.1} posts/s",
        texts.len() as f64 / arrival
    );
    println!("  classifier (encoder + heads), calls of 256 posts:");
    println!("    cascade off: {full:>7.1} posts/s");
    println!(
        "    cascade on:  {cascaded:>7.1} posts/s ({:.2}x)",
        cascaded / full
    );
    Ok(())
}

/// Times Vigie's encoder and `bench/python_encoder.py` on the same `texts`, one after the
/// other, `rounds` times (alternating, so that a change in the machine's load hits both), and
/// prints each figure and the ratio of the medians.
fn compare_with_python(
    encoder: &Encoder,
    texts: &[&str],
    data_dir: &Path,
    python: &Path,
    rounds: usize,
    threads: usize,
) -> Result<()> {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let out = std::process::Command::new(python)
            .arg("bench/python_encoder.py")
            .args(["--n", &texts.len().to_string()])
            .args(["--batch", &encoder.batch_size().to_string()])
            .args(["--threads", &threads.to_string()])
            .arg("--data")
            .arg(data_dir)
            .stderr(std::process::Stdio::null())
            .output()
            .with_context(|| format!("running {} bench/python_encoder.py", python.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(
            out.status.success(),
            "bench/python_encoder.py failed ({}): {stdout}",
            out.status
        );
        let rate: f64 = stdout
            .lines()
            .last()
            .and_then(|l| l.strip_suffix(" posts/s"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|r| r.parse().ok())
            .with_context(|| format!("no posts/s in the Python encoder's output: {stdout}"))?;
        let started = Instant::now();
        encoder.encode(texts)?;
        let rust = texts.len() as f64 / started.elapsed().as_secs_f64();
        println!("round {round}: python {rate:>7.1} posts/s, vigie {rust:>7.1} posts/s");
        theirs.push(rate);
        ours.push(rust);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ours, theirs) = (median(&mut ours), median(&mut theirs));
    println!(
        "encoder, median of {rounds}: vigie {ours:.1} posts/s, python {theirs:.1} posts/s: \
         vigie is {:.2}x the Python encoder",
        ours / theirs
    );
    Ok(())
}

/// The first `n` texts of the CrisisLex files in `dir`, in file order.
fn crisislex_texts(dir: &Path, n: usize) -> Result<Vec<String>> {
    let mut texts = Vec::new();
    for d in crisis_files(dir)? {
        texts.extend(Dataset::load(&d)?.posts.into_iter().map(|p| p.text));
    }
    texts.truncate(n);
    anyhow::ensure!(!texts.is_empty(), "no posts in {}", dir.display());
    Ok(texts)
}

fn crisis_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no .jsonl file in {}", dir.display());
    Ok(files)
}

/// One rotation of the leave-one-crisis-out experiment.
#[derive(Serialize)]
struct Rotation {
    held_out: String,
    n: usize,
    positives: usize,
    vigie: LabelMetrics,
    lexicon: LabelMetrics,
    tfidf: LabelMetrics,
}

/// `vigie experiment loco`: train on five crises, evaluate `danger` on the sixth, for each
/// crisis; Vigie's heads against the CrisisLex lexicon and TF-IDF + logistic regression.
pub fn loco(config: &Config, dir: &Path, lexicon: &Path, json: bool) -> Result<()> {
    let files = crisis_files(dir)?;
    let datasets: Vec<Dataset> = files
        .iter()
        .map(|f| Dataset::load(f))
        .collect::<Result<_, _>>()?;
    let lexicon = Lexicon::load(lexicon)?;
    let encoder = encoder(config)?;
    let embeddings = embed_datasets(config, &encoder, &datasets)?;
    let total = embeddings.len();
    let mut offsets = vec![0];
    for d in &datasets {
        offsets.push(offsets.last().copied().unwrap_or(0) + d.posts.len());
    }
    let info = EncoderInfo {
        name: ENCODER_NAME.into(),
        weights_sha256: encoder.weights_sha256().into(),
    };
    let danger = [Taxonomy::DANGER.to_string()];
    let t = config.alert_threshold;
    let mut rotations = Vec::new();
    let bar = progress(datasets.len(), "rotations");
    for (k, held) in datasets.iter().enumerate() {
        let train_idx: Vec<usize> = (0..total)
            .filter(|&i| i < offsets[k] || i >= offsets[k + 1])
            .collect();
        let train_posts: Vec<&LabelledPost> = datasets
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != k)
            .flat_map(|(_, d)| &d.posts)
            .collect();
        let train_x: Vec<Vec<f32>> = train_idx.iter().map(|&i| embeddings[i].clone()).collect();
        let trained = training::train(&train_posts, &train_x, &danger, info.clone(), t);
        let head = trained
            .heads
            .labels
            .get(Taxonomy::DANGER)
            .context("no danger head trained")?;
        let held_x = &embeddings[offsets[k]..offsets[k + 1]];
        let truth: Vec<bool> = held
            .posts
            .iter()
            .map(|p| p.labels.get("danger") == Some(&1))
            .collect();
        let vigie: Vec<f32> = held_x.iter().map(|x| head.score(x)).collect();
        let lex: Vec<f32> = held.posts.iter().map(|p| lexicon.score(&p.text)).collect();
        let train_texts: Vec<&str> = train_posts.iter().map(|p| p.text.as_str()).collect();
        let train_y: Vec<f32> = train_posts
            .iter()
            .map(|p| f32::from(p.labels.get("danger").copied().unwrap_or(0)))
            .collect();
        let tfidf = TfIdf::train(&train_texts, &train_y);
        let tf: Vec<f32> = held.posts.iter().map(|p| tfidf.score(&p.text)).collect();
        rotations.push(Rotation {
            held_out: held
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            n: truth.len(),
            positives: truth.iter().filter(|&&b| b).count(),
            vigie: metrics::evaluate(&vigie, &truth, t),
            lexicon: metrics::evaluate(&lex, &truth, 0.5),
            tfidf: metrics::evaluate(&tf, &truth, t),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&rotations)?);
        return Ok(());
    }
    println!("| held-out crisis | n | Vigie F1 | Vigie AP | lexicon F1 | lexicon AP | TF-IDF F1 | TF-IDF AP | Vigie ECE |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rotations {
        println!(
            "| {} | {} | {:.3} | **{:.3}** | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            r.held_out,
            r.n,
            r.vigie.f1,
            r.vigie.average_precision,
            r.lexicon.f1,
            r.lexicon.average_precision,
            r.tfidf.f1,
            r.tfidf.average_precision,
            r.vigie.ece
        );
    }
    let mean = |f: &dyn Fn(&Rotation) -> f64| {
        rotations.iter().map(f).sum::<f64>() / rotations.len() as f64
    };
    println!(
        "| **mean** | | {:.3} | **{:.3}** | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
        mean(&|r| r.vigie.f1),
        mean(&|r| r.vigie.average_precision),
        mean(&|r| r.lexicon.f1),
        mean(&|r| r.lexicon.average_precision),
        mean(&|r| r.tfidf.f1),
        mean(&|r| r.tfidf.average_precision),
        mean(&|r| r.vigie.ece),
    );
    let wins = rotations
        .iter()
        .filter(|r| {
            r.vigie.average_precision > r.lexicon.average_precision.max(r.tfidf.average_precision)
        })
        .count();
    println!(
        "\nVigie's average precision beats both baselines on {wins} of {} rotations.",
        rotations.len()
    );
    Ok(())
}
