"""The command line's settings are generated from TrainConfig (headstart.options): every field
is offered once, with the field's default, in its section's panel."""

from __future__ import annotations

import dataclasses

import click
import pytest
import typer

from headstart.cli import app
from headstart.cli.options import (
    FINETUNE_SETTINGS,
    NOT_OPTIONS,
    PANELS,
    READING_SETTINGS,
    SETTINGS,
    TRAIN_SETTINGS,
    in_sections,
    settings_options,
)
from headstart.core.config import TrainConfig, sections


def _command(name: str) -> click.Command:
    return typer.main.get_command(app).commands[name]


def _options(name: str) -> dict[str, click.Parameter]:
    return {p.name: p for p in _command(name).params}


def test_every_setting_has_its_help_and_no_help_lacks_its_setting():
    offered = {f.name for f in dataclasses.fields(TrainConfig)} - NOT_OPTIONS
    assert set(SETTINGS) == offered
    assert set(TRAIN_SETTINGS) == offered
    assert all(s.help.strip() for s in SETTINGS.values())


def test_train_offers_each_setting_with_the_configs_default():
    options = _options("train")
    for name in TRAIN_SETTINGS:
        default = TrainConfig.__dataclass_fields__[name].default
        parse = SETTINGS[name].parse
        shown = options[name].default
        assert (parse(shown) if parse else shown) == default, name


def test_each_option_sits_in_its_sections_panel():
    section_of = {n: s for s, names in sections().items() for n in names}
    options = _options("train")
    for name in TRAIN_SETTINGS:
        assert options[name].rich_help_panel == PANELS[section_of[name]], name


def test_settings_are_listed_in_the_configurations_order():
    assert in_sections(["text_column", "lr", "seed", "image_size"]) == [
        "seed",
        "lr",
        "image_size",
        "text_column",
    ]


def test_commands_share_the_declarations():
    train, finetune = _options("train"), _options("finetune")
    for name in FINETUNE_SETTINGS:
        if name != "strategy":  # a continuation says which strategies continue a run
            assert finetune[name].help == train[name].help, name
            assert finetune[name].default == train[name].default, name
    assert finetune["strategy"].default == "fine-tune"
    inspect = _options("inspect")
    for name in READING_SETTINGS:
        assert inspect[name].help == train[name].help, name


def test_evaluate_reads_data_as_the_run_unless_told():
    options = _options("evaluate")
    for name in READING_SETTINGS[1:]:
        assert options[name].default is None, name
        assert options[name].help.endswith("Default: the run's."), name


def test_the_command_receives_parsed_settings():
    seen = {}

    @settings_options("weight_decay", "lr")
    def command(*, settings: dict) -> None:
        seen.update(settings)

    command(weight_decay="auto", lr=0.1)
    assert seen == {"weight_decay": None, "lr": 0.1}
    command(weight_decay="0.01", lr=0.1)
    assert seen["weight_decay"] == 0.01


def test_a_setting_that_does_not_exist_is_refused_when_the_command_is_declared():
    with pytest.raises(KeyError, match="not settings"):
        settings_options("learning_rate")
    with pytest.raises(KeyError, match="not settings"):
        settings_options("lr", helps={"epochs": "x"})
