"""add_documents / delete_documents: keeping a collection current through the tools (the real MCP client in process),
the Python API and the CLI's request, with the BM25 term statistics and the calibrations' drift kept honest."""

from __future__ import annotations

import copy
import json

import pytest
from mcp.client.client import Client

from rf_mcp import cli
from rf_mcp.config import Config
from rf_mcp.domain import indexing
from rf_mcp.domain import requests as r
from rf_mcp.errors import GuardrailError, InputError
from rf_mcp.server import build_server
from tests import doubles
from tests.unit.test_bm25_stats import assert_stored_equals_full_count

pytestmark = pytest.mark.anyio
NEW = {"id": "new-1", "title": "quokka sanctuary", "text": "quokka marsupial island census rottnest",
       "metadata": {"lang": "en", "year": 2024, "tags": ["fauna"]}}
QUOKKA = "quokka marsupial island census"


def text(result) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "text", None))


def hit_ids(result) -> list[str]:
    return [h["doc_id"] for h in result.structured_content["hits"]]


async def test_added_document_is_found_and_deleted_document_is_gone(templates):
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    before = await indexing.read_term_stats(service.engine, "docs", ["title", "text"])
    async with Client(build_server(service)) as client:
        search = {"collection": "docs", "query": QUOKKA, "vanilla": True}
        assert "new-1" not in hit_ids(await client.call_tool("rf_search_precision", search))
        added = await client.call_tool("add_documents", {"collection": "docs", "documents": [NEW]})
        assert not added.is_error, text(added)
        report = added.structured_content
        assert report["documents"] == 1 and report["points_count"] == 301
        assert report["notes"] == [] and report["warnings"] == []  # 1 point in 300: no drift; BM25 written
        found = await client.call_tool("rf_search_precision", search)
        assert hit_ids(found)[0] == "new-1" and found.structured_content["hits"][0]["id"] == report["point_ids"][0]
        # stored in the payload: metadata under "metadata", filterable by its dotted key
        hit = found.structured_content["hits"][0]
        assert hit["payload"]["metadata"] == NEW["metadata"]
        only_en = {**search, "filter": {"must": [{"key": "metadata.lang", "match": {"value": "en"}}]}}
        assert hit_ids(await client.call_tool("rf_search_precision", {**only_en, "limit": 2}))[:1] == ["new-1"]
        # the hybrid search finds it through its BM25 sparse vector too, and RF through the calibration
        hybrid = await client.call_tool("rf_search_precision", {**search, "fusion": "sparse"})
        assert hit_ids(hybrid)[0] == "new-1"
        rf = await client.call_tool("rf_search_precision", {"collection": "docs", "query": QUOKKA})
        assert not rf.is_error and "new-1" in hit_ids(rf), text(rf)
        await assert_stored_equals_full_count(service.engine, "docs")
        # delete by doc_id; an id matching nothing is reported, not refused
        gone = await client.call_tool("delete_documents", {"collection": "docs", "ids": ["new-1", "no-such-doc"]})
        assert not gone.is_error, text(gone)
        assert gone.structured_content["point_ids"] == report["point_ids"] and gone.structured_content["documents"] == 1
        assert gone.structured_content["not_found"] == ["no-such-doc"] and gone.structured_content["points_count"] == 300
        assert "new-1" not in hit_ids(await client.call_tool("rf_search_precision", search))
    after = await assert_stored_equals_full_count(service.engine, "docs")
    assert before is not None and (after.documents, after.total_length) == (before.documents, before.total_length)
    assert [a.tolist() for a in after.frequencies()] == [b.tolist() for b in before.frequencies()]


async def test_adding_an_id_again_replaces_the_document_and_point_ids_delete_too(indexed):
    report = await indexed.add_documents("docs", [NEW])
    again = await indexed.add_documents("docs", [{**NEW, "text": "wombat burrow census"}])
    assert again.point_ids == report.point_ids and again.points_count == report.points_count == 301
    hits = (await indexed.search_precision("docs", "wombat burrow census", vanilla=True)).hits
    assert hits[0].doc_id == "new-1" and "wombat" in hits[0].text
    await assert_stored_equals_full_count(indexed.engine, "docs")  # the replaced text left the statistics
    # an existing corpus document, by its point id (as a hit reports it)
    point = indexing.point_id("d7")
    gone = await indexed.delete_documents("docs", [point])
    assert gone.point_ids == [point] and gone.points_count == 300 and not gone.not_found
    assert not await indexed.engine.retrieve("docs", [point])
    await assert_stored_equals_full_count(indexed.engine, "docs")


async def test_a_changed_collection_says_its_calibration_no_longer_fits(calibrated):
    fingerprint = (await calibrated.list_profiles("docs"))[0].profile.fingerprint
    docs = [{"id": f"n{i}", "text": f"quokka census number {i}"} for i in range(70)]  # 300 -> 370: +23%
    report = await calibrated.add_documents("docs", docs)
    assert len(report.warnings) == 1 and fingerprint in report.warnings[0], report.warnings
    assert "300 to 370" in report.warnings[0] and "drift_warning" in report.warnings[0]
    # the searches say so too; deleting the new documents brings the collection back within the bound
    assert any("300 to 370" in w for w in (await calibrated.search_precision("docs", QUOKKA)).warnings)
    back = await calibrated.delete_documents("docs", [d["id"] for d in docs])
    assert back.documents == 70 and back.points_count == 300 and back.warnings == []


