"""``python -m headstart.cli ARGS`` in a new process, without paying for the heavy imports.

Every end-to-end command test used to start a new interpreter, and each one spent most of its
time importing torch, timm, scikit-learn, SciPy and matplotlib (measured here: 6-9 s of a
10 s ``--help``-sized call on a quiet 2-core machine, the whole suite's largest cost). A
*host* process imports those libraries once, then forks one child per command. The child is
a new process with its own pid, working directory, environment, stdin (``/dev/null``),
stdout and stderr (pipes' stand-ins: files, so no terminal), and exit status; it imports
headstart itself anew, since the host never imports it, and runs the module as ``python -m``
would (``runpy``), so ``SystemExit``, uncaught exceptions and ``atexit`` behave as in a fresh
interpreter.

What the host has already done cannot differ between calls: the libraries it imports read a
few environment variables at import time (``HF_*``, ``TRANSFORMERS_*``, ``TORCH_*``, thread
counts), so a call whose environment changes any of those runs in a real new interpreter
instead. Tests that prove what a process imports (``--help`` without torch, ONNX prediction
without torch) or that signal a process start their own interpreter and never come here.
``HEADSTART_TEST_FRESH_PYTHON=1`` sends every call to a new interpreter, to rule the host out.

Forking a process that has imported torch is safe while it has run no parallel work: the
host only imports (and draws one tiny matplotlib figure, so that fonts are loaded once), so
torch's thread pools are never started.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile

#: Imported once by the host: the libraries whose import dominates a command's start.
WARM = (
    "numpy",
    "PIL.Image",
    "scipy.stats",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "matplotlib.pyplot",
    "torch",
    "torchvision",
    "timm",
    "safetensors.torch",
    "tqdm",
    "transformers",
)

#: Environment variables that the warm libraries read when they are imported.
IMPORT_TIME = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "OMP_", "MKL_", "CUDA")

_HOST = r"""
import importlib, json, os, sys
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
try:  # matplotlib loads its fonts on the first text it draws: once, here
    import io
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "warm")
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
except ImportError:
    pass


def serve():
    # one request a line: {"argv", "env", "cwd", "out", "err"}; answers {"pid"} then {"status"}
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            return req
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"status": code}), flush=True)
    sys.exit(0)


req = serve()
# the child: a command of its own, as `python -m headstart.cli ARGS` runs it
os.setpgid(0, 0)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.dup2(os.open(req["out"], os.O_WRONLY | os.O_TRUNC), 1)
os.dup2(os.open(req["err"], os.O_WRONLY | os.O_TRUNC), 2)
sys.stdin = open(0, closefd=False)
os.chdir(req["cwd"])
os.environ.clear()
os.environ.update(req["env"])
sys.path[0] = os.getcwd()
del serve, req, null
import atexit, runpy, signal, traceback
sys.argv = ["headstart.cli", *json.loads(os.environ.pop("_CLIHOST_ARGV"))]
code = 0
try:
    runpy.run_module("headstart.cli", run_name="__main__", alter_sys=True)
except SystemExit as e:  # as the interpreter reads it
    if e.code is None:
        code = 0
    elif isinstance(e.code, int):
        code = e.code
    else:
        print(e.code, file=sys.stderr)
        code = 1
except KeyboardInterrupt:
    traceback.print_exc()
    code = -signal.SIGINT
except BaseException:
    traceback.print_exc()
    code = 1
# what an interpreter does on its way out, less tearing down every module (torch's take
# seconds): atexit handlers, then the streams flushed
atexit._run_exitfuncs()
for stream in (sys.stdout, sys.stderr):
    try:
        stream.flush()
    except Exception:
        pass
if code == -signal.SIGINT:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
os._exit(code & 0xFF)
"""


class _Host:
    """One warm interpreter per test process (each pytest-xdist worker has its own)."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOST, json.dumps(WARM)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=self.env,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _answer(self, timeout: float | None) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the warm test host died")
        return json.loads(line)

    def run(self, argv, env, cwd, timeout) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="clihost-") as tmp:
            out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            open(out, "w").close()
            open(err, "w").close()
            req = {"env": {**env, "_CLIHOST_ARGV": json.dumps(argv)}, "cwd": cwd}
            req.update(out=out, err=err)
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            pid = self._answer(60)["pid"]
            try:
                status = self._answer(timeout)["status"]
            except TimeoutError:
                os.killpg(pid, signal.SIGKILL)
                self._answer(60)
                raise subprocess.TimeoutExpired(argv, timeout) from None
            with open(out, encoding="utf-8", errors="replace") as f_out:
                stdout = f_out.read()
            with open(err, encoding="utf-8", errors="replace") as f_err:
                stderr = f_err.read()
        return subprocess.CompletedProcess(argv, status, stdout, stderr)

    def close(self) -> None:
        if self.alive():
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_host: _Host | None = None


def _changes_import_time(env: dict) -> bool:
    base = _host.env if _host is not None else os.environ
    keys = {k for k in set(env) | set(base) if k.startswith(IMPORT_TIME)}
    return any(env.get(k) != base.get(k) for k in keys)


def run(args, *, env: dict, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m headstart.cli ARGS`` in a new process: forked from the warm host when the
    environment allows, else a new interpreter. Returns what ``subprocess.run`` returns."""
    global _host
    argv = [str(a) for a in args]
    cwd = str(cwd) if cwd is not None else os.getcwd()
    fresh = os.environ.get("HEADSTART_TEST_FRESH_PYTHON") == "1" or _changes_import_time(env)
    if not fresh:
        if _host is None or not _host.alive():
            _host = _Host()
            atexit.register(_host.close)
        return _host.run(argv, env, cwd, timeout)
    return subprocess.run(
        [sys.executable, "-m", "headstart.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )
