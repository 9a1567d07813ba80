"""What comes in is bounded where users send it: one question size limit with one message for
``colm-graph run``, eval datasets, the chat model, the tool and ``colm-graph serve``; serve's
body limit enforced while the body is read (a chunked body too); a huge body validated
without holding up other requests; and image URLs limited to ``data:`` URLs unless a host is
allowed by name (``--allow-image-host``), so nothing fetches ``file:`` URLs or the cloud
metadata address for a client.

Serve runs under a real uvicorn on 127.0.0.1 (a subprocess for the command), like
``test_serve.py``; the pool is the built-in simulated one, or a recorder that keeps what the
graph sent its models."""

from __future__ import annotations

import json
import os
import queue
import re
import select
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from colm_graph import ColmGraphError, ModelPool
from colm_graph.cli.main import main
from colm_graph.core.messages import MAX_QUESTION_CHARS
from colm_graph.evaluation.datasets import load_dataset
from colm_graph.integrations.chat_model import CollaborativeChatModel
from colm_graph.integrations.serve import MAX_BODY_BYTES, create_app
from colm_graph.integrations.tools import protocol_tool
from tests.support.serving import serving

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LIMIT = f"expected at most {MAX_QUESTION_CHARS}"
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGNgAAIAA"
       "AUAAXpeqz8AAAAASUVORK5CYII=")
ALLOWED = "images.example.test"


class Recorder(BaseChatModel):
    """Replies "Answer: 7" and keeps the messages of every call."""

    _seen: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recorder"

    def _generate(self, messages: list[BaseMessage], stop: Any = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self._seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="Answer: 7"))])

    def image_urls(self) -> list[str]:
        return [b["image_url"]["url"] for call in self._seen for m in call
                if isinstance(m.content, list) for b in m.content
                if isinstance(b, dict) and b.get("type") == "image_url"]


def recorder_pool() -> tuple[ModelPool, Recorder]:
    eyes = Recorder()
    return ModelPool().add("eyes", eyes, tier="paid").add("small", Recorder()), eyes


