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
    from benchmarks.quality import markdown, run

    args = argparse.Namespace(shared=str(SHARED), mini=True, queries=None, qrels=None, out=str(tmp_path))
    r = anyio.run(run, args)
    assert r["eval_queries"] == 20 and set(r["feedback_models"]) == {"bm25", "mpnet", "fused"}
    for name, fm in r["feedback_models"].items():
        assert fm["vanilla_through_rf_equals_vanilla"], name  # a=1,b=0,c=0 through RF is plain search
        t = fm["table"]
        assert t["vanilla"] == {**t["vanilla through RF (a=1,b=0,c=0)"], "cost": 0}
        assert [t[m]["cost"] for m in ("rerank top-5", "rerank top-25", "RF precision (5 seeds)", "RF recall (5 + 20)")] \
            == [5, 25, 5, 25]
        assert fm["verdict"] in ("passed", "failed")
        for mean, lo, hi in fm["ci_ndcg10"].values():
            assert lo <= mean <= hi
    md = markdown(r, "python -m benchmarks.quality --shared ../shared --mini")
    assert "| RF precision (5 seeds) | 5 |" in md
    json.dumps(r)
