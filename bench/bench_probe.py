"""Beat the linear probe (issue 13): headstart's recipes against a tuned logistic probe.

For each data set, one seeded stratified split (60% train, 20% validation, 20% test) that every
recipe sees, and EfficientNet-Lite0 with its packaged ImageNet weights at its default input
size:

  digits   scikit-learn's digits (1,797 8x8 greyscale, 10 classes)    ``demo:digits``
  lfw      scikit-image's ``lfw_subset`` (200 25x25 greyscale, face / non-face)  ``demo:lfw``
  elpv     ELPV solar cells (PyPI ``elpv-dataset``, installed with ``--no-deps``): 2,624
           300x300 greyscale electroluminescence images; label = defect probability >= 0.5
           ("functional" / "defective"). Its licence is NON-COMMERCIAL (CC BY-NC-SA 4.0):
           it is used here to benchmark only, and headstart never ships, downloads or depends
           on it.

Recipes (rows; ``--recipes`` picks a comma-separated subset, by the names on the left):

  majority                  always the largest training class
  probe                     StandardScaler + LogisticRegressionCV(Cs=10, cv=5) on the last
                            pooled features, fit on train+val: the ten-line baseline to beat
                            (headstart's pooling, max, as the default recipe uses)
  probe-avg                 the same probe on average-pooled features (timm's own pooling,
                            what a user writing the probe by hand would likely get)
  default                   ``train(TrainConfig())``: the lesson head on the (average-pooled)
                            last features
  default-max               the lesson head on max-pooled last features (``--pooling max``, the
                            lesson's; the default pools by the average since issue 27)
  linear                    the linear probe (``--head linear``: L-BFGS logistic regression on
                            standardised average-pooled last features, C chosen on validation,
                            fit on train only)
  linear-max                the same probe on max-pooled last features
  multi-linear              features from every depth, linear probe
  multi-lesson              features from every depth, lesson head
  multi-linear-avgmax       multi-linear with ``stage_pooling="avg+max"``
  multi-linear-avgstd       multi-linear with ``stage_pooling="avg+std"``
  multi-linear-stages-all   multi-linear with ``feature_stages="all"``
  multi-linear-stages-auto  multi-linear with ``feature_stages="auto"``
  lp-ft                     LP-FT: ``--strategy fine-tune --unfreeze 1`` continuing the default
                            run (which is then trained too, and saved to a temporary folder)
  tta                       the default with test-time augmentation (``tta=True``)
  auto                      ``train_auto(TrainConfig(strategy="auto"))`` with its default
                            ``budget`` (or ``--budget`` minutes); the kept candidate is printed
  auto-one                  auto on the one backbone: ``ensemble_backbones="none"`` (no
                            other backbone's pass, candidates or ensemble members)

Each row: test accuracy with a 95% Clopper-Pearson (exact binomial) interval and wall seconds.
With ``--warm``, the recipes of a data set share one feature cache, filled first by one
every-depth forward pass over every split (which caches the max- and average-pooled last
features too), so a row's seconds are its own work on cached features; the recipes named by
``--cold`` (default: default, probe-avg, auto) still start from a cold cache, so that their
seconds are a first run's, and every row records ``cache`` ("cold" or "warm"). Without
``--warm``, every recipe that runs the network starts from a cold feature cache (a fresh
``HEADSTART_CACHE_DIR`` and an empty in-memory cache), and its seconds run from the start of
training (the probe: from building the backbone) to the test predictions, extraction included:
the time a user's first run takes. The lp-ft row's seconds are the continuation's alone
(``seconds_with_parent`` adds the default run it continues). Test predictions go through
``headstart.core.evaluate.run_probabilities`` (so TTA counts). A recipe whose configuration equals
an earlier row's (a variant that is the default setting) reuses that row, marked ``same_as``.

Output on stdout: a JSON line describing each data set's split, one JSON line per row as it
finishes, the default/probe time ratio per data set (target: at most 2), then a summary JSON
(its rows; also written to bench/results/probe.json with the date, machine, load and command)
and a markdown table for BENCHMARKS.md. headstart's own messages go to stderr.

    python bench/bench_probe.py --datasets digits,lfw,elpv
    python bench/bench_probe.py --datasets elpv --recipes majority,probe,default
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from results import record

BACKBONE = "tf_efficientnet_lite0"
DATASETS = ("digits", "lfw", "elpv")
ELPV_CLASSES = ("functional", "defective")

#: recipe name -> (row label, TrainConfig overrides); majority, the probes, lp-ft and auto are
#: special-cased in bench_dataset.
RECIPES: dict[str, tuple[str, dict | None]] = {
    "majority": ("majority class", None),
    "probe": ("tuned logistic probe (last features)", None),
    "probe-avg": ("tuned logistic probe (last features, avg pooling)", None),
    "default": ("default (lesson head, last features)", {}),
    "default-max": ("lesson head, max-pooled last features (the lesson's)", {"pooling": "max"}),
    "linear": ("linear probe (avg-pooled last features, C on validation)", {"head": "linear"}),
    "linear-max": (
        "linear probe on max-pooled last features",
        {"head": "linear", "pooling": "max"},
    ),
    "multi-linear": ("every depth + linear probe", {"features": "multi", "head": "linear"}),
    "multi-lesson": ("every depth + lesson head", {"features": "multi"}),
    "multi-linear-avgmax": (
        "every depth + linear, avg+max pooling",
        {"features": "multi", "head": "linear", "stage_pooling": "avg+max"},
    ),
    "multi-linear-avgstd": (
        "every depth + linear, avg+std pooling",
        {"features": "multi", "head": "linear", "stage_pooling": "avg+std"},
    ),
    "multi-linear-stages-all": (
        "every depth + linear, all stages",
        {"features": "multi", "head": "linear", "feature_stages": "all"},
    ),
    "multi-linear-stages-auto": (
        "every depth + linear, stages auto",
        {"features": "multi", "head": "linear", "feature_stages": "auto"},
    ),
    "lp-ft": ("LP-FT (fine-tune --unfreeze 1 from default)", None),
    "tta": ("default + TTA", {"tta": True}),
    "auto": ("auto", None),
    "auto-one": ("auto, one backbone (--ensemble-backbones none)", None),
}


# --------------------------------------------------------------------------- data


def elpv_source():
    """ELPV as a headstart DataSource (benchmark only: non-commercial licence, never shipped)."""
    from elpv_dataset.utils import load_dataset

    from headstart import from_arrays

    images, proba, _types = load_dataset()
    labels = (proba >= 0.5).astype(np.int64)  # 0 functional, 1 defective
    return from_arrays(images, labels, class_names=ELPV_CLASSES)


def load_splits(name: str):
    from headstart.core.data import load_data

    location = elpv_source() if name == "elpv" else f"demo:{name}"
    return load_data(location, val_split=0.2, test_split=0.2, seed=0)


def describe_splits(name: str, splits) -> dict:
    first = splits.train.array[0] if splits.train.array is not None else None
    return {
        "dataset": name,
        "classes": list(splits.class_names),
        "image_shape": list(first.shape) if first is not None else None,
        "image_dtype": str(first.dtype) if first is not None else None,
        **{f"n_{split}": len(s) for split, s in splits.items().items()},
        **{
            f"class_counts_{split}": dict(zip(splits.class_names, map(int, s.class_counts())))
            for split, s in splits.items().items()
        },
    }


# --------------------------------------------------------------------------- measuring


@contextlib.contextmanager
def cold_cache(root: Path) -> Iterator[None]:
    """A fresh, empty feature cache (disk and memory) for one recipe; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="cache-", dir=root))
    try:
        with cache_at(folder):
            yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def cache_at(folder: Path) -> Iterator[None]:
    """The feature cache in ``folder`` (kept: the warm rows of a data set share it)."""
    from headstart.core.cache import clear_memory_cache

    before = os.environ.get("HEADSTART_CACHE_DIR")
    os.environ["HEADSTART_CACHE_DIR"] = str(folder)
    clear_memory_cache()
    try:
        yield
    finally:
        clear_memory_cache()
        if before is None:
            del os.environ["HEADSTART_CACHE_DIR"]
        else:
            os.environ["HEADSTART_CACHE_DIR"] = before


