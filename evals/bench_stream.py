"""Time to the first token of a streamed reply through ``colm-graph serve``.

    python evals/bench_stream.py [--chunks 10] [--delay 0.2] [--repeats 5] [--graphs single,route]

A local OpenAI-compatible fake (``tests/support/openai_server.py``, on 127.0.0.1) writes each
paid reply as ``--chunks`` content chunks ``--delay`` seconds apart, as a model generating
tokens does; ``serve`` runs in this process (uvicorn on a free port) over a pool of the fake's
``small`` and ``big`` models. For each graph: the median time to the first content delta and
to the end of the stream, streamed, and the time of the same request not streamed, over
``--repeats`` requests after one warm-up. Timings depend on the machine; nothing here is a
test assertion.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from colm_graph import ModelPool  # noqa: E402
from colm_graph.integrations.serve import create_app  # noqa: E402
from tests.support.openai_server import FakeOpenAIServer  # noqa: E402
from tests.support.pools import small_big_pool  # noqa: E402
from tests.support.serving import serving  # noqa: E402

QUESTION = "Compute 32 times 15, plus 60."
REPLY = ("Let me work through this.\n\n**Step 1.** 32 x 15 = 480.\n**Step 2.** 480 + 60 = 540."
         "\n\nSo the final answer is $\\boxed{540}$.")


def one(url: str, graph: str, stream: bool) -> tuple[float, float]:
    """(seconds to the first content delta, seconds to the end) of one request."""
    body = {"model": graph, "stream": stream,
            "messages": [{"role": "user", "content": QUESTION}]}
    start = time.perf_counter()
    if not stream:
        httpx.post(url + "/chat/completions", json=body, timeout=120).raise_for_status()
        done = time.perf_counter() - start
        return done, done
    first = None
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=120) as r:
        for line in r.iter_lines():
            if first is None and line.startswith("data: {") and \
                    json.loads(line[6:])["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - start
    end = time.perf_counter() - start
    return (first if first is not None else end), end


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--graphs", default="single,route")
    args = ap.parse_args()
    os.environ.setdefault("COLM_TEST_KEY", "sk-bench-stream-not-a-key")
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(
            responder=lambda body: REPLY, stream_pieces=args.chunks,
            stream_delay_s=args.delay) as fake:
        pool = ModelPool.from_yaml(small_big_pool(Path(tmp) / "models.yaml", fake.base_url))
        print(f"paid reply: {args.chunks} chunks, {args.delay} s apart; medians of"
              f" {args.repeats}")
        print(f"{'graph':<8} {'first delta':>12} {'stream end':>11} {'not streamed':>13}"
              f" {'first / whole':>14}")
        for graph in args.graphs.split(","):
            params = {"threshold": 0.0} if graph == "route" else None
            app = create_app(pool, graphs=[graph], params=params, progress_s=5.0)
            with serving(app) as url:
                one(url, graph, True)  # warm-up
                streamed = [one(url, graph, True) for _ in range(args.repeats)]
                plain = [one(url, graph, False)[1] for _ in range(args.repeats)]
            first = statistics.median(s[0] for s in streamed)
            end = statistics.median(s[1] for s in streamed)
            whole = statistics.median(plain)
            print(f"{graph:<8} {first:>11.3f}s {end:>10.3f}s {whole:>12.3f}s"
                  f" {first / whole:>14.3f}")


if __name__ == "__main__":
    main()
