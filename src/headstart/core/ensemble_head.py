"""The head of an ensemble run (``HeadSpec(kind="ensemble")``, built by ``--strategy auto``'s
ensemble selection, :mod:`headstart.core.ensemble`): the members' heads, each on its columns of
the features (of one backbone, or of several side by side), their probabilities averaged by the
selected weights. It returns the
average's logarithm, so the softmax every consumer applies (predict, evaluate, the ONNX graph,
serve) gives the ensemble's probabilities.
"""

from __future__ import annotations

import torch
from torch import nn

from headstart.core.tasks import combine


class EnsembleHead(nn.Module):
    """Members' heads, each on its columns of the features (a list of (start, end) ranges,
    joined in order), probabilities averaged by ``weights``; returns log-probabilities
    (softmax of the output = the average)."""

    def __init__(self, heads: list[nn.Module], columns: list[list[tuple[int, int]]], weights):
        super().__init__()
        self.members = nn.ModuleList(heads)
        self.columns = [[(int(lo), int(hi)) for lo, hi in ranges] for ranges in columns]
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32))
        # as numbers, for combining: the graph then holds no branch on a tensor's value
        self.member_weights = [float(w) for w in weights]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        probas = []
        for head, ranges in zip(self.members, self.columns):
            parts = [x[:, lo:hi] for lo, hi in ranges]
            probas.append(
                torch.softmax(head(parts[0] if len(parts) == 1 else torch.cat(parts, 1)), dim=1)
            )
        return torch.log(combine(probas, self.member_weights).clamp_min(1e-12))
