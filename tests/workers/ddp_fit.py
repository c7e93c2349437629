"""Train a small convolutional suffix and a linear head with ``headstart.core.loop.fit``, on
one process or under torchrun, and let rank 0 write the final weights and the history.

No layer here depends on how the batch is split (no BatchNorm in training mode, no dropout),
so the same seed must give the same weights on any number of processes: what DDP, the shared
batches and the loss scaling in ``fit`` promise. A second model, the lesson head with its
BatchNorm, checks that every rank ends with rank 0's model (running statistics included).
Class weights, label smoothing and a last batch that splits unevenly (69 examples, batch 16:
four of 16, then 5 -> 3 + 2) are on purpose.

    python ddp_fit.py OUT.npz
    python -m torch.distributed.run --standalone --nproc-per-node 2 ddp_fit.py OUT.npz
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from torch import nn

from headstart.core import distributed
from headstart.core.inputs import ArrayInputs
from headstart.core.loop import FitSettings, fit


def main(out: str) -> None:
    if distributed.launched():
        distributed.init("cpu")
    group = distributed.current()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(89, 8, 6, 6)).astype(np.float32)
    y = np.arange(89) % 3
    x[np.arange(89), y] += 1.0  # learnable
    train = ArrayInputs([x[:69]], y[:69])
    val = ArrayInputs([x[69:]], y[69:])
    torch.manual_seed(0)
    head = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    module = nn.Sequential(nn.Conv2d(8, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), head)
    settings = FitSettings(
        epochs=4, batch_size=16, lr=1e-2, backbone_lr=1e-3, patience=0, label_smoothing=0.1
    )
    history = fit(module, head, train, val, settings, class_weights=np.array([1.0, 2.0, 0.5]))
    # a head whose BatchNorm trains: each rank updates the running statistics on its share,
    # so after training every rank must still hold the same model (the one rank 0 saves and
    # every rank scored validation with)
    from headstart.core.heads import HeadSpec, build_head

    torch.manual_seed(0)
    bn_head = build_head(HeadSpec(), 8 * 6 * 6, 3)
    fit(bn_head, bn_head, train, val, settings)
    states = group.all_gather({k: v.clone() for k, v in bn_head.state_dict().items()})
    same = all(torch.equal(states[0][k], s[k]) for s in states for k in s)
    if group.is_main:
        np.savez(out, **{k: v.numpy() for k, v in module.state_dict().items()})
        with open(out + ".json", "w") as f:
            json.dump({"history": history.epochs, "bn_model_same_on_every_rank": same}, f)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
