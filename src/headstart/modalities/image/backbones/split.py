"""Cut a backbone in two: a frozen prefix (run once, cached) and a trainable suffix.

Most timm CNNs compute ``forward_features`` as a chain of modules: the top-level children in
the order the forward calls them, with ``nn.Sequential`` containers (ResNet's ``layer3``,
EfficientNet's ``blocks``, DenseNet's ``features``) unrolled into their parts. This module
finds that chain by watching a probe forward pass, and *proves* it by running the chain on a
random input and comparing with ``forward_features``. Families whose forward is not such a
chain (ViT adds position embeddings in a method) get no plan; they still train, on the fly.
"""

from __future__ import annotations

import torch
from torch import nn

from headstart.core.stages import SequentialPlan


def _is_plain_sequential(m: nn.Module) -> bool:
    return isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward


def _called_children(module: nn.Module, run) -> list[tuple[str, nn.Module]] | None:
    """Children of ``module`` in the order ``run()`` calls them; None if any is called twice."""
    order: list[str] = []
    counts: dict[str, int] = {}
    hooks = []
    for name, child in module.named_children():

        def pre(_m, _a, _n=name):
            counts[_n] = counts.get(_n, 0) + 1
            if counts[_n] == 1:
                order.append(_n)

        hooks.append(child.register_forward_pre_hook(pre))
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    if any(c > 1 for c in counts.values()):
        return None
    children = dict(module.named_children())
    return [(n, children[n]) for n in order]


#: What replaying a forward that is not a chain raises: torch's shape errors (RuntimeError), a
#: unit that returns or expects a tuple (ValueError when unpacking, TypeError for arguments).
#: Anything else is a bug and propagates rather than passing for a limit of the family.
_NOT_A_CHAIN = (RuntimeError, TypeError, ValueError)


def sequential_plan(model: nn.Module, probe: torch.Tensor | None = None) -> SequentialPlan | None:
    """The chain of units behind ``model.forward_features``, verified; None if there is none."""
    if probe is None:
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        h, w = tuple(cfg.get("input_size", (3, 224, 224)))[1:]
        probe = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            top = _called_children(model, lambda: model.forward_features(probe))
            if not top:
                return None
            units: list[tuple[str, nn.Module]] = []
            stack = list(reversed(top))
            while stack:  # unroll plain nn.Sequential containers, depth first
                name, m = stack.pop()
                if _is_plain_sequential(m) and len(m) > 0:
                    stack.extend(reversed([(f"{name}.{n}", c) for n, c in m.named_children()]))
                else:
                    units.append((name, m))
            expected = model.forward_features(probe)
            x = probe
            try:
                for _, m in units:
                    x = m(x)
            except _NOT_A_CHAIN:  # a forward that is not this chain: no plan, train on the fly
                return None
            tensors = isinstance(x, torch.Tensor) and isinstance(expected, torch.Tensor)
            if not tensors or x.shape != expected.shape:
                return None
            if not torch.allclose(x, expected, atol=1e-5, rtol=1e-4):
                return None
            return SequentialPlan(units)
    finally:
        model.train(was)
