"""The state of ``--strategy auto``'s climb (:mod:`headstart.core.advise.auto`): the budget,
what a forward pass costs, the candidates tried and the best so far, and estimates of what a
candidate will cost before it runs."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np

from headstart.core.config import TrainConfig
from headstart.core.data import Splits
from headstart.core.multilabel import paired_f1_noise
from headstart.core.scenarios import Advice
from headstart.core.statistics import paired_noise
from headstart.core.tasks import MULTI, task_of
from headstart.io import make_temp_dir
from headstart.notes import leaving_out

log = logging.getLogger(__name__)

#: A candidate that trains part of the network starts only when extracting what it needs and
#: this many of its epochs fit in what is left of the budget.
MIN_EPOCHS = 3


class Budget:
    """Seconds left of ``minutes``, from now, on ``clock`` (``time.perf_counter``; a test
    passes its own to decide what is left)."""

    def __init__(self, minutes: float, clock=time.perf_counter):
        self.total = minutes * 60
        self.clock = clock
        self.start = clock()
        self.wall_start = time.time()  # (when this run began writing cache entries)

    @property
    def spent(self) -> float:
        return self.clock() - self.start

    @property
    def left(self) -> float:
        return max(0.0, self.total - self.spent)


@dataclass
class Costs:
    """What a forward pass of the frozen network costs on this machine, measured: seconds per
    example, and where the figure comes from."""

    forward: float
    source: str


@dataclass
class Pass:
    """The frozen forward pass over every split that the cheap candidates share."""

    seconds: float = 0.0
    #: the examples it computed (not read from the cache), and the seconds that took
    computed: int = 0
    computed_seconds: float = 0.0
    #: features per example it cached (every-depth features where the data has them)
    width: int = 0


@dataclass
class Candidate:
    name: str
    config: TrainConfig
    rung: int


def cannot_rank(y: np.ndarray, best: np.ndarray, noun: str = "image") -> str | None:
    """Why validation can no longer rank a candidate above the best so far (whose validation
    predictions are ``best``), or None while it can. At the ceiling nothing can beat it; one
    error from it, a candidate could gain at most one example, and one example is within the
    noise of a validation set of any size (the paired standard error of a one-example gain is
    about one example)."""
    n, errors = len(y), int(np.sum(np.asarray(best) != np.asarray(y)))
    if errors == 0:
        return (
            f"validation is at its ceiling: the best so far gets all {n} validation {noun}s "
            "right, so no candidate can be ranked above it"
        )
    if errors == 1:
        return (
            f"the best so far misses 1 of {n} validation {noun}s: no candidate can gain more "
            "than that one, about one standard error, which validation cannot tell from noise"
        )
    return None


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def flags(cfg: TrainConfig, asked: TrainConfig) -> str:
    """The flags that set the candidate apart (beside those the user gave)."""
    parts = []
    if cfg.backbone != asked.backbone:
        parts.append(f"--backbone {cfg.backbone}")
    if cfg.strategy != "feature-extraction":
        parts.append(f"--strategy {cfg.strategy}")
    if cfg.strategy == "fine-tune":
        parts.append(f"--unfreeze {cfg.unfreeze}")
    if cfg.strategy == "freeze-first":
        parts.append(f"--layers {cfg.layers}")
    if cfg.features != "last":
        parts.append(f"--features {cfg.features}")
    if cfg.head != "lesson":
        parts.append(f"--head {cfg.head}")
    if cfg.image_size != asked.image_size:
        parts.append(f"--image-size {cfg.image_size}")
    if cfg.tta:
        parts.append("--tta")
    if cfg.setfit:
        parts.append("--setfit")
    return " ".join(parts) or "no flags: the defaults"


class Climb:
    """The state of one climb: candidates tried so far, the best, what things cost, and why
    the climb stopped (if it did)."""

    def __init__(self, config: TrainConfig, splits: Splits, budget: Budget):
        self.config, self.splits, self.budget = config, splits, budget
        self.rows: list[dict] = []
        self.best = None  # (run, row, candidate)
        self.stopped: str | None = None  # why validation can no longer rank candidates
        self.overran: str | None = None  # the candidate during which the budget ran out
        self.scratch = make_temp_dir("headstart-auto-")
        self.trained: list[tuple[Candidate, dict, object]] = []  # every candidate that ran
        #: seconds spent loading and checking other backbones, outside their candidates
        self.backbones_seconds = 0.0
        #: the split's notes, which training says: said once, by the first candidate
        self.split_notes = set(splits.method.get("notes", []))

    def skip(self, cand: Candidate, reason: str, estimate: float | None = None) -> None:
        row = {
            "candidate": cand.name,
            "flags": flags(cand.config, self.config),
            "rung": cand.rung,
            "status": "skipped",
            "reason": reason,
        }
        if estimate is not None:
            row["estimate_seconds"] = round(estimate, 1)
        self.rows.append(row)
        if not self.stopped:  # (after a stop, the stop was said once)
            log.info(f"auto: skipped {cand.name} ({reason})")

    def attempt(self, cand: Candidate, estimate: float | None, prepare=None):
        """Train ``cand`` if its estimated seconds fit in what is left of the budget; it
        becomes the best when it beats the best so far beyond the noise, and stops at the
        budget's deadline. ``estimate`` ``None``: the first candidate, the plain train model,
        which always trains to its end (no deadline: ``auto`` never returns less than plain
        train). ``prepare``: work the candidate needs first (another backbone's forward pass),
        done once it is started, counted in its seconds; it returns what the row records of
        it. Returns its run, or None when it was not started."""
        from headstart.core.report_words import few_seconds
        from headstart.core.training import log as training_log
        from headstart.core.training import train

        left = self.budget.left
        if self.stopped:
            self.skip(cand, "validation can no longer rank candidates", estimate)
            return None
        if estimate is not None and (left <= 0 or estimate > left):
            if left <= 0:
                reason = f"the {self.budget.total / 60:g}-minute budget is spent"
            else:
                reason = f"would take about {estimate:.0f} s; {left:.0f} s left"
            self.skip(cand, reason, estimate)
            return None
        row = {"candidate": cand.name, "flags": flags(cand.config, self.config), "rung": cand.rung}
        if estimate is not None:
            row["estimate_seconds"] = round(estimate, 1)
        self.rows.append(row)
        start = time.perf_counter()
        if prepare is not None:
            row.update(prepare())
        limit = None if estimate is None else max(1.0, left - time.perf_counter() + start)
        with leaving_out(training_log, self.split_notes if len(self.rows) > 1 else ()):
            run = train(
                cand.config,
                data=self.splits,
                out=self.scratch / f"c{len(self.rows)}",
                save=True,  # a later rung may continue it
                max_seconds=limit,  # the budget's deadline, extraction included (first: none)
            )
        seconds = time.perf_counter() - start
        if self.overran is None and left > 0 and self.budget.spent > self.budget.total:
            self.overran = cand.name
        task = task_of(self.splits.train.labels)
        row.update(
            status="tried",
            **{task.score_key: run.metrics[task.score_key]},
            seconds=round(seconds, 1),
            epochs_run=run.metrics["epochs_run"],
            out_of_time=bool(run.metrics.get("out_of_time")),
        )
        shown = few_seconds(row["seconds"])  # as the report shows it
        words = f"auto: {cand.name}: validation {row[task.score_key]:.1%} ({shown} s"
        if task.score_key != "val_accuracy":
            words = words.replace("validation", f"validation {task.score_name}", 1)
        if row["out_of_time"]:
            words += f", stopped at the budget after {_epochs(row['epochs_run'])})"
        else:
            words += ")"
        self.judge(cand, row, run, words)
        y, best_pred = self.best[0].predictions["val"]
        self.stopped = cannot_rank(y, best_pred, self.splits.train.noun)
        if self.stopped:
            log.info(f"auto: stopped climbing: {self.stopped}")
        self.trained.append((cand, row, run))
        return run

    def judge(self, cand: Candidate, row: dict, run, words: str) -> None:
        """Keep ``run`` when it beats the best so far beyond the noise of the paired
        difference on the validation examples (the first one is kept), and say so."""
        task = task_of(self.splits.train.labels)
        if self.best is None:
            row["status"] = "kept"
            self.best = (run, row, cand)
            log.info(words)
            return
        y, pred = run.predictions["val"]
        best = self.best[0].predictions["val"][1]
        if task is MULTI:  # micro-F1's difference and its paired bootstrap spread
            diff, noise = paired_f1_noise(y, pred, best)
        else:
            diff, noise = paired_noise(y, pred, best)
        row.update(difference=round(diff, 4), noise=round(noise, 4))
        better = diff > max(noise, 0.0) and diff > 0
        verdict = "kept" if better else "not kept: within the noise" if diff > 0 else "not kept"
        if cand.config.tta and not better:
            verdict = "TTA rejected on validation"
        if diff == 0 and noise == 0:  # right on the same examples: no noise to measure
            row["same_examples_right"] = True
            compared = "right and wrong on the same validation examples as the best so far"
        else:
            compared = f"{diff * 100:+.1f} points vs the best so far (noise {noise * 100:.1f})"
        log.info(f"{words}, {compared}; {verdict}")
        if better:
            self.best[1]["status"] = "tried"
            row["status"] = "kept"
            self.best = (run, row, cand)


class Estimates:
    """Estimated seconds of each kind of candidate, from measured costs."""

    def __init__(self, costs: Costs, splits: Splits, advice: Advice, cached: bool):
        self.costs, self.cached = costs, cached
        self.n_train, self.n_val = len(splits.train), len(splits.val)
        self.n_all = self.n_train + self.n_val + len(splits.test or [])
        m = advice.measurements or {}
        self.stages, self.blocks = m.get("stages") or 0, m.get("blocks") or 0

    def extraction(self, scale: float = 1.0) -> float:
        """One forward pass over every split (a prefix costs at most that)."""
        return self.costs.forward * scale * self.n_all

    def frozen(self, fit_seconds: float) -> float:
        """A head on frozen features: ``fit_seconds`` of training, plus a forward pass when
        the frozen pass did not cache them (``--no-cache``)."""
        return fit_seconds + (0.0 if self.cached else self.extraction())

    def partial(self, share: float, scale: float = 1.0, *, prefix: bool) -> float:
        """A candidate training ``share`` of the network at ``scale`` times the pixels:
        extracting its frozen prefix once (when cached), then ``MIN_EPOCHS`` epochs; an epoch
        runs the trained part forward and backward (about three forward passes) on the
        training split and forward on validation, or, without a cached prefix, the whole
        network forward on both."""
        f = self.costs.forward * scale
        if prefix:
            epoch = f * share * (3 * self.n_train + self.n_val)
            return self.extraction(scale) + MIN_EPOCHS * epoch
        return MIN_EPOCHS * f * (self.n_train * (1 + 2 * share) + self.n_val)

    def contrastive(self, kind) -> float:
        """SetFit's contrastive stage (``kind``: the data's modality, which says how many
        examples it encodes): each encoded forward and backward (about three forward passes),
        then a forward pass over every split with the tuned weights."""
        return self.costs.forward * 3 * kind.tuning_examples(self.n_train) + self.extraction()

    def top_share(self) -> float:
        return 1.0 / self.stages if self.stages else 1.0

    def after_blocks(self, k: int) -> float:
        return (self.blocks - k) / self.blocks if self.blocks else 1.0


def warm_every_depth(config: TrainConfig, splits: Splits, *, named: bool = False) -> Pass:
    """Cache every-depth features of every split; the last features are a slice of them and
    are cached with them (``FeatureExtractor``), so both kinds of candidate cost one pass.
    Data without every-depth features (text) gets its last features cached. ``named``: the
    progress bar names the network (another backbone's pass). Returns what the pass cost and
    what it computed."""
    import torch

    from headstart.core.config import resolve_device
    from headstart.core.extractors import extractor_for
    from headstart.core.model import backbone_for

    start = time.perf_counter()
    multi = "every-depth" in splits.train.capabilities
    features = "multi" if multi else config.features
    torch.manual_seed(config.seed)  # as training seeds it (random weights: the same network)
    loaded = backbone_for(replace(config, strategy="feature-extraction", features=features))
    ex = extractor_for(
        loaded,
        device=resolve_device(config.device),
        batch_size=max(config.batch_size, 32),
        **({"named": True} if named else {}),  # (an image extractor's: which network it reads)
    )
    done = Pass(width=int(np.prod(ex.shape_per_example())))
    for images in splits.items().values():
        fs = ex.extract(images)
        if not fs.hit:
            done.computed += len(images)
            done.computed_seconds += fs.seconds
    done.seconds = time.perf_counter() - start
    return done
