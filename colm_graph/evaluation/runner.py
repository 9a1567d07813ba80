"""The eval runner: every (graph, item) pair run concurrently (bounded), one JSON line per
pair appended to ``results.jsonl`` as it finishes, ``--resume`` continuing a killed run
without redoing or duplicating items.

With ``workers`` N > 1 the pairs are dealt on demand (:class:`Dealer`) to this event loop
and N - 1 worker processes (:mod:`colm_graph.evaluation.shards`,
:mod:`colm_graph.evaluation.worker`), each running what it is dealt with :func:`run_fed`;
this process stays the only writer of the eval's files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from colm_graph.core.result import RunResult
from colm_graph.errors import ConfigError
from colm_graph.evaluation.account import (
    STORE,
    CallSink,
    EvalAccount,
    SharedEvalAccount,
    earlier_spent,
    merged_records,
    part_cap,
)
from colm_graph.evaluation.datasets import Item
from colm_graph.evaluation.scoring import score_answer
from colm_graph.pool import ModelPool

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

__all__ = ["AUTO_PAIRS_PER_WORKER", "Dealer", "EvalIncomplete", "GraphEntry", "arun_eval",
           "resolve_graphs", "result_row", "run_eval", "run_fed", "run_pairs"]

RESULTS, RUN, SAMPLES = "results.jsonl", "run.json", "samples.jsonl"
AUTO_PAIRS_PER_WORKER = 256
"""With ``workers=None`` (the command line's default) an eval takes one worker process per
core, but no more than one per this many pairs left to do: starting a worker (its imports,
2 to 4 s of CPU) costs about as much as a hundred or two pairs, so a small eval stays in
process."""


class EvalIncomplete(RuntimeError):
    """A worker process of the eval died: its unfinished pairs are not in ``results.jsonl``
    (everything else is); ``--resume`` does them. The message is one line."""


@dataclass(frozen=True)
class GraphEntry:
    """One graph of an eval: a spec plus its parameter and role settings."""

    label: str
    spec: str
    params: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None
    sweep: dict[str, Any] | None = None


def _parse_value(raw: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(raw)
    except (yaml.YAMLError, ValueError, RecursionError):  # not a YAML value: the text
        return raw


def _param_check(spec_name: str, param: str) -> Callable[[Any], str | None]:
    """Why a value cannot be ``param`` of the spec ``spec_name`` (checked before any run)."""
    from colm_graph.spec import load_spec
    from colm_graph.spec.validate import param_constraints, param_error

    spec = load_spec(spec_name)
    table = param_constraints(spec)
    return lambda value: param_error(spec, param, value, table)


def resolve_graphs(names: Sequence[str], pool: ModelPool, sweeps: Sequence[str] = ()
                   ) -> list[GraphEntry]:
    """Entries for ``--graphs`` names (shipped variants, spec paths, or the baselines
    ``large_only`` / ``small_only``) and ``--sweep SPEC.PARAM=V1,V2`` settings."""
    entries: list[GraphEntry] = []
    for name in names:
        if name == "large_only":
            entries.append(GraphEntry("large_only", "single", baseline="large_only"))
        elif name == "small_only":
            local = pool.names("local")
            if not local:
                raise ConfigError("--graphs small_only: the pool has no local model")
            entries.append(GraphEntry("small_only", "single", roles={"solver": local[0]},
                                      baseline="small_only"))
        else:
            label = Path(name).stem if name.endswith((".yaml", ".yml")) else name
            entries.append(GraphEntry(label, name))
    for sweep in sweeps:
        target, sep, values = sweep.partition("=")
        spec, dot, param = target.partition(".")
        if not sep or not dot or not values or not spec or not param:
            raise ConfigError(f"--sweep {sweep}: expected SPEC.PARAM=V1,V2,...")
        check = _param_check(spec, param)
        for raw in values.split(","):
            value = _parse_value(raw.strip())
            err = check(value)
            if err:
                raise ConfigError(f"--sweep {target}: {err}")
            label = f"{Path(spec).stem}[{param}={raw.strip()}]"
            entries.append(GraphEntry(label, spec, params={param: value},
                                      sweep={"param": param, "value": value}))
    labels = [e.label for e in entries]
    dup = next((lab for lab in labels if labels.count(lab) > 1), None)
    if dup:
        raise ConfigError(f"--graphs: {dup!r} given twice")
    if not entries:
        raise ConfigError("--graphs: no graphs to evaluate")
    return entries


def _clients(state: Mapping[str, Any], item: Item) -> dict[str, Any]:
    responses = state.get("responses", [])
    first = {r["client"]: r for r in responses if r["round"] == 0 and r["sample"] == 0}
    if not any(r["round"] > 0 for r in responses):
        return {}
    out = {}
    for pid, r0 in first.items():
        last = r0
        for r in responses:
            if r["client"] == pid and r["round"] >= last["round"]:
                last = r
        out[pid] = {"first": r0["answer"], "final": last["answer"],
                    "first_correct": score_answer(r0["answer"], item).correct,
                    "final_correct": score_answer(last["answer"], item).correct}
    return out


def result_row(entry: GraphEntry, item: Item, state: Mapping[str, Any] | None,
               latency: float, error: str | None = None,
               records: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One results.jsonl line. ``records``: the item's calls as they were made (the
    item's call sink); merged with the run's ledger, so that a failed item keeps the calls
    it made before it failed."""
    run = RunResult.from_state(state, graph=entry.label, error=error)
    run = run.with_ledger(merged_records(records or (), run.ledger))
    t = run.totals
    score = score_answer(run.answer, item) if error is None else None
    cached = [r for r in run.ledger if r.get("cached")]  # answered by the call cache
    return {
        "id": item.id, "graph": entry.label, "domain": item.domain,
        "answer": run.answer, "gold": item.answer,
        "correct": bool(score and score.correct),
        "no_answer": bool(score and score.no_answer),
        "usd": t["usd"], "paid_usd": t["paid_usd"], "local_usd": t["local_usd"],
        "paid_calls": t["paid_calls"], "local_calls": t["local_calls"], "calls": t["calls"],
        "paid_tokens": t["paid_input_tokens"] + t["paid_output_tokens"],
        "input_tokens": t["input_tokens"], "output_tokens": t["output_tokens"],
        "cached_calls": len(cached),
        "cached_usd": round(sum(float(r.get("cached_usd", 0.0)) for r in cached), 12),
        "cached_paid_usd": round(sum(float(r.get("cached_usd", 0.0)) for r in cached
                                     if r["tier"] == "paid"), 12),
        "latency_s": round(latency, 6), "rounds": run.rounds, "stage": run.stage,
        "degraded": run.degraded, "error": run.error, "simulated": run.simulated,
        "clients": _clients(run.transcript(), item) if error is None else {},
        "paid_request_bytes": t["paid_request_bytes"],
        "paid_response_bytes": t["paid_response_bytes"],
        "local_request_bytes": t["local_request_bytes"],
        "local_response_bytes": t["local_response_bytes"],
        "private": bool(run.constraints.get("private")), "deadline_hit": run.deadline_hit,
        "link_changed_path": run.link_changed_path,
    }


def _inputs(item: Item) -> dict[str, Any]:
    inputs: dict[str, Any] = {"question": item.question, "answer_type": item.answer_type}
    if item.choices:
        inputs["choices"] = list(item.choices)
    if item.image:
        from colm_graph.core.images import image_data_url

        inputs["images"] = [image_data_url(item.image, flag=f"image of item {item.id}")]
    return inputs


def _done(path: Path) -> set[tuple[str, str]]:
    """(graph, id) pairs already in results.jsonl; a torn last line is cut off."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    keep = data if data.endswith(b"\n") or not data else data[: data.rfind(b"\n") + 1]
    if keep != data:
        with path.open("r+b") as fh:
            fh.truncate(len(keep))
    done = set()
    for line in keep.decode("utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            done.add((row["graph"], row["id"]))
    return done


def _check_resume(out: Path, meta: dict[str, Any], resume: bool
                  ) -> tuple[set[tuple[str, str]], dict[str, Any] | None]:
    """Finished (graph, id) pairs, and the meta the run was started with (``None``: a new
    run, or a resumed one without ``run.json``)."""
    results, run = out / RESULTS, out / RUN
    if not resume:
        if results.exists() and results.stat().st_size > 0:
            raise ConfigError(f"--out {out}: already holds results; pass --resume to continue"
                              " or choose another --out")
        return set(), None
    before = None
    if run.exists():
        before = json.loads(run.read_text())
        for key in ("graphs", "dataset", "seed", "models", "limit", "sample", *CONSTRAINTS):
            was = before.get(key, _UNSET.get(key))  # constraints: not in older run.json
            if was != meta.get(key):
                raise ConfigError(f"--resume: {out} was started with another {key}"
                                  f" ({was!r}, now {meta.get(key)!r})")
    return _done(results), before


def _cap_text(usd: float | None, tokens: int | None) -> str:
    parts = ([f"${usd:g}"] if usd is not None else []) + \
        ([f"{tokens} tokens"] if tokens is not None else [])
    return " and ".join(parts) or "no cap"


def _resumed_budget(before: dict[str, Any], usd: float | None, tokens: int | None,
                    ) -> tuple[float | None, int | None, bool]:
    """The caps of a resumed eval: those it was started with (recorded in ``run.json``),
    except a cap given again explicitly (``None``: not given). Whether they changed."""
    old_usd, old_tokens = before.get("max_paid_usd"), before.get("max_paid_tokens")
    new_usd = old_usd if usd is None else usd
    new_tokens = old_tokens if tokens is None else tokens
    return new_usd, new_tokens, (new_usd, new_tokens) != (old_usd, old_tokens)


def _item_config(entry: GraphEntry, sink: CallSink,
                 account: EvalAccount | SharedEvalAccount | None,
                 cache: Any = None, log: Callable[..., None] | None = None
                 ) -> RunnableConfig:
    """An item's invoke config: its call sink, the call cache, and under a cap the eval's
    account and, as the run's own caps (what ``budget_left_usd_above`` sees), what the
    account has free now (or the graph's own ``max_paid_usd`` / ``max_paid_tokens``, if
    lower)."""
    conf: dict[str, Any] = {"colm_call_sink": sink}
    if cache is not None:
        conf["colm_call_cache"] = cache
    if log is not None:
        conf["colm_call_log"] = log
    if account is not None:
        conf["colm_account"] = account
        left = account.available()
        for key, value in (("max_paid_usd", left.usd), ("max_paid_tokens", left.tokens)):
            if value is None:
                continue
            own = entry.params.get(key)
            value = max(value, 0)
            if isinstance(own, int | float) and not isinstance(own, bool):
                value = min(value, own)
            conf[key] = value
    return {"configurable": conf}


CONSTRAINTS = ("deadline_s", "private", "private_detect", "max_upload_bytes")
"""The eval-wide run constraints (:func:`colm_graph.run.constraints.with_constraints`)."""
_UNSET: dict[str, Any] = {"deadline_s": None, "private": False, "private_detect": False,
                          "max_upload_bytes": None}


def _check_constraints(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The eval-wide constraints that are set, checked (one-line :class:`ConfigError`)."""
    given = {k: v for k, v in settings.items() if v is not None and v is not False}
    try:
        from colm_graph.run.constraints import with_constraints

        with_constraints(**given)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return given


def _item_constraints(item: Item, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The constraints of ``item``'s run: the eval's, its own ``deadline_s`` and
    ``private`` winning (``private: false`` also turns the detector off for it)."""
    out = dict(settings)
    if item.deadline_s is not None:
        out["deadline_s"] = item.deadline_s
    if item.private is not None:
        out["private"] = item.private
        if not item.private:
            out.pop("private_detect", None)
    return out


def _cache(cache: Any, out: Path) -> Any:
    from colm_graph.run.cache import SQLiteCallCache

    if cache is None or not isinstance(cache, str | Path):
        return cache
    path = out / "calls.sqlite" if cache == "default" else Path(cache)
    try:
        return SQLiteCallCache(path)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"--cache {path}: cannot open the call cache: {exc}") from None


_SAMPLE_KEYS = ("node", "role", "model", "tier", "round", "stage", "input_tokens",
                "output_tokens", "usd", "latency_s", "started_at", "tokens_estimated",
                "simulated", "cached", "cached_usd", "degraded", "truncated",
                "request_bytes", "response_bytes", "lost_request_bytes", "bytes_estimated",
                "time_left_s", "fallback", "fallback_for")


def _sample(record: Mapping[str, Any], prompt: str, reply: str) -> dict[str, Any]:
    """One logged call: its record's main fields, the prompt and the reply as text."""
    return {**{k: record[k] for k in _SAMPLE_KEYS if k in record}, "prompt": prompt,
            "response": reply}


def _phases(entries: Sequence[GraphEntry]) -> dict[str, int]:
    """Each entry's turn: its place among the values of its sweep (0 for the rest)."""
    seen: dict[tuple[str, str], int] = {}
    out = {}
    for e in entries:
        if e.sweep is None:
            out[e.label] = 0
        else:
            series = (e.spec, str(e.sweep["param"]))
            out[e.label] = seen.get(series, 0)
            seen[series] = out[e.label] + 1
    return out


class Progress:
    """The eval's progress bar (tqdm) with running accuracy and paid spend; nothing when
    ``stream`` is ``None``. Away from a terminal it redraws at most every few seconds."""

    def __init__(self, total: int, stream: TextIO | None, done: int = 0) -> None:
        from tqdm import tqdm

        self.correct = self.finished = 0
        self.paid = 0.0
        tty = bool(stream is not None and stream.isatty())
        self.bar = tqdm(total=total, initial=done, file=stream, disable=stream is None,
                        ascii=" #", ncols=None if tty else 100, mininterval=0.2 if tty else 5,
                        bar_format="[{bar:30}] {n_fmt}/{total_fmt} {desc} ({elapsed})",
                        desc="acc - paid $0.0000")

    def update(self, row: dict[str, Any]) -> None:
        self.finished += 1
        self.correct += row["correct"]
        self.paid += row["paid_usd"]
        self.bar.set_description_str(f"acc {self.correct / self.finished:.3f}"
                                 f" paid ${self.paid:.4f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


Emit = Callable[[str, "str | None", dict[str, Any]], None]
"""Where a finished pair goes: ``emit(row_line, samples_line, row)``."""


Take = Callable[[int], "Awaitable[Sequence[tuple[GraphEntry, Item]]]"]
"""Where pairs come from on demand: ``await take(want)`` gives about ``want`` more pairs
(whole items), nothing when there are no more."""


def _pair_runner(graphs: Mapping[str, Any], emit: Emit, *,
                 account: EvalAccount | SharedEvalAccount | None, cache: Any,
                 log_samples: bool, secrets: Sequence[str],
                 constraints: Mapping[str, Any] | None = None
                 ) -> Callable[[GraphEntry, Item], Awaitable[None]]:
    """``one(entry, item)``: run one pair and hand it to ``emit`` (see :func:`run_pairs`);
    its run's constraints (``constraints``, the item's own winning) count from its start."""
    from colm_graph.core.secrets import scrub
    from colm_graph.run.constraints import with_constraints

    async def one(entry: GraphEntry, item: Item) -> None:
        start = time.perf_counter()
        sink = CallSink()
        logged: list[dict[str, Any]] = []
        log = None if not log_samples else (
            lambda record, prompt, reply: logged.append(_sample(record, prompt, reply)))
        try:
            config = _item_config(entry, sink, account, cache, log)
            settings = _item_constraints(item, constraints or {})
            if settings:  # the deadline counts from here: the item's run starts now
                config = with_constraints(config, **settings)
            state = await graphs[entry.label].ainvoke(_inputs(item), config)
            row = result_row(entry, item, state, time.perf_counter() - start,
                             records=sink.records)
        except Exception as exc:  # recorded with the calls it made; the eval goes on
            message = scrub(f"{type(exc).__name__}: {exc}", secrets).splitlines()[0][:500]
            row = result_row(entry, item, None, time.perf_counter() - start, message,
                             records=sink.records)
        samples = None if not log_samples else scrub(json.dumps(
            {"id": item.id, "graph": entry.label, "question": item.question,
             "calls": logged}), secrets)
        emit(scrub(json.dumps(row), secrets), samples, row)

    return one


async def run_pairs(todo: Sequence[tuple[GraphEntry, Item]], entries: Sequence[GraphEntry],
                    graphs: Mapping[str, Any], emit: Emit, *, concurrency: int,
                    account: EvalAccount | SharedEvalAccount | None, cache: Any,
                    log_samples: bool, secrets: Sequence[str],
                    constraints: Mapping[str, Any] | None = None) -> None:
    """Run the pairs ``todo`` on this event loop, at most ``concurrency`` at a time, the
    values of a sweep one after another; hand each finished pair to ``emit``: its line of
    ``results.jsonl``, its line of ``samples.jsonl`` (``None`` without ``log_samples``),
    both scrubbed of ``secrets``, and the row itself. A pair that fails is a row with its
    ``error`` (and the calls it made); the others go on. ``constraints``: keyword arguments
    of :func:`~colm_graph.run.constraints.with_constraints` for every item's run (an item's
    own ``deadline_s`` and ``private`` win), the deadline counting from that run's start."""
    sem = asyncio.Semaphore(concurrency)
    run = _pair_runner(graphs, emit, account=account, cache=cache, log_samples=log_samples,
                       secrets=secrets, constraints=constraints)

    async def one(entry: GraphEntry, item: Item) -> None:
        async with sem:
            await run(entry, item)

    phase = _phases(entries)
    for k in sorted(set(phase.values())):
        await asyncio.gather(*(one(e, it) for e, it in todo if phase[e.label] == k))


async def run_fed(take: Take, graphs: Mapping[str, Any], emit: Emit, *, concurrency: int,
                  account: EvalAccount | SharedEvalAccount | None, cache: Any,
                  log_samples: bool, secrets: Sequence[str],
                  ended: Callable[[GraphEntry], None] | None = None,
                  constraints: Mapping[str, Any] | None = None) -> None:
    """:func:`run_pairs` over pairs taken on demand: whenever fewer than ``concurrency``
    pairs are in flight here, ``take`` the difference (one request at a time), until it
    gives nothing. ``ended(entry)`` after each pair, emitted or not."""
    sem = asyncio.Semaphore(concurrency)  # a whole item may overshoot the request a little
    run = _pair_runner(graphs, emit, account=account, cache=cache, log_samples=log_samples,
                       secrets=secrets, constraints=constraints)
    running: set[asyncio.Task[None]] = set()

    async def one(entry: GraphEntry, item: Item) -> None:
        try:
            async with sem:
                await run(entry, item)
        finally:
            if ended is not None:
                ended(entry)

    def check(tasks: set[asyncio.Task[None]]) -> None:
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    try:
        while True:
            while len(running) >= concurrency:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                check(done)
            batch = await take(concurrency - len(running))
            if not batch:
                break
            for entry, item in batch:
                task = asyncio.ensure_future(one(entry, item))
                running.add(task)
                task.add_done_callback(running.discard)
        if running:
            done, _ = await asyncio.wait(set(running))
            check(done)
    finally:
        for task in list(running):
            task.cancel()


class Dealer:
    """The (graph, item) pairs of an eval on several processes, handed out on demand from
    one queue in the parent, in ``todo``'s order, to whoever asks (``who``: 0 for the
    parent, a worker's number): an item belongs to the first process dealt one of its
    pairs, and its other graphs go to that process too (so their identical calls go one at
    a time on one event loop, and are cached once); the values of a sweep one after
    another (a value's pairs are dealt once every pair of the value before it has ended,
    as :func:`run_pairs` runs them). A process that dies gives back (:meth:`release`) the
    pairs kept for it that it never took; those it took are not dealt again."""

    def __init__(self, todo: Sequence[tuple[GraphEntry, Item]],
                 entries: Sequence[GraphEntry]) -> None:
        self.phase = _phases(entries)
        by_phase: dict[int, list[tuple[GraphEntry, Item]]] = {}
        for entry, item in todo:
            by_phase.setdefault(self.phase[entry.label], []).append((entry, item))
        order = sorted(by_phase)
        self._phases = [by_phase[k] for k in order]
        self._index = {k: i for i, k in enumerate(order)}
        self._open = [len(pairs) for pairs in self._phases]  # dealt or not, not ended
        self._k = 0
        self._queue: deque[tuple[GraphEntry, Item]] = deque(self._phases[0] if order else ())
        self._owner: dict[str, int] = {}  # item id -> the process its pairs go to
        self._kept: dict[int, deque[tuple[GraphEntry, Item]]] = {}  # for their owner
        self._changed = asyncio.Event()

    async def take(self, want: int, who: int = 0) -> list[tuple[GraphEntry, Item]]:
        """Up to ``want`` (at least one) pairs for ``who``; none when there are no more."""
        want = max(1, want)
        while self._k < len(self._phases):
            kept = self._kept.setdefault(who, deque())
            batch: list[tuple[GraphEntry, Item]] = []
            while kept and len(batch) < want:
                batch.append(kept.popleft())
            while self._queue and len(batch) < want:
                pair = self._queue.popleft()
                owner = self._owner.setdefault(pair[1].id, who)
                if owner == who:
                    batch.append(pair)
                else:
                    self._kept.setdefault(owner, deque()).append(pair)
            if batch:
                return batch
            if not any(self._kept.values()):  # nothing left that a death could give back
                if self._k == len(self._phases) - 1:
                    break
                if self._open[self._k] <= 0:  # every pair of this value ended: the next
                    self._k += 1
                    self._queue = deque(self._phases[self._k])
                    self._owner.clear()
                    continue
            self._changed.clear()
            await self._changed.wait()
        return []

    def ended(self, entry: GraphEntry) -> None:
        """One pair of ``entry`` dealt earlier ended (its row written, or lost)."""
        i = self._index[self.phase[entry.label]]
        self._open[i] -= 1
        if self._open[i] <= 0:
            self._changed.set()

    def release(self, who: int) -> None:
        """``who`` is gone: the pairs kept for it go back to the front of the queue, for
        anyone."""
        kept = self._kept.pop(who, deque())
        self._queue.extendleft(reversed(kept))
        for item in [i for i, owner in self._owner.items() if owner == who]:
            del self._owner[item]
        self._changed.set()


def _unshippable(pool: ModelPool, build: Callable[[GraphEntry], Any] | None, cache: Any,
                 detect: Any = None) -> str | None:
    """Why the eval cannot run in worker processes (which rebuild the pool from its entries'
    specs and the graphs from theirs); ``None``: it can."""
    if build is not None:
        return ("a custom build= cannot be used by worker processes, which build the graphs"
                " from their specs; use workers=1")
    for entry in pool:
        if entry.spec is None:
            return (f"pool model {entry.name!r} is a chat model object, which a worker process"
                    " cannot rebuild (only models given by their settings can); use workers=1")
    if cache is not None and not isinstance(cache, str | Path):
        return "a cache object cannot be shared with worker processes; give a file or use" \
            " workers=1"
    if callable(detect):
        return "a private_detect callable cannot be sent to worker processes; use" \
            " private_detect=True (the built-in detector) or workers=1"
    return None


def _worker_count(workers: int | None, concurrency: int,
                  todo: Sequence[tuple[GraphEntry, Item]], obstacle: str | None) -> int:
    """Processes for ``todo`` (this one and the workers): as asked (``None``: one per core,
    at most one per :data:`AUTO_PAIRS_PER_WORKER` pairs, 1 when there is an ``obstacle``),
    but no more than ``concurrency`` (each takes at least one of it) or the items left (an
    item's graphs go to one process); 1 means in this process only."""
    if workers is None:
        workers = 1 if obstacle else min(os.cpu_count() or 1,
                                         len(todo) // AUTO_PAIRS_PER_WORKER)
    return max(1, min(workers, concurrency, len({it.id for _, it in todo})))


def _job(entries: Sequence[GraphEntry], pool: ModelPool, out: Path, calls: Any,
         log_samples: bool, budget: dict[str, Any] | None, labels: Sequence[str],
         constraints: Mapping[str, Any]) -> dict[str, Any]:
    """What every worker is sent first (JSON): the graphs' and the pool's settings, where
    the call cache and the budget are, the eval's run constraints; its share of the
    concurrency is added per worker, and the pairs (each item with its own constraints)
    come later, on demand."""
    from colm_graph.run.cache import SQLiteCallCache

    models = [e.spec.model_dump(mode="json") for e in pool if e.spec is not None]
    return {"entries": [asdict(e) for e in entries], "out": str(out.resolve()),
            "pool": {"models": models, "server": pool.server, "source": pool.source},
            "cache": str(calls.path.resolve()) if isinstance(calls, SQLiteCallCache)
            else None, "log_samples": log_samples, "budget": budget,
            "labels": list(labels), "constraints": dict(constraints)}


async def arun_eval(entries: Sequence[GraphEntry], items: Sequence[Item], pool: ModelPool,
                    out: str | Path, *, concurrency: int = 8, resume: bool = False,
                    dataset: str = "", models: str | None = None, seed: int = 0,
                    limit: int | None = None, sample: int | None = None,
                    progress: TextIO | None = None,
                    build: Callable[[GraphEntry], Any] | None = None,
                    max_paid_usd: float | None = None,
                    max_paid_tokens: int | None = None,
                    notes: TextIO | None = None, cache: Any = "default",
                    log_samples: bool = False, workers: int | None = 1,
                    deadline_s: float | None = None, private: bool = False,
                    private_detect: Any = False, max_upload_bytes: int | None = None
                    ) -> Path:
    """Run every graph on every item; returns the results file.

    ``max_paid_usd`` / ``max_paid_tokens`` cap the whole eval: one
    :class:`~colm_graph.run.budget.PaidAccount` from which every paid call of every item
    reserves its own worst case. A resumed eval (``resume``) keeps the caps it was started
    with unless one is given here (``None``: not given); a new cap is recorded in
    ``run.json`` and said in one line on ``notes``. What earlier parts spent counts.

    ``cache``: the call cache (:mod:`colm_graph.run.cache`): ``"default"`` is
    ``OUT/calls.sqlite``, a path another SQLite file (shared between evals), any LangChain
    ``BaseCache`` itself, ``None`` none. The values of a ``--sweep`` run one after another
    (each value's items concurrently), so a later value is answered from the cache for
    every call an earlier one made.

    ``log_samples``: every call's prompt and reply, per item, in ``OUT/samples.jsonl``
    (one line per graph and item, written with its row; secrets scrubbed).

    ``deadline_s``, ``private``, ``private_detect``, ``max_upload_bytes``: every item's
    run constraints (:func:`~colm_graph.run.constraints.with_constraints`), the deadline
    counting from the start of that item's run (not the eval's); an item's own
    ``deadline_s`` and ``private`` win (``private: false`` also turns the detector off for
    it). They are recorded in ``run.json``, and a resumed eval must keep them. A
    ``private_detect`` callable needs ``workers=1``.

    ``workers``: processes to run the pairs on, this one and ``workers - 1`` worker
    processes, each with its own event loop and an even share of ``concurrency`` (so no
    more than ``concurrency`` or than items left), the pairs dealt to them on demand, an
    item's graphs to one process; ``1`` runs everything on this event loop,
    ``None`` takes one per core (at most one per :data:`AUTO_PAIRS_PER_WORKER` pairs, and 1
    where workers cannot be used or the pool has a local Hugging Face model, which each
    worker would load and batch alone). Workers rebuild the pool from its entries' settings and
    the graphs from their specs: a custom ``build``, a pool holding chat model objects or a
    ``cache`` object need ``workers=1`` (:class:`ConfigError` otherwise). This process
    writes every file, the one progress bar runs here, and the cap holds across the
    workers (see :mod:`colm_graph.evaluation.shards`). A worker that dies leaves the pairs it
    had taken and not finished out of ``results.jsonl``; the others finish, then
    :class:`EvalIncomplete` says so (``resume`` does them)."""
    from colm_graph import __version__
    from colm_graph.core.secrets import pool_secrets
    from colm_graph.spec import load_graph

    if concurrency < 1:
        raise ConfigError(f"--concurrency: expected at least 1, got {concurrency}")
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise ConfigError(f"--workers: expected at least 1, got {workers}")
    constraints = _check_constraints({"deadline_s": deadline_s, "private": private,
                                      "private_detect": private_detect,
                                      "max_upload_bytes": max_upload_bytes})
    obstacle = _unshippable(pool, build, cache, private_detect)
    if workers is not None and workers > 1 and obstacle:
        raise ConfigError(f"--workers {workers}: {obstacle}")
    graphs = {e.label: (build(e) if build else load_graph(
        e.spec, pool=pool, params=e.params, roles=e.roles)) for e in entries}
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create: {exc.strerror}") from None
    meta = {"graphs": [asdict(e) for e in entries], "dataset": dataset, "items": len(items),
            "seed": seed, "models": models, "limit": limit, "sample": sample,
            "max_paid_usd": max_paid_usd, "max_paid_tokens": max_paid_tokens,
            **{k: _UNSET[k] for k in CONSTRAINTS},
            **{k: "callable" if callable(v) else v for k, v in constraints.items()},
            "simulated": pool.simulated, "started_at": time.time(),
            "colm_graph_version": __version__}
    done, before = _check_resume(out, meta, resume)
    calls = _cache(cache, out)  # before anything is written: a bad --cache leaves no trace
    todo = [(e, it) for e in entries for it in items if (e.label, it.id) not in done]
    # not by default with a local Hugging Face model: each worker would load it, batch alone
    local = next((e.name for e in pool if e.provider == "huggingface"), None)
    n = _worker_count(workers, concurrency, todo,
                      obstacle or (f"{local} is a local model" if local else None))
    meta["workers"] = n
    changed, was = False, ""
    if before is None:
        (out / RUN).write_text(json.dumps(meta, indent=2))
    else:
        max_paid_usd, max_paid_tokens, changed = _resumed_budget(before, max_paid_usd,
                                                                 max_paid_tokens)
        if changed:
            was = _cap_text(before.get("max_paid_usd"), before.get("max_paid_tokens"))
            before.update(max_paid_usd=max_paid_usd, max_paid_tokens=max_paid_tokens)
            (out / RUN).write_text(json.dumps(before, indent=2))
    secrets = pool_secrets(pool)
    capped = max_paid_usd is not None or max_paid_tokens is not None
    part = time.time()
    account = EvalAccount(max_paid_usd, max_paid_tokens, out, part=part) \
        if capped and n == 1 else None
    earlier = earlier_spent(out) if capped and n > 1 else None
    if changed and notes is not None:
        before_usd = account.earlier_usd if account else earlier[0] if earlier else None
        spent = "" if before_usd is None else f"; earlier parts spent ${before_usd:.4f}"
        notes.write(f"colm-graph: note: --resume: the eval's paid budget is now"
                    f" {_cap_text(max_paid_usd, max_paid_tokens)} (it was {was}), recorded in"
                    f" {out / RUN}{spent}\n")
        notes.flush()
    pool.warm_clients()  # before the first item's deadline starts counting
    files = contextlib.ExitStack()  # closed (and the account with them) on the way out
    if account is not None:
        files.callback(account.close)
    try:
        fh = files.enter_context((out / RESULTS).open("a", encoding="utf-8"))
        samples = files.enter_context((out / SAMPLES).open("a", encoding="utf-8")) \
            if log_samples else None
    except BaseException:
        files.close()
        raise

    def emit(row_line: str, samples_line: str | None, row: dict[str, Any]) -> None:
        if samples is not None and samples_line is not None:  # before the row: a row on
            samples.write(samples_line + "\n")                # disk has its samples
            samples.flush()
        fh.write(row_line + "\n")
        fh.flush()
        bar.update(row)

    failed: list[str] = []
    bar = Progress(len(entries) * len(items), progress, done=len(done))
    try:
        if n == 1:
            await run_pairs(todo, entries, graphs, emit, concurrency=concurrency,
                            account=account, cache=calls, log_samples=log_samples,
                            secrets=secrets, constraints=constraints)
        else:
            from colm_graph.evaluation.shards import run_workers
            from colm_graph.run.spend import SQLiteSpendStore

            budget, shared = None, None
            if earlier is not None:
                SQLiteSpendStore(out / STORE).close()  # its tables, before any worker
                cap = part_cap(max_paid_usd, max_paid_tokens, earlier, part=part)
                budget = {"cap": asdict(cap), "part": part}
                shared = SharedEvalAccount(out, cap, part=part)
                files.callback(shared.close)
            dealer = Dealer(todo, entries)
            shares = [concurrency // n + (i < concurrency % n) for i in range(n)]
            job = _job(entries, pool, out, calls, log_samples, budget,
                       sorted({e.label for e, _ in todo}), constraints)
            here = run_fed(dealer.take, graphs, emit, concurrency=shares[0], account=shared,
                            cache=calls, log_samples=log_samples, secrets=secrets,
                            ended=dealer.ended, constraints=constraints)
            failed, died = await run_workers(
                job, shares[1:], dealer, here,
                lambda m: emit(m["row"], m.get("samples"), json.loads(m["row"])))
            if died and notes is not None:
                notes.write("".join(f"colm-graph: note: {d}\n" for d in died))
                notes.flush()
    finally:
        bar.close()
        fh.flush()
        os.fsync(fh.fileno())
        files.close()
    if failed:
        raise EvalIncomplete(f"{'; '.join(failed)}: those pairs are not in {out / RESULTS}"
                             " (every finished one is); run the same command with --resume"
                             " to do them")
    return out / RESULTS


def run_eval(*args: Any, **kwargs: Any) -> Path:
    """Synchronous :func:`arun_eval` (``workers=N`` included)."""
    kwargs.setdefault("progress", sys.stderr)
    kwargs.setdefault("notes", sys.stderr)
    return asyncio.run(arun_eval(*args, **kwargs))
