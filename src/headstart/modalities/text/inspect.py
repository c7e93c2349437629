"""``headstart inspect`` for text: counts per class and split, length in tokens of the chosen
encoder (median, 95th percentile, the share that will be truncated), empty and near-empty
texts, exact duplicates after whitespace and case normalisation (within and across splits),
the planned split and the majority-class baseline."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from headstart.core.datasource import DataSource
from headstart.core.inspection import (
    group_duplicates,
    imbalance_ratio,
    label_set_facts,
    label_set_rows,
    leakage_warning,
    plan_and_baseline,
    split_warnings,
)
from headstart.core.splits import too_few_to_split
from headstart.modalities.text.sources import TABLE_SUFFIXES, skip_kinds
from headstart.modalities.text.textset import normalised
from headstart.progress import progress_bar

#: A class with fewer texts than this gets a warning: too few to learn or to measure.
FEW_TEXTS = 5
#: Texts with fewer words than this are listed as near-empty.
NEAR_EMPTY_WORDS = 3


@dataclass
class TextInspection:
    """Everything ``inspect`` found in text data; :meth:`to_dict` is the JSON beside a run."""

    layout: str
    location: str
    class_names: list[str]
    counts: dict[str, list[int]]
    token_lengths: dict[str, object]
    imbalance_ratio: float
    majority_baseline: dict[str, object]
    near_empty: list[dict[str, str]] = field(default_factory=list)
    duplicates_within: dict[str, list[list[str]]] = field(default_factory=dict)
    duplicates_across: list[dict[str, object]] = field(default_factory=list)
    too_few_to_split: dict[str, int] = field(default_factory=dict)
    few_images: dict[str, int] = field(default_factory=dict)  # the name image runs use
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"} each
    notes: list[str] = field(default_factory=list)
    #: several labels per example: :func:`~headstart.core.inspection.label_set_facts` of
    #: train, and the examples per split (``counts`` then count labels, not examples)
    label_sets: dict | None = None
    n_per_split: dict[str, int] = field(default_factory=dict)
    planned_split: dict[str, list[int]] = field(default_factory=dict)
    split_method: dict[str, object] = field(default_factory=dict)
    item_hashes: dict[str, list[str | None]] = field(default_factory=dict, repr=False)
    #: what holds each text, in messages: rows (of a table), files, or copies (in memory)
    item_word: str = "rows"
    modality = "text"

    @property
    def n_images(self) -> dict[str, int]:  # the examples per split, as image inspections say
        return self.n_per_split or {s: int(sum(c)) for s, c in self.counts.items()}

    @property
    def unreadable(self) -> list[dict[str, str]]:
        return list(self.skipped)

    @property
    def ignored_files(self) -> int:
        return len(self.skipped)

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["item_hashes"]
        d["warnings"] = self.warnings()  # what the terminal's "worth a look" box says
        d["modality"] = "text"
        d["n_texts"] = self.n_images
        return d

    def facts(self) -> list[tuple[str, str]]:
        """The rows particular to text, for the terminal and the report."""
        t = self.token_lengths
        rows = []
        if t:
            rows.append(
                (
                    "length in tokens",
                    f"median {t['median']:.0f}, 95th percentile {t['p95']:.0f}, "
                    f"max {t['max']} ({t['encoder']}'s tokenizer)",
                )
            )
            rows.append(
                (
                    "longer than a window",
                    f"{t['truncated_share']:.1%} of texts are longer than the encoder's "
                    f"{t['max_length']}-token window (--max-length)",
                )
            )
        if self.label_sets:
            rows += label_set_rows(self.label_sets, "text")
        return rows

    def warnings(self) -> list[str]:
        """The findings that should change what the user does next, in plain words."""
        first, last = split_warnings(self, "text", FEW_TEXTS)
        out = first
        if self.skipped:
            out.append(f"{len(self.skipped)} text(s) skipped ({skip_kinds(self.skipped)})")
        leak = leakage_warning(self.duplicates_across, "text", self.item_word)
        if leak:
            out.append(leak)
        n_dup = sum(len(g) - 1 for groups in self.duplicates_within.values() for g in groups)
        if n_dup:
            out.append(f"{n_dup} duplicate text(s) within splits (same after case and spaces)")
        if self.near_empty:
            out.append(f"{len(self.near_empty)} near-empty text(s) (< {NEAR_EMPTY_WORDS} words)")
        share = self.token_lengths.get("truncated_share", 0.0) if self.token_lengths else 0.0
        if share >= 0.1:
            from headstart.choices import DEFAULT_LONG_TEXTS

            limit = self.token_lengths["max_length"]
            default = DEFAULT_LONG_TEXTS
            out.append(
                f"{share:.0%} of texts will be truncated at {limit} tokens: the end of each "
                "is not seen"
                if default == "truncate"
                else f"{share:.0%} of texts are longer than {limit} tokens: training reads "
                f"each whole in overlapping windows of {limit} (--long-texts {default}), "
                "which costs one encoder pass per window; --long-texts truncate would cut them"
            )
        return out + last


def text_hash(text: str) -> str:
    """Content hash of a text after whitespace and case normalisation."""
    return hashlib.sha1(normalised(text).encode("utf-8", "surrogatepass")).hexdigest()


def token_lengths(texts: list[str], encoder: str, max_length: int | None) -> dict[str, object]:
    """Length in tokens of ``texts`` under ``encoder``'s tokenizer (the text's own, without the
    encoder's special tokens: as ``train`` counts them), and the share longer than one window
    (``max_length`` less those special tokens)."""
    from headstart.modalities.text.encoder import load_tokenizer

    tokenizer, limit = load_tokenizer(encoder, max_length)
    special = len(tokenizer("")["input_ids"])  # [CLS] and [SEP], or <s> and </s>
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    lengths = np.array([len(one) for one in ids])
    return {
        "encoder": encoder,
        "median": float(np.median(lengths)),
        "p95": float(np.percentile(lengths, 95)),
        "max": int(lengths.max()),
        "max_length": limit,
        "truncated_share": float(np.mean(lengths > limit - special)),
    }


def inspect_texts(
    source: DataSource,
    *,
    val_split: float = 0.2,
    test_split: float | None = None,
    seed: int = 0,
    encoder: str = "minilm",
    max_length: int | None = None,
    workers: int = 0,
    desc: str = "inspecting",
) -> TextInspection:
    """Summarise every text of every split of ``source``; ``workers`` is accepted for the
    image inspection's signature (text needs no decoding threads); ``desc`` labels the
    progress line."""
    del workers
    splits = source.splits()
    names = list(source.class_names)
    counts = {n: s.class_counts().tolist() for n, s in splits.items()}
    by_hash: dict[str, list[tuple[str, str]]] = defaultdict(list)
    item_hashes: dict[str, list[str | None]] = {}
    near_empty: list[dict[str, str]] = []
    all_texts: list[str] = []
    total = sum(len(s) for s in splits.values())
    with progress_bar(total=total, desc=desc, unit="text") as bar:
        for split, s in splits.items():
            hashes = []
            for i, text in enumerate(s.texts):
                digest = text_hash(text)
                hashes.append(digest)
                by_hash[digest].append((split, s.ids[i]))
                if len(text.split()) < NEAR_EMPTY_WORDS:
                    near_empty.append({"split": split, "id": s.ids[i], "text": text[:80]})
                all_texts.append(text)
                bar.update()
            item_hashes[split] = hashes
    within, across = group_duplicates(by_hash)
    lengths = token_lengths(all_texts, encoder, max_length) if all_texts else {}
    planned_counts, split_method, baseline = plan_and_baseline(
        source, counts, set(), val_split=val_split, test_split=test_split, seed=seed
    )
    train_counts = counts["train"]
    multi = source.train.labels.ndim == 2
    return TextInspection(
        label_sets=label_set_facts(source.train.labels, names, FEW_TEXTS) if multi else None,
        n_per_split={n: len(s) for n, s in splits.items()} if multi else {},
        layout=source.layout,
        location=source.location,
        class_names=names,
        counts=counts,
        token_lengths=lengths,
        imbalance_ratio=imbalance_ratio(train_counts),
        majority_baseline=baseline,
        near_empty=near_empty,
        duplicates_within=within,
        duplicates_across=across,
        too_few_to_split=too_few_to_split(source.train.labels, source.class_names)
        if source.val is None
        else {},
        few_images={names[i]: int(c) for i, c in enumerate(train_counts) if 0 < c < FEW_TEXTS},
        skipped=list(source.skipped),
        notes=list(source.notes),
        planned_split=planned_counts,
        split_method=split_method,
        item_hashes=item_hashes,
        item_word=item_word(source),
    )


def item_word(source: DataSource) -> str:
    """What holds each text of ``source``: rows (of a table, the texts' origin), files (a
    folder), or copies (texts in memory)."""
    if Path(source.train.origin).suffix.lower() in TABLE_SUFFIXES:
        return "rows"
    return "files" if Path(source.location).is_dir() else "copies"
