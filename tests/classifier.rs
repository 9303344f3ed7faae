//! The classifier's commands against the real model: `vigie train` writes heads and a model
//! card that say what they were made from, `vigie eval` measures them, and the shipped heads
//! are calibrated on held-out data.

use crate::util::{model_dir, root, Vigie};
use serde_json::Value;
use std::path::Path;
use vigie_analyse::dataset::Dataset;
use vigie_analyse::training::{part, Part};
use vigie_analyse::{
    metrics, Analyser, AnalyserConfig, Classifier, Encoder, ModelFiles, Runtime, Scorer,
    KNOWN_WEIGHTS,
};

/// The first `n` lines of a CrisisLex fixture (`set`: `crisislex` for CrisisLexT6,
/// `crisislex-t26`), as a new labelled file.
fn sample(dir: &Path, set: &str, crisis: &str, n: usize) -> std::path::PathBuf {
    let text =
        std::fs::read_to_string(root().join(format!("fixtures/{set}/{crisis}.jsonl"))).unwrap();
    let path = dir.join(format!("{crisis}.jsonl"));
    let lines: Vec<&str> = text.lines().take(n).collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn train_writes_a_model_card_and_eval_measures_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample(tmp.path(), "crisislex", "2013_Alberta_Floods", 300);
    let heads = tmp.path().join("heads");
    // An experimenter adds a category in the taxonomy file alone, and retrains.
    let mut taxonomy = std::fs::read_to_string(root().join("config/taxonomy.toml")).unwrap();
    let negatives = taxonomy.find("\n[negatives]").unwrap();
    taxonomy.insert_str(
        negatives,
        "\n[[category]]\nname = \"volcano\"\ndescription = \"Eruption, ash fall, lava flow.\"\n\
         examples_en = [\"The volcano is erupting, ash falling on the town\", \
         \"Lava flow has reached the first houses\", \"Eruption: evacuate the valley now\", \
         \"Ash cloud over the airport, flights grounded as the volcano erupts\"]\n\
         examples_fr = [\"Le volcan est entré en éruption, des cendres tombent sur la ville\", \
         \"La coulée de lave atteint les premières maisons\"]\n",
    );
    let taxonomy_path = tmp.path().join("taxonomy.toml");
    std::fs::write(&taxonomy_path, taxonomy).unwrap();
    // Boston's tweets train the categories only: their `danger` (on-topic) is ignored.
    let weak = sample(tmp.path(), "crisislex", "2013_Boston_Bombings", 100);
    Vigie::new(tmp.path())
        .args(["train", "--data"])
        .arg(&data)
        .arg("--weak")
        .arg(&weak)
        .arg("--out")
        .arg(&heads)
        .arg("--taxonomy")
        .arg(&taxonomy_path)
        .ok();
    let trained: Value =
        serde_json::from_slice(&std::fs::read(heads.join("heads.json")).unwrap()).unwrap();
    assert!(
        trained["labels"]["volcano"].is_object(),
        "a head for the new category"
    );
    // The heads read embeddings centred on their language's mean, stored with them.
    let english = &trained["centring"]["languages"]["en"];
    assert!(english["posts"].as_u64().unwrap() >= 300, "{english}");
    assert_eq!(english["mean"].as_array().unwrap().len(), 384);

    let card: Value =
        serde_json::from_slice(&std::fs::read(heads.join("model-card.json")).unwrap()).unwrap();
    let heads_bytes = std::fs::read(heads.join("heads.json")).unwrap();
    let heads_sha = vigie_analyse::sha256_hex(&heads_bytes);
    assert_eq!(card["heads_sha256"], heads_sha.as_str());
    assert_eq!(card["id"], format!("heads-{}", &heads_sha[..12]));
    let weights = std::fs::read(model_dir().join("model.safetensors")).unwrap();
    let weights_sha = vigie_analyse::sha256_hex(&weights);
    assert_eq!(card["encoder"]["weights_sha256"], weights_sha.as_str());
    let (_, name) = KNOWN_WEIGHTS
        .iter()
        .find(|(sha, _)| *sha == weights_sha)
        .expect("the configured model is one the set-up installs");
    assert_eq!(card["encoder"]["name"], *name);
    assert_eq!(
        card["training_files"][0]["sha256"],
        vigie_analyse::sha256_hex(&std::fs::read(&data).unwrap()).as_str()
    );
    assert_eq!(card["training_files"][0]["posts"], 300);
    assert!(card["training_files"][0].get("ignored_labels").is_none());
    assert_eq!(card["training_files"][1]["posts"], 100);
    assert_eq!(
        card["training_files"][1]["ignored_labels"],
        serde_json::json!(["danger"])
    );
    assert!(card["metrics"]["danger"]["n"].as_u64().unwrap() > 20);

    // eval --json: the exact shape other tools read; a label without a head is skipped. The
    // posts are CrisisLexT26's, whose `danger` is Vigie's (T6's on-topic is not).
    let labelled = tmp.path().join("eval.jsonl");
    let mut text = std::fs::read_to_string(sample(
        tmp.path(),
        "crisislex-t26",
        "2013_Boston_bombings",
        200,
    ))
    .unwrap();
    text.push_str("\n{\"id\":\"x\",\"text\":\"hello\",\"labels\":{\"volcano\":1,\"danger\":0}}\n");
    std::fs::write(&labelled, text).unwrap();
    let report = tmp.path().join("report");
    let stdout = Vigie::new(tmp.path())
        .args(["eval", "--data"])
        .arg(&labelled)
        .args(["--json", "--report"])
        .arg(&report)
        .ok();
    // The configured heads are the shipped ones (models/danger): eval measures those.
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let danger = &v["labels"]["danger"];
    assert_eq!(danger["n"], 201);
    for key in ["precision", "recall", "f1", "average_precision"] {
        let x = danger[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&x), "{key} = {x}");
    }
    assert!(
        danger["average_precision"].as_f64().unwrap() > 0.8,
        "{danger}"
    );
    assert_eq!(v["skipped"], serde_json::json!(["volcano"]));
    for f in [
        "index.html",
        "pr-curve.svg",
        "histogram.svg",
        "reliability.svg",
    ] {
        let bytes = std::fs::read(report.join(f)).unwrap();
        assert!(bytes.len() > 200, "{f} is empty");
    }
    let svg = std::fs::read_to_string(report.join("reliability.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
}

#[test]
fn the_shipped_heads_are_calibrated_on_held_out_posts() {
    let root = root();
    let encoder = Encoder::load(&ModelFiles::in_dir(model_dir()).unwrap()).unwrap();
    let classifier = Classifier::load(encoder, &root.join("models/danger")).unwrap();
    let (mut scores, mut truth) = (Vec::new(), Vec::new());
    // The files whose `danger` trained the shipped heads (CrisisLexT6's is ignored: --weak).
    for entry in std::fs::read_dir(root.join("fixtures/crisislex-t26")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "jsonl") {
            continue;
        }
        let d = Dataset::load(&path).unwrap();
        let held: Vec<_> = d
            .posts
            .iter()
            .filter(|p| part(&p.id) == Part::Test)
            .collect();
        let texts: Vec<&str> = held.iter().map(|p| p.text.as_str()).collect();
        let embeddings = classifier.encoder().encode(&texts).unwrap();
        for (p, s) in held
            .iter()
            .zip(classifier.score_embeddings(&texts, &embeddings))
        {
            scores.push(s["danger"]);
            truth.push(p.labels["danger"] == 1);
        }
    }
    assert!(scores.len() > 1000, "{} held-out posts", scores.len());
    let m = metrics::evaluate(&scores, &truth, 0.5);
    assert!(
        m.ece < 0.05,
        "expected calibration error {} on held-out posts",
        m.ece
    );
    assert!(m.average_precision > 0.8, "{m:?}");
}

