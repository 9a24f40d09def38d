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
    """`rf-mcp demo` (the README's first run command), offline: the shared MiniLM retriever and BM25 feedback (no
    cross-encoder can be downloaded here). Every step runs and says what it did; a refusal is reported, not raised."""
    cfg = make_config(tmp_path, tmp_path / "data")
    human = subprocess.run([sys.executable, "-m", "rf_mcp", "--config", str(cfg), "demo"], capture_output=True,
                           text=True, timeout=600)
    assert human.returncode == 0, human.stderr[-2000:]
    first = human.stderr.splitlines()[0]  # where the data goes, said before any model loads
    assert first.startswith("rf-mcp demo: data in ") and str(tmp_path / "data") in first and str(cfg) in first, first
    out = human.stdout
    assert "1. index: indexed 263 documents into 'demo'" in out
    for step in ("2. calibrate (training queries): ", "3. evaluate (held-out queries with judgments): ",
                 "4. searches for ", "-- the same without feedback (vanilla=true):"):
        assert step in out, out
    report = ok(rf(cfg, "demo", "-c", "demo2"))
    assert report["index"]["documents"] == 263 and report["calibration"]["profile"]["query_count"] == 70
    assert report["zero_cost"]["hits"]
    if report["calibration"]["profile"]["usable"]:
        assert report["evaluation"]["evaluation"]["ground_truth"]["queries"] == 30
    else:  # both RF searches are refused with the calibration's reason; evaluate measures the baselines instead
        assert len(report["refusals"]) == 2 and all("unusable" in x for x in report["refusals"])
        ev = report["evaluation"]
        assert ev["evaluation"] is None and not ev["stored"] and ev["baselines"]["queries"] == 30
