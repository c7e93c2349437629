"""Texts longer than the encoder's window, read whole (``--long-texts``): the windows, their
pooling against a hand computation, the cache key, what an extraction reports, training on
windows (cached prefix and whole encoder alike), a saved run reloaded in a fresh process, and
the ONNX export's client reading texts as the run did."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import predicted_in_a_fresh_process
from headstart.core.config import TrainConfig
from headstart.modalities.text import windows as W

pytest.importorskip("transformers")

from test_text import write_table  # noqa: E402

LONG = "the first weeks were hard with headaches and no sleep but then it helped " * 3
TEXTS = ["short one", LONG, "tiny", "another long text with many words in it " * 2]
MODES = ("window", "window-max", "head-tail", "truncate")


def _encoder(mode: str, max_length: int = 16):
    from headstart.modalities.text.encoder import load_text_encoder

    return load_text_encoder("test_bert", max_length=max_length, long_texts=mode)


def _features(loaded, texts, **kw):
    from headstart.core.extractors import extractor_for
    from headstart.modalities.text.textset import TextSet

    items = TextSet(texts, np.zeros(len(texts)), ("x",))
    ex = extractor_for(loaded, cache=False, **kw)
    return ex, items, ex.extract(items)


def test_windows_overlap_by_half_cover_the_text_and_end_at_its_end():
    room = 10
    for n in (11, 15, 23, 40, 41):
        starts = W.window_starts(n, room)
        assert starts[0] == 0 and starts[-1] == n - room
        assert np.all(np.diff(starts) <= room // 2) and np.all(np.diff(starts) > 0)
        parts, dropped = W.split_text(list(range(n)), "window", room)
        assert dropped == 0 and sorted(set(sum(parts, []))) == list(range(n))
        assert all(len(p) == room for p in parts)
        assert W.window_count(n, "window", room) == len(parts)
    # a very long text: at most MAX_WINDOWS windows, spread over it, the gaps counted
    n = room * W.MAX_WINDOWS * 2
    parts, dropped = W.split_text(list(range(n)), "window", room)
    assert len(parts) == W.MAX_WINDOWS and parts[0][0] == 0 and parts[-1][-1] == n - 1
    assert dropped == n - len(set(sum(parts, [])))
    # head + tail: Sun et al.'s 128 + 382 of 510, scaled to the window
    parts, dropped = W.split_text(list(range(1000)), "head-tail", 510)
    assert parts == [list(range(128)) + list(range(1000 - 382, 1000))] and dropped == 490
    parts, dropped = W.split_text(list(range(30)), "truncate", room)
    assert parts == [list(range(room))] and dropped == 20
    for mode in MODES:  # a text that fits is one window, whatever the mode
        assert W.split_text([1, 2, 3], mode, room) == ([[1, 2, 3]], 0)
    assert W.membership([1, 3, 2]).tolist() == [
        [1, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 1],
    ]


@pytest.mark.parametrize("mode", MODES)
def test_windowed_embeddings_equal_a_hand_computed_pooling_of_the_windows(mode):
    """Each window encoded alone (its own batch of one, no padding), then averaged (or the
    element-wise maximum): what the batched extraction gives, in the texts' order."""
    loaded = _encoder(mode)
    _, _, fs = _features(loaded, TEXTS, batch_size=3)  # windows of one text span batches
    contents = loaded.tokenizer(TEXTS, add_special_tokens=False)["input_ids"]
    for i, content in enumerate(contents):
        parts, _ = W.split_text(content, mode, 14)  # 16 less [CLS] and [SEP]
        if mode in ("window", "window-max") and len(content) > 14:
            assert len(parts) >= 2 and (len(parts) > 2 or i != 1)
        with torch.no_grad():
            each = torch.cat(
                [loaded.backbone(loaded.pad([[101, *p, 102]])) for p in parts]  # one at a time
            )
        want = each.amax(0) if mode == "window-max" else each.mean(0)
        np.testing.assert_allclose(fs.features[i], want.numpy(), atol=1e-5)
    if mode == "truncate":  # the first window is what the tokenizer's own truncation gives
        ids, truncated = loaded.encode(TEXTS)
        assert truncated == [False, True, False, True]
        assert loaded.read(TEXTS).windows[1] == [ids[1]]


