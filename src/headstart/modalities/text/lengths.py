"""How much of each text the encoder reads: texts longer than its window (``max_length``
tokens, special tokens included) lose their end, and a run says so (``metrics["truncation"]``,
whose ``summary`` and ``advice`` the console after ``train`` and the report show)."""

from __future__ import annotations

import numpy as np


def truncation_record(loaded, sets: dict) -> dict:
    """Token counts of the texts of ``sets`` (split name -> :class:`TextSet`, the texts a run
    used) under ``loaded``'s tokenizer, against its window: how many are longer, and what
    share of their tokens the encoder reads."""
    limit = int(loaded.max_length)
    model_limit = int(getattr(loaded.backbone.model.config, "max_position_embeddings", limit))
    by_split, all_lengths = {}, []
    for name, texts in sets.items():
        ids = loaded.tokenizer(list(texts.texts), add_special_tokens=True)["input_ids"]
        lengths = np.array([len(i) for i in ids], dtype=np.int64)
        all_lengths.append(lengths)
        by_split[name] = {"texts": int(len(lengths)), "longer": int(np.sum(lengths > limit))}
    lengths = np.concatenate(all_lengths) if all_lengths else np.zeros(0, np.int64)
    longer = lengths[lengths > limit]
    record = {
        "max_length": limit,
        "model_max_length": model_limit,
        "mode": "truncated",  # the end of a longer text is cut off
        "texts": int(len(lengths)),
        "longer": int(len(longer)),
        "share": float(len(longer) / len(lengths)) if len(lengths) else 0.0,
        "median_tokens": float(np.median(lengths)) if len(lengths) else 0.0,
        "median_tokens_of_longer": float(np.median(longer)) if len(longer) else 0.0,
        # of the tokens of the longer texts, the share inside the window
        "tokens_read_share": float(limit * len(longer) / longer.sum()) if len(longer) else 1.0,
        "by_split": by_split,
    }
    record["summary"] = truncation_sentence(record)
    record["advice"] = truncation_advice(record)
    return record


def truncation_advice(record: dict) -> str:
    """What a user can do about truncated texts, in one sentence (empty when none is)."""
    if not record.get("longer"):
        return ""
    limit, model_limit = record["max_length"], record.get("model_max_length", 0)
    longer_window = (
        f"--max-length {model_limit} reads up to {model_limit} tokens (this encoder's limit; "
        "slower); "
        if model_limit > limit
        else ""
    )
    return (
        f"{longer_window}the classic baseline (TF-IDF + logistic regression) reads every word "
        "of every text"
    )


def truncation_sentence(record: dict, noun: str = "text") -> str:
    """``172 of 189 texts (91%) are longer than the encoder's 256 tokens ...``."""
    k, n = record["longer"], record["texts"]
    if not k:
        return f"every {noun} fits the encoder's {record['max_length']} tokens: none was cut"
    return (
        f"{k:,} of {n:,} {noun}s ({k / n:.0%}) are longer than the encoder's "
        f"{record['max_length']} tokens and were cut there: it read "
        f"{record['tokens_read_share']:.0%} of their tokens (their median length "
        f"{record['median_tokens_of_longer']:.0f} tokens)"
    )
