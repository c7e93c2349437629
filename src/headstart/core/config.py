"""One serialisable object describes a training run. The CLI builds it, the run stores it,
``headstart train --config RUN_DIR/config.json`` replays it."""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from headstart.choices import (
    AUGMENT_MODES,
    AUTO_BUDGET_MINUTES,
    BLEND_MODES,
    BN_MODES,
    CLASS_WEIGHTS,
    DEFAULT_LABELS_SEP,
    DEFAULT_NETWORK,
    ENSEMBLE_BACKBONES,
    FEATURE_KINDS,
    HEADS,
    IMAGE_SIZE_RANGE,
    LONG_TEXTS,
    MODALITIES,
    OPTIMIZER_CHOICES,
    POOLING_CHOICES,
    RESIZE_MODES,
    SCHEDULE_CHOICES,
    STAGE_POOLINGS,
    STRATEGY_CHOICES,
    TASKS,
    THRESHOLD_RULES,
)
from headstart.core.splits import check_split_fractions
from headstart.errors import ConfigError

if TYPE_CHECKING:  # the specs load when a configuration is checked; none of them imports
    # torch before it builds a network, so a value out of range answers before torch loads
    from headstart.core.featurespec import FeatureSpec
    from headstart.core.fitsettings import FitSettings
    from headstart.core.heads import HeadSpec
    from headstart.core.recipe import Recipe
    from headstart.core.strategies import Strategy


TASKS_MULTI = TASKS[2]
#: Why ``--class-weights auto`` is refused for multi-label data (said before and during work).
THRESHOLDS_SINGLE_LABEL = (
    "--thresholds chooses how a multi-label run cuts each label's probability; this data has "
    "one class per example (the most probable class is predicted). Leave it at auto."
)
BLEND_MULTI_LABEL = (
    "--blend mixes the classic baseline into a model of one class per example; with several "
    "labels per example the baseline (TF-IDF, one model per label) is scored beside the model, "
    "not blended. Leave --blend out."
)
CLASS_WEIGHTS_MULTI_LABEL = (
    "--class-weights auto weighs each class by its share of the examples; with several labels "
    "per example each label has its own threshold instead. Leave it at none."
)


def parse_bytes(text: str | int | None, what: str = "cache budget") -> int | None:
    """'2GB', '500MB', '1.5G', 123 -> bytes; 'auto' or None -> None (decided from free space).
    ``what`` names the setting in the error."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "auto"):
        return None
    if isinstance(text, int):
        return text
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(float(t))
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not a size like 500MB or 4GB.") from None


def check_image_size(image_size: int) -> None:
    """``--image-size`` within :data:`~headstart.choices.IMAGE_SIZE_RANGE`."""
    low, high = IMAGE_SIZE_RANGE
    if not low <= int(image_size) <= high:
        raise ConfigError(
            f"--image-size must be between {low} and {high} pixels; got {image_size}."
        )


#: The configuration's sections, in the order ``config.json`` writes them. A setting that only
#: one kind of data uses is in that modality's section (its ``MODALITY.own_settings``, the one
#: place that says so: ``image``, ``text``); every other setting is in exactly one of these
#: (tests/test_config_sections.py holds both).
CORE_SECTIONS: dict[str, tuple[str, ...]] = {
    "data": ("data", "modality", "val_split", "test_split", "seed", "label_column"),
    "task": ("task", "labels_sep", "label_columns", "thresholds"),
    "model": ("backbone", "weights", "pooling", "head", "hidden", "dropout"),
    "strategy": (
        "strategy",
        "unfreeze",
        "layers",
        "bn",
        "parent",
        "candidates",
        "budget",
        "ensemble_backbones",
    ),  # fmt: skip
    "training": (
        "epochs",
        "batch_size",
        "lr",
        "weight_decay",
        "patience",
        "backbone_lr",
        "optimizer",
        "schedule",
        "warmup_epochs",
        "label_smoothing",
        "class_weights",
    ),  # fmt: skip
    "run": ("cache", "cache_budget", "cache_dtype", "workers", "device"),
}


def sections() -> dict[str, tuple[str, ...]]:
    """Every section (see :data:`CORE_SECTIONS`), modalities' included, by name."""
    from headstart.core.modality import modality

    out = dict(CORE_SECTIONS)
    for name in MODALITIES:
        own = modality(name).own_settings
        out[name] = tuple(f.name for f in fields(TrainConfig) if f.name in own)
    return out


