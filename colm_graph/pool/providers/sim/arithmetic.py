"""Safe arithmetic: find an expression in a question and compute it without ``eval``.

A small recursive-descent parser over numbers, ``+ - * / ^ ( )`` (``x``, ``×``, ``÷`` too).
Exponents are bounded so no input can make it work for long.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["parse_arithmetic"]

_EXPR = re.compile(r"[-+(]*\s*\d[\d\s.,+\-*/^()x×÷]*")
_LIMIT = 10**15  # larger results are not arithmetic a question asks for
_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?|[-+*/^()])")


class _Parser:
    def __init__(self, text: str) -> None:
        text = text.replace("×", "*").replace("÷", "/").replace("x", "*").replace(",", "")
        self.tokens: list[str] = []
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m:
                if text[pos:].strip():
                    raise ValueError("bad token")
                break
            self.tokens.append(m.group(1))
            pos = m.end()
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ValueError("unexpected end")
        self.i += 1
        return tok

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            value = value + self.term() if op == "+" else value - self.term()
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            rhs = self.unary()
            if op == "/" and rhs == 0:
                raise ValueError("division by zero")
            value = value * rhs if op == "*" else value / rhs
        return value

    def unary(self) -> Fraction:
        if self.peek() in ("+", "-"):
            sign = -1 if self.take() == "-" else 1
            return sign * self.unary()
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            exp = self.unary()
            if exp.denominator != 1 or abs(exp) > 64 or abs(base) > 10**6:
                raise ValueError("exponent out of range")
            value = base ** int(exp)
            if abs(value) > _LIMIT:
                raise ValueError("result out of range")
            return value
        return base

    def atom(self) -> Fraction:
        tok = self.take()
        if tok == "(":
            value = self.expr()
            if self.take() != ")":
                raise ValueError("unbalanced parenthesis")
            return value
        if tok[0].isdigit():
            return Fraction(tok)
        raise ValueError(f"unexpected {tok!r}")


def parse_arithmetic(question: str) -> float | int | None:
    """The value of the longest arithmetic expression in ``question`` with an operator,
    or ``None`` when there is none that parses."""
    candidates = sorted((m.group(0).strip() for m in _EXPR.finditer(question[:2000])),
                        key=len, reverse=True)
    for cand in candidates:
        cand = cand.rstrip(".,").strip()
        if not re.search(r"\d\s*[-+*/^x×÷]\s*[-+]?\s*[\d(]", cand):
            continue
        try:
            parser = _Parser(cand)
            value = parser.expr()
            if parser.peek() is not None:
                continue
            if abs(value) > _LIMIT:
                continue
            return int(value) if value.denominator == 1 else float(value)
        except (ValueError, ZeroDivisionError, OverflowError):
            continue
    return None
