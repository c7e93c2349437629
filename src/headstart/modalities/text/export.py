"""What an exported text run looks like: one graph from the windows' token ids and attention
mask (dynamic number of windows and length) and their membership of the texts (dynamic number
of texts) through the encoder, its pooling, the pooling of each text's windows and the head to
class probabilities; the tokenizer's ``tokenizer.json`` beside it, and in the metadata how a
text becomes windows (:mod:`.tokens_np` reads both without torch, reading long texts as the
run did: :mod:`.windows`).

A run blended with its classic baseline (``classic_weight`` > 0, or a joint model:
``classic_joint``) takes a fourth input, the texts' TF-IDF vectors (``tfidf``: the client
computes them with the baseline's vocabularies, shipped beside the model as
``STEM.classic.json`` and ``STEM.classic.safetensors``), and the graph blends the two models'
probabilities, or adds the joint model's two parts' logits, as the run does."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from headstart.core.tasks import combine
from headstart.errors import RunError

INPUT_NAMES = ("input_ids", "attention_mask", "windows")
#: The blended graph's fourth input: the texts' TF-IDF vectors, (N, terms) float32.
TFIDF_INPUT = "tfidf"
TOKENIZER_FILE = "tokenizer.json"
SAMPLE_TEXTS = (
    "It worked well and I had no side effects at all.",
    "Terrible. Nausea every day and it did nothing for the pain, so I stopped after a week.",
    "ok",
    "The first month was hard, headaches and no sleep, but after that it has been fine and I "
    "would recommend it to anyone who can push through the start.",
)


class TextGraph(nn.Module):
    """(input_ids, attention_mask) int64 (W, L) of W windows and ``windows`` float32 (N, W),
    1 where a window belongs to a text -> class probabilities (N, classes)."""

    def __init__(self, model: nn.Module, task=None):
        super().__init__()
        self.model = model
        self.activate = task.activate if task is not None else (lambda z: torch.softmax(z, 1))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, windows: torch.Tensor
    ) -> torch.Tensor:
        return self.activate(self.model((input_ids, attention_mask, windows)))


class BlendedTextGraph(TextGraph):
    """(input_ids, attention_mask, windows, tfidf) -> the run's blend with its classic
    baseline, whose logits are ``tfidf @ coef.T + intercept``: a mix (``joint`` False), ``1 -
    weight`` of the model's probabilities plus ``weight`` of the baseline's; or a joint model,
    the softmax of the network part's log-probabilities plus the TF-IDF part's logits, as
    :func:`headstart.core.classic.joint_proba` computes them."""

    def __init__(self, model: nn.Module, coef, intercept, weight: float, joint: bool = False):
        super().__init__(model)
        self.register_buffer("coef", torch.as_tensor(coef, dtype=torch.float32))
        self.register_buffer("intercept", torch.as_tensor(intercept, dtype=torch.float32))
        self.weight, self.joint = float(weight), joint
        self.tiny = float(torch.finfo(torch.float32).tiny)

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        windows: torch.Tensor,
        tfidf: torch.Tensor,
    ) -> torch.Tensor:
        model = super().forward(input_ids, attention_mask, windows)
        classic = tfidf @ self.coef.T + self.intercept
        if self.joint:
            return torch.softmax(torch.log(model.clamp_min(self.tiny)) + classic, dim=1)
        return combine([model, torch.softmax(classic, dim=1)], [1.0 - self.weight, self.weight])


def graph(run) -> tuple[nn.Module, dict]:
    """(graph, dynamic axes by input name, in the forward's order) of a text run."""
    from headstart.core.classic import load_baseline

    axes = {0: "windows", 1: "length"}
    names = {"input_ids": axes, "attention_mask": axes, "windows": {0: "texts", 1: "windows"}}
    if run.uses_classic:
        classic = load_baseline(run)
        coef, intercept = classic.joint if run.classic_joint else (classic.coef, classic.intercept)
        blended = BlendedTextGraph(
            run.model.eval(), coef, intercept, run.classic_weight, joint=run.classic_joint
        )
        return blended.eval(), {**names, TFIDF_INPUT: {0: "texts"}}
    return TextGraph(run.model.eval(), run.task).eval(), names


def client_meta(run, stem: str) -> dict:
    """What the client needs beside the graph: maximum length, how a longer text is read
    (``long_texts``, and the special tokens around each window), padding id and the name of
    the tokenizer file beside the model (``STEM.tokenizer.json``)."""
    from headstart.core.model import loaded_from_run

    loaded = loaded_from_run(run)
    pad = loaded.tokenizer.pad_token_id
    prefix, suffix = loaded.special_tokens()
    return {
        "max_length": int(run.preprocessing.max_length),
        "long_texts": run.preprocessing.long_texts,
        "special_tokens": {"prefix": prefix, "suffix": suffix},
        "pad_id": int(pad if pad is not None else 0),
        "tokenizer": f"{stem}.{TOKENIZER_FILE}",
        "text_column": run.config.text_column,  # what predict reads from a table by default
        **({"classic": f"{stem}."} if run.uses_classic else {}),  # its files' prefix
    }


def copy_files(run, folder: Path, stem: str) -> None:
    """``tokenizer.json`` of the run into ``folder`` as ``STEM.tokenizer.json`` (a slow
    tokenizer without one cannot be used by the ONNX client: say so)."""
    source = Path(run.preprocessing.folder) / TOKENIZER_FILE
    if not source.is_file():
        raise RunError(
            f"{source.parent}: no {TOKENIZER_FILE} (the encoder has no fast tokenizer), so an "
            "ONNX client could not tokenise; export needs an encoder with a fast tokenizer."
        )
    shutil.copyfile(source, folder / f"{stem}.{TOKENIZER_FILE}")
    if run.uses_classic:  # the blend's TF-IDF vocabularies, for the client
        from headstart.core.classic import load_baseline

        load_baseline(run).save(folder, prefix=f"{stem}.")


def samples(run, val, n: int, seed: int = 0) -> tuple[list, str]:
    """Up to ``n`` of ``val`` (the run's validation texts, None when its data is gone), else
    fixed sample texts of different lengths (one longer than the maximum length)."""
    texts = [t for t in (val.texts[:n] if val is not None else []) if t.strip()]
    if texts:
        return texts, f"{len(texts)} of the run's validation texts"
    pool = [*SAMPLE_TEXTS, " ".join(SAMPLE_TEXTS) * 40]
    return [pool[i % len(pool)] for i in range(n)], f"{n} sample texts"
