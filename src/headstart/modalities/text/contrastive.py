"""SetFit's contrastive stage (Tunstall et al. 2022, "Efficient Few-Shot Learning Without
Prompts"): before a head is trained on a frozen sentence encoder, the encoder itself is tuned on
pairs of training texts, so that texts of one class embed close together and texts of
different classes apart. With a hundred labelled texts this is what lets a sentence encoder's
head learn at all.

Pairs are drawn as SetFit draws them: for each of ``iterations`` rounds, every training text
once with a random text of its own class (target similarity 1) and once with a random text of
another class (target 0). The loss is SetFit's ``CosineSimilarityLoss`` (sentence-transformers):
the mean squared difference between the cosine similarity of the two pooled embeddings and the
target. AdamW at SetFit's body learning rate (2e-5), one pass over the pairs, batches of 16
pairs, with a linear decay; every layer of the encoder trains. Written on the run's own encoder
module (not a sentence-transformers model object), so the tuned weights are the run's and
everything downstream (the cache, saving, export) is unchanged.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from headstart.progress import progress_bar

log = logging.getLogger(__name__)

#: SetFit's defaults: rounds of pairs per training text, body learning rate, pairs per batch.
ITERATIONS = 20
LEARNING_RATE = 2e-5
BATCH_PAIRS = 16
#: Texts encoded together within a step, shortest first (less padding).
GROUP = 8


def draw_pairs(labels: np.ndarray, iterations: int, seed: int) -> np.ndarray:
    """(pairs, 3) int array of (first text, second text, target 1 or 0): per round, each text
    with a random other text of its class (when its class has another) and with a random text
    of another class (when there is one), shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    by_class = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
    pairs = []
    for _ in range(iterations):
        for i, c in enumerate(labels):
            same = by_class[c][by_class[c] != i]
            if len(same):
                pairs.append((i, int(rng.choice(same)), 1))
            other = np.flatnonzero(labels != c)
            if len(other):
                pairs.append((i, int(rng.choice(other)), 0))
    out = np.array(pairs, dtype=np.int64).reshape(-1, 3)
    return out[rng.permutation(len(out))]


def contrastive_tune(
    loaded,
    texts,
    *,
    iterations: int = ITERATIONS,
    lr: float = LEARNING_RATE,
    batch_pairs: int = BATCH_PAIRS,
    seed: int = 0,
    device: torch.device | str = "cpu",
    deadline: float | None = None,
) -> dict:
    """Tune ``loaded``'s encoder in place on pairs of ``texts`` (a :class:`TextSet`, the train
    split); returns what was done (pairs, steps planned and run, the loss at the start and the
    end, seconds). At ``deadline`` (a ``time.perf_counter()``) it stops after the step under
    way: the weights are what the steps so far made of them."""
    start = time.perf_counter()
    encoder = loaded.backbone
    device = torch.device(device)
    ids, _ = loaded.encode(texts.texts)
    pairs = draw_pairs(texts.labels, iterations, seed)
    torch.manual_seed(seed)
    for p in encoder.parameters():
        p.requires_grad_(True)
    encoder.to(device).train()
    decay = [p for n, p in encoder.named_parameters() if p.ndim > 1 and "LayerNorm" not in n]
    rest = [p for n, p in encoder.named_parameters() if not (p.ndim > 1 and "LayerNorm" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=lr
    )
    steps = max(1, -(-len(pairs) // batch_pairs))
    log.info(  # minutes on a CPU: said before the first step
        f"SetFit's contrastive stage: {len(pairs):,} pairs of training texts in {steps} "
        "steps, the whole encoder training (minutes on a CPU)"
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps))
    losses = []
    bar = progress_bar(total=steps, desc="contrastive pairs", unit="step")
    for s in range(0, len(pairs), batch_pairs):
        if deadline is not None and losses and time.perf_counter() > deadline:
            break
        batch = pairs[s : s + batch_pairs]
        # each text once per step, encoded in groups of similar length (padding to a random
        # batch's longest text would cost attention on padding: reviews vary tenfold)
        rows = np.unique(batch[:, :2])
        rows = rows[np.argsort([len(ids[int(r)]) for r in rows], kind="stable")]
        where = {int(r): k for k, r in enumerate(rows)}
        parts = []
        for g in range(0, len(rows), GROUP):
            input_ids, mask = loaded.pad([ids[int(r)] for r in rows[g : g + GROUP]])
            parts.append(encoder((input_ids.to(device), mask.to(device))))
        emb = torch.cat(parts)
        a = emb[[where[int(i)] for i in batch[:, 0]]]
        b = emb[[where[int(i)] for i in batch[:, 1]]]
        cos = nn.functional.cosine_similarity(a, b, dim=-1)
        target = torch.as_tensor(batch[:, 2], dtype=cos.dtype, device=device)
        loss = nn.functional.mse_loss(cos, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        bar.update(1)
    bar.close()
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    tenth = max(1, len(losses) // 10)
    first, last = losses[:tenth], losses[-tenth:]
    return {
        "method": "SetFit's contrastive stage (CosineSimilarityLoss on pairs of training texts)",
        "iterations": iterations,
        "pairs": int(len(pairs)),
        "steps": steps,
        "steps_run": len(losses),
        "batch_pairs": batch_pairs,
        "lr": lr,
        "loss_first_tenth": round(float(np.mean(first)), 4),
        "loss_last_tenth": round(float(np.mean(last)), 4),
        "seconds": round(time.perf_counter() - start, 1),
    }
