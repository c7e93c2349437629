"""Text data and encoders: every layout, bad text input, detection, tokenisation, pooling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import predicted_in_a_fresh_process
from headstart.core.data import detect_modality, load_data, load_source
from headstart.errors import DataError

pytest.importorskip("transformers")

POSITIVE = ["works well", "great relief", "no side effects", "helped a lot", "very good"]
NEGATIVE = ["made me sick", "terrible headache", "did not help", "awful nausea", "stopped it"]


def write_table(path, rows, delimiter=","):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(rows[0])
        w.writerows(rows[1:])
    return path


def reviews(n: int = 5) -> list[list[str]]:
    rows = [["text", "label"]]
    for i in range(n):
        rows.append([f"{POSITIVE[i % 5]} {i}", "positive"])
        rows.append([f"{NEGATIVE[i % 5]} {i}", "negative"])
    return rows


def test_csv_tsv_and_jsonl_tables_load_the_same_texts(tmp_path):
    rows = reviews()
    csv_path = write_table(tmp_path / "r.csv", rows)
    tsv_path = write_table(tmp_path / "r.tsv", rows, delimiter="\t")
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("\n".join(json.dumps(dict(zip(rows[0], r))) for r in rows[1:]) + "\n")
    sources = [load_source(p) for p in (csv_path, tsv_path, jsonl)]
    for s in sources:
        assert s.train.modality == "text"
        assert s.class_names == ("negative", "positive")
        assert s.train.texts == sources[0].train.texts
        assert list(s.train.labels) == list(sources[0].train.labels)
    # file and data row (1: the first after the header), what pandas and a spreadsheet count
    assert [s.train.ids[0] for s in sources] == ["r.csv row 1", "r.tsv row 1", "r.jsonl row 1"]


def test_split_column_and_custom_column_names(tmp_path):
    rows = [["review", "rating", "split"]]
    for i in range(6):
        rows.append([f"good {i}", "pos", "train"])
        rows.append([f"bad {i}", "neg", "train"])
    rows += [["good val", "pos", "validation"], ["bad val", "neg", "val"]]
    rows += [["good test", "pos", "test"], ["bad test", "neg", "test"]]
    path = write_table(tmp_path / "d.csv", rows)
    assert detect_modality(path, text_column="review") == "text"
    s = load_source(path, text_column="review", label_column="rating")
    assert (len(s.train), len(s.val), len(s.test)) == (12, 2, 2)
    assert s.test.texts == ["good test", "bad test"]


def test_text_folder_with_split_folders_skips_bad_files(tmp_path):
    for split in ("train", "test"):
        for label, words in (("pos", POSITIVE), ("neg", NEGATIVE)):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i, w in enumerate(words):
                (folder / f"{i}.txt").write_text(w, encoding="utf-8")
    (tmp_path / "train" / "pos" / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "train" / "neg" / "empty.txt").write_bytes(b"")
    (tmp_path / "train" / "neg" / "blank.txt").write_text("  \n\t")
    assert detect_modality(tmp_path) == "text"
    s = load_source(tmp_path)
    assert s.layout == "text-folder"
    assert (len(s.train), len(s.test)) == (10, 10)
    skipped = "\n".join(f"{b['path']} ({b['reason']})" for b in s.skipped)
    assert "train/pos/latin1.txt (not UTF-8)" in skipped
    assert "train/neg/empty.txt (empty)" in skipped and "train/neg/blank.txt (empty)" in skipped
    assert any("3 text(s) skipped" in n for n in s.notes)


def test_empty_cell_is_skipped_and_listed_missing_column_is_named(tmp_path):
    rows = reviews() + [["", "positive"]]
    s = load_source(write_table(tmp_path / "r.csv", rows))
    assert len(s.train) == 10 and s.skipped == [
        {"path": "r.csv row 11", "reason": "empty 'text' cell"}
    ]
    # a quoted cell spanning three lines: the rows after it keep their row number
    rows = reviews() + [["first line\nsecond line\nthird line", "positive"], ["", "negative"]]
    s = load_source(write_table(tmp_path / "multi.csv", rows))
    assert s.skipped == [{"path": "multi.csv row 12", "reason": "empty 'text' cell"}]
    bad = write_table(tmp_path / "bad.csv", [["body", "label"], ["x", "a"], ["y", "b"]])
    with pytest.raises(DataError, match=r"'text'.*not found.*'body'.*--text-column"):
        load_source(bad, modality="text")


def test_rows_with_more_or_fewer_cells_than_the_header_are_skipped_and_listed(tmp_path):
    """An unquoted comma in a text is never read as a label, nor an extra cell dropped."""
    from types import SimpleNamespace

    from headstart.modalities.text.inspect import inspect_texts
    from headstart.modalities.text.predict import predict_text_inputs

    body = "".join(f"{t},{lab}\n" for t, lab in reviews()[1:])
    path = tmp_path / "ragged.csv"
    path.write_text("text,label\n" + body + "good, really good,pos\nbad,neg,extra\nlonely\n")
    s = load_source(path, modality="text")
    assert len(s.train) == 10 and s.class_names == ("negative", "positive")
    assert s.skipped == [
        {
            "path": "ragged.csv row 11",
            "reason": "line 12: 3 cells, the header has 2: an unquoted comma or tab in a text?",
        },
        {
            "path": "ragged.csv row 12",
            "reason": "line 13: 3 cells, the header has 2: an unquoted comma or tab in a text?",
        },
        {
            "path": "ragged.csv row 13",
            "reason": "line 14: 1 cell, the header has 2: a missing delimiter?",
        },
    ]
    assert s.notes == ["3 text(s) skipped (wrong number of cells)"]
    insp = inspect_texts(s, encoder="test_bert")
    assert "3 text(s) skipped (wrong number of cells)" in insp.warnings()
    assert [u["path"] for u in insp.unreadable] == [r["path"] for r in s.skipped]
    # predicting: the row is an error row, not a wrongly scored part of its text
    model = SimpleNamespace(
        class_names=("a", "b"),
        predict_proba=lambda texts, **_: np.tile([0.25, 0.75], (len(texts), 1)),
    )
    preds = predict_text_inputs(model, [str(path)])
    assert len(preds) == 13 and all(p.error is None for p in preds[:10])
    assert [p.error for p in preds[10:]] == [r["reason"] for r in s.skipped]
    assert all(p.label is None for p in preds[10:])


def test_a_table_that_is_neither_images_nor_text_names_both_options(tmp_path):
    rows = reviews() + [["first line\nsecond line\nthird line", "positive"], ["", "negative"]]
    s = load_source(write_table(tmp_path / "multi.csv", rows))
    assert s.skipped == [{"path": "multi.csv row 12", "reason": "empty 'text' cell"}]
    bad = write_table(tmp_path / "bad.csv", [["body", "label"], ["x", "a"], ["y", "b"]])
    with pytest.raises(DataError, match="neither a 'filename' column .* nor a 'text' column"):
        load_source(bad)
    assert len(load_source(bad, text_column="body").train) == 2


def test_one_class_and_a_class_with_one_text_are_clear_errors(tmp_path):
    one = write_table(tmp_path / "one.csv", [["text", "label"], ["a", "x"], ["b", "x"]])
    with pytest.raises(DataError, match="only one class"):
        load_source(one)
    single = write_table(tmp_path / "single.csv", reviews() + [["lonely", "rare"]])
    with pytest.raises(DataError, match=r"'rare' \(1 image\)|too few"):
        load_data(single)


def test_not_utf8_table_and_unknown_file_are_named(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(DataError, match="r.csv: not UTF-8"):
        load_source(path, modality="text")
    other = tmp_path / "notes.md"
    other.write_text("hello")
    with pytest.raises(DataError, match="unknown text layout"):
        load_source(other, modality="text")


def test_in_memory_texts_split_and_replay(tmp_path):
    from headstart import from_texts

    texts = [f"{w} {i}" for i in range(10) for w in (POSITIVE[i % 5], NEGATIVE[i % 5])]
    labels = ["pos", "neg"] * 10
    splits = load_data(from_texts(texts, labels), val_split=0.2, test_split=0.2, seed=1)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 20
    again = load_data(from_texts(texts, labels), split_record=splits.record())
    assert again.val.texts == splits.val.texts and again.test.texts == splits.test.texts
    with pytest.raises(DataError, match="not a string"):
        from_texts(["ok", 3], ["a", "b"])


def test_table_texts_are_named_by_data_row_and_old_line_names_still_replay(tmp_path):
    """Ids count data rows (1: the first after the header), so a cell spanning lines does not
    shift the rows after it; a split.json recorded under the old names (the line a row starts
    on) still replays exactly, and keeps the names that run's files use."""
    from headstart.core.splits import make_splits, splits_from_record

    rows = reviews(6)
    rows[2][0] = 'first paragraph\n\nsecond paragraph,\nquoted "and" long'  # row 2: lines 3-6
    path = write_table(tmp_path / "r.csv", rows)
    source = load_source(path)
    assert source.train.ids[:4] == ["r.csv row 1", "r.csv row 2", "r.csv row 3", "r.csv row 4"]
    assert source.former_ids["r.csv:2"] == "r.csv row 1"
    assert source.former_ids["r.csv:7"] == "r.csv row 3"  # after the 4-line cell
    # row N is the Nth record a CSV reader gives (pandas: df.iloc[N - 1])
    import csv

    with open(path, newline="") as f:
        records = list(csv.DictReader(f))
    assert source.train.texts[source.train.ids.index("r.csv row 2")] == records[1]["text"]

    splits = make_splits(source, val_split=0.25, test_split=0.25, seed=3)
    by_new = {new: old for old, new in source.former_ids.items()}
    record = splits.record()
    old = {
        k: [by_new[i] for i in v] if k in ("train", "val", "test") else v for k, v in record.items()
    }
    again = splits_from_record(load_source(path), old)
    for name, part in splits.items().items():
        assert again.items()[name].texts == part.texts
        assert again.items()[name].ids == old[name]  # as that run's files name them
    assert splits_from_record(load_source(path), record).test.ids == splits.test.ids
    gone = dict(record, test=["r.csv row 99"])
    with pytest.raises(DataError, match="no longer in the data .first: r.csv row 99"):
        splits_from_record(load_source(path), gone)
    # a bad row is named by its row and the line it starts on (for an editor)
    write_table(tmp_path / "bad.csv", rows[:3] + [["fine", ""]])
    with pytest.raises(DataError, match=r"bad.csv, row 3 \(line 7\): empty 'label' cell"):
        load_source(tmp_path / "bad.csv")


