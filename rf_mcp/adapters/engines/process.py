"""An embedded engine in its own process, so engine work runs beside the server's Python work, on another core.

qdrant-edge-py holds Python's GIL while it searches, and the server's own work (protocol, domain, feedback scoring)
needs the GIL too: in one process the two take turns on one core. Here a child process (a fresh interpreter) owns the
engine and its folder (the folder lock moves with it); the server talks to it over a socket. The child answers one
call at a time, in order; the server side waits on the socket from its event loop (no thread per call).

Failure handling: an error the engine raises on purpose (an :class:`RFError`) comes back as the same class with the
same message; a child that dies fails the calls in flight with one :class:`EngineError` and is started again on the
next call (the folder lock dies with it). A child that cannot open its engine (a folder held by another process, a
corrupt folder) reports that error to the first call.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any, Literal

from rf_mcp import errors
from rf_mcp.config import QdrantSettings
from rf_mcp.errors import EngineError, RFError
from rf_mcp.ports import (
    CollectionInfo,
    CollectionSpec,
    Engine,
    Filter,
    Point,
    PointId,
    PointInput,
    QueryRequest,
)

log = logging.getLogger(__name__)
Opener = Callable[[QdrantSettings], Engine]
Reply = tuple[Any, ...]
START_TIMEOUT = 120.0
HELLO = 0


def _error_reply(call: int, exc: BaseException) -> Reply:
    if isinstance(exc, RFError):
        return call, "rf", type(exc).__name__, exc.problem, exc.fix
    return (call, "rf", "EngineError", f"The engine process failed: {type(exc).__name__}: {exc}"[:1000],
            "Retry; if it persists, restart the server.")


def serve_engine(conn: Connection, opener: Opener, settings: QdrantSettings) -> None:
    """The engine process's loop: open the engine, say hello (its location), then answer (call, method, args,
    kwargs) messages in order until "close" or the socket closes."""
    with asyncio.Runner() as runner:
        try:
            engine = opener(settings)
            inline = hasattr(engine, "run_inline")
            if inline:
                engine.run_inline = True  # type: ignore[attr-defined]  # nothing else runs here: no thread hop
            conn.send((HELLO, "ok", engine.location))
        except BaseException as exc:
            conn.send(_error_reply(HELLO, exc))
            return
        try:
            while True:
                try:
                    message = conn.recv()
                except EOFError:
                    break
                if message == "close":
                    break
                call, method, args, kwargs = message
                try:
                    reply: Reply = (call, "ok", _complete(runner, getattr(engine, method)(*args, **kwargs), inline))
                except Exception as exc:  # every failure goes back to its caller
                    reply = _error_reply(call, exc)
                conn.send(reply)
        finally:
            runner.run(engine.close())  # on the loop: closing may hop to a thread (qdrant-client's local mode does)


def _complete(runner: asyncio.Runner, coro: Any, inline: bool) -> Any:
    """Run an engine coroutine: stepped directly when the engine runs inline (its calls never suspend: no event-loop
    round per call), else on the event loop."""
    if not inline:
        return runner.run(coro)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise EngineError("An inline engine call suspended.", fix="Report this as a bug; set [qdrant] engine_process = "
                                                             '"off" meanwhile.')


def child_main() -> None:
    """Entry point of the engine process: ``python -c ... FD MODULE:FUNCTION``, the settings as JSON on stdin."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    fd, target = int(sys.argv[1]), sys.argv[2]
    module, _, name = target.partition(":")
    opener = getattr(importlib.import_module(module), name)
    settings = QdrantSettings.model_validate_json(sys.stdin.buffer.read())
    serve_engine(Connection(fd), opener, settings)


def _raise(reply: Reply) -> Any:
    if reply[1] == "ok":
        return reply[2]
    cls = getattr(errors, str(reply[2]), EngineError)
    if not (isinstance(cls, type) and issubclass(cls, RFError)):
        cls = EngineError
    raise cls(reply[3], fix=reply[4])


