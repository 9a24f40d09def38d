"""Models loaded by name: from fastembed's cache, downloaded, or, with no cache and no download host, a fast error
with the offline recipe (not fastembed's retry loop)."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest

from rf_mcp.adapters import fastembed_models
from rf_mcp.config import RetrieverSettings
from rf_mcp.errors import ModelError


class FakeModel:
    """fastembed's model class as ``load`` uses it; a download is recorded, a cache miss raises."""

    cached: ClassVar[bool] = False
    calls: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, name: str, **kwargs: Any) -> None:
        FakeModel.calls.append(kwargs)
        if kwargs.get("local_files_only") and not FakeModel.cached:
            raise ValueError(f"Could not load model {name} from any source.")

    @classmethod
    def list_supported_models(cls) -> list[dict[str, Any]]:
        return [{"model": "sentence-transformers/all-MiniLM-L6-v2"}]


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeModel.cached, FakeModel.calls = False, []
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)


def test_no_cache_and_no_network_fails_at_once_with_the_offline_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    probed: list[list[tuple[str, int]]] = []
    monkeypatch.setattr(fastembed_models, "reachable", lambda hosts, timeout=3.0: probed.append(hosts) or False)
    t0 = time.perf_counter()
    with pytest.raises(ModelError) as err:
        fastembed_models.load(FakeModel, RetrieverSettings(), "retriever", embedding=True)
    assert time.perf_counter() - t0 < 1
    assert [c.get("local_files_only") for c in FakeModel.calls] == [True]  # the cache was asked; no download tried
    assert probed == [[("huggingface.co", 443), ("storage.googleapis.com", 443)]]
    assert "not in fastembed's cache and cannot be downloaded" in err.value.problem
    assert err.value.fix is not None and "[retriever].model_path" in err.value.fix and '"bm25"' in err.value.fix


def test_a_cached_model_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeModel.cached = True
    monkeypatch.setattr(fastembed_models, "reachable", lambda *a, **k: pytest.fail("probed the network"))
    assert isinstance(fastembed_models.load(FakeModel, RetrieverSettings(), "retriever", embedding=True), FakeModel)


@pytest.mark.parametrize("env", [{}, {"HTTPS_PROXY": "http://proxy:3128"}, {"HF_HUB_OFFLINE": "1"}])
def test_reachable_or_proxied_downloads_as_fastembed_does(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(fastembed_models, "reachable", lambda hosts, timeout=3.0: not env or pytest.fail("probed"))
    fastembed_models.load(FakeModel, RetrieverSettings(), "retriever", embedding=True)
    assert [c.get("local_files_only") for c in FakeModel.calls] == [True, None]


def test_hf_endpoint_replaces_the_hub_host() -> None:
    assert fastembed_models.download_hosts({"HF_ENDPOINT": "http://mirror.local:8080"})[0] == ("mirror.local", 8080)
    assert fastembed_models.download_hosts({"HF_ENDPOINT": "https://hf-mirror.com"})[0] == ("hf-mirror.com", 443)


def test_reachable_gives_up_within_its_timeout() -> None:
    t0 = time.perf_counter()
    assert not fastembed_models.reachable([("nonexistent.invalid", 443)], timeout=0.5)  # .invalid never resolves
    assert time.perf_counter() - t0 < 3
