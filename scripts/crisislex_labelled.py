"""Derives Vigie's labelled training and evaluation files from CrisisLexT6 and CrisisLexT26.

Input:  ../shared/data/crisislex/CrisisLexT6/<crisis>/<crisis>-ontopic_offtopic.csv
        (tweet id quoted with ', tweet text, label on-topic|off-topic; MIT licence)
Output: fixtures/crisislex/<crisis>.jsonl, the labelled JSONL format of `vigie eval`.

Derivation (also stated in the model card):
- `danger` = 1 for on-topic tweets, 0 for off-topic ones. This is a weak label: CrisisLex's
  "on-topic" means "about the crisis", which includes sympathy and donations that Vigie's
  taxonomy does not count as danger.
- The crisis type gives the category: floods, hurricane and tornado -> `natural_hazard`;
  bombings and the fertiliser-plant explosion -> `explosion`. On-topic tweets are 1 for their
  crisis's category and unknown (absent) for the others; off-topic tweets are 0 for every label.
- Exact duplicate texts (retweets) are kept once per crisis, then a deterministic sample of
  PER_CRISIS tweets is drawn (the smallest SHA-256 of the tweet id), so that training and
  leave-one-crisis-out evaluation run in minutes on 2 cores.
- `created_at` comes from the tweet id (a Twitter snowflake): (id >> 22) + 1288834974657 ms.

CrisisLexT26 (the 13 training events of ../shared/data/crisislex/CrisisLexT26-train):
Output: fixtures/crisislex-t26/<crisis>.jsonl, every labelled tweet (about 1,000 per crisis).
- `danger` as its README says: 1 when Informativeness is "Related and informative" and the
  Information Type is Affected individuals, Infrastructure and utilities, Caution and advice or
  Other Useful Information (a report of the situation itself); 0 otherwise. Rows whose
  Informativeness is "Not applicable" carry no judgement and are left out.
- The event type (event_description.json) gives the category: earthquakes, floods, typhoon ->
  `natural_hazard`; bombings and explosions -> `explosion` (the refinery's also `fire`);
  wildfire -> `fire` and `natural_hazard`; haze -> none. A danger post is 1 for its crisis's
  categories, unknown for the others; a "Not related" post is 0 for every category; a related
  post that is not danger (sympathy, donations) is unknown for the categories (it is about the
  event without reporting it).
- The CrisisLex labels stay on each post: `info_type`, `info_source`, `informativeness`, and
  the event's type as `event`. No `lang`: `vigie eval --by lang` detects it, as ingest does.
- Exact duplicate texts are kept once per crisis; `created_at` from the snowflake as above.

Four crises are in both sets (Alberta floods, Boston bombings, Queensland floods, West Texas
explosion; their file names differ only in case): `vigie experiment loco` holds both out
together.

Rerun: python3 scripts/crisislex_labelled.py [T6_DIR [T26_DIR]]
"""

import csv
import datetime as dt
import hashlib
import json
import pathlib
import sys

PER_CRISIS = 2000
CATEGORIES = [
    "armed_violence", "explosion", "fire", "natural_hazard",
    "accident", "crowd_unrest", "threat",
]
CRISES = {
    "2012_Sandy_Hurricane": "natural_hazard",
    "2013_Alberta_Floods": "natural_hazard",
    "2013_Boston_Bombings": "explosion",
    "2013_Oklahoma_Tornado": "natural_hazard",
    "2013_Queensland_Floods": "natural_hazard",
    "2013_West_Texas_Explosion": "explosion",
}