def post(url: str, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(f"{url}/chat/completions", json=body, timeout=120, **kw)


def error_of(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text[:500]
    err = r.json()["error"]
    assert "\n" not in err["message"]
    return err


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serving(create_app(ModelPool.default(), graphs=["single", "colm"])) as url:
        yield url


# -- one question limit, one message, every entry point ---------------------------------------
def _over(n: int = MAX_QUESTION_CHARS + 1) -> str:
    return "7 " * (n // 2) + "7" * (n % 2)


def test_run_refuses_a_long_question(capsys: pytest.CaptureFixture[str]) -> None:
    question = _over()
    assert main(["run", question]) == 2
    err = capsys.readouterr().err
    assert f"QUESTION: {len(question)} characters, {LIMIT}" in err
    assert err.count("\n") == 1


def test_eval_dataset_refuses_a_long_question(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.jsonl"
    big = "x" * 4_000_000
    data.write_text(json.dumps({"id": "ok", "question": "What is 2 + 2?", "answer": "4"}) + "\n"
                    + json.dumps({"id": "big", "question": big, "answer": "4"}) + "\n",
                    encoding="utf-8")
    with pytest.raises(ColmGraphError) as info:
        load_dataset(data)
    assert str(info.value) == f"{data}:2: 'question': {len(big)} characters, {LIMIT}"
    # the choices a multiple-choice question lists count too
    mc = tmp_path / "mc.jsonl"
    mc.write_text(json.dumps({"question": "q" * (MAX_QUESTION_CHARS - 10),
                              "choices": ["yes", "no"], "answer": "A"}) + "\n",
                  encoding="utf-8")
    with pytest.raises(ColmGraphError, match=rf"mc.jsonl:1: 'question': \d+ characters, {LIMIT}"):
        load_dataset(mc)
    out = tmp_path / "out"
    rc = main(["eval", "--graphs", "single", "--dataset", str(data), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and f"data.jsonl:2: 'question': {len(big)} characters, {LIMIT}" in err
    assert not (out / "results.jsonl").exists() or not (out / "results.jsonl").read_text()


def test_chat_model_refuses_a_long_question_and_a_long_conversation() -> None:
    chat = CollaborativeChatModel(graph="single")
    question = _over()
    with pytest.raises(ColmGraphError) as info:
        chat.invoke(question)
    assert str(info.value) == f"messages: {len(question)} characters, {LIMIT}"
    # many short turns: the conversation (the question's context) counts, and is not read
    # past the point where it is sure to be too long
    turns: list[BaseMessage] = []
    for i in range(20_000):
        turns.append(HumanMessage(content=f"turn {i}"))
        turns.append(AIMessage(content="ok"))
    turns.append(HumanMessage(content="What is 2 + 2?"))
    with pytest.raises(ColmGraphError, match=rf"messages: at least \d+ characters, {LIMIT}"):
        chat.invoke(turns)
    assert chat.invoke("What is 17 * 23 + 48?").content  # a normal question still runs


def test_tool_refuses_a_long_or_empty_question() -> None:
    tool = protocol_tool("single")
    question = _over()
    with pytest.raises(ColmGraphError) as info:
        tool.invoke({"question": question})
    assert str(info.value) == f"question: {len(question)} characters, {LIMIT}"
    with pytest.raises(ColmGraphError, match="question: expected a non-empty question"):
        tool.invoke({"question": "   "})
    assert tool.invoke({"question": "What is 17 * 23 + 48?"}) == "439"


def test_serve_refuses_a_long_question(base_url: str) -> None:
    question = "x" * 10_000_000
    r = post(base_url, {"model": "single", "messages": [{"role": "user", "content": question}]})
    err = error_of(r, 400)
    assert err["param"] == "messages"
    assert err["message"] == f"messages: {len(question)} characters, {LIMIT}"
    # context counts: a short last message after a long conversation
    messages = [{"role": "user", "content": f"turn {i}"} for i in range(800_000)]
    messages.append({"role": "user", "content": "What is 2 + 2?"})
    start = time.perf_counter()
    err = error_of(post(base_url, {"model": "single", "messages": messages}), 400)
    print(f"\n800k-message conversation refused in"  # noqa: T201 -- the figure
          f" {time.perf_counter() - start:.2f} s")
    assert re.fullmatch(rf"messages: at least \d+ characters, {LIMIT}", err["message"])
    # exactly at the limit is fine
    ok = post(base_url, {"model": "single", "messages": [
        {"role": "user", "content": "What is 17 * 23 + 48? " + "." * (MAX_QUESTION_CHARS - 23)}]})
    assert ok.status_code == 200, ok.text[:300]


# -- serve: the body limit holds while reading; big bodies do not hold up others ---------------
def _chunked_upload(url: str, chunk: int, chunks: int) -> tuple[bytes, int, int]:
    """POST a chunked body of ``chunks`` x ``chunk`` bytes over a raw socket, reading the
    socket as it goes; stops sending once a reply has come. (reply, bytes sent, total)."""
    host, port = re.match(r"http://([^:/]+):(\d+)", url).groups()  # type: ignore[union-attr]
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    piece = f"{chunk:x}\r\n".encode() + b'{"model": "single", "messages": ['.ljust(chunk, b" ") \
        + b"\r\n"
    filler = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
    total = len(head) + len(piece) + (chunks - 1) * len(filler)
    reply, sent = b"", 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.setblocking(False)
        queue_: list[bytes] = [head, piece] + [filler] * (chunks - 1)
        buffer = memoryview(queue_.pop(0))
        deadline = time.monotonic() + 120
        broken = False
        while b"\r\n\r\n" not in reply and time.monotonic() < deadline:
            writing = [sock] if (len(buffer) or queue_) and not broken else []
            readable, writable, _ = select.select([sock], writing, [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not data:
                    break
                reply += data
                continue
            if writable:
                if not len(buffer):
                    buffer = memoryview(queue_.pop(0))
                try:
                    n = sock.send(buffer)
                except (BrokenPipeError, ConnectionResetError):
                    broken = True
                    continue
                sent += n
                buffer = buffer[n:]
        sock.setblocking(True)
        sock.settimeout(5)
        try:
            while b"\r\n\r\n" in reply and len(reply) < 4096:
                data = sock.recv(65536)
                if not data:
                    break
                reply += data
        except OSError:
            pass
    return reply, sent, total


def test_chunked_oversized_body_is_refused_while_it_is_read(base_url: str) -> None:
    chunk, chunks = 1024 * 1024, 200  # 200 MiB, no Content-Length
    tracemalloc.start()
    try:
        reply, sent, total = _chunked_upload(base_url, chunk, chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\n413 after {sent / 2**20:.1f} MiB of {total / 2**20:.1f} MiB sent;"  # noqa: T201
          f" peak traced memory {peak / 2**20:.1f} MiB")
    assert sent < total, "the server read the whole body before it answered"
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1].split(b"\r\n0\r\n")[0] or b"{}")
    assert f"expected at most {MAX_BODY_BYTES}" in body["error"]["message"]
    assert peak < 3 * MAX_BODY_BYTES, "the server kept far more than the limit in memory"
    # a declared Content-Length over the limit is refused before anything is read
    host, port = re.match(r"http://([^:/]+):(\d+)", base_url).groups()  # type: ignore
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type:"
                     f" application/json\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n{{"
                     .encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")


def test_big_body_does_not_hold_up_other_requests(base_url: str) -> None:
    n = 800_000  # empty turns: nothing to cut early, every one is read and validated
    body = json.dumps({"model": "single", "messages":
                       [{"role": "assistant", "content": ""}] * n
                       + [{"role": "user", "content": "What is 17 * 23 + 48?"}]}).encode()
    assert len(body) < MAX_BODY_BYTES
    result: dict[str, Any] = {}

    def big() -> None:
        start = time.perf_counter()
        result["response"] = httpx.post(f"{base_url}/chat/completions", content=body,
                                        headers={"content-type": "application/json"},
                                        timeout=300)
        result["seconds"] = time.perf_counter() - start

    thread = threading.Thread(target=big)
    thread.start()
    latencies = []
    try:
        time.sleep(0.3)  # the body is in; the server is reading and validating it
        with httpx.Client(timeout=120) as c:
            while thread.is_alive() and len(latencies) < 200:
                start = time.perf_counter()
                r = c.get(f"{base_url}/models")
                latencies.append(time.perf_counter() - start)
                assert r.status_code == 200
                time.sleep(0.02)
    finally:
        thread.join(300)
    print(f"\n{n}-message body answered in {result['seconds']:.2f} s;"  # noqa: T201
          f" {len(latencies)} GET /v1/models meanwhile, slowest"
          f" {max(latencies, default=0):.3f} s")
    assert result["response"].status_code == 200, result["response"].text[:300]
    assert latencies, "the big request finished before another could be sent"
    assert max(latencies) < 5.0, "GET /v1/models waited for the big body's validation"


# -- image URLs -------------------------------------------------------------------------------
def _image_message(url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [
        {"type": "text", "text": "What is in the picture?"},
        {"type": "image_url", "image_url": {"url": url}}]}]


REFUSED = ["http://169.254.169.254/latest/meta-data/iam/security-credentials/",
           "file:///etc/shadow", "https://example.com/cat.png", "ftp://example.com/cat.png",
           "data:text/html;base64,PGgxPmhpPC9oMT4=", "//169.254.169.254/x",
           f"http://{ALLOWED}@169.254.169.254/", f"http://{ALLOWED}.evil.test/cat.png",
           "http://[fd00:ec2::254]/latest/"]


def test_serve_forwards_data_image_urls_only() -> None:
    pool, eyes = recorder_pool()
    with serving(create_app(pool, graphs=["single"])) as url:
        for bad in REFUSED + [f"https://{ALLOWED}/cat.png"]:
            err = error_of(post(url, {"model": "single", "messages": _image_message(bad)}), 400)
            assert err["param"] == "messages[0].content[1].image_url.url", err
            assert err["message"].startswith("messages[0].content[1].image_url.url: expected"
                                             " a data:image/"), err
            assert "--allow-image-host" in err["message"]
        assert eyes.image_urls() == [], "a refused URL reached a model"
        # images in earlier messages are checked too
        messages = _image_message("file:///etc/passwd") + [
            {"role": "user", "content": "What is 2 + 2?"}]
        err = error_of(post(url, {"model": "single", "messages": messages}), 400)
        assert err["param"] == "messages[0].content[1].image_url.url"
        ok = post(url, {"model": "single", "messages": _image_message(PNG)})
        assert ok.status_code == 200, ok.text
    assert eyes.image_urls() == [PNG]


def test_serve_allowed_image_hosts() -> None:
    pool, eyes = recorder_pool()
    app = create_app(pool, graphs=["single"], allow_image_hosts=[ALLOWED.upper() + "."])
    with serving(app) as url:
        good = f"https://{ALLOWED}/cats/1.png?size=small"
        assert post(url, {"model": "single", "messages": _image_message(good)}).status_code \
            == 200
        for bad in REFUSED:
            err = error_of(post(url, {"model": "single", "messages": _image_message(bad)}), 400)
            assert err["param"] == "messages[0].content[1].image_url.url"
            assert f"or an http(s) URL on {ALLOWED}" in err["message"]
    assert eyes.image_urls() == [good]
    # a metadata address passes only when it is listed itself
    pool, eyes = recorder_pool()
    listed = "http://169.254.169.254/latest/meta-data/"
    with serving(create_app(pool, graphs=["single"],
                            allow_image_hosts=["169.254.169.254"])) as url:
        assert post(url, {"model": "single", "messages": _image_message(listed)}).status_code \
            == 200
        err = error_of(post(url, {"model": "single", "messages": _image_message(
            "file:///etc/shadow")}), 400)
    assert eyes.image_urls() == [listed]
    with pytest.raises(ColmGraphError, match="allow_image_hosts: expected a host name"):
        create_app(pool, graphs=["single"], allow_image_hosts=["http://images.example.test/"])


def _lines(stream: Any, sink: queue.Queue[str]) -> None:
    for line in stream:
        sink.put(line)


def test_cli_serve_allow_image_host() -> None:
    command = [sys.executable, "-m", "colm_graph.cli", "serve", "--port", "0", "--graphs",
               "single", "--allow-image-host", ALLOWED, "--allow-image-host", "127.0.0.2"]
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        readers = [threading.Thread(target=_lines, args=(s, q), daemon=True)
                   for s, q in ((proc.stdout, out), (proc.stderr, err))]
        for t in readers:
            t.start()
        try:
            match = re.search(r"at (http://\S+/v1)$", out.get(timeout=60).strip())
            assert match
            url = match.group(1)
            for good in (f"http://{ALLOWED}/a.png", "http://127.0.0.2:8080/a.png", PNG):
                r = post(url, {"model": "single", "messages": _image_message(good)})
                assert r.status_code == 200, (good, r.text[:300])
            for bad in REFUSED:
                e = error_of(post(url, {"model": "single", "messages": _image_message(bad)}),
                             400)
                assert e["param"] == "messages[0].content[1].image_url.url"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            for t in readers:
                t.join(10)
    assert "Traceback" not in "".join(err.queue)


@pytest.mark.parametrize("host", ["http://images.example.test", "images.example.test:443",
                                  "*.example.test", "a/b", ""])
def test_cli_serve_refuses_bad_image_hosts(host: str, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    assert main(["serve", "--allow-image-host", host]) == 2
    err = capsys.readouterr().err
    assert "--allow-image-host: expected a host name or IP address" in err
    assert err.count("\n") == 1


def test_chat_model_image_urls() -> None:
    pool, eyes = recorder_pool()
    chat = CollaborativeChatModel(graph="single", pool=pool)
    for bad in REFUSED:
        for content, where in (
                ([{"type": "text", "text": "What is it?"},
                  {"type": "image_url", "image_url": {"url": bad}}],
                 "messages[0].content[1].image_url.url"),
                ([{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": bad}],
                 "messages[0].content[1].image_url"),
                ([{"type": "text", "text": "What is it?"}, {"type": "image", "url": bad}],
                 "messages[0].content[1].url")):
            with pytest.raises(ColmGraphError) as info:
                chat.invoke([HumanMessage(content=content)])  # type: ignore[arg-type]
            assert str(info.value).startswith(f"{where}: expected a data:image/"), info.value
            assert "allow_image_hosts" in str(info.value)
    assert eyes.image_urls() == []
    chat.invoke([HumanMessage(content=[{"type": "text", "text": "What is it?"},
                                       {"type": "image", "base64": PNG.split(",", 1)[1],
                                        "mime_type": "image/png"}])])
    assert eyes.image_urls() == [PNG]
    allowed = CollaborativeChatModel(graph="single", pool=pool, allow_image_hosts=[ALLOWED])
    good = f"https://{ALLOWED}/a.png"
    allowed.invoke([HumanMessage(content=[{"type": "text", "text": "What is it?"},
                                          {"type": "image_url", "image_url": {"url": good}}])])
    assert eyes.image_urls() == [PNG, good]
    with pytest.raises(ColmGraphError, match="messages\\[0\\].content\\[1\\].image_url.url"):
        allowed.invoke([HumanMessage(content=[
            {"type": "text", "text": "What is it?"},
            {"type": "image_url", "image_url": {"url": "http://169.254.169.254/"}}])])
    with pytest.raises(ColmGraphError, match="allow_image_hosts: expected a host name"):
        CollaborativeChatModel(graph="single", allow_image_hosts=["file:///etc"])
