"""Images as the core sees them (:mod:`headstart.core.modality`): folders, CSVs and arrays of
pictures, timm backbones, the image feature extractor and decoding on the fly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from headstart.choices import DEFAULT_IMAGE_POOLING, DEFAULT_NETWORK, POOLINGS
from headstart.core.recipe import LESSON, Recipe


class ImageModality:
    name = "image"
    noun = "image"
    stage_word = "stage"
    block_word = "block"
    own_settings = frozenset(
        {
            "filename_column",
            "features",
            "feature_stages",
            "stage_pooling",
            "image_size",
            "resize",
            "augment",
            "views",
            "flip",
            "tta",
        }
    )

    def recognises(self, path: Path) -> bool:
        from headstart.modalities.image.data.decode import is_image_path

        return is_image_path(path)

    def claims_table(self, path: Path, own: dict) -> bool:
        return False  # images are what a table is when no other modality claims it

    def load_source(self, location, *, label_column: str, labels, own: dict):
        from headstart.modalities.image.data.sources import load_image_source

        return load_image_source(
            location,
            filename_column=own["filename_column"],
            label_column=label_column,
            labels=labels,
        )

    def inspect(self, source, **options):
        from headstart.modalities.image.data.inspect import inspect_source

        return inspect_source(source, **options)

    def content_hashes(self, examples) -> list[str | None]:
        from headstart.modalities.image.data.inspect import hash_images

        return hash_images(examples)

    def configure(self, config):
        """Images pool with max (the lesson's, for ``auto``) or avg; a text's maximum length,
        blend and SetFit stage are refused by name."""
        from headstart.errors import ConfigError

        if config.max_length is not None:
            raise ConfigError(
                f"--max-length {config.max_length} is for texts, and this data is images; "
                "an image's size is set by --image-size. Leave it out."
            )
        if config.setfit:
            raise ConfigError(
                "--setfit is for texts (SetFit's contrastive stage tunes a sentence encoder on "
                "pairs of texts), and this data is images. Leave it out."
            )
        if config.blend is not None:
            raise ConfigError(
                f"--blend {config.blend} is for texts (a blend with TF-IDF + logistic "
                "regression), and this data is images. Leave it out."
            )
        if config.long_texts is not None:
            raise ConfigError(
                f"--long-texts {config.long_texts} is for texts, and this data is images. "
                "Leave it out."
            )
        if config.pooling not in ("auto", *POOLINGS):
            raise ConfigError(
                f"--pooling {config.pooling} is for text encoders; images pool with "
                f"{' or '.join(POOLINGS)}."
            )
        from headstart.modalities.image.backbones.aliases import resolve_name
        from headstart.modalities.image.backbones.names import stack_names

        if stack_names(config.backbone) and config.strategy != "feature-extraction":
            raise ConfigError(
                f"--backbone {config.backbone}: backbones side by side are frozen, so they "
                f"train only with --strategy feature-extraction, not {config.strategy} "
                "(--strategy auto tries other backbones itself: --ensemble-backbones)."
            )
        pooling = DEFAULT_IMAGE_POOLING if config.pooling == "auto" else config.pooling
        backbone = (
            resolve_name(config.backbone) if config.backbone == DEFAULT_NETWORK else config.backbone
        )
        return dataclasses.replace(config, modality=self.name, pooling=pooling, backbone=backbone)

    def fit_recipe(self, strategy: str) -> Recipe:
        """Images keep the lesson's recipe for every strategy (Adam; pretrained layers at
        1e-5; no schedule; up to 30 epochs)."""
        return LESSON

    def load_encoder(
        self,
        name: str,
        *,
        weights: str = "imagenet",
        pooling: str = "auto",
        image_size: int | None = None,
        resize: str = "pad",
        features=None,
        max_length: int | None = None,
        long_texts: str | None = None,
    ):
        from headstart.modalities.image.backbones import create_backbone
        from headstart.modalities.image.backbones.names import stack_names
        from headstart.modalities.image.backbones.stack import create_stack

        names = stack_names(name)
        return (create_stack if names else create_backbone)(
            names or name,
            weights=weights,
            pooling=pooling,
            image_size=image_size,
            resize=resize,
            features=features,
        )

    def names_encoder(self, name: str) -> bool:
        return True  # the fallback: any timm name or Keras alias, checked when it loads

    def check_name(self, name: str) -> None:
        from headstart.modalities.image.backbones.names import (
            check_backbone_name,
            check_stack_names,
            stack_names,
        )

        names = stack_names(name)
        timm_names = [check_backbone_name(one) for one in names or [name]]
        if names:
            check_stack_names(timm_names)

    def export_parts(self):
        """The module that exports this modality's runs to ONNX and feeds the graph."""
        from headstart.modalities.image import export

        return export

    def onnx_feed(self, meta: dict, folder):
        """Decoded images -> an exported graph's input, without torch."""
        from headstart.modalities.image.preprocess_np import pixel_batch

        return lambda images: {"pixels": pixel_batch(images, meta["preprocessing"])}

    def serving(self):
        """How ``headstart serve`` reads this modality's examples from a request."""
        from headstart.modalities.image import serving

        return serving

    def available_encoders(self) -> list[str]:
        from headstart.modalities.image.backbones.weights import available_image_backbones

        return available_image_backbones()

    def extractor(self, loaded, **options):
        from headstart.modalities.image.backbones.stack import BackboneStack, StackExtractor
        from headstart.modalities.image.features import FeatureExtractor

        if isinstance(loaded.backbone, BackboneStack):  # each member's own cache entries
            return StackExtractor(loaded, **options)
        return FeatureExtractor(loaded, **options)

    def streaming_inputs(self, loaded, splits, *, augment: bool, seed: int, workers, flip: bool):
        """Images decoded (and augmented) in worker processes every step; broken files are
        found first, in one decoding pass, and left out of training and of every count."""
        from headstart.modalities.image.data.inspect import scan_unreadable
        from headstart.modalities.image.inputs import ImageInputs

        inputs, used, unreadable = {}, {}, []
        for name, images in splits.items().items():
            used[name], bad = scan_unreadable(images)
            unreadable += bad
            readable = images.subset(used[name]) if bad else images
            train = name == "train"
            inputs[name] = ImageInputs(
                readable,
                loaded.preprocessing,
                augment=augment and train,
                seed=seed,
                workers=workers,
                flip=flip if train else True,
            )
        return inputs, used, unreadable

    def network_of(self, run):
        from headstart.modalities.image.backbones.model import LoadedBackbone
        from headstart.modalities.image.backbones.weights import WeightSource

        w = run.weights or {}
        return LoadedBackbone(
            run.backbone_name,
            run.backbone_name,
            run.model.backbone,
            run.preprocessing,
            WeightSource(w.get("kind", "run"), w.get("detail", ""), w.get("fingerprint") or "run"),
        )

    def network_meta(self, backbone) -> dict:
        """A stack of backbones: each member as it was loaded (``model.json``'s ``stack``)."""
        return {"stack": backbone.parts} if hasattr(backbone, "parts") else {}

    def save_network(self, run, folder: Path) -> None:
        """Nothing: timm builds the architecture from its name in ``model.json``."""

    def load_network(self, meta: dict, state: dict, folder: Path, where: Path):
        from headstart.core.featurespec import FeatureSpec
        from headstart.modalities.image.backbones.model import (
            Backbone,
            Preprocessing,
            create_timm_model,
        )
        from headstart.modalities.image.backbones.stack import rebuild_stack

        if meta.get("stack"):  # backbones side by side
            backbone = rebuild_stack(meta["stack"])
        else:
            backbone = Backbone(
                create_timm_model(meta["backbone"]),
                pooling=meta["pooling"],
                features=FeatureSpec(**meta.get("features", {})),
            )
        return backbone, Preprocessing.from_dict(meta["preprocessing"])

    def predict_proba(self, run, inputs, *, batch_size: int) -> np.ndarray:
        from headstart.modalities.image.predict import predict_proba

        return predict_proba(run, inputs, batch_size=batch_size)

    def reading_record(self, loaded, sets: dict) -> None:
        """None: an image is resized whole, nothing of it is cut off."""
        return None

    def tune_encoder(
        self,
        loaded,
        train,
        config,
        *,
        device,
        deadline: float | None = None,
    ) -> None:
        return None

    def tuning_examples(self, n_train: int) -> int:
        return 0

    def classic_baseline(self):
        """None: no network-free image model is worth a user's comparison (the baselines of
        images are the majority class and the probes on the frozen features)."""
        return None

    def report_figures(self, run, evaluation, splits, out: Path, captions: dict) -> dict:
        from headstart.modalities.image.report_parts import image_figures

        return image_figures(run, evaluation, splits, out, captions)

    def report_examples(self, run, evaluation, splits) -> dict[str, str]:
        return {}  # an image run's examples are figures

    def used_settings(self, run) -> dict[str, str | None]:
        """The input size (the backbone's, or as asked), BatchNorm's mode, what augmentation
        and every-depth features ran; None for what the run did not use (BatchNorm's mode on
        a frozen backbone, views without cached augmentation, the flip without augmentation
        or TTA, stage settings without every-depth features)."""
        cfg, m = run.config, run.metrics
        cache = m.get("feature_cache") or {}
        shown: dict[str, str | None] = {}
        h, w = run.preprocessing.input_size
        size = f"{h}" if h == w else f"{h}x{w}"
        if cfg.image_size is None:
            shown["image_size"] = f"{size} (backbone default)"
        elif str(cfg.image_size) != size:
            shown["image_size"] = f"{size} (asked {cfg.image_size})"
        n_train = run.n_examples.get("train")
        if not run.strategy.trains_backbone:
            shown["bn"] = None  # a frozen backbone's BatchNorm is what it was
        elif n_train is not None:
            bn = cfg.resolved_bn(n_train)
            shown["bn"] = f"{bn} (auto, {n_train:,} training images)" if cfg.bn == "auto" else bn
        if cfg.augment == "cached" and cache.get("mode") == "on-the-fly":
            shown["augment"] = f"cached (ran on the fly: {cache.get('reason')})"
        if cfg.augment != "cached" or cache.get("mode") != "cached":
            shown["views"] = None  # no cached augmentation
        if cfg.augment == "none" and not cfg.tta:
            shown["flip"] = None  # no augmentation, no mirror image
        feats = m.get("features") or {}
        if feats.get("kind") == "multi" and not run.model.backbone.appends_pool():
            shown["pooling"] = None  # every-depth features hold both statistics
        if feats.get("kind") == "multi":
            shown["feature_stages"] = (
                f"{', '.join(map(str, feats['stages']))} + the last features, "
                f"{feats['dimensions']:,} dimensions ({cfg.feature_stages})"
            )
        elif "features" in m:
            shown["feature_stages"] = None  # --features last
            shown["stage_pooling"] = None
        return shown


MODALITY = ImageModality()
