"""Kinds played by one (usually paid) model over everyone's answers: ``guide`` (CoLM's
server writes guidance for the next round) and ``aggregate`` (Mixture-of-Agents' aggregator
writes the final answer).

Every draft or answer entering these prompts is cut to the graph parameter
``max_draft_chars`` (default 6000 characters; ``None``: no cap), keeping its head and its
tail, where the final answer sits (:func:`colm_graph.core.prompts.clip_middle`). From round 2 on
the server also sees its guidance of the earlier rounds and each client's extracted answer
round by round.

When the run has an upload cap (``max_upload_bytes``) and the model is paid, the drafts are
trimmed further so that the request (its size as
:func:`colm_graph.run.calls.request_size` counts it, the figure the call is refused by)
fits the bytes the run has left, in this order (:func:`fit_upload`):

1. every draft is cut to one common length, the largest that fits, so that the longest
   drafts are cut first and shorter ones only once the longer are down to their length; a
   cut draft keeps its head, its answer line (the line its answer was read from, at most
   :data:`ANSWER_PIECE_CHARS` characters of it ending at the answer; the last line when it
   states none) and, room permitting, what follows that line, each cut part replaced by
   the marker ``clip_middle`` writes;
2. if even answer lines alone do not fit, drafts that repeat an earlier draft's answer
   are dropped, one at a time from the last participant backwards, step 1 being tried
   again after each drop (drafts without an answer count as one answer);
3. if that does not fit either, the drafts are left as they were: the call then falls
   back to the local tier with reason ``upload``, whose model gets the whole prompt.

Nothing else in the prompt is trimmed. A trimmed call's ledger record says what was done
(``upload_trimmed``, in words); a call that is then made locally for another reason (the
budget, the deadline, a failure) sends its stand-in the trimmed drafts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from langchain_core.messages import BaseMessage

from colm_graph.core.answers import normalize_answer, read_answer
from colm_graph.core.ledger import CallRecord
from colm_graph.core.prompts import DEFAULTS, clip_middle, data_block, fold_system
from colm_graph.core.state import Guidance, ProtocolState, Response
from colm_graph.nodes._step import SCHEMA_OF_KIND, Step, allowance, model_node
from colm_graph.nodes.context import NodeContext
from colm_graph.nodes.fanout import answers_block, expect, latest_responses, read_reply
from colm_graph.run.calls import body_extra, request_size
from colm_graph.run.constraints import may_hold_private

__all__ = [
    "aaggregate",
    "aggregate",
    "aguide",
    "ANSWER_PIECE_CHARS",
    "answers_so_far",
    "clipped",
    "DEFAULT_MAX_DRAFT_CHARS",
    "FIRST_ROUND",
    "fit_upload",
    "guide",
    "MAX_ANSWER_CHARS",
    "max_draft_chars",
    "previous_guidance",
    "shortened",
]

DEFAULT_MAX_DRAFT_CHARS = 6000
"""Default of the graph parameter ``max_draft_chars``."""
FIRST_ROUND = DEFAULTS["answers_so_far"]
"""What ``{answers_so_far}`` holds in round 1."""
MAX_ANSWER_CHARS = 200
"""An extracted answer longer than this is clipped in ``{answers_so_far}``."""
ANSWER_PIECE_CHARS = 200
"""The most of a draft's answer line that trimming to an upload cap always keeps."""
_MARK = "\n[... {} characters omitted ...]\n"  # clip_middle's marker


def max_draft_chars(ctx: NodeContext) -> int | None:
    """The cap on a draft's length in a paid prompt (graph parameter ``max_draft_chars``)."""
    value = ctx.run.params.get("max_draft_chars", DEFAULT_MAX_DRAFT_CHARS)
    return None if value is None else int(value)


def clipped(responses: Sequence[Response], limit: int | None) -> list[Response]:
    """The responses with each text cut to ``limit`` characters (head and tail kept)."""
    return [r if limit is None or len(r["text"]) <= limit
            else cast(Response, {**r, "text": clip_middle(r["text"], limit)})
            for r in responses]


# -- trimming to an upload cap ----------------------------------------------------------------
def _answer_piece(text: str, kind: str, choices: list[str] | None) -> tuple[int, int]:
    """Where the part of ``text`` that trimming keeps lies: the line its answer was read
    from (the last non-blank line when it states none), at most :data:`ANSWER_PIECE_CHARS`
    characters of it ending at the answer (the answer itself always whole)."""
    found = read_answer(text, kind=kind, choices=choices)
    if found is not None:
        a_start, a_end = found.span
    else:
        a_start = a_end = len(text.rstrip())
    line_start = text.rfind("\n", 0, a_start) + 1
    line_end = text.find("\n", a_end)
    line_end = len(text) if line_end < 0 else line_end
    start = max(line_start, min(a_start, a_end - ANSWER_PIECE_CHARS))
    end = min(line_end, max(a_end, start + ANSWER_PIECE_CHARS))
    return start, end