def test_a_short_text_is_unchanged_by_the_setting_and_the_setting_keys_the_cache():
    short = ["short one", "tiny", "it helped"]
    got = {mode: _features(_encoder(mode), short) for mode in MODES}
    for mode in MODES:
        np.testing.assert_allclose(got[mode][2].features, got["truncate"][2].features, atol=1e-6)
    keys = {mode: ex.key(items) for mode, (ex, items, _) in got.items()}
    assert len(set(keys.values())) == len(MODES)


def test_an_extraction_reports_how_long_texts_were_read():
    _, _, fs = _features(_encoder("window"), TEXTS)
    long = fs.extra["long_texts"]
    assert fs.extra["truncated"] == long["longer"] == 2  # texts longer than one window
    assert long["mode"] == "window" and long["tokens_dropped"] == 0
    assert long["windows"] == 2 + long["windows_of_longer"] and long["windows_of_longer"] > 4
    _, _, cut = _features(_encoder("truncate"), TEXTS)
    assert cut.extra["truncated"] == 2 and cut.extra["long_texts"]["windows"] == 4
    assert cut.extra["long_texts"]["tokens_dropped"] > 0


def _long_reviews(path):
    good = ["works well", "great relief", "no side effects", "helped a lot", "very good"]
    bad = ["made me sick", "terrible headache", "did not help", "awful nausea", "stopped it"]
    rows = [["text", "label"]]
    for i in range(12):
        k = 1 + i % 6  # 1 to 6 phrases: up to several windows of 12 tokens
        rows.append([" ".join(f"{good[(i + j) % 5]} {i}" for j in range(k)), "positive"])
        rows.append([" ".join(f"{bad[(i + j) % 5]} {i}" for j in range(k)), "negative"])
    return write_table(path, rows)


def test_a_saved_run_reads_long_texts_as_it_trained_in_a_fresh_process(tmp_path):
    from headstart.api import train
    from headstart.core.modality import modality

    data = _long_reviews(tmp_path / "long.csv")
    cfg = TrainConfig(
        data=str(data),
        backbone="test_bert",
        epochs=2,
        max_length=12,
        long_texts="window-max",
        blend="none",  # the encoder's own reading is compared below
    )
    run = train(cfg, out=tmp_path / "run", progress=False, report=False, say=lambda *_: None)
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert recorded["text"]["long_texts"] == "window-max"  # in the text section
    assert run.preprocessing.to_dict() == {"max_length": 12, "long_texts": "window-max"}
    assert "long_texts" in modality("text").own_settings
    assert modality("text").used_settings(run)["long_texts"].startswith("window-max: ")
    texts = [LONG, "works well", "made me sick " * 9]
    here = run.predict_proba(texts)
    # the same texts truncated give other probabilities: the long ones were read whole
    trunc = _features(_encoder("truncate", 12), texts)[2].features
    with torch.no_grad():
        cut = torch.softmax(run.model.head(torch.from_numpy(trunc)), 1).numpy()
    assert not np.allclose(here[0], cut[0], atol=1e-6) and np.allclose(here[1], cut[1], atol=1e-5)
    assert np.allclose(here, predicted_in_a_fresh_process(tmp_path / "run", texts), atol=1e-6)


def test_a_run_saved_before_windows_truncates():
    from headstart.core.modality import modality

    loaded = _encoder("window")
    meta = {"pooling": "mean", "normalise": False, "preprocessing": {"max_length": 16}}
    folder = __import__("pathlib").Path(loaded.preprocessing.folder)
    encoder, tokenization = modality("text").load_network(meta, {}, folder, folder)
    assert tokenization.long_texts == "truncate" and encoder.window_pooling == "mean"


