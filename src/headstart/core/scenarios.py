"""The tutorials' "four scenarios", computed from the data instead of read from a blog.

Seed 003 (Analytics Vidhya) sorts transfer learning into four cases by two axes:

| data size | similar to the pretraining data   | dissimilar                           |
|-----------|-----------------------------------|--------------------------------------|
| small     | features only (train the head)    | freeze the first k blocks, train rest |
| large     | fine-tune everything (pretrained) | train from scratch                   |

**Size** is read off the training split: *large* means at least 10,000 images and a median of
500 per class (below that, full fine-tuning of a 5-25M-parameter network overfits more often
than it helps, and the tutorials' own examples are all "small").

**Similarity** is measured, not assumed, as the *transfer gain*: how much of the error a
linear probe makes on a random-weight copy of the backbone the pretrained features remove,

    gain = (acc_pretrained - acc_random) / (1 - acc_random)

with both accuracies cross-validated on the user's training images. Why this measure: it asks
the question the scenarios care about -- do the pretrained features help *on these classes*? --
directly, on the user's labels, with the same architecture and input pipeline on both sides,
so resolution, colour and class count cancel out. (The alternative, how confidently the
ImageNet classifier recognises the images, needs the 1000-class head and only says whether the
images look like ImageNet photos, not whether the features separate the user's classes.)
A gain of 0.5 or more (pretrained features remove at least half the random features' errors)
counts as *similar*.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

LARGE_TOTAL = 10_000
LARGE_PER_CLASS = 500
SIMILAR_GAIN = 0.5
#: below this many training examples the advice warns that no choice is reliable: the
#: validation split is a few dozen examples (BENCHMARKS.md, very small text sets)
TINY_TOTAL = 250


@dataclass
class Advice:
    """A recommended strategy and the measurements and reasons behind it."""

    n_train: int
    median_per_class: float
    large: bool
    similarity: float | None
    similar: bool | None
    scenario: str
    strategy: str
    unfreeze: int | None = None
    layers: int | None = None
    reasons: list[str] = field(default_factory=list)
    measurements: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def command_line(self) -> str:
        return advice_flags(self.to_dict())


def advice_flags(advice: dict) -> str:
    """The ``headstart train`` flags that follow an advice (given as its dict)."""
    extra = ""
    if advice["strategy"] == "fine-tune":
        extra = f" --unfreeze {advice['unfreeze']}"
    elif advice["strategy"] == "freeze-first":
        extra = f" --layers {advice['layers']}"
    return f"--strategy {advice['strategy']}{extra}"


def transfer_gain(acc_pretrained: float, acc_random: float) -> float:
    """Share of the random-feature probe's errors that the pretrained features remove."""
    if acc_random >= 1.0:
        return 0.0
    return float((acc_pretrained - acc_random) / (1.0 - acc_random))


def recommend(
    class_counts: np.ndarray,
    gain: float,
    n_blocks: int,
    *,
    noun: str = "image",
    block: str = "block",
    stage: str = "stage",
    n_examples: int | None = None,
) -> Advice:
    """Place the data in one of the four scenarios and say what to do, in plain words.
    ``noun``, ``block`` and ``stage`` name an example, a freezable block and an unfreezable
    stage of this kind of data and network (text: text, layer, layer). ``n_examples``: the
    training examples, where ``class_counts`` count labels (several per example)."""
    counts = np.asarray(class_counts)
    counts = counts[counts > 0]
    n, median = int(counts.sum()), float(np.median(counts))
    per, kinds = "per class", "classes"
    if n_examples is not None:  # several labels per example: the counts are of labels
        n, per, kinds = int(n_examples), "per label", "labels"
    large = n >= LARGE_TOTAL and median >= LARGE_PER_CLASS
    similar = gain >= SIMILAR_GAIN
    size_words = (
        f"{n:,} training {noun}s, a median of {median:.0f} {per}: "
        + ("large" if large else "small")
        + f" (large means >= {LARGE_TOTAL:,} {noun}s and >= {LARGE_PER_CLASS} {per})"
    )
    effect = (
        f"remove {gain:.0%} of the errors"
        if gain >= 0
        else f"make {-gain:.0%} more errors than the ones"  # (worse than random weights)
    )
    sim_words = (
        f"pretrained features {effect} a random-weight copy of "
        f"the network makes on your {kinds}: {'similar' if similar else 'dissimilar'} "
        f"to the pretraining data (similar means >= {SIMILAR_GAIN:.0%})"
    )
    reasons = [size_words, sim_words]
    layers = None
    if not large and similar:
        scenario, strategy = "small data, similar", "feature-extraction"
        reasons.append(
            "the pretrained features already fit and there is little data to adapt "
            "them: train only the head (the lesson's first stage); --strategy auto "
            f"then checks whether unfreezing the top {stage} helps on validation"
        )
    elif not large and not similar:
        scenario, strategy = "small data, dissimilar", "freeze-first"
        layers = max(1, n_blocks // 2)
        reasons.append(
            f"the generic early {block}s still help but the late, pretraining-specific "
            f"ones do not: keep the first {layers} of {n_blocks} {block}s frozen and "
            "retrain the rest at a low learning rate"
        )
    elif large and similar:
        scenario, strategy = "large data, similar", "full"
        reasons.append(
            "enough data to adapt every layer without overfitting, starting from "
            "weights that already fit: fine-tune the whole network at a low rate"
        )
    else:
        scenario, strategy = "large data, dissimilar", "scratch"
        reasons.append(
            "enough data to learn features of its own, and the pretrained ones do "
            "not transfer: train the architecture from scratch"
        )
    if n < TINY_TOTAL:
        reasons.append(
            f"with only {n:,} training {noun}s every choice here is close to chance: the "
            "validation split that would tell strategies apart is a few dozen examples (on "
            "100 labelled drug reviews no method beat the majority class beyond noise, "
            f"BENCHMARKS.md); label more {noun}s before trusting any strategy"
        )
    return Advice(n, median, large, gain, similar, scenario, strategy, None, layers, reasons)
