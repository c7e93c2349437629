"""A long property-based run of ``headstart serve`` from its published OpenAPI schema.

The test suite sends a few dozen generated requests per operation (tests/test_serve.py); this
sends ``--examples`` per operation and mode (requests that fit the schema, and for ``POST
/predict`` requests that break it) to the server of a tiny image run (multipart uploads) and a
tiny text run (JSON), in process, with tests/schema_fuzz.py: no answer may be a 5xx, each must
be as the schema documents it, every 4xx a JSON error. It stops at the first failure (with
Hypothesis' smallest failing request); otherwise it records what was sent and answered.

    OMP_NUM_THREADS=1 python bench/bench_serve_schema.py --examples 500
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from results import record

TESTS = Path(__file__).resolve().parents[1] / "tests"


def tiny_runs(root: Path) -> dict[str, Path]:
    """An image run (random-weight ResNet, 48 px) and a text run (tiny random BERT)."""
    sys.path.insert(0, str(TESTS))
    from PIL import Image

    from conftest import make_images
    from headstart.api import train
    from headstart.core.config import TrainConfig
    from test_text import reviews, write_table

    images, labels = make_images(8)
    for i, (img, lab) in enumerate(zip(images, labels)):
        (root / "images" / f"c{lab}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / "images" / f"c{lab}" / f"{i}.png")
    image = TrainConfig(
        data=str(root / "images"), backbone="test_resnet", weights="none", image_size=48, epochs=2
    )
    texts = write_table(root / "reviews.csv", reviews(8))
    text = TrainConfig(data=str(texts), backbone="test_bert", epochs=1)
    runs = {}
    for kind, cfg in (("image", image), ("text", text)):
        runs[kind] = root / f"{kind}-run"
        train(cfg, out=runs[kind], progress=False, say=lambda _: None)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--examples", type=int, default=500, help="per operation and mode")
    args = ap.parse_args()
    sys.path.insert(0, str(TESTS))
    import schemathesis

    from headstart.deploy.serve import create_app, load_model
    from schema_fuzz import fuzz

    result = {
        "examples_per_operation_and_mode": args.examples,
        "schemathesis": schemathesis.__version__,
    }
    with tempfile.TemporaryDirectory(prefix="hs-serve-schema-") as tmp:
        os.environ["HEADSTART_CACHE_DIR"] = str(Path(tmp) / "cache")
        for kind, run_dir in tiny_runs(Path(tmp)).items():
            start = time.perf_counter()
            report = fuzz(create_app(*load_model(run_dir, "torch")), examples=args.examples)
            result[kind] = {"seconds": round(time.perf_counter() - start, 1), "operations": report}
            print(json.dumps({kind: result[kind]}), flush=True)
    result["failures"] = 0  # fuzz raises on the first one, so a written result has none
    record(__file__, result)


if __name__ == "__main__":
    main()
