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
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rf_mcp import __version__
from rf_mcp.errors import RFError

if TYPE_CHECKING:
    from rf_mcp.domain.service import RFService

ALIASES = {"collection": ["-c"], "input_path": ["--input", "-i"], "vectors_path": ["--vectors"],
           "queries_path": ["--queries", "-q"], "qrels_path": ["--qrels"]}
"""Short and historical spellings of some flags (each field's own flag, ``--field-name``, always works)."""
CLI_ONLY = {"query_ids"}
"""Request fields the CLI fills from its own flags (``--ids-from`` reads the ids from a qrels file)."""


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``None`` and ``Annotated``, and whether it is a list."""
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)] if typing.get_origin(annotation) in (
        typing.Union, types.UnionType) else [annotation]
    tp = args[0] if len(args) == 1 else str  # int | str (seed ids): strings, the model decides
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) is list:
        return _unwrap(typing.get_args(tp)[0])[0], True
    return tp, False


def add_request_flags(sp: argparse.ArgumentParser, model: Any, *, positional: Sequence[str] = (),
                      seen: set[str] | None = None) -> None:
    """One flag per field of a request model (its description as help; omitted: the model's default)."""
    import typing

    from rf_mcp.domain.requests import description, surfaces

    seen = set() if seen is None else seen
    for name, field in model.model_fields.items():
        if not surfaces(field).cli or name in CLI_ONLY or name in seen:
            continue
        seen.add(name)
        tp, many = _unwrap(field.annotation)
        options: dict[str, Any] = {"help": description(field), "default": None}
        if name in positional:
            sp.add_argument(name, **options)
            continue
        flags = [f"--{name.replace('_', '-')}", *ALIASES.get(name, [])]
        if tp is bool:
            options["action"] = argparse.BooleanOptionalAction if field.default is None else "store_true"
        elif typing.get_origin(tp) is typing.Literal:
            options["choices"] = list(typing.get_args(tp))
        elif tp in (int, float):
            options["type"] = tp
        elif (isinstance(tp, type) and issubclass(tp, dict | list)) or getattr(tp, "model_json_schema", None):
            options["type"] = _json  # a filter: JSON on the command line, validated by the model
        if many:
            options["nargs"] = "+"
        sp.add_argument(*flags, dest=name, **options)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not valid JSON") from None


def request_of(model: Any, args: argparse.Namespace, **extra: Any) -> Any:
    """The request the parsed flags describe (validated by the model: the same messages as every surface)."""
    from rf_mcp.domain.requests import parse

    given = {name: getattr(args, name) for name in model.model_fields if getattr(args, name, None) is not None}
    return parse(model, {**given, **{k: v for k, v in extra.items() if v is not None}})


DISTRIBUTION = "mcp-server-qdrant-rf"
"""The name on PyPI, and the console script that runs the stdio server when given no command."""


def _global_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (default: $RF_MCP_CONFIG, else built-in defaults).")
    p.add_argument("--json", action="store_true", help="Print one JSON document to stdout.")
    p.add_argument("--debug", action="store_true", help="Show tracebacks of internal errors.")


def _parser(prog: str = "rf-mcp") -> argparse.ArgumentParser:
    from rf_mcp.domain import requests as r

    p = argparse.ArgumentParser(prog=prog, description="Calibrated Qdrant Relevance Feedback: CLI and MCP server.")
    p.add_argument("--version", action="version", version=f"rf-mcp {__version__}")
    _global_flags(p)
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("demo", help="Index the bundled demo corpus, calibrate, evaluate and search it (a tour).")
    sp.add_argument("--collection", "-c", default="rf-demo",
                    help="The demo's own collection (default rf-demo); one it did not create is refused.")

    sp = sub.add_parser("index", help="Embed a JSONL corpus with the retriever and upsert it (idempotent).")
    add_request_flags(sp, r.IndexRequest)

    sp = sub.add_parser("calibrate", help="Learn the RF formula weights a, b, c and store them in the collection.")
    add_request_flags(sp, r.CalibrateRequest)
    sp.add_argument("--ids-from", help="Keep only queries whose ids appear in this qrels TSV.")

    sp = sub.add_parser("evaluate", help="Evaluate the calibrated formula on held-out queries.")
    add_request_flags(sp, r.EvaluateRequest)
    sp.add_argument("--ids-from", help="Keep only queries whose ids appear in this qrels TSV.")

    sp = sub.add_parser("search", help="RF search: precision (top results) or recall (find what ANN missed).")
    sp.add_argument("--mode", choices=["precision", "recall"], default="precision")
    seen: set[str] = set()
    add_request_flags(sp, r.PrecisionRequest, positional=["query"], seen=seen)
    add_request_flags(sp, r.RecallRequest, seen=seen)

    sp = sub.add_parser("rf_search_precision", help="RF search for precise top results (search --mode precision).")
    add_request_flags(sp, r.PrecisionRequest, positional=["query"])
    sp.set_defaults(mode="precision")

    sp = sub.add_parser("rf_search_recall", help="RF search for what ANN missed (search --mode recall).")
    add_request_flags(sp, r.RecallRequest, positional=["query"])
    sp.set_defaults(mode="recall")

    sp = sub.add_parser("list_collections", help="List collections: vectors, point counts, calibration profiles.")
    add_request_flags(sp, r.CollectionsRequest)

    sp = sub.add_parser("profiles", help="List collections' calibration profiles.")
    add_request_flags(sp, r.CollectionsRequest)

    sp = sub.add_parser("rollback_calibration", aliases=["rollback"],
                        help="Swap the current and the previous calibration of the configured setup.")
    add_request_flags(sp, r.RollbackRequest)
    sp.set_defaults(command="rollback_calibration")

    sp = sub.add_parser("add_documents", aliases=["add-documents"],
                        help="Add or replace (by id) up to 100 documents given as JSON objects {id, text, title?, "
                             "metadata?}.")
    add_request_flags(sp, r.AddDocumentsRequest)
    sp.add_argument("--documents-file", help="JSONL file, one document object per line (instead of --documents).")
    sp.set_defaults(command="add_documents")

    sp = sub.add_parser("delete_documents", aliases=["delete-documents"],
                        help="Delete up to 100 documents by doc_id or point id.")
    add_request_flags(sp, r.DeleteDocumentsRequest)
    sp.set_defaults(command="delete_documents")

    sp = sub.add_parser("optimize", help="Build the HNSW index of an embedded (edge) collection now.")
    add_request_flags(sp, r.TargetArgs)

    sp = sub.add_parser("migrate", help="Copy a collection and its calibration profiles to a Qdrant server or folder.")
    add_request_flags(sp, r.TargetArgs)
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


def _query_ids(args: argparse.Namespace) -> list[str] | None:
    from rf_mcp.domain.datasets import read_qrels

    return sorted(read_qrels(args.ids_from)) if args.ids_from else None


def _documents_file(path: str | None) -> list[Any] | None:
    """The documents of a JSONL file (one object per line), for add_documents."""
    from rf_mcp.domain.datasets import read_jsonl

    return None if path is None else [obj for _, obj in read_jsonl(path, "documents")]


async def _command(rf: RFService, args: argparse.Namespace) -> Any:
    from rf_mcp.domain import requests as r

    c = args.command
    if c == "demo":
        from rf_mcp.demo import run_demo

        print(f"rf-mcp demo: data in {rf.engine.location}; config: {rf.config.shown_source}; "
              f"retriever {rf.config.retriever.model}, feedback {rf.config.feedback.type}", file=sys.stderr, flush=True)
        return await run_demo(rf, args.collection, progress=_progress)
    if c == "index":
        return await rf.run_index(request_of(r.IndexRequest, args, build_index=True), _progress)
    if c == "optimize":
        return await rf.optimize(args.collection)
    if c == "calibrate":
        return await rf.run_calibrate(request_of(r.CalibrateRequest, args, query_ids=_query_ids(args)), _progress)
    if c == "evaluate":
        return await rf.run_evaluate(request_of(r.EvaluateRequest, args, query_ids=_query_ids(args)), _progress)
    if c in ("search", "rf_search_precision", "rf_search_recall"):
        return await rf.search(request_of(r.PrecisionRequest if args.mode == "precision" else r.RecallRequest, args))
    if c == "list_collections":
        return await rf.overview(request_of(r.CollectionsRequest, args).collection)
    if c == "profiles":
        return await rf.list_profiles(request_of(r.CollectionsRequest, args).collection)
    if c == "rollback_calibration":
        return await rf.run_rollback(request_of(r.RollbackRequest, args))
    if c == "add_documents":
        if args.documents is not None and args.documents_file is not None:
            from rf_mcp.errors import InputError

            raise InputError("Both --documents and --documents-file were given.", fix="Give one of them.")
        return await rf.run_add_documents(request_of(r.AddDocumentsRequest, args,
                                                     documents=_documents_file(args.documents_file)))
    if c == "delete_documents":
        return await rf.run_delete_documents(request_of(r.DeleteDocumentsRequest, args))
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
    from rf_mcp.bootstrap import open_service
    from rf_mcp.config import one_thread_per_request

    if args.command in ("calibrate", "evaluate", "search"):  # one query embedding per call: one thread per call
        config = one_thread_per_request(config)
    async with open_service(config) as rf:
        return await _command(rf, args)


def _dump(result: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if isinstance(result, list):
        return [_dump(r) for r in result]
    return result


def server_argv(argv: Sequence[str]) -> list[str]:
    """``mcp-server-qdrant-rf [--config FILE] [--debug]`` (no command) is ``rf-mcp [...] serve``: the stdio server."""
    pre = argparse.ArgumentParser(add_help=False)
    _global_flags(pre)
    _, rest = pre.parse_known_args(list(argv))
    return [*argv, "serve"] if not rest else list(argv)


def server_main(argv: Sequence[str] | None = None) -> int:
    """The ``mcp-server-qdrant-rf`` console script (``uvx mcp-server-qdrant-rf``): the stdio MCP server without a
    command, the CLI with one."""
    return main(server_argv(sys.argv[1:] if argv is None else argv), prog=DISTRIBUTION)


def main(argv: Sequence[str] | None = None, prog: str = "rf-mcp") -> int:
    args = _parser(prog).parse_args(argv)
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
