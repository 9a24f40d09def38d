"""The stdio transport: stdout carries protocol messages only, and every request gets an answer.

The SDK's own reader drops a line it cannot validate (``jsonrpc: "1.0"``, ``params: []``, a lone surrogate...) and
the client then waits forever. This reader answers such a line itself, with a JSON-RPC error for its id, whenever
the line has a usable id; the real stdout is kept for the protocol and everything else written to fd 1 goes to
stderr for the whole run.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from io import TextIOWrapper
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import ObjectReceiveStream, ObjectSendStream
from mcp.shared.message import SessionMessage

MAX_LINE = 16 * 1024 * 1024  # a request line beyond this is refused (16 MiB of JSON)


def protect_stdio() -> tuple[TextIOWrapper, TextIOWrapper]:
    """Keep the real stdin and stdout for the protocol only: fd 1 (and ``sys.stdout``) point at stderr and fd 0 at
    the null device for the whole run, so no print, library or child process can touch the wire."""
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = sys.stderr
    return (TextIOWrapper(os.fdopen(protocol_in, "rb"), encoding="utf-8", errors="surrogateescape"),
            TextIOWrapper(os.fdopen(protocol_out, "wb", buffering=0), encoding="utf-8", errors="backslashreplace",
                          write_through=True))


def _invalid(rid: Any, problem: str) -> types.JSONRPCError:
    return types.JSONRPCError(jsonrpc="2.0", id=rid, error=types.ErrorData(
        code=types.INVALID_REQUEST, message=f"Invalid request: {problem}."))


def error_replies(line: str) -> list[types.JSONRPCError]:
    """JSON-RPC errors for a line the SDK could not take: one per request in it that a client may be waiting on."""
    try:
        data: Any = json.loads(line, parse_int=_bounded_int)
    except RecursionError:  # nested too deep to parse: the id is read from the top level without parsing the rest
        rid = _usable_id({"id": _top_level_id(line)})
        return [] if rid is None else [_invalid(rid, "the JSON is nested too deeply")]
    except ValueError:
        return []
    if isinstance(data, list):  # MCP has no batches (removed in 2025-06-18): answer each request in it
        return [_invalid(rid, "batches are not supported: send one request per line")
                for item in data if isinstance(item, dict) and "method" in item and (rid := _usable_id(item)) is not None]
    if not isinstance(data, dict) or "method" not in data:
        return []  # a broken response or notification: nobody waits for an answer
    rid = _usable_id(data)
    if "id" in data and (isinstance(data["id"], bool) or not isinstance(data["id"], int | str)):
        return [_invalid(rid, "the id must be a string or an integer")]  # rid: 8 for 8.0, else null
    if rid is None:
        return []
    problem = "jsonrpc must be \"2.0\"" if data.get("jsonrpc") != "2.0" else "params must be an object" if not isinstance(
        data.get("params", {}), dict) else "the request does not match the MCP schema"
    return [_invalid(rid, problem)]


def _bounded_int(digits: str) -> int | float:
    """JSON integers as Python reads them, except those past its 4300-digit limit (never an id MCP allows)."""
    return int(digits) if len(digits) <= 4000 else math.inf


def _usable_id(request: dict[str, Any]) -> int | str | None:
    """The request's id as MCP allows it (a string or an integer; 8.0 is 8), else None."""
    rid = request.get("id")
    if isinstance(rid, float) and rid.is_integer() and abs(rid) < 2**53:
        return int(rid)
    if isinstance(rid, bool) or not isinstance(rid, int | str):
        return None
    return rid.encode("utf-8", "replace").decode("utf-8") if isinstance(rid, str) else rid


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]|[^\s\[\]{}:,"]+')
TOP_LEVEL_SCAN = 1024 * 1024
"""How much of a line the id scan reads (an id past the first MiB of an unparseable line is not found)."""


def _top_level_id(line: str) -> Any:
    """The value of the "id" key of the line's top-level object, read token by token without parsing the rest
    (for lines too deep or too long to parse); None when there is none or it is not a plain JSON value."""
    depth, expect_value, key = 0, False, None
    for m in _TOKEN.finditer(line, 0, min(len(line), TOP_LEVEL_SCAN)):
        tok = m.group()
        if tok in "[{":
            depth += 1
        elif tok in "]}":
            depth -= 1
        elif depth == 1 and tok == ":":
            expect_value = key == '"id"'
            continue
        elif depth == 1 and expect_value:
            try:
                return json.loads(tok, parse_int=_bounded_int)
            except ValueError:
                return None
        elif depth == 1 and tok != ",":
            key = tok
            continue
        expect_value = False
    return None


def too_large(line: str) -> types.JSONRPCError:
    """The error for a request line over :data:`MAX_LINE` (its id read from the line's top level, else null)."""
    return _invalid(_usable_id({"id": _top_level_id(line)}), f"the line exceeds {MAX_LINE // 1024**2} MiB")


@asynccontextmanager
async def stdio_transport(protocol_in: TextIOWrapper, protocol_out: TextIOWrapper) -> AsyncIterator[
        tuple[ObjectReceiveStream[SessionMessage | Exception], ObjectSendStream[SessionMessage]]]:
    stdin = anyio.wrap_file(protocol_in)
    stdout = anyio.wrap_file(protocol_out)
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
    lock = anyio.Lock()

    async def emit(message: Any) -> None:
        text = message.model_dump_json(by_alias=True, exclude_unset=True)
        async with lock:
            await stdout.write(text + "\n")
            await stdout.flush()

    async def reader() -> None:
        async with read_writer:
            async for line in stdin:
                if not line.strip():
                    continue
                if len(line) > MAX_LINE:  # not parsed: answered with the id read from its head, if any
                    await emit(too_large(line))
                    continue
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                    if isinstance(message, types.JSONRPCNotification) and '"id"' in line and "id" in json.loads(line):
                        raise ValueError("a request whose id is not a string or an integer reads as a notification")
                except Exception:
                    for reply in error_replies(line):
                        await emit(reply)
                    continue
                await read_writer.send(SessionMessage(message))

    async def writer() -> None:
        async with write_reader:
            async for session_message in write_reader:
                await emit(session_message.message)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        try:
            yield read_stream, write_stream
        finally:
            tg.cancel_scope.cancel()
