"""``headstart serve`` as a client meets it: a real server process on a free port, real HTTP
requests, every kind of bad input, concurrent clients, and shutdown on SIGTERM."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import make_images

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

TINY = {"backbone": "test_resnet", "weights": "none", "image_size": 48, "epochs": 2}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``headstart serve ARGS`` in a subprocess, ready when /health answers."""

    def __init__(self, *args):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "headstart.cli",
                "serve",
                *map(str, args),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "80"},
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stderr.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError("server did not start")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.returncode


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _bomb_png(side: int = 100_000) -> bytes:
    """A tiny PNG declaring side x side pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    from headstart.api import train
    from headstart.core.config import TrainConfig

    root = tmp_path_factory.mktemp("serve-data")
    images, labels = make_images(8)
    for i, (img, lab) in enumerate(zip(images, labels)):
        (root / "data" / f"c{lab}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / "data" / f"c{lab}" / f"{i}.png")
    out = root / "run"
    os.environ.setdefault("HEADSTART_CACHE_DIR", str(root / "cache"))
    train(TrainConfig(data=str(root / "data"), **TINY), out=out, progress=False)
    return out


@pytest.mark.slow
def test_image_server_answers_good_and_bad_input_and_stops_on_sigterm(image_run):
    from headstart.core.runs import load_run

    run = load_run(image_run)
    images = make_images(1, size=40, seed=5)[0]  # one per class: 3 images
    want = run.predict_proba(list(images))
    # a forward pass waits up to 400 ms for company: a request is in flight that long
    server = Server(image_run, "--max-bytes", "200KB", "--max-files", "4", "--max-wait-ms", "400")
    try:
        url = server.url
        assert httpx.get(url + "/health").json() == {"status": "ok"}
        meta = httpx.get(url + "/metadata").json()
        assert meta["class_names"] == list(run.class_names) and meta["modality"] == "image"
        assert meta["limits"]["max_files"] == 4 and meta["engine"] == "torch"

        files = [("files", (f"{i}.png", _png(img), "image/png")) for i, img in enumerate(images)]
        r = httpx.post(url + "/predict", files=files)
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert [p["input"] for p in preds] == [f"{i}.png" for i in range(len(images))]
        got = np.array([[p["probabilities"][c] for c in run.class_names] for p in preds])
        assert np.abs(got - want).max() < 1e-5

        # one bad input beside good ones: the good ones are answered, the bad one named
        truncated = _png(images[0])[:60]
        mixed = [
            ("files", ("good.png", _png(images[0]), "image/png")),
            ("files", ("cut.png", truncated, "image/png")),
            ("files", ("notes.txt", b"hello", "text/plain")),
            ("files", ("bomb.png", _bomb_png(), "image/png")),
        ]
        r = httpx.post(url + "/predict", files=mixed)
        assert r.status_code == 200
        by_name = {p["input"]: p for p in r.json()["predictions"]}
        assert by_name["good.png"]["label"] in run.class_names
        assert "error" in by_name["cut.png"]
        assert "not an image" in by_name["notes.txt"]["error"]
        assert "50,000,000-pixel safety limit" in by_name["bomb.png"]["error"]  # as /metadata says

        # requests with nothing usable: 4xx with a JSON message naming the problem
        def post(**kw):
            return httpx.post(url + "/predict", **kw)

        cases = [
            (post(files=[("files", ("z.png", b"", "image/png"))]), 422, "empty file"),
            (post(files=[("files", ("x.bin", os.urandom(300), None))]), 422, "not an image"),
            (
                post(files=[("files", ("big.png", b"\x89PNG" + bytes(300_000), "image/png"))]),
                422,
                "over the 204,800-byte limit",
            ),
            (
                post(files=[("files", ("a.png", _png(images[0]), "image/png"))] * 5),
                400,
                "more than 4 files",
            ),
            (post(json={"texts": ["hi"]}), 415, "multipart/form-data"),
            (post(content=b""), 400, "empty body"),
            (
                post(data={"other": "x"}, files=[("files", ("a.png", _png(images[0])))]),
                400,
                "unexpected form field 'other'",
            ),
            (
                httpx.post(
                    url + "/predict",
                    content=b"--x\r\n",
                    headers={"content-type": "multipart/form-data; boundary=x"},
                ),
                400,
                "",
            ),
            (httpx.get(url + "/predict"), 405, ""),
        ]
        for response, status, words in cases:
            assert response.status_code == status, (words, response.text)
            assert words in response.json()["error"]
        assert httpx.get(url + "/health").status_code == 200  # still up after all of it

        # concurrent clients: each gets its own answer, in its own order
        results: dict[int, list] = {}

        def client(k: int) -> None:
            order = [(k + j) % len(images) for j in range(len(images))]
            body = [("files", (f"{j}.png", _png(images[j]), "image/png")) for j in order]
            r = httpx.post(url + "/predict", files=body, timeout=60)
            results[k] = [(p["input"], p["label"]) for p in r.json()["predictions"]]

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        labels = [run.class_names[int(i)] for i in want.argmax(1)]
        for k, answer in results.items():
            order = [(k + j) % len(images) for j in range(len(images))]
            assert answer == [(f"{j}.png", labels[j]) for j in order]
        assert len(results) == 8

        # SIGTERM while a request is in flight: it is answered, then the server exits
        slow: dict = {}
        many = [("files", (f"{j}.png", _png(images[j % 2]), "image/png")) for j in range(4)]
        t = threading.Thread(
            target=lambda: slow.update(r=httpx.post(url + "/predict", files=many, timeout=60))
        )
        t.start()
        time.sleep(0.2)
        server.proc.send_signal(signal.SIGTERM)
        t.join()
        # uvicorn finishes in-flight requests, then exits by the signal it was sent
        assert server.proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert slow["r"].status_code == 200 and len(slow["r"].json()["predictions"]) == 4
    finally:
        server.stop()


@pytest.mark.slow
def test_text_server_takes_json_and_refuses_what_is_not_text(tmp_path):
    from conftest import run_cli
    from test_text import reviews, write_table

    data = write_table(tmp_path / "reviews.csv", reviews(8))
    run_dir = tmp_path / "run"
    run_cli("train", data, "--backbone", "test_bert", "--epochs", "1", "--out", run_dir)
    run_cli("export", run_dir)
    server = Server(run_dir, "--engine", "onnx")  # the exported model: no PyTorch in serving
    try:
        url = server.url + "/predict"
        meta = httpx.get(server.url + "/metadata").json()
        assert meta["engine"] == "onnx" and meta["modality"] == "text"
        r = httpx.post(url, json={"texts": ["it helped a lot", "", 7, "awful nausea"]})
        assert r.status_code == 200
        preds = r.json()["predictions"]
        assert [p.get("error") for p in preds] == [
            None,
            "empty text",
            "a number, not a string",
            None,
        ]
        assert "max_pixels" not in meta["limits"]  # an image limit, not shown for texts
        assert httpx.post(url, json={"text": "fine"}).json()["predictions"][0]["label"]
        headers = {"content-type": "application/json"}
        for body, status, words in (
            (b"\xff\xfe not utf-8", 400, "not UTF-8"),
            (b"{not json", 400, "not valid JSON"),
            (b"", 400, "empty body"),
            (json.dumps({"words": ["x"]}).encode(), 422, "no 'texts'"),
            (json.dumps({"texts": "one"}).encode(), 422, "list of strings"),
            (json.dumps({"texts": [""]}).encode(), 422, "no input could be used"),
            (b'{"texts":' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "not valid JSON"),  # deep
            (json.dumps({"text": "a", "texts": ["b"]}).encode(), 422, "give one"),
        ):
            r = httpx.post(url, content=body, headers=headers)
            assert r.status_code == status and words in r.json()["error"], (body, r.text)
        r = httpx.post(url, files=[("files", ("a.txt", b"hello", "text/plain"))])
        assert r.status_code == 415 and '{"texts"' in r.json()["error"]
    finally:
        assert server.stop() in (0, -signal.SIGTERM)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    from headstart.api import train
    from headstart.core.config import TrainConfig
    from test_text import reviews, write_table

    root = tmp_path_factory.mktemp("serve-text")
    data = write_table(root / "reviews.csv", reviews(8))
    os.environ.setdefault("HEADSTART_CACHE_DIR", str(root / "cache"))
    out = root / "run"
    train(TrainConfig(data=str(data), backbone="test_bert", epochs=1), out=out, progress=False)
    return out


@pytest.mark.parametrize("kind", ["image", "text"])
def test_generated_requests_from_the_published_schema_never_get_a_5xx(kind, request):
    """Schemathesis reads the OpenAPI schema FastAPI publishes and sends requests that fit it
    and requests that break it: no answer is a 5xx, each status and body is as documented, and
    every 4xx is a JSON error. A short deterministic run; bench/bench_serve_schema.py runs a
    long one."""
    pytest.importorskip("schemathesis")
    from headstart.deploy.serve import create_app, load_model
    from schema_fuzz import fuzz

    run_dir = request.getfixturevalue(f"{kind}_run")
    app = create_app(*load_model(run_dir, "torch"))
    report = fuzz(app, examples=25)
    predict = {k.split("(")[1].rstrip(")"): v for k, v in report.items() if "/predict" in k}
    assert set(predict) == {"positive", "negative"}
    assert predict["positive"]["predicted"] > 0  # valid inputs reached the model
    assert any(s.startswith("4") for s in predict["negative"]["statuses"])
    if kind == "image":  # the multipart upload was generated, not skipped
        assert predict["positive"]["files_parts"] > 0
    assert report["GET /health (positive)"]["statuses"] == {"200": 1}


def test_the_app_serves_again_after_its_lifespan_ran_twice(image_run):
    """Each in-process client runs the application's startup and shutdown: batching must start
    again after a shutdown (it used to answer 500, its worker pool shut down)."""
    from fastapi.testclient import TestClient

    from headstart.deploy.serve import create_app, load_model

    app = create_app(*load_model(image_run, "torch"))
    files = [("files", ("a.png", _png(make_images(1, size=40)[0][0]), "image/png"))]
    for _ in range(2):
        with TestClient(app) as client:
            r = client.post("/predict", files=files)
            assert r.status_code == 200, r.text
            assert r.json()["predictions"][0]["label"]
