//! `vigie bench classify`: posts/s of the encoder and the classifier on real tweets, and,
//! optionally, of the Python sentence-transformers encoder on the same posts.

use super::{crisis_files, ExperimentError, Settings};
use crate::dataset::Dataset;
use crate::{Encoder, ModelFiles, Runtime, Scorer};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// Texts per call when timing the classifier.
const CLASSIFIER_CALL: usize = 256;

/// The figures of [`classify`], in posts/s.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifyBench {
    /// Posts timed.
    pub posts: usize,
    /// Their mean length in bytes.
    pub mean_chars: f64,
    /// The encoder's batch size.
    pub batch_size: usize,
    /// The model's CPU threads.
    pub threads: usize,
    /// The encoder with batches formed by length (Vigie's way).
    pub length_sorted: f64,
    /// The encoder with batches in arrival order.
    pub arrival_order: f64,
    /// The classifier (encoder and heads) without the cascade, in calls of 256 posts.
    pub cascade_off: f64,
    /// The same with the cascade's first stage on.
    pub cascade_on: f64,
    /// The comparison with the Python encoder, when asked for.
    pub python: Option<PythonComparison>,
}

impl ClassifyBench {
    /// What `vigie bench classify` prints: the Python comparison first (when made), then the
    /// figures.
    pub fn text(&self) -> String {
        let mut out = self
            .python
            .as_ref()
            .map_or_else(String::new, PythonComparison::text);
        let _ = writeln!(
            out,
            "classify: {} posts (mean {:.0} chars), batch {}, {} threads",
            self.posts, self.mean_chars, self.batch_size, self.threads
        );
        let _ = writeln!(
            out,
            "  length-sorted batches: {:>7.1} posts/s",
            self.length_sorted
        );
        let _ = writeln!(
            out,
            "  arrival-order batches: {:>7.1} posts/s",
            self.arrival_order
        );
        out.push_str("  classifier (encoder + heads), calls of 256 posts:\n");
        let _ = writeln!(out, "    cascade off: {:>7.1} posts/s", self.cascade_off);
        let _ = writeln!(
            out,
            "    cascade on:  {:>7.1} posts/s ({:.2}x)",
            self.cascade_on,
            self.cascade_on / self.cascade_off
        );
        out
    }
}

/// Vigie's encoder, in each [`Runtime`], against `bench/python_encoder.py`, one after the other
/// in each round.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonComparison {
    /// Posts/s of each round: Python's, then each runtime's.
    pub rounds: Vec<Round>,
}

/// One round of [`PythonComparison`].
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    /// Python sentence-transformers' posts/s.
    pub python: f64,
    /// Vigie's posts/s, per runtime, in the order timed.
    pub vigie: Vec<(Runtime, f64)>,
}

impl PythonComparison {
    /// The median of Python's posts/s over the rounds.
    pub fn python(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.python).collect())
    }

    /// The median of `runtime`'s posts/s over the rounds (NaN when it was not timed).
    pub fn vigie(&self, runtime: Runtime) -> f64 {
        median(
            self.rounds
                .iter()
                .flat_map(|r| r.vigie.iter().filter(|(rt, _)| *rt == runtime))
                .map(|(_, rate)| *rate)
                .collect(),
        )
    }

    /// A line per round, then the medians and their ratio to Python's.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (i, round) in self.rounds.iter().enumerate() {
            let _ = write!(out, "round {}: python {:>6.1} posts/s", i + 1, round.python);
            for (runtime, rate) in &round.vigie {
                let _ = write!(out, ", vigie {runtime} {rate:>6.1}");
            }
            out.push('\n');
        }
        let theirs = self.python();
        let _ = writeln!(
            out,
            "encoder, median of {}: python {theirs:.1} posts/s",
            self.rounds.len()
        );
        for runtime in Runtime::ALL {
            let ours = self.vigie(runtime);
            if ours.is_finite() {
                let _ = writeln!(
                    out,
                    "  vigie {runtime:<9} {ours:>6.1} posts/s: {:.2}x the Python encoder",
                    ours / theirs
                );
            }
        }
        out
    }
}

