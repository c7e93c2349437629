"""``--strategy auto``: a budgeted ladder of candidates, cheapest first, chosen on validation.

Each rung costs more than the one before and is climbed only while it pays:

1. **cheap, on one cached forward pass** (seconds each once the features exist): the last
   pooled features with the lesson head, the same with a linear head whose weight decay is
   chosen on validation, then features from every depth (one more forward pass) with the linear
   and the lesson head;
2. **the top stage** (``--unfreeze 1``) fine-tuned on the cached frozen prefix, continuing the
   best last-features run (linear probe then fine-tune, LP-FT; Kumar et al., ICLR 2022): an
   epoch costs the top stage alone;
3. **deeper fine-tuning** at a resolution chosen from the data's native size, continuing the
   same run: the four-scenario advice's ``--layers K`` when it says freeze-first, else the
   whole network; tried only when the budget allows several epochs and rung 2 paid;
4. **test-time augmentation** of the kept model (each image averaged with its mirror image;
   not with ``--no-flip``): the same training, so only the predictions change.

A candidate replaces the incumbent only when its validation accuracy is higher by more than the
noise of that difference: one standard error of the paired difference on the same validation
images (the images where exactly one of the two is right decide it). Within the noise the
cheaper, simpler model stays. Costlier rungs are climbed only while the last one improved.
Every candidate's validation accuracy, seconds and fate are recorded; the kept run's headline
is the test split, on which nothing was selected.

The whole ladder spends at most ``--budget`` minutes: a candidate whose estimated cost does not
fit in what is left is skipped, saying so, and training stops before an epoch that would
overrun (``fit(max_seconds=...)``).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from headstart.core.config import TrainConfig
from headstart.core.data import Splits
from headstart.core.loop import WEIGHT_DECAY_GRID
from headstart.core.modality import modality_of
from headstart.core.scenarios import Advice
from headstart.io import make_temp_dir

#: Full fine-tuning is worth trying only when the budget leaves room for this many epochs.
MIN_FULL_EPOCHS = 3
#: The smallest input a fine-tuned ImageNet network is given (below it, the deeper stages see
#: feature maps of one or two pixels).
MIN_FINETUNE_SIZE = 96


class Budget:
    """Seconds left of ``minutes``, from now."""

    def __init__(self, minutes: float):
        self.total = minutes * 60
        self.start = time.perf_counter()

    @property
    def spent(self) -> float:
        return time.perf_counter() - self.start

    @property
    def left(self) -> float:
        return max(0.0, self.total - self.spent)


@dataclass
class Candidate:
    name: str
    config: TrainConfig
    rung: int


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


def paired_noise(y: np.ndarray, new: np.ndarray, old: np.ndarray) -> tuple[float, float]:
    """(accuracy difference new - old, its standard error) on the same images."""
    a, b = new == y, old == y
    n = max(1, len(y))
    only_new, only_old = float(np.sum(a & ~b)), float(np.sum(~a & b))
    diff = (only_new - only_old) / n
    var = (only_new + only_old - (only_new - only_old) ** 2 / n) / n**2
    return diff, math.sqrt(max(var, 0.0))


def warm_every_depth(config: TrainConfig, splits: Splits, *, progress: bool) -> None:
    """Cache every-depth features of every split; the last features are a slice of them and
    are cached with them (``FeatureExtractor``), so both kinds of candidate cost one pass.
    Data without every-depth features (text) gets its last features cached."""
    from headstart.core.config import resolve_device
    from headstart.core.extractors import extractor_for
    from headstart.core.model import backbone_for

    multi = "every-depth" in splits.train.capabilities
    features = "multi" if multi else config.features
    loaded = backbone_for(replace(config, strategy="feature-extraction", features=features))
    ex = extractor_for(
        loaded,
        device=resolve_device(config.device),
        batch_size=max(config.batch_size, 32),
        progress=progress,
    )
    for images in splits.items().values():
        ex.extract(images)


def _flags(cfg: TrainConfig, asked: TrainConfig) -> str:
    """The flags that set the candidate apart (beside those the user gave)."""
    parts = []
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
    return " ".join(parts) or "no flags: the defaults"


class _Climb:
    """The state of one climb: candidates tried so far, the best, what a forward pass costs."""

    def __init__(self, config: TrainConfig, splits: Splits, budget: Budget, progress, say):
        self.config, self.splits, self.budget, self.progress = config, splits, budget, progress
        self.rows: list[dict] = []
        self.best = None  # (run, row, candidate)
        self.pass_seconds = 0.0  # the first candidate's frozen forward pass over every split
        self.scratch = make_temp_dir("headstart-auto-")
        self._say = say
        self._split_notes = set(splits.method.get("notes", []))

    def say(self, text: str) -> None:
        """Notes from training; the split's notes are said once, by the first candidate."""
        if text not in self._split_notes or len(self.rows) <= 1:
            self._say(text)

    def skip(self, cand: Candidate, reason: str) -> None:
        self.rows.append(
            {
                "candidate": cand.name,
                "flags": _flags(cand.config, self.config),
                "rung": cand.rung,
                "status": "skipped",
                "reason": reason,
            }
        )
        self._say(f"auto: skipped {cand.name} ({reason})")

    def attempt(self, cand: Candidate, estimate: float):
        """Train ``cand`` if its estimated seconds fit in the budget (the first always trains);
        it becomes the best when it beats the best so far beyond the noise. Returns its run,
        or None when skipped."""
        from headstart.core.training import train

        left = self.budget.left
        if self.rows and (left <= 0 or estimate > left):
            if left <= 0:
                self.skip(cand, f"the {self.config.budget:g}-minute budget is spent")
            else:
                self.skip(cand, f"would take about {estimate:.0f} s; {left:.0f} s left")
            return None
        row = {"candidate": cand.name, "flags": _flags(cand.config, self.config), "rung": cand.rung}
        self.rows.append(row)
        start = time.perf_counter()
        run = train(
            cand.config,
            data=self.splits,
            out=self.scratch / f"c{len(self.rows)}",
            save=True,  # a later rung may continue it
            progress=self.progress,
            max_seconds=left,
            say=self.say,
        )
        seconds = time.perf_counter() - start
        row.update(
            status="tried",
            val_accuracy=run.metrics["val_accuracy"],
            seconds=round(seconds, 1),
            out_of_time=bool(run.metrics.get("out_of_time")),
        )
        words = f"auto: {cand.name}: validation {row['val_accuracy']:.1%} ({seconds:.0f} s)"
        if self.best is None:
            if not self.pass_seconds:
                self.pass_seconds = run.metrics["timing"]["feature_extraction_seconds"]
            row["status"] = "kept"
            self.best = (run, row, cand)
            self._say(words)
            return run
        y, pred = run.predictions["val"]
        diff, noise = paired_noise(y, pred, self.best[0].predictions["val"][1])
        row.update(difference=round(diff, 4), noise=round(noise, 4))
        better = diff > max(noise, 0.0) and diff > 0
        self._say(
            f"{words}, {diff * 100:+.1f} points vs the best so far (noise {noise * 100:.1f})"
            + ("; kept" if better else "")
        )
        if better:
            self.best[1]["status"] = "tried"
            row["status"] = "kept"
            self.best = (run, row, cand)
        return run