def say(message: str) -> None:
    """headstart's own messages go to stderr: stdout stays one JSON line per row."""
    print(message, file=sys.stderr, flush=True)


def test_predictions(run, splits) -> np.ndarray:
    from headstart.core.evaluate import run_probabilities

    proba, valid, _ = run_probabilities(run, splits.test)
    assert valid.all(), "unreadable test images"
    return proba.argmax(1)


def make_row(recipe: str, splits, pred: np.ndarray, seconds: float, **extra) -> dict:
    from headstart.core.statistics import accuracy_interval

    y = splits.test.labels
    ci = accuracy_interval(int(np.sum(y == pred)), len(y))  # Clopper-Pearson
    return {
        "recipe": recipe,
        "label": RECIPES[recipe][0],
        "test_accuracy": round(float(np.mean(y == pred)), 4),
        "ci95": [round(v, 4) for v in ci],
        "seconds": round(seconds, 1),
        **extra,
    }


def run_probe(
    splits, pooling: str = "max", image_size: int | None = None
) -> tuple[np.ndarray, float, dict]:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from headstart.modalities.image.backbones import create_backbone
    from headstart.modalities.image.features import FeatureExtractor

    t = time.perf_counter()
    ex = FeatureExtractor(
        create_backbone(BACKBONE, pooling=pooling, image_size=image_size), progress=False
    )
    x = np.concatenate([ex.extract(splits.train).features, ex.extract(splits.val).features])
    x_test = ex.extract(splits.test).features
    y = np.concatenate([splits.train.labels, splits.val.labels])
    extracted = time.perf_counter()
    probe = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=10, cv=5, max_iter=3000))
    probe.fit(x, y)
    pred = probe.predict(x_test)
    end = time.perf_counter()
    return (
        pred,
        end - t,
        {
            "pooling": pooling,
            "extract_seconds": round(extracted - t, 1),
            "fit_seconds": round(end - extracted, 1),
            "C": round(float(np.atleast_1d(probe[-1].C_)[0]), 4),
        },
    )


