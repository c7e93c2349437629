"""Property-based requests to ``headstart serve`` from the OpenAPI schema it publishes
(Schemathesis), in process (the ASGI application, no sockets). Shared by
tests/test_serve.py (a short, deterministic run) and bench/bench_serve_schema.py (a long one).

Every operation gets requests that fit the schema (positive); ``POST /predict`` also gets
requests that break it (negative: wrong types, missing fields, wrong field names, odd
bodies). Each answer is checked: never a 5xx, its status and body as the schema documents
them, and every 4xx a JSON object with an ``error`` message.
"""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

#: The checks every answer passes. Not ``positive_data_acceptance`` / ``negative_data_rejection``:
#: bytes that fit the schema need not be an image (answered 422), and a list holding a number
#: among texts is answered 200 with that item's error beside the others' predictions.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def fuzz(app, *, examples: int) -> dict[str, dict]:
    """Run ``examples`` generated requests per operation and mode against ``app``; raise on the
    first answer that fails a check. Returns, per operation and mode, the statuses seen and
    what the requests held (``files_parts``: multipart requests with a ``files`` part;
    ``predicted``: answers with at least one label)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    report: dict[str, dict] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [schemathesis.GenerationMode.POSITIVE]
        if operation.method.upper() == "POST":  # GETs without parameters have no wrong form
            modes.append(schemathesis.GenerationMode.NEGATIVE)
        for mode in modes:
            seen = exercise(operation, mode, examples)
            codes = sorted(k for k in seen if isinstance(k, int))
            statuses = {str(k): seen[k] for k in codes}
            report[f"{operation.method.upper()} {operation.path} ({mode.value})"] = {
                "requests": sum(statuses.values()),
                "statuses": statuses,
                "files_parts": seen["files_parts"],
                "predicted": seen["predicted"],
            }
    return report


def exercise(operation, mode, examples: int) -> Counter:
    """Statuses (and ``files_parts``, ``predicted``) of ``examples`` requests to one operation."""
    seen: Counter = Counter()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        derandomize=True,  # the same requests on every run
        database=None,  # nothing written next to the tests
        deadline=None,  # no timing in tests
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        response = case.call()
        seen[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
        if 400 <= response.status_code < 500:
            body = response.json()
            assert isinstance(body, dict) and isinstance(body.get("error"), str), body
            assert body["error"].strip(), body
        sent = response.request.body or b""
        sent = sent if isinstance(sent, bytes) else str(sent).encode()
        if b'name="files"' in sent:
            seen["files_parts"] += 1
        if response.status_code == 200 and any(
            "label" in p for p in (response.json() or {}).get("predictions", [])
        ):
            seen["predicted"] += 1

    run()
    return seen
