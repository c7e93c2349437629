"""``train``: data -> backbone -> strategy (where the cut sits) -> cached frozen part ->
training loop -> saved run. The CLI, ``finetune`` and the estimator all call this.

The frozen part of the network runs once per image and view and is cached (see
``cache.py``): the whole pooled backbone for feature extraction, the prefix below the first
unfrozen stage for fine-tuning. Each epoch then runs only what trains. When there is nothing
to cache (full, scratch), when fresh augmentation is asked for (``augment="on-the-fly"``), or
when the cache would exceed its budget, images are decoded and run through the whole network
every step instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from headstart.core import distributed, recipe
from headstart.core.cache import MIRROR, FeatureSet, data_fingerprint
from headstart.core.classic import blended, choose_weight, fit_baseline, fit_joint
from headstart.core.config import TrainConfig, parse_bytes, resolve_device
from headstart.core.data import DataSource, Splits, detect_modality, load_data
from headstart.core.evaluate import INTERVAL_METHODS, accuracy_interval, paired_comparison
from headstart.core.extractors import Extractor, extractor_for, streaming_inputs
from headstart.core.heads import HeadSpec, build_head
from headstart.core.inputs import ArrayInputs
from headstart.core.loop import (
    Checkpoint,
    accuracy_of,
    fit,
    predict_logits,
    predict_scores,
    steps_per_epoch,
)
from headstart.core.modality import modality_of
from headstart.core.model import (
    Suffix,
    TransferModel,
    features_record,
    starting_head_spec,
    starting_model,
    weights_fingerprint,
    weights_record,
)
from headstart.core.multilabel import classic_beside, held_out_scores
from headstart.core.rundir import check_out, check_writable, missing_from, remove_created
from headstart.core.runlock import RunLock, holder, refusal
from headstart.core.runs import Run, load_run, reproducibility_record
from headstart.core.splits import example_noun, score_label, split_notes
from headstart.core.strategies import StrategyPlan
from headstart.core.tasks import MULTI, label_counts, task_of
from headstart.errors import ConfigError, RunError
from headstart.io import atomic_write_json, make_temp_dir, replace_dir
from headstart.notes import silenced
from headstart.progress import enabled

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything the loop needs: the module that trains, its inputs, and how they were made."""

    module: nn.Module
    train: object
    val: object
    test: object | None
    record: dict
    feature_sets: list[FeatureSet]
    #: positions of each split's items that decoded and were used, and the ones that did not
    used: dict[str, np.ndarray]
    unreadable: list[dict]
    #: with --tta on cached inputs: the mirror images' cached outputs of val and test
    mirrored: dict[str, ArrayInputs] = field(default_factory=dict)


def for_data(config: TrainConfig, data=None) -> TrainConfig:
    """``config`` with the defaults that depend on what the data is (image or text) resolved;
    ``data`` overrides ``config.data``."""
    if config.modality == "auto" or data is not None:
        location = data if data is not None else config.data
        if location is None:
            raise ConfigError("no data given: pass a data location (or --demo).")
        modality = config.modality
        if modality == "auto":
            modality = detect_modality(
                location, text_column=config.text_column, filename_column=config.filename_column
            )
        config = config.for_modality(modality)
    return config


