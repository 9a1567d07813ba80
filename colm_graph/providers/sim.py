"""Provider ``sim``: simulated chat models for planning and demos. Not language models.

A :class:`SimulatedChatModel` answers the bundled task set (and arithmetic it can parse)
with a per-domain probability of being right, and reads its prompt through the same answer
extraction and data fences the protocols use, so that guidance changes its behaviour the
way the protocol intends:

* a plain question (or a ``<question>`` block) -> it answers from its skill;
* ``<drafts>`` -> it plays the server: supports the gold answer with its skill, otherwise
  the drafts' majority, and writes guidance ending in ``Answer: ...``;
* ``<guidance>`` with ``<previous_answer>`` -> it revises: keeps its answer when the guidance
  agrees, else adopts the guidance's answer with probability ``adoption`` (scaled by
  ``1 - skill`` when the guidance is wrong: a strong model resists bad advice);
* ``<clients>`` -> it picks clients whose profile names the question's domain.

Every output says "simulated" and carries ``response_metadata["simulated"] = True``.
Randomness is drawn from a hash of (seed, model name, prompt, ``seed=`` call kwarg), so a
run is deterministic for a seed whatever the thread scheduling.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from .._arith import parse_arithmetic
from ..answers import answers_match, extract_answer, normalize_answer
from ..ledger import estimate_tokens
from ..prompts import read_blocks
from ..tasks import Task, TaskBook, bundled_tasks

if TYPE_CHECKING:
    from ..pool import ModelSpec

__all__ = ["SimulatedChatModel", "build"]

CANNOT = "cannot answer"
PLAN_TARGET = re.compile(r"\[sim-plan-target: ([^\]]*)\]")
_PLANNER = re.compile(r"\byou are the planner\b", re.IGNORECASE)
_RATER = re.compile(r"\bhow hard\b", re.IGNORECASE)


def _text(messages: list[BaseMessage], *, skip_system: bool = False) -> str:
    parts = []
    for m in messages:
        if skip_system and m.type == "system":
            continue
        if isinstance(m.content, str):
            parts.append(m.content)
        else:
            parts.extend(b["text"] for b in m.content
                         if isinstance(b, dict) and b.get("type") == "text" and "text" in b)
    return "\n".join(parts)


class SimulatedChatModel(BaseChatModel):
    """A simulated chat model with per-domain skill (see the module docstring)."""

    model_name: str = "sim"
    skills: dict[str, float] = Field(default_factory=dict)
    default_skill: float = 0.5
    adoption: float = 0.7
    latency_s: float = 0.0
    extra_output_tokens: int = 120
    seed: int = 0
    max_tokens: int | None = None
    """Output cap (like a real model's): usage never reports more output tokens."""
    task_book: TaskBook | None = Field(default=None, exclude=True)

    model_config = {"arbitrary_types_allowed": True}

    @property
    def _llm_type(self) -> str:
        return "colm-graph-simulator"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "seed": self.seed}

    # -- behaviour ----------------------------------------------------------------
    def skill(self, domain: str) -> float:
        return self.skills.get(domain, self.default_skill)

    def _rng(self, prompt: str, call_seed: Any) -> random.Random:
        digest = hashlib.sha256(
            f"{self.seed}|{self.model_name}|{call_seed}|{prompt}".encode()).hexdigest()
        return random.Random(int(digest[:16], 16))

    def respond(self, prompt: str, call_seed: Any = None, system: str = "") -> str:
        """The simulated reply to ``prompt`` (deterministic). ``prompt`` is the text of the
        non-system messages, where the data blocks live; ``system`` tells a planner or a
        difficulty rater (the bundled prompts) from a solver."""
        rng = self._rng(prompt, call_seed)
        book = self.task_book or bundled_tasks()
        questions = read_blocks(prompt, "question")
        question = questions[0][1] if questions else prompt
        task = book.find(question)
        if read_blocks(prompt, "clients"):
            body = self._select(prompt, task)
        elif read_blocks(prompt, "drafts"):
            body = self._guide(prompt, task, question, rng)
        elif read_blocks(prompt, "guidance"):
            body = self._revise(prompt, task, question, rng)
        elif read_blocks(prompt, "plan"):
            body = self._execute(prompt, task, question, rng)
        elif read_blocks(prompt, "candidate"):
            body = self._verify(prompt, task, question, rng)
        elif read_blocks(prompt, "answers"):
            body = (self._peer_revise(prompt, task, question, rng)
                    if read_blocks(prompt, "previous_answer")
                    else self._aggregate(prompt, task, question, rng))
        elif _PLANNER.search(system):
            body = self._plan(task, question, rng)
        elif _RATER.search(system):
            skill = self.skill(task.domain) if task is not None else 0.5
            body = f"Difficulty: {round(10 * (1 - skill) + rng.uniform(-1, 1), 1)}"
        else:
            body = f"Worked through the question.\nAnswer: {self._solve(task, question, rng)}"
        return f"[simulated {self.model_name}] {body}"

    def _solve(self, task: Task | None, question: str, rng: random.Random) -> str:
        if task is not None:
            if rng.random() < self.skill(task.domain) or not task.distractors:
                return task.answer
            return rng.choice(task.distractors)
        value = parse_arithmetic(question)
        if value is None:
            return CANNOT
        if rng.random() < self.skill("arithmetic"):
            return normalize_answer(str(value)) or CANNOT
        return normalize_answer(str(value + rng.choice([-10, -2, -1, 1, 2, 10]))) or CANNOT

    def _guide(self, prompt: str, task: Task | None, question: str, rng: random.Random) -> str:
        drafts = [(attrs.get("client", "?"), extract_answer(body))
                  for attrs, body in read_blocks(prompt, "draft")]
        counts = Counter(normalize_answer(a) for _, a in drafts if a is not None)
        own = self._solve(task, question, rng) if task is None else None
        if task is not None and rng.random() < self.skill(task.domain):
            supported = task.answer
        elif own is not None and own != CANNOT:
            supported = own
        elif counts:
            supported = counts.most_common(1)[0][0] or CANNOT
        else:
            supported = self._solve(task, question, rng)
        listed = "; ".join(f"{c} says {a or 'no answer'}" for c, a in drafts) or "no drafts"
        agree = len(counts) == 1 and all(a is not None for _, a in drafts)
        verdict = ("The drafts agree." if agree else "The drafts conflict." if counts
                   else "No draft states an answer.")
        check = ("The supported answer matches the drafts." if any(
            answers_match(a, supported) for _, a in drafts)
            else "None of the drafts reach the supported answer; recheck each step.")
        return f"Guidance. {listed}. {verdict} {check}\nAnswer: {supported}"

    def _revise(self, prompt: str, task: Task | None, question: str, rng: random.Random) -> str:
        prev = read_blocks(prompt, "previous_answer")
        previous = extract_answer(prev[0][1]) if prev else None
        guided = extract_answer(read_blocks(prompt, "guidance")[0][1])
        if previous is None:
            previous = self._solve(task, question, rng)
        if guided is None or answers_match(previous, guided):
            return f"Kept my answer after reading the guidance.\nAnswer: {previous}"
        if self._adopt(previous, guided, task, rng):
            return f"Adopted the answer the guidance supports.\nAnswer: {guided}"
        return f"Rechecked and kept my answer despite the guidance.\nAnswer: {previous}"

    def _adopt(self, own: str | None, offered: str | None, task: Task | None,
               rng: random.Random) -> bool:
        """Whether to switch from ``own`` to an answer that guidance, a plan or peers support."""
        if offered is None or answers_match(own, offered):
            return False
        p = self.adoption
        if task is not None and not answers_match(offered, task.answer):
            p *= 1 - self.skill(task.domain)
        return rng.random() < p

    def _plan(self, task: Task | None, question: str, rng: random.Random) -> str:
        target = self._solve(task, question, rng)
        return ("Plan: 1. Identify the quantities. 2. Work out each step in order."
                f" 3. Check the result. [sim-plan-target: {target}]")

    def _execute(self, prompt: str, task: Task | None, question: str,
                 rng: random.Random) -> str:
        found = PLAN_TARGET.findall(read_blocks(prompt, "plan")[0][1])
        target = found[-1] if found and found[-1] != CANNOT else None
        own = self._solve(task, question, rng)
        if self._adopt(own, target, task, rng):
            return f"Followed the plan.\nAnswer: {target}"
        return f"Solved it my own way.\nAnswer: {own}"

    def _peer_revise(self, prompt: str, task: Task | None, question: str,
                     rng: random.Random) -> str:
        previous = extract_answer(read_blocks(prompt, "previous_answer")[0][1])
        peers = [extract_answer(body) for _, body in read_blocks(prompt, "answer")]
        counts = Counter(normalize_answer(a) for a in peers if a is not None)
        majority = counts.most_common(1)[0][0] if counts else None
        if previous is None:
            previous = self._solve(task, question, rng)
        if self._adopt(previous, majority, task, rng):
            return f"Moved to the answer the others support.\nAnswer: {majority}"
        return f"Kept my answer after reading the others.\nAnswer: {previous}"

    def _aggregate(self, prompt: str, task: Task | None, question: str,
                   rng: random.Random) -> str:
        answers = [extract_answer(body) for _, body in read_blocks(prompt, "answer")]
        counts = Counter(normalize_answer(a) for a in answers if a is not None)
        if task is not None and rng.random() < self.skill(task.domain):
            return f"Synthesised the answers.\nAnswer: {task.answer}"
        if counts:
            return f"Went with the majority.\nAnswer: {counts.most_common(1)[0][0]}"
        return f"Answered myself.\nAnswer: {self._solve(task, question, rng)}"

    def _verify(self, prompt: str, task: Task | None, question: str,
                rng: random.Random) -> str:
        candidate = extract_answer(read_blocks(prompt, "candidate")[0][1])
        if task is None:
            right = candidate is not None and answers_match(
                candidate, self._solve(None, question, random.Random(0)))
        else:
            right = answers_match(candidate, task.answer)
        sees = rng.random() < (self.skill(task.domain) if task is not None else 0.5)
        confident = right if sees else not right
        return f"Checked the candidate.\nConfidence: {0.9 if confident else 0.2}"

    def _select(self, prompt: str, task: Task | None) -> str:
        clients = [(attrs.get("name", ""), body) for attrs, body in read_blocks(prompt, "client")]
        m = re.search(r"\b(\d+) clients\b", prompt)
        k = int(m.group(1)) if m else 2
        domain = task.domain if task is not None else "arithmetic"
        ranked = sorted(clients, key=lambda c: (domain.replace("_", " ") not in
                                                c[1].lower().replace("_", " ")))
        return "Clients: " + ", ".join(name for name, _ in ranked[:k])

    # -- LangChain plumbing -------------------------------------------------------
    def _result(self, messages: list[BaseMessage], call_seed: Any,
                max_tokens: int | None = None) -> ChatResult:
        system = "\n".join(m.text for m in messages if m.type == "system")
        text = self.respond(_text(messages, skip_system=True), call_seed, system)
        usage = {
            "input_tokens": estimate_tokens(_text(messages)),
            # plans are short abstractions: a quarter of a full solution's reasoning
            "output_tokens": estimate_tokens(text) + (self.extra_output_tokens // 4
                                                      if PLAN_TARGET.search(text)
                                                      else self.extra_output_tokens),
        }
        cap = min(c for c in (max_tokens, self.max_tokens, usage["output_tokens"])
                  if c is not None)
        usage["output_tokens"] = cap
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        msg = AIMessage(content=text, usage_metadata=usage,
                        response_metadata={"model_name": self.model_name, "simulated": True})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        if self.latency_s:
            time.sleep(self.latency_s)
        return self._result(messages, kwargs.get("seed"), kwargs.get("max_tokens"))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._result(messages, kwargs.get("seed"), kwargs.get("max_tokens"))


def build(spec: ModelSpec) -> SimulatedChatModel:
    s = spec.sim
    settings = s.model_dump() if s is not None else {}
    return SimulatedChatModel(model_name=spec.name, max_tokens=spec.max_tokens, **settings)
