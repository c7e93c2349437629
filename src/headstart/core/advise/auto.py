"""``--strategy auto``: a budgeted ladder of candidates, cheapest first, chosen on validation.

Each rung costs more than the one before and is climbed only while it pays:

1. **cheap, on one cached forward pass** (seconds each once the features exist): the last
   pooled features with the lesson head, the linear probe (:mod:`headstart.core.probe`: the
   logistic regression a user writes in ten lines, on average-pooled last features unless
   ``--pooling`` says otherwise), then features from every depth (the same pass) with the
   probe and the lesson head;
2. **the top stage** (``--unfreeze 1``) fine-tuned on the cached frozen prefix, continuing the
   best last-features run (linear probe then fine-tune, LP-FT; Kumar et al., ICLR 2022): an
   epoch costs the top stage alone;
3. **deeper fine-tuning** at a resolution chosen from the data's native size, continuing the
   same run: the four-scenario advice's ``--layers K`` when it says freeze-first, else the
   whole network; tried only when the budget allows several epochs and rung 2 paid;
4. **test-time augmentation** of the kept model (each image averaged with its mirror image;
   not with ``--no-flip``): the same training, so only the predictions change. Nothing tells
   whether a mirror image keeps its class (a mirrored digit may not), so validation decides,
   and the report says whether it was kept or rejected.
5. **an ensemble of the frozen candidates** (Caruana et al.'s selection,
   :mod:`headstart.core.ensemble`), on the every-depth features all of them read: kept only
   when its cross-fitted validation accuracy beats the best single candidate's, and the best
   model's so far, beyond the noise. It costs seconds and no forward pass.

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

import math
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from headstart.core.config import TrainConfig
from headstart.core.data import Splits
from headstart.core.evaluate import paired_noise
from headstart.core.modality import modality_of
from headstart.core.scenarios import Advice
from headstart.io import make_temp_dir

#: A candidate that trains part of the network starts only when extracting what it needs and
#: this many of its epochs fit in what is left of the budget.
MIN_EPOCHS = 3
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


def warm_every_depth(config: TrainConfig, splits: Splits, *, progress: bool) -> Pass:
    """Cache every-depth features of every split; the last features are a slice of them and
    are cached with them (``FeatureExtractor``), so both kinds of candidate cost one pass.
    Data without every-depth features (text) gets its last features cached. Returns what the
    pass cost and what it computed."""
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
        progress=progress,
    )
    done = Pass(width=int(np.prod(ex.shape_per_example())))
    for images in splits.items().values():
        fs = ex.extract(images)
        if not fs.hit:
            done.computed += len(images)
            done.computed_seconds += fs.seconds
    done.seconds = time.perf_counter() - start
    return done


def measure_costs(
    config: TrainConfig, splits: Splits, advice: Advice, done: Pass | None, *, progress: bool
) -> Costs:
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
        progress=progress,
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
    if cfg.setfit:
        parts.append("--setfit")
    return " ".join(parts) or "no flags: the defaults"


class _Climb:
    """The state of one climb: candidates tried so far, the best, what things cost, and why
    the climb stopped (if it did)."""

    def __init__(self, config: TrainConfig, splits: Splits, budget: Budget, progress, say):
        self.config, self.splits, self.budget, self.progress = config, splits, budget, progress
        self.rows: list[dict] = []
        self.best = None  # (run, row, candidate)
        self.stopped: str | None = None  # why validation can no longer rank candidates
        self.overran: str | None = None  # the candidate during which the budget ran out
        self.scratch = make_temp_dir("headstart-auto-")
        self.trained: list[tuple[Candidate, dict, object]] = []  # every candidate that ran
        self._say = say
        self._split_notes = set(splits.method.get("notes", []))

    def say(self, text: str) -> None:
        """Notes from training; the split's notes are said once, by the first candidate."""
        if text not in self._split_notes or len(self.rows) <= 1:
            self._say(text)

    def skip(self, cand: Candidate, reason: str, estimate: float | None = None) -> None:
        row = {
            "candidate": cand.name,
            "flags": _flags(cand.config, self.config),
            "rung": cand.rung,
            "status": "skipped",
            "reason": reason,
        }
        if estimate is not None:
            row["estimate_seconds"] = round(estimate, 1)
        self.rows.append(row)
        if not self.stopped:  # (after a stop, the stop was said once)
            self._say(f"auto: skipped {cand.name} ({reason})")

    def attempt(self, cand: Candidate, estimate: float | None):
        """Train ``cand`` if its estimated seconds fit in what is left of the budget; it
        becomes the best when it beats the best so far beyond the noise, and stops at the
        budget's deadline. ``estimate`` ``None``: the first candidate, the plain train model,
        which always trains to its end (no deadline: ``auto`` never returns less than plain
        train). Returns its run, or None when it was not started."""
        from headstart.core.report import few_seconds
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
        row = {"candidate": cand.name, "flags": _flags(cand.config, self.config), "rung": cand.rung}
        if estimate is not None:
            row["estimate_seconds"] = round(estimate, 1)
        self.rows.append(row)
        start = time.perf_counter()
        run = train(
            cand.config,
            data=self.splits,
            out=self.scratch / f"c{len(self.rows)}",
            save=True,  # a later rung may continue it
            progress=self.progress,
            # the budget's deadline, extraction included; none for the first candidate
            max_seconds=None if estimate is None else left,
            say=self.say,
        )
        seconds = time.perf_counter() - start
        if self.overran is None and left > 0 and self.budget.spent > self.budget.total:
            self.overran = cand.name
        row.update(
            status="tried",
            val_accuracy=run.metrics["val_accuracy"],
            seconds=round(seconds, 1),
            epochs_run=run.metrics["epochs_run"],
            out_of_time=bool(run.metrics.get("out_of_time")),
        )
        shown = few_seconds(row["seconds"])  # as the report shows it
        words = f"auto: {cand.name}: validation {row['val_accuracy']:.1%} ({shown} s"
        if row["out_of_time"]:
            words += f", stopped at the budget after {_epochs(row['epochs_run'])})"
        else:
            words += ")"
        if self.best is None:
            row["status"] = "kept"
            self.best = (run, row, cand)
            self._say(words)
        else:
            y, pred = run.predictions["val"]
            diff, noise = paired_noise(y, pred, self.best[0].predictions["val"][1])
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
            self._say(f"{words}, {compared}; {verdict}")
            if better:
                self.best[1]["status"] = "tried"
                row["status"] = "kept"
                self.best = (run, row, cand)
        y, best_pred = self.best[0].predictions["val"]
        self.stopped = cannot_rank(y, best_pred, self.splits.train.noun)
        if self.stopped:
            self._say(f"auto: stopped climbing: {self.stopped}")
        self.trained.append((cand, row, run))
        return run