def ladder(
    config: TrainConfig,
    splits: Splits,
    advice: Advice,
    *,
    budget: Budget,
    keep_dir: Path | None,
    progress: bool,
    say,
):
    """Run the ladder; returns (kept run, decisions). ``budget`` started with ``auto`` (the
    advice's measurements count too). ``keep_dir`` receives the saved parent of a kept
    continuation (``None``: nothing is written outside a temporary folder)."""
    base = replace(config, strategy="feature-extraction", parent=None, tta=False)
    climb = _Climb(config, splits, budget, progress, say)
    can = splits.train.capabilities  # what this kind of data allows: every depth, mirror, size
    kind = modality_of(splits.train)  # what its stages and blocks are called
    try:
        if config.cache:  # one forward pass serves the last and the every-depth features
            start = time.perf_counter()
            climb.say(
                "auto: one frozen forward pass for every-depth and last features"
                if "every-depth" in can
                else "auto: one frozen forward pass for the features"
            )
            warm_every_depth(config, splits, progress=progress)
            climb.pass_seconds = time.perf_counter() - start
        # rung 1: cheap candidates on cached features; the first one always trains (there
        # must be a model), the others only while their estimated cost fits in the budget
        first = climb.attempt(Candidate("last features, lesson head", base, 1), 0.0)
        fit_seconds = first.metrics["timing"]["training_seconds"]
        search = 1 + len(WEIGHT_DECAY_GRID)  # the linear head trains once per weight decay
        linear = Candidate("last features, linear head", replace(base, head="linear"), 1)
        last_runs = [first, climb.attempt(linear, search * fit_seconds)]
        if "every-depth" in can:
            multi = replace(base, features="multi")
            deep_linear = climb.attempt(
                Candidate("every-depth features, linear head", replace(multi, head="linear"), 1),
                climb.pass_seconds + search * fit_seconds,
            )
            climb.attempt(  # on the every-depth features just cached, if they were
                Candidate("every-depth features, lesson head", replace(multi, head="lesson"), 1),
                fit_seconds if deep_linear is not None else climb.pass_seconds + fit_seconds,
            )
        # rung 2: the top stage on the cached prefix, continuing the best last-features run
        parent = max(
            (r for r in last_runs if r is not None), key=lambda r: r.metrics["val_accuracy"]
        )
        top = replace(
            base,
            head=parent.config.head,
            weight_decay=parent.metrics["weight_decay"]["value"],
            strategy="fine-tune",
            unfreeze=1,
            parent=str(parent.path),
        )
        incumbent = climb.best[1]
        name = (
            f"top {kind.stage_word} on the cached prefix, continuing the {parent.config.head} head"
        )
        top_run = climb.attempt(Candidate(name, top, 2), 1.5 * climb.pass_seconds)
        # rung 3: deeper fine-tuning at the data's resolution (the advised freeze-first K,
        # else everything), only while the last rung paid
        deep, scale, where = replace(top, augment="none"), 1.0, ""
        if "resolution" in can:  # images train at their own resolution (less compute)
            native = native_side(splits.train)
            own = parent.preprocessing.input_size[0]
            size = finetune_size(native, own)
            deep, scale = replace(deep, image_size=size), (size / own) ** 2
            where = f" at {size} px (images are {native} px)"
        if advice.strategy == "freeze-first":
            deep = replace(deep, strategy="freeze-first", layers=advice.layers or 0)
            name = f"freeze the first {deep.layers} {kind.block_word}s{where}"
        else:
            deep = replace(deep, strategy="full")
            name = f"full fine-tuning{where}"
        if top_run is None:
            climb.skip(Candidate(name, deep, 3), "the top stage was skipped")
        elif climb.best[1] is incumbent:
            climb.skip(
                Candidate(name, deep, 3),
                "fine-tuning the top did not beat the frozen model beyond noise",
            )
        else:
            n = len(splits.train) + len(splits.val) + len(splits.test or [])
            share = (3 * len(splits.train) + len(splits.val)) / n  # backward ~ 2 forwards
            per_epoch = climb.pass_seconds * scale * share
            climb.attempt(Candidate(name, deep, 3), MIN_FULL_EPOCHS * per_epoch)
        # last: the kept model with test-time augmentation (each image averaged with its
        # mirror image), when flips are allowed; retraining is deterministic, so only the
        # prediction changes. Data without a mirror image (text) has no such rung to list.
        kept = climb.best[2]
        name = f"{kept.name}, with TTA"
        if "mirror" not in can:
            pass
        elif not config.flip:
            climb.skip(
                Candidate(name, kept.config, 4), "--no-flip: a mirror image may be another class"
            )
        else:
            mirror = Candidate(name, replace(kept.config, tta=True), 4)
            climb.attempt(mirror, climb.best[1]["seconds"] + 0.5 * climb.pass_seconds)
        run, row, cand = climb.best
        if cand.config.parent and keep_dir is not None:
            shutil.copytree(cand.config.parent, keep_dir, dirs_exist_ok=False)
            run.config = replace(run.config, parent=str(keep_dir))
            run.parent = str(keep_dir)
        elif cand.config.parent:  # its parent lived in the temporary folder
            run.config = replace(run.config, parent=None)
            run.parent = None
        run.path = None
        run.metrics["chosen_by"] = "auto"
    finally:
        shutil.rmtree(climb.scratch, ignore_errors=True)
    decisions = {
        "budget": {"minutes": config.budget, "spent_seconds": round(budget.spent, 1)},
        "candidates": climb.rows,
        "kept": row["candidate"],
        "kept_flags": row["flags"],
    }
    say(
        f"auto: kept {row['candidate']} (validation {row['val_accuracy']:.1%}) after "
        f"{budget.spent:.0f} s of a budget of {config.budget:g} minutes"
    )
    return run, decisions
