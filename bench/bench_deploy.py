"""Deployment speed (issue 15): PyTorch in-process, ONNX Runtime in-process, and
``headstart serve`` under concurrent clients, for EfficientNet-Lite0 with the lesson head.

A run is trained on 60 of scikit-learn's digits (the head's quality does not matter here; the
network is the real Lite0 with its packaged ImageNet weights) and exported. Inputs are real
photos from scikit-image (astronaut, coffee, chelsea, rocket...), decoded once; every timing
includes preprocessing (resize to 224, normalisation) as a user's call does.

  torch      run.predict_proba, in process
  onnx       OnnxModel.predict_proba (ONNX Runtime, Pillow resizing), in process
  serve      headstart serve as a subprocess on 127.0.0.1, torch and onnx engines, batching on
             and off; an asyncio load generator (httpx) with C clients each posting one image
             at a time, bounded by --requests per setting and --seconds

Rows: single-image latency p50 / p99 (one image per call, sequential), throughput in images/s
with batches of 1, 8 and 32, and decoding PNG bytes + predicting in batches of 8 (the server's
work without HTTP: the reference for the server's throughput), and for the server:
requests/s, latency p50 / p99 per request, failed requests and the server's peak resident
memory (VmHWM). The load generator shares the machine's cores with the server, as a client on
the same host would.

    python bench/bench_deploy.py
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results import record


def photos() -> list[np.ndarray]:
    from skimage import data

    names = [
        "astronaut",
        "coffee",
        "chelsea",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
    ]
    out = []
    for name in names:
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, axis=-1)
        out.append(np.ascontiguousarray(img[..., :3]).astype(np.uint8))
    return out


def make_run(folder: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    from headstart.api import train
    from headstart.core.config import TrainConfig

    digits = load_digits()
    root = folder / "digits"
    for i in range(60):
        d = root / str(digits.target[i])
        d.mkdir(parents=True, exist_ok=True)
        img = (digits.images[i] / 16 * 255).astype(np.uint8)
        Image.fromarray(np.stack([img] * 3, -1)).save(d / f"{i}.png")
    out = folder / "run"
    train(TrainConfig(data=str(root), epochs=2, test_split=0.0), out=out, progress=False)
    return out


def latency(predict, images, repeats: int) -> dict:
    predict(images[:1])  # warm
    times = []
    for k in range(repeats):
        img = images[k % len(images)]
        t = time.perf_counter()
        predict([img])
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def throughput(predict, images, n: int, batch_size: int) -> float:
    batch = [images[k % len(images)] for k in range(n)]
    predict(batch[:batch_size], batch_size)
    t = time.perf_counter()
    predict(batch, batch_size)
    return round(n / (time.perf_counter() - t), 1)


def from_png(predict, bodies, n: int, batch_size: int) -> float:
    """Images/s decoding PNG bytes and predicting in batches: the server's work minus HTTP."""
    from headstart.modalities.image.data.decode import decode_image_bytes

    t = time.perf_counter()
    for s in range(0, n, batch_size):
        images = [
            decode_image_bytes(bodies[k % len(bodies)], "p.png") for k in range(s, s + batch_size)
        ]
        predict(images, batch_size)
    return round(n / (time.perf_counter() - t), 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


async def load(url: str, bodies: list[bytes], clients: int, requests: int, seconds: float) -> dict:
    import httpx

    lat, failed, sent = [], 0, 0
    stop = time.perf_counter() + seconds

    async def client(k: int, http) -> None:
        nonlocal failed, sent
        while sent < requests and time.perf_counter() < stop:
            sent += 1
            body = bodies[(k + sent) % len(bodies)]
            t = time.perf_counter()
            try:
                r = await http.post(url, files=[("files", ("p.png", body, "image/png"))])
                ok = r.status_code == 200 and "label" in r.json()["predictions"][0]
            except httpx.HTTPError:
                ok = False
            lat.append(time.perf_counter() - t)
            failed += not ok

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        t = time.perf_counter()
        await asyncio.gather(*(client(k, http) for k in range(clients)))
        wall = time.perf_counter() - t
    ms = np.array(lat) * 1000
    return {
        "requests": len(lat),
        "failed": failed,
        "req_per_s": round(len(lat) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def serve_rows(run: Path, bodies, args) -> list[dict]:
    import httpx

    rows = []
    for engine in ("torch", "onnx"):
        for batching in (True, False):
            port = free_port()
            cmd = [
                sys.executable,
                "-m",
                "headstart.cli",
                "serve",
                str(run),
                "--port",
                str(port),
                "--engine",
                engine,
                "--batching" if batching else "--no-batching",
            ]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(url + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            try:
                for clients in (1, 8, 32):
                    r = asyncio.run(
                        load(url + "/predict", bodies, clients, args.requests, args.seconds)
                    )
                    row = {"engine": engine, "batching": batching, "clients": clients, **r}
                    row["server_peak_rss_mb"] = peak_rss_mb(proc.pid)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=50, help="single-image calls")
    ap.add_argument("--batch-images", type=int, default=128, help="images in the batched run")
    ap.add_argument("--requests", type=int, default=160, help="per server setting")
    ap.add_argument("--seconds", type=float, default=40.0, help="per server setting, at most")
    args = ap.parse_args()

    from headstart.core.runs import load_run
    from headstart.deploy.export import export_onnx
    from headstart.deploy.onnx_model import OnnxModel

    images = photos()
    bodies = [png(img) for img in images]
    rows = []
    with tempfile.TemporaryDirectory(prefix="hs-deploy-") as tmp:
        os.environ["HEADSTART_CACHE_DIR"] = str(Path(tmp) / "cache")
        run_dir = make_run(Path(tmp))
        export_onnx(run_dir)
        run, ort_model = load_run(run_dir), OnnxModel(run_dir)
        for name, predict in (
            ("torch", lambda xs, b=1: run.predict_proba(xs, batch_size=b)),
            ("onnx", lambda xs, b=1: ort_model.predict_proba(xs, batch_size=b)),
        ):
            row = {
                "engine": name,
                "in_process": True,
                **latency(predict, images, args.repeats),
                **{
                    f"images_per_s_batch_{b}": throughput(predict, images, args.batch_images, b)
                    for b in (1, 8, 32)
                },
                "from_png_images_per_s_batch_8": from_png(predict, bodies, args.batch_images, 8),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
        rows += serve_rows(run_dir, bodies, args)
    import onnxruntime
    import torch

    result = {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "rows": rows}
    print(json.dumps(result, indent=2))
    record(__file__, result)


if __name__ == "__main__":
    main()