@dataclass
class TrainConfig:
    """Everything a run depends on. Defaults are the founding lesson's recipe; the fitting
    settings left to auto (optimizer, backbone_lr, schedule, warmup_epochs, epochs: ``auto`` or
    None) take the recipe of the data's kind and the strategy (:mod:`headstart.core.recipe`):
    the lesson's for images and frozen encoders, transformers' for a text encoder that trains."""

    data: str | None = None
    modality: str = "auto"  # auto: detected from the data (headstart.core.data)
    val_split: float = 0.2
    test_split: float | None = None  # None: auto (headstart.core.splits.auto_test_split)
    seed: int = 0
    filename_column: str = "filename"
    label_column: str = "label"
    text_column: str = "text"
    task: str = "auto"  # auto: multi-label when the labels say so (headstart.core.labels)
    labels_sep: str = DEFAULT_LABELS_SEP
    label_columns: str | None = None  # multi-label: one 0/1 column per label, comma-separated
    thresholds: str = "auto"  # multi-label: auto, global or per-label (headstart.core.multilabel)
    backbone: str = DEFAULT_NETWORK  # the data's kind's own (each modality's configure)
    weights: str = "imagenet"
    pooling: str = "auto"
    features: str = "last"
    feature_stages: str = "auto"
    stage_pooling: str = "avg+max"
    image_size: int | None = None
    resize: str = "pad"
    max_length: int | None = None  # text: tokens per text (None: the encoder's, capped at 256)
    blend: str | None = None  # text: blend with the classic baseline (None: DEFAULT_BLEND)
    setfit: bool = False  # text: SetFit's contrastive stage tunes the encoder before the head
    long_texts: str | None = None  # text: how a longer text is read (None: DEFAULT_LONG_TEXTS)
    head: str = "lesson"
    hidden: int = 50
    dropout: float = 0.5
    epochs: int | None = None  # None: auto (the recipe's: 30; text fine-tuning fewer)
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float | None = None  # None: auto (AdamW's 0.01, Adam's 0)
    patience: int = 5
    strategy: str = "feature-extraction"
    unfreeze: int = 1
    layers: int = 0
    backbone_lr: float | None = None  # None: auto (the recipe's: 1e-5; text a text rate)
    optimizer: str = "auto"  # auto: the recipe's (adam; adamw for a text encoder that trains)
    bn: str = "auto"
    schedule: str = "auto"  # auto: the recipe's (none; linear for text fine-tuning)
    warmup_epochs: float | None = None  # None: auto (the recipe's: 0; text 10% of the steps)
    label_smoothing: float = 0.0
    class_weights: str = "none"
    augment: str = "none"
    views: int = 8
    flip: bool = True
    cache: bool = True
    cache_budget: str = "auto"
    cache_dtype: str = "float16"
    workers: int = -1
    tta: bool = False
    device: str = "auto"
    parent: str | None = None
    candidates: str | None = None
    budget: float = AUTO_BUDGET_MINUTES
    ensemble_backbones: str = ENSEMBLE_BACKBONES  # auto's other backbones: auto, none or A,B

    def __post_init__(self) -> None:
        if isinstance(self.augment, bool):  # older configs and the Python API accept booleans
            self.augment = "cached" if self.augment else "none"
        if self.schedule == "onecycle":  # linear's earlier name (older configurations say it)
            self.schedule = "linear"
        for name, valid in (
            ("strategy", STRATEGY_CHOICES),
            ("pooling", POOLING_CHOICES),
            ("resize", RESIZE_MODES),
            ("head", HEADS),
            ("augment", AUGMENT_MODES),
            ("schedule", SCHEDULE_CHOICES),
            ("optimizer", OPTIMIZER_CHOICES),
            ("bn", BN_MODES),
            ("class_weights", CLASS_WEIGHTS),
            ("cache_dtype", ("float16", "float32")),
            ("features", FEATURE_KINDS),
            ("stage_pooling", STAGE_POOLINGS),
            ("blend", BLEND_MODES),
            ("long_texts", LONG_TEXTS),
            ("thresholds", THRESHOLD_RULES),
        ):
            value = getattr(self, name)
            if value is None and name in ("blend", "long_texts"):  # the text modality's default
                continue
            if value not in valid:
                flag = name.replace("_", "-")
                close = difflib.get_close_matches(str(value), list(valid), n=1, cutoff=0.6)
                hint = f" Did you mean {close[0]}?" if close else ""
                raise ConfigError(
                    f"--{flag} must be one of {', '.join(valid)}; got {value!r}.{hint}"
                )
        if self.modality not in ("auto", *MODALITIES):
            raise ConfigError(
                f"--modality must be one of auto, {', '.join(MODALITIES)}; got {self.modality!r}."
            )
        if self.max_length is not None and self.max_length < 2:
            raise ConfigError(f"--max-length must be at least 2 tokens; got {self.max_length}.")
        if self.image_size is not None:
            check_image_size(self.image_size)
        check_split_fractions(self.val_split, self.test_split)
        self.label_format()
        if self.views < 1:
            raise ConfigError(f"--views must be at least 1; got {self.views}.")
        if self.workers < -1:
            raise ConfigError(f"--workers must be -1 (auto), 0 or more; got {self.workers}.")
        parse_bytes(self.cache_budget)
        if self.weight_decay is not None and not self.weight_decay >= 0:
            raise ConfigError(f"--weight-decay must be auto or 0 or more; got {self.weight_decay}.")
        if self.ensemble_backbones.strip().lower() in ("auto", "none"):
            self.ensemble_backbones = self.ensemble_backbones.strip().lower()
        if not self.budget > 0:
            raise ConfigError(f"--budget must be a positive number of minutes; got {self.budget}.")
        self.feature_spec()
        if self.tta and not self.flip:
            raise ConfigError(
                "--tta averages each image with its mirror image, and --no-flip says mirror "
                "images may be another class; drop one of them."
            )
        if self.features == "multi" and self.strategy not in ("feature-extraction", "auto"):
            raise ConfigError(
                f"--features multi trains a head on a frozen backbone; --strategy "
                f"{self.strategy} trains the backbone. Use --features last to fine-tune "
                "(headstart finetune RUN_DIR continues a frozen run)."
            )
        # the numeric checks live with the specs that use them (heads, strategies, training)
        self.head_spec()
        self.fit_settings()
        if self.strategy != "auto":  # "auto" is decided from the data by headstart.core.advise
            self.strategy_spec()

    def reading(self, columns: dict, multi_label: bool) -> TrainConfig:
        """This run's configuration for reading other labelled data (``evaluate RUN DATA``):
        ``columns`` (column names; ``task``, ``labels_sep``, ``label_columns``) where given,
        else the run's; a multi-label run reads label cells as label sets unless told
        otherwise, and a label column named without label columns is read as one."""
        given = dict(columns)
        if "label_column" in given and "label_columns" not in given:
            given["label_columns"] = None
        if multi_label and "task" not in given:
            given["task"] = TASKS_MULTI
        return dataclasses.replace(self, **given)

    def check_task(self, multi_label: bool) -> None:
        """Refuse the settings the data's task cannot use, once the labels say which it is
        (``multi_label``): the command line before torch loads, training for the Python API."""
        if multi_label and self.class_weights == "auto":
            raise ConfigError(CLASS_WEIGHTS_MULTI_LABEL)
        if multi_label and self.blend not in (None, "auto"):
            raise ConfigError(BLEND_MULTI_LABEL)
        if not multi_label and self.thresholds != "auto":
            raise ConfigError(THRESHOLDS_SINGLE_LABEL)

    def label_format(self):
        """How the data's label cells are read (``task``, ``labels_sep``, ``label_columns``)."""
        from headstart.core.labels import LabelFormat

        columns = tuple(c.strip() for c in (self.label_columns or "").split(",") if c.strip())
        return LabelFormat(task=self.task, sep=self.labels_sep, columns=columns)

    def for_modality(self, modality: str) -> TrainConfig:
        """This configuration for data of ``modality`` (what the data turned out to be): for
        text, the image default backbone becomes the text default encoder, and what only
        images have (augmentation, mirror TTA, every-depth image features) is refused."""
        if self.modality not in ("auto", modality):
            raise ConfigError(f"--modality {self.modality}, but the data holds {modality}s.")
        from headstart.core.modality import modality as named

        return named(modality).configure(self)

    def strategy_spec(self) -> Strategy:
        from headstart.core.strategies import Strategy

        if self.strategy == "auto":
            raise ConfigError(
                "strategy auto is decided from the data: train it with headstart.core.advise."
                "train_auto (the command line does)."
            )
        from headstart.core.modality import modality_of

        unit = modality_of(self).stage_word  # what a stage is called: stage, or layer
        return Strategy(self.strategy, self.unfreeze, self.layers, unit)

    def resolved_bn(self, n_train: int) -> str:
        """``auto``: BatchNorm statistics stay frozen for small data (under 10,000 images),
        except when training from scratch, where they must learn."""
        if self.bn != "auto":
            return self.bn
        if self.strategy == "scratch" or n_train >= 10_000:
            return "train"
        return "frozen"

    def head_spec(self) -> HeadSpec:
        from headstart.core.heads import HeadSpec

        return HeadSpec(self.head, self.hidden, self.dropout, standardize=self.head == "linear")

    def feature_spec(self) -> FeatureSpec:
        from headstart.core.featurespec import FeatureSpec

        return FeatureSpec(self.features, str(self.feature_stages), self.stage_pooling)

    def fit_recipe(self) -> Recipe:
        """What the fitting settings left to auto mean for this configuration: its
        modality's recipe for its strategy (before the data says which modality, and for
        ``--strategy auto`` before it picks, the lesson's)."""
        from headstart.core.modality import modality_of

        return modality_of(self).fit_recipe(self.strategy)

    def fit_settings(self, n_train: int = 0) -> FitSettings:
        """How the model is fitted: the settings given, the recipe's for those left to auto
        (:meth:`fit_recipe`). An auto weight decay is AdamW's 0.01 with AdamW, else 0 (a
        linear probe on cached features is regularised by its own C instead)."""
        from headstart.core.fitsettings import FitSettings
        from headstart.core.recipe import auto_weight_decay, resolve

        used = resolve(self, self.fit_recipe())
        backbone_lr = self.lr if self.strategy == "scratch" else used["backbone_lr"]
        weight_decay = self.weight_decay
        if weight_decay is None:
            weight_decay = auto_weight_decay(used["optimizer"]) or 0.0
        return FitSettings(
            epochs=used["epochs"],
            batch_size=self.batch_size,
            lr=self.lr,
            patience=self.patience,
            seed=self.seed,
            backbone_lr=backbone_lr,
            bn=self.resolved_bn(n_train),
            optimizer=used["optimizer"],
            schedule=used["schedule"],
            warmup_epochs=used["warmup_epochs"],
            label_smoothing=self.label_smoothing,
            weight_decay=weight_decay,
        )

    def to_dict(self) -> dict:
        """Every setting by name (flat)."""
        return dataclasses.asdict(self)

    def to_sections(self) -> dict[str, dict]:
        """Every setting in its section (:func:`sections`): what ``config.json`` holds."""
        flat = self.to_dict()
        return {name: {k: flat[k] for k in keys} for name, keys in sections().items()}

    def check_new_run(self) -> None:
        """What a run about to train is refused and a saved one is not (it must still load):
        ``--strategy fine-tune --unfreeze 0`` trains no stage (feature extraction, misnamed)."""
        if self.strategy == "fine-tune" and self.unfreeze < 1:
            raise ConfigError(
                f"--unfreeze must be at least 1 with --strategy fine-tune; got {self.unfreeze} "
                "(no stage to train is --strategy feature-extraction)."
            )

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A configuration as ``to_sections`` (or, before sections, ``to_dict``) wrote it.
        One without an ``optimizer`` key is of a
        version before fitting recipes: it trained with Adam, and holds the values it used
        for the other recipe settings, so it replays as it ran."""
        known = {f.name for f in fields(cls)}
        if d and all(isinstance(v, dict) for v in d.values()):  # written in sections
            unknown = sorted(set(d) - set(sections()))
            if unknown:
                raise ConfigError(f"unknown configuration section(s): {', '.join(unknown)}.")
            d = {k: v for section in d.values() for k, v in section.items()}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}.")
        if "optimizer" not in d and isinstance(d.get("backbone_lr"), float):
            d = {**d, "optimizer": "adam"}
        if d.get("modality") == "image":  # image runs of earlier versions held the text defaults
            d = {k: v for k, v in d.items() if k not in ("blend", "long_texts")}
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: cannot read configuration ({e}).") from None
        return cls.from_dict(payload.get("config", payload))


def resolve_device(name: str) -> str:
    """``auto`` -> cuda if available, else mps, else cpu."""
    import torch

    if name != "auto":
        if name.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but no CUDA GPU is available.")
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"