def test_predictions_of_texts_carry_the_start_of_each_text(tmp_path):
    """A prediction row says which text it scored: its first characters on one line."""
    from types import SimpleNamespace

    from headstart.core.predictions import TEXT_START_CHARS, predictions_csv, text_start
    from headstart.modalities.text.predict import predict_text_inputs

    long = "word " * 40
    rows = [["text", "label"], ["two\nlines,  and\tspaces", "a"], [long, "b"], ["", "a"]]
    path = write_table(tmp_path / "new.csv", rows)
    model = SimpleNamespace(
        class_names=("a", "b"),
        predict_proba=lambda texts, **_: np.tile([0.25, 0.75], (len(texts), 1)),
    )
    preds = predict_text_inputs(model, [str(path)])
    assert [p.input for p in preds] == [f"{path} row {n}" for n in (1, 2, 3)]
    assert preds[0].text_start == "two lines, and spaces"
    assert len(preds[1].text_start) == TEXT_START_CHARS and preds[1].text_start.endswith("\u2026")
    assert preds[1].text_start == text_start(long)
    assert preds[2].error and preds[2].text_start == ""
    import csv
    import io

    table = list(csv.DictReader(io.StringIO(predictions_csv(preds, model.class_names))))
    assert [r["text_start"] for r in table] == [p.text_start for p in preds]
    assert table[0]["predicted"] == "b" and table[2]["error"] == "empty or not UTF-8 text"


