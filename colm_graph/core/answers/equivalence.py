"""Answer equivalence: one comparison for agreement, voting, ties and eval scores.

Numbers are compared by value after the writing real models add is taken off: thousands
separators in any notation (``1,234``, ``1{,}234``, ``1\\,234``), currency (``$42.50``,
``\\$42.50``, ``USD``), units (``12 cm²``, ``15 km``, ``\\text{ cm}^2``), percent (``25%`` is
both ``25`` and ``0.25``), an assignment (``x = 5``), a trailing remark (``439 (computed
above)``), unicode minus and dashes, fractions and decimals (``3/4`` = ``0.75``,
``\\dfrac{3}{4}``). Other mathematical answers go to Hugging Face's ``math-verify`` (with
``latex2sympy2_extended``) for symbolic equivalence, bounded in input size and time (no hang
on hostile input). Multiple-choice answers compare by letter (``(B)``, ``B)``, ``Option B``,
or an option's text when the choices are known); anything else as normalised text.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["MATH_TIMEOUT_S", "answers_match", "equivalent", "normalize_answer", "number_value"]

log = logging.getLogger(__name__)

MATH_TIMEOUT_S = 2.0
"""Longest a symbolic comparison may take; past it the answers count as different."""
_MATH_MAX_CHARS = 240
LETTERS = "ABCDEFGHIJ"

_DASHES = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2012": "-",
                         "\uff0d": "-", "\u00a0": " ", "\u202f": " ", "\u2009": " "})
_CURRENCY = re.compile(r"\\?\$|US\$|USD|EUR|GBP|€|£|¥|\\euro|\\pounds", re.IGNORECASE)
_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|\\,|,|'|’| )(?=\d{3}(?!\d))")
_ASSIGN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,12}\s*(?:=|:=|\\approx|≈)\s*(?P<v>[^=]+)$")
_PLAIN = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d{1,4})?$")
_FRAC = re.compile(r"^(?P<s>[-+]?)\s*(?P<a>\d{1,300})\s*/\s*(?P<b>\d{1,300})$")
_LATEX_FRAC = re.compile(r"^(?P<s>[-+]?)\\[dt]?frac\s*\{\s*(?P<a>[-+]?\d{1,300})\s*\}\s*"
                         r"\{\s*(?P<b>\d{1,300})\s*\}$")
_LATEX_FRAC_SHORT = re.compile(r"^(?P<s>[-+]?)\\[dt]?frac(?P<a>\d)(?P<b>\d)$")
_UNIT = re.compile(
    r"^(?P<num>[-+]?[\d.]+(?:[eE][-+]?\d+)?)\s*(?:\\,|\\;|~)?\s*"
    r"(?P<unit>(?:\\text\{[^{}]{0,20}\}|\\mathrm\{[^{}]{0,20}\}|[A-Za-zµ°²³/.]{1,16})"
    r"(?:\s*(?:\^\s*\{?\d\}?|[²³]))?(?:\s+[A-Za-z]{1,12}){0,2}|\\%|%|\^\s*\{?\\circ\}?|°)$")
_LETTER = re.compile(r"^(?:\(?(?:option|choice|answer)\s*)?\(?(?P<l>[A-Ja-j])\)?(?:[.):]|\s|$)",
                     re.IGNORECASE)
_MATHY = re.compile(r"\\|\^|sqrt|\bpi\b|π|√|[a-z] ?[-+*/]|[-+*/] ?[a-z]|\([^()]{0,80}[,)]|\[|\{",
                    re.IGNORECASE)
_REMARK = re.compile(r"^(?P<keep>.+?)\s+\((?:(?=[^()]*[A-Za-z]{3,})|or\s|i\.e\.|≈|~|approx)"
                     r"[^()]*\)$", re.IGNORECASE)


def strip_remark(text: str) -> str:
    """``439 (computed above)`` -> ``439``; ``3/2 (or 1.5)`` -> ``3/2``; ``(1, 2)`` stays."""
    remark = _REMARK.match(text)
    return remark.group("keep").strip() if remark else text
_TOWER = re.compile(r"\^\s*\{?[^{}]*\^|\^\s*\{?\s*\(?\s*\d{4,}|\d{40,}|!\s*!|\d{3,}\s*!")


@dataclass(frozen=True)
class _Value:
    value: float
    percent: bool = False


def _clean(text: str) -> str:
    t = text.translate(_DASHES).strip()
    t = re.sub(r"^\\(?:left)?\(|\\(?:right)?\)$", "", t) if t.startswith("\\(") else t
    t = t.strip().strip("$").strip()
    t = t.rstrip(".").strip()
    return strip_remark(t)


@lru_cache(maxsize=16384)
def _number(text: str) -> _Value | None:
    if len(text) > 400:
        return None
    t = _clean(text)
    assign = _ASSIGN.match(t)
    if assign:
        t = assign.group("v").strip()
    t = _CURRENCY.sub("", t).strip()
    t = t.replace("{,}", ",").replace("\\!", "")
    t = _THOUSANDS.sub("", t)
    t = t.replace("\\%", "%").replace("\\left", "").replace("\\right", "")
    t = re.sub(r"\s*(?:percent|per cent)$", "%", t, flags=re.IGNORECASE)
    t = t.strip()
    if t.startswith("+"):
        t = t[1:]
    percent = t.endswith("%")
    for pattern in (_FRAC, _LATEX_FRAC, _LATEX_FRAC_SHORT):
        m = pattern.match(t)
        if m:
            a, b = int(m.group("a")), int(m.group("b"))
            if b == 0:
                return None
            try:
                v = a / b
            except OverflowError:
                return None
            return _Value(-v if m.group("s") == "-" else v)
    unit = _UNIT.match(t)
    if unit:
        percent = percent or unit.group("unit") in ("%", "\\%")
        t = unit.group("num")
    if not _PLAIN.match(t) or len(t) > 400:
        return None
    try:
        v = float(t)
    except ValueError:
        return None
    return _Value(v, percent) if math.isfinite(v) else None


def number_value(answer: str | None) -> float | None:
    """The numeric value of an answer (``"1{,}234"`` -> 1234.0), or ``None``."""
    if answer is None:
        return None
    found = _number(answer)
    return found.value if found else None


def _format(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(round(value, 9))


@lru_cache(maxsize=16384)
def _letter(text: str, choices: tuple[str, ...] | None = None) -> str | None:
    t = _clean(text).strip("*").strip()
    m = _LETTER.match(t)
    if m and (len(t) <= 3 or t[1:2] in {")", ".", ":"} or t[0] == "(" or
              t.lower().startswith(("option", "choice", "answer"))):
        letter = m.group("l").upper()
        if not choices or LETTERS.index(letter) < len(choices):
            return letter
    if choices:
        norm = _text(t)
        texts = [_text(c) for c in choices]
        if norm and norm in texts:
            return LETTERS[texts.index(norm)]
        value = _number(t)
        if value is not None:  # "4.0" for the option "4"
            same = [i for i, c in enumerate(choices)
                    if (v := _number(c)) is not None and _numbers_equal(v, value)]
            if len(same) == 1:
                return LETTERS[same[0]]
        m = re.match(r"^\(?([A-Ja-j])[).:]\s+(.+)$", t)
        if m and _text(m.group(2)) in texts:
            return m.group(1).upper()
    return None


def _text(text: str) -> str:
    words = re.sub(r"[^\w\s]", " ", unicodedata.normalize("NFKC", text).lower())
    return " ".join(w for w in words.split() if w not in {"the", "a", "an"})


def _latex(text: str) -> str:
    t = _clean(text)
    t = re.sub(r"\\[dt]frac", r"\\frac", t)
    t = re.sub(r"\\(?:left|right)\b", "", t)
    t = re.sub(r"\\[,;!]", "", t)
    return re.sub(r"\s+", "", t)


def normalize_answer(answer: str | None, kind: str = "auto",
                     choices: tuple[str, ...] | list[str] | None = None) -> str | None:
    """Canonical form of an extracted answer (``None`` stays ``None``): a number's value
    (``"1,234.0"`` -> ``"1234"``), a choice letter, cleaned LaTeX for other mathematical
    answers, else lower-cased text without punctuation and articles."""
    return _normalize(answer, kind, tuple(choices) if choices else None)


@lru_cache(maxsize=16384)
def _normalize(answer: str | None, kind: str, choices: tuple[str, ...] | None) -> str | None:
    if answer is None or not answer.strip():
        return None
    answer = answer[:2000]
    opts = tuple(choices) if choices else None
    if kind == "choice":
        letter = _letter(answer, opts)
        if letter:
            return letter
    if kind != "text":
        num = _number(answer)
        if num is not None:
            return _format(num.value)
    if kind in ("auto", "choice"):
        letter = _letter(answer, opts)
        if letter:
            return letter
    if kind != "text" and _MATHY.search(answer):
        return _latex(answer) or None
    return _text(answer) or None


def _numbers_equal(a: _Value, b: _Value) -> bool:
    def close(x: float, y: float) -> bool:
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
    if close(a.value, b.value):
        return True
    if a.percent != b.percent:  # 25% is also 0.25
        pct, plain = (a, b) if a.percent else (b, a)
        return close(pct.value / 100, plain.value)
    return False


def _verify(gold: str, pred: str) -> bool:
    import math_verify.grader
    import math_verify.parser
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    # math-verify's own timeouts use SIGALRM, which works only in the main thread; ours is
    # the bounded wait in _math_equal, so its "timeout disabled" warning does not apply.
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True
    math_verify.parser.TIMEOUT_WARNING_SHOWN = True

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    g = parse(f"${gold}$", extraction_config=config, parsing_timeout=None)
    p = parse(f"${pred}$", extraction_config=config, parsing_timeout=None)
    if not g or not p:
        return False
    return bool(verify(g, p, timeout_seconds=None))


@lru_cache(maxsize=8192)
def _math_equal(a: str, b: str) -> bool:
    if len(a) > _MATH_MAX_CHARS or len(b) > _MATH_MAX_CHARS or _TOWER.search(a) \
            or _TOWER.search(b):
        return False
    # A daemon thread per comparison: a runaway one is abandoned (it never holds up the
    # caller past the bound, nor the interpreter's exit, as a pool's worker would).
    result: list[bool] = []

    def work() -> None:
        try:
            result.append(_verify(a, b))
        except Exception:  # noqa: BLE001 - a parser failure on odd input: not shown equal
            result.append(False)

    worker = threading.Thread(target=work, name="colm-math-verify", daemon=True)
    worker.start()
    worker.join(MATH_TIMEOUT_S)
    if worker.is_alive():
        log.warning("math-verify took over %.1f s comparing two answers; counted as different",
                    MATH_TIMEOUT_S)
        return False
    return bool(result and result[0])


def equivalent(a: str | None, b: str | None, *, kind: str = "auto",
               choices: tuple[str, ...] | list[str] | None = None) -> bool:
    """Whether two answers say the same thing (see the module docstring). ``None`` (no
    answer) equals nothing."""
    if a is None or b is None:
        return False
    return _equal(a, b, kind, tuple(choices) if choices else None)


@lru_cache(maxsize=16384)
def _equal(a: str, b: str, kind: str, opts: tuple[str, ...] | None) -> bool:
    if kind == "choice":
        la, lb = _letter(a, opts), _letter(b, opts)
        if la is not None or lb is not None:
            return la == lb
    if kind != "text":
        na, nb = _number(a), _number(b)
        if na is not None and nb is not None:
            return _numbers_equal(na, nb)
    ka, kb = normalize_answer(a, kind, opts), normalize_answer(b, kind, opts)
    if ka is None or kb is None:
        return False
    if ka == kb:
        return True
    if kind == "text" or not (_MATHY.search(a) or _MATHY.search(b)):
        return False
    if kind in ("auto", "choice") and (_letter(a, opts) or _letter(b, opts)):
        return False
    return _math_equal(_latex(a), _latex(b))


def answers_match(a: str | None, b: str | None, *, kind: str = "auto",
                  choices: tuple[str, ...] | list[str] | None = None) -> bool:
    """True when both answers exist and are equivalent (:func:`equivalent`)."""
    return equivalent(a, b, kind=kind, choices=choices)
