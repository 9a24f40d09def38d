"""The query log: distinct queries searched per collection, for calibrating on real queries (opt-in).

Off unless ``[server] query_log = true`` (it stores query text). Queries are kept in memory and merged into the
collection's metadata in batches (one write per ``FLUSH_EVERY`` new queries, and when the service closes), at most
``size`` distinct queries per collection, newest kept. A deterministic split by hash gives calibration (80%) and
held-out evaluation (20%) queries that never overlap.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import anyio

from rf_mcp.errors import InputError
from rf_mcp.ports import Engine

KEY = "rf_mcp.querylog"
FLUSH_EVERY = 20


def part(query: str) -> Literal["train", "test"]:
    """Which side of the split a query falls on (by a hash of its normalised text: stable across runs)."""
    digest = hashlib.sha256(query.strip().lower().encode()).digest()
    return "test" if digest[0] % 5 == 0 else "train"


class QueryLog:
    def __init__(self, engine: Engine, *, enabled: bool, size: int) -> None:
        self.engine = engine
        self.enabled = enabled
        self.size = size
        self._pending: dict[str, list[str]] = {}
        self._writing = anyio.Lock()  # one read-merge-write of the stored log at a time: none is lost

    async def record(self, collection: str, query: str) -> None:
        if not self.enabled:
            return
        pending = self._pending.setdefault(collection, [])
        if query not in pending:
            pending.append(query)
        if len(pending) >= FLUSH_EVERY:
            await self.flush(collection)

    async def flush(self, collection: str | None = None) -> None:
        async with self._writing:
            for name in [collection] if collection else list(self._pending):
                new = self._pending.pop(name, [])
                if not new or not await self.engine.exists(name):
                    continue
                merged = list(dict.fromkeys([*await self._stored(name), *new]))[-self.size:]
                await self.engine.set_metadata(name, {KEY: merged})

    async def _stored(self, collection: str) -> list[str]:
        stored: Any = (await self.engine.get_metadata(collection)).get(KEY)
        return [q for q in stored if isinstance(q, str)] if isinstance(stored, list) else []

    async def queries(self, collection: str, side: Literal["train", "test"]) -> list[str]:
        """The logged queries of one side of the split (an input error when there are none)."""
        await self.flush(collection)
        logged = await self._stored(collection)
        out = [q for q in logged if part(q) == side]
        if not out:
            use = "calibrate" if side == "train" else "evaluate"
            raise InputError(
                f"The query log of {collection!r} holds no {side} queries ({len(logged)} logged in all)"
                + ("." if self.enabled else ", and it is off on this server."),
                fix=(f"Run more searches first (about 4 in 5 logged queries go to calibration, 1 in 5 to evaluation), or {use} "
                     "with queries you pass." if self.enabled else
                     "Set [server] query_log = true (it stores query text in the collection), search, then "
                     f"{use} from the log; or pass queries."))
        return out
