"""The ``headstart`` command line: parse, call the Python API, print. No logic lives here."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from headstart.choices import (
    AUTO_TEST_FRACTION,
    AUTO_TEST_MIN_PER_CLASS,
    BACKBONE_SEP,
    CONTINUATIONS,
    DEFAULT_IMAGE_POOLING,
    ENGINES,
    SERVE_MAX_BATCH,
    SERVE_MAX_BYTES,
    SERVE_MAX_FILES,
    SERVE_MAX_WAIT_MS,
)
from headstart.console import (
    console,
    message,
    path_line,
    render_advice,
    render_backbones,
    render_evaluation,
    render_export,
    render_inspection,
    render_leaderboard,
    render_predictions,
    render_run,
    render_summary,
)
from headstart.core import distributed
from headstart.core.config import TrainConfig
from headstart.core.distributed import launched, speaks
from headstart.core.modality import modality as named_modality
from headstart.core.recipe import ADAMW_WEIGHT_DECAY
from headstart.errors import HeadstartError
from headstart.io import atomic_write_json, atomic_write_text
from headstart.modalities.image.backbones.aliases import DEFAULT_BACKBONE
from headstart.notes import speaking
from headstart.progress import enabled


class _QuietFlags:
    """Help without a type column for on/off flags (typer shows ``<bool>`` beside them)."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params


class _Command(_QuietFlags, TyperCommand):
    pass


class _Group(_QuietFlags, TyperGroup):
    pass


app = typer.Typer(
    name="headstart",
    cls=_Group,
    help="Adapt a pretrained network to your own labelled images or texts, fast and honestly "
    "evaluated.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataArg = Annotated[
    str | None,
    typer.Argument(
        help="Images: a folder (class subfolders, train/ val/ test/ split folders, or "
        "train_images.npy arrays), a .csv of filename,label rows, or demo:digits / demo:lfw. "
        "Texts: a .csv/.tsv/.jsonl table with a text column, or class folders of .txt files.",
        show_default=False,
    ),
]
DemoOpt = Annotated[
    bool, typer.Option("--demo", help="Use the built-in demo data (scikit-learn's digits).")
]
ValSplitOpt = Annotated[
    float, typer.Option(help="Fraction of train held out for validation when the data has none.")
]
TestSplitOpt = Annotated[
    float | None,
    typer.Option(
        help="Fraction of train held out as a test set when the data has none. Default: "
        f"{AUTO_TEST_FRACTION:g} when every class has at least {AUTO_TEST_MIN_PER_CLASS} "
        "images. 0: none, and the score is then the validation accuracy that chose the model "
        "(optimistic).",
        show_default=False,
    ),
]
SeedOpt = Annotated[int, typer.Option(help="Seed for splits (and, in training, everything else).")]
FilenameColOpt = Annotated[str, typer.Option(help="CSV column holding image paths.")]
LabelColOpt = Annotated[str, typer.Option(help="CSV column holding labels.")]
TaskOpt = Annotated[
    str,
    typer.Option(
        help="single-label (one class per example), multi-label (a set of labels each), or "
        "auto: multi-label when a label cell holds --labels-sep or --label-columns is given."
    ),
]
LabelsSepOpt = Annotated[
    str, typer.Option(help="Multi-label: what separates the labels in a cell (cat;dog).")
]
ThresholdsOpt = Annotated[
    str,
    typer.Option(
        help="Multi-label: one threshold for every label (global), each label's own "
        "(per-label: kinder to rare labels, macro-F1), or auto: whichever scores the better "
        "micro-F1 on held-out folds of validation."
    ),
]
LabelColumnsOpt = Annotated[
    str | None,
    typer.Option(
        help="Multi-label: one 0/1 column per label, comma-separated (cat,dog,bird), instead "
        "of a label column."
    ),
]
TextColOpt = Annotated[str, typer.Option(help="Text data: the table column holding the texts.")]
ModalityOpt = Annotated[
    str,
    typer.Option(
        help="auto (detected: images, or a table with a text column / folders of .txt "
        "files), image or text."
    ),
]
BlendOpt = Annotated[
    str | None,
    typer.Option(
        help="Text: combine the model with the classic baseline (TF-IDF + logistic regression "
        "on the same train split). mix: their probabilities averaged, the weight chosen on "
        "validation (0: the model alone, 1: the baseline alone); joint: one logistic "
        "regression on both models' features (TF-IDF's and the encoder's); auto: the better "
        "of the two on validation; none: the model alone. Default: auto."
    ),
]
SetfitOpt = Annotated[
    bool,
    typer.Option(
        "--setfit",
        help="Text, few labelled texts: SetFit's contrastive stage first tunes the encoder on "
        "pairs of training texts (same class: similar; different: apart), then the head "
        "trains on its features.",
    ),
]
MaxLengthOpt = Annotated[
    int | None,
    typer.Option(
        help="Text: tokens per text (per window of a longer text, see --long-texts; "
        "default: the encoder's, at most 256)."
    ),
]

LongTextsOpt = Annotated[
    str | None,
    typer.Option(
        help="Text: how a text longer than --max-length is read: window (whole, in windows "
        "overlapping by half, embeddings averaged), window-max (their maximum), head-tail "
        "(its first and last tokens), truncate (its start). Default: window.",
    ),
]