def warm_pass(splits, image_size: int | None) -> float:
    """One every-depth forward pass over every split into the current cache (the max- and
    average-pooled last features are cached with it); returns its seconds."""
    from headstart.core.config import TrainConfig
    from headstart.core.model import backbone_for
    from headstart.modalities.image.features import FeatureExtractor

    t = time.perf_counter()
    cfg = TrainConfig(features="multi", image_size=image_size).for_modality("image")
    ex = FeatureExtractor(backbone_for(cfg), progress=False)
    for images in splits.items().values():
        ex.extract(images)
    return time.perf_counter() - t


def bench_dataset(
    name: str,
    recipes: list[str],
    tmp: Path,
    budget: float | None,
    emit,
    image_size: int | None = None,
    warm: bool = False,
    cold: tuple[str, ...] = (),
) -> list[dict]:
    from headstart.api import train
    from headstart.core.advise import train_auto
    from headstart.core.config import TrainConfig

    splits = load_splits(name)
    emit(describe_splits(name, splits))
    rows: list[dict] = []
    by_config: dict[str, dict] = {}  # a configuration already measured on this data set
    shared = None
    if warm:  # one cache for the data set's warm rows, filled by one forward pass
        shared = Path(tempfile.mkdtemp(prefix="warm-", dir=tmp))
        with cache_at(shared):
            emit({"dataset": name, "warm_pass_seconds": round(warm_pass(splits, image_size), 1)})

    def cache_for(recipe: str):
        if shared is None or recipe in cold:
            return cold_cache(tmp)
        return cache_at(shared)

    def add(row: dict) -> None:
        row.update(dataset=name, n_test=len(splits.test))
        if row.get("seconds") and row["recipe"] != "majority":
            row.setdefault(
                "cache", "warm" if shared is not None and row["recipe"] not in cold else "cold"
            )
        rows.append(row)
        emit(row)

    default_dir = tmp / f"{name}-default"
    default_seconds = None
    for recipe in recipes:
        label, overrides = RECIPES[recipe]
        if recipe == "majority":
            majority = int(np.argmax(splits.train.class_counts()))
            add(make_row(recipe, splits, np.full_like(splits.test.labels, majority), 0.0))
            continue
        if recipe in ("probe", "probe-avg"):
            with cache_for(recipe):
                pooling = "avg" if recipe == "probe-avg" else "max"
                pred, seconds, extra = run_probe(splits, pooling, image_size)
            add(make_row(recipe, splits, pred, seconds, **extra))
            continue
        if recipe in ("auto", "auto-one"):
            config = TrainConfig(
                strategy="auto",
                image_size=image_size,
                **({} if budget is None else {"budget": budget}),
                **({"ensemble_backbones": "none"} if recipe == "auto-one" else {}),
            )
            defaults = TrainConfig().to_dict()
            with cache_for(recipe):
                t = time.perf_counter()
                run = train_auto(config, data=splits, save=False, progress=False, say=say)
                pred = test_predictions(run, splits)
                seconds = time.perf_counter() - t
            row = make_row(
                recipe,
                splits,
                pred,
                seconds,
                budget_minutes=config.budget,
                kept=run.strategy.label(),
                kept_config={  # the kept run's settings that differ from the defaults
                    k: v
                    for k, v in run.config.to_dict().items()
                    if v != defaults[k] and k != "parent"
                },
                auto=run.metrics["auto"],
            )
            row["label"] = f"{label} (budget {config.budget} min)"
            if run.cost_note():  # an ensemble: what an image costs against one member
                row["cost"] = run.cost_note()
            add(row)
            continue
        if recipe == "lp-ft":
            config = TrainConfig(strategy="fine-tune", unfreeze=1, parent=str(default_dir))
        else:
            config = TrainConfig(**{"image_size": image_size, **overrides})
        key = json.dumps(config.to_dict(), sort_keys=True)
        if key in by_config:
            same = by_config[key]
            add({**same, "recipe": recipe, "label": label, "same_as": same["recipe"]})
            continue
        with cache_for(recipe):
            t = time.perf_counter()
            if recipe == "default":  # saved: lp-ft continues it
                run = train(
                    config, data=splits, out=default_dir, progress=False, report=False, say=say
                )
            else:
                run = train(config, data=splits, save=False, progress=False, say=say)
            pred = test_predictions(run, splits)
            seconds = time.perf_counter() - t
        extra = {
            "epochs_run": len(run.history.epochs),
            "best_epoch": run.history.best_epoch,
            "timing": run.metrics.get("timing"),  # extraction vs training, as train recorded
            "pooling": run.config.pooling,
        }
        if run.metrics.get("probe"):  # the linear probe: its C and fit
            probe = run.metrics["probe"]
            extra["probe"] = {k: probe[k] for k in ("C", "converged", "seconds")}
        if recipe == "default":
            default_seconds = seconds
        if recipe == "lp-ft":
            extra["seconds_with_parent"] = round(seconds + default_seconds, 1)
        row = make_row(recipe, splits, pred, seconds, **extra)
        by_config[key] = row
        add(row)
    secs = {r["recipe"]: r["seconds"] for r in rows if r.get("cache") != "warm"}
    for probe in ("probe-avg", "probe"):  # issue 27: the average-pooled probe's time
        if probe in secs and "default" in secs:
            emit(
                {
                    "dataset": name,
                    f"default_over_{probe}_seconds": round(secs["default"] / secs[probe], 2),
                    "target": "<= 2",
                }
            )
            break
    if shared is not None:
        shutil.rmtree(shared, ignore_errors=True)
    return rows


