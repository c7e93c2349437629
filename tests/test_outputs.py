"""What headstart writes: normal permissions, and never over or instead of what it did not
create (run folders are replaced only when they are headstart runs, and atomically)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from conftest import make_images
from headstart import from_arrays
from headstart.api import train
from headstart.core.config import TrainConfig
from headstart.errors import HeadstartError, RunError
from headstart.io import (
    atomic_write_text,
    atomic_write_with,
    current_umask,
    make_temp_dir,
    replace_dir,
)

TINY = {"backbone": "test_resnet", "weights": "none", "image_size": 48, "epochs": 1}


@pytest.fixture
def umask():
    """Run the test under a chosen umask, restored afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)]
)
def test_written_files_get_the_users_normal_permissions(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    assert current_umask() == mask
    atomic_write_text(tmp_path / "a.txt", "hello")
    atomic_write_with(tmp_path / "b.bin", lambda p: p.write_bytes(b"x"))
    assert _mode(tmp_path / "a.txt") == file_mode
    assert _mode(tmp_path / "b.bin") == file_mode
    assert _mode(make_temp_dir(".x-", tmp_path)) == dir_mode


def test_a_saved_run_and_the_feature_cache_are_not_owner_only(tmp_path, umask):
    from headstart.core.cache import cache_root

    umask(0o022)
    source = from_arrays(*make_images(6, seed=1))
    train(TrainConfig(**TINY), data=source, out=tmp_path / "run", progress=False)
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    cached = [p for p in cache_root().rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"model.safetensors", "model.json", "report.html"}
    assert any(p.suffix == ".npy" for p in cached) and any(p.suffix == ".json" for p in cached)
    for p in written + cached:
        assert _mode(p) == 0o644, p


def test_replace_dir_puts_the_old_folder_back_when_the_new_cannot_move_in(tmp_path, monkeypatch):
    old, new = tmp_path / "out", tmp_path / "new"
    old.mkdir()
    (old / "keep.txt").write_text("old")
    new.mkdir()
    real = os.replace

    def failing(src, dst):
        if Path(src) == new:
            raise OSError("disk gone")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="disk gone"):
        replace_dir(new, old, remove_old=True)
    assert (old / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]


def _foreign(tmp_path: Path) -> Path:
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "thesis.tex").write_text("years of work")
    (out / "sub" / "data.csv").write_text("1,2,3")
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_train_refuses_a_folder_that_is_not_a_headstart_run(tmp_path):
    out = _foreign(tmp_path)
    before = _snapshot(out)
    with pytest.raises(RunError, match="--overwrite") as err:
        train(TrainConfig(**TINY), data=from_arrays(*make_images(6)), out=out, progress=False)
    assert str(out) in str(err.value) and "--out" in str(err.value)
    assert _snapshot(out) == before
    # --overwrite replaces only an earlier headstart run: the user's files stay untouched
    with pytest.raises(RunError, match="did not write"):
        train(
            TrainConfig(**TINY),
            data=from_arrays(*make_images(6)),
            out=out,
            progress=False,
            overwrite=True,
        )
    assert _snapshot(out) == before


def test_train_auto_refuses_a_folder_that_is_not_a_headstart_run(tmp_path):
    from headstart.core.advise import train_auto

    out = _foreign(tmp_path)
    before = _snapshot(out)
    cfg = TrainConfig(**{**TINY, "strategy": "auto"})
    with pytest.raises(RunError, match="did not write"):
        train_auto(cfg, data=from_arrays(*make_images(6)), out=out)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # nothing trained beside it


def test_train_replaces_an_earlier_run_as_a_whole(tmp_path):
    out = tmp_path / "run"
    source = from_arrays(*make_images(6))
    train(TrainConfig(**TINY), data=source, out=out, progress=False)
    assert (out / "report.html").is_file()
    before = _snapshot(out)
    with pytest.raises(RunError, match="--overwrite"):  # never replaced without being asked
        train(TrainConfig(**TINY), data=source, out=out, progress=False)
    with pytest.raises(HeadstartError):  # a failed replacement leaves the earlier run as it was
        train(
            TrainConfig(**TINY),
            data=str(tmp_path / "missing"),
            out=out,
            progress=False,
            overwrite=True,
        )
    assert _snapshot(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    train(
        TrainConfig(**{**TINY, "head": "linear"}),
        data=source,
        out=out,
        progress=False,
        report=False,
        overwrite=True,
    )
    assert json.loads((out / "model.json").read_text())["head"]["kind"] == "linear"
    assert not (out / "report.html").exists()  # nothing of the earlier run is left to lie
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_auto_keeps_the_earlier_run_whole_when_the_new_one_cannot_move_in(tmp_path, monkeypatch):
    from headstart.core.advise import train_auto

    source = from_arrays(*make_images(35, size=24, seed=9))  # 21 validation images: checked
    out = tmp_path / "auto"
    train(TrainConfig(**{**TINY, "hidden": 8}), data=source, out=out, progress=False)
    before = _snapshot(out)
    real_rename, real_replace = os.rename, os.replace

    def fail_moving_in(real):
        def move(src, dst):
            if Path(dst) == out and Path(src).name.startswith(".auto.new-"):
                raise RuntimeError("disk gone")  # not an OSError: no copying fallback
            return real(src, dst)

        return move

    monkeypatch.setattr(os, "rename", fail_moving_in(real_rename))
    monkeypatch.setattr(os, "replace", fail_moving_in(real_replace))
    cfg = TrainConfig(**{**TINY, "strategy": "auto"})
    with pytest.raises(RuntimeError, match="disk gone"):
        train_auto(cfg, data=source, out=out, overwrite=True)
    assert _snapshot(out) == before


def test_a_run_stopped_before_its_first_epoch_is_still_headstarts(tmp_path):
    """A start that failed after writing config.json and split.json (a crash while extracting)
    is replaceable with --overwrite; the same names beside a stranger's file are not."""
    import json as _json

    from headstart.core.rundir import check_out, is_run_dir

    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(_json.dumps({"config": TrainConfig().to_dict()}))
    (out / "split.json").write_text("{}")
    assert is_run_dir(out) and check_out(out, overwrite=True) == "run"
    (out / "notes.txt").write_text("mine")
    assert not is_run_dir(out)
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"learning_rate": 1}')  # someone else's config
    assert not is_run_dir(other)