def _friendly(fn):
    """Turn the project's errors into one clear line and exit code 2 (``--debug`` shows more).
    The command's notes (``logging``) are printed as ``note:`` lines by the process that
    speaks, and its steps show their progress."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with speaking(_note if speaks() else None), enabled(True):
                return fn(*args, **kwargs)
        except HeadstartError as e:
            if os.environ.get("HEADSTART_DEBUG"):
                raise
            # plain Text: a message quoting a path like "img[1].png" is not markup; in a
            # distributed run rank 0 speaks (the ranks agree on errors before raising them)
            if speaks():
                console(stderr=True).print(message("error", str(e), "bold red"))
            raise typer.Exit(2) from None
        except Exception as e:
            debug = os.environ.get("HEADSTART_DEBUG")
            if launched() and not debug and distributed.is_peer_failure(e):  # a rank died
                said = distributed.lost_peer_message()
                if said:
                    err = console(stderr=True)
                    err.print(message("error", said, "bold red"))
                    hint = distributed.run_resume_hint()
                    if hint:
                        err.print("[yellow]resume with:[/]")
                        err.print(path_line(f"  {hint}"))
                raise typer.Exit(1) from None
            raise
        except KeyboardInterrupt as e:
            if not speaks():
                raise typer.Exit(130) from None
            err = console(stderr=True)
            if sys.stderr.isatty():
                sys.stderr.write("\n")  # below the progress bar the interrupt left behind
            out = getattr(e, "out", None)
            if out:
                err.print("[yellow]interrupted; resume with:[/]")
                err.print(path_line(f"  {distributed.resume_hint(out)}"))
            else:
                err.print(Text(str(e) or "interrupted", style="yellow"))
            raise typer.Exit(130) from None

    return wrapper


def _data_location(data: str | None, demo: bool) -> str:
    if demo and data is not None:
        raise HeadstartError(
            f"give a DATA location or --demo, not both (got {data!r} and --demo); "
            "demo:lfw names the other built-in data set."
        )
    if demo:
        return "demo:digits"
    if data is None:
        raise HeadstartError("give a DATA location, or --demo for the built-in digits data.")
    return data


def _version(value: bool) -> None:
    if value:
        from headstart import __version__

        typer.echo(f"headstart {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    if debug:
        os.environ["HEADSTART_DEBUG"] = "1"
    if launched() and ctx.invoked_subcommand != "train":
        if speaks():
            console(stderr=True).print(
                message(
                    "error",
                    f"headstart {ctx.invoked_subcommand} runs in one process; under torchrun "
                    "only `headstart train` runs on several. Start it without torchrun.",
                    "bold red",
                )
            )
        raise typer.Exit(2)


@app.command(cls=_Command)
@_friendly
def inspect(
    data: DataArg = None,
    demo: DemoOpt = False,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON here.")
    ] = None,
    val_split: ValSplitOpt = 0.2,
    test_split: TestSplitOpt = None,
    seed: SeedOpt = 0,
    filename_column: FilenameColOpt = "filename",
    label_column: LabelColOpt = "label",
    task: TaskOpt = TrainConfig.task,
    labels_sep: LabelsSepOpt = TrainConfig.labels_sep,
    label_columns: LabelColumnsOpt = TrainConfig.label_columns,
    text_column: TextColOpt = TrainConfig.text_column,
    modality: ModalityOpt = TrainConfig.modality,
    backbone: Annotated[
        str | None,
        typer.Option(help="Text: the encoder whose tokens are counted (default: minilm)."),
    ] = None,
    max_length: MaxLengthOpt = TrainConfig.max_length,
    workers: Annotated[int, typer.Option(help="Threads decoding images.")] = 4,
) -> None:
    """Check a dataset before training: counts, sizes or lengths, baseline, duplicates."""
    from headstart.core.data import inspect_source, load_source

    labels = TrainConfig(task=task, labels_sep=labels_sep, label_columns=label_columns)
    source = load_source(
        _data_location(data, demo),
        modality=modality,
        filename_column=filename_column,
        label_column=label_column,
        text_column=text_column,
        labels=labels.label_format(),
    )
    options = {"workers": workers}
    if getattr(source.train, "modality", "image") == "text":
        from headstart.core.checks import check_networks
        from headstart.modalities.text.names import DEFAULT_TEXT_ENCODER

        if backbone is not None:  # a mistyped encoder, before transformers loads
            check_networks([backbone], "text")
        options = {"encoder": backbone or DEFAULT_TEXT_ENCODER, "max_length": max_length}
    elif backbone is not None or max_length is not None:
        raise HeadstartError("--backbone and --max-length: inspect uses them for text data only.")
    report = inspect_source(
        source,
        val_split=val_split,
        test_split=test_split,
        seed=seed,
        **options,
    )
    console().print(render_inspection(report))
    if json_out is not None:
        atomic_write_json(json_out, report.to_dict())
        console().print(path_line(f"wrote {json_out}"))


BackboneOpt = Annotated[
    str,
    typer.Option(
        help="default: the data's kind's (images tf_efficientnet_lite0, text minilm; both "
        "offline). Images: a Keras name (DenseNet121, MobileNetV2, ResNet50, ...), any timm "
        "model, A+B (side by side, frozen), or auto (rank the offline-available backbones on "
        "your data, take the best). Text: minilm, bert-base-uncased, distilbert, roberta, a "
        "Hugging Face name or folder."
    ),
]
WeightsOpt = Annotated[
    str,
    typer.Option(
        help="imagenet (installed package, else the hub), a weights FILE, or none "
        "(random initialisation)."
    ),
]


StrategyOpt = Annotated[
    str,
    typer.Option(
        help="feature-extraction (frozen backbone, head only), fine-tune (last "
        "--unfreeze N stages), freeze-first (all but the first --layers K blocks), "
        "full (everything, pretrained start), scratch (everything, random start), or auto "
        "(candidates tried cheapest first within --budget minutes, chosen on validation)."
    ),
]
FinetuneStrategyOpt = Annotated[
    str,
    typer.Option(
        help="How to continue: fine-tune (last --unfreeze N stages), freeze-first (all but "
        "the first --layers K blocks) or full (everything)."
    ),
]
UnfreezeOpt = Annotated[
    int, typer.Option(help="fine-tune: stages to unfreeze from the top (1 = DenseNet's conv5).")
]
LayersOpt = Annotated[int, typer.Option(help="freeze-first: blocks to keep frozen from the input.")]
#: The fitting recipes that fill the settings left to auto (one source: each modality's own)
_LESSON = named_modality("image").fit_recipe("fine-tune")
_TEXT_FT = named_modality("text").fit_recipe("fine-tune")
_TEXT_TRAINS = "a text encoder that trains"


def _rate(x: float) -> str:
    """A learning rate as people write it: 1e-5, 1e-4, 2.5e-5."""
    mantissa, exponent = f"{x:e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


BackboneLrOpt = Annotated[
    float | None,
    typer.Option(
        help=f"Learning rate of the pretrained layers being trained (default: "
        f"{_rate(_LESSON.backbone_lr)}, the lesson's; {_TEXT_TRAINS}: "
        f"{_rate(_TEXT_FT.backbone_lr)}).",
        show_default=False,
    ),
]
OptimizerOpt = Annotated[
    str,
    typer.Option(
        help=f"adam (the lesson's) or adamw (decoupled weight decay); auto: "
        f"{_LESSON.optimizer}, and {_TEXT_FT.optimizer} for {_TEXT_TRAINS}, as transformers "
        "fine-tune."
    ),
]
BnOpt = Annotated[
    str,
    typer.Option(
        help="BatchNorm statistics of the pretrained layers being trained: frozen, train, "
        "or auto (frozen under 10,000 images; train from scratch). The new head's "
        "BatchNorm always learns."
    ),
]
AugmentOpt = Annotated[
    str,
    typer.Option(
        help="none; cached: --views K random views (flip, rotation, zoom, translation, colour) "
        "per training image computed once with the frozen part, one drawn per epoch "
        "(costs K forward passes of the frozen part, once, and K x its cache size); "
        "on-the-fly: fresh views every step, which runs the whole network every step."
    ),
]
ViewsOpt = Annotated[int, typer.Option(help="Augmented views per training image (cached).")]
FlipOpt = Annotated[
    bool,
    typer.Option(
        help="Images only: random horizontal flips in augmentation; --no-flip for images "
        "whose mirror image is another class (digits, written words, road signs)."
    ),
]
CacheOpt = Annotated[
    bool,
    typer.Option(
        help="Cache the frozen part's outputs (pooled features, or the prefix below the "
        "first trained stage) so every epoch runs only what trains."
    ),
]
CacheBudgetOpt = Annotated[
    str,
    typer.Option(
        help="Largest prefix cache to write, e.g. 4GB; above it, train on the fly. "
        "auto: half the free disk, at most 64GB."
    ),
]
ScheduleOpt = Annotated[
    str,
    typer.Option(
        help=f"Learning rates per step: none, linear (decay to 0 at the last epoch) or cosine, "
        f"after any warm-up; auto: {_LESSON.schedule}, and {_TEXT_FT.schedule} for "
        f"{_TEXT_TRAINS}."
    ),
]
WarmupOpt = Annotated[
    float | None,
    typer.Option(
        help=f"Linear warm-up, in epochs (default: {_LESSON.warmup_fraction:.0%} of the planned "
        f"steps; {_TEXT_TRAINS}: {_TEXT_FT.warmup_fraction:.0%}).",
        show_default=False,
    ),
]
SmoothingOpt = Annotated[float, typer.Option(help="Label smoothing (0 = off).")]
ClassWeightsOpt = Annotated[
    str, typer.Option(help="none, or auto: weight classes inversely to their frequency.")
]
WorkersOpt = Annotated[
    int,
    typer.Option(
        help="Processes decoding images while training on the fly "
        "(-1: auto, none below 4 cores; 0: decode in the training process)."
    ),
]
EpochsOpt = Annotated[
    int | None,
    typer.Option(
        help=f"Maximum epochs (default: {_LESSON.epochs}; {_TEXT_TRAINS}: {_TEXT_FT.epochs}).",
        show_default=False,
    ),
]
PatienceOpt = Annotated[
    int,
    typer.Option(
        help="Early stopping patience on val accuracy (several labels per example: val "
        "loss; 0: never stop)."
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:1, mps.")]
TtaOpt = Annotated[
    bool,
    typer.Option(
        "--tta",
        help="Test-time augmentation: predict on the image and its mirror image and average "
        "(needs --flip; the run predicts this way everywhere).",
    ),
]
# flags that are off by default have no --no-X form: the help keeps its width for the text
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace an earlier headstart run in --out (atomically, once the new run is "
        "complete). A folder holding anything else is never written to.",
    ),
]


@app.command(cls=_Command)
@_friendly
def train(
    ctx: typer.Context,
    data: DataArg = None,
    demo: DemoOpt = False,
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/DATE-BACKBONE-STRATEGY).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="Replay a run: its RUN_DIR or RUN_DIR/config.json; flags given beside it "
            "change those settings."
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Finish an interrupted run (Ctrl-C, a crash) from its last checkpoint; "
            "only --device, --workers and --nproc may change."
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    backbone: BackboneOpt = TrainConfig.backbone,
    candidates: Annotated[
        str | None, typer.Option(help="With --backbone auto: the backbones to rank (A,B,C).")
    ] = None,
    weights: WeightsOpt = TrainConfig.weights,
    strategy: StrategyOpt = TrainConfig.strategy,
    unfreeze: UnfreezeOpt = TrainConfig.unfreeze,
    layers: LayersOpt = TrainConfig.layers,
    pooling: Annotated[
        str,
        typer.Option(
            help="Pooling of the last features. Images: avg (auto) or max (the lesson's). "
            "Text: mean, cls or max (auto: the encoder's own, else mean)."
        ),
    ] = TrainConfig.pooling,
    features: Annotated[
        str,
        typer.Option(
            help="last: the pooled output of the last stage; multi: statistics of earlier "
            "stages' outputs as well (features from every depth; frozen backbone only)."
        ),
    ] = TrainConfig.features,
    feature_stages: Annotated[
        str,
        typer.Option(
            help="With --features multi: auto (the last three stages), all, or stage "
            "numbers like 4,5,6 (as --unfreeze counts them; headstart summary lists them)."
        ),
    ] = TrainConfig.feature_stages,
    stage_pooling: Annotated[
        str,
        typer.Option(help="With --features multi: each stage's statistics, avg+max or avg+std."),
    ] = TrainConfig.stage_pooling,
    image_size: Annotated[
        int | None, typer.Option(help="Input size in pixels (default: the backbone's own).")
    ] = None,
    resize: Annotated[
        str, typer.Option(help="pad (keep aspect ratio, as the lesson), resize, or crop.")
    ] = TrainConfig.resize,
    head: Annotated[
        str,
        typer.Option(
            help="lesson (BN-Dense-ReLU-Dropout-Dense) or linear: the linear probe, a "
            "logistic regression on standardised features fitted by L-BFGS, its C chosen "
            "on validation (on a network that trains: one Dense layer trained with it)."
        ),
    ] = TrainConfig.head,
    hidden: Annotated[
        int, typer.Option(help="Hidden units of the lesson head.")
    ] = TrainConfig.hidden,
    dropout: Annotated[
        float, typer.Option(help="Dropout of the lesson head.")
    ] = TrainConfig.dropout,
    epochs: EpochsOpt = TrainConfig.epochs,
    batch_size: Annotated[
        int,
        typer.Option(
            help="Batch size: the global batch (with --nproc each process takes a share)."
        ),
    ] = TrainConfig.batch_size,
    lr: Annotated[float, typer.Option(help="Learning rate of the head.")] = TrainConfig.lr,
    weight_decay: Annotated[
        str,
        typer.Option(
            help="Adam: an L2 penalty on the head's weights; AdamW: decoupled decay of every "
            "trained weight matrix (never biases or LayerNorm). auto: with AdamW "
            f"{ADAMW_WEIGHT_DECAY:g}; with Adam 0 (the lesson's). The linear probe on cached "
            "features has its own L2 strength, chosen on validation."
        ),
    ] = "auto",
    optimizer: OptimizerOpt = TrainConfig.optimizer,
    backbone_lr: BackboneLrOpt = TrainConfig.backbone_lr,
    patience: PatienceOpt = TrainConfig.patience,
    bn: BnOpt = TrainConfig.bn,
    schedule: ScheduleOpt = TrainConfig.schedule,
    warmup_epochs: WarmupOpt = TrainConfig.warmup_epochs,
    label_smoothing: SmoothingOpt = TrainConfig.label_smoothing,
    class_weights: ClassWeightsOpt = TrainConfig.class_weights,
    augment: AugmentOpt = TrainConfig.augment,
    views: ViewsOpt = TrainConfig.views,
    flip: FlipOpt = TrainConfig.flip,
    cache: CacheOpt = TrainConfig.cache,
    cache_budget: CacheBudgetOpt = TrainConfig.cache_budget,
    workers: WorkersOpt = TrainConfig.workers,
    tta: TtaOpt = TrainConfig.tta,
    budget: Annotated[
        float,
        typer.Option(
            help="With --strategy auto: minutes for all of it (frozen pass, advice, "
            "candidates); a candidate starts only if its estimate fits and stops at the end, "
            "except the first (the plain train model), which always trains to its end."
        ),
    ] = TrainConfig.budget,
    ensemble_backbones: Annotated[
        str,
        typer.Option(
            help="With --strategy auto: other backbones whose frozen heads become candidates "
            "and ensemble members (one cached forward pass each); auto: with pretrained "
            "weights, every other one whose weights load offline; none; or A,B."
        ),
    ] = TrainConfig.ensemble_backbones,
    device: DeviceOpt = TrainConfig.device,
    val_split: ValSplitOpt = TrainConfig.val_split,
    test_split: TestSplitOpt = TrainConfig.test_split,
    seed: SeedOpt = TrainConfig.seed,
    filename_column: FilenameColOpt = TrainConfig.filename_column,
    label_column: LabelColOpt = TrainConfig.label_column,
    task: TaskOpt = TrainConfig.task,
    labels_sep: LabelsSepOpt = TrainConfig.labels_sep,
    label_columns: LabelColumnsOpt = TrainConfig.label_columns,
    thresholds: ThresholdsOpt = TrainConfig.thresholds,
    text_column: TextColOpt = TrainConfig.text_column,
    modality: ModalityOpt = TrainConfig.modality,
    max_length: MaxLengthOpt = TrainConfig.max_length,
    blend: BlendOpt = TrainConfig.blend,
    setfit: SetfitOpt = TrainConfig.setfit,
    long_texts: LongTextsOpt = TrainConfig.long_texts,
    nproc: Annotated[
        str | None,
        typer.Option(
            help="Train on N processes of this machine, started by torchrun (PyTorch's "
            "launcher): CPU processes on gloo, GPUs on NCCL; auto: one per GPU. "
            "--batch-size stays the global batch. Several machines: torchrun (README)."
        ),
    ] = None,
) -> None:
    """Train a classifier on a pretrained backbone: frozen (default) or fine-tuned.

    The frozen part runs once per image and is cached; each epoch runs only what trains.
    """
    _nproc_asked(nproc)  # a mistyped --nproc is answered before torch loads
    params = dict(locals())
    given = _given(ctx)
    settings = {k: v for k, v in params.items() if k in _CONFIG_FIELDS}
    settings["weight_decay"] = _weight_decay(weight_decay)
    settings["data"] = _data_location(data, demo) if (data is not None or demo) else None
    if resume is not None:
        # a resumed run must finish as the uninterrupted one would: only where it runs may change
        changed = sorted(given - {"resume", "device", "workers", "overwrite", "nproc"})
        if changed:
            raise HeadstartError(
                f"--resume finishes {resume} with its recorded configuration; "
                f"{_flags(changed)} would change it. Drop {'them' if len(changed) > 1 else 'it'}, "
                "or start a new run with --config RUN_DIR and the changes."
            )
        cfg = TrainConfig.from_file(resume)
        cfg = _with(cfg, {k: settings[k] for k in given & {"device", "workers"}})
        out = resume
    elif config is not None:
        # replay a recorded configuration; every flag given beside it changes that setting
        cfg = TrainConfig.from_file(config)
        overrides = {k: settings[k] for k in given & _CONFIG_FIELDS}
        if settings["data"] is not None:
            overrides["data"] = settings["data"]
        cfg = _with(cfg, overrides)
    else:
        settings["data"] = _data_location(data, demo)
        cfg = TrainConfig(**settings)
    # options, names, weights, the data and --out are checked before torch loads
    from headstart.core.checks import ready_to_train
    from headstart.core.rundir import check_out

    source = ready_to_train(cfg)
    if out is not None and resume is None:
        check_out(out, overwrite=overwrite)
    from headstart.api import train as train_run

    if nproc is not None or distributed.launched():
        group = _distributed_start(cfg, nproc, out if resume is None else resume)
        if group is None:  # this process launched the others, which have finished
            return
    if cfg.backbone == "auto" or cfg.strategy == "auto":
        from headstart.core.advise import train_auto

        run = train_auto(cfg, data=source, out=out, overwrite=overwrite)
    else:
        run = train_run(
            cfg,
            data=source,
            out=out,
            resume=resume is not None,
            say=None,  # (said by the command's handler)
            overwrite=overwrite,
        )
    if speaks():
        console().print(render_run(run))


def _distributed_start(cfg: TrainConfig, nproc: str | None, out: Path | None):
    """``--nproc N``: start N processes through torchrun and report how they ended (returns
    None). In a process torchrun started: join the group and return it."""
    from headstart.core.config import resolve_device

    auto = cfg.backbone == "auto" or cfg.strategy == "auto"
    if distributed.launched():
        if nproc is not None:
            raise HeadstartError(
                "--nproc starts torchrun itself; under torchrun leave it out "
                "(torchrun's --nproc-per-node says how many processes)."
            )
        if auto:
            raise HeadstartError(distributed.AUTO_SINGLE_PROCESS)
        return distributed.init(resolve_device(cfg.device))
    n = _nproc_count(nproc, resolve_device(cfg.device))
    if n == 1:
        return distributed.SINGLE
    if auto:
        raise HeadstartError(distributed.AUTO_SINGLE_PROCESS)
    if out is None:  # every process and the final message must name the same folder
        from headstart.core.training import default_run_dir, for_data

        out = default_run_dir(for_data(cfg))  # named as one process would name it
    args = _without_nproc(sys.argv[1:])
    named = {a.split("=", 1)[0] for a in args}
    if not named & {"--out", "--resume"}:
        args += ["--out", str(out)]
    failure = distributed.launch(n, args, command=" ".join(["headstart", *sys.argv[1:]]))
    if failure is None:
        return None
    if failure.exitcode in (2, 130):  # rank 0 has said what happened and what to do
        raise typer.Exit(failure.exitcode)
    err = console(stderr=True)
    what = (
        f"{failure.describe()}, and torchrun stopped its {n} processes."
        if failure.rank < 0
        else f"process {failure.rank} of {n} {failure.describe()}, and torchrun stopped the "
        "others with it."
    )
    err.print(message("error", what, "bold red"))
    if (out / "split.json").is_file():
        err.print("[yellow]the run directory is resumable; resume with:[/]")
        err.print(path_line(f"  headstart train --resume {out} --nproc {n}"))
    else:
        err.print(Text("nothing to resume yet: run the same command again.", style="yellow"))
    raise typer.Exit(1)


def _one_class_each(source, command: str) -> None:
    """Refuse multi-label data where a command ranks by accuracy (compare, advise)."""
    if getattr(source.train.labels, "ndim", 1) == 2:
        raise HeadstartError(
            f"{command} ranks backbones by accuracy, one class per example; this data has "
            "several labels per example. Train each backbone (headstart train --backbone NAME, "
            "or --strategy auto) and compare the runs with headstart evaluate RUN --compare "
            "OTHER_RUN (paired micro-F1)."
        )


def _nproc_asked(text: str | None) -> int | str | None:
    """--nproc as given: a number of at least 1, "auto", or None; checked before torch loads."""
    if text is None or text.strip().lower() == "auto":
        return text and "auto"
    try:
        n = int(text)
    except ValueError:
        raise HeadstartError(
            f"--nproc must be a number of processes or auto; got {text!r}."
        ) from None
    if n < 1:
        raise HeadstartError(f"--nproc must be at least 1; got {n}.")
    return n


def _nproc_count(text: str | None, device: str) -> int:
    import torch

    asked = _nproc_asked(text)
    gpus = torch.cuda.device_count() if device.startswith("cuda") else 0
    if asked is None:
        return 1
    if asked == "auto":
        if not gpus:
            raise HeadstartError(
                "--nproc auto starts one process per GPU, and none is in use here; "
                "give a number (--nproc 2) for CPU processes."
            )
        return gpus
    if gpus and asked > gpus:
        raise HeadstartError(
            f"--nproc {asked} on {gpus} GPU(s): each process trains on a GPU of its own; "
            f"use --nproc {gpus} or fewer (or --device cpu)."
        )
    cores = os.cpu_count() or 1
    if not gpus and asked > cores:
        _note(
            f"{asked} processes on {cores} CPU cores: they share the cores, so expect no "
            f"speed-up beyond --nproc {cores}."
        )
    return asked


def _without_nproc(args: list[str]) -> list[str]:
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


_CONFIG_FIELDS = frozenset(TrainConfig.__dataclass_fields__) - {"parent"}


def _given(ctx: typer.Context) -> set[str]:
    """Parameters the user typed (not defaults)."""
    return {
        name
        for name in ctx.params
        if (src := ctx.get_parameter_source(name)) is not None and src.name == "COMMANDLINE"
    }


def _flags(names) -> str:
    return ", ".join("--" + n.replace("_", "-") for n in names)


def _with(cfg: TrainConfig, changes: dict) -> TrainConfig:
    from dataclasses import replace

    return replace(cfg, **changes) if changes else cfg


def _weight_decay(text: str) -> float | None:
    if text.strip().lower() == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise HeadstartError(
            f"--weight-decay must be auto or a number like 0.001; got {text!r}."
        ) from None


def _note(text: str) -> None:
    console(stderr=True).print(message("note", text, "yellow"))


@app.command(cls=_Command)
@_friendly
def finetune(
    run_dir: Annotated[Path, typer.Argument(help="A saved run to continue (usually frozen).")],
    out: Annotated[Path | None, typer.Option(help="The new run's directory.")] = None,
    overwrite: OverwriteOpt = False,
    strategy: FinetuneStrategyOpt = "fine-tune",
    unfreeze: UnfreezeOpt = 1,
    layers: LayersOpt = 0,
    epochs: EpochsOpt = TrainConfig.epochs,
    backbone_lr: BackboneLrOpt = TrainConfig.backbone_lr,
    lr: Annotated[float, typer.Option(help="Learning rate of the head.")] = TrainConfig.lr,
    optimizer: OptimizerOpt = TrainConfig.optimizer,
    schedule: ScheduleOpt = TrainConfig.schedule,
    warmup_epochs: WarmupOpt = TrainConfig.warmup_epochs,
    patience: PatienceOpt = TrainConfig.patience,
    bn: BnOpt = TrainConfig.bn,
    augment: AugmentOpt = TrainConfig.augment,
    views: ViewsOpt = TrainConfig.views,
    cache: CacheOpt = True,
    cache_budget: CacheBudgetOpt = TrainConfig.cache_budget,
    device: DeviceOpt = "auto",
) -> None:
    """Second stage of the lesson: continue RUN_DIR with the top of the backbone unfrozen.

    The head's trained weights are kept, the new run records its parent, and its report
    plots both histories (Frozen vs Finetuned). The continuation is fitted by the options
    given here, its recipe filling the rest (not the parent's epochs, rates or schedule).
    """
    from dataclasses import replace

    from headstart.core.checks import run_config
    from headstart.core.rundir import check_out

    if strategy not in CONTINUATIONS:
        raise HeadstartError(
            f"--strategy must be one of {', '.join(CONTINUATIONS)} to continue a run; "
            f"got {strategy!r}."
        )
    # the run, the options and --out are checked before torch loads
    recorded = run_config(run_dir)
    if BACKBONE_SEP in recorded.backbone:
        first = recorded.backbone.split(BACKBONE_SEP)[0]
        raise HeadstartError(
            f"{run_dir} reads backbones side by side ({recorded.backbone}), frozen whole: it "
            f"cannot be fine-tuned. Fine-tune one of them: train it alone (--backbone {first}), "
            "then finetune that run."
        )
    if recorded.features == "multi":
        raise HeadstartError(
            f"{run_dir}: its head reads features from every depth (--features multi), which "
            "a fine-tuned backbone does not produce. Continue a run trained on the last "
            "features (--features last, the default)."
        )
    if recorded.data is None:
        raise HeadstartError(f"{run_dir}: trained on in-memory arrays; continue it in Python.")
    cfg = replace(
        recorded,
        strategy=strategy,
        unfreeze=unfreeze,
        layers=layers,
        epochs=epochs,
        backbone_lr=backbone_lr,
        lr=lr,
        optimizer=optimizer,
        schedule=schedule,
        warmup_epochs=warmup_epochs,
        patience=patience,
        bn=bn,
        augment=augment,
        views=views,
        cache=cache,
        cache_budget=cache_budget,
        device=device,
        parent=str(run_dir),
    )
    out = out or run_dir.with_name(f"{run_dir.name}-{strategy}")
    check_out(out, overwrite=overwrite)
    from headstart.api import train as train_run
    from headstart.core.overlap import run_splits
    from headstart.core.runs import load_run

    parent = load_run(run_dir)
    splits = run_splits(parent)  # exactly the parent's images: the comparison is paired
    run = train_run(
        cfg,
        data=splits,
        out=out,
        say=None,  # (said by the command's handler)
        overwrite=overwrite,
    )
    console().print(render_run(run))


@app.command(cls=_Command)
@_friendly
def predict(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="A run directory written by headstart train (or, with --engine onnx, a "
            "model.onnx written by headstart export)."
        ),
    ],
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Image files, folders of images, or .npy arrays; for a text run, .txt "
            "files, folders of them, a CSV/TSV/JSONL table (its text column), or - "
            "(standard input, one text per line)."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write predictions as CSV here: a new file, or a predictions CSV headstart "
            "wrote (any other file is left alone, and the command stops)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Inputs per forward pass.")] = 32,
    text_column: Annotated[
        str | None,
        typer.Option(
            help="Text run, table input: the column holding the texts (default: the run's)."
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="torch: the saved run; onnx: its export (headstart export) through ONNX "
            "Runtime, without PyTorch (pip install 'headstart\\[onnx]')."
        ),
    ] = ENGINES[0],
) -> None:
    """Predict labels and class probabilities with a saved run."""
    from headstart.core.checks import check_predict_inputs, check_predictions_out
    from headstart.deploy.onnx_model import check_engine_target, load_engine

    check_engine_target(run_dir, engine)  # before torch loads: a run, or an export
    check_predict_inputs(inputs)
    if out is not None:
        check_predictions_out(out, inputs)
    from headstart.core.predictions import predictions_csv, rows_said

    run = load_engine(run_dir, engine)
    modality = run.modality
    if engine == "onnx":
        default_column = run.meta["client"].get("text_column", "text")
    else:
        default_column = run.config.text_column
    if modality == "text":
        from headstart.modalities.text.predict import predict_text_inputs

        column = text_column or default_column
        preds = predict_text_inputs(
            run, [str(i) for i in inputs], text_column=column, batch_size=batch_size
        )
    else:
        from headstart.modalities.image.predict import predict_inputs

        preds = predict_inputs(run, inputs, batch_size=batch_size)
    cost = run.meta.get("cost") if engine == "onnx" else run.cost_note()
    if cost:  # an ensemble: what an example costs against one member, said once
        console(stderr=True).print(message("model", cost, "cyan"))
    text = predictions_csv(preds, run.class_names)
    if out is not None:
        atomic_write_text(out, text)
        console().print(path_line(f"wrote {rows_said(preds)} to {out}"))
    else:
        multi = getattr(run, "thresholds", None) is not None
        console().print(render_predictions(preds, label_names=run.class_names if multi else None))
    failed = [p for p in preds if p.error]
    if failed:
        err = console(stderr=True)
        err.print(Text(f"{len(failed)} input(s) could not be read:", style="yellow"))
        for p in failed[:20]:
            err.print(path_line(f"  {p.input}  ({p.error})"))


@app.command(cls=_Command)
@_friendly
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by headstart train.")],
    out: Annotated[
        Path | None,
        typer.Option(help="The .onnx file to write (default: RUN_DIR/onnx/model.onnx)."),
    ] = None,
    format: Annotated[str, typer.Option(help="onnx (the only format).")] = "onnx",
) -> None:
    """Export a run to ONNX, checked by ONNX Runtime against PyTorch before it is written."""
    if format != "onnx":
        raise HeadstartError(f"--format {format}: only onnx is supported.")
    from headstart.deploy.export import check_export, export_onnx

    check_export(run_dir, out)  # the run and --out, before torch loads
    from headstart.deploy.onnx_model import DEFAULT_EXPORT

    err = console(stderr=True)
    meta = export_onnx(run_dir, out, say=lambda m: err.print(Text(m, "dim")))
    console().print(render_export(meta))
    folder = (out if out is not None else run_dir / DEFAULT_EXPORT).parent
    console().print(Text("files to ship together:"))
    for name in meta["files"]:
        console().print(path_line(f"  {folder / name}"))


@app.command(cls=_Command)
@_friendly
def serve(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="A run directory (or, with --engine onnx, a model.onnx from headstart export)."
        ),
    ],
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. 127.0.0.1: this machine only; 0.0.0.0 opens it to "
            "the network (put a reverse proxy with TLS in front)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    engine: Annotated[
        str, typer.Option(help="torch: the saved run; onnx: its ONNX export (no PyTorch).")
    ] = ENGINES[0],
    max_batch: Annotated[
        int,
        typer.Option(
            help="Most examples in one forward pass (requests share passes); 8 suits a CPU, "
            "raise it on a GPU."
        ),
    ] = SERVE_MAX_BATCH,
    max_wait_ms: Annotated[
        float, typer.Option(help="How long a forward pass waits for more requests to join.")
    ] = SERVE_MAX_WAIT_MS,
    batching: Annotated[
        bool,
        typer.Option(help="Batch concurrent requests together (--no-batching: one pass each)."),
    ] = True,
    max_bytes: Annotated[
        str, typer.Option(help="Largest image or text accepted, e.g. 8MB.")
    ] = SERVE_MAX_BYTES,
    max_files: Annotated[int, typer.Option(help="Most inputs in one request.")] = SERVE_MAX_FILES,
) -> None:
    """Serve a run over HTTP: POST /predict, GET /health, GET /metadata (FastAPI + uvicorn)."""
    from headstart.core.config import parse_bytes
    from headstart.deploy.onnx_model import check_engine_target

    if not 0 < port < 65536:
        raise HeadstartError(f"--port {port}: give a TCP port between 1 and 65535.")
    if max_batch < 1 or max_files < 1 or max_wait_ms < 0:
        raise HeadstartError("--max-batch and --max-files must be at least 1, --max-wait-ms >= 0.")
    size = parse_bytes(max_bytes, "--max-bytes")
    if not size or size < 1:
        raise HeadstartError(f"--max-bytes {max_bytes!r}: give a size like 8MB.")
    check_engine_target(run_dir, engine)  # before FastAPI and torch load
    from headstart.deploy.serve import Limits
    from headstart.deploy.serve import serve as run_server

    limits = Limits(
        max_bytes=size,
        max_files=max_files,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        batching=batching,
    )
    err = console(stderr=True)
    run_server(
        run_dir,
        host=host,
        port=port,
        engine=engine,
        limits=limits,
        say=lambda m: err.print(path_line(m)),
    )


@app.command(cls=_Command)
@_friendly
def backbones(
    all_timm: Annotated[
        str | None, typer.Option("--search", help="Also list timm models matching a pattern.")
    ] = None,
) -> None:
    """List backbones: Keras names, timm names, parameters, input size, weight source."""
    from headstart.modalities.image.backbones.catalog import list_backbones

    console().print(render_backbones(list_backbones(all_timm)))


@app.command(cls=_Command)
@_friendly
def summary(
    ctx: typer.Context,
    backbone: Annotated[
        str,
        typer.Option(
            help="A Keras name (DenseNet121, MobileNetV2, ...), any timm model, or a text "
            "encoder (minilm, bert-base-uncased, a Hugging Face name or folder)."
        ),
    ] = DEFAULT_BACKBONE,
    classes: Annotated[int, typer.Option(help="Number of classes of your data.")] = 10,
    head: Annotated[str, typer.Option(help="lesson or linear.")] = TrainConfig.head,
    hidden: Annotated[
        int, typer.Option(help="Hidden units of the lesson head.")
    ] = TrainConfig.hidden,
    pooling: Annotated[
        str, typer.Option(help="Images: max or avg (a text encoder pools its own way).")
    ] = DEFAULT_IMAGE_POOLING,
    run_dir: Annotated[Path | None, typer.Option("--run", help="Summarise a saved run.")] = None,
) -> None:
    """Parameter counts (total, trainable, frozen) of backbone + head, as Keras' summary."""
    from headstart.core.heads import HeadSpec
    from headstart.core.modality import modality_of_encoder
    from headstart.core.rundir import check_run_dir

    if run_dir is not None:
        ignored = sorted(_given(ctx) - {"run_dir"})
        if ignored:
            raise HeadstartError(
                f"--run summarises {run_dir} as it was trained; {_flags(ignored)} would not "
                "apply. Drop them, or summarise a backbone without --run."
            )
        check_run_dir(run_dir)
    else:  # the name and the head, before torch loads
        modality_of_encoder(backbone).check_name(backbone)
        HeadSpec(head, hidden)
        if classes < 2:
            raise HeadstartError(f"--classes must be at least 2; got {classes}.")
    from headstart.core.catalog import model_summary

    console().print(
        render_summary(
            model_summary(
                backbone=backbone,
                n_classes=classes,
                head=head,
                hidden=hidden,
                pooling=pooling,
                run_dir=run_dir,
            )
        )
    )


@app.command(cls=_Command)
@_friendly
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    data: Annotated[
        str | None,
        typer.Argument(
            help="Labelled data to evaluate on (default: the run's test split, "
            "else its validation split).",
            show_default=False,
        ),
    ] = None,
    compare: Annotated[
        list[Path] | None,
        typer.Option(help="Other runs to score on the same examples (repeat)."),
    ] = None,
    bootstrap: Annotated[
        int,
        typer.Option(
            min=1,
            help="Bootstrap resamples for the macro F1 interval (accuracy's is exact: "
            "Clopper-Pearson).",
        ),
    ] = 1000,
    filename_column: Annotated[
        str | None, typer.Option(help="DATA's column of image paths (default: the run's).")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option(help="DATA's column of labels (default: the run's).")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="DATA's column of texts (default: the run's).")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="How DATA's label cells are read (default: the run's; a multi-label run's: "
            "multi-label)."
        ),
    ] = None,
    labels_sep: Annotated[
        str | None, typer.Option(help="DATA's separator of labels in a cell (default: the run's).")
    ] = None,
    label_columns: Annotated[
        str | None,
        typer.Option(
            help="DATA's 0/1 columns, one per label, comma-separated (default: the run's)."
        ),
    ] = None,
) -> None:
    """Metrics with 95% intervals, the majority baseline and other runs in one table."""

    from headstart.core.checks import run_config, run_is_multi_label, run_modality, source_for
    from headstart.core.rundir import check_run_dir

    for path in [run_dir, *(compare or [])]:  # the runs and the data, before torch loads
        check_run_dir(path)
    asked = {
        "filename_column": filename_column,
        "label_column": label_column,
        "text_column": text_column,
        "task": task,
        "labels_sep": labels_sep,
        "label_columns": label_columns,
    }
    columns = {k: v for k, v in asked.items() if v is not None}
    if columns and data is None:
        raise HeadstartError(
            f"{_flags(sorted(columns))}: these name the columns of DATA and how its labels are "
            "read; without DATA the run's own test split is scored."
        )
    if data is not None:
        multi = run_is_multi_label(run_dir)
        if task not in (None, "auto") and (task == "multi-label") != multi:
            raise HeadstartError(
                f"--task {task}: this run predicts {'several labels' if multi else 'one class'} "
                "per example, and evaluates data read that way; drop --task."
            )
        config = run_config(run_dir).reading(columns, multi)
        source_for(config, run_modality(run_dir), location=data)
    from headstart.core.evaluate import evaluate_run
    from headstart.core.modality import modality_of
    from headstart.core.report import write_report
    from headstart.core.runs import load_run

    run = load_run(run_dir)
    others = [load_run(p) for p in compare or []]
    result = evaluate_run(run, data, compare=others, n_boot=bootstrap, columns=columns)
    console().print(render_evaluation(result, modality_of(run).noun))
    if data is None:
        report = write_report(run, evaluation=result, splits=_run_splits(run))
        console().print(path_line(f"wrote {run_dir}/evaluation.json and {report}"))
    else:
        atomic_write_json(run_dir / "evaluation_external.json", result)
        console().print(path_line(f"wrote {run_dir}/evaluation_external.json"))