class ProcessEngine(Engine):
    """The engine ``opener(settings)`` opens, run in a child process (``opener`` is imported there by name)."""

    def __init__(self, settings: QdrantSettings, opener: Opener) -> None:
        self.settings = settings
        self.opener = opener
        self._conn: Connection | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._location: str | None = None
        self._lock = threading.Lock()  # starting and losing the child
        self._futures: dict[int, asyncio.Future[Reply]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop watching the socket
        self._ids = itertools.count(1)
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    # -- the child ----------------------------------------------------------------------------------------------
    def _ensure(self) -> Connection:
        """The socket to the engine process, started on first use: a fresh interpreter that inherits nothing but the
        socket (its stdout is this process's stderr: never a protocol channel)."""
        with self._lock:
            if self._conn is not None:
                return self._conn
            ours, theirs = socket.socketpair()
            code = "from rf_mcp.adapters.engines.process import child_main; child_main()"
            target = f"{self.opener.__module__}:{self.opener.__qualname__}"
            process = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno()), target],
                                       stdin=subprocess.PIPE, stdout=sys.stderr.fileno(), pass_fds=[theirs.fileno()])
            theirs.close()
            assert process.stdin is not None
            process.stdin.write(self.settings.model_dump_json().encode())
            process.stdin.close()
            conn = Connection(ours.detach())
            try:
                if not conn.poll(START_TIMEOUT):
                    raise EngineError("The engine process did not start in time.", fix="See the server's log.")
                self._location = str(_raise(conn.recv()))
            except (EOFError, OSError):
                process.wait(30)
                conn.close()
                raise EngineError(f"The engine process exited at start (status {process.returncode}).",
                                  fix="See the server's log.") from None
            except RFError:
                process.wait(30)
                conn.close()
                raise
            self._conn, self._process = conn, process
            outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
            self._outbox = outbox
            threading.Thread(target=self._send_all, args=(conn, outbox), daemon=True, name="rf-mcp-engine-send").start()
            return conn

    def _send_all(self, conn: Connection, outbox: queue.SimpleQueue[Any]) -> None:
        """Write requests from one thread: a send that waits for the child (a full socket) never holds up the event
        loop, which keeps reading replies (else both sides could wait on each other's full socket)."""
        while True:
            message = outbox.get()
            if message is None:
                return
            try:
                conn.send(message)
            except (OSError, ValueError, TypeError):  # TypeError: the connection was closed under a send in progress
                return  # the reading side sees the socket close and fails the calls in flight

    def _watch(self, conn: Connection) -> None:
        """Route replies to their callers from this event loop (a new loop, e.g. another anyio.run, takes over)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(conn.fileno())
        loop.add_reader(conn.fileno(), self._readable, conn)
        self._loop = loop

    def _readable(self, conn: Connection) -> None:
        try:
            while conn.poll(0):
                reply = conn.recv()
                future = self._futures.pop(reply[0], None)
                if future is not None and not future.done():
                    future.set_result(reply)
        except (EOFError, OSError):
            self._lost(conn)

    def _lost(self, conn: Connection) -> None:
        """The child went away: fail every call in flight; the next call starts a new one."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(conn.fileno())
        self._loop = None
        process = None
        with self._lock:
            if self._conn is conn:
                process = self._process
                self._conn, self._process = None, None
                self._outbox.put(None)
        conn.close()
        if process is not None:  # gone or going: reap it (a child holding the folder must not linger)
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        for call in list(self._futures):
            future = self._futures.pop(call)
            if not future.done():
                future.set_result((call, "rf", "EngineError", "The engine process stopped.",
                                   "Retry: the next call starts it again; the server's log says why it stopped."))
        log.error("the engine process stopped; it starts again on the next call")

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        process, conn_ = self._process, self._conn
        if process is not None and conn_ is not None and process.poll() is not None:
            self._lost(conn_)  # it died while idle (not yet noticed): start a new one rather than fail this call
        conn = self._conn if self._conn is not None else await asyncio.to_thread(self._ensure)  # a start takes seconds
        self._watch(conn)
        call = next(self._ids)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._futures[call] = future
        self._outbox.put((call, method, args, kwargs))
        try:
            return _raise(await future)
        finally:
            self._futures.pop(call, None)

    @property
    def location(self) -> str:
        self._ensure()
        return f"{self._location} (engine process)"

    async def close(self) -> None:
        with self._lock:
            conn, process = self._conn, self._process
            self._conn = self._process = None
        if conn is None or process is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(conn.fileno())
        self._loop = None
        self._outbox.put("close")
        self._outbox.put(None)
        try:
            await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.terminate()
        conn.close()

    # -- the engine port ----------------------------------------------------------------------------------------
    async def list_collections(self) -> list[str]:
        return await self._call("list_collections")  # type: ignore[no-any-return]

    async def exists(self, collection: str) -> bool:
        return await self._call("exists", collection)  # type: ignore[no-any-return]

    async def describe(self, collection: str) -> CollectionInfo:
        return await self._call("describe", collection)  # type: ignore[no-any-return]

    async def create_collection(self, collection: str, spec: CollectionSpec) -> None:
        await self._call("create_collection", collection, spec)

    async def add_sparse_vector(self, collection: str, name: str) -> None:
        await self._call("add_sparse_vector", collection, name)

    async def upsert(self, collection: str, points: Sequence[PointInput]) -> None:
        await self._call("upsert", collection, list(points))

    async def update_vectors(self, collection: str, points: Sequence[PointInput]) -> None:
        await self._call("update_vectors", collection, list(points))

    async def count(self, collection: str) -> int:
        return await self._call("count", collection)  # type: ignore[no-any-return]

    async def query(self, collection: str, request: QueryRequest) -> list[Point]:
        return await self._call("query", collection, request)  # type: ignore[no-any-return]

    async def retrieve(self, collection: str, ids: Sequence[PointId], *, with_vector: str | None = None) -> list[Point]:
        return await self._call("retrieve", collection, list(ids), with_vector=with_vector)  # type: ignore[no-any-return]

    async def scroll(self, collection: str, *, offset: PointId | None = None, limit: int = 256,
                     with_vector: str | None = None, filter: Filter | None = None) -> tuple[list[Point], PointId | None]:
        return await self._call("scroll", collection, offset=offset, limit=limit,  # type: ignore[no-any-return]
                                with_vector=with_vector, filter=filter)

    async def create_payload_index(self, collection: str, key: str,
                                   schema: Literal["keyword", "integer", "float", "bool"]) -> None:
        await self._call("create_payload_index", collection, key, schema)

    async def optimize(self, collection: str) -> bool:
        return await self._call("optimize", collection)  # type: ignore[no-any-return]

    async def get_metadata(self, collection: str) -> dict[str, Any]:
        return await self._call("get_metadata", collection)  # type: ignore[no-any-return]

    async def set_metadata(self, collection: str, entries: dict[str, Any]) -> None:
        await self._call("set_metadata", collection, entries)