def snowflake_time(tweet_id: int) -> str:
    ms = (tweet_id >> 22) + 1288834974657
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def main() -> None:
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/crisislex/CrisisLexT6")
    out_dir = pathlib.Path("fixtures/crisislex")
    out_dir.mkdir(parents=True, exist_ok=True)
    for crisis, category in CRISES.items():
        path = src / crisis / f"{crisis}-ontopic_offtopic.csv"
        seen, rows = set(), []
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)  # header
            for row in reader:
                if len(row) != 3:
                    continue
                raw_id, text, label = row[0].strip().strip("'"), row[1].strip(), row[2].strip()
                if not raw_id.isdigit() or label not in ("on-topic", "off-topic") or not text:
                    continue
                key = " ".join(text.lower().split())
                if key in seen:
                    continue
                seen.add(key)
                rows.append((raw_id, text, label))
        rows.sort(key=lambda r: hashlib.sha256(r[0].encode()).hexdigest())
        rows = sorted(rows[:PER_CRISIS], key=lambda r: int(r[0]))
        with open(out_dir / f"{crisis}.jsonl", "w", encoding="utf-8") as out:
            for raw_id, text, label in rows:
                on = label == "on-topic"
                labels = {"danger": int(on)}
                if on:
                    labels[category] = 1
                else:
                    labels.update({c: 0 for c in CATEGORIES})
                out.write(json.dumps({
                    "id": raw_id,
                    "text": text,
                    "created_at": snowflake_time(int(raw_id)),
                    "lang": "en",
                    "source": "crisislex",
                    "crisis": crisis,
                    "labels": labels,
                }, ensure_ascii=False) + "\n")
        on = sum(1 for r in rows if r[2] == "on-topic")
        print(f"{crisis}: {len(rows)} tweets ({on} on-topic) from {len(seen)} distinct")


T26_DANGER_TYPES = {
    "Affected individuals",
    "Infrastructure and utilities",
    "Caution and advice",
    "Other Useful Information",
}
T26_CATEGORIES = {
    "Earthquake": ["natural_hazard"],
    "Floods": ["natural_hazard"],
    "Typhoon": ["natural_hazard"],
    "Wildfire": ["fire", "natural_hazard"],
    "Bombings": ["explosion"],
    "Explosion": ["explosion"],
    "Haze": [],
}
# The refinery blast set it on fire for days.
T26_EXTRA = {"2012_Venezuela_refinery": ["explosion", "fire"]}


def t26(src: pathlib.Path) -> None:
    out_dir = pathlib.Path("fixtures/crisislex-t26")
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        crisis = folder.name
        with open(folder / f"{crisis}-event_description.json", encoding="utf-8") as f:
            event = json.load(f)["categorization"]["type"]
        categories = T26_EXTRA.get(crisis, T26_CATEGORIES.get(event))
        if categories is None:
            raise SystemExit(f"{crisis}: no category for event type {event!r}")
        seen, written, positives = set(), 0, 0
        with open(folder / f"{crisis}-tweets_labeled.csv", newline="", encoding="utf-8") as f, \
                open(out_dir / f"{crisis}.jsonl", "w", encoding="utf-8") as out:
            reader = csv.reader(f, skipinitialspace=True)
            next(reader)  # header
            rows = []
            for row in reader:
                if len(row) != 5:
                    continue
                raw_id, text, source, info_type, informativeness = (c.strip() for c in row)
                raw_id = raw_id.strip("'\"")
                if not raw_id.isdigit() or not text or informativeness == "Not applicable":
                    continue
                key = " ".join(text.lower().split())
                if key in seen:
                    continue
                seen.add(key)
                rows.append((raw_id, text, source, info_type, informativeness))
            for raw_id, text, source, info_type, informativeness in sorted(rows, key=lambda r: int(r[0])):
                danger = informativeness == "Related and informative" and info_type in T26_DANGER_TYPES
                labels = {"danger": int(danger)}
                if danger:
                    labels.update({c: 1 for c in categories})
                elif informativeness == "Not related":
                    labels.update({c: 0 for c in CATEGORIES})
                out.write(json.dumps({
                    "id": raw_id,
                    "text": text,
                    "created_at": snowflake_time(int(raw_id)),
                    "source": "crisislex-t26",
                    "crisis": crisis,
                    "event": event.lower(),
                    "info_type": info_type,
                    "info_source": source,
                    "informativeness": informativeness,
                    "labels": labels,
                }, ensure_ascii=False) + "\n")
                written += 1
                positives += danger
        print(f"{crisis} ({event}): {written} tweets, {positives} danger")


if __name__ == "__main__":
    main()
    t26(pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/crisislex/CrisisLexT26-train"))
