"""The run directory: everything a later command needs, as safetensors + JSON + CSV. No pickles.

    RUN_DIR/
      model.safetensors   backbone + head weights (the run predicts from this folder alone)
      model.json          architecture, class names, preprocessing: how to rebuild the model
      config.json         the resolved TrainConfig and the reproducibility record
      split.json          the exact items of each split
      history.csv         per-epoch loss / accuracy / val_loss / val_accuracy
      metrics.json        final metrics and baselines

Every file is written atomically; loading reads only these names and validates them.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from headstart.choices import BACKBONE_SEP
from headstart.core.config import TrainConfig
from headstart.core.distributed import command_line
from headstart.core.heads import ENSEMBLE, HeadSpec, build_head
from headstart.core.loop import Checkpoint, History
from headstart.core.modality import FALLBACK, modality, modality_of
from headstart.core.model import TransferModel, parameter_counts, starting_model, weights_record
from headstart.core.rundir import (
    CLASSIC_FOLDER,
    ENCODER_FOLDER,
    RUN_FORMAT,
    RUN_FORMAT_VERSION,
    check_run_dir,
    read_json,
)
from headstart.core.strategies import Strategy, plan_strategy
from headstart.core.tasks import named as named_task
from headstart.errors import RunError
from headstart.io import atomic_write_json, atomic_write_text, atomic_write_with

if TYPE_CHECKING:
    from headstart.core.splits import Splits


def reproducibility_record(device: str, data_hashes: dict[str, str], seed: int) -> dict:
    import timm

    import headstart

    return {
        "seed": seed,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        # text runs: the library that built the encoder and tokenizer
        **(
            {"transformers": sys.modules["transformers"].__version__}
            if "transformers" in sys.modules
            else {}
        ),
        "numpy": np.__version__,
        "headstart": headstart.__version__,
        "device": device,
        "command": command_line(),
        "data_hash": data_hashes,
    }


@dataclass
class Run:
    """A trained model with everything needed to use, evaluate or continue it."""

    model: TransferModel
    class_names: tuple[str, ...]
    preprocessing: object  # the modality's: image Preprocessing, text Tokenization
    config: TrainConfig
    backbone_name: str
    head_spec: HeadSpec
    history: History | None = None
    metrics: dict = field(default_factory=dict)
    record: dict = field(default_factory=dict)
    split: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    strategy: Strategy = field(default_factory=Strategy)
    parent: str | None = None
    path: Path | None = None
    #: (true, predicted) labels of the held-out splits from training (in memory, not saved):
    #: what ``--strategy auto`` compares candidates with, paired, on the same images
    predictions: dict = field(default_factory=dict, repr=False)
    #: the splits it was trained and scored on (in memory, not saved): what its report reads
    data: Splits | None = field(default=None, repr=False)
    #: the classic baseline fitted on its train split (text: TF-IDF + logistic regression),
    #: saved in ``classic/``; after loading, read on first use (``core.classic.load_baseline``)
    classic: object | None = field(default=None, repr=False)
    #: the classic baseline's share of the run's probabilities (``--blend``; 0: the model
    #: alone), chosen on validation; ``model.json`` records it
    classic_weight: float = 0.0
    #: the run is a joint model with its classic baseline (``core.classic.fit_joint``): its
    #: head is the network's part, the baseline holds the other; ``model.json`` records it
    classic_joint: bool = False
    #: a joint run's head as it was trained, before the joint model's network part replaced
    #: it (``trained_head.safetensors``): what a fine-tuning continuation starts from
    trained_head: torch.nn.Module | None = field(default=None, repr=False)
    trained_head_spec: HeadSpec | None = None

    def parameter_counts(self) -> dict[str, int]:
        return parameter_counts(self.model)

    @property
    def modality(self) -> str:
        """``"image"`` or ``"text"``: what this run's model reads."""
        return getattr(self.preprocessing, "modality", FALLBACK)

    @property
    def task(self):
        """What the run predicts (:mod:`headstart.core.tasks`): one class per example, or a
        set of labels (runs from before multi-label record none: single-label)."""
        return named_task((self.metrics or {}).get("task"))

    @property
    def thresholds(self) -> np.ndarray | None:
        """A multi-label run's per-label thresholds (chosen on validation), in
        ``class_names`` order; None for one class per example."""
        values = ((self.metrics or {}).get("thresholds") or {}).get("values")
        return None if values is None else np.array([values[c] for c in self.class_names])

    @property
    def n_examples(self) -> dict[str, int]:
        """Examples used per split (runs saved before text existed call it ``n_images``)."""
        return self.metrics.get("n_examples") or self.metrics.get("n_images") or {}

    @property
    def skipped_examples(self) -> list[dict[str, str]]:
        """Examples left out, each {"path", "reason"}: unreadable images, empty texts..."""
        m = self.metrics
        return m.get("skipped_examples", m.get("unreadable_images", []))

    def predict_proba(
        self, inputs, *, batch_size: int = 32, progress: bool | None = None
    ) -> np.ndarray:
        """Class probabilities: for an image run, decoded images (a sequence of HxWx3 uint8
        arrays); for a text run, a sequence of strings. A blended run mixes in its classic
        baseline's (``classic_weight``) or adds its joint model's part (``classic_joint``).
        ``progress``: a bar (None: as the caller's entry point set it, off unless it turned it
        on)."""
        from headstart.core.classic import combine, load_baseline
        from headstart.progress import enabled

        if self.classic_weight >= 1 and not self.classic_joint:  # the baseline alone
            return load_baseline(self).predict_proba(inputs).astype(np.float32)
        with enabled(progress):
            proba = modality_of(self).predict_proba(self, inputs, batch_size=batch_size)
        return combine(self, proba, inputs)

    @property
    def uses_classic(self) -> bool:
        """Whether the run's predictions need its classic baseline (a mix or a joint model)."""
        return self.classic_joint or self.classic_weight > 0

    def describe_model(self) -> str:
        """The strategy (after SetFit's contrastive stage, where the run had one), and the
        blend with the classic baseline where there is one."""
        label = self.strategy.label()
        if self.head_spec.kind == ENSEMBLE:  # (headstart.core.ensemble)
            label = f"{label}, an ensemble of {len(self.head_spec.members)} heads"
        if self.metrics.get("setfit"):
            label = f"SetFit's contrastive stage, then {label}"
        if self.classic_joint:
            return f"{label} + classic baseline (one joint logistic regression)"
        if self.classic_weight >= 1:
            return f"{label} (predicting with the classic baseline alone)"
        if self.classic_weight > 0:
            return f"{label} + classic baseline (weight {self.classic_weight:g})"
        return label

    def cost_note(self) -> str | None:
        """What an example costs an ensemble against one of its members (None: not one)."""
        if self.head_spec.kind != ENSEMBLE:
            return None
        heads = sum(p.numel() for p in self.model.head.parameters())
        share = heads / max(1, sum(p.numel() for p in self.model.parameters()))
        n = len(self.head_spec.members)
        backbones = self.backbone_name.split(BACKBONE_SEP)
        if len(backbones) > 1:  # backbones side by side: one pass each
            times = (self.metrics.get("ensemble") or {}).get("relative_cost")
            about = f"about {times:.1f}x" if times else f"about {len(backbones)}x"
            return (
                f"an ensemble of {n} heads on {len(backbones)} backbones ({', '.join(backbones)}),"
                f" one forward pass each: an example costs {about} what a member on "
                f"{backbones[0]} alone does (the backbones' operations; the heads are "
                f"{share:.1%} of the parameters)"
            )
        return (
            f"an ensemble of {n} heads on one forward pass: an example costs about what one "
            f"member's does (the heads are {share:.1%} of the parameters)"
        )

    def save(self, out: str | Path) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        from safetensors.torch import save_file

        def write(module: torch.nn.Module, name: str) -> None:
            state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
            atomic_write_with(out / name, lambda tmp: save_file(state, str(tmp)))

        write(self.model, "model.safetensors")
        if self.trained_head is not None:
            write(self.trained_head, TRAINED_HEAD_FILE)
        kind = modality_of(self)
        kind.save_network(self, out / ENCODER_FOLDER)  # what rebuilds the network offline
        atomic_write_json(
            out / "model.json",
            {
                "format": RUN_FORMAT,
                "format_version": RUN_FORMAT_VERSION,
                "modality": self.modality,
                "backbone": self.backbone_name,
                "pooling": self.model.backbone.pooling,
                **kind.network_meta(self.model.backbone),
                "features": self.model.backbone.features.to_dict(),
                "num_features": self.model.backbone.num_features,
                "tta": self.model.tta,
                "head": self.head_spec.to_dict(),
                "class_names": list(self.class_names),
                "preprocessing": self.preprocessing.to_dict(),
                "weights": self.weights,
                "strategy": self.strategy.to_dict(),
                "parent": self.parent,
                "classic_weight": self.classic_weight,
                "classic_joint": self.classic_joint,
                **(
                    {"trained_head": self.trained_head_spec.to_dict()}
                    if self.trained_head is not None
                    else {}
                ),
            },
        )
        atomic_write_json(
            out / "config.json", {"config": self.config.to_sections(), "record": self.record}
        )
        if self.split:
            atomic_write_json(out / "split.json", self.split)
        if self.history is not None:
            atomic_write_text(out / "history.csv", history_csv(self.history))
        if self.classic is not None:
            self.classic.save(out / CLASSIC_FOLDER)
        atomic_write_json(out / "metrics.json", self.metrics)
        self.path = out
        return out


