"""Texts -> the exported graph's input (token ids, attention mask and the windows' membership
of the texts), without PyTorch or ``transformers``: what an ONNX client runs.

The Hugging Face fast tokenizer a text run trains with is a ``tokenizers`` tokenizer saved as
``tokenizer.json``; loading that file directly gives the same ids (tested against the run's
tokenizer). A text is tokenised whole and read as the run read it (:mod:`.windows`: windows of
the run's maximum length, each with the encoder's special tokens), padded to the longest window
of a batch. An export made before windows existed (no ``long_texts`` in its metadata) takes
token ids and mask only, truncated at the maximum length.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from headstart.errors import RunError
from headstart.modalities.text.windows import membership, read_texts, window_count


class TokenizerFile:
    """``tokenizer.json`` with the run's maximum length, padding id and, for an export that
    reads long texts in windows, ``long_texts`` and the ``special_tokens`` around a window."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_length: int,
        pad_id: int,
        long_texts: str | None = None,
        special_tokens: dict | None = None,
    ):
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise RunError(f"{path}: the tokenizer of this text model is missing.")
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_padding()
        self.max_length, self.pad_id = max_length, pad_id
        self.long_texts = long_texts
        if long_texts is None:  # an export made before windows: truncated, two inputs
            self.tokenizer.enable_truncation(max_length=max_length)
        else:
            self.tokenizer.no_truncation()
            special = special_tokens or {}
            self.prefix = list(special.get("prefix", []))
            self.suffix = list(special.get("suffix", []))

    def order(self, texts: Sequence[str]) -> np.ndarray:
        """Positions of ``texts`` shortest first: batches of similar length pad little (the
        torch path groups by length the same way)."""
        return np.argsort([len(t) for t in texts], kind="stable")

    def batches(
        self, texts: Sequence[str], positions: np.ndarray, batch_size: int
    ) -> list[np.ndarray]:
        """``positions`` (in order) in consecutive batches of at most ``batch_size`` texts
        and, once texts are read in windows, at most ``batch_size`` windows (a text with more
        runs alone): a batch of long texts costs what the torch path's batches cost."""
        if self.long_texts is None:
            return [positions[s : s + batch_size] for s in range(0, len(positions), batch_size)]
        room = self.max_length - len(self.prefix) - len(self.suffix)
        batch_texts = [texts[int(k)] for k in positions]
        encoded = self.tokenizer.encode_batch(batch_texts, add_special_tokens=False)
        counts = [window_count(len(e.ids), self.long_texts, room) for e in encoded]
        out, start, held = [], 0, 0
        for j, c in enumerate(counts):
            if j > start and (j - start >= batch_size or held + c > batch_size):
                out.append(positions[start:j])
                start, held = j, 0
            held += c
        if start < len(counts):
            out.append(positions[start:])
        return out

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self.batch(texts)

    def batch(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """{"input_ids", "attention_mask"}: (windows, longest) int64 arrays for ``texts``, and
        "windows": (texts, windows) float32, which windows belong to which text."""
        if self.long_texts is None:
            return _padded([e.ids for e in self.tokenizer.encode_batch(list(texts))], self.pad_id)
        contents = [
            e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        ]
        reading = read_texts(contents, self.long_texts, self.max_length, self.prefix, self.suffix)
        out = _padded([w for ws in reading.windows for w in ws], self.pad_id)
        out["windows"] = membership(reading.counts())
        return out


def _padded(ids: list[list[int]], pad_id: int) -> dict[str, np.ndarray]:
    width = max((len(i) for i in ids), default=0)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for k, row in enumerate(ids):
        input_ids[k, : len(row)] = row
        mask[k, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}