def _run_splits(run):
    from headstart.core.overlap import run_splits

    return None if run.config.data is None else run_splits(run)


@app.command(cls=_Command)
@_friendly
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """(Re)write RUN_DIR/report.html: a self-contained page with every figure and table."""
    import json as _json

    from headstart.core.rundir import check_run_dir

    check_run_dir(run_dir)  # before torch loads
    from headstart.core.evaluate import evaluate_run
    from headstart.core.report import write_report
    from headstart.core.runs import load_run

    run = load_run(run_dir)
    splits = _run_splits(run)
    if splits is not None:
        # runs compared by an earlier `evaluate --compare` stay compared (when still there)
        earlier = {}
        if (run_dir / "evaluation.json").is_file():
            earlier = _json.loads((run_dir / "evaluation.json").read_text())
        compared = [
            load_run(r["run_dir"])
            for r in earlier.get("table", [])
            if r.get("kind") == "compared run" and r.get("run_dir") and Path(r["run_dir"]).is_dir()
        ]
        evaluation = evaluate_run(run, compare=compared)
    elif (run_dir / "evaluation.json").is_file():
        evaluation = _json.loads((run_dir / "evaluation.json").read_text())
    else:
        evaluation = None
    out = write_report(run, evaluation=evaluation, splits=splits)
    console().print(path_line(f"wrote {out}"))


