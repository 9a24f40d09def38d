"""Reading documents out of point payloads: dotted paths for text and id fields (``metadata.doc_id``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DOC_ID = "doc_id"
"""The default payload key of a document's own id (``[collection] id_field``): where ``rf-mcp index`` stores it."""


def is_decimal(text: str) -> bool:
    """Plain ASCII decimal digits ("12074066"), not fullwidth or superscript digits, which str.isdigit() accepts."""
    return text.isascii() and text.isdigit()


def get_path(payload: dict[str, Any] | None, path: str) -> Any:
    """The value at a dotted path (``a.b.c``), or None when any step is missing."""
    value: Any = payload or {}
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def set_path(payload: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = payload
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[last] = value


def _as_text(value: Any) -> str:
    if value is None or isinstance(value, dict):
        return ""
    if isinstance(value, list):
        return " ".join(_as_text(v) for v in value if not isinstance(v, dict))
    return str(value)


def payload_text(payload: dict[str, Any] | None, fields: Sequence[str]) -> str:
    """The document text the feedback model reads: the configured fields, joined with spaces."""
    parts = (_as_text(get_path(payload, f)) for f in fields)
    return " ".join(p for p in parts if p.strip())


def doc_id_of(payload: dict[str, Any] | None, id_field: str) -> str | None:
    """A document's own id: the value at ``id_field`` (a dotted path), else at rf-mcp's own key, else None."""
    for path in (id_field, DOC_ID):
        value = get_path(payload, path)
        if value is not None and not isinstance(value, dict | list):
            return str(value)
    return None


def payload_keys(payload: dict[str, Any] | None, prefix: str = "", depth: int = 2) -> list[str]:
    """The keys of a payload as dotted paths (nested objects to ``depth`` levels), for error messages."""
    out = []
    for k, v in (payload or {}).items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and depth > 1:
            out.extend(payload_keys(v, f"{path}.", depth - 1) or [path])
        else:
            out.append(path)
    return out
