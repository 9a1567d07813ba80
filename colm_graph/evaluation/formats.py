"""The public benchmark formats an eval dataset may come in, by their field names, read from
JSONL or Parquet files a user already has (nothing is downloaded).

:func:`read_rows` yields each row of a ``.jsonl`` or ``.parquet`` file with where it is
(``file:line`` or ``file: row N``); :func:`canonical` maps a row of a known format onto the
fields :mod:`colm_graph.evaluation.datasets` reads (``question``, ``answer``, ``choices``,
``domain``, ``id``):

==============  ===============================================================================
GSM8K           ``question``, ``answer`` with the gold after ``####``
MATH, MATH-500  ``problem``, ``solution`` (gold in its last ``\\boxed{}``) or ``answer``;
                ``type`` or ``subject`` is the domain
MMLU            ``question``, ``choices`` (a list), ``answer`` (index or letter); ``subject``
                is the domain
ARC             ``question``, ``choices: {text: [...], label: [...]}``, ``answerKey`` (a label,
                ``"A"``-``"E"`` or ``"1"``-``"5"``)
GPQA            ``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``: the options are
                shuffled with the eval's seed (the same seed, the same order);
                ``High-level domain`` is the domain, ``Record ID`` the id
==============  ===============================================================================
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from colm_graph.errors import ColmGraphError

__all__ = ["canonical", "read_rows"]

GPQA_WRONG = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")


def _jsonl(path: Path) -> Iterator[tuple[int, str, Any]]:
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{path}:{n}"
                try:
                    yield n, where, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ColmGraphError(f"{where}: invalid JSON: {exc.msg}") from None
                except RecursionError:
                    raise ColmGraphError(f"{where}: invalid JSON: nested too deeply") from None
                except ValueError as exc:  # an integer of more than 4300 digits
                    raise ColmGraphError(f"{where}: invalid JSON: {str(exc).split(';')[0]}"
                                         ) from None
    except IsADirectoryError:
        raise ColmGraphError(f"{path}: expected a JSONL or Parquet file, got a directory"
                             ) from None
    except UnicodeDecodeError:
        raise ColmGraphError(f"{path}: dataset is not UTF-8 text") from None


def _parquet(path: Path) -> Iterator[tuple[int, str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ColmGraphError(f"{path}: reading Parquet needs pyarrow (pip install"
                             f" 'colm-graph[parquet]')") from None
    try:
        table = pq.read_table(path)
    except IsADirectoryError:
        raise ColmGraphError(f"{path}: expected a JSONL or Parquet file, got a directory"
                             ) from None
    except Exception as exc:  # pyarrow's ArrowInvalid and its relatives
        first = (str(exc).splitlines() or [""])[0][:200]
        raise ColmGraphError(f"{path}: not a readable Parquet file: {first}") from None
    for n, row in enumerate(table.to_pylist(), 1):
        yield n, f"{path}: row {n}", row


def read_rows(path: Path) -> Iterator[tuple[int, str, Any]]:
    """``(number, where, row)`` for each row of a JSONL file (its line number; blank lines
    skipped) or, for a ``.parquet`` file, of its table (counted from 1)."""
    if not path.exists():
        raise FileNotFoundError(path)
    yield from (_parquet(path) if path.suffix.lower() == ".parquet" else _jsonl(path))


def _arc(row: dict[str, Any], where: str) -> dict[str, Any]:
    choices = row["choices"]
    texts, labels = choices.get("text"), choices.get("label")
    if not isinstance(texts, list) or not isinstance(labels, list) or len(texts) != len(labels):
        raise ColmGraphError(f"{where}: 'choices' as an object needs 'text' and 'label' lists"
                             f" of the same length")
    key = row.get("answerKey", row.get("answer"))
    labels = [str(lab) for lab in labels]
    if str(key) not in labels:
        raise ColmGraphError(f"{where}: answer key {key!r} is not one of the labels"
                             f" {', '.join(labels)}")
    return {**row, "choices": texts, "answer": labels.index(str(key))}


def _gpqa(row: dict[str, Any], where: str, n: int, seed: int) -> dict[str, Any]:
    right = row.get("Correct Answer")
    wrong = [row[k] for k in GPQA_WRONG if row.get(k) not in (None, "")]
    if right in (None, "") or not wrong:
        raise ColmGraphError(f"{where}: a GPQA row needs 'Correct Answer' and at least"
                             f" 'Incorrect Answer 1'")
    ident = row.get("Record ID", row.get("id", n))
    options = [str(right).strip(), *(str(w).strip() for w in wrong)]
    order = list(range(len(options)))
    random.Random(f"gpqa:{seed}:{ident}").shuffle(order)
    out = {"id": ident, "question": row.get("Question"),
           "choices": [options[i] for i in order], "answer": order.index(0)}
    domain = row.get("domain", row.get("High-level domain"))
    return {**out, "domain": domain} if domain not in (None, "") else out


def canonical(row: Any, where: str, n: int, seed: int = 0) -> Any:
    """``row`` with a known public format's fields mapped onto ours (others unchanged)."""
    if not isinstance(row, dict):
        return row
    if "Question" in row and "question" not in row:
        return _gpqa(row, where, n, seed)
    if isinstance(row.get("choices"), dict):
        row = _arc(row, where)
    if row.get("domain") is None:
        for key in ("subject", "type"):
            if isinstance(row.get(key), str) and row[key].strip():
                return {**row, "domain": row[key].strip()}
    return row
