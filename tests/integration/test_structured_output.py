"""``answer_format: json``: answer, verify and score nodes ask an OpenAI-compatible endpoint for
a JSON-schema reply through the real ``ChatOpenAI``; a reply that does not validate is read
as text. Also: ``reasoning_content`` beside the content is kept, never read as the answer."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool, ledger_totals, load_graph
from tests.support.fakes import ScriptedChatModel
from tests.support.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration


def _user(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else " ".join(
        b.get("text", "") for b in content if isinstance(b, dict))


def write_pool(path: Path, base_url: str, answer_format: str = "json") -> Path:
    path.write_text(textwrap.dedent(f"""\
        models:
          - name: small
            provider: openai
            model: small
            base_url: {base_url}
            tier: local
            answer_format: {answer_format}
          - name: checker
            provider: openai
            model: checker
            base_url: {base_url}
            tier: local
            answer_format: {answer_format}
          - name: big
            provider: openai
            model: big
            base_url: {base_url}
            api_key_env: COLM_TEST_KEY
            tier: paid
            price: {{input: 5.0, output: 15.0}}
        """))
    return path


class JsonResponder:
    """Writes JSON when asked for a schema, the way a vLLM/OpenAI endpoint does; ``broken``
    models ignore the schema and write prose (what a proxy without support does)."""

    def __init__(self, broken: set[str] = frozenset(), confidence: float = 0.9) -> None:
        self.broken, self.confidence = broken, confidence

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        fmt = body.get("response_format")
        name = (fmt or {}).get("json_schema", {}).get("name")
        if body["model"] in self.broken or fmt is None:
            if "<candidate>" in _user(body):
                return {"content": "It checks out. Confidence: 20%"}
            return {"content": "Counting carefully, the total is **12**."}
        if name == "confidence":
            return {"content": json.dumps({"reasoning": "re-derived it",
                                           "confidence": self.confidence})}
        return {"content": json.dumps({"reasoning": "3 * 4 = 12", "answer": "12"})}


def run_cascade(tmp_path: Path, responder: JsonResponder, monkeypatch: pytest.MonkeyPatch,
                answer_format: str = "json") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    monkeypatch.setenv("COLM_TEST_KEY", "sk-test")
    with FakeOpenAIServer(responder=responder) as srv:
        pool = ModelPool.from_yaml(write_pool(tmp_path / "pool.yaml", srv.base_url,
                                              answer_format))
        graph = load_graph("cascade", pool=pool,
                           params={"verifier": "self_check", "samples": 1},
                           roles={"local": "small", "verifier": "checker", "paid": "big"})
        out = graph.invoke({"question": "What is 3 * 4?"})
        bodies = [r["body"] for r in srv.requests.for_path("/v1/chat/completions")]
    return out, bodies


def test_json_models_are_asked_for_a_schema_and_their_reply_is_read(tmp_path, monkeypatch):
    out, bodies = run_cascade(tmp_path, JsonResponder(), monkeypatch)
    formats = {b["model"]: b.get("response_format") for b in bodies}
    assert formats["small"]["json_schema"]["name"] == "answer"
    assert set(formats["small"]["json_schema"]["schema"]["required"]) == {"reasoning",
                                                                        "answer"}
    assert formats["checker"]["json_schema"]["name"] == "confidence"
    assert out["answer"] == "12"
    assert out["scores"]["verify"] == pytest.approx(0.9)
    assert ledger_totals(out["ledger"])["paid_calls"] == 0
    assert all(r["structured"] == "valid" for r in out["ledger"])


def test_a_reply_that_ignores_the_schema_is_read_as_text(tmp_path, monkeypatch):
    out, _ = run_cascade(tmp_path, JsonResponder(broken={"small", "checker"}), monkeypatch)
    assert out["answer"] == "12"                     # read from "the total is **12**"
    assert out["scores"]["verify"] == pytest.approx(0.2)        # "Confidence: 20%" -> escalate
    assert ledger_totals(out["ledger"])["paid_calls"] == 1
    local = [r for r in out["ledger"] if r["tier"] == "local"]
    assert all(r["structured"] == "invalid: read as text" for r in local)


def test_text_models_are_not_asked_for_a_schema(tmp_path, monkeypatch):
    out, bodies = run_cascade(tmp_path, JsonResponder(), monkeypatch, answer_format="text")
    assert all("response_format" not in b for b in bodies)
    assert all("structured" not in r for r in out["ledger"])


def test_a_chat_model_without_structured_output_falls_back_to_text():
    pool = ModelPool()
    pool.add("small", ScriptedChatModel(reply="So **7**."), tier="local", answer_format="json")
    out = load_graph("single", pool=pool, roles={"solver": "small"}).invoke({"question": "q"})
    assert out["answer"] == "7"


def test_reasoning_content_is_kept_and_never_read_as_the_answer(tmp_path, monkeypatch):
    monkeypatch.setenv("COLM_TEST_KEY", "sk-test")
    def responder(body: dict[str, Any]) -> dict[str, Any]:
        return {"reasoning_content": "Maybe 400? Answer: 400. No: 17*23 = 391, + 48 = 439.",
                "content": "The answer is 439."}

    with FakeOpenAIServer(responder=responder) as srv:
        pool = ModelPool.from_yaml(write_pool(tmp_path / "pool.yaml", srv.base_url, "text"))
        out = load_graph("single", pool=pool, roles={"solver": "small"}).invoke(
            {"question": "What is 17 * 23 + 48?"})
    assert out["answer"] == "439"
    assert "Answer: 400" in out["responses"][0]["reasoning"]
    assert "400" not in out["responses"][0]["text"]
