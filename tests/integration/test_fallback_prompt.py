"""A local stand-in for a paid call gets its own prompt, not the paid model's (issue 10,
inputs): when the paid model fails, or the budget cannot cover it, the fallback's request
names the fallback's own specialisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from colm_graph.cli.main import main
from tests.support.openai_server import FaultServer, message_text
from tests.support.pools import small_big_pool

pytestmark = pytest.mark.integration


def pool_file(path: Path, base_url: str) -> Path:
    return small_big_pool(path, base_url, small={"domains": ["tide tables"]},
                          big={"domains": ["frontier research mathematics"]})


@pytest.mark.parametrize("how", ["paid model fails", "budget spent"])
def test_the_fallback_is_prompted_as_itself(tmp_path, capsys, monkeypatch, how):
    monkeypatch.setenv("COLM_TEST_KEY", "sk-test-fallback-prompt")
    schedule = {"big": ["500"] * 3} if how == "paid model fails" else {}
    extra = ["--max-paid-usd", "0.00001"] if how == "budget spent" else []
    with FaultServer(schedule) as srv:
        rc = main(["run", "What is 2 + 2?", "--graph", "single", "--json", *extra,
                   "--models", str(pool_file(tmp_path / "pool.yaml", srv.base_url))])
        small = srv.requests_for("small")
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["degraded"] is True
    assert len(small) == 1
    text = message_text(small[0]["body"])
    assert "tide tables" in text
    assert "frontier research mathematics" not in text
