"""``--strategy auto``: a budgeted ladder of candidates, cheapest first, chosen on validation.

Each rung costs more than the one before and is climbed only while it pays:

1. **cheap, on one cached forward pass** (seconds each once the features exist): the last
   pooled features with the lesson head, the linear probe (:mod:`headstart.core.probe`: the
   logistic regression a user writes in ten lines, on average-pooled last features unless
   ``--pooling`` says otherwise), then features from every depth (the same pass) with the
   probe and the lesson head;
2. **other backbones** (``--ensemble-backbones``; auto: with pretrained weights, every other
   one whose weights load offline), one cached forward pass each at the first one's input,
   the same frozen candidates on each, then the probe on all backbones' last features side by
   side (:mod:`headstart.core.advise.ensembling`);
3. **the top stage** (``--unfreeze 1``) fine-tuned on the cached frozen prefix, continuing the
   best last-features run (linear probe then fine-tune, LP-FT; Kumar et al., ICLR 2022): an
   epoch costs the top stage alone;
4. **deeper fine-tuning** at a resolution chosen from the data's native size, continuing the
   same run: the four-scenario advice's ``--layers K`` when it says freeze-first, else the
   whole network; tried only when the budget allows several epochs and rung 3 paid;
5. **test-time augmentation** of the kept model (each image averaged with its mirror image;
   not with ``--no-flip``): the same training, so only the predictions change. Nothing tells
   whether a mirror image keeps its class (a mirrored digit may not), so validation decides,
   and the report says whether it was kept or rejected.
6. **an ensemble of the frozen candidates** (Caruana et al.'s selection,
   :mod:`headstart.core.ensemble`), on the every-depth features all of them read (of every
   backbone that ran, side by side): kept only when its cross-fitted validation accuracy
   beats the best single candidate's, and the best model's so far, beyond the noise. It costs
   seconds and no forward pass.

A candidate replaces the incumbent only when its validation accuracy is higher by more than the
noise of that difference: one standard error of the paired difference on the same validation
images (the images where exactly one of the two is right decide it). Within the noise the
cheaper, simpler model stays. Costlier rungs are climbed only while the last one improved, and
the climb stops when validation can no longer rank candidates: the best so far gets every
validation example right (the ceiling), or all but one (no candidate could gain more than one
example, about one standard error of such a difference: noise at any size). Every candidate's
estimate, validation accuracy, seconds and fate are recorded; the kept run's headline is the
test split, on which nothing was selected.

**The budget.** ``--budget`` minutes count from the start: the frozen forward pass (first, so
that the advice reads its pretrained features from the cache), the advice (a random-weight
control's pass over the training examples) and every candidate. A candidate starts only when
its estimate fits in what is left; the estimate comes from what this run measured: the seconds
per example of a forward pass (:class:`Costs`) times the examples it must extract, plus, for
one that trains part of the network, ``MIN_EPOCHS`` epochs of that part (its share of the
network's stages or blocks), or for a head on cached features the first candidate's measured
training time. A later candidate, once started, stops at the budget's deadline with its best
epoch so far (``train(max_seconds=...)``, checked after every batch). What can still run past it
is reported as time over the budget, never hidden: the first candidate (the lesson head on the
cached last features: the model plain ``headstart train`` gives) always trains to its end, early
stopping as plain train does, whatever is left of the budget, so that ``auto`` never returns
less than plain train (it costs seconds on cached features); a later candidate's first epoch
always finishes (without one there is nothing validated to keep), and an extraction once started
finishes (its estimate is a whole measured pass).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from headstart.choices import BACKBONE_SEP
from headstart.core.advise.climb import (
    MIN_EPOCHS,
    Budget,
    Candidate,
    Climb,
    Costs,
    Estimates,
    Pass,
    cannot_rank,
    warm_every_depth,
)
from headstart.core.advise.ensembling import BACKBONES_RUNG, backbone_rung, ensemble_rung
from headstart.core.config import TrainConfig
from headstart.core.data import Splits
from headstart.core.modality import modality_of
from headstart.core.scenarios import Advice
from headstart.core.tasks import MULTI, task_of

log = logging.getLogger(__name__)

__all__ = ["MIN_EPOCHS", "Budget", "Costs", "Pass", "cannot_rank", "ladder", "warm_every_depth"]

#: The smallest input a fine-tuned ImageNet network is given (below it, the deeper stages see
#: feature maps of one or two pixels).
MIN_FINETUNE_SIZE = 96
#: Examples timed to measure a forward pass when every frozen output came from the cache.
CALIBRATION_EXAMPLES = 64
#: The first candidate: the lesson head on the cached last features, what plain ``headstart
#: train`` gives; it always trains to its end, whatever is left of the budget.
FIRST = "last features, lesson head"
FIRST_ALWAYS = "the first candidate, the plain train model, always trains to its end"
#: The second: the linear probe (:mod:`headstart.core.probe`), what a user writes in ten lines.
PROBE = "last features, linear probe"
#: A probe's fit (14 L-BFGS fits on cached features) against the lesson head's training on
#: the same features, for its estimate before it runs: 3.8x on ELPV, 4.1x on digits
#: (bench/results/probe.json, the auto rows' candidates).
PROBE_FIT_RATIO = 5.0


def native_side(images, sample: int = 200) -> int:
    """Median shorter side, in pixels, of (a sample of) the images as stored."""
    if images.array is not None:
        return int(min(images.array.shape[1:3]))
    from PIL import Image

    sides = []
    step = max(1, len(images.paths) // sample)
    for p in images.paths[::step][:sample]:
        try:
            with Image.open(p) as im:
                sides.append(min(im.size))
        except OSError:
            continue
    return int(np.median(sides)) if sides else 0


def finetune_size(native: int, backbone_size: int) -> int:
    """Fine-tuning resolution from the data: twice the native side, rounded up to a multiple
    of 32, at least ``MIN_FINETUNE_SIZE`` and at most the backbone's own size. 8 px digits and
    25 px faces train at 96 px, 64 px photos at 128 px, large images at the backbone's size:
    up to a fifth of the compute where the data is small."""
    if native <= 0:
        return backbone_size
    return int(min(backbone_size, max(MIN_FINETUNE_SIZE, 32 * math.ceil(2 * native / 32))))


def measure_costs(config: TrainConfig, splits: Splits, advice: Advice, done: Pass | None) -> Costs:
    """Seconds per example of a frozen forward pass: from this run's pass where it computed
    anything, else from the advice's (pretrained or random-weight) pass over the training
    examples, else timed on a few training examples without the cache."""
    noun = splits.train.noun
    if done is not None and done.computed:
        return Costs(
            done.computed_seconds / done.computed,
            f"this run's frozen forward pass, {done.computed:,} {noun}s in "
            f"{done.computed_seconds:.1f} s",
        )
    m = advice.measurements or {}
    n = m.get("n_train") or len(splits.train)
    for kind in ("pretrained", "random"):
        seconds = (m.get("feature_seconds") or {}).get(kind)
        count = (m.get("feature_examples") or {}).get(kind, n)  # the control: a sample
        if (m.get("feature_cache") or {}).get(kind) == "computed" and seconds and count:
            return Costs(
                seconds / count,
                f"the advice's {kind} forward pass, {count:,} {noun}s in {seconds:.1f} s",
            )
    import torch

    from headstart.core.config import resolve_device
    from headstart.core.extractors import extractor_for
    from headstart.core.model import backbone_for

    k = min(CALIBRATION_EXAMPLES, len(splits.train))
    torch.manual_seed(config.seed)
    loaded = backbone_for(replace(config, strategy="feature-extraction", features="last"))
    ex = extractor_for(
        loaded,
        device=resolve_device(config.device),
        batch_size=max(config.batch_size, 32),
        cache=False,
    )
    fs = ex.extract(splits.train.subset(np.arange(k), name="timing sample"))
    return Costs(
        fs.seconds / max(1, k),
        f"{k} training {noun}s timed alone, every frozen output being in the cache already",
    )


def written_during(cache: dict, since: float) -> bool:
    """Whether every feature-cache entry a run read (``metrics["feature_cache"]``) was written
    at or after ``since`` (a ``time.time()``): computed by the same run that read it back."""
    from headstart.core.cache import FeatureStore

    read = [k for k, h in zip(cache.get("keys", []), cache.get("hits", [])) if h != "computed"]
    if cache.get("mode") != "cached" or not read:
        return False
    for key in read:
        try:
            if FeatureStore.paths(key)[1].stat().st_mtime < since:
                return False
        except OSError:
            return False
    return True


def ladder(
    config: TrainConfig,
    splits: Splits,
    advice: Advice,
    *,
    budget: Budget,
    keep_dir: Path | None,
    frozen_pass: Pass | None = None,
    advice_seconds: float = 0.0,
    costs: Costs | None = None,
    pooling_asked: str = "auto",
):
    """Run the ladder; returns (kept run, decisions). ``budget`` started with ``auto``: the
    frozen pass (``frozen_pass``, done before the advice so that the advice reads its
    features) and the advice (``advice_seconds``) count too. ``keep_dir`` receives the saved
    parent of a kept continuation (``None``: nothing is written outside a temporary folder).
    ``costs``: what a forward pass costs (measured here when not given). ``pooling_asked``:
    ``--pooling`` as given (``auto``: each head pools its own way)."""
    climb = Climb(config, splits, budget)
    before = budget.spent  # the frozen pass and the advice
    steps = _Ladder(config, splits, advice, climb, frozen_pass, pooling_asked)
    decisions: dict = {}
    try:
        timing_start = time.perf_counter()
        steps.costs = costs or measure_costs(config, splits, advice, frozen_pass)
        timing_seconds = time.perf_counter() - timing_start
        steps.est = Estimates(steps.costs, splits, advice, cached=frozen_pass is not None)
        steps.climb_all(decisions)
        run, row, _ = climb.best
        steps.keep(run, keep_dir, budget)
    finally:
        shutil.rmtree(climb.scratch, ignore_errors=True)
    seconds = {"advice": advice_seconds, "timing": timing_seconds, "before": before}
    record = _budget_record(climb, budget, frozen_pass, steps.costs, seconds)
    run.metrics["auto_budget"] = record  # (metrics.json: the same account as advice.json)
    decisions = {
        "budget": record,
        "candidates": climb.rows,
        "kept": row["candidate"],
        "kept_flags": row["flags"],
        "stopped": climb.stopped,
        **decisions,
    }
    task = steps.task
    said = "validation" if steps.one_class else f"validation {task.score_name}"
    log.info(f"auto: kept {row['candidate']} ({said} {row[task.score_key]:.1%})")
    from headstart.core.report_words import spent_sentence

    log.info(f"auto: {spent_sentence(record)}")
    return run, decisions


class _Ladder:
    """The rungs, in order, over one climb (:class:`Climb`): what they share."""

    def __init__(self, config, splits: Splits, advice: Advice, climb: Climb, frozen_pass, pooling):
        self.config, self.splits, self.advice, self.climb = config, splits, advice, climb
        self.frozen_pass, self.pooling_asked = frozen_pass, pooling
        self.base = replace(config, strategy="feature-extraction", parent=None, tta=False)
        self.can = splits.train.capabilities  # what the data allows: every depth, mirror, size
        self.task = task_of(splits.train.labels)
        # several labels per example: other backbones and ensembles (selected by accuracy) are
        # not built for label sets yet; every other rung is
        self.one_class = self.task is not MULTI
        self.kind = modality_of(splits.train)  # what its stages and blocks are called
        self.costs: Costs | None = None
        self.est: Estimates | None = None

    def climb_all(self, decisions: dict) -> None:
        """Every rung; what the report lists beside the candidates goes into ``decisions``
        (tta, ensemble, backbones)."""
        first, probe_run, seconds = self.frozen_rung()
        # rung 2: other backbones, one cached pass each, their frozen candidates, then the
        # probe on all backbones' last features side by side (headstart.core.advise.ensembling)
        backbones: list[dict] = []
        multi_backbones = "every-depth" in self.can and self.frozen_pass is not None
        if multi_backbones and self.one_class:
            backbones = backbone_rung(
                self.climb,
                self.base,
                self.splits,
                self.est,
                fit_seconds=seconds["fit"],
                probe_seconds=seconds["probe"],
                multi_probe_seconds=seconds["multi_probe"],
                pooling_asked=self.pooling_asked,
                kind=self.kind,
            )
        parent = self.best_last_features([first, probe_run])
        top, top_run, ratio, incumbent = self.top_rung(parent, backbones)
        self.deep_rung(top, top_run, parent, incumbent, ratio)
        tta = self.tta_rung(parent)
        if tta is not None:
            decisions["tta"] = tta
        # last of all: an ensemble of the frozen candidates (one pass per backbone for all)
        ensemble = None
        if multi_backbones and self.one_class:  # (on the passes' cached features)
            ensemble = ensemble_rung(self.climb, self.base, self.splits, backbones)
            if ensemble is not None:
                decisions["ensemble"] = ensemble
        if backbones:  # what each backbone added (with its share of the ensemble, when one ran)
            decisions["backbones"] = (ensemble or {}).get("backbones") or backbones

    def frozen_rung(self):
        """Rung 1: cheap candidates on cached features; the first one (the plain train model)
        always trains to its end, the others only while their estimated cost fits. Returns
        (the first run, the probe's run or None, seconds the later rungs' estimates use)."""
        climb, base, est = self.climb, self.base, self.est
        first = climb.attempt(Candidate(FIRST, base, 1), None)
        fit_seconds = first.metrics["timing"]["training_seconds"]
        # the ten-line probe: a logistic regression on the last features, pooled as the
        # linear head pools them (images: the average) unless --pooling was given; the
        # frozen pass cached them beside the lesson head's
        probe = replace(base, head="linear", pooling=self.pooling_asked).for_modality(
            self.splits.train.modality
        )
        probe_run = climb.attempt(
            Candidate(PROBE, probe, 1), est.frozen(PROBE_FIT_RATIO * fit_seconds)
        )
        probe_seconds = multi_probe_seconds = 0.0
        if "every-depth" in self.can:
            multi = replace(base, features="multi")
            probe_seconds = max(  # (a fit's cost grows faster than its features)
                probe_run.metrics["probe"]["seconds"] if probe_run is not None else 0.0,
                PROBE_FIT_RATIO * fit_seconds,
            )
            last_width = first.metrics["feature_cache"].get("shape_per_example", [1])[0]
            widths = (self.frozen_pass.width if self.frozen_pass else 0) / max(1, last_width)
            multi_probe_seconds = probe_seconds * max(1.0, widths)
            climb.attempt(  # on the every-depth features the pass cached
                Candidate("every-depth features, linear probe", replace(multi, head="linear"), 1),
                est.frozen(multi_probe_seconds),
            )
            climb.attempt(
                Candidate("every-depth features, lesson head", replace(multi, head="lesson"), 1),
                est.frozen(fit_seconds),
            )
        if "contrastive" in self.can and not self.config.setfit:
            # few texts: SetFit's contrastive stage tunes the encoder on pairs of training
            # texts, then a head trains on its features; its cost grows with the training
            # examples (pairs), so the budget keeps it to small data
            climb.attempt(
                Candidate("SetFit's contrastive stage, lesson head", replace(base, setfit=True), 1),
                est.contrastive(self.kind),
            )
        seconds = {"fit": fit_seconds, "probe": probe_seconds, "multi_probe": multi_probe_seconds}
        return first, probe_run, seconds

    def best_last_features(self, runs: list):
        """The best run on last features (of any one backbone): what rung 3 continues."""
        runs = runs + [
            run
            for cand, _, run in self.climb.trained
            if cand.rung == BACKBONES_RUNG
            and cand.config.features == "last"
            and BACKBONE_SEP not in cand.config.backbone
        ]
        key = self.task.score_key
        return max((r for r in runs if r is not None), key=lambda r: r.metrics[key])

    def top_rung(self, parent, backbones: list[dict]):
        """Rung 3: the top stage on the cached prefix, continuing ``parent``. Returns (its
        configuration, its run or None, its forward pass's cost ratio, the incumbent before)."""
        top = replace(
            self.base,
            backbone=parent.config.backbone,
            image_size=parent.config.image_size,
            head=parent.config.head,
            pooling=parent.config.pooling,
            strategy="fine-tune",
            unfreeze=1,
            parent=str(parent.path),
        )
        decay = (parent.metrics.get("weight_decay") or {}).get("value")
        if top.fit_settings().optimizer == "adam" and decay is not None:  # the head's L2
            # carries over (a probe's C is another quantity; AdamW's decoupled decay, a text
            # encoder's recipe, too): left to auto
            top = replace(top, weight_decay=decay)
        incumbent = self.climb.best[1]
        continued = "linear probe" if parent.config.head == "linear" else "lesson head"
        if parent.config.backbone != self.base.backbone:
            continued = f"{parent.config.backbone} {continued}"
        name = f"top {self.kind.stage_word} on the cached prefix, continuing the {continued}"
        ratio = next(  # another backbone's forward pass costs its measured ratio
            (b.get("relative_cost", 1.0) for b in backbones if b["backbone"] == top.backbone),
            1.0,
        )
        estimate = self.est.partial(self.est.top_share(), ratio, prefix=self.config.cache)
        top_run = self.climb.attempt(Candidate(name, top, 3), estimate)
        return top, top_run, ratio, incumbent

    def deep_rung(self, top, top_run, parent, incumbent, ratio: float) -> None:
        """Rung 4: deeper fine-tuning at the data's resolution (the advised freeze-first K,
        else everything), only while the last rung paid."""
        climb, est, kind = self.climb, self.est, self.kind
        deep, scale, where = replace(top, augment="none"), ratio, ""
        if "resolution" in self.can:  # images train at their own resolution (less compute)
            native = native_side(self.splits.train)
            own = parent.preprocessing.input_size[0]
            size = finetune_size(native, own)
            deep, scale = replace(deep, image_size=size), ratio * (size / own) ** 2
            where = f" at {size} px (images are {native} px)"
        # a small text encoder is fine-tuned whole as transformers are, whatever the advice,
        # and whether or not its top layer alone paid (on the drug reviews it did not, and the
        # whole encoder did: BENCHMARKS.md)
        whole = "whole-network" in self.can
        # (the advice measured the first backbone: its K of blocks is for that one)
        advised = self.advice.strategy == "freeze-first" and top.backbone == self.base.backbone
        if advised and not whole:
            deep = replace(deep, strategy="freeze-first", layers=self.advice.layers or 0)
            name = f"freeze the first {deep.layers} {kind.block_word}s{where}"
            prefix = self.config.cache and deep.layers > 0
            estimate = est.partial(est.after_blocks(deep.layers), scale, prefix=prefix)
        else:
            deep = replace(deep, strategy="full")
            name = f"full fine-tuning{where}"
            estimate = est.partial(1.0, scale, prefix=False)
        if climb.stopped:
            climb.attempt(Candidate(name, deep, 4), estimate)  # (recorded as not tried)
        elif top_run is None and not whole:
            climb.skip(Candidate(name, deep, 4), "the top stage was skipped", estimate)
        elif climb.best[1] is incumbent and not whole:
            climb.skip(
                Candidate(name, deep, 4),
                "fine-tuning the top did not beat the frozen model beyond noise",
                estimate,
            )
        else:
            climb.attempt(Candidate(name, deep, 4), estimate)

    def tta_rung(self, parent) -> dict | None:
        """The kept model with test-time augmentation (each image averaged with its mirror
        image), when flips are allowed; retraining is deterministic, so only the prediction
        changes. Data without a mirror image (text) has no such rung to list (None)."""
        climb = self.climb
        kept = climb.best[2]
        name = f"{kept.name}, with TTA"
        if "mirror" not in self.can:
            return None
        if not self.config.flip:
            reason = "--no-flip: a mirror image may be another class"
            climb.skip(Candidate(name, kept.config, 5), reason)
            return {"outcome": "not tried", "reason": reason}
        mirror = Candidate(name, replace(kept.config, tta=True), 5)
        own = parent.preprocessing.input_size[0]
        kept_scale = (kept.config.image_size / own) ** 2 if kept.config.image_size else 1.0
        n_held = self.est.n_all - self.est.n_train
        tried = climb.attempt(
            mirror, climb.best[1]["seconds"] + self.costs.forward * kept_scale * n_held
        )
        row = climb.rows[-1]
        if tried is None:
            return {"outcome": "not tried", "reason": row["reason"]}
        return {
            "outcome": "kept" if row["status"] == "kept" else "rejected",
            "difference": row["difference"],
            "noise": row["noise"],
        }

    def keep(self, run, keep_dir: Path | None, budget: Budget) -> None:
        """The kept run, its parent (a kept continuation's) copied to ``keep_dir`` or
        forgotten with the temporary folder."""
        cand = self.climb.best[2]
        if cand.config.parent and keep_dir is not None:
            shutil.copytree(cand.config.parent, keep_dir, dirs_exist_ok=False)
            run.config = replace(run.config, parent=str(keep_dir))
            run.parent = str(keep_dir)
        elif cand.config.parent:  # its parent lived in the temporary folder
            run.config = replace(run.config, parent=None)
            run.parent = None
        run.path = None
        run.metrics["chosen_by"] = "auto"
        cache = run.metrics.get("feature_cache") or {}
        if written_during(cache, budget.wall_start):  # read back what this run computed
            cache["computed_this_run"] = True


def _budget_record(climb: Climb, budget: Budget, frozen_pass, costs: Costs, seconds: dict):
    """Where the budget went, and why it was exceeded when it was (``seconds``: the advice's,
    the forward pass's timing, and what was spent before the ladder)."""
    from headstart.core.report_words import few_seconds

    spent, before = budget.spent, seconds["before"]
    first_row = climb.rows[0]
    if before >= budget.total:
        because = (
            f"the frozen forward pass and the advice alone took {before:.0f} s, then "
            f"{FIRST_ALWAYS} ({few_seconds(first_row['seconds'])} s)"
        )
    elif climb.overran is None:
        because = "the work between candidates (timing a forward pass, keeping the run) ran past it"
    elif climb.overran == first_row["candidate"]:
        because = f"{climb.overran} ran past it ({FIRST_ALWAYS})"
    else:
        because = f"{climb.overran} ran past it (a candidate's first epoch always finishes)"
    return {
        "minutes": round(budget.total / 60, 3),
        "seconds": round(budget.total, 1),
        "spent_seconds": round(spent, 1),
        "over_seconds": round(max(0.0, spent - budget.total), 1),
        "frozen_pass_seconds": round(frozen_pass.seconds, 1) if frozen_pass else 0.0,
        "advice_seconds": round(seconds["advice"], 1),
        "timing_seconds": round(seconds["timing"], 1),
        "backbones_seconds": round(climb.backbones_seconds, 1),
        "candidates_seconds": round(sum(r.get("seconds", 0.0) for r in climb.rows), 1),
        "over_because": because if spent > budget.total else None,
        "forward_seconds_per_example": round(costs.forward, 5),
        "forward_measured_on": costs.source,
    }
