"""``headstart serve``: a saved run behind an HTTP API (FastAPI on uvicorn).

``POST /predict`` takes images as multipart uploads (``files`` parts) or, for a text run, JSON
``{"texts": [...]}``, and answers with each input's label and class probabilities, in order.
``GET /health`` and ``GET /metadata`` (classes, preprocessing, backbone, the run's headline
score) describe it; ``/docs`` is FastAPI's interactive page, and ``/openapi.json`` describes
``POST /predict``'s body (the modality's ``body_schema``) and every answer, errors included (the
tests send requests generated from it, tests/schema_fuzz.py).

Requests that arrive together are predicted together: a :class:`Batcher` collects examples
for up to ``max_wait_ms`` or ``max_batch`` examples and runs one forward pass in a worker
thread, so concurrent clients share batches instead of queueing one pass each.

Bad input never takes the server down. Each input is checked on its own (size, content type,
decoding, with the training decoder's decompression-bomb guard); one bad input is reported
beside the good ones, a request with no good input is a 4xx, and every error is JSON
``{"error": ...}`` naming the problem. Multipart bodies are parsed as they stream in and held in
memory within the size limits: the server writes nothing to disk and reads no path from a
request.
"""

import asyncio
import errno
import functools
import json
import logging
import socket
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from headstart.choices import (
    SERVE_MAX_BATCH,
    SERVE_MAX_BYTES,
    SERVE_MAX_FILES,
    SERVE_MAX_PIXELS,
    SERVE_MAX_WAIT_MS,
)
from headstart.core.config import parse_bytes
from headstart.core.predictions import confidence_of
from headstart.errors import ConfigError

DEFAULT_MAX_BYTES = parse_bytes(SERVE_MAX_BYTES, "--max-bytes")


@dataclass(frozen=True)
class Limits:
    """What one request may hold, and how requests are batched."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_files: int = SERVE_MAX_FILES
    max_pixels: int = SERVE_MAX_PIXELS
    max_batch: int = SERVE_MAX_BATCH
    max_wait_ms: float = SERVE_MAX_WAIT_MS
    batching: bool = True

    @property
    def max_body(self) -> int:
        """The largest request body read: every input at its limit, plus multipart headers."""
        return self.max_files * (self.max_bytes + 8192)


#: Every error the server answers, whatever its status: one JSON object naming the problem.
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "predictions": {"type": "array"}},
}
ERRORS = {
    400: "the request is malformed or holds no input",
    413: "the body is over --max-bytes x --max-files",
    415: "the body is not of the content type this run takes",
    422: "no input could be used (each one's reason in 'predictions')",
}


def predict_responses(classes: list[str], multi_label: bool = False) -> dict:
    """``POST /predict``'s answers as OpenAPI describes them (``multi_label``: a set of
    ``labels`` per input instead of one ``label``)."""
    named = (
        {"labels": {"type": "array", "items": {"type": "string", "enum": classes}}}
        if multi_label
        else {"label": {"type": "string", "enum": classes}}
    )
    prediction = {
        "type": "object",
        "required": ["input"],
        "properties": {
            "input": {"type": "string"},
            **named,
            "confidence": {"type": "number"},
            "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
            "error": {"type": "string"},
        },
    }
    ok = {
        "type": "object",
        "required": ["predictions"],
        "properties": {"predictions": {"type": "array", "items": prediction}},
    }
    answers = {200: ("one prediction (or error) per input, in order", ok)}
    answers.update({status: (what, ERROR_SCHEMA) for status, what in ERRORS.items()})
    return {
        status: {"description": what, "content": {"application/json": {"schema": schema}}}
        for status, (what, schema) in answers.items()
    }


class RequestError(Exception):
    """A request the server answers with ``status`` and a JSON message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def load_model(target: str | Path, engine: str):
    """(model with ``class_names``, ``modality`` and ``predict_proba``, what /metadata says)."""
    from headstart import __version__
    from headstart.deploy.onnx_model import load_engine

    model = load_engine(target, engine)
    if engine == "onnx":
        meta = model.meta
        info = {
            "engine": "onnx",
            "model": str(model.path),
            **{k: meta.get(k) for k in ("modality", "class_names", "backbone", "strategy")},
            "preprocessing": meta.get("preprocessing"),
            "headline": meta.get("headline"),
            **({"cost": meta["cost"]} if meta.get("cost") else {}),
            "task": meta.get("task", "single-label"),
            **({"thresholds": meta["thresholds"]} if meta.get("thresholds") else {}),
        }
    else:
        from headstart.deploy.export import refuse_interrupted

        refuse_interrupted(model, target, "serving")
        info = {
            "engine": "torch",
            "run": str(Path(target)),
            "modality": model.modality,
            "class_names": list(model.class_names),
            "backbone": model.backbone_name,
            "strategy": model.describe_model(),  # a text run's blend included
            "preprocessing": model.preprocessing.to_dict(),
            "headline": model.metrics.get("headline"),
            **({"cost": model.cost_note()} if model.cost_note() else {}),
            "task": model.task.name,
        }
        if model.thresholds is not None:
            info["thresholds"] = dict(zip(model.class_names, model.thresholds.tolist()))
    info["headstart_version"] = __version__
    return model, info


