"""What a model costs: parameter counts (total, trainable, frozen) of a backbone and head, or
of a saved run, as Keras' ``model.summary()`` gives them, and the head in words. (Which image
backbones there are: :mod:`headstart.modalities.image.backbones.catalog`.)
"""

from __future__ import annotations

from pathlib import Path


def head_words(spec) -> str:
    """What a head is, in a few words (``summary``'s title)."""
    from headstart.core.heads import ENSEMBLE

    if spec.kind == ENSEMBLE:
        return f"an ensemble of {len(spec.members)} heads"
    if spec.kind == "linear":
        return "a linear head"
    return f"the lesson head ({spec.hidden} hidden units)"


def model_summary(
    *,
    backbone: str,
    n_classes: int = 10,
    head: str = "lesson",
    hidden: int = 50,
    pooling: str = "max",
    run_dir: str | Path | None = None,
) -> dict:
    """Total / trainable / frozen parameters of backbone (an image network or a text encoder)
    + head with the backbone frozen, and its stages as ``--unfreeze`` counts them. A named
    backbone is built with random weights: counting needs no download."""
    from headstart.core.heads import HeadSpec, build_head
    from headstart.core.modality import modality_of, modality_of_encoder
    from headstart.core.model import TransferModel, parameter_counts
    from headstart.core.runs import load_run

    spec, probe = HeadSpec(head, hidden), None
    if run_dir is not None:
        run = load_run(run_dir)
        model, name, n_classes = run.model, run.backbone_name, len(run.class_names)
        kind = modality_of(run)
        spec = run.head_spec
        probe = run.metrics.get("probe")
    else:
        kind = modality_of_encoder(backbone)
        loaded = kind.load_encoder(
            backbone, weights="none", pooling=pooling if kind.name == "image" else "auto"
        )
        bb, name = loaded.backbone, loaded.timm_name
        for p in bb.parameters():
            p.requires_grad_(False)
        model = TransferModel(bb, build_head(spec, bb.num_features, n_classes))
    counts = parameter_counts(model)
    return {
        "backbone": name,
        "head": f"the linear probe (C {probe['C']:g})" if probe else head_words(spec),
        "modality": kind.name,
        "stage_word": kind.stage_word,
        "n_classes": n_classes,
        "num_features": model.backbone.num_features,
        # what --unfreeze N (and, for images, --feature-stages) count
        "stages": model.backbone.stage_map().describe(kind.stage_word),
        **counts,
    }