def history_csv(history: History) -> str:
    buf = io.StringIO()
    cols = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in history.epochs:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def _rebuild_interrupted(path: Path) -> Run:
    """Load a run whose training was interrupted, from its config, split and checkpoint.

    The best epoch so far is used (as the finished run would); ``metrics["interrupted"]`` says
    so, and ``headstart train --resume`` finishes the run.
    """
    from safetensors.torch import load_file

    from headstart.core.model import Suffix

    config = TrainConfig.from_file(path / "config.json")
    split = json.loads((path / "split.json").read_text())
    state = json.loads((path / "checkpoint" / "state.json").read_text())
    strategy = config.strategy_spec()
    class_names = tuple(split["class_names"])
    parent = load_run(config.parent) if config.parent else None
    loaded, head, plan = starting_model(config, class_names, parent)
    layout = state.get("layout") or {"module": "head"}
    module = {
        "head": lambda: head,
        "suffix": lambda: Suffix(plan.plan.suffix(layout["cut"]), loaded.backbone, head),
        "full": lambda: TransferModel(loaded.backbone, head),
    }[layout["module"]]()
    tensors = load_file(str(Checkpoint(path / "checkpoint").weights_file()))
    which = "best." if state.get("has_best") else "model."
    module.load_state_dict({k[len(which) :]: v for k, v in tensors.items() if k.startswith(which)})
    model = TransferModel(loaded.backbone, head, tta=config.tta).eval()
    history = History(**state["history"])
    return Run(
        model=model,
        class_names=class_names,
        preprocessing=loaded.preprocessing,
        config=config,
        backbone_name=loaded.timm_name,
        head_spec=config.head_spec(),
        history=history,
        metrics={
            "interrupted": True,
            "epochs_run": len(history.epochs),
            "best_epoch": history.best_epoch,
        },
        split=split,
        strategy=strategy,
        parent=config.parent,
        path=path,
        weights=weights_record(loaded, strategy, model),
    )


