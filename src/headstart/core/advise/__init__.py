"""Decide for the user: which backbone (ranked on their data before training) and how much of
it to retrain (the four scenarios, computed). ``headstart advise`` reports; ``headstart train
--backbone auto --strategy auto`` acts on it."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from headstart.choices import RANK_BY
from headstart.core.advise.scores import knn_accuracy, logme, probe_accuracy
from headstart.core.checks import parse_candidate
from headstart.core.data import Splits
from headstart.core.extractors import available_encoders, extractor_for, load_encoder
from headstart.core.modality import modality_of
from headstart.core.scenarios import Advice, recommend, transfer_gain
from headstart.core.tasks import label_counts
from headstart.errors import BackboneError, ConfigError

log = logging.getLogger(__name__)

#: Training examples the advice's two probes (pretrained and random-weight features) compare
#: on. The advice asks a coarse question (do pretrained features remove half the random
#: features' errors?), which a 5-fold probe on 300 examples answers (its accuracy's standard
#: error there is under 3 points), and a random-weight pass over all of them cost 121 s of
#: auto's 8-minute budget on 3,469 short texts (``bench/results/text_scale.json``).
CONTROL_SAMPLE = 300


def control_sample(labels: np.ndarray, size: int | None = None, seed: int = 0) -> np.ndarray:
    """Sorted positions of a stratified, seeded sample of at most ``size`` of ``labels``
    (default :data:`CONTROL_SAMPLE`; all of them when there are no more)."""
    size = CONTROL_SAMPLE if size is None else size
    n = len(labels)
    if n <= size:
        return np.arange(n)
    from sklearn.model_selection import train_test_split

    try:
        if np.ndim(labels) == 2:  # several labels per example: iterative stratification
            from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

            split = MultilabelStratifiedShuffleSplit(n_splits=1, train_size=size, random_state=seed)
            rows, _ = next(split.split(np.zeros((n, 1)), labels))
        else:
            rows, _ = train_test_split(
                np.arange(n), train_size=size, stratify=labels, random_state=seed
            )
    except ValueError:  # a class too small to stratify: a plain seeded sample
        rows = np.random.default_rng(seed).choice(n, size=size, replace=False)
    return np.sort(rows)


def control_view(examples):
    """``examples`` named as a random-weight control's, so its progress line says what it
    is (``features train, random-weight control: ...``); the cache key does not change."""
    return replace(examples, name=f"{examples.name}, random-weight control")


def rank_backbones(
    splits: Splits,
    candidates: Sequence[str] | None = None,
    *,
    image_size: int | None = None,
    weights: str = "imagenet",
    pooling: str = "auto",
    resize: str = "pad",
    rank_by: str = "logme",
    max_length: int | None = None,
    every_depth=None,
) -> list[dict]:
    """Score each candidate's frozen features on the training split; best first.

    Features go through the same cache as training, so training the winner afterwards costs
    no extra forward pass. ``every_depth`` (a ``FeatureSpec`` of every-depth features, for
    data that has them): each candidate's pass computes those, which hold its last features
    (cached beside them), so that ``--strategy auto``'s every-depth candidates of the winner
    read the same pass.
    """
    if rank_by not in RANK_BY:
        raise ConfigError(f"rank_by must be one of {', '.join(RANK_BY)}; got {rank_by!r}.")
    modality = splits.train.modality
    names = list(candidates) if candidates else available_encoders(modality)
    if not names:
        raise BackboneError(f"no {modality} network with offline weights found; pass --candidates.")
    rows = []
    y = splits.train.labels
    for text in names:
        name, size, random = parse_candidate(text)
        start = time.perf_counter()
        w = "none" if random else weights
        torch.manual_seed(0)  # a random-weight control is the same network every time
        settings = {
            "weights": w,
            "pooling": pooling,
            "image_size": size or image_size,
            "resize": resize,
            "max_length": max_length,
        }
        loaded = load_encoder(modality, name, **settings)
        train = control_view(splits.train) if random else splits.train
        if every_depth is not None and not random:  # one pass for both kinds of features
            torch.manual_seed(0)  # (random weights: the same network as ``loaded``)
            deep = load_encoder(modality, name, **settings, features=every_depth)
            extractor_for(deep).extract(train)
        fs = extractor_for(loaded).extract(train)
        feats = np.asarray(fs.features[fs.valid], dtype=np.float64)
        labels = y[fs.valid]
        extract_s = time.perf_counter() - start
        score_start = time.perf_counter()
        row = {
            "name": text,
            "timm_name": loaded.timm_name,
            "random": random,
            "weights": loaded.weights.describe(),
            "input": loaded.preprocessing.short(),
            "parameters": sum(p.numel() for p in loaded.backbone.parameters()),
            "num_features": int(feats.shape[1]),
            "logme": logme(feats, labels),
            "probe": probe_accuracy(feats, labels),
            "knn": knn_accuracy(feats, labels),
            "feature_seconds": round(extract_s, 2),
            "feature_cache": fs.hit or "computed",
        }
        row["score_seconds"] = round(time.perf_counter() - score_start, 2)
        rows.append(row)
    rows.sort(key=lambda r: -np.nan_to_num(r[rank_by], nan=-np.inf))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def measure_similarity(
    splits: Splits,
    backbone: str,
    *,
    image_size: int | None = None,
    pooling: str = "auto",
    resize: str = "pad",
    weights: str = "imagenet",
    max_length: int | None = None,
) -> dict:
    """Probe accuracy on pretrained vs random-weight features of the same backbone, both on
    the same stratified sample of at most :data:`CONTROL_SAMPLE` training examples, and what
    each extraction cost (``feature_seconds`` over ``feature_examples``; ``feature_cache``:
    computed, or where it was read from). The pretrained features are extracted for every
    training example (training reads them from the cache next); the random-weight control, a
    network that serves nothing else, only for the sample."""
    accs, used, seconds, hits, counts = {}, None, {}, {}, {}
    sample = control_sample(splits.train.labels)
    for kind, w in (("pretrained", weights), ("random", "none")):
        torch.manual_seed(0)
        loaded = load_encoder(
            splits.train.modality,
            backbone,
            weights=w,
            pooling=pooling,
            image_size=image_size,
            resize=resize,
            max_length=max_length,
        )
        if kind == "random":
            train = control_view(splits.train.subset(sample, name=splits.train.name))
            rows = np.arange(len(sample))
        else:
            train, rows = splits.train, sample
        fs = extractor_for(loaded).extract(train)
        seconds[kind], hits[kind], counts[kind] = (
            round(fs.seconds, 3),
            fs.hit or "computed",
            len(train),
        )
        valid = fs.valid[rows]
        accs[kind] = probe_accuracy(
            np.asarray(fs.features[rows[valid]]), splits.train.labels[sample[valid]]
        )
        if kind == "pretrained":
            used = fs.valid
    return {
        # the training images that decoded: what the advice counts (unreadable files do not)
        "train_class_counts": label_counts(
            splits.train.labels[used], len(splits.class_names)
        ).tolist(),
        "probe_pretrained": accs["pretrained"],
        "probe_random": accs["random"],
        "transfer_gain": transfer_gain(accs["pretrained"], accs["random"]),
        "feature_seconds": seconds,
        "feature_examples": counts,
        "feature_cache": hits,
        "n_train": len(splits.train),
        "probe_sample": len(sample),
    }


def advise(
    splits: Splits,
    backbone: str,
    *,
    image_size: int | None = None,
    pooling: str = "auto",
    resize: str = "pad",
    weights: str = "imagenet",
    max_length: int | None = None,
) -> Advice:
    """The four-scenario recommendation for ``backbone`` on this data."""
    sim = measure_similarity(
        splits,
        backbone,
        image_size=image_size,
        pooling=pooling,
        resize=resize,
        weights=weights,
        max_length=max_length,
    )
    torch.manual_seed(0)
    network = load_encoder(splits.train.modality, backbone, weights="none").backbone
    smap = network.stage_map()
    kind = modality_of(splits.train)  # how its examples, stages and blocks are called
    advice = recommend(
        np.asarray(sim["train_class_counts"]),
        sim["transfer_gain"],
        len(smap.blocks),
        noun=kind.noun,
        block=kind.block_word,
        stage=kind.stage_word,
        # several labels per example: the counts are of labels, not of examples
        n_examples=sim["n_train"] if np.ndim(splits.train.labels) == 2 else None,
    )
    # the network's shape: what share of it a candidate trains (``--strategy auto``'s costs)
    advice.measurements = {
        "backbone": backbone,
        **sim,
        "stages": len(smap.stages),
        "blocks": len(smap.blocks),
    }
    return advice


def train_auto(
    config,
    *,
    data=None,
    out: str | Path | None = None,
    save: bool = True,
    overwrite: bool = False,
):
    """``--backbone auto`` and/or ``--strategy auto``: rank, advise, climb the ladder of
    candidates within ``config.budget`` minutes, keep the best on validation
    (:mod:`headstart.core.advise.auto`).

    With ``save`` the kept run ends in ``out`` (an earlier headstart run there is replaced
    atomically, only with ``overwrite``; a folder that is not a headstart run is refused and
    never touched); when it continues a frozen run, that run is saved beside it as
    ``OUT-frozen``. Without ``save`` nothing is kept on disk and the decisions are in
    ``run.metrics["auto"]``.

    Runs in one process: its candidates are small trainings chosen one after another, and a
    distributed run (``headstart train --nproc``) names its backbone and strategy.
    """
    from headstart.core import distributed
    from headstart.core.training import (
        check_out,
        default_run_dir,
        for_data,
        split_data,
        train,
    )

    if distributed.current().distributed:
        raise ConfigError(distributed.AUTO_SINGLE_PROCESS)
    if save:
        named = replace(for_data(config, data), strategy="auto")  # (the data's network)
        out = Path(out) if out is not None else default_run_dir(named)
        check_out(out, overwrite=overwrite)  # before any work
    splits = split_data(config, data)
    asked_pooling = config.pooling  # (auto: each candidate's head pools its own way)
    config = config.for_modality(splits.train.modality)
    decisions: dict = {"noun": splits.train.noun}  # how the pages name an example
    if config.backbone == "auto":
        config = _auto_backbone(config, splits, decisions)
    if config.strategy != "auto":
        run = train(config, out=out, save=save, data=splits, overwrite=overwrite)
        if save:
            from headstart.core.report import write_run_report

            write_run_report(run, splits)
        return _record(run, decisions, splits) if decisions else run
    from headstart.core.advise.auto import Budget, ladder

    budget = Budget(config.budget)
    advice, frozen_pass, advice_seconds = _advised(config, splits, budget)
    decisions["advice"] = advice.to_dict()
    parent_dir = out.with_name(out.name + "-frozen") if save else None
    if parent_dir is not None:
        check_out(parent_dir, overwrite=overwrite)
    keep = _staging(parent_dir) if parent_dir is not None else None
    run, decisions["auto"] = ladder(
        config,
        splits,
        advice,
        budget=budget,
        keep_dir=keep,
        frozen_pass=frozen_pass,
        advice_seconds=advice_seconds,
        pooling_asked=asked_pooling,
    )
    if save:
        _save_kept(run, out, parent_dir, splits, decisions)
    return _record(run, decisions, splits)


def _auto_backbone(config, splits: Splits, decisions: dict):
    """``--backbone auto``: the candidates ranked by LogME on the data (the ranking into
    ``decisions``); the configuration with the first."""
    can = splits.train.capabilities
    names = [c.strip() for c in config.candidates.split(",")] if config.candidates else None
    ranking = rank_backbones(
        splits,
        names,
        image_size=config.image_size,
        weights=config.weights,
        pooling=config.pooling,
        resize=config.resize,
        max_length=config.max_length,
        every_depth=replace(config, features="multi").feature_spec()
        if config.strategy == "auto" and config.cache and "every-depth" in can
        else None,
    )
    best = next((r for r in ranking if not r["random"]), None)
    if best is None:
        raise ConfigError("--candidates: every candidate is a random-weight control.")
    decisions["ranking"] = ranking
    log.info(f"backbone auto: {best['name']} ranks first of {len(ranking)} by LogME")
    return replace(config, backbone=best["timm_name"])


def _advised(config, splits: Splits, budget):
    """The frozen pass first (the advice then reads its pretrained features from the cache),
    then the four-scenario advice. Returns (advice, the pass or None, the advice's seconds)."""
    from headstart.core.advise.auto import warm_every_depth

    frozen_pass = None
    if config.cache:
        log.info(
            "auto: one frozen forward pass for every-depth and last features"
            if "every-depth" in splits.train.capabilities
            else "auto: one frozen forward pass for the features"
        )
        frozen_pass = warm_every_depth(config, splits)
    advice_start = time.perf_counter()
    advice = advise(
        splits,
        config.backbone,
        image_size=config.image_size,
        pooling=config.pooling,
        resize=config.resize,
        weights=config.weights,
        max_length=config.max_length,
    )
    advice_seconds = time.perf_counter() - advice_start
    log.info(f"strategy auto: {advice.scenario} (advice: {advice.command_line()})")
    log.info(
        f"auto: {budget.spent:.0f} s of the {budget.total:.0f} s budget spent before the "
        f"first candidate (advice {advice_seconds:.0f} s"
        + (f", frozen pass {frozen_pass.seconds:.0f} s)" if frozen_pass else ")")
        + (
            "; nothing is left: the first candidate, the plain train model, still trains "
            "to its end and the others are skipped (raise --budget to try them)"
            if budget.left <= 0
            else ""
        )
    )
    return advice, frozen_pass, advice_seconds


def _save_kept(run, out: Path, parent_dir: Path, splits: Splits, decisions: dict) -> None:
    """The kept run into ``out`` (an earlier run there replaced atomically), a continuation's
    frozen parent beside it as ``OUT-frozen``, and the report."""
    from headstart.core.report import write_run_report
    from headstart.core.runs import load_run
    from headstart.core.training import replace_run
    from headstart.io import make_temp_dir

    parent = None
    if run.parent:  # a continuation: its frozen parent run goes beside it
        replace_run(run.parent, parent_dir)
        run.config = replace(run.config, parent=str(parent_dir))
        run.parent = str(parent_dir)
        parent = load_run(parent_dir)
        decisions["auto"]["parent_run"] = str(parent_dir)
    staged = make_temp_dir(f".{out.name}.new-", out.parent)
    run.save(staged)
    replace_run(staged, out)  # an earlier run there: replaced atomically
    run.path = out
    write_run_report(run, splits, parent=parent)


def _staging(final: Path) -> Path:
    """A fresh temporary sibling of ``final`` (same file system, renamed into place later)."""
    from headstart.io import make_temp_dir

    staged = make_temp_dir(f".{final.name}.new-", final.parent)
    staged.rmdir()  # the ladder copies the parent run here
    return staged


def _record(run, decisions: dict, splits: Splits):
    """The ranking and advice: for a saved run advice.json beside it and a section in its
    report; for one kept only in memory, ``run.metrics["auto"]``. Returns ``run``."""
    import json

    from headstart.core.report import write_report
    from headstart.core.report_advice import advice_section
    from headstart.io import atomic_write_json

    if run.path is None:
        run.metrics["auto"] = decisions
        return run
    atomic_write_json(run.path / "advice.json", decisions)
    ev_path = run.path / "evaluation.json"
    evaluation = json.loads(ev_path.read_text()) if ev_path.is_file() else None
    write_report(
        run,
        evaluation=evaluation,
        splits=splits,
        extra_sections=advice_section(decisions, run.metrics.get("headline")),
    )
    return run
