"""A kind of data (images, text) as the core sees it.

Each modality package exposes ``MODALITY`` in ``headstart.modalities.<name>.modality``: one
object with the operations that differ between kinds of data (reading and checking examples,
the pretrained networks and how they are loaded, extracted, fed on the fly, saved in a run
and used to predict). The core looks a modality up here, by name or from an object that says
which it belongs to, and never branches on the name itself. Adding a modality: its folder
under ``modalities/`` with a ``modality.py``, and its name in
:data:`headstart.choices.MODALITIES`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from headstart.choices import MODALITIES
from headstart.errors import ConfigError

#: The modality of data that no other modality claims, and of objects that do not say.
FALLBACK = MODALITIES[0]


class Modality(Protocol):
    """What differs between kinds of data. Implementations import their heavy parts lazily:
    looking a modality up costs nothing."""

    name: str
    #: one example, in messages ("image", "text"); what a stage of its networks is called
    #: (``--unfreeze``), and a block (``--layers``)
    noun: str
    stage_word: str
    block_word: str
    #: the configuration fields that only this kind of data uses (an image size, a text
    #: column): a run of another modality leaves them out of what it shows
    own_settings: frozenset[str]

    def recognises(self, path: Path) -> bool:
        """Whether ``path`` is a file of this kind (detecting a folder's modality)."""

    def claims_table(self, path: Path, own: dict) -> bool:
        """Whether the table at ``path`` holds this kind of data (``own``: this modality's
        own settings, :func:`own_settings_of`: a table's text column...)."""

    def load_source(self, location, *, label_column: str, labels, own: dict):
        """The :class:`~headstart.core.datasource.DataSource` at ``location`` (``labels``: a
        :class:`~headstart.core.labels.LabelFormat`, how a table's label cells are read;
        ``own``: this modality's own settings, such as the column holding image paths or
        texts)."""

    def inspect(self, source, **options):
        """The inspection report of ``source``."""

    def content_hashes(self, examples) -> list[str | None]:
        """One content hash per example (None where unreadable)."""

    def configure(self, config):
        """``config`` with this modality's defaults, refusing settings it does not have."""

    def fit_recipe(self, strategy: str):
        """The :class:`~headstart.core.recipe.Recipe` that fills the fitting settings a run of
        ``strategy`` leaves to auto (optimizer, backbone learning rate, schedule, warm-up,
        epochs)."""

    def load_encoder(self, name: str, **settings):
        """A pretrained network ready to extract features (``settings``: weights, pooling,
        image_size, resize, features, max_length; each modality reads its own)."""

    def available_encoders(self) -> list[str]:
        """Networks whose pretrained weights load without a network."""

    def export_parts(self):
        """The module exporting this modality's runs to ONNX (``graph``, ``samples``,
        ``client_meta``, ``copy_files``, ``INPUT_NAMES``: see ``modalities/image/export.py``)."""

    def onnx_feed(self, meta: dict, folder: Path):
        """A callable from examples to an exported graph's input arrays, importing no torch
        (``meta``: the export's metadata; ``folder``: where its files are); one with an
        ``order(examples)`` method is fed in that order (texts: grouped by length)."""

    def serving(self):
        """The module reading examples from a request to ``headstart serve`` (``REQUEST``:
        "multipart" or "json", ``HOW``: what to send, ``LIMITS``: the limits that apply,
        ``read_request``)."""

    def names_encoder(self, name: str) -> bool:
        """Whether ``name`` (an alias, hub name or folder) is one of this modality's networks
        (asked of every modality but the fallback, which takes the rest)."""

    def check_name(self, name: str) -> None:
        """Refuse a name that cannot be one of this modality's networks, with the closest
        names ("did you mean"), before any heavy library loads and any work starts."""

    def extractor(self, loaded, **options):
        """The cached feature extractor of ``loaded``."""

    def streaming_inputs(self, loaded, splits, **options) -> tuple[dict, dict, list]:
        """(inputs by split, positions used by split, unreadable examples) for training
        through the whole network."""

    def network_of(self, run):
        """A saved run's network as a loaded encoder (what evaluation extracts with)."""

    def network_meta(self, backbone) -> dict[str, Any]:
        """What ``model.json`` records beside the common fields to rebuild ``backbone``."""

    def save_network(self, run, folder: Path) -> None:
        """Files beside the weights that rebuild the network offline (``folder``)."""

    def load_network(self, meta: dict, state: dict, folder: Path, where: Path):
        """(backbone with random weights, preprocessing) of a saved run."""

    def predict_proba(self, run, inputs, *, batch_size: int):
        """Class probabilities of in-memory examples."""

    def reading_record(self, loaded, sets: dict) -> dict | None:
        """How much of each used example (``sets``: split name -> examples) the network
        reads, for ``metrics["truncation"]`` (text: how many texts are longer than the
        encoder's window and what share of their tokens it reads), or None."""

    def tune_encoder(
        self,
        loaded,
        train,
        config,
        *,
        device,
        deadline: float | None = None,
    ) -> dict | None:
        """Tune ``loaded``'s encoder in place on the ``train`` examples before any feature is
        computed, when ``config`` asks for it (text: ``--setfit``, SetFit's contrastive stage),
        stopping at ``deadline`` (a ``time.perf_counter()``: ``--strategy auto``'s budget);
        it notes that it starts (it can take minutes). Returns what was done; None when
        nothing was."""

    def tuning_examples(self, n_train: int) -> int:
        """How many examples ``tune_encoder`` encodes (forward and backward) when asked, for
        ``n_train`` training examples: what ``--strategy auto`` estimates its cost from."""

    def classic_baseline(self):
        """The class of the model a user would write without a network (text: TF-IDF +
        logistic regression; see :mod:`headstart.core.classic`), or None where there is none."""

    def report_figures(self, run, evaluation, splits, out: Path, captions: dict) -> dict:
        """The report's figures of this modality, written under ``out`` (by name: images'
        samples, augmented views, mistakes); ``captions`` receives a figure's HTML caption."""
        ...

    def report_examples(self, run, evaluation, splits) -> dict[str, str]:
        """The report's HTML tables of this modality's examples, by section (texts' samples
        and mistakes as snippets)."""
        ...

    def used_settings(self, run) -> dict[str, str | None]:
        """How ``run`` used the settings this modality resolves (sizes, lengths, pooling,
        augmentation), by configuration field, for the report's configuration table: the
        value used, with the setting as asked in brackets, or None for a setting the run did
        not use (the table leaves it out; ``config.json`` keeps it)."""


def modality(name: str) -> Modality:
    """The modality called ``name``."""
    if name not in MODALITIES:
        raise ConfigError(f"modality must be one of {', '.join(MODALITIES)}; got {name!r}.")
    return importlib.import_module(f"headstart.modalities.{name}.modality").MODALITY


def modality_of_encoder(name: str) -> Modality:
    """The modality whose network ``name`` is (the fallback's when no other claims it)."""
    for other in MODALITIES:
        if other != FALLBACK and modality(other).names_encoder(name):
            return modality(other)
    return modality(FALLBACK)


def own_settings_of(mod: Modality, settings: dict) -> dict:
    """The part of ``settings`` (name -> value) that is ``mod``'s own: what the core hands a
    modality instead of naming any one modality's settings in its calls."""
    return {k: v for k, v in settings.items() if k in mod.own_settings}


def other_settings(mod: Modality) -> frozenset[str]:
    """The configuration fields only other modalities use: what a run of ``mod`` leaves out
    when it shows its settings."""
    others = (modality(name).own_settings for name in MODALITIES if name != mod.name)
    return frozenset().union(*others) - mod.own_settings


def modality_of(obj) -> Modality:
    """The modality of examples, a loaded encoder, preprocessing or a run (what their
    ``modality`` attribute says; objects without one are of the fallback modality)."""
    name = getattr(obj, "modality", FALLBACK)
    return modality(FALLBACK if name == "auto" else name)
