"""Issue 28: notes through ``logging`` and progress through one setting, both configured at
the entry point: the command line prints each note once, on standard error; a program's own
logging receives them as records and nothing is printed twice; progress off shows nothing."""

from __future__ import annotations

import logging

import pytest

from conftest import make_images
from conftest import run_cli as headstart
from headstart.core.config import TrainConfig
from headstart.modalities.image.data.sources import from_arrays
from headstart.notes import silenced, speaking
from headstart.progress import enabled, progress_bar

#: A linear probe with an --epochs it does not use: one warning and one note, both from
#: training, in about a second.
PROBE = {"backbone": "test_resnet", "weights": "none", "image_size": 48, "head": "linear"}
EPOCHS_NOTE = "--epochs does not apply to the linear probe"
PROBE_NOTE = "linear probe: logistic regression"


@pytest.fixture
def source():
    return from_arrays(*make_images(8, seed=3))


def test_the_command_line_prints_each_note_once_on_standard_error(image_folder, tmp_path):
    r = headstart(
        "train", image_folder, "--backbone", "test_resnet", "--weights", "none",
        "--image-size", "48", "--head", "linear", "--epochs", "3", "--out", tmp_path / "run",
    )  # fmt: skip
    assert r.stderr.count(f"note: {EPOCHS_NOTE}") == 1, r.stderr
    assert r.stderr.count(f"note: {PROBE_NOTE}") == 1, r.stderr
    assert "note:" not in r.stdout and EPOCHS_NOTE not in r.stdout  # (stdout: the summary)


def test_the_python_api_prints_its_notes_once_by_default(source, capsys):
    import headstart as hs

    hs.train(TrainConfig(**PROBE, epochs=3), data=source, save=False, progress=False)
    out = capsys.readouterr().out
    assert out.count(EPOCHS_NOTE) == 1 and out.count(PROBE_NOTE) == 1, out
    # the logger is as it was: the notes were printed for the call only
    assert logging.getLogger("headstart").level == logging.NOTSET
    assert logging.getLogger("headstart").propagate


def test_a_programs_own_logging_gets_the_notes_as_records_and_nothing_twice(source, capsys):
    import headstart as hs

    class Kept(logging.Handler):
        def __init__(self):
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record):
            self.records.append(record)

    root = logging.getLogger()
    before = (root.handlers[:], root.level)
    kept = Kept()
    try:  # force: pytest's own handlers are on the root during a test
        logging.basicConfig(level=logging.INFO, handlers=[kept], force=True)
        hs.train(TrainConfig(**PROBE, epochs=3), data=source, save=False, progress=False)
    finally:
        root.handlers[:], _ = before
        root.setLevel(before[1])
    mine = [r for r in kept.records if r.name.startswith("headstart")]
    said = [r.getMessage() for r in mine]
    assert sum(PROBE_NOTE in m for m in said) == 1 and sum(EPOCHS_NOTE in m for m in said) == 1
    assert {r.name for r in mine} == {"headstart.core.training"}
    warning = next(r for r in mine if EPOCHS_NOTE in r.getMessage())
    assert warning.levelno == logging.WARNING
    printed = capsys.readouterr()
    assert PROBE_NOTE not in printed.out + printed.err  # handled by the program's logging only


def test_a_quiet_estimator_prints_nothing(source, capsys):
    from headstart import ImageClassifier

    images, labels = make_images(8, seed=3)
    ImageClassifier(**PROBE, epochs=3, verbose=False).fit(images, labels)
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err == ""


def test_progress_off_shows_no_bar_and_on_a_pipe_one_line(capsys):
    with enabled(False):
        for _ in progress_bar(range(3), desc="counting"):
            pass
    assert capsys.readouterr().err == ""
    with enabled(True):
        for _ in progress_bar(range(3), desc="counting"):
            pass
        with enabled(None):  # (None leaves the setting as it is)
            for _ in progress_bar(range(2), desc="again"):
                pass
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" in ")[0] for line in lines] == ["counting: 3 it", "again: 2 it"]
    for _ in progress_bar(range(3), desc="counting"):  # off unless an entry point turned it on
        pass
    assert capsys.readouterr().err == ""


def test_training_with_progress_off_shows_no_progress(source, capsys):
    import headstart as hs

    hs.train(TrainConfig(**{**PROBE, "head": "lesson"}), data=source, save=False, progress=False)
    err = capsys.readouterr().err
    assert "training" not in err and "features" not in err, err


def test_silenced_ranks_say_nothing_and_speaking_nests_once():
    notes: list[str] = []
    log = logging.getLogger("headstart.core.training")
    with speaking(notes.append), speaking(notes.append):  # the inner one: routed already
        log.info("one")
        with silenced():
            log.warning("from another rank")
        with silenced(False):
            log.info("two")
    log.warning("after")  # nobody speaking: no last-resort handler either
    assert notes == ["one", "two"]
