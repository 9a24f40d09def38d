"""A third-party scorer discovered through the ``rf_mcp.scorers`` entry-point group and used end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rf_mcp.adapters.scorers.bm25 import BM25Scorer
from rf_mcp.bootstrap import open_service
from rf_mcp.config import FeedbackSettings, load_config
from rf_mcp.domain.models import TrainSettings
from rf_mcp.errors import ConfigError
from rf_mcp.factory import build_scorer, scorer_types
from tests.common import make_config, needs_shared, train_queries

PLUGIN = Path(__file__).parent.parent / "plugin_example"


@pytest.fixture
def plugin_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN))
    yield
    sys.modules.pop("rf_mcp_example_scorer", None)


def test_unknown_type_lists_what_is_available():
    with pytest.raises(ConfigError) as err:
        build_scorer(FeedbackSettings(type="overlap"))
    assert "'bm25', 'fastembed', 'llm'" in str(err.value) and "rf_mcp.scorers" in str(err.value)


def test_plugin_is_discovered_with_its_options(plugin_on_path):
    assert "overlap" in scorer_types()
    scorer = build_scorer(FeedbackSettings(type="overlap", options={"min_len": 5}))
    assert scorer.identity == "example-overlap(min_len=5)"


@needs_shared
@pytest.mark.anyio
async def test_plugin_end_to_end(plugin_on_path, mini_template, tmp_path):
    import shutil

    shutil.copytree(mini_template, tmp_path / "data")
    cfg = load_config(make_config(tmp_path, tmp_path / "data", 'type = "overlap"\n[feedback.options]\nmin_len = 4'),
                      env={})
    async with open_service(cfg) as rf:
        report = await rf.calibrate("mini", train_queries(40), TrainSettings(limit=20, epochs=200))
        assert report.profile.feedback == "example-overlap(min_len=4)"
        assert report.profile.usable, report.message
        res = await rf.search_precision("mini", "APOE4 and tau phosphorylation in neurons")
        assert res.profile.fingerprint == report.profile.fingerprint and res.feedback_scores_used == 5
        assert rf.scorer.calls >= 40
        # the BM25 profile of the template is still there, untouched
        assert {s.profile.feedback for s in await rf.list_profiles("mini")} == {BM25Scorer().identity,
                                                                                "example-overlap(min_len=4)"}