@app.command(cls=_Command)
@_friendly
def compare(
    data: DataArg = None,
    demo: DemoOpt = False,
    backbones: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated backbones, e.g. MobileNetV2,DenseNet121 (those two need "
            "the internet once), or text encoders, e.g. minilm,bert-base-uncased. Default: "
            "every network whose weights are available offline (EfficientNet-Lite0/1/2 and "
            "MiniLM in the base install).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the runs and the leaderboard.")] = Path(
        "runs/compare"
    ),
    overwrite: OverwriteOpt = False,
    weights: WeightsOpt = TrainConfig.weights,
    image_size: Annotated[int | None, typer.Option(help="Input size for every backbone.")] = None,
    epochs: Annotated[
        int | None,
        typer.Option(help=f"Maximum epochs (default: {_LESSON.epochs}).", show_default=False),
    ] = TrainConfig.epochs,
    val_split: ValSplitOpt = TrainConfig.val_split,
    seed: SeedOpt = TrainConfig.seed,
    label_column: LabelColOpt = TrainConfig.label_column,
    text_column: TextColOpt = TrainConfig.text_column,
    modality: ModalityOpt = TrainConfig.modality,
    max_length: MaxLengthOpt = TrainConfig.max_length,
) -> None:
    """Train the frozen model for each backbone on the same split and rank them."""
    from headstart.core.checks import (
        check_networks,
        check_weights,
        data_modality,
        source_for,
        split_names,
    )

    names = split_names(backbones, "--backbones") if backbones is not None else None
    location = _data_location(data, demo)
    modality = data_modality(location, modality, label_column=label_column, text_column=text_column)
    cfg = TrainConfig(
        data=location,
        weights=weights,
        image_size=image_size,
        epochs=epochs,
        val_split=val_split,
        seed=seed,
        label_column=label_column,
        text_column=text_column,
        modality=modality,
        max_length=max_length,
    )
    if names is not None:  # the names, the weights and the data, before torch loads
        check_networks(names, modality)
    check_weights(weights)
    _one_class_each(source_for(cfg, modality), "compare")
    from headstart.core.compare import compare_backbones

    if names is None:
        from headstart.core.extractors import available_encoders

        names = available_encoders(modality)
        _note(f"comparing every {modality} network with offline weights: {', '.join(names)}")
    result = compare_backbones(cfg, names, out, overwrite=overwrite)
    console().print(render_leaderboard(result))
    console().print(path_line(f"wrote {out}/leaderboard.json and {result['report']}"))


@app.command(cls=_Command)
@_friendly
def advise(
    data: DataArg = None,
    demo: DemoOpt = False,
    candidates: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated backbones to rank (name or name@size; "
            "name:random for a random-weight control; default: every backbone whose "
            "weights are available offline)."
        ),
    ] = None,
    image_size: Annotated[int | None, typer.Option(help="Input size for every candidate.")] = None,
    pooling: Annotated[
        str,
        typer.Option(
            help="Pooling of the last features, as train's: images avg (auto) or max; text "
            "mean, cls or max (auto: the encoder's own)."
        ),
    ] = TrainConfig.pooling,
    rank_by: Annotated[str, typer.Option(help="logme, probe or knn.")] = "logme",
    weights: WeightsOpt = TrainConfig.weights,
    out: Annotated[
        Path | None, typer.Option(help="Write advice.json and advice.html here.")
    ] = None,
    val_split: ValSplitOpt = TrainConfig.val_split,
    seed: SeedOpt = TrainConfig.seed,
    label_column: LabelColOpt = TrainConfig.label_column,
    text_column: TextColOpt = TrainConfig.text_column,
    modality: ModalityOpt = TrainConfig.modality,
    max_length: MaxLengthOpt = TrainConfig.max_length,
) -> None:
    """Which backbone, and how much of it to retrain, from your data, before training.

    Without --candidates: every network of the data's kind with offline weights, and the
    first one with random weights as a control (what the pretrained weights are worth)."""
    from headstart.choices import RANK_BY
    from headstart.core.checks import (
        check_candidates,
        check_weights,
        data_modality,
        parse_candidate,
        split_names,
    )
    from headstart.core.data import load_data, load_source

    # the options, the names, the weights and the data, before torch loads
    if rank_by not in RANK_BY:
        raise HeadstartError(f"--rank-by must be one of {', '.join(RANK_BY)}; got {rank_by!r}.")
    names = split_names(candidates) if candidates is not None else None
    if names and all(parse_candidate(n)[2] for n in names):
        raise HeadstartError("--candidates: every candidate is a random-weight control.")
    location = _data_location(data, demo)
    kind = data_modality(location, modality, label_column=label_column, text_column=text_column)
    if names:
        check_candidates(names, kind)
    check_weights(weights)
    pooling = TrainConfig(pooling=pooling).for_modality(kind).pooling  # (refused when wrong)
    source = load_source(
        location, modality=kind, label_column=label_column, text_column=text_column
    )
    _one_class_each(source, "advise")
    splits = load_data(source, val_split=val_split, seed=seed)
    from headstart.core.advise import advise as advise_strategy
    from headstart.core.advise import rank_backbones
    from headstart.core.extractors import available_encoders
    from headstart.core.report import advice_page

    if names is None:
        names = available_encoders(splits.train.modality)
        names += [f"{names[0]}:random"] if names else []
    ranking = rank_backbones(
        splits,
        names,
        image_size=image_size,
        rank_by=rank_by,
        weights=weights,
        pooling=pooling,
        max_length=max_length,
    )
    best = next((r for r in ranking if not r["random"]), None)
    if best is None:
        raise HeadstartError("--candidates: every candidate is a random-weight control.")
    advice = advise_strategy(
        splits,
        best["timm_name"],
        image_size=image_size,
        pooling=pooling,
        weights=weights,
        max_length=max_length,
    )
    decisions = {"ranking": ranking, "advice": advice.to_dict(), "noun": splits.train.noun}
    console().print(render_advice(decisions))
    if out is not None:
        atomic_write_json(out / "advice.json", decisions)
        atomic_write_text(out / "advice.html", advice_page(decisions, location))
        console().print(path_line(f"wrote {out}/advice.json and {out}/advice.html"))


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
