"""An image run's parts of the report (:mod:`headstart.core.report` asks the modality for
them): a grid of sample training images, one image with its augmented views (as training made
them), and the most confident mistakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from headstart.core import plots
from headstart.core.evaluate import confident_mistakes
from headstart.core.tasks import label_text

#: Augmented views shown in the report (the grid has room for the original and eight).
SHOWN_VIEWS = 8


def describe_augmenter(aug) -> list[str]:
    """The transforms of an augmenter (a torchvision ``Compose``), in words, with the ranges
    it actually draws from; read from the transform objects so the words cannot drift."""
    words: list[str] = []
    for t in getattr(aug, "transforms", [aug]):
        kind = type(t).__name__
        if kind == "RandomHorizontalFlip":
            words.append(f"horizontal flip ({t.p:.0%} of views)")
        elif kind == "RandomAffine":
            degrees = max(abs(float(d)) for d in t.degrees)
            if degrees:
                words.append(f"rotation up to \u00b1{degrees:g}\u00b0")
            if t.translate and any(t.translate):
                words.append(f"shift up to \u00b1{max(t.translate):.0%}")
            if t.scale and tuple(t.scale) != (1, 1):
                words.append(f"zoom {t.scale[0]:.0%}-{t.scale[1]:.0%}")
            if t.shear:
                words.append("shear")
        elif kind == "ColorJitter":
            amounts: dict[str, list[str]] = {}
            for k in ("brightness", "contrast", "saturation", "hue"):
                v = getattr(t, k)
                centre = 0.0 if k == "hue" else 1.0
                if v is not None and max(abs(float(b) - centre) for b in v) > 0:
                    amount = f"{max(abs(float(b) - centre) for b in v):.0%}"
                    amounts.setdefault(amount, []).append(k)
            for amount, names in amounts.items():
                joined = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
                words.append(f"{joined} \u00b1{amount}")
        else:
            words.append(kind)
    return words


def augmentation_views(run, images) -> dict | None:
    """One training image and augmented views of it, made as training made them.

    ``None`` when the run used no augmentation. With ``augment="cached"`` (and the cache
    really used) the views are the ones the feature cache computed for that image: the same
    augmenter and the same per-image seeds (:func:`headstart.core.cache.view_seed`), for the first
    readable training image. Otherwise (on the fly) they are samples from the same
    augmenter, since each epoch drew fresh ones. Returns ``images`` (H x W x 3 floats in
    [0, 1]), ``titles``, ``position`` (the image's index in ``images``), ``exact``, ``transforms``
    (words) and ``caption`` (HTML-safe text).
    """
    from headstart.core.cache import view_seed
    from headstart.modalities.image.data.decode import UnreadableImage
    from headstart.modalities.image.preprocess import augmenter, prepare_batch

    cfg = run.config
    if cfg.augment == "none":
        return None
    aug = augmenter(flip=cfg.flip)
    position = img = None
    for i in range(min(len(images), 32)):  # seeds are per image: any readable one will do
        try:
            img, position = images.image(i), i
            break
        except UnreadableImage:
            continue
    if img is None:
        return None
    prep = run.preprocessing
    mean = np.asarray(prep.mean, np.float32)
    std = np.asarray(prep.std, np.float32)

    def shown(seed=None, augment=None):
        x = prepare_batch([img], prep, augment, seed=seed)[0].permute(1, 2, 0).numpy()
        return np.clip(x * std + mean, 0.0, 1.0)

    cache = run.metrics.get("feature_cache") or {}
    exact = cfg.augment == "cached" and cache.get("mode") == "cached"
    views, titles = [shown()], ["original (resized)"]
    words = describe_augmenter(aug)
    if exact:
        total = int(cache.get("train_views") or cfg.views)
        k_max = min(total, SHOWN_VIEWS)
        for k in range(1, k_max + 1):
            views.append(shown([view_seed(cfg.seed, k, position)], aug))
            titles.append(f"cached view {k}")
        how = (
            f"views 1-{k_max} of the {total} augmented views the feature cache computed for "
            "this image (same augmenter, same seeds): exactly what training used"
        )
    else:
        for k in range(SHOWN_VIEWS):
            views.append(shown(k, aug))
            titles.append(f"sample {k + 1}")
        why = (
            "augmentation on the fly"
            if cfg.augment == "on-the-fly"
            else f"augmentation on the fly ({cache.get('reason') or 'no cache'})"
        )
        how = (
            f"{SHOWN_VIEWS} samples from the augmenter training used ({why}: every epoch drew "
            "fresh views, so these show the kind of views, not the exact ones)"
        )
    where = images.describe(position)
    if images.paths is not None:
        where = "/".join(Path(where).parts[-2:])
    label = label_text(images.labels[position], images.class_names)
    caption = (
        f"Augmentation ({cfg.augment}): the training image {where} (class {label}) and {how}. "
        f"Transforms applied: {', '.join(words)}."
    )
    return {
        "images": views,
        "titles": titles,
        "position": position,
        "exact": exact,
        "transforms": words,
        "caption": caption,
    }


def image_figures(
    run, evaluation: dict | None, splits, out: Path, captions: dict[str, str]
) -> dict[str, Path]:
    import textwrap

    from headstart.modalities.image.data.decode import UnreadableImage

    figs: dict[str, Path] = {}
    train = splits.train
    rng = np.random.default_rng(0)
    picks = rng.choice(len(train), size=min(9, len(train)), replace=False)
    imgs, titles = [], []
    for i in picks:
        try:
            imgs.append(train.image(int(i)))
            titles.append(label_text(train.labels[i], train.class_names))
        except UnreadableImage:
            continue
    if imgs:
        figs["samples"] = plots.plot_image_grid(
            imgs, titles, out / "samples.png", "Sample training images"
        )
    views = augmentation_views(run, train)
    if views is not None:
        what = "its cached augmented views" if views["exact"] else "samples of its augmentation"
        figs["augmented"] = plots.plot_image_grid(
            views["images"],
            views["titles"],
            out / "augmented.png",
            f"One training image and {what}\n" + textwrap.fill(", ".join(views["transforms"]), 70),
        )
        captions["augmented"] = views["caption"]
    if evaluation is not None:
        mistakes = confident_mistakes(evaluation, k=9)
        if mistakes:
            where = {}
            for s in splits.items().values():
                for pos, item_id in enumerate(s.ids):
                    where[item_id] = (s, pos)
            mimgs, mtitles = [], []
            for m in mistakes:
                if m["id"] in where:
                    s, pos = where[m["id"]]
                    mimgs.append(s.image(pos))
                    mtitles.append(f"true {m['true']}\npred {m['predicted']} ({m['p']:.0%})")
            if mimgs:
                figs["mistakes"] = plots.plot_image_grid(
                    mimgs,
                    mtitles,
                    out / "mistakes.png",
                    "Most confident mistakes",
                    title_colors=["#b00020"] * len(mimgs),
                )
    return figs