def default_run_dir(config: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{config.backbone.replace('/', '_')}-{config.strategy}"


def split_data(
    config: TrainConfig,
    data: DataSource | Splits | str | Path | None,
    split_record: dict | None = None,
) -> Splits:
    if isinstance(data, Splits):
        return data
    location = data if data is not None else config.data
    if location is None:
        raise ConfigError("no data given: pass a data location (or --demo).")
    return load_data(
        location,
        val_split=config.val_split,
        test_split=config.test_split,
        seed=config.seed,
        split_record=split_record,
        modality=config.modality,
        filename_column=config.filename_column,
        label_column=config.label_column,
        text_column=config.text_column,
        labels=config.label_format(),
    )


def cache_budget_bytes(config: TrainConfig, folder: Path) -> int:
    """The explicit --cache-budget, else half the free disk under the cache, capped at 64 GB."""
    explicit = parse_bytes(config.cache_budget)
    if explicit is not None:
        return explicit
    folder.mkdir(parents=True, exist_ok=True)
    return min(shutil.disk_usage(folder).free // 2, 64 << 30)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def _prepare(
    config: TrainConfig,
    splits: Splits,
    loaded,
    plan: StrategyPlan,
    head: nn.Module,
    device: str,
) -> Prepared:
    views = list(range(1, config.views + 1)) if config.augment == "cached" else [0]
    strategy = config.strategy_spec()
    from headstart.core.cache import cache_root

    if not strategy.trains_backbone:
        ex = extractor_for(
            loaded,
            device=device,
            batch_size=max(config.batch_size, 32),
            cache=config.cache,
            augment_flip=config.flip,
        )
        if config.augment == "on-the-fly":
            log.info(
                "feature extraction with --augment on-the-fly: the frozen backbone runs every "
                "epoch (use --augment cached to compute views once)"
            )
            return _on_the_fly(config, splits, loaded, head, "on-the-fly augmentation")
        train_sets = [ex.extract(splits.train, view=v, seed=config.seed) for v in views]
        return _cached(config, splits, ex, train_sets, head, head, "pooled")
    reason = None
    if not plan.cached_prefix:
        reason = plan.describe() if plan.plan is None else "nothing frozen to cache"
    elif not config.cache:
        reason = "--no-cache"
    elif config.augment == "on-the-fly":
        reason = "--augment on-the-fly"
    if reason is None:
        prefix = plan.plan.prefix(plan.cut)
        cut = f"unit {plan.cut}: {plan.plan.cut_name(plan.cut)}"
        ex = extractor_for(
            loaded,
            module=prefix,
            cut=cut,
            dtype=config.cache_dtype,
            device=device,
            batch_size=max(config.batch_size, 32),
            cache=True,
            augment_flip=config.flip,
        )
        need = ex.estimate_bytes(splits.train, len(views)) + sum(
            ex.estimate_bytes(s) for s in (splits.val, splits.test) if s is not None
        )
        # rank 0's disk decides for every rank (free space may differ between machines)
        budget = distributed.current().broadcast(cache_budget_bytes(config, cache_root()))
        already = all(ex.cached(splits.train, v, config.seed) for v in views)
        if distributed.current().broadcast(need > budget and not already):
            log.warning(
                f"prefix cache would need {_fmt_bytes(need)}, over the {_fmt_bytes(budget)} "
                "budget: training on the fly instead (raise it with --cache-budget)"
            )
            reason = "over the cache budget"
        else:
            train_sets = [ex.extract(splits.train, view=v, seed=config.seed) for v in views]
            suffix = Suffix(plan.plan.suffix(plan.cut), loaded.backbone, head)
            prep = _cached(config, splits, ex, train_sets, suffix, head, cut)
            prep.record.update(estimated_bytes=need, budget_bytes=budget)
            return prep
    return _on_the_fly(config, splits, loaded, head, reason)


def _cached(config, splits, ex: Extractor, train_sets, module, head, cut) -> Prepared:
    val_set = ex.extract(splits.val)
    test_set = ex.extract(splits.test) if splits.test is not None else None
    ok = np.logical_and.reduce([fs.valid for fs in train_sets])
    sets = [*train_sets, val_set, *([test_set] if test_set else [])]
    record = {
        "mode": "cached",
        "cut": cut,
        "dtype": ex.dtype.name,
        "shape_per_example": ex.shape_per_example(),
        "keys": [fs.key for fs in sets],
        "hits": [fs.hit or "computed" for fs in sets],
        "train_views": len(train_sets),
        "bytes_on_disk": int(sum(np.asarray(fs.features).nbytes for fs in sets)),
        "extraction_seconds": round(sum(fs.seconds for fs in sets), 3),
    }
    return Prepared(
        module=module,
        train=ex.inputs(train_sets, splits.train.labels, np.flatnonzero(ok)),
        val=ex.inputs([val_set], splits.val.labels, np.flatnonzero(val_set.valid)),
        test=(
            ex.inputs([test_set], splits.test.labels, np.flatnonzero(test_set.valid))
            if test_set
            else None
        ),
        record=record,
        feature_sets=sets,
        used={
            "train": np.flatnonzero(ok),
            "val": np.flatnonzero(val_set.valid),
            **({"test": np.flatnonzero(test_set.valid)} if test_set else {}),
        },
        unreadable=_unique_by_path(b for fs in sets for b in fs.bad),
        mirrored=_mirrored(config, splits, ex, {"val": val_set, "test": test_set}),
    )


def _mirrored(config, splits, ex: Extractor, plain: dict) -> dict[str, ArrayInputs]:
    """Test-time augmentation on cached inputs: the mirror images' outputs, same rows."""
    if not config.tta:
        return {}
    out = {}
    for name, fs in plain.items():
        if fs is not None:
            images = getattr(splits, name)
            m = ex.extract(images, view=MIRROR)
            out[name] = ArrayInputs([m.features], images.labels, np.flatnonzero(fs.valid))
    return out


def _unique_by_path(items) -> list[dict]:
    seen: set[str] = set()
    out = []
    for b in items:
        if b["path"] not in seen:
            seen.add(b["path"])
            out.append(b)
    return out


def _on_the_fly(config, splits, loaded, head, reason: str) -> Prepared:
    """Examples decoded (or tokenised) every step, through the whole network. Broken files
    are found first, so they are left out of training and of every count (as the feature
    cache does)."""
    inputs, used, unreadable = streaming_inputs(
        loaded,
        splits,
        augment=config.augment != "none",
        seed=config.seed,
        workers=config.workers,
        flip=config.flip,
    )
    return Prepared(
        module=TransferModel(loaded.backbone, head),
        train=inputs["train"],
        val=inputs["val"],
        test=inputs.get("test"),
        record={"mode": "on-the-fly", "reason": reason, "augment": config.augment},
        feature_sets=[],
        used=used,
        unreadable=unreadable,
    )


def _layout(prepared: Prepared, plan: StrategyPlan) -> dict:
    if isinstance(prepared.module, Suffix):
        return {"module": "suffix", "cut": plan.cut}
    if isinstance(prepared.module, TransferModel):
        return {"module": "full", "cut": None}
    return {"module": "head", "cut": None}


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped (Ctrl-C); the last completed epoch is saved in ``out/checkpoint``."""

    def __init__(self, out: Path | None):
        super().__init__(f"interrupted; resume with: headstart train --resume {out}")
        self.out = out


def replace_run(new: Path, out: Path) -> None:
    """Move the complete run ``new`` to ``out``; an earlier run there is replaced atomically
    and then removed. ``out`` was checked with :func:`check_out` before any work."""
    replace_dir(new, out, remove_old=True)  # nothing, an empty folder, or a headstart run


def preflight(out: Path, need_bytes: int) -> None:
    """Fail before any work when the run directory cannot be written or the disk is full."""
    check_writable(out)
    free = shutil.disk_usage(out).free
    if free < need_bytes:
        raise RunError(
            f"{out}: only {_fmt_bytes(free)} free, and this run needs about "
            f"{_fmt_bytes(need_bytes)} (model, checkpoints, report); free some space or "
            "choose another --out."
        )


def _class_weights(config: TrainConfig, splits: Splits) -> np.ndarray | None:
    if config.class_weights != "auto":
        return None
    counts = splits.train.class_counts().astype(float)
    return np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 0.0)


@contextlib.contextmanager
def _resumable_interruption(out: Path | None):
    """Turn Ctrl-C into :class:`TrainingInterrupted`, naming the resume command once the run
    directory holds its configuration and split (from the first second of work)."""
    try:
        yield
    except TrainingInterrupted:
        raise
    except KeyboardInterrupt:
        # config.json and split.json are written before any work (extraction included), and
        # finished cache entries are reused, so a run interrupted at any point can be resumed
        resumable = out is not None and (out / "split.json").is_file()
        raise TrainingInterrupted(out if resumable else None) from None


@contextlib.contextmanager
def _discard_on_failure(work: Path | None):
    """A run that replaces another trains in a temporary sibling; if it fails with nothing to
    resume, the sibling goes (headstart made it)."""
    try:
        yield
    except BaseException:
        if work is not None and not (work / "checkpoint" / "state.json").is_file():
            shutil.rmtree(work, ignore_errors=True)
        raise


def train(
    config: TrainConfig | None = None,
    /,
    *,
    data: DataSource | Splits | str | Path | None = None,
    out: str | Path | None = None,
    save: bool = True,
    resume: bool = False,
    stop_after: int | None = None,
    overwrite: bool = False,
    max_seconds: float | None = None,
) -> Run:
    """Train with ``config`` (defaults: the lesson's frozen recipe) and return the run.

    ``data`` overrides ``config.data`` (a location, a :class:`DataSource` or ready
    :class:`Splits`). With ``save`` the run is written to ``out`` (a timestamped folder under
    ``runs/`` by default) and reloads with :func:`headstart.load_run`; training writes no
    report (:func:`headstart.train` and the commands do, with ``report.write_run_report``;
    ``run.data`` holds the splits it used). ``resume``
    continues an interrupted run in ``out`` from its last checkpoint. Ctrl-C raises
    :class:`TrainingInterrupted`, which names the command that resumes.

    An ``out`` that holds an earlier headstart run is refused unless ``overwrite``; then it is
    replaced atomically once the new run is complete (it trains beside it meanwhile). A
    non-empty ``out`` that is not a headstart run is always refused.

    ``max_seconds`` bounds the whole call, counted from its start (loading and extracting
    included): training ends at that deadline with the best weights so far, before an epoch
    that would not finish in time or (in one process) in the middle of one; its first epoch
    always finishes. ``run.metrics["out_of_time"]`` says when it ended so.

    Its notes go to this module's logger and its bars as :mod:`headstart.progress` is set,
    both by the entry point that called it (:mod:`headstart.notes`); in a distributed run,
    rank 0 alone says anything.
    """
    deadline = time.perf_counter() + max_seconds if max_seconds is not None else None
    config = for_data(config or TrainConfig(), data)
    config.check_new_run()
    if config.backbone == "auto":
        raise ConfigError(
            "backbone auto is decided from the data: train it with "
            "headstart.core.advise.train_auto (the command line does)."
        )
    group = distributed.current()
    out = Path(out) if out is not None else (default_run_dir(config) if save else None)
    out = final = group.broadcast(out)  # rank 0's default name, its timestamp
    lock, error, created = None, None, None
    if save and group.is_main:  # rank 0 checks, locks and writes the run directory
        created = missing_from(final)  # what a run that fails on its data leaves behind: none
        try:
            other = holder(final) if final.is_dir() else None
            if other is not None:
                raise RunError(refusal(final, other))
            if not resume and check_out(final, overwrite=overwrite) == "run":
                out = make_temp_dir(f".{final.name}.new-", final.parent)  # swapped in at the end
            check_writable(final)  # (the lock goes there)
            lock = RunLock(final)
            lock.acquire()
        except RunError as e:
            error = str(e)
    finished = False
    try:
        group.raise_together(error)
        out = group.broadcast(out)
        distributed.remember_run_dir(final)
        quiet = not group.is_main  # rank 0 speaks for a distributed run
        with silenced(quiet), enabled(False if quiet else None):
            run = _train_locked(config, data, out, final, group, save, resume, stop_after, deadline)
        finished = True
        return run
    finally:
        if lock is not None:
            lock.release()
        if not finished:  # the folders this call made, when the run left nothing in them
            remove_created(final, created)


def _train_locked(config, data, out, final, group, save, resume, stop_after, deadline) -> Run:
    with (
        _resumable_interruption(out if save else None),
        _discard_on_failure(out if out != final and group.is_main else None),
    ):
        split_record = None
        if resume:
            if out is None or not (out / "split.json").is_file():
                raise RunError(f"{out}: nothing to resume (no split.json from an earlier start).")
            if (out / "model.safetensors").is_file() and not (out / "checkpoint").is_dir():
                raise RunError(f"{out}: this run already finished; nothing to resume.")
            import json

            split_record = json.loads((out / "split.json").read_text())
        splits = split_data(config, data, split_record)
        # what the labels' task cannot use: refused before any work
        config.check_task(task_of(splits.train.labels) is MULTI)
        hashes = {n: data_fingerprint(s) for n, s in splits.items().items()}
        if group.distributed:  # every rank must see the same files and split them alike
            seen = group.all_gather(hashes)
            group.raise_together(
                None
                if seen[group.rank] == seen[0]
                else f"{config.data}: rank {group.rank} sees other data than rank 0 (its "
                "files or their sizes and dates differ). Every machine of a distributed run "
                "needs the same data, for example on a shared file system."
            )
        device = distributed.rank_device(resolve_device(config.device), group)
        strategy = config.strategy_spec()
        parent = load_run(config.parent) if config.parent else None
        loaded, head, plan = starting_model(config, splits.class_names, parent)
        if save:  # the run directory exists from the start: config and split first, for --resume
            error = None
            if group.is_main:
                try:
                    n_params = sum(p.numel() for p in loaded.backbone.parameters())
                    preflight(out, need_bytes=n_params * 4 * 3 + (20 << 20))
                    atomic_write_json(out / "split.json", splits.record())
                    atomic_write_json(out / "config.json", {"config": config.to_sections()})
                except RunError as e:
                    error = str(e)
            group.raise_together(error)
        tuned = modality_of(loaded).tune_encoder(
            loaded,
            splits.train,
            config,
            device=device,
            deadline=deadline,
        )
        if tuned is not None:  # the encoder's weights changed: cached under their content
            stopped = (
                f", stopped at the time budget after {tuned['steps_run']} of {tuned['steps']} steps"
                if tuned["steps_run"] < tuned["steps"]
                else ""
            )
            log.info(
                f"{tuned['method']}: {tuned['pairs']:,} pairs in {tuned['seconds']:.0f} s, "
                f"loss {tuned['loss_first_tenth']:.3f} -> {tuned['loss_last_tenth']:.3f}" + stopped
            )
            loaded.weights = dataclasses.replace(
                loaded.weights,
                kind="trained",
                detail=f"SetFit's contrastive stage on this run's train split, from "
                f"{loaded.weights.describe()}",
                fingerprint=weights_fingerprint(loaded.backbone),
            )
        t0 = time.perf_counter()
        prepared = _prepare(config, splits, loaded, plan, head, device)
        extract_seconds = time.perf_counter() - t0
        if not splits.method.get("replayed"):  # said once decoded: work is under way, and the
            # counts are of what is used
            sets = splits.items()
            listed = {n: len(s) for n, s in sets.items()}
            used = {n: len(prepared.used[n]) for n in sets}
            for note in split_notes(splits.method, listed, used, example_noun(splits.train)):
                log.info(note)
        settings, decay = _weight_decay(config, splits)
        steps = steps_per_epoch(len(prepared.train), settings.batch_size, group.world_size)
        probe = None
        if fits_probe(config, prepared, head):  # the linear head on cached features: L-BFGS
            probe, head, history = _fit_probe(config, splits, prepared, device)
        else:
            history = fit(
                prepared.module,
                head,
                prepared.train,
                prepared.val,
                settings,
                device=device,
                class_weights=_class_weights(config, splits),
                checkpoint=Checkpoint(out / "checkpoint", _layout(prepared, plan))
                if save
                else None,
                resume=resume,
                stop_after=stop_after,
                deadline=deadline,
            )
        metrics, scored, logits = _metrics(  # on the training device, before the model moves
            config, splits, history, prepared, device, extract_seconds, plan, group
        )
        used_sets = {n: s.subset(prepared.used[n]) for n, s in splits.items().items()}
        classic, weight, joint = None, 0.0, None
        if group.is_main and task_of(splits.train.labels) is MULTI:
            # the baseline every model of this kind of data must beat, one-vs-rest: scored
            # beside the model, not blended in
            classic = classic_beside(metrics, scored, used_sets)
        elif group.is_main:  # the baseline every model of this kind of data must beat
            classic, weight, joint = blend_with_classic(
                config,
                metrics,
                scored,
                logits,
                used_sets,
                None if config.tta else lambda: head_inputs(prepared, head, device),
            )
        head_spec = trained_spec = starting_head_spec(config, parent)
        if probe is not None:  # one linear layer, the standardisation folded in
            head_spec = trained_spec = PROBE_HEAD
        trained_head = None
        if joint is not None:  # the joint model's network part replaces the trained head
            trained_head = head.cpu().eval()  # kept: what a continuation starts from
            head_spec = HeadSpec(kind="linear")
            head = build_head(head_spec, joint.shape[1], joint.shape[0])
            with torch.no_grad():
                head[-1].weight.copy_(torch.from_numpy(joint))
                head[-1].bias.zero_()
        model = TransferModel(loaded.backbone, head, tta=config.tta).cpu().eval()
        if not strategy.trains_backbone:
            for p in model.backbone.parameters():
                p.requires_grad_(False)
        if probe is not None:
            metrics["probe"] = probe.record()
        else:
            metrics["weight_decay"] = decay
            metrics["fit_recipe"] = recipe.record(config, settings, steps)
        # with TTA the held-out scores average each image with its mirror image; the epochs'
        # validation scores in the history (which chose the best epoch) do not
        metrics["tta"] = config.tta
        metrics["features"] = features_record(loaded)
        if tuned is not None:
            metrics["setfit"] = tuned
        reading = modality_of(loaded).reading_record(loaded, used_sets)
        if reading is not None:
            metrics["truncation"] = reading
        run = Run(
            model=model,
            class_names=splits.class_names,
            preprocessing=loaded.preprocessing,
            config=config,
            backbone_name=loaded.timm_name,
            head_spec=head_spec,
            history=history,
            metrics=metrics,
            record={
                **reproducibility_record(device, hashes, config.seed),
                "distributed": _processes_record(group, history),
            },
            split=splits.record(),
            weights=weights_record(loaded, strategy, model),
            strategy=strategy,
            parent=str(config.parent) if config.parent else None,
            predictions=scored,
            data=splits,
            classic=classic,
            classic_weight=weight,
            classic_joint=joint is not None,
            trained_head=trained_head,
            trained_head_spec=trained_spec if trained_head is not None else None,
        )
        run.metrics["parameters"] = run.parameter_counts()
        if save and group.is_main:
            run.save(out)
            if out != final:
                replace_run(out, final)
                run.path = out = final
            shutil.rmtree(out / "checkpoint", ignore_errors=True)  # the run is complete
        if save and group.distributed:
            group.barrier()  # the others end once rank 0 has written the run
            run.path = final
        return run


def _processes_record(group: distributed.Group, history) -> dict:
    """How the run ran; a run resumed on another number of processes says how many epochs
    each number trained."""
    record = group.record()
    counts: dict[str, int] = {}
    for row in history.epochs:
        key = str(row.get("processes", 1))
        counts[key] = counts.get(key, 0) + 1
    if len(counts) > 1:
        record["epochs_by_processes"] = counts
    return record


def _weight_decay(config: TrainConfig, splits: Splits):
    """The fit settings, with ``weight_decay=None`` (auto) resolved: AdamW's decoupled 0.01
    with AdamW, 0 with Adam (the lesson's recipe). (A linear head on cached features is the
    probe, regularised by its own ``C``: :func:`fits_probe`.)"""
    settings = config.fit_settings(len(splits.train))
    if config.weight_decay is not None:
        return settings, {"value": config.weight_decay, "chosen": "given"}
    return settings, {"value": settings.weight_decay, "chosen": "default"}


#: The head a probe run saves: one linear layer (its standardisation folded into the weights).
PROBE_HEAD = HeadSpec(kind="linear")


def fits_probe(config: TrainConfig, prepared: Prepared, head) -> bool:
    """Whether the run's head is the linear probe (:mod:`headstart.core.probe`): a linear head
    on cached features (the features, or their augmented views, are fixed arrays). A linear
    head on a network that trains, or on a frozen network run on the fly (``--augment
    on-the-fly``), trains with the network's optimizer instead."""
    return (
        config.head == "linear"
        and prepared.module is head
        and isinstance(prepared.train, ArrayInputs)
    )


def _fit_probe(config: TrainConfig, splits: Splits, prepared: Prepared, device):
    """Fit the linear probe on the cached features (every view of every training example),
    ``C`` chosen on validation; the run's head becomes its linear layer. Returns (the fit, the
    head, a history with no epochs)."""
    from headstart.core.loop import History
    from headstart.core.probe import UNUSED_SETTINGS, fit_probe, fit_probe_multilabel

    x, y = prepared.train.stacked()
    xv, yv = prepared.val.stacked()
    weights = _class_weights(config, splits)
    if task_of(y) is MULTI:  # one logistic regression per label
        fitted = fit_probe_multilabel(x, y, xv, yv)
    else:
        fitted = fit_probe(
            x,
            y,
            xv,
            yv,
            len(splits.class_names),
            sample_weight=None if weights is None else weights[y],
        )
    head = build_head(PROBE_HEAD, x.shape[1], len(splits.class_names))
    with torch.no_grad():
        head[-1].weight.copy_(torch.from_numpy(fitted.weight))
        head[-1].bias.copy_(torch.from_numpy(fitted.bias))
    head = head.to(device).eval()
    prepared.module = head
    defaults = TrainConfig()
    unused = [
        "--" + name.replace("_", "-")
        for name in UNUSED_SETTINGS
        if getattr(config, name) != getattr(defaults, name)
    ]
    if unused:
        log.warning(
            f"{', '.join(unused)} {'does' if len(unused) == 1 else 'do'} not apply to the "
            "linear probe (fitted by L-BFGS to convergence, its L2 strength chosen on "
            "validation)"
        )
    grid = fitted.record()["grid"]
    log.info(
        "linear probe: logistic regression (L-BFGS"
        + ("; one per label" if task_of(y) is MULTI else "")
        + f") on standardised features, C {fitted.C:g} "
        f"chosen on validation from {len(grid)} values ({grid[0]:g} to {grid[-1]:g}), "
        f"{fitted.seconds:.1f} s"
        + ("" if fitted.converged else "; L-BFGS stopped at its iteration limit")
    )
    return fitted, head, History(seconds=fitted.seconds)


def used_labels(splits: Splits, prepared: Prepared) -> dict[str, np.ndarray]:
    """The labels of the images each split actually used: every count shown comes from here."""
    return {n: s.labels[prepared.used[n]] for n, s in splits.items().items()}


def _metrics(
    config, splits, history, prepared: Prepared, device, extract_seconds, plan, group
) -> dict:
    labels = used_labels(splits, prepared)
    train_counts = label_counts(labels["train"], len(splits.class_names))
    # one inference pass per held-out split gives its accuracy and the headline's interval;
    # with --tta, as the saved model predicts: each image averaged with its mirror image
    if isinstance(prepared.module, TransferModel):
        prepared.module.tta = config.tta
    held_out = {"val": prepared.val, "test": prepared.test}
    logits = {
        name: predict_scores(
            prepared.module,
            inputs,
            torch.device(device),
            mirrored=prepared.mirrored.get(name),
            group=group,
        )
        for name, inputs in held_out.items()
        if inputs is not None
    }
    metrics = {
        "train_class_counts": train_counts.tolist(),
        "best_epoch": history.best_epoch,
        "epochs_run": len(history.epochs),
        "stopped_early": history.stopped_early,
        "n_examples": {n: len(v) for n, v in labels.items()},
        "n_unreadable": {n: len(s) - len(labels[n]) for n, s in splits.items().items()},
        # read but unusable (an empty text file: in no split) or unreadable when used (a
        # corrupt image: dropped from its split), each {"path", "reason"}
        "skipped_examples": [*splits.method.get("skipped", []), *prepared.unreadable],
        "strategy": {
            **config.strategy_spec().to_dict(),
            "trainable_modules": len(plan.trainable),
            "cut": prepared.record.get("cut") or prepared.record.get("reason"),
        },
        # samples left out of a step because their batch held one (a training BatchNorm
        # cannot normalise a single sample); batching avoids it unless unreadable files
        # shrink a batch to one
        "skipped_training_samples": history.skipped_samples,
        "timing": {
            "feature_extraction_seconds": round(extract_seconds, 3),
            "training_seconds": round(history.seconds, 3),
            "seconds_per_epoch": round(history.seconds / max(1, len(history.epochs)), 3),
        },
        "feature_cache": prepared.record,
    }
    if task_of(labels["train"]) is MULTI:
        scored = held_out_scores(
            metrics, labels, logits, splits.class_names, rule=config.thresholds
        )
    else:
        scored = _single_label_scores(metrics, labels, logits, splits.class_names)
    if history.out_of_time:
        metrics["out_of_time"] = True
    return metrics, scored, {name: lg for name, (_, lg) in logits.items()}


def _single_label_scores(metrics: dict, labels: dict, logits: dict, class_names) -> dict:
    """Each held-out split's (true, predicted) classes, their accuracies, the majority class's
    and the headline into ``metrics``."""
    scored = {
        name: (y, lg.argmax(1) if len(y) else np.zeros(0, np.int64))
        for name, (y, lg) in logits.items()
    }
    majority = int(np.argmax(label_counts(labels["train"], len(class_names))))
    metrics["val_accuracy"] = accuracy_of(*scored["val"])
    metrics["majority_class"] = class_names[majority]
    metrics["majority_baseline_val_accuracy"] = float(np.mean(labels["val"] == majority))
    if "test" in scored:
        metrics["test_accuracy"] = accuracy_of(*scored["test"])
        metrics["majority_baseline_test_accuracy"] = float(np.mean(labels["test"] == majority))
    headline = "test" if "test" in scored else "val"
    metrics["headline"] = {
        **scored_headline(headline, *scored[headline]),
        "optimistic": headline == "val",
        "label": score_label(headline),
    }
    return scored


def head_inputs(prepared: Prepared, head, device) -> dict | None:
    """Each split's inputs of the head, in the order of its examples (split name -> array):
    what a joint model with the classic baseline reads. A frozen network's are its cached
    features; otherwise one inference pass of the trained module over every split, the head's
    inputs caught on their way in. None where they cannot be had in order (several augmented
    views of a cached example)."""
    parts = {"train": prepared.train, "val": prepared.val, "test": prepared.test}
    parts = {n: p for n, p in parts.items() if p is not None}
    if prepared.module is head and all(isinstance(p, ArrayInputs) for p in parts.values()):
        if any(len(p.views) != 1 for p in parts.values()):
            return None
        return {n: np.asarray(p.views[0][p.rows]) for n, p in parts.items()}
    caught: list[np.ndarray] = []

    def catch(_module, args):
        caught.append(args[0].detach().float().cpu().reshape(len(args[0]), -1).numpy())

    out = {}
    hook = head.register_forward_pre_hook(catch)
    try:
        for name, inputs in parts.items():
            caught.clear()
            y, _ = predict_logits(prepared.module, inputs, torch.device(device))
            x = np.concatenate(caught) if caught else np.zeros((0, 0), np.float32)
            if len(x) != len(y):  # (a mirrored or multi-view pass: not one row per example)
                return None
            out[name] = x
    finally:
        hook.remove()
    return out


def blend_with_classic(
    config, metrics: dict, scored: dict, logits: dict, sets: dict, features=None
):
    """Fit the classic baseline on the train examples the model used (its setting chosen on
    the validation ones) and, with ``--blend auto``, blend it into the model, choosing on
    validation between a mix with a weight and, where ``features`` gives them (a function
    returning split name -> the head's inputs, :func:`head_inputs`, called only when a joint
    model is fitted), a joint model
    (:func:`~headstart.core.classic.fit_joint`): ``scored`` and the held-out accuracies in
    ``metrics`` become the blend's (``metrics["blend"]`` keeps the model's own). Returns
    (baseline, mix weight, the joint model's network part or None), or (None, 0.0, None) for
    a kind of data without a baseline (``sets``: split name -> the examples the model used;
    ``logits``: split name -> the model's logits on them)."""
    n_classes = len(sets["train"].class_names)
    model = fit_baseline(sets["train"], sets["val"], n_classes)
    if model is None:
        return None, 0.0, None
    for name, (y, _) in scored.items():  # the model's rows are the examples it used, in order
        if not np.array_equal(y, sets[name].labels):
            raise RuntimeError(f"the {name} predictions are not in the order of its examples")
    classic_proba = {n: model.predict_proba(sets[n]) for n in scored}
    metrics["classic_baseline"] = {"name": model.name, "description": model.describe()}
    weight, joint, combined = 0.0, None, None
    if config.blend == "none":
        metrics["blend"] = {"weight": 0.0, "chosen_on": "--blend none"}
    else:
        model_proba = {n: _softmax(lg) for n, lg in logits.items()}
        weight, tried = choose_weight(model_proba["val"], classic_proba["val"], scored["val"][0])
        metrics["blend"] = {
            "kind": "mix",
            "weight": weight,
            "chosen_on": "validation accuracy (ties: lower log loss, then the smaller weight)",
            "tried": tried,
            # the model alone, before the blend
            "model_alone": {f"{n}_accuracy": metrics.get(f"{n}_accuracy") for n in scored},
        }
        combined = {n: blended(model_proba[n], classic_proba[n], weight) for n in scored}
        if config.blend in ("auto", "joint") and features is not None and len(sets["val"]):
            features = features()
        else:
            features = None
        if features is not None:
            joined, part, record = fit_joint(model, sets, features, n_classes)
            mix = next(t for t in tried if t["weight"] == weight)
            record["mix_weight"], record["mix_val_accuracy"] = weight, mix["val_accuracy"]
            metrics["blend"]["joint"] = record
            if config.blend == "joint" or (record["val_accuracy"], -record["val_log_loss"]) > (
                mix["val_accuracy"],
                -mix["val_log_loss"],
            ):
                model, joint = joined, part
                weight = metrics["blend"]["weight"] = 0.0
                metrics["blend"]["kind"] = "joint"
                # chosen on validation at equal accuracy (as recorded, to 4 places): the log
                # loss decided
                metrics["blend"]["log_loss_decided"] = (
                    config.blend != "joint"
                    and round(record["val_accuracy"], 4) == mix["val_accuracy"]
                )
                metrics["blend"]["chosen_on"] = (
                    "--blend joint"
                    if config.blend == "joint"
                    else "validation accuracy against the best mix (ties: lower log loss)"
                )
                combined = {
                    n: _softmax(features[n] @ part.T + model.joint_logits(sets[n])) for n in scored
                }
    if combined is not None and (weight > 0 or joint is not None):
        # the question a blend leaves open: does the model alone beat the baseline?
        head = metrics["headline"]["split"]
        y, alone = scored[head]
        metrics["blend"]["model_alone_vs_baseline"] = paired_comparison(
            y,
            alone,
            classic_proba[head].argmax(1),
            this_name="the model alone",
            other_name=model.name,
            noun=example_noun(sets["train"]),
        )
        for name, (y, _) in scored.items():
            pred = combined[name].argmax(1)
            scored[name] = (y, pred)
            metrics[f"{name}_accuracy"] = accuracy_of(y, pred)
        head = metrics["headline"]
        head.update(scored_headline(head["split"], *scored[head["split"]]))
    metrics["classic_baseline"].update(
        classic_record(
            model,
            classic_proba,
            scored,
            metrics["headline"]["split"],
            sets,
            this_name="the run (its blend)" if weight > 0 or joint is not None else "the model",
        )
    )
    return model, weight, joint


def scored_headline(split: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """A headline score: the split, accuracy with its 95% interval and its method, the count."""
    return {
        "split": split,
        "accuracy": accuracy_of(y_true, y_pred),
        "accuracy_ci95": accuracy_interval(int(np.sum(y_true == y_pred)), len(y_true)),
        "interval_method": INTERVAL_METHODS["accuracy"],
        "n": int(len(y_true)),
    }


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.from_numpy(np.asarray(logits, np.float32)), dim=1).numpy()


def classic_record(
    model, proba: dict, scored: dict, headline: str, sets: dict, this_name: str = "the model"
) -> dict:
    """What ``metrics.json`` records of the classic baseline: how it was fitted, its accuracy
    on each held-out split (``proba``: its probabilities there), and on the headline split its
    interval and the paired comparison with the run's predictions (``scored``: split name ->
    (true labels, predicted labels), on the same examples)."""
    record = {"fit": model.record}
    for name, p in proba.items():
        record[f"{name}_accuracy"] = float(np.mean(p.argmax(1) == sets[name].labels))
    y_true, y_pred = scored[headline]
    pred = proba[headline].argmax(1)
    record["headline"] = scored_headline(headline, y_true, pred)
    record["paired"] = paired_comparison(
        y_true,
        y_pred,
        pred,
        this_name=this_name,
        other_name=model.name,
        noun=example_noun(sets["train"]),
    )
    return record
