"""Graph variants (``cope``, ``colm_vlm``) over the real ChatOpenAI client, against the
OpenAI-compatible server on 127.0.0.1 (``tests/support/openai_server.py``)."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest

from colm_graph import ModelPool, ledger_totals, load_graph
from colm_graph.core.prompts import read_blocks
from tests.support.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.integration

SECRET = "sk-colm-variants-3d9a61be"
KEY_ENV = "COLM_VARIANTS_KEY"
QUESTION = "What is 17 * 23 + 48?"
RIGHT = "439"
PRICE_IN, PRICE_OUT = 5.0, 15.0  # USD per million tokens, the paid model's price
MODEL_IDS = {"small": "m-small", "large": "m-large"}  # pool name -> model id at the endpoint
POOL_NAMES = {v: k for k, v in MODEL_IDS.items()}


def _text(content: Any) -> str:
    """Text of a message content as the client sent it (a string or content blocks)."""
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if b.get("type") == "text")


def _system(body: dict[str, Any]) -> str:
    return "".join(_text(m["content"]) for m in body["messages"] if m["role"] == "system")


def _user(body: dict[str, Any]) -> str:
    return _text(body["messages"][-1]["content"])


# -- COPE --------------------------------------------------------------------------------------
class CopeResponder:
    """Planner calls get a plan (no final answer) naming the planner's stage; executor calls
    get ``Answer: N``. The large executor always answers RIGHT; the small one answers RIGHT
    when following the plan of a stage in ``small_agrees_in``, else ``430 + seed`` (so its
    samples disagree). The large executor runs in stage 3 only (following the stage-2 plan,
    which stage 3 reuses). Every call's usage is distinct and kept in ``calls``."""

    def __init__(self, small_agrees_in: set[int]) -> None:
        self.small_agrees_in = small_agrees_in
        self.plans = 0
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @staticmethod
    def plan_text(stage: int, model: str) -> str:
        return (f"Stage {stage} plan by {model}:\n1. Multiply 17 by 23 first.\n"
                "2. Add 48 to the product.\n3. Check the arithmetic once more.")

    def __call__(self, body: dict[str, Any]) -> dict[str, Any]:
        model, seed = body["model"], body.get("seed")
        with self._lock:
            if "planner" in _system(body):
                assert "<plan>" not in _user(body)
                self.plans += 1
                stage = self.plans
                kind, content = "plan", self.plan_text(stage, model)
                usage = (100 + stage, 10 + stage)
            else:
                ((_, plan),) = read_blocks(_user(body), "plan")
                stage = 3 if model == MODEL_IDS["large"] else int(plan.split()[1])
                if model == MODEL_IDS["large"] or stage in self.small_agrees_in:
                    n = RIGHT
                else:
                    n = str(430 + int(seed))
                kind, content = "execute", f"Working: 17 * 23 = 391.\nAnswer: {n}"
                usage = (300 + 10 * stage + (seed or 0), 30 + 3 * stage + (seed or 0))
            self.calls.append({"node": f"{kind}{stage}", "model": POOL_NAMES[model],
                               "seed": seed, "input_tokens": usage[0],
                               "output_tokens": usage[1]})
        return {"content": content, "prompt_tokens": usage[0], "completion_tokens": usage[1]}


def write_cope_pool(path: Path, base_url: str) -> Path:
    path.write_text(textwrap.dedent(f"""\
        models:
          - name: small
            provider: openai
            model: {MODEL_IDS["small"]}
            base_url: {base_url}
            tier: local
          - name: large
            provider: openai
            model: {MODEL_IDS["large"]}
            base_url: {base_url}
            api_key_env: {KEY_ENV}
            tier: paid
            price: {{input: {PRICE_IN}, output: {PRICE_OUT}}}
        """))
    return path


