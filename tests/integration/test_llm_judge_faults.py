"""The HTTP LLM judge against a faulty endpoint: retries with backoff, timeouts, refused requests (seconds each)."""

from __future__ import annotations

import pytest

from rf_mcp.errors import ConfigError, ModelError
from tests.fake_llm import FakeLLM, Served
from tests.unit.test_llm_judge import DOCS, QUERY, build_scorer, http_judge, settings

pytestmark = pytest.mark.anyio


async def test_http_judge_transport_faults():
    with Served(FakeLLM(mode="error_once")) as served:
        async with http_judge(base_url=served.base_url, max_retries=1) as judge:
            assert len(await judge.score(QUERY, DOCS)) == 3  # a 503 is retried with backoff
    with Served(FakeLLM(delay=2.0)) as served:
        async with http_judge(base_url=served.base_url, timeout=0.2, max_retries=1) as judge:
            with pytest.raises(ModelError, match="failed after 2 attempts"):
                await judge.score(QUERY, DOCS)
    async with http_judge(base_url="http://127.0.0.1:9/v1", max_retries=0) as judge:
        with pytest.raises(ModelError, match="failed after 1 attempts"):
            await judge.score(QUERY, DOCS)
    with Served(FakeLLM(mode="bad_request")) as served:  # the endpoint's own error body is never forwarded
        async with http_judge(base_url=served.base_url) as judge:
            with pytest.raises(ModelError, match="HTTP 400") as err:
                await judge.score(QUERY, DOCS)
            assert "SECRET" not in str(err.value) and served.llm.requests == 1
        # credentials in base_url (user:password, a query-string key) reach the endpoint, never a message
        host = served.base_url.split("://", 1)[1]
        async with http_judge(base_url=f"http://svc:PASSWORD@{host}?api-key=QUERYKEY") as judge:
            with pytest.raises(ModelError, match="HTTP 400") as err:
                await judge.score(QUERY, DOCS)
            assert "PASSWORD" not in str(err.value) and "QUERYKEY" not in str(err.value) and host in str(err.value)
            assert served.llm.requests == 2
        for url in (f"{served.base_url}#token=FRAGKEY", f"{served.base_url};key=PARAMKEY"):
            async with http_judge(base_url=url) as judge:
                with pytest.raises(ModelError, match="refused the request") as err:
                    await judge.score(QUERY, DOCS)
                assert "FRAGKEY" not in str(err.value) and "PARAMKEY" not in str(err.value), str(err.value)
    for url in (f"svc:SECRETPW@{host}/v1", "ftp://example.org/v1", "http:///v1"):  # no http(s) host: refused at start
        with pytest.raises(ConfigError, match="base_url is not an http") as err:
            build_scorer(settings(transport="http", base_url=url))
        assert "SECRET" not in str(err.value)
    with pytest.raises(ConfigError, match="base_url"):
        build_scorer(settings(transport="http"))
