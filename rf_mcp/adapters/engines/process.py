"""An embedded engine in its own process, so engine work runs beside the server's Python work, on another core.

qdrant-edge-py holds Python's GIL while it searches, and the server's own work (protocol, domain, feedback scoring)
needs the GIL too: in one process the two take turns on one core. Here a child process owns the engine and its
folder (the folder lock moves with it): a one-worker ``ProcessPoolExecutor`` (a fresh interpreter, "spawn") whose
initializer opens the engine once; each port call is one submitted function that runs the engine's coroutine on the
worker's event loop. The child answers one call at a time, in order.

Failure handling: an error the engine raises on purpose (an :class:`RFError`) comes back as the same class with the
same message and fix; anything else becomes an :class:`EngineError`. A child that cannot open its engine (a folder
held by another process, a corrupt folder) reports that error to the first call. A child that dies fails the calls in
flight with one :class:`EngineError` and is started again on the next call (the folder lock dies with it). Every call
has a deadline, ``[qdrant] timeout``: a child that has answered nothing since the call was sent is killed and replaced
before the next call. The child leaves when its parent dies (between calls), and its stdout is its stderr: this
process's stdout may be the stdio protocol channel. As with any "spawn" child, the main script is imported in the
child: a script that opens an engine process runs its code under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection, wait
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
BUILD_DEADLINE = 3600.0
"""The deadline of ``optimize`` (building the HNSW index: 169 s at 1M points in benchmarks/LATENCY.md), which the
interactive ``[qdrant] timeout`` would cut short, killing the child in the middle of its writes."""
Opener = Callable[[QdrantSettings], Engine]
Reply = tuple[Any, ...]  # ("ok", value) or ("rf", class name, problem, fix): plain data, always picklable
START_TIMEOUT = 120.0  # seconds for a child to start and open its engine
PARENT_CHECK = 0.25  # seconds between the child's checks that its parent is alive
KILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL; os.kill terminates there


def _error_reply(exc: BaseException) -> Reply:
    if isinstance(exc, RFError):
        return "rf", type(exc).__name__, exc.problem, exc.fix
    return ("rf", "EngineError", f"The engine process failed: {type(exc).__name__}: {exc}"[:1000],
            "Retry; if it persists, restart the server.")


def _raise(reply: Reply) -> Any:
    if reply[0] == "ok":
        return reply[1]
    cls = getattr(errors, str(reply[1]), EngineError)
    if not (isinstance(cls, type) and issubclass(cls, RFError)):
        cls = EngineError
    raise cls(reply[2], fix=reply[3])


# -- the child (module globals of the worker process) ---------------------------------------------------------
_engine: Engine | None = None
_failure: Reply | None = None  # why the engine could not be opened
_runner: asyncio.Runner | None = None  # one event loop for the worker's life
_busy = threading.Lock()  # held by each call: the child leaves only between calls


def _init(opener: Opener, settings: QdrantSettings, parent: int, pid: Connection) -> None:
    """The worker's initializer: protect the parent's stdout, report the pid, watch the parent, open the engine."""
    global _engine, _failure, _runner
    os.dup2(2, 1)  # before anything can print: the parent's stdout may be the stdio protocol channel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the parent closes us
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    pid.send(os.getpid())
    pid.close()
    threading.Thread(target=_watch_parent, args=(parent, settings.timeout), daemon=True,
                     name="rf-mcp-parent-watch").start()
    _runner = asyncio.Runner()
    try:
        _engine = opener(settings)
    except BaseException as exc:  # reported to the first call
        _failure = _error_reply(exc)
        return
    atexit.register(_shut)  # a pool shut down without a close call still closes the engine (flushes, unlocks)


def _watch_parent(parent: int, deadline: float) -> None:
    """Leave when the parent dies (its end of the spawn pipe closes, or this process is adopted), between calls: a
    call in progress finishes first (or gets its deadline, as the parent would have given it)."""
    sentinel = getattr(multiprocessing.parent_process(), "sentinel", None)
    while os.getppid() == parent:
        if sentinel is None:
            time.sleep(PARENT_CHECK)
        elif wait([sentinel], PARENT_CHECK):
            break
    threading.Timer(deadline + 1.0, os._exit, (0,)).start()  # a call or close that hangs does not keep us alive
    try:
        if _busy.acquire(timeout=deadline):
            _shut()
    finally:
        os._exit(0)


def _shut() -> None:
    global _engine
    engine, _engine = _engine, None
    if engine is not None and _runner is not None:
        _runner.run(engine.close())  # on the loop: closing may hop to a thread (qdrant-client's local mode does)
    if _runner is not None:
        _runner.close()


def _hello() -> Reply:
    """The first call: where the engine is, or why it could not be opened."""
    if _failure is not None:
        return _failure
    try:
        return "ok", str(_engine.location if _engine is not None else "")
    except Exception as exc:
        return _error_reply(exc)


def _call(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Reply:
    """One port call, run on the worker's event loop; every failure goes back to its caller as data."""
    with _busy:
        if _engine is None or _runner is None:
            return _failure or ("rf", "EngineError", "The engine process is closing.", "Retry.")
        try:
            return "ok", _runner.run(getattr(_engine, method)(*args, **kwargs))
        except Exception as exc:
            return _error_reply(exc)


