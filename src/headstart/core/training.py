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
import json
import logging
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from headstart.core import distributed, recipe
from headstart.core.blending import blend_with_classic
from headstart.core.cache import data_fingerprint
from headstart.core.config import TrainConfig, resolve_device
from headstart.core.data import DataSource, Splits, detect_modality, load_data
from headstart.core.heads import HeadSpec, build_head
from headstart.core.inputs import ArrayInputs
from headstart.core.loop import Checkpoint, fit, steps_per_epoch
from headstart.core.modality import modality_of
from headstart.core.model import (
    TransferModel,
    features_record,
    starting_head_spec,
    starting_model,
    weights_fingerprint,
    weights_record,
)
from headstart.core.multilabel import classic_beside
from headstart.core.preparation import Prepared, fmt_bytes, head_inputs, layout, prepare
from headstart.core.run_scores import run_metrics
from headstart.core.rundir import check_out, check_writable, missing_from, remove_created
from headstart.core.runlock import RunLock, holder, refusal
from headstart.core.runs import Run, load_run, reproducibility_record
from headstart.core.splits import example_noun, split_notes
from headstart.core.tasks import MULTI, task_of
from headstart.errors import ConfigError, RunError
from headstart.io import atomic_write_json, make_temp_dir, replace_dir
from headstart.notes import silenced
from headstart.progress import enabled

log = logging.getLogger(__name__)


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
            f"{out}: only {fmt_bytes(free)} free, and this run needs about "
            f"{fmt_bytes(need_bytes)} (model, checkpoints, report); free some space or "
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
            job = _Job(config, out, final, group, save, resume, stop_after, deadline)
            run = _train_locked(job, data)
        finished = True
        return run
    finally:
        if lock is not None:
            lock.release()
        if not finished:  # the folders this call made, when the run left nothing in them
            remove_created(final, created)


@dataclass
class _Job:
    """Where and how one call of :func:`train` runs: what its steps share."""

    config: TrainConfig
    out: Path | None
    final: Path | None
    group: distributed.Group
    save: bool
    resume: bool
    stop_after: int | None
    deadline: float | None


@dataclass
class _Fitted:
    """The head as training left it, and how it was fitted."""

    head: nn.Module
    history: object
    probe: object = None  # the linear probe's fit, when the head is the probe
    settings: object = None  # the loop's settings and weight decay (None for the probe)
    decay: dict | None = None
    steps: int = 0


