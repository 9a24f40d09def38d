"""The query log: distinct queries searched per collection, for calibrating on real queries (opt-in).

Off unless ``[server] query_log = true`` (it stores query text). Queries are kept in memory and merged into the
collection's metadata in batches (one write per ``FLUSH_EVERY`` new queries, and when the service closes), at most
``size`` distinct queries and :data:`MAX_BYTES` per collection, the most recently searched kept (a query searched
again moves to the newest end). Queries with control, format, private-use or separator characters are not logged.
A deterministic split by hash gives
calibration (80%) and held-out evaluation (20%) queries that never overlap; at most :data:`MAX_QUERIES` (the newest)
are handed to a calibration or an evaluation.

Every client of the server feeds the log: calibrate from it only where the clients are trusted (README: security).
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any, Literal

import anyio

from rf_mcp.errors import InputError
from rf_mcp.ports import Engine

KEY = "rf_mcp.querylog"
FLUSH_EVERY = 20
MAX_BYTES = 1024 * 1024
"""Stored query text per collection at most (UTF-8): the log lives in the collection's metadata."""
MAX_QUERIES = 1000
"""Queries handed to one calibration or evaluation from the log (as many as a tool call may pass inline)."""
_SKIPPED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Zl", "Zp"})
"""Control, format (direction marks and overrides, zero-width characters, soft hyphens, tags U+E0000-U+E007F, the
byte-order mark), private-use, line- and paragraph-separator characters: text that renders differently from what it
holds, or not at all. Tabs and newlines are controls too: a logged query is one plain line."""


def loggable(query: str) -> bool:
    """Whether ``query`` may enter the log (none of the :data:`_SKIPPED_CATEGORIES`)."""
    return not any(unicodedata.category(ch) in _SKIPPED_CATEGORIES for ch in query)


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
        if not self.enabled or not loggable(query):
            return
        pending = self._pending.setdefault(collection, [])
        if query in pending:
            pending.remove(query)
        pending.append(query)  # the newest end
        if len(pending) >= FLUSH_EVERY:
            await self.flush(collection)

    async def flush(self, collection: str | None = None) -> None:
        async with self._writing:
            for name in [collection] if collection else list(self._pending):
                new = self._pending.pop(name, [])
                if not new or not await self.engine.exists(name):
                    continue
                fresh = set(new)
                merged = [q for q in await self._stored(name) if q not in fresh] + new  # searched again: newest
                kept, total = [], 0
                for q in reversed(merged[-self.size:]):  # newest first, within the byte budget
                    total += len(q.encode("utf-8", "replace"))
                    if total > MAX_BYTES:
                        break
                    kept.append(q)
                await self.engine.set_metadata(name, {KEY: kept[::-1]})

    async def _stored(self, collection: str) -> list[str]:
        stored: Any = (await self.engine.get_metadata(collection)).get(KEY)
        return [q for q in stored if isinstance(q, str)] if isinstance(stored, list) else []

    async def queries(self, collection: str, side: Literal["train", "test"]) -> list[str]:
        """The logged queries of one side of the split (an input error when there are none)."""
        await self.flush(collection)
        logged = await self._stored(collection)
        out = [q for q in logged if part(q) == side][-MAX_QUERIES:]
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
