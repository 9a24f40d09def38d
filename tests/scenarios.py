"""Scenarios run on every engine: the unit suite runs them on the in-memory double, the integration suite on the
embedded engines (edge and qdrant-client's local mode)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

from mcp.client.client import Client

from rf_mcp.domain.service import RFService
from rf_mcp.server import build_server
from tests import doubles

Q = "tau protein in the brain cortex"

# Hand edits of a stored calibration profile (the security review's cases): each must be refused on read.
TAMPERING: dict[str, Callable[[dict], object]] = {
    "unknown schema": lambda p: {**p, "schema_version": 99},
    "untrained weights": lambda p: {**p, "weights": {"a": 1.0, "b": 1.0, "c": 1.0}},
    "vanilla marked as calibration": lambda p: {**p, "weights": {"a": 1.0, "b": 0.0, "c": 0.0}},
    "negative b": lambda p: {**p, "weights": {**p["weights"], "b": -0.5}},
    "usable with reasons": lambda p: {**p, "reasons": ["it was not"]},
    "another collection": lambda p: {**p, "collection": "other"},
    "another feedback model": lambda p: {**p, "feedback": "someone-else"},
    "nan weight": lambda p: {**p, "weights": {**p["weights"], "c": math.nan}},
    "inf weight": lambda p: {**p, "weights": {**p["weights"], "a": math.inf}},
    "huge weight": lambda p: {**p, "weights": {**p["weights"], "c": 1e308}},
    "not an object": lambda p: "garbage",
    "missing field": lambda p: {k: v for k, v in p.items() if k != "signal"},
    "overflowing exponent": lambda p: {**p, "weights": {**p["weights"], "b": 60.0}},
    "negative query weight": lambda p: {**p, "weights": {**p["weights"], "a": -1.0}},
    "number as a string": lambda p: {**p, "weights": {**p["weights"], "b": "0.4"}},
    "boolean as a number": lambda p: {**p, "weights": {**p["weights"], "a": True}},
    "unknown field": lambda p: {**p, "served_by": "someone"},
    "negative feedback weight": lambda p: {**p, "weights": {**p["weights"], "c": -0.5}},
    "negative counts": lambda p: {**p, "points_count": -5, "query_count": -1},
    "not a number of seconds": lambda p: {**p, "seconds": math.nan},
}


def text(r) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(c.text for c in r.content if getattr(c, "text", None))


async def ids_through_every_tool(service: RFService, tmp_path: Path) -> None:
    """BEIR-style string ids, UUIDs and numbers: index, calibrate, both searches, seeds by doc id and point id."""
    docs = doubles.corpus(120)
    for i, d in enumerate(docs):  # BEIR-style strings, UUIDs and plain numbers
        d["_id"] = [f"doc-{i}", f"8c7e4c1a-{i:04d}-4e7b-9a0c-3f2d1e0b9a{i % 100:02d}", str(1000 + i)][i % 3]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    async with Client(build_server(service)) as client:
        assert not (r := await client.call_tool("index", {"collection": "ids", "input_path": str(corpus)})).is_error, text(r)
        r = await client.call_tool("calibrate", {"collection": "ids", "queries": doubles.queries(), "limit": 20,
                                                 "epochs": 100})
        assert not r.is_error, text(r)
        r = await client.call_tool("rf_search_precision", {"collection": "ids", "query": Q})
        assert not r.is_error, text(r)
        hits = r.structured_content["hits"]
        assert {type(h["id"]) for h in hits} <= {int, str} and all(h["doc_id"] for h in hits)
        for seed_ids in ([h["doc_id"] for h in hits[:3]], [h["id"] for h in hits[:3]],
                         [str(h["id"]) for h in hits[:3]]):  # doc_ids, point ids, numeric strings
            r = await client.call_tool("rf_search_recall", {"collection": "ids", "query": Q, "seed_ids": seed_ids,
                                                            "budget": 5})
            assert not r.is_error, (seed_ids, text(r))
            assert {h["doc_id"] for h in r.structured_content["hits"] if h["source"] == "seed"} == {
                h["doc_id"] for h in hits[:3]}
        # evaluate with judgments that name documents by those ids (a lexical truth: the top-overlap documents)
        held_out = doubles.queries(12, seed=7)
        lines = ["query-id\tcorpus-id\tscore"]
        for n, q in enumerate(held_out):
            ranked = sorted(docs, key=lambda d: -doubles.overlap(q, d["title"] + " " + d["text"]))[:5]
            lines += [f"q{n}\t{d['_id']}\t1" for d in ranked]
        qrels = tmp_path / "qrels.tsv"
        qrels.write_text("\n".join(lines) + "\n")
        r = await client.call_tool("evaluate", {"collection": "ids", "qrels_path": str(qrels),
                                                "queries": [{"id": f"q{n}", "text": q} for n, q in enumerate(held_out)]})
        assert not r.is_error, text(r)
        truth = r.structured_content["evaluation"]["ground_truth"]
        assert truth["queries"] == len(held_out)
        assert max(m["ndcg_at_10"] for m in truth["methods"]) > 0
