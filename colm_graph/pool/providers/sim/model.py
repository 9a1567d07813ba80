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

It *writes* like a real model: ``style`` (see :mod:`colm_graph.pool.providers.sim.styles`:
``terse``, ``markdown``, ``latex``, ``gsm8k``, ``think``, ``verbose``, ``formatted``, or
``mixed``) sets how a reply states its answer, ``score_style`` how a verifier's confidence
or a router's difficulty is written, and it reads other models' replies (drafts, guidance,
candidates, peers' answers) through :func:`colm_graph.core.answers.extract_answer` and
:func:`~colm_graph.core.answers.answers_match`. Values stay canonical inside (a task's gold or
distractor strings); the style changes the writing, never the value, and draws from its own
random stream, so the same seed gives the same answers in every style.

It streams like one too: ``stream``/``astream`` (and LangGraph's ``messages`` stream mode)
get the reply in chunks of a few words, the first after :data:`FIRST_TOKEN_SHARE` of
``latency_s`` and the rest spread over what is left, with the usage on the last chunk.

Every output says "simulated" and carries ``response_metadata["simulated"] = True``.
Randomness is drawn from a hash of (seed, model name, prompt, ``seed=`` call kwarg), so a
run is deterministic for a seed whatever the thread scheduling.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, ValidationInfo, field_validator

from colm_graph.core.answers import answers_match, extract_answer, normalize_answer, number_value
from colm_graph.core.ledger import estimate_tokens
from colm_graph.core.prompts import TAGS, read_blocks
from colm_graph.pool.providers.sim import styles
from colm_graph.pool.providers.sim.arithmetic import parse_arithmetic
from colm_graph.pool.providers.sim.tasks import SimTask, TaskBook, bundled_tasks

if TYPE_CHECKING:
    from colm_graph.pool.spec import ModelSpec

__all__ = ["SimulatedChatModel", "build"]

CANNOT = styles.CANNOT
PLAN_TARGET = re.compile(r"\[sim-plan-target: ([^\]]*)\]")
_PLANNER = re.compile(r"\byou are the planner\b", re.IGNORECASE)
_RATER = re.compile(r"\bhow hard\b", re.IGNORECASE)
_DATA_BLOCK = re.compile(r"<(" + "|".join(TAGS) + r")\b[^>]*>.*?</\1>", re.DOTALL)
_CANONICAL = re.compile(r"^(?:-?\d+(?:\.\d+)?|[A-J])$")


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


def _expect(task: SimTask | None) -> tuple[str, tuple[str, ...] | None]:
    """The answer type a reply about ``task`` is read with (as a run with ``answer_type``
    would): ``choice`` with its options, ``number`` for a numeric gold, else ``auto``."""
    if task is None:
        return "auto", None
    if task.choices:
        return "choice", task.choices
    return ("number" if number_value(task.answer) is not None else "auto"), None


def _canonical(raw: str | None, task: SimTask | None) -> str | None:
    """The canonical value of an answer read from another reply: the task's gold or
    distractor it equals, else a plain number or letter, else the text as written."""
    if raw is None:
        return None
    kind, choices = _expect(task)
    if task is not None:
        for value in (task.answer, *task.distractors):
            if answers_match(raw, value, kind=kind, choices=choices):
                return value
    norm = normalize_answer(raw, kind, choices)
    if norm is None:
        return None
    return norm if _CANONICAL.match(norm) else raw.strip()


def _read(text: str, task: SimTask | None) -> str | None:
    """The canonical final answer of another model's reply (``None``: it states none)."""
    kind, choices = _expect(task)
    return _canonical(extract_answer(text, kind=kind, choices=choices), task)


def _same(a: str | None, b: str | None, task: SimTask | None) -> bool:
    kind, choices = _expect(task)
    return answers_match(a, b, kind=kind, choices=choices)


def _quoted(value: str | None) -> str:
    """A value as the simulator mentions it in passing: canonical ones as they are, any
    other text (which another model wrote) only as "another answer", so that nothing it
    contains can read as this reply's own answer statement."""
    if value is None:
        return "no answer"
    if value == CANNOT:
        return "cannot answer"
    return value if _CANONICAL.match(value) else "another answer"


@dataclass(frozen=True)
class _Pen:
    """How one reply is written: its style, its score form and their random stream."""

    style: str
    score_form: str
    rng: random.Random
    question: str
    task: SimTask | None

    def _decoy(self, answer: str | None) -> str | None:
        if self.task is None or answer is None:
            return None
        others = [v for v in (self.task.answer, *self.task.distractors)
                  if v != answer and not _same(v, answer, self.task)]
        return self.rng.choice(others) if others else None

    def solution(self, answer: str | None, steps: list[str] | None = None) -> str:
        return styles.render_solution(self.style, answer, question=self.question,
                                      rng=self.rng, steps=steps, decoy=self._decoy(answer))

    def guidance(self, body: str, answer: str | None) -> str:
        return styles.render_guidance(self.style, body, answer, self.rng,
                                      question=self.question, decoy=self._decoy(answer))

    def score(self, value: float, field: str, lead: str) -> str:
        line = styles.render_score(self.score_form, value, self.rng, field)
        if self.score_form == "bare" or field == "confidence":
            return f"{lead}\n{line}"
        return line


class SimulatedChatModel(BaseChatModel):
    """A simulated chat model with per-domain skill (see the module docstring)."""

    model_name: str = "sim"
    skills: dict[str, float] = Field(default_factory=dict)
    default_skill: float = 0.5
    adoption: float = 0.7
    latency_s: float = 0.0
    extra_output_tokens: int = 120
    seed: int = 0
    style: str = "terse"
    """How replies state their answer (``styles.STYLES`` or ``mixed``)."""
    score_style: str = "plain"
    """How scores are written (``styles.SCORE_FORMS`` or ``mixed``)."""
    tool_slip: float | None = None
    """Probability of a tool call or structured reply without a required field (``None``:
    half of one minus the best skill: function calling is a format skill, not a domain's)."""
    max_tokens: int | None = None
    """Output cap (like a real model's): usage never reports more output tokens."""
    task_book: TaskBook | None = Field(default=None, exclude=True)

    model_config = {"arbitrary_types_allowed": True}

    @field_validator("style", "score_style")
    @classmethod
    def _known(cls, v: str, info: ValidationInfo) -> str:
        return styles.check_setting(str(info.field_name), v)

    @property
    def _llm_type(self) -> str:
        return "colm-graph-simulator"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "seed": self.seed}

    # -- behaviour ----------------------------------------------------------------
    def skill(self, domain: str) -> float:
        return self.skills.get(domain, self.default_skill)

    def _rng(self, prompt: str, call_seed: Any, stream: str = "") -> random.Random:
        key = f"{self.seed}|{self.model_name}|{call_seed}|{prompt}"
        digest = hashlib.sha256((key + (f"|{stream}" if stream else "")).encode()).hexdigest()
        return random.Random(int(digest[:16], 16))

    def respond(self, prompt: str, call_seed: Any = None, system: str = "") -> str:
        """The simulated reply to ``prompt`` (deterministic). ``prompt`` is the text of the
        non-system messages, where the data blocks live; ``system`` tells a planner or a
        difficulty rater (the bundled prompts) from a solver; without one (a pool entry with
        ``system_prompt: fold``) the prompt's text outside its data blocks does."""
        if not system.strip():
            system = _DATA_BLOCK.sub("", prompt)
        rng = self._rng(prompt, call_seed)
        book = self.task_book or bundled_tasks()
        questions = read_blocks(prompt, "question")
        question = questions[0][1] if questions else prompt
        task = book.find(question)
        # The writing draws from its own stream: decisions are the same in every style.
        ink = self._rng(prompt, call_seed, "style")
        pen = _Pen(styles.pick(self.style, styles.STYLES, ink),
                   styles.pick(self.score_style, styles.SCORE_FORMS, ink), ink, question, task)
        if read_blocks(prompt, "clients"):
            body = self._select(prompt, task)
        elif read_blocks(prompt, "drafts"):
            body = self._guide(prompt, task, question, rng, pen)
        elif read_blocks(prompt, "guidance"):
            body = self._revise(prompt, task, question, rng, pen)
        elif read_blocks(prompt, "plan"):
            body = self._execute(prompt, task, question, rng, pen)
        elif read_blocks(prompt, "candidate"):
            body = self._verify(prompt, task, question, rng, pen)
        elif read_blocks(prompt, "answers"):
            body = (self._peer_revise(prompt, task, question, rng, pen)
                    if read_blocks(prompt, "previous_answer")
                    else self._aggregate(prompt, task, question, rng, pen))
        elif _PLANNER.search(system):
            body = styles.render_plan(pen.style, self._solve(task, question, rng), pen.rng)
        elif _RATER.search(system):
            skill = self.skill(task.domain) if task is not None else 0.5
            rating = 10 * (1 - skill) + rng.uniform(-1, 1)
            body = pen.score(rating / 10, "difficulty", "Rated how hard the question is.")
        else:
            body = pen.solution(self._solve(task, question, rng))
        return f"[simulated {self.model_name}] {body}"

    def _solve(self, task: SimTask | None, question: str, rng: random.Random) -> str:
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

    def _guide(self, prompt: str, task: SimTask | None, question: str, rng: random.Random,
               pen: _Pen) -> str:
        drafts = [(attrs.get("client", "?"), _read(body, task))
                  for attrs, body in read_blocks(prompt, "draft")]
        counts = Counter(a for _, a in drafts if a is not None)
        own = self._solve(task, question, rng) if task is None else None
        if task is not None and rng.random() < self.skill(task.domain):
            supported = task.answer
        elif own is not None and own != CANNOT:
            supported = own
        elif counts:
            supported = counts.most_common(1)[0][0]
        else:
            supported = self._solve(task, question, rng)
        listed = "; ".join(f"{c} says {_quoted(a)}" for c, a in drafts) or "no drafts"
        agree = len(counts) == 1 and all(a is not None for _, a in drafts)
        verdict = ("The drafts agree." if agree else "The drafts conflict." if counts
                   else "No draft states an answer.")
        check = ("The supported answer matches the drafts." if any(
            _same(a, supported, task) for _, a in drafts)
            else "None of the drafts reach the supported answer; recheck each step.")
        return pen.guidance(f"Guidance. {listed}. {verdict} {check}", supported)

    def _revise(self, prompt: str, task: SimTask | None, question: str, rng: random.Random,
                pen: _Pen) -> str:
        prev = read_blocks(prompt, "previous_answer")
        previous = _read(prev[0][1], task) if prev else None
        guided = _read(read_blocks(prompt, "guidance")[0][1], task)
        if previous is None:
            previous = self._solve(task, question, rng)
        if guided is None or _same(previous, guided, task):
            return pen.solution(previous, ["Kept my answer after reading the guidance."])
        seen = f"I had {_quoted(previous)}; the guidance supports {_quoted(guided)}."
        return self._decide(previous, guided, task, rng, pen,
                            [seen, "Adopted the answer the guidance supports."],
                            [seen, "Rechecked and kept my answer despite the guidance."])

    def _decide(self, own: str | None, offered: str | None, task: SimTask | None,
                rng: random.Random, pen: _Pen, took: list[str], kept: list[str]) -> str:
        """The solution with ``offered`` (saying ``took``) when :meth:`_adopt` switches to
        it, else with ``own`` (saying ``kept``)."""
        if self._adopt(own, offered, task, rng):
            return pen.solution(offered, took)
        return pen.solution(own, kept)

    def _adopt(self, own: str | None, offered: str | None, task: SimTask | None,
               rng: random.Random) -> bool:
        """Whether to switch from ``own`` to an answer that guidance, a plan or peers support."""
        if offered is None or _same(own, offered, task):
            return False
        p = self.adoption
        if task is not None and not _same(offered, task.answer, task):
            p *= 1 - self.skill(task.domain)
        return rng.random() < p

    def _execute(self, prompt: str, task: SimTask | None, question: str, rng: random.Random,
                 pen: _Pen) -> str:
        found = PLAN_TARGET.findall(read_blocks(prompt, "plan")[0][1])
        target = _canonical(found[-1], task) if found and found[-1] != CANNOT else None
        own = self._solve(task, question, rng)
        return self._decide(own, target, task, rng, pen, ["Followed the plan."],
                            ["Solved it my own way."])

    def _peer_revise(self, prompt: str, task: SimTask | None, question: str,
                     rng: random.Random, pen: _Pen) -> str:
        previous = _read(read_blocks(prompt, "previous_answer")[0][1], task)
        peers = [_read(body, task) for _, body in read_blocks(prompt, "answer")]
        counts = Counter(a for a in peers if a is not None)
        majority = counts.most_common(1)[0][0] if counts else None
        if previous is None:
            previous = self._solve(task, question, rng)
        return self._decide(previous, majority, task, rng, pen,
                            ["Moved to the answer the others support."],
                            ["Kept my answer after reading the others."])

    def _aggregate(self, prompt: str, task: SimTask | None, question: str,
                   rng: random.Random, pen: _Pen) -> str:
        answers = [_read(body, task) for _, body in read_blocks(prompt, "answer")]
        counts = Counter(a for a in answers if a is not None)
        if task is not None and rng.random() < self.skill(task.domain):
            return pen.solution(task.answer, ["Synthesised the answers."])
        if counts:
            return pen.solution(counts.most_common(1)[0][0], ["Went with the majority."])
        return pen.solution(self._solve(task, question, rng), ["Answered myself."])

    def _verify(self, prompt: str, task: SimTask | None, question: str, rng: random.Random,
                pen: _Pen) -> str:
        candidate = _read(read_blocks(prompt, "candidate")[0][1], task)
        if task is None:
            right = candidate is not None and answers_match(
                candidate, self._solve(None, question, random.Random(0)))
        else:
            right = _same(candidate, task.answer, task)
        sees = rng.random() < (self.skill(task.domain) if task is not None else 0.5)
        confident = right if sees else not right
        return pen.score(0.9 if confident else 0.2, "confidence", "Checked the candidate.")

    def _select(self, prompt: str, task: SimTask | None) -> str:
        clients = [(attrs.get("name", ""), body) for attrs, body in read_blocks(prompt, "client")]
        m = re.search(r"\b(\d+) clients\b", prompt)
        k = int(m.group(1)) if m else 2
        domain = task.domain if task is not None else "arithmetic"
        ranked = sorted(clients, key=lambda c: (domain.replace("_", " ") not in
                                                c[1].lower().replace("_", " ")))
        return "Clients: " + ", ".join(name for name, _ in ranked[:k])

    # -- LangChain plumbing -------------------------------------------------------
    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                   **kwargs: Any) -> Any:
        """Tools the simulator may call (see :mod:`.tools`)."""
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return self.bind(tools=[convert_to_openai_tool(t) for t in tools],
                         tool_choice=tool_choice, **kwargs)

    def _agent(self, messages: list[BaseMessage], call_seed: Any, kwargs: dict[str, Any]
               ) -> tuple[str, list[dict[str, Any]]] | None:
        if not kwargs.get("tools") and not kwargs.get("response_format"):
            return None
        from colm_graph.pool.providers.sim.tools import agent_reply

        slip = self.tool_slip
        if slip is None:
            slip = (1 - max([self.default_skill, *self.skills.values()])) / 2
        return agent_reply(messages, kwargs.get("tools") or [], kwargs.get("tool_choice"),
                           kwargs.get("response_format"), slip,
                           self._rng(_text(messages), call_seed, "tools"))

    def _result(self, messages: list[BaseMessage], call_seed: Any,
                max_tokens: int | None = None, kwargs: dict[str, Any] | None = None
                ) -> ChatResult:
        system = "\n".join(m.text for m in messages if m.type == "system")
        acted = self._agent(messages, call_seed, kwargs or {})
        calls = acted[1] if acted is not None else []
        text = f"[simulated {self.model_name}] {acted[0]}".strip() if acted is not None \
            else self.respond(_text(messages, skip_system=True), call_seed, system)
        usage = {
            "input_tokens": estimate_tokens(_text(messages)),
            # plans are short abstractions: a quarter of a full solution's reasoning
            "output_tokens": estimate_tokens(text + json.dumps(calls))
            + (self.extra_output_tokens // 4
                                                      if PLAN_TARGET.search(text)
                                                      else self.extra_output_tokens),
        }
        cap = min(c for c in (max_tokens, self.max_tokens, usage["output_tokens"])
                  if c is not None)
        usage["output_tokens"] = cap
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        msg = AIMessage(content=text, usage_metadata=usage, tool_calls=calls,
                        response_metadata={"model_name": self.model_name, "simulated": True})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        if self.latency_s:
            time.sleep(self.latency_s)
        return self._result(messages, kwargs.get("seed"), kwargs.get("max_tokens"), kwargs)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._result(messages, kwargs.get("seed"), kwargs.get("max_tokens"), kwargs)

    def _chunks(self, messages: list[BaseMessage], kwargs: dict[str, Any]
                ) -> tuple[list[ChatGenerationChunk], float, float]:
        """The reply as stream chunks, the wait before the first and between the others."""
        msg = self._result(messages, kwargs.get("seed"), kwargs.get("max_tokens"), kwargs
                           ).generations[0].message
        words = re.findall(r"\s*\S+|\s+", str(msg.content)) or [""]
        pieces = ["".join(words[i:i + STREAM_WORDS]) for i in range(0, len(words),
                                                                       STREAM_WORDS)]
        chunks = [ChatGenerationChunk(message=AIMessageChunk(content=p)) for p in pieces[:-1]]
        calls = [tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
                 for i, c in enumerate(getattr(msg, "tool_calls", None) or [])]
        chunks.append(ChatGenerationChunk(message=AIMessageChunk(
            content=pieces[-1], usage_metadata=getattr(msg, "usage_metadata", None),
            tool_call_chunks=calls,
            response_metadata=msg.response_metadata, chunk_position="last")))
        first = self.latency_s * FIRST_TOKEN_SHARE
        gap = (self.latency_s - first) / max(len(chunks) - 1, 1)
        return chunks, first, gap

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: Any = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        chunks, first, gap = self._chunks(messages, kwargs)
        for i, chunk in enumerate(chunks):
            if first or gap:
                time.sleep(first if i == 0 else gap)
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: Any = None, **kwargs: Any
                       ) -> AsyncIterator[ChatGenerationChunk]:
        chunks, first, gap = self._chunks(messages, kwargs)
        for i, chunk in enumerate(chunks):
            if first or gap:
                await asyncio.sleep(first if i == 0 else gap)
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


FIRST_TOKEN_SHARE = 0.4
"""The share of a simulated call's latency before its first streamed chunk."""
STREAM_WORDS = 4
"""Words per streamed chunk of a simulated reply."""


def build(spec: ModelSpec) -> SimulatedChatModel:
    s = spec.sim
    settings = s.model_dump() if s is not None else {}
    return SimulatedChatModel(model_name=spec.name, max_tokens=spec.max_tokens, **settings)