class Batcher:
    """Collects the examples of concurrent requests into shared forward passes."""

    def __init__(self, predict, limits: Limits):
        self.predict, self.limits = predict, limits
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Start batching (again, after :meth:`stop`: an application's lifespan may run more
        than once in one process, as in-process test clients do)."""
        # one worker: forward passes run one at a time, off the event loop
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headstart-predict")
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with suppress(asyncio.CancelledError):
                await self.task
        if self.executor is not None:
            self.executor.shutdown(wait=True)

    async def __call__(self, examples: list) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((examples, future))
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        wait = self.limits.max_wait_ms / 1000.0
        while True:
            batch = [await self.queue.get()]
            n = len(batch[0][0])
            deadline = loop.time() + wait
            while self.limits.batching and n < self.limits.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), left)
                except TimeoutError:
                    break
                batch.append(item)
                n += len(item[0])
            examples = [e for ex, _ in batch for e in ex]
            try:
                probs = await loop.run_in_executor(
                    self.executor,
                    functools.partial(self.predict, examples, batch_size=self.limits.max_batch),
                )
            except Exception as e:  # reported to each waiting request, never fatal
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            start = 0
            for ex, future in batch:
                if not future.done():  # a client that went away
                    future.set_result(probs[start : start + len(ex)])
                start += len(ex)


async def read_multipart(request, limits: Limits) -> list[tuple[str, str, bytes | None, int]]:
    """(name, content type, bytes or None when over ``max_bytes``, size) of each ``files``
    part, parsed as the body streams in (python-multipart), kept in memory."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise RequestError(400, "multipart body without a boundary in its content type.")
    parts: list[dict] = []
    state: dict = {}

    def on_part_begin():
        state.update(part={"headers": {}, "chunks": [], "size": 0}, field=b"", value=b"")

    def on_header_field(data, start, end):
        state["field"] += data[start:end]

    def on_header_value(data, start, end):
        state["value"] += data[start:end]

    def on_header_end():
        state["part"]["headers"][state["field"].lower()] = state["value"]
        state.update(field=b"", value=b"")

    def on_part_data(data, start, end):
        part = state["part"]
        part["size"] += end - start
        if part["size"] > limits.max_bytes:
            part["chunks"] = None  # over the limit: counted, no longer kept
        elif part["chunks"] is not None:
            part["chunks"].append(bytes(data[start:end]))

    def on_part_end():
        parts.append(state["part"])
        if len(parts) > limits.max_files:
            raise RequestError(
                400, f"more than {limits.max_files} files in one request (--max-files)."
            )

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limits.max_body:
                raise RequestError(
                    413, f"request body over {limits.max_body:,} bytes (--max-bytes x --max-files)."
                )
            parser.write(chunk)
        parser.finalize()
    except RequestError:
        raise
    except Exception as e:  # a malformed body
        raise RequestError(400, f"malformed multipart body ({type(e).__name__}).") from None
    out = []
    for i, part in enumerate(parts):
        disposition = part["headers"].get(b"content-disposition", b"")
        _, opts = parse_options_header(disposition)
        if opts.get(b"name", b"") != b"files":
            field = opts.get(b"name", b"").decode("utf-8", "replace")
            raise RequestError(400, f"unexpected form field {field!r}: name file parts 'files'.")
        filename = opts.get(b"filename", b"").decode("utf-8", "replace") or f"files[{i}]"
        content_type = part["headers"].get(b"content-type", b"").decode("latin-1").strip()
        data = b"".join(part["chunks"]) if part["chunks"] is not None else None
        out.append((filename, content_type.lower(), data, part["size"]))
    return out


