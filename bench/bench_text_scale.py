"""Text (issue 26): does every text run keep its time at the sizes the targets name?

Targets: the default text run under a minute for a thousand short texts; every ``--strategy
auto`` run within 10 minutes on up to 5,000 short texts or 500 long documents (2 CPU cores).
No real labelled set of those sizes is at hand, so this script builds them from real text, for
timing: their accuracies are printed but mean little (the texts are recombined from a smaller
pool and test texts resemble training ones).

  short1000   1,000 texts, each a drug review (``bench_text.py``'s data, both files) with its
              sentences shuffled and a random number of them kept (seeded), its label kept
  short5000   5,000 such texts
  long500     500 documents, each a random contiguous span of 50-100% of the words of one of
              the 189 convention speeches (``../shared/data``), its party kept: median about
              as long as the speeches' (several encoder windows each)

Each set is timed end to end from a cold feature cache, the encoder's loading excluded (done
once before): ``headstart train`` with its defaults (frozen all-MiniLM-L6-v2, ``--blend auto``:
the classic baseline, the mix and the joint model included), and ``--strategy auto`` with its
default budget. Every row records its wall seconds, the run's own timing (feature extraction,
training) and, for auto, what it kept and what it skipped for time.

    python bench/bench_text_scale.py [--sets short1000,short5000,long500] [--skip-auto]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_text import drug_reviews
from bench_text_baseline import SPEECHES
from results import record


def _write(out: Path, rows) -> Path:
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return out


def short_texts(n: int, folder: Path, seed: int = 0) -> Path:
    """``n`` texts recombined from the drug reviews' sentences (see the module docstring)."""
    with open(drug_reviews(folder), encoding="utf-8", newline="") as f:
        pool = [(r["text"], r["label"]) for r in csv.DictReader(f, delimiter="\t")]
    rng = np.random.default_rng(seed)

    def one(text: str, label: str) -> list[str]:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s]
        rng.shuffle(sentences)
        return [" ".join(sentences[: int(rng.integers(1, len(sentences) + 1))]), label]

    drawn = rng.integers(len(pool), size=n)
    return _write(folder / f"short{n}.csv", [one(*pool[i]) for i in drawn])


def long_documents(n: int, folder: Path, seed: int = 0) -> Path:
    """``n`` spans of the convention speeches (see the module docstring)."""
    with open(SPEECHES, encoding="utf-8", newline="") as f:
        pool = [(r["text"].split(), r["label"]) for r in csv.DictReader(f)]
    rng = np.random.default_rng(seed)

    def one(words: list[str], label: str) -> list[str]:
        size = max(1, int(len(words) * rng.uniform(0.5, 1.0)))
        start = int(rng.integers(0, len(words) - size + 1))
        return [" ".join(words[start : start + size]), label]

    drawn = rng.integers(len(pool), size=n)
    return _write(folder / f"long{n}.csv", [one(*pool[i]) for i in drawn])


def timed(name: str, data: Path, tmp: Path, auto: bool) -> dict:
    """One run on ``data`` from a cold cache: its wall seconds and what it did."""
    from headstart.api import train
    from headstart.core.advise import train_auto
    from headstart.core.cache import clear_memory_cache
    from headstart.core.classic import forget_fitted
    from headstart.core.config import TrainConfig

    os.environ["HEADSTART_CACHE_DIR"] = str(tmp / f"cache-{name}-{auto}")
    clear_memory_cache()
    forget_fitted()  # the baseline and joint model of the default run on the same split
    start = time.perf_counter()
    if auto:
        run = train_auto(
            TrainConfig(data=str(data), strategy="auto"), save=False, progress=False, say=print
        )
    else:
        run = train(TrainConfig(data=str(data)), save=False, progress=False, say=lambda *_: None)
    seconds = time.perf_counter() - start
    m = run.metrics
    blend = m.get("blend", {})
    out = {
        "data": name,
        "recipe": "auto" if auto else "default",
        "seconds": round(seconds, 1),
        "n": m["n_examples"],
        "timing": m["timing"],
        "model": run.describe_model(),
        "blend": blend.get("kind", "mix") if blend.get("tried") else "none",
        "joint_seconds": (blend.get("joint") or {}).get("seconds"),
        "classic_seconds": m["classic_baseline"]["fit"]["seconds"],
        "test_accuracy": round(m["headline"]["accuracy"], 4),
        "truncation": {k: m["truncation"][k] for k in ("texts", "longer", "share")},
    }
    if auto:
        a = m["auto"]["auto"]
        out["budget_minutes"] = m["auto_budget"]
        out["kept"] = a["kept"]
        out["candidates"] = [
            {k: c.get(k) for k in ("candidate", "status", "seconds", "val_accuracy", "reason")}
            for c in a["candidates"]
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="short1000,short5000,long500")
    ap.add_argument("--skip-auto", action="store_true", help="the default runs only")
    args = ap.parse_args()
    from headstart.modalities.text.encoder import load_text_encoder

    load_text_encoder("minilm")  # one-off import and loading costs, outside every timing
    rows = []
    with tempfile.TemporaryDirectory(prefix="hs-scale-") as folder:
        tmp = Path(folder)
        for name in args.sets.split(","):
            kind, n = re.fullmatch(r"(short|long)(\d+)", name).groups()
            data = (short_texts if kind == "short" else long_documents)(int(n), tmp)
            for auto in (False, True):
                if auto and (args.skip_auto or name == "short1000"):
                    continue
                rows.append(timed(name, data, tmp, auto))
                print(json.dumps(rows[-1]), flush=True)
    record(__file__, {"rows": rows})
    print("\n| data | run | texts (train/val/test) | seconds | kept | blend |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        n = r["n"]
        print(
            f"| {r['data']} | {r['recipe']} | {n['train']}/{n['val']}/{n.get('test', 0)} | "
            f"{r['seconds']:.0f} | {r.get('kept', '-')} | {r['blend']} |"
        )


if __name__ == "__main__":
    main()
