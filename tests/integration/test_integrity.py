"""Integrity of stored state on the embedded engines (edge and qdrant-client's local mode): never serve a broken
collection as if nothing happened, never re-create over existing data, one process per folder whatever the engine,
a full disk refused before writing, and document ids of every kind through every tool.

The hash retriever and BM25 feedback keep these tests fast; the engines are real."""

from __future__ import annotations

import json
import os
from collections import namedtuple
from pathlib import Path

import pytest

from rf_mcp.adapters.engines import _shared
from rf_mcp.adapters.engines.client import ClientEngine
from rf_mcp.adapters.engines.edge import EdgeEngine
from rf_mcp.config import QdrantSettings
from rf_mcp.domain.files import PathPolicy
from rf_mcp.errors import EngineError, InputError
from rf_mcp.ports import CollectionSpec, PointInput
from tests import doubles, scenarios

pytest.importorskip("qdrant_edge", reason="needs qdrant-edge-py")
pytestmark = pytest.mark.anyio
ENGINES = ["edge", "local"]


def engine(kind: str, path: Path) -> EdgeEngine | ClientEngine:
    settings = QdrantSettings(path=str(path), backend=kind)  # type: ignore[arg-type]
    return EdgeEngine(settings) if kind == "edge" else ClientEngine(settings)


def corpus_file(tmp_path: Path, n: int = 120) -> Path:
    path = tmp_path / f"corpus-{n}.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in doubles.corpus(n)) + "\n")
    return path


@pytest.mark.parametrize("kind", ENGINES)
async def test_string_uuid_and_integer_ids_through_every_tool(tmp_path, kind):
    service = doubles.service(engine=engine(kind, tmp_path / "data"), files=PathPolicy.confined([tmp_path]))
    try:
        await scenarios.ids_through_every_tool(service, tmp_path)
    finally:
        await service.close()


async def test_a_corrupt_collection_is_reported_and_the_others_listed(tmp_path):
    rf = doubles.service(engine=engine("edge", tmp_path / "data"))
    for name in ("good", "broken"):
        await rf.index(name, corpus_file(tmp_path, 40))
    (tmp_path / "data" / "broken" / "collection.json").write_text('{"vectors": [')  # truncated by hand
    overview = await rf.overview()
    assert [c.info.name for c in overview.collections] == ["good"]
    assert len(overview.errors) == 1 and overview.errors[0].startswith("broken: ") and "corrupt" in overview.errors[0]
    with pytest.raises(EngineError, match=r"collection\.json.*corrupt"):
        await rf.search_precision("broken", scenarios.Q)
    await rf.close()


async def test_a_shard_without_its_description_is_never_overwritten(tmp_path):
    data = tmp_path / "data"
    rf = doubles.service(engine=engine("edge", data))
    await rf.index("docs", corpus_file(tmp_path, 200))
    await rf.close()
    shard = data / "docs" / "shard"
    files_before = {p.relative_to(shard): p.stat().st_size for p in shard.rglob("*") if p.is_file()}
    described = (data / "docs" / "collection.json").read_bytes()
    (data / "docs" / "collection.json").unlink()  # a user deletes the description by mistake

    rf = doubles.service(engine=engine("edge", data))
    with pytest.raises(InputError, match="refusing to create the collection over existing data"):
        await rf.index("docs", corpus_file(tmp_path, 2))
    await rf.close()
    assert {p.relative_to(shard): p.stat().st_size for p in shard.rglob("*") if p.is_file()} == files_before
    (data / "docs" / "collection.json").write_bytes(described)  # restored from the backup, as the error says
    rf = doubles.service(engine=engine("edge", data))
    assert await rf.engine.count("docs") == 200
    await rf.close()


@pytest.mark.parametrize(("holder", "intruder"), [("edge", "local"), ("local", "edge"), ("edge", "edge"),
                                                   ("local", "local")])
async def test_one_process_per_folder_whatever_the_engine(tmp_path, holder, intruder):
    """A second engine on a folder held by a running one is refused before it writes anything (the issue's case: a
    local-engine CLI `index` on a folder held by an edge server), and the holder still works afterwards."""
    data = tmp_path / "data"
    held = engine(holder, data)
    await held.create_collection("c", CollectionSpec("dense", 4))
    await held.upsert("c", [PointInput(1, {"dense": [0.1, 0.2, 0.3, 0.4]}, {"i": 1})])
    listing = sorted(p.name for p in data.iterdir())
    other = engine(intruder, data)
    with pytest.raises(EngineError, match=r"in use by another rf-mcp process|holds data of"):
        await other.create_collection("d", CollectionSpec("dense", 4))
    await other.close()
    assert sorted(p.name for p in data.iterdir()) == listing
    await held.upsert("c", [PointInput(2, {"dense": [0.4, 0.3, 0.2, 0.1]}, {"i": 2})])
    assert await held.count("c") == 2
    await held.close()
    reopened = engine(holder, data)  # and the holder's format is still its own
    assert await reopened.count("c") == 2
    await reopened.close()


@pytest.mark.parametrize("kind", ENGINES)
async def test_a_full_disk_is_refused_before_writing(tmp_path, kind, monkeypatch):
    rf = doubles.service(engine=engine(kind, tmp_path / "data"))
    await rf.index("docs", corpus_file(tmp_path, 40))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(_shared.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))  # 1 MB free
    with pytest.raises(EngineError, match="Not enough disk space") as refused:
        await rf.index("more", corpus_file(tmp_path, 40))
    assert "Nothing was written" in refused.value.problem or "Nothing was changed" in refused.value.problem
    monkeypatch.undo()
    assert await rf.engine.count("docs") == 40 and await rf.engine.list_collections() in (["docs"], ["docs", "more"])
    if "more" in await rf.engine.list_collections():
        assert await rf.engine.count("more") == 0  # created empty, no point written
    await rf.close()