def test_duplicates_across_splits_are_counted_in_texts_and_rows(tmp_path):
    """The leakage warning speaks of texts, and of rows for a table (files for a folder)."""
    from types import SimpleNamespace

    from headstart.core.inspection import recorded_leakage
    from headstart.modalities.text.inspect import inspect_texts, item_word

    rows = [["text", "label", "split"]]
    for i in range(8):
        rows += [
            [f"{POSITIVE[i % 5]} {i}", "pos", "train"],
            [f"{NEGATIVE[i % 5]} {i}", "neg", "train"],
        ]
    rows += [["works well 0", "pos", "test"], ["MADE ME  SICK 0", "neg", "test"]]  # copies
    rows += [["fresh words", "pos", "test"], ["other words", "neg", "test"]]
    path = write_table(tmp_path / "dup.csv", rows)
    insp = inspect_texts(load_source(path), encoder="test_bert")
    said = "2 text(s) appear in more than one split (4 rows): scores on test will be optimistic"
    assert said in insp.warnings()
    assert recorded_leakage(json.loads(json.dumps(insp.to_dict()))) == said
    assert not any("image" in w or "files" in w for w in insp.warnings())
    # an image run's inspection.json (no modality recorded) keeps its wording
    image = {"duplicates_across": [{"splits": ["train", "val"], "ids": ["train:a", "val:b"]}]}
    assert recorded_leakage(image).startswith("1 image(s) appear in more than one split (2 files)")
    (tmp_path / "folder" / "pos").mkdir(parents=True)
    folder = SimpleNamespace(location=str(tmp_path / "folder"), train=SimpleNamespace(origin="x"))
    assert item_word(folder) == "files"