async def read_body(request, limits: Limits) -> bytes:
    """A non-multipart body, refused past ``max_body`` bytes."""
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limits.max_body:
            raise RequestError(413, f"request body over {limits.max_body:,} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(model, info: dict, limits: Limits | None = None):
    """The FastAPI application serving ``model`` (a loaded run or an ONNX export)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from headstart.core.modality import modality

    limits = limits or Limits()
    reader = modality(info["modality"]).serving()
    # a malformed body is answered with a 400; the parser's own log line would only confuse
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    batcher = Batcher(model.predict_proba, limits)
    classes = [str(c) for c in info["class_names"]]
    thresholds = getattr(model, "thresholds", None)  # several labels per input

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(
        title=f"headstart: {info['backbone']}",
        description=f"Predicts {', '.join(classes)} from {info['modality']} inputs.",
        version=info["headstart_version"],
        lifespan=lifespan,
    )

    error = errors_as_json(app)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/metadata")
    async def metadata() -> dict:
        shown = {k: v for k, v in asdict(limits).items() if k in reader.LIMITS}
        return {**info, "limits": shown, "request": reader.HOW}

    @app.post(
        "/predict",
        responses=predict_responses(classes, multi_label=thresholds is not None),
        openapi_extra={"requestBody": reader.body_schema(limits)},
    )
    async def predict(request: Request):
        try:
            items = await read_items(request, reader, limits)
        except RequestError as e:
            return error(e.status, e.message)
        good = [k for k, (_, _, err) in enumerate(items) if err is None]
        probs = None
        if good:
            try:
                probs = await batcher([items[k][1] for k in good])
            except Exception as e:
                return error(500, f"prediction failed: {type(e).__name__}: {str(e)[:200]}")
        rows = {k: p for k, p in zip(good, probs)} if good else {}
        predictions = [
            {"input": name, "error": err}
            if err is not None
            else answer(model, name, rows[k], classes, thresholds)
            for k, (name, _, err) in enumerate(items)
        ]
        if not good:
            named = "; ".join(f"{p['input']}: {p['error']}" for p in predictions[:5])
            more = f" (and {len(predictions) - 5} more)" if len(predictions) > 5 else ""
            return JSONResponse(
                {"error": f"no input could be used: {named}{more}", "predictions": predictions},
                status_code=422,
            )
        return {"predictions": predictions}

    return app


def errors_as_json(app):
    """Every error the app answers as ``{"error": message}`` (404, 405 and invalid requests
    too); returns the function that makes one."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc):  # 404, 405... as JSON like every other error
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc):
        return error(422, str(exc)[:300])

    return error


async def read_items(request, reader, limits: Limits) -> list:
    """The inputs of a ``/predict`` request as the modality's reader takes them (multipart
    files or a JSON body): (name, input, error or None) each; a request that cannot be read
    raises :class:`RequestError` with its status."""
    content_type = request.headers.get("content-type", "").lower()
    if request.headers.get("content-length") == "0" or not (
        content_type or request.headers.get("transfer-encoding")
    ):
        raise RequestError(400, f"empty body: {reader.HOW}.")
    wanted = "multipart/form-data" if reader.REQUEST == "multipart" else "application/json"
    if not content_type.startswith(wanted):
        raise RequestError(415, f"content type {content_type or 'none'}: {reader.HOW}.")
    if reader.REQUEST == "multipart":
        parts = await read_multipart(request, limits)
        if not parts:
            raise RequestError(400, f"no files in the request: {reader.HOW}.")
        return reader.read_request(parts, limits)
    raw = await read_body(request, limits)
    if not raw.strip():
        raise RequestError(400, f"empty body: {reader.HOW}.")
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RequestError(400, "the body is not UTF-8 text.") from None
    except (ValueError, RecursionError):  # RecursionError: nested too deep
        raise RequestError(400, f"the body is not valid JSON: {reader.HOW}.") from None
    try:
        items = reader.read_request(body, limits)
    except ValueError as e:
        raise RequestError(422, str(e)) from None
    if not items:
        raise RequestError(400, f"no inputs in the request: {reader.HOW}.")
    if len(items) > limits.max_files:
        raise RequestError(
            400,
            f"{len(items)} inputs in one request; the limit is {limits.max_files} (--max-files).",
        )
    return items


def answer(model, name: str, p: np.ndarray, classes: list[str], thresholds) -> dict:
    """One input's prediction: its label (or, with ``thresholds``, its labels), the
    confidence and every class's probability."""
    said = (
        {"labels": [c for c, on in zip(classes, p >= thresholds) if on]}
        if thresholds is not None
        else {"label": classes[int(np.argmax(p))]}
    )
    return {
        "input": name,
        **said,
        "confidence": confidence_of(model, p),
        "probabilities": {c: float(v) for c, v in zip(classes, p)},
    }


def serve(
    target: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    engine: str = "torch",
    limits: Limits | None = None,
    say=print,
) -> None:
    """Load ``target`` and serve it with uvicorn until SIGINT/SIGTERM (in-flight requests
    finish first)."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigError(
            "serving needs FastAPI and uvicorn: pip install 'headstart[serve]'."
        ) from None
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:  # before loading the model: a taken port is a one-line error, not a traceback
            probe.bind((host, port))
        except OSError as e:
            what = "--port" if e.errno == errno.EADDRINUSE else "--host and --port"
            raise ConfigError(
                f"cannot listen on {host}:{port} ({e.strerror or e}); check {what}."
            ) from None
    model, info = load_model(target, engine)
    app = create_app(model, info, limits)
    say(
        f"serving {info['backbone']} ({info['modality']}, {len(info['class_names'])} "
        f"{'labels' if info.get('thresholds') else 'classes'}, "
        f"{engine} engine) on http://{host}:{port}  (POST /predict, GET /health, /metadata, /docs)"
    )
    if info.get("cost"):  # an ensemble: what an example costs against one member
        say(f"model: {info['cost']}")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