def _close() -> Reply:
    with _busy:
        try:
            atexit.unregister(_shut)
            _shut()
        except Exception as exc:
            return _error_reply(exc)
        return "ok", None


# -- the parent ---------------------------------------------------------------------------------------------
class ProcessEngine(Engine):
    """The engine ``opener(settings)`` opens, run in a child process (``opener`` is imported there by name)."""

    def __init__(self, settings: QdrantSettings, opener: Opener) -> None:
        self.settings = settings
        self.opener = opener
        self._pool: ProcessPoolExecutor | None = None
        self._pid: int | None = None
        self._location: str | None = None
        self._lock = threading.Lock()  # starting and retiring children: one at a time, never two on the folder
        self._answered = 0.0  # monotonic time of the child's last answer

    @property
    def pid(self) -> int | None:
        """The engine process's id, while one runs."""
        return self._pid if self._pool is not None else None

    # -- the child ----------------------------------------------------------------------------------------------
    def _start(self) -> ProcessPoolExecutor:
        """The engine process, started on first use (blocking: seconds)."""
        with self._lock:
            if self._pool is not None:
                return self._pool
            context = multiprocessing.get_context("spawn")
            reader, writer = context.Pipe(duplex=False)
            pool = ProcessPoolExecutor(1, mp_context=context, initializer=_init,
                                       initargs=(self.opener, self.settings, os.getpid(), writer))
            pid = None
            try:
                hello = pool.submit(_hello)  # starts the child
                writer.close()  # the child has its copy: a child that dies at start reads as EOF here
                if not reader.poll(START_TIMEOUT):
                    raise EngineError("The engine process did not start in time.", fix="See the server's log.")
                pid = int(reader.recv())
                location = _raise(hello.result(START_TIMEOUT))
            except (EOFError, OSError, BrokenProcessPool):
                self._retire(pool, pid, kill=True)
                raise EngineError("The engine process exited at start.",
                                  fix="See the server's log; a Python script that opens it must run its code under "
                                      "`if __name__ == \"__main__\":` (the process imports the script).") from None
            except TimeoutError:
                self._retire(pool, pid, kill=True)
                raise EngineError("The engine process did not open its engine in time.",
                                  fix="See the server's log.") from None
            except RFError:  # the child could not open its engine: it holds nothing
                self._retire(pool, pid, kill=False)
                raise
            except BaseException:
                self._retire(pool, pid, kill=True)
                raise
            finally:
                reader.close()
            self._pool, self._pid, self._location = pool, pid, str(location)
            self._answered = time.monotonic()
            return pool

    @staticmethod
    def _retire(pool: ProcessPoolExecutor, pid: int | None, *, kill: bool) -> None:
        """Stop a child and wait until it is gone (its folder lock with it)."""
        if kill and pid is not None:
            with contextlib.suppress(OSError):  # already gone
                os.kill(pid, KILL)  # works on a stopped process too
        pool.shutdown(wait=True, cancel_futures=True)

    def _replace(self, pool: ProcessPoolExecutor, *, kill: bool) -> None:
        """Retire the current child; the next call starts a new one (after this one is gone)."""
        with self._lock:
            if self._pool is pool:
                self._pool = None
                self._retire(pool, self._pid, kill=kill)

    def _answer(self, future: Future[Reply]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._answered = time.monotonic()

    def _late(self, sent: float, deadline: float) -> tuple[EngineError, bool]:
        """The error for a call past its deadline, and whether the child is stuck (nothing answered since it was
        sent: one call has run for the whole deadline) rather than busy with calls sent before it."""
        took = f"The engine did not answer within {deadline:g} s ([qdrant] timeout)"
        if self._answered >= sent:
            return EngineError(f"{took}: it is busy with earlier calls.",
                               fix="Retry; raise [qdrant] timeout if the load is expected."), False
        log.error("the engine process did not answer within %g s; it is stopped and started again", deadline)
        return EngineError(f"{took}; its process was stopped and starts again on the next call.",
                           fix="Retry; if a call needs longer (e.g. building a large index), raise [qdrant] "
                               "timeout."), True

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        pool = self._pool
        if pool is None:
            pool = await asyncio.to_thread(self._start)  # a start takes seconds
        try:
            future = pool.submit(_call, method, args, kwargs)
        except (BrokenProcessPool, RuntimeError):  # it died while idle, or was closed: start a new one
            await asyncio.to_thread(self._replace, pool, kill=True)
            pool = await asyncio.to_thread(self._start)
            future = pool.submit(_call, method, args, kwargs)
        sent = time.monotonic()
        future.add_done_callback(self._answer)
        deadline = max(self.settings.timeout, BUILD_DEADLINE) if method == "optimize" else self.settings.timeout
        try:  # cancelling the caller cancels a call not yet sent to the child; a sent one runs, its answer dropped
            reply = await asyncio.wait_for(asyncio.wrap_future(future), deadline)
        except TimeoutError:
            error, stuck = self._late(sent, deadline)
            if stuck:
                await asyncio.to_thread(self._replace, pool, kill=True)
            raise error from None
        except BrokenProcessPool:
            await asyncio.to_thread(self._replace, pool, kill=True)
            log.error("the engine process stopped; it starts again on the next call")
            raise EngineError("The engine process stopped.",
                              fix="Retry: the next call starts it again; the server's log says why it stopped.") from None
        except Exception as exc:  # e.g. arguments that cannot be sent (pickled)
            raise EngineError(f"The engine process failed: {type(exc).__name__}: {exc}"[:1000],
                              fix="Retry; if it persists, restart the server.") from None
        return _raise(reply)

    @property
    def location(self) -> str:
        self._start()
        return f"{self._location} (engine process)"

    async def close(self) -> None:
        pool = self._pool
        if pool is None:
            return
        kill = False
        try:
            _raise(await asyncio.wait_for(asyncio.wrap_future(pool.submit(_close)), self.settings.timeout))
        except RFError as exc:
            log.error("closing the engine in its process failed: %s", exc.problem)
        except (TimeoutError, BrokenProcessPool, RuntimeError):
            kill = True
        finally:
            await asyncio.to_thread(self._replace, pool, kill=kill)

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

    async def delete(self, collection: str, ids: Sequence[PointId]) -> None:
        await self._call("delete", collection, list(ids))

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