def test_settings_of_other_modalities_are_left_out_of_a_run_s_configuration():
    """Each modality names the settings only its data has; a run shows the rest."""
    from headstart.core.config import TrainConfig
    from headstart.core.modality import modality, other_settings
    from headstart.errors import ConfigError

    text, image = modality("text"), modality("image")
    assert {"image_size", "augment", "tta", "filename_column"} <= other_settings(text)
    assert other_settings(image) == {"text_column", "max_length", "blend", "setfit", "long_texts"}
    shared = {"pooling", "backbone", "bn", "unfreeze", "cache_dtype"}
    assert not shared & (other_settings(text) | other_settings(image))
    fields = set(TrainConfig().to_dict())
    assert text.own_settings <= fields and image.own_settings <= fields
    # what a text run refuses is what it leaves out
    for flag in ("augment", "views", "flip", "tta", "features", "image_size", "resize"):
        assert flag in image.own_settings
    with pytest.raises(ConfigError, match="--max-length 64 is for texts.*--image-size"):
        TrainConfig(max_length=64).for_modality("image")
    with pytest.raises(ConfigError, match="--blend none is for texts"):
        TrainConfig(blend="none").for_modality("image")
    with pytest.raises(ConfigError, match="--long-texts truncate is for texts"):
        TrainConfig(long_texts="truncate").for_modality("image")
    # typed at the text default, they are refused alike; a text run resolves the defaults
    with pytest.raises(ConfigError, match="--blend auto is for texts"):
        TrainConfig(blend="auto").for_modality("image")
    with pytest.raises(ConfigError, match="--long-texts window is for texts"):
        TrainConfig(long_texts="window").for_modality("image")
    resolved = TrainConfig().for_modality("text")
    assert (resolved.blend, resolved.long_texts) == ("auto", "window")
    # an image run saved by an earlier version (which held the text defaults) still loads
    old = {**TrainConfig().for_modality("image").to_dict(), "blend": "auto"}
    old["long_texts"] = "window"
    assert TrainConfig.from_dict(old).for_modality("image").blend is None


def test_carved_splits_keep_copies_of_a_text_together():
    """Reviews posted twice (case and spacing aside) must not be trained on and scored on."""
    from headstart import from_texts
    from headstart.modalities.text.inspect import text_hash

    texts, labels = [], []
    for i in range(40):
        text = f"{POSITIVE[i % 5] if i % 2 else NEGATIVE[i % 5]} number {i}"
        copies = 3 if i % 4 == 0 else 1  # every fourth review appears three times
        for c in range(copies):
            texts.append(text.upper() if c == 1 else text + "  " * c)
            labels.append("pos" if i % 2 else "neg")
    for seed in range(5):
        splits = load_data(from_texts(texts, labels), val_split=0.25, test_split=0.25, seed=seed)
        where: dict[str, set[str]] = {}
        for name, part in splits.items().items():
            for t in part.texts:
                where.setdefault(text_hash(t), set()).add(name)
        assert all(len(s) == 1 for s in where.values()), seed
        assert sum(len(p) for p in splits.items().values()) == len(texts)
        assert all(set(p.labels) == {0, 1} for p in splits.items().values())
        notes = splits.method["notes"]
        assert len(set(notes)) == len(notes), notes  # never the same note twice
        moved = [n for n in notes if "moved so that copies stay on one side of the" in n]
        assert moved and all(n.endswith((" test split", " validation split")) for n in moved)


