"""Texts in an HTTP request to ``headstart serve``: a JSON body ``{"texts": [...]}`` (or
``{"text": "..."}``), UTF-8. Text is data only: never executed, evaluated or used as a path."""

from __future__ import annotations

REQUEST = "json"
#: the server limits that apply to texts (shown by /metadata)
LIMITS = ("max_bytes", "max_files", "max_batch", "max_wait_ms", "batching")
#: JSON's names for what json.loads returns
_JSON_TYPES = {int: "number", float: "number", bool: "boolean", dict: "object", list: "list"}
HOW = 'send JSON: {"texts": ["first text", "second text"]} (or {"text": "one text"})'


def body_schema(limits) -> dict:
    """The request body of ``POST /predict`` as OpenAPI describes it (for /docs and clients)."""
    texts = {"type": "array", "items": {"type": "string"}, "maxItems": limits.max_files}
    return {
        "required": True,
        "description": HOW,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"texts": {**texts, "minItems": 1}, "text": {"type": "string"}},
                    "oneOf": [{"required": ["texts"]}, {"required": ["text"]}],
                }
            }
        },
    }


def read_request(body, limits) -> list[tuple[str, object, str | None]]:
    """(name, text or None, error or None) for each text of a parsed JSON ``body``; a body of
    the wrong shape raises ValueError with what to send instead."""
    if isinstance(body, dict) and "texts" in body and "text" in body:
        raise ValueError(f"both 'text' and 'texts' in the JSON body: give one. {HOW}.")
    if isinstance(body, dict) and "texts" in body:
        texts = body["texts"]
    elif isinstance(body, dict) and "text" in body:
        texts = [body["text"]]
    else:
        raise ValueError(f"no 'texts' in the JSON body: {HOW}.")
    if not isinstance(texts, list):
        raise ValueError(f"'texts' must be a list of strings: {HOW}.")
    out = []
    for i, text in enumerate(texts):
        name = f"texts[{i}]"
        if not isinstance(text, str):
            kind = "null" if text is None else _JSON_TYPES.get(type(text), type(text).__name__)
            out.append((name, None, f"a {kind}, not a string"))
        elif not text.strip():
            out.append((name, None, "empty text"))
        elif len(text.encode("utf-8", "surrogatepass")) > limits.max_bytes:
            out.append((name, None, f"over the {limits.max_bytes:,}-byte limit (--max-bytes)"))
        else:
            out.append((name, text, None))
    return out