def run_cope(tmp_path: Path, responder: CopeResponder) -> tuple[dict[str, Any], list[dict]]:
    with FakeOpenAIServer(responder=responder) as srv:
        pool = ModelPool.from_yaml(write_cope_pool(tmp_path / "models.yaml", srv.base_url))
        out = load_graph("cope", pool=pool).invoke({"question": QUESTION})
        requests = srv.chat_requests
    assert all(r["status"] == 200 for r in requests)
    return out, requests


def check_cope_wire(out: dict[str, Any], requests: list[dict], responder: CopeResponder
                    ) -> None:
    """What every COPE run must show on the wire, whatever the stage it stops at."""
    # the key goes to the paid model only, in the Authorization header
    for r in requests:
        auth = r["headers"].get("authorization", "")
        if r["body"]["model"] == MODEL_IDS["large"]:
            assert auth == f"Bearer {SECRET}"
        else:
            assert SECRET not in json.dumps(r["headers"]) and SECRET not in json.dumps(r["body"])
    # each executor request carries its stage's plan, as the planner wrote it, in <plan>
    # (stage 3 reuses the large planner's stage-2 plan)
    plans = {p["stage"]: p["text"] for p in out["plans"]}
    assert plans == {s: responder.plan_text(min(s, 2), MODEL_IDS["large" if s > 1 else "small"])
                     for s in plans}
    assert [p.get("reused_from") for p in out["plans"]] == [None, None, 2][:len(plans)]
    executes = [r for r in requests if "<plan>" in _user(r["body"])]
    assert executes
    for r in executes:
        user = _user(r["body"])
        ((_, plan),) = read_blocks(user, "plan")
        stage = int(plan.split()[1])
        assert plan == plans[stage]
        assert f"<plan>\n{plans[stage]}\n</plan>" in user
        assert "executor" in _system(r["body"]) and QUESTION in user
    # the ledger holds the server's usage numbers, call for call, priced from the pool
    ledger = out["ledger"]
    assert len(ledger) == len(requests) == len(responder.calls)
    assert sorted((c["node"], c["model"], c["input_tokens"], c["output_tokens"])
                  for c in ledger) == \
        sorted((c["node"], c["model"], c["input_tokens"], c["output_tokens"])
               for c in responder.calls)
    for c in ledger:
        assert not c["tokens_estimated"]
        assert c["tier"] == ("paid" if c["model"] == "large" else "local")
        assert c["stage"] == int(c["node"][-1])
        expected = (PRICE_IN * c["input_tokens"] + PRICE_OUT * c["output_tokens"]) / 1e6 \
            if c["model"] == "large" else 0.0
        assert c["usd"] == pytest.approx(expected)
    # several samples of one node: one request each, seeded by the sample index
    seeds: dict[str, list[Any]] = {}
    for c in responder.calls:
        seeds.setdefault(f"{c['node']}/{c['model']}", []).append(c["seed"])
    for key, got in seeds.items():
        if key.startswith("execute") and key.endswith("/small"):
            assert sorted(got) == [0, 1, 2], key
        else:
            assert got == [None] * len(got), key