def _train_locked(job: _Job, data) -> Run:
    config, group = job.config, job.group
    with (
        _resumable_interruption(job.out if job.save else None),
        _discard_on_failure(job.out if job.out != job.final and group.is_main else None),
    ):
        splits, hashes = _splits_for(job, data)
        device = distributed.rank_device(resolve_device(config.device), group)
        parent = load_run(config.parent) if config.parent else None
        loaded, head, plan = starting_model(config, splits.class_names, parent)
        if job.save:  # the run directory exists from the start: config and split first
            _write_start(job, splits, loaded)
        tuned = _tune_encoder(loaded, splits, config, device, job.deadline)
        t0 = time.perf_counter()
        prepared = prepare(config, splits, loaded, plan, head, device)
        extract_seconds = time.perf_counter() - t0
        _say_split_notes(splits, prepared)
        fitted = _fit_head(job, splits, prepared, plan, head, device)
        metrics, scored, logits = run_metrics(  # on the training device, before the model moves
            config, splits, fitted.history, prepared, device, extract_seconds, plan, group
        )
        used_sets = {n: s.subset(prepared.used[n]) for n, s in splits.items().items()}
        classic, weight, joint = None, 0.0, None
        if group.is_main and task_of(splits.train.labels) is MULTI:
            # the baseline every model of this kind of data must beat, one-vs-rest: scored
            # beside the model, not blended in
            classic = classic_beside(metrics, scored, used_sets)
        elif group.is_main:  # the baseline every model of this kind of data must beat
            inputs = None if config.tta else lambda: head_inputs(prepared, fitted.head, device)
            classic, weight, joint = blend_with_classic(
                config, metrics, scored, logits, used_sets, inputs
            )
        head, head_spec, trained_head, trained_spec = _final_head(config, parent, fitted, joint)
        strategy = config.strategy_spec()
        model = TransferModel(loaded.backbone, head, tta=config.tta).cpu().eval()
        if not strategy.trains_backbone:
            for p in model.backbone.parameters():
                p.requires_grad_(False)
        _record_fitting(metrics, config, fitted, loaded, tuned, used_sets)
        run = Run(
            model=model,
            class_names=splits.class_names,
            preprocessing=loaded.preprocessing,
            config=config,
            backbone_name=loaded.timm_name,
            head_spec=head_spec,
            history=fitted.history,
            metrics=metrics,
            record={
                **reproducibility_record(device, hashes, config.seed),
                "distributed": _processes_record(group, fitted.history),
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
            trained_head_spec=trained_spec,
        )
        run.metrics["parameters"] = run.parameter_counts()
        _save_run(run, job)
        return run


def _splits_for(job: _Job, data) -> tuple[Splits, dict]:
    """The run's splits (a resumed run's as recorded) and their fingerprints, the same on
    every process; the settings the labels' task cannot use are refused before any work."""
    config, out, group = job.config, job.out, job.group
    split_record = None
    if job.resume:
        if out is None or not (out / "split.json").is_file():
            raise RunError(f"{out}: nothing to resume (no split.json from an earlier start).")
        if (out / "model.safetensors").is_file() and not (out / "checkpoint").is_dir():
            raise RunError(f"{out}: this run already finished; nothing to resume.")
        split_record = json.loads((out / "split.json").read_text())
    splits = split_data(config, data, split_record)
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
    return splits, hashes


def _write_start(job: _Job, splits: Splits, loaded) -> None:
    """config.json and split.json, before any work (what ``--resume`` reads), once the disk
    is known to hold the run; every process learns whether it failed."""
    error = None
    if job.group.is_main:
        try:
            n_params = sum(p.numel() for p in loaded.backbone.parameters())
            preflight(job.out, need_bytes=n_params * 4 * 3 + (20 << 20))
            atomic_write_json(job.out / "split.json", splits.record())
            atomic_write_json(job.out / "config.json", {"config": job.config.to_sections()})
        except RunError as e:
            error = str(e)
    job.group.raise_together(error)


def _tune_encoder(loaded, splits: Splits, config: TrainConfig, device, deadline) -> dict | None:
    """The modality's stage that tunes the encoder before the head (text: SetFit's
    contrastive stage), if asked; its weights, changed, are then cached under their content."""
    tuned = modality_of(loaded).tune_encoder(
        loaded, splits.train, config, device=device, deadline=deadline
    )
    if tuned is None:
        return None
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
    return tuned


def _say_split_notes(splits: Splits, prepared: Prepared) -> None:
    """How the splits were made, said once the examples are decoded (work is under way, and
    the counts are of what is used); a replayed split was said when it was made."""
    if splits.method.get("replayed"):
        return
    sets = splits.items()
    listed = {n: len(s) for n, s in sets.items()}
    used = {n: len(prepared.used[n]) for n in sets}
    for note in split_notes(splits.method, listed, used, example_noun(splits.train)):
        log.info(note)


def _fit_head(job: _Job, splits: Splits, prepared: Prepared, plan, head, device) -> _Fitted:
    """The linear probe fitted on cached features (L-BFGS), or the training loop."""
    config = job.config
    if fits_probe(config, prepared, head):
        probe, head, history = _fit_probe(config, splits, prepared, device)
        return _Fitted(head=head, history=history, probe=probe)
    settings, decay = _weight_decay(config, splits)
    checkpoint = Checkpoint(job.out / "checkpoint", layout(prepared, plan)) if job.save else None
    history = fit(
        prepared.module,
        head,
        prepared.train,
        prepared.val,
        settings,
        device=device,
        class_weights=_class_weights(config, splits),
        checkpoint=checkpoint,
        resume=job.resume,
        stop_after=job.stop_after,
        deadline=job.deadline,
    )
    steps = steps_per_epoch(len(prepared.train), settings.batch_size, job.group.world_size)
    return _Fitted(head, history, settings=settings, decay=decay, steps=steps)


def _final_head(config: TrainConfig, parent, fitted: _Fitted, joint):
    """The head the run saves and its spec: the trained one; the probe's linear layer; or a
    joint model's network part, the trained head then kept beside (what a continuation
    starts from). Returns (head, spec, the trained head kept beside and its spec, or None
    and None)."""
    head, spec = fitted.head, starting_head_spec(config, parent)
    if fitted.probe is not None:  # one linear layer, the standardisation folded in
        spec = PROBE_HEAD
    if joint is None:
        return head, spec, None, None
    trained_head, trained_spec = head.cpu().eval(), spec
    spec = HeadSpec(kind="linear")
    head = build_head(spec, joint.shape[1], joint.shape[0])
    with torch.no_grad():
        head[-1].weight.copy_(torch.from_numpy(joint))
        head[-1].bias.zero_()
    return head, spec, trained_head, trained_spec


def _record_fitting(metrics: dict, config, fitted: _Fitted, loaded, tuned, used_sets) -> None:
    """How the run was fitted and what its network read, into ``metrics``."""
    if fitted.probe is not None:
        metrics["probe"] = fitted.probe.record()
    else:
        metrics["weight_decay"] = fitted.decay
        metrics["fit_recipe"] = recipe.record(config, fitted.settings, fitted.steps)
    # with TTA the held-out scores average each image with its mirror image; the epochs'
    # validation scores in the history (which chose the best epoch) do not
    metrics["tta"] = config.tta
    metrics["features"] = features_record(loaded)
    if tuned is not None:
        metrics["setfit"] = tuned
    reading = modality_of(loaded).reading_record(loaded, used_sets)
    if reading is not None:
        metrics["truncation"] = reading


def _save_run(run: Run, job: _Job) -> None:
    """Rank 0 writes the run, swapped in for an earlier one it replaces; the checkpoint goes
    (the run is complete); the other processes end once it is written."""
    if job.save and job.group.is_main:
        out = job.out
        run.save(out)
        if out != job.final:
            replace_run(out, job.final)
            run.path = out = job.final
        shutil.rmtree(out / "checkpoint", ignore_errors=True)
    if job.save and job.group.distributed:
        job.group.barrier()
        run.path = job.final


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
