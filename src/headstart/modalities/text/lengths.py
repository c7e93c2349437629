"""How much of each text the encoder reads, as a run reports it (``metrics["truncation"]``,
whose ``summary`` and ``advice`` the console after ``train`` and the report show): how many
texts are longer than its window (``max_length`` tokens, special tokens included), how
``--long-texts`` read them (:mod:`.windows`: whole in overlapping windows, by their head and
tail, or cut), and what share of their tokens it read."""

from __future__ import annotations

import numpy as np

from headstart.modalities.text.windows import summary


def truncation_record(loaded, sets: dict) -> dict:
    """How the texts of ``sets`` (split name -> :class:`TextSet`, the texts a run used) are
    read by ``loaded`` (its tokenizer, window and ``--long-texts`` mode)."""
    limit = int(loaded.max_length)
    mode = loaded.preprocessing.long_texts
    model_limit = int(getattr(loaded.backbone.model.config, "max_position_embeddings", limit))
    prefix, suffix = loaded.special_tokens()
    room = limit - len(prefix) - len(suffix)
    by_split, lengths, dropped, windows = {}, [], 0, 0
    for name, texts in sets.items():
        reading = loaded.read(list(texts.texts))
        read = summary(reading, range(len(reading)), mode, room)
        by_split[name] = {"texts": len(reading), "longer": read["longer"]}
        lengths.extend(reading.tokens)
        dropped += read["tokens_dropped"]
        windows += read["windows_of_longer"]
    tokens = np.asarray(lengths, dtype=np.int64)
    longer = tokens[tokens > room]
    record = {
        "max_length": limit,
        "model_max_length": model_limit,
        "mode": mode,
        "texts": int(len(tokens)),
        "longer": int(len(longer)),
        "share": float(len(longer) / len(tokens)) if len(tokens) else 0.0,
        "median_tokens": float(np.median(tokens)) if len(tokens) else 0.0,
        "median_tokens_of_longer": float(np.median(longer)) if len(longer) else 0.0,
        "windows_of_longer": int(windows),
        "tokens_dropped": int(dropped),
        # of the tokens of the longer texts, the share the encoder read
        "tokens_read_share": float(1 - dropped / longer.sum()) if len(longer) else 1.0,
        "by_split": by_split,
    }
    record["summary"] = truncation_sentence(record)
    record["advice"] = truncation_advice(record)
    return record


def truncation_sentence(record: dict, noun: str = "text") -> str:
    """``172 of 189 texts (91%) are longer than the encoder's 256 tokens and were read whole,
    in 1,210 overlapping windows...``."""
    k, n = record["longer"], record["texts"]
    if not k:
        return f"every {noun} fits the encoder's {record['max_length']} tokens: none was cut"
    mode = record.get("mode", "truncate")
    longer = (
        f"{k:,} of {n:,} {noun}s ({k / n:.0%}) are longer than the encoder's "
        f"{record['max_length']} tokens (their median length "
        f"{record['median_tokens_of_longer']:.0f})"
    )
    read = f"{record['tokens_read_share']:.0%} of their tokens"
    if mode in ("window", "window-max"):
        pooled = "averaged" if mode == "window" else "their maximum taken"
        whole = (
            "read whole"
            if not record.get("tokens_dropped")
            else f"read in windows spread over them ({read}: at most 64 windows a text)"
        )
        return (
            f"{longer} and were {whole}, in {record.get('windows_of_longer', 0):,} overlapping "
            f"windows whose embeddings are {pooled}"
        )
    if mode == "head-tail":
        return f"{longer} and were read by their first and last tokens: {read}"
    return f"{longer} and were cut there: it read {read}"


def truncation_advice(record: dict) -> str:
    """What a user can do about texts longer than the window (empty when nothing is left)."""
    if not record.get("longer") or record.get("mode") in ("window", "window-max"):
        return ""
    limit, model_limit = record["max_length"], record.get("model_max_length", 0)
    longer_window = (
        f"; --max-length {model_limit} reads up to {model_limit} tokens at once (this "
        "encoder's limit; slower)"
        if model_limit > limit
        else ""
    )
    return (
        "--long-texts window reads every token, in overlapping windows (slower)"
        f"{longer_window}; the classic baseline (TF-IDF + logistic regression) reads every "
        "word of every text"
    )