#: A joint run's head as trained (``Run.trained_head``), beside ``model.safetensors``.
TRAINED_HEAD_FILE = "trained_head.safetensors"


def load_run(path: str | Path) -> Run:
    """Rebuild a saved run from its directory alone (no network, no pickles)."""
    path = Path(path)
    meta = check_run_dir(path)  # the light checks, as the commands run them before torch
    if meta is None:
        return _rebuild_interrupted(path)
    cfg_payload = read_json(path / "config.json")
    config = TrainConfig.from_dict(cfg_payload.get("config", {}))
    weights_file = path / "model.safetensors"
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights_file))
    except (SafetensorError, OSError) as e:
        raise RunError(f"{weights_file}: unreadable ({str(e)[:200]}).") from None
    kind = modality(meta.get("modality", FALLBACK))
    backbone, preprocessing = kind.load_network(meta, state, path / ENCODER_FOLDER, path)
    spec = HeadSpec(**meta["head"])
    class_names = tuple(meta["class_names"])
    head = build_head(spec, int(meta["num_features"]), len(class_names))
    model = TransferModel(backbone, head, tta=bool(meta.get("tta", False)))
    try:
        model.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as e:
        raise RunError(
            f"{weights_file}: weights do not match model.json ({str(e)[:200]})."
        ) from None
    model.eval()
    trained_head, trained_spec = _trained_head(path, meta, len(class_names))
    strategy = Strategy(**meta.get("strategy", {}))
    plan_strategy(model.backbone, strategy)  # marks what this run trained, for summaries
    metrics = read_json(path / "metrics.json") if (path / "metrics.json").is_file() else {}
    split = read_json(path / "split.json") if (path / "split.json").is_file() else {}
    history = _history(path, metrics)
    run = Run(
        model=model,
        class_names=class_names,
        preprocessing=preprocessing,
        config=config,
        backbone_name=meta["backbone"],
        head_spec=spec,
        history=history,
        metrics=metrics,
        record=cfg_payload.get("record", {}),
        split=split,
        weights=meta.get("weights", {}),
        strategy=strategy,
        parent=meta.get("parent"),
        path=path,
        classic_weight=float(meta.get("classic_weight", 0.0)),
        classic_joint=bool(meta.get("classic_joint", False)),
        trained_head=trained_head,
        trained_head_spec=trained_spec,
    )
    if run.uses_classic and not (path / CLASSIC_FOLDER).is_dir():
        raise RunError(
            f"{path}: model.json blends in the classic baseline, but {CLASSIC_FOLDER}/ is "
            "missing; copy the whole run folder."
        )
    return run


