"""Texts -> the exported graph's input (token ids and attention mask), without PyTorch or
``transformers``: what an ONNX client runs.

The Hugging Face fast tokenizer a text run trains with is a ``tokenizers`` tokenizer saved as
``tokenizer.json``; loading that file directly gives the same ids (tested against the run's
tokenizer), truncated at the run's maximum length and padded to the longest text of a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headstart.errors import RunError


class TokenizerFile:
    """``tokenizer.json`` with the run's maximum length and padding id."""

    def __init__(self, path: str | Path, *, max_length: int, pad_id: int):
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise RunError(f"{path}: the tokenizer of this text model is missing.")
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_length)
        self.max_length, self.pad_id = max_length, pad_id

    def order(self, texts: Sequence[str]) -> np.ndarray:
        """Positions of ``texts`` shortest first: batches of similar length pad little (the
        torch path groups by length the same way)."""
        return np.argsort([len(t) for t in texts], kind="stable")

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self.batch(texts)

    def batch(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """{"input_ids", "attention_mask"}: (N, longest) int64 arrays for ``texts``."""
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        width = max((len(i) for i in ids), default=0)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for k, row in enumerate(ids):
            input_ids[k, : len(row)] = row
            mask[k, : len(row)] = 1
        return {"input_ids": input_ids, "attention_mask": mask}
