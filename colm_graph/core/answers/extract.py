"""Final-answer extraction: what a reply states as its answer, the way real models write it.

Reasoning is never read as the answer: ``<think>…</think>`` (and ``<thinking>``,
``<reasoning>``, ``<|begin_of_thought|>`` …) blocks are cut first, an unclosed one runs to
the end of the text (a truncated stream states nothing), and a lone closing tag (chat
templates that open the block in the prompt) cuts everything before it. Reasoning returned
apart from the content (``reasoning_content``) never reaches this module.

Of what is left, the answer is the **last explicit final statement**: ``Answer:`` lines,
"the (final / correct) answer is …", the last ``\\boxed{}`` (nested braces), GSM8K's
``#### …``, an "Answer" heading and the line under it, a final bold line, and a JSON reply
``{"answer": …}``. Only when there is none, and the expected type is a number, the last
number of the text is taken (unless the reply declines to answer); for multiple choice a
lone letter line, or the text of exactly one option, is taken.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from colm_graph.core.answers.equivalence import number_value, strip_remark

__all__ = ["Extraction", "boxed_content", "extract_answer", "json_object", "read_answer",
           "strip_reasoning"]

KINDS = ("auto", "number", "choice", "math", "text")

_BLOCKS = (("<think>", "</think>"), ("<thinking>", "</thinking>"),
           ("<reasoning>", "</reasoning>"), ("<thought>", "</thought>"),
           ("<|begin_of_thought|>", "<|end_of_thought|>"))
_MAX_CHARS = 200_000

_LINE = re.compile(  # each part starts where the one before cannot go on: no backtracking
    r"^[ \t>*_#-]*(?:(?:my|the|your)[ \t]+)?(?:(?:final|correct|revised|best[- ]supported)"
    r"[ \t]*)?answer[ \t]*(?:(?:\*\*|__)[ \t]*)?(?:\([^)\n]{0,40}\)[ \t]*)?[:：]"
    r"(?P<ans>[^\n]{0,500})",
    re.IGNORECASE | re.MULTILINE)
_PHRASE = re.compile(
    r"\b(?:the|my|our)[ \t]+(?:(?:final|correct|right|best)[ \t]+)?"
    r"(?:answer|option|choice|result|value)[ \t]*(?:\([^)\n]{0,40}\)[ \t]*)?"
    r"(?:is|would[ \t]+be|will[ \t]+be|=|should[ \t]+be)(?:[ \t]*[:：])?"
    r"(?P<ans>[^\n]{1,300})",
    re.IGNORECASE)
_GSM = re.compile(r"^[ \t]*####(?P<ans>[^\n#]{1,300})", re.MULTILINE)
_HEADING = re.compile(r"^[ \t]*(?:#{1,6}|\*\*)[ \t]*(?:final[ \t]+)?answer:?(?:\*\*)?[ \t]*\n"
                      r"\s{0,40}(?P<ans>[^\n]{1,500})", re.IGNORECASE | re.MULTILINE)
_BOLD = re.compile(r"\*\*(?P<ans>[^*\n]{1,80})\*\*")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_NUM = re.compile(r"(?<![\w.])[-−–+]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")
_LETTER_LINE = re.compile(r"^[ \t*]*\(?(?P<ans>[A-J])\)?[ \t.*]*$", re.MULTILINE)
_DECLINE = re.compile(
    r"\b(?:cannot|can't|can not|unable to|not able to)\s+(?:be\s+)?(?:determine|answer|solve|"
    r"compute|calculate|say|tell|know|find)|not enough information|insufficient information|"
    r"i(?:'m| am) (?:not sure|unsure)|\bnot sure\b|i (?:don't|do not) know|no idea|"
    r"no way to (?:know|tell)", re.IGNORECASE)
_NO_ANSWER = {"", "none", "n/a", "na", "unknown", "cannot answer", "can't answer",
              "no answer", "i don't know", "not sure", "undetermined", "cannot be determined",
              "cannot determine", "?", "...", "no idea", "idk"}
_LEADS = re.compile(r"^(?:(?:so|thus|therefore|hence)[,\s]+)?(?:the\s+)?(?:final\s+|correct\s+)?"
                    r"(?:answer|option)\s+(?:is|would be)\s*[:：]?\s*", re.IGNORECASE)
_TRAILERS = re.compile(r"(?:[\s.;,]*(?:i hope (?:it|this) is correct|hope this helps|"
                       r"let me know[^\n]*)[.!\s]*)+$", re.IGNORECASE)
_TEXT_CMD = re.compile(r"^\\(?:text|textbf|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}$")
_COPULA = re.compile(r"^(?:(?:so|thus|hence|therefore|then)[,\s]+)?(?:the|that|this|it|each|"
                     r"in total|altogether)\b[^=\n]{0,80}?\s(?:is|are|was|equals|comes to|"
                     r"makes|gives|totals)\s+(?P<v>[^\s].{0,60})$", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"^<[^<>]{2,80}>$")
_LABEL = re.compile(r"^(?:\*\*|__)?(?:final\s+)?answer\s*(?:\*\*|__)?\s*[:：]\s*",
                    re.IGNORECASE)

@dataclass(frozen=True)
class Extraction:
    """An answer as read: the cleaned ``answer``, the ``span`` of the original text it came
    from (start, end), and ``how`` it was found (``answer_line``, ``phrase``, ``boxed``,
    ``gsm8k``, ``heading``, ``bold``, ``json``, ``last_number``, ``letter``, ``option``)."""

    answer: str
    span: tuple[int, int]
    how: str


def boxed_content(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``), braces balanced."""
    found = _last_boxed(text)
    return found[0] if found else None


