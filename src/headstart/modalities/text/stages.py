"""Where a transformers encoder can be cut: the embeddings, then each encoder layer, then the
pooling.

* **stages** are the encoder layers: ``--unfreeze N`` trains the last N (and whatever runs
  after them, such as a final norm; the pooling and the head always train).
* **blocks** are the same layers: ``--layers K`` freezes the embeddings and the first K.
* the **sequential plan** is the embeddings followed by the layers, each layer given the
  attention mask in the form the model itself builds. Like the image plan it is *proved*
  before use: the chain is run on a padded probe batch and compared with the model's own
  forward. Families whose layers need more than (hidden states, mask) -- MPNet's relative
  position bias, for one -- get no plan and train on the fly, through the whole encoder.

BERT's ``pooler`` (a dense layer on the first token, which headstart's pooling does not use)
belongs to no stage and never trains.
"""

from __future__ import annotations

import torch
from torch import nn

from headstart.core.stages import SequentialPlan, StageMap
from headstart.errors import ConfigError

#: Where transformers families keep their list of layers, relative to the model.
_LAYER_PATHS = ("encoder.layer", "transformer.layer", "encoder.layers", "layers")


def layer_list(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """(dotted path, the layers) of a transformers encoder; None if none is found."""
    for path in _LAYER_PATHS:
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return path, obj
    return None


def _owners(model: nn.Module) -> list[str]:
    return [
        n for n, m in model.named_modules() if n and any(True for _ in m.parameters(recurse=False))
    ]


def text_stage_map(model: nn.Module) -> StageMap:
    """The stage map of a transformers encoder (see the module docstring)."""
    found = layer_list(model)
    if found is None or getattr(model, "embeddings", None) is None:
        raise ConfigError(
            f"{type(model).__name__}: no embeddings and layer list found, so its layers "
            "cannot be unfrozen one by one; use --strategy full or feature-extraction."
        )
    path, layers = found
    owners = _owners(model)

    def under(prefix: str) -> list[str]:
        return [n for n in owners if n == prefix or n.startswith(prefix + ".")]

    stem = under("embeddings") + [n for n in owners if n.startswith("embeddings_")]
    stages = [under(f"{path}.{i}") for i in range(len(layers))]
    placed = {n for group in [stem, *stages, under("pooler")] for n in group}
    top = [n for n in owners if n not in placed]  # a final norm, a shared position bias
    return StageMap(stem=stem, stages=stages, top=top, blocks=stages)


def attention_bias(model: nn.Module, hidden: torch.Tensor, mask: torch.Tensor):
    """The attention mask in the form ``model``'s layers expect, built the way the model's own
    forward builds it (transformers 5: ``create_bidirectional_mask``; earlier: the extended
    additive mask)."""
    try:
        from transformers.masking_utils import create_bidirectional_mask
    except ImportError:  # transformers 4.x
        return model.get_extended_attention_mask(mask, mask.shape)
    return create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=mask)


def _run_layers(model: nn.Module, layers, hidden: torch.Tensor, mask: torch.Tensor):
    bias = attention_bias(model, hidden, mask)
    for layer in layers:
        out = layer(hidden, bias)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


class TextPrefix(nn.Module):
    """The frozen start of the encoder: ``(input_ids, attention_mask)`` -> (hidden states
    entering the first trained layer, attention_mask)."""

    def __init__(self, model: nn.Module, units: list[nn.Module]):
        super().__init__()
        self.embeddings = units[0]
        self.layers = nn.ModuleList(units[1:])
        object.__setattr__(self, "_model", model)  # for its config; not a submodule

    def forward(self, batch):
        input_ids, mask = batch
        hidden = self.embeddings(input_ids)
        return _run_layers(self._model, self.layers, hidden, mask), mask


class TextSuffix(nn.Module):
    """The trained layers: (hidden states, attention_mask) -> (last hidden states, mask); a
    third element (the windows' membership of texts) is passed on to the pooling."""

    def __init__(self, model: nn.Module, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        object.__setattr__(self, "_model", model)

    def forward(self, states):
        hidden, mask, *membership = states  # windows' membership of texts, passed on
        return (_run_layers(self._model, self.layers, hidden, mask), mask, *membership)


class TextPlan(SequentialPlan):
    """Embeddings and layers; a cut at unit k caches the hidden states entering unit k."""

    def __init__(self, units: list[tuple[str, nn.Module]], model: nn.Module):
        super().__init__(units)
        self.model = model

    def prefix(self, cut: int) -> nn.Module:
        return TextPrefix(self.model, [m for _, m in self.units[:cut]])

    def suffix(self, cut: int) -> nn.Module:
        return TextSuffix(self.model, [m for _, m in self.units[cut:]])


#: What replaying layers that need more than (hidden, mask) raises (see the image plan).
_NOT_A_CHAIN = (RuntimeError, TypeError, ValueError, AttributeError)


def text_sequential_plan(model: nn.Module) -> TextPlan | None:
    """The verified chain (embeddings, layer 0, ..., layer L-1) of ``model``; None if the
    chain does not reproduce the model's own forward on a padded probe batch."""
    found = layer_list(model)
    embeddings = getattr(model, "embeddings", None)
    if found is None or embeddings is None:
        return None
    path, layers = found
    plan = TextPlan(
        [("embeddings", embeddings), *((f"{path}.{i}", m) for i, m in enumerate(layers))], model
    )
    vocab = int(getattr(model.config, "vocab_size", 1000))
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, max(6, min(vocab, 1000)), (2, 7), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0  # one padded text: the mask must be built as the model builds it
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(input_ids=ids, attention_mask=mask).last_hidden_state
            try:
                whole, _ = plan.prefix(len(plan.units))((ids, mask))
                mid = plan.suffix(1)(plan.prefix(1)((ids, mask)))[0]
            except _NOT_A_CHAIN:
                return None
        real = mask.bool()
        for got in (whole, mid):
            if got.shape != expected.shape:
                return None
            if not torch.allclose(got[real], expected[real], atol=1e-5, rtol=1e-4):
                return None
        return plan
    finally:
        model.train(was)
