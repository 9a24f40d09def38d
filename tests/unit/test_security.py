"""Security and integrity at the boundary, through the real MCP client in process (in-memory engine, no model).

One class of the security review per section: files outside the data roots, read-only, tampered profiles, ids.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from mcp.client.client import Client

from rf_mcp.config import Config
from rf_mcp.domain.files import PathPolicy
from rf_mcp.domain.fingerprint import PROFILE_KEY_PREFIX
from rf_mcp.errors import GuardrailError, InputError
from rf_mcp.server import build_server
from tests import doubles, scenarios

pytestmark = pytest.mark.anyio
Q = "tau protein in the brain cortex"


def text(r) -> str:
    return "\n".join(c.text for c in r.content if getattr(c, "text", None))


def confined(templates, roots: list[Path], *, read_only: bool = False, key: str = "calibrated"):
    return doubles.service(engine=copy.deepcopy(templates[key]), files=PathPolicy.confined(roots), read_only=read_only)


# -- 1. tool arguments never reach files outside the data roots ----------------------------------------------
async def test_paths_outside_the_data_roots_get_one_uniform_refusal(templates, tmp_path):
    secret = tmp_path / "outside" / "secret.jsonl"
    secret.parent.mkdir()
    secret.write_text('{"_id": "s1", "title": "SECRET-TITLE", "text": "SECRET-CONTENT"}\n')
    (tmp_path / "outside" / "passwd").write_text("root:x:0:0:SECRET-ROOT:/root:/bin/bash\n" * 30)
    (tmp_path / "outside" / "qrels.tsv").write_text("q1\td1\tSECRET-SCORE\n")
    root = tmp_path / "roots"
    root.mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    service = confined(templates, [root])
    before = await service.engine.get_metadata("docs")
    attempts = [
        ("index", {"collection": "exfil", "input_path": str(secret)}),
        ("index", {"collection": "exfil", "input_path": str(tmp_path / "outside" / "missing.jsonl")}),
        ("index", {"collection": "exfil", "input_path": str(root / "escape" / "secret.jsonl")}),  # a symlink out
        ("index", {"collection": "exfil", "input_path": str(root / ".." / "outside" / "secret.jsonl")}),  # ..
        ("index", {"collection": "exfil", "input_path": "/etc/shadow"}),
        ("index", {"collection": "exfil", "input_path": "/dev/zero"}),
        ("calibrate", {"collection": "docs", "queries_path": str(tmp_path / "outside" / "passwd")}),
        ("evaluate", {"collection": "docs", "queries": [{"id": "q1", "text": Q}],
                      "qrels_path": str(tmp_path / "outside" / "qrels.tsv")}),
        ("evaluate", {"collection": "docs", "queries_path": "/proc/self/environ"}),
        ("index", {"collection": "docs", "input_path": str(root), "vectors_path": "/etc/passwd"}),  # a folder
    ]
    refusals = set()
    async with Client(build_server(service)) as client:
        for tool, args in attempts:
            r = await client.call_tool(tool, args)
            assert r.is_error, (tool, args)
            msg = text(r)
            assert "SECRET" not in msg and "root:x" not in msg and "Traceback" not in msg, msg
            refusals.add(msg.split(" file is not available")[1] if " file is not available" in msg else msg)
        assert len(refusals) == 1, refusals  # the same words whether the file exists, is readable or is a device
        assert not await service.engine.exists("exfil")
    assert await service.engine.get_metadata("docs") == before  # nothing was calibrated on /etc/passwd (stored state)


async def test_inline_data_and_files_inside_the_roots_still_work(templates, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "queries.txt").write_text("\n".join(doubles.queries()))
    service = confined(templates, [root], key="indexed")
    async with Client(build_server(service)) as client:
        r = await client.call_tool("calibrate", {"collection": "docs", "queries_path": str(root / "queries.txt"),
                                                 "limit": 20, "epochs": 100})
        assert not r.is_error, text(r)


async def test_no_error_quotes_file_content(templates, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "qrels.tsv").write_text("q1\td1\tSECRET-SCORE\n")
    (root / "binary.txt").write_bytes(b"\xd6\xff\xfe SECRET \x00\x81")
    (root / "bad.jsonl").write_text('{"_id": "d1", "text": SECRET-VALUE}\n')
    (root / "notext.jsonl").write_text('{"_id": "d1", "body": "SECRET"}\n')
    service = confined(templates, [root])
    async with Client(build_server(service)) as client:
        for tool, args in [("evaluate", {"collection": "docs", "queries": [{"id": "q1", "text": Q}],
                                         "qrels_path": str(root / "qrels.tsv")}),
                           ("calibrate", {"collection": "docs", "queries_path": str(root / "binary.txt")}),
                           ("index", {"collection": "x", "input_path": str(root / "bad.jsonl")}),
                           ("index", {"collection": "x", "input_path": str(root / "notext.jsonl")})]:
            r = await client.call_tool(tool, args)
            msg = text(r)
            assert r.is_error and "SECRET" not in msg and "internal_error" not in msg, msg
            assert "Line 1" in msg or "UTF-8" in msg, msg


# -- 6. read-only means read-only ------------------------------------------------------------------------------
async def test_read_only_changes_nothing(templates, tmp_path):
    service = confined(templates, [tmp_path], read_only=True)
    before = json.dumps(await service.engine.get_metadata("docs"), sort_keys=True)
    async with Client(build_server(service, read_only=True)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {"list_collections", "evaluate", "rf_search_precision", "rf_search_recall"}
        queries = [{"id": f"q{i}", "text": q} for i, q in enumerate(doubles.queries(20, seed=4))]
        r = await client.call_tool("evaluate", {"collection": "docs", "queries": queries})
        assert not r.is_error and "not stored" in r.structured_content["message"]
        r = await client.call_tool("calibrate", {"collection": "docs", "queries": doubles.queries()})
        assert r.is_error
    for call in (service.calibrate("docs", doubles.queries()), service.rollback("docs"),
                 service.index("docs", tmp_path / "x.jsonl"), service.optimize("docs")):
        with pytest.raises(GuardrailError, match="read-only"):
            await call
    assert json.dumps(await service.engine.get_metadata("docs"), sort_keys=True) == before


# -- 4. tampered or corrupt profiles are refused, never served -------------------------------------------------
@pytest.mark.parametrize("case", sorted(scenarios.TAMPERING))
async def test_tampered_profiles_are_refused_with_the_key_named(calibrated, case):
    target = await calibrated.target("docs")
    key = PROFILE_KEY_PREFIX + target.parts.fingerprint
    entry = (await calibrated.engine.get_metadata("docs"))[key]
    entry["current"] = scenarios.TAMPERING[case](json.loads(json.dumps(entry["current"])))
    await calibrated.engine.set_metadata("docs", {key: entry})
    with pytest.raises(GuardrailError, match=f"stored calibration {key} of 'docs' .* is invalid") as err:
        await calibrated.search_precision("docs", Q)
    assert "Recalibrate" in str(err.value)
    summary = (await calibrated.list_profiles("docs"))[0]
    assert summary.status == "invalid" and summary.profile is None and summary.error
    if case == "unknown schema":  # recalibrating repairs it (once: a calibration takes a second)
        report = await calibrated.calibrate("docs", doubles.queries(), doubles.TRAIN)
        assert report.profile.usable and (await calibrated.search_precision("docs", Q)).hits


# -- 5. string, UUID and integer document ids, through every tool ---------------------------------------------
async def test_string_uuid_and_integer_ids_through_every_tool(tmp_path):
    await scenarios.ids_through_every_tool(doubles.service(files=PathPolicy.confined([tmp_path])), tmp_path)


async def test_unknown_seed_ids_and_non_ids_are_clear_errors(calibrated):
    with pytest.raises(InputError, match="not found"):
        await calibrated.search_recall("docs", Q, seed_ids=["no-such-doc", "d1"])
    with pytest.raises(InputError, match="not found"):
        await calibrated.search_recall("docs", Q, seed_ids=[10**15, 10**15 + 1])


async def test_non_ascii_digit_ids_are_their_own_documents(tmp_path):
    """Ids in other digits (fullwidth 12, Arabic-Indic 3, superscript 2) are strings like any other: they never
    collide with "12" or "3", never crash, and resolve as seeds by exactly the id given."""
    docs = doubles.corpus(12)
    ids = ["12", "\uff11\uff12", "3", "\u0663", "\u00b2", "7"]  # "12", fullwidth "12", "3", Arabic-Indic "3"...
    for n, d in enumerate(docs):
        d["_id"] = ids[n] if n < len(ids) else f"other-{n}"
    path = tmp_path / "digits.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    rf = doubles.service()
    report = await rf.index("digits", path)
    assert report.points_count == 12
    from rf_mcp.domain import search

    for raw in ([ids[1], ids[3]], [ids[4], ids[0]]):
        points = await rf.engine.retrieve("digits", await search.resolve_seed_ids(await rf.target("digits"), raw))
        assert sorted(p.payload["doc_id"] for p in points) == sorted(raw)


async def test_numeric_doc_ids_resolve_and_mixed_kind_matches_are_refused(tmp_path):
    """Numeric doc_ids ("12074066", the BEIR norm) are looked up as strings and as integers, one condition per kind:
    Qdrant refuses a match list that mixes them, so the port refuses it too, on every engine."""
    from pydantic import ValidationError

    from rf_mcp.domain import search
    from rf_mcp.ports import Match

    with pytest.raises(ValidationError, match="all strings or all integers"):
        Match(any=["12074066", 12074066])
    for raw, value in (('{"value": true}', True), ('{"value": 1}', 1), ('{"value": "1"}', "1")):
        got = Match.model_validate_json(raw).value
        assert got == value and type(got) is type(value), raw  # JSON true is a boolean, never the number 1
    from rf_mcp.ports import Range

    for bad, needle in (('{"any": [true]}', "match a boolean with"), ('{"except": [false, true]}', "match a boolean"),
                        ('{"value": 9223372036854775808}', "less than"), ('{"any": [-9223372036854775809]}', "greater")):
        with pytest.raises(ValidationError, match=needle):
            Match.model_validate_json(bad)
    for bad in ('{"gte": true}', '{"gte": "2003"}', '{"lt": NaN}', '{"gt": Infinity}'):
        with pytest.raises(ValidationError):
            Range.model_validate_json(bad)
    assert Range.model_validate_json('{"gte": 2003}').gte == 2003
    docs = doubles.corpus(60)
    for n, d in enumerate(docs):
        d["_id"] = str(12_000_000 + n)
    path = tmp_path / "numeric.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    rf = doubles.service()
    await rf.index("numeric", path)
    seeds = [d["_id"] for d in docs[:3]]
    points = await rf.engine.retrieve("numeric", await search.resolve_seed_ids(await rf.target("numeric"), seeds))
    assert sorted(p.payload["doc_id"] for p in points) == seeds


def test_path_policy_resolves_before_checking(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    inside = root / "a.txt"
    inside.write_text("x")
    os.symlink(tmp_path, root / "up")
    policy = PathPolicy.confined([root])
    assert policy.open(str(inside), "queries") == inside.resolve()
    for bad in (root / "up" / "root" / ".." / "b", root / ".." / "b", "/etc/passwd", root / "up"):
        with pytest.raises(InputError, match="not available to this server"):
            policy.open(bad, "queries")
    assert PathPolicy.confined([]).describe() == "none (inline data only)"


def test_relative_paths_are_read_against_the_first_data_root_not_the_working_directory(tmp_path, monkeypatch):
    first, second, cwd = tmp_path / "first", tmp_path / "second", tmp_path / "cwd"
    for folder in (first, second, cwd):
        folder.mkdir()
    (first / "q.txt").write_text("from the first root")
    (second / "only-here.txt").write_text("x")
    (cwd / "q.txt").write_text("from the working directory")
    (cwd / "cwd-only.txt").write_text("x")
    monkeypatch.chdir(cwd)
    policy = PathPolicy.confined([first, second])
    assert policy.open("q.txt", "queries") == (first / "q.txt").resolve()
    assert policy.open("./q.txt", "queries").read_text() == "from the first root"
    for bad in ("cwd-only.txt", "only-here.txt", "../cwd/q.txt", "../second/only-here.txt/.."):
        with pytest.raises(InputError, match="not available to this server"):
            policy.open(bad, "queries")
    assert policy.open("../second/only-here.txt", "queries") == (second / "only-here.txt").resolve()  # still inside
    with pytest.raises(InputError, match="not available to this server"):
        PathPolicy.confined([]).open("q.txt", "queries")
    assert PathPolicy().open("q.txt", "queries").read_text() == "from the working directory"  # CLI / Python: the caller's


async def test_search_filters_apply_to_seeds_rf_and_fusion(calibrated):
    from rf_mcp.ports import FieldCondition, Filter, Match, Range

    flt = Filter(must=[FieldCondition(key="topic", match=Match(value="neuro"))],
                 must_not=[FieldCondition(key="year", range=Range(lt=2005))])
    for fusion in ("none", "sparse"):
        prec = await calibrated.search_precision("docs", Q, filter=flt, fusion=fusion, limit=15)
        rec = await calibrated.search_recall("docs", Q, filter=flt, fusion=fusion, budget=10)
        for h in prec.hits + rec.hits:
            assert h.payload["topic"] == "neuro" and h.payload["year"] >= 2005, (fusion, h.payload)
    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {"filterable_fields": {"year": "integer"}}})
    strict = doubles.service(cfg, engine=calibrated.engine)
    with pytest.raises(InputError, match="payload key 'topic', which is not filterable"):
        await strict.search_precision("docs", Q, filter=flt)


@pytest.mark.parametrize(("condition", "needle"), [
    ({"key": "year", "match": {"value": "2012"}}, "matches '2012', but the key holds integer values"),
    ({"key": "year", "match": {"value": True}}, "matches True, but the key holds integer values"),
    ({"key": "topic", "match": {"value": 3}}, "matches 3, but the key holds keyword values"),
    ({"key": "topic", "range": {"gte": 1}}, "is a range, but the key holds keyword values"),
    ({"key": "score", "match": {"value": 1}}, "matches exact values, but the key holds float values"),
])
async def test_filter_values_of_the_wrong_type_are_refused_by_name(calibrated, condition, needle):
    """A value of another type than the declared field matches nothing: say so, instead of a seed-count error."""
    from rf_mcp.ports import Filter

    cfg = Config.model_validate({"qdrant": {"backend": "memory"}, "collection": {
        "vector_name": "dense", "filterable_fields": {"year": "integer", "topic": "keyword", "score": "float"}}})
    strict = doubles.service(cfg, engine=calibrated.engine)
    with pytest.raises(InputError, match=f"condition on '{condition['key']}' " + needle.replace("'", ".")) as err:
        await strict.search_precision("docs", Q, filter=Filter.model_validate({"must": [condition]}))
    assert "filterable_fields" in err.value.fix


async def test_a_filter_that_leaves_fewer_than_two_points_says_so(calibrated):
    from rf_mcp.ports import Filter

    for flt in ({"must": [{"key": "topic", "match": {"value": "no-such-topic"}}]},
                {"must": [{"key": "year", "match": {"value": "2012"}}]}):  # undeclared fields: no type to check
        for call in (calibrated.search_precision, calibrated.search_recall):
            with pytest.raises(InputError, match="The filter leaves 0 matching point") as err:
                await call("docs", Q, filter=Filter.model_validate(flt))
            assert "value type" in err.value.fix


# -- 3. a cancelled calibration stores nothing (the library's per-epoch check: tests/integration/test_trainer_double.py)
async def test_cancelled_calibration_stores_nothing(templates):
    """Cancel while the training queries are being prepared: the call returns and no profile is stored."""
    import anyio

    rf = doubles.service(engine=copy.deepcopy(templates["indexed"]))
    halfway = anyio.Event()

    async def progress(done: float, total: float, message: str) -> None:
        if done >= total / 2:
            halfway.set()
            await anyio.sleep(10)  # the cancellation lands here, in the middle of the training data

    async with anyio.create_task_group() as tg:
        async def calibrate() -> None:
            await rf.calibrate("docs", doubles.queries(), doubles.TRAIN, progress=progress)

        async def cancel() -> None:
            await halfway.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(calibrate)
        tg.start_soon(cancel)
    assert halfway.is_set() and rf.trainer.trained == 0  # type: ignore[attr-defined]  # the double's count
    assert await rf.list_profiles("docs") == [] or all(p.profile is None for p in await rf.list_profiles("docs"))


async def test_new_collection_names_are_plain(tmp_path):
    """index creates collections only under plain names (they become folder names and are shown to people); an
    existing collection keeps whatever name another tool gave it."""
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in doubles.corpus(20)) + "\n")
    rf = doubles.service()
    for bad in ("a\nb", "\u202eevil", " ", "a:b", "a\u2215b", "\uff0e\uff0e", "*", "-rf", "_x", "\u00e9" * 200, ""):
        with pytest.raises(InputError, match=r"not a name rf-mcp creates|collection: String should have at least 1"):
            await rf.index(bad, path)
    assert await rf.engine.list_collections() == []
    for good in ("docs", "scifact-mini", "x_1", "\u00e9t\u00e9"):
        assert (await rf.index(good, path)).points_count == 20
    from rf_mcp.ports import CollectionSpec

    await rf.engine.create_collection("my docs", CollectionSpec("dense", doubles.DIM))  # made by another tool
    with pytest.raises(GuardrailError, match=r"not created by rf-mcp.*allow_foreign"):  # not without being told to
        await rf.index("my docs", path)
    assert (await rf.engine.describe("my docs")).points_count == 0
    assert (await rf.index("my docs", path, allow_foreign=True)).points_count == 20


async def test_corpus_lines_with_lone_surrogates_or_repeated_ids(tmp_path):
    """A lone surrogate escape is refused with its line named, before any collection exists; a repeated id is said,
    not merged silently; an escaped surrogate pair (an emoji) is ordinary text."""
    docs = doubles.corpus(10)
    rf = doubles.service()
    for field in ("text", "_id"):
        lines = [json.dumps(d) for d in docs]
        lines[3] = lines[3].replace(f'"{field}": "', f'"{field}": "\\ud800', 1)
        path = tmp_path / f"bad-{field}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(InputError, match="Line 4 of the corpus file holds a lone surrogate"):
            await rf.index("docs", path)
    assert await rf.engine.list_collections() == []  # nothing half-created
    lines = [json.dumps(d) for d in docs] + [json.dumps({**docs[1], "text": "again \\ud83d\\ude00"})]
    path = tmp_path / "repeated.jsonl"
    path.write_text("\n".join(lines).replace("\\\\ud83d\\\\ude00", "\\ud83d\\ude00") + "\n")
    report = await rf.index("docs", path)
    assert report.documents == 10 and any("1 document id(s) came more than once" in n and "'d1'" in n
                                          for n in report.notes), report.notes
