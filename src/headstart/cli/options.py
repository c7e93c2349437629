"""The settings as the command line offers them, generated from :class:`TrainConfig`.

A setting's name, type and default are its :class:`~headstart.core.config.TrainConfig` field
(the one place each default is defined) and its section is the configuration's
(:func:`~headstart.core.config.sections`: data, task, model, strategy, training, run, and each
modality's own), so a command never declares a setting's option by hand: it names the settings
it takes, :func:`settings_options` adds them to its signature (typer reads the signature), and
the command receives them as one ``settings`` dict::

    @app.command()
    @settings_options("lr", "epochs")
    def finetune(run_dir: Path, settings: dict) -> None: ...

What this module adds is what only a person needs: each setting's help, the few flags spelled
otherwise (``--setfit`` has no ``--no-setfit``), and a parse step where the command line takes
text for a number (``--weight-decay auto``). ``--help`` lists the settings in panels named by
their sections. A command whose option means something else under the same name (``inspect
--workers``: threads decoding images) declares that option itself.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any

import typer

from headstart.choices import AUTO_TEST_FRACTION, AUTO_TEST_MIN_PER_CLASS
from headstart.core.config import TrainConfig, sections
from headstart.core.modality import modality as named_modality
from headstart.core.recipe import ADAMW_WEIGHT_DECAY
from headstart.errors import HeadstartError

#: The panels of ``--help``, by section (a section not named here is titled by its name).
PANELS = {
    "data": "Data",
    "task": "Several labels per example",
    "model": "Model",
    "strategy": "Strategy",
    "training": "Training",
    "run": "Where and how it runs",
    "image": "Images only",
    "text": "Texts only",
}

#: The fitting recipes that fill the settings left to auto (one source: each modality's own).
LESSON = named_modality("image").fit_recipe("fine-tune")
TEXT_FT = named_modality("text").fit_recipe("fine-tune")
TEXT_TRAINS = "a text encoder that trains"


def rate(x: float) -> str:
    """A learning rate as people write it: 1e-5, 1e-4, 2.5e-5."""
    mantissa, exponent = f"{x:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def parse_weight_decay(text: str) -> float | None:
    """``--weight-decay``: auto (None: the optimizer's own) or a number."""
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise HeadstartError(
            f"--weight-decay must be auto or a number like 0.001; got {text!r}."
        ) from None


@dataclass(frozen=True)
class Setting:
    """How the command line shows one setting: its help, and where it differs from what its
    field gives (another flag spelling, text parsed into the field's type, no default shown)."""

    help: str
    flags: tuple[str, ...] = ()
    typed_as: Any = None  # the command line's type, when it is not the field's
    given_as: Any = None  # its default then (the field's default otherwise)
    parse: Callable[[Any], Any] | None = None  # the command line's value -> the field's
    show_default: bool = True


SETTINGS: dict[str, Setting] = {
    # data
    "modality": Setting(
        "auto (detected: images, or a table with a text column / folders of .txt files), "
        "image or text."
    ),
    "val_split": Setting("Fraction of train held out for validation when the data has none."),
    "test_split": Setting(
        "Fraction of train held out as a test set when the data has none. Default: "
        f"{AUTO_TEST_FRACTION:g} when every class has at least {AUTO_TEST_MIN_PER_CLASS} "
        "images. 0: none, and the score is then the validation accuracy that chose the model "
        "(optimistic).",
        show_default=False,
    ),
    "seed": Setting("Seed for splits (and, in training, everything else)."),
    "label_column": Setting("CSV column holding labels."),
    # task
    "task": Setting(
        "single-label (one class per example), multi-label (a set of labels each), or auto: "
        "multi-label when a label cell holds --labels-sep or --label-columns is given."
    ),
    "labels_sep": Setting("Multi-label: what separates the labels in a cell (cat;dog)."),
    "label_columns": Setting(
        "Multi-label: one 0/1 column per label, comma-separated (cat,dog,bird), instead of a "
        "label column."
    ),
    "thresholds": Setting(
        "Multi-label: one threshold for every label (global), each label's own (per-label: "
        "kinder to rare labels, macro-F1), or auto: whichever scores the better micro-F1 on "
        "held-out folds of validation."
    ),
    # model
    "backbone": Setting(
        "default: the data's kind's (images tf_efficientnet_lite0, text minilm; both "
        "offline). Images: a Keras name (DenseNet121, MobileNetV2, ResNet50, ...), any timm "
        "model, A+B (side by side, frozen), or auto (rank the offline-available backbones on "
        "your data, take the best). Text: minilm, bert-base-uncased, distilbert, roberta, a "
        "Hugging Face name or folder."
    ),
    "weights": Setting(
        "imagenet (installed package, else the hub), a weights FILE, or none (random "
        "initialisation)."
    ),
    "pooling": Setting(
        "Pooling of the last features. Images: avg (auto) or max (the lesson's). Text: mean, "
        "cls or max (auto: the encoder's own, else mean)."
    ),
    "head": Setting(
        "lesson (BN-Dense-ReLU-Dropout-Dense) or linear: the linear probe, a logistic "
        "regression on standardised features fitted by L-BFGS, its C chosen on validation (on "
        "a network that trains: one Dense layer trained with it)."
    ),
    "hidden": Setting("Hidden units of the lesson head."),
    "dropout": Setting("Dropout of the lesson head."),
    # strategy
    "strategy": Setting(
        "feature-extraction (frozen backbone, head only), fine-tune (last --unfreeze N "
        "stages), freeze-first (all but the first --layers K blocks), full (everything, "
        "pretrained start), scratch (everything, random start), or auto (candidates tried "
        "cheapest first within --budget minutes, chosen on validation)."
    ),
    "unfreeze": Setting("fine-tune: stages to unfreeze from the top (1 = DenseNet's conv5)."),
    "layers": Setting("freeze-first: blocks to keep frozen from the input."),
    "candidates": Setting("With --backbone auto: the backbones to rank (A,B,C)."),
    "budget": Setting(
        "With --strategy auto: minutes for all of it (frozen pass, advice, candidates); a "
        "candidate starts only if its estimate fits and stops at the end, except the first "
        "(the plain train model), which always trains to its end."
    ),
    "ensemble_backbones": Setting(
        "With --strategy auto: other backbones whose frozen heads become candidates and "
        "ensemble members (one cached forward pass each); auto: with pretrained weights, every "
        "other one whose weights load offline; none; or A,B."
    ),
    # training
    "epochs": Setting(
        f"Maximum epochs (default: {LESSON.epochs}; {TEXT_TRAINS}: {TEXT_FT.epochs}).",
        show_default=False,
    ),
    "batch_size": Setting(
        "Batch size: the global batch (with --nproc each process takes a share)."
    ),
    "lr": Setting("Learning rate of the head."),
    "weight_decay": Setting(
        "Adam: an L2 penalty on the head's weights; AdamW: decoupled decay of every trained "
        f"weight matrix (never biases or LayerNorm). auto: with AdamW {ADAMW_WEIGHT_DECAY:g}; "
        "with Adam 0 (the lesson's). The linear probe on cached features has its own L2 "
        "strength, chosen on validation.",
        typed_as=str,
        given_as="auto",
        parse=parse_weight_decay,
    ),
    "patience": Setting(
        "Early stopping patience on val accuracy (several labels per example: val loss; 0: "
        "never stop)."
    ),
    "backbone_lr": Setting(
        f"Learning rate of the pretrained layers being trained (default: "
        f"{rate(LESSON.backbone_lr)}, the lesson's; {TEXT_TRAINS}: {rate(TEXT_FT.backbone_lr)}).",
        show_default=False,
    ),
    "optimizer": Setting(
        f"adam (the lesson's) or adamw (decoupled weight decay); auto: {LESSON.optimizer}, "
        f"and {TEXT_FT.optimizer} for {TEXT_TRAINS}, as transformers fine-tune."
    ),
    "schedule": Setting(
        "Learning rates per step: none, linear (decay to 0 at the last epoch) or cosine, after "
        f"any warm-up; auto: {LESSON.schedule}, and {TEXT_FT.schedule} for {TEXT_TRAINS}."
    ),
    "warmup_epochs": Setting(
        f"Linear warm-up, in epochs (default: {LESSON.warmup_fraction:.0%} of the planned "
        f"steps; {TEXT_TRAINS}: {TEXT_FT.warmup_fraction:.0%}).",
        show_default=False,
    ),
    "bn": Setting(
        "BatchNorm statistics of the pretrained layers being trained: frozen, train, or auto "
        "(frozen under 10,000 images; train from scratch). The new head's BatchNorm always "
        "learns."
    ),
    "label_smoothing": Setting("Label smoothing (0 = off)."),
    "class_weights": Setting("none, or auto: weight classes inversely to their frequency."),
    # run
    "cache": Setting(
        "Cache the frozen part's outputs (pooled features, or the prefix below the first "
        "trained stage) so every epoch runs only what trains."
    ),
    "cache_budget": Setting(
        "Largest prefix cache to write, e.g. 4GB; above it, train on the fly. auto: half the "
        "free disk, at most 64GB."
    ),
    "cache_dtype": Setting(
        "How a cached prefix (the frozen part below the stages that train) is stored: float16 "
        "(half the disk) or float32. Pooled features are always kept in float32."
    ),
    "workers": Setting(
        "Processes decoding images while training on the fly (-1: auto, none below 4 cores; "
        "0: decode in the training process)."
    ),
    "device": Setting("auto, cpu, cuda, cuda:1, mps."),
    # images
    "filename_column": Setting("CSV column holding image paths."),
    "features": Setting(
        "last: the pooled output of the last stage; multi: statistics of earlier stages' "
        "outputs as well (features from every depth; frozen backbone only)."
    ),
    "feature_stages": Setting(
        "With --features multi: auto (the last three stages), all, or stage numbers like "
        "4,5,6 (as --unfreeze counts them; headstart summary lists them)."
    ),
    "stage_pooling": Setting("With --features multi: each stage's statistics, avg+max or avg+std."),
    "image_size": Setting("Input size in pixels (default: the backbone's own)."),
    "resize": Setting("pad (keep aspect ratio, as the lesson), resize, or crop."),
    "augment": Setting(
        "none; cached: --views K random views (flip, rotation, zoom, translation, colour) per "
        "training image computed once with the frozen part, one drawn per epoch (costs K "
        "forward passes of the frozen part, once, and K x its cache size); on-the-fly: fresh "
        "views every step, which runs the whole network every step."
    ),
    "views": Setting("Augmented views per training image (cached)."),
    "flip": Setting(
        "Random horizontal flips in augmentation; --no-flip for images whose mirror image is "
        "another class (digits, written words, road signs)."
    ),
    "tta": Setting(
        "Test-time augmentation: predict on the image and its mirror image and average (needs "
        "--flip; the run predicts this way everywhere).",
        flags=("--tta",),
    ),
    # texts
    "text_column": Setting("The table column holding the texts."),
    "max_length": Setting(
        "Tokens per text (per window of a longer text, see --long-texts; default: the "
        "encoder's, at most 256)."
    ),
    "long_texts": Setting(
        "How a text longer than --max-length is read: window (whole, in windows "
        "overlapping by half, embeddings averaged), window-max (their maximum), head-tail (its "
        "first and last tokens), truncate (its start). Default: window."
    ),
    "blend": Setting(
        "Combine the model with the classic baseline (TF-IDF + logistic regression on "
        "the same train split). mix: their probabilities averaged, the weight chosen on "
        "validation (0: the model alone, 1: the baseline alone); joint: one logistic "
        "regression on both models' features (TF-IDF's and the encoder's); auto: the better of "
        "the two on validation; none: the model alone. Default: auto."
    ),
    "setfit": Setting(
        "Few labelled texts: SetFit's contrastive stage first tunes the encoder on pairs "
        "of training texts (same class: similar; different: apart), then the head trains on "
        "its features.",
        flags=("--setfit",),
    ),
}

#: Settings recorded in a run that no command line sets (the run it continues).
NOT_OPTIONS = frozenset({"data", "parent"})
#: Every setting ``headstart train`` takes: each TrainConfig field but those above.
TRAIN_SETTINGS = tuple(f.name for f in fields(TrainConfig) if f.name not in NOT_OPTIONS)
#: How a table or folder of labelled examples is read (``inspect``; ``evaluate`` DATA's, less
#: the modality, which is the run's).
READING_SETTINGS = (
    "modality",
    "filename_column",
    "label_column",
    "text_column",
    "task",
    "labels_sep",
    "label_columns",
)
#: What the commands that rank networks on the data read (``compare``, ``advise``): the data,
#: its split and the networks' input.
RANKING_SETTINGS = (
    "weights",
    "image_size",
    "val_split",
    "seed",
    "label_column",
    "text_column",
    "modality",
    "max_length",
)
#: What ``headstart finetune`` may change in the run it continues: how it trains, not what
#: it reads or which network.
FINETUNE_SETTINGS = (
    "strategy",
    "unfreeze",
    "layers",
    "epochs",
    "backbone_lr",
    "lr",
    "optimizer",
    "schedule",
    "warmup_epochs",
    "patience",
    "weight_decay",
    "batch_size",
    "label_smoothing",
    "bn",
    "augment",
    "views",
    "flip",
    "cache",
    "cache_budget",
    "cache_dtype",
    "workers",
    "device",
)
#: Of those, the ones a continuation keeps from the run it continues unless given (how it was
#: read and batched, its regularisation); the others take their own defaults, as the recipe
#: of the continuation's strategy fills what is left to auto.
FINETUNE_KEPT = frozenset(
    {"weight_decay", "batch_size", "label_smoothing", "flip", "workers", "cache_dtype"}
)


@functools.cache
def _layout() -> tuple[dict[str, str], list[str], dict[str, Any]]:
    """Read once per process: each setting's section, the settings in the sections' order,
    and the fields' types (every command's options are built from these at import)."""
    section_of, order = {}, []
    for section, names in sections().items():
        for name in names:
            section_of[name] = section
            order.append(name)
    return section_of, order, typing.get_type_hints(TrainConfig)


def panel_of(name: str) -> str:
    """The ``--help`` panel of a setting: its section's."""
    section = _layout()[0].get(name)
    if section is None:
        raise KeyError(f"{name} is in no section of the configuration")
    return PANELS.get(section, section.capitalize())


def in_sections(names) -> list[str]:
    """``names`` in the order of the configuration's sections (then of its fields)."""
    return sorted(names, key=_layout()[1].index)


def option(
    name: str,
    *,
    help: str | None = None,
    default: Any = MISSING,
    as_given: str | None = None,
    panel: str | None = None,
) -> tuple[Any, Any]:
    """One setting's ``(annotation, default)`` for a typer signature. ``help`` and
    ``default`` change them for one command; ``as_given``: None unless given, the command
    filling it from what ``as_given`` names (e.g. "the run's", said in the help)."""
    setting = SETTINGS[name]
    field = TrainConfig.__dataclass_fields__[name]
    kind = setting.typed_as or _layout()[2][name]
    if default is MISSING:
        default = setting.given_as if setting.typed_as is not None else field.default
    help = help or setting.help
    if as_given:
        kind, default = kind | None, None
        help = f"{help} Default: {as_given}."
    opt = typer.Option(
        *setting.flags,
        help=help,
        show_default=setting.show_default and not as_given,
        rich_help_panel=panel or panel_of(name),
    )
    return Annotated[kind, opt], default


def settings_options(
    *names: str,
    helps: dict[str, str] | None = None,
    defaults: dict[str, Any] | None = None,
    as_given: str | None = None,
    panel: str | None = None,
) -> Callable:
    """Add the named settings to a command as options (see the module's docstring). The
    command takes a ``settings`` parameter: the values, each parsed into its field's type
    (None stays None when ``as_given``). ``panel``: one ``--help`` panel for them all instead
    of their sections'."""
    helps, defaults = helps or {}, defaults or {}
    unknown = set(names) - SETTINGS.keys() | (helps.keys() | defaults.keys()) - set(names)
    if unknown:
        raise KeyError(f"not settings of this command: {sorted(unknown)}")

    def decorate(fn: Callable) -> Callable:
        own = inspect.signature(fn, eval_str=True)
        params = [p for p in own.parameters.values() if p.name != "settings"]
        for name in in_sections(names):  # --help's panels in the configuration's order
            annotation, default = option(
                name,
                help=helps.get(name),
                default=defaults.get(name, MISSING),
                as_given=as_given,
                panel=panel,
            )
            params.append(
                inspect.Parameter(
                    name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
                )
            )

        @functools.wraps(fn)
        def command(*args, **kwargs):
            settings = {}
            for name in names:
                value, parse = kwargs.pop(name), SETTINGS[name].parse
                settings[name] = parse(value) if parse and value is not None else value
            return fn(*args, settings=settings, **kwargs)

        command.__signature__ = own.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate
