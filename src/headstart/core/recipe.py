"""The fitting recipe: the optimizer, the pretrained layers' learning rate, the schedule, its
warm-up and the number of epochs of a run whose settings are left to ``auto``.

Each modality says its recipe for each strategy (its ``fit_recipe``): images keep the lesson's
for every strategy (Adam, pretrained layers at 1e-5, no schedule, up to 30 epochs), and so does
a frozen text encoder's head; a text encoder that trains is fine-tuned as transformers are
(AdamW with decoupled weight decay, a linear warm-up over the first tenth of the steps then a
linear decay to 0, a learning rate and a number of epochs measured for text: BENCHMARKS.md).

The recipe is the one source of these defaults. A value the user gives always wins; the
configuration keeps ``auto`` for the rest (so a replayed run, or a frozen run continued by
``headstart finetune``, resolves them for its own strategy), and the run records the values it
used and which of them were the recipe's (``metrics.json``'s ``fit_recipe``). Light on purpose:
the configuration resolves and checks these before PyTorch loads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The settings a recipe decides when they are left to auto, with the value meaning auto.
AUTO = {
    "optimizer": "auto",
    "backbone_lr": None,
    "schedule": "auto",
    "warmup_epochs": None,
    "epochs": None,
}

#: AdamW's decoupled weight decay when ``--weight-decay`` is auto: transformers' and torch's
#: value. It applies to weight matrices (the head's too) and never to biases or normalisation
#: weights (every 1-D parameter).
ADAMW_WEIGHT_DECAY = 0.01


@dataclass(frozen=True)
class Recipe:
    """What ``auto`` means for a kind of data and strategy. ``warmup_fraction``: the share of
    the planned steps (epochs x batches) over which the learning rates rise linearly."""

    name: str
    optimizer: str
    backbone_lr: float
    schedule: str
    warmup_fraction: float
    epochs: int

    def warmup_epochs(self, epochs: int) -> float:
        """The warm-up, in epochs, of a run of ``epochs`` epochs."""
        return round(self.warmup_fraction * epochs, 6)


#: The founding lesson's recipe (Keras' Adam; pretrained layers at the tutorials' fine-tuning
#: rate 1e-5; no schedule; up to 30 epochs, early stopping on validation).
LESSON = Recipe("the lesson's", "adam", 1e-5, "none", 0.0, 30)


def left_to_auto(config) -> list[str]:
    """The recipe's settings that ``config`` leaves to auto, in :data:`AUTO`'s order."""
    return [name for name, auto in AUTO.items() if getattr(config, name) == auto]


def resolve(config, recipe: Recipe) -> dict:
    """The recipe's settings for ``config``: the user's value where one was given, the
    recipe's otherwise. The warm-up of an auto warm-up follows the epochs actually planned."""
    out = {
        name: getattr(recipe, name) if getattr(config, name) == auto else getattr(config, name)
        for name, auto in AUTO.items()
        if name != "warmup_epochs"
    }
    out["warmup_epochs"] = (
        recipe.warmup_epochs(out["epochs"])
        if config.warmup_epochs is None
        else config.warmup_epochs
    )
    return out


def auto_weight_decay(optimizer: str) -> float | None:
    """``--weight-decay auto`` with ``optimizer``: AdamW's decoupled 0.01, or None for Adam
    (the lesson's 0; a linear probe on cached features has its own C instead)."""
    return ADAMW_WEIGHT_DECAY if optimizer == "adamw" else None


def warmup_steps(warmup_epochs: float, steps_per_epoch: int) -> int:
    """Optimizer steps of a warm-up of ``warmup_epochs`` epochs, rounded up (as transformers
    round ``warmup_ratio``: any warm-up asked for gets a step)."""
    return math.ceil(round(warmup_epochs * steps_per_epoch, 6))


def record(config, settings, steps_per_epoch: int) -> dict:
    """What ``metrics.json`` keeps of how the run was fitted: the values used (``settings``,
    a :class:`~headstart.core.fitsettings.FitSettings`), the steps the schedule planned, the
    recipe that filled the settings left to auto, and which those were."""
    auto = left_to_auto(config)
    return {
        "recipe": config.fit_recipe().name,
        "auto": auto,
        "optimizer": settings.optimizer,
        "lr": settings.lr,
        "backbone_lr": settings.backbone_lr,
        "schedule": settings.schedule,
        "warmup_epochs": settings.warmup_epochs,
        "warmup_steps": warmup_steps(settings.warmup_epochs, steps_per_epoch),
        "steps_per_epoch": steps_per_epoch,
        "planned_steps": settings.epochs * steps_per_epoch,
        "epochs": settings.epochs,
        "weight_decay": settings.weight_decay,
        "no_weight_decay": "biases and normalisation weights (every 1-D parameter)"
        if settings.optimizer == "adamw"
        else "everything but the head's weight matrices (L2, as the lesson's Keras head)",
    }


def shown_settings(config, fitted: dict | None) -> dict[str, str]:
    """The report's configuration cells of the recipe's settings that were left to auto:
    the value used, then ``(auto: <recipe>)``; and the warm-up's steps. ``fitted``: the run's
    ``fit_recipe`` record (a run of an earlier version has none, and its configuration holds
    the values it used; one left to auto is resolved from the configuration)."""
    if not fitted:
        settings = config.fit_settings()
        fitted = {
            "recipe": config.fit_recipe().name,
            "auto": left_to_auto(config),
            **{name: getattr(settings, name) for name in AUTO},
        }
    shown: dict[str, str] = {}
    for name in AUTO:
        value = fitted[name]
        notes = [f"auto: {fitted['recipe']}"] if name in fitted["auto"] else []
        if name == "warmup_epochs" and value and "warmup_steps" in fitted:
            notes.append(f"{fitted['warmup_steps']} of {fitted['planned_steps']} steps")
        if notes:
            text = f"{value:g}" if isinstance(value, float) else str(value)
            shown[name] = f"{text} ({'; '.join(notes)})"
    return shown


def summary(fitted: dict) -> str:
    """One line of how a run was fitted, for the terminal: the optimizer, the rates, the
    schedule with its warm-up and the weight decay, and the recipe they came from."""
    optimizer = {"adam": "Adam", "adamw": "AdamW"}[fitted["optimizer"]]
    rates = f"encoder lr {fitted['backbone_lr']:g}, head lr {fitted['lr']:g}"
    if fitted["schedule"] == "none":
        schedule = "constant rates"
    else:
        schedule = f"{fitted['schedule']} decay to 0 at step {fitted['planned_steps']}"
    warm = fitted["warmup_steps"]
    if warm:
        schedule = f"{warm} warm-up step{'s' if warm != 1 else ''}, then {schedule}"
    decay = f"weight decay {fitted['weight_decay']:g}"
    if fitted["optimizer"] == "adamw":
        decay += " (none on biases and LayerNorm)"
    given = [f"--{name.replace('_', '-')}" for name in AUTO if name not in fitted["auto"]]
    where = f"{fitted['recipe']} recipe" if fitted["auto"] else "as given"
    if fitted["auto"] and given:
        where += f", {', '.join(given)} as given"
    return f"{optimizer}, {rates}, {schedule}, {decay}; {where}"
