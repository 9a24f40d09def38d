"""The bundled demo data (rf_mcp/demo_data) is what scripts/make_demo_data.py writes, and its judgments follow from
what each document is about: the identifier or the model and symptom a query names."""

from __future__ import annotations

import importlib.util
import json
import random
from collections import Counter

from rf_mcp.demo import demo_folder, demo_queries
from rf_mcp.domain.datasets import read_qrels
from tests.common import ROOT


def _generator():
    spec = importlib.util.spec_from_file_location("make_demo_data", ROOT / "scripts" / "make_demo_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lines(name: str) -> list[dict]:
    return [json.loads(x) for x in (demo_folder() / name).read_text(encoding="utf-8").splitlines() if x.strip()]


def test_the_committed_data_is_the_generators_output():
    gen = _generator()
    docs, queries, qrels = gen.build(random.Random(gen.SEED))
    assert _lines("corpus.jsonl") == docs and _lines("queries.jsonl") == queries
    assert read_qrels(demo_folder() / "qrels.tsv") == {q: {d: s for qq, d, s in qrels if qq == q} for q, _, _ in qrels}


def test_judgments_follow_from_the_identifiers():
    docs = {d["_id"]: d for d in _lines("corpus.jsonl")}
    queries = {q["_id"]: q for q in _lines("queries.jsonl")}
    qrels = read_qrels(demo_folder() / "qrels.tsv")
    train, test = demo_queries()
    assert len(docs) == len(set(docs)) and (len(train), len(test)) == (120, 40)
    assert set(qrels) == {q.id for q in test} and not set(train) & {q.text for q in test}
    kinds = Counter(queries[q]["kind"] for q in qrels)
    assert kinds == {"code": 20, "part": 10, "symptom": 10}
    for qid, rels in qrels.items():
        q = queries[qid]
        best = [d for d, s in rels.items() if s == 2]
        assert len(best) == 1 and all(d in docs for d in rels)
        if q["kind"] == "symptom":  # no identifier: the model and the symptom, as the article states them
            doc = docs[best[0]]
            assert not any(w.startswith(("E-", "part")) for w in q["text"].split())
            sign = doc["text"].split("Typical sign: ")[1].split(". ")[0]
            model = doc["title"].split()[2]  # "E-1234: Brand MODEL component ..."
            assert sign in q["text"] and model in q["text"].replace(":", " ").replace(",", " ").split(), (qid, sign)
            continue
        ident = next(w.strip(",?") for w in q["text"].split() if w.startswith("E-") or w[:3].isdigit())
        for d in rels:  # every judged document names the identifier the query asks about
            assert ident in docs[d]["title"] + " " + docs[d]["text"], (qid, d, ident)
        # and every document naming it in its title is judged (no unjudged answer)
        assert {d for d, x in docs.items() if ident in x["title"]} <= set(rels), (qid, ident)
