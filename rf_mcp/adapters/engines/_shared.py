"""Helpers shared by the engine adapters (no engine library imported here)."""

from __future__ import annotations

import fcntl
import json
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from rf_mcp.errors import EngineError, InputError
from rf_mcp.ports import FeedbackItem, PointId

T = TypeVar("T")


LOCK_FILE = ".rf-mcp.lock"


def is_local_engine_folder(root: Path) -> bool:
    """A folder written by qdrant-client's embedded engine (meta.json + collection/), even one that lost its meta.json
    (collection/<name>/storage.sqlite)."""
    collections = root / "collection"
    return collections.is_dir() and ((root / "meta.json").is_file() or any(collections.glob("*/storage.sqlite")))


def is_edge_folder(root: Path) -> bool:
    """A folder written by the edge engine (a collection.json beside a shard, per collection)."""
    return root.is_dir() and any((p / "collection.json").is_file() or (p / "shard").is_dir()
                                 for p in root.iterdir() if p.is_dir())


def claim_folder(root: Path) -> IO[str]:
    """Hold the folder for this process (every embedded engine takes the same lock): two writers would corrupt it."""
    root.mkdir(parents=True, exist_ok=True)
    f = open(root / LOCK_FILE, "w")  # noqa: SIM115 - held open for the engine's lifetime
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise EngineError(f"The embedded Qdrant folder {root} is in use by another rf-mcp process.",
                          fix="Stop the other process, or run a Qdrant server and set QDRANT_URL for shared use.") from None
    return f


MIN_FREE_BYTES = 64 * 1024**2  # kept free beyond each write's estimate


def ensure_free_space(root: Path, points: Sequence[Any]) -> None:
    """Refuse a write the disk cannot hold: an embedded engine that runs out of space mid-write can crash the process
    (the edge engine's memory-mapped segments fail with SIGBUS) or leave a store it cannot open again."""
    estimate = MIN_FREE_BYTES
    for p in points:
        for v in p.vectors.values():
            estimate += 3 * 12 * len(getattr(v, "indices", v))  # vector, index and write-ahead log copies
        estimate += 3 * len(json.dumps(p.payload or {}, default=str))
    free = shutil.disk_usage(root).free
    if free < estimate:
        raise EngineError(
            f"Not enough disk space in {root}: {free / 1024**2:.0f} MB free, this write needs about "
            f"{estimate / 1024**2:.0f} MB (with a safety margin). Nothing was written.",
            fix="Free disk space (or move [qdrant] path to a larger disk) and run it again; it is idempotent.")


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder`` (0 when it does not exist)."""
    total = 0
    for path in folder.rglob("*") if folder.is_dir() else ():
        try:
            total += path.stat().st_size if path.is_file() else 0
        except OSError:
            continue
    return total


def ensure_free_bytes(root: Path, needed: int, what: str) -> None:
    """Refuse ``what`` (opening a shard, building an index) when ``root``'s disk has less than ``needed`` bytes plus
    :data:`MIN_FREE_BYTES` free: the engine would fail mid-write, or crash the process (SIGBUS)."""
    estimate = MIN_FREE_BYTES + needed
    free = shutil.disk_usage(root if root.exists() else root.parent).free
    if free < estimate:
        raise EngineError(
            f"Not enough disk space in {root} for {what}: {free / 1024**2:.0f} MB free, it needs about "
            f"{estimate / 1024**2:.0f} MB (with a safety margin). Nothing was changed.",
            fix="Free disk space (or move [qdrant] path to a larger disk) and run it again.")


def point_id(raw: Any) -> PointId:
    """An engine's point id as the port's type: integers stay integers, UUIDs become canonical strings."""
    if isinstance(raw, bool):
        raise EngineError(f"The engine returned a boolean point id {raw!r}.", fix="Report this as a bug.")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, uuid.UUID):
        return str(raw)
    return str(uuid.UUID(str(raw)))


def check_ids(ids: Sequence[PointId]) -> list[PointId]:
    """Point ids as Qdrant accepts them (unsigned integers or UUIDs); anything else is an input error."""
    out: list[PointId] = []
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int | str):
            raise InputError(f"{i!r} is not a point id.", fix="Pass unsigned integers or UUIDs, as search hits show them.")
        if isinstance(i, int):
            if not 0 <= i < 2**64:
                raise InputError(f"Point id {i} is out of range.", fix="Point ids are unsigned 64-bit integers or UUIDs.")
            out.append(i)
            continue
        try:
            out.append(str(uuid.UUID(i)))
        except ValueError:
            raise InputError(f"{i[:80]!r} is not a point id (an unsigned integer or a UUID).",
                             fix="Pass the `id` of a search hit, or its `doc_id`.") from None
    return out


def split_feedback(feedback: Sequence[FeedbackItem]) -> list[PointId]:
    """The point ids among the feedback examples (vectors are left as they are)."""
    return check_ids([f.example for f in feedback if isinstance(f.example, int | str)])


def feedback_vectors(feedback: Sequence[FeedbackItem], stored: dict[PointId, Sequence[float]],
                     collection: str) -> list[tuple[list[float], float]]:
    """Each feedback example as a vector: point ids resolved with ``stored`` (missing ids are an input error)."""
    missing = [f.example for f in feedback if isinstance(f.example, int | str) and point_id(f.example) not in stored]
    if missing:
        raise InputError(f"Feedback point ids not found in {collection!r}: {missing[:10]}.",
                         fix="Pass ids of existing points.")
    out = []
    for f in feedback:
        if isinstance(f.example, int | str):
            out.append((list(map(float, stored[point_id(f.example)])), float(f.score)))
        else:
            out.append(([float(x) for x in f.example], float(f.score)))
    return out


def guarded(fn: Callable[..., T], describe: Callable[[Exception], EngineError], *args: Any, **kwargs: Any) -> T:
    """Run ``fn``; our own errors pass through, anything else becomes one clear :class:`EngineError`."""
    try:
        return fn(*args, **kwargs)
    except (InputError, EngineError):
        raise
    except Exception as exc:
        raise describe(exc) from None
