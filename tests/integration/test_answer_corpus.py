"""Issue 9: a corpus of model replies in the styles of six model families
(``tests/data/answer_corpus.jsonl``), each with its gold answer and the verdict a careful
human grader gives it -- correct, wrong or no answer -- run through the eval path over HTTP:
``colm-graph eval --graphs small_only`` against a pool whose only model is an ``openai``
entry pointing at the fake OpenAI-compatible server, which answers every request with the
reply of the case whose question is in the prompt.

The corpus file itself is checked in ``tests/unit/test_answer_corpus_data.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from colm_graph.cli.main import main
from tests.support import pools
from tests.support.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[1] / "data" / "answer_corpus.jsonl"
ANSWER_TYPES = {"numeric": "number", "math": "math", "choice": "choice", "text": "text"}
MODEL_ID = "corpus-model"


def load_corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b if isinstance(b, str) else str(b.get("text", ""))
                       for b in content if isinstance(b, str | dict))
    return ""


class CorpusResponder:
    """Answers a chat request with the reply of the case whose question text occurs in the
    last user message (the longest such question, so no case can shadow another)."""

    def __init__(self, cases: list[dict[str, Any]]) -> None:
        self.cases = sorted(cases, key=lambda c: len(c["question"]), reverse=True)
        self.served: dict[str, int] = {}

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
        prompt = _text(users[-1].get("content")) if users else ""
        case = next((c for c in self.cases if c["question"] in prompt), None)
        if case is None:  # a 500: the row shows up as an error, named in the failure list
            raise LookupError(f"no corpus case matches the prompt {prompt[:200]!r}")
        self.served[case["id"]] = self.served.get(case["id"], 0) + 1
        out: dict[str, Any] = {"content": case["reply"]}
        if "reasoning_content" in case:
            out["reasoning_content"] = case["reasoning_content"]
        if "finish_reason" in case:
            out["finish_reason"] = case["finish_reason"]
        return out


def write_pool(path: Path, base_url: str) -> Path:
    return pools.write_pool(path, [
        pools.local_entry(MODEL_ID, MODEL_ID, base_url, price={"input": 0.0, "output": 0.0},
                          domains=["math", "general knowledge"]),
    ])


def write_dataset(path: Path, cases: list[dict[str, Any]]) -> Path:
    """Our dataset shape; ``answer_type`` says how the gold is read (a LaTeX gold is
    ``math``, not free text)."""
    rows = []
    for case in cases:
        row: dict[str, Any] = {"id": case["id"], "question": case["question"],
                               "answer": case["gold"], "answer_type": ANSWER_TYPES[case["kind"]],
                               "domain": case["family"]}
        if "choices" in case:
            row["choices"] = case["choices"]
        rows.append(json.dumps(row, ensure_ascii=False) + "\n")
    path.write_text("".join(rows), encoding="utf-8")
    return path


def verdict(row: dict[str, Any]) -> str:
    if row.get("error"):
        return f"error: {row['error']}"
    if row["correct"] and row["no_answer"]:
        return "correct+no_answer?"
    return "correct" if row["correct"] else "no_answer" if row["no_answer"] else "wrong"


def excerpt(text: str, n: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= n else "…" + flat[-n:]


def test_answer_corpus_scores_like_a_human_grader_over_http(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = load_corpus()
    responder = CorpusResponder(cases)
    out = tmp_path / "run"
    with FakeOpenAIServer(responder=responder) as srv:
        pool = write_pool(tmp_path / "models.yaml", srv.base_url)
        dataset = write_dataset(tmp_path / "corpus.jsonl", cases)
        capsys.readouterr()
        rc = main(["eval", "--out", str(out), "--graphs", "small_only", "--dataset",
                   str(dataset), "--models", str(pool), "--quiet"])
        captured = capsys.readouterr()
        requests = srv.chat_requests
    assert rc == 0, captured.err

    # the harness: every request went to our model and found its case, every case ran once
    assert requests and all(r["status"] == 200 for r in requests), \
        [r["status"] for r in requests if r["status"] != 200]
    assert {r["body"]["model"] for r in requests} == {MODEL_ID}
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in rows}
    assert len(by_id) == len(rows) == len(cases), "a case is missing or repeated in the results"
    assert set(responder.served) == set(by_id), set(by_id) ^ set(responder.served)
    assert all(r["graph"] == "small_only" for r in rows)

    mismatches = []
    for case in cases:
        row = by_id[case["id"]]
        got = verdict(row)
        if got != case["expected"]:
            mismatches.append(
                f"{case['id']:<16} expected {case['expected']:<9} got {got:<9}"
                f" answer={row['answer']!r} gold={case['gold']!r} [{case['note']}]"
                f" reply: {excerpt(case['reply'])!r}")
    assert not mismatches, (f"{len(mismatches)} of {len(cases)} corpus cases scored unlike"
                            " a human grader:\n" + "\n".join(mismatches))