async def test_a_failed_description_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    rf = doubles.service(engine=engine("edge", tmp_path / "data"))
    await rf.index("docs", corpus_file(tmp_path, 120))
    folder = tmp_path / "data" / "docs"
    before = (folder / "collection.json").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)  # the write fails after the temporary file was created
    with pytest.raises(EngineError, match="No space left on device"):
        await rf.calibrate("docs", doubles.queries(), doubles.TRAIN)
    monkeypatch.undo()
    assert (folder / "collection.json").read_bytes() == before
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert (await rf.list_profiles("docs")) == [] or all(p.profile is None for p in await rf.list_profiles("docs"))
    report = await rf.calibrate("docs", doubles.queries(), doubles.TRAIN)  # and it works once space is back
    assert report.profile.usable
    await rf.close()



@pytest.mark.parametrize("kind", ENGINES)
async def test_tampered_profiles_on_disk_are_refused_after_a_restart(tmp_path, kind):
    """The security review's hand edits of a stored profile, made while no server runs (on the edge engine in
    collection.json itself, with NaN and Infinity as the literals Python writes; on the local engine through its own
    storage), then read by a fresh process: every one refused with its key named, the rest of the store intact."""
    from rf_mcp.domain.fingerprint import PROFILE_KEY_PREFIX
    from rf_mcp.errors import GuardrailError

    data = tmp_path / "data"
    rf = doubles.service(engine=engine(kind, data))
    await rf.index("docs", corpus_file(tmp_path))
    assert (await rf.calibrate("docs", doubles.queries(), doubles.TRAIN)).profile.usable
    key = PROFILE_KEY_PREFIX + (await rf.target("docs")).parts.fingerprint
    stored = await rf.engine.get_metadata("docs")
    await rf.close()
    described = data / "docs" / "collection.json"
    for case, edit in scenarios.TAMPERING.items():
        tampered = {**stored, key: {**stored[key], "current": edit(json.loads(json.dumps(stored[key]["current"])))}}
        if kind == "edge":
            meta = json.loads(described.read_text())
            described.write_text(json.dumps({**meta, "metadata": tampered}))  # allow_nan: NaN / Infinity literals
        else:
            writer = engine(kind, data)
            await writer.set_metadata("docs", tampered)
            await writer.close()
        rf = doubles.service(engine=engine(kind, data))
        try:
            with pytest.raises(GuardrailError, match=f"stored calibration {key} of 'docs' .* is invalid"):
                await rf.search_precision("docs", scenarios.Q)
            summary = (await rf.list_profiles("docs"))[0]
            assert summary.status == "invalid" and summary.profile is None, case
            assert await rf.engine.count("docs") == 120, case
        finally:
            await rf.close()


@pytest.mark.parametrize("kind", ENGINES)
async def test_index_creates_the_payload_indexes_filters_use(tmp_path, kind):
    """[collection] filterable_fields: `index` creates one payload index per declared key, of its type, on every
    engine; a filtered search then returns only matching points."""
    from rf_mcp.config import Config
    from rf_mcp.ports import Filter

    cfg = Config.model_validate({"qdrant": {"backend": kind, "path": str(tmp_path / "data")}, "collection": {
        "vector_name": "dense", "filterable_fields": {"year": "integer", "topic": "keyword"}}})
    rf = doubles.service(cfg, engine=engine(kind, tmp_path / "data"))
    try:
        await rf.index("docs", corpus_file(tmp_path, 60))
        # qdrant-client's local mode keeps no payload index (it filters by scanning); edge and servers do
        assert (await rf.engine.describe("docs")).payload_indexes == (["topic", "year"] if kind == "edge" else [])
        flt = Filter.model_validate({"must": [{"key": "year", "range": {"gte": 2010}}]})
        hits = (await rf.search_precision("docs", scenarios.Q, vanilla=True, filter=flt, limit=20)).hits
        assert hits and all(h.payload["year"] >= 2010 for h in hits)
    finally:
        await rf.close()


async def test_a_local_engine_collection_without_its_description_is_never_overwritten(tmp_path):
    """qdrant-client's folder without its meta.json (deleted or damaged): indexing into it is refused, whether the
    folder is opened as local or auto (still recognised as that engine's, not taken over by the edge engine)."""
    from rf_mcp import factory

    data = tmp_path / "data"
    rf = doubles.service(engine=engine("local", data))
    await rf.index("docs", corpus_file(tmp_path, 200))
    await rf.close()
    stored = data / "collection" / "docs"
    files_before = {p.relative_to(data): p.stat().st_size for p in stored.rglob("*") if p.is_file()}
    described = (data / "meta.json").read_bytes()
    (data / "meta.json").unlink()
    for backend in ("local", "auto"):
        opened = factory.open_engine(QdrantSettings(path=str(data), backend=backend))  # type: ignore[arg-type]
        assert isinstance(opened, ClientEngine), backend
        rf = doubles.service(engine=opened)
        with pytest.raises(InputError, match="refusing to create the collection over existing data"):
            await rf.index("docs", corpus_file(tmp_path, 2))
        await rf.close()
        (data / "meta.json").unlink(missing_ok=True)  # the client may write an empty one on close
    assert {p.relative_to(data): p.stat().st_size for p in stored.rglob("*") if p.is_file()} == files_before
    assert sorted(p.name for p in data.iterdir() if p.is_dir()) == ["collection"]  # no edge collection beside it
    (data / "meta.json").write_bytes(described)  # restored from the backup, as the error says
    rf = doubles.service(engine=engine("local", data))
    assert await rf.engine.count("docs") == 200
    await rf.close()
