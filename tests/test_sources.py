"""The three layouts, in-memory arrays, labels, and every bad-input case of the data layer."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from conftest import CLASS_NAMES, make_images
from headstart import from_arrays
from headstart.core.data import load_data, load_source
from headstart.errors import DataError


def test_image_folder_layout(image_folder):
    src = load_source(image_folder)
    assert src.layout == "image-folder"
    assert src.class_names == CLASS_NAMES
    assert len(src.train) == 24 and src.val is None
    assert src.train.class_counts().tolist() == [8, 8, 8]
    assert len(src.ignored_files) == 2  # README.txt and notes.md
    img = src.train.image(0)
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert src.train.ids[0] == "circle/img_000.png"


def test_split_folder_layout(split_folder):
    src = load_source(split_folder)
    assert set(src.splits()) == {"train", "val"}
    assert len(src.train) == 21 and len(src.val) == 9
    assert src.val.ids[0].startswith("val/")


def test_array_folder_layout_test_doubles_as_val(array_folder):
    src = load_source(array_folder)
    assert src.layout == "arrays"
    assert src.test is None and len(src.val) == 12
    assert any("validation" in n for n in src.notes)
    assert src.class_names == ("0", "1", "2")
    # memory-mapped, not loaded
    assert isinstance(src.train.array, np.memmap)


def test_array_folder_with_val_and_test(array_folder):
    imgs, labs = make_images(3, seed=9)
    np.save(array_folder / "val_images.npy", imgs)
    np.save(array_folder / "val_labels.npy", labs)
    src = load_source(array_folder)
    assert len(src.val) == 9 and len(src.test) == 12


def test_csv_layout_with_string_labels(csv_data):
    src = load_source(csv_data)
    assert src.layout == "csv"
    assert src.class_names == tuple(sorted(CLASS_NAMES))
    assert len(src.train) == 18
    # the folder holding a single CSV is detected too
    assert load_source(csv_data.parent).layout == "csv"


def test_csv_custom_columns_and_split_column(tmp_path):
    images, labels = make_images(4)
    rows = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        rows.append(
            {"path": f"{i}.png", "cls": int(lab), "split": "val" if i % 4 == 0 else "train"}
        )
    with open(tmp_path / "data.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "cls", "split"])
        w.writeheader()
        w.writerows(rows)
    src = load_source(tmp_path / "data.csv", filename_column="path", label_column="cls")
    assert len(src.val) == 3 and len(src.train) == 9


def test_in_memory_arrays_greyscale_promoted_and_float():
    images, labels = make_images(5)
    grey = images[..., 0]  # (N, H, W)
    src = from_arrays(grey, labels)
    assert src.train.image(0).shape == (32, 32, 3)
    grey4 = (images[..., :1] / 255.0).astype(np.float32)  # (N, H, W, 1) float
    src = from_arrays(grey4, labels)
    img = src.train.image(3)
    assert img.dtype == np.uint8 and np.array_equal(img[..., 0], img[..., 2])
    assert np.abs(img[..., 0].astype(int) - images[3, ..., 0]).max() <= 1


def test_string_and_int_labels_keep_stable_order():
    images, _ = make_images(2)
    src = from_arrays(images, ["zebra", "apple", "mango", "apple", "zebra", "mango"])
    assert src.class_names == ("apple", "mango", "zebra")
    assert src.train.labels.tolist() == [2, 0, 1, 0, 2, 1]
    src = from_arrays(images, [7, 3, 7, 3, 11, 11])
    assert src.class_names == ("3", "7", "11")  # numeric, not lexicographic
    src = from_arrays(images, [0, 1, 2, 0, 1, 2], class_names=["a", "b", "c"])
    assert src.class_names == ("a", "b", "c")


def test_stratified_split_is_reproducible_and_recorded(image_folder):
    a = load_data(image_folder, val_split=0.25, seed=3)
    b = load_data(image_folder, val_split=0.25, seed=3)
    c = load_data(image_folder, val_split=0.25, seed=4)
    assert a.val.ids == b.val.ids and a.val.ids != c.val.ids
    assert a.val.class_counts().tolist() == [2, 2, 2]  # stratified
    assert not set(a.train.ids) & set(a.val.ids)
    replay = load_data(image_folder, split_record=a.record())
    assert replay.train.ids == a.train.ids and replay.val.ids == a.val.ids


def test_test_carve_out(array_folder):
    s = load_data(array_folder, test_split=0.25, seed=0)
    assert len(s.test) == 9 and len(s.val) == 12 and len(s.train) == 27
    rec = s.record()
    again = load_data(array_folder, split_record=rec)
    assert again.test.ids == s.test.ids
    assert np.array_equal(again.test.image(0), s.test.image(0))


def test_split_record_refuses_changed_data(image_folder):
    rec = load_data(image_folder).record()
    (image_folder / "circle" / "img_000.png").unlink()
    with pytest.raises(DataError, match="no longer in the data"):
        load_data(image_folder, split_record=rec)


def test_demo_digits():
    import headstart.datasets

    src = headstart.datasets.digits()
    assert len(src.train) == 1797 and len(src.class_names) == 10
    assert src.train.image(0).shape == (8, 8, 3)
    assert load_source("demo:digits").location == "demo:digits"


# --------------------------------------------------------------------------- bad input


def _message(excinfo) -> str:
    return str(excinfo.value)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_source(tmp_path / "nope")


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="empty or unknown layout"):
        load_source(tmp_path)


def test_class_folder_without_images(image_folder):
    (image_folder / "empty_class").mkdir()
    (image_folder / "empty_class" / "a.txt").write_text("x")
    with pytest.raises(DataError, match="'empty_class' contain no images"):
        load_source(image_folder)


def test_single_class(tmp_path):
    images, _ = make_images(3, n_classes=1)
    with pytest.raises(DataError, match="at least two classes"):
        from_arrays(images, np.zeros(3, int))
    d = tmp_path / "one" / "cats"
    d.mkdir(parents=True)
    Image.fromarray(images[0]).save(d / "a.png")
    with pytest.raises(DataError, match="only one class \\('cats'\\)"):
        load_source(tmp_path / "one")


def test_images_and_labels_of_different_lengths():
    images, labels = make_images(3)
    with pytest.raises(DataError, match="9 images but 8 labels"):
        from_arrays(images, labels[:-1])


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ([0, 1, -1, 0, 1, 0], "negative"),
        ([0, 1, 5, 0, 1, 0], "out of range"),
        ([0, 1, np.nan, 0, 1, 0], "NaN"),
        ([0, 1, 0.5, 0, 1, 0], "not a whole number"),
        (np.eye(6)[:, :3] * 2, "1-D"),  # (a 0/1 matrix is multi-label data)
    ],
)
def test_bad_labels(labels, match):
    images, _ = make_images(2)
    names = ["a", "b", "c"] if match == "out of range" else None
    with pytest.raises(DataError, match=match):
        from_arrays(images, labels, class_names=names)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (np.zeros((4, 8), np.uint8), "not an image batch"),
        (np.zeros((4, 8, 8, 5), np.uint8), "not an image batch"),
        (np.zeros((4, 3, 8, 8), np.uint8), "channels-first"),
        (np.full((4, 8, 8, 3), np.nan, np.float32), "NaN or infinite"),
        (np.full((4, 8, 8, 3), np.inf, np.float32), "NaN or infinite"),
        (np.full((4, 8, 8, 3), 200.0, np.float32), "divide by 255"),
        (np.zeros((0, 8, 8, 3), np.uint8), "no images"),
        (np.array([[None]] * 4, dtype=object), "Python objects"),
    ],
)
def test_bad_image_arrays(images, match):
    with pytest.raises(DataError, match=match):
        from_arrays(images, [0, 1, 0, 1][: max(len(images), 1)] if len(images) else [])


def test_pickled_npy_is_refused(array_folder):
    np.save(
        array_folder / "train_labels.npy",
        np.array([{"a": 1}] * 36, dtype=object),
        allow_pickle=True,
    )
    with pytest.raises(DataError, match="refuses to load"):
        load_source(array_folder)


def test_npy_pair_incomplete(array_folder):
    (array_folder / "train_labels.npy").unlink()
    with pytest.raises(DataError, match="train_labels.npy is missing"):
        load_source(array_folder)


def test_csv_missing_columns(csv_data):
    with pytest.raises(DataError, match="neither a 'path' column .* it has 'filename', 'label'"):
        load_source(csv_data, filename_column="path")
    with pytest.raises(DataError, match="column\\(s\\) 'path' not found"):
        load_source(csv_data, filename_column="path", modality="image")


def test_csv_missing_files(csv_data):
    with open(csv_data, "a") as f:
        f.write("imgs/ghost.png,circle\n")
    with pytest.raises(DataError, match="1 listed file\\(s\\) do not exist.*ghost.png"):
        load_source(csv_data)


def test_csv_row_with_more_cells_than_the_header_is_named_not_misread(csv_data):
    """Found by a first-time user on text tables: an unquoted comma shifted cells silently."""
    with open(csv_data, "a") as f:
        f.write("imgs/000.png,circle,extra\n")
    rows = len(csv_data.read_text().splitlines())
    with pytest.raises(DataError, match=f"line {rows}: 3 cells, the header has 2"):
        load_source(csv_data, modality="image")


def test_unknown_layout(tmp_path):
    (tmp_path / "data.parquet").write_bytes(b"x")
    with pytest.raises(DataError, match="unknown layout"):
        load_source(tmp_path / "data.parquet")
    (tmp_path / "x.npy").write_bytes(b"x")
    with pytest.raises(DataError, match="train_images.npy"):
        load_source(tmp_path)


def test_too_few_to_split():
    images, _ = make_images(3)
    labels = [0, 0, 0, 1, 1, 1, 1, 1, 2]
    with pytest.raises(DataError, match="'2' \\(1 image\\)"):
        load_data(from_arrays(images, labels))
