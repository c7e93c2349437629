"""Images in an HTTP request to ``headstart serve``: multipart uploads, decoded from memory by
the same safe decoder as training (nothing is written to disk, no path is read)."""

from __future__ import annotations

#: how a request carries images: multipart/form-data, one or more ``files`` parts
REQUEST = "multipart"
#: the server limits that apply to images (shown by /metadata)
LIMITS = ("max_bytes", "max_files", "max_pixels", "max_batch", "max_wait_ms", "batching")
HOW = "send images as multipart/form-data file parts named 'files' (curl -F files=@cat.jpg)"


def body_schema(limits) -> dict:
    """The request body of ``POST /predict`` as OpenAPI describes it (for /docs and clients)."""
    files = {"type": "array", "items": {"type": "string", "format": "binary"}}
    return {
        "required": True,
        "description": HOW,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {"files": {**files, "minItems": 1, "maxItems": limits.max_files}},
                    "additionalProperties": False,  # another field is answered 400
                }
            }
        },
    }


def read_request(parts, limits) -> list[tuple[str, object, str | None]]:
    """(name, decoded image or None, error or None) for each uploaded part ``(name,
    content_type, bytes or None when over the size limit, size)``."""
    from headstart.modalities.image.data.decode import UnreadableImage, decode_image_bytes

    out = []
    for name, content_type, data, size in parts:
        if content_type and not (
            content_type.startswith("image/") or content_type == "application/octet-stream"
        ):
            out.append((name, None, f"content type {content_type} is not an image"))
        elif data is None:
            out.append(
                (
                    name,
                    None,
                    f"{size:,} bytes is over the {limits.max_bytes:,}-byte limit (--max-bytes)",
                )
            )
        else:
            try:
                out.append((name, decode_image_bytes(data, name, limits.max_pixels), None))
            except UnreadableImage as e:
                out.append((name, None, e.reason))
    return out
