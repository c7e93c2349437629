"""What an exported image run looks like: the graph takes pixels in [0, 1] at the run's input
size and does the mean/std normalisation itself; decoding and resizing stay on the client
(:mod:`.preprocess_np`, no torch needed)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: the exported graph's inputs, in order
INPUT_NAMES = ("pixels",)


class ImageGraph(nn.Module):
    """pixels (N, 3, H, W) float32 in [0, 1] -> class probabilities (N, classes): the softmax,
    or with several labels per image one sigmoid per label (``task``)."""

    def __init__(self, model: nn.Module, mean, std, task=None):
        super().__init__()
        self.model = model
        self.activate = task.activate if task is not None else (lambda z: torch.softmax(z, 1))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.activate(self.model((pixels - self.mean) / self.std))


def graph(run) -> tuple[nn.Module, dict]:
    """(graph, dynamic axes by input name) of an image run."""
    prep = run.preprocessing
    graph = ImageGraph(run.model.eval(), prep.mean, prep.std, run.task)
    return graph.eval(), {"pixels": {0: "batch"}}


def samples(run, val, n: int, seed: int = 0) -> tuple[list, str]:
    """(inputs for the parity check, where they came from): up to ``n`` of ``val`` (the run's
    validation images, None when its data is gone), else generated images of odd sizes."""
    images = []
    for i in range(min(n, len(val) if val is not None else 0)):
        try:
            images.append(val.image(i))
        except Exception:  # an unreadable validation image: the others check the graph
            continue
    if images:
        return images, f"{len(images)} of the run's validation images"
    rng = np.random.default_rng(seed)
    h, w = run.preprocessing.input_size
    sizes = [(h, w), (h // 2 + 7, w + 31), (h * 2, w // 3 + 5)]
    images = [rng.integers(0, 256, (*sizes[i % 3], 3), dtype=np.uint8) for i in range(n)]
    return images, f"{n} generated images"


def client_meta(run, stem: str) -> dict:
    """Nothing beyond the preprocessing the export records for every run."""
    return {}


def copy_files(run, folder, stem: str) -> None:
    """An image graph needs no file beside it."""