def shortened(text: str, limit: int, piece: tuple[int, int]) -> str:
    """``text`` cut to about ``limit`` characters: ``text[piece[0]:piece[1]]`` (its answer
    line) always, the text after it when that fits too, and as much of its head as the
    rest allows; each part left out becomes one ``[... N characters omitted ...]`` marker.
    It is longer than ``limit`` only when the piece and its markers are, and never longer
    than ``text``."""
    if len(text) <= limit:
        return text
    start, end = piece
    mark = len(_MARK.format(len(text)))  # no marker is longer
    whole_tail = len(text) - start + mark <= limit
    tail_end = len(text) if whole_tail else end
    cut_after = tail_end < len(text) and bool(text[tail_end:].strip())
    used = tail_end - start + (mark if cut_after else 0)
    head = max(0, min(start, limit - used - mark))
    out = text[:head]
    if start > head:
        out += _MARK.format(start - head)
    out += text[start:tail_end]
    if cut_after:
        out += _MARK.format(len(text) - tail_end)
    return out if len(out) < len(text) else text


Build = Callable[[list[Response]], list[BaseMessage]]


def _fit_lengths(drafts: list[Response], pieces: list[tuple[int, int]], build: Build,
                 upload: int) -> tuple[list[Response], int] | None:
    """Step 1: the drafts cut to the largest common length whose request fits (and that
    length), or ``None`` when even their answer pieces alone do not fit."""
    def cut(limit: int) -> list[Response]:
        return [r if len(r["text"]) <= limit else
                cast(Response, {**r, "text": shortened(r["text"], limit, p)})
                for r, p in zip(drafts, pieces, strict=True)]

    def fits(limit: int) -> bool:
        return request_size(build(cut(limit))) <= upload

    if not fits(0):
        return None
    low, high = 0, max((len(r["text"]) for r in drafts), default=0)
    if fits(high):
        return list(drafts), high
    while high - low > 1:  # fits(low), not fits(high)
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return cut(low), low


def fit_upload(drafts: Sequence[Response], build: Build, upload: int, *, kind: str = "auto",
               choices: list[str] | None = None) -> tuple[list[Response], str | None]:
    """``drafts`` trimmed so that ``request_size(build(drafts)) <= upload`` (see the module's
    order), and what was done in words (``None``: nothing, because they fit as they are or
    cannot be made to fit)."""
    drafts = list(drafts)
    if request_size(build(drafts)) <= upload:
        return drafts, None
    pieces = [_answer_piece(r["text"], kind, choices) for r in drafts]
    kept = list(range(len(drafts)))
    dropped: list[str] = []
    keys = [normalize_answer(r["answer"], kind, choices) or r["answer"] for r in drafts]
    while True:
        done = _fit_lengths([drafts[i] for i in kept], [pieces[i] for i in kept], build,
                            upload)
        if done is not None:
            break
        repeats = [i for i in kept if keys[i] in {keys[j] for j in kept if j < i}]
        if not repeats:
            return drafts, None  # step 3: left for the call to fall back
        kept.remove(repeats[-1])
        dropped.append(drafts[repeats[-1]]["client"])
    out, limit = done
    cut = [r["client"] for r, o in zip((drafts[i] for i in kept), out, strict=True)
           if o["text"] != r["text"]]
    said = []
    if cut:
        said.append(f"drafts of {', '.join(cut)} cut to {limit} characters")
    if dropped:
        said.append(f"drafts of {', '.join(reversed(dropped))} left out (answers repeated)")
    size = request_size(build(out))
    return out, (f"max_upload_bytes: {'; '.join(said)}: the request is about {size} bytes,"
                 f" {upload} left")


def _trimmed(drafts: list[Response], build: Build, state: ProtocolState, ctx: NodeContext,
             model: str) -> tuple[list[Response], str | None]:
    """The drafts a call of ``model`` is sent: :func:`fit_upload` when the run has an upload
    cap and ``model`` is a paid model this run may call, else as they are."""
    entry = ctx.run.pool.entry(model)
    limits = allowance(state, ctx)
    if limits.upload is None or entry.tier != "paid" or model in limits.down or \
            (limits.private and not may_hold_private(entry)):
        return drafts, None
    fold = getattr(entry, "system_prompt", "separate") == "fold"
    sized: Build = (lambda ds: fold_system(build(ds))) if fold else build
    kind, choices = expect(state, ctx)
    extra = body_extra(entry, SCHEMA_OF_KIND.get(ctx.kind), {})  # what the call adds
    return fit_upload(drafts, sized, limits.upload - extra, kind=kind, choices=choices)


