"""The bundled task set: generated questions with exact gold answers (see
``evals/generate_tasks.py``). Used by the simulator and as the default eval dataset."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from colm_graph.core.resources import bundled_dir

__all__ = ["SimTask", "TaskBook", "bundled_tasks"]

TASKS_FILE = "colm_tasks.jsonl"


@dataclass(frozen=True)
class SimTask:
    """One question the simulator knows, with its gold answer (not a fan-out
    :class:`colm_graph.core.state.Task`)."""

    id: str
    domain: str
    question: str
    answer: str
    choices: tuple[str, ...] | None = None
    distractors: tuple[str, ...] = field(default_factory=tuple)


def _key(text: str) -> str:
    return " ".join(text.split()).lower()


class TaskBook:
    """Index of tasks by question text, for finding the task a prompt is about."""

    def __init__(self, tasks: list[SimTask]) -> None:
        self.tasks = tasks
        self._by_question = {_key(t.question): t for t in tasks}

    def find(self, text: str) -> SimTask | None:
        """The task whose question is ``text``, or is contained in it (longest wins)."""
        key = _key(text)
        hit = self._by_question.get(key)
        if hit is not None:
            return hit
        best: SimTask | None = None
        for q, task in self._by_question.items():
            if q in key and (best is None or len(q) > len(_key(best.question))):
                best = task
        return best

    @classmethod
    def from_jsonl(cls, path: Path) -> TaskBook:
        tasks = []
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    tasks.append(SimTask(
                        id=row["id"], domain=row["domain"], question=row["question"],
                        answer=str(row["answer"]),
                        choices=tuple(row["choices"]) if row.get("choices") else None,
                        distractors=tuple(str(d) for d in row.get("distractors") or ()),
                    ))
        return cls(tasks)


@lru_cache(maxsize=1)
def bundled_tasks() -> TaskBook:
    """The bundled task set (loaded once)."""
    return TaskBook.from_jsonl(bundled_dir("datasets") / TASKS_FILE)