class _Estimates:
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


#: The name of the ensemble candidate in the ladder's account.
ENSEMBLE_NAME = "ensemble of the frozen candidates"


def ensemble_rung(climb: _Climb, base: TrainConfig, splits: Splits, *, progress: bool):
    """Caruana's ensemble selection over the frozen candidates that ran (not TTA), each on
    its columns of the every-depth features the frozen pass cached
    (:mod:`headstart.core.ensemble`); the ensemble becomes the best when its cross-fitted
    validation accuracy beats, beyond the noise, both the best single candidate selected the
    same cross-fitted way and the model the ladder kept (the first candidate unless another
    beat it beyond the noise: no selection flatters it). Returns its record, or None when
    fewer than two candidates qualify."""
    import torch

    from headstart.core.ensemble import ENSEMBLE_ROUNDS, decide, verdict_words

    members = [
        (cand, row, run)
        for cand, row, run in climb.trained
        if cand.rung == 1 and not cand.config.tta and not cand.config.setfit
    ]
    if len(members) < 2:
        return None
    start = time.perf_counter()
    from headstart.core.extractors import extractor_for
    from headstart.core.model import backbone_for

    deep = replace(base, features="multi")
    torch.manual_seed(base.seed)  # (random weights: the same network as the pass)
    loaded = backbone_for(deep)
    ex = extractor_for(loaded, batch_size=max(base.batch_size, 32), progress=progress)
    sets = {
        "val": ex.extract(splits.val),
        **({"test": ex.extract(splits.test)} if splits.test is not None else {}),
    }
    width = loaded.backbone.num_features
    probas: dict[str, list[np.ndarray]] = {name: [] for name in sets}
    used, columns = [], []
    for cand, row, run in members:
        if run.config.features == "multi":
            cols = (0, width)
        else:
            last = loaded.backbone.last_columns(run.config.pooling)
            if last is None:
                continue
            cols = last.indices(width)[:2]
        head = run.model.head.eval()
        member = {}
        for name, fs in sets.items():
            x = torch.from_numpy(
                np.asarray(fs.features[fs.valid][:, cols[0] : cols[1]], np.float32)
            )
            with torch.no_grad():
                member[name] = torch.softmax(head(x), dim=1).numpy().astype(np.float64)
        y, pred = run.predictions["val"]
        if len(pred) != len(member["val"]) or not np.array_equal(member["val"].argmax(1), pred):
            continue  # its features are not the pass's columns (a safeguard): left out
        for name in sets:
            probas[name].append(member[name])
        used.append((cand, row, run))
        columns.append(cols)
    if len(used) < 2:
        return None
    y_val = used[0][2].predictions["val"][0]
    record = decide(  # against the model the ladder keeps, as it predicts validation
        probas["val"],
        y_val,
        [cand.name for cand, _, _ in used],
        reference=climb.best[0].predictions["val"][1],
        seed=base.seed,
    )
    record["seconds"] = round(time.perf_counter() - start, 1)
    record["rounds_asked"] = ENSEMBLE_ROUNDS
    row = {
        "candidate": ENSEMBLE_NAME,
        "flags": "--strategy auto (its ensemble selection)",
        "rung": 5,
        "status": "tried",
        "val_accuracy": record["val_accuracy"],
        "cross_fitted_val_accuracy": record["cross_fitted_val_accuracy"],
        "difference": record["difference"],
        "noise": record["noise"],
        "seconds": record["seconds"],
        "epochs_run": 0,
        "out_of_time": False,
    }
    climb.rows.append(row)
    climb.say(f"auto: {verdict_words(record)}")
    if not record["kept"]:
        return record
    from headstart.core.ensemble import ensemble_run

    weights = record["weights"]
    run = ensemble_run(
        [r for _, _, r in used],
        columns,
        weights,
        loaded,
        deep,
        {name: np.sum([w * p for w, p in zip(weights, ps)], axis=0) for name, ps in probas.items()},
        record,
    )
    climb.best[1]["status"] = "tried"
    row["status"] = "kept"
    climb.best = (run, row, Candidate(ENSEMBLE_NAME, run.config, 5))
    return record


