"""Eval datasets: JSONL or Parquet files of questions with gold answers. Nothing is
downloaded.

Accepted row shapes (one JSON object per line, or one Parquet row):

* ours: ``{"id", "question", "answer", "domain"?, "choices"?, "image"?, "deadline_s"?,
  "private"?}``;
* GSM8K-style: ``{"question", "answer": "...reasoning...#### 42"}`` (gold after ``####``);
* MATH-style: ``{"problem", "solution": "... \\boxed{7/2} ..."}`` (gold inside ``\\boxed{}``);
* multiple choice: ``{"question", "choices": [...], "answer": "B" | 1}`` (index or letter);
* ARC's ``choices: {text, label}`` with ``answerKey``, GPQA's ``Question`` / ``Correct
  Answer`` / ``Incorrect Answer 1..3`` and the domain fields of MMLU and MATH
  (:mod:`colm_graph.evaluation.formats`).

An optional ``answer_type`` (``number``, ``choice``, ``math`` or ``text``) says how answers
are read and compared; without it the type follows the gold answer: a choice list makes a
multiple-choice item, a number a numeric one, a LaTeX or symbolic expression a math one,
anything else free text.

Any row may carry the run constraints of its item (:mod:`colm_graph.run.constraints`),
which win over the eval's own (``--deadline``, ``--private``): ``deadline_s``, a positive
number of seconds from the start of the item's run, and ``private``, ``true`` or ``false``
(``false`` also keeps ``--detect-private`` from making the item private).

A question (with its choices listed) has at most
:data:`~colm_graph.core.messages.MAX_QUESTION_CHARS` characters, as everywhere else.

The default dataset is the bundled generated task set (``colm_tasks``).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from colm_graph.core.answers import boxed_content as _boxed
from colm_graph.core.answers import normalize_answer, number_value
from colm_graph.core.messages import MAX_QUESTION_CHARS, question_too_long
from colm_graph.core.resources import bundled_dir
from colm_graph.errors import ColmGraphError
from colm_graph.evaluation.formats import canonical, read_rows

__all__ = ["BUNDLED", "Item", "load_dataset", "sample_items"]

BUNDLED = {"colm_tasks": "colm_tasks.jsonl"}
_TYPES: dict[str, Literal["numeric", "choice", "math", "text"]] = {
    "number": "numeric", "numeric": "numeric", "choice": "choice", "math": "math",
    "text": "text"}
_MATHY = re.compile(r"\\|\^|sqrt|π|√|\d\s*[a-z]\b|[a-z]\s*[-+*/=]\s*\w", re.IGNORECASE)
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class Item:
    """One eval question."""

    id: str
    question: str
    answer: str
    kind: Literal["numeric", "choice", "math", "text"]
    domain: str | None = None
    choices: tuple[str, ...] | None = None
    image: str | None = None
    """Path of an image file (relative paths are relative to the dataset file)."""
    deadline_s: float | None = None
    """Seconds the item's run may take (``None``: the eval's deadline, if any)."""
    private: bool | None = None
    """Whether the item's run is private (``None``: as the eval says)."""

    @property
    def answer_type(self) -> str:
        """The graph input ``answer_type`` for this item (``number``, ``choice``, ...)."""
        return "number" if self.kind == "numeric" else self.kind


def _gold(row: dict[str, Any], where: str) -> str:
    answer = row.get("answer", row.get("target"))
    solution = row.get("solution")
    if isinstance(answer, str) and "####" in answer:
        return answer.rsplit("####", 1)[1].strip().replace(",", "")
    if answer is None and isinstance(solution, str):
        boxed = _boxed(solution)
        if boxed is None:
            raise ColmGraphError(f"{where}: 'solution' has no \\boxed{{...}} answer")
        return boxed.strip()
    if isinstance(answer, bool) or answer is None:
        raise ColmGraphError(f"{where}: expected an 'answer' (or a MATH-style 'solution'),"
                             f" got {answer!r}")
    if isinstance(answer, int | float):
        return str(answer)
    if not isinstance(answer, str) or not answer.strip():
        raise ColmGraphError(f"{where}: 'answer' must be a non-empty string or number")
    return answer.strip()


