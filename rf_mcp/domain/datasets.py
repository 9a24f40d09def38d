"""Reading user files: corpus JSONL, query files, BEIR relevance judgments (qrels TSV), vector matrices.

Errors name the line and the problem, never the file's content (a server must not echo a file back).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from rf_mcp.domain.files import UNRESTRICTED, PathPolicy
from rf_mcp.errors import InputError


class Query(BaseModel):
    id: str | None = None
    text: str


def _lines(p: Path, what: str) -> Iterator[tuple[int, str]]:
    try:
        with p.open(encoding="utf-8") as f:
            yield from enumerate(f, 1)
    except UnicodeDecodeError:
        raise InputError(f"The {what} file is not UTF-8 text.", fix=f"Save the {what} file as UTF-8 text.") from None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def read_jsonl(path: str | Path, what: str = "input", files: PathPolicy = UNRESTRICTED) -> Iterator[tuple[int, dict[str, Any]]]:
    p = files.open(path, what)
    for lineno, line in _lines(p, what):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise InputError(f"Line {lineno} of the {what} file is not valid JSON ({msg}).",
                             fix="Write one JSON object per line (JSONL).") from None
        if not isinstance(obj, dict):
            raise InputError(f"Line {lineno} of the {what} file is not a JSON object.",
                             fix="Write one JSON object per line.")
        if _SURROGATE_ESCAPE.search(line):  # an escaped half of a surrogate pair: fine in a pair, not alone
            try:
                json.dumps(obj, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(f"Line {lineno} of the {what} file holds a lone surrogate escape (such as \\ud800): "
                                 "not text.", fix="Remove it, or write the character it stood for.") from None
        yield lineno, obj


def read_queries(path: str | Path, ids: set[str] | None = None, text_field: str = "text",
                 files: PathPolicy = UNRESTRICTED) -> list[Query]:
    """Queries from JSONL (BEIR: ``_id``, ``text``) or a plain text file (one query per line)."""
    p = files.open(path, "queries")
    out: list[Query] = []
    if p.suffix == ".jsonl":
        for lineno, obj in read_jsonl(p, "queries"):
            text = obj.get(text_field)
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"Line {lineno} of the queries file has no text in field {text_field!r}.",
                                 fix=f"Give every query a non-empty {text_field!r} field.")
            qid = None if obj.get("_id") is None else str(obj["_id"])
            if ids is None or qid in ids:
                out.append(Query(id=qid, text=text.strip()))
    else:
        out = [Query(text=line.strip()) for _, line in _lines(p, "queries") if line.strip()]
    return out


def select_queries(path: str | Path, *, ids: set[str] | None = None, limit: int | None = None,
                   files: PathPolicy = UNRESTRICTED) -> list[Query]:
    """The queries of a file, optionally only those with the given ids, at most ``limit`` (file order)."""
    queries = read_queries(path, ids=ids, files=files)
    return queries[:limit] if limit else queries


def read_qrels(path: str | Path, files: PathPolicy = UNRESTRICTED) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (``query-id  corpus-id  score``, header optional) -> {query: {doc: relevance}}."""
    p = files.open(path, "qrels")
    qrels: dict[str, dict[str, int]] = {}
    for lineno, row in enumerate(csv.reader((line for _, line in _lines(p, "qrels")), delimiter="\t"), 1):
        if not row or (lineno == 1 and row[0] == "query-id"):
            continue
        if len(row) < 3:
            raise InputError(f"Line {lineno} of the qrels file needs three tab-separated columns.",
                             fix="Use BEIR qrels layout: query-id, corpus-id, score.")
        try:
            rel = int(float(row[2]))
        except (ValueError, OverflowError):
            raise InputError(f"Line {lineno} of the qrels file has a non-numeric score.",
                             fix="Use integer relevance scores in the third column.") from None
        qrels.setdefault(row[0], {})[row[1]] = rel
    return qrels


def load_vectors(path: str | Path, files: PathPolicy = UNRESTRICTED) -> np.ndarray:
    """A ``.npy`` matrix of precomputed document vectors (one row per corpus line); never unpickles."""
    p = files.open(path, "vectors")
    try:
        matrix: np.ndarray = np.load(p, mmap_mode="r", allow_pickle=False).astype(np.float32)
        return matrix
    except (ValueError, OSError, EOFError):
        raise InputError("The vectors file is not a .npy matrix of numbers.", fix="Save the vectors with numpy.save.") from None
