"""Several processes, one run (torch.distributed on CPU, gloo), as a user starts them: with
``headstart train --nproc 2`` or ``torchrun ... -m headstart train``.

What is proved here: the frozen part computed on two processes is the cache entry one process
writes (same key, same rows); training on two processes is training on one (exactly, for
layers that do not depend on how a batch is split; within a stated tolerance otherwise); the
run directory is written once and predicts in a fresh process; a killed rank ends the run
with one message and ``--resume`` finishes it; a second run on the same folder is refused.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import clihost
from conftest import CLASS_NAMES, make_images, run_cli
from headstart.core.distributed import is_peer_failure, shard_bounds
from headstart.core.runlock import LOCK_NAME, RunLock, holder

pytestmark = pytest.mark.slow

WORKER = Path(__file__).parent / "workers" / "ddp_fit.py"
PEER_LOST = Path(__file__).parent / "workers" / "peer_lost.py"
TINY = ["--backbone", "test_resnet", "--weights", "none", "--image-size", "48"]
FINE_TUNE = ["--strategy", "fine-tune", "--unfreeze", "1", "--seed", "3"]


def _env(cache: Path, **extra) -> dict:
    return {**os.environ, "HEADSTART_CACHE_DIR": str(cache), "COLUMNS": "80", **extra}


def _cli(args, cache: Path, *, check: bool = True, **extra) -> subprocess.CompletedProcess:
    """``headstart ARGS`` in a new process (through the warm test host, ``clihost``); with
    ``--nproc`` it is the launcher, and its workers are interpreters of their own."""
    r = clihost.run(args, env=_env(cache, OMP_NUM_THREADS="1", **extra), timeout=300)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def _torchrun(args, cache: Path) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node 2 -m headstart ARGS``, the documented form."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    r = subprocess.run(
        [*launcher, "--nproc-per-node", "2", "-m", "headstart", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(cache, OMP_NUM_THREADS="1"),
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """3 classes x 20 PNGs: 60 images, shards of unequal size on two processes."""
    images, labels = make_images(20, size=40, seed=5)
    root = tmp_path_factory.mktemp("dist") / "images"
    for i, (img, lab) in enumerate(zip(images, labels)):
        (root / CLASS_NAMES[lab]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / CLASS_NAMES[lab] / f"{i:03d}.png")
    return root


def _entries(cache: Path) -> dict[str, np.ndarray]:
    return {p.stem: np.load(p) for p in (cache / "features").glob("*/*.npy")}


def _hits(run: Path) -> set[str]:
    return set(json.loads((run / "metrics.json").read_text())["feature_cache"]["hits"])


def test_shards_cover_every_item_once_and_balance():
    for n in (0, 1, 5, 60, 61):
        for world in (1, 2, 3, 8):
            bounds = [shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1


def test_every_process_gets_two_examples_of_every_batch_and_none_is_left_out():
    """A BatchNorm that trains needs two examples per process: a last batch smaller than that
    joins the one before (195 texts, batch 32, 2 processes: a last batch of 3 once lost a
    step on each epoch)."""
    from headstart.core.inputs import batch_slices, inference_positions, part_of

    for n in (2, 3, 4, 5, 33, 34, 35, 36, 195):
        for processes in (1, 2, 3):
            if n < 2 * processes:
                continue
            slices = batch_slices(n, 32, processes)
            assert [i for s in slices for i in range(n)[s]] == list(range(n))
            shares = [
                len(part_of(np.arange(n)[s], (r, processes)))
                for s in slices
                for r in range(processes)
            ]
            assert min(shares) >= 2 or len(slices) == 1
            order = np.concatenate(
                [inference_positions(n, 32, (r, processes)) for r in range(processes)]
            )
            assert sorted(order) == list(range(n))
    assert [len(range(195)[s]) for s in batch_slices(195, 32, 2)][-1] == 35
    assert [len(range(195)[s]) for s in batch_slices(195, 32, 1)][-1] == 3


def test_ddp_fit_on_two_processes_equals_one_process(tmp_path):
    """The training loop itself: shared global batches, each rank's share, the loss scaled so
    DDP's averaged gradient is the whole batch's, validation summed over ranks. With no layer
    that depends on the batch split, the weights agree to float rounding."""
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(WORKER), str(one)], check=True, env=env, timeout=300)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    r = subprocess.run(
        [*launcher, "--nproc-per-node", "2", str(WORKER), str(two)],
        env=env,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    a, b = np.load(one), np.load(two)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-6, err_msg=k)
    r1 = json.loads(Path(f"{one}.json").read_text())
    r2 = json.loads(Path(f"{two}.json").read_text())
    assert r2["bn_model_same_on_every_rank"]  # BatchNorm statistics synced from rank 0
    h1, h2 = r1["history"], r2["history"]
    assert len(h1) == len(h2) == 4
    for r1, r2 in zip(h1, h2):  # every example counted once in the reduced metrics
        assert r1["accuracy"] == r2["accuracy"] and r1["val_accuracy"] == r2["val_accuracy"]
        assert r1["loss"] == pytest.approx(r2["loss"], abs=1e-6)
        assert r1["val_loss"] == pytest.approx(r2["val_loss"], abs=1e-6)
    start = np.load(one)  # (the weights moved: the comparison is not of two untrained models)
    assert any(np.abs(start[k]).sum() > 0 for k in start)


def _raise_from(module: str, error: BaseException) -> BaseException:
    """``error`` as raised by code of ``module`` (its innermost traceback frame)."""
    namespace = {"__name__": module}
    exec("def fail(e):\n    raise e", namespace)
    try:
        namespace["fail"](error)
    except BaseException as e:
        return e
    raise AssertionError("not raised")


def test_the_killed_process_is_named_even_when_its_peer_s_failure_is_noticed_first():
    """torchrun orders failures by timestamp; a killed rank's is when the agent noticed it, so
    on a busy machine the peer that failed because of it can come first. The killed one is
    the cause and is the one reported."""
    from torch.distributed.elastic.multiprocessing.errors import ProcessFailure

    from headstart.core.distributed import first_failure

    def failure(rank: int, exitcode: int, timestamp: int) -> ProcessFailure:
        f = ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=exitcode, error_file="")
        f.timestamp = timestamp
        return f

    kill = -int(signal.SIGKILL)
    stopped = -int(signal.SIGTERM)  # how torchrun stops the surviving processes
    for peer in (failure(0, 1, 100), failure(0, stopped, 100)):  # raised, or stopped, first
        reported = first_failure({0: peer, 1: failure(1, kill, 105)})
        assert (reported.rank, reported.signal) == (1, "SIGKILL")
        assert reported.describe() == "was killed (SIGKILL)"
    # a process that raised is the cause of the one torchrun stopped after it
    reported = first_failure({0: failure(0, stopped, 100), 1: failure(1, 1, 105)})
    assert (reported.rank, reported.exitcode) == (1, 1)
    exits = {0: failure(0, 1, 105), 1: failure(1, 2, 100)}  # alike: the earliest
    assert (first_failure(exits).rank, first_failure(exits).exitcode) == (1, 2)


def test_peer_failure_is_told_by_type_and_origin_not_wording():
    import torch.distributed as dist

    assert is_peer_failure(dist.DistBackendError("NCCL communicator was aborted"))
    assert is_peer_failure(dist.DistNetworkError("whatever it says"))
    reworded = RuntimeError("a peer left (gloo may say anything here)")
    assert is_peer_failure(_raise_from("torch.distributed.distributed_c10d", reworded))
    assert is_peer_failure(_raise_from("torch.nn.parallel.distributed", RuntimeError("x")))
    # the old wording, raised by headstart's own code or with another type: not a peer failure
    ours = RuntimeError("Connection closed by peer: gloo NCCL")
    assert not is_peer_failure(_raise_from("headstart.core.loop", ours))
    assert not is_peer_failure(RuntimeError("Connection closed by peer"))  # never raised
    assert not is_peer_failure(_raise_from("torch.distributed.x", ValueError("bad value")))


def test_a_real_gloo_peer_loss_is_recognised_in_every_collective(tmp_path):
    """Rank 1 exits; rank 0's next collectives (headstart's own and DDP's) raise gloo's bare
    RuntimeError, and is_peer_failure recognises each by where it came from."""
    out = tmp_path / "seen.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, str(PEER_LOST), str(out)],
        env=env,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert out.is_file(), r.stderr
    seen = json.loads(out.read_text())
    assert set(seen) == {"all_gather", "sum", "ddp_step"}
    for name, error in seen.items():
        assert error is not None and error["peer"], (name, error)


def test_two_processes_write_the_cache_one_process_writes_and_train_alike(folder, tmp_path):
    c1, c2 = tmp_path / "cache1", tmp_path / "cache2"
    args = ["train", folder, *TINY, *FINE_TUNE, "--dropout", "0", "--epochs", "3"]
    args += ["--patience", "0"]
    _cli([*args, "--out", tmp_path / "one"], c1)
    r = _cli([*args, "--out", tmp_path / "two", "--nproc", "2"], c2)
    assert "shard 1 of 2" in r.stderr  # rank 0's share of the extraction, counted
    assert r.stdout.count("test accuracy") == 1  # rank 0 speaks, once
    one, two = _entries(c1), _entries(c2)
    prefix = [k for k in one if one[k].dtype == np.float16]
    assert len(prefix) == 3  # train, val, test: same keys, whatever the process count
    for k in prefix:
        np.testing.assert_array_equal(one[k], two[k])  # bit-identical here (float16 rows)

    # the run directory: written once, by rank 0, with how it ran
    run = tmp_path / "two"
    record = json.loads((run / "config.json").read_text())["record"]
    assert record["distributed"] == {"world_size": 2, "backend": "gloo", "nodes": 1}
    assert not (run / "checkpoint").exists() and not (run / LOCK_NAME).exists()
    assert not list(tmp_path.glob(".two*"))  # no sibling left behind
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((run / "metrics.json").read_text())
    assert m1["n_examples"] == m2["n_examples"]  # every image counted once
    # weights: BatchNorm layers that train (the lesson head's) normalise each process's
    # share of a batch, as DDP does on CPUs (torch's SyncBatchNorm needs GPUs), so they are
    # not equal to the bit as in the test above. Stated tolerance, without dropout (whose
    # masks each process draws): the two runs' weight updates differ by under a quarter of
    # their size (measured: 0.11, cosine 0.994); the frozen part is the same to the bit.
    from safetensors.numpy import load_file

    from headstart.core.config import TrainConfig
    from headstart.core.model import TransferModel, starting_model

    cfg = TrainConfig(
        data=str(folder),
        backbone="test_resnet",
        weights="none",
        image_size=48,
        strategy="fine-tune",
        unfreeze=1,
        seed=3,
        dropout=0.0,
    )
    loaded, head, _ = starting_model(cfg, list(CLASS_NAMES), None)
    w0 = {k: v.numpy() for k, v in TransferModel(loaded.backbone, head).state_dict().items()}
    w1 = load_file(tmp_path / "one" / "model.safetensors")
    w2 = load_file(run / "model.safetensors")
    frozen = [k for k in w1 if k.startswith("backbone.model.layer1")]
    assert frozen and all(
        np.array_equal(w0[k], w1[k]) and np.array_equal(w1[k], w2[k]) for k in frozen
    )
    trained = [k for k in w1 if w1[k].dtype.kind == "f" and not np.array_equal(w0[k], w1[k])]
    assert any(k.startswith("head.") for k in trained) and any("layer4" in k for k in trained)
    d1 = np.concatenate([(w1[k] - w0[k]).ravel() for k in trained if "running_" not in k])
    d2 = np.concatenate([(w2[k] - w0[k]).ravel() for k in trained if "running_" not in k])
    assert np.linalg.norm(d2 - d1) <= 0.25 * np.linalg.norm(d1)

    # each reuses the other's entries: torchrun on the single process's cache...
    _torchrun([*args[:-4], "--epochs", "1", "--out", tmp_path / "three"], c1)
    assert _hits(tmp_path / "three") == {"disk"}
    # ...and one process on the entries two processes wrote
    _cli([*args[:-4], "--epochs", "1", "--out", tmp_path / "four"], c2)
    assert _hits(tmp_path / "four") == {"disk"}


@pytest.mark.parametrize("window", [[], ["--max-length", "6"]])
def test_text_prefix_shards_join_into_the_single_process_entry(tmp_path, window):
    """Text prefixes are one row per token: each rank writes its texts' token rows (of every
    window, when texts are longer than one)."""
    rng = np.random.default_rng(0)
    words = ["good", "bad", "great", "awful", "fine", "poor", "film", "plot", "acting"]
    rows = ["text,label"]
    for i in range(40):
        label = "pos" if i % 2 else "neg"
        rows.append(f"{' '.join(rng.choice(words, size=3 + i % 7))},{label}")
    data = tmp_path / "reviews.csv"
    data.write_text("\n".join(rows) + "\n")
    args = ["train", data, "--backbone", "test_bert", *FINE_TUNE, "--epochs", "1", *window]
    _cli([*args, "--out", tmp_path / "one"], tmp_path / "c1")
    _cli([*args, "--out", tmp_path / "two", "--nproc", "2"], tmp_path / "c2")
    one, two = _entries(tmp_path / "c1"), _entries(tmp_path / "c2")
    prefix = {k for k in one if one[k].dtype == np.float16}  # (the report adds its own)
    assert len(prefix) == 3 and prefix <= set(two)
    for k in prefix:
        np.testing.assert_array_equal(one[k], two[k])
    meta = {
        p.stem: json.loads(p.read_text()) for p in (tmp_path / "c2" / "features").glob("*/*.json")
    }
    single = {
        p.stem: json.loads(p.read_text()) for p in (tmp_path / "c1" / "features").glob("*/*.json")
    }
    for k in prefix:
        m = meta[k]
        assert m["extra"] == single[k]["extra"]  # offsets and truncation count, joined
        texts = len(m["extra"]["window_counts"])
        assert (m["extra"]["long_texts"]["windows"] > texts) == bool(window)
        assert m["written_by_processes"] == 2


def _rank_pid(launcher: subprocess.Popen, rank: int) -> int | None:
    """The pid of torchrun's worker of ``rank`` under ``launcher`` (Linux /proc)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and b"HEADSTART_NPROC=2" in env:
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == launcher.pid:
                return int(proc.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds ranks through /proc")
def test_a_killed_rank_ends_the_run_with_one_message_and_resume_finishes_it(folder, tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    epochs = 150
    cmd = [sys.executable, "-m", "headstart.cli", "train", str(folder), *TINY, *FINE_TUNE]
    cmd += ["--epochs", str(epochs), "--patience", "0", "--out", str(out), "--nproc", "2"]
    launcher = subprocess.Popen(
        cmd, env=_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    hang_guard = time.monotonic() + 120  # not a speed check: a run that never checkpoints
    while not (out / "checkpoint" / "state.json").is_file():  # some epochs done
        assert launcher.poll() is None, launcher.communicate()
        assert time.monotonic() < hang_guard, "no checkpoint after 2 minutes: the run hangs"
        time.sleep(0.02)
    pid = _rank_pid(launcher, 1)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # mid-epoch: epochs take tens of milliseconds
    stdout, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode == 1, stderr
    assert "error: process 1 of 2 was killed (SIGKILL)" in stderr
    assert f"headstart train --resume {out} --nproc 2" in stderr
    assert "Traceback" not in stderr and "test accuracy" not in stdout
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    done = len(state["history"]["epochs"])
    assert 1 <= done < epochs and state["world_size"] == 2
    assert not (out / "model.safetensors").exists()

    r = _cli(["train", "--resume", out, "--nproc", "2"], cache)
    assert "test accuracy" in r.stdout
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 1 + epochs
    assert not (out / "checkpoint").exists() and not (out / LOCK_NAME).exists()

    # the run predicts in a fresh single process
    image = next(folder.glob("circle/*.png"))
    r = run_cli("predict", out, image)
    assert image.name in r.stdout


def test_a_second_run_on_a_folder_being_written_is_refused(folder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a live process of this machine holds the lock
        import socket

        info = {"host": socket.gethostname(), "pid": sleeper.pid, "started": "earlier"}
        (out / LOCK_NAME).write_text(json.dumps(info))
        for extra in ([], ["--overwrite"]):
            r = _cli(
                ["train", folder, *TINY, "--epochs", "1", "--out", out, *extra],
                tmp_path,
                check=False,
            )
            assert r.returncode == 2, r.stderr
            said = " ".join(r.stderr.split())
            assert f"another headstart run is writing to this folder (process {sleeper.pid}" in said
            assert f"remove {out / LOCK_NAME}" in said
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder is gone: its lock is stale and the next run takes it over
    assert holder(out) is None
    _cli(["train", folder, *TINY, "--epochs", "1", "--out", out], tmp_path)
    assert (out / "model.safetensors").is_file() and not (out / LOCK_NAME).exists()


def test_run_lock_is_exclusive_and_released(tmp_path):
    first = RunLock(tmp_path)
    first.acquire()
    with pytest.raises(Exception, match="another headstart run"):
        RunLock(tmp_path).acquire()
    first.release()
    with RunLock(tmp_path):
        assert holder(tmp_path)["pid"] == os.getpid()
    assert holder(tmp_path) is None and not (tmp_path / LOCK_NAME).exists()


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--nproc", "0"], "--nproc must be at least 1; got 0."),
        (["--nproc", "two"], "--nproc must be a number of processes or auto; got 'two'."),
        (["--nproc", "auto", "--device", "cpu"], "--nproc auto starts one process per GPU"),
        (["--nproc", "2", "--strategy", "auto"], "train their candidates in one process"),
    ],
)
def test_bad_nproc_is_one_clear_line(folder, tmp_path, flags, says):
    r = _cli(["train", folder, *TINY, *flags, "--out", tmp_path / "r"], tmp_path, check=False)
    assert r.returncode == 2 and says in r.stderr.replace("\n", " ")
    assert "Traceback" not in r.stderr and not (tmp_path / "r").exists()


def test_other_commands_refuse_to_run_under_torchrun(folder, tmp_path):
    """Only train distributes; inspect (or finetune, export...) under torchrun would run as
    independent copies, so each refuses in one line (rank 0 says it)."""
    torchrun_env = {"WORLD_SIZE": "2", "LOCAL_RANK": "0", "RANK": "0"}
    r = _cli(["inspect", folder], tmp_path, check=False, **torchrun_env)
    assert r.returncode == 2
    assert "headstart inspect runs in one process; under torchrun only `headstart train`" in (
        " ".join(r.stderr.split())
    )
    r = _cli(["inspect", folder], tmp_path, check=False, **{**torchrun_env, "RANK": "1"})
    assert r.returncode == 2 and r.stderr == ""
