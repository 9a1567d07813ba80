"""Shared by the tests of a run's constraints (deadlines, private data, bytes):
``LocalWriter``, a responder for local OpenAI-compatible fakes whose answers never agree
(so every variant wants its paid step), and ``PAID_ONLY_SPEC``, a spec that goes straight
to one paid call with no branch around it (so only the call itself can enforce a limit)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from tests.support.openai_server import message_text

__all__ = ["PAID_ONLY_SPEC", "LocalWriter"]

PAID_ONLY_SPEC = """\
name: paid_only
description: One paid call, no branch around it (the call itself enforces the run's limits)
roles:
  solver: {tier: paid, count: 1}
nodes:
  answer: {kind: answer, role: solver}
  finish: {kind: finish, options: {output: majority}}
edges:
  - {from: START, to: answer}
  - {from: answer, to: finish}
  - {from: finish, to: END}
"""


class LocalWriter:
    """The local models: every answer differs from every earlier one (samples, drafts and
    revisions disagree, so each variant wants its paid step where it has one); planners
    get a plan. ``answers`` holds every answer written."""

    def __init__(self) -> None:
        self.answers: set[str] = set()
        self._n = itertools.count(400)
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        if "You are the planner" in message_text(body):
            return "1. Multiply 17 by 23.\n2. Add 48."
        with self._lock:
            answer = str(next(self._n))
            self.answers.add(answer)
        return f"Working it out.\nAnswer: {answer}"