def _note(record: CallRecord, step: Step) -> None:
    if step.data:
        record["upload_trimmed"] = step.data


# -- the prompts ------------------------------------------------------------------------------
def previous_guidance(state: ProtocolState, round_: int, limit: int | None) -> str:
    """The guidance of the rounds before ``round_``, each in a ``<previous_guidance
    round="r">`` element ("" in round 1)."""
    earlier = [g for g in state.get("guidance", []) if g["round"] < round_]
    if not earlier:
        return ""
    blocks = "\n".join(data_block("previous_guidance", clip_middle(g["text"], limit),
                                  round=str(g["round"]))
                       for g in sorted(earlier, key=lambda g: g["round"]))
    return f"\n{blocks}\n"


def answers_so_far(state: ProtocolState, order: Sequence[str], round_: int) -> str:
    """One line per client, its extracted answer in each round so far:
    ``client: 439 → 441`` ("(none: first round)" in round 1)."""
    if round_ <= 1:
        return FIRST_ROUND
    by_client: dict[str, dict[int, str | None]] = {}
    for r in state.get("responses", []):
        if r["round"] < round_:
            by_client.setdefault(r["client"], {})[r["round"]] = r["answer"]
    lines = []
    for client in [c for c in order if c in by_client] + \
            [c for c in by_client if c not in order]:
        rounds = by_client[client]
        shown = [clip_middle(a, MAX_ANSWER_CHARS) if a is not None else "no answer"
                 for _, a in sorted(rounds.items())]
        lines.append(f"{client}: {' → '.join(shown)}")
    return "\n".join(lines) or FIRST_ROUND


def _prepare_guide(state: ProtocolState, ctx: NodeContext) -> Step:
    assert ctx.role is not None
    r = state.get("rounds", 0) + 1
    limit = max_draft_chars(ctx)
    latest = latest_responses(state)
    order = state.get("selected") or list(latest)
    drafts = clipped([latest[n] for n in order if n in latest], limit)
    values = {"question": state["question"], "round": r,
              "rounds": ctx.run.params.get("rounds", r),
              "previous_guidance": previous_guidance(state, r, limit),
              "answers_so_far": answers_so_far(state, order, r)}

    def build(shown: list[Response]) -> list[BaseMessage]:
        return ctx.run.prompts.messages(
            ctx.prompt or "server_guide", **values,
            drafts="\n".join(data_block("draft", d["text"], client=d["client"])
                             for d in shown))

    model = ctx.run.model(ctx.role)
    shown, note = _trimmed(drafts, build, state, ctx, model)
    return Step(model, build(shown), ctx.role, r, data=note)


def _finish_guide(state: ProtocolState, ctx: NodeContext, step: Step, text: str,
                  record: CallRecord) -> dict[str, Any]:
    _note(record, step)
    guidance = Guidance(round=step.round, model=record["model"], text=text,
                        answer=read_reply(text, state, ctx, record), node=ctx.name)
    return {"guidance": [guidance], "ledger": [record], "rounds": step.round}


guide, aguide = model_node(_prepare_guide, _finish_guide)


def _prepare_aggregate(state: ProtocolState, ctx: NodeContext) -> Step:
    assert ctx.role is not None
    latest = clipped(list(latest_responses(state).values()), max_draft_chars(ctx))

    def build(shown: list[Response]) -> list[BaseMessage]:
        return ctx.run.prompts.messages(ctx.prompt or "aggregator",
                                        question=state["question"],
                                        answers=answers_block(shown))

    model = ctx.run.model(ctx.role)
    shown, note = _trimmed(latest, build, state, ctx, model)
    return Step(model, build(shown), ctx.role, state.get("rounds", 0), data=note)


def _finish_aggregate(state: ProtocolState, ctx: NodeContext, step: Step, text: str,
                      record: CallRecord) -> dict[str, Any]:
    _note(record, step)
    response = Response(client=step.model, model=step.model, role=step.role, node=ctx.name,
                        round=step.round, stage=ctx.stage, sample=0, text=text,
                        answer=read_reply(text, state, ctx, record))
    return {"responses": [response], "ledger": [record]}


aggregate, aaggregate = model_node(_prepare_aggregate, _finish_aggregate)