def _item(row: Any, where: str, n: int, base: Path | None) -> Item:
    if not isinstance(row, dict):
        raise ColmGraphError(f"{where}: expected a JSON object, got {type(row).__name__}")
    question = row.get("question", row.get("problem", row.get("prompt")))
    if not isinstance(question, str) or not question.strip():
        raise ColmGraphError(f"{where}: expected a non-empty 'question' (or 'problem') string")
    gold = _gold(row, where)
    choices = row.get("choices")
    declared = row.get("answer_type")
    if declared is not None and declared not in _TYPES:
        raise ColmGraphError(f"{where}: 'answer_type' must be one of {', '.join(_TYPES)},"
                             f" got {declared!r}")
    kind: Literal["numeric", "choice", "math", "text"]
    if choices is not None:
        if not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS) or not all(
                isinstance(c, str | int | float) for c in choices):
            raise ColmGraphError(f"{where}: 'choices' must be a list of 2 to 10 options")
        choices = [str(c) for c in choices]
        if isinstance(row.get("answer"), int) and not isinstance(row.get("answer"), bool):
            idx = int(row["answer"])
            if not 0 <= idx < len(choices):
                raise ColmGraphError(f"{where}: answer index {idx} out of range")
            gold = LETTERS[idx]
        letter = normalize_answer(gold)
        if letter is None or letter not in LETTERS[: len(choices)]:
            raise ColmGraphError(f"{where}: multiple-choice answer must be a letter A-"
                                 f"{LETTERS[len(choices) - 1]} or an index, got {gold!r}")
        gold, kind = letter, "choice"
        if not re.search(r"^\s*A\)", question, re.MULTILINE):
            question = question.rstrip() + "\n" + "\n".join(
                f"{LETTERS[i]}) {c}" for i, c in enumerate(choices))
    elif declared == "choice":
        raise ColmGraphError(f"{where}: 'answer_type' choice needs a 'choices' list")
    elif declared is not None:
        kind = _TYPES[declared]
    else:
        kind = "numeric" if number_value(gold) is not None else \
            "math" if _MATHY.search(gold) else "text"
    if len(question.strip()) > MAX_QUESTION_CHARS:  # the limit of every entry point
        raise question_too_long(f"{where}: 'question'", len(question.strip()))
    image = row.get("image")
    if image is not None:
        if not isinstance(image, str):
            raise ColmGraphError(f"{where}: 'image' must be a file path string")
        if base is not None and not Path(image).is_absolute():
            image = str(base / image)
        if not _is_file(image):
            raise ColmGraphError(f"{where}: image {image!r} not found")
    domain = row.get("domain")
    deadline, private = _constraints(row, where)
    return Item(id=str(row.get("id", n)), question=question, answer=gold, kind=kind,
                domain=str(domain) if domain is not None else None,
                choices=tuple(choices) if choices else None, image=image,
                deadline_s=deadline, private=private)


def _constraints(row: dict[str, Any], where: str) -> tuple[float | None, bool | None]:
    """A row's ``deadline_s`` and ``private`` (``None`` where not given)."""
    deadline = row.get("deadline_s")
    if deadline is not None:
        if isinstance(deadline, bool) or not isinstance(deadline, int | float) \
                or not math.isfinite(deadline) or deadline <= 0:
            raise ColmGraphError(f"{where}: 'deadline_s' must be a positive number of"
                                 f" seconds, got {deadline!r}")
        deadline = float(deadline)
    private = row.get("private")
    if private is not None and not isinstance(private, bool):
        raise ColmGraphError(f"{where}: 'private' must be true or false, got {private!r}")
    return deadline, private


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except OSError:  # e.g. a name too long for the file system
        return False


def _rows(path: Path) -> Iterator[tuple[int, str, Any]]:
    try:
        yield from read_rows(path)
    except FileNotFoundError:
        raise ColmGraphError(f"{path}: dataset not found (bundled: {', '.join(BUNDLED)})"
                             ) from None


def load_dataset(name_or_path: str | Path = "colm_tasks", *, limit: int | None = None,
                 sample: int | None = None, seed: int = 0) -> list[Item]:
    """Load a bundled dataset by name, or a JSONL or Parquet file; errors name
    ``file:line`` (``file: row N``). ``limit``: the first N items; ``sample``: N items
    drawn with ``seed`` (:func:`sample_items`); ``seed`` also orders GPQA's options."""
    for name, value in (("limit", limit), ("sample", sample)):
        if value is not None and value < 1:
            raise ColmGraphError(f"{name}: expected a positive number of items, got {value}")
    if limit is not None and sample is not None:
        raise ColmGraphError("limit and sample: expected one of them (the first N items, or"
                             " N items drawn at random), got both")
    text = str(name_or_path)
    path = bundled_dir("datasets") / BUNDLED[text] if text in BUNDLED else Path(text)
    items: list[Item] = []
    seen: set[str] = set()
    for n, where, row in _rows(path):
        item = _item(canonical(row, where, n, seed), where, n, path.parent)
        if item.id in seen:
            raise ColmGraphError(f"{where}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise ColmGraphError(f"{path}: no items")
    return items if sample is None else sample_items(items, sample, seed)


def sample_items(items: list[Item], n: int, seed: int = 0) -> list[Item]:
    """``n`` of ``items`` drawn with ``seed``, in their file order. When items have a
    ``domain`` the draw is stratified: each domain (items without one form their own) gets
    its proportional share, rounded by largest remainder (ties by domain name), at least
    one item while ``n`` allows, and a random sample of that size within it."""
    if n >= len(items):
        return list(items)
    rng = random.Random(f"sample:{seed}")
    strata: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        strata.setdefault(it.domain if it.domain is not None else "", []).append(i)
    if len(strata) == 1:
        return [items[i] for i in sorted(rng.sample(range(len(items)), n))]
    names = sorted(strata)
    quota = {d: n * len(strata[d]) / len(items) for d in names}
    take = {d: int(quota[d]) for d in names}
    for d in sorted(names, key=lambda d: (-(quota[d] - take[d]), d))[:n - sum(take.values())]:
        take[d] += 1
    for d in names:  # a domain rounded to nothing gets one item from the largest
        if take[d] == 0 and n >= len(names):
            big = max(names, key=lambda x: (take[x], x))
            take[big], take[d] = take[big] - 1, 1
    chosen = [i for d in names for i in rng.sample(strata[d], take[d])]
    return [items[i] for i in sorted(chosen)]
