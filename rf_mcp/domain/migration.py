"""Copy a collection and its calibration profiles from one engine to another (e.g. embedded -> a Qdrant server)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from rf_mcp.domain import guardrails
from rf_mcp.domain.fingerprint import PROFILE_KEY_PREFIX
from rf_mcp.domain.indexing import Progress
from rf_mcp.errors import InputError


class MigrationReport(BaseModel):
    collection: str
    source: str
    target: str
    points: int
    profiles: int
    seconds: float


async def migrate(source: Any, target: Any, collection: str, vector_name: str, *, batch: int = 256,
                  progress: Progress | None = None) -> MigrationReport:
    t0 = time.perf_counter()
    info = await source.describe(collection)
    vec = guardrails.dense_vector(info, vector_name)
    if await target.exists(collection):
        raise InputError(f"Collection {collection!r} already exists at {target.location}.",
                         fix="Migrate into a fresh server (or delete the collection there first).")
    await target.create_collection(collection, vec.name, vec.dim or 0, vec.distance or "Cosine")
    copied, offset = 0, None
    while True:
        page, offset = await source.scroll_points(collection, vec.name, offset, batch)
        if page:
            ids, vectors, payloads = zip(*page, strict=True)
            await target.upsert(collection, vec.name, list(ids), list(vectors), list(payloads))
            copied += len(page)
            if progress is not None:
                await progress(float(copied), float(info.points_count), f"copied {copied}/{info.points_count} points")
        if offset is None:
            break
    profiles = {k: v for k, v in (await source.get_metadata(collection)).items() if k.startswith(PROFILE_KEY_PREFIX)}
    if profiles:
        await target.set_metadata(collection, profiles)
    count = await target.count(collection)
    if count != info.points_count:
        raise InputError(f"The target holds {count} points after the copy, the source {info.points_count}.",
                         fix="Check the target server's logs and retry into a fresh collection.")
    return MigrationReport(collection=collection, source=source.location, target=target.location, points=copied,
                           profiles=len(profiles), seconds=round(time.perf_counter() - t0, 3))
