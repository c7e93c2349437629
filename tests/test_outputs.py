"""What headstart writes: normal permissions, and never over or instead of what it did not
create (run folders are replaced only when they are headstart runs, and atomically)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from conftest import make_images
from headstart.config import TrainConfig
from headstart.data import from_arrays
from headstart.io import (
    atomic_write_text,
    atomic_write_with,
    current_umask,
    make_temp_dir,
    replace_dir,
)
from headstart.pipeline import train

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
    from headstart.features import cache_root

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
