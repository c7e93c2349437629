"""Text as the core sees it (:mod:`headstart.core.modality`): tables and folders of texts,
transformers encoders, cached embeddings or prefixes, and tokenised texts on the fly."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np

from headstart.choices import DEFAULT_NETWORK, TEXT_POOLINGS
from headstart.core.recipe import LESSON, Recipe

#: How a text encoder that trains (fine-tune, freeze-first, full, scratch) is fitted when the
#: settings are left to auto: as transformers fine-tune (AdamW, weight decay 0.01 except biases
#: and LayerNorm, linear warm-up over 10% of the steps then linear decay to 0), at the encoder
#: learning rate and for the epochs chosen on validation on the drug reviews (1e-4 of 2e-5,
#: 5e-5, 1e-4: the best mean of --unfreeze 2 and full; 3 epochs, the first or last epoch
#: best; BENCHMARKS.md, "Fitting a text encoder"; bench/results/text-finetune.json). The head
#: keeps ``--lr``.
TEXT_FINETUNING = Recipe(
    name="text fine-tuning",
    optimizer="adamw",
    backbone_lr=1e-4,
    schedule="linear",
    warmup_fraction=0.1,
    epochs=3,
)

#: Settings only images have, with the value that means "not used".
_IMAGE_ONLY = (  # (flag, configuration field, its unused value or None: the default, why)
    ("--augment", "augment", "none", "text has no augmented views"),
    ("--views", "views", None, "text has no augmented views"),
    ("--no-flip", "flip", True, "text has no mirror image"),
    ("--tta", "tta", False, "text has no mirror image to average over"),
    ("--features multi", "features", "last", "text encoders give their last layer's features"),
    ("--image-size", "image_size", None, "a text's length is set by --max-length"),
    ("--resize", "resize", None, "a text's length is set by --max-length"),
)


class TextModality:
    name = "text"
    noun = "text"
    stage_word = "layer"
    block_word = "layer"
    own_settings = frozenset({"text_column", "max_length", "blend", "setfit", "long_texts"})

    def recognises(self, path: Path) -> bool:
        from headstart.modalities.text.sources import TEXT_SUFFIX

        return path.suffix.lower() == TEXT_SUFFIX

    def claims_table(self, path: Path, own: dict) -> bool:
        from headstart.modalities.text.sources import is_text_table

        return is_text_table(path, text_column=own["text_column"])

    def load_source(self, location, *, label_column: str, labels, own: dict):
        from headstart.modalities.text.sources import load_text_source

        return load_text_source(
            location,
            text_column=own["text_column"],
            label_column=label_column,
            labels=labels,
        )

    def inspect(self, source, **options):
        from headstart.modalities.text.inspect import inspect_texts

        return inspect_texts(source, **options)

    def content_hashes(self, examples) -> list[str | None]:
        from headstart.modalities.text.inspect import text_hash

        return [text_hash(t) for t in examples.texts]

    def configure(self, config):
        """``--backbone default`` is the text default encoder; image networks (the image
        default named, too), image-only settings and image poolings are refused by name."""
        from headstart.choices import DEFAULT_BLEND, DEFAULT_LONG_TEXTS
        from headstart.errors import ConfigError
        from headstart.modalities.text.names import (
            DEFAULT_TEXT_ENCODER,
            check_text_encoder_name,
            close_text_encoders,
            is_text_encoder_name,
        )

        if config.pooling not in ("auto", *TEXT_POOLINGS):
            raise ConfigError(
                f"--pooling {config.pooling} is for images; text encoders pool with "
                f"{', '.join(TEXT_POOLINGS)} (default: the encoder's own, else mean)."
            )
        backbone = config.backbone
        if backbone == DEFAULT_NETWORK:  # the user named no encoder
            backbone = DEFAULT_TEXT_ENCODER
        elif backbone != "auto" and not is_text_encoder_name(backbone):  # auto: ranked later
            if close_text_encoders(backbone):  # a mistyped alias: say which was meant
                check_text_encoder_name(backbone)
            raise ConfigError(
                f"--backbone {backbone} is an image network; text needs a text encoder: "
                "minilm (the default, offline), bert-base-uncased, distilbert, roberta, a "
                "Hugging Face hub name or a local folder."
            )
        defaults = type(config)()
        used = [
            f"{flag} ({why})"
            for flag, field, unused, why in _IMAGE_ONLY
            if getattr(config, field) != (getattr(defaults, field) if unused is None else unused)
        ]
        if used:
            raise ConfigError(
                f"for images only, and this data is text: {'; '.join(used)}. Leave "
                f"{'it' if len(used) == 1 else 'them'} out."
            )
        return dataclasses.replace(
            config,
            modality=self.name,
            backbone=backbone,
            blend=config.blend or DEFAULT_BLEND,
            long_texts=config.long_texts or DEFAULT_LONG_TEXTS,
        )

    def fit_recipe(self, strategy: str) -> Recipe:
        """A frozen encoder's head is fitted by the lesson's recipe; an encoder that trains
        by :data:`TEXT_FINETUNING`."""
        return LESSON if strategy in ("feature-extraction", "auto") else TEXT_FINETUNING

    def load_encoder(
        self,
        name: str,
        *,
        weights: str = "pretrained",
        pooling: str = "auto",
        max_length: int | None = None,
        long_texts: str | None = None,
        **image_settings,
    ):
        from headstart.modalities.text.encoder import load_text_encoder

        return load_text_encoder(
            name,
            weights=weights,
            pooling=None if pooling == "auto" else pooling,
            max_length=max_length,
            long_texts=long_texts,
        )

    def names_encoder(self, name: str) -> bool:
        from headstart.modalities.text.names import is_text_encoder_name

        return is_text_encoder_name(name)

    def check_name(self, name: str) -> None:
        from headstart.modalities.text.names import check_text_encoder_name

        check_text_encoder_name(name)

    def export_parts(self):
        """The module that exports this modality's runs to ONNX and feeds the graph."""
        from headstart.modalities.text import export

        return export

    def onnx_feed(self, meta: dict, folder):
        """Texts -> an exported graph's token ids and mask, without torch or transformers."""
        from headstart.modalities.text.tokens_np import TokenizerFile

        client = meta["client"]
        tokenizer = TokenizerFile(
            Path(folder) / client["tokenizer"],
            max_length=client["max_length"],
            pad_id=client["pad_id"],
            long_texts=client.get("long_texts"),  # absent: exported before windows
            special_tokens=client.get("special_tokens"),
        )
        if "classic" in client:  # a blend: the TF-IDF vectors too
            from headstart.modalities.text.classic import BlendFeed, TfidfBaseline

            return BlendFeed(tokenizer, TfidfBaseline.load(Path(folder), client["classic"]))
        return tokenizer

    def serving(self):
        """How ``headstart serve`` reads this modality's examples from a request."""
        from headstart.modalities.text import serving

        return serving

    def available_encoders(self) -> list[str]:
        from headstart.modalities.text.encoder import available_text_encoders

        return available_text_encoders()

    def extractor(self, loaded, **options):
        from headstart.modalities.text.features import TextFeatureExtractor

        allowed = {"module", "cut", "device", "batch_size", "cache", "dtype"}
        return TextFeatureExtractor(loaded, **{k: v for k, v in options.items() if k in allowed})

    def streaming_inputs(self, loaded, splits, **options):
        """Texts tokenised once and run through the whole encoder every step."""
        from headstart.modalities.text.features import TextInputs

        inputs = {name: TextInputs(texts, loaded) for name, texts in splits.items().items()}
        used = {name: np.arange(len(texts)) for name, texts in splits.items().items()}
        return inputs, used, []

    def network_of(self, run):
        from headstart.modalities.text.encoder import loaded_encoder

        w = run.weights or {}
        return loaded_encoder(
            run.backbone_name,
            run.model.backbone,
            run.preprocessing,
            w.get("kind", "run"),
            w.get("detail", ""),
            w.get("fingerprint"),
        )

    def network_meta(self, backbone) -> dict:
        return {"normalise": backbone.normalise}

    def save_network(self, run, folder: Path) -> None:
        """The encoder's architecture (config.json) and tokenizer files: with the run's
        weights they rebuild the encoder offline."""
        from headstart.modalities.text.encoder import loaded_encoder, save_encoder_files

        if Path(run.preprocessing.folder).resolve() == folder.resolve():
            return  # saved there already (this run was loaded from it)
        loaded = loaded_encoder(run.backbone_name, run.model.backbone, run.preprocessing)
        staged = folder.with_name(f".{folder.name}.new")
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir()
        save_encoder_files(run.model.backbone, loaded.tokenizer, staged)
        if folder.exists():
            shutil.rmtree(folder)
        staged.rename(folder)

    def load_network(self, meta: dict, state: dict, folder: Path, where: Path):
        from headstart.errors import RunError
        from headstart.modalities.text.encoder import Tokenization, rebuild_encoder
        from headstart.modalities.text.windows import WINDOW_POOLING, check_mode

        if not (folder / "config.json").is_file():
            raise RunError(f"{where}: {folder.name}/config.json is missing; not a whole text run.")
        pooler = any(k.startswith("backbone.model.pooler.") for k in state)
        try:
            encoder, _tokenizer = rebuild_encoder(
                folder, meta["pooling"], bool(meta.get("normalise")), pooler=pooler
            )
        except (OSError, ValueError) as e:
            raise RunError(f"{folder}: cannot rebuild the text encoder ({str(e)[:200]}).") from None
        reading = meta["preprocessing"]
        long_texts = reading.get("long_texts", "truncate")  # saved before windows: truncated
        try:
            check_mode(long_texts)
        except ValueError as e:
            raise RunError(f"{where}: {e}; saved by a newer headstart?") from None
        encoder.window_pooling = WINDOW_POOLING[long_texts]
        return encoder, Tokenization(int(reading["max_length"]), str(folder), long_texts)

    def predict_proba(self, run, inputs, *, batch_size: int) -> np.ndarray:
        from headstart.modalities.text.predict import predict_text_proba

        return predict_text_proba(run, inputs, batch_size=batch_size)

    def reading_record(self, loaded, sets: dict) -> dict | None:
        from headstart.modalities.text.lengths import truncation_record

        return truncation_record(loaded, sets)

    def tune_encoder(
        self,
        loaded,
        train,
        config,
        *,
        device,
        deadline: float | None = None,
    ) -> dict | None:
        if not config.setfit:
            return None
        from headstart.modalities.text.contrastive import contrastive_tune

        return contrastive_tune(
            loaded,
            train,
            seed=config.seed,
            device=device,
            deadline=deadline,
        )

    def tuning_examples(self, n_train: int) -> int:
        from headstart.modalities.text.contrastive import ITERATIONS

        return 2 * 2 * ITERATIONS * n_train  # per round, two pairs of two texts per text

    def classic_baseline(self):
        from headstart.modalities.text.classic import TfidfBaseline

        return TfidfBaseline

    def report_figures(self, run, evaluation, splits, out: Path, captions: dict) -> dict:
        return {}  # a text run's examples are tables (report_examples)

    def report_examples(self, run, evaluation, splits) -> dict[str, str]:
        from headstart.modalities.text.report_parts import text_examples

        return text_examples(run, evaluation, splits)

    def used_settings(self, run) -> dict[str, str | None]:
        """The encoder, its weights, pooling, maximum length and how a longer text is read
        (from the run's preprocessing: a run saved before windows truncated); None for what a
        transformer encoder did not use (BatchNorm's mode; the backbone learning rate when
        it is frozen)."""
        from headstart.modalities.text.encoder import MAX_LENGTH_CAP

        cfg = run.config
        enc = run.model.backbone
        shown: dict[str, str | None] = {"backbone": run.backbone_name}
        if cfg.weights == "imagenet":  # the one default: for an encoder it means its own weights
            shown["weights"] = "pretrained (the encoder's own)"
        if run.metrics.get("setfit"):  # the encoder's weights were tuned before the head
            shown["weights"] = (
                f"{shown.get('weights') or cfg.weights}, then tuned by SetFit's contrastive stage"
            )
        limit = run.preprocessing.max_length
        shown["max_length"] = (
            f"{limit} tokens (the encoder's, capped at {MAX_LENGTH_CAP})"
            if cfg.max_length is None
            else f"{limit} tokens"
        )
        shown["long_texts"] = f"{run.preprocessing.long_texts}: {run.preprocessing.how_long()}"
        own = "the encoder's" if cfg.pooling == "auto" else "asked"
        shown["pooling"] = f"{enc.pooling}{', normalised' if enc.normalise else ''} ({own})"
        if not run.strategy.trains_backbone:
            shown["backbone_lr"] = None  # the encoder is frozen
        shown["bn"] = None  # a transformer encoder has no BatchNorm
        return shown


MODALITY = TextModality()
