"""A model that cannot come from the Hugging Face hub says why: gated, unknown, offline, a
cache that cannot be read, a damaged download. No network: the hub's answers are simulated by
raising huggingface_hub's own exception types."""

from __future__ import annotations

import httpx
import huggingface_hub
import pytest
from huggingface_hub import errors as hub_errors

from headstart.core.hub import hub_failure
from headstart.errors import BackboneError
from headstart.modalities.text.encoder import load_text_encoder, save_encoder_files

pytest.importorskip("transformers")

NAME = "some-org/some-model"


def http_error(cls, status: int):
    request = httpx.Request("GET", f"https://huggingface.co/{NAME}/resolve/main/config.json")
    return cls(
        f"{status} Client Error.\n\nsomething the server said",
        response=httpx.Response(status, request=request),
    )


def hub(monkeypatch, *, cached: BaseException | None = None, online: BaseException | None = None):
    """``snapshot_download`` answering from the cache (``local_files_only``) with ``cached``
    and from the hub with ``online``; the calls are recorded."""
    calls = []

    def snapshot_download(repo_id, local_files_only=False, **_):
        calls.append("cache" if local_files_only else "hub")
        if local_files_only:
            raise cached or hub_errors.LocalEntryNotFoundError("not in the cache")
        raise online

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (lambda: http_error(hub_errors.GatedRepoError, 401), "is gated on the hub"),
        (lambda: http_error(hub_errors.RepositoryNotFoundError, 404), "the hub has no model"),
        (lambda: http_error(hub_errors.HfHubHTTPError, 503), "the hub answered HTTP 503"),
        (lambda: hub_errors.LocalEntryNotFoundError("cannot reach"), "could not be reached"),
        (lambda: PermissionError(13, "Permission denied"), "cache could not be used"),
    ],
)
def test_a_download_failure_keeps_its_cause(monkeypatch, error, said):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    cause = error()
    calls = hub(monkeypatch, online=cause)
    with pytest.raises(BackboneError) as info:
        load_text_encoder(NAME)
    message = str(info.value)
    assert said in message and NAME in message, message
    assert "not installed" in message  # true: neither packaged nor cached
    assert info.value.__cause__ is cause  # --debug shows the library's own traceback
    assert calls == ["cache", "hub"]


def test_gated_model_says_how_to_get_access(monkeypatch):
    hub(monkeypatch, online=http_error(hub_errors.GatedRepoError, 403))
    with pytest.raises(BackboneError, match="hf auth login|HF_TOKEN") as info:
        load_text_encoder(NAME)
    assert f"https://huggingface.co/{NAME}" in str(info.value)


def test_offline_mode_is_named(monkeypatch):
    # huggingface_hub reads HF_HUB_OFFLINE once, on import, into this constant
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    hub(monkeypatch, online=hub_errors.LocalEntryNotFoundError("offline"))
    with pytest.raises(BackboneError, match="HF_HUB_OFFLINE is set"):
        load_text_encoder(NAME)


def test_an_unreadable_cache_is_not_reported_as_missing(monkeypatch):
    cause = OSError(5, "Input/output error")
    calls = hub(monkeypatch, cached=cause, online=AssertionError("must not download"))
    with pytest.raises(BackboneError) as info:
        load_text_encoder(NAME)
    message = str(info.value)
    assert "looking in the Hugging Face cache failed" in message
    assert "Input/output error" in message and "not installed" not in message
    assert info.value.__cause__ is cause and calls == ["cache"]


def test_hub_failure_tells_the_types_apart():
    gated = http_error(hub_errors.GatedRepoError, 401)
    missing = http_error(hub_errors.RepositoryNotFoundError, 401)
    assert "gated" in hub_failure(gated, NAME)  # a subclass of RepositoryNotFoundError
    assert "has no model" in hub_failure(missing, NAME)
    assert hub_failure(RuntimeError("boom\nmore"), NAME) == "RuntimeError: boom"


@pytest.fixture
def damaged_download(tmp_path, monkeypatch):
    """A tiny BERT saved as the hub would store it, its weights file cut short, served as the
    Hugging Face cache's copy of NAME."""
    import transformers

    loaded = load_text_encoder("test_bert")
    folder = tmp_path / "snapshot"
    save_encoder_files(loaded.backbone, loaded.tokenizer, folder)
    loaded.backbone.model.save_pretrained(str(folder))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:64])
    assert transformers.AutoConfig.from_pretrained(str(folder)).hidden_size == 32

    def snapshot_download(repo_id, local_files_only=False, **_):
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return folder


def test_a_damaged_download_names_its_folder_and_the_fix(damaged_download):
    with pytest.raises(BackboneError) as info:
        load_text_encoder(NAME)
    message = str(info.value)
    assert str(damaged_download) in message and "could not be read" in message
    assert f"hf cache verify {NAME}" in message
    assert info.value.__cause__ is not None


def test_image_weights_from_the_hub_keep_their_cause(monkeypatch):
    """An image backbone whose weights neither ship in a package nor sit in the cache: the
    hub's answer (here: gated) is named, and chained."""
    import timm

    from headstart.modalities.image.backbones import weights

    model = timm.create_model("resnet18", pretrained=False, num_classes=0)
    cause = http_error(hub_errors.GatedRepoError, 401)

    def gated(*_, **__):
        raise cause

    monkeypatch.setattr(weights, "cached_hub_file", lambda hub_id: None)
    monkeypatch.setattr(weights, "_hub_reachable", lambda: True)
    monkeypatch.setattr(timm.models, "load_pretrained", gated)
    with pytest.raises(BackboneError, match="is gated on the hub") as info:
        weights.load_pretrained(model, "resnet18", "imagenet")
    assert info.value.__cause__ is cause
