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


class EnsembleHead(nn.Module):
    """Members' heads, each on its columns of the features (a list of (start, end) ranges,
    joined in order), probabilities averaged by ``weights``; returns log-probabilities
    (softmax of the output = the average)."""

    def __init__(self, heads: list[nn.Module], columns: list[list[tuple[int, int]]], weights):
        super().__init__()
        self.members = nn.ModuleList(heads)
        self.columns = [[(int(lo), int(hi)) for lo, hi in ranges] for ranges in columns]
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        total = None
        for i, (head, ranges) in enumerate(zip(self.members, self.columns)):
            parts = [x[:, lo:hi] for lo, hi in ranges]
            p = torch.softmax(head(parts[0] if len(parts) == 1 else torch.cat(parts, 1)), dim=1)
            p = p * self.weights[i]
            total = p if total is None else total + p
        return torch.log(total.clamp_min(1e-12))
