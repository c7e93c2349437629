"""A text run's parts of the report (:mod:`headstart.core.report` asks the modality for
them): sample training texts and the most confident mistakes, as escaped snippets."""

from __future__ import annotations

import html

import numpy as np

from headstart.core.evaluate import confident_mistakes
from headstart.core.predictions import SNIPPET_CHARS, snippet
from headstart.core.tasks import label_text


def text_examples(run, evaluation: dict | None, splits) -> dict[str, str]:
    """For a text run: HTML tables of sample training texts and of the most confident
    mistakes (escaped snippets with their labels), by section name."""
    out: dict[str, str] = {}
    train = splits.train
    picks = np.random.default_rng(0).choice(len(train), size=min(6, len(train)), replace=False)
    rows = [
        f"<tr><td>{html.escape(label_text(train.labels[i], train.class_names))}</td>"
        f"<td class=text>{snippet(train.texts[int(i)])}</td></tr>"
        for i in picks
    ]
    out["samples"] = (
        "<p>Sample training texts (the first " + str(SNIPPET_CHARS) + " characters):</p>"
        "<table class=texts><tr><th>label</th><th>text</th></tr>" + "".join(rows) + "</table>"
    )
    mistakes = confident_mistakes(evaluation, k=9) if evaluation is not None else []
    where = {
        item_id: (s, pos) for s in splits.items().values() for pos, item_id in enumerate(s.ids)
    }
    rows = []
    for m in mistakes:
        if m["id"] in where:
            s, pos = where[m["id"]]
            rows.append(
                f"<tr><td>{html.escape(m['true'])}</td><td>{html.escape(m['predicted'])} "
                f"({m['p']:.0%})</td><td class=text>{snippet(s.texts[pos])}</td>"
                f"<td><code>{html.escape(m['id'])}</code></td></tr>"
            )
    if rows:
        out["mistakes"] = (
            "<table class=texts><tr><th>true</th><th>predicted (probability)</th><th>text</th>"
            "<th>where</th></tr>" + "".join(rows) + "</table>"
        )
    return out
