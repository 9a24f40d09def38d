"""``rf-mcp`` command line: the same service methods as the MCP tools.

Every command prints one JSON document to stdout with ``--json``, human text otherwise. Progress goes to stderr.
Exit codes: 0 ok, 1 error, 2 bad config or input, 3 refused by a guardrail, 4 Qdrant error, 5 model error,
70 internal error. Heavy libraries are imported by the command that needs them, so ``--help``, ``--version`` and
``serve`` start quickly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rf_mcp import __version__
from rf_mcp.errors import InputError, RFError

if TYPE_CHECKING:
    from rf_mcp.domain.service import RFService

FUSIONS = ["none", "sparse"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rf-mcp", description="Calibrated Qdrant Relevance Feedback: CLI and MCP server.")
    p.add_argument("--version", action="version", version=f"rf-mcp {__version__}")
    p.add_argument("--config", help="TOML config file (default: $RF_MCP_CONFIG, else built-in defaults).")
    p.add_argument("--json", action="store_true", help="Print one JSON document to stdout.")
    p.add_argument("--debug", action="store_true", help="Show tracebacks of internal errors.")
    sub = p.add_subparsers(dest="command", required=True)

    def coll(sp: argparse.ArgumentParser, *, fusion: bool = True) -> None:
        sp.add_argument("--collection", "-c", help="The collection (default: [collection].default_collection).")
        sp.add_argument("--vector-name", default=None, help='Dense vector to use ("" = unnamed default).')
        if fusion:
            sp.add_argument("--fusion", choices=FUSIONS, help="Fuse with BM25 sparse search (default: the config's).")

    sp = sub.add_parser("demo", help="Index the bundled demo corpus, calibrate, evaluate and search it (a tour).")
    sp.add_argument("--collection", "-c", default="demo")

    sp = sub.add_parser("index", help="Embed a JSONL corpus with the retriever and upsert it (idempotent).")
    coll(sp, fusion=False)
    sp.add_argument("--input", "-i", help="JSONL corpus (BEIR layout: _id, title, text).")
    sp.add_argument("--vectors", help="Precomputed retriever vectors (.npy, one row per corpus line): no embedding.")
    sp.add_argument("--sparse-only", action="store_true",
                    help="Only (re)write the BM25 sparse vectors from the points' payload text (no --input).")

    def query_source(sp: argparse.ArgumentParser) -> None:
        group = sp.add_mutually_exclusive_group(required=True)
        group.add_argument("--queries", "-q", help="Queries: JSONL (_id, text) or one per line.")
        group.add_argument("--from-query-log", action="store_true", help="Use the queries the server logged.")
        sp.add_argument("--ids-from", help="Keep only queries whose ids appear in this qrels TSV.")
        sp.add_argument("--max-queries", type=int, help="Use at most this many queries (file order).")

    sp = sub.add_parser("calibrate", help="Learn the RF formula weights a, b, c and store them in the collection.")
    coll(sp)
    query_source(sp)
    from rf_mcp.ports import TrainSettings

    for name, field in TrainSettings.model_fields.items():
        sp.add_argument(f"--{name.replace('_', '-')}", type=type(field.default), default=None,
                        help=f"{field.description or name} (default {field.default}).")
    sp.add_argument("--max-feedback-scores", type=int, help="Refuse if queries x limit exceeds this (cost cap).")

    sp = sub.add_parser("evaluate", help="Evaluate the calibrated formula on held-out queries.")
    coll(sp)
    query_source(sp)
    sp.add_argument("--qrels", help="BEIR qrels TSV: adds nDCG/recall and the ground-truth gate.")
    sp.add_argument("--at-n", type=int, default=10)
    sp.add_argument("--eval-context-limit", type=int, default=3)
    sp.add_argument("--no-store", action="store_true", help="Report only: do not store the verdict in the profile.")

    sp = sub.add_parser("search", help="RF search: precision (top results) or recall (find what ANN missed).")
    coll(sp)
    sp.add_argument("query")
    sp.add_argument("--mode", choices=["precision", "recall"], default="precision")
    sp.add_argument("--limit", type=int)
    sp.add_argument("--seeds", type=int)
    sp.add_argument("--budget", type=int, help="recall: RF results to score (cost = seeds + budget).")
    sp.add_argument("--seed-ids", nargs="+", help="recall: point ids or doc_ids to use as seeds instead of the top.")
    sp.add_argument("--vanilla", action="store_true", help="precision: no feedback (plain, or hybrid with fusion).")
    sp.add_argument("--filter", help='Payload filter as JSON, e.g. \'{"must": [{"key": "year", "range": {"gte": 2010}}]}\'.')
    sp.add_argument("--exact", action="store_true", default=None, help="Exact search, without the HNSW index.")
    sp.add_argument("--hnsw-ef", type=int, help="HNSW search breadth (default: chosen from the collection and feedback).")

    sp = sub.add_parser("profiles", help="List collections' calibration profiles.")
    sp.add_argument("--collection", "-c")

    sp = sub.add_parser("rollback", help="Swap the current and the previous calibration of the configured setup.")
    coll(sp)

    sp = sub.add_parser("optimize", help="Build the HNSW index of an embedded (edge) collection now.")
    coll(sp, fusion=False)

    sp = sub.add_parser("migrate", help="Copy a collection and its calibration profiles to a Qdrant server or folder.")
    coll(sp, fusion=False)
    sp.add_argument("--to", required=True, help="Target: a Qdrant URL (http://...) or an embedded folder path.")
    sp.add_argument("--to-backend", choices=["local", "edge"], default="edge", help="For a folder target.")
    sp.add_argument("--to-api-key-env", default="QDRANT_API_KEY", help="Environment variable with the target's API key.")

    sp = sub.add_parser("serve", help="Run the MCP server.")
    sp.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--read-only", action="store_true",
                    help="Nothing a client calls changes stored data: no index, calibrate or rollback tools, and "
                         "evaluate reports without storing (also RF_MCP_READ_ONLY=1).")
    sp.add_argument("--allow-remote", action="store_true",
                    help="Allow binding a non-loopback address (needs a bearer token, and --allowed-host for 0.0.0.0).")
    sp.add_argument("--auth-token-env", help="Environment variable holding the bearer token HTTP clients must send "
                                             "(default: RF_MCP_AUTH_TOKEN, if set).")
    sp.add_argument("--allowed-host", action="append", default=[],
                    help="Host header value clients use to reach the server (e.g. mcp.example.com:443); repeatable.")
    sp.add_argument("--insecure-no-auth", action="store_true",
                    help="Serve a non-loopback address WITHOUT authentication (anyone who reaches it can use every tool).")
    return p


async def _progress(done: float, total: float, message: str) -> None:
    """A one-line progress display on a terminal; a line per 10% otherwise (logs)."""
    if sys.stderr.isatty():
        print(f"\r[{done:.0f}/{total:.0f}] {message}", end="" if done < total else "\n", file=sys.stderr, flush=True)
    elif done == total or int(10 * done / total) != int(10 * (done - 1) / total):
        print(f"[{done:.0f}/{total:.0f}] {message}", file=sys.stderr, flush=True)


def _query_ids(args: argparse.Namespace) -> set[str] | None:
    from rf_mcp.domain.datasets import read_qrels

    return set(read_qrels(args.ids_from)) if args.ids_from else None


def _filter(text: str | None) -> Any:
    if not text:
        return None
    from pydantic import ValidationError

    from rf_mcp.ports import Filter

    try:
        return Filter.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "filter"
        raise InputError(f"Invalid --filter at {where}: {first['msg']}.",
                         fix='Use Qdrant\'s filter JSON: {"must": [{"key": "year", "range": {"gte": 2010}}]}.') from None


async def _command(rf: RFService, args: argparse.Namespace) -> Any:
    c = args.command
    if c == "demo":
        from rf_mcp.demo import run_demo

        print(f"rf-mcp demo: data in {rf.engine.location}; config: {rf.config.shown_source}; "
              f"retriever {rf.config.retriever.model}, feedback {rf.config.feedback.type}", file=sys.stderr, flush=True)
        return await run_demo(rf, args.collection, progress=_progress)
    if c == "index":
        return await rf.index(args.collection, args.input, vector_name=args.vector_name, vectors_path=args.vectors,
                              progress=_progress, build_index=True, sparse_only=args.sparse_only)
    if c == "optimize":
        return await rf.optimize(args.collection)
    if c == "calibrate":
        from rf_mcp.ports import TrainSettings

        given = {k: getattr(args, k) for k in TrainSettings.model_fields if getattr(args, k) is not None}
        return await rf.calibrate(args.collection, None, TrainSettings(**given), queries_path=args.queries,
                                  from_query_log=args.from_query_log, max_queries=args.max_queries,
                                  query_ids=_query_ids(args), vector_name=args.vector_name, fusion=args.fusion,
                                  progress=_progress, max_feedback_scores=args.max_feedback_scores)
    if c == "evaluate":
        return await rf.evaluate(args.collection, queries_path=args.queries, from_query_log=args.from_query_log,
                                 qrels_path=args.qrels, max_queries=args.max_queries, query_ids=_query_ids(args),
                                 at_n=args.at_n, eval_context_limit=args.eval_context_limit,
                                 vector_name=args.vector_name, fusion=args.fusion, store=False if args.no_store else None,
                                 progress=_progress)
    if c == "search":
        flt = _filter(args.filter)
        if args.mode == "precision":
            return await rf.search_precision(args.collection, args.query, limit=args.limit, seeds=args.seeds,
                                             vanilla=args.vanilla, fusion=args.fusion, filter=flt,
                                             vector_name=args.vector_name, exact=args.exact, hnsw_ef=args.hnsw_ef)
        return await rf.search_recall(args.collection, args.query, budget=args.budget, limit=args.limit,
                                      seeds=args.seeds, seed_ids=args.seed_ids, fusion=args.fusion, filter=flt,
                                      vector_name=args.vector_name, exact=args.exact, hnsw_ef=args.hnsw_ef)
    if c == "profiles":
        return await rf.list_profiles(args.collection)
    if c == "rollback":
        return await rf.rollback(args.collection, args.vector_name, fusion=args.fusion)
    if c == "migrate":
        from rf_mcp.config import QdrantSettings, env_secret

        if args.to.startswith(("http://", "https://")):
            to = QdrantSettings(url=args.to, api_key=env_secret(args.to_api_key_env))
        else:
            to = QdrantSettings(path=args.to, backend=args.to_backend)
        return await rf.migrate(args.collection, to, vector_name=args.vector_name, progress=_progress)
    raise AssertionError(c)


async def _run(args: argparse.Namespace) -> Any:
    from rf_mcp.config import load_config

    config = load_config(args.config)
    if args.command == "serve":
        from rf_mcp.server.app import ServeOptions, serve

        await serve(config, ServeOptions(transport=args.transport, host=args.host, port=args.port,
                                         read_only=args.read_only, allow_remote=args.allow_remote,
                                         insecure_no_auth=args.insecure_no_auth, auth_token_env=args.auth_token_env,
                                         allowed_hosts=tuple(args.allowed_host)))
        return None
    from rf_mcp.domain.service import RFService

    async with RFService(config) as rf:
        return await _command(rf, args)


def _dump(result: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if isinstance(result, list):
        return [_dump(r) for r in result]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import anyio

    try:
        result = anyio.run(_run, args)
    except RFError as exc:
        if args.json and args.command != "serve":  # serve's stdout may be the stdio protocol channel: stderr only
            print(json.dumps({"error": {"code": exc.code, "message": exc.problem, "fix": exc.fix}}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, not a traceback, unless --debug
        if args.debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details; please report it)",
              file=sys.stderr)
        return 70
    if result is None:
        return 0
    if args.json:
        print(json.dumps(_dump(result), indent=2))
    else:
        from rf_mcp.text import render_text

        print(render_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