def test_a_duplicates_note_is_given_once_for_each_carve(tmp_path):
    """Both carves moving copies gave two identical notes; each now names its split."""
    rows = reviews(20) + [["same text here", "positive"], ["other same one", "negative"]] * 3
    splits = load_data(write_table(tmp_path / "dup.csv", rows), test_split=0.15, seed=0)
    moved = [n for n in splits.method["notes"] if "duplicate text(s) moved" in n]
    assert moved == [
        "1 duplicate text(s) moved so that copies stay on one side of the test split",
        "1 duplicate text(s) moved so that copies stay on one side of the validation split",
    ]


def test_image_folders_are_not_taken_for_text(image_folder, csv_data):
    assert detect_modality(image_folder) == "image"
    assert detect_modality(csv_data) == "image"
    assert detect_modality("demo:digits") == "image"


# --------------------------------------------------------------------------- encoders


def test_tiny_encoder_pools_and_counts_truncation():
    import torch

    from headstart.errors import ConfigError
    from headstart.modalities.text.encoder import load_text_encoder, load_tokenizer

    enc = load_text_encoder("test_bert", max_length=8)
    limit = enc.backbone.model.config.max_position_embeddings
    for load in (load_text_encoder, load_tokenizer):  # beyond the positions: refused, not cut
        with pytest.raises(ConfigError, match=f"--max-length {limit + 1}: .* at most {limit}"):
            load("test_bert", max_length=limit + 1)
    batch, truncated = enc.tokenize(["short", "a much longer text " * 5])
    assert batch[0].shape[1] == 8 and truncated == [False, True]
    # one pass at the limit + 1 finds the long texts; they are cut exactly as the tokenizer cuts
    assert (
        batch[0][1].tolist()
        == enc.tokenizer("a much longer text " * 5, truncation=True, max_length=8)["input_ids"]
    )
    with torch.no_grad():
        z = enc.backbone(batch)
    assert z.shape == (2, enc.backbone.num_features) == (2, 32)
    # padding does not change a text's mean-pooled vector
    alone, _ = enc.tokenize(["short"])
    with torch.no_grad():
        z1 = enc.backbone(alone)
    assert torch.allclose(z[0], z1[0], atol=1e-5)