def _last_boxed(text: str) -> tuple[str, int, int] | None:
    for m in reversed(list(_BOXED.finditer(text))[-20:]):  # the last few, bounded
        depth, i = 1, m.end()
        while i < len(text):
            ch = text[i]
            depth += (ch == "{") - (ch == "}")
            if depth == 0:
                return text[m.end():i], m.start(), i + 1
            i += 1
    return None


def _blank(part: str) -> str:
    """As many newlines as ``part`` has characters: positions are kept, and no long line of
    blanks is left for a pattern to backtrack over."""
    return "\n" * len(part)


def strip_reasoning(text: str) -> str:
    """``text`` with reasoning blocks blanked out (positions kept: same length)."""
    out = text
    for opening, closing in _BLOCKS:
        lower = out.lower()
        start = 0
        while True:
            i = lower.find(opening, start)
            j = lower.find(closing, start)
            if j != -1 and (i == -1 or j < i):  # a closing tag with no opening: cut before it
                cut = j + len(closing)
                out = _blank(out[:cut]) + out[cut:]
                lower = out.lower()
                start = cut
                continue
            if i == -1:
                break
            j = lower.find(closing, i + len(opening))
            end = len(out) if j == -1 else j + len(closing)
            out = out[:i] + _blank(out[i:end]) + out[end:]
            lower = out.lower()
            start = end
    return out


def _clean(raw: str) -> str:
    t = raw.strip()[:500]  # an answer is short: longer captures are cut, keeping work bounded
    for _ in range(3):
        before = t
        t = t.strip().strip("`").strip()
        t = _TRAILERS.sub("", t)
        inner = _last_boxed(t)
        if inner is not None:
            t = inner[0]
        t = _LEADS.sub("", t)
        t = _LABEL.sub("", t)
        t = re.sub(r"^(?:\*\*|__)(.+?)(?:\*\*|__)(?=$|[\s.,;!])", r"\1", t).strip()
        t = t.strip("*_").strip()
        for a, b in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(t) > len(a) + len(b) and t.startswith(a) and t.endswith(b) \
                    and (a != "$" or t.count("$") == 2 or t.startswith("$$")):
                t = t[len(a):len(t) - len(b)].strip("$").strip()
        t = t.rstrip(".!。").strip()
        t = strip_remark(t)
        t = _TEXT_CMD.sub(r"\1", t).strip()
        t = _value_of_sentence(t)
        if t == before:
            break
    return t


def _value_of_sentence(t: str) -> str:
    """The value a concluding sentence states: its bold part ("Janet makes **$18** a
    day"), the result of an equation ("7 × 8 = 56"), or what follows its verb ("The area
    is 12 cm²")."""
    bold = [m.group("ans") for m in _BOLD.finditer(t)]
    if bold and not (t.startswith("**") and t.endswith("**")):
        return bold[-1].strip()
    if "=" in t:
        last = t.rsplit("=", 1)[1].strip()
        if number_value(last) is not None and re.search(r"\d", t.rsplit("=", 1)[0]):
            return last
    if len(t.split()) >= 3:
        m = _COPULA.match(t)
        if m:
            return m.group("v").strip()
    return t