def ladder(
    config: TrainConfig,
    splits: Splits,
    advice: Advice,
    *,
    budget: Budget,
    keep_dir: Path | None,
    progress: bool,
    say,
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
    base = replace(config, strategy="feature-extraction", parent=None, tta=False)
    climb = _Climb(config, splits, budget, progress, say)
    before = budget.spent  # the frozen pass and the advice
    can = splits.train.capabilities  # what this kind of data allows: every depth, mirror, size
    kind = modality_of(splits.train)  # what its stages and blocks are called
    tta: dict | None = None
    try:
        timing_start = time.perf_counter()
        costs = costs or measure_costs(config, splits, advice, frozen_pass, progress=progress)
        timing_seconds = time.perf_counter() - timing_start
        est = _Estimates(costs, splits, advice, cached=frozen_pass is not None)
        # rung 1: cheap candidates on cached features; the first one (the plain train model)
        # always trains to its end, the others only while their estimated cost fits
        first = climb.attempt(Candidate(FIRST, base, 1), None)
        fit_seconds = first.metrics["timing"]["training_seconds"]
        # the ten-line probe: a logistic regression on the last features, pooled as the
        # linear head pools them (images: the average) unless --pooling was given; the
        # frozen pass cached them beside the lesson head's
        probe = replace(base, head="linear", pooling=pooling_asked).for_modality(
            splits.train.modality
        )
        probe_run = climb.attempt(
            Candidate(PROBE, probe, 1), est.frozen(PROBE_FIT_RATIO * fit_seconds)
        )
        last_runs = [first, probe_run]
        if "every-depth" in can:
            multi = replace(base, features="multi")
            probe_seconds = max(  # (a fit's cost grows faster than its features)
                probe_run.metrics["probe"]["seconds"] if probe_run is not None else 0.0,
                PROBE_FIT_RATIO * fit_seconds,
            )
            last_width = first.metrics["feature_cache"].get("shape_per_example", [1])[0]
            widths = (frozen_pass.width if frozen_pass else 0) / max(1, last_width)
            climb.attempt(  # on the every-depth features the pass cached
                Candidate("every-depth features, linear probe", replace(multi, head="linear"), 1),
                est.frozen(probe_seconds * max(1.0, widths)),
            )
            climb.attempt(
                Candidate("every-depth features, lesson head", replace(multi, head="lesson"), 1),
                est.frozen(fit_seconds),
            )
        if "contrastive" in can and not config.setfit:
            # few texts: SetFit's contrastive stage tunes the encoder on pairs of training
            # texts, then a head trains on its features; its cost grows with the training
            # examples (pairs), so the budget keeps it to small data
            climb.attempt(
                Candidate("SetFit's contrastive stage, lesson head", replace(base, setfit=True), 1),
                est.contrastive(kind),
            )
        # rung 2: the top stage on the cached prefix, continuing the best last-features run
        parent = max(
            (r for r in last_runs if r is not None), key=lambda r: r.metrics["val_accuracy"]
        )
        top = replace(
            base,
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
        incumbent = climb.best[1]
        continued = "linear probe" if parent.config.head == "linear" else "lesson head"
        name = f"top {kind.stage_word} on the cached prefix, continuing the {continued}"
        top_run = climb.attempt(
            Candidate(name, top, 2), est.partial(est.top_share(), prefix=config.cache)
        )
        # rung 3: deeper fine-tuning at the data's resolution (the advised freeze-first K,
        # else everything), only while the last rung paid
        deep, scale, where = replace(top, augment="none"), 1.0, ""
        if "resolution" in can:  # images train at their own resolution (less compute)
            native = native_side(splits.train)
            own = parent.preprocessing.input_size[0]
            size = finetune_size(native, own)
            deep, scale = replace(deep, image_size=size), (size / own) ** 2
            where = f" at {size} px (images are {native} px)"
        # a small text encoder is fine-tuned whole as transformers are, whatever the advice,
        # and whether or not its top layer alone paid (on the drug reviews it did not, and the
        # whole encoder did: BENCHMARKS.md)
        whole = "whole-network" in can
        if advice.strategy == "freeze-first" and not whole:
            deep = replace(deep, strategy="freeze-first", layers=advice.layers or 0)
            name = f"freeze the first {deep.layers} {kind.block_word}s{where}"
            estimate = est.partial(
                est.after_blocks(deep.layers), scale, prefix=config.cache and deep.layers > 0
            )
        else:
            deep = replace(deep, strategy="full")
            name = f"full fine-tuning{where}"
            estimate = est.partial(1.0, scale, prefix=False)
        if climb.stopped:
            climb.attempt(Candidate(name, deep, 3), estimate)  # (recorded as not tried)
        elif top_run is None and not whole:
            climb.skip(Candidate(name, deep, 3), "the top stage was skipped", estimate)
        elif climb.best[1] is incumbent and not whole:
            climb.skip(
                Candidate(name, deep, 3),
                "fine-tuning the top did not beat the frozen model beyond noise",
                estimate,
            )
        else:
            climb.attempt(Candidate(name, deep, 3), estimate)
        # last: the kept model with test-time augmentation (each image averaged with its
        # mirror image), when flips are allowed; retraining is deterministic, so only the
        # prediction changes. Data without a mirror image (text) has no such rung to list.
        kept = climb.best[2]
        name = f"{kept.name}, with TTA"
        if "mirror" not in can:
            pass
        elif not config.flip:
            reason = "--no-flip: a mirror image may be another class"
            climb.skip(Candidate(name, kept.config, 4), reason)
            tta = {"outcome": "not tried", "reason": reason}
        else:
            mirror = Candidate(name, replace(kept.config, tta=True), 4)
            own = parent.preprocessing.input_size[0]
            kept_scale = (kept.config.image_size / own) ** 2 if kept.config.image_size else 1.0
            n_held = est.n_all - est.n_train
            tried = climb.attempt(
                mirror, climb.best[1]["seconds"] + costs.forward * kept_scale * n_held
            )
            row = climb.rows[-1]
            if tried is None:
                tta = {"outcome": "not tried", "reason": row["reason"]}
            else:
                tta = {
                    "outcome": "kept" if row["status"] == "kept" else "rejected",
                    "difference": row["difference"],
                    "noise": row["noise"],
                }
        # last of all: an ensemble of the frozen candidates (one forward pass for all of them)
        ensemble = None
        if "every-depth" in can and frozen_pass is not None:  # (on the pass's cached features)
            ensemble = ensemble_rung(climb, base, splits, progress=progress)
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
        cache = run.metrics.get("feature_cache") or {}
        if written_during(cache, budget.wall_start):  # read back what this run computed
            cache["computed_this_run"] = True
    finally:
        shutil.rmtree(climb.scratch, ignore_errors=True)
    from headstart.core.report import few_seconds, spent_sentence

    spent = budget.spent
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
    record = {
        "minutes": round(budget.total / 60, 3),
        "seconds": round(budget.total, 1),
        "spent_seconds": round(spent, 1),
        "over_seconds": round(max(0.0, spent - budget.total), 1),
        "frozen_pass_seconds": round(frozen_pass.seconds, 1) if frozen_pass else 0.0,
        "advice_seconds": round(advice_seconds, 1),
        "timing_seconds": round(timing_seconds, 1),
        "candidates_seconds": round(sum(r.get("seconds", 0.0) for r in climb.rows), 1),
        "over_because": because if spent > budget.total else None,
        "forward_seconds_per_example": round(costs.forward, 5),
        "forward_measured_on": costs.source,
    }
    run.metrics["auto_budget"] = record  # (metrics.json: the same account as advice.json)
    decisions = {
        "budget": record,
        "candidates": climb.rows,
        "kept": row["candidate"],
        "kept_flags": row["flags"],
        "stopped": climb.stopped,
    }
    if tta is not None:
        decisions["tta"] = tta
    if ensemble is not None:
        decisions["ensemble"] = ensemble
    say(f"auto: kept {row['candidate']} (validation {row['val_accuracy']:.1%})")
    say(f"auto: {spent_sentence(record)}")
    return run, decisions