def _trained_head(path: Path, meta: dict, n_classes: int):
    """A joint run's head as trained, kept for continuations: (head, spec), or None, None."""
    if not meta.get("trained_head"):
        return None, None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    spec = HeadSpec(**meta["trained_head"])
    head = build_head(spec, int(meta["num_features"]), n_classes)
    try:
        head.load_state_dict(load_file(str(path / TRAINED_HEAD_FILE)), strict=True)
    except (SafetensorError, RuntimeError, OSError) as e:
        raise RunError(
            f"{path / TRAINED_HEAD_FILE}: unreadable or not the head model.json names "
            f"({str(e)[:200]})."
        ) from None
    return head.eval(), spec


def _history(path: Path, metrics: dict) -> History | None:
    """The epochs of history.csv, with the best epoch and early stopping from the metrics."""
    if not (path / "history.csv").is_file():
        return None
    with open(path / "history.csv", newline="") as f:
        rows = [
            {k: (int(v) if k == "epoch" else float(v)) for k, v in r.items()}
            for r in csv.DictReader(f)
        ]
    history = History(epochs=rows)
    history.best_epoch = int(metrics.get("best_epoch", 0))
    history.stopped_early = bool(metrics.get("stopped_early", False))
    return history


def display_name(run) -> str:
    """A run as tables name it: its folder, backbone and model (``run1 (tf_efficientnet_lite0,
    feature-extraction)``)."""
    name = Path(run.path).name if run.path else "run"
    return f"{name} ({run.backbone_name}, {run.describe_model()})"
