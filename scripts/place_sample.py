#!/usr/bin/env python3
"""Draw the sample of CrisisLexT26 posts used to measure Vigie's place resolver.

Reads every ``fixtures/crisislex-t26/*.jsonl`` (one labelled post per line), keeps the posts
whose CrisisLex ``informativeness`` is neither "Not related" nor "Not labeled", and picks 20
posts per crisis: the 20 whose sha256(id) hex digest is smallest. Writes them to stdout as
JSONL with fields {"id", "crisis", "text"}, sorted by crisis, then by that digest.

Deterministic, standard library only:

    python3 scripts/place_sample.py > /tmp/sample.jsonl

The "lang" and "places" fields of ``fixtures/places/crisislex-t26-places.jsonl`` were added
BY HAND afterwards, by reading each text (see ``fixtures/places/README.md``); this script does
not produce them.
"""
import glob
import hashlib
import json
import os
import sys

PER_CRISIS = 20
EXCLUDED = {"Not related", "Not labeled"}


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    pattern = os.path.join(root, "fixtures", "crisislex-t26", "*.jsonl")
    by_crisis = {}
    for path in sorted(glob.glob(pattern)):
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                post = json.loads(line)
                if post.get("informativeness") in EXCLUDED:
                    continue
                digest = hashlib.sha256(str(post["id"]).encode("utf-8")).hexdigest()
                by_crisis.setdefault(post["crisis"], []).append((digest, post))
    out = sys.stdout
    for crisis in sorted(by_crisis):
        for digest, post in sorted(by_crisis[crisis], key=lambda t: t[0])[:PER_CRISIS]:
            out.write(json.dumps({"id": post["id"], "crisis": crisis, "text": post["text"]},
                                 ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