/// The upper median of `v` (NaN when empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Times the encoder and the classifier of `settings` on the first `n` posts of the CrisisLex
/// files in `data_dir`; with `python`, first compares the encoder with the Python one for
/// `rounds` rounds (at least one).
pub fn classify(
    settings: &Settings,
    n: usize,
    data_dir: &Path,
    python: Option<&Path>,
    rounds: usize,
) -> Result<ClassifyBench, ExperimentError> {
    let owned = crisislex_texts(data_dir, n)?;
    let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
    let encoder = settings.encoder.load()?;
    let threads = crate::threads();
    let warm: Vec<&str> = texts.iter().take(8).copied().collect();
    encoder.encode(&warm)?;
    let python = match python {
        Some(python) => Some(compare_with_python(
            &encoder,
            &settings.encoder.model_dir,
            &texts,
            data_dir,
            python,
            rounds.max(1),
            threads,
        )?),
        None => None,
    };
    let rate = |started: Instant| texts.len() as f64 / started.elapsed().as_secs_f64();
    let bar = settings.bar(texts.len(), "length-sorted batches");
    let started = Instant::now();
    encoder.encode_with_progress(&texts, |d| bar.set_position(d as u64))?;
    let length_sorted = rate(started);
    bar.finish_and_clear();
    let bar = settings.bar(texts.len(), "arrival-order batches");
    let started = Instant::now();
    for chunk in texts.chunks(encoder.batch_size()) {
        // One call per batch: the encoder sorts within a call only.
        encoder.encode(chunk)?;
        bar.inc(chunk.len() as u64);
    }
    let arrival_order = rate(started);
    bar.finish_and_clear();
    let mean_chars = texts.iter().map(|t| t.len()).sum::<usize>() as f64 / texts.len() as f64;
    let mut classifier = settings.classifier(encoder)?;
    let mut timed = |cascade: bool| -> Result<f64, ExperimentError> {
        classifier.set_cascade(cascade);
        let bar = settings.bar(
            texts.len(),
            if cascade { "cascade on" } else { "cascade off" },
        );
        let started = Instant::now();
        for chunk in texts.chunks(CLASSIFIER_CALL) {
            classifier.score(chunk)?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        Ok(rate(started))
    };
    let cascade_off = timed(false)?;
    let cascade_on = timed(true)?;
    Ok(ClassifyBench {
        posts: texts.len(),
        mean_chars,
        batch_size: classifier.encoder().batch_size(),
        threads,
        length_sorted,
        arrival_order,
        cascade_off,
        cascade_on,
        python,
    })
}

/// Times `bench/python_encoder.py` and Vigie's encoder in each [`Runtime`] on the same `texts`
/// and the same model directory, one after the other, `rounds` times (alternating, so that a
/// change in the machine's load hits all).
fn compare_with_python(
    encoder: &Encoder,
    model_dir: &Path,
    texts: &[&str],
    data_dir: &Path,
    python: &Path,
    rounds: usize,
    threads: usize,
) -> Result<PythonComparison, ExperimentError> {
    // The configured runtime is `encoder` (loaded and warm); the others are loaded here.
    let files = ModelFiles::in_dir(model_dir)?;
    let mut others = Vec::new();
    for runtime in Runtime::ALL.into_iter().filter(|r| *r != encoder.runtime()) {
        let mut e = Encoder::load_with(&files, runtime)?;
        e.set_batch_size(encoder.batch_size());
        e.encode(&texts[..texts.len().min(8)])?;
        others.push(e);
    }
    let mut encoders: Vec<&Encoder> = others.iter().chain([encoder]).collect();
    encoders.sort_by_key(|e| Runtime::ALL.iter().position(|r| *r == e.runtime()));
    let mut out = PythonComparison { rounds: Vec::new() };
    for _ in 0..rounds {
        let run = std::process::Command::new(python)
            .arg("bench/python_encoder.py")
            .args(["--n", &texts.len().to_string()])
            .args(["--batch", &encoder.batch_size().to_string()])
            .args(["--threads", &threads.to_string()])
            .arg("--data")
            .arg(data_dir)
            .arg("--model-dir")
            .arg(model_dir)
            .stderr(std::process::Stdio::null())
            .output()
            .map_err(|e| {
                ExperimentError::Python(format!(
                    "running {} bench/python_encoder.py: {e}",
                    python.display()
                ))
            })?;
        let stdout = String::from_utf8_lossy(&run.stdout);
        if !run.status.success() {
            return Err(ExperimentError::Python(format!(
                "bench/python_encoder.py failed ({}): {stdout}",
                run.status
            )));
        }
        let rate = python_rate(&stdout).ok_or_else(|| {
            ExperimentError::Python(format!(
                "no posts/s in the Python encoder's output: {stdout}"
            ))
        })?;
        let mut round = Round {
            python: rate,
            vigie: Vec::new(),
        };
        for e in &encoders {
            let started = Instant::now();
            e.encode(texts)?;
            let rate = texts.len() as f64 / started.elapsed().as_secs_f64();
            round.vigie.push((e.runtime(), rate));
        }
        out.rounds.push(round);
    }
    Ok(out)
}

/// The posts/s figure of the Python encoder's last line (`... N posts/s`).
fn python_rate(stdout: &str) -> Option<f64> {
    stdout
        .lines()
        .last()
        .and_then(|l| l.strip_suffix(" posts/s"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|r| r.parse().ok())
}

/// The first `n` texts of the CrisisLex files in `dir`, in file order.
fn crisislex_texts(dir: &Path, n: usize) -> Result<Vec<String>, ExperimentError> {
    let mut texts = Vec::new();
    for d in crisis_files(dir)? {
        texts.extend(Dataset::load(&d)?.posts.into_iter().map(|p| p.text));
    }
    texts.truncate(n);
    if texts.is_empty() {
        return Err(ExperimentError::Input(format!(
            "no posts in {}",
            dir.display()
        )));
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_python_rate_is_read_from_the_last_line() {
        assert_eq!(
            python_rate("loading\nencoder: 1000 posts in 2.0 s, 512.5 posts/s\n"),
            Some(512.5)
        );
        assert_eq!(python_rate("512 posts per second"), None);
        assert_eq!(python_rate(""), None);
    }

    #[test]
    fn the_comparison_reports_each_round_and_the_ratio_of_the_medians() {
        let round = |python, rust_bert, int8| Round {
            python,
            vigie: vec![(Runtime::RustBert, rust_bert), (Runtime::Int8, int8)],
        };
        let c = PythonComparison {
            rounds: vec![
                round(100.0, 300.0, 500.0),
                round(120.0, 200.0, 400.0),
                round(80.0, 250.0, 450.0),
            ],
        };
        assert_eq!(c.python(), 100.0);
        assert_eq!(c.vigie(Runtime::RustBert), 250.0);
        assert_eq!(c.vigie(Runtime::Int8), 450.0);
        assert!(c.vigie(Runtime::F32).is_nan(), "not timed");
        let text = c.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "round 1: python  100.0 posts/s, vigie rust-bert  300.0, vigie int8  500.0"
        );
        assert_eq!(lines[3], "encoder, median of 3: python 100.0 posts/s");
        assert_eq!(
            lines[4],
            "  vigie rust-bert  250.0 posts/s: 2.50x the Python encoder"
        );
        assert_eq!(
            lines[5],
            "  vigie int8       450.0 posts/s: 4.50x the Python encoder"
        );
        assert_eq!(lines.len(), 6, "no line for the runtime not timed");
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn the_figures_render_as_vigie_bench_classify_prints_them() {
        let bench = ClassifyBench {
            posts: 1000,
            mean_chars: 98.6,
            batch_size: 32,
            threads: 2,
            length_sorted: 400.0,
            arrival_order: 250.25,
            cascade_off: 380.0,
            cascade_on: 760.0,
            python: None,
        };
        assert_eq!(
            bench.text(),
            "classify: 1000 posts (mean 99 chars), batch 32, 2 threads\n  \
             length-sorted batches:   400.0 posts/s\n  \
             arrival-order batches:   250.2 posts/s\n  \
             classifier (encoder + heads), calls of 256 posts:\n    \
             cascade off:   380.0 posts/s\n    \
             cascade on:    760.0 posts/s (2.00x)\n"
        );
    }

    #[test]
    fn crisislex_texts_keep_the_first_n_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let line = |id: &str| format!("{{\"id\":\"{id}\",\"text\":\"{id}\"}}\n");
        std::fs::write(dir.path().join("b.jsonl"), line("b1") + &line("b2")).unwrap();
        std::fs::write(dir.path().join("a.jsonl"), line("a1")).unwrap();
        assert_eq!(crisislex_texts(dir.path(), 2).unwrap(), ["a1", "b1"]);
        let e = crisislex_texts(dir.path(), 0).unwrap_err().to_string();
        assert!(e.starts_with("no posts in"), "{e}");
    }
}