# --------------------------------------------------------------------------- output


def markdown_table(rows: list[dict], datasets: list[str]) -> str:
    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    cells = {(r["recipe"], r["dataset"]): r for r in rows}
    n_test = {r["dataset"]: r["n_test"] for r in rows}
    head = [f"{d} (n={n_test[d]})" for d in datasets if d in n_test]
    lines = ["| recipe | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for recipe in recipes:
        label = next(r["label"] for r in rows if r["recipe"] == recipe)
        out = []
        for d in datasets:
            if d not in n_test:
                continue
            r = cells.get((recipe, d))
            if r is None:
                out.append("not run")
                continue
            lo, hi = r["ci95"]
            same = f" = {r['same_as']}" if r.get("same_as") else ""
            out.append(
                f"{100 * r['test_accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] "
                f"({r['seconds']:.0f} s){same}"
            )
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def machine() -> dict:
    import torch

    from headstart.core.config import resolve_device

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "device": resolve_device("auto"),
        "torch": torch.__version__,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--datasets", default=",".join(DATASETS), help="comma-separated: digits,lfw,elpv"
    )
    ap.add_argument(
        "--recipes", default="all", help="comma-separated recipe names (see above), or all"
    )
    ap.add_argument(
        "--budget", type=float, default=None, help="auto's budget in minutes (default: its own)"
    )
    ap.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="input size in pixels for every recipe, the probe included (default: the "
        "backbone's own)",
    )
    ap.add_argument(
        "--name",
        default=None,
        help="result file bench/results/NAME.json (default: probe, or probe-SIZE with "
        "--image-size)",
    )
    ap.add_argument(
        "--warm",
        action="store_true",
        help="the recipes of a data set share one feature cache, filled by one every-depth "
        "pass first (except --cold ones)",
    )
    ap.add_argument(
        "--cold",
        default="default,probe-avg,auto,auto-one",
        help="with --warm: the recipes that still start from a cold cache (their seconds are "
        "a first run's)",
    )
    args = ap.parse_args()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    recipes = (
        list(RECIPES) if args.recipes == "all" else [r.strip() for r in args.recipes.split(",")]
    )
    unknown = [d for d in datasets if d not in DATASETS] + [r for r in recipes if r not in RECIPES]
    if unknown:
        ap.error(f"unknown data set or recipe: {', '.join(unknown)}")
    if "lp-ft" in recipes and "default" not in recipes:
        recipes.append("default")  # lp-ft continues the default run, which is then measured too
    recipes = [r for r in RECIPES if r in recipes]  # the documented order

    def emit(obj: dict) -> None:
        print(json.dumps(obj, default=str), flush=True)

    from headstart.modalities.image.backbones import create_backbone

    create_backbone(BACKBONE)  # one-off import and weight-loading costs, outside every timing
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="hs-probe-") as tmp:
        for name in datasets:
            rows += bench_dataset(
                name,
                recipes,
                Path(tmp),
                args.budget,
                emit,
                args.image_size,
                warm=args.warm,
                cold=tuple(r.strip() for r in args.cold.split(",") if r.strip()),
            )
    result = {
        "backbone": f"{BACKBONE} (ImageNet, packaged weights)",
        "device": machine()["device"],
        "split": "stratified 60/20/20, seed 0",
        "image_size": args.image_size or "the backbone's own",
        "cache": "warm rows share one cache per data set; cold: " + args.cold
        if args.warm
        else "cold for every row",
        "rows": rows,
    }
    print(json.dumps(result, indent=2, default=str))
    name = args.name or (f"probe-{args.image_size}" if args.image_size else "probe")
    record(__file__, result, name=name)
    print()
    print(markdown_table(rows, datasets))


if __name__ == "__main__":
    main()
