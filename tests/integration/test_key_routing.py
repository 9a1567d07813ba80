"""A key goes only to the endpoint whose pool entry names its variable (issue 10, keys): with
``OPENAI_API_KEY`` set, a local OpenAI-compatible entry without ``api_key_env`` must send a
fixed placeholder, seen here in the headers the local server logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from colm_graph import ModelPool, load_graph
from colm_graph.cli.main import main
from colm_graph.errors import PoolError
from tests.support.openai_server import FakeOpenAIServer
from tests.support.pools import local_entry, write_pool

pytestmark = pytest.mark.integration

OPENAI_KEY = "sk-proj-users-real-openai-key-0123456789"
OWN_KEY = "sk-local-own-key-9876543210"


def pool_file(path: Path, base_url: str, *, own_key: bool) -> Path:
    key = {"api_key_env": "COLM_OWN_KEY"} if own_key else {}
    return write_pool(path, [local_entry("lan-model", "m", base_url, **key)])


def auth_headers(srv: FakeOpenAIServer) -> list[str]:
    return [r["headers"].get("authorization", "")
            for r in srv.requests.for_path("/v1/chat/completions")]


def test_a_local_entry_never_receives_the_openai_key(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    with FakeOpenAIServer(responder=lambda body: "Answer: 4") as srv:
        pool = pool_file(tmp_path / "pool.yaml", srv.base_url, own_key=False)
        rc = main(["run", "What is 2 + 2?", "--graph", "single", "--models", str(pool),
                   "--role", "solver=lan-model", "--json"])
        headers = auth_headers(srv)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert headers and all(h == "Bearer not-needed" for h in headers), headers
    assert all(OPENAI_KEY[:8] not in h for h in headers)
    assert OPENAI_KEY not in out


def test_an_entry_that_names_its_variable_sends_that_key_only(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("COLM_OWN_KEY", OWN_KEY)
    with FakeOpenAIServer(responder=lambda body: "Answer: 4") as srv:
        pool = ModelPool.from_yaml(pool_file(tmp_path / "pool.yaml", srv.base_url,
                                             own_key=True))
        load_graph("single", pool=pool, roles={"solver": "lan-model"}).invoke(
            {"question": "What is 2 + 2?"})
        headers = auth_headers(srv)
    assert headers == [f"Bearer {OWN_KEY}"]


def test_a_paid_entry_at_a_custom_endpoint_must_name_its_key(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    path = tmp_path / "pool.yaml"
    path.write_text("models:\n  - name: proxy\n    provider: openai\n    model: m\n"
                    "    base_url: http://127.0.0.1:9/v1\n    tier: paid\n")
    with pytest.raises(PoolError, match=r"pool.yaml:2: .*api_key_env.*NAME of the variable"):
        ModelPool.from_yaml(path)
