"""The quality benchmark's smoke version on scifact-mini (the full run is not part of CI)."""

from __future__ import annotations

import argparse
import json

import anyio
import pytest

from tests.common import SCIFACT, SHARED, needs_shared

pytestmark = [needs_shared, pytest.mark.skipif(not (SCIFACT / "embeddings" / "mpnet_corpus.npy").is_file(),
                                               reason="needs the cached SciFact embeddings in ../shared")]


def test_quality_benchmark_smoke(tmp_path):
    from benchmarks.quality import markdown, run, write

    args = argparse.Namespace(shared=str(SHARED), mini=True, queries=None, qrels=None, out=str(tmp_path))
    r = anyio.run(run, args, tmp_path)
    assert r["eval_queries"] == 20 and set(r["feedback_models"]) == {"bm25", "mpnet", "fused"}
    for name, fm in r["feedback_models"].items():
        if not fm["usable"]:
            continue
        assert fm["vanilla_through_rf_equals_vanilla"], name  # a=1,b=0,c=0 through RF is plain search
        t = fm["table"]
        assert {"vanilla", "hybrid", "rf precision", "rf recall", "rf precision+sparse", "rf recall+sparse"} <= set(t)
        assert [t[m]["cost"] for m in ("rerank top-5", "rerank top-25", "rf precision", "rf recall")] == [5, 25, 5, 25]
        assert set(fm["verdicts"]) == {"none", "sparse"}
        assert all(len(v) == 20 for v in fm["per_query_ndcg10"].values())  # per-query values for paired tests
        for mean, lo, hi in fm["ci_ndcg10"].values():
            assert lo <= mean <= hi
    md = markdown(r)
    assert "| rf precision+sparse | 5 |" in md and "Command: `" in md
    write(r, tmp_path)
    assert json.loads((tmp_path / "quality-mini.json").read_text())["mini"] is True


def test_calibration_queries_are_never_evaluated():
    from benchmarks import scifact

    data = scifact.load(SHARED, False, qrels_path=str(SCIFACT / "qrels" / "train.tsv"))
    assert data.train and not {q.text for q in data.eval} & set(data.train)
    assert data.notes == [f"{len(data.train)} judged queries left out: used for calibration"]
    assert scifact.load(SHARED, False).notes == []  # dev judgments: no calibration query among them


def test_judge_study_smoke(tmp_path):
    """The judge-quality study (a simulation) end to end on scifact-mini: its rows, intervals and files."""
    from benchmarks.judges import run, write

    args = argparse.Namespace(shared=str(SHARED), mini=True, accuracies=[0.7, 1.0], seed=11, out=str(tmp_path))
    r = anyio.run(run, args)
    assert [lv["accuracy"] for lv in r["levels"]] == [0.7, 1.0]
    for lv in r["levels"]:
        for row in lv["rows"].values():
            assert row["ci"][0] <= row["ndcg_at_10"] <= row["ci"][1]
        assert all(len(v) == r["eval_queries"] for v in lv["per_query_ndcg10"].values())
    write(r, tmp_path)
    md = (tmp_path / "JUDGES-mini.md").read_text()
    assert "SIMULATION" in md and "## Crossing points (simulation)" in md