#[test]
fn a_language_the_heads_never_saw_is_centred_on_the_stream_and_explanations_do_not_count() {
    let root = root();
    let encoder = Encoder::load(&ModelFiles::in_dir(model_dir()).unwrap()).unwrap();
    let classifier = Classifier::load(encoder, &root.join("models/danger")).unwrap();
    let card: Value =
        serde_json::from_slice(&std::fs::read(root.join("models/danger/model-card.json")).unwrap())
            .unwrap();
    let notes = card["notes"].to_string();
    assert!(notes.contains("centred on its language's mean"), "{notes}");
    assert!(
        !notes.contains(" de ("),
        "German must be new to the heads: {notes}"
    );
    let post = "Explosion im Chemiewerk am Hafen, dichter schwarzer Rauch, die Feuerwehr \
                evakuiert die umliegenden Straßen";
    let first = classifier.score(&[post]).unwrap()[0]["danger"];
    assert_eq!(classifier.stream_posts("de"), 1);
    assert_eq!(
        classifier.stream_posts("en"),
        0,
        "a training language keeps its mean"
    );
    // German posts of every kind come in: the language's own mean takes over.
    let calm = [
        "Heute Abend gehen wir mit den Kindern ins Kino und danach essen wir eine Pizza",
        "Der neue Roman meiner Lieblingsautorin ist endlich erschienen, ich freue mich sehr",
        "Am Wochenende soll es sonnig werden, perfekt für einen Ausflug an den See",
        "Wer kennt ein gutes Café in der Altstadt mit einer ruhigen Terrasse zum Lesen",
    ];
    let stream: Vec<&str> = calm.iter().cycle().take(60).copied().collect();
    classifier.score(&stream).unwrap();
    assert_eq!(classifier.stream_posts("de"), 61);
    // An explanation's variants are not posts of the stream.
    let analyser = Analyser::new(classifier, AnalyserConfig::default());
    let mut envelope = vec![vigie_record::fixtures::envelope("de-1", post)];
    analyser.analyse(&mut envelope).unwrap();
    let scoring = envelope[0].scoring.as_ref().unwrap();
    assert!(scoring.danger() >= 0.5, "{scoring:?}");
    assert!(!scoring.explanation.is_empty(), "{scoring:?}");
    let classifier = analyser.scorer();
    assert_eq!(
        classifier.stream_posts("de"),
        62,
        "only the post itself counts"
    );
    // The same post, read against German's own mean, scores otherwise than against the
    // training mean it started from.
    let later = classifier.score_variants(&[post]).unwrap()[0]["danger"];
    assert!((later - first).abs() > 1e-3, "{first} then {later}");
    assert_eq!(classifier.stream_posts("de"), 62);
}

