"""``config.json`` in sections: every setting in exactly one, a modality's own settings in its
section (its ``own_settings``, the one place that says so), and runs saved before sections
(a flat ``config``) still load and replay."""

from __future__ import annotations

import dataclasses
import json

import pytest

from headstart.choices import MODALITIES
from headstart.core.config import CORE_SECTIONS, TrainConfig, sections
from headstart.core.modality import modality
from headstart.errors import ConfigError


def test_every_setting_is_in_exactly_one_section():
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    placed = [k for keys in sections().values() for k in keys]
    assert sorted(placed) == sorted(names)
    for name in MODALITIES:  # a modality's section is its own settings, nothing else
        assert set(sections()[name]) == set(modality(name).own_settings)
        assert not set(modality(name).own_settings) & {k for v in CORE_SECTIONS.values() for k in v}


def test_sections_round_trip_and_flat_configs_still_load(tmp_path):
    cfg = TrainConfig(lr=0.01, task="multi-label", image_size=96, max_length=64)
    written = cfg.to_sections()
    assert written["training"]["lr"] == 0.01 and written["task"]["task"] == "multi-label"
    assert written["image"]["image_size"] == 96 and written["text"]["max_length"] == 64
    assert TrainConfig.from_dict(written) == cfg
    old = tmp_path / "config.json"  # a run saved before sections
    old.write_text(json.dumps({"config": cfg.to_dict()}))
    assert TrainConfig.from_file(tmp_path) == cfg
    with pytest.raises(ConfigError, match="unknown configuration section"):
        TrainConfig.from_dict({**written, "extras": {"x": 1}})
