//! Vigie's embeddings equal those of Python sentence-transformers on the same model files, for
//! both encoders — multilingual-e5-small (the default; eight languages and tricky text, its
//! `query: ` prompt, a text cut at 512 pieces) and all-MiniLM-L6-v2 — and both runtimes that
//! claim to: rust-bert, and Vigie's own forward pass in f32. The f16 and int8 runtimes stay
//! close (cosine to Python's vector, per sentence, above a bar each), reading the same pieces.
//!
//! The reference vectors were computed once by `scripts/reference_embeddings.py e5|minilm`
//! from the directories the set-up installs, and committed in `fixtures/embedding-reference*.json`.

use crate::util::{e5_dir, minilm_dir, root};
use std::path::Path;
use vigie_analyse::{Encoder, ModelFiles, Runtime, TokenizerFiles, KNOWN_WEIGHTS};

#[derive(serde::Deserialize)]
struct Reference {
    tolerance: f32,
    max_seq_length: usize,
    sentences: Vec<String>,
    pieces: Vec<usize>,
    embeddings: Vec<Vec<f32>>,
}

fn reference(file: &str) -> Reference {
    let path = root().join("fixtures").join(file);
    serde_json::from_slice(&std::fs::read(path).unwrap()).expect("reference JSON")
}

fn worst(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max)
}

/// The lowest cosine the vector of a reference sentence may have with Python's, for the
/// runtimes that round the model (the lowest seen: int8, 0.9942, MiniLM reading French).
const ROUNDED: [(Runtime, f32); 2] = [(Runtime::F16, 0.999), (Runtime::Int8, 0.99)];

/// Vigie's vectors of the reference's sentences with each runtime that claims Python's: in one
/// batch and one at a time, within the reference's tolerance; as many pieces read as Python
/// did. Then the runtimes that round the model: close to them ([`ROUNDED`]). Returns the
/// default (rust-bert) encoder.
fn check(dir: &Path, reference: &Reference) -> Encoder {
    let files = ModelFiles::in_dir(dir).unwrap();
    assert_eq!(files.max_seq_length, reference.max_seq_length);
    let native = check_runtime(&files, reference, Runtime::F32);
    drop(native);
    for (runtime, bar) in ROUNDED {
        let rounded = Encoder::load_with(&files, runtime).unwrap();
        assert_eq!(rounded.pieces(&reference.sentences), reference.pieces);
        let vectors = rounded.encode(&reference.sentences).unwrap();
        for (i, (got, want)) in vectors.iter().zip(&reference.embeddings).enumerate() {
            let cosine: f32 = got.iter().zip(want).map(|(a, b)| a * b).sum();
            assert!(
                cosine >= bar,
                "{runtime}: sentence {i} ({:?}) at cosine {cosine}",
                reference.sentences[i]
            );
        }
    }
    check_runtime(&files, reference, Runtime::RustBert)
}

/// [`check`] for one runtime.
fn check_runtime(files: &ModelFiles, reference: &Reference, runtime: Runtime) -> Encoder {
    let encoder = Encoder::load_with(files, runtime).unwrap();
    assert_eq!(encoder.runtime(), runtime);
    assert!(KNOWN_WEIGHTS
        .iter()
        .any(|(sha, _)| *sha == encoder.weights_sha256()));
    assert_eq!(encoder.pieces(&reference.sentences), reference.pieces);

    // Together in one batch (padding must not change a sentence's vector)...
    let batch = encoder.encode(&reference.sentences).unwrap();
    assert_eq!(batch.len(), reference.embeddings.len());
    for (i, (got, want)) in batch.iter().zip(&reference.embeddings).enumerate() {
        assert_eq!(got.len(), 384);
        let worst = worst(got, want);
        assert!(
            worst <= reference.tolerance,
            "{runtime}: sentence {i} ({:?}) differs by {worst}",
            reference.sentences[i]
        );
    }
    // ...and one at a time.
    for (i, sentence) in reference.sentences.iter().enumerate() {
        let alone = encoder.encode(std::slice::from_ref(sentence)).unwrap();
        let worst = worst(&alone[0], &reference.embeddings[i]);
        assert!(
            worst <= reference.tolerance,
            "{runtime}: sentence {i} alone: differs by {worst}"
        );
    }
    encoder
}

#[test]
fn e5_embeddings_match_the_python_reference_in_every_language() {
    let reference = reference("embedding-reference-e5.json");
    let encoder = check(&e5_dir(), &reference);
    assert_eq!(encoder.name(), "intfloat/multilingual-e5-small");
    assert_eq!(
        ModelFiles::in_dir(e5_dir()).unwrap().tokenizer,
        TokenizerFiles::HuggingFace
    );
    // The long text was cut at the window: Python read 512 pieces of it, and so did Vigie.
    let longest = reference.pieces.iter().max().unwrap();
    assert_eq!(*longest, 512, "the reference has a text beyond the window");
    // The same fire report in four languages is closer to itself than to small talk.
    let v = encoder
        .encode(&[
            "a huge fire at the train station, people evacuated",
            "un énorme incendie à la gare, les gens sont évacués",
            "un enorme incendio en la estación de tren, evacuaron a la gente",
            "I love the new album, great coffee this morning",
        ])
        .unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(dot(&v[0], &v[1]) > dot(&v[0], &v[3]) + 0.05);
    assert!(dot(&v[1], &v[2]) > dot(&v[1], &v[3]) + 0.05);
}

#[test]
fn minilm_embeddings_match_the_python_reference() {
    let encoder = check(&minilm_dir(), &reference("embedding-reference.json"));
    assert_eq!(encoder.name(), "sentence-transformers/all-MiniLM-L6-v2");
}

#[test]
fn a_missing_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = ModelFiles::in_dir(dir.path()).err().unwrap().to_string();
    assert!(err.contains("modules.json"), "{err}");
}
