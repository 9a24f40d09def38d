"""Reading user files: corpus JSONL, query files, BEIR relevance judgments (qrels TSV)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from rf_mcp.errors import InputError


class Query(BaseModel):
    id: str | None = None
    text: str


def _open(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"The {what} file {p} does not exist.", fix=f"Pass the path of an existing {what} file.")
    return p


def read_jsonl(path: str | Path, what: str = "input") -> Iterator[tuple[int, dict[str, Any]]]:
    p = _open(path, what)
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{p}:{lineno} is not valid JSON ({exc.msg}).",
                                 fix="Write one JSON object per line (JSONL).") from None
            if not isinstance(obj, dict):
                raise InputError(f"{p}:{lineno} is not a JSON object.", fix="Write one JSON object per line.")
            yield lineno, obj


def read_queries(path: str | Path, ids: set[str] | None = None, text_field: str = "text") -> list[Query]:
    """Queries from JSONL (BEIR: ``_id``, ``text``) or a plain text file (one query per line)."""
    p = _open(path, "queries")
    out: list[Query] = []
    if p.suffix == ".jsonl":
        for lineno, obj in read_jsonl(p, "queries"):
            text = obj.get(text_field)
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"{p}:{lineno} has no text in field {text_field!r}.",
                                 fix=f"Give every query a non-empty {text_field!r} field.")
            qid = None if obj.get("_id") is None else str(obj["_id"])
            if ids is None or qid in ids:
                out.append(Query(id=qid, text=text.strip()))
    else:
        out = [Query(text=line.strip()) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    return out


def select_queries(path: str | Path, *, ids: set[str] | None = None, limit: int | None = None) -> list[Query]:
    """The queries of a file, optionally only those with the given ids, at most ``limit`` (file order)."""
    queries = read_queries(path, ids=ids)
    return queries[:limit] if limit else queries


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (``query-id  corpus-id  score``, header optional) -> {query: {doc: relevance}}."""
    p = _open(path, "qrels")
    qrels: dict[str, dict[str, int]] = {}
    with p.open(encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f, delimiter="\t"), 1):
            if not row or (lineno == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise InputError(f"{p}:{lineno} needs three tab-separated columns.",
                                 fix="Use BEIR qrels layout: query-id, corpus-id, score.")
            try:
                rel = int(float(row[2]))
            except ValueError:
                raise InputError(f"{p}:{lineno} has a non-numeric score {row[2]!r}.", fix="Use integer scores.") from None
            qrels.setdefault(row[0], {})[row[1]] = rel
    return qrels


def load_vectors(path: str | Path) -> np.ndarray:
    """A ``.npy`` matrix of precomputed document vectors (one row per corpus line)."""
    p = _open(path, "vectors")
    try:
        matrix: np.ndarray = np.load(p, mmap_mode="r", allow_pickle=False).astype(np.float32)
        return matrix
    except ValueError as exc:
        raise InputError(f"{p} is not a .npy matrix: {exc}.", fix="Save the vectors with numpy.save.") from None
