"""Reading answers the way real models write them: the one piece every protocol shares.

* :func:`extract_answer` / :func:`read_answer` — the final answer of a reply (reasoning
  blocks skipped; the last explicit statement; a last-number fallback for numbers);
* :func:`answers_match` / :func:`equivalent` / :func:`normalize_answer` — equivalence
  (numbers by value whatever their writing, math through ``math-verify``, choice letters,
  normalised text), bounded in time;
* :func:`agreement` — groups, majority, share and ties;
* :func:`parse_score` — verifier and router scores, ``None`` when unreadable.

Expected answer types (``kind``): ``auto`` (guess from the text), ``number``, ``choice``,
``math``, ``text``. A reply without an extractable answer is "no answer" (``None``); no
function here raises on any input text.
"""

from __future__ import annotations

from colm_graph.core.answers.agreement import Agreement, agreement, group_answers
from colm_graph.core.answers.equivalence import (
    MATH_TIMEOUT_S,
    answers_match,
    equivalent,
    normalize_answer,
    number_value,
)
from colm_graph.core.answers.extract import (
    KINDS,
    Extraction,
    boxed_content,
    extract_answer,
    json_object,
    read_answer,
    strip_reasoning,
)
from colm_graph.core.answers.scores import parse_score

__all__ = [
    "KINDS", "MATH_TIMEOUT_S", "Agreement", "Extraction", "agreement", "answers_match",
    "boxed_content", "equivalent", "extract_answer", "group_answers", "json_object",
    "normalize_answer",
    "number_value", "parse_score", "read_answer", "strip_reasoning",
]
