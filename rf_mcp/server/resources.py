"""A prompt that walks an agent through the workflow, and each collection's calibration profiles as a resource."""

from __future__ import annotations

import json
import re
from urllib.parse import quote, unquote

from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    GetPromptRequestParams,
    GetPromptResult,
    Prompt,
    PromptArgument,
    PromptMessage,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    TextContent,
    TextResourceContents,
)

from rf_mcp.domain.service import RFService
from rf_mcp.errors import RFError

WORKFLOW = """Set up calibrated Relevance Feedback search on the collection {collection!r}, then use it.

1. Call list_collections with collection={collection!r}. Check the dense vector, the point count, and whether a
   calibration profile exists with status "usable" and matches_config true.
2. If there is none, ask the user for 50-200 real queries their users ask (not invented ones), tell them the cost
   (queries x 50 feedback-model scores), and call calibrate with them. If the report says UNUSABLE, read its
   reasons: try other queries or another feedback model; do not search with it.
3. Call evaluate on different, held-out queries; with relevance judgments (qrels_path), read the rows and the
   advice: when plain hybrid search is as good, use rf_search_precision with vanilla=true and fusion="sparse"
   (it costs no feedback calls). A failed gate makes searches refuse the calibration, as they should.
4. Search: rf_search_precision for a few precise answers (5 feedback scores), rf_search_recall to find documents
   a first pass missed (seeds + budget scores). Show the user hits by their text and doc_id; never compare or
   threshold scores across queries.
"""


PROMPT = Prompt(name="rf_workflow", title="Relevance Feedback workflow",
                description="Walks through checking, calibrating, evaluating and searching one collection.",
                arguments=[PromptArgument(name="collection", description="The collection to set up.", required=True)])
TEMPLATE = ResourceTemplate(uri_template="rf-mcp://collections/{collection}/profiles", name="calibration profiles",
                            description="The calibration profiles of a collection (weights, signal, evaluations), as "
                                        "JSON.", mime_type="application/json")
_URI = re.compile(r"rf-mcp://collections/([^/]+)/profiles")


def get_prompt(params: GetPromptRequestParams) -> GetPromptResult:
    """The workflow prompt; an unknown prompt or argument is invalid params, naming what the server has."""
    if params.name != PROMPT.name:
        raise MCPError(INVALID_PARAMS, f"Unknown prompt {params.name[:100]!r}: this server has [{PROMPT.name!r}].")
    arguments = params.arguments or {}
    unknown = sorted(str(a)[:40] for a in arguments if a != "collection")
    if unknown:
        raise MCPError(INVALID_PARAMS, f"Prompt {PROMPT.name!r} takes only ['collection']; unknown: {unknown[:5]}.")
    collection = arguments.get("collection")
    if not collection:
        raise MCPError(INVALID_PARAMS, f"Prompt {PROMPT.name!r} needs the argument(s) ['collection'].")
    text = WORKFLOW.format(collection=collection[:255])
    return GetPromptResult(description=PROMPT.description,
                           messages=[PromptMessage(role="user", content=TextContent(type="text", text=text))])


async def list_resources(service: RFService) -> list[Resource]:
    """One profiles resource per collection."""
    names = await service.engine.list_collections()
    return [Resource(uri=f"rf-mcp://collections/{quote(n, safe='')}/profiles", name=f"{n} calibration profiles",
                     mime_type="application/json") for n in names]


async def read_profiles(service: RFService, uri: str) -> ReadResourceResult:
    match = _URI.fullmatch(uri)
    collection = unquote(match.group(1)) if match else ""
    if not collection:
        raise MCPError(INVALID_PARAMS, "invalid_input: the resource names no collection (rf-mcp://collections/"
                                       "{collection}/profiles).")
    if len(collection.encode()) > 255:  # never answered for a shorter name it starts with
        raise MCPError(INVALID_PARAMS, "invalid_input: a collection name has at most 255 bytes.")
    try:
        summaries = await service.list_profiles(collection)
    except RFError as exc:  # the client asked for something that is not there: invalid params, not a crash
        raise MCPError(INVALID_PARAMS, f"{exc.code}: {exc}") from None
    text = json.dumps([s.model_dump(mode="json") for s in summaries], indent=1)
    return ReadResourceResult(contents=[TextResourceContents(uri=uri, mime_type="application/json", text=text)])
