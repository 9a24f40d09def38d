"""Every argument is declared once (rf_mcp/domain/requests.py): each surface (MCP schema, CLI flags, Python API,
config defaults) is walked here field by field against its request model."""

from __future__ import annotations

import argparse
import copy
import typing
from typing import Any

import pytest
from mcp.client.client import Client

from rf_mcp import cli
from rf_mcp.config import Config
from rf_mcp.domain import requests as r
from rf_mcp.errors import InputError
from rf_mcp.server import build_server
from tests import doubles

pytestmark = pytest.mark.anyio
Q = "tumor metastasis after chemotherapy"
OPERATIONS: dict[str, tuple[list[str], type[r.Request]]] = {  # tool -> CLI command line, request model
    "list_collections": (["list_collections"], r.CollectionsRequest),
    "rf_search_precision": (["rf_search_precision"], r.PrecisionRequest),
    "rf_search_recall": (["rf_search_recall"], r.RecallRequest),
    "calibrate": (["calibrate"], r.CalibrateRequest),
    "evaluate": (["evaluate"], r.EvaluateRequest),
    "rollback_calibration": (["rollback_calibration"], r.RollbackRequest),
    "index": (["index"], r.IndexRequest),
    "add_documents": (["add_documents"], r.AddDocumentsRequest),
    "delete_documents": (["delete_documents"], r.DeleteDocumentsRequest),
}
"""Each CLI command is named as its tool; the historical spellings stay (``search --mode``, ``rollback``)."""
SPELLINGS = {"search": r.PrecisionRequest, "rollback": r.RollbackRequest, "add-documents": r.AddDocumentsRequest,
             "delete-documents": r.DeleteDocumentsRequest}
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "enum")


def bounds(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's bounds in JSON schema, with the ``null`` alternative of an optional field folded away."""
    alternatives = [a for a in schema.get("anyOf", [schema]) if a.get("type") != "null"]
    merged = {**schema, **(alternatives[0] if len(alternatives) == 1 else {})}
    return {k: merged[k] for k in BOUNDS if k in merged}


def subparser(command: str) -> argparse.ArgumentParser:
    parser = cli._parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


async def test_every_field_of_every_operation_is_the_same_on_every_surface(templates):
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(OPERATIONS)
    for tool, (command, model) in OPERATIONS.items():
        schema = tools[tool].input_schema
        full = model.model_json_schema()["properties"]
        flags = {a.dest: a for a in subparser(command[0])._actions}
        assert sorted(schema.get("required", [])) == sorted(n for n, f in model.model_fields.items() if f.is_required())
        for name, field in model.model_fields.items():
            where = f"{tool}.{name}"
            on = r.surfaces(field)
            # MCP: the argument exists exactly where the model says, with the model's bounds, default and text
            assert (name in schema["properties"]) == on.mcp, where
            if on.mcp:
                published = schema["properties"][name]
                assert bounds(published) == bounds(full[name]), where
                default = None if field.is_required() or field.default is None else field.default
                assert published.get("default") == default, where
                assert published.get("description") == r.description(field) or name == "filter", where
            # CLI: one flag per field (or the positional query), omitted = the model's default
            if on.cli and name not in cli.CLI_ONLY:
                assert name in flags, where
                assert flags[name].default is None and flags[name].help == r.description(field), where
                literal = [a for a in typing.get_args(field.annotation) if typing.get_origin(a) is typing.Literal]
                if literal:
                    assert flags[name].choices == list(typing.get_args(literal[0])), where
            else:
                assert name not in flags or name == "collection", where
            # config: an omitted argument defaults to a config key with the same bounds
            path = r.config_default(field)
            if path is not None:
                section, key = path.split(".")
                config_field = Config.model_json_schema()["$defs"][type(getattr(Config(), section)).__name__]
                declared = config_field["properties"][key]
                if key not in ("fusion", "default_collection", "vector_name"):  # "auto" / free names: wider on purpose
                    assert bounds(declared) == bounds(full[name]), where


async def test_the_largest_limit_is_accepted_and_one_more_refused_alike_on_every_surface(templates):
    service = doubles.service(engine=copy.deepcopy(templates["calibrated"]))
    async with Client(build_server(service)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        top = tools["rf_search_precision"].input_schema["properties"]["limit"]["maximum"]
        assert top == Config().search.limit * 10 == 100
        ok = await client.call_tool("rf_search_precision", {"collection": "docs", "query": Q, "limit": top})
        assert not ok.is_error and len(ok.structured_content["hits"]) == top
        over = await client.call_tool("rf_search_precision", {"collection": "docs", "query": Q, "limit": top + 1})
        assert over.is_error
        mcp_message = over.content[0].text
    # the Python API
    assert len((await service.search_precision("docs", Q, limit=top)).hits) == top
    with pytest.raises(InputError) as python:
        await service.search_precision("docs", Q, limit=top + 1)
    # the CLI: the flags become the same request
    args = cli._parser().parse_args(["search", "-c", "docs", Q, "--limit", str(top)])
    assert cli.request_of(r.PrecisionRequest, args).limit == top
    args = cli._parser().parse_args(["search", "-c", "docs", Q, "--limit", str(top + 1)])
    with pytest.raises(InputError) as command_line:
        cli.request_of(r.PrecisionRequest, args)
    assert mcp_message == f"{python.value.code}: {python.value}" == f"{command_line.value.code}: {command_line.value}"
    assert "limit: Input should be less than or equal to 100" in mcp_message
    # and the config cannot set a default no surface would accept
    with pytest.raises(Exception, match="less than or equal to 100"):
        Config.model_validate({"search": {"limit": top + 1}})


def test_omitted_arguments_take_the_configured_defaults():
    cfg = Config.model_validate({"search": {"seeds": 3, "limit": 4, "recall_budget": 6, "fusion": "none"}})
    request = r.with_defaults(r.RecallRequest(query=Q), cfg)
    assert (request.seeds, request.budget, request.fusion, request.limit) == (3, 6, "none", None)
    assert r.with_defaults(r.PrecisionRequest(query=Q, limit=7), cfg).limit == 7  # given wins


def test_the_other_cli_spellings_take_the_same_flags():
    for command, model in SPELLINGS.items():
        flags = {a.dest: a for a in subparser(command)._actions}
        for name, field in model.model_fields.items():
            if r.surfaces(field).cli and name not in cli.CLI_ONLY:
                assert name in flags and flags[name].help == r.description(field), (command, name)
    search = {a.dest for a in subparser("search")._actions}
    assert {n for n, f in r.RecallRequest.model_fields.items() if r.surfaces(f).cli} <= search  # --mode recall
    for spelling, canonical in (("rollback", "rollback_calibration"), ("add-documents", "add_documents"),
                                ("delete-documents", "delete_documents")):
        argv = [spelling, "--ids", "1", "2"] if "delete" in spelling else [spelling]
        assert cli._parser().parse_args(argv).command == canonical


async def test_list_collections_on_the_cli_lists_collections_like_the_tool(indexed):
    """A collection without a calibration is listed (``profiles`` lists profiles only, so it shows nothing)."""
    overview = await cli._command(indexed, cli._parser().parse_args(["list_collections"]))
    assert [c.info.name for c in overview.collections] == ["docs"] and overview.collections[0].profiles == []
    assert await cli._command(indexed, cli._parser().parse_args(["profiles"])) == []
    from rf_mcp.text import render_text

    assert "docs: 300 points" in render_text(overview)
