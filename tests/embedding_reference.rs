//! rust-bert's embeddings of all-MiniLM-L6-v2 match those of Python sentence-transformers.
//!
//! The reference vectors were computed once by `scripts/reference_embeddings.py` from the same
//! model files and committed in `fixtures/embedding-reference.json`.

use crate::util::{model_dir, root};
use vigie_analyse::{Encoder, ModelFiles};

#[derive(serde::Deserialize)]
struct Reference {
    tolerance: f32,
    sentences: Vec<String>,
    embeddings: Vec<Vec<f32>>,
}

#[test]
fn embeddings_match_the_python_reference() {
    let path = root().join("fixtures/embedding-reference.json");
    let reference: Reference =
        serde_json::from_slice(&std::fs::read(path).unwrap()).expect("reference JSON");
    let encoder = Encoder::load(&ModelFiles::in_dir(model_dir()).unwrap()).unwrap();
    assert_eq!(encoder.weights_sha256().len(), 64);

    // Together in one batch (padding must not change a sentence's vector)...
    let batch = encoder.encode(&reference.sentences).unwrap();
    assert_eq!(batch.len(), reference.embeddings.len());
    for (i, (got, want)) in batch.iter().zip(&reference.embeddings).enumerate() {
        assert_eq!(got.len(), 384);
        let worst = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= reference.tolerance,
            "sentence {i} ({:?}) differs by {worst}",
            reference.sentences[i]
        );
    }
    // ...and one at a time.
    let alone = encoder.encode(&reference.sentences[..1]).unwrap();
    let worst = alone[0]
        .iter()
        .zip(&reference.embeddings[0])
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= reference.tolerance, "alone: differs by {worst}");
}

#[test]
fn a_missing_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = ModelFiles::in_dir(dir.path()).err().unwrap().to_string();
    assert!(err.contains("modules.json"), "{err}");
}