def test_real_minilm_loads_offline_with_its_own_pooling_and_separates_sentiment():
    """The packaged all-MiniLM-L6-v2: real weights, its sentence-transformers pooling (mean,
    normalised), and embeddings a linear probe can use to tell praise from complaint."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from headstart.modalities.text.encoder import load_text_encoder

    enc = load_text_encoder("minilm")
    assert enc.weights.kind == "package" and enc.backbone.pooling == "mean"
    assert enc.backbone.normalise and enc.max_length == 256
    texts = POSITIVE + NEGATIVE
    batch, _ = enc.tokenize(texts)
    with torch.no_grad():
        z = enc.backbone(batch).numpy()
    assert np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-4)
    y = np.array([1] * 5 + [0] * 5)
    probe = LogisticRegression(C=10.0).fit(z, y)
    held_out, _ = enc.tokenize(["this medicine works wonderfully", "it made me very ill"])
    with torch.no_grad():
        zt = enc.backbone(held_out).numpy()
    assert list(probe.predict(zt)) == [1, 0]


# --------------------------------------------------------------------------- end to end


def test_cli_text_end_to_end_inspect_train_evaluate_predict_report(tmp_path):
    """What a user with a CSV of reviews does: inspect, train (tiny random BERT), evaluate,
    predict from standard input and from a table; the report shows texts escaped."""
    import subprocess
    import sys

    from conftest import run_cli

    rows = reviews(24) + [
        ["<script>alert('x')</script> did not help 99", "negative"],
        ["", "positive"],
    ]
    data = write_table(tmp_path / "reviews.csv", rows)
    r = run_cli("inspect", str(data))
    assert "length in tokens" in r.stdout and "majority-class baseline" in r.stdout
    out = tmp_path / "run"
    r = run_cli("train", str(data), "--backbone", "test_bert", "--epochs", "3", "--out", str(out))
    assert "texts used" in r.stdout and "test accuracy" in r.stdout
    assert "(1 skipped, listed below)" in r.stdout  # the empty cell, data row 50 (line 51)
    assert "reviews.csv row 50  (empty 'text' cell)" in r.stdout
    assert (out / "encoder" / "config.json").is_file()
    meta = json.loads((out / "model.json").read_text())
    assert meta["modality"] == "text" and meta["backbone"] == "test_bert"
    page = (out / "report.html").read_text()
    assert "<script>alert" not in page and "Sample training texts" in page
    assert "Texts used: train" in page and "1 text(s) skipped: reviews.csv row 50 (empty" in page
    # the configuration shows the settings a text run has, and none that only images have
    assert "<td>max_length</td><td>256 tokens (the encoder&#x27;s, capped at 256)</td>" in page
    assert "<td>text_column</td><td>text</td>" in page and "images only" not in page
    for image_only in ("image_size", "filename_column", "augment", "views", "tta"):
        assert f"<td>{image_only}</td>" not in page
    assert "keras_style_total" not in page and "<td>trainable</td>" in page
    r = run_cli("evaluate", str(out))
    assert "majority class" in r.stdout

    def from_stdin(text: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "headstart.cli", "predict", str(out), "-"],
            input=text,
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "COLUMNS": "80"},
        )

    proc = from_stdin("works well and helped a lot\n\nawful nausea\n")
    assert proc.returncode == 0, proc.stderr
    assert "<stdin>:1" in proc.stdout and "<stdin>:3" in proc.stdout
    assert '"awful nausea"' in proc.stdout  # the start of each text, under its line
    summary = run_cli("summary", "--run", str(out)).stdout
    assert "layers, as --unfreeze counts them" in summary and "layer 1: " in summary
    named = run_cli("summary", "--backbone", "test_bert", "--classes", "2").stdout
    assert "trainable" in named and "layer 2: " in named and "stage 1" not in named
    empty = from_stdin("\n  \n")
    assert empty.returncode == 2 and "standard input (-) held no text" in empty.stderr
    csv_out = tmp_path / "preds.csv"
    run_cli("predict", str(out), str(data), "--out", str(csv_out))
    lines = csv_out.read_text().splitlines()
    assert lines[0] == "input,predicted,confidence,p_negative,p_positive,error,text_start"
    assert len(lines) == 1 + 50  # every row, the empty one as an error row
    assert lines[1].startswith(f"{data} row 1,") and lines[1].endswith(",works well 0")
    assert lines[-1].startswith(f"{data} row 50,,")
    assert lines[-1].endswith(",empty or not UTF-8 text,")


def test_text_run_reloads_in_a_fresh_process_with_identical_predictions(tmp_path):
    from headstart.api import train
    from headstart.core.config import TrainConfig

    data = write_table(tmp_path / "reviews.csv", reviews(10))
    cfg = TrainConfig(data=str(data), backbone="test_bert", epochs=2)
    run = train(cfg, out=tmp_path / "run", progress=False, report=False, say=lambda *_: None)
    texts = ["works well 1", "terrible headache 2", "a new text never seen"]
    here = run.predict_proba(texts)
    there = predicted_in_a_fresh_process(tmp_path / "run", texts)
    assert np.allclose(here, there, atol=1e-6)


def test_text_refuses_image_only_settings_and_image_backbones(tmp_path):
    from headstart.api import train
    from headstart.core.config import TrainConfig
    from headstart.errors import ConfigError

    data = write_table(tmp_path / "reviews.csv", reviews(5))
    for bad, match in (
        ({"backbone": "ResNet50"}, "image network"),
        ({"backbone": "test_bert", "tta": True}, "--tta"),
        ({"backbone": "auto"}, "train_auto"),
        ({"backbone": "test_bert", "augment": "cached"}, "--augment"),
        ({"backbone": "test_bert", "views": 3}, "--views"),
        ({"backbone": "test_bert", "image_size": 300}, r"--image-size \(.*--max-length"),
        ({"backbone": "test_bert", "resize": "crop"}, r"--resize \(.*--max-length"),
        ({"backbone": "test_bert", "features": "multi"}, r"--features multi \(.*last layer"),
        ({"backbone": "test_bert", "tta": True, "image_size": 300}, r"--tta .*; --image-size"),
    ):
        with pytest.raises(ConfigError, match=match):
            train(TrainConfig(data=str(data), **bad), save=False, progress=False)


def test_text_features_are_cached_and_keyed_by_the_texts(tmp_path):
    from headstart.core.cache import clear_memory_cache
    from headstart.core.extractors import extractor_for
    from headstart.modalities.text.encoder import load_text_encoder
    from headstart.modalities.text.textset import TextSet

    enc = load_text_encoder("test_bert")
    texts = TextSet(["a b c", "d e f g", "h"], np.array([0, 1, 0]), ("x", "y"))
    ex = extractor_for(enc)
    first = ex.extract(texts)
    assert first.hit == "" and first.features.shape == (3, 32)
    clear_memory_cache()
    again = extractor_for(enc).extract(texts)
    assert again.hit == "disk" and np.array_equal(first.features, again.features)
    other = TextSet(["a b c", "d e f g", "i"], np.array([0, 1, 0]), ("x", "y"))
    assert ex.key(other) != ex.key(texts)
    # rows come back in the texts' order whatever the length-sorted batching did
    alone = extractor_for(enc, cache=False).extract(texts.subset([1]))
    assert np.allclose(alone.features[0], first.features[1], atol=1e-5)


def test_report_shows_texts_escaped_and_cut():
    """A text is data: markup in it is shown as text, never rendered, and long texts are cut."""
    from types import SimpleNamespace

    from headstart.core.predictions import SNIPPET_CHARS, snippet
    from headstart.core.splits import Splits
    from headstart.modalities.text.report_parts import text_examples
    from headstart.modalities.text.textset import TextSet

    assert snippet("<b>bold</b> &amp;") == "&lt;b&gt;bold&lt;/b&gt; &amp;amp;"
    long = snippet("word " * 200)
    assert len(long) <= SNIPPET_CHARS and long.endswith("\u2026")
    names = ("neg", "pos")
    train = TextSet(["<i>fine</i>", "bad"], np.array([1, 0]), names, ids=["t:1", "t:2"])
    test = TextSet(["<script>x()</script> great"], np.array([1]), names, name="test", ids=["s:1"])
    evaluation = {
        "per_class": {"neg": {}, "pos": {}},
        "predictions": {"ids": ["s:1"], "y_true": [1], "proba": [[0.9, 0.1]]},
    }
    run = SimpleNamespace(modality="text")
    html = text_examples(run, evaluation, Splits(train=train, val=train, test=test))
    assert "&lt;script&gt;x()&lt;/script&gt; great" in html["mistakes"]
    assert "<script>" not in html["mistakes"] and "&lt;i&gt;fine&lt;/i&gt;" in html["samples"]
    assert "90%" in html["mistakes"]


# --------------------------------------------------------------------------- estimator

TINY_TEXT = {"backbone": "test_bert", "epochs": 2}


def labelled_texts(n: int = 12):
    texts = [f"{POSITIVE[i % 5]} {i}" for i in range(n)] + [
        f"{NEGATIVE[i % 5]} {i}" for i in range(n)
    ]
    return texts, np.array(["pos"] * n + ["neg"] * n)


def test_text_classifier_follows_the_scikit_learn_contract():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from headstart import TextClassifier

    texts, y = labelled_texts()
    for method, args in (("predict", (texts,)), ("predict_proba", (texts,)), ("score", (texts, y))):
        with pytest.raises(NotFittedError):
            getattr(TextClassifier(**TINY_TEXT), method)(*args)
    clf = TextClassifier(**TINY_TEXT, head="linear")
    assert clone(clf).get_params() == clf.get_params()
    scores = cross_val_score(clf, texts, y, cv=2)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    grid = GridSearchCV(clf, {"lr": [1e-3, 1e-2]}, cv=2).fit(texts, y)
    assert grid.best_params_["lr"] in (1e-3, 1e-2)
    lower = FunctionTransformer(lambda X: [t.lower() for t in X])
    pipe = Pipeline([("lower", lower), ("clf", TextClassifier(**TINY_TEXT))]).fit(texts, y)
    assert set(pipe.predict(["WORKS WELL", "AWFUL NAUSEA"])) <= {"pos", "neg"}
    fitted = TextClassifier(**TINY_TEXT).fit(texts, y)
    assert fitted.predict_proba(texts[:3]).shape == (3, 2)
    with pytest.raises(DataError, match="one string"):
        fitted.predict("a single string")


def test_pooling_override_for_plain_encoders_and_per_modality_choices(tmp_path):
    from headstart.api import train
    from headstart.core.config import TrainConfig
    from headstart.errors import ConfigError

    data = write_table(tmp_path / "reviews.csv", reviews(5))
    runs = {}
    for pooling in ("auto", "cls", "max"):
        cfg = TrainConfig(data=str(data), backbone="test_bert", epochs=1, pooling=pooling)
        runs[pooling] = train(cfg, save=False, progress=False, say=lambda *_: None)
    assert runs["auto"].metrics["features"]["pooling"] == "mean"  # a plain encoder: mean
    assert runs["cls"].metrics["features"]["pooling"] == "cls"
    keys = [set(r.metrics["feature_cache"]["keys"]) for r in runs.values()]
    assert keys[0].isdisjoint(keys[1]) and keys[1].isdisjoint(keys[2])
    with pytest.raises(ConfigError, match="for images"):
        train(TrainConfig(data=str(data), backbone="test_bert", pooling="avg"), save=False)
    images = TrainConfig(pooling="cls")
    with pytest.raises(ConfigError, match="for text encoders"):
        images.for_modality("image")
    assert TrainConfig().for_modality("image").pooling == "avg"  # timm's (measured)


def test_near_empty_texts_are_listed_under_the_box_and_in_the_json_warnings(tmp_path):
    """The "worth a look" box counts the near-empty texts; each is listed under it, and the
    JSON carries the same warnings as the box."""
    from rich.console import Console

    from headstart.console import render_inspection
    from headstart.modalities.text.inspect import inspect_texts

    path = write_table(tmp_path / "r.csv", reviews() + [["ok", "positive"]])
    insp = inspect_texts(load_source(path), encoder="test_bert")
    assert insp.near_empty == [{"split": "train", "id": "r.csv row 11", "text": "ok"}]
    console = Console(record=True, width=80)
    console.print(render_inspection(insp))
    shown = console.export_text()
    box = shown[shown.index("worth a look") : shown.index("near-empty:")]
    assert "1 near-empty text(s) (< 3 words)" in box
    assert "r.csv row 11  ('ok')" in shown.split("near-empty:")[1]
    d = json.loads(json.dumps(insp.to_dict()))
    assert d["warnings"] == insp.warnings() and d["near_empty"] == insp.near_empty


def test_a_mistyped_column_name_gets_the_closest_one(tmp_path):
    from conftest import run_cli

    data = write_table(tmp_path / "r.csv", [["review", "rating"], *reviews(3)[1:]])
    r = run_cli("train", str(data), "--text-column", "reviw", check=False)
    assert r.returncode == 2 and "Did you mean --text-column review?" in r.stderr
    columns = ["--text-column", "review", "--label-column", "Ratng"]
    r = run_cli("inspect", str(data), *columns, check=False)
    assert r.returncode == 2 and "Did you mean --label-column rating?" in r.stderr
    images = tmp_path / "i.csv"
    images.write_text("file,label\na.png,x\n")
    columns = ["--filename-column", "file", "--label-column", "labels"]
    r = run_cli("inspect", str(images), *columns, check=False)
    assert r.returncode == 2 and "Did you mean --label-column label?" in r.stderr


def test_the_default_network_is_the_datas_kind_and_an_image_network_is_refused_on_text():
    """Issue 28: ``--backbone default`` resolves per modality; naming the image default on
    text data is a mistake said by name, never swapped silently for the text encoder."""
    from headstart.core.config import TrainConfig
    from headstart.errors import ConfigError
    from headstart.modalities.text.names import DEFAULT_TEXT_ENCODER

    assert TrainConfig().for_modality("text").backbone == DEFAULT_TEXT_ENCODER
    assert TrainConfig().for_modality("image").backbone == "tf_efficientnet_lite0"
    with pytest.raises(ConfigError, match="is an image network"):
        TrainConfig(backbone="tf_efficientnet_lite0").for_modality("text")