#[test]
fn the_top_layers_run_apart_give_the_encoder_s_vectors() {
    // What `vigie experiment finetune` relies on: hidden states below the top layer, then a
    // trainable copy of it and the pooling, are the f32 encoder's vectors.
    let files = ModelFiles::in_dir(model_dir()).unwrap();
    let encoder = Encoder::load_with(&files, Runtime::F32).unwrap();
    let bert = encoder.bert().unwrap();
    let texts = [
        "Flooding on the main road, cars stuck",
        "Incendie dans un entrepôt à Lyon, fumée noire",
        "ok",
    ];
    let (ids, mask) = encoder.piece_tensors(&texts);
    let whole = bert.embed(&ids, &mask);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let top = bert.trainable_top(&vs.root(), 1).unwrap();
    let below = bert.hidden(&ids, &mask, bert.depth() - 1);
    let apart = tch::no_grad(|| bert.pooled_through(&top, below, &mask));
    let gap = (&whole - &apart).abs().max().double_value(&[]);
    assert!(gap < 1e-5, "largest difference {gap}");
    // The copy trains: gradients reach its weights.
    let below = bert.hidden(&ids, &mask, bert.depth() - 1);
    bert.pooled_through(&top, below, &mask)
        .sum(tch::Kind::Float)
        .backward();
    let grads: f64 = vs
        .trainable_variables()
        .iter()
        .map(|v| v.grad().abs().sum(tch::Kind::Float).double_value(&[]))
        .sum();
    assert!(grads > 0.0);
    // int8 weights cannot be trained.
    let int8 = Encoder::load_with(&files, Runtime::Int8).unwrap();
    let root = tch::nn::VarStore::new(tch::Device::Cpu);
    assert!(int8.bert().unwrap().trainable_top(&root.root(), 1).is_err());
}
