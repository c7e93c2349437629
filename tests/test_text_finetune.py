"""Fine-tuning a text encoder's top layers on a cached prefix: the stage map, the cut, the
unpadded float16 cache, exact equivalence with running the whole encoder, continuing a frozen
run from the command line, resuming, and reloading in a fresh process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import predicted_in_a_fresh_process
from headstart import from_texts
from headstart.api import train
from headstart.core.cache import cache_root, clear_memory_cache
from headstart.core.config import TrainConfig
from headstart.core.strategies import Strategy, plan_strategy
from headstart.errors import ConfigError

transformers = pytest.importorskip("transformers")

from test_text import labelled_texts, reviews, write_table  # noqa: E402

FT = {"backbone": "test_bert", "strategy": "fine-tune", "unfreeze": 1, "epochs": 2}


@pytest.fixture
def texts():
    t, y = labelled_texts(12)
    # lengths differ, so batches are padded and the mask matters
    t = [s + " and more words" * (i % 4) for i, s in enumerate(t)]
    return from_texts(t, y)


def _run(source, **kw):
    cfg = TrainConfig(**{**FT, "batch_size": 8, **kw})
    return train(cfg, data=source, save=False, progress=False, say=lambda *_: None)


def test_stage_map_is_the_encoder_layers_and_the_cut_is_verified():
    from headstart.modalities.text.encoder import load_text_encoder

    enc = load_text_encoder("test_bert").backbone
    smap = enc.stage_map()
    assert len(smap.stages) == 2 and all(n.startswith("embeddings.") for n in smap.stem)
    plan = plan_strategy(enc, Strategy("fine-tune", unfreeze=1, unit="layer"))
    assert plan.trainable and all(n.startswith("encoder.layer.1.") for n in plan.trainable)
    assert plan.cached_prefix and plan.plan.cut_name(plan.cut).startswith("after encoder.layer.0")
    frozen = [n for n, p in enc.model.named_parameters() if not p.requires_grad]
    assert any(n.startswith("embeddings.") for n in frozen)
    assert any(n.startswith("encoder.layer.0.") for n in frozen)
    first = plan_strategy(enc, Strategy("freeze-first", layers=1, unit="layer"))
    assert first.trainable == plan.trainable  # embeddings + 1 of 2 layers frozen
    with pytest.raises(ConfigError, match="2 stages"):
        plan_strategy(enc, Strategy("fine-tune", unfreeze=3))
    assert Strategy("fine-tune", unfreeze=2, unit="layer").label() == "fine-tune (last 2 layers)"


@pytest.mark.parametrize(
    ("family", "verified"),
    [("RobertaConfig", True), ("DistilBertConfig", True), ("MPNetConfig", False)],
)
def test_other_families_get_a_verified_cut_or_none(family, verified):
    """A family whose layers need more than (hidden states, mask) -- MPNet's shared relative
    position bias -- gets no plan and trains on the fly instead of silently wrong."""
    from headstart.modalities.text.stages import text_sequential_plan, text_stage_map

    if family == "DistilBertConfig":
        cfg = transformers.DistilBertConfig(
            dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=1000
        )
    else:
        cfg = getattr(transformers, family)(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            vocab_size=1000,
        )
    model = transformers.AutoModel.from_config(cfg)
    assert len(text_stage_map(model).stages) == 2
    assert (text_sequential_plan(model) is not None) is verified


@pytest.mark.parametrize("unfreeze", [1, 2])
def test_cached_prefix_epoch_equals_whole_encoder_epoch(texts, unfreeze):
    """Same texts, seed and batches: one epoch on a float32 prefix cache and one epoch through
    the whole encoder (tokenised every step) end with the same weights. With Adam's epsilon
    (Keras' 1e-7): AdamW's 1e-8 (transformers') turns float32 rounding in the tiny random
    encoder's near-zero gradients into steps of up to a third of the 5e-5 rate, which says
    nothing about the inputs being the same."""
    kw = {"unfreeze": unfreeze, "epochs": 1, "patience": 0, "cache_dtype": "float32"}
    kw["optimizer"] = "adam"
    cached = _run(texts, **kw)
    whole = _run(texts, **kw, cache=False)
    assert cached.metrics["feature_cache"]["mode"] == "cached"
    assert whole.metrics["feature_cache"]["mode"] == "on-the-fly"
    start = _run(texts, **kw, lr=1e-12, backbone_lr=1e-12).model.state_dict()
    a, b = cached.model.state_dict(), whole.model.state_dict()
    moved = [k for k in a if k.startswith("backbone.") and not torch.equal(a[k], start[k])]
    assert moved and all(f"layer.{2 - unfreeze}." in k or "layer.1." in k for k in moved)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def test_prefix_cache_is_unpadded_float16_keyed_and_budgeted(texts):
    run = _run(texts)
    fc = run.metrics["feature_cache"]
    assert fc["dtype"] == "float16" and fc["shape_per_example"] == ["tokens", 32]
    assert set(fc["hits"]) == {"computed"}
    from headstart.modalities.text.encoder import load_text_encoder

    loaded = load_text_encoder("test_bert")
    tokens = sum(len(i) for s in run.data.items().values() for i in loaded.encode(s.texts)[0])
    assert fc["bytes_on_disk"] == tokens * 32 * 2  # every real token, no padding
    assert fc["estimated_bytes"] == fc["bytes_on_disk"]
    # held-out predictions come back in the texts' order (what reports and auto compare)
    y, pred = run.predictions["val"]
    assert np.array_equal(y, run.data.val.labels)
    assert np.array_equal(pred, run.predict_proba(run.data.val.texts).argmax(1))
    files = {p.stem: p for p in (cache_root() / "features").rglob("*.npy")}
    for key in fc["keys"]:
        meta = json.loads(files[key].with_suffix(".json").read_text())
        assert meta["model"]["cut"].startswith("unit 2") and len(meta["extra"]["offsets"]) > 1
    clear_memory_cache()
    again = _run(texts)
    assert set(again.metrics["feature_cache"]["hits"]) == {"disk"}
    sample = texts.train.texts[:6]
    assert np.allclose(again.predict_proba(sample), run.predict_proba(sample))
    for change in ({"unfreeze": 2}, {"max_length": 8}):
        other = _run(texts, **change)
        assert set(fc["keys"]).isdisjoint(other.metrics["feature_cache"]["keys"]), change
    notes: list[str] = []
    cfg = TrainConfig(**{**FT, "max_length": 12, "cache_budget": "1KB"})  # not cached yet
    small = train(cfg, data=texts, save=False, progress=False, say=notes.append)
    assert small.metrics["feature_cache"]["mode"] == "on-the-fly"
    assert any("--cache-budget" in n for n in notes)


def test_full_and_scratch_train_through_the_whole_encoder(texts):
    full = _run(texts, strategy="full", epochs=1)
    assert full.metrics["feature_cache"]["mode"] == "on-the-fly"
    assert full.weights["kind"] == "trained"
    scratch = _run(texts, strategy="scratch", epochs=1)
    assert "random" in scratch.weights["detail"]


def test_interrupted_text_fine_tuning_resumes_to_the_same_weights(texts, tmp_path):
    cfg = TrainConfig(**{**FT, "epochs": 3, "patience": 3, "batch_size": 8})
    whole = train(cfg, data=texts, save=False, progress=False, say=lambda *_: None)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        train(cfg, data=texts, out=out, progress=False, stop_after=1, say=lambda *_: None)
    assert (out / "checkpoint" / "state.json").is_file()
    resumed = train(cfg, data=texts, out=out, resume=True, progress=False, say=lambda *_: None)
    assert len(resumed.history.epochs) == 3
    for a, b in zip(resumed.history.epochs, whole.history.epochs):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)


def test_cli_finetune_continues_a_frozen_text_run_and_reloads_in_a_fresh_process(tmp_path):
    from conftest import run_cli

    data = write_table(tmp_path / "reviews.csv", reviews(24))
    frozen = tmp_path / "frozen"
    # the encoder's own predictions are compared below: no blend with the baseline
    args = ["--backbone", "test_bert", "--epochs", "2", "--blend", "none"]
    run_cli("train", str(data), *args, "--out", str(frozen))
    tuned = tmp_path / "tuned"
    r = run_cli("finetune", str(frozen), "--unfreeze", "1", "--epochs", "2", "--out", str(tuned))
    assert "fine-tune (last 1 layer)" in r.stdout and "cached" in r.stdout
    # the continuation is fitted by the text recipe, but for the --epochs given, and says so
    fitted = json.loads((tuned / "metrics.json").read_text())["fit_recipe"]
    assert (fitted["recipe"], fitted["optimizer"], fitted["schedule"]) == (
        "text fine-tuning",
        "adamw",
        "linear",
    )
    assert fitted["epochs"] == 2 and "epochs" not in fitted["auto"]
    assert "backbone_lr" in fitted["auto"] and "AdamW, encoder lr" in r.stdout
    meta = json.loads((tuned / "model.json").read_text())
    assert meta["parent"] == str(frozen) and meta["weights"]["kind"] == "trained"
    page = (tuned / "report.html").read_text()
    assert 'alt="parent, then this run"' in page and "fine-tune (last 1 layer)" in page
    # the configuration says what this fine-tuning used, and the page speaks of texts
    assert "(not used by fine-tune)" not in page.split("<td>layers</td>")[0]
    assert "not used: the encoder is frozen" not in page
    assert "same images" not in page and "texts. Intervals" in page
    from headstart import load_run

    texts = ["works well 1", "terrible headache 2", "a text never seen"]
    here = load_run(tuned).predict_proba(texts)
    assert np.allclose(here, predicted_in_a_fresh_process(tuned, texts), atol=1e-6)
    frozen_p = load_run(frozen).predict_proba(texts)
    assert not np.allclose(frozen_p, here)  # the encoder did change


def test_length_grouped_batches_cover_every_text_once_with_little_padding():
    from headstart.core.inputs import batch_slices, length_grouped_batches

    rng_lengths = np.random.default_rng(1)
    lengths = rng_lengths.integers(5, 250, size=1000)
    batches = length_grouped_batches(np.random.default_rng(0), lengths, 32)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    assert len(batches) == len(batch_slices(1000, 32))
    again = length_grouped_batches(np.random.default_rng(0), lengths, 32)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))

    def padded(bs):
        return sum(len(b) * lengths[b].max() for b in bs) / lengths.sum()

    shuffled = np.random.default_rng(0).permutation(1000)
    random_batches = [shuffled[b] for b in batch_slices(1000, 32)]
    assert padded(batches) < 1.1 < 1.5 < padded(random_batches)
    inference = length_grouped_batches(None, lengths, 32)  # predictions stay in order
    assert np.array_equal(np.concatenate(inference), np.arange(1000))