async def test_read_only_servers_hide_both_tools_and_the_api_refuses(templates):
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]), read_only=True)
    async with Client(build_server(service, read_only=True)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names.isdisjoint({"add_documents", "delete_documents", "index"}) and "rf_search_precision" in names
        called = await client.call_tool("add_documents", {"collection": "docs", "documents": [NEW]})
        assert called.is_error and text(called).startswith("invalid_input: unknown tool 'add_documents'.")
    with pytest.raises(GuardrailError, match="read-only"):
        await service.add_documents("docs", [NEW])
    with pytest.raises(GuardrailError, match="read-only"):
        await service.delete_documents("docs", ["d1"])
    assert await service.engine.count("docs") == 300


@pytest.mark.parametrize("documents, needle", [
    ([], "at least 1 item"),
    ([{"id": f"x{i}", "text": "t"} for i in range(101)], "at most 100 items"),
    ([{"id": "x", "text": "t" * 20_001}], "at most 20000 characters"),
    ([{"id": f"x{i}", "text": "t" * 20_000} for i in range(51)], "more than 1,000,000 per call"),
    ([{"id": "x", "text": "t", "metadata": {"k": "v" * 10_001}}], "more than 10,000"),
    ([{"id": "x", "text": "t", "metadata": ["not", "an", "object"]}], "valid dictionary"),
    ([{"id": "x", "text": "t", "metadata": {"k": float("nan")}}], "finite numbers"),
    ([{"id": "x", "text": "   "}], "must not be blank"),
    ([{"id": "x", "text": "a\ud800"}], "unicode string"),
    ([{"id": "x", "text": "t", "metadata": {"k": "a\ud800"}}], "JSON object of text"),
    ([{"id": "x", "text": "t"}, {"id": "x", "text": "u"}], "more than once"),
    ([{"id": "x", "text": "t", "vector": [1.0]}], "unknown argument"),
])
async def test_bad_documents_are_refused_by_the_request_model_before_any_write(indexed, documents, needle):
    with pytest.raises(InputError, match="Invalid arguments") as refused:
        await indexed.add_documents("docs", documents)
    assert needle in str(refused.value) and refused.value.fix
    assert await indexed.engine.count("docs") == 300


async def test_bad_ids_and_collections_are_refused_with_the_fix(indexed):
    for ids, needle in (([], "at least 1 item"), ([str(i) for i in range(101)], "at most 100 items"),
                        ([" "], "neither a point id nor a document id")):
        with pytest.raises(InputError, match=needle):
            await indexed.delete_documents("docs", ids)
    with pytest.raises(InputError, match="does not exist"):
        await indexed.delete_documents("nope", ["d1"])
    with pytest.raises(InputError, match="not a name rf-mcp creates"):
        await indexed.add_documents("bad name!", [NEW])
    assert await indexed.engine.count("docs") == 300


async def test_a_new_collection_is_created_and_a_foreign_layout_keeps_its_payload_shape(tmp_path):
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {"layout": "mcp-server-qdrant"}})
    rf = doubles.service(cfg)
    report = await rf.add_documents("memories", [NEW, {"id": "n2", "text": "platypus river"}])
    assert report.created and report.points_count == 2 and report.notes == []
    (point,) = await rf.engine.retrieve("memories", [report.point_ids[0]])
    assert point.payload["document"] == NEW["text"] and point.payload["metadata"] == {**NEW["metadata"],
                                                                                     "doc_id": "new-1"}
    hits = (await rf.search_precision("memories", "platypus river", vanilla=True, seeds=2)).hits
    assert hits[0].doc_id == "n2"
    assert (await rf.delete_documents("memories", ["n2"])).points_count == 1


def test_the_cli_reads_documents_inline_or_from_a_jsonl_file(tmp_path):
    args = cli._parser().parse_args(["add_documents", "-c", "docs", "--documents", json.dumps(NEW)])
    assert cli.request_of(r.AddDocumentsRequest, args).documents[0].metadata == NEW["metadata"]
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps(NEW) + "\n" + json.dumps({"id": "n2", "text": "platypus"}) + "\n")
    args = cli._parser().parse_args(["add-documents", "-c", "docs", "--documents-file", str(path)])
    request = cli.request_of(r.AddDocumentsRequest, args, documents=cli._documents_file(args.documents_file))
    assert [d.id for d in request.documents] == ["new-1", "n2"]
    args = cli._parser().parse_args(["delete_documents", "-c", "docs", "--ids", "d1", "12"])
    assert cli.request_of(r.DeleteDocumentsRequest, args).ids == ["d1", "12"]
