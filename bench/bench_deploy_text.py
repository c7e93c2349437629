"""Deployment speed for text: PyTorch against ONNX Runtime in process, all-MiniLM-L6-v2.

A frozen text run (the packaged all-MiniLM-L6-v2, the lesson head, ``--blend none`` so that
every prediction runs the network) is trained on the drug reviews (``bench_text.py``'s data)
and exported; then ``--texts`` test reviews are predicted by ``run.predict_proba`` (torch) and
by ``OnnxModel.predict_proba`` (ONNX Runtime, tokenised by ``tokenizers``), in alternating
rounds, each from the strings (tokenisation included, as a user's call). Rows: texts/s of each
engine (median over rounds), their ratio, and whether the two predicted the same class for
every text and how far their probabilities differ.

    python bench/bench_deploy_text.py [--texts 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_text import drug_reviews
from results import record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--texts", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from headstart.api import train
    from headstart.core.config import TrainConfig
    from headstart.core.data import load_data
    from headstart.core.runs import load_run
    from headstart.deploy.export import export_onnx
    from headstart.deploy.onnx_model import OnnxModel

    with tempfile.TemporaryDirectory(prefix="hs-deploy-text-") as tmp:
        tmp = Path(tmp)
        os.environ["HEADSTART_CACHE_DIR"] = str(tmp / "cache")
        data = drug_reviews(tmp)
        config = TrainConfig(data=str(data), blend="none", seed=0)
        train(config, out=tmp / "run", progress=False, report=False, say=lambda *_: None)
        export_onnx(tmp / "run")
        run, onnx = load_run(tmp / "run"), OnnxModel(tmp / "run")
        texts = list(load_data(str(data), seed=0).test.texts[: args.texts])
        lengths = [len(t.split()) for t in texts]
        engines = {"torch": run.predict_proba, "onnx": onnx.predict_proba}
        for predict in engines.values():  # one-off costs (first calls, allocations) outside
            predict(texts[:8])
        seconds: dict[str, list[float]] = {name: [] for name in engines}
        proba: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for name, predict in engines.items():
                start = time.perf_counter()
                proba[name] = predict(texts)
                seconds[name].append(time.perf_counter() - start)
        rate = {name: len(texts) / float(np.median(s)) for name, s in seconds.items()}
        result = {
            "encoder": "sentence-transformers/all-MiniLM-L6-v2 (packaged), lesson head",
            "texts": len(texts),
            "median_words_per_text": float(np.median(lengths)),
            "seconds": seconds,
            "texts_per_second": {k: round(v, 1) for k, v in rate.items()},
            "onnx_over_torch_throughput": round(rate["onnx"] / rate["torch"], 2),
            "same_class_for_every_text": bool(
                np.array_equal(proba["torch"].argmax(1), proba["onnx"].argmax(1))
            ),
            "max_probability_difference": float(np.abs(proba["torch"] - proba["onnx"]).max()),
        }
    print(json.dumps(result, indent=2))
    record(__file__, result)


if __name__ == "__main__":
    main()