def _sentence(text: str) -> str:
    """Cut a phrase's capture at the end of its sentence (a period not inside a number)."""
    m = re.search(r"(?<!\d)\.(?:\s|$)|(?<=\d)\.(?:\s|$)|[!?;](?:\s|$)|,\s+(?:so|which|because|"
                  r"since|as)\b", text)
    return text[:m.start()] if m else text


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object a reply consists of (bare, or in a ```json fence), else ``None``."""
    stripped = text.strip()
    fence = re.match(r"^```(?:json)?\s*(\{.*\})\s*```$", stripped, re.DOTALL)
    body = fence.group(1) if fence else stripped
    if not (body.startswith("{") and body.endswith("}")) or len(body) > 50_000:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _json_answer(text: str) -> tuple[str, int, int] | None:
    data = json_object(text)
    if data is None:
        return None
    value = next((data[k] for k in ("answer", "final_answer", "Answer") if k in data), None)
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    start = text.find(str(value)) if str(value) else -1
    return str(value), max(start, 0), (start + len(str(value))) if start >= 0 else len(text)


def _candidates(text: str) -> list[tuple[int, int, str, str]]:
    """Explicit final statements as ``(end, start, raw, how)``."""
    found: list[tuple[int, int, str, str]] = []
    for m in _LINE.finditer(text):
        found.append((m.end("ans"), m.start("ans"), m.group("ans"), "answer_line"))
    pos = 0
    while (p := _PHRASE.search(text, pos)) is not None:  # overlapping: "not B ... is D"
        raw = _sentence(p.group("ans"))
        found.append((p.start("ans") + len(raw), p.start("ans"), raw, "phrase"))
        pos = p.start("ans")
    for m in _GSM.finditer(text):
        found.append((m.end("ans"), m.start("ans"), m.group("ans"), "gsm8k"))
    for m in _HEADING.finditer(text):
        found.append((m.end("ans"), m.start("ans"), m.group("ans"), "heading"))
    boxed = _last_boxed(text)
    if boxed is not None:
        found.append((boxed[2], boxed[1], boxed[0], "boxed"))
    bold = list(_BOLD.finditer(text))
    if bold and "\n" not in text[bold[-1].end():].strip() \
            and not bold[-1].group("ans").rstrip().endswith(":"):  # bold in the last line
        m = bold[-1]
        found.append((m.end("ans"), m.start("ans"), m.group("ans"), "bold"))
    return found


def _last(pattern: re.Pattern[str], text: str, group: str | int, how: str
          ) -> tuple[str, int, int, str] | None:
    """The last match of ``pattern`` in ``text``: its ``group``, span and ``how``."""
    *_, m = [None, *pattern.finditer(text)]
    return None if m is None else (m.group(group), m.start(group), m.end(group), how)


def _fallback(text: str, kind: str, choices: tuple[str, ...] | None
              ) -> tuple[str, int, int, str] | None:
    if _DECLINE.search(text):
        return None
    short = text.strip()
    if short and "\n" not in short and len(short.split()) <= 4 and len(short) <= 60 \
            and kind != "choice" and (kind != "number" or number_value(short) is not None) \
            and "\\boxed" not in short:
        start = text.find(short)  # a bare reply is its own answer ("Venus", "H₂O", "56")
        return short, start, start + len(short), "bare"
    if kind == "text":
        if (hit := _last(_BOLD, text, "ans", "bold")) is not None:
            return hit
        first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0].rstrip(".!")
        c = _COPULA.match(first)
        if c:
            start = text.find(c.group("v"))
            v = re.split(r",\s|\s(?:which|that|because|with)\s", c.group("v"))[0]
            return v, start, start + len(v), "sentence"
        return None
    if kind == "choice":
        if (hit := _last(_LETTER_LINE, text, "ans", "letter")) is not None:
            return hit
        if choices:
            low = text.lower()
            hits = [(low.rfind(o.lower()), o) for o in choices if o.strip() and o.lower() in low]
            if len(hits) == 1:
                pos, option = hits[0]
                return option, pos, pos + len(option), "option"
        return None
    if kind == "number":
        return _last(_NUM, text, 0, "last_number")
    return None


def read_answer(text: str | None, *, kind: str = "auto",
                choices: tuple[str, ...] | list[str] | None = None,
                truncated: bool = False) -> Extraction | None:
    """The final answer of a reply, with where it was found; ``None``: no answer stated.

    ``truncated``: the reply was cut off (``finish_reason: length``): only an explicit
    statement counts, never a fallback (the last number of a cut-off sentence is not a
    conclusion). Never raises, whatever the text."""
    if not text or not isinstance(text, str):
        return None
    return _read(text[:_MAX_CHARS], kind, tuple(choices) if choices else None, truncated)


@lru_cache(maxsize=4096)
def _read(text: str, kind: str, opts: tuple[str, ...] | None, truncated: bool
          ) -> Extraction | None:
    visible = strip_reasoning(text)
    if not visible.strip():
        return None
    as_json = _json_answer(visible)
    if as_json is not None:
        answer = _clean(as_json[0])
        return None if answer.lower() in _NO_ANSWER else \
            Extraction(answer, (as_json[1], as_json[2]), "json")
    # the statement that ends last wins; a denial ("the answer is not B") or an empty
    # capture gives way to the one before it
    for end, start, raw, how in sorted(_candidates(visible), key=lambda c: (-c[0], c[1])):
        answer = _clean(raw)
        if not answer or answer.lower().startswith("not "):
            continue
        if answer.lower().rstrip(".") in _NO_ANSWER or _DECLINE.fullmatch(answer.lower()) \
                or _PLACEHOLDER.match(answer):  # the prompt's format rule echoed back
            return None
        return Extraction(answer, (start, end), how)
    fb = None if truncated else _fallback(visible, kind, opts)
    if fb is None:
        return None
    answer = _clean(fb[0])
    return Extraction(answer, (fb[1], fb[2]), fb[3]) if answer else None


def extract_answer(text: str | None, *, kind: str = "auto",
                   choices: tuple[str, ...] | list[str] | None = None,
                   truncated: bool = False) -> str | None:
    """The raw final answer of a reply (see :func:`read_answer`), or ``None``."""
    found = read_answer(text, kind=kind, choices=choices, truncated=truncated)
    return found.answer if found else None