def test_fine_tuning_sees_the_windows_cached_prefix_and_whole_encoder_alike(tmp_path):
    """Top layers trained on a cached prefix of every window, and the whole encoder run on
    the windows every step, end with the same weights; both batches carry the membership."""
    from headstart import from_texts
    from headstart.api import train
    from headstart.modalities.text.features import TextInputs

    good = ["works well", "great relief", "no side effects"]
    bad = ["made me sick", "terrible headache", "awful nausea"]
    texts = [" ".join([good[i % 3]] * (1 + i % 5)) for i in range(12)]
    texts += [" ".join([bad[i % 3]] * (1 + i % 5)) for i in range(12)]
    source = from_texts(texts, ["good"] * 12 + ["bad"] * 12)
    base = {"backbone": "test_bert", "max_length": 8, "epochs": 1, "patience": 0}
    kw = {**base, "strategy": "fine-tune", "unfreeze": 1, "batch_size": 8}
    kw["cache_dtype"] = "float32"

    def fit(**more):
        cfg = TrainConfig(**{**kw, **more})
        return train(cfg, data=source, save=False, progress=False, say=lambda *_: None)

    cached, whole = fit(), fit(cache=False)
    assert cached.metrics["feature_cache"]["mode"] == "cached"
    assert whole.metrics["feature_cache"]["mode"] == "on-the-fly"
    a, b = cached.model.state_dict(), whole.model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    loaded = _encoder("window", 8)
    inputs = TextInputs(cached.data.train, loaded)
    (ids, mask, member), labels = next(inputs.epoch(np.random.default_rng(0), 4))
    assert member.shape == (len(labels), ids.shape[0]) and ids.shape[0] > len(labels)
    assert torch.equal(member.sum(0), torch.ones(ids.shape[0]))


def test_export_reads_long_texts_as_the_run_and_an_old_export_still_truncates(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from conftest import run_cli
    from headstart.core.runs import load_run
    from headstart.deploy.onnx_model import OnnxModel
    from headstart.modalities.text.tokens_np import TokenizerFile

    data = _long_reviews(tmp_path / "long.csv")
    run_dir = tmp_path / "run"
    args = ["--backbone", "test_bert", "--epochs", "2", "--max-length", "12", "--out", run_dir]
    args += ["--blend", "none"]  # the model alone (a blended export: test_text_baseline.py)
    run_cli("train", data, *args)
    r = run_cli("export", run_dir)
    assert "input_ids, attention_mask, windows -> probabilities" in " ".join(r.stdout.split())
    meta = json.loads((run_dir / "onnx" / "model.json").read_text())
    assert meta["client"]["long_texts"] == "window" and meta["check"]["max_abs_difference"] < 1e-4
    texts = ["works", LONG, "made me sick and a terrible headache, stopped it " * 5, "nausea"]
    model = OnnxModel(run_dir)
    got = model.predict_proba(texts, batch_size=3)
    want = load_run(run_dir).predict_proba(texts)
    assert np.abs(got - want).max() < 1e-4
    # the client runs at most batch_size windows at once (a longer text alone), as torch does
    positions = model.feed.order(texts)
    groups = model.feed.batches(texts, positions, 3)
    assert sorted(np.concatenate(groups).tolist()) == [0, 1, 2, 3]
    for group in groups:
        windows = model.feed([texts[k] for k in group])["windows"].shape[1]
        assert windows <= 3 or len(group) == 1
    assert len(groups) > 2
    feed = model.feed(texts)
    assert feed["windows"].shape == (4, feed["input_ids"].shape[0]) and feed["windows"].sum() > 4
    # the client's windows are the run's, token for token
    loaded = _encoder("window", 12)
    run_windows = [w for ws in loaded.read(texts).windows for w in ws]
    assert [list(r[m == 1]) for r, m in zip(feed["input_ids"], feed["attention_mask"])] == [
        *map(list, run_windows)
    ]
    old = TokenizerFile(
        run_dir / "onnx" / "model.tokenizer.json", max_length=12, pad_id=0
    )  # metadata without long_texts: an export made before windows
    arrays = old(texts)
    assert set(arrays) == {"input_ids", "attention_mask"} and arrays["input_ids"].shape[1] == 12
