"""The rf-mcp command line end to end: one JSON document on stdout, progress on stderr, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.common import MINI, SCIFACT, make_config, mini_vectors, needs_shared

pytestmark = needs_shared


def rf(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(cfg), "--json", *args],
                          capture_output=True, text=True, timeout=600)


def ok(r: subprocess.CompletedProcess) -> dict | list:
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)  # the whole stdout is one JSON document


def test_cli_workflow_on_scifact_mini(tmp_path):
    cfg = make_config(tmp_path, tmp_path / "data")
    out = ok(rf(cfg, "index", "-c", "mini", "-i", str(MINI / "corpus.jsonl"), "--vectors", str(mini_vectors(tmp_path))))
    assert out["points_count"] == 500

    refused = rf(cfg, "search", "-c", "mini", "stem cells")
    assert refused.returncode == 3
    assert json.loads(refused.stdout)["error"]["code"] == "refused"

    r = rf(cfg, "calibrate", "-c", "mini", "-q", str(SCIFACT / "queries.jsonl"), "--ids-from",
           str(SCIFACT / "qrels" / "train.tsv"), "--max-queries", "60", "--epochs", "300")
    cal = ok(r)
    assert "training query" in r.stderr  # progress went to stderr
    assert cal["profile"]["usable"] and cal["feedback_scores_used"] == cal["profile"]["query_count"] * 50

    ev = ok(rf(cfg, "evaluate", "-c", "mini", "-q", str(MINI / "queries.jsonl"), "--qrels",
               str(MINI / "qrels" / "test.tsv"), "--max-queries", "12"))
    assert ev["evaluation"]["ground_truth"]["queries"] == 12

    if ev["evaluation"]["verdict"] != "failed":
        prec = ok(rf(cfg, "search", "-c", "mini", "--mode", "precision", "APOE4 and tau phosphorylation"))
        assert prec["feedback_scores_used"] == 5
    rec = rf(cfg, "search", "-c", "mini", "--mode", "recall", "--budget", "10", "APOE4 and tau phosphorylation")
    if ev["evaluation"]["verdict"] == "failed":
        assert rec.returncode == 3 and "ground-truth" in json.loads(rec.stdout)["error"]["message"]
    else:
        assert ok(rec)["feedback_scores_used"] == 15

    profiles = ok(rf(cfg, "profiles"))
    fusion = ev["evaluation"]["fusion"]
    assert len(profiles) == 1 and profiles[0]["profile"]["evaluations"][fusion]["verdict"] == ev["evaluation"]["verdict"]


def test_cli_human_output_and_input_errors(tmp_path):
    cfg = make_config(tmp_path, tmp_path / "data")
    r = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(cfg), "profiles", "-c", "nope"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "does not exist" in r.stderr and r.stdout == ""
    r = rf(cfg, "index", "-c", "x", "-i", str(tmp_path / "missing.jsonl"))
    assert r.returncode == 2
    assert json.loads(r.stdout)["error"]["message"].startswith("The corpus file")


def test_demo_runs_offline_with_the_shared_model(tmp_path):
    """`rf-mcp --json demo` (the README's first run command), offline: the shared MiniLM retriever and BM25 feedback
    (no cross-encoder can be downloaded here). On the bundled support knowledge base the calibration is usable, the
    evaluation gate passes and both RF searches are served with fusion "none"; their nDCG@10 on the judged queries
    is printed beside plain and hybrid search, from the evaluation's ground-truth rows."""
    from rf_mcp.demo import DemoReport
    from rf_mcp.text import render_text

    cfg = make_config(tmp_path, tmp_path / "data")
    r = rf(cfg, "demo")
    first = r.stderr.splitlines()[0]  # where the data goes, said before any model loads
    assert first.startswith("rf-mcp demo: data in ") and str(tmp_path / "data") in first and str(cfg) in first, first
    report = ok(r)
    steps = report["steps"]
    assert [s["step"] for s in steps] == ["index", "calibrate", "evaluate", "rf_search_precision", "rf_search_recall",
                                          "search", "search"]
    assert report["collection"] == "rf-demo" and report["index"]["documents"] == 547
    assert report["calibration"]["profile"]["query_count"] == 120 and report["calibration"]["profile"]["usable"]
    gt = report["evaluation"]["evaluation"]["ground_truth"]
    assert gt["queries"] == 40 and report["evaluation"]["evaluation"]["fusion"] == "none"
    rows = {m["method"]: m["ndcg_at_10"] for m in gt["methods"]}
    by = {s["step"]: s for s in steps}
    for name, row in (("rf_search_precision", "rf precision"), ("rf_search_recall", "rf recall")):
        step = by[name]
        assert step["status"] == "served", step
        assert (step["ndcg_at_10"], step["plain_ndcg_at_10"], step["hybrid_ndcg_at_10"]) == (
            rows[row], rows["vanilla"], rows["hybrid"])
    assert report["precision"]["feedback_scores_used"] == 5 and report["recall"]["feedback_scores_used"] == 25
    assert report["precision"]["profile"]["fingerprint"] == report["calibration"]["profile"]["fingerprint"]
    assert [s["status"] for s in steps[-2:]] == ["served", "served"]
    assert report["zero_cost"]["feedback_scores_used"] == 0 and report["hybrid"]["method"] == "hybrid"
    assert report["advice"] == gt["advice"] and not report["refusals"]

    human = render_text(DemoReport.model_validate(report))  # the text `rf-mcp demo` prints without --json
    for line in ("1. index [served]: ", "indexed 547 documents into 'rf-demo'", "2. calibrate [served]",
                 "3. evaluate [served]", "4. rf_search_precision [served]", "5. rf_search_recall [served]",
                 "6. search [served]", "7. search [served]", "  seeds: ", "  signal: ", "  fingerprint: ",
                 "  a, b, c: ", f"this RF mode {rows['rf precision']:.3f}, plain {rows['vanilla']:.3f}, hybrid "
                 f"{rows['hybrid']:.3f}", "Advice from the evaluation: "):
        assert line in human, line