def test_cope_stage1_agrees_without_paid_calls(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    responder = CopeResponder(small_agrees_in={1})
    out, requests = run_cope(tmp_path, responder)
    assert {r["body"]["model"] for r in requests} == {MODEL_IDS["small"]}
    assert len(requests) == 4  # one plan, three executions
    assert out["answer"] == RIGHT and out["stage"] == 1
    assert out["stop_reason"] == "stage 1 agreed" and out["degraded"] is False
    assert [p["node"] for p in out["path"]] == ["plan1", "execute1", "vote1", "finish"]
    assert [(r["node"], r["sample"], r["answer"]) for r in
            sorted(out["responses"], key=lambda r: r["sample"])] == \
        [("execute1", s, RIGHT) for s in range(3)]
    totals = ledger_totals(out["ledger"])
    assert totals["paid_calls"] == 0 and totals["paid_usd"] == 0
    assert totals["local_calls"] == 4
    check_cope_wire(out, requests, responder)


def test_cope_stage2_pays_for_one_plan(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    responder = CopeResponder(small_agrees_in={2})
    out, requests = run_cope(tmp_path, responder)
    paid = [r for r in requests if r["body"]["model"] == MODEL_IDS["large"]]
    assert len(paid) == 1 and "planner" in _system(paid[0]["body"])
    assert len(requests) == 8  # plan1 + 3 executions, plan2 (paid) + 3 executions
    assert out["answer"] == RIGHT and out["stage"] == 2
    assert out["stop_reason"] == "stage 2 agreed"
    assert [p["node"] for p in out["path"]] == \
        ["plan1", "execute1", "vote1", "plan2", "execute2", "vote2", "finish"]
    stage1 = sorted(r["answer"] for r in out["responses"] if r["stage"] == 1)
    assert stage1 == ["430", "431", "432"]
    assert out["answers"] == {f"small[{s}]": RIGHT for s in range(3)}
    totals = ledger_totals(out["ledger"])
    plan2 = next(c for c in out["ledger"] if c["node"] == "plan2")
    assert (plan2["model"], plan2["tier"]) == ("large", "paid")
    assert totals["paid_calls"] == 1 and totals["paid_usd"] == pytest.approx(plan2["usd"])
    assert plan2["usd"] == pytest.approx((PRICE_IN * 102 + PRICE_OUT * 12) / 1e6)
    check_cope_wire(out, requests, responder)


def test_cope_stage3_large_executor(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    responder = CopeResponder(small_agrees_in=set())
    out, requests = run_cope(tmp_path, responder)
    # stage 3 reuses the stage-2 plan: the large planner is paid once
    paid = [c["node"] for c in responder.calls if c["model"] == "large"]
    assert paid == ["plan2", "execute3"]
    assert [r["body"]["model"] for r in requests].count(MODEL_IDS["large"]) == 2
    assert out["answer"] == RIGHT and out["stage"] == 3
    assert out["stop_reason"] == "stage 3 (single answer)"  # the last stage has one execution
    assert [p["node"] for p in out["path"]][-4:] == ["plan3", "execute3", "vote3", "finish"]
    final = [r for r in out["responses"] if r["stage"] == 3]
    assert [(r["node"], r["model"], r["answer"]) for r in final] == \
        [("execute3", "large", RIGHT)]
    # the large executor followed the large planner's plan (stage 2's, reused by stage 3)
    execute3 = next(r for r in requests if r["body"]["model"] == MODEL_IDS["large"]
                    and "<plan>" in _user(r["body"]))
    assert responder.plan_text(2, MODEL_IDS["large"]) in _user(execute3["body"])
    assert "seed" not in execute3["body"]
    assert "plan3" in [p["node"] for p in out["path"]]
    assert "plan3" not in [c["node"] for c in out["ledger"]]
    totals = ledger_totals(out["ledger"])
    assert totals["paid_calls"] == 2 and totals["local_calls"] == 7
    check_cope_wire(out, requests, responder)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, KEY_ENV: SECRET}
    return subprocess.run([sys.executable, "-m", "colm_graph.cli", "run", *args, "--json"],
                          capture_output=True, text=True, env=env, timeout=120)


def test_cli_cope_stage1_agrees_without_paid_calls(tmp_path):
    responder = CopeResponder(small_agrees_in={1})
    with FakeOpenAIServer(responder=responder) as srv:
        pool_file = write_cope_pool(tmp_path / "models.yaml", srv.base_url)
        proc = run_cli(QUESTION, "--graph", "cope", "--models", str(pool_file))
        requests = srv.chat_requests
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["answer"] == RIGHT and result["stage"] == 1
    assert result["stop_reason"] == "stage 1 agreed" and result["degraded"] is False
    assert result["path"] == ["plan1", "execute1", "vote1", "finish"]
    assert {r["body"]["model"] for r in requests} == {MODEL_IDS["small"]}
    assert len(requests) == 4
    totals = result["ledger"]["totals"]
    assert totals["paid_calls"] == 0 and totals["local_calls"] == 4
    assert sorted((c["node"], c["input_tokens"], c["output_tokens"])
                  for c in result["ledger"]["calls"]) == \
        sorted((c["node"], c["input_tokens"], c["output_tokens"]) for c in responder.calls)
    assert SECRET not in proc.stdout + proc.stderr


# -- CoLM for VLMs -----------------------------------------------------------------------------
def tiny_png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG (red pixels), built with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PNG_URL = "data:image/png;base64," + base64.b64encode(tiny_png()).decode("ascii")
HTTPS_URL = "https://images.example.com/pets/cat%20photo.png?size=large&v=2"
VLM_QUESTION = "What animal is shown in the two images?"
VLM_IDS = {"vlm-a": "m-vlm-a", "vlm-b": "m-vlm-b"}
DRAFTS = {"m-vlm-a": "I see whiskers and pointed ears.\nAnswer: cat",
          "m-vlm-b": "It looks like a small fox.\nAnswer: fox"}
REFINED = {"m-vlm-a": "Both of us saw whiskers; I keep my answer.\nAnswer: cat",
           "m-vlm-b": "The whiskers convince me.\nAnswer: cat"}


def test_tiny_png_is_a_png():
    image = pytest.importorskip("PIL.Image")
    import io

    with image.open(io.BytesIO(tiny_png())) as img:
        img.load()
        assert img.size == (2, 2) and img.getpixel((0, 0)) == (255, 0, 0)


def vlm_responder(body: dict[str, Any]) -> dict[str, Any]:
    model, user = body["model"], _user(body)
    if "<answers>" in user:
        text = REFINED[model]
        usage = (700 + len(user) % 97, 40)
    else:
        text = DRAFTS[model]
        usage = (500 + len(user) % 89, 20)
    return {"content": text, "prompt_tokens": usage[0], "completion_tokens": usage[1]}


def write_vlm_pool(path: Path, base_url: str) -> Path:
    path.write_text(textwrap.dedent(f"""\
        models:
          - name: vlm-a
            provider: openai
            model: m-vlm-a
            base_url: {base_url}
            tier: local
            domains: [vision, animals]
          - name: vlm-b
            provider: openai
            model: m-vlm-b
            base_url: {base_url}
            tier: local
            domains: [vision, scenes]
        """))
    return path


IMAGE_BLOCKS = [{"type": "image_url", "image_url": {"url": PNG_URL}},
                {"type": "image_url", "image_url": {"url": HTTPS_URL}}]


def check_vlm(out: dict[str, Any], requests: list[dict]) -> None:
    assert all(r["status"] == 200 for r in requests)
    assert len(requests) == 4
    drafts = [r for r in requests if "<answers>" not in _user(r["body"])]
    refines = [r for r in requests if "<answers>" in _user(r["body"])]
    assert sorted(r["body"]["model"] for r in drafts) == ["m-vlm-a", "m-vlm-b"]
    assert sorted(r["body"]["model"] for r in refines) == ["m-vlm-a", "m-vlm-b"]
    for r in requests:
        content = r["body"]["messages"][-1]["content"]
        assert r["body"]["messages"][-1]["role"] == "user"
        # the text block, then the images exactly as given, in order
        assert isinstance(content, list) and content[0]["type"] == "text"
        assert content[1:] == IMAGE_BLOCKS
        assert content[1]["image_url"]["url"] == PNG_URL
        assert VLM_QUESTION in content[0]["text"]
        assert isinstance(r["body"]["messages"][0]["content"], str)  # system: text only
        assert "seed" not in r["body"]
        assert SECRET not in json.dumps(r["headers"])
    # the raw JSON carries the data URL unchanged too (no re-encoding on the way)
    for r in drafts:
        assert json.dumps(r["body"]).count(PNG_URL) == 1
    for r in refines:
        user = _user(r["body"])
        (answers,) = read_blocks(user, "answers")
        blocks = read_blocks(answers[1], "answer")
        assert [(a["participant"], text) for a, text in blocks] == \
            [("vlm-a", DRAFTS["m-vlm-a"]), ("vlm-b", DRAFTS["m-vlm-b"])]
        own = next(n for n, m in VLM_IDS.items() if m == r["body"]["model"])
        assert f"<previous_answer>\n{DRAFTS[VLM_IDS[own]]}\n</previous_answer>" in user
    assert out["answer"] == "cat"
    assert out["answers"] == {"vlm-a": "cat", "vlm-b": "cat"}
    assert sorted(out["selected"]) == ["vlm-a", "vlm-b"]
    assert out["rounds"] == 1 and out["degraded"] is False
    assert sorted((r["node"], r["client"], r["round"], r["answer"])
                  for r in out["responses"]) == \
        [("draft", "vlm-a", 0, "cat"), ("draft", "vlm-b", 0, "fox"),
         ("refine", "vlm-a", 1, "cat"), ("refine", "vlm-b", 1, "cat")]
    # the ledger: four local calls, free, with the server's usage numbers
    expected = sorted((("refine" if "<answers>" in _user(r["body"]) else "draft"),
                       next(n for n, m in VLM_IDS.items() if m == r["body"]["model"]),
                       *(lambda u: (u["prompt_tokens"], u["completion_tokens"]))(
                           vlm_responder(r["body"])))
                      for r in requests)
    assert sorted((c["node"], c["model"], c["input_tokens"], c["output_tokens"])
                  for c in out["ledger"]) == expected
    totals = ledger_totals(out["ledger"])
    assert totals["calls"] == totals["local_calls"] == 4
    assert totals["paid_calls"] == 0 and totals["usd"] == 0
    assert all(not c["tokens_estimated"] and c["tier"] == "local" for c in out["ledger"])


def test_colm_vlm_forwards_images_unchanged(tmp_path):
    with FakeOpenAIServer(responder=vlm_responder) as srv:
        pool = ModelPool.from_yaml(write_vlm_pool(tmp_path / "models.yaml", srv.base_url))
        out = load_graph("colm_vlm", pool=pool).invoke(
            {"question": VLM_QUESTION, "images": [PNG_URL, HTTPS_URL]})
        requests = srv.chat_requests
    check_vlm(out, requests)
    assert out["stop_reason"] == "consensus"


async def test_colm_vlm_async_drafts_overlap(tmp_path):
    with FakeOpenAIServer(responder=vlm_responder, latency_s=0.2) as srv:
        pool = ModelPool.from_yaml(write_vlm_pool(tmp_path / "models.yaml", srv.base_url))
        out = await load_graph("colm_vlm", pool=pool).ainvoke(
            {"question": VLM_QUESTION, "images": [PNG_URL, HTTPS_URL]})
        requests = srv.chat_requests
    check_vlm(out, requests)
    a, b = [r for r in requests if "<answers>" not in _user(r["body"])]
    assert a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]
    # the refine round starts after both drafts are in
    for r in requests:
        if "<answers>" in _user(r["body"]):
            assert r["started_at"] >= max(a["finished_at"], b["finished_at"])


def test_cli_colm_vlm_image_file_reaches_the_clients(tmp_path):
    image = tmp_path / "pet.png"
    image.write_bytes(tiny_png())
    with FakeOpenAIServer(responder=vlm_responder) as srv:
        pool_file = write_vlm_pool(tmp_path / "models.yaml", srv.base_url)
        proc = run_cli(VLM_QUESTION, "--graph", "colm_vlm", "--models", str(pool_file),
                       "--image", str(image))
        requests = srv.chat_requests
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["answer"] == "cat" and result["rounds"] == 1
    assert len(requests) == 4
    for r in requests:  # the file went out as the same data URL, and nothing else
        assert r["body"]["messages"][-1]["content"][1:] == [IMAGE_BLOCKS[0]]
    assert PNG_URL not in proc.stdout  # the summary does not echo the image
