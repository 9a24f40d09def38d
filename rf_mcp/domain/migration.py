"""Copy a collection and its calibration profiles from one engine to another (e.g. embedded -> a Qdrant server)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from rf_mcp.domain import guardrails
from rf_mcp.domain.fingerprint import PROFILE_KEY_PREFIX
from rf_mcp.domain.indexing import TERM_STATS_KEY
from rf_mcp.errors import InputError
from rf_mcp.ports import CollectionSpec, Engine, PointId, PointInput, Progress


class MigrationReport(BaseModel):
    collection: str
    source: str
    destination: str
    points: int
    profiles: int
    seconds: float


async def migrate(source: Engine, destination: Engine, collection: str, vector_name: str, *, batch: int = 256,
                  progress: Progress | None = None) -> MigrationReport:
    """Copy the dense vector, the payloads and the calibration profiles (the service rebuilds BM25 sparse vectors
    on the destination from the payload text)."""
    t0 = time.perf_counter()
    info = await source.describe(collection)
    vec = guardrails.dense_vector(info, vector_name)
    if await destination.exists(collection):
        raise InputError(f"Collection {collection!r} already exists at {destination.location}.",
                         fix="Migrate into a fresh server (or delete the collection there first).")
    await destination.create_collection(collection, CollectionSpec(vec.name, vec.dim or 0, vec.distance or "Cosine"))  # type: ignore[arg-type]
    copied = 0
    offset: PointId | None = None
    while True:
        page, offset = await source.scroll(collection, offset=offset, limit=batch, with_vector=vec.name)
        if page:
            await destination.upsert(collection, [PointInput(p.id, {vec.name: p.vector or []}, p.payload) for p in page])
            copied += len(page)
            if progress is not None:
                await progress(float(copied), float(info.points_count), f"copied {copied}/{info.points_count} points")
        if offset is None:
            break
    meta: dict[str, Any] = await source.get_metadata(collection)
    profiles = {k: v for k, v in meta.items() if k.startswith(PROFILE_KEY_PREFIX)}
    kept = {**profiles, **{k: v for k, v in meta.items() if k == TERM_STATS_KEY}}  # and the BM25 term statistics
    if kept:
        await destination.set_metadata(collection, kept)
    count = await destination.count(collection)
    if count != info.points_count:
        raise InputError(f"The destination holds {count} points after the copy, the source {info.points_count}.",
                         fix="Check the destination server's logs and retry into a fresh collection.")
    return MigrationReport(collection=collection, source=source.location, destination=destination.location,
                           points=copied, profiles=len(profiles), seconds=round(time.perf_counter() - t0, 3))
